// The Z3 placement and guard-page checks (spec/smt): each check proven on
// hand-made correct answers, violated on hand-made wrong ones with a
// counterexample naming the failed constraint, Unknown never counted as
// proven, and the brute-force searches agreeing with each other.
#include "spec/smt/placement_brute.h"
#include "spec/smt/placement_smt.h"

#include <gtest/gtest.h>

#include <string>

namespace vmcheck::smt {
namespace {

constexpr u64 P = PAGE_SIZE;
constexpr u64 K = 1024;

// A small vmalloc range (64 pages at VMALLOC_START) so brute force scans fit.
Snapshot small_snapshot() {
  Snapshot s;
  s.vmalloc_start = VMALLOC_START_L4;
  s.vmalloc_end = VMALLOC_START_L4 + 64 * P - 1;
  return s;
}

u64 page(u64 n) {
  return VMALLOC_START_L4 + n * P;
}

ReservedArea area(u64 first, u64 pages, bool guard = false, bool lazy = false) {
  return {page(first), page(first + pages), guard, lazy};
}

PcpuCall issue_example() {
  PcpuCall call;
  call.offsets = {0, 64 * K};
  call.sizes = {16 * K, 16 * K};
  call.align = 4 * K;
  return call;
}

bool mentions(const CheckResult &r, const std::string &text) {
  return r.counterexample.find(text) != std::string::npos;
}

// The address printed right after `label` in the counterexample (0 if none):
// Z3's witness, which is any fitting address, not necessarily the extremal one.
u64 witness_after(const CheckResult &r, const std::string &label) {
  const std::size_t at = r.counterexample.find(label);
  if (at == std::string::npos)
    return 0;
  return std::stoull(r.counterexample.substr(at + label.size()), nullptr, 16);
}

TEST(Smt, z3_version_is_the_linked_library) {
  EXPECT_EQ(z3_version().rfind("4.", 0), 0u) << z3_version();
}

TEST(Smt, issue_example_on_a_fresh_machine_is_proven) {
  PlacementChecker z3;
  PcpuCall call = issue_example();
  call.addrs = {0xffffe8fffffeb000, 0xffffe8ffffffb000};
  for (const CheckResult &r : z3.check_pcpu(fresh_snapshot(4), call)) {
    EXPECT_EQ(r.status, Status::Proven) << r.name << ": " << r.counterexample;
    EXPECT_EQ(r.proven, r.queries) << r.name;
    EXPECT_GE(r.queries, 1u) << r.name;
  }
}

TEST(Smt, issue_example_one_page_lower_violates_top_down_maximality) {
  PlacementChecker z3;
  PcpuCall call = issue_example();
  call.addrs = {0xffffe8fffffea000, 0xffffe8ffffffa000};
  EXPECT_EQ(z3.check_pcpu_placement(fresh_snapshot(4), call).status, Status::Proven);
  const CheckResult r = z3.check_pcpu_maximal(fresh_snapshot(4), call);
  ASSERT_EQ(r.status, Status::Violated);
  EXPECT_TRUE(mentions(r, "top-down maximality")) << r.counterexample;
  EXPECT_TRUE(mentions(r, "base 0xffffe8fffffeb000")) << r.counterexample;
  EXPECT_TRUE(mentions(r, "returned 0xffffe8fffffea000")) << r.counterexample;
}

TEST(Smt, issue_example_one_page_higher_leaves_the_vmalloc_range) {
  PlacementChecker z3;
  PcpuCall call = issue_example();
  call.addrs = {0xffffe8fffffec000, 0xffffe8fffffec000 + 64 * K};
  const CheckResult r = z3.check_pcpu_placement(fresh_snapshot(4), call);
  ASSERT_EQ(r.status, Status::Violated);
  EXPECT_TRUE(mentions(r, "inside the vmalloc range")) << r.counterexample;
  EXPECT_TRUE(mentions(r, "area 1 [0xffffe8ffffffc000")) << r.counterexample;
  EXPECT_FALSE(mentions(r, "area 0 [")) << r.counterexample;
}

TEST(Smt, five_level_range_places_at_its_own_top) {
  PlacementChecker z3;
  PcpuCall call = issue_example();
  const u64 base = (VMALLOC_END_L5 & PAGE_MASK) - 80 * K;
  call.addrs = {base, base + 64 * K};
  for (const CheckResult &r : z3.check_pcpu(fresh_snapshot(5), call))
    EXPECT_EQ(r.status, Status::Proven) << r.name << ": " << r.counterexample;
}

TEST(Smt, areas_that_are_not_congruent_violate_placement) {
  PlacementChecker z3;
  PcpuCall call = issue_example();
  call.addrs = {0xffffe8fffffeb000, 0xffffe8ffffffa000};
  const CheckResult r = z3.check_pcpu_placement(fresh_snapshot(4), call);
  ASSERT_EQ(r.status, Status::Violated);
  EXPECT_TRUE(mentions(r, "congruent")) << r.counterexample;
}

TEST(Smt, unaligned_pcpu_area_violates_alignment) {
  PlacementChecker z3;
  PcpuCall call;
  call.offsets = {0};
  call.sizes = {16 * K};
  call.align = 16 * K;
  call.addrs = {page(3)};
  const CheckResult r = z3.check_pcpu_placement(small_snapshot(), call);
  ASSERT_EQ(r.status, Status::Violated);
  EXPECT_TRUE(mentions(r, "aligned to 0x4000")) << r.counterexample;
}

TEST(Smt, pcpu_area_over_a_busy_guard_page_violates_disjointness) {
  PlacementChecker z3;
  Snapshot snap = small_snapshot();
  snap.reserved = {area(10, 3, /*guard=*/true)};
  PcpuCall call;
  call.offsets = {0};
  call.sizes = {2 * P};
  call.align = P;
  call.addrs = {page(12)}; // [12, 14) meets the guard page 12
  const CheckResult r = z3.check_pcpu_placement(snap, call);
  ASSERT_EQ(r.status, Status::Violated);
  EXPECT_TRUE(mentions(r, "disjoint from busy area 0")) << r.counterexample;
  EXPECT_TRUE(mentions(r, "guard page " + std::string("0xffffc9000000c000"))) << r.counterexample;
}

TEST(Smt, pcpu_areas_overlapping_each_other_violate_placement) {
  PlacementChecker z3;
  PcpuCall call;
  call.offsets = {0, 2 * P};
  call.sizes = {2 * P, 2 * P};
  call.align = P;
  call.addrs = {page(60), page(61)};
  const CheckResult r = z3.check_pcpu_placement(small_snapshot(), call);
  ASSERT_EQ(r.status, Status::Violated);
  EXPECT_TRUE(mentions(r, "areas disjoint")) << r.counterexample;
}

TEST(Smt, pcpu_highest_fit_between_areas_is_proven_and_brute_force_agrees) {
  PlacementChecker z3;
  Snapshot snap = small_snapshot();
  snap.reserved = {area(50, 13), area(20, 5, true), area(30, 4, true, /*lazy=*/true)};
  PcpuCall call;
  call.offsets = {0, 8 * P};
  call.sizes = {4 * P, 4 * P};
  call.align = 2 * P;
  const std::optional<u64> base = brute_pcpu_base(snap, call);
  ASSERT_TRUE(base.has_value());
  EXPECT_EQ(*base, page(38)); // area 1 ends at busy area 0's start (page 50)
  EXPECT_EQ(scan_pcpu_base(snap, call), base);
  call.addrs = {*base, *base + 8 * P};
  for (const CheckResult &r : z3.check_pcpu(snap, call))
    EXPECT_EQ(r.status, Status::Proven) << r.name << ": " << r.counterexample;
}

TEST(Smt, pcpu_result_over_a_lazy_area_without_need_of_a_purge_is_violated) {
  PlacementChecker z3;
  Snapshot snap = small_snapshot();
  snap.reserved = {area(40, 23, false, /*lazy=*/true)};
  PcpuCall call;
  call.offsets = {0};
  call.sizes = {4 * P};
  call.align = P;
  call.addrs = {page(59)}; // the top, over the lazy area: [36, 40) fits without a purge
  const CheckResult placement = z3.check_pcpu_placement(snap, call);
  ASSERT_EQ(placement.status, Status::Violated);
  EXPECT_TRUE(mentions(placement, "disjoint from lazy area 0")) << placement.counterexample;
  EXPECT_TRUE(brute_pcpu_fits(snap, call, witness_after(placement, "no purge was due: base "),
                              /*lazy_reserved=*/true))
      << placement.counterexample;
  const CheckResult maximal = z3.check_pcpu_maximal(snap, call);
  ASSERT_EQ(maximal.status, Status::Violated);
  EXPECT_TRUE(mentions(maximal, "purge without need")) << maximal.counterexample;
}

TEST(Smt, pcpu_result_over_a_lazy_area_after_a_needed_purge_is_proven) {
  PlacementChecker z3;
  Snapshot snap = small_snapshot();
  snap.reserved = {area(0, 30, false, /*lazy=*/true), area(30, 20), area(50, 13, true, true)};
  PcpuCall call;
  call.offsets = {0};
  call.sizes = {32 * P};
  call.align = P;
  EXPECT_EQ(brute_pcpu_base(snap, call), std::nullopt); // busy [30, 50) splits 63 pages in 30 + 13
  snap.reserved[1] = area(40, 2);
  ASSERT_EQ(brute_pcpu_base(snap, call), page(8)); // after the purge: [8, 40)
  EXPECT_EQ(scan_pcpu_base(snap, call), page(8));
  call.addrs = {page(8)};
  for (const CheckResult &r : z3.check_pcpu(snap, call))
    EXPECT_EQ(r.status, Status::Proven) << r.name << ": " << r.counterexample;
  call.addrs = {page(7)};
  const CheckResult lower = z3.check_pcpu_maximal(snap, call);
  ASSERT_EQ(lower.status, Status::Violated);
  EXPECT_TRUE(mentions(lower, "after the purge")) << lower.counterexample;
}

TEST(Smt, pcpu_null_is_a_false_failure_when_a_purge_makes_room) {
  PlacementChecker z3;
  Snapshot snap = small_snapshot();
  snap.reserved = {area(0, 63, false, /*lazy=*/true)};
  PcpuCall call;
  call.offsets = {0};
  call.sizes = {4 * P};
  call.align = P;
  const CheckResult r = z3.check_pcpu_maximal(snap, call);
  ASSERT_EQ(r.status, Status::Violated);
  EXPECT_EQ(r.name, "pcpu no false failure");
  EXPECT_TRUE(mentions(r, "fits once lazy areas are purged")) << r.counterexample;
  EXPECT_TRUE(brute_pcpu_fits(snap, call, witness_after(r, "but base "), false))
      << r.counterexample;
}

TEST(Smt, pcpu_null_when_nothing_fits_is_proven) {
  PlacementChecker z3;
  Snapshot snap = small_snapshot();
  snap.reserved = {area(0, 20), area(23, 20, true), area(46, 17)};
  PcpuCall call;
  call.offsets = {0, 4 * P};
  call.sizes = {2 * P, 2 * P};
  call.align = P;
  EXPECT_EQ(brute_pcpu_base(snap, call), std::nullopt);
  for (const CheckResult &r : z3.check_pcpu(snap, call))
    EXPECT_EQ(r.status, Status::Proven) << r.name << ": " << r.counterexample;
}

VmallocCall vmalloc_call(u64 pages, u64 align = 1) {
  VmallocCall c;
  c.size = pages * P;
  c.align = align;
  c.vstart = VMALLOC_START_L4;
  c.vend = VMALLOC_START_L4 + 64 * P - 1; // as the kernel passes VMALLOC_END
  return c;
}

TEST(Smt, vmalloc_lowest_aligned_fit_is_proven_and_brute_force_agrees) {
  PlacementChecker z3;
  Snapshot snap = small_snapshot();
  snap.reserved = {area(0, 3, true), area(5, 2, true, true), area(12, 4, true)};
  VmallocCall call = vmalloc_call(4, 4 * P); // holes [3, 5) and [7, 12): aligned 8 fits
  ASSERT_EQ(brute_vmalloc_start(snap, call), page(8));
  EXPECT_EQ(scan_vmalloc_start(snap, call), page(8));
  call.result = page(8);
  for (const CheckResult &r : z3.check_vmalloc(snap, call))
    EXPECT_EQ(r.status, Status::Proven) << r.name << ": " << r.counterexample;
}

TEST(Smt, vmalloc_start_above_a_lower_fit_violates_lowest_fit) {
  PlacementChecker z3;
  Snapshot snap = small_snapshot();
  snap.reserved = {area(0, 3, true), area(12, 4, true)};
  VmallocCall call = vmalloc_call(4, 4 * P);
  call.result = page(16);
  EXPECT_EQ(z3.check_vmalloc_placement(snap, call).status, Status::Proven);
  const CheckResult r = z3.check_vmalloc_lowest_fit(snap, call);
  ASSERT_EQ(r.status, Status::Violated);
  const u64 lower = witness_after(r, "lowest fit: start ");
  EXPECT_LT(lower, call.result) << r.counterexample;
  EXPECT_TRUE(brute_vmalloc_fits(snap, call, lower, true)) << r.counterexample;
}

TEST(Smt, vmalloc_result_outside_its_window_or_unaligned_is_violated) {
  PlacementChecker z3;
  Snapshot snap = small_snapshot();
  VmallocCall call = vmalloc_call(4, 4 * P);
  call.vstart = page(8);
  call.result = page(4);
  const CheckResult below = z3.check_vmalloc_placement(snap, call);
  ASSERT_EQ(below.status, Status::Violated);
  EXPECT_TRUE(mentions(below, "at or above vstart")) << below.counterexample;
  call.result = page(10);
  const CheckResult unaligned = z3.check_vmalloc_placement(snap, call);
  ASSERT_EQ(unaligned.status, Status::Violated);
  EXPECT_TRUE(mentions(unaligned, "aligned to 0x4000")) << unaligned.counterexample;
  call.align = 1;
  call.result = page(60); // ends at page 64: beyond VMALLOC_END's last usable page
  const CheckResult top = z3.check_vmalloc_placement(snap, call);
  ASSERT_EQ(top.status, Status::Violated);
  EXPECT_TRUE(mentions(top, "ends at or below vend")) << top.counterexample;
  EXPECT_TRUE(mentions(top, "inside the vmalloc range")) << top.counterexample;
}

TEST(Smt, vmalloc_null_with_room_is_a_false_failure_and_without_is_proven) {
  PlacementChecker z3;
  Snapshot snap = small_snapshot();
  snap.reserved = {area(0, 30, true), area(30, 33, true, /*lazy=*/true)};
  VmallocCall call = vmalloc_call(8);
  const CheckResult r = z3.check_vmalloc_lowest_fit(snap, call);
  ASSERT_EQ(r.status, Status::Violated);
  EXPECT_EQ(r.name, "vmalloc no false failure");
  EXPECT_TRUE(brute_vmalloc_fits(snap, call, witness_after(r, "but start "), false))
      << r.counterexample;
  snap.reserved[1].lazy = false;
  EXPECT_EQ(z3.check_vmalloc_lowest_fit(snap, call).status, Status::Proven);
}

TEST(Smt, vmalloc_over_a_lazy_area_is_proven_only_when_the_purge_was_needed) {
  PlacementChecker z3;
  Snapshot snap = small_snapshot();
  snap.reserved = {area(0, 10, true, /*lazy=*/true), area(10, 50, true)};
  VmallocCall call = vmalloc_call(8);
  call.result = page(0);
  for (const CheckResult &r : z3.check_vmalloc(snap, call))
    EXPECT_EQ(r.status, Status::Proven) << r.name << ": " << r.counterexample;
  call = vmalloc_call(2);
  call.result = page(0); // [60, 62) was free: no purge due
  const CheckResult r = z3.check_vmalloc_placement(snap, call);
  ASSERT_EQ(r.status, Status::Violated);
  EXPECT_TRUE(mentions(r, "disjoint from lazy area 0")) << r.counterexample;
  EXPECT_TRUE(mentions(r, "no purge was due")) << r.counterexample;
}

TEST(Smt, guard_pages_unmapped_and_unshared_are_proven) {
  PlacementChecker z3;
  Snapshot snap = small_snapshot();
  snap.reserved = {area(0, 3, true), area(3, 5, true), area(8, 4)};
  snap.present_ptes = {{page(0), page(2)}, {page(3), page(7)}, {page(8), page(12)}};
  const CheckResult r = z3.check_guard_pages(snap);
  EXPECT_EQ(r.status, Status::Proven) << r.counterexample;
  EXPECT_EQ(r.queries, 2u);
  EXPECT_EQ(r.proven, 2u);
}

TEST(Smt, present_pte_in_a_guard_page_is_violated) {
  PlacementChecker z3;
  Snapshot snap = small_snapshot();
  snap.reserved = {area(0, 3, true), area(3, 5, true)};
  snap.present_ptes = {{page(0), page(2)}, {page(3), page(8)}};
  const CheckResult r = z3.check_guard_pages(snap);
  ASSERT_EQ(r.status, Status::Violated);
  EXPECT_TRUE(mentions(r, "guard page 0xffffc90000007000 of busy area 1")) << r.counterexample;
  EXPECT_TRUE(mentions(r, "does not fault")) << r.counterexample;
}

TEST(Smt, lazy_area_guard_pages_are_not_required_unmapped) {
  PlacementChecker z3;
  Snapshot snap = small_snapshot();
  snap.reserved = {area(0, 3, true, /*lazy=*/true)};
  snap.present_ptes = {{page(0), page(3)}};
  EXPECT_EQ(z3.check_guard_pages(snap).status, Status::Proven);
}

TEST(Smt, two_areas_sharing_a_guard_page_are_violated) {
  PlacementChecker z3;
  Snapshot snap = small_snapshot();
  snap.reserved = {area(0, 4, true), area(2, 2, true)};
  const CheckResult r = z3.check_guard_pages(snap);
  ASSERT_EQ(r.status, Status::Violated);
  EXPECT_TRUE(mentions(r, "share a guard")) << r.counterexample;
  EXPECT_TRUE(mentions(r, "0xffffc90000003000")) << r.counterexample;
}

TEST(Smt, guard_page_inside_another_area_is_violated) {
  PlacementChecker z3;
  Snapshot snap = small_snapshot();
  snap.reserved = {area(0, 4, true), area(3, 5)};
  const CheckResult r = z3.check_guard_pages(snap);
  ASSERT_EQ(r.status, Status::Violated);
  EXPECT_TRUE(mentions(r, "guard not inside another area")) << r.counterexample;
  EXPECT_TRUE(mentions(r, "lies in busy area 1")) << r.counterexample;
}

TEST(Smt, tiling_of_free_and_reserved_is_checked) {
  PlacementChecker z3;
  Snapshot snap = small_snapshot();
  snap.reserved = {area(0, 3, true), area(10, 4, true, true)};
  snap.free_blocks = {{page(3), page(10)}, {page(14), page(64)}};
  EXPECT_EQ(z3.check_tiling(snap).status, Status::Proven);
  snap.free_blocks[1].start = page(15);
  const CheckResult hole = z3.check_tiling(snap);
  ASSERT_EQ(hole.status, Status::Violated);
  EXPECT_TRUE(mentions(hole, "page 0xffffc9000000e000 is neither free nor reserved"))
      << hole.counterexample;
  snap.free_blocks[1].start = page(13);
  const CheckResult twice = z3.check_tiling(snap);
  ASSERT_EQ(twice.status, Status::Violated);
  EXPECT_TRUE(mentions(twice, "page 0xffffc9000000d000 is in both")) << twice.counterexample;
}

TEST(Smt, tiny_rlimit_is_unknown_and_never_counted_as_proven) {
  PlacementChecker z3(/*rlimit=*/1);
  Snapshot snap = small_snapshot();
  for (u64 i = 0; i < 20; ++i)
    snap.reserved.push_back(area(3 * i, 2, true));
  PcpuCall call;
  call.offsets = {0, 4 * P};
  call.sizes = {P, P};
  call.align = P;
  call.addrs = {page(0), page(4)};
  const CheckResult r = z3.check_pcpu_maximal(snap, call);
  EXPECT_EQ(r.status, Status::Unknown) << r.counterexample;
  EXPECT_EQ(r.proven, 0u);
  EXPECT_EQ(r.queries, 1u);
  EXPECT_TRUE(mentions(r, "unknown")) << r.counterexample;
}

// The checker keeps one Z3 solver and runs each query in a scope of its own
// (PlacementChecker::Impl::Query): what a query asserted must be gone for
// the next, and the resource limit must hold per query, not add up.
TEST(Smt, one_checker_answers_each_query_as_a_fresh_one_does) {
  Snapshot snap = small_snapshot();
  for (u64 i = 0; i < 6; ++i)
    snap.reserved.push_back(area(4 + 6 * i, 2, true, i % 3 == 2));
  PcpuCall good;
  good.offsets = {0, 4 * P};
  good.sizes = {P, P};
  good.align = P;
  const u64 base = brute_pcpu_base(snap, good).value();
  good.addrs = {base, base + 4 * P};
  PcpuCall low = good; // one page lower: fits, so not top-down maximal
  low.addrs = {base - P, base + 3 * P};
  const VmallocCall vgood = [&] {
    VmallocCall c = vmalloc_call(2, P);
    c.result = brute_vmalloc_start(snap, c).value();
    return c;
  }();
  VmallocCall vhigh = vgood; // above the lowest fit
  vhigh.result += 32 * P;
  PlacementChecker shared;
  for (int round = 0; round < 3; ++round) {
    for (const PcpuCall &c : {good, low, good}) {
      PlacementChecker fresh;
      const std::vector<CheckResult> a = shared.check_pcpu(snap, c), b = fresh.check_pcpu(snap, c);
      ASSERT_EQ(a.size(), b.size());
      for (std::size_t i = 0; i < a.size(); ++i) {
        EXPECT_EQ(a[i].status, b[i].status) << a[i].name << ": " << a[i].counterexample;
        EXPECT_EQ(a[i].queries, b[i].queries) << a[i].name;
        EXPECT_EQ(a[i].proven, b[i].proven) << a[i].name;
      }
    }
    for (const VmallocCall &c : {vhigh, vgood}) {
      PlacementChecker fresh;
      const std::vector<CheckResult> a = shared.check_vmalloc(snap, c),
                                     b = fresh.check_vmalloc(snap, c);
      for (std::size_t i = 0; i < a.size(); ++i)
        EXPECT_EQ(a[i].status, b[i].status) << a[i].name << ": " << a[i].counterexample;
    }
  }
  EXPECT_EQ(shared.check_pcpu_maximal(snap, low).status, Status::Violated);
  EXPECT_EQ(shared.check_pcpu_maximal(snap, good).status, Status::Proven);

  // The smallest power-of-two limit one maximality query needs...
  unsigned need = 1;
  while (PlacementChecker(need).check_pcpu_maximal(snap, good).status != Status::Proven) {
    ASSERT_LT(need, 1u << 30);
    need *= 2;
  }
  // ...is enough for every one of twenty in a row on one checker.
  PlacementChecker tight(need);
  for (int i = 0; i < 20; ++i)
    ASSERT_EQ(tight.check_pcpu_maximal(snap, good).status, Status::Proven) << "query " << i;
}

TEST(Smt, malformed_input_is_unknown_with_the_reason) {
  PlacementChecker z3;
  PcpuCall call = issue_example();
  call.align = 3 * K;
  const CheckResult bad_align = z3.check_pcpu_maximal(fresh_snapshot(4), call);
  EXPECT_EQ(bad_align.status, Status::Unknown);
  EXPECT_TRUE(mentions(bad_align, "align 0xc00")) << bad_align.counterexample;
  Snapshot snap = small_snapshot();
  snap.reserved = {{page(1) + 8, page(2), false, false}};
  const CheckResult bad_snap = z3.check_guard_pages(snap);
  EXPECT_EQ(bad_snap.status, Status::Unknown);
  EXPECT_TRUE(mentions(bad_snap, "malformed snapshot")) << bad_snap.counterexample;
}

TEST(Smt, candidate_search_agrees_with_exhaustive_scan_on_dense_layouts) {
  // Every layout of areas at pages 3i.. with lengths and flags from a fixed pattern.
  for (u64 pattern = 0; pattern < 64; ++pattern) {
    Snapshot snap = small_snapshot();
    for (u64 i = 0; i < 20; ++i)
      if ((pattern >> (i % 6)) & 1)
        snap.reserved.push_back(area(3 * i, 1 + (i + pattern) % 3, i % 2 == 0, i % 5 == 1));
    for (u64 align : {P, 2 * P, 4 * P}) {
      PcpuCall pc;
      pc.offsets = {0, 2 * align};
      pc.sizes = {align, align};
      pc.align = align;
      EXPECT_EQ(brute_pcpu_base(snap, pc), scan_pcpu_base(snap, pc)) << pattern << " " << align;
      VmallocCall vc = vmalloc_call(2, align);
      EXPECT_EQ(brute_vmalloc_start(snap, vc), scan_vmalloc_start(snap, vc))
          << pattern << " " << align;
    }
  }
}

} // namespace
} // namespace vmcheck::smt
