// The explorer's canonical state hash (see explore.h for what it covers and
// what it leaves out, and why).
#include "harness/explore.h"

#include <algorithm>

namespace vmcheck {

namespace {

// vm_structs by address with their pages: the page records and whether the
// frame reads as zero stand for the contents (the explorer writes no data,
// so a frame is either never written or zeroed).
void hash_vmalloc(StateHasher &h, const Kernel &k) {
  const Vmalloc &v = k.vmalloc();
  const PhysMem &mem = k.machine().mem();
  h.tag(0xe1);
  h.add(v.initialized());
  h.add(v.vmap_lazy_nr());
  h.add(v.busy_areas().size());
  for (const auto &[start, va] : v.busy_areas()) {
    h.add(va.va_start);
    h.add(va.va_end);
    h.add(va.flags);
    if (va.vm_id == 0) {
      h.add(0);
      continue;
    }
    const VmStruct &vm = *v.vm_structs().at(va.vm_id);
    h.add(vm.addr);
    h.add(vm.size);
    h.add(vm.flags);
    h.add(vm.nr_pages);
    h.add(vm.has_guard);
    h.add(vm.phys_addr);
    h.add(vm.pages_array);
    h.add(vm.caller);
    h.add(vm.ptes.size());
    for (std::size_t i = 0; i < vm.ptes.size(); ++i)
      h.add(vm.ptes.slot(i));
    for (Pfn p : vm.pages) {
      const Page &pg = mem.peek(p);
      h.add(p);
      h.add(pg.refcount);
      h.add(static_cast<u64>(pg.owner));
      h.add(pg.flags);
      h.add(mem.frame_is_zero(p));
    }
  }
  // Free space is not hashed: check() proves it is exactly the complement
  // of the busy and lazy areas.
  h.tag(0xe2);
  h.add(v.lazy_areas().size());
  for (const auto &[start, va] : v.lazy_areas()) {
    h.add(va.va_start);
    h.add(va.va_end);
    h.add(va.flags);
  }
  // shootdown=async: which lazy areas a purge in flight holds, and which
  // CPUs have yet to flush (empty in sync runs).
  h.tag(0xe5);
  h.add(v.shootdown_pending().size());
  if (v.shootdown_in_flight()) {
    h.add(v.shootdown_initiator());
    for (unsigned c : v.shootdown_pending())
      h.add(c);
    for (u64 s : v.purging_areas())
      h.add(s);
  }
  h.tag(0xe3);
  h.add(v.vmap_blocks().size());
  for (const auto &[start, b] : v.vmap_blocks()) {
    h.add(b.va_start);
    h.add(b.cpu);
    h.add(b.free);
    h.add(b.dirty);
    h.add(b.dirty_min);
    h.add(b.dirty_max);
    for (const auto &[off, order] : b.live) {
      h.add(off);
      h.add(order);
    }
  }
}

// Per CPU, the entries sorted by what they translate; the raw LRU counter
// never enters (it counts accesses, not state), its rank only on request.
void hash_tlbs(StateHasher &h, const Mmu &mmu, bool lru_ranks) {
  h.tag(0xe4);
  std::vector<const TlbEntry *> sorted;
  for (unsigned cpu = 0; cpu < mmu.nr_cpus(); ++cpu) {
    const auto &tlb = mmu.tlb(cpu);
    sorted.clear();
    for (const TlbEntry &e : tlb)
      sorted.push_back(&e);
    std::sort(sorted.begin(), sorted.end(), [](const TlbEntry *a, const TlbEntry *b) {
      if (a->root != b->root)
        return a->root < b->root;
      if (a->vpn != b->vpn)
        return a->vpn < b->vpn;
      return a->level < b->level;
    });
    h.add(sorted.size());
    for (const TlbEntry *e : sorted) {
      h.add(e->root);
      h.add(e->vpn);
      h.add(e->level);
      h.add(e->pte);
      h.add(e->slot_pa);
      if (lru_ranks)
        h.add(static_cast<u64>(std::count_if(
            tlb.begin(), tlb.end(), [e](const TlbEntry &o) { return o.last_use < e->last_use; })));
    }
  }
}

} // namespace

u64 canonical_state_hash(const Kernel &k, std::span<const u64> live,
                         const std::vector<std::vector<u64>> &pending, bool lru_ranks) {
  StateHasher h;
  const Machine &m = k.machine();
  hash_vmalloc(h, k);
  m.pages().hash_into(h);
  m.pt().hash_into(h);
  hash_tlbs(h, m.mmu(), lru_ranks);
  m.deferred().hash_into(h);
  h.tag(0xe5);
  for (unsigned c = 0; c < m.num_online_cpus(); ++c)
    h.add(m.cpu(c).irq_depth);
  h.add(m.booting());
  h.tag(0xe6);
  std::vector<u64> held(live.begin(), live.end());
  std::sort(held.begin(), held.end());
  h.add(held.size());
  for (u64 a : held)
    h.add(a);
  h.tag(0xe7);
  for (const auto &list : pending) {
    h.add(list.size());
    for (u64 a : list)
      h.add(a);
  }
  return h.value();
}

} // namespace vmcheck
