// The vmalloc API of the spec: boot, KVA reservation, vmalloc, the free
// paths, vmap and page-range mapping, lazy purge. Order of allocations (the
// contract that makes fail_nth line up with the engine):
//   1. vm_struct (vmap_area fail point)
//   2. vmap_area descriptor (vmap_area fail point), then placement; no room:
//      purge every lazy area and try once more (modern)
//   3. pages[] array: kmalloc (vmap_area fail point) or, above PAGE_SIZE, a
//      nested vmalloc of the whole sequence
//   4. one page at a time (alloc_page fail points)
//   5. page tables as the mapping walk first needs them (page_table)
#include "spec/vmalloc_spec.h"

#include <algorithm>
#include <cstdio>

namespace vmcheck::spec {

namespace {

std::string hex(u64 v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%#llx", static_cast<unsigned long long>(v));
  return buf;
}

// get_count_order(): the smallest k with 2^k >= x (x >= 1).
unsigned count_order(u64 x) {
  unsigned k = 0;
  while (k < 64 && (u64{1} << k) < x)
    ++k;
  return k;
}

// PAGE_ALIGN() with the kernel's wrap: a size within a page of 2^64 gives 0.
u64 page_align_wrap(u64 x) {
  return (x + PAGE_SIZE - 1) & PAGE_MASK;
}

} // namespace

// ---- areas ------------------------------------------------------------------------------

void VmallocSpec::ensure_init() {
  if (!initialized_)
    vmalloc_init();
}

std::size_t VmallocSpec::insert_area(Area area) {
  const auto pos = std::lower_bound(areas_.begin(), areas_.end(), area.start,
                                    [](const Area &a, u64 s) { return a.start < s; });
  const auto it = areas_.insert(pos, std::move(area));
  return static_cast<std::size_t>(it - areas_.begin());
}

Area *VmallocSpec::area_at(u64 start) {
  for (Area &a : areas_)
    if (a.start == start)
      return &a;
  return nullptr;
}

std::optional<std::size_t> VmallocSpec::index_containing(u64 addr) const {
  for (std::size_t i = 0; i < areas_.size(); ++i)
    if (areas_[i].start <= addr && addr < areas_[i].end)
      return i;
  return std::nullopt;
}

// The live vm_struct area a free of addr finds: by containment (modern,
// guard page included) or by exact start (legacy).
std::optional<std::size_t> VmallocSpec::vm_index_for_free(u64 addr) const {
  const std::optional<std::size_t> i = index_containing(addr);
  if (!i || areas_[*i].kind != AreaKind::VmArea)
    return std::nullopt;
  if (cfg_.legacy && areas_[*i].start != addr)
    return std::nullopt;
  return i;
}

VmInfo VmallocSpec::to_info(const Area &area) const {
  VmInfo info;
  info.vm_id = area.vm_id;
  info.addr = area.start;
  info.size = area.size();
  info.flags = area.flags;
  info.nr_pages = area.pages.size();
  info.caller = area.caller;
  return info;
}

// ---- boot -------------------------------------------------------------------------------

void VmallocSpec::vm_area_add_early(u64 addr, u64 size, VmFlags flags) {
  const char *fn = "vm_area_add_early";
  if (initialized_)
    throw KernelBug(fn, "called after vmalloc_init");
  if (size == 0 || !page_aligned(addr) || !page_aligned(size) || addr < vstart_ ||
      addr + size < addr || addr + size > vend_)
    throw KernelBug(fn, "area " + hex(addr) + "+" + hex(size) +
                            " is not whole pages inside the vmalloc range");
  for (const Area &e : early_)
    if (e.start < addr + size && addr < e.end)
      throw KernelBug(fn, "area " + hex(addr) + " overlaps the early area at " + hex(e.start));
  Area a;
  a.start = addr;
  a.end = addr + size;
  a.kind = AreaKind::VmArea;
  a.vm_id = next_vm_id_++;
  a.flags = flags;
  a.caller = fn;
  a.usable = (flags & VM_NO_GUARD) != 0 && !cfg_.legacy ? size : size - PAGE_SIZE;
  const auto pos = std::lower_bound(early_.begin(), early_.end(), addr,
                                    [](const Area &e, u64 s) { return e.start < s; });
  early_.insert(pos, std::move(a));
}

u64 VmallocSpec::vm_area_register_early(u64 size, VmFlags flags, u64 align) {
  const char *fn = "vm_area_register_early";
  if (initialized_)
    throw KernelBug(fn, "called after vmalloc_init");
  if (!is_power_of_2(align))
    throw KernelBug(fn, "align " + hex(align) + " is not a power of two");
  const u64 addr = (vstart_ + early_off_ + align - 1) & ~(align - 1);
  if (addr < vstart_)
    throw KernelBug(fn, "address wraps");
  vm_area_add_early(addr, size, flags);
  for (Area &e : early_)
    if (e.start == addr)
      e.caller = fn;
  early_off_ = page_align(addr + size) - vstart_;
  return addr;
}

void VmallocSpec::vmalloc_init() {
  if (initialized_)
    return;
  initialized_ = true;
  for (Area &e : early_)
    insert_area(std::move(e));
  early_.clear();
}

// ---- the KVA core ---------------------------------------------------------------------------

std::optional<u64> VmallocSpec::alloc_vmap_area(u64 size, u64 align, u64 vstart, u64 vend, Gfp gfp,
                                                int *err) {
  if (should_fail(FailKind::VmapArea)) {
    *err = -ENOMEM;
    return std::nullopt;
  }
  auto fit = [&] {
    return cfg_.legacy ? legacy_fit(size, align, vstart, vend)
                       : lowest_fit(size, align, vstart, vend);
  };
  std::optional<u64> addr = fit();
  if (!addr && !cfg_.legacy) {
    purge_all();
    addr = fit();
  }
  if (!addr) {
    if (cfg_.legacy)
      warn_alloc(gfp, "__get_vm_area_node",
                 "allocation failed: out of vmalloc space - use vmalloc=<size> to increase size.");
    else
      warn_alloc(gfp, "alloc_vmap_area",
                 "vmap allocation for size " + std::to_string(size) +
                     " failed: use vmalloc=<size> to increase size");
    *err = -EBUSY;
    return std::nullopt;
  }
  return addr;
}

// The VA of a removed area: lazily freed (modern; over the threshold every
// lazy area is purged at once) or free at once (legacy).
void VmallocSpec::release_va(std::size_t index) {
  if (cfg_.legacy) {
    areas_.erase(areas_.begin() + static_cast<std::ptrdiff_t>(index));
    return;
  }
  Area &a = areas_[index];
  const u64 start = a.start;
  const u64 end = a.end;
  a = Area{};
  a.start = start;
  a.end = end;
  a.kind = AreaKind::Lazy;
  lazy_nr_ += (end - start) / PAGE_SIZE;
  // Over the threshold the freeing context purges, unless a purge is
  // already in flight (it only tries the purge lock).
  if (lazy_nr_ > lazy_max_pages() && shootdown_pending_.empty())
    purge_lazy(true);
}

void VmallocSpec::purge_lazy(bool defer) {
  complete_shootdown();
  for (Area &a : areas_)
    if (a.kind == AreaKind::Lazy)
      a.purging = true;
  if (defer && cfg_.async_shootdown && lazy_nr_ > 0) {
    shootdown_initiator_ = cpu_;
    for (unsigned c = 0; c < cfg_.cpus; ++c)
      if (c != cpu_)
        shootdown_pending_.insert(c);
    if (!shootdown_pending_.empty())
      return;
  }
  release_purging();
}

void VmallocSpec::release_purging() {
  for (const Area &a : areas_)
    if (a.kind == AreaKind::Lazy && a.purging)
      lazy_nr_ -= a.size() / PAGE_SIZE;
  std::erase_if(areas_, [](const Area &a) { return a.kind == AreaKind::Lazy && a.purging; });
}

bool VmallocSpec::deliver_shootdown(unsigned cpu) {
  if (shootdown_pending_.erase(cpu) == 0)
    return false;
  if (shootdown_pending_.empty())
    release_purging();
  return true;
}

void VmallocSpec::complete_shootdown() {
  while (!shootdown_pending_.empty())
    deliver_shootdown(*shootdown_pending_.begin());
}

// A block nothing lives in any more, and not yet wholly dirty (those are
// already gone), gives its VA back.
void VmallocSpec::purge_fragmented_blocks() {
  // By start, not index: releasing one VA may purge (erase) lazy areas.
  std::vector<u64> starts;
  for (const Area &a : areas_)
    if (a.kind == AreaKind::VmapBlock && a.free + a.dirty == VMAP_BBMAP_BITS &&
        a.dirty != VMAP_BBMAP_BITS)
      starts.push_back(a.start);
  for (u64 start : starts)
    release_va(*index_containing(start));
}

void VmallocSpec::purge_all(bool defer) {
  purge_fragmented_blocks();
  purge_lazy(defer);
}

u64 VmallocSpec::lazy_max_pages() const {
  if (cfg_.lazy_pages >= 0)
    return static_cast<u64>(cfg_.lazy_pages);
  return fls64(cfg_.cpus) * (LAZY_MAX_BYTES_PER_FLS / PAGE_SIZE);
}

void VmallocSpec::purge_vmap_area_lazy() {
  ensure_init();
  purge_all();
}

void VmallocSpec::purge_worker() {
  ensure_init();
  purge_all(true);
}

void VmallocSpec::vm_unmap_aliases() {
  ensure_init();
  purge_all();
}

// __get_vm_area_node(): the start of the new vm_struct area, or nullopt.
std::optional<u64> VmallocSpec::get_vm_area_node(u64 size, u64 align, VmFlags flags, u64 start,
                                                 u64 end, Gfp gfp, const std::string &caller) {
  const char *fn = "__get_vm_area_node";
  if (cfg_.legacy && in_interrupt())
    throw KernelBug(fn, "called in interrupt context");
  const u64 real_size = size;
  size = page_align_wrap(size);
  if (size == 0)
    return std::nullopt;
  if ((flags & ~VM_KNOWN_MASK) != 0) {
    warn(fn, "unknown vm flags " + hex(flags & ~VM_KNOWN_MASK));
    return std::nullopt;
  }
  if (start < vstart_ || start > vend_ || end < vstart_ || end > vend_) {
    warn(fn, "range " + hex(start) + "-" + hex(end) + " is outside the vmalloc space");
    return std::nullopt;
  }
  if ((flags & VM_IOREMAP) != 0) {
    const unsigned bits = cfg_.legacy ? fls64(real_size) : count_order(size);
    align = u64{1} << std::clamp<unsigned>(bits, PAGE_SHIFT, IOREMAP_MAX_ORDER);
  }
  // Everything is placed on whole pages, whatever alignment was asked.
  align = std::max(align, PAGE_SIZE);

  if (should_fail(FailKind::VmapArea))
    return std::nullopt;
  const bool guard = cfg_.legacy || (flags & VM_NO_GUARD) == 0;
  // Adding the guard page wraps a size within a page of 2^64 to 0, which
  // alloc_vmap_area refuses (-EINVAL) before any search: NULL, no message.
  if (guard && size + PAGE_SIZE < size)
    return std::nullopt;
  const u64 reserved = guard ? size + PAGE_SIZE : size;
  int err = 0;
  const std::optional<u64> addr = alloc_vmap_area(reserved, align, start, end, gfp, &err);
  if (!addr)
    return std::nullopt;
  Area a;
  a.start = *addr;
  a.end = *addr + reserved;
  a.kind = AreaKind::VmArea;
  a.vm_id = next_vm_id_++;
  a.flags = flags;
  a.caller = caller;
  a.usable = size;
  insert_area(std::move(a));
  return addr;
}

std::optional<VmInfo> VmallocSpec::get_vm_area(u64 size, VmFlags flags) {
  return get_vm_area_caller(size, flags, "get_vm_area");
}

std::optional<VmInfo> VmallocSpec::get_vm_area_caller(u64 size, VmFlags flags,
                                                      const std::string &caller) {
  return __get_vm_area_caller(size, flags, vstart_, vend_, caller);
}

std::optional<VmInfo> VmallocSpec::__get_vm_area(u64 size, VmFlags flags, u64 start, u64 end) {
  return __get_vm_area_caller(size, flags, start, end, "__get_vm_area");
}

std::optional<VmInfo> VmallocSpec::__get_vm_area_caller(u64 size, VmFlags flags, u64 start, u64 end,
                                                        const std::string &caller) {
  ensure_init();
  const std::optional<u64> addr = get_vm_area_node(size, 1, flags, start, end, GFP_KERNEL, caller);
  if (!addr)
    return std::nullopt;
  return to_info(*area_at(*addr));
}

std::optional<VmInfo> VmallocSpec::find_vm_area(u64 addr) {
  ensure_init();
  const std::optional<std::size_t> i = vm_index_for_free(addr);
  if (!i)
    return std::nullopt;
  return to_info(areas_[*i]);
}

// Unmaps the area's range and releases its VA; returns what it was.
Area VmallocSpec::detach_vm_area(std::size_t index) {
  Area removed = areas_[index];
  unmap_range(removed.start, removed.end);
  release_va(index);
  return removed;
}

// The checks every free path shares; true when addr names a live vm area
// (diagnostics recorded otherwise, or when the address is interior).
bool VmallocSpec::valid_for_free(u64 addr, const char *function) {
  if (!page_aligned(addr)) {
    warn(function, "Trying to vfree() bad address (" + hex(addr) + ")");
    return false;
  }
  if (!vm_index_for_free(addr)) {
    warn(function, "Trying to vfree() nonexistent vm area (" + hex(addr) + ")");
    return false;
  }
  return true;
}

std::optional<VmInfo> VmallocSpec::remove_vm_area(u64 addr) {
  ensure_init();
  const char *fn = "remove_vm_area";
  if (addr == 0 || !valid_for_free(addr, fn))
    return std::nullopt;
  const std::size_t i = *vm_index_for_free(addr);
  if (areas_[i].start != addr)
    warn(fn, "address " + hex(addr) + " is inside the area at " + hex(areas_[i].start));
  VmInfo info = to_info(detach_vm_area(i));
  if (cfg_.legacy)
    info.size -= PAGE_SIZE;
  return info;
}

std::optional<VmInfo> VmallocSpec::alloc_vm_area(u64 size) {
  ensure_init();
  const std::optional<u64> addr =
      get_vm_area_node(size, 1, VM_IOREMAP, vstart_, vend_, GFP_KERNEL, "alloc_vm_area");
  if (!addr)
    return std::nullopt;
  const u64 nr = page_align(size) / PAGE_SIZE;
  // The tables of each 2 MiB the area touches (one PTE table each).
  const u64 end = *addr + nr * PAGE_SIZE;
  for (u64 va = *addr; va < end; va = (va | (PMD_SIZE - 1)) + 1)
    if (!ensure_tables(va)) {
      detach_vm_area(*index_containing(*addr));
      return std::nullopt;
    }
  VmInfo info = to_info(*area_at(*addr));
  info.nr_ptes = nr;
  return info;
}

void VmallocSpec::free_vm_area(const VmInfo &area) {
  ensure_init();
  const std::optional<std::size_t> i = vm_index_for_free(area.addr);
  if (!i || areas_[*i].vm_id != area.vm_id)
    throw KernelBug("free_vm_area", "area at " + hex(area.addr) + " is not live");
  detach_vm_area(*i);
}

// ---- vmalloc ------------------------------------------------------------------------------------

u64 VmallocSpec::vmalloc_range(u64 size, u64 align, u64 start, u64 end, Gfp gfp, VmFlags vm_flags,
                               int node, const std::string &caller) {
  const char *fn = "__vmalloc_node_range";
  if ((gfp & ~GFP_KNOWN_MASK) != 0) {
    warn(fn, "unknown gfp bits " + hex(gfp & ~GFP_KNOWN_MASK));
    return 0;
  }
  if (node != NUMA_NO_NODE && (node < 0 || node >= static_cast<int>(cfg_.nodes))) {
    warn(fn, "node " + std::to_string(node) + " does not exist");
    return 0;
  }
  if (!is_power_of_2(align)) {
    warn(fn, "align " + hex(align) + " is not a power of two");
    return 0;
  }
  const u64 aligned = page_align_wrap(size);
  const auto failure = [size] {
    return "vmalloc: allocation failure: " + std::to_string(size) + " bytes";
  };
  if (aligned == 0 || aligned / PAGE_SIZE > totalram_pages()) {
    warn_alloc(gfp, fn, failure());
    return 0;
  }
  const std::optional<u64> addr = get_vm_area_node(
      aligned, align, VM_ALLOC | VM_UNINITIALIZED | vm_flags, start, end, gfp, caller);
  if (!addr) {
    warn_alloc(gfp, fn, failure());
    return 0;
  }
  return vmalloc_area_node(*addr, gfp, node);
}

// The nested pages[] area holds page pointers the spec cannot know.
void VmallocSpec::mark_frames_unknown(const Area &area) {
  for (u64 f : area.pages)
    forget_contents(frames_.at(f));
}

void VmallocSpec::forget_contents(Frame &frame) {
  frame.zero = false;
  frame.bytes.clear();
  frame.known.clear();
}

u64 VmallocSpec::vmalloc_area_node(u64 addr, Gfp gfp, int node) {
  const char *fn = "__vmalloc_area_node";
  const u64 nr_pages = area_at(addr)->usable / PAGE_SIZE;
  const u64 array_size = nr_pages * sizeof(u64);
  const Gfp nested_gfp = (gfp & GFP_RECLAIM_MASK) | __GFP_ZERO;
  bool have_array = false;
  if (array_size > PAGE_SIZE) {
    const std::string caller = area_at(addr)->caller;
    const u64 array =
        vmalloc_range(array_size, 1, vstart_, vend_, nested_gfp | __GFP_HIGHMEM, 0, node, caller);
    Area &outer = *area_at(addr);
    outer.flags |= VM_VPAGES;
    outer.pages_array = array;
    if (array != 0)
      mark_frames_unknown(*area_at(array));
    have_array = array != 0;
  } else {
    have_array = !should_fail(FailKind::VmapArea);
  }
  if (!have_array) {
    // 4.19: __vmalloc_area_node removes the area and returns NULL, and
    // __vmalloc_node_range returns that NULL without a message of its own
    // (a nested vmalloc that failed has already reported its failure).
    detach_vm_area(*index_containing(addr));
    return 0;
  }

  // Pages come from the asked node (or this CPU's), falling back along the
  // zonelist; failures are reported once, below, so each page is NOWARN.
  std::vector<u64> pages;
  bool ok = alloc_frames(node_or_current(node), gfp | __GFP_NOWARN, nr_pages, pages);
  Area &area = *area_at(addr);
  area.pages = std::move(pages);
  if (ok)
    ok = map_frames(addr, area.pages, "vmap_pte_range") == 0;
  if (!ok) {
    const Area &failed = *area_at(addr);
    warn_alloc(gfp, fn,
               "vmalloc: allocation failure, allocated " +
                   std::to_string(failed.pages.size() * PAGE_SIZE) + " of " +
                   std::to_string(failed.size()) + " bytes");
    vfree_checked(addr, "vfree");
    return 0;
  }
  area_at(addr)->flags &= ~VM_UNINITIALIZED;
  return addr;
}

u64 VmallocSpec::__vmalloc_node_range(u64 size, u64 align, u64 start, u64 end, Gfp gfp,
                                      pgprot_t /*prot*/, VmFlags vm_flags, int node,
                                      const std::string &caller) {
  ensure_init();
  return vmalloc_range(size, align, start, end, gfp, vm_flags, node, caller);
}

u64 VmallocSpec::__vmalloc_node(u64 size, u64 align, Gfp gfp, pgprot_t prot, int node,
                                const std::string &caller) {
  return __vmalloc_node_range(size, align, vstart_, vend_, gfp, prot, 0, node, caller);
}

u64 VmallocSpec::__vmalloc(u64 size, Gfp gfp, pgprot_t prot) {
  return __vmalloc_node(size, 1, gfp, prot, NUMA_NO_NODE, "__vmalloc");
}

u64 VmallocSpec::vmalloc(u64 size) {
  return __vmalloc_node(size, 1, GFP_KERNEL, PAGE_KERNEL, NUMA_NO_NODE, "vmalloc");
}

u64 VmallocSpec::vzalloc(u64 size) {
  return __vmalloc_node(size, 1, GFP_KERNEL | __GFP_ZERO, PAGE_KERNEL, NUMA_NO_NODE, "vzalloc");
}

u64 VmallocSpec::vmalloc_user(u64 size) {
  return __vmalloc_node_range(size, PAGE_SIZE, vstart_, vend_, GFP_KERNEL | __GFP_ZERO, PAGE_KERNEL,
                              VM_USERMAP, NUMA_NO_NODE, "vmalloc_user");
}

u64 VmallocSpec::vmalloc_node(u64 size, int node) {
  return __vmalloc_node(size, 1, GFP_KERNEL, PAGE_KERNEL, node, "vmalloc_node");
}

u64 VmallocSpec::vzalloc_node(u64 size, int node) {
  return __vmalloc_node(size, 1, GFP_KERNEL | __GFP_ZERO, PAGE_KERNEL, node, "vzalloc_node");
}

u64 VmallocSpec::vmalloc_exec(u64 size) {
  return __vmalloc_node(size, 1, GFP_KERNEL, PAGE_KERNEL_EXEC, NUMA_NO_NODE, "vmalloc_exec");
}

u64 VmallocSpec::vmalloc_32(u64 size) {
  return __vmalloc_node(size, 1, GFP_DMA32 | GFP_KERNEL, PAGE_KERNEL, NUMA_NO_NODE, "vmalloc_32");
}

u64 VmallocSpec::vmalloc_32_user(u64 size) {
  return __vmalloc_node_range(size, PAGE_SIZE, vstart_, vend_, GFP_DMA32 | GFP_KERNEL | __GFP_ZERO,
                              PAGE_KERNEL, VM_USERMAP, NUMA_NO_NODE, "vmalloc_32_user");
}

// ---- freeing
// ----------------------------------------------------------------------------------------

// __vunmap(): unmap, release the VA, then (vfree) free the pages and the
// vmalloc'ed pages[] array. A page-aligned interior address frees the whole
// area in modern, with a diagnostic.
void VmallocSpec::do_vunmap(u64 addr, bool deallocate_pages, const char *function) {
  if (addr == 0 || !valid_for_free(addr, function))
    return;
  const std::size_t i = *vm_index_for_free(addr);
  if (areas_[i].start != addr)
    warn(function, "address " + hex(addr) + " is inside the area at " + hex(areas_[i].start) +
                       ", not at its start: freeing the whole area");
  const Area removed = detach_vm_area(i);
  if (!deallocate_pages)
    return;
  for (u64 f : removed.pages)
    free_frame(f);
  if ((removed.flags & VM_VPAGES) != 0 && removed.pages_array != 0)
    do_vunmap(removed.pages_array, true, function);
}

void VmallocSpec::defer_vfree(u64 addr) {
  std::vector<u64> &list = deferred_[cpu_];
  const bool first = list.empty();
  list.push_back(addr);
  if (first && std::find(work_.begin(), work_.end(), cpu_) == work_.end())
    work_.push_back(cpu_);
}

// vfree() as the kernel enters it, from wherever it is called.
void VmallocSpec::vfree_checked(u64 addr, const char *function) {
  if (in_interrupt()) {
    if (cfg_.legacy)
      throw KernelBug(function, "called in interrupt context");
    if (addr != 0 && valid_for_free(addr, function))
      defer_vfree(addr);
    return;
  }
  do_vunmap(addr, true, function);
}

void VmallocSpec::vfree(u64 addr) {
  ensure_init();
  vfree_checked(addr, "vfree");
}

void VmallocSpec::vfree_atomic(u64 addr) {
  ensure_init();
  if (addr != 0 && valid_for_free(addr, "vfree_atomic"))
    defer_vfree(addr);
}

void VmallocSpec::vunmap(u64 addr) {
  ensure_init();
  if (in_interrupt())
    throw KernelBug("vunmap", "called in interrupt context");
  do_vunmap(addr, false, "vunmap");
}

// ---- vmap and page ranges
// --------------------------------------------------------------------------

u64 VmallocSpec::vmap(std::span<const u64> pages, unsigned count, VmFlags flags,
                      pgprot_t /*prot*/) {
  ensure_init();
  const char *fn = "vmap";
  if (count > totalram_pages())
    return 0;
  if (pages.size() < count) {
    warn(fn, std::to_string(pages.size()) + " pages given for a count of " + std::to_string(count));
    return 0;
  }
  std::vector<u64> frames;
  for (unsigned i = 0; i < count; ++i) {
    const std::optional<u64> f = handle_frame(pages[i]);
    if (!f) {
      warn(fn, "page " + std::to_string(pages[i]) + " is not allocated");
      return 0;
    }
    frames.push_back(*f);
  }
  // 4.19's vmap passes the caller's flags through: VM_NO_GUARD is honoured
  // (stripping it with a WARN came with later kernels).
  const std::optional<u64> addr =
      get_vm_area_node(u64{count} * PAGE_SIZE, 1, flags, vstart_, vend_, GFP_KERNEL, fn);
  if (!addr)
    return 0;
  if (map_frames(*addr, frames, "vmap_pte_range") != 0) {
    vunmap(*addr);
    return 0;
  }
  return *addr;
}

// The raw page-table calls stay inside one live area (the kerneldoc says the
// range "should have been allocated using get_vm_area() and its friends"):
// anything else is refused with a WARN. An empty range is the kernel's BUG_ON.
long VmallocSpec::map_kernel_range_noflush(u64 addr, u64 size, pgprot_t /*prot*/,
                                           std::span<const u64> pages) {
  ensure_init();
  const char *fn = "map_kernel_range_noflush";
  const u64 len = page_align_wrap(size);
  if (len == 0)
    throw KernelBug(fn, "empty range");
  const Area *area = nullptr;
  if (page_aligned(addr) && addr + len > addr)
    if (auto i = index_containing(addr))
      area = &areas_[*i];
  // pcpu areas have no guard page; every other vm_struct area keeps its last
  // page unmapped unless it was made VM_NO_GUARD.
  const bool guard = area && area->caller != "pcpu_get_vm_areas" &&
                     (cfg_.legacy || (area->flags & VM_NO_GUARD) == 0);
  if (area == nullptr || area->kind != AreaKind::VmArea ||
      addr + len > area->end - (guard ? PAGE_SIZE : 0)) {
    warn(fn, "range " + hex(addr) + "+" + hex(size) + " is not inside one vm area");
    return -EINVAL;
  }
  std::vector<u64> frames;
  for (u64 i = 0; i < len / PAGE_SIZE; ++i) {
    const std::optional<u64> f = i < pages.size() ? handle_frame(pages[i]) : std::nullopt;
    frames.push_back(f.value_or(0));
  }
  const int err = map_frames(addr, frames, "map_kernel_range_noflush");
  return err != 0 ? err : static_cast<long>(len / PAGE_SIZE);
}

void VmallocSpec::unmap_kernel_range_noflush(u64 addr, u64 size) {
  ensure_init();
  const char *fn = "unmap_kernel_range_noflush";
  const u64 len = page_align_wrap(size);
  if (len == 0)
    throw KernelBug(fn, "empty range");
  std::optional<std::size_t> i;
  if (page_aligned(addr) && addr + len > addr)
    i = index_containing(addr);
  if (!i || areas_[*i].kind == AreaKind::Lazy || addr + len > areas_[*i].end) {
    warn(fn, "range " + hex(addr) + "+" + hex(size) + " is not inside one live area");
    return;
  }
  unmap_range(addr, addr + len);
}

void VmallocSpec::unmap_kernel_range(u64 addr, u64 size) {
  unmap_kernel_range_noflush(addr, size);
}

bool VmallocSpec::vmalloc_to_page(u64 addr) const {
  return ptes_.contains(addr & PAGE_MASK);
}

bool VmallocSpec::is_vmalloc_addr(u64 addr) const {
  return addr >= vstart_ && addr < vend_;
}

} // namespace vmcheck::spec
