// The machine layer's own pieces: configuration, CPUs and context, deferred
// work, fault injection, diagnostics, and the whole-machine invariants.
#include "kernel.h"

#include <gtest/gtest.h>

namespace vmcheck {
namespace {

MachineConfig small_config() {
  MachineConfig cfg;
  cfg.cpus = 2;
  cfg.nodes = 2;
  cfg.mem_per_node = u64{8} << 20;
  return cfg;
}

TEST(MachineConfig, defaults_describe_the_design_machine) {
  MachineConfig cfg;
  EXPECT_EQ(cfg.to_string(), "cpus=4 nodes=2 mem=512M paging=4 backend=modern lazy=auto");
  EXPECT_EQ(cfg.validate(), "");
}

TEST(MachineConfig, bad_values_are_refused_by_name_and_change_nothing) {
  MachineConfig cfg;
  const std::string before = cfg.to_string();
  EXPECT_NE(cfg.set("cpus", "0").find("cpus"), std::string::npos);
  EXPECT_NE(cfg.set("mem", "5M").find("multiple of 4M"), std::string::npos);
  EXPECT_NE(cfg.set("paging", "3").find("paging"), std::string::npos);
  EXPECT_NE(cfg.set("backend", "ancient").find("modern or legacy"), std::string::npos);
  EXPECT_NE(cfg.set("colour", "blue").find("unknown key 'colour'"), std::string::npos);
  EXPECT_NE(cfg.set("mem", "99999999999999999999G").find("mem"), std::string::npos);
  EXPECT_EQ(cfg.to_string(), before);
}

TEST(MachineConfig, sizes_accept_suffixes_and_hex) {
  MachineConfig cfg;
  EXPECT_EQ(cfg.set("mem", "1G"), "");
  EXPECT_EQ(cfg.mem_per_node, u64{1} << 30);
  EXPECT_EQ(cfg.set("mem", "0x800000"), "");
  EXPECT_EQ(cfg.mem_per_node, u64{8} << 20);
  EXPECT_EQ(cfg.set("lazy", "0"), "");
  EXPECT_EQ(cfg.lazy_pages, 0);
  EXPECT_EQ(cfg.set("backend", "legacy"), "");
  EXPECT_EQ(cfg.to_string(), "cpus=4 nodes=2 mem=8M paging=4 backend=legacy lazy=0");
}

TEST(MachineConfig, more_nodes_than_cpus_is_invalid) {
  MachineConfig cfg;
  cfg.cpus = 1;
  cfg.nodes = 2;
  EXPECT_NE(cfg.validate(), "");
  EXPECT_THROW(Machine m(cfg), std::invalid_argument);
}

TEST(Machine, vmalloc_range_follows_the_paging_mode) {
  MachineConfig cfg = small_config();
  Machine m4(cfg);
  EXPECT_EQ(m4.vmalloc_start(), 0xffffc90000000000ULL);
  EXPECT_EQ(m4.vmalloc_end(), 0xffffe8ffffffffffULL);
  cfg.paging_levels = 5;
  Machine m5(cfg);
  EXPECT_EQ(m5.vmalloc_start(), 0xffa0000000000000ULL);
  EXPECT_EQ(m5.vmalloc_end(), 0xffd1ffffffffffffULL);
}

TEST(Machine, cpus_are_spread_over_nodes_in_blocks) {
  MachineConfig cfg = small_config();
  cfg.cpus = 4;
  Machine m(cfg);
  EXPECT_EQ(m.num_online_cpus(), 4u);
  EXPECT_EQ(m.cpu_to_node(0), 0u);
  EXPECT_EQ(m.cpu_to_node(1), 0u);
  EXPECT_EQ(m.cpu_to_node(2), 1u);
  EXPECT_EQ(m.cpu_to_node(3), 1u);
}

TEST(Machine, switching_to_a_missing_cpu_is_refused_and_changes_nothing) {
  Machine m(small_config());
  const u64 before = m.state_hash();
  EXPECT_FALSE(m.set_current_cpu(2));
  EXPECT_EQ(m.current_cpu(), 0u);
  EXPECT_EQ(m.state_hash(), before);
  EXPECT_TRUE(m.set_current_cpu(1));
  EXPECT_EQ(m.current_cpu(), 1u);
  EXPECT_NE(m.state_hash(), before);
}

TEST(Machine, interrupt_context_is_per_cpu_and_nests) {
  Machine m(small_config());
  EXPECT_FALSE(m.in_interrupt());
  m.irq_enter();
  m.irq_enter();
  EXPECT_TRUE(m.in_interrupt());
  ASSERT_TRUE(m.set_current_cpu(1));
  EXPECT_FALSE(m.in_interrupt());
  ASSERT_TRUE(m.set_current_cpu(0));
  EXPECT_TRUE(m.irq_exit());
  EXPECT_TRUE(m.in_interrupt());
  EXPECT_TRUE(m.irq_exit());
  EXPECT_FALSE(m.in_interrupt());
  EXPECT_FALSE(m.irq_exit()); // unbalanced exit is refused
}

TEST(Machine, alloc_pages_prefers_the_current_cpus_node) {
  Machine m(small_config());
  ASSERT_TRUE(m.set_current_cpu(1));
  auto p = m.alloc_pages(GFP_KERNEL, 0);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(m.mem().pfn_to_nid(*p), 1u);
  auto q = m.alloc_pages_node(0, GFP_KERNEL, 0);
  ASSERT_TRUE(q.has_value());
  EXPECT_EQ(m.mem().pfn_to_nid(*q), 0u);
  m.pages().free_pages(*p, 0);
  m.pages().free_pages(*q, 0);
  EXPECT_EQ(m.check(), "");
}

TEST(Machine, a_fresh_machine_satisfies_its_invariants) {
  Machine m(MachineConfig{});
  EXPECT_EQ(m.check(), "");
  EXPECT_EQ(m.pages().totalram_pages(), (u64{1} << 30) >> PAGE_SHIFT);
}

TEST(Machine, unmapped_kernel_address_faults_as_not_present) {
  Machine m(small_config());
  Translation t = m.touch(m.vmalloc_start(), Access::Read);
  EXPECT_EQ(t.fault, Fault::NotPresent);
  EXPECT_EQ(m.touch(0x0000900000000000ULL, Access::Read).fault, Fault::NonCanonical);
}

TEST(Machine, kernel_read_and_write_go_through_the_page_tables) {
  Machine m(small_config());
  auto p = m.alloc_pages(GFP_KERNEL | __GFP_ZERO, 0);
  ASSERT_TRUE(p);
  const u64 va = m.vmalloc_start() + 0x5000;
  ASSERT_EQ(m.pt().map_page(m.pt().kernel_root(), va, *p, PAGE_KERNEL), 0);
  const std::uint8_t msg[] = {'h', 'i', '!'};
  u64 fault_va = 0;
  EXPECT_FALSE(m.kernel_write(va + 4094, msg, &fault_va)); // crosses into the unmapped next page
  EXPECT_EQ(fault_va, va + 4096);
  std::uint8_t back[2] = {};
  ASSERT_TRUE(m.kernel_read(va + 4094, back)); // the part before the fault was written
  EXPECT_EQ(back[0], 'h');
  EXPECT_EQ(back[1], 'i');
}

TEST(DeferredWork, runs_items_in_order_and_only_when_asked) {
  DeferredWork w;
  std::vector<int> ran;
  EXPECT_TRUE(w.queue("a", 1, [&] { ran.push_back(1); }));
  EXPECT_TRUE(w.queue("a", 2, [&] { ran.push_back(2); }));
  EXPECT_TRUE(ran.empty());
  EXPECT_EQ(w.pending(), 2u);
  EXPECT_TRUE(w.run_one());
  EXPECT_EQ(ran, std::vector<int>{1});
  EXPECT_EQ(w.run_all(), 1u);
  EXPECT_EQ(ran, (std::vector<int>{1, 2}));
  EXPECT_FALSE(w.run_one());
}

TEST(DeferredWork, a_pending_work_item_is_not_queued_twice) {
  DeferredWork w;
  int runs = 0;
  EXPECT_TRUE(w.queue("purge", 0, [&] { ++runs; }));
  EXPECT_FALSE(w.queue("purge", 0, [&] { ++runs; }));
  w.run_all();
  EXPECT_EQ(runs, 1);
  EXPECT_TRUE(w.queue("purge", 0, [&] { ++runs; })); // no longer pending
}

TEST(DeferredWork, an_item_that_requeues_forever_is_a_kernel_bug_not_a_hang) {
  DeferredWork w;
  std::function<void()> again = [&] { w.queue("loop", 0, again); };
  w.queue("loop", 0, again);
  EXPECT_THROW(w.run_all(1000), KernelBug);
}

TEST(FaultInjector, exactly_the_nth_attempt_fails) {
  FaultInjector f;
  f.fail_nth(FailPoint::AllocPage, 3);
  EXPECT_FALSE(f.should_fail(FailPoint::AllocPage));
  EXPECT_FALSE(f.should_fail(FailPoint::PageTable)); // other kinds are not counted
  EXPECT_FALSE(f.should_fail(FailPoint::AllocPage));
  EXPECT_TRUE(f.should_fail(FailPoint::AllocPage));
  EXPECT_FALSE(f.should_fail(FailPoint::AllocPage));
  EXPECT_EQ(f.injected(FailPoint::AllocPage), 1u);
}

TEST(FaultInjector, names_match_the_trace_vocabulary) {
  EXPECT_EQ(fail_point_from_name("alloc_page"), FailPoint::AllocPage);
  EXPECT_EQ(fail_point_from_name("page_table"), FailPoint::PageTable);
  EXPECT_EQ(fail_point_from_name("vmap_area"), FailPoint::VmapArea);
  EXPECT_FALSE(fail_point_from_name("disk"));
}

TEST(Machine, an_injected_page_table_failure_leaves_the_invariants_intact) {
  Machine m(small_config());
  auto p = m.alloc_pages(GFP_KERNEL, 0);
  ASSERT_TRUE(p);
  m.faults().fail_nth(FailPoint::PageTable, 1);
  EXPECT_EQ(m.pt().map_page(m.pt().kernel_root(), m.vmalloc_start(), *p, PAGE_KERNEL), -ENOMEM);
  EXPECT_EQ(m.check(), "");
  EXPECT_EQ(m.pt().walk(m.pt().kernel_root(), m.vmalloc_start()).present(), false);
}

TEST(Diagnostics, records_say_what_function_complained_and_why) {
  DiagLog log;
  log.warn("vfree", "bad address", 0x1234);
  const std::size_t mark = log.size();
  log.error("alloc_pages", "page allocation failure: order:0, mode:0xcc0");
  EXPECT_EQ(log.count(DiagKind::Warn), 1u);
  EXPECT_EQ(log.entries()[0].to_string(), "WARN vfree: bad address (0x1234)");
  ASSERT_EQ(log.since(mark).size(), 1u);
  EXPECT_EQ(log.since(mark)[0].function, "alloc_pages");
}

} // namespace
} // namespace vmcheck
