// User PTEs, the fault path and what user space reads: see user.h.
//
// A PTE here is what it maps (PteKind) and the protection bits the MMU
// looks at. Contents are kept for what user space owns (anonymous pages
// and private copies) and for file pages user space wrote; a file page
// never written reads as the machine's file contents, a shmem page as
// zeros. Kernel pages and raw pfns are the kernel's: their contents are not
// the user model's to know.
#include "spec/user.h"

#include <algorithm>
#include <stdexcept>

namespace vmcheck::spec {

namespace {

// A never-written file page's byte: the machine fills file pages
// deterministically so that every read is predictable.
std::uint8_t file_byte(u64 index, u64 off) {
  return static_cast<std::uint8_t>((index * 31 + off) & 0xff);
}

bool mmu_allows(pgprot_t prot, UserAccess access) {
  if ((prot & _PAGE_PRESENT) == 0 || (prot & _PAGE_USER) == 0)
    return false;
  if (access == UserAccess::Write)
    return (prot & _PAGE_RW) != 0;
  if (access == UserAccess::Exec)
    return (prot & _PAGE_NX) == 0;
  return true;
}

bool access_allowed(const UserVma &v, UserAccess access) {
  switch (access) {
  case UserAccess::Write:
    return (v.flags & VM_WRITE) != 0;
  case UserAccess::Exec:
    return (v.flags & VM_EXEC) != 0;
  case UserAccess::Read:
    break;
  }
  return (v.flags & (VM_READ | VM_WRITE | VM_EXEC)) != 0;
}

// A special PTE maps no page the kernel would hand out or copy as one.
bool special(PteKind k) {
  return k == PteKind::Zero || k == PteKind::Pfn;
}

} // namespace

u64 UserSpace::new_anon(Bytes contents) {
  const u64 id = next_anon_++;
  anon_.emplace(id, std::move(contents));
  return id;
}

std::uint8_t UserSpace::PageBytes::at(u64 off) const {
  if (kept != nullptr)
    return (*kept)[off];
  return file ? file_byte(index, off) : 0;
}

UserSpace::PageBytes UserSpace::page_bytes(const UserPte &pte) const {
  PageBytes b;
  switch (pte.kind) {
  case PteKind::Zero:
    break;
  case PteKind::Anon: {
    const Bytes &kept = anon_.at(pte.ref);
    b.kept = kept ? &*kept : nullptr;
    b.known = kept.has_value();
    break;
  }
  case PteKind::Cache:
    if (const auto w = written_.find({pte.ref, pte.index}); w != written_.end())
      b.kept = &w->second;
    b.file = !files_.at(pte.ref).shmem;
    b.index = pte.index;
    break;
  case PteKind::Page:
  case PteKind::Pfn:
    b.known = false;
    break;
  }
  return b;
}

UserSpace::Bytes UserSpace::contents_of(const UserPte &pte) const {
  const PageBytes b = page_bytes(pte);
  if (!b.known)
    return std::nullopt;
  std::vector<std::uint8_t> page(PAGE_SIZE);
  for (u64 off = 0; off < PAGE_SIZE; ++off)
    page[off] = b.at(off);
  return page;
}

void UserSpace::read_bytes(const UserPte &pte, u64 off, u64 n, RemoteAccess &out) const {
  const PageBytes b = page_bytes(pte);
  for (u64 i = off; i < off + n; ++i)
    out.bytes.push_back(static_cast<char>(b.at(i)));
  out.known.insert(out.known.end(), n, b.known);
}

const UserPte *UserSpace::pte(u64 mm, u64 va) const {
  const auto m = ptes_.find(mm);
  if (m == ptes_.end())
    return nullptr;
  const auto it = m->second.find(va & PAGE_MASK);
  return it == m->second.end() ? nullptr : &it->second;
}

void UserSpace::drop_pte(Ptes &ptes, Ptes::iterator it) {
  if (it->second.kind == PteKind::Anon)
    anon_.erase(it->second.ref);
  ptes.erase(it);
}

void UserSpace::zap_all(u64 mm, u64 start, u64 end) {
  Ptes &ptes = ptes_[mm];
  for (auto it = ptes.lower_bound(start); it != ptes.end() && it->first < end;)
    drop_pte(ptes, it++);
}

void UserSpace::reprotect(u64 mm, const UserVma &vma) {
  const pgprot_t prot = page_prot(vma);
  Ptes &ptes = ptes_[mm];
  for (auto it = ptes.lower_bound(vma.start); it != ptes.end() && it->first < vma.end; ++it)
    it->second.prot = prot;
}

// ---- the fault path ---------------------------------------------------------------------------

UserSpace::FaultResult UserSpace::fault(u64 mm, const UserVma &vma, u64 va, bool write,
                                        bool alloc_fails) {
  Ptes &ptes = ptes_[mm];
  if (ptes.count(va) != 0) {
    if (write && (ptes.at(va).prot & _PAGE_RW) == 0)
      return wp_page(mm, vma, va, alloc_fails);
    return FaultResult::Done; // spurious: the PTE already allows it
  }
  // What a driver did not map is not there: no fault handler.
  if (vma.driver())
    return FaultResult::Sigbus;
  const pgprot_t prot = page_prot(vma);
  const pgprot_t writable = (vma.flags & VM_WRITE) ? _PAGE_RW : 0;
  if (vma.mapping == 0) {
    if (alloc_fails)
      return FaultResult::Oom;
    if (write)
      ptes[va] = {PteKind::Anon, prot | writable, new_anon(std::vector<std::uint8_t>(PAGE_SIZE, 0)),
                  0};
    else
      ptes[va] = {PteKind::Zero, prot & ~_PAGE_RW, 0, 0};
    return FaultResult::Done;
  }
  const u64 index = vma.pgoff + ((va - vma.start) >> PAGE_SHIFT);
  const bool past_eof = index >= files_.at(vma.mapping).nr_pages;
  const UserPte cache{PteKind::Cache, prot, vma.mapping, index};
  if (write && (vma.flags & VM_SHARED) == 0) {
    // The private copy is allocated before the file page is looked up.
    if (alloc_fails)
      return FaultResult::Oom;
    if (past_eof)
      return FaultResult::Sigbus;
    ptes[va] = {PteKind::Anon, prot | writable, new_anon(contents_of(cache)), 0};
    return FaultResult::Done;
  }
  if (past_eof)
    return FaultResult::Sigbus;
  if (alloc_fails)
    return FaultResult::Oom;
  ptes[va] = cache;
  if (write)
    ptes[va].prot |= writable;
  return FaultResult::Done;
}

UserSpace::FaultResult UserSpace::wp_page(u64 mm, const UserVma &vma, u64 va, bool alloc_fails) {
  UserPte &p = ptes_[mm].at(va);
  const bool shared_writable = (vma.flags & (VM_WRITE | VM_SHARED)) == (VM_WRITE | VM_SHARED);
  const pgprot_t writable = (vma.flags & VM_WRITE) ? _PAGE_RW : 0;
  // User space's own page, or a shared mapping's page once the mapping is
  // told of the write: written in place.
  if (p.kind == PteKind::Anon || shared_writable) {
    p.prot |= writable;
    return FaultResult::Done;
  }
  if (alloc_fails)
    return FaultResult::Oom;
  // Copy on write: the zero page copies as zeros, a raw pfn or a kernel
  // page as bytes the user model does not know.
  const UserPte copy{PteKind::Anon, page_prot(vma) | writable, new_anon(contents_of(p)), 0};
  p = copy;
  return FaultResult::Done;
}

AccessEnd UserSpace::touch(u64 mm, u64 addr, UserAccess access, bool alloc_fails) {
  const u64 va = addr & PAGE_MASK;
  // Each fault makes progress (not present -> present, read-only ->
  // writable), so three rounds resolve any access; a fourth means a loop.
  for (int round = 0; round < 4; ++round) {
    if (const UserPte *p = pte(mm, va); p != nullptr && mmu_allows(p->prot, access))
      return AccessEnd::Ok;
    const UserVma *v = covering(mms_.at(mm), addr);
    if (v == nullptr || !access_allowed(*v, access))
      return AccessEnd::Sigsegv;
    switch (fault(mm, *v, va, access == UserAccess::Write, alloc_fails)) {
    case FaultResult::Done:
      break;
    case FaultResult::Sigbus:
      return AccessEnd::Sigbus;
    case FaultResult::Oom:
      return AccessEnd::Oom;
    }
  }
  return AccessEnd::Sigbus; // a fault that resolves nothing
}

UserSpace::RemoteAccess UserSpace::access_remote_vm(u64 mm, u64 addr, u64 len,
                                                    std::string_view data, unsigned gup_flags,
                                                    bool alloc_fails, u64 engine_done) {
  const bool write = (gup_flags & FOLL_WRITE) != 0;
  const bool force = (gup_flags & FOLL_FORCE) != 0;
  RemoteAccess r;
  while (r.done < len) {
    const u64 cur = addr + r.done;
    if (cur < addr)
      break; // past the top of the address space
    const UserVma *v = covering(mms_.at(mm), cur);
    if (v == nullptr || (v->flags & (VM_IO | VM_PFNMAP)) != 0)
      break;
    const bool allowed = write ? (v->flags & VM_WRITE) != 0 || (force && cow_mapping(v->flags))
                               : (v->flags & VM_READ) != 0 || (force && (v->flags & VM_MAYREAD));
    if (!allowed)
      break;
    const u64 va = cur & PAGE_MASK;
    const bool fails_here = alloc_fails && r.done == engine_done;
    bool got = false, decided = false;
    for (int round = 0; round < 4 && !decided; ++round) {
      if (const UserPte *p = pte(mm, va); p != nullptr) {
        // A forced write into a read-only private mapping takes the
        // private copy its fault made.
        if (!write || (p->prot & _PAGE_RW) || (force && p->kind == PteKind::Anon)) {
          got = !special(p->kind) || (!write && p->kind == PteKind::Zero);
          decided = true;
          break;
        }
      }
      if (fault(mm, *v, va, write, fails_here) != FaultResult::Done)
        decided = true;
    }
    if (!got)
      break;
    const u64 off = cur & (PAGE_SIZE - 1);
    const u64 n = std::min(len - r.done, PAGE_SIZE - off);
    const UserPte &p = ptes_[mm].at(va);
    if (write) {
      const auto put = [&](std::vector<std::uint8_t> &page) {
        std::copy_n(data.begin() + static_cast<std::ptrdiff_t>(r.done), n,
                    page.begin() + static_cast<std::ptrdiff_t>(off));
      };
      if (p.kind == PteKind::Anon) {
        if (Bytes &b = anon_.at(p.ref))
          put(*b);
      } else if (p.kind == PteKind::Cache) {
        auto w = written_.find({p.ref, p.index});
        if (w == written_.end())
          w = written_.emplace(std::pair(p.ref, p.index), *contents_of(p)).first;
        put(w->second);
      }
    } else {
      read_bytes(p, off, n, r);
    }
    r.done += n;
  }
  return r;
}

// ---- zapping ------------------------------------------------------------------------------------

void UserSpace::zap(u64 mm, u64 first_vma_start, u64 start, u64 end, u64 only_mapping,
                    bool single) {
  Ptes &ptes = ptes_[mm];
  for (const UserVma &v : mms_.at(mm)) {
    if (v.start < first_vma_start)
      continue;
    if (v.start >= end)
      break;
    const u64 lo = std::max(v.start, start), hi = std::min(v.end, end);
    for (auto it = ptes.lower_bound(lo); it != ptes.end() && it->first < hi;) {
      // zap_details: only this object's page-cache pages (and special
      // PTEs, which map no page) go.
      const UserPte &p = it->second;
      const bool keep = only_mapping != 0 && !special(p.kind) &&
                        !(p.kind == PteKind::Cache && p.ref == only_mapping);
      if (keep)
        ++it;
      else
        drop_pte(ptes, it++);
    }
    if (single)
      break;
  }
}

void UserSpace::unmap_mapping_pages(u64 file, u64 start, u64 nr, bool even_cows) {
  u64 last = start + nr - 1;
  if (nr == 0 || last < start)
    last = ~u64{0}; // to the end of the file
  for (const auto &[mm, vmas] : mms_)
    for (const UserVma &v : vmas) {
      if (v.mapping != file)
        continue;
      const u64 first_page = v.pgoff, last_page = v.pgoff + v.pages() - 1;
      if (last_page < start || first_page > last)
        continue;
      const u64 lo = std::max(start, first_page), hi = std::min(last, last_page);
      zap(mm, v.start, v.start + ((lo - first_page) << PAGE_SHIFT),
          v.start + ((hi - first_page + 1) << PAGE_SHIFT), even_cows ? 0 : file, true);
    }
}

// ---- memory.c calls that install PTEs
// ------------------------------------------------------------

UserVma &UserSpace::vma_mut(u64 id) {
  const UserVma *v = vma_by_id(id);
  if (v == nullptr)
    throw std::logic_error("no VMA " + std::to_string(id)); // a precondition of the callers
  return const_cast<UserVma &>(*v);
}

void UserSpace::map_page(const UserVma &vma, u64 va, u64 pfn, bool write) {
  const pgprot_t prot = page_prot(vma) | (write && (vma.flags & VM_WRITE) ? _PAGE_RW : 0);
  ptes_[vma.mm][va & PAGE_MASK] = {PteKind::Page, prot, pfn, 0};
}

int UserSpace::vm_insert_page(u64 id, u64 addr, u64 pfn, bool page_ok, bool alloc_fails) {
  UserVma &v = vma_mut(id);
  if (addr < v.start || addr >= v.end)
    return -EFAULT;
  if (!page_aligned(addr)) {
    warn("vm_insert_page", "address " + hex_text(addr) + " is not page aligned");
    return -EINVAL;
  }
  if (!page_ok)
    return -EINVAL;
  if ((v.flags & VM_MIXEDMAP) == 0) {
    if (v.flags & VM_PFNMAP)
      throw KernelBug("vm_insert_page", "VMA " + hex_text(v.start) + " is VM_PFNMAP");
    v.flags |= VM_MIXEDMAP;
  }
  if (pte(v.mm, addr) != nullptr)
    return -EBUSY;
  if (alloc_fails)
    return -ENOMEM;
  map_page(v, addr, pfn, false);
  return 0;
}

int UserSpace::remap_vmalloc_pages(u64 id, u64 uaddr, u64 npages, bool alloc_fails, u64 fail_at) {
  for (u64 i = 0; i < npages; ++i) {
    const int err =
        vm_insert_page(id, uaddr + (i << PAGE_SHIFT), 0, true, alloc_fails && i == fail_at);
    if (err != 0)
      return err;
  }
  vma_mut(id).flags |= VM_DONTEXPAND | VM_DONTDUMP;
  return 0;
}

unsigned UserSpace::vmf_insert_pfn_prot(u64 id, u64 addr, u64 pfn, pgprot_t prot,
                                        bool alloc_fails) {
  constexpr unsigned kSigbus = 0x2, kOom = 0x1, kNopage = 0x100;
  const UserVma &v = *vma_by_id(id);
  const u64 kind = v.flags & (VM_PFNMAP | VM_MIXEDMAP);
  if (kind == 0 || kind == (VM_PFNMAP | VM_MIXEDMAP))
    throw KernelBug("vmf_insert_pfn_prot", "VMA needs exactly one of VM_PFNMAP and VM_MIXEDMAP");
  if (kind == VM_PFNMAP && cow_mapping(v.flags))
    throw KernelBug("vmf_insert_pfn_prot", "VM_PFNMAP on a COW mapping");
  if (kind == VM_MIXEDMAP && machine_.pfn_is_memory(pfn))
    throw KernelBug("vmf_insert_pfn_prot", "VM_MIXEDMAP with a pfn that has a struct page");
  if (addr < v.start || addr >= v.end)
    return kSigbus;
  if (!page_aligned(addr) || !user_prot_ok(prot)) {
    warn("vmf_insert_pfn_prot", "unaligned address or bad pgprot " + hex_text(prot));
    return kSigbus;
  }
  if (!machine_.pfn_is_memory(pfn)) {
    warn("vmf_insert_pfn_prot", "pfn " + hex_text(pfn) + " is not memory");
    return kSigbus;
  }
  if (pte(v.mm, addr) != nullptr)
    return kNopage; // already mapped: left as it is
  if (alloc_fails)
    return kOom;
  ptes_[v.mm][addr] = {PteKind::Pfn, prot, pfn, 0};
  return kNopage;
}

bool UserSpace::user_prot_ok(pgprot_t prot) {
  constexpr u64 kLeafBits = _PAGE_PRESENT | _PAGE_RW | _PAGE_USER | _PAGE_PWT | _PAGE_PCD |
                            _PAGE_ACCESSED | _PAGE_DIRTY | _PAGE_NX;
  if (prot == (_PAGE_PRESENT | _PAGE_ACCESSED | _PAGE_NX))
    return true; // PROT_NONE
  return (prot & _PAGE_PRESENT) && (prot & _PAGE_USER) && (prot & ~kLeafBits) == 0;
}

UserSpace::RemapVerdict UserSpace::remap_pfn_range(u64 id, u64 addr, u64 pfn, u64 size,
                                                   pgprot_t prot, bool alloc_fails) {
  UserVma &v = vma_mut(id);
  u64 len = 0;
  if (!page_align_checked(size, &len) || len > ~addr) {
    warn("remap_pfn_range", "range " + hex_text(addr) + "+" + hex_text(size) + " wraps");
    return {-EINVAL, true};
  }
  const u64 end = addr + len;
  if (len == 0)
    throw KernelBug("remap_pfn_range", "empty range at " + hex_text(addr));
  if (!page_aligned(addr) || addr < v.start || end > v.end) {
    warn("remap_pfn_range",
         "range " + hex_text(addr) + "-" + hex_text(end) + " is not inside the VMA");
    return {-EINVAL, true};
  }
  // A COW mapping is remapped whole: its page offset names its first pfn.
  if (cow_mapping(v.flags) && (addr != v.start || end != v.end))
    return {-EINVAL, false};
  if (!user_prot_ok(prot)) {
    warn("remap_pfn_range", "bad prot " + hex_text(prot));
    return {-EINVAL, true};
  }
  const u64 pages = len >> PAGE_SHIFT;
  if (pfn + pages < pfn || !machine_.pfn_is_memory(pfn) ||
      !machine_.pfn_is_memory(pfn + pages - 1)) {
    warn("remap_pfn_range", "pfns " + hex_text(pfn) + "+" + hex_text(pages) + " are not memory");
    return {-EINVAL, true};
  }
  Ptes &ptes = ptes_[v.mm];
  if (const auto it = ptes.lower_bound(addr); it != ptes.end() && it->first < end)
    throw KernelBug("remap_pfn_range", "a PTE is already present at " + hex_text(it->first));
  if (cow_mapping(v.flags))
    v.pgoff = pfn;
  v.flags |= VM_IO | VM_PFNMAP | VM_DONTEXPAND | VM_DONTDUMP;
  // A page table that cannot be allocated undoes what was mapped.
  if (alloc_fails)
    return {-ENOMEM, false};
  for (u64 i = 0; i < pages; ++i)
    ptes[addr + (i << PAGE_SHIFT)] = {PteKind::Pfn, prot, pfn + i, 0};
  return {};
}

UserSpace::RemapVerdict UserSpace::vm_iomap_memory(u64 id, u64 start, u64 len, bool alloc_fails) {
  const UserVma &v = *vma_by_id(id);
  if (start + len < start)
    return {-EINVAL, false};
  len += start & (PAGE_SIZE - 1);
  if (len > ~u64{0} - (PAGE_SIZE - 1))
    return {-EINVAL, false};
  u64 pfn = start >> PAGE_SHIFT;
  u64 pages = (len + PAGE_SIZE - 1) >> PAGE_SHIFT;
  if (pfn + pages < pfn || v.pgoff > pages)
    return {-EINVAL, false};
  pfn += v.pgoff;
  pages -= v.pgoff;
  if (v.pages() > pages)
    return {-EINVAL, false};
  return remap_pfn_range(id, v.start, pfn, v.end - v.start, page_prot(v), alloc_fails);
}

unsigned UserSpace::alloc_set_pte(u64 id, u64 addr, u64 pfn, bool write, bool page_ok,
                                  bool alloc_fails) {
  constexpr unsigned kSigbus = 0x2, kOom = 0x1, kNopage = 0x100;
  const UserVma &v = *vma_by_id(id);
  if (addr < v.start || addr >= v.end) {
    warn("alloc_set_pte", "no VMA " + std::to_string(id) + " at " + hex_text(addr));
    return kSigbus;
  }
  if (!page_ok) {
    warn("alloc_set_pte", "pfn " + hex_text(pfn) + " cannot be mapped here");
    return kSigbus;
  }
  if (pte(v.mm, addr) != nullptr)
    return kNopage;
  if (alloc_fails)
    return kOom;
  map_page(v, addr, pfn, write);
  return 0;
}

unsigned UserSpace::finish_mkwrite_fault(u64 id, u64 addr) {
  constexpr unsigned kWrite = 0x8;
  const UserVma &v = *vma_by_id(id);
  if (addr < v.start || addr >= v.end || (v.flags & VM_SHARED) == 0) {
    warn("finish_mkwrite_fault", "no shared VMA " + std::to_string(id) + " at " + hex_text(addr));
    return 0;
  }
  auto it = ptes_[v.mm].find(addr & PAGE_MASK);
  if (it == ptes_[v.mm].end())
    return 0;
  if (v.flags & VM_WRITE)
    it->second.prot |= _PAGE_RW;
  return kWrite;
}

int UserSpace::follow_pfn(u64 id, u64 addr, std::optional<u64> *pfn) const {
  const UserVma &v = *vma_by_id(id);
  if ((v.flags & (VM_IO | VM_PFNMAP)) == 0)
    return -EINVAL;
  const UserPte *p = pte(v.mm, addr);
  if (p == nullptr)
    return -EINVAL;
  const bool known = (p->kind == PteKind::Pfn || p->kind == PteKind::Page) && p->ref != 0;
  *pfn = known ? std::optional(p->ref) : std::nullopt;
  return 0;
}

} // namespace vmcheck::spec
