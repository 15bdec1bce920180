// The user page-fault path: anonymous faults (zero page, then a fresh page
// on write), file faults through the page cache, copy on write, write
// notification of shared mappings; touch() and access_remote_vm() on top.
#include "usermm/internal.h"
#include "usermm/usermm.h"

#include <algorithm>
#include <climits>

namespace vmcheck {

using usermm_detail::hex;

namespace {

bool same_pte(u64 a, u64 b) {
  return ((a ^ b) & ~PTE_HW_UPDATED) == 0;
}

u64 linear_page_index(const VmAreaStruct &vma, u64 address) {
  return ((address - vma.vm_start) >> PAGE_SHIFT) + vma.vm_pgoff;
}

} // namespace

u64 UserMm::mk_pte(Pfn pfn, pgprot_t prot) const {
  return ((pfn << PAGE_SHIFT) & PTE_PFN_MASK) | (prot & ~PTE_PFN_MASK);
}

std::optional<Pfn> UserMm::vm_normal_page(u64 pte) const {
  if (!(pte & _PAGE_PRESENT) || (pte & _PAGE_SPECIAL))
    return std::nullopt;
  return (pte & PTE_PFN_MASK) >> PAGE_SHIFT;
}

void UserMm::page_add_rmap(Pfn pfn) {
  ++m_.mem().page(pfn).mapcount;
  ++mapped_[pfn];
}

void UserMm::page_remove_rmap(Pfn pfn) {
  auto it = mapped_.find(pfn);
  Page &pg = m_.mem().page(pfn);
  if (it == mapped_.end() || pg.mapcount <= 0)
    throw KernelBug("page_remove_rmap", "bad mapcount on pfn " + hex(pfn));
  --pg.mapcount;
  if (--it->second == 0)
    mapped_.erase(it);
}

void UserMm::set_pte_flush(const MmStruct &mm, u64 va, u64 slot, u64 value) {
  m_.pt().set_entry(slot, value);
  m_.mmu().flush_tlb_mm_range(mm.pgd, va & PAGE_MASK, (va & PAGE_MASK) + PAGE_SIZE);
}

std::optional<Pfn> UserMm::get_zero_page() {
  if (zero_pfn_)
    return zero_pfn_;
  // Node 0 and reserved: one frame for the life of the machine, never freed.
  auto pfn = m_.pages().alloc_pages_node(0, GFP_KERNEL | __GFP_ZERO, 0, PageOwner::Kernel);
  if (!pfn)
    return std::nullopt;
  m_.mem().page(*pfn).flags |= PG_reserved;
  zero_pfn_ = pfn;
  return zero_pfn_;
}

vm_fault_t UserMm::handle_mm_fault(VmAreaStruct &vma, u64 address, unsigned flags) {
  MmStruct *mm = find_mm(vma.mm);
  if (mm == nullptr || !vma.contains(address)) {
    warn("handle_mm_fault", "address " + hex(address) + " is not in the VMA", address);
    return VM_FAULT_SIGSEGV;
  }
  VmFault vmf;
  vmf.vma = vma.id;
  vmf.address = address & PAGE_MASK;
  vmf.flags = flags;
  vmf.pgoff = linear_page_index(vma, vmf.address);
  const PteRef r = m_.pt().walk(mm->pgd, vmf.address);
  if (!r.present()) {
    // A driver's mapping (or one a driver filled with pfns or inserted
    // pages) has no fault handler: what it did not map is not there.
    if (vma.device || (vma.vm_flags & (VM_IO | VM_PFNMAP | VM_MIXEDMAP)))
      return VM_FAULT_SIGBUS;
    if (vma.anonymous())
      return do_anonymous_page(*mm, vma, vmf);
    return do_fault(*mm, vma, vmf);
  }
  vmf.orig_pte = r.value;
  u64 entry = r.value | _PAGE_ACCESSED;
  if (flags & FAULT_FLAG_WRITE) {
    if (!(r.value & _PAGE_RW))
      return do_wp_page(*mm, vma, vmf, r.slot_pa);
    entry |= _PAGE_DIRTY;
  }
  // A spurious fault (the PTE already allows the access): only the
  // accessed/dirty bits move, which no TLB entry depends on.
  if (entry != r.value)
    m_.pt().set_entry(r.slot_pa, entry);
  return 0;
}

vm_fault_t UserMm::do_anonymous_page(MmStruct &mm, VmAreaStruct &vma, VmFault &vmf) {
  auto slot = m_.pt().ensure_pte_slot(mm.pgd, vmf.address);
  if (!slot)
    return VM_FAULT_OOM;
  if (!(vmf.flags & FAULT_FLAG_WRITE)) {
    auto zero = get_zero_page();
    if (!zero)
      return VM_FAULT_OOM;
    m_.pt().set_entry(*slot, mk_pte(*zero, vma.vm_page_prot & ~_PAGE_RW) | _PAGE_SPECIAL);
    return 0;
  }
  auto page = m_.alloc_pages(GFP_HIGHUSER | __GFP_ZERO, 0, PageOwner::User);
  if (!page)
    return VM_FAULT_OOM;
  u64 entry = mk_pte(*page, vma.vm_page_prot) | _PAGE_DIRTY;
  if (vma.vm_flags & VM_WRITE)
    entry |= _PAGE_RW;
  m_.pt().set_entry(*slot, entry);
  page_add_rmap(*page);
  return 0;
}

vm_fault_t UserMm::__do_fault(VmAreaStruct &vma, VmFault &vmf) {
  AddressSpace *as = find_mapping(vma.mapping);
  if (as == nullptr || vmf.pgoff >= as->nr_pages)
    return VM_FAULT_SIGBUS; // past the end of the file
  auto page = find_or_create_page(m_, *as, vmf.pgoff);
  if (!page)
    return VM_FAULT_OOM;
  m_.pages().get_page(*page); // the fault's reference, consumed by finish_fault
  vmf.page = page;
  return 0;
}

vm_fault_t UserMm::do_fault(MmStruct &, VmAreaStruct &vma, VmFault &vmf) {
  if (!(vmf.flags & FAULT_FLAG_WRITE))
    return do_read_fault(vma, vmf);
  if (!(vma.vm_flags & VM_SHARED))
    return do_cow_fault(vma, vmf);
  return do_shared_fault(vma, vmf);
}

vm_fault_t UserMm::do_read_fault(VmAreaStruct &vma, VmFault &vmf) {
  vm_fault_t ret = __do_fault(vma, vmf);
  if (ret & VM_FAULT_ERROR)
    return ret;
  ret |= finish_fault(vmf);
  if (ret & (VM_FAULT_ERROR | VM_FAULT_NOPAGE))
    m_.pages().put_page(*vmf.page);
  return ret;
}

vm_fault_t UserMm::do_cow_fault(VmAreaStruct &vma, VmFault &vmf) {
  auto cow = m_.alloc_pages(GFP_HIGHUSER, 0, PageOwner::User);
  if (!cow)
    return VM_FAULT_OOM;
  vm_fault_t ret = __do_fault(vma, vmf);
  if (ret & VM_FAULT_ERROR) {
    m_.pages().put_page(*cow);
    return ret;
  }
  m_.mem().copy_frame(*cow, *vmf.page);
  vmf.cow_page = cow;
  ret |= finish_fault(vmf);
  m_.pages().put_page(*vmf.page);
  if (ret & (VM_FAULT_ERROR | VM_FAULT_NOPAGE))
    m_.pages().put_page(*cow);
  return ret;
}

vm_fault_t UserMm::do_shared_fault(VmAreaStruct &vma, VmFault &vmf) {
  vm_fault_t ret = __do_fault(vma, vmf);
  if (ret & VM_FAULT_ERROR)
    return ret;
  // page_mkwrite of a file always succeeds here: blocks are never short.
  ret |= finish_fault(vmf);
  if (ret & (VM_FAULT_ERROR | VM_FAULT_NOPAGE)) {
    m_.pages().put_page(*vmf.page);
    return ret;
  }
  m_.mem().page(*vmf.page).flags |= PG_dirty; // fault_dirty_shared_page
  return ret;
}

void UserMm::wp_page_reuse(MmStruct &mm, VmAreaStruct &vma, VmFault &vmf, u64 slot) {
  u64 entry = m_.pt().read_entry(slot) | _PAGE_ACCESSED | _PAGE_DIRTY;
  if (vma.vm_flags & VM_WRITE)
    entry |= _PAGE_RW;
  set_pte_flush(mm, vmf.address, slot, entry);
}

vm_fault_t UserMm::wp_page_copy(MmStruct &mm, VmAreaStruct &vma, VmFault &vmf, u64 slot) {
  const auto old_page = vm_normal_page(vmf.orig_pte);
  const Pfn old_pfn = (vmf.orig_pte & PTE_PFN_MASK) >> PAGE_SHIFT;
  const bool from_zero = zero_pfn_ && old_pfn == *zero_pfn_;
  auto page = m_.alloc_pages(GFP_HIGHUSER | (from_zero ? __GFP_ZERO : 0), 0, PageOwner::User);
  if (!page)
    return VM_FAULT_OOM;
  if (!from_zero)
    m_.mem().copy_frame(*page, old_pfn);
  if (!same_pte(m_.pt().read_entry(slot), vmf.orig_pte)) {
    m_.pages().put_page(*page);
    return 0;
  }
  u64 entry = mk_pte(*page, vma.vm_page_prot) | _PAGE_DIRTY;
  if (vma.vm_flags & VM_WRITE)
    entry |= _PAGE_RW;
  page_add_rmap(*page);
  set_pte_flush(mm, vmf.address, slot, entry);
  // The old frame is unreachable from every TLB now: its reference can go.
  if (old_page) {
    page_remove_rmap(*old_page);
    m_.pages().put_page(*old_page);
  }
  return VM_FAULT_WRITE;
}

vm_fault_t UserMm::do_wp_page(MmStruct &mm, VmAreaStruct &vma, VmFault &vmf, u64 slot) {
  const bool shared_writable = (vma.vm_flags & (VM_WRITE | VM_SHARED)) == (VM_WRITE | VM_SHARED);
  const auto page = vm_normal_page(vmf.orig_pte);
  if (!page) {
    if (shared_writable)
      return finish_mkwrite_fault(vmf); // wp_pfn_shared
    return wp_page_copy(mm, vma, vmf, slot);
  }
  const Page &pg = m_.mem().peek(*page);
  if (pg.owner == PageOwner::User && pg.mapcount == 1 && pg.refcount == 1) {
    // An anonymous page nobody else can see: write to it in place.
    wp_page_reuse(mm, vma, vmf, slot);
    return VM_FAULT_WRITE;
  }
  if (shared_writable) {
    // wp_page_shared: page_mkwrite (always succeeds), then make it writable.
    const vm_fault_t ret = finish_mkwrite_fault(vmf);
    if (ret & VM_FAULT_WRITE)
      m_.mem().page(*page).flags |= PG_dirty;
    return ret;
  }
  return wp_page_copy(mm, vma, vmf, slot);
}

UserAccess UserMm::touch(u64 mmid, u64 addr, Access access) {
  MmStruct *mm = find_mm(mmid);
  if (mm == nullptr) {
    warn("touch", "no mm " + std::to_string(mmid), addr);
    return {VM_FAULT_SIGSEGV, Fault::NotPresent, 0};
  }
  const unsigned cpu = m_.current_cpu();
  unsigned flags = FAULT_FLAG_USER;
  if (access == Access::Write)
    flags |= FAULT_FLAG_WRITE;
  if (access == Access::Exec)
    flags |= FAULT_FLAG_INSTRUCTION;
  Fault last = Fault::None;
  // Each fault makes progress (not present -> present, read-only ->
  // writable), so three rounds always suffice; a fourth means a loop.
  for (int round = 0; round < 4; ++round) {
    const Translation t = m_.mmu().translate(cpu, mm->pgd, addr, access, true);
    if (t.ok())
      return {0, Fault::None, t.pa};
    last = t.fault;
    if (t.fault == Fault::StaleTlb)
      return {0, t.fault, 0};
    if (t.fault == Fault::NonCanonical)
      return {VM_FAULT_SIGSEGV, t.fault, 0};
    VmAreaStruct *vma = find_vma(mmid, addr);
    if (vma == nullptr || vma->vm_start > addr)
      return {VM_FAULT_SIGSEGV, t.fault, 0};
    // access_error(): the VMA must allow the access.
    const bool allowed = access == Access::Write  ? (vma->vm_flags & VM_WRITE) != 0
                         : access == Access::Exec ? (vma->vm_flags & VM_EXEC) != 0
                                                  : (vma->vm_flags & VM_ACCESS_FLAGS) != 0;
    if (!allowed)
      return {VM_FAULT_SIGSEGV, t.fault, 0};
    const vm_fault_t ret = handle_mm_fault(*vma, addr, flags);
    if (ret & VM_FAULT_ERROR)
      return {ret & VM_FAULT_ERROR, t.fault, 0};
  }
  m_.diag().finding("touch", "fault at " + hex(addr) + " did not resolve", addr);
  return {VM_FAULT_SIGBUS, last, 0};
}

std::optional<Pfn> UserMm::get_user_page(MmStruct &mm, u64 addr, unsigned gup_flags) {
  VmAreaStruct *vma = find_vma(mm.id, addr);
  if (vma == nullptr || vma->vm_start > addr)
    return std::nullopt;
  // check_vma_flags()
  if (vma->vm_flags & (VM_IO | VM_PFNMAP))
    return std::nullopt;
  const bool write = gup_flags & FOLL_WRITE;
  const bool force = gup_flags & FOLL_FORCE;
  if (write) {
    if (!(vma->vm_flags & VM_WRITE) && (!force || !is_cow_mapping(vma->vm_flags)))
      return std::nullopt;
#ifdef VMCHECK_MUTANT_gup_ignores_vm_read
  } else if (false) { // mutant: a remote read of a mapping without VM_READ goes through
#else
  } else if (!(vma->vm_flags & VM_READ) && (!force || !(vma->vm_flags & VM_MAYREAD))) {
#endif
    return std::nullopt;
  }
  const unsigned flags = FAULT_FLAG_REMOTE | (write ? FAULT_FLAG_WRITE : 0);
  for (int round = 0; round < 4; ++round) {
    const PteRef r = m_.pt().walk(mm.pgd, addr);
    if (r.present() && r.level == 1) {
      const Pfn pfn = r.pfn();
      // A forced write into a read-only private mapping accepts the dirty,
      // still read-only private copy its fault made (FOLL_COW).
      const bool cow_done = force && (r.value & _PAGE_DIRTY) && !(r.value & _PAGE_SPECIAL) &&
                            m_.mem().peek(pfn).owner == PageOwner::User;
      if (!write || (r.value & _PAGE_RW) || cow_done) {
        if (!(r.value & _PAGE_SPECIAL))
          return pfn;
        if (!write && zero_pfn_ && pfn == *zero_pfn_)
          return pfn;
        return std::nullopt; // a raw pfn has no page to hand out
      }
    }
    if (handle_mm_fault(*vma, addr, flags) & VM_FAULT_ERROR)
      return std::nullopt;
  }
  return std::nullopt;
}

int UserMm::access_remote_vm(u64 mmid, u64 addr, std::span<std::uint8_t> buf, unsigned gup_flags) {
  MmStruct *mm = find_mm(mmid);
  if (mm == nullptr) {
    warn("access_remote_vm", "no mm " + std::to_string(mmid), addr);
    return 0;
  }
  if (gup_flags & ~(FOLL_WRITE | FOLL_FORCE)) {
    warn("access_remote_vm", "gup flags " + hex(gup_flags) + " not supported", addr);
    return 0;
  }
  if (buf.size() > static_cast<std::size_t>(INT_MAX)) {
    warn("access_remote_vm", "length does not fit an int", addr);
    return 0;
  }
  const bool write = gup_flags & FOLL_WRITE;
  std::size_t done = 0;
  while (done < buf.size()) {
    const u64 cur = addr + done;
    if (cur < addr)
      break; // wrapped past the top of the address space
    auto pfn = get_user_page(*mm, cur, gup_flags);
    if (!pfn)
      break;
    const u64 off = cur & (PAGE_SIZE - 1);
    const std::size_t n = std::min<std::size_t>(buf.size() - done, PAGE_SIZE - off);
    const u64 pa = (*pfn << PAGE_SHIFT) + off;
    if (write) {
      m_.mem().write(pa, buf.subspan(done, n));
      if (m_.mem().peek(*pfn).owner == PageOwner::PageCache)
        m_.mem().page(*pfn).flags |= PG_dirty;
    } else {
      m_.mem().read(pa, buf.subspan(done, n));
    }
    done += n;
  }
  return static_cast<int>(done);
}

} // namespace vmcheck
