// User address spaces: struct mm_struct and struct vm_area_struct, and the
// vocabulary of the fault path (FAULT_FLAG_*, VM_FAULT_*, FOLL_*), with the
// kernel's (4.19) values.
#pragma once

#include "vmcheck/abi.h"

#include <cstdint>
#include <map>

namespace vmcheck {

using vm_fault_t = unsigned;

// ---- vm_fault_t codes (include/linux/mm_types.h) ---------------------------------
inline constexpr vm_fault_t VM_FAULT_OOM = 0x000001;
inline constexpr vm_fault_t VM_FAULT_SIGBUS = 0x000002;
inline constexpr vm_fault_t VM_FAULT_MAJOR = 0x000004;
inline constexpr vm_fault_t VM_FAULT_WRITE = 0x000008;
inline constexpr vm_fault_t VM_FAULT_HWPOISON = 0x000010;
inline constexpr vm_fault_t VM_FAULT_SIGSEGV = 0x000040;
inline constexpr vm_fault_t VM_FAULT_NOPAGE = 0x000100;
inline constexpr vm_fault_t VM_FAULT_LOCKED = 0x000200;
inline constexpr vm_fault_t VM_FAULT_RETRY = 0x000400;
inline constexpr vm_fault_t VM_FAULT_FALLBACK = 0x000800;
inline constexpr vm_fault_t VM_FAULT_DONE_COW = 0x001000;
inline constexpr vm_fault_t VM_FAULT_NEEDDSYNC = 0x002000;
inline constexpr vm_fault_t VM_FAULT_ERROR =
    VM_FAULT_OOM | VM_FAULT_SIGBUS | VM_FAULT_SIGSEGV | VM_FAULT_HWPOISON;

// ---- fault flags (include/linux/mm.h) ------------------------------------------------
inline constexpr unsigned FAULT_FLAG_WRITE = 0x01;
inline constexpr unsigned FAULT_FLAG_USER = 0x40;
inline constexpr unsigned FAULT_FLAG_REMOTE = 0x80;
inline constexpr unsigned FAULT_FLAG_INSTRUCTION = 0x100;

// Flags a caller of mmap may ask for; the VM_MAY* bits are added by mmap.
inline constexpr u64 VM_USER_MMAP_FLAGS = VM_READ | VM_WRITE | VM_EXEC | VM_SHARED | VM_IO |
                                          VM_PFNMAP | VM_MIXEDMAP | VM_DONTEXPAND | VM_DONTDUMP;
inline constexpr u64 VM_ACCESS_FLAGS = VM_READ | VM_WRITE | VM_EXEC;
// VMAs with any of these never merge (include/linux/mm.h VM_SPECIAL).
inline constexpr u64 VM_SPECIAL = VM_IO | VM_DONTEXPAND | VM_PFNMAP | VM_MIXEDMAP;

// The lowest address mmap picks by itself (mmap_min_addr's default).
inline constexpr u64 MMAP_MIN_ADDR = 0x10000;

// A user leaf the owner may not touch at all (PROT_NONE): present, so the
// pfn stays reachable for zap and rmap as x86's _PAGE_PROTNONE keeps it,
// but without _PAGE_USER the MMU refuses every user access. It is the one
// user leaf without _PAGE_USER.
inline constexpr pgprot_t PAGE_PROTNONE_USER = _PAGE_PRESENT | _PAGE_ACCESSED | _PAGE_NX;

inline constexpr bool is_cow_mapping(u64 vm_flags) {
  return (vm_flags & (VM_SHARED | VM_MAYWRITE)) == VM_MAYWRITE;
}

// struct vm_area_struct. Invariant: vm_start < vm_end, both page aligned,
// inside [PAGE_SIZE, user top); vm_page_prot == vm_get_page_prot of the
// flags (writenotify for file mappings); mapping names a live address_space
// or is 0 (anonymous private, or a driver mapping when `device`).
struct VmAreaStruct {
  u64 id = 0; // serial number, never reused; the upper part of a split gets a new one
  u64 mm = 0; // owning mm_struct id
  u64 vm_start = 0;
  u64 vm_end = 0;
  u64 vm_flags = 0;
  pgprot_t vm_page_prot = 0;
  u64 vm_pgoff = 0;    // page offset in the mapping (anonymous: vm_start >> PAGE_SHIFT)
  u64 mapping = 0;     // address_space id (file or shmem object), 0 for none
  bool device = false; // a driver's mapping (VM_IO/PFNMAP/MIXEDMAP at mmap): no fault handler

  u64 pages() const { return (vm_end - vm_start) >> PAGE_SHIFT; }
  bool contains(u64 addr) const { return addr >= vm_start && addr < vm_end; }
  bool anonymous() const { return mapping == 0 && !device; }
};

// struct mm_struct. Invariant: vmas are sorted by vm_start and do not
// overlap; every user PTE under pgd lies inside one of them.
struct MmStruct {
  u64 id = 0;
  Pfn pgd = 0;                      // root page-table page (user half own, kernel half shared)
  std::map<u64, VmAreaStruct> vmas; // by vm_start
};

// vm_get_page_prot(): the PTE protection for a VMA's flags. Private
// writable mappings get a read-only protection (copy on write); so do
// shared writable ones that want write notification (file mappings, whose
// first write goes through page_mkwrite).
pgprot_t vm_get_page_prot(u64 vm_flags, bool writenotify);

} // namespace vmcheck
