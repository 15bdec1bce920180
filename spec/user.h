// User address spaces as the spec sees them: mm_structs, their VMAs, and the
// files and shared-memory objects VMAs map. The model stops at VMAs: it has
// no page tables, so what depends on which user PTEs exist (a fault in a
// driver's mapping, a page mapped past the end of a file) is predicted as
// the set of outcomes the VMAs allow, and everything the VMAs alone decide
// is predicted exactly: the results of mm_create, mmap, munmap, mprotect and
// mmput, the VMAs they leave (ids, bounds, flags, page offsets, merges and
// splits), SIGSEGV of a user access, the reach of access_remote_vm, and the
// WARNs and BUGs of the memory.c calls that the VMA decides.
//
// Written from the seeds and from the harness's contract for its mm ops
// (TRACE.md: mmap is MAP_FIXED when given an address, otherwise the lowest
// fit from mmap_min_addr). VMAs are a sorted vector per mm, scanned
// linearly. Allocations (vm_area_struct, the root page table) draw on the
// machine spec's fault injection and free pages.
#pragma once

#include "spec/vmalloc_spec.h"
#include "vmcheck/abi.h"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace vmcheck::spec {

// mmap_min_addr's default: the lowest address mmap picks by itself.
inline constexpr u64 kMmapMinAddr = 0x10000;

// The VM_* flags the harness's mmap accepts (the VM_MAY* bits it adds).
inline constexpr u64 kMmapFlags = VM_READ | VM_WRITE | VM_EXEC | VM_SHARED | VM_IO | VM_PFNMAP |
                                  VM_MIXEDMAP | VM_DONTEXPAND | VM_DONTDUMP;
// A driver's mapping: filled by its driver, no fault handler.
inline constexpr u64 kDriverFlags = VM_IO | VM_PFNMAP | VM_MIXEDMAP;
// Flags that keep a VMA from ever merging (VM_SPECIAL).
inline constexpr u64 kNoMergeFlags = VM_IO | VM_DONTEXPAND | VM_PFNMAP | VM_MIXEDMAP;

// One vm_area_struct. Invariant: start < end, both page aligned; the VMAs
// of an mm are sorted by start and disjoint.
struct UserVma {
  u64 id = 0; // serial number, never reused; the upper part of a split gets a new one
  u64 start = 0;
  u64 end = 0;
  u64 flags = 0;
  u64 pgoff = 0;   // anonymous and driver: start >> PAGE_SHIFT at mmap; shmem from 0
  u64 mapping = 0; // file or shmem object id; 0 for anonymous and driver mappings

  bool operator==(const UserVma &) const = default;
  u64 pages() const { return (end - start) >> PAGE_SHIFT; }
  bool driver() const { return (flags & kDriverFlags) != 0; }
};

// A file (file_create) or the shmem object of a shared anonymous mapping
// (it lives while a VMA maps it). Ids come from one counter.
struct UserFile {
  u64 nr_pages = 0;
  bool shmem = false;
  bool operator==(const UserFile &) const = default;
};

enum class UserAccess : std::uint8_t { Read, Write, Exec };

// Outcomes of a user-mode access, as a bit set.
enum AccessEnd : unsigned {
  kAccessOk = 1,
  kAccessSigsegv = 2,
  kAccessSigbus = 4,
  kAccessOom = 8,
};

// Bounds on the bytes access_remote_vm moves.
struct ByteRange {
  u64 lo = 0; // it gets at least this far unless an allocation fails
  u64 hi = 0; // it never gets further
};

class UserSpace {
public:
  // `machine`: the spec whose fault injection and free pages the
  // allocations here draw on; `user_top`: the end of the user half.
  UserSpace(VmallocSpec &machine, u64 user_top);

  // ---- address spaces and mappings (the harness's mm ops) -----------------
  // mm_alloc(): the new mm's id, or 0 when its mm_struct (a kmalloc) or its
  // root page table cannot be allocated.
  u64 mm_create();
  // The last mmput(): every VMA goes (and a shmem object no VMA maps any
  // more). 0; -EINVAL and a WARN for an unknown mm.
  int mmput(u64 mm);
  // A file of nr_pages pages: its id; 0 with a WARN for a size outside
  // [1, 2^32], 0 when its metadata cannot be allocated.
  u64 file_create(u64 nr_pages);
  // mmap(): the id of the VMA that covers the new range (a neighbour's
  // when it merged), or -EINVAL with a WARN (unknown mm or file, flags
  // outside kMmapFlags, PFNMAP with MIXEDMAP, a file with driver flags, an
  // empty or wrapping length, an unaligned address, a fixed range outside
  // [PAGE_SIZE, user top), a page offset that overflows), or -ENOMEM (no
  // room, an allocation failed). A fixed address unmaps what was there.
  std::int64_t mmap(u64 mm, u64 addr, u64 len, u64 flags);
  std::int64_t mmap_file(u64 mm, u64 addr, u64 len, u64 flags, u64 file, u64 pgoff);
  // munmap(): 0 (also when nothing is mapped there); -EINVAL with a WARN
  // for an unknown mm, an unaligned address or an empty, wrapping or
  // out-of-range length; -ENOMEM when a split cannot allocate its VMA
  // (the splits done before stay).
  int munmap(u64 mm, u64 addr, u64 len);
  // mprotect(): 0 (len 0 does nothing); -EINVAL with a WARN for an unknown
  // mm, flags outside VM_READ|VM_WRITE|VM_EXEC, an unaligned address or a
  // bad range; -ENOMEM for a range with a hole (nothing changes) or a
  // split that cannot allocate.
  int mprotect(u64 mm, u64 addr, u64 len, u64 flags);

  // ---- what the VMAs decide about accesses --------------------------------
  // A user-mode access of one byte: kAccessSigsegv alone where no VMA
  // covers addr or a VMA that is not a driver's forbids the access; other
  // outcomes as the page tables decide (a fault may always run out of
  // memory: kAccessOom is in every set that can fault a page in).
  unsigned access_ends(u64 mm, u64 addr, UserAccess access) const;
  // access_remote_vm(mm, addr, len bytes, gup_flags): it stops at the first
  // page it cannot reach (no VMA, VM_IO/VM_PFNMAP, no permission: hi) and
  // gets at least to the first page whose fate depends on its PTE (a
  // driver's mapping, a file page past the end: lo). Precondition: the mm
  // exists and gup_flags are within FOLL_WRITE|FOLL_FORCE.
  ByteRange remote_access_bytes(u64 mm, u64 addr, u64 len, unsigned gup_flags) const;

  // ---- VMAs that memory.c calls change ------------------------------------
  const UserVma *vma_by_id(u64 id) const;
  // The checks remap_pfn_range() makes before it maps anything, on VMA
  // `id` (which exists). `err` 0: they pass, and the VMA is now VM_IO|
  // VM_PFNMAP|VM_DONTEXPAND|VM_DONTDUMP with, on a COW mapping (remapped
  // whole), the first pfn as its page offset; the call then returns 0 or
  // -ENOMEM, or BUGs on a PTE already there. Otherwise -EINVAL, with a WARN
  // where `warn` (a wrapping size, a range not inside the VMA or unaligned,
  // a bad prot, pfns that are not memory; a part of a COW mapping is
  // refused silently), or `bug` for an empty range.
  struct RemapVerdict {
    int err = 0;
    bool warn = false;
    bool bug = false;
  };
  RemapVerdict remap_pfn_range(u64 id, u64 addr, u64 pfn, u64 size, pgprot_t prot);
  // vm_iomap_memory(): the whole VMA onto [start, start + len) from its page
  // offset on: -EINVAL (no WARN) when the range wraps or is too small,
  // otherwise remap_pfn_range's verdict with the VMA's own protection.
  RemapVerdict vm_iomap_memory(u64 id, u64 start, u64 len);
  // Whether prot is a protection a driver may give a user PTE: PROT_NONE's,
  // or present and user with only the bits of a user leaf.
  static bool user_prot_ok(pgprot_t prot);
  // A call on VMA `id` changed its flags to `flags` and its page offset to
  // `pgoff` (vm_insert_page sets VM_MIXEDMAP; remap_pfn_range sets
  // VM_IO|VM_PFNMAP|VM_DONTEXPAND|VM_DONTDUMP and, on a COW mapping, the
  // offset; remap_vmalloc_range VM_DONTEXPAND|VM_DONTDUMP): the spec takes
  // the new values when only bits of `may_set` were added and the offset
  // moved only where `pgoff_may_move`. Error text otherwise.
  std::string take_vma_change(u64 id, u64 flags, u64 pgoff, u64 may_set, bool pgoff_may_move);
  // vm_get_page_prot() of a VMA: the PTE protection its faults install.
  pgprot_t page_prot(const UserVma &vma) const;

  // ---- state ----------------------------------------------------------------
  const std::map<u64, std::vector<UserVma>> &mms() const { return mms_; }
  const std::map<u64, UserFile> &files() const { return files_; }
  // Diagnostics (WARNs) recorded since the last take_diags().
  std::vector<Diag> take_diags();

private:
  using Vmas = std::vector<UserVma>;
  void warn(std::string function, std::string reason);
  bool kmalloc();
  // The VMA covering addr, or nullptr.
  const UserVma *covering(const Vmas &vmas, u64 addr) const;
  // Splits the VMA that straddles addr (if one does) so that a VMA starts
  // there; false when the new vm_area_struct cannot be allocated.
  bool split_at(Vmas &vmas, u64 addr);
  // Removes [start, end) from the mm: the VMAs inside it (split already).
  void remove_range(Vmas &vmas, u64 start, u64 end);
  // Merges each pair of neighbouring VMAs that can merge, among the pairs
  // (vmas[i], vmas[i + 1]) with first <= i + 1 and i <= last (indices into
  // vmas before merging); the lower VMA of a pair absorbs the upper.
  void merge_pairs(Vmas &vmas, std::size_t first, std::size_t last);
  static bool can_merge(const UserVma &lo, const UserVma &hi);
  void release_unused_shmem();
  bool range_ok(u64 addr, u64 len) const;
  std::int64_t do_mmap(const char *fn, u64 mm, u64 addr, u64 len, u64 flags, u64 file, u64 pgoff);

  VmallocSpec &machine_;
  u64 user_top_;
  std::map<u64, Vmas> mms_;
  std::map<u64, UserFile> files_;
  u64 next_mm_ = 1;
  u64 next_vma_ = 1;
  u64 next_file_ = 1;
  std::vector<Diag> diags_;
};

} // namespace vmcheck::spec
