// KVA allocation, lazy purge, and the get_vm_area / vmalloc / vfree family.
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

// get_count_order(): ceil(log2(x)) for x > 0.
unsigned count_order(u64 x) {
  unsigned order = fls64(x) - 1;
  if ((x & (x - 1)) != 0)
    ++order;
  return order;
}

// PAGE_ALIGN with the kernel's wrap: a size within a page of 2^64 aligns to 0.
u64 page_align_wrapping(u64 size) {
  return (size + PAGE_SIZE - 1) & PAGE_MASK;
}

constexpr Gfp GFP_VMALLOC32 = GFP_DMA32 | GFP_KERNEL;

} // namespace

Vmalloc::Vmalloc(Machine &m)
    : m_(m), backend_(m.config().backend), free_(m.vmalloc_start(), m.vmalloc_end() + 1),
      vbq_free_(m.num_online_cpus()), vfree_deferred_(m.num_online_cpus()) {
  m_.mmu().set_guard_classifier([this](u64 va) { return is_guard_page(va); });
}

Vmalloc::~Vmalloc() {
  m_.mmu().set_guard_classifier(nullptr);
}

u64 Vmalloc::lazy_max_pages() const {
  if (m_.config().lazy_pages >= 0)
    return static_cast<u64>(m_.config().lazy_pages);
  return fls64(m_.num_online_cpus()) * (LAZY_MAX_BYTES_PER_FLS / PAGE_SIZE);
}

bool Vmalloc::is_vmalloc_addr(u64 addr) const {
  return addr >= m_.vmalloc_start() && addr < m_.vmalloc_end();
}

VmStruct *Vmalloc::vm_by_id(u64 id) {
  auto it = vms_.find(id);
  return it == vms_.end() ? nullptr : it->second.get();
}

// ---- boot ---------------------------------------------------------------------------

void Vmalloc::vm_area_add_early(u64 addr, u64 size, VmFlags flags) {
  if (initialized_)
    throw KernelBug("vm_area_add_early", "called after vmalloc_init");
  if (size == 0 || !page_aligned(addr) || !page_aligned(size) || addr < m_.vmalloc_start() ||
      addr + size < addr || addr + size > m_.vmalloc_end())
    throw KernelBug("vm_area_add_early", "area " + hex(addr) + "+" + hex(size) +
                                             " is not a page-aligned part of the vmalloc range");
  for (const auto &[a, s] : early_)
    if (a < addr + size && addr < a + s)
      throw KernelBug("vm_area_add_early", "area " + hex(addr) + " overlaps early area " + hex(a));
  auto pos = std::lower_bound(early_.begin(), early_.end(), std::make_pair(addr, u64{0}));
  early_flags_.insert(early_flags_.begin() + (pos - early_.begin()), flags);
  early_.insert(pos, {addr, size});
}

u64 Vmalloc::vm_area_register_early(u64 size, VmFlags flags, u64 align) {
  if (initialized_)
    throw KernelBug("vm_area_register_early", "called after vmalloc_init");
  if (!is_power_of_2(align) || size == 0)
    throw KernelBug("vm_area_register_early", "bad size or alignment");
  // 4.19 keeps a boot-time bump offset from VMALLOC_START.
  const u64 base = m_.vmalloc_start() + early_bump_;
  const u64 addr = (base + align - 1) & ~(align - 1);
  vm_area_add_early(addr, page_align(size), flags);
  early_bump_ = page_align(addr + size) - m_.vmalloc_start();
  return addr;
}

void Vmalloc::vmalloc_init() {
  if (initialized_)
    return;
  initialized_ = true;
  m_.end_boot();
  for (std::size_t i = 0; i < early_.size(); ++i) {
    const auto [addr, size] = early_[i];
    auto vm = std::make_unique<VmStruct>();
    vm->id = next_vm_id_++;
    vm->addr = addr;
    vm->size = size;
    vm->flags = early_flags_[i];
    vm->caller = "vm_area_add_early";
    vm->has_guard = false;
    if (backend_ == Backend::Modern) {
      free_.reserve(addr, size);
    } else {
      vmlist_.alloc(size, PAGE_SIZE, addr, addr + size);
    }
    busy_[addr] = VmapArea{addr, addr + size, vm->id, 0, vm.get()};
    vms_[vm->id] = std::move(vm);
  }
}

void Vmalloc::ensure_initialized() {
  if (!initialized_)
    vmalloc_init();
}

// ---- the KVA core -------------------------------------------------------------------

u64 Vmalloc::alloc_vmap_area(u64 size, u64 align, u64 vstart, u64 vend, int node, Gfp gfp,
                             std::uint32_t va_flags, u64 vm_id) {
  (void)node; // one vmap_area cache; the node only matters for page allocations
  if (size == 0 || !page_aligned(size) || !is_power_of_2(align)) {
    m_.diag().warn("alloc_vmap_area", "invalid size " + hex(size) + " or alignment " + hex(align));
    return ERR_PTR(-EINVAL);
  }
  if (!m_.kmalloc_ok())
    return ERR_PTR(-ENOMEM);
  bool purged = false;
  for (;;) {
    std::optional<u64> addr;
    if (backend_ == Backend::Modern) {
#ifdef VMCHECK_MUTANT_ignore_align
      align = PAGE_SIZE; // mutant: the requested alignment is ignored
#endif
      addr = free_.find_lowest(size, align, vstart, vend);
      if (addr)
        free_.reserve(*addr, size);
    } else {
      addr = vmlist_.alloc(size, align, vstart, vend);
      // Seed 003's walk skips the end check on some paths (and ALIGN can
      // wrap); 2.6 callers never passed a window or an alignment where that
      // mattered. Bounding the result keeps every area inside its window,
      // which is also what the modern backend returns.
      if (addr && (*addr < vstart || *addr + size < *addr || *addr + size > vend)) {
        vmlist_.remove(*addr);
        addr.reset();
      }
    }
    if (addr) {
      busy_[*addr] = VmapArea{*addr, *addr + size, vm_id, va_flags};
      return *addr;
    }
    if (backend_ == Backend::Modern && !purged) {
      purge_vmap_area_lazy();
      purged = true;
      continue;
    }
    if (!(gfp & __GFP_NOWARN)) {
      if (backend_ == Backend::Modern)
        m_.diag().warn("alloc_vmap_area", "vmap allocation for size " + std::to_string(size) +
                                              " failed: use vmalloc=<size> to increase size");
      else
        m_.diag().warn("__get_vm_area_node", "allocation failed: out of vmalloc space - use "
                                             "vmalloc=<size> to increase size.");
    }
    return ERR_PTR(-EBUSY);
  }
}

const VmapArea *Vmalloc::find_vmap_area(u64 addr) const {
  if (backend_ == Backend::Legacy) {
    auto it = busy_.find(addr);
    return it == busy_.end() ? nullptr : &it->second;
  }
  auto it = busy_.upper_bound(addr);
  if (it == busy_.begin())
    return nullptr;
  --it;
  return addr < it->second.va_end ? &it->second : nullptr;
}

bool Vmalloc::is_guard_page(u64 va) const {
  auto it = busy_.upper_bound(va);
  if (it == busy_.begin())
    return false;
  --it;
  const VmapArea &a = it->second;
  if (va >= a.va_end || a.vm_id == 0)
    return false;
  const auto vm = vms_.find(a.vm_id);
  if (vm == vms_.end() || !vm->second->has_guard)
    return false;
  return va >= a.va_end - PAGE_SIZE;
}

void Vmalloc::free_vmap_area(u64 va_start) {
  auto it = busy_.find(va_start);
  const u64 size = it->second.size();
  busy_.erase(it);
  if (backend_ == Backend::Modern)
    free_.release(va_start, size);
  else
    vmlist_.remove(va_start);
}

void Vmalloc::free_vmap_area_noflush(u64 va_start) {
  auto it = busy_.find(va_start);
  const VmapArea va = it->second;
  busy_.erase(it);
  if (backend_ == Backend::Legacy) {
    // No lazy freeing in 2.6: the TLB is flushed before the VA can be reused.
    m_.mmu().flush_tlb_kernel_range(va.va_start, va.va_end);
    vmlist_.remove(va.va_start);
    return;
  }
  lazy_[va.va_start] = VmapArea{va.va_start, va.va_end, 0, va.flags};
#ifdef VMCHECK_MUTANT_lazy_counter_no_guard
  lazy_nr_ += (va.size() >> PAGE_SHIFT) - 1; // mutant: the guard page is not counted
#else
  lazy_nr_ += va.size() >> PAGE_SHIFT;
#endif
  // 4.19 purges synchronously in the freeing context once over the
  // threshold (so lazy=0 means "purge on every free"). It only tries the
  // purge lock: with a purge in flight nothing more happens here.
  if (lazy_nr_ > lazy_max_pages() && !shootdown_in_flight())
    purge_lazy_areas(~u64{0}, 0, false, true);
}

void Vmalloc::free_unmap_vmap_area(u64 va_start) {
  const VmapArea &va = busy_.at(va_start);
  vunmap_page_range(va.va_start, va.va_end);
  free_vmap_area_noflush(va_start);
}

bool Vmalloc::purge_lazy_areas(u64 start, u64 end, bool force_flush, bool defer_flush) {
  complete_shootdown();
  if (lazy_.empty()) {
    if (force_flush && start < end)
      m_.mmu().flush_tlb_kernel_range(start, end);
    return false;
  }
  start = std::min(start, lazy_.begin()->second.va_start);
#ifdef VMCHECK_MUTANT_purge_race
  end = std::max(end, lazy_.begin()->second.va_end); // mutant: flush covers the first area only
#else
  for (const auto &[s, va] : lazy_)
    end = std::max(end, va.va_end);
#endif
  for (const auto &[s, va] : lazy_)
    purging_.insert(s);
  if (defer_flush && m_.config().async_shootdown) {
    // The IPIs go out; this CPU flushes at once, each other one when its
    // delivery is scheduled. The VA is released by the last delivery.
    const unsigned self = m_.current_cpu();
#ifndef VMCHECK_MUTANT_skip_purge_flush
    m_.mmu().flush_tlb_kernel_range_on(self, start, end);
#endif
    shootdown_start_ = start;
    shootdown_end_ = end;
    shootdown_initiator_ = self;
    for (unsigned c = 0; c < m_.config().cpus; ++c)
      if (c != self)
        shootdown_pending_.insert(c);
#ifdef VMCHECK_MUTANT_release_before_shootdown_ack
    release_purged_areas(); // mutant: the VA is reusable before the other CPUs flushed
#else
    if (shootdown_pending_.empty())
      release_purged_areas();
#endif
    return true;
  }
  // One flush covers the union; only after it may the VA be handed out again.
#ifndef VMCHECK_MUTANT_skip_purge_flush
  m_.mmu().flush_tlb_kernel_range(start, end);
#endif
  release_purged_areas();
  return true;
}

void Vmalloc::release_purged_areas() {
  for (u64 s : purging_) {
    const auto it = lazy_.find(s);
    free_.release(it->second.va_start, it->second.size());
    lazy_nr_ -= it->second.size() >> PAGE_SHIFT;
    lazy_.erase(it);
  }
  purging_.clear();
}

bool Vmalloc::deliver_shootdown(unsigned cpu) {
  if (shootdown_pending_.erase(cpu) == 0)
    return false;
#ifndef VMCHECK_MUTANT_skip_purge_flush
  m_.mmu().flush_tlb_kernel_range_on(cpu, shootdown_start_, shootdown_end_);
#endif
  if (shootdown_pending_.empty())
    release_purged_areas();
  return true;
}

void Vmalloc::complete_shootdown() {
  while (!shootdown_pending_.empty())
    deliver_shootdown(*shootdown_pending_.begin());
}

void Vmalloc::purge_vmap_area_lazy() {
  purge_everything(false);
}

void Vmalloc::purge_worker() {
  purge_everything(true);
}

void Vmalloc::purge_everything(bool defer_flush) {
  if (backend_ == Backend::Legacy)
    return;
  purge_fragmented_blocks_allcpus();
  purge_lazy_areas(~u64{0}, 0, false, defer_flush);
}

// ---- page-table helpers -------------------------------------------------------------------

int Vmalloc::vmap_page_range(u64 start, u64 end, pgprot_t prot, std::span<const Pfn> pages,
                             const char *fn) {
  PageTables &pt = m_.pt();
  int nr = 0;
  // Per page, in 4.19's vmap_pte_range order: the page table first (its
  // allocation may fail), then WARN_ON(!pte_none) -> -EBUSY, then
  // WARN_ON(!page) -> -ENOMEM. What was mapped before a failure stays.
  // The slots of one PTE table are consecutive: one descent per 2 MiB.
  std::optional<u64> slot;
  for (u64 va = start; va < end; va += PAGE_SIZE, ++nr) {
    const std::size_t i = static_cast<std::size_t>(nr);
    if (!slot || (va & (PMD_SIZE - 1)) == 0)
      slot = pt.ensure_pte_slot(pt.kernel_root(), va);
    else
      *slot += sizeof(u64);
    if (!slot)
      return -ENOMEM;
    if ((pt.read_entry(*slot) & _PAGE_PRESENT) != 0) {
      m_.diag().warn(fn, "PTE already present", va);
      return -EBUSY;
    }
    if (i >= pages.size() || !m_.mem().pfn_valid(pages[i]) ||
        m_.mem().peek(pages[i]).refcount == 0) {
      m_.diag().warn(fn, "no page to map", va);
      return -ENOMEM;
    }
    pt.set_leaf(*slot, pages[i], prot);
  }
  return nr;
}

void Vmalloc::vunmap_page_range(u64 start, u64 end) {
  PageTables &pt = m_.pt();
  // Each leaf is cleared at the slot the walk found it in (a leaf of a
  // huge mapping is its PMD entry, as PageTables::clear would find it).
  pt.for_each_leaf(pt.kernel_root(), start, end,
                   [&pt](u64, const PteRef &r) { pt.set_entry(r.slot_pa, 0); });
}

std::optional<Pfn> Vmalloc::vmalloc_to_page(u64 addr) const {
  const PteRef r = m_.pt().walk(m_.pt().kernel_root(), addr);
  if (!r.present())
    return std::nullopt;
  return r.pfn() + ((addr & (r.page_size() - 1)) >> PAGE_SHIFT);
}

// ---- get_vm_area family ----------------------------------------------------------------------

VmStruct *Vmalloc::__get_vm_area_node(u64 size, u64 align, VmFlags flags, u64 start, u64 end,
                                      int node, Gfp gfp, const std::string &caller) {
  ensure_initialized();
  if (backend_ == Backend::Legacy && m_.in_interrupt())
    throw KernelBug("__get_vm_area_node", "called in interrupt context");
  // Size 0 is a silent NULL before anything else, as in the kernel.
  if (page_align_wrapping(size) == 0)
    return nullptr;
  if (flags & ~VM_KNOWN_MASK) {
    m_.diag().warn(caller, "unknown vm_struct flags " + hex(flags));
    return nullptr;
  }
  if (start < m_.vmalloc_start() || start > m_.vmalloc_end() || end < m_.vmalloc_start() ||
      end > m_.vmalloc_end()) {
    m_.diag().warn(caller,
                   "range " + hex(start) + "-" + hex(end) + " is not inside the vmalloc space");
    return nullptr;
  }
  if (backend_ == Backend::Legacy && (flags & VM_IOREMAP)) {
    // Seed 003 takes fls() of the unaligned size: 64K aligns to 128K.
    align = u64{1} << std::clamp<unsigned>(fls64(size), PAGE_SHIFT, IOREMAP_MAX_ORDER);
  }
  size = page_align_wrapping(size);
  if (size == 0)
    return nullptr;
  if (backend_ == Backend::Modern && (flags & VM_IOREMAP))
    align = u64{1} << std::clamp<unsigned>(count_order(size), PAGE_SHIFT, IOREMAP_MAX_ORDER);
  if (!m_.kmalloc_ok())
    return nullptr;
  if (backend_ == Backend::Legacy || !(flags & VM_NO_GUARD)) {
    if (size + PAGE_SIZE < size)
      return nullptr;
#ifndef VMCHECK_MUTANT_guard_not_counted
    size += PAGE_SIZE;
#endif
  }
  const u64 id = next_vm_id_;
  const u64 r = alloc_vmap_area(size, align, start, end, node, gfp, 0, id);
  if (IS_ERR_VALUE(r))
    return nullptr;
  ++next_vm_id_;
  auto vm = std::make_unique<VmStruct>();
  vm->id = id;
  vm->addr = r;
  vm->size = size;
  vm->flags = backend_ == Backend::Legacy ? (flags & ~VM_NO_GUARD) : flags;
  vm->has_guard = backend_ == Backend::Legacy || !(flags & VM_NO_GUARD);
  vm->caller = caller;
  VmStruct *raw = vm.get();
  vms_[id] = std::move(vm);
  busy_.find(r)->second.vm = raw;
  return raw;
}

VmStruct *Vmalloc::get_vm_area(u64 size, VmFlags flags) {
  return get_vm_area_caller(size, flags, "get_vm_area");
}

VmStruct *Vmalloc::get_vm_area_caller(u64 size, VmFlags flags, const std::string &caller) {
  return __get_vm_area_node(size, 1, flags, m_.vmalloc_start(), m_.vmalloc_end(), NUMA_NO_NODE,
                            GFP_KERNEL, caller);
}

VmStruct *Vmalloc::__get_vm_area(u64 size, VmFlags flags, u64 start, u64 end) {
  return __get_vm_area_caller(size, flags, start, end, "__get_vm_area");
}

VmStruct *Vmalloc::__get_vm_area_caller(u64 size, VmFlags flags, u64 start, u64 end,
                                        const std::string &caller) {
  return __get_vm_area_node(size, 1, flags, start, end, NUMA_NO_NODE, GFP_KERNEL, caller);
}

VmStruct *Vmalloc::find_vm_area(u64 addr) {
  ensure_initialized();
  const VmapArea *va = find_vmap_area(addr);
  if (va == nullptr || va->vm_id == 0)
    return nullptr;
  return vm_by_id(va->vm_id);
}

std::unique_ptr<VmStruct> Vmalloc::remove_vm_area(u64 addr) {
  ensure_initialized();
  const VmapArea *va = find_vmap_area(addr);
  if (va == nullptr || va->vm_id == 0)
    return nullptr;
  auto node = vms_.extract(va->vm_id);
  std::unique_ptr<VmStruct> vm = std::move(node.mapped());
  if (backend_ == Backend::Legacy) {
    // Seed 003: unmap_vm_area() flushes, and the size handed back has no guard.
    vunmap_page_range(vm->addr, vm->addr + vm->size);
    free_vmap_area_noflush(vm->addr);
    if (vm->has_guard)
      vm->size -= PAGE_SIZE;
  } else {
    free_unmap_vmap_area(va->va_start);
  }
  return vm;
}

VmStruct *Vmalloc::alloc_vm_area(u64 size) {
  VmStruct *area = get_vm_area_caller(size, VM_IOREMAP, "alloc_vm_area");
  if (area == nullptr)
    return nullptr;
  PageTables &pt = m_.pt();
  const u64 end = area->addr + page_align(size);
  if (!pt.ensure_pte_slots(pt.kernel_root(), area->addr, end, area->ptes)) {
    free_vm_area(area);
    return nullptr;
  }
  return area;
}

void Vmalloc::free_vm_area(VmStruct *area) {
  const u64 id = area->id;
  std::unique_ptr<VmStruct> ret = remove_vm_area(area->addr);
  if (!ret || ret->id != id)
    throw KernelBug("free_vm_area", "remove_vm_area did not return this area");
}

// ---- vmalloc family --------------------------------------------------------------------------

u64 Vmalloc::__vmalloc_area_node(VmStruct *area, Gfp gfp, pgprot_t prot, int node) {
  const unsigned nr_pages = static_cast<unsigned>(get_vm_area_size(*area) >> PAGE_SHIFT);
  const u64 array_size = u64{nr_pages} * sizeof(u64);
  const Gfp nested_gfp = (gfp & GFP_RECLAIM_MASK) | __GFP_ZERO;
  const Gfp highmem = (gfp & (___GFP_DMA | __GFP_DMA32)) ? 0 : __GFP_HIGHMEM;
#ifdef VMCHECK_MUTANT_vzalloc_no_zero
  const Gfp alloc_mask = (gfp & ~__GFP_ZERO) | __GFP_NOWARN | highmem; // mutant
#else
  const Gfp alloc_mask = gfp | __GFP_NOWARN | highmem;
#endif
  const u64 addr = area->addr;
  const u64 id = area->id;

  bool have_array;
  if (array_size > PAGE_SIZE) {
    // The bounded recursion of seed 003: a big pages[] array is vmalloc'ed
    // right after the area itself is reserved.
    const u64 arr =
        __vmalloc_node(array_size, 1, nested_gfp | __GFP_HIGHMEM, PAGE_KERNEL, node, area->caller);
    area = vm_by_id(id);
    have_array = arr != 0;
    if (have_array) {
      area->flags |= VM_VPAGES;
      area->pages_array = arr;
    }
  } else {
    have_array = m_.kmalloc_ok();
  }
  if (!have_array) {
    remove_vm_area(addr);
    return 0;
  }

  area->pages.reserve(nr_pages);
  // Page by page, as the kernel's loop (alloc_pages, or alloc_pages_node
  // when a node is given), stopping at the first failure.
  const unsigned got =
      m_.alloc_pages_bulk(node, alloc_mask, PageOwner::Vmalloc, nr_pages, area->pages);
  if (got < nr_pages) {
    if (!(gfp & __GFP_NOWARN))
      m_.diag().warn("__vmalloc_area_node", "vmalloc: allocation failure, allocated " +
                                                std::to_string(u64{got} * PAGE_SIZE) + " of " +
                                                std::to_string(area->size) + " bytes");
#ifdef VMCHECK_MUTANT_page_leak_on_failure
    area->nr_pages = 0; // mutant: the pages taken so far are never freed
#else
    area->nr_pages = got;
#endif
    vfree(addr); // 4.19's fail label: deferred when in interrupt context
    return 0;
  }
  area->nr_pages = nr_pages;
  if (vmap_page_range(addr, addr + get_vm_area_size(*area), prot, area->pages, "vmap_pte_range") <
      0) {
    if (!(gfp & __GFP_NOWARN))
      m_.diag().warn("__vmalloc_area_node", "vmalloc: allocation failure, allocated " +
                                                std::to_string(u64{nr_pages} * PAGE_SIZE) + " of " +
                                                std::to_string(area->size) + " bytes");
    vfree(addr);
    return 0;
  }
  return addr;
}

u64 Vmalloc::__vmalloc_node_range(u64 size, u64 align, u64 start, u64 end, Gfp gfp, pgprot_t prot,
                                  VmFlags vm_flags, int node, const std::string &caller) {
  ensure_initialized();
  if (gfp & ~GFP_KNOWN_MASK) {
    m_.diag().warn(caller, "unknown gfp flags " + hex(gfp));
    return 0;
  }
  if (node != NUMA_NO_NODE && (node < 0 || static_cast<unsigned>(node) >= m_.mem().nr_nodes())) {
    m_.diag().warn(caller, "node " + std::to_string(node) + " does not exist");
    return 0;
  }
  if (!is_power_of_2(align)) {
    m_.diag().warn(caller, "alignment " + hex(align) + " is not a power of two");
    return 0;
  }
  const u64 real_size = size;
  size = page_align_wrapping(size);
  if (size == 0 || (size >> PAGE_SHIFT) > m_.pages().totalram_pages()) {
    if (!(gfp & __GFP_NOWARN))
      m_.diag().warn(caller,
                     "vmalloc: allocation failure: " + std::to_string(real_size) + " bytes");
    return 0;
  }
  VmStruct *area = __get_vm_area_node(size, align, VM_ALLOC | VM_UNINITIALIZED | vm_flags, start,
                                      end, node, gfp, caller);
  if (area == nullptr) {
    if (!(gfp & __GFP_NOWARN))
      m_.diag().warn(caller,
                     "vmalloc: allocation failure: " + std::to_string(real_size) + " bytes");
    return 0;
  }
  const u64 id = area->id;
  const u64 addr = __vmalloc_area_node(area, gfp, prot, node);
  if (addr == 0)
    return 0;
  vm_by_id(id)->flags &= ~VM_UNINITIALIZED;
  return addr;
}

u64 Vmalloc::__vmalloc_node(u64 size, u64 align, Gfp gfp, pgprot_t prot, int node,
                            const std::string &caller) {
  return __vmalloc_node_range(size, align, m_.vmalloc_start(), m_.vmalloc_end(), gfp, prot, 0, node,
                              caller);
}

u64 Vmalloc::__vmalloc(u64 size, Gfp gfp, pgprot_t prot) {
  return __vmalloc_node(size, 1, gfp, prot, NUMA_NO_NODE, "__vmalloc");
}

u64 Vmalloc::vmalloc(u64 size) {
  return __vmalloc_node(size, 1, GFP_KERNEL, PAGE_KERNEL, NUMA_NO_NODE, "vmalloc");
}

u64 Vmalloc::vzalloc(u64 size) {
  return __vmalloc_node(size, 1, GFP_KERNEL | __GFP_ZERO, PAGE_KERNEL, NUMA_NO_NODE, "vzalloc");
}

u64 Vmalloc::vmalloc_user(u64 size) {
  // SHMLBA is one page on x86.
  return __vmalloc_node_range(size, PAGE_SIZE, m_.vmalloc_start(), m_.vmalloc_end(),
                              GFP_KERNEL | __GFP_ZERO, PAGE_KERNEL, VM_USERMAP, NUMA_NO_NODE,
                              "vmalloc_user");
}

u64 Vmalloc::vmalloc_node(u64 size, int node) {
  return __vmalloc_node(size, 1, GFP_KERNEL, PAGE_KERNEL, node, "vmalloc_node");
}

u64 Vmalloc::vzalloc_node(u64 size, int node) {
  return __vmalloc_node(size, 1, GFP_KERNEL | __GFP_ZERO, PAGE_KERNEL, node, "vzalloc_node");
}

u64 Vmalloc::vmalloc_exec(u64 size) {
  return __vmalloc_node(size, 1, GFP_KERNEL, PAGE_KERNEL_EXEC, NUMA_NO_NODE, "vmalloc_exec");
}

u64 Vmalloc::vmalloc_32(u64 size) {
  return __vmalloc_node(size, 1, GFP_VMALLOC32, PAGE_KERNEL, NUMA_NO_NODE, "vmalloc_32");
}

u64 Vmalloc::vmalloc_32_user(u64 size) {
  return __vmalloc_node_range(size, PAGE_SIZE, m_.vmalloc_start(), m_.vmalloc_end(),
                              GFP_VMALLOC32 | __GFP_ZERO, PAGE_KERNEL, VM_USERMAP, NUMA_NO_NODE,
                              "vmalloc_32_user");
}

// ---- freeing ----------------------------------------------------------------------------

void Vmalloc::free_vm_pages(VmStruct &vm) {
  for (unsigned i = 0; i < vm.nr_pages; ++i)
    m_.pages().free_pages(vm.pages[i], 0);
  vm.pages.clear();
  vm.nr_pages = 0;
  if (vm.flags & VM_VPAGES)
    __vunmap(vm.pages_array, true, "vfree");
}

void Vmalloc::__vunmap(u64 addr, bool deallocate_pages, const char *fn) {
  if (!page_aligned(addr)) {
    m_.diag().warn(fn, "Trying to vfree() bad address (" + hex(addr) + ")", addr);
    return;
  }
  const VmapArea *va = find_vmap_area(addr);
  if (va == nullptr || va->vm_id == 0) {
#ifndef VMCHECK_MUTANT_double_vfree_accepted
    m_.diag().warn(fn, "Trying to vfree() nonexistent vm area (" + hex(addr) + ")", addr);
#endif
    return;
  }
  if (va->va_start != addr)
    m_.diag().warn(fn,
                   "address " + hex(addr) + " is inside the area at " + hex(va->va_start) +
                       ", not its start; the whole area is freed",
                   addr);
  std::unique_ptr<VmStruct> vm = remove_vm_area(addr);
  if (deallocate_pages)
    free_vm_pages(*vm);
}

void Vmalloc::run_deferred_vfree(unsigned cpu) {
  std::vector<u64> list;
  list.swap(vfree_deferred_[cpu]);
  // llist_del_all hands the entries back newest first.
  for (auto it = list.rbegin(); it != list.rend(); ++it)
    __vunmap(*it, true, "vfree");
}

void Vmalloc::vfree_atomic(u64 addr) {
  ensure_initialized();
  if (addr == 0)
    return;
  if (!page_aligned(addr)) {
    m_.diag().warn("vfree_atomic", "Trying to vfree() bad address (" + hex(addr) + ")", addr);
    return;
  }
  const VmapArea *va = find_vmap_area(addr);
  if (va == nullptr || va->vm_id == 0) {
    m_.diag().warn("vfree_atomic", "Trying to vfree() nonexistent vm area (" + hex(addr) + ")",
                   addr);
    return;
  }
  const unsigned cpu = m_.current_cpu();
  const bool was_empty = vfree_deferred_[cpu].empty();
#ifdef VMCHECK_MUTANT_lost_deferred_free
  if (was_empty) // mutant: a second deferred free on the same CPU is lost
#endif
    vfree_deferred_[cpu].push_back(addr);
  if (was_empty)
    m_.deferred().queue("vfree_deferred", cpu, [this, cpu] { run_deferred_vfree(cpu); });
}

void Vmalloc::vfree(u64 addr) {
  ensure_initialized();
  if (m_.in_interrupt()) {
    if (backend_ == Backend::Legacy)
      throw KernelBug("vfree", "called in interrupt context");
    vfree_atomic(addr);
    return;
  }
  if (addr == 0)
    return;
  __vunmap(addr, true, "vfree");
}

void Vmalloc::vunmap(u64 addr) {
  ensure_initialized();
  if (m_.in_interrupt())
    throw KernelBug("vunmap", "called in interrupt context");
  if (addr == 0)
    return;
  __vunmap(addr, false, "vunmap");
}

// ---- mapping caller pages ----------------------------------------------------------------------

u64 Vmalloc::vmap(std::span<const Pfn> pages, unsigned count, VmFlags flags, pgprot_t prot) {
  ensure_initialized();
  if (count > m_.pages().totalram_pages())
    return 0;
  if (pages.size() < count) {
    m_.diag().warn("vmap", "page array holds " + std::to_string(pages.size()) +
                               " pages, fewer than count " + std::to_string(count));
    return 0;
  }
  for (unsigned i = 0; i < count; ++i) {
    if (!m_.mem().pfn_valid(pages[i]) || m_.mem().peek(pages[i]).refcount == 0) {
      m_.diag().warn("vmap", "page " + std::to_string(i) + " (pfn " + hex(pages[i]) +
                                 ") is not an allocated page");
      return 0;
    }
  }
  VmStruct *area = get_vm_area_caller(u64{count} << PAGE_SHIFT, flags, "vmap");
  if (area == nullptr)
    return 0;
  const u64 addr = area->addr;
  if (vmap_page_range(addr, addr + get_vm_area_size(*area), prot, pages.first(count),
                      "vmap_pte_range") < 0) {
    vunmap(addr); // as 4.19: a BUG when vmap is called in interrupt context
    return 0;
  }
  return addr;
}

// The raw page-table calls must stay inside one live area (their kerneldoc:
// "should have been allocated using get_vm_area() and its friends"); a range
// that is not is refused with a WARN, so a trace cannot corrupt another
// area's mappings or map a guard page through them.
const VmapArea *Vmalloc::area_around(u64 addr, u64 end) const {
  auto it = busy_.upper_bound(addr);
  if (it == busy_.begin())
    return nullptr;
  --it;
  return end <= it->second.va_end ? &it->second : nullptr;
}

long Vmalloc::map_kernel_range_noflush(u64 addr, u64 size, pgprot_t prot,
                                       std::span<const Pfn> pages) {
  ensure_initialized();
  const char *fn = "map_kernel_range_noflush";
  const u64 len = page_align_wrapping(size);
  if (len == 0)
    throw KernelBug(fn, "empty range at " + hex(addr));
  const VmapArea *va =
      page_aligned(addr) && addr + len > addr ? area_around(addr, addr + len) : nullptr;
  const VmStruct *vm = va && va->vm_id ? vms_.at(va->vm_id).get() : nullptr;
  if (vm == nullptr || addr + len > vm->addr + (vm->has_guard ? vm->size - PAGE_SIZE : vm->size)) {
    m_.diag().warn(fn, "range " + hex(addr) + "+" + hex(size) +
                           " is not page aligned inside one vm area (guard page excluded)");
    return -EINVAL;
  }
  return vmap_page_range(addr, addr + len, prot, pages, fn);
}

// Validates an unmap range; WARNs and returns false when it is not a
// page-aligned part of one live area.
bool Vmalloc::unmap_range_ok(const char *fn, u64 addr, u64 size) {
  ensure_initialized();
  const u64 len = page_align_wrapping(size);
  if (len == 0)
    throw KernelBug(fn, "empty range at " + hex(addr));
  if (!page_aligned(addr) || addr + len < addr || area_around(addr, addr + len) == nullptr) {
    m_.diag().warn(fn, "range " + hex(addr) + "+" + hex(size) +
                           " is not page aligned inside one live area");
    return false;
  }
  return true;
}

void Vmalloc::unmap_kernel_range_noflush(u64 addr, u64 size) {
  if (unmap_range_ok("unmap_kernel_range_noflush", addr, size))
    vunmap_page_range(addr, addr + page_align(size));
}

void Vmalloc::unmap_kernel_range(u64 addr, u64 size) {
  if (!unmap_range_ok("unmap_kernel_range", addr, size))
    return;
  vunmap_page_range(addr, addr + page_align(size));
  m_.mmu().flush_tlb_kernel_range(addr, addr + page_align(size));
}

// ---- invariants and hashing
// ----------------------------------------------------------------------

std::string Vmalloc::check() const {
  const u64 lo = m_.vmalloc_start();
  const u64 hi = m_.vmalloc_end() + 1;
  // Busy and lazy areas: inside the range, disjoint.
  for (const auto *set : {&busy_, &lazy_})
    for (const auto &[s, va] : *set)
      if (va.va_start < lo || va.va_end > hi || va.va_start >= va.va_end)
        return "area " + hex(va.va_start) + "-" + hex(va.va_end) + " outside the vmalloc range";
  // Both sets as one list by start, merged from the two ordered maps (no
  // node allocation per area); a start in both is listed once, as its lazy
  // area.
  std::vector<std::pair<u64, const VmapArea *>> reserved;
  reserved.reserve(busy_.size() + lazy_.size());
  for (auto b = busy_.begin(), l = lazy_.begin(); b != busy_.end() || l != lazy_.end();) {
    if (l == lazy_.end() || (b != busy_.end() && b->first < l->first)) {
      reserved.emplace_back(b->first, &b->second);
      ++b;
    } else {
      if (b != busy_.end() && b->first == l->first)
        ++b;
      reserved.emplace_back(l->first, &l->second);
      ++l;
    }
  }
  u64 prev_end = lo;
  bool first = true;
  for (const auto &[s, va] : reserved) {
    if (!first && s < prev_end)
      return "areas overlap at " + hex(s);
    prev_end = va->va_end;
    first = false;
  }
  if (auto e = check_vmap_blocks(); !e.empty())
    return e;
  // Free + busy + lazy tile the range exactly (modern).
  if (backend_ == Backend::Modern) {
    if (auto e = free_.check(); !e.empty())
      return "free space: " + e;
    // Both lists are sorted by start (free_.check() proved the free one),
    // so merging them sorts the pieces.
    std::vector<std::pair<u64, u64>> free_pieces, reserved_pieces, pieces;
    free_pieces.reserve(free_.size());
    free_.for_each([&](const Range &r) { free_pieces.push_back({r.start, r.end}); });
    reserved_pieces.reserve(reserved.size());
    for (const auto &[s, va] : reserved)
      reserved_pieces.push_back({va->va_start, va->va_end});
    pieces.resize(free_pieces.size() + reserved_pieces.size());
    std::merge(free_pieces.begin(), free_pieces.end(), reserved_pieces.begin(),
               reserved_pieces.end(), pieces.begin());
    u64 cur = lo;
    for (const auto &[s, e] : pieces) {
      if (s != cur)
        return (s < cur ? "free space overlaps a reserved area at " : "VA leaked: gap at ") +
               hex(std::min(s, cur));
      cur = e;
    }
    if (cur != hi)
      return "VA leaked: gap at " + hex(cur);
    u64 lazy_pages = 0;
    for (const auto &[s, va] : lazy_)
      lazy_pages += va.size() >> PAGE_SHIFT;
    if (lazy_pages != lazy_nr_)
      return "vmap_lazy_nr " + std::to_string(lazy_nr_) + " != " + std::to_string(lazy_pages) +
             " lazily freed pages";
    for (u64 s : purging_)
      if (lazy_.count(s) == 0)
        return "area " + hex(s) + " is being purged but is not lazily freed";
    if (!purging_.empty() && shootdown_pending_.empty())
      return "purged areas wait for a shootdown no CPU has pending";
    for (unsigned c : shootdown_pending_)
      if (c >= m_.config().cpus || c == shootdown_initiator_)
        return "shootdown pending on cpu " + std::to_string(c);
  } else {
    std::vector<std::pair<u64, u64>> listed;
    vmlist_.for_each([&](const VmListArea &a) { listed.push_back({a.addr, a.addr + a.size}); });
    if (listed.size() != busy_.size())
      return "vmlist and busy areas disagree";
    std::size_t i = 0;
    for (const auto &[s, va] : busy_) {
      if (listed[i].first != va.va_start || listed[i].second != va.va_end)
        return "vmlist entry " + hex(listed[i].first) + " does not match busy area " + hex(s);
      ++i;
    }
  }
  const PageTables &pt = m_.pt();
  // vm_structs match their areas; guard pages unmapped; vmalloc pages mapped.
  for (const auto &[s, va] : busy_) {
    if (va.vm_id == 0) {
      if (va.vm != nullptr)
        return "busy area " + hex(s) + " points to a vm_struct but names none";
      continue;
    }
    auto it = vms_.find(va.vm_id);
    if (it == vms_.end())
      return "busy area " + hex(s) + " has no vm_struct";
    if (va.vm != it->second.get())
      return "busy area " + hex(s) + " points to another vm_struct than the one it names";
    const VmStruct &vm = *it->second;
    if (vm.addr != va.va_start || vm.size != va.size())
      return "vm_struct " + hex(vm.addr) + " does not match its area";
    if (vm.has_guard && pt.walk(pt.kernel_root(), va.va_end - PAGE_SIZE).present())
      return "guard page of " + hex(s) + " is mapped";
    if ((vm.flags & VM_ALLOC) && !(vm.flags & VM_UNINITIALIZED)) {
      // Page i must be mapped at vm.addr + i pages (only leaves inside the
      // vmalloc range count) and be a vmalloc page the area owns; the first
      // page failing either is reported, the mapping first.
      const std::size_t in_range = std::min<u64>(vm.pages.size(), (hi - vm.addr) >> PAGE_SHIFT);
      const std::size_t pages = std::min<std::size_t>(vm.nr_pages, in_range);
      const std::size_t mapped =
          pt.mapped_prefix(pt.kernel_root(), vm.addr, std::span(vm.pages.data(), pages));
      const std::size_t owned =
          m_.mem().first_record(std::span(vm.pages.data(), mapped), [](const Page &pg) {
            return pg.refcount == 0 || pg.owner != PageOwner::Vmalloc;
          });
      if (owned < mapped)
        return "vmalloc page " + std::to_string(owned) + " of " + hex(vm.addr) +
               " is not owned by the area";
      if (mapped < vm.nr_pages)
        return "vmalloc page " + std::to_string(mapped) + " of " + hex(vm.addr) + " is not mapped";
    }
  }
  if (vms_.size() != static_cast<std::size_t>(std::count_if(
                         busy_.begin(), busy_.end(), [](const auto &p) { return p.second.vm_id; })))
    return "vm_struct without a busy area";
  // No PTE outside a live area: none starts in a stretch of the range that
  // no busy area covers (busy areas may only overlap if the checks above
  // missed it, so the covered end is the furthest end so far).
  u64 covered = lo;
  for (auto live = busy_.begin();; ++live) {
    const u64 gap_end = live == busy_.end() ? hi : live->second.va_start;
    if (gap_end > covered)
      if (const std::optional<u64> leaf = pt.first_leaf_from(pt.kernel_root(), covered, gap_end))
        return "PTE at " + hex(*leaf) + " outside every live area";
    if (live == busy_.end())
      break;
    covered = std::max(covered, live->second.va_end);
  }
  // No TLB alias, and no stale translation into VA that is free again.
  for (const auto &[cpu, e] : m_.mmu().alias_entries())
    return "cpu " + std::to_string(cpu) + " TLB aliases " + hex(e.vpn << PAGE_SHIFT);
  for (const auto &[cpu, e] : m_.mmu().stale_entries()) {
    const u64 va = e.vpn << PAGE_SHIFT;
    if (va < lo || va >= hi)
      continue;
    auto in = [&](const std::map<u64, VmapArea> &set) {
      auto it = set.upper_bound(va);
      return it != set.begin() && va < std::prev(it)->second.va_end;
    };
    if (!in(busy_) && !in(lazy_))
      return "cpu " + std::to_string(cpu) + " holds a stale TLB entry for free VA " + hex(va);
  }
  return {};
}

void Vmalloc::hash_into(StateHasher &h) const {
  h.tag(0x7a11);
  h.add(static_cast<u64>(backend_));
  h.add(initialized_);
  h.add(next_vm_id_);
  h.add(lazy_nr_);
  h.add(early_bump_);
  // shootdown=async only: sync runs keep the hash they always had.
  if (!shootdown_pending_.empty()) {
    h.tag(0x5d);
    h.add(shootdown_start_);
    h.add(shootdown_end_);
    h.add(shootdown_initiator_);
    for (unsigned c : shootdown_pending_)
      h.add(c);
    h.tag(purging_.size());
    for (u64 s : purging_)
      h.add(s);
  }
  for (const auto *set : {&busy_, &lazy_}) {
    h.tag(set->size());
    for (const auto &[s, va] : *set) {
      h.add(va.va_start);
      h.add(va.va_end);
      h.add(va.vm_id);
      h.add(va.flags);
    }
  }
  h.tag(vms_.size());
  for (const auto &[id, vm] : vms_) {
    h.add(id);
    h.add(vm->addr);
    h.add(vm->size);
    h.add(vm->flags);
    h.add(vm->nr_pages);
    for (Pfn p : vm->pages)
      h.add(p);
    h.add(vm->phys_addr);
    h.add(vm->caller);
    h.add(vm->pages_array);
    h.add(vm->ptes.size());
    h.add(vm->has_guard);
  }
  h.tag(early_.size());
  for (const auto &[a, s] : early_) {
    h.add(a);
    h.add(s);
  }
  h.tag(blocks_.size());
  for (const auto &[s, b] : blocks_) {
    h.add(s);
    h.add(b.cpu);
    h.add(b.free);
    h.add(b.dirty);
    h.add(b.dirty_min);
    h.add(b.dirty_max);
    for (const auto &[off, order] : b.live) {
      h.add(off);
      h.add(order);
    }
  }
  for (const auto &q : vbq_free_) {
    h.tag(q.size());
    for (u64 b : q)
      h.add(b);
  }
  for (const auto &q : vfree_deferred_) {
    h.tag(q.size());
    for (u64 a : q)
      h.add(a);
  }
  if (backend_ == Backend::Modern)
    free_.hash_into(h);
  else
    vmlist_.hash_into(h);
}

} // namespace vmcheck
