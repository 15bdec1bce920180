// Z3 time per check at N existing areas, for the queries of spec/smt.
//
// Worst-case layouts for the search queries: N one-page areas with a guard
// page (every fourth one lazily freed) every three pages, so each leaves a
// one-page hole too small for the request. The pcpu request (two congruent
// two-page areas) then lands below all N areas, packed against the top of
// the range, and the vmalloc request (two pages) lands above all N areas,
// packed against VMALLOC_START: every existing area lies in the searched
// window, so none is pruned from the query. Each iteration is one check
// (one Z3 query, solver set-up included); the answer is verified once, with
// the brute-force search, before timing.
#include "spec/smt/placement_brute.h"
#include "spec/smt/placement_smt.h"

#include <benchmark/benchmark.h>

namespace vmcheck::smt {
namespace {

constexpr u64 P = PAGE_SIZE;
constexpr u64 kStride = 3 * P;

Snapshot packed_at_top(u64 n) {
  Snapshot s = fresh_snapshot(4);
  const u64 top = s.vmalloc_end & PAGE_MASK;
  for (u64 i = 0; i < n; ++i) {
    const u64 end = top - i * kStride;
    s.reserved.push_back({end - 2 * P, end, true, i % 4 == 3});
  }
  return s;
}

Snapshot packed_at_bottom(u64 n) {
  Snapshot s = fresh_snapshot(4);
  for (u64 i = 0; i < n; ++i) {
    const u64 start = s.vmalloc_start + i * kStride;
    s.reserved.push_back({start, start + 2 * P, true, i % 4 == 3});
  }
  return s;
}

PcpuCall pcpu_request() {
  PcpuCall call;
  call.offsets = {0, 4 * P};
  call.sizes = {2 * P, 2 * P};
  call.align = P;
  return call;
}

VmallocCall vmalloc_request(const Snapshot &s) {
  VmallocCall call;
  call.size = 2 * P;
  call.align = 1;
  call.vstart = s.vmalloc_start;
  call.vend = s.vmalloc_end;
  return call;
}

// Times check(snap, call) after verifying it proves the brute-force answer.
template <typename Call, typename Check>
void time_check(benchmark::State &state, const Snapshot &snap, const Call &call, Check check) {
  PlacementChecker z3;
  const CheckResult first = check(z3, snap, call);
  if (first.status != Status::Proven)
    return state.SkipWithError((first.name + ": " + first.counterexample).c_str());
  for (auto _ : state) {
    CheckResult r = check(z3, snap, call);
    benchmark::DoNotOptimize(r);
  }
  state.counters["queries"] = first.queries;
}

void BM_pcpu_maximal(benchmark::State &state) {
  const Snapshot snap = packed_at_top(static_cast<u64>(state.range(0)));
  PcpuCall call = pcpu_request();
  const std::optional<u64> base = brute_pcpu_base(snap, call);
  if (!base)
    return state.SkipWithError("no base fits");
  call.addrs = {*base, *base + call.offsets[1]};
  time_check(state, snap, call, [](PlacementChecker &z3, const Snapshot &s, const PcpuCall &c) {
    return z3.check_pcpu_maximal(s, c);
  });
}

// The common case: vmallocs packed at the bottom, pcpu at the top. No
// existing area meets the window above the base, so the query lists none.
void BM_pcpu_maximal_pruned(benchmark::State &state) {
  const Snapshot snap = packed_at_bottom(static_cast<u64>(state.range(0)));
  PcpuCall call = pcpu_request();
  const std::optional<u64> base = brute_pcpu_base(snap, call);
  if (!base)
    return state.SkipWithError("no base fits");
  call.addrs = {*base, *base + call.offsets[1]};
  time_check(state, snap, call, [](PlacementChecker &z3, const Snapshot &s, const PcpuCall &c) {
    return z3.check_pcpu_maximal(s, c);
  });
}

void BM_pcpu_placement(benchmark::State &state) {
  const Snapshot snap = packed_at_top(static_cast<u64>(state.range(0)));
  PcpuCall call = pcpu_request();
  const std::optional<u64> base = brute_pcpu_base(snap, call);
  if (!base)
    return state.SkipWithError("no base fits");
  call.addrs = {*base, *base + call.offsets[1]};
  time_check(state, snap, call, [](PlacementChecker &z3, const Snapshot &s, const PcpuCall &c) {
    return z3.check_pcpu_placement(s, c);
  });
}

// NULL on a range whose every gap is one page: the search window is the whole range.
void BM_pcpu_no_false_failure(benchmark::State &state) {
  Snapshot snap = packed_at_top(static_cast<u64>(state.range(0)));
  for (ReservedArea &a : snap.reserved)
    a.lazy = false; // a purge would make room
  const u64 low = snap.reserved.back().start;
  snap.reserved.push_back({snap.vmalloc_start, low - P, false, false});
  time_check(state, snap, pcpu_request(),
             [](PlacementChecker &z3, const Snapshot &s, const PcpuCall &c) {
               return z3.check_pcpu_maximal(s, c);
             });
}

void BM_vmalloc_lowest_fit(benchmark::State &state) {
  const Snapshot snap = packed_at_bottom(static_cast<u64>(state.range(0)));
  VmallocCall call = vmalloc_request(snap);
  const std::optional<u64> start = brute_vmalloc_start(snap, call);
  if (!start)
    return state.SkipWithError("no start fits");
  call.result = *start;
  time_check(state, snap, call, [](PlacementChecker &z3, const Snapshot &s, const VmallocCall &c) {
    return z3.check_vmalloc_lowest_fit(s, c);
  });
}

void BM_vmalloc_placement(benchmark::State &state) {
  const Snapshot snap = packed_at_bottom(static_cast<u64>(state.range(0)));
  VmallocCall call = vmalloc_request(snap);
  call.result = brute_vmalloc_start(snap, call).value_or(0);
  time_check(state, snap, call, [](PlacementChecker &z3, const Snapshot &s, const VmallocCall &c) {
    return z3.check_vmalloc_placement(s, c);
  });
}

// Two queries: PTEs against guard pages, guard pages against other areas.
void BM_guard_pages(benchmark::State &state) {
  Snapshot snap = packed_at_bottom(static_cast<u64>(state.range(0)));
  for (const ReservedArea &a : snap.reserved)
    snap.present_ptes.push_back({a.start, a.end - P});
  time_check(state, snap, 0,
             [](PlacementChecker &z3, const Snapshot &s, int) { return z3.check_guard_pages(s); });
}

BENCHMARK(BM_pcpu_maximal)->Arg(10)->Arg(100)->Arg(1000)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_pcpu_maximal_pruned)->Arg(10)->Arg(100)->Arg(1000)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_pcpu_no_false_failure)->Arg(10)->Arg(100)->Arg(1000)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_pcpu_placement)->Arg(10)->Arg(100)->Arg(1000)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_vmalloc_lowest_fit)->Arg(10)->Arg(100)->Arg(1000)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_vmalloc_placement)->Arg(10)->Arg(100)->Arg(1000)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_guard_pages)->Arg(10)->Arg(100)->Arg(1000)->Unit(benchmark::kMillisecond);

} // namespace
} // namespace vmcheck::smt
