// User address spaces over the emulated machine and the mm/memory.c
// functions of seed 004 (4.19 era), plus remap_vmalloc_range of seed 000.
//
// Objects are named by ids (serial numbers, never reused): mm_structs,
// vm_area_structs and address_spaces. The functions take the kernel's
// arguments (a VmAreaStruct& where the kernel takes a vma) and return the
// kernel's results: errno ints, vm_fault_t codes.
//
// The model, in one place:
//  - Every user PTE either references a page (refcount and mapcount taken,
//    the rmap) or is a _PAGE_SPECIAL pfn mapping (remap_pfn_range,
//    vmf_insert_pfn, the shared zero page) that references nothing.
//  - Anonymous private memory reads the zero page until written; shared
//    anonymous memory is a zero-filled shmem object; file mappings go
//    through their address_space's page cache; private file pages are
//    copied on write.
//  - Zapping clears PTEs into an MmuGather, which flushes every CPU's TLB
//    for the range before it drops the page references.
//  - touch() is the user-mode access of the current CPU: the CPU runs the
//    mm's page tables for that one access (its CR3 is not changed: TLB
//    entries are tagged with the root, PCID-like, so the entries it fills
//    stay valid for later accesses of the same mm on that CPU).
//  - The machine has no MMIO: pfn mappings must name real memory frames.
#pragma once

#include "machine/machine.h"
#include "usermm/address_space.h"
#include "usermm/mm.h"
#include "usermm/mmu_gather.h"
#include "vmalloc/vmalloc.h"

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>

namespace vmcheck {

// struct vm_fault: what a fault handler sees and fills.
struct VmFault {
  u64 vma = 0;                 // id of the faulting VMA
  u64 address = 0;             // page aligned
  unsigned flags = 0;          // FAULT_FLAG_*
  u64 pgoff = 0;               // page index in the VMA's mapping
  u64 orig_pte = 0;            // the PTE value the fault was taken on
  std::optional<Pfn> page;     // the page to map (read and shared faults)
  std::optional<Pfn> cow_page; // the private copy (write faults on private mappings)
};

// struct zap_details: restricts a zap to the pages of one mapping (pages
// copied on write belong to no mapping and are kept) and a pgoff window.
struct ZapDetails {
  u64 check_mapping = 0; // 0: zap every page
  u64 first_index = 0;
  u64 last_index = ~u64{0};
};

// Result of a user-mode access through the MMU and the fault path.
struct UserAccess {
  vm_fault_t fault = 0;    // 0: done; otherwise VM_FAULT_SIGSEGV / SIGBUS / OOM
  Fault mmu = Fault::None; // the MMU's verdict on the last attempt
  u64 pa = 0;              // physical address reached, when ok()
  bool ok() const { return fault == 0 && mmu == Fault::None; }
};

class UserMm {
public:
  UserMm(Machine &m, Vmalloc &vmalloc);
  UserMm(const UserMm &) = delete;
  UserMm &operator=(const UserMm &) = delete;

  u64 user_top() const; // USER_TOP_L4 or USER_TOP_L5

  // ---- address spaces (mm.cpp) ----------------------------------------------------------
  // mm_alloc(): a new address space; its id, or 0 when the root page-table
  // page or the mm_struct cannot be allocated.
  u64 mm_create();
  // mmput() of the last reference: every VMA unmapped, tables and root
  // freed, every CPU's TLB flushed for it. -EINVAL for an unknown mm.
  int mmput(u64 mm);
  // A file of nr_pages pages (1 .. 2^32); its address_space id, or 0 with a
  // WARN for a bad size or -ENOMEM-like metadata failure.
  u64 file_create(u64 nr_pages);
  // mmap(MAP_FIXED semantics when addr != 0: whatever was mapped there is
  // unmapped first; addr == 0 picks the lowest free range from
  // MMAP_MIN_ADDR). flags within VM_USER_MMAP_FLAGS; any of
  // VM_IO|VM_PFNMAP|VM_MIXEDMAP makes it a driver mapping (no fault
  // handler). Returns the VMA id (a merge with a neighbour returns the
  // neighbour's) or -EINVAL / -ENOMEM.
  std::int64_t mmap(u64 mm, u64 addr, u64 len, u64 flags);
  // mmap of a file at page offset pgoff (no driver flags).
  std::int64_t mmap_file(u64 mm, u64 addr, u64 len, u64 flags, u64 file, u64 pgoff);
  // munmap(): 0, or -EINVAL for an unaligned address, empty or wrapping
  // range or one outside the user half; -ENOMEM when a split fails.
  int munmap(u64 mm, u64 addr, u64 len);
  // mprotect(): flags within VM_READ|VM_WRITE|VM_EXEC. 0, -EINVAL (bad
  // arguments), -ENOMEM (range not fully mapped, or a split fails).
  int mprotect(u64 mm, u64 addr, u64 len, u64 flags);

  MmStruct *find_mm(u64 id);
  const MmStruct *find_mm(u64 id) const;
  // find_vma(): the first VMA ending above addr, or nullptr.
  VmAreaStruct *find_vma(u64 mm, u64 addr);
  VmAreaStruct *vma_by_id(u64 id);
  AddressSpace *find_mapping(u64 id);
  const std::map<u64, MmStruct> &mms() const { return mms_; }
  const std::map<u64, AddressSpace> &mappings() const { return mappings_; }
  std::optional<Pfn> zero_pfn() const { return zero_pfn_; }

  // ---- the fault path (fault.cpp) ---------------------------------------------------------
  // handle_mm_fault(): resolves a fault at address in vma; 0, VM_FAULT_WRITE
  // or VM_FAULT_NOPAGE on success, a VM_FAULT_ERROR bit on failure.
  vm_fault_t handle_mm_fault(VmAreaStruct &vma, u64 address, unsigned flags);
  // A user-mode access of one byte by the current CPU, faulting as needed.
  UserAccess touch(u64 mm, u64 addr, Access access);
  // access_remote_vm(): copies between buf and the target mm through its
  // page tables, faulting pages in (FOLL_WRITE: buf is written into the mm;
  // FOLL_FORCE: private read-only mappings are written through a private
  // copy). Returns the bytes done; stops at the first address it cannot
  // reach (unmapped, no permission, a pfn mapping).
  int access_remote_vm(u64 mm, u64 addr, std::span<std::uint8_t> buf, unsigned gup_flags);

  // ---- mm/memory.c, seed 004 (memory.cpp) -----------------------------------------------
  // unmap_vmas(): zaps [start, end) in vma and the VMAs after it in its mm
  // into tlb; the caller's tlb_finish_mmu flushes and frees.
  void unmap_vmas(MmuGather &tlb, VmAreaStruct &vma, u64 start, u64 end);
  // zap_page_range(): zaps [start, start + size) in vma and the following
  // VMAs, with its own gather.
  void zap_page_range(VmAreaStruct &vma, u64 start, u64 size);
  // zap_page_range_single(): the range must fit in vma (what lies outside
  // it is left alone); details restricts the zap to one mapping's pages.
  void zap_page_range_single(VmAreaStruct &vma, u64 address, u64 size,
                             const ZapDetails *details = nullptr);
  // zap_vma_ptes(): only for VM_PFNMAP VMAs and a range inside the VMA;
  // otherwise nothing happens and a WARN says why.
  void zap_vma_ptes(VmAreaStruct &vma, u64 address, u64 size);
  // vm_insert_page(): maps one order-0 kernel page at addr (takes a page
  // reference, adds a mapcount, sets VM_MIXEDMAP). 0, -EFAULT (addr outside
  // the VMA), -EBUSY (a PTE exists), -EINVAL (free, compound, anonymous,
  // page-table or reserved page, unaligned addr), -ENOMEM (no page table).
  // KernelBug on a VM_PFNMAP VMA without VM_MIXEDMAP.
  int vm_insert_page(VmAreaStruct &vma, u64 addr, Pfn page);
  // vmf_insert_pfn_prot(): a special PTE for pfn with pgprot. VM_FAULT_NOPAGE
  // (also when a PTE already exists), VM_FAULT_OOM (no page table),
  // VM_FAULT_SIGBUS (addr outside the VMA, a bad pgprot, a pfn that is not
  // memory). KernelBug, as the kernel's BUG_ONs: neither or both of
  // VM_PFNMAP/VM_MIXEDMAP, VM_PFNMAP on a COW mapping, VM_MIXEDMAP with a
  // pfn that has a struct page.
  vm_fault_t vmf_insert_pfn_prot(VmAreaStruct &vma, u64 addr, u64 pfn, pgprot_t pgprot);
  vm_fault_t vmf_insert_pfn(VmAreaStruct &vma, u64 addr, u64 pfn);
  // remap_pfn_range(): maps [addr, addr + PAGE_ALIGN(size)) to pfn.. with
  // special PTEs; sets VM_IO|VM_PFNMAP|VM_DONTEXPAND|VM_DONTDUMP. A COW
  // mapping must be remapped whole (vm_pgoff = pfn). 0, -EINVAL (range not
  // inside the VMA, unaligned, bad prot, pfns not memory, partial COW),
  // -ENOMEM (a page table; what was mapped is zapped again). A PTE already
  // present is a KernelBug, as an empty range is.
  int remap_pfn_range(VmAreaStruct &vma, u64 addr, u64 pfn, u64 size, pgprot_t prot);
  // vm_iomap_memory(): remap_pfn_range of the whole VMA onto the physical
  // range [start, start + len) from page vm_pgoff; -EINVAL when the range
  // wraps or is too small for the VMA.
  int vm_iomap_memory(VmAreaStruct &vma, u64 start, u64 len);
  // finish_mkwrite_fault(): makes the read-only PTE of a shared mapping
  // writable; VM_FAULT_WRITE, or 0 when the PTE is no longer vmf.orig_pte.
  vm_fault_t finish_mkwrite_fault(VmFault &vmf);
  // unmap_mapping_pages(): zaps pages [start, start + nr) of the mapping
  // (nr == 0: to the end) in every VMA mapping them; private copies too
  // when even_cows.
  void unmap_mapping_pages(u64 mapping, u64 start, u64 nr, bool even_cows);
  // unmap_mapping_range(): the byte form; holebegin rounds down, holelen up,
  // holelen 0 means to the end of the file. Negative values WARN.
  void unmap_mapping_range(u64 mapping, std::int64_t holebegin, std::int64_t holelen,
                           int even_cows);
  // alloc_set_pte(): maps `page` at vmf.address (allocating the page table)
  // and adds its rmap; consumes the caller's page reference. 0,
  // VM_FAULT_NOPAGE (a PTE is already there), VM_FAULT_OOM (no table),
  // VM_FAULT_SIGBUS with a WARN for a page that cannot be mapped.
  vm_fault_t alloc_set_pte(VmFault &vmf, Pfn page);
  // finish_fault(): alloc_set_pte of vmf.cow_page (private write) or
  // vmf.page.
  vm_fault_t finish_fault(VmFault &vmf);
  // follow_pfn(): the pfn mapped at address; -EINVAL unless the VMA is
  // VM_IO|VM_PFNMAP and a PTE is present.
  int follow_pfn(VmAreaStruct &vma, u64 address, u64 *pfn);

  // ---- seed 000: remap_vmalloc_range (remap_vmalloc.cpp) ---------------------------------
  // remap_vmalloc_range_partial(): vm_insert_page of each page of the
  // VM_USERMAP area at kaddr; -EINVAL for unaligned uaddr/kaddr, no such
  // area, no VM_USERMAP, a range past the area (guard page excluded) or
  // overflowing; the first vm_insert_page error otherwise (what was mapped
  // stays). On success VM_DONTEXPAND|VM_DONTDUMP are set.
  int remap_vmalloc_range_partial(VmAreaStruct &vma, u64 uaddr, u64 kaddr, u64 size);
  // remap_vmalloc_range(): the whole VMA from page pgoff of the area at addr.
  int remap_vmalloc_range(VmAreaStruct &vma, u64 addr, u64 pgoff);

  // ---- invariants and hashing (check.cpp) ---------------------------------------------------
  // First violated invariant (VMAs, PTEs inside VMAs, rmap and refcounts,
  // COW exclusivity, page caches, TLBs) or empty.
  std::string check() const;
  void hash_into(StateHasher &h) const;

private:
  // mm.cpp
  std::int64_t do_mmap(u64 mm, u64 addr, u64 len, u64 flags, u64 file, u64 pgoff, const char *fn);
  bool range_ok(u64 addr, u64 len) const;
  std::optional<u64> get_unmapped_area(const MmStruct &mm, u64 len) const;
  // Splits the VMA at vm_start so that a VMA starts at addr; false when the
  // vm_area_struct cannot be allocated.
  bool split_vma(MmStruct &mm, u64 vm_start, u64 addr);
  bool can_merge(const VmAreaStruct &prev, const VmAreaStruct &next) const;
  // Merges the VMA at vm_start with its neighbours where they are
  // compatible; returns the vm_start of the VMA that now covers it.
  u64 merge_around(MmStruct &mm, u64 vm_start);
  // Unmaps and removes every VMA piece inside [start, end) (splits done).
  void detach_range(MmStruct &mm, u64 start, u64 end);
  void free_pgtables(MmStruct &mm, u64 start, u64 end);
  void release_unused_shmem();
  void change_protection(MmStruct &mm, VmAreaStruct &vma);
  // fault.cpp
  vm_fault_t do_anonymous_page(MmStruct &mm, VmAreaStruct &vma, VmFault &vmf);
  vm_fault_t do_fault(MmStruct &mm, VmAreaStruct &vma, VmFault &vmf);
  vm_fault_t do_read_fault(VmAreaStruct &vma, VmFault &vmf);
  vm_fault_t do_cow_fault(VmAreaStruct &vma, VmFault &vmf);
  vm_fault_t do_shared_fault(VmAreaStruct &vma, VmFault &vmf);
  vm_fault_t __do_fault(VmAreaStruct &vma, VmFault &vmf);
  vm_fault_t do_wp_page(MmStruct &mm, VmAreaStruct &vma, VmFault &vmf, u64 slot);
  vm_fault_t wp_page_copy(MmStruct &mm, VmAreaStruct &vma, VmFault &vmf, u64 slot);
  void wp_page_reuse(MmStruct &mm, VmAreaStruct &vma, VmFault &vmf, u64 slot);
  std::optional<Pfn> get_zero_page();
  // The page a GUP-style lookup reaches (faulting as needed), or nullopt.
  std::optional<Pfn> get_user_page(MmStruct &mm, u64 addr, unsigned gup_flags);
  // memory.cpp
  void unmap_single_vma(MmuGather &tlb, VmAreaStruct &vma, u64 start, u64 end,
                        const ZapDetails *details);
  void zap_pte_range(MmuGather &tlb, VmAreaStruct &vma, u64 start, u64 end,
                     const ZapDetails *details);
  int insert_page(VmAreaStruct &vma, u64 addr, Pfn page, pgprot_t prot);
  bool user_prot_ok(pgprot_t prot) const;
  // Shared helpers
  std::optional<Pfn> vm_normal_page(u64 pte) const;
  void page_add_rmap(Pfn pfn);
  void page_remove_rmap(Pfn pfn);
  // Writes a leaf that may be cached and flushes it from every CPU's TLB.
  void set_pte_flush(const MmStruct &mm, u64 va, u64 slot, u64 value);
  u64 mk_pte(Pfn pfn, pgprot_t prot) const;
  void warn(const std::string &fn, const std::string &reason, u64 addr = 0);
  std::string check_mm(const MmStruct &mm, std::map<Pfn, std::uint32_t> &mapped) const;

  Machine &m_;
  Vmalloc &vmalloc_;
  std::map<u64, MmStruct> mms_;          // by id
  std::map<u64, AddressSpace> mappings_; // by id
  u64 next_mm_id_ = 1;
  u64 next_vma_id_ = 1;
  u64 next_mapping_id_ = 1;
  std::optional<Pfn> zero_pfn_; // the shared zero page, allocated on the first anonymous read
  // The rmap as this layer keeps it: pfn -> number of user PTEs mapping it.
  // Invariant: equal to the PTE walk of every mm and to each page's mapcount.
  std::map<Pfn, std::uint32_t> mapped_;
};

} // namespace vmcheck
