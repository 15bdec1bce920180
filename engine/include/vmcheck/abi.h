// The shared vocabulary of vmcheck: constants and flag values of the emulated
// x86-64 kernel (4.19-5.x era). This is the ONLY engine header spec/ may
// include, so it holds plain constants and nothing with behaviour.
#pragma once

#include <cerrno>
#include <cstdint>

namespace vmcheck {

using u64 = std::uint64_t;
using u32 = std::uint32_t;
using Pfn = std::uint64_t; // physical frame number (PA >> PAGE_SHIFT)
using Gfp = std::uint32_t; // gfp_t
using VmFlags = std::uint64_t;

// ---- pages and paging (x86-64) ---------------------------------------------
inline constexpr u64 PAGE_SHIFT = 12;
inline constexpr u64 PAGE_SIZE = u64{1} << PAGE_SHIFT;
inline constexpr u64 PAGE_MASK = ~(PAGE_SIZE - 1);
inline constexpr u64 PMD_SHIFT = 21;
inline constexpr u64 PMD_SIZE = u64{1} << PMD_SHIFT;
inline constexpr u64 PUD_SHIFT = 30;
inline constexpr u64 PTRS_PER_TABLE = 512;
inline constexpr unsigned MAX_ORDER = 11; // buddy orders 0..MAX_ORDER-1

inline constexpr u64 page_align(u64 x) {
  return (x + PAGE_SIZE - 1) & PAGE_MASK;
}
inline constexpr bool page_aligned(u64 x) {
  return (x & (PAGE_SIZE - 1)) == 0;
}

// Kernel virtual layout (arch/x86/include/asm/pgtable_64_types.h). END is
// inclusive, as in the kernel.
inline constexpr u64 VMALLOC_START_L4 = 0xffffc90000000000ULL;
inline constexpr u64 VMALLOC_END_L4 = 0xffffe8ffffffffffULL; // 32 TiB
inline constexpr u64 VMALLOC_START_L5 = 0xffa0000000000000ULL;
inline constexpr u64 VMALLOC_END_L5 = 0xffd1ffffffffffffULL; // 12800 TiB
// Lowest kernel-half address (the user half is below the canonical hole).
inline constexpr u64 USER_TOP_L4 = 0x0000800000000000ULL;
inline constexpr u64 USER_TOP_L5 = 0x0100000000000000ULL;

// ---- page-table entry bits --------------------------------------------------
inline constexpr u64 _PAGE_PRESENT = u64{1} << 0;
inline constexpr u64 _PAGE_RW = u64{1} << 1;
inline constexpr u64 _PAGE_USER = u64{1} << 2;
inline constexpr u64 _PAGE_PWT = u64{1} << 3;
inline constexpr u64 _PAGE_PCD = u64{1} << 4;
inline constexpr u64 _PAGE_ACCESSED = u64{1} << 5;
inline constexpr u64 _PAGE_DIRTY = u64{1} << 6;
inline constexpr u64 _PAGE_PSE = u64{1} << 7; // huge leaf at PMD level
inline constexpr u64 _PAGE_GLOBAL = u64{1} << 8;
inline constexpr u64 _PAGE_SPECIAL = u64{1} << 9; // software bit: pfn map, no struct page use
inline constexpr u64 _PAGE_NX = u64{1} << 63;
inline constexpr u64 PTE_PFN_MASK = 0x000ffffffffff000ULL;
// Bits the MMU itself sets on an access; ignored when comparing translations.
inline constexpr u64 PTE_HW_UPDATED = _PAGE_ACCESSED | _PAGE_DIRTY;

using pgprot_t = u64;
inline constexpr pgprot_t PAGE_NONE = 0;
inline constexpr pgprot_t PAGE_KERNEL =
    _PAGE_PRESENT | _PAGE_RW | _PAGE_DIRTY | _PAGE_ACCESSED | _PAGE_GLOBAL | _PAGE_NX;
inline constexpr pgprot_t PAGE_KERNEL_EXEC =
    _PAGE_PRESENT | _PAGE_RW | _PAGE_DIRTY | _PAGE_ACCESSED | _PAGE_GLOBAL;
inline constexpr pgprot_t PAGE_KERNEL_RO = _PAGE_PRESENT | _PAGE_ACCESSED | _PAGE_GLOBAL | _PAGE_NX;
inline constexpr pgprot_t PAGE_SHARED =
    _PAGE_PRESENT | _PAGE_RW | _PAGE_USER | _PAGE_ACCESSED | _PAGE_NX;
inline constexpr pgprot_t PAGE_READONLY = _PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED | _PAGE_NX;
inline constexpr pgprot_t PAGE_SHARED_EXEC = _PAGE_PRESENT | _PAGE_RW | _PAGE_USER | _PAGE_ACCESSED;
inline constexpr pgprot_t PAGE_READONLY_EXEC = _PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED;

// ---- GFP flags (include/linux/gfp.h, 4.19-5.x values) -------------------------
inline constexpr Gfp ___GFP_DMA = 0x01;
inline constexpr Gfp __GFP_HIGHMEM = 0x02;
inline constexpr Gfp __GFP_DMA32 = 0x04;
inline constexpr Gfp __GFP_MOVABLE = 0x08;
inline constexpr Gfp __GFP_RECLAIMABLE = 0x10;
inline constexpr Gfp __GFP_HIGH = 0x20;
inline constexpr Gfp __GFP_IO = 0x40;
inline constexpr Gfp __GFP_FS = 0x80;
inline constexpr Gfp __GFP_ZERO = 0x100;
inline constexpr Gfp __GFP_ATOMIC = 0x200;
inline constexpr Gfp __GFP_DIRECT_RECLAIM = 0x400;
inline constexpr Gfp __GFP_KSWAPD_RECLAIM = 0x800;
inline constexpr Gfp __GFP_WRITE = 0x1000;
inline constexpr Gfp __GFP_NOWARN = 0x2000;
inline constexpr Gfp __GFP_RETRY_MAYFAIL = 0x4000;
inline constexpr Gfp __GFP_NOFAIL = 0x8000;
inline constexpr Gfp __GFP_NORETRY = 0x10000;
inline constexpr Gfp __GFP_MEMALLOC = 0x20000;
inline constexpr Gfp __GFP_COMP = 0x40000;
inline constexpr Gfp __GFP_NOMEMALLOC = 0x80000;
inline constexpr Gfp __GFP_HARDWALL = 0x100000;
inline constexpr Gfp __GFP_THISNODE = 0x200000;
inline constexpr Gfp __GFP_ACCOUNT = 0x400000;
inline constexpr Gfp __GFP_RECLAIM = __GFP_DIRECT_RECLAIM | __GFP_KSWAPD_RECLAIM;
inline constexpr Gfp GFP_ATOMIC = __GFP_HIGH | __GFP_ATOMIC | __GFP_KSWAPD_RECLAIM;
inline constexpr Gfp GFP_KERNEL = __GFP_RECLAIM | __GFP_IO | __GFP_FS;
inline constexpr Gfp GFP_NOWAIT = __GFP_KSWAPD_RECLAIM;
inline constexpr Gfp GFP_NOIO = __GFP_RECLAIM;
inline constexpr Gfp GFP_NOFS = __GFP_RECLAIM | __GFP_IO;
inline constexpr Gfp GFP_USER = __GFP_RECLAIM | __GFP_IO | __GFP_FS | __GFP_HARDWALL;
inline constexpr Gfp GFP_DMA32 = __GFP_DMA32;
inline constexpr Gfp GFP_HIGHUSER = GFP_USER | __GFP_HIGHMEM;
inline constexpr Gfp GFP_RECLAIM_MASK = __GFP_RECLAIM | __GFP_HIGH | __GFP_IO | __GFP_FS |
                                        __GFP_NOWARN | __GFP_RETRY_MAYFAIL | __GFP_NOFAIL |
                                        __GFP_NORETRY | __GFP_MEMALLOC | __GFP_NOMEMALLOC;
inline constexpr Gfp GFP_KNOWN_MASK = 0x7fffff;

inline constexpr bool gfpflags_allow_blocking(Gfp gfp) {
  return (gfp & __GFP_DIRECT_RECLAIM) != 0;
}

// ---- vm_struct flags (include/linux/vmalloc.h) --------------------------------
inline constexpr VmFlags VM_IOREMAP = 0x001;
inline constexpr VmFlags VM_ALLOC = 0x002;
inline constexpr VmFlags VM_MAP = 0x004;
inline constexpr VmFlags VM_USERMAP = 0x008;
inline constexpr VmFlags VM_VPAGES = 0x010; // pages array was itself vmalloc'ed (seed 003)
inline constexpr VmFlags VM_UNINITIALIZED = 0x020;
inline constexpr VmFlags VM_NO_GUARD = 0x040;
inline constexpr VmFlags VM_KASAN = 0x080;
inline constexpr VmFlags VM_FLUSH_RESET_PERMS = 0x100;
inline constexpr VmFlags VM_KNOWN_MASK = 0x1ff;

inline constexpr unsigned IOREMAP_MAX_ORDER = 7 + PAGE_SHIFT;
inline constexpr unsigned VMAP_MAX_ALLOC = 64;    // BITS_PER_LONG
inline constexpr unsigned VMAP_BBMAP_BITS = 1024; // VMAP_BBMAP_BITS_MAX on a 64-bit layout
inline constexpr u64 LAZY_MAX_BYTES_PER_FLS = u64{32} << 20; // lazy_max_pages: fls(cpus) * 32 MiB

// ---- user VMA flags (include/linux/mm.h) ----------------------------------------
inline constexpr u64 VM_READ = 0x00000001;
inline constexpr u64 VM_WRITE = 0x00000002;
inline constexpr u64 VM_EXEC = 0x00000004;
inline constexpr u64 VM_SHARED = 0x00000008;
inline constexpr u64 VM_MAYREAD = 0x00000010;
inline constexpr u64 VM_MAYWRITE = 0x00000020;
inline constexpr u64 VM_MAYEXEC = 0x00000040;
inline constexpr u64 VM_MAYSHARE = 0x00000080;
inline constexpr u64 VM_PFNMAP = 0x00000400;
inline constexpr u64 VM_IO = 0x00004000;
inline constexpr u64 VM_DONTEXPAND = 0x00040000;
inline constexpr u64 VM_DONTDUMP = 0x04000000;
inline constexpr u64 VM_MIXEDMAP = 0x10000000;

// ---- get_user_pages flags (access_remote_vm's gup_flags) -------------------------
inline constexpr unsigned FOLL_WRITE = 0x01;
inline constexpr unsigned FOLL_FORCE = 0x10;

// ---- errno ----------------------------------------------------------------------
// The host's <cerrno> macros are Linux's own values on every platform we
// build on; the asserts keep it that way (traces print errno names).
static_assert(ENOENT == 2 && E2BIG == 7 && ENOMEM == 12 && EFAULT == 14 && EBUSY == 16 &&
                  EINVAL == 22 && ERANGE == 34,
              "errno values must be Linux's");

// ERR_PTR convention: an address-or-error value, errors in the last 4095
// values of the 64-bit space (never a valid kernel address: that page is
// not part of any mapping vmcheck emulates).
inline constexpr u64 MAX_ERRNO = 4095;
inline constexpr u64 ERR_PTR(int err) {
  return static_cast<u64>(static_cast<std::int64_t>(err));
}
inline constexpr bool IS_ERR_VALUE(u64 x) {
  return x >= static_cast<u64>(-static_cast<std::int64_t>(MAX_ERRNO));
}
inline constexpr int PTR_ERR(u64 x) {
  return static_cast<int>(static_cast<std::int64_t>(x));
}

// ---- misc -----------------------------------------------------------------------
inline constexpr int NUMA_NO_NODE = -1;

// fls(): 1-based index of the most significant set bit, 0 for 0.
inline constexpr unsigned fls64(u64 x) {
  unsigned r = 0;
  while (x != 0) {
    ++r;
    x >>= 1;
  }
  return r;
}
inline constexpr bool is_power_of_2(u64 x) {
  return x != 0 && (x & (x - 1)) == 0;
}

} // namespace vmcheck
