// The Z3 placement checks (spec/smt) against the brute-force searches, on
// random layouts in a small vmalloc range (areas with and without guard
// pages, some lazily freed, PTEs on the live areas' pages): the brute-force
// answer (top-down for pcpu, lowest fit for vmalloc) is proven by every
// check, and answers moved off it by one alignment step are violated.
#include "spec/smt/placement_brute.h"
#include "spec/smt/placement_smt.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

namespace vmcheck::smt {
namespace {

constexpr u64 P = PAGE_SIZE;

// One checker for every case: a context per case would dominate the run.
PlacementChecker &checker() {
  static PlacementChecker z3;
  return z3;
}

// A layout of [start, start + pages) with the last page past VMALLOC_END's
// inclusive bound, as in the kernel.
struct Layout {
  Snapshot snap;
  u64 pages = 0;
};

Layout gen_layout() {
  Layout l;
  l.pages = *rc::gen::inRange<u64>(8, 97);
  l.snap.vmalloc_start = *rc::gen::element(VMALLOC_START_L4, VMALLOC_START_L5);
  l.snap.vmalloc_end = l.snap.vmalloc_start + l.pages * P - 1;
  const int count = *rc::gen::inRange(0, 24);
  u64 cursor = 0;
  for (int i = 0; i < count; ++i) {
    const u64 gap = *rc::gen::inRange<u64>(0, 4);
    const u64 len = *rc::gen::inRange<u64>(1, 7);
    const bool guard = len >= 2 && *rc::gen::arbitrary<bool>();
    const bool lazy = *rc::gen::inRange(0, 4) == 0;
    const bool mapped = *rc::gen::inRange(0, 3) != 0;
    if (cursor + gap + len > l.pages)
      break;
    cursor += gap;
    const u64 start = l.snap.vmalloc_start + cursor * P;
    const u64 end = start + len * P;
    l.snap.reserved.push_back({start, end, guard, lazy});
    if (!lazy && mapped && end - start > (guard ? P : 0))
      l.snap.present_ptes.push_back({start, guard ? end - P : end});
    cursor += len;
  }
  return l;
}

PcpuCall gen_pcpu() {
  PcpuCall call;
  call.align = P << *rc::gen::inRange(0, 3);
  const int n = *rc::gen::inRange(1, 4);
  u64 cursor = 0;
  for (int i = 0; i < n; ++i) {
    cursor += *rc::gen::inRange<u64>(0, 3);
    const u64 size = *rc::gen::inRange<u64>(1, 4);
    call.offsets.push_back(cursor * call.align);
    call.sizes.push_back(size * call.align);
    cursor += size;
  }
  // Any area order: the kernel's last_area is the one with the highest start.
  const std::size_t rotate = *rc::gen::inRange<std::size_t>(0, call.offsets.size());
  std::rotate(call.offsets.begin(), call.offsets.begin() + rotate, call.offsets.end());
  std::rotate(call.sizes.begin(), call.sizes.begin() + rotate, call.sizes.end());
  return call;
}

VmallocCall gen_vmalloc(const Layout &l) {
  VmallocCall call;
  call.size = *rc::gen::inRange<u64>(1, 9) * P;
  call.align = *rc::gen::element<u64>(1, 8, P, 2 * P, 4 * P, 8 * P);
  const u64 first = *rc::gen::inRange<u64>(0, l.pages / 2);
  call.vstart = l.snap.vmalloc_start + first * P + *rc::gen::element<u64>(0, 0, 1, P - 1);
  call.vend = *rc::gen::arbitrary<bool>()
                  ? l.snap.vmalloc_end
                  : l.snap.vmalloc_start + *rc::gen::inRange<u64>(first, l.pages + 1) * P;
  return call;
}

void show(const CheckResult &r) {
  RC_LOG() << r.name << ": " << status_name(r.status) << " (" << r.proven << "/" << r.queries
           << " proven) " << r.counterexample << "\n";
}

bool all_proven(const std::vector<CheckResult> &rs) {
  bool ok = true;
  for (const CheckResult &r : rs) {
    show(r);
    ok &= r.status == Status::Proven && r.proven == r.queries;
  }
  return ok;
}

bool violated(const CheckResult &r) {
  show(r);
  return r.status == Status::Violated && !r.counterexample.empty();
}

PcpuCall placed(PcpuCall call, u64 base) {
  call.addrs.clear();
  for (u64 off : call.offsets)
    call.addrs.push_back(base + off);
  return call;
}

RC_GTEST_PROP(Z3Placement, brute_force_candidates_agree_with_exhaustive_scan, ()) {
  const Layout l = gen_layout();
  const PcpuCall pc = gen_pcpu();
  RC_ASSERT(brute_pcpu_base(l.snap, pc) == scan_pcpu_base(l.snap, pc));
  const VmallocCall vc = gen_vmalloc(l);
  RC_ASSERT(brute_vmalloc_start(l.snap, vc) == scan_vmalloc_start(l.snap, vc));
}

RC_GTEST_PROP(Z3Placement, top_down_pcpu_answer_passes_all_four_checks, ()) {
  const Layout l = gen_layout();
  PcpuCall call = gen_pcpu();
  const std::optional<u64> base = brute_pcpu_base(l.snap, call);
  RC_TAG(base ? "placed" : "null");
  if (base)
    call = placed(call, *base);
  std::vector<CheckResult> rs = checker().check_pcpu(l.snap, call);
  rs.push_back(checker().check_guard_pages(l.snap));
  RC_ASSERT(all_proven(rs));
}

RC_GTEST_PROP(Z3Placement, pcpu_answer_off_by_one_alignment_step_is_violated, ()) {
  const Layout l = gen_layout();
  const PcpuCall call = gen_pcpu();
  const std::optional<u64> base = brute_pcpu_base(l.snap, call);
  PlacementChecker &z3 = checker();
  if (!base) {
    // A made-up placement when nothing fits: it must overlap a busy area or leave the range.
    const u64 fake = l.snap.vmalloc_start + *rc::gen::inRange<u64>(0, l.pages) * call.align;
    RC_TAG("fake placement");
    RC_ASSERT(violated(z3.check_pcpu_placement(l.snap, placed(call, fake))));
    return;
  }
  // NULL although a base fits.
  RC_ASSERT(violated(z3.check_pcpu_maximal(l.snap, call)));
  // One step higher: the brute-force base is the highest fit, so this one
  // overlaps something or leaves the range.
  RC_ASSERT(violated(z3.check_pcpu_placement(l.snap, placed(call, *base + call.align))));
  // One step lower: a higher base (the right one) fits.
  if (*base >= l.snap.vmalloc_start + call.align) {
    const PcpuCall lower = placed(call, *base - call.align);
    const CheckResult placement = z3.check_pcpu_placement(l.snap, lower);
    const CheckResult maximal = z3.check_pcpu_maximal(l.snap, lower);
    RC_TAG(placement.status == Status::Proven ? "lower fits" : "lower overlaps");
    RC_ASSERT(placement.status == Status::Violated || violated(maximal));
  }
}

RC_GTEST_PROP(Z3Placement, lowest_fit_vmalloc_answer_passes_all_four_checks, ()) {
  const Layout l = gen_layout();
  VmallocCall call = gen_vmalloc(l);
  const std::optional<u64> start = brute_vmalloc_start(l.snap, call);
  RC_TAG(start ? "placed" : "null");
  call.result = start.value_or(0);
  std::vector<CheckResult> rs = checker().check_vmalloc(l.snap, call);
  rs.push_back(checker().check_guard_pages(l.snap));
  RC_ASSERT(all_proven(rs));
}

RC_GTEST_PROP(Z3Placement, vmalloc_answer_off_by_one_alignment_step_is_violated, ()) {
  const Layout l = gen_layout();
  VmallocCall call = gen_vmalloc(l);
  const std::optional<u64> start = brute_vmalloc_start(l.snap, call);
  RC_PRE(start.has_value());
  PlacementChecker &z3 = checker();
  const u64 step = std::max(call.align, P);
  // NULL although a start fits.
  RC_ASSERT(violated(z3.check_vmalloc_lowest_fit(l.snap, call)));
  // One step higher: the right start is lower and fits.
  VmallocCall higher = call;
  higher.result = *start + step;
  const CheckResult placement = z3.check_vmalloc_placement(l.snap, higher);
  RC_TAG(placement.status == Status::Proven ? "higher fits" : "higher overlaps");
  RC_ASSERT(placement.status == Status::Violated ||
            violated(z3.check_vmalloc_lowest_fit(l.snap, higher)));
  // One step lower: below the lowest fit, so it overlaps something or leaves the window.
  if (*start >= l.snap.vmalloc_start + step) {
    VmallocCall lower = call;
    lower.result = *start - step;
    RC_ASSERT(violated(z3.check_vmalloc_placement(l.snap, lower)));
  }
}

RC_GTEST_PROP(Z3Placement, mapped_or_shared_guard_page_is_violated, ()) {
  Layout l = gen_layout();
  std::vector<std::size_t> guarded;
  for (std::size_t j = 0; j < l.snap.reserved.size(); ++j)
    if (l.snap.reserved[j].has_guard)
      guarded.push_back(j);
  RC_PRE(!guarded.empty());
  const ReservedArea a = l.snap.reserved[*rc::gen::elementOf(guarded)];
  Snapshot mapped = l.snap;
  mapped.present_ptes.push_back({a.end - P, a.end});
  const CheckResult r = checker().check_guard_pages(mapped);
  RC_TAG(a.lazy ? "lazy" : "live");
  // Only a live area's guard must stay unmapped (a lazy one is gone already).
  if (a.lazy)
    RC_ASSERT(r.status == Status::Proven);
  else
    RC_ASSERT(violated(r));
  // A second area over the guard page: the guard lies inside another area.
  Snapshot shared = l.snap;
  shared.reserved.push_back({a.end - P, a.end, false, false});
  RC_ASSERT(violated(checker().check_guard_pages(shared)));
}

RC_GTEST_PROP(Z3Placement, free_space_and_reserved_areas_tile_the_range, ()) {
  Layout l = gen_layout();
  std::vector<bool> taken(l.pages, false);
  for (const ReservedArea &a : l.snap.reserved)
    for (u64 q = a.start; q < a.end; q += P)
      taken[(q - l.snap.vmalloc_start) / P] = true;
  for (u64 i = 0; i < taken.size();) {
    if (taken[i]) {
      ++i;
      continue;
    }
    u64 j = i;
    while (j < taken.size() && !taken[j])
      ++j;
    l.snap.free_blocks.push_back({l.snap.vmalloc_start + i * P, l.snap.vmalloc_start + j * P});
    i = j;
  }
  RC_PRE(!l.snap.free_blocks.empty());
  RC_ASSERT(all_proven({checker().check_tiling(l.snap)}));
  Snapshot gap = l.snap;
  const std::size_t drop = *rc::gen::inRange<std::size_t>(0, gap.free_blocks.size());
  gap.free_blocks.erase(gap.free_blocks.begin() + static_cast<std::ptrdiff_t>(drop));
  if (!gap.free_blocks.empty())
    RC_ASSERT(violated(checker().check_tiling(gap)));
}

} // namespace
} // namespace vmcheck::smt
