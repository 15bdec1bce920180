// The invariants of user address spaces, and the canonical state hash.
#include "usermm/internal.h"
#include "usermm/usermm.h"

#include <set>

namespace vmcheck {

using usermm_detail::hex;

std::string UserMm::check_mm(const MmStruct &mm, std::map<Pfn, std::uint32_t> &mapped) const {
  const std::string who = "mm " + std::to_string(mm.id) + ": ";
  u64 prev_end = 0;
  for (const auto &[start, vma] : mm.vmas) {
    const std::string v = who + "VMA " + hex(vma.vm_start) + "-" + hex(vma.vm_end) + " ";
    if (start != vma.vm_start || vma.mm != mm.id)
      return v + "is filed under the wrong key or mm";
    if (vma.vm_start >= vma.vm_end || !page_aligned(vma.vm_start) || !page_aligned(vma.vm_end) ||
        vma.vm_start < PAGE_SIZE || vma.vm_end > user_top())
      return v + "is not a page range inside the user half";
    if (vma.vm_start < prev_end)
      return v + "overlaps the VMA before it";
    prev_end = vma.vm_end;
    const auto as = mappings_.find(vma.mapping);
    if (vma.mapping != 0 && as == mappings_.end())
      return v + "maps a dead address_space " + std::to_string(vma.mapping);
    const bool writenotify = vma.mapping != 0 && !as->second.shmem;
    if (vma.vm_page_prot != vm_get_page_prot(vma.vm_flags, writenotify))
      return v + "vm_page_prot " + hex(vma.vm_page_prot) + " does not match its flags " +
             hex(vma.vm_flags);
  }
  std::string err;
  m_.pt().for_each_leaf(mm.pgd, 0, user_top(), [&](u64 va, const PteRef &r) {
    if (!err.empty())
      return;
    const std::string at = who + "PTE at " + hex(va) + " (" + hex(r.value) + ") ";
    if (r.level != 1) {
      err = at + "is a huge leaf";
      return;
    }
    auto it = mm.vmas.upper_bound(va);
    if (it == mm.vmas.begin() || !std::prev(it)->second.contains(va)) {
      err = at + "lies outside every VMA";
      return;
    }
    const VmAreaStruct &vma = std::prev(it)->second;
    if (!(r.value & _PAGE_USER) && (vma.vm_flags & VM_ACCESS_FLAGS)) {
      err = at + "lacks _PAGE_USER in an accessible VMA";
      return;
    }
    if (r.value & _PAGE_GLOBAL) {
      err = at + "is global";
      return;
    }
    const Pfn pfn = r.pfn();
    if (r.value & _PAGE_SPECIAL) {
      const bool zero = zero_pfn_ && pfn == *zero_pfn_;
      if (zero && (r.value & _PAGE_RW))
        err = at + "makes the zero page writable";
      else if (!zero && !(vma.vm_flags & (VM_PFNMAP | VM_MIXEDMAP)))
        err = at + "is a pfn mapping in a VMA that is neither VM_PFNMAP nor VM_MIXEDMAP";
      return;
    }
    const Page &pg = m_.mem().peek(pfn);
    if (pg.refcount == 0 || pg.owner == PageOwner::Free || pg.owner == PageOwner::PageTable ||
        (pg.flags & PG_tail)) {
      err = at + "maps pfn " + hex(pfn) + " that is free or not a mappable page (owner " +
            page_owner_name(pg.owner) + ")";
      return;
    }
    // Copy on write: a page writable through a private mapping is seen by
    // nobody else, and is never the file's own page.
    if ((r.value & _PAGE_RW) && !(vma.vm_flags & VM_SHARED) &&
        (pg.mapcount != 1 || pg.owner == PageOwner::PageCache)) {
      err = at + "is writable in a private mapping but pfn " + hex(pfn) + " is shared (mapcount " +
            std::to_string(pg.mapcount) + ", owner " + page_owner_name(pg.owner) + ")";
      return;
    }
    ++mapped[pfn];
  });
  return err;
}

std::string UserMm::check() const {
  std::map<Pfn, std::uint32_t> mapped;
  std::set<u64> ids;
  for (const auto &[id, mm] : mms_) {
    if (mm.id != id)
      return "mm " + std::to_string(id) + " is filed under the wrong id";
    for (const auto &[s, vma] : mm.vmas)
      if (!ids.insert(vma.id).second)
        return "VMA id " + std::to_string(vma.id) + " is used twice";
    if (auto e = check_mm(mm, mapped); !e.empty())
      return e;
  }
  // The rmap: what the page tables map, what this layer counted, and what
  // each page record says must all agree.
  if (mapped != mapped_) {
    auto a = mapped.begin();
    auto b = mapped_.begin();
    while (a != mapped.end() && b != mapped_.end() && *a == *b)
      ++a, ++b;
    const Pfn pfn = a == mapped.end()    ? b->first
                    : b == mapped_.end() ? a->first
                                         : std::min(a->first, b->first);
    const auto count = [](const std::map<Pfn, std::uint32_t> &m, Pfn p) {
      auto it = m.find(p);
      return it == m.end() ? 0u : it->second;
    };
    return "pfn " + hex(pfn) + " is mapped by " + std::to_string(count(mapped, pfn)) +
           " PTEs but the rmap counts " + std::to_string(count(mapped_, pfn));
  }
  for (const auto &[pfn, n] : mapped_) {
    const Page &pg = m_.mem().peek(pfn);
    if (pg.mapcount != static_cast<std::int32_t>(n))
      return "pfn " + hex(pfn) + " has mapcount " + std::to_string(pg.mapcount) + " but " +
             std::to_string(n) + " PTEs";
    u64 holders = n;
    if (pg.owner == PageOwner::PageCache) {
      auto as = mappings_.find(pg.mapping);
      if (as != mappings_.end()) {
        auto cached = as->second.pages.find(pg.private_data);
        holders += cached != as->second.pages.end() && cached->second == pfn;
      }
    }
    if (pg.refcount < holders)
      return "pfn " + hex(pfn) + " has refcount " + std::to_string(pg.refcount) + " but " +
             std::to_string(holders) + " holders (mapped " + std::to_string(n) + " times)";
    if (pg.owner == PageOwner::User && pg.refcount != n)
      return "anonymous pfn " + hex(pfn) + " has refcount " + std::to_string(pg.refcount) +
             " but " + std::to_string(n) + " PTEs";
  }
  for (const auto &[id, as] : mappings_) {
    if (as.id != id)
      return "address_space " + std::to_string(id) + " is filed under the wrong id";
    for (const auto &[index, pfn] : as.pages) {
      const Page &pg = m_.mem().peek(pfn);
      if (index >= as.nr_pages || pg.owner != PageOwner::PageCache || pg.mapping != id ||
          pg.private_data != index || pg.refcount == 0)
        return "address_space " + std::to_string(id) + " page " + std::to_string(index) + " (pfn " +
               hex(pfn) + ") is not a live cache page of it";
    }
  }
  if (zero_pfn_) {
    const Page &pg = m_.mem().peek(*zero_pfn_);
    if (pg.refcount == 0 || !(pg.flags & PG_reserved) || !m_.mem().frame_is_zero(*zero_pfn_))
      return "the zero page " + hex(*zero_pfn_) + " is freed, unreserved or written";
  }
  // TLBs: every user translation a CPU caches belongs to a live mm, lies in
  // one of its VMAs and still matches the PTE (zaps flush before they free).
  const Mmu &mmu = m_.mmu();
  for (unsigned cpu = 0; cpu < mmu.nr_cpus(); ++cpu) {
    for (const TlbEntry &e : mmu.tlb(cpu)) {
      if (e.root == 0)
        continue;
      const u64 va = e.vpn << PAGE_SHIFT;
      const std::string at = "cpu " + std::to_string(cpu) + " TLB entry for " + hex(va) + " ";
      const MmStruct *owner = nullptr;
      for (const auto &[id, mm] : mms_)
        if (mm.pgd == e.root)
          owner = &mm;
      if (owner == nullptr)
        return at + "belongs to no live mm (root pfn " + hex(e.root) + ")";
      auto it = owner->vmas.upper_bound(va);
      if (it == owner->vmas.begin() || !std::prev(it)->second.contains(va))
        return at + "of mm " + std::to_string(owner->id) + " is outside every VMA";
      if (((m_.pt().read_entry(e.slot_pa) ^ e.pte) & ~PTE_HW_UPDATED) != 0)
        return at + "of mm " + std::to_string(owner->id) + " is stale (not flushed)";
    }
  }
  return {};
}

void UserMm::hash_into(StateHasher &h) const {
  h.tag(0x05e3'3a11);
  h.add(next_mm_id_);
  h.add(next_vma_id_);
  h.add(next_mapping_id_);
  h.add(zero_pfn_.value_or(0));
  h.tag(mms_.size());
  for (const auto &[id, mm] : mms_) {
    h.add(id);
    h.add(mm.pgd);
    h.tag(mm.vmas.size());
    for (const auto &[s, vma] : mm.vmas) {
      h.add(vma.id);
      h.add(vma.vm_start);
      h.add(vma.vm_end);
      h.add(vma.vm_flags);
      h.add(vma.vm_page_prot);
      h.add(vma.vm_pgoff);
      h.add(vma.mapping);
      h.add(vma.device);
    }
  }
  h.tag(mappings_.size());
  for (const auto &[id, as] : mappings_) {
    h.add(id);
    h.add(as.nr_pages);
    h.add(as.shmem);
    h.tag(as.pages.size());
    for (const auto &[index, pfn] : as.pages) {
      h.add(index);
      h.add(pfn);
    }
  }
  h.tag(mapped_.size());
  for (const auto &[pfn, n] : mapped_) {
    h.add(pfn);
    h.add(n);
  }
}

} // namespace vmcheck
