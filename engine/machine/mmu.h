// The MMU and per-CPU TLBs.
//
// translate(cpu, root, va, access, user) looks in the CPU's TLB first, then
// walks the page tables. Faults are values, never exceptions.
//
// TLB model: fixed capacity per CPU, least-recently-used replacement driven
// by a logical counter (deterministic). Kernel (global) entries are shared by
// every root; user entries are tagged with their root (PCID-like). Unmapping
// or changing a PTE does not touch any TLB: entries go stale, as on real
// hardware, until an explicit flush. On a TLB hit the MMU re-reads the entry's
// PTE slot; if the PTE no longer matches the cached one (A/D bits ignored)
// the entry is stale:
//  - if the VA is now mapped to a different frame, serving the entry would be
//    an alias to someone else's memory: a Finding ("stale TLB alias") is
//    recorded and the access reports Fault::StaleTlb;
//  - otherwise (unmapped, or same frame with new protection) the access
//    reports Fault::StaleTlb without a finding: detected, not served.
#pragma once

#include "machine/page_table.h"

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace vmcheck {

class DiagLog;

enum class Access : std::uint8_t { Read, Write, Exec };
const char *access_name(Access a);

enum class Fault : std::uint8_t {
  None,
  NotPresent,
  Protection,
  GuardPage, // not present, and a registered classifier says it is a guard page
  NonCanonical,
  StaleTlb,
};
const char *fault_name(Fault f);

struct Translation {
  Fault fault = Fault::None;
  u64 pa = 0; // valid when fault == None
  bool tlb_hit = false;
  bool ok() const { return fault == Fault::None; }
};

struct TlbEntry {
  u64 vpn = 0;     // va >> PAGE_SHIFT of the mapped page (2 MiB aligned for huge)
  Pfn root = 0;    // 0 for global (kernel) entries
  u64 pte = 0;     // the leaf entry as it was cached
  u64 slot_pa = 0; // where that entry lives
  unsigned level = 1;
  u64 last_use = 0;
};

struct TlbStats {
  u64 hits = 0, misses = 0;
  u64 local_flushes = 0, remote_flushes = 0, full_flushes = 0;
  u64 stale_hits = 0;
};

class Mmu {
public:
  Mmu(PageTables &pt, DiagLog &diag, unsigned cpus, unsigned tlb_entries);

  // The guard-page classifier: given a VA whose walk found nothing present,
  // says whether it is a guard page (installed by the vmalloc layer).
  void set_guard_classifier(std::function<bool(u64 va)> fn) { guard_ = std::move(fn); }

  // One access. Sets the accessed (and on write, dirty) bit of the leaf on a
  // successful walk, and fills the TLB.
  Translation translate(unsigned cpu, Pfn root, u64 va, Access access, bool user);

  // flush_tlb_kernel_range: every CPU drops entries overlapping [start, end).
  void flush_tlb_kernel_range(u64 start, u64 end);
  // One CPU's share of it: the shootdown IPI delivered to `cpu`.
  void flush_tlb_kernel_range_on(unsigned cpu, u64 start, u64 end);
  // flush_tlb_all: every CPU drops everything.
  void flush_tlb_all();
  // Local flushes: one CPU.
  void flush_tlb_local(unsigned cpu);
  void flush_tlb_one(unsigned cpu, u64 va);
  // A user mm's range on every CPU (flush_tlb_mm_range).
  void flush_tlb_mm_range(Pfn root, u64 start, u64 end);

  unsigned nr_cpus() const { return static_cast<unsigned>(tlbs_.size()); }
  const std::vector<TlbEntry> &tlb(unsigned cpu) const { return tlbs_[cpu]; }
  const TlbStats &stats(unsigned cpu) const { return stats_[cpu]; }
  // Entries whose PTE changed since they were cached.
  std::vector<std::pair<unsigned, TlbEntry>> stale_entries() const;
  // Entries that would alias: cached frame != the frame the VA maps now.
  std::vector<std::pair<unsigned, TlbEntry>> alias_entries() const;
  void hash_into(StateHasher &h) const;

private:
  bool entry_stale(const TlbEntry &e) const;
  void insert(unsigned cpu, const TlbEntry &e);
  // The physical address va translates to now through root's page tables
  // (nullopt: unmapped).
  std::optional<u64> current_pa(Pfn root, u64 va) const;
  Fault check_access(u64 pte, Access access, bool user) const;

  PageTables &pt_;
  DiagLog &diag_;
  unsigned capacity_;
  std::vector<std::vector<TlbEntry>> tlbs_;
  std::vector<TlbStats> stats_;
  u64 use_clock_ = 0;
  std::function<bool(u64)> guard_;
};

} // namespace vmcheck
