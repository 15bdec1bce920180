// The vmalloc subsystem (mm/vmalloc.c, 4.19-5.x era) over the emulated
// machine, with two allocation backends:
//  - Modern: free space in an augmented balanced tree (FreeSpace), busy areas
//    keyed by address and found by containment, lazy freeing with a
//    threshold, vmap_blocks for small vm_map_ram.
//  - Legacy (seed 003, 2.6 era): the sorted `vmlist`, first fit, one guard
//    page always, exact-start lookups, no lazy freeing.
// The public functions carry the kernel's names and contracts (seeds
// 000/001/003). Addresses are emulated kernel virtual addresses (u64); NULL
// is 0. The implementation is split by concern:
//   vmalloc.cpp      KVA allocation, lazy purge, get_vm_area/vmalloc/vfree family
//   vmap_block.cpp   vm_map_ram / vm_unmap_ram / vmap_block / vm_unmap_aliases
//   pcpu_areas.cpp   pvm_find_next_prev / pvm_determine_end / pcpu_get_vm_areas
//   vread.cpp        vread / vwrite
//   vmallocinfo.cpp  /proc/vmallocinfo
#pragma once

#include "machine/machine.h"
#include "vmalloc/free_space.h"
#include "vmalloc/vmlist.h"

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

namespace vmcheck {

// vmap_area.flags bits for vm_map_ram areas (no vm_struct).
inline constexpr std::uint32_t VMAP_RAM = 0x1;
inline constexpr std::uint32_t VMAP_BLOCK = 0x2;
inline constexpr u64 VMAP_BLOCK_SIZE = u64{VMAP_BBMAP_BITS} * PAGE_SIZE;

// struct vm_struct. `size` includes the guard page unless VM_NO_GUARD.
struct VmStruct {
  u64 id = 0; // serial number, never reused: handles in traces refer to it
  u64 addr = 0;
  u64 size = 0;
  VmFlags flags = 0;
  std::vector<Pfn> pages; // backing pages of a vmalloc area (vmap records none, as 4.19)
  unsigned nr_pages = 0;
  u64 phys_addr = 0;
  std::string caller;  // the API function that created it (printed as %pS)
  u64 pages_array = 0; // VM_VPAGES: address of the vmalloc'ed pages[] array
  PteSlots ptes;       // alloc_vm_area: the PTE slots of its pages
  // Whether the area's last page is a guard page. Not a flag: pcpu areas
  // carry plain VM_ALLOC (as 4.19 sets them) yet have no guard, and early
  // areas have whatever size their registrant gave.
  bool has_guard = true;
};

// get_vm_area_size(): usable size, without the guard page.
inline u64 get_vm_area_size(const VmStruct &vm) {
  return (vm.flags & VM_NO_GUARD) ? vm.size : vm.size - PAGE_SIZE;
}

// struct vmap_area: [va_start, va_end) reserved VA. `vm_id` is the vm_struct
// it belongs to (0: none, i.e. vm_map_ram areas and vmap blocks).
struct VmapArea {
  u64 va_start = 0;
  u64 va_end = 0;
  u64 vm_id = 0;
  std::uint32_t flags = 0; // VMAP_RAM | VMAP_BLOCK
  // A busy area's vm_struct (va->vm in the kernel): the one vm_id names,
  // reached without a lookup; nullptr when vm_id is 0. vm_structs() owns it
  // and it never moves, and an area loses its vm_struct only as it leaves
  // the busy areas. Not part of the state (vm_id is).
  const VmStruct *vm = nullptr;
  u64 size() const { return va_end - va_start; }
};

// struct vmap_block: a VMAP_BLOCK_SIZE area carved by a bump pointer into
// power-of-two sub-allocations. Invariant: free + dirty + (pages in live
// sub-allocations) == VMAP_BBMAP_BITS; dirty_min/max bound the not yet
// flushed dirty pages (empty: min == VMAP_BBMAP_BITS, max == 0).
struct VmapBlock {
  u64 va_start = 0;
  unsigned cpu = 0;
  unsigned free = 0;
  unsigned dirty = 0;
  unsigned dirty_min = VMAP_BBMAP_BITS;
  unsigned dirty_max = 0;
  std::map<unsigned, unsigned> live; // page offset -> order of each live sub-allocation
};

class Vmalloc {
public:
  explicit Vmalloc(Machine &m);
  Vmalloc(const Vmalloc &) = delete;
  Vmalloc &operator=(const Vmalloc &) = delete;
  ~Vmalloc();

  Backend backend() const { return backend_; }
  Machine &machine() { return m_; }

  // ---- boot ------------------------------------------------------------------
  // vm_area_add_early: a fixed area [vm.addr, vm.addr + vm.size) added to the
  // early vmlist. KernelBug after vmalloc_init or on overlap.
  void vm_area_add_early(u64 addr, u64 size, VmFlags flags);
  // vm_area_register_early: first fit from ALIGN(VMALLOC_START, align);
  // returns the address. KernelBug after vmalloc_init or when it does not fit.
  u64 vm_area_register_early(u64 size, VmFlags flags, u64 align);
  // vmalloc_init: imports the early areas and ends the boot phase. Every
  // other entry point calls it first if boot is still going on.
  void vmalloc_init();
  bool initialized() const { return initialized_; }

  // ---- KVA reservations ----------------------------------------------------------
  // __get_vm_area_node family: NULL (nullptr) on failure.
  VmStruct *get_vm_area(u64 size, VmFlags flags);
  VmStruct *get_vm_area_caller(u64 size, VmFlags flags, const std::string &caller);
  VmStruct *__get_vm_area(u64 size, VmFlags flags, u64 start, u64 end);
  VmStruct *__get_vm_area_caller(u64 size, VmFlags flags, u64 start, u64 end,
                                 const std::string &caller);
  // find_vm_area: the vm_struct whose area contains addr (modern) or starts
  // at addr (legacy); nullptr if none (vm_map_ram areas have none).
  VmStruct *find_vm_area(u64 addr);
  // remove_vm_area: unmaps and unlinks the area (VA freed lazily in modern);
  // returns the detached vm_struct, now owned by the caller, or nullptr.
  std::unique_ptr<VmStruct> remove_vm_area(u64 addr);
  // alloc_vm_area: reserve + build page tables, no mappings; ptes filled.
  VmStruct *alloc_vm_area(u64 size);
  // free_vm_area: remove_vm_area(area->addr) must give back this very area
  // (KernelBug otherwise), then frees it.
  void free_vm_area(VmStruct *area);

  // ---- allocation -------------------------------------------------------------------
  // __vmalloc_node_range: address or 0.
  u64 __vmalloc_node_range(u64 size, u64 align, u64 start, u64 end, Gfp gfp, pgprot_t prot,
                           VmFlags vm_flags, int node, const std::string &caller);
  u64 __vmalloc_node(u64 size, u64 align, Gfp gfp, pgprot_t prot, int node,
                     const std::string &caller);
  u64 __vmalloc(u64 size, Gfp gfp, pgprot_t prot);
  u64 vmalloc(u64 size);
  u64 vzalloc(u64 size);
  u64 vmalloc_user(u64 size);
  u64 vmalloc_node(u64 size, int node);
  u64 vzalloc_node(u64 size, int node);
  u64 vmalloc_exec(u64 size);
  u64 vmalloc_32(u64 size);
  u64 vmalloc_32_user(u64 size);

  // ---- freeing ------------------------------------------------------------------------
  void vfree(u64 addr);
  void vfree_atomic(u64 addr);
  void vunmap(u64 addr);

  // ---- mapping given pages --------------------------------------------------------------
  // vmap: address or 0. Pages stay the caller's.
  u64 vmap(std::span<const Pfn> pages, unsigned count, VmFlags flags, pgprot_t prot);
  // map_kernel_range_noflush: number of pages mapped, or -ENOMEM. No flush.
  long map_kernel_range_noflush(u64 addr, u64 size, pgprot_t prot, std::span<const Pfn> pages);
  void unmap_kernel_range_noflush(u64 addr, u64 size);
  void unmap_kernel_range(u64 addr, u64 size);

  // ---- vm_map_ram and vmap blocks (vmap_block.cpp) -------------------------------------------
  u64 vm_map_ram(std::span<const Pfn> pages, unsigned count, int node, pgprot_t prot);
  void vm_unmap_ram(u64 mem, unsigned count);
  // new_vmap_block: address of the first 2^order pages of a new block, or
  // ERR_PTR(-errno) (test with IS_ERR_VALUE).
  u64 new_vmap_block(unsigned order, Gfp gfp);
  void vm_unmap_aliases();

  // ---- percpu areas (pcpu_areas.cpp) ------------------------------------------------------------
  struct PvmResult {
    bool found = false;
    std::optional<VmapArea> next, prev;
  };
  PvmResult pvm_find_next_prev(u64 end) const;
  // Returns the determined end; next/prev adjusted in place.
  u64 pvm_determine_end(std::optional<VmapArea> &next, std::optional<VmapArea> &prev,
                        u64 align) const;
  // pcpu_get_vm_areas: the areas (index order) or empty on failure.
  std::vector<VmStruct *> pcpu_get_vm_areas(std::span<const u64> offsets,
                                            std::span<const u64> sizes, u64 align);
  void pcpu_free_vm_areas(std::span<VmStruct *const> vms);

  // ---- access (vread.cpp)
  // ------------------------------------------------------------------------ vread: fills buf
  // (buf.size() == count) and returns the count the seed documents; vwrite likewise from buf.
  long vread(std::span<std::uint8_t> buf, u64 addr);
  long vwrite(std::span<const std::uint8_t> buf, u64 addr);

  // ---- lookup
  // -------------------------------------------------------------------------------------
  std::optional<Pfn> vmalloc_to_page(u64 addr) const;
  std::optional<u64> vmalloc_to_pfn(u64 addr) const { return vmalloc_to_page(addr); }
  bool is_vmalloc_addr(u64 addr) const;

  // ---- lazy purge
  // -----------------------------------------------------------------------------------
  // purge_vmap_area_lazy: fragmented blocks + every lazily freed area, one
  // TLB flush for the union range.
  void purge_vmap_area_lazy();
  // The lazy purge worker (the purge() op): as purge_vmap_area_lazy, but
  // under shootdown=async its TLB flush may stay in flight.
  void purge_worker();
  u64 lazy_max_pages() const;

  // ---- shootdown=async: a lazy purge whose TLB flush is in flight
  // ----------------------------------------------
  // Invariant: in flight <=> some CPU has not flushed yet; the purged areas
  // stay in lazy_ (VA not reusable, pages counted) until the last delivery.
  bool shootdown_in_flight() const { return !shootdown_pending_.empty(); }
  // The CPU that started the purge: it waits, so it runs nothing else first.
  unsigned shootdown_initiator() const { return shootdown_initiator_; }
  const std::set<unsigned> &shootdown_pending() const { return shootdown_pending_; }
  const std::set<u64> &purging_areas() const { return purging_; } // lazy_ starts in flight
  // The flush reaches `cpu`; the last delivery releases the purged VA. False
  // when nothing was pending on cpu.
  bool deliver_shootdown(unsigned cpu);
  // Every CPU still pending flushes (whoever must wait for the purge).
  void complete_shootdown();
  u64 vmap_lazy_nr() const { return lazy_nr_; }

  // ---- /proc/vmallocinfo (vmallocinfo.cpp)
  // -------------------------------------------------------------
  std::string vmallocinfo() const;

  // ---- introspection for the harness, invariants and hashing
  // --------------------------------------------
  const std::map<u64, VmapArea> &busy_areas() const { return busy_; }
  const std::map<u64, VmapArea> &lazy_areas() const { return lazy_; }
  const std::map<u64, std::unique_ptr<VmStruct>> &vm_structs() const { return vms_; }
  const std::map<u64, VmapBlock> &vmap_blocks() const { return blocks_; }
  const FreeSpace &free_space() const { return free_; } // modern only: legacy places by vmlist
  VmStruct *vm_by_id(u64 id);
  // Is va inside the guard page of a live (busy) area?
  bool is_guard_page(u64 va) const;
  // Every DESIGN.md invariant this layer owns; first violation or empty.
  std::string check() const;
  void hash_into(StateHasher &h) const;

private:
  // KVA core (both backends). Returns the start or ERR_PTR(-errno).
  u64 alloc_vmap_area(u64 size, u64 align, u64 vstart, u64 vend, int node, Gfp gfp,
                      std::uint32_t va_flags, u64 vm_id);
  // Busy -> lazy (modern, with the threshold purge) or straight back to free
  // space after a TLB flush (legacy). PTEs must already be cleared.
  void free_vmap_area_noflush(u64 va_start);
  // Unmap the area's PTEs then free_vmap_area_noflush.
  void free_unmap_vmap_area(u64 va_start);
  // Drop a busy area with no lazy step (error unwinding).
  void free_vmap_area(u64 va_start);
  // Purges every lazy area with one flush of the union of their ranges and
  // [start, end); first waits for a purge in flight. `defer_flush`: under
  // shootdown=async only the current CPU flushes now, the rest later.
  bool purge_lazy_areas(u64 start, u64 end, bool force_flush, bool defer_flush = false);
  void release_purged_areas();
  // Fragmented vmap blocks, then every lazy area (purge_vmap_area_lazy and
  // purge_worker).
  void purge_everything(bool defer_flush);
  const VmapArea *find_vmap_area(u64 addr) const;
  VmStruct *__get_vm_area_node(u64 size, u64 align, VmFlags flags, u64 start, u64 end, int node,
                               Gfp gfp, const std::string &caller);
  u64 __vmalloc_area_node(VmStruct *area, Gfp gfp, pgprot_t prot, int node);
  void __vunmap(u64 addr, bool deallocate_pages, const char *fn);
  void free_vm_pages(VmStruct &vm);
  // Maps pages[i] at start + i pages; the count mapped or -errno.
  int vmap_page_range(u64 start, u64 end, pgprot_t prot, std::span<const Pfn> pages,
                      const char *fn);
  // The busy area that holds all of [addr, end), if any.
  const VmapArea *area_around(u64 addr, u64 end) const;
  bool unmap_range_ok(const char *fn, u64 addr, u64 size);
  void vunmap_page_range(u64 start, u64 end);
  void ensure_initialized();
  void run_deferred_vfree(unsigned cpu);
  // vmap_block helpers (vmap_block.cpp)
  u64 vb_alloc(u64 size, Gfp gfp); // address or ERR_PTR(-errno)
  void vb_free(u64 addr, u64 size);
  void free_vmap_block(u64 va_start);
  void purge_fragmented_blocks_allcpus();
  // The VmapBlock invariants and their agreement with busy_ and vbq_free_;
  // first violation or empty (for check()).
  std::string check_vmap_blocks() const;

  Machine &m_;
  Backend backend_;
  bool initialized_ = false;
  FreeSpace free_;               // modern: free KVA (busy and lazy areas are not in it)
  VmList vmlist_;                // legacy: the busy list that places areas
  std::map<u64, VmapArea> busy_; // by va_start
  std::map<u64, VmapArea> lazy_; // modern: freed, unmapped, VA not yet reusable
  std::map<u64, std::unique_ptr<VmStruct>> vms_; // live vm_structs by id
  u64 next_vm_id_ = 1;
  u64 lazy_nr_ = 0;       // pages (guard pages included) in lazy_
  std::set<u64> purging_; // lazy_ starts whose purge waits for shootdown_pending_
  u64 shootdown_start_ = 0, shootdown_end_ = 0; // the range in flight
  std::set<unsigned> shootdown_pending_;
  unsigned shootdown_initiator_ = 0;
  std::vector<std::pair<u64, u64>> early_; // boot: (addr, size) before vmalloc_init
  u64 early_bump_ = 0;                     // vm_area_register_early's offset from VMALLOC_START
  std::vector<VmFlags> early_flags_;
  std::map<u64, VmapBlock> blocks_;              // by va_start
  std::vector<std::vector<u64>> vbq_free_;       // per CPU: blocks with free space, list order
  std::vector<std::vector<u64>> vfree_deferred_; // per CPU: vfree_atomic's list
};

} // namespace vmcheck
