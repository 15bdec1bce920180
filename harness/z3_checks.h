// The Z3 checks (spec/smt) run against the engine during a replay: after
// every op, the guard-page check (and in the modern backend the tiling
// check) on the state after it, and for each placement op (the vmalloc
// family, get_vm_area & co, vmap, pcpu_get_vm_areas) the placement checks
// of its result against the state before it.
//
// The engine is only read, never driven: the request a placement served is
// derived from the op's name and arguments the way the engine's entry point
// turns them into an alloc_vmap_area call, so a wrong size, alignment or
// window in the engine shows up as a violated check rather than being
// checked against itself.
#pragma once

#include "engine/kernel.h"
#include "harness/value.h"
#include "spec/smt/placement_smt.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vmcheck {

// Tallies over a run. Every query counted in `queries` either was proven
// (UNSAT) or belongs to a violated or unknown check.
struct Z3Counts {
  unsigned queries = 0;  // Z3 queries run
  unsigned proven = 0;   // of which UNSAT
  unsigned violated = 0; // checks that found a counterexample
  unsigned unknown = 0;  // checks Z3 could not decide (resource limit, malformed input)
  unsigned skipped = 0;  // placement ops with no placement to judge (refused, unwound and purged)
};

// A violated check: its name and the counterexample, ready to report.
struct Z3Violation {
  std::string check;
  std::string counterexample;
};

// The snapshot the checks read of the kernel's current vmalloc state: busy
// areas (guard page per vm_struct), lazily freed areas, and, as lazy too,
// vmap blocks that the next purge frees (fragmented: nothing live, not all
// dirty), because a placement may take their VA after purging exactly as it
// may take a lazy area's; free blocks (modern backend only: the legacy one
// places through its vmlist); present PTEs in the vmalloc range.
smt::Snapshot z3_snapshot(const Kernel &k);

// The alloc_vmap_area call a placement op makes, as the engine's entry point
// derives it from the op's arguments (result left 0), or nullopt when the op
// is not one of the family or its arguments can never reach a placement.
// has_guard tells whether the area's last page is its guard page.
struct Z3Request {
  smt::VmallocCall call;
  bool has_guard = true;
  bool allocates_pages = false; // the __vmalloc_node_range path (pages[] array, maybe nested)
};
std::optional<Z3Request> z3_vmalloc_request(const Kernel &k, std::string_view op,
                                            const std::vector<Value> &args);

// One replay's observer. Precondition: k outlives it, and the observer sees
// every op that runs on k (it keeps the state after the last op as the
// state before the next).
class Z3Observer {
public:
  // rlimit 0: smt::kDefaultRlimit. state_checks false: placement checks
  // only, no guard-page and tiling checks after every op (they grow with the
  // number of areas; the engine's own invariants cover both in C++ too).
  explicit Z3Observer(Kernel &k, unsigned rlimit = 0, bool state_checks = true);

  // Checks the op that has just run on the kernel; the first violated check, if any.
  std::optional<Z3Violation> after_op(std::string_view op, const std::vector<Value> &args,
                                      const Value &result);

  const Z3Counts &counts() const { return counts_; }

private:
  // What after_op needs of the state before an op.
  struct Before {
    smt::Snapshot snap;
    bool initialized = false;
    std::uint64_t vmap_area_attempts = 0;
    std::uint64_t vmap_area_injected = 0;
    std::uint64_t page_table_attempts = 0;
    std::vector<std::pair<u64, u64>> lazy; // [start, end) of the lazy areas
  };

  Before capture() const;
  smt::Snapshot placement_snapshot() const;
  std::optional<Z3Violation> record(const std::vector<smt::CheckResult> &results);
  std::optional<Z3Violation> check_pcpu(const std::vector<Value> &args, const Value &result);
  std::optional<Z3Violation> check_vmalloc(const Z3Request &req, const Value &result);
  std::optional<Z3Violation> check_nested(const smt::Snapshot &snap, const Z3Request &outer);

  Kernel &k_;
  smt::PlacementChecker checker_;
  Before before_;
  bool state_checks_;
  bool checked_ = false; // whether the state checks have run on before_.snap
  Z3Counts counts_;
};

} // namespace vmcheck
