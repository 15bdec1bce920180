// User address spaces as the spec sees them: mm_structs, their VMAs, the
// files and shared-memory objects VMAs map, and for each user page what its
// PTE maps and with which protection. Predicted exactly: the results of
// mm_create, mmap, munmap, mprotect and mmput and the VMAs they leave (ids,
// bounds, flags, page offsets, merges and splits); user accesses through
// the fault path (zero page, anonymous pages, page cache, copy on write,
// write notification); access_remote_vm's reach and the bytes it reads;
// the memory.c calls of seed 004 with their WARNs and BUGs.
//
// Two things the spec cannot see it takes from the engine, each named
// where it is used: whether an allocation failed (it does not track which
// user page tables exist), and whether a struct page may be mapped (a
// page's refcount and flags are the page allocator's).
//
// Written from the seeds and from the harness's contract for its mm ops
// (usermm.h: mmap is MAP_FIXED when given an address, otherwise the lowest
// fit from mmap_min_addr). VMAs are a sorted vector per mm, scanned
// linearly; PTEs a map per mm. Allocations (vm_area_struct, the root page
// table) draw on the machine spec's fault injection and free pages.
#pragma once

#include "spec/vmalloc_spec.h"
#include "vmcheck/abi.h"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
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

// "0x..." for diagnostics.
std::string hex_text(u64 v);

// PAGE_ALIGN(len) into *out; false when it wraps.
inline bool page_align_checked(u64 len, u64 *out) {
  if (len > ~u64{0} - (PAGE_SIZE - 1))
    return false;
  *out = page_align(len);
  return true;
}

// A private mapping that may become writable: its writes go to copies.
inline bool cow_mapping(u64 flags) {
  return (flags & (VM_SHARED | VM_MAYWRITE)) == VM_MAYWRITE;
}

// One vm_area_struct. Invariant: start < end, both page aligned; the VMAs
// of an mm are sorted by start and disjoint.
struct UserVma {
  u64 id = 0; // serial number, never reused; the upper part of a split gets a new one
  u64 mm = 0; // the owning mm's id
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

// The outcome of a user-mode access.
enum class AccessEnd : std::uint8_t { Ok, Sigsegv, Sigbus, Oom };

// What one user PTE maps, as the spec tracks it.
enum class PteKind : std::uint8_t {
  Zero,  // the shared zero page (an anonymous read), special
  Anon,  // an anonymous page or a private copy: user space owns it
  Cache, // a page of a file or shmem object's page cache
  Page,  // a kernel page mapped in (vm_insert_page, alloc_set_pte, remaps)
  Pfn,   // a raw pfn (remap_pfn_range, vmf_insert_pfn), special
};

struct UserPte {
  PteKind kind = PteKind::Zero;
  pgprot_t prot = 0; // _PAGE_PRESENT, _PAGE_USER, _PAGE_RW, _PAGE_NX as the PTE has them
  u64 ref = 0;       // Anon: anonymous page id; Cache: file id; Page, Pfn: pfn (0: unknown)
  u64 index = 0;     // Cache: page index in the file
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

  // ---- user PTEs and the fault path (spec/user_pages.cpp) ------------------
  // The spec follows the engine in one thing only: whether an allocation
  // fails (it cannot see which page tables exist). `alloc_fails` says the
  // engine ran out of memory during the call (the caller has checked that
  // it could); the spec then fails the first step that may allocate (a
  // fault that maps a page, a copy, a PTE) and changes nothing there.
  //
  // A user-mode access of one byte by the mm's owner: the MMU, then
  // access_error() on the VMA, then handle_mm_fault(), up to four rounds
  // (a fault that resolves nothing ends in SIGBUS).
  AccessEnd touch(u64 mm, u64 addr, UserAccess access, bool alloc_fails);
  // access_remote_vm() (gup_flags within FOLL_WRITE|FOLL_FORCE, mm
  // exists): copies `data` into the mm (FOLL_WRITE) or len bytes out of it,
  // page by page, faulting pages in; it stops at the first page it cannot
  // reach. With alloc_fails, the page at `engine_done` fails if reaching it
  // allocates. `bytes`: what a read got; `known`: which of them the spec
  // knows (a copy of a raw pfn, a kernel page: not).
  struct RemoteAccess {
    u64 done = 0;
    std::string bytes;
    std::vector<bool> known;
  };
  RemoteAccess access_remote_vm(u64 mm, u64 addr, u64 len, std::string_view data,
                                unsigned gup_flags, bool alloc_fails, u64 engine_done);
  // Zaps the PTEs of [start, end) in the VMAs of `mm` from the one that
  // starts at `first_vma_start` (0: every VMA) on, each clipped to its VMA;
  // with `only_mapping`, pages of other objects (private copies, kernel
  // pages) are kept (zap_details). `single`: only the first VMA.
  void zap(u64 mm, u64 first_vma_start, u64 start, u64 end, u64 only_mapping, bool single);
  // unmap_mapping_pages(): pages [start, start + nr) of file (nr 0: to the
  // end) in every VMA mapping them; private copies too when even_cows.
  void unmap_mapping_pages(u64 file, u64 start, u64 nr, bool even_cows);
  // The PTE at va of mm, or nullptr.
  const UserPte *pte(u64 mm, u64 va) const;
  u64 user_top() const { return user_top_; }

  // ---- memory.c calls that install PTEs (spec/user_pages.cpp) ------------
  // Each takes a VMA id that exists. Where the spec cannot see a page's
  // state (free, compound, reserved, ...: the engine's struct page),
  // `page_ok` is the engine's verdict, which the spec follows. KernelBug for
  // the kernel's BUG_ONs.
  const UserVma *vma_by_id(u64 id) const;
  // vm_insert_page(): -EFAULT (addr outside the VMA), -EINVAL (unaligned
  // addr, with a WARN; a page that cannot be mapped), BUG on a VM_PFNMAP
  // VMA; then the VMA becomes VM_MIXEDMAP and the page is mapped with the
  // VMA's protection: 0, -EBUSY (a PTE is there), -ENOMEM.
  int vm_insert_page(u64 id, u64 addr, u64 pfn, bool page_ok, bool alloc_fails);
  // remap_vmalloc_range_partial()'s user side, once the vmalloc side has
  // accepted the range: vm_insert_page of npages kernel pages from uaddr
  // (their pfns are the vmalloc side's: not tracked). The first error
  // ends it (what was mapped stays); `fail_at`: the page whose table
  // allocation failed, when alloc_fails. Success adds VM_DONTEXPAND|
  // VM_DONTDUMP.
  int remap_vmalloc_pages(u64 id, u64 uaddr, u64 npages, bool alloc_fails, u64 fail_at);
  // vmf_insert_pfn_prot(): BUG unless exactly one of VM_PFNMAP and
  // VM_MIXEDMAP is set, for VM_PFNMAP on a COW mapping and for VM_MIXEDMAP
  // with a pfn that has a struct page; VM_FAULT_SIGBUS for addr outside the
  // VMA, and with a WARN for an unaligned addr, a bad prot or a pfn that
  // is not memory; else VM_FAULT_NOPAGE (mapped unless a PTE is there) or
  // VM_FAULT_OOM.
  unsigned vmf_insert_pfn_prot(u64 id, u64 addr, u64 pfn, pgprot_t prot, bool alloc_fails);
  // The checks remap_pfn_range() makes, then its mapping. -EINVAL with a
  // WARN where `warn` (a wrapping size, a range not inside the VMA or
  // unaligned, a bad prot, pfns that are not memory); -EINVAL silently for
  // part of a COW mapping; BUG for an empty range or a PTE already there.
  // Once they pass the VMA is VM_IO|VM_PFNMAP|VM_DONTEXPAND|VM_DONTDUMP
  // with, on a COW mapping, the first pfn as its page offset; then 0 with
  // every page mapped, or -ENOMEM with none.
  struct RemapVerdict {
    int err = 0;
    bool warn = false;
  };
  RemapVerdict remap_pfn_range(u64 id, u64 addr, u64 pfn, u64 size, pgprot_t prot,
                               bool alloc_fails);
  // vm_iomap_memory(): the whole VMA onto [start, start + len) from its page
  // offset on: -EINVAL (no WARN) when the range wraps or is too small,
  // otherwise remap_pfn_range's verdict with the VMA's own protection.
  RemapVerdict vm_iomap_memory(u64 id, u64 start, u64 len, bool alloc_fails);
  // alloc_set_pte() / finish_fault() mapping a kernel page at addr for a
  // read or a write fault: VM_FAULT_SIGBUS with a WARN (addr outside the
  // VMA, a page that cannot be mapped), VM_FAULT_NOPAGE (a PTE is there),
  // VM_FAULT_OOM, or 0 with the page mapped.
  unsigned alloc_set_pte(u64 id, u64 addr, u64 pfn, bool write, bool page_ok, bool alloc_fails);
  // finish_mkwrite_fault() on the PTE at addr: 0 with a WARN (addr outside
  // the VMA, a VMA that is not VM_SHARED), 0 without a PTE, else
  // VM_FAULT_WRITE with the PTE writable when the VMA is.
  unsigned finish_mkwrite_fault(u64 id, u64 addr);
  // follow_pfn(): -EINVAL unless the VMA is VM_IO|VM_PFNMAP and a PTE maps
  // addr (in the VMA's mm); then 0 and the pfn, nullopt where the spec does
  // not know it (a page the engine chose).
  int follow_pfn(u64 id, u64 addr, std::optional<u64> *pfn) const;
  // Whether prot is a protection a driver may give a user PTE: PROT_NONE's,
  // or present and user with only the bits of a user leaf.
  static bool user_prot_ok(pgprot_t prot);
  // vm_get_page_prot() of a VMA: the PTE protection its faults install.
  pgprot_t page_prot(const UserVma &vma) const;

  // ---- state ----------------------------------------------------------------
  const std::map<u64, std::vector<UserVma>> &mms() const { return mms_; }
  const std::map<u64, UserFile> &files() const { return files_; }
  // Diagnostics (WARNs) recorded since the last take_diags().
  std::vector<Diag> take_diags();

private:
  using Vmas = std::vector<UserVma>;
  using Ptes = std::map<u64, UserPte>; // by page address
  // One page's contents; nullopt: unknown.
  using Bytes = std::optional<std::vector<std::uint8_t>>;
  // user_pages.cpp
  enum class FaultResult : std::uint8_t { Done, Sigbus, Oom };
  // handle_mm_fault() for a present-or-not page at va of vma.
  FaultResult fault(u64 mm, const UserVma &vma, u64 va, bool write, bool alloc_fails);
  FaultResult wp_page(u64 mm, const UserVma &vma, u64 va, bool alloc_fails);
  // A new anonymous page with these contents: its id.
  u64 new_anon(Bytes contents);
  // Where the bytes of the page pte maps come from: `kept` (anonymous
  // pages, written file pages), else the file's contents (`file`), else
  // zeros; `known` false for pages not the user model's to know.
  struct PageBytes {
    const std::vector<std::uint8_t> *kept = nullptr;
    bool file = false;
    bool known = true;
    u64 index = 0;
    std::uint8_t at(u64 off) const;
  };
  PageBytes page_bytes(const UserPte &pte) const;
  Bytes contents_of(const UserPte &pte) const;
  // Appends bytes [off, off + n) of the page pte maps to out.
  void read_bytes(const UserPte &pte, u64 off, u64 n, RemoteAccess &out) const;
  void drop_pte(Ptes &ptes, Ptes::iterator it);
  void reprotect(u64 mm, const UserVma &vma);
  UserVma &vma_mut(u64 id);
  // Maps a kernel page (pfn, 0: unknown) at va with the VMA's protection,
  // writable for a write when the VMA is. Precondition: no PTE there.
  void map_page(const UserVma &vma, u64 va, u64 pfn, bool write);
  // Removes PTEs of [start, end) in mm, all of them (munmap, mmput).
  void zap_all(u64 mm, u64 start, u64 end);
  void warn(std::string function, std::string reason);
  bool kmalloc();
  // The VMA covering addr, or nullptr.
  const UserVma *covering(const Vmas &vmas, u64 addr) const;
  // Splits the VMA that straddles addr (if one does) so that a VMA starts
  // there; false when the new vm_area_struct cannot be allocated.
  bool split_at(Vmas &vmas, u64 addr);
  // Removes [start, end) from the mm: its PTEs and the VMAs inside it
  // (split already).
  void remove_range(u64 mm, u64 start, u64 end);
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
  std::map<u64, Ptes> ptes_;                                         // by mm
  std::map<u64, Bytes> anon_;                                        // anonymous pages by id
  std::map<std::pair<u64, u64>, std::vector<std::uint8_t>> written_; // (file, index) -> contents
  u64 next_anon_ = 1;
};

} // namespace vmcheck::spec
