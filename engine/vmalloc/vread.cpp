// vread / vwrite: byte access to the vmalloc space "in a safe way" (seeds
// 000/001 for the modern backend, seed 003 for the legacy one).
//
// Modern (4.19): areas without a vm_struct (vm_map_ram, vmap blocks) and
// VM_IOREMAP areas are holes; holes read as zero and are not written; the
// guard page is not part of an area. vread returns 0 when the range meets no
// live area, else the whole count with the tail zero-filled; vwrite returns 0
// when nothing was copied into an area, else the whole count.
// Legacy (2.6): every area of the vmlist is walked, ioremap ones included;
// the result is the number of bytes walked (no tail fill).
// Both go through the page tables to the frames (the kernel uses
// vmalloc_to_page + kmap), never through a CPU's TLB; a page not mapped
// inside an area reads as zero and takes no write.
#include "vmalloc/vmalloc.h"

#include <algorithm>

namespace vmcheck {

namespace {

// Limits count so that addr + count does not wrap (the kernel's -addr clip).
u64 clip_count(u64 addr, u64 count) {
  return addr + count < count ? 0 - addr : count;
}

} // namespace

long Vmalloc::vread(std::span<std::uint8_t> buf, u64 addr) {
  ensure_initialized();
  u64 count = clip_count(addr, buf.size());
  const u64 buflen = count;
  u64 done = 0; // bytes of buf produced so far

  auto copy_out = [&](u64 n) { // n bytes of the area at addr -> buf
    while (n > 0) {
      const u64 chunk = std::min<u64>(n, PAGE_SIZE - (addr & (PAGE_SIZE - 1)));
      auto out = buf.subspan(done, chunk);
      if (auto pfn = vmalloc_to_page(addr))
        m_.mem().read((*pfn << PAGE_SHIFT) | (addr & (PAGE_SIZE - 1)), out);
      else
        std::fill(out.begin(), out.end(), 0);
      done += chunk;
      addr += chunk;
      count -= chunk;
      n -= chunk;
    }
  };
  auto zero_out = [&](u64 n) {
#ifndef VMCHECK_MUTANT_vread_no_zero_fill
    std::fill(buf.begin() + static_cast<std::ptrdiff_t>(done),
              buf.begin() + static_cast<std::ptrdiff_t>(done + n), 0);
#endif
    done += n;
    addr += n;
    count -= n;
  };

  for (const auto &[start, va] : busy_) {
    if (count == 0)
      break;
    const VmStruct *vm = va.vm_id ? vms_.at(va.vm_id).get() : nullptr;
    if (backend_ == Backend::Modern && vm == nullptr)
      continue;
    const u64 vaddr = va.va_start;
    const u64 vend = vm ? vaddr + get_vm_area_size(*vm) : va.va_end;
    if (addr >= vend)
      continue;
    // Modern follows seed 000: 0 when the range meets no live area, so a gap
    // is only filled on the way to an area the range reaches. Seed 003 fills
    // it regardless and counts it.
    if (backend_ == Backend::Modern && vaddr - addr >= count && addr < vaddr)
      break;
    if (addr < vaddr) {
      const u64 gap = std::min(count, vaddr - addr);
      zero_out(gap);
      if (count == 0)
        break;
    }
    const u64 n = std::min(count, vend - addr);
    if (backend_ == Backend::Modern && (vm->flags & VM_IOREMAP))
      zero_out(n);
    else
      copy_out(n);
  }
  if (backend_ == Backend::Legacy)
    return static_cast<long>(done);
  if (done == 0)
    return 0;
  if (done < buflen)
    zero_out(buflen - done);
  return static_cast<long>(buflen);
}

long Vmalloc::vwrite(std::span<const std::uint8_t> buf, u64 addr) {
  ensure_initialized();
  u64 count = clip_count(addr, buf.size());
  const u64 buflen = count;
  u64 done = 0;
  bool copied = false;

  auto skip = [&](u64 n) {
    done += n;
    addr += n;
    count -= n;
  };
  auto copy_in = [&](u64 n) {
    while (n > 0) {
      const u64 chunk = std::min<u64>(n, PAGE_SIZE - (addr & (PAGE_SIZE - 1)));
      if (auto pfn = vmalloc_to_page(addr))
        m_.mem().write((*pfn << PAGE_SHIFT) | (addr & (PAGE_SIZE - 1)), buf.subspan(done, chunk));
      skip(chunk);
      n -= chunk;
    }
  };

  for (const auto &[start, va] : busy_) {
    if (count == 0)
      break;
    const VmStruct *vm = va.vm_id ? vms_.at(va.vm_id).get() : nullptr;
    if (backend_ == Backend::Modern && vm == nullptr)
      continue;
    const u64 vaddr = va.va_start;
    const u64 vend = vm ? vaddr + get_vm_area_size(*vm) : va.va_end;
    if (addr >= vend)
      continue;
    if (addr < vaddr) {
      skip(std::min(count, vaddr - addr));
      if (count == 0)
        break;
    }
    const u64 n = std::min(count, vend - addr);
    if (backend_ == Backend::Modern && (vm->flags & VM_IOREMAP)) {
      skip(n);
    } else {
      copy_in(n);
      copied = true;
    }
  }
  if (backend_ == Backend::Legacy)
    return static_cast<long>(done);
  return copied ? static_cast<long>(buflen) : 0;
}

} // namespace vmcheck
