// Z3 (SMT) checks of KVA placement and guard pages, driven by a plain-data
// snapshot of the vmalloc state: no engine or spec types cross this header,
// so the engine, the spec, the replay tool and fuzz targets all feed it the
// same way.
//
// The four checks of issue 6:
//   1. placement validity (pcpu and vmalloc results),
//   2. pcpu top-down maximality (and "no false failure" on NULL),
//   3. vmalloc lowest fit (and "no false failure" on NULL),
//   4. guard pages (no present PTE, never shared, never inside another area).
// Each check asks Z3 for a violation; UNSAT proves the property, SAT yields a
// model printed as a counterexample, and anything else (resource limit hit,
// Z3 error, malformed input) is Unknown, never a pass.
//
// Lazily freed areas follow the kernel's purge-and-retry: they count as
// reserved unless nothing fits with them reserved, and then the search runs
// again over the busy areas alone.
#pragma once

#include "vmcheck/abi.h"

#include <memory>
#include <string>
#include <vector>

namespace vmcheck::smt {

// A reserved KVA range: [start, end) page aligned, end exclusive and
// including the guard page when has_guard (the guard is [end - PAGE_SIZE, end)).
struct ReservedArea {
  u64 start = 0;
  u64 end = 0;
  bool has_guard = false;
  bool lazy = false; // freed, VA still reserved until the next purge
};

// [start, end), page aligned, end exclusive.
struct AddrRange {
  u64 start = 0;
  u64 end = 0;
};

// The state the checks read. Invariant (checked, else Unknown): every range
// is page aligned and non-empty and lies in [vmalloc_start, vmalloc_end + 1).
struct Snapshot {
  u64 vmalloc_start = VMALLOC_START_L4;
  u64 vmalloc_end = VMALLOC_END_L4;    // inclusive, as the kernel's VMALLOC_END
  std::vector<ReservedArea> reserved;  // busy and lazy areas, any order
  std::vector<AddrRange> free_blocks;  // optional: when given, free + reserved must tile the range
  std::vector<AddrRange> present_ptes; // pages with a present leaf PTE
};

// A fresh machine: the whole range free, nothing mapped.
Snapshot fresh_snapshot(unsigned paging_levels = 4);

// pcpu_get_vm_areas(offsets, sizes, nr, align) and what it returned: addrs[i]
// is vms[i]->addr, addrs empty for NULL. The snapshot is the state before it.
struct PcpuCall {
  std::vector<u64> offsets;
  std::vector<u64> sizes;
  u64 align = PAGE_SIZE;
  std::vector<u64> addrs;
};

// alloc_vmap_area(size, align, vstart, vend) and the start it returned (0 for
// NULL). size includes the guard page; vend is exclusive. The snapshot is the
// state before the call.
struct VmallocCall {
  u64 size = 0;
  u64 align = 1;
  u64 vstart = 0;
  u64 vend = 0;
  u64 result = 0;
};

enum class Status { Proven, Violated, Unknown };

// One check's verdict. Proven means every query was UNSAT; counterexample
// explains Violated (from the Z3 model) and Unknown (the reason).
struct CheckResult {
  Status status = Status::Unknown;
  std::string name;
  std::string counterexample;
  unsigned queries = 0; // Z3 queries run
  unsigned proven = 0;  // of which UNSAT
};

const char *status_name(Status s);

// "4.8.12.0": the linked Z3.
std::string z3_version();

inline constexpr unsigned kDefaultRlimit = 5'000'000;

// Runs the checks with one Z3 context. Deterministic: every query gets the
// same resource limit (rlimit counts work, not time) and fixed parameters.
// Not thread-safe (one checker per thread).
class PlacementChecker {
public:
  explicit PlacementChecker(unsigned rlimit = kDefaultRlimit);
  ~PlacementChecker();
  PlacementChecker(const PlacementChecker &) = delete;
  PlacementChecker &operator=(const PlacementChecker &) = delete;

  // Check 1: areas inside the range, aligned, congruent, disjoint from each
  // other and from every reserved area (a lazy one only if nothing fit with it).
  CheckResult check_pcpu_placement(const Snapshot &snap, const PcpuCall &call);
  // Check 2: no higher base fits; on NULL no base fits even with lazy areas dropped.
  CheckResult check_pcpu_maximal(const Snapshot &snap, const PcpuCall &call);
  // Check 1 for alloc_vmap_area: aligned, inside [vstart, vend) and the range, disjoint.
  CheckResult check_vmalloc_placement(const Snapshot &snap, const VmallocCall &call);
  // Check 3: no lower aligned start fits; on NULL none fits even with lazy areas dropped.
  CheckResult check_vmalloc_lowest_fit(const Snapshot &snap, const VmallocCall &call);
  // Check 4: no present PTE in a live area's guard page, no guard inside another area.
  CheckResult check_guard_pages(const Snapshot &snap);
  // Free blocks and reserved areas tile [vmalloc_start, vmalloc_end + 1); Proven when no free
  // blocks given.
  CheckResult check_tiling(const Snapshot &snap);

  // Checks 1 and 2 (pcpu) / 1 and 3 (vmalloc), in that order.
  std::vector<CheckResult> check_pcpu(const Snapshot &snap, const PcpuCall &call);
  std::vector<CheckResult> check_vmalloc(const Snapshot &snap, const VmallocCall &call);

  unsigned rlimit() const;

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

} // namespace vmcheck::smt
