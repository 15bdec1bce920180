// vm_map_ram / vm_unmap_ram, the per-CPU vmap_block allocator and
// vm_unmap_aliases, with 4.19 semantics: each CPU carves small mappings out
// of its own VMAP_BLOCK_SIZE blocks with a bump pointer, freed sub-allocations
// only become dirty, and a block's VA goes back (lazily) only as a whole.
//
// The legacy backend (2.6, seed 003) predates vm_map_ram; it serves every
// vm_map_ram as a plain exact-size VMAP_RAM area, as the large path does, so
// that traces drive both backends through the same calls.
#include "vmalloc/vmalloc.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>

namespace vmcheck {

namespace {

std::string hex(u64 v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%" PRIx64, v);
  return buf;
}

// get_order() of a mapping of `pages` pages: the power of two of pages it
// occupies in a block (3 pages take 4).
unsigned pages_order(u64 pages) {
  unsigned order = 0;
  while ((u64{1} << order) < pages)
    ++order;
  return order;
}

u64 block_base(u64 addr) {
  return addr & ~(VMAP_BLOCK_SIZE - 1);
}

unsigned block_offset(u64 addr) {
  return static_cast<unsigned>((addr & (VMAP_BLOCK_SIZE - 1)) >> PAGE_SHIFT);
}

void erase_block(std::vector<u64> &queue, u64 va_start) {
  queue.erase(std::remove(queue.begin(), queue.end(), va_start), queue.end());
}

} // namespace

// vm_map_ram: maps count pages at one new address, or returns 0 (WARN on bad
// input, nothing changed).
u64 Vmalloc::vm_map_ram(std::span<const Pfn> pages, unsigned count, int node, pgprot_t prot) {
  ensure_initialized();
  if (count == 0) {
    m_.diag().warn("vm_map_ram", "count is 0");
    return 0;
  }
  if (pages.size() < count) {
    m_.diag().warn("vm_map_ram", "page array holds " + std::to_string(pages.size()) +
                                     " pages, fewer than count " + std::to_string(count));
    return 0;
  }
  for (unsigned i = 0; i < count; ++i) {
    if (!m_.mem().pfn_valid(pages[i]) || m_.mem().peek(pages[i]).refcount == 0) {
      m_.diag().warn("vm_map_ram", "page " + std::to_string(i) + " (pfn " + hex(pages[i]) +
                                       ") is not an allocated page");
      return 0;
    }
  }
  if (node != NUMA_NO_NODE && (node < 0 || static_cast<unsigned>(node) >= m_.mem().nr_nodes())) {
    m_.diag().warn("vm_map_ram", "node " + std::to_string(node) + " does not exist");
    return 0;
  }
  const u64 size = u64{count} << PAGE_SHIFT;
  u64 addr;
  if (backend_ == Backend::Modern && count <= VMAP_MAX_ALLOC)
    addr = vb_alloc(size, GFP_KERNEL);
  else
    addr = alloc_vmap_area(size, PAGE_SIZE, m_.vmalloc_start(), m_.vmalloc_end(), node, GFP_KERNEL,
                           VMAP_RAM, 0);
  if (IS_ERR_VALUE(addr))
    return 0;
  if (vmap_page_range(addr, addr + size, prot, pages.first(count), "vmap_pte_range") < 0) {
    vm_unmap_ram(addr, count);
    return 0;
  }
  return addr;
}

// vm_unmap_ram: unmaps exactly what one vm_map_ram(count) mapped at mem;
// anything else is a BUG, raised before any state changes.
void Vmalloc::vm_unmap_ram(u64 mem, unsigned count) {
  ensure_initialized();
  if (mem == 0)
    throw KernelBug("vm_unmap_ram", "NULL address");
  if (mem < m_.vmalloc_start() || mem > m_.vmalloc_end())
    throw KernelBug("vm_unmap_ram", "address " + hex(mem) + " is outside the vmalloc range");
  if (!page_aligned(mem))
    throw KernelBug("vm_unmap_ram", "address " + hex(mem) + " is not page aligned");
  const u64 size = u64{count} << PAGE_SHIFT;
  const std::string mismatch =
      "no vm_map_ram mapping of " + std::to_string(count) + " pages at " + hex(mem);
  if (backend_ == Backend::Modern && count <= VMAP_MAX_ALLOC) {
    auto vb = blocks_.find(block_base(mem));
    if (count == 0 || vb == blocks_.end())
      throw KernelBug("vm_unmap_ram", mismatch);
    auto live = vb->second.live.find(block_offset(mem));
    if (live == vb->second.live.end() || live->second != pages_order(count))
      throw KernelBug("vm_unmap_ram", mismatch);
    vb_free(mem, size);
    return;
  }
  auto it = busy_.find(mem);
  if (it == busy_.end() || it->second.vm_id != 0 || (it->second.flags & VMAP_BLOCK) ||
      !(it->second.flags & VMAP_RAM) || it->second.size() != size)
    throw KernelBug("vm_unmap_ram", mismatch);
  free_unmap_vmap_area(mem);
}

u64 Vmalloc::vb_alloc(u64 size, Gfp gfp) {
  if (size == 0 || !page_aligned(size) || size > u64{VMAP_MAX_ALLOC} * PAGE_SIZE)
    throw KernelBug("vb_alloc", "size " + hex(size) + " cannot come from a vmap block");
  const unsigned order = pages_order(size >> PAGE_SHIFT);
  const unsigned want = 1u << order;
  std::vector<u64> &queue = vbq_free_[m_.current_cpu()];
  for (auto it = queue.begin(); it != queue.end(); ++it) {
    VmapBlock &vb = blocks_.at(*it);
    if (vb.free < want)
      continue;
    // Bump pointer: space behind it, dirty or not, waits for the whole block.
    const unsigned offset = VMAP_BBMAP_BITS - vb.free;
    vb.free -= want;
    vb.live[offset] = order;
    const u64 addr = vb.va_start + (u64{offset} << PAGE_SHIFT);
    if (vb.free == 0)
      queue.erase(it);
    return addr;
  }
  return new_vmap_block(order, gfp);
}

u64 Vmalloc::new_vmap_block(unsigned order, Gfp gfp) {
  ensure_initialized();
  if (order >= fls64(VMAP_BBMAP_BITS) - 1)
    throw KernelBug("new_vmap_block",
                    "order " + std::to_string(order) + " does not fit in a vmap block");
  if (backend_ == Backend::Legacy) {
    m_.diag().warn("new_vmap_block", "the legacy backend has no vmap blocks");
    return ERR_PTR(-EINVAL);
  }
  if (!m_.kmalloc_ok())
    return ERR_PTR(-ENOMEM);
  const u64 r =
      alloc_vmap_area(VMAP_BLOCK_SIZE, VMAP_BLOCK_SIZE, m_.vmalloc_start(), m_.vmalloc_end(),
                      static_cast<int>(m_.numa_node_id()), gfp, VMAP_RAM | VMAP_BLOCK, 0);
  if (IS_ERR_VALUE(r))
    return r;
  VmapBlock vb;
  vb.va_start = r;
  vb.cpu = m_.current_cpu();
  vb.free = VMAP_BBMAP_BITS - (1u << order);
  vb.live[0] = order;
  blocks_[vb.va_start] = vb;
  vbq_free_[vb.cpu].push_back(vb.va_start);
  return r;
}

void Vmalloc::vb_free(u64 addr, u64 size) {
  if (size == 0 || !page_aligned(size) || size > u64{VMAP_MAX_ALLOC} * PAGE_SIZE)
    throw KernelBug("vb_free", "size " + hex(size) + " cannot come from a vmap block");
  const unsigned order = pages_order(size >> PAGE_SHIFT);
  auto it = blocks_.find(block_base(addr));
  if (it == blocks_.end())
    throw KernelBug("vb_free", "no vmap block holds " + hex(addr));
  VmapBlock &vb = it->second;
  const unsigned offset = block_offset(addr);
  auto live = vb.live.find(offset);
  if (live == vb.live.end() || live->second != order)
    throw KernelBug("vb_free", "no live sub-allocation of order " + std::to_string(order) + " at " +
                                   hex(addr));
  vb.live.erase(live);
  // PTEs go now; the TLB entries stay until vm_unmap_aliases or the block's
  // lazy purge flushes the dirty range.
  vunmap_page_range(addr, addr + size);
  vb.dirty_min = std::min(vb.dirty_min, offset);
  vb.dirty_max = std::max(vb.dirty_max, offset + (1u << order));
  vb.dirty += 1u << order;
  if (vb.dirty == VMAP_BBMAP_BITS) {
    if (vb.free != 0)
      throw KernelBug("vb_free", "fully dirty block " + hex(vb.va_start) + " still has free pages");
    free_vmap_block(vb.va_start);
  }
}

void Vmalloc::free_vmap_block(u64 va_start) {
  auto it = blocks_.find(va_start);
  erase_block(vbq_free_[it->second.cpu], va_start);
  blocks_.erase(it);
  free_vmap_area_noflush(va_start);
}

void Vmalloc::purge_fragmented_blocks_allcpus() {
  for (std::vector<u64> &queue : vbq_free_) {
    std::vector<u64> purge;
    for (auto it = queue.begin(); it != queue.end();) {
      VmapBlock &vb = blocks_.at(*it);
      // Nothing live, and not already on its way out.
      if (vb.free + vb.dirty != VMAP_BBMAP_BITS || vb.dirty == VMAP_BBMAP_BITS) {
        ++it;
        continue;
      }
      vb.free = 0;
      vb.dirty = VMAP_BBMAP_BITS;
      vb.dirty_min = 0;
      vb.dirty_max = VMAP_BBMAP_BITS;
      purge.push_back(*it);
      it = queue.erase(it);
    }
    for (u64 va_start : purge)
      free_vmap_block(va_start);
  }
}

// vm_unmap_aliases: afterwards no CPU holds a translation of a vmalloc page
// that is no longer mapped.
//
// 4.19 looked only at blocks on the free lists, so a full block's dirty pages
// kept their TLB entries (fixed upstream in 6.5); every block is walked here
// because the seed promises no aliases at all.
void Vmalloc::vm_unmap_aliases() {
  ensure_initialized();
  if (backend_ == Backend::Legacy) {
    m_.mmu().flush_tlb_all();
    return;
  }
  u64 start = ~u64{0};
  u64 end = 0;
  bool flush = false;
  for (auto &[va_start, vb] : blocks_) {
    if (vb.dirty_max == 0)
      continue;
    start = std::min(start, va_start + (u64{vb.dirty_min} << PAGE_SHIFT));
    end = std::max(end, va_start + (u64{vb.dirty_max} << PAGE_SHIFT));
    flush = true;
    // Flushed below: the range need not be flushed again.
    vb.dirty_min = VMAP_BBMAP_BITS;
    vb.dirty_max = 0;
  }
  purge_fragmented_blocks_allcpus();
  if (!purge_lazy_areas(start, end, false) && flush)
    m_.mmu().flush_tlb_kernel_range(start, end);
}

std::string Vmalloc::check_vmap_blocks() const {
  for (const auto &[va_start, vb] : blocks_) {
    const std::string where = "vmap block " + hex(va_start);
    auto va = busy_.find(va_start);
    if (va == busy_.end() || va->second.size() != VMAP_BLOCK_SIZE || va->second.vm_id != 0 ||
        va->second.flags != (VMAP_RAM | VMAP_BLOCK) || block_base(va_start) != va_start)
      return where + " has no aligned busy VMAP_BLOCK area of its size";
    if (vb.cpu >= vbq_free_.size())
      return where + " belongs to no CPU";
    u64 live_pages = 0;
    unsigned next_free = 0;
    for (const auto &[offset, order] : vb.live) {
      if (offset < next_free || order >= fls64(VMAP_BBMAP_BITS) - 1)
        return where + " has overlapping or oversized sub-allocations";
      next_free = offset + (1u << order);
      live_pages += 1u << order;
    }
    if (vb.free > VMAP_BBMAP_BITS || u64{vb.free} + vb.dirty + live_pages != VMAP_BBMAP_BITS)
      return where + ": free + dirty + live pages != VMAP_BBMAP_BITS";
    if (next_free > VMAP_BBMAP_BITS - vb.free)
      return where + " has a sub-allocation beyond its bump pointer";
    const bool dirty_empty = vb.dirty_min == VMAP_BBMAP_BITS && vb.dirty_max == 0;
    if (!dirty_empty && (vb.dirty_min >= vb.dirty_max || vb.dirty_max > VMAP_BBMAP_BITS))
      return where + " has a malformed dirty range";
    const auto &queue = vbq_free_[vb.cpu];
    const auto listed = std::count(queue.begin(), queue.end(), va_start);
    if (listed != (vb.free != 0 ? 1 : 0))
      return where + (vb.free != 0 ? " has free space but is not listed once on its CPU's free list"
                                   : " is full but listed on its CPU's free list");
  }
  for (std::size_t cpu = 0; cpu < vbq_free_.size(); ++cpu)
    for (u64 va_start : vbq_free_[cpu]) {
      auto vb = blocks_.find(va_start);
      if (vb == blocks_.end() || vb->second.cpu != cpu)
        return "cpu " + std::to_string(cpu) + "'s free list holds " + hex(va_start) +
               ", not one of its blocks";
    }
  for (const auto &[s, va] : busy_)
    if ((va.flags & VMAP_BLOCK) && blocks_.count(s) == 0)
      return "busy VMAP_BLOCK area " + hex(s) + " has no vmap block";
  return {};
}

} // namespace vmcheck
