// The bounded model checker: canonical hashing, the exhaustive counts of two
// small configurations, shortest violating traces, and (when the engine is
// built with one of the ordering mutants) that exploration finds the mutant.
#include "harness/executor.h"
#include "harness/explore.h"

#include <gtest/gtest.h>

namespace vmcheck {
namespace {

ExploreConfig config(std::initializer_list<std::pair<const char *, const char *>> pairs) {
  ExploreConfig cfg;
  for (const auto &[k, v] : pairs) {
    const std::string err = cfg.set(k, v);
    EXPECT_EQ(err, "") << k << "=" << v;
  }
  EXPECT_EQ(cfg.validate(), "");
  return cfg;
}

TEST(Explore, states_that_differ_only_in_vm_serials_and_handle_names_hash_equal) {
  const MachineConfig mc = ExploreConfig::small_machine();
  Kernel fresh(mc), recycled(mc);
  const u64 a = fresh.vmalloc().vmalloc(PAGE_SIZE);
  const u64 b = fresh.vmalloc().vmalloc(2 * PAGE_SIZE);
  // The same two areas after an allocation that was freed and purged: the
  // engine numbers the vm_structs 2 and 3 instead of 1 and 2.
  recycled.vmalloc().vfree(recycled.vmalloc().vmalloc(PAGE_SIZE));
  recycled.vmalloc().purge_vmap_area_lazy();
  ASSERT_EQ(recycled.vmalloc().vmalloc(PAGE_SIZE), a);
  ASSERT_EQ(recycled.vmalloc().vmalloc(2 * PAGE_SIZE), b);
  EXPECT_NE(fresh.state_hash(), recycled.state_hash());
  const std::vector<std::vector<u64>> no_pending(mc.cpus);
  const std::vector<u64> ab = {a, b}, ba = {b, a};
  EXPECT_EQ(canonical_state_hash(fresh, ab, no_pending, false),
            canonical_state_hash(recycled, ba, no_pending, false));
  // What the trace holds is part of the state.
  const std::vector<u64> only_a = {a};
  EXPECT_NE(canonical_state_hash(fresh, ab, no_pending, false),
            canonical_state_hash(fresh, only_a, no_pending, false));
}

// One CPU, one size, one live handle, lazy=0 (every free purges at once),
// moves alloc / vfree / probe. Counted by hand:
//   S0  the fresh machine (vmalloc not initialised, no vmalloc page tables)
//   S1  a live, unmapped from every TLB          (S0 --alloc-->, S2 --alloc-->)
//   S2  nothing live, but initialised and with the PTE table built (S1 or S3 --vfree-->)
//   S3  a live and cached in the TLB, its PTE accessed (S1 or S3 --probe-->)
// S2 --alloc--> is S1 again: the purge gave the page back and the buddy
// allocator hands out the lowest frame first. Level 3 finds nothing new.
TEST(Explore, one_cpu_one_size_one_handle_has_exactly_four_states) {
  const ExploreConfig cfg = config({{"cpus", "1"},
                                    {"sizes", "1"},
                                    {"aligns", "1"},
                                    {"max-live", "1"},
                                    {"lazy", "0"},
                                    {"moves", "alloc,vfree,probe"},
                                    {"depth", "10"}});
  const ExploreResult r = explore(cfg);
  ASSERT_FALSE(r.violation) << r.violation->message << "\n" << r.violation->text;
  EXPECT_TRUE(r.stats.exhausted);
  EXPECT_EQ(r.stats.unique, 4u);
  EXPECT_EQ(r.stats.depth, 3u);
}

// Two CPUs, sizes {1, 2} pages, page alignment, two live handles, lazy=4,
// every move kind, depth 6: 9811 unique states (1, 4, 19, 90, 399, 1753,
// 7545 new per level) out of 26550 transitions. The number was computed by
// this explorer once and is checked in as a regression value: it moves when
// the engine's reachable states change (a placement, purge or flush change)
// or when the canonical hash starts to merge or split states differently.
// If such a change is intended, rerun
//   vmcheck explore --cpus=2 --sizes=1,2 --aligns=1 --max-live=2 --depth=6
// and update the numbers with the reason in the commit message.
TEST(Explore, two_cpu_configuration_has_the_checked_in_state_count) {
  const ExploreConfig cfg = config({{"sizes", "1,2"}, {"aligns", "1"}, {"depth", "6"}});
  const ExploreResult r = explore(cfg);
  ASSERT_FALSE(r.violation) << r.violation->message << "\n" << r.violation->text;
  EXPECT_TRUE(r.stats.complete);
  EXPECT_EQ(r.stats.unique, 9811u);
  EXPECT_EQ(r.stats.transitions, 26550u);
  const std::vector<u64> per_level = {1, 4, 19, 90, 399, 1753, 7545};
  EXPECT_EQ(r.stats.new_at_depth, per_level);
}

TEST(Explore, a_violation_comes_back_as_the_shortest_trace_and_replays) {
  // Two lazily freed areas at once need two allocations and two frees.
  ExploreHooks hooks;
  hooks.extra_check = [](const Kernel &k) {
    return k.vmalloc().lazy_areas().size() >= 2 ? std::string("two lazy areas") : std::string();
  };
  const ExploreConfig cfg = config({{"sizes", "1"}, {"aligns", "1"}, {"depth", "8"}});
  const ExploreResult r = explore(cfg, hooks);
  ASSERT_TRUE(r.violation);
  EXPECT_EQ(r.stop_reason, "violation");
  EXPECT_EQ(r.violation->message, "two lazy areas");
  EXPECT_EQ(r.violation->depth, 4u);
  EXPECT_EQ(r.violation->trace.stmts.size(), 4u);
  EXPECT_NE(r.violation->text.find("# found by vmcheck explore"), std::string::npos);
  ReplayOptions options;
  options.differential = true;
  const ReplayResult replayed = replay_text(r.violation->text, options);
  EXPECT_EQ(replayed.status, ReplayStatus::Ok) << replayed.report("explore");
}

TEST(Explore, limits_stop_the_search_and_say_so) {
  ExploreConfig cfg = config({{"depth", "20"}, {"max-states", "5000"}});
  const ExploreResult r = explore(cfg);
  EXPECT_FALSE(r.violation);
  EXPECT_EQ(r.stop_reason, "max-states");
  EXPECT_FALSE(r.stats.complete);
  EXPECT_GE(r.stats.transitions, 5000u);
}

TEST(Explore, config_keys_parse_and_bad_ones_are_refused) {
  ExploreConfig cfg;
  EXPECT_EQ(cfg.load("# comment\ndepth = 3\nsizes=1,4\ncpus=3\nmoves=alloc,probe\n"), "");
  EXPECT_EQ(cfg.depth, 3u);
  EXPECT_EQ(cfg.sizes, (std::vector<u64>{1, 4}));
  EXPECT_EQ(cfg.machine.cpus, 3u);
  EXPECT_TRUE(cfg.probe);
  EXPECT_FALSE(cfg.vfree);
  EXPECT_NE(cfg.load("depth=3\nbogus=1\n").find("line 2"), std::string::npos);
  EXPECT_NE(cfg.set("moves", "alloc,teleport"), "");
  EXPECT_NE(cfg.set("sizes", "0"), "");
  cfg.aligns = {3};
  EXPECT_NE(cfg.validate(), "");
}

TEST(Explore, run_deferred_one_runs_one_cpu_list_and_leaves_the_other_queued) {
  OpTable ops = default_op_table();
  register_explore_ops(ops);
  ReplayOptions options;
  options.ops = &ops;
  const ReplayResult r = replay_text("# vmcheck trace v1\n"
                                     "config cpus=2 nodes=1 mem=8M lazy=100\n"
                                     "a = vmalloc(4096)\n"
                                     "b = vmalloc(4096)\n"
                                     "vfree_atomic(a)\n"
                                     "cpu(1)\n"
                                     "vfree_atomic(b)\n"
                                     "run_deferred_one() -> 1\n"
                                     "find_vm_area(a) -> NULL\n"
                                     "f = find_vm_area(b)\n"
                                     "f.addr -> b\n"
                                     "run_deferred_one() -> 1\n"
                                     "run_deferred_one() -> 0\n"
                                     "find_vm_area(b) -> NULL\n",
                                     options);
  EXPECT_EQ(r.status, ReplayStatus::Ok) << r.report("inline");
}

// ---- the ordering mutants (issue 7): built only with -DVMCHECK_MUTANT=name ----

// Explores the default domain until the first violation and checks that it
// is the expected kind, found within `depth` moves, and that the printed
// trace reproduces it under `vmcheck replay`.
[[maybe_unused]] void expect_found(const ExploreConfig &cfg, unsigned depth,
                                   const std::string &what) {
  const ExploreResult r = explore(cfg);
  ASSERT_TRUE(r.violation) << "the mutant survived " << r.stats.unique << " states";
  EXPECT_LE(r.violation->depth, depth);
  EXPECT_NE(r.violation->message.find(what), std::string::npos) << r.violation->message;
  ReplayOptions options;
  options.differential = true;
  OpTable ops = default_op_table();
  register_explore_ops(ops);
  options.ops = &ops;
  EXPECT_EQ(replay_text(r.violation->text, options).status, ReplayStatus::Divergence)
      << r.violation->text;
}

#ifdef VMCHECK_MUTANT_skip_purge_flush
// alloc, probe (the TLB caches the page), vfree (lazy), purge: the VA is free
// again while a CPU still holds its translation.
TEST(ExploreMutant, skipped_purge_flush_is_found_within_four_moves) {
  expect_found(config({{"sizes", "1"}, {"aligns", "1"}, {"depth", "4"}}), 4, "stale TLB");
}
#endif

#ifdef VMCHECK_MUTANT_lost_deferred_free
// Two vfree_atomic on one CPU before its work item runs: the engine frees one,
// the spec and the trace's accounting both expect two.
TEST(ExploreMutant, lost_deferred_free_is_found_within_five_moves) {
  expect_found(config({{"sizes", "1"},
                       {"aligns", "1"},
                       {"depth", "5"},
                       {"moves", "alloc,vfree_atomic,deferred"}}),
               5, "");
}
#endif

// shootdown=async, one size, lazy=1 (the second free crosses the threshold):
// 17527 unique states within 8 moves (new per level 1, 3, 10, 35, 116, 373,
// 1179, 3765, 12045) out of 46343 transitions, computed once by this explorer and checked in as a
// regression value, like the count above; every one of them passes the
// invariants, the spec comparison and the stale-alias check with the flush
// reaching the other CPU at any point.
TEST(Explore, async_shootdown_configuration_has_the_checked_in_state_count) {
  const ExploreConfig cfg = config(
      {{"sizes", "1"}, {"aligns", "1"}, {"depth", "8"}, {"lazy", "1"}, {"shootdown", "async"}});
  const ExploreResult r = explore(cfg);
  ASSERT_FALSE(r.violation) << r.violation->message << "\n" << r.violation->text;
  EXPECT_TRUE(r.stats.complete);
  EXPECT_EQ(r.stats.unique, 17527u);
  EXPECT_EQ(r.stats.transitions, 46343u);
  const std::vector<u64> per_level = {1, 3, 10, 35, 116, 373, 1179, 3765, 12045};
  EXPECT_EQ(r.stats.new_at_depth, per_level);
}

#ifdef VMCHECK_MUTANT_release_before_shootdown_ack
// alloc, vfree, purge on CPU 0 while the flush has not reached CPU 1: the
// spec still holds the VA reserved, the mutant already gave it back (had
// CPU 1 cached the page, the next allocation would reuse the VA under its
// stale translation).
TEST(ExploreMutant, release_before_the_last_shootdown_ack_is_found_within_three_moves) {
  expect_found(config({{"sizes", "1"},
                       {"aligns", "1"},
                       {"depth", "6"},
                       {"lazy", "100"},
                       {"shootdown", "async"}}),
               3, "engine and spec disagree");
}
#endif

#ifdef VMCHECK_MUTANT_purge_race
// Two lazily freed areas, the second one cached in a TLB: a purge that
// flushes only the first area's range leaves the second translation behind.
TEST(ExploreMutant, purge_flushing_a_partial_range_is_found_within_six_moves) {
  expect_found(config({{"sizes", "1"}, {"aligns", "1"}, {"depth", "6"}, {"lazy", "100"}}), 6,
               "stale TLB");
}
#endif

} // namespace
} // namespace vmcheck
