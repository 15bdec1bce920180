// mm/percpu-vm.c (seed 002): the temp pages array, page allocation,
// mapping, flushes, populate/depopulate, chunk creation and destruction.
#include "percpu/percpu.h"

#include <cinttypes>
#include <cstdio>

namespace vmcheck {

namespace {

std::string hex(u64 v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%" PRIx64, v);
  return buf;
}

} // namespace

std::size_t Percpu::pcpu_page_idx(unsigned cpu, unsigned page) const {
  return std::size_t{layout_.unit_map[cpu]} * layout_.unit_pages + page;
}

u64 Percpu::pcpu_chunk_addr(const PcpuChunk &chunk, unsigned cpu, unsigned page) const {
  return chunk.base_addr + layout_.unit_off[cpu] + (u64{page} << PAGE_SHIFT);
}

bool Percpu::valid_range(const char *fn, unsigned page_start, unsigned page_end) const {
  if (page_start <= page_end && page_end <= layout_.unit_pages)
    return true;
  m_.diag().warn(fn, "page range [" + std::to_string(page_start) + ", " + std::to_string(page_end) +
                         ") is not inside a unit of " + std::to_string(layout_.unit_pages) +
                         " pages");
  return false;
}

void Percpu::require_temp_array(const char *fn, std::span<Pfn> pages) const {
  if (pages.data() != pages_.data() || pages.size() != pages_.size() || pages_.empty())
    throw KernelBug(fn, "pages is not the temp array of pcpu_get_pages");
}

std::span<Pfn> Percpu::pcpu_get_pages() {
  // One array for the whole allocator, as the kernel's function-static one:
  // allocated once, never freed, so only the first call can fail.
  if (pages_.empty()) {
    if (!m_.kmalloc_ok())
      return {};
    pages_.assign(std::size_t{layout_.nr_units} * layout_.unit_pages, kNoPage);
  }
  return pages_;
}

void Percpu::pcpu_free_pages(PcpuChunk &, std::span<Pfn> pages, unsigned page_start,
                             unsigned page_end) {
  if (!valid_range("pcpu_free_pages", page_start, page_end))
    return;
  require_temp_array("pcpu_free_pages", pages);
  for (unsigned cpu = 0; cpu < m_.num_online_cpus(); ++cpu)
    for (unsigned i = page_start; i < page_end; ++i) {
      Pfn &slot = pages[pcpu_page_idx(cpu, i)];
      if (slot == kNoPage)
        continue;
      m_.mem().page(slot).private_data = 0;
      m_.pages().free_pages(slot, 0);
      slot = kNoPage;
    }
}

int Percpu::pcpu_alloc_pages(PcpuChunk &, std::span<Pfn> pages, unsigned page_start,
                             unsigned page_end) {
  if (!valid_range("pcpu_alloc_pages", page_start, page_end))
    return -EINVAL;
  require_temp_array("pcpu_alloc_pages", pages);
  const Gfp gfp = GFP_KERNEL | __GFP_HIGHMEM;
  std::vector<std::size_t> done; // slots filled by this call, for the unwind
  for (unsigned cpu = 0; cpu < m_.num_online_cpus(); ++cpu)
    for (unsigned i = page_start; i < page_end; ++i) {
      const std::size_t idx = pcpu_page_idx(cpu, i);
      const auto pfn =
          m_.alloc_pages_node(static_cast<int>(m_.cpu_to_node(cpu)), gfp, 0, PageOwner::Percpu);
      if (!pfn) {
        for (std::size_t d : done) {
          m_.pages().free_pages(pages[d], 0);
          pages[d] = kNoPage;
        }
        pages[idx] = kNoPage;
        return -ENOMEM;
      }
      m_.mem().page(*pfn).private_data = 0;
      pages[idx] = *pfn;
      done.push_back(idx);
    }
  return 0;
}

void Percpu::pcpu_pre_unmap_flush(PcpuChunk &, unsigned page_start, unsigned page_end) {
  if (!valid_range("pcpu_pre_unmap_flush", page_start, page_end))
    return;
  // flush_cache_vunmap: x86 caches are physically tagged, nothing to do.
  ++flushes_.pre_unmap;
}

void Percpu::pcpu_unmap_pages(PcpuChunk &chunk, std::span<Pfn> pages, unsigned page_start,
                              unsigned page_end) {
  if (!valid_range("pcpu_unmap_pages", page_start, page_end))
    return;
  require_temp_array("pcpu_unmap_pages", pages);
  if (page_start == page_end)
    return;
  const u64 size = u64{page_end - page_start} << PAGE_SHIFT;
  for (unsigned cpu = 0; cpu < m_.num_online_cpus(); ++cpu) {
    for (unsigned i = page_start; i < page_end; ++i) {
      const u64 addr = pcpu_chunk_addr(chunk, cpu, i);
      const std::optional<Pfn> page = v_.vmalloc_to_page(addr);
      if (!page)
        m_.diag().warn("pcpu_unmap_pages",
                       "page " + std::to_string(i) + " of cpu " + std::to_string(cpu) +
                           " is not mapped",
                       addr);
      pages[pcpu_page_idx(cpu, i)] = page.value_or(kNoPage);
    }
    v_.unmap_kernel_range_noflush(pcpu_chunk_addr(chunk, cpu, page_start), size);
  }
  for (unsigned i = page_start; i < page_end; ++i)
    chunk.populated[i] = false;
}

void Percpu::pcpu_post_unmap_tlb_flush(PcpuChunk &chunk, unsigned page_start, unsigned page_end) {
  if (!valid_range("pcpu_post_unmap_tlb_flush", page_start, page_end))
    return;
  // One flush over the whole span, holes between groups included: cheaper
  // than one per unit on a machine with many CPUs.
  ++flushes_.post_unmap_tlb;
  m_.mmu().flush_tlb_kernel_range(pcpu_chunk_addr(chunk, layout_.first_unit_cpu, page_start),
                                  pcpu_chunk_addr(chunk, layout_.last_unit_cpu, page_end));
}

int Percpu::pcpu_map_pages(PcpuChunk &chunk, std::span<Pfn> pages, unsigned page_start,
                           unsigned page_end) {
  if (!valid_range("pcpu_map_pages", page_start, page_end))
    return -EINVAL;
  require_temp_array("pcpu_map_pages", pages);
  if (page_start == page_end)
    return 0;
  const unsigned nr = page_end - page_start;
  const u64 size = u64{nr} << PAGE_SHIFT;
  const unsigned cpus = m_.num_online_cpus();
  for (unsigned cpu = 0; cpu < cpus; ++cpu) {
    const u64 addr = pcpu_chunk_addr(chunk, cpu, page_start);
    std::span<const Pfn> unit = pages.subspan(pcpu_page_idx(cpu, page_start), nr);
    // An empty slot ends the list handed over: map_kernel_range_noflush then
    // fails there with -ENOMEM, as the kernel's WARN_ON(!page) does.
    for (unsigned i = 0; i < nr; ++i)
      if (unit[i] == kNoPage) {
        unit = unit.first(i);
        break;
      }
    std::vector<bool> was_mapped(nr);
    for (unsigned i = 0; i < nr; ++i)
      was_mapped[i] = v_.vmalloc_to_page(addr + (u64{i} << PAGE_SHIFT)).has_value();
    const long err = v_.map_kernel_range_noflush(addr, size, PAGE_KERNEL, unit);
    if (err < 0) {
      // Every earlier unit was mapped whole by this call (a PTE already
      // there would have failed it), so its whole range goes; of the
      // failing unit only what this call mapped.
      for (unsigned tcpu = 0; tcpu < cpu; ++tcpu)
        v_.unmap_kernel_range_noflush(pcpu_chunk_addr(chunk, tcpu, page_start), size);
      for (unsigned i = 0; i < nr; ++i) {
        const u64 va = addr + (u64{i} << PAGE_SHIFT);
        if (!was_mapped[i] && v_.vmalloc_to_page(va))
          v_.unmap_kernel_range_noflush(va, PAGE_SIZE);
      }
      pcpu_post_unmap_tlb_flush(chunk, page_start, page_end);
      return static_cast<int>(err);
    }
    // pcpu_set_page_chunk: the reverse lookup free_percpu relies on.
    for (Pfn pfn : unit)
      m_.mem().page(pfn).private_data = chunk.id;
  }
  for (unsigned i = page_start; i < page_end; ++i)
    chunk.populated[i] = true;
  return 0;
}

void Percpu::pcpu_post_map_flush(PcpuChunk &, unsigned page_start, unsigned page_end) {
  if (!valid_range("pcpu_post_map_flush", page_start, page_end))
    return;
  // flush_cache_vmap: nothing to do on x86.
  ++flushes_.post_map;
}

int Percpu::pcpu_populate_chunk(PcpuChunk &chunk, unsigned page_start, unsigned page_end) {
  if (!valid_range("pcpu_populate_chunk", page_start, page_end))
    return -EINVAL;
  const std::span<Pfn> pages = pcpu_get_pages();
  if (pages.empty())
    return -ENOMEM;
  if (pcpu_alloc_pages(chunk, pages, page_start, page_end) != 0)
    return -ENOMEM;
  if (pcpu_map_pages(chunk, pages, page_start, page_end) != 0) {
    pcpu_free_pages(chunk, pages, page_start, page_end);
    return -ENOMEM;
  }
  pcpu_post_map_flush(chunk, page_start, page_end);
  return 0;
}

void Percpu::pcpu_depopulate_chunk(PcpuChunk &chunk, unsigned page_start, unsigned page_end) {
  if (!valid_range("pcpu_depopulate_chunk", page_start, page_end))
    return;
  const std::span<Pfn> pages = pcpu_get_pages();
  if (pages.empty())
    throw KernelBug("pcpu_depopulate_chunk", "no temp pages array (BUG_ON(!pages))");
  pcpu_pre_unmap_flush(chunk, page_start, page_end);
  pcpu_unmap_pages(chunk, pages, page_start, page_end);
  // No TLB flush: the VA stays inside the chunk's busy areas until they are
  // freed, and vmalloc flushes before it hands the VA out again.
  pcpu_free_pages(chunk, pages, page_start, page_end);
}

PcpuChunk *Percpu::pcpu_create_chunk() {
  if (!m_.kmalloc_ok()) // pcpu_alloc_chunk
    return nullptr;
  const std::vector<VmStruct *> vms =
      v_.pcpu_get_vm_areas(layout_.group_offsets, layout_.group_sizes, layout_.atom_size);
  if (vms.empty())
    return nullptr;
  auto chunk = std::make_unique<PcpuChunk>();
  chunk->id = next_chunk_id_++;
  for (const VmStruct *vm : vms)
    chunk->vm_ids.push_back(vm->id);
  chunk->base_addr = vms[0]->addr - layout_.group_offsets[0];
  chunk->populated.assign(layout_.unit_pages, false);
  chunk->free_bytes = layout_.unit_size;
  PcpuChunk *raw = chunk.get();
  chunks_[raw->id] = std::move(chunk);
  return raw;
}

bool Percpu::pcpu_destroy_chunk(PcpuChunk *chunk) {
  if (chunk == nullptr)
    return true;
  for (unsigned i = 0; i < layout_.unit_pages; ++i)
    if (chunk->populated[i]) {
      m_.diag().warn("pcpu_destroy_chunk",
                     "chunk " + std::to_string(chunk->id) + " still has page " + std::to_string(i) +
                         " populated",
                     chunk->base_addr);
      return false;
    }
  if (!chunk->areas.empty()) {
    m_.diag().warn("pcpu_destroy_chunk",
                   "chunk " + std::to_string(chunk->id) + " still has " +
                       std::to_string(chunk->areas.size()) + " allocations",
                   chunk->base_addr);
    return false;
  }
  std::vector<VmStruct *> vms;
  for (u64 id : chunk->vm_ids) {
    VmStruct *vm = v_.vm_by_id(id);
    if (vm == nullptr)
      throw KernelBug("pcpu_destroy_chunk", "area of chunk " + std::to_string(chunk->id) +
                                                " is gone (" + hex(chunk->base_addr) + ")");
    vms.push_back(vm);
  }
  v_.pcpu_free_vm_areas(vms);
  chunks_.erase(chunk->id);
  return true;
}

PcpuChunk *Percpu::pcpu_chunk_addr_search(u64 addr) {
  const std::optional<Pfn> pfn = v_.vmalloc_to_page(addr);
  if (!pfn || !m_.mem().pfn_valid(*pfn))
    return nullptr;
  const Page &pg = m_.mem().peek(*pfn);
  if (pg.owner != PageOwner::Percpu || pg.refcount == 0)
    return nullptr;
  return chunk_by_id(pg.private_data);
}

} // namespace vmcheck
