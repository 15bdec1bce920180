#include "machine/mmu.h"

#include "machine/diag.h"

#include <algorithm>
#include <cstdio>

namespace vmcheck {

namespace {

constexpr u64 kHugeVpnMask = (PMD_SIZE >> PAGE_SHIFT) - 1;

std::string hex(u64 v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

u64 leaf_size(unsigned level) {
  return level == 2 ? PMD_SIZE : PAGE_SIZE;
}

// Physical address of va through a leaf entry at `level`.
u64 leaf_pa(u64 pte, unsigned level, u64 va) {
  const u64 size = leaf_size(level);
  return (pte & PTE_PFN_MASK & ~(size - 1)) | (va & (size - 1));
}

bool covers(const TlbEntry &e, u64 vpn) {
  return (e.level == 2 ? (vpn & ~kHugeVpnMask) : vpn) == e.vpn;
}

bool overlaps(const TlbEntry &e, u64 start, u64 end) {
  const u64 first = e.vpn << PAGE_SHIFT;
  // Inclusive last byte: an entry at the very top of the space would wrap.
  const u64 last = first + (leaf_size(e.level) - 1);
  return first < end && start <= last;
}

} // namespace

const char *access_name(Access a) {
  switch (a) {
  case Access::Read:
    return "read";
  case Access::Write:
    return "write";
  case Access::Exec:
    return "exec";
  }
  return "?";
}

const char *fault_name(Fault f) {
  switch (f) {
  case Fault::None:
    return "none";
  case Fault::NotPresent:
    return "not_present";
  case Fault::Protection:
    return "protection";
  case Fault::GuardPage:
    return "guard_page";
  case Fault::NonCanonical:
    return "non_canonical";
  case Fault::StaleTlb:
    return "stale_tlb";
  }
  return "?";
}

Mmu::Mmu(PageTables &pt, DiagLog &diag, unsigned cpus, unsigned tlb_entries)
    : pt_(pt), diag_(diag), capacity_(tlb_entries), tlbs_(cpus), stats_(cpus) {
  for (auto &t : tlbs_)
    t.reserve(capacity_);
}

// Kernel pages lack _PAGE_USER, so the user check alone keeps user mode out
// of them; the kernel may touch user pages (no SMAP in this model). Writes
// honour RW in both modes (CR0.WP set, as Linux runs).
Fault Mmu::check_access(u64 pte, Access access, bool user) const {
  if (user && !(pte & _PAGE_USER))
    return Fault::Protection;
  if (access == Access::Write && !(pte & _PAGE_RW))
    return Fault::Protection;
  if (access == Access::Exec && (pte & _PAGE_NX))
    return Fault::Protection;
  return Fault::None;
}

std::optional<u64> Mmu::current_pa(Pfn root, u64 va) const {
  const PteRef r = pt_.walk(root, va);
  if (!r.present())
    return std::nullopt;
  return leaf_pa(r.value, r.level, va);
}

Translation Mmu::translate(unsigned cpu, Pfn root, u64 va, Access access, bool user) {
  if (cpu >= tlbs_.size())
    throw KernelBug("translate", "no such cpu " + std::to_string(cpu));
  if (!pt_.canonical(va))
    return {Fault::NonCanonical, 0, false};
  if (root == 0)
    root = pt_.kernel_root();
  TlbStats &st = stats_[cpu];
  const u64 vpn = va >> PAGE_SHIFT;
  for (TlbEntry &e : tlbs_[cpu]) {
    if ((e.root != 0 && e.root != root) || !covers(e, vpn))
      continue;
    const u64 now = pt_.read_entry(e.slot_pa);
    if (((now ^ e.pte) & ~PTE_HW_UPDATED) != 0) {
      ++st.stale_hits;
      const u64 cached = leaf_pa(e.pte, e.level, va);
      const auto cur = current_pa(root, va);
      if (cur && (*cur >> PAGE_SHIFT) != (cached >> PAGE_SHIFT))
        diag_.finding("tlb",
                      "stale TLB alias: cpu " + std::to_string(cpu) + " va " + hex(va) +
                          " cached pfn " + hex(cached >> PAGE_SHIFT) + " now maps pfn " +
                          hex(*cur >> PAGE_SHIFT),
                      va);
      return {Fault::StaleTlb, 0, true};
    }
    ++st.hits;
    e.last_use = ++use_clock_;
    if (Fault f = check_access(e.pte, access, user); f != Fault::None)
      return {f, 0, true};
    // A cached clean entry cannot absorb a write: the hardware goes back to
    // the PTE to set the dirty bit.
    if (access == Access::Write && !(e.pte & _PAGE_DIRTY)) {
      pt_.set_entry(e.slot_pa, now | _PAGE_DIRTY);
      e.pte |= _PAGE_DIRTY;
    }
    return {Fault::None, leaf_pa(e.pte, e.level, va), true};
  }

  ++st.misses;
  const PteRef r = pt_.walk(root, va);
  const bool kernel = pt_.is_kernel_va(va);
  if (!r.present())
    return {(kernel && guard_ && guard_(va)) ? Fault::GuardPage : Fault::NotPresent, 0, false};
  if (Fault f = check_access(r.value, access, user); f != Fault::None)
    return {f, 0, false};
  const u64 pte = r.value | _PAGE_ACCESSED | (access == Access::Write ? _PAGE_DIRTY : 0);
  if (pte != r.value)
    pt_.set_entry(r.slot_pa, pte);
  TlbEntry e;
  e.vpn = r.level == 2 ? (vpn & ~kHugeVpnMask) : vpn;
  e.root = (kernel || (pte & _PAGE_GLOBAL)) ? 0 : root;
  e.pte = pte;
  e.slot_pa = r.slot_pa;
  e.level = r.level;
  e.last_use = ++use_clock_;
  insert(cpu, e);
  return {Fault::None, leaf_pa(pte, r.level, va), false};
}

void Mmu::insert(unsigned cpu, const TlbEntry &e) {
  if (capacity_ == 0)
    return;
  auto &tlb = tlbs_[cpu];
  if (tlb.size() < capacity_) {
    tlb.push_back(e);
    return;
  }
  auto victim = std::min_element(tlb.begin(), tlb.end(), [](const TlbEntry &a, const TlbEntry &b) {
    return a.last_use < b.last_use;
  });
  *victim = e;
}

void Mmu::flush_tlb_kernel_range(u64 start, u64 end) {
  for (unsigned c = 0; c < tlbs_.size(); ++c) {
    std::erase_if(tlbs_[c], [&](const TlbEntry &e) { return overlaps(e, start, end); });
    ++stats_[c].remote_flushes;
  }
}

void Mmu::flush_tlb_kernel_range_on(unsigned cpu, u64 start, u64 end) {
  if (cpu >= tlbs_.size())
    return;
  std::erase_if(tlbs_[cpu], [&](const TlbEntry &e) { return overlaps(e, start, end); });
  ++stats_[cpu].remote_flushes;
}

void Mmu::flush_tlb_all() {
  for (unsigned c = 0; c < tlbs_.size(); ++c) {
    tlbs_[c].clear();
    ++stats_[c].remote_flushes;
    ++stats_[c].full_flushes;
  }
}

void Mmu::flush_tlb_local(unsigned cpu) {
  if (cpu >= tlbs_.size())
    return;
  tlbs_[cpu].clear();
  ++stats_[cpu].local_flushes;
}

void Mmu::flush_tlb_one(unsigned cpu, u64 va) {
  if (cpu >= tlbs_.size())
    return;
  const u64 vpn = va >> PAGE_SHIFT;
  std::erase_if(tlbs_[cpu], [&](const TlbEntry &e) { return covers(e, vpn); });
  ++stats_[cpu].local_flushes;
}

void Mmu::flush_tlb_mm_range(Pfn root, u64 start, u64 end) {
  for (unsigned c = 0; c < tlbs_.size(); ++c) {
    std::erase_if(tlbs_[c],
                  [&](const TlbEntry &e) { return e.root == root && overlaps(e, start, end); });
    ++stats_[c].remote_flushes;
  }
}

bool Mmu::entry_stale(const TlbEntry &e) const {
  return ((pt_.read_entry(e.slot_pa) ^ e.pte) & ~PTE_HW_UPDATED) != 0;
}

std::vector<std::pair<unsigned, TlbEntry>> Mmu::stale_entries() const {
  std::vector<std::pair<unsigned, TlbEntry>> out;
  for (unsigned c = 0; c < tlbs_.size(); ++c)
    for (const TlbEntry &e : tlbs_[c])
      if (entry_stale(e))
        out.emplace_back(c, e);
  return out;
}

std::vector<std::pair<unsigned, TlbEntry>> Mmu::alias_entries() const {
  std::vector<std::pair<unsigned, TlbEntry>> out;
  for (unsigned c = 0; c < tlbs_.size(); ++c)
    for (const TlbEntry &e : tlbs_[c]) {
      const u64 va = e.vpn << PAGE_SHIFT;
      const auto cur = current_pa(e.root == 0 ? pt_.kernel_root() : e.root, va);
      if (cur && *cur != leaf_pa(e.pte, e.level, va))
        out.emplace_back(c, e);
    }
  return out;
}

void Mmu::hash_into(StateHasher &h) const {
  h.tag(0x71b);
  h.add(capacity_);
  h.add(tlbs_.size());
  std::vector<const TlbEntry *> sorted, by_use;
  for (const auto &tlb : tlbs_) {
    sorted.clear();
    for (const TlbEntry &e : tlb)
      sorted.push_back(&e);
    by_use = sorted;
    std::sort(sorted.begin(), sorted.end(), [](const TlbEntry *a, const TlbEntry *b) {
      if (a->root != b->root)
        return a->root < b->root;
      if (a->vpn != b->vpn)
        return a->vpn < b->vpn;
      return a->level < b->level;
    });
    std::sort(by_use.begin(), by_use.end(),
              [](const TlbEntry *a, const TlbEntry *b) { return a->last_use < b->last_use; });
    h.add(tlb.size());
    for (const TlbEntry *e : sorted) {
      // The LRU rank, not the raw counter: equal states hash equal however
      // many accesses led to them.
      const auto rank = std::find(by_use.begin(), by_use.end(), e) - by_use.begin();
      h.add(e->root);
      h.add(e->vpn);
      h.add(e->level);
      h.add(e->pte);
      h.add(e->slot_pa);
      h.add(static_cast<u64>(rank));
    }
  }
}

} // namespace vmcheck
