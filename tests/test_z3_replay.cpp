// `vmcheck replay --z3`: the Z3 placement and guard-page checks run against
// the engine after every op. A correct engine proves every query; a
// placement moved off the engine's answer is a violation with a
// counterexample; an op that placed nothing is not judged as "no fit".
#include "harness/executor.h"
#include "harness/z3_checks.h"

#include <gtest/gtest.h>

#include <vector>

namespace vmcheck {
namespace {

MachineConfig small_machine() {
  MachineConfig cfg;
  EXPECT_EQ(cfg.set("mem", "64M"), "");
  EXPECT_EQ(cfg.set("nodes", "1"), "");
  return cfg;
}

TEST(Z3Replay, replaying_the_issue_example_proves_every_query) {
  ReplayOptions opts;
  opts.z3 = true;
  const ReplayResult r =
      replay_text("# vmcheck trace v1\n"
                  "v = pcpu_get_vm_areas([0, 65536], [16384, 16384], 2, 4096)\n"
                  "v = pcpu_get_vm_areas([0, 65536], [16384, 16384], 2, 4096)\n"
                  "a = vmalloc(8192)\n"
                  "b = vzalloc(5 * 4096)\n"
                  "c = vmalloc_user(1)\n"
                  "vfree(b)\n"
                  "d = vmalloc(513 * 4096)\n"
                  "e = __vmalloc_node(0x3000, 0x10000, GFP_KERNEL, PAGE_KERNEL, -1)\n",
                  opts);
  ASSERT_EQ(r.status, ReplayStatus::Ok) << r.report("example");
  EXPECT_GT(r.z3_queries, 20u);
  EXPECT_EQ(r.z3_proven, r.z3_queries);
  EXPECT_EQ(r.z3_unknown, 0u);
}

TEST(Z3Replay, without_the_flag_no_query_runs) {
  const ReplayResult r = replay_text("# vmcheck trace v1\na = vmalloc(8192)\n");
  ASSERT_EQ(r.status, ReplayStatus::Ok);
  EXPECT_EQ(r.z3_queries, 0u);
}

TEST(Z3Replay, a_vmalloc_moved_up_one_page_is_not_the_lowest_fit) {
  Kernel k(small_machine());
  const std::vector<Value> args = {Value::integer(8192)};
  ASSERT_NE(k.vmalloc().vmalloc(4096), 0u); // something below, so the check has areas to read
  const smt::Snapshot before = z3_snapshot(k);
  const u64 addr = k.vmalloc().vmalloc(8192);
  ASSERT_NE(addr, 0u);
  std::optional<Z3Request> req = z3_vmalloc_request(k, "vmalloc", args);
  ASSERT_TRUE(req);
  EXPECT_EQ(req->call.size, 3 * PAGE_SIZE); // two pages and the guard page

  smt::PlacementChecker z3;
  req->call.result = addr;
  for (const smt::CheckResult &c : z3.check_vmalloc(before, req->call))
    EXPECT_EQ(c.status, smt::Status::Proven) << c.name << ": " << c.counterexample;

  req->call.result = addr + PAGE_SIZE;
  const std::vector<smt::CheckResult> moved = z3.check_vmalloc(before, req->call);
  ASSERT_EQ(moved.size(), 2u);
  EXPECT_EQ(moved[0].status, smt::Status::Proven); // still a valid place, just not the lowest
  EXPECT_EQ(moved[1].status, smt::Status::Violated);
  EXPECT_NE(moved[1].counterexample.find("lowest fit"), std::string::npos)
      << moved[1].counterexample;
}

TEST(Z3Replay, a_pcpu_base_moved_down_one_page_is_not_top_down_maximal) {
  Kernel k(small_machine());
  const smt::Snapshot before = z3_snapshot(k);
  const std::vector<u64> offsets = {0, 65536}, sizes = {16384, 16384};
  const std::vector<VmStruct *> vms = k.vmalloc().pcpu_get_vm_areas(offsets, sizes, PAGE_SIZE);
  ASSERT_EQ(vms.size(), 2u);
  smt::PcpuCall call{offsets, sizes, PAGE_SIZE, {vms[0]->addr, vms[1]->addr}};

  smt::PlacementChecker z3;
  for (const smt::CheckResult &c : z3.check_pcpu(before, call))
    EXPECT_EQ(c.status, smt::Status::Proven) << c.name << ": " << c.counterexample;

  for (u64 &a : call.addrs)
    a -= PAGE_SIZE;
  const std::vector<smt::CheckResult> moved = z3.check_pcpu(before, call);
  ASSERT_EQ(moved.size(), 2u);
  EXPECT_EQ(moved[1].status, smt::Status::Violated);
  EXPECT_NE(moved[1].counterexample.find("top-down maximality"), std::string::npos)
      << moved[1].counterexample;
}

TEST(Z3Replay, a_vmalloc_placed_over_a_busy_area_is_an_invalid_placement) {
  Kernel k(small_machine());
  const u64 first = k.vmalloc().vmalloc(8192);
  ASSERT_NE(first, 0u);
  const smt::Snapshot before = z3_snapshot(k);
  std::optional<Z3Request> req = z3_vmalloc_request(k, "vmalloc", {Value::integer(8192)});
  ASSERT_TRUE(req);
  req->call.result = first + PAGE_SIZE;
  smt::PlacementChecker z3;
  const smt::CheckResult c = z3.check_vmalloc_placement(before, req->call);
  EXPECT_EQ(c.status, smt::Status::Violated);
  EXPECT_NE(c.counterexample.find("disjoint from busy area"), std::string::npos)
      << c.counterexample;
}

// The observer alone, placement checks only, so the counts are the placement's.
struct Observed {
  Kernel k{small_machine()};
  Z3Observer z3{k, 0, false};
};

TEST(Z3Replay, a_vmalloc_with_a_vmalloced_page_array_checks_both_placements) {
  Observed o;
  const u64 addr = o.k.vmalloc().vmalloc(513 * PAGE_SIZE);
  ASSERT_NE(addr, 0u);
  EXPECT_FALSE(o.z3.after_op("vmalloc", {Value::integer(513 * PAGE_SIZE)}, Value::integer(addr)));
  // validity + lowest fit, for the area and for its pages[] array
  EXPECT_EQ(o.z3.counts().queries, 4u);
  EXPECT_EQ(o.z3.counts().proven, 4u);
  EXPECT_EQ(o.z3.counts().skipped, 0u);
}

TEST(Z3Replay, a_request_refused_before_placement_is_skipped_not_judged_as_no_fit) {
  Observed o;
  EXPECT_EQ(o.k.vmalloc().vmalloc(0), 0u);
  EXPECT_FALSE(o.z3.after_op("vmalloc", {Value::integer(0)}, Value::null()));
  o.k.machine().faults().fail_nth(FailPoint::VmapArea, 1);
  EXPECT_EQ(o.k.vmalloc().vmalloc(PAGE_SIZE), 0u);
  EXPECT_FALSE(o.z3.after_op("vmalloc", {Value::integer(PAGE_SIZE)}, Value::null()));
  EXPECT_EQ(o.z3.counts().queries, 0u);
  EXPECT_EQ(o.z3.counts().skipped, 2u);
}

TEST(Z3Replay, a_pcpu_request_refused_before_its_search_is_skipped) {
  Observed o;
  const std::vector<Value> args = {Value::array({Value::integer(0)}),
                                   Value::array({Value::integer(PAGE_SIZE)}), Value::integer(1),
                                   Value::integer(PAGE_SIZE)};
  const std::vector<u64> offsets = {0}, sizes = {PAGE_SIZE};
  o.k.machine().faults().fail_nth(FailPoint::VmapArea, 2);
  EXPECT_TRUE(o.k.vmalloc().pcpu_get_vm_areas(offsets, sizes, PAGE_SIZE).empty());
  EXPECT_FALSE(o.z3.after_op("pcpu_get_vm_areas", args, Value::null()));
  EXPECT_EQ(o.z3.counts().queries, 0u);
  EXPECT_EQ(o.z3.counts().skipped, 1u);
}

TEST(Z3Replay, a_window_with_no_room_is_proven_to_have_no_fit) {
  Observed o;
  const u64 lo = o.k.machine().vmalloc_start() + 0x100000;
  const std::vector<Value> args = {Value::integer(0x4000), Value::integer(0), Value::integer(lo),
                                   Value::integer(lo + 0x4000)};
  EXPECT_EQ(o.k.vmalloc().__get_vm_area(0x4000, 0, lo, lo + 0x4000), nullptr);
  EXPECT_FALSE(o.z3.after_op("__get_vm_area", args, Value::null()));
  EXPECT_EQ(o.z3.counts().skipped, 0u);
  EXPECT_GE(o.z3.counts().queries, 1u);
  EXPECT_EQ(o.z3.counts().proven, o.z3.counts().queries);
}

TEST(Z3Replay, a_vmalloc_unwound_after_a_page_failure_is_checked_where_it_was_placed) {
  Observed o;
  o.k.machine().faults().fail_nth(FailPoint::AllocPage, 2);
  EXPECT_EQ(o.k.vmalloc().vmalloc(3 * PAGE_SIZE), 0u);
  ASSERT_EQ(o.k.vmalloc().lazy_areas().size(), 1u);
  EXPECT_FALSE(o.z3.after_op("vmalloc", {Value::integer(3 * PAGE_SIZE)}, Value::null()));
  EXPECT_EQ(o.z3.counts().skipped, 0u);
  EXPECT_EQ(o.z3.counts().queries, 2u);
  EXPECT_EQ(o.z3.counts().proven, 2u);
}

} // namespace
} // namespace vmcheck
