// remap_vmalloc_range() and remap_vmalloc_range_partial() (seed 000, 4.19
// semantics with get_vm_area_size and overflow checks): map the pages of a
// VM_USERMAP vmalloc area into a user VMA with vm_insert_page, so each
// mapped page holds its own reference and outlives a vfree of the area.
#include "usermm/internal.h"
#include "usermm/usermm.h"

namespace vmcheck {

using usermm_detail::hex;
using usermm_detail::page_align_checked;

int UserMm::remap_vmalloc_range_partial(VmAreaStruct &vma, u64 uaddr, u64 kaddr, u64 size) {
  u64 len = 0;
  if (!page_align_checked(size, &len) || len == 0)
    return -EINVAL;
  if (!page_aligned(uaddr) || !page_aligned(kaddr))
    return -EINVAL;
  const VmStruct *area = vmalloc_.find_vm_area(kaddr);
#ifdef VMCHECK_MUTANT_remap_no_usermap_check
  if (area == nullptr) // mutant: any vmalloc area may be mapped to user space
#else
  if (area == nullptr || !(area->flags & VM_USERMAP))
#endif
    return -EINVAL;
  const u64 area_end = area->addr + get_vm_area_size(*area);
  if (kaddr < area->addr || kaddr >= area_end || len > area_end - kaddr)
    return -EINVAL;
  for (u64 off = 0; off < len; off += PAGE_SIZE) {
#ifdef VMCHECK_MUTANT_remap_kaddr_not_advanced
    const auto page = vmalloc_.vmalloc_to_page(kaddr); // mutant: every user page maps the first
#else
    const auto page = vmalloc_.vmalloc_to_page(kaddr + off);
#endif
    // The kernel hands vm_insert_page a NULL page here and oopses.
    if (!page)
      throw KernelBug("remap_vmalloc_range_partial", "no page mapped at " + hex(kaddr + off));
    if (int err = vm_insert_page(vma, uaddr + off, *page); err != 0)
      return err;
  }
  vma.vm_flags |= VM_DONTEXPAND | VM_DONTDUMP;
  return 0;
}

int UserMm::remap_vmalloc_range(VmAreaStruct &vma, u64 addr, u64 pgoff) {
  if (pgoff > (~u64{0} >> PAGE_SHIFT))
    return -EINVAL;
  const u64 off = pgoff << PAGE_SHIFT;
  if (addr > ~u64{0} - off)
    return -EINVAL;
  return remap_vmalloc_range_partial(vma, vma.vm_start, addr + off, vma.vm_end - vma.vm_start);
}

} // namespace vmcheck
