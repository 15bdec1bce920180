// vm_map_ram and vmap blocks. Which block serves a small vm_map_ram is the
// engine's choice (per-CPU queues); the spec checks the choice against what
// must hold and then follows it. A block is a bump allocator: pages are
// handed out from its start, freed pages turn dirty and are reused only when
// the whole block is, so the next small mapping in a block is always at page
// VMAP_BBMAP_BITS - free.
#include "spec/vmalloc_spec.h"

#include <cstdio>

namespace vmcheck::spec {

namespace {

std::string hex(u64 v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%#llx", static_cast<unsigned long long>(v));
  return buf;
}

unsigned count_order(u64 x) {
  unsigned k = 0;
  while (k < 64 && (u64{1} << k) < x)
    ++k;
  return k;
}

} // namespace

std::optional<std::size_t> VmallocSpec::block_containing(u64 addr) const {
  const std::optional<std::size_t> i = index_containing(addr);
  if (!i || areas_[*i].kind != AreaKind::VmapBlock)
    return std::nullopt;
  return i;
}

// new_vmap_block()'s bookkeeping for a block placed at start, owned by the
// current CPU, with its first 2^order pages in use.
std::string VmallocSpec::add_block(u64 start, unsigned order) {
  Area b;
  b.start = start;
  b.end = start + VMAP_BLOCK_SIZE;
  b.kind = AreaKind::VmapBlock;
  b.cpu = cpu_;
  b.free = VMAP_BBMAP_BITS - (1u << order);
  b.live.emplace(0u, order);
  insert_area(std::move(b));
  return "";
}

std::string VmallocSpec::check_vm_map_ram(u64 addr, unsigned count) const {
  if (count == 0)
    return "vm_map_ram of 0 pages must return NULL";
  if (!page_aligned(addr))
    return hex(addr) + " is not page aligned";
  const u64 size = u64{count} * PAGE_SIZE;
  if (addr < vstart_ || addr >= vend_ || size > vend_ - addr)
    return hex(addr) + "+" + hex(size) + " is outside the vmalloc space";

  // A range may take VA of lazily freed areas only if no room was left
  // without them (the allocation then purged them).
  auto fits = [&](u64 start, u64 end, u64 align) -> std::string {
    for (const Area &e : early_)
      if (e.start < end && start < e.end)
        return hex(start) + " overlaps the early area at " + hex(e.start);
    if (!range_is_free(start, end, true))
      return hex(start) + "-" + hex(end) + " overlaps a busy area";
    if (!range_is_free(start, end, false) && lowest_fit(end - start, align, vstart_, vend_))
      return hex(start) + " reuses lazily freed VA although there was room without a purge";
    return "";
  };

  if (count > VMAP_MAX_ALLOC)
    return fits(addr, addr + size, PAGE_SIZE);

  const unsigned span = 1u << count_order(count);
  if (const std::optional<std::size_t> i = block_containing(addr)) {
    const Area &b = areas_[*i];
    const u64 off = (addr - b.start) / PAGE_SIZE;
    if (off != VMAP_BBMAP_BITS - b.free)
      return hex(addr) + " is page " + std::to_string(off) +
             " of its vmap block, whose next free page is " +
             std::to_string(VMAP_BBMAP_BITS - b.free);
    if (b.free < span)
      return "the vmap block at " + hex(b.start) + " has " + std::to_string(b.free) +
             " free pages, " + std::to_string(span) + " needed";
    return "";
  }
  if (addr % VMAP_BLOCK_SIZE != 0)
    return hex(addr) + " is neither in a vmap block nor the start of a new block";
  if (VMAP_BLOCK_SIZE > vend_ - addr)
    return "a vmap block at " + hex(addr) + " would end beyond the vmalloc space";
  return fits(addr, addr + VMAP_BLOCK_SIZE, VMAP_BLOCK_SIZE);
}

std::string VmallocSpec::observe_vm_map_ram(u64 addr, unsigned count, std::span<const u64> pages) {
  ensure_init();
  if (std::string e = check_vm_map_ram(addr, count); !e.empty())
    return e;
  if (pages.size() < count)
    return std::to_string(pages.size()) + " pages given for a count of " + std::to_string(count);
  std::vector<u64> frames;
  for (unsigned i = 0; i < count; ++i) {
    const std::optional<u64> f = handle_frame(pages[i]);
    if (!f)
      return "page " + std::to_string(pages[i]) + " is not allocated";
    frames.push_back(*f);
  }

  // Applied on a copy of the state so that a refusal changes nothing.
  VmallocSpec saved = *this;
  auto refuse = [&](std::string why) {
    *this = std::move(saved);
    return why;
  };
  const u64 size = u64{count} * PAGE_SIZE;
  const bool new_block = count <= VMAP_MAX_ALLOC && !block_containing(addr);
  const u64 reserved_end = new_block ? addr + VMAP_BLOCK_SIZE : addr + size;
  if (count > VMAP_MAX_ALLOC || new_block) {
    if (new_block && should_fail(FailKind::VmapArea))
      return refuse("the spec predicts the vmap_block allocation fails");
    if (should_fail(FailKind::VmapArea))
      return refuse("the spec predicts the vmap_area allocation fails");
    if (!range_is_free(addr, reserved_end, false))
      purge_all();
  }
  const unsigned order = count_order(count);
  if (count > VMAP_MAX_ALLOC) {
    Area a;
    a.start = addr;
    a.end = addr + size;
    a.kind = AreaKind::VmMapRam;
    insert_area(std::move(a));
  } else if (new_block) {
    add_block(addr, order);
  } else {
    Area &b = areas_[*block_containing(addr)];
    b.live.emplace(static_cast<unsigned>((addr - b.start) / PAGE_SIZE), order);
    b.free -= 1u << order;
  }
  if (map_frames(addr, frames, "vmap_pte_range") != 0)
    return refuse("the spec predicts the mapping fails");
  return "";
}

void VmallocSpec::vm_unmap_ram(u64 mem, unsigned count) {
  ensure_init();
  const char *fn = "vm_unmap_ram";
  if (mem == 0 || mem < vstart_ || mem > vend_ || !page_aligned(mem))
    throw KernelBug(fn, "bad address " + hex(mem));
  if (count == 0)
    throw KernelBug(fn, "count 0");
  if (count <= VMAP_MAX_ALLOC) {
    const std::optional<std::size_t> i = block_containing(mem);
    if (!i)
      throw KernelBug("vb_free", hex(mem) + " is in no vmap block");
    Area &b = areas_[*i];
    const unsigned off = static_cast<unsigned>((mem - b.start) / PAGE_SIZE);
    const unsigned order = count_order(count);
    const auto live = b.live.find(off);
    if (live == b.live.end() || live->second != order)
      throw KernelBug("vb_free",
                      hex(mem) + " is not a live mapping of " + std::to_string(count) + " pages");
    unmap_range(mem, mem + u64{count} * PAGE_SIZE);
    b.live.erase(live);
    b.dirty += 1u << order;
    if (b.dirty == VMAP_BBMAP_BITS)
      release_va(*i);
    return;
  }
  const std::optional<std::size_t> i = index_containing(mem);
  if (!i || areas_[*i].kind != AreaKind::VmMapRam)
    throw KernelBug(fn, hex(mem) + " is not a vm_map_ram area");
  unmap_range(areas_[*i].start, areas_[*i].end);
  release_va(*i);
}

long long VmallocSpec::new_vmap_block(unsigned order, Gfp gfp) {
  ensure_init();
  if (order >= 32 || (u64{1} << order) >= VMAP_BBMAP_BITS)
    throw KernelBug("new_vmap_block", "order " + std::to_string(order) + " fills a whole block");
  if (should_fail(FailKind::VmapArea))
    return -ENOMEM;
  int err = 0;
  const std::optional<u64> addr =
      alloc_vmap_area(VMAP_BLOCK_SIZE, VMAP_BLOCK_SIZE, vstart_, vend_, gfp, &err);
  if (!addr)
    return err;
  add_block(*addr, order);
  return static_cast<long long>(*addr);
}

} // namespace vmcheck::spec
