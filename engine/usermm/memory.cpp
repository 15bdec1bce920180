// The mm/memory.c functions of seed 004: zapping (unmap_vmas,
// zap_page_range*, zap_vma_ptes, unmap_mapping_*), inserting pages and pfns
// (vm_insert_page, vmf_insert_pfn*, remap_pfn_range, vm_iomap_memory), the
// tail of the fault path (alloc_set_pte, finish_fault,
// finish_mkwrite_fault) and follow_pfn.
#include "usermm/internal.h"
#include "usermm/usermm.h"

#include <algorithm>
#include <utility>
#include <vector>

namespace vmcheck {

using usermm_detail::hex;
using usermm_detail::page_align_checked;

namespace {

constexpr u64 kUserPteBits = _PAGE_PRESENT | _PAGE_RW | _PAGE_USER | _PAGE_PWT | _PAGE_PCD |
                             _PAGE_ACCESSED | _PAGE_DIRTY | _PAGE_NX;

} // namespace

bool UserMm::user_prot_ok(pgprot_t prot) const {
  if (prot == PAGE_PROTNONE_USER)
    return true;
  return (prot & _PAGE_PRESENT) && (prot & _PAGE_USER) && (prot & ~kUserPteBits) == 0;
}

// ---- zapping ------------------------------------------------------------------------------

void UserMm::zap_pte_range(MmuGather &tlb, VmAreaStruct &vma, u64 start, u64 end,
                           const ZapDetails *details) {
  MmStruct *mm = find_mm(vma.mm);
  PageTables &pt = m_.pt();
  std::vector<std::pair<u64, PteRef>> leaves;
  pt.for_each_leaf(mm->pgd, start, end,
                   [&](u64 va, const PteRef &r) { leaves.emplace_back(va, r); });
  for (const auto &[va, r] : leaves) {
    const auto page = vm_normal_page(r.value);
    if (page && details && details->check_mapping != 0) {
      // Private copies belong to no file: an invalidation keeps them.
      const Page &pg = m_.mem().peek(*page);
      if (pg.owner != PageOwner::PageCache || pg.mapping != details->check_mapping)
        continue;
    }
    pt.clear(mm->pgd, va);
    tlb.remove_tlb_entry(va);
    if (!page)
      continue;
    Page &pg = m_.mem().page(*page);
    if (pg.owner == PageOwner::PageCache && (r.value & _PAGE_DIRTY))
      pg.flags |= PG_dirty;
    page_remove_rmap(*page);
    tlb.remove_page(*page);
  }
}

void UserMm::unmap_single_vma(MmuGather &tlb, VmAreaStruct &vma, u64 start_addr, u64 end_addr,
                              const ZapDetails *details) {
  const u64 start = std::max(vma.vm_start, start_addr);
  if (start >= vma.vm_end)
    return;
  const u64 end = std::min(vma.vm_end, end_addr);
  if (end <= vma.vm_start || start >= end)
    return;
  zap_pte_range(tlb, vma, start, end, details);
}

void UserMm::unmap_vmas(MmuGather &tlb, VmAreaStruct &vma, u64 start, u64 end) {
  MmStruct *mm = find_mm(vma.mm);
  if (mm == nullptr || tlb.root() != mm->pgd) {
    warn("unmap_vmas", "the gather is not for this VMA's mm", start);
    return;
  }
  if (!page_aligned(start) || !page_aligned(end) || end < start) {
    warn("unmap_vmas", "bad range " + hex(start) + "-" + hex(end), start);
    return;
  }
  for (auto it = mm->vmas.find(vma.vm_start); it != mm->vmas.end() && it->second.vm_start < end;
       ++it)
    unmap_single_vma(tlb, it->second, start, end, nullptr);
}

namespace {

// Validates a zap range; the end, or 0 (with a WARN) when it is bad.
u64 zap_end(DiagLog &diag, const char *fn, u64 start, u64 size) {
  if (!page_aligned(start) || !page_aligned(size) || size == 0 || size > ~start) {
    diag.warn(fn, "bad range " + hex(start) + "+" + hex(size), start);
    return 0;
  }
  return start + size;
}

} // namespace

void UserMm::zap_page_range(VmAreaStruct &vma, u64 start, u64 size) {
  const u64 end = zap_end(m_.diag(), "zap_page_range", start, size);
  MmStruct *mm = find_mm(vma.mm);
  if (end == 0 || mm == nullptr)
    return;
  MmuGather tlb(m_, mm->pgd, start, end);
  for (auto it = mm->vmas.find(vma.vm_start); it != mm->vmas.end() && it->second.vm_start < end;
       ++it)
    unmap_single_vma(tlb, it->second, start, end, nullptr);
  tlb.finish();
}

void UserMm::zap_page_range_single(VmAreaStruct &vma, u64 address, u64 size,
                                   const ZapDetails *details) {
  const u64 end = zap_end(m_.diag(), "zap_page_range_single", address, size);
  MmStruct *mm = find_mm(vma.mm);
  if (end == 0 || mm == nullptr)
    return;
  MmuGather tlb(m_, mm->pgd, address, end);
  unmap_single_vma(tlb, vma, address, end, details);
  tlb.finish();
}

void UserMm::zap_vma_ptes(VmAreaStruct &vma, u64 address, u64 size) {
  if (!(vma.vm_flags & VM_PFNMAP)) {
    warn("zap_vma_ptes", "VMA " + hex(vma.vm_start) + " is not VM_PFNMAP", address);
    return;
  }
  if (address < vma.vm_start || size > ~address || address + size > vma.vm_end) {
    warn("zap_vma_ptes",
         "range " + hex(address) + "+" + hex(size) + " is not inside the VMA " + hex(vma.vm_start) +
             "-" + hex(vma.vm_end),
         address);
    return;
  }
  zap_page_range_single(vma, address, size, nullptr);
}

void UserMm::unmap_mapping_pages(u64 mapping, u64 start, u64 nr, bool even_cows) {
  if (find_mapping(mapping) == nullptr) {
    warn("unmap_mapping_pages", "no address_space " + std::to_string(mapping));
    return;
  }
  ZapDetails details;
  details.check_mapping = even_cows ? 0 : mapping;
  details.first_index = start;
  details.last_index = start + nr - 1;
  if (details.last_index < details.first_index)
    details.last_index = ~u64{0}; // nr == 0, or a window past the top: to the end
  // i_mmap: every VMA of every mm that maps this object, in id order.
  std::vector<std::pair<u64, u64>> vmas; // (mm, vm_start)
  for (const auto &[mid, mm] : mms_)
    for (const auto &[s, vma] : mm.vmas)
      if (vma.mapping == mapping)
        vmas.emplace_back(mid, s);
  for (const auto &[mid, s] : vmas) {
    VmAreaStruct &vma = mms_.at(mid).vmas.at(s);
    const u64 vba = vma.vm_pgoff;
    const u64 vea = vba + vma.pages() - 1;
    if (vea < details.first_index || vba > details.last_index)
      continue;
    const u64 zba = std::max(details.first_index, vba);
    const u64 zea = std::min(details.last_index, vea);
    zap_page_range_single(vma, vma.vm_start + ((zba - vba) << PAGE_SHIFT),
                          (zea - zba + 1) << PAGE_SHIFT, &details);
  }
}

void UserMm::unmap_mapping_range(u64 mapping, std::int64_t holebegin, std::int64_t holelen,
                                 int even_cows) {
  if (holebegin < 0 || holelen < 0) {
    warn("unmap_mapping_range",
         "negative hole " + std::to_string(holebegin) + "+" + std::to_string(holelen));
    return;
  }
  const u64 hba = static_cast<u64>(holebegin) >> PAGE_SHIFT;
  const u64 hlen = (static_cast<u64>(holelen) + PAGE_SIZE - 1) >> PAGE_SHIFT;
  unmap_mapping_pages(mapping, hba, hlen, even_cows != 0);
}

// ---- inserting pages and pfns -----------------------------------------------------------

int UserMm::insert_page(VmAreaStruct &vma, u64 addr, Pfn page, pgprot_t prot) {
  MmStruct *mm = find_mm(vma.mm);
  auto slot = m_.pt().ensure_pte_slot(mm->pgd, addr);
  if (!slot)
    return -ENOMEM;
  if (m_.pt().read_entry(*slot) != 0)
    return -EBUSY;
  m_.pages().get_page(page);
  page_add_rmap(page);
  m_.pt().set_entry(*slot, mk_pte(page, prot));
  return 0;
}

int UserMm::vm_insert_page(VmAreaStruct &vma, u64 addr, Pfn page) {
  if (!vma.contains(addr))
    return -EFAULT;
  if (!page_aligned(addr)) {
    warn("vm_insert_page", "address " + hex(addr) + " is not page aligned", addr);
    return -EINVAL;
  }
  if (!m_.mem().pfn_valid(page))
    return -EINVAL;
  const Page &pg = m_.mem().peek(page);
  // Only a live, order-0, non-anonymous kernel page may be inserted.
  if (pg.refcount == 0 || (pg.flags & (PG_head | PG_tail | PG_reserved)) ||
      pg.owner == PageOwner::Free || pg.owner == PageOwner::User ||
      pg.owner == PageOwner::PageTable)
    return -EINVAL;
  if (!(vma.vm_flags & VM_MIXEDMAP)) {
    if (vma.vm_flags & VM_PFNMAP)
      throw KernelBug("vm_insert_page", "VMA " + hex(vma.vm_start) + " is VM_PFNMAP");
    vma.vm_flags |= VM_MIXEDMAP;
  }
  return insert_page(vma, addr, page, vma.vm_page_prot);
}

vm_fault_t UserMm::vmf_insert_pfn_prot(VmAreaStruct &vma, u64 addr, u64 pfn, pgprot_t pgprot) {
  const u64 f = vma.vm_flags;
  if (!(f & (VM_PFNMAP | VM_MIXEDMAP)))
    throw KernelBug("vmf_insert_pfn_prot", "VMA is neither VM_PFNMAP nor VM_MIXEDMAP");
  if ((f & (VM_PFNMAP | VM_MIXEDMAP)) == (VM_PFNMAP | VM_MIXEDMAP))
    throw KernelBug("vmf_insert_pfn_prot", "VMA is both VM_PFNMAP and VM_MIXEDMAP");
  if ((f & VM_PFNMAP) && is_cow_mapping(f))
    throw KernelBug("vmf_insert_pfn_prot", "VM_PFNMAP on a COW mapping");
  if ((f & VM_MIXEDMAP) && m_.mem().pfn_valid(pfn))
    throw KernelBug("vmf_insert_pfn_prot", "VM_MIXEDMAP with a pfn that has a struct page");
  if (!vma.contains(addr))
    return VM_FAULT_SIGBUS;
  if (!page_aligned(addr) || !user_prot_ok(pgprot)) {
    warn("vmf_insert_pfn_prot", "unaligned address or bad pgprot " + hex(pgprot), addr);
    return VM_FAULT_SIGBUS;
  }
  if (!m_.mem().pfn_valid(pfn)) {
    warn("vmf_insert_pfn_prot", "pfn " + hex(pfn) + " is not memory (the machine has no MMIO)",
         addr);
    return VM_FAULT_SIGBUS;
  }
  MmStruct *mm = find_mm(vma.mm);
  auto slot = m_.pt().ensure_pte_slot(mm->pgd, addr);
  if (!slot)
    return VM_FAULT_OOM;
  // An existing PTE is someone else's fault already served: not an error.
  if (m_.pt().read_entry(*slot) == 0)
    m_.pt().set_entry(*slot, mk_pte(pfn, pgprot) | _PAGE_SPECIAL);
  return VM_FAULT_NOPAGE;
}

vm_fault_t UserMm::vmf_insert_pfn(VmAreaStruct &vma, u64 addr, u64 pfn) {
  return vmf_insert_pfn_prot(vma, addr, pfn, vma.vm_page_prot);
}

int UserMm::remap_pfn_range(VmAreaStruct &vma, u64 addr, u64 pfn, u64 size, pgprot_t prot) {
  u64 len = 0;
  if (!page_align_checked(size, &len) || len > ~addr) {
    warn("remap_pfn_range", "range " + hex(addr) + "+" + hex(size) + " wraps", addr);
    return -EINVAL;
  }
  const u64 end = addr + len;
  if (addr >= end)
    throw KernelBug("remap_pfn_range", "empty range at " + hex(addr));
  if (!page_aligned(addr) || addr < vma.vm_start || end > vma.vm_end) {
    warn("remap_pfn_range",
         "range " + hex(addr) + "-" + hex(end) + " is not a page range inside the VMA", addr);
    return -EINVAL;
  }
  if (is_cow_mapping(vma.vm_flags) && (addr != vma.vm_start || end != vma.vm_end))
    return -EINVAL; // a COW mapping is remapped whole, so vm_pgoff can name its first pfn
  if (!user_prot_ok(prot)) {
    warn("remap_pfn_range", "bad prot " + hex(prot), addr);
    return -EINVAL;
  }
  const u64 pages = len >> PAGE_SHIFT;
  if (pfn + pages < pfn || !m_.mem().pfn_valid(pfn) || !m_.mem().pfn_valid(pfn + pages - 1)) {
    warn("remap_pfn_range",
         "pfns " + hex(pfn) + "+" + hex(pages) + " are not memory (the machine has no MMIO)", addr);
    return -EINVAL;
  }
  MmStruct *mm = find_mm(vma.mm);
  bool busy = false;
  m_.pt().for_each_leaf(mm->pgd, addr, end, [&](u64, const PteRef &) { busy = true; });
  if (busy)
    throw KernelBug("remap_pfn_range", "a PTE is already present in " + hex(addr) + "-" + hex(end));
  if (is_cow_mapping(vma.vm_flags))
    vma.vm_pgoff = pfn;
  vma.vm_flags |= VM_IO | VM_PFNMAP | VM_DONTEXPAND | VM_DONTDUMP;
  for (u64 i = 0; i < pages; ++i) {
    const u64 va = addr + (i << PAGE_SHIFT);
    auto slot = m_.pt().ensure_pte_slot(mm->pgd, va);
    if (!slot) {
      // Leave nothing half mapped: the PTEs made so far go again.
      if (i != 0)
        zap_page_range_single(vma, addr, i << PAGE_SHIFT, nullptr);
      return -ENOMEM;
    }
    m_.pt().set_entry(*slot, mk_pte(pfn + i, prot) | _PAGE_SPECIAL);
  }
  return 0;
}

int UserMm::vm_iomap_memory(VmAreaStruct &vma, u64 start, u64 len) {
  if (start + len < start)
    return -EINVAL;
  len += start & (PAGE_SIZE - 1);
  u64 pfn = start >> PAGE_SHIFT;
  if (len > ~u64{0} - (PAGE_SIZE - 1))
    return -EINVAL;
  u64 pages = (len + PAGE_SIZE - 1) >> PAGE_SHIFT;
  if (pfn + pages < pfn)
    return -EINVAL;
  if (vma.vm_pgoff > pages)
    return -EINVAL;
  pfn += vma.vm_pgoff;
  pages -= vma.vm_pgoff;
  const u64 vm_len = vma.vm_end - vma.vm_start;
  if ((vm_len >> PAGE_SHIFT) > pages)
    return -EINVAL;
  return remap_pfn_range(vma, vma.vm_start, pfn, vm_len, vma.vm_page_prot);
}

// ---- the tail of the fault path -----------------------------------------------------------

vm_fault_t UserMm::finish_mkwrite_fault(VmFault &vmf) {
  VmAreaStruct *vma = vma_by_id(vmf.vma);
  if (vma == nullptr || !vma->contains(vmf.address)) {
    warn("finish_mkwrite_fault", "no VMA " + std::to_string(vmf.vma) + " at " + hex(vmf.address),
         vmf.address);
    return 0;
  }
  if (!(vma->vm_flags & VM_SHARED)) {
    // Making a private PTE writable would write through to a shared page.
    warn("finish_mkwrite_fault", "VMA " + hex(vma->vm_start) + " is not VM_SHARED", vmf.address);
    return 0;
  }
  MmStruct *mm = find_mm(vma->mm);
  const u64 address = vmf.address & PAGE_MASK;
  const PteRef r = m_.pt().walk(mm->pgd, address);
  // Raced with another fault (or a zap): the PTE is not the one we saw.
  if (!r.present() || r.level != 1 || ((r.value ^ vmf.orig_pte) & ~PTE_HW_UPDATED) != 0)
    return 0;
  wp_page_reuse(*mm, *vma, vmf, r.slot_pa);
  return VM_FAULT_WRITE;
}

vm_fault_t UserMm::alloc_set_pte(VmFault &vmf, Pfn page) {
  VmAreaStruct *vma = vma_by_id(vmf.vma);
  if (vma == nullptr || !vma->contains(vmf.address)) {
    warn("alloc_set_pte", "no VMA " + std::to_string(vmf.vma) + " at " + hex(vmf.address),
         vmf.address);
    return VM_FAULT_SIGBUS;
  }
  const bool write = vmf.flags & FAULT_FLAG_WRITE;
  const bool new_anon = write && !(vma->vm_flags & VM_SHARED);
  const Page *pg = m_.mem().pfn_valid(page) ? &m_.mem().peek(page) : nullptr;
  if (pg == nullptr || pg->refcount == 0 || (pg->flags & (PG_head | PG_tail | PG_reserved)) ||
      pg->owner == PageOwner::Free || pg->owner == PageOwner::PageTable ||
      (new_anon && pg->mapcount != 0)) {
    // A private write maps a fresh copy; anything else would let a write
    // reach a page others still see.
    warn("alloc_set_pte", "pfn " + hex(page) + " cannot be mapped here", vmf.address);
    return VM_FAULT_SIGBUS;
  }
  MmStruct *mm = find_mm(vma->mm);
  const u64 address = vmf.address & PAGE_MASK;
  auto slot = m_.pt().ensure_pte_slot(mm->pgd, address);
  if (!slot)
    return VM_FAULT_OOM;
  if (m_.pt().read_entry(*slot) != 0)
    return VM_FAULT_NOPAGE;
  u64 entry = mk_pte(page, vma->vm_page_prot);
  if (write) {
    entry |= _PAGE_DIRTY;
    if (vma->vm_flags & VM_WRITE)
      entry |= _PAGE_RW;
  }
  m_.pt().set_entry(*slot, entry);
  page_add_rmap(page);
  return 0;
}

vm_fault_t UserMm::finish_fault(VmFault &vmf) {
  const VmAreaStruct *vma = vma_by_id(vmf.vma);
  if (vma == nullptr) {
    warn("finish_fault", "no VMA " + std::to_string(vmf.vma), vmf.address);
    return VM_FAULT_SIGBUS;
  }
  const bool cow = (vmf.flags & FAULT_FLAG_WRITE) && !(vma->vm_flags & VM_SHARED);
  const std::optional<Pfn> page = cow ? vmf.cow_page : vmf.page;
  if (!page) {
    warn("finish_fault", cow ? "no cow_page prepared" : "no page prepared", vmf.address);
    return VM_FAULT_SIGBUS;
  }
  return alloc_set_pte(vmf, *page);
}

int UserMm::follow_pfn(VmAreaStruct &vma, u64 address, u64 *pfn) {
  if (!(vma.vm_flags & (VM_IO | VM_PFNMAP)))
    return -EINVAL;
  const MmStruct *mm = find_mm(vma.mm);
  const PteRef r = m_.pt().walk(mm->pgd, address);
  if (!r.present() || r.level != 1)
    return -EINVAL;
  *pfn = r.pfn();
  return 0;
}

} // namespace vmcheck
