// The reference spec against expectations computed by hand from the seeds,
// DESIGN.md and the research notes (never from the engine).
#include "spec/vmalloc_spec.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

namespace vmcheck::spec {
namespace {

constexpr u64 S = VMALLOC_START_L4;
constexpr u64 P = PAGE_SIZE;
constexpr u64 MiB = u64{1} << 20;

SpecConfig legacy_config() {
  SpecConfig c;
  c.legacy = true;
  return c;
}

std::size_t count_kind(const std::vector<Diag> &d, DiagKind k) {
  std::size_t n = 0;
  for (const Diag &x : d)
    n += x.kind == k ? 1 : 0;
  return n;
}

std::vector<std::uint8_t> bytes(const std::string &s) {
  return {s.begin(), s.end()};
}

std::string hex_of(u64 v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%#llx", static_cast<unsigned long long>(v));
  return buf;
}

// ---- placement --------------------------------------------------------------------------------

TEST(SpecPlacement, first_vmalloc_is_at_vmalloc_start_and_the_next_one_a_guard_page_later) {
  VmallocSpec s;
  EXPECT_EQ(s.vmalloc(8192), S);
  EXPECT_EQ(s.vmalloc(8192), S + 0x3000);
  EXPECT_EQ(s.vmalloc(1), S + 0x6000); // one byte takes a page and a guard page
  EXPECT_EQ(s.vmalloc(4096), S + 0x8000);
  EXPECT_EQ(s.vmallocinfo().substr(0, 75), "0xffffc90000000000-0xffffc90000003000   12288 "
                                           "vmalloc pages=2 vmalloc N0=2\n");
  EXPECT_EQ(s.check(), "");
  EXPECT_TRUE(s.take_diags().empty());
}

TEST(SpecPlacement, an_aligned_request_takes_the_lowest_aligned_hole) {
  VmallocSpec s;
  ASSERT_EQ(s.vmalloc(4096), S);
  EXPECT_EQ(s.__vmalloc_node(4096, 0x10000, GFP_KERNEL, PAGE_KERNEL, NUMA_NO_NODE, "t"),
            S + 0x10000);
  // The hole below the aligned area is still the lowest fit for small ones.
  EXPECT_EQ(s.vmalloc(4096), S + 0x2000);
  EXPECT_EQ(s.check(), "");
}

TEST(SpecPlacement, ioremap_alignment_is_the_size_order_in_modern_and_fls_in_legacy) {
  VmallocSpec m;
  ASSERT_EQ(m.vmalloc(4096), S);
  auto a = m.get_vm_area(64 * 1024, VM_IOREMAP);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->addr, S + 0x10000); // 64K aligns to 64K
  EXPECT_EQ(a->size, 64 * 1024 + P);

  VmallocSpec l(legacy_config());
  ASSERT_EQ(l.vmalloc(4096), S);
  auto b = l.get_vm_area(64 * 1024, VM_IOREMAP);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->addr, S + 0x20000); // fls(64K) = 17: 128K
}

TEST(SpecPlacement, vm_no_guard_drops_the_guard_page_in_modern_only) {
  VmallocSpec m;
  auto a = m.get_vm_area(4096, VM_ALLOC | VM_NO_GUARD);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->size, P);
  EXPECT_EQ(m.vmalloc(4096), S + P);

  VmallocSpec l(legacy_config());
  auto b = l.get_vm_area(4096, VM_ALLOC | VM_NO_GUARD);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->size, 2 * P);
  EXPECT_EQ(l.vmalloc(4096), S + 2 * P);
}

TEST(SpecPlacement, legacy_walk_accepts_a_fit_past_the_window_end_when_it_runs_off_the_list) {
  const u64 w = S + (u64{1} << 30);
  VmallocSpec l(legacy_config());
  auto a = l.__get_vm_area(4 * P, VM_ALLOC, w, w + 2 * P);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->addr, w);

  VmallocSpec m;
  EXPECT_FALSE(m.__get_vm_area(4 * P, VM_ALLOC, w, w + 2 * P));
  const auto d = m.take_diags();
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].kind, DiagKind::Error);
}

TEST(SpecPlacement, the_last_page_of_the_vmalloc_range_is_never_used) {
  VmallocSpec s;
  const u64 top = VMALLOC_END_L4 & PAGE_MASK;                          // 0xffffe8fffffff000
  EXPECT_FALSE(s.__get_vm_area(P, VM_ALLOC, top - P, VMALLOC_END_L4)); // needs 2 pages
  auto a = s.__get_vm_area(P, VM_ALLOC, top - 2 * P, VMALLOC_END_L4);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->addr, top - 2 * P);
  EXPECT_EQ(a->addr + a->size, top);
}

TEST(SpecPlacement, five_level_paging_uses_its_own_range) {
  SpecConfig c;
  c.paging_levels = 5;
  VmallocSpec s(c);
  EXPECT_EQ(s.vmalloc(4096), VMALLOC_START_L5);
  EXPECT_EQ(s.table_pages(), 5u); // root + P4D + PUD + PMD + PTE
}

// ---- lazy freeing -------------------------------------------------------------------------------

TEST(SpecLazy, lazy_max_pages_is_fls_of_the_cpu_count_times_8192) {
  EXPECT_EQ(VmallocSpec().lazy_max_pages(), 24576u); // fls(4) = 3
  SpecConfig c;
  c.cpus = 1;
  EXPECT_EQ(VmallocSpec(c).lazy_max_pages(), 8192u);
  c.cpus = 8;
  EXPECT_EQ(VmallocSpec(c).lazy_max_pages(), 32768u);
  c.lazy_pages = 100;
  EXPECT_EQ(VmallocSpec(c).lazy_max_pages(), 100u);
}

TEST(SpecLazy, a_freed_area_keeps_its_va_until_the_purge) {
  VmallocSpec s;
  const u64 a = s.vmalloc(4096);
  ASSERT_EQ(a, S);
  s.vfree(a);
  EXPECT_EQ(s.vmap_lazy_nr(), 2u); // guard page included
  EXPECT_EQ(s.vmalloc(4096), S + 2 * P);
  EXPECT_NE(s.vmallocinfo().find("0xffffc90000000000-0xffffc90000002000    8192 unpurged vm_area"),
            std::string::npos);
  s.purge_vmap_area_lazy();
  EXPECT_EQ(s.vmap_lazy_nr(), 0u);
  EXPECT_EQ(s.vmalloc(4096), S);
  EXPECT_EQ(s.check(), "");
}

TEST(SpecLazy, lazy_zero_purges_on_every_free_and_the_backends_agree) {
  SpecConfig c;
  c.lazy_pages = 0;
  for (bool legacy : {false, true}) {
    c.legacy = legacy;
    VmallocSpec s(c);
    const u64 a = s.vmalloc(3 * P);
    const u64 b = s.vmalloc(P);
    s.vfree(a);
    EXPECT_EQ(s.vmap_lazy_nr(), 0u);
    EXPECT_EQ(s.vmalloc(P), S) << legacy;
    EXPECT_EQ(s.vmalloc(P), S + 2 * P) << legacy;
    EXPECT_EQ(s.vmalloc(P), b + 2 * P) << legacy;
    EXPECT_EQ(s.check(), "");
  }
}

TEST(SpecLazy, freeing_just_over_the_threshold_purges_every_lazy_area) {
  VmallocSpec s;
  auto a = s.get_vm_area(12287 * P, VM_ALLOC); // 12288 pages with the guard
  auto b = s.get_vm_area(12287 * P, VM_ALLOC);
  auto c = s.get_vm_area(P, VM_ALLOC);
  ASSERT_TRUE(a && b && c);
  s.vunmap(a->addr);
  s.vunmap(b->addr);
  EXPECT_EQ(s.vmap_lazy_nr(), 24576u); // not above the threshold: kept
  s.vunmap(c->addr);
  EXPECT_EQ(s.vmap_lazy_nr(), 0u); // 24578 > 24576: everything purged
  EXPECT_TRUE(s.areas().empty());
  EXPECT_EQ(s.check(), "");
}

TEST(SpecLazy, an_exhausted_window_purges_and_retries_once) {
  const u64 w = S + (u64{1} << 30);
  VmallocSpec s;
  auto a = s.__get_vm_area(P, VM_ALLOC, w, w + 2 * P);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->addr, w);
  s.vunmap(w);
  EXPECT_EQ(s.vmap_lazy_nr(), 2u);
  auto b = s.__get_vm_area(P, VM_ALLOC, w, w + 2 * P);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->addr, w); // the lazy area was purged to make room
  EXPECT_EQ(s.vmap_lazy_nr(), 0u);
  EXPECT_TRUE(s.take_diags().empty());

  EXPECT_FALSE(s.__get_vm_area(P, VM_ALLOC, w, w + 2 * P));
  const auto d = s.take_diags();
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].kind, DiagKind::Error);
  EXPECT_EQ(d[0].reason,
            "vmap allocation for size 8192 failed: use vmalloc=<size> to increase size");
  EXPECT_FALSE(s.__get_vm_area(P, VM_ALLOC, w, w + 2 * P));
  s.take_diags();
  EXPECT_EQ(s.check(), "");
}

// ---- vmalloc's allocation sequence
// ---------------------------------------------------------------

TEST(SpecVmalloc, a_513_page_vmalloc_vmallocs_its_page_array_right_after_itself) {
  VmallocSpec s;
  ASSERT_EQ(s.vmalloc(513 * P), S);
  auto outer = s.find_vm_area(S);
  ASSERT_TRUE(outer);
  EXPECT_EQ(outer->size, 514 * P);
  EXPECT_EQ(outer->nr_pages, 513u);
  EXPECT_NE(outer->flags & VM_VPAGES, 0u);
  auto nested = s.find_vm_area(S + 514 * P);
  ASSERT_TRUE(nested);
  EXPECT_EQ(nested->size, 3 * P); // 4104 bytes: 2 pages + guard
  EXPECT_EQ(nested->nr_pages, 2u);
  EXPECT_EQ(nested->caller, "vmalloc");
  EXPECT_EQ(
      s.vmallocinfo(),
      "0xffffc90000000000-0xffffc90000202000 2105344 vmalloc pages=513 vmalloc vpages N0=513\n"
      "0xffffc90000202000-0xffffc90000205000   12288 vmalloc pages=2 vmalloc N0=2\n");
  const u64 free_before = s.nr_free_total();
  s.vfree(S);
  EXPECT_EQ(s.nr_free_total(), free_before + 515);
  EXPECT_EQ(s.vmap_lazy_nr(), 514u + 3u);
  EXPECT_EQ(s.check(), "");
}

TEST(SpecVmalloc, pages_come_from_the_current_cpus_node_or_the_asked_one_and_zone) {
  VmallocSpec s;
  const u64 n0 = s.nr_free(0, Zone::Normal);
  const u64 n1 = s.nr_free(1, Zone::Normal);
  const u64 d0 = s.nr_free(0, Zone::DMA32);
  ASSERT_TRUE(s.vmalloc_node(2 * P, 1));
  EXPECT_EQ(s.nr_free(1, Zone::Normal), n1 - 2);
  ASSERT_TRUE(s.set_cpu(3)); // cpu 3 is on node 1
  ASSERT_TRUE(s.vmalloc(P));
  EXPECT_EQ(s.nr_free(1, Zone::Normal), n1 - 3);
  ASSERT_TRUE(s.set_cpu(0));
  ASSERT_TRUE(s.vmalloc_32(4 * P));
  EXPECT_EQ(s.nr_free(0, Zone::DMA32), d0 - 4);
  EXPECT_EQ(s.nr_free(0, Zone::Normal), n0 - 3); // PUD + PMD + PTE table of the first mapping
  EXPECT_NE(s.vmallocinfo().find("pages=2 vmalloc N1=2"), std::string::npos);
  EXPECT_EQ(s.check(), "");
}

// A small machine: node 0 is 1024 DMA32 pages (one the boot page-table
// root), node 1 1024 NORMAL pages; blocks of 512 and 256 leave node 0 255.
VmallocSpec small_machine_with_255_pages_on_node_0() {
  SpecConfig c;
  c.mem_per_node = 4 * MiB;
  VmallocSpec s(c);
  s.vmalloc_init();
  EXPECT_TRUE(s.alloc_pages(1, GFP_KERNEL, 9));
  EXPECT_TRUE(s.alloc_pages(2, GFP_KERNEL, 8));
  EXPECT_EQ(s.nr_free(0, Zone::DMA32), 255u);
  EXPECT_EQ(s.nr_free(1, Zone::Normal), 1024u);
  return s;
}

TEST(SpecVmalloc, a_vmalloc_that_empties_a_node_goes_on_down_the_zonelist_page_by_page) {
  VmallocSpec s = small_machine_with_255_pages_on_node_0();
  ASSERT_TRUE(s.vmalloc(400 * P));
  EXPECT_EQ(s.nr_free(0, Zone::DMA32), 0u);
  EXPECT_EQ(s.nr_free(1, Zone::Normal), 1024u - 145 - 3); // the rest, then PUD + PMD + PTE table
  EXPECT_NE(s.vmallocinfo().find("pages=400 vmalloc N0=255 N1=145"), std::string::npos);
  EXPECT_EQ(s.check(), "");
}

TEST(SpecVmalloc, memory_geometry_puts_half_of_node_0_below_4_gib) {
  VmallocSpec s;
  EXPECT_EQ(s.totalram_pages(), 262144u);
  EXPECT_EQ(s.nr_free(0, Zone::DMA32), 65536u);
  EXPECT_EQ(s.nr_free(0, Zone::Normal), 65536u - 1); // the boot page-table root
  EXPECT_EQ(s.nr_free(1, Zone::DMA32), 0u);
  EXPECT_EQ(s.nr_free(1, Zone::Normal), 131072u);
  EXPECT_EQ(s.cpu_to_node(1), 0u);
  EXPECT_EQ(s.cpu_to_node(2), 1u);
}

TEST(SpecVmalloc, flags_of_the_wrappers_show_in_vmallocinfo) {
  VmallocSpec s;
  s.vmalloc_user(P);
  s.vmalloc_32_user(P);
  s.vzalloc_node(P, 1);
  s.vmalloc_exec(P);
  EXPECT_EQ(
      s.vmallocinfo(),
      "0xffffc90000000000-0xffffc90000002000    8192 vmalloc_user pages=1 vmalloc user N0=1\n"
      "0xffffc90000002000-0xffffc90000004000    8192 vmalloc_32_user pages=1 vmalloc user N0=1\n"
      "0xffffc90000004000-0xffffc90000006000    8192 vzalloc_node pages=1 vmalloc N1=1\n"
      "0xffffc90000006000-0xffffc90000008000    8192 vmalloc_exec pages=1 vmalloc N0=1\n");
}

TEST(SpecVmalloc, bad_arguments_warn_and_change_nothing) {
  VmallocSpec s;
  s.vmalloc(P);
  s.take_diags();
  const std::string before = s.summary();
  EXPECT_EQ(s.__vmalloc(P, GFP_KERNEL | 0x800000, PAGE_KERNEL), 0u);
  EXPECT_EQ(s.vmalloc_node(P, 2), 0u);
  EXPECT_EQ(s.__vmalloc_node(P, 3, GFP_KERNEL, PAGE_KERNEL, NUMA_NO_NODE, "t"), 0u);
  auto d = s.take_diags();
  EXPECT_EQ(d.size(), 3u);
  EXPECT_EQ(count_kind(d, DiagKind::Warn), 3u);
  EXPECT_EQ(s.vmalloc(0), 0u);
  EXPECT_EQ(s.vmalloc(s.totalram_pages() * P + 1), 0u);
  EXPECT_EQ(s.vmalloc(~u64{0}), 0u); // PAGE_ALIGN wraps to 0
  d = s.take_diags();
  EXPECT_EQ(d.size(), 3u);
  EXPECT_EQ(count_kind(d, DiagKind::Error), 3u);
  EXPECT_EQ(d[0].reason, "vmalloc: allocation failure: 0 bytes");
  EXPECT_EQ(s.__vmalloc(0, GFP_KERNEL | __GFP_NOWARN, PAGE_KERNEL), 0u);
  EXPECT_TRUE(s.take_diags().empty());
  // A vm flag it does not know: WARN from __get_vm_area_node, then the
  // allocation failure report of __vmalloc_node_range.
  EXPECT_EQ(s.__vmalloc_node_range(P, 1, S, VMALLOC_END_L4, GFP_KERNEL, PAGE_KERNEL, 0x10000,
                                   NUMA_NO_NODE, "t"),
            0u);
  d = s.take_diags();
  EXPECT_EQ(count_kind(d, DiagKind::Warn), 1u);
  EXPECT_EQ(count_kind(d, DiagKind::Error), 1u);
  EXPECT_FALSE(s.__get_vm_area(P, VM_ALLOC, S - P, S + 100 * P));
  EXPECT_FALSE(s.get_vm_area(P, 0x10000));
  EXPECT_EQ(count_kind(s.take_diags(), DiagKind::Warn), 2u);
  EXPECT_EQ(s.summary(), before);
}

// ---- fault injection
// -------------------------------------------------------------------------------

TEST(SpecFaults, the_first_vmap_area_allocation_is_the_vm_struct) {
  VmallocSpec s;
  s.vmalloc_init();
  const u64 free_before = s.nr_free_total();
  s.fail_nth(FailKind::VmapArea, 1);
  EXPECT_EQ(s.vmalloc(3 * P), 0u);
  EXPECT_TRUE(s.areas().empty());
  EXPECT_EQ(s.nr_free_total(), free_before);
  const auto d = s.take_diags();
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].kind, DiagKind::Error);
  EXPECT_EQ(d[0].reason, "vmalloc: allocation failure: 12288 bytes");
}

TEST(SpecFaults, the_second_is_the_vmap_area_descriptor_and_the_third_the_page_array) {
  VmallocSpec s;
  s.fail_nth(FailKind::VmapArea, 2);
  EXPECT_EQ(s.vmalloc(3 * P), 0u);
  EXPECT_TRUE(s.areas().empty());
  EXPECT_EQ(s.take_diags().size(), 1u);

  s.fail_nth(FailKind::VmapArea, 3);
  EXPECT_EQ(s.vmalloc(3 * P), 0u);
  ASSERT_EQ(s.areas().size(), 1u);
  EXPECT_EQ(s.areas()[0].kind, AreaKind::Lazy); // removed: its VA is lazily freed
  EXPECT_EQ(s.vmap_lazy_nr(), 4u);
  // 4.19: __vmalloc_area_node returns NULL with no message of its own.
  EXPECT_EQ(s.take_diags().size(), 0u);
  EXPECT_EQ(s.check(), "");
}

TEST(SpecFaults, a_failed_second_page_frees_the_first_and_leaves_a_lazy_area) {
  VmallocSpec s;
  s.vmalloc_init();
  const u64 free_before = s.nr_free_total();
  s.fail_nth(FailKind::AllocPage, 2);
  EXPECT_EQ(s.vmalloc(3 * P), 0u);
  EXPECT_EQ(s.nr_free_total(), free_before);
  ASSERT_EQ(s.areas().size(), 1u);
  EXPECT_EQ(s.areas()[0].kind, AreaKind::Lazy);
  const auto d = s.take_diags();
  ASSERT_EQ(d.size(), 1u); // the page allocations themselves are __GFP_NOWARN
  EXPECT_EQ(d[0].reason, "vmalloc: allocation failure, allocated 4096 of 16384 bytes");
  EXPECT_EQ(s.check(), "");
}

TEST(SpecFaults, an_injected_page_failure_lands_on_its_page_across_nodes) {
  VmallocSpec s = small_machine_with_255_pages_on_node_0();
  const u64 free_before = s.nr_free_total();
  s.fail_nth(FailKind::AllocPage, 300);
  EXPECT_EQ(s.vmalloc(400 * P), 0u);
  EXPECT_EQ(s.nr_free_total(), free_before);
  const auto d = s.take_diags();
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].reason, "vmalloc: allocation failure, allocated " + std::to_string(299 * P) +
                             " of " + std::to_string(401 * P) + " bytes");
  // __GFP_NOFAIL pages skip the fail point, which stays armed.
  s.fail_nth(FailKind::AllocPage, 2);
  EXPECT_NE(s.__vmalloc(3 * P, GFP_KERNEL | __GFP_NOFAIL, PAGE_KERNEL), 0u);
  EXPECT_EQ(s.vmalloc(2 * P), 0u);
  EXPECT_EQ(s.check(), "");
}

TEST(SpecFaults, a_failed_page_table_fails_the_mapping_after_all_pages) {
  VmallocSpec s;
  s.fail_nth(FailKind::PageTable, 2); // the PMD table
  EXPECT_EQ(s.vmalloc(P), 0u);
  EXPECT_EQ(s.table_pages(), 2u); // root + PUD, never freed
  const auto d = s.take_diags();
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0].reason.rfind("page allocation failure", 0), 0u);
  EXPECT_EQ(d[1].reason, "vmalloc: allocation failure, allocated 4096 of 8192 bytes");
  EXPECT_EQ(s.vmalloc(P), S + 2 * P);
  EXPECT_EQ(s.table_pages(), 4u);
  EXPECT_EQ(s.check(), "");
}

TEST(SpecFaults, nowarn_silences_every_allocation_failure_report) {
  VmallocSpec s;
  s.fail_nth(FailKind::AllocPage, 1);
  EXPECT_EQ(s.__vmalloc(P, GFP_KERNEL | __GFP_NOWARN, PAGE_KERNEL), 0u);
  EXPECT_TRUE(s.take_diags().empty());
}

// ---- freeing ------------------------------------------------------------------------------------

TEST(SpecFree, bad_and_nonexistent_addresses_warn_and_change_nothing) {
  for (bool legacy : {false, true}) {
    SpecConfig c;
    c.legacy = legacy;
    VmallocSpec s(c);
    const u64 a = s.vmalloc(2 * P);
    const u64 b = s.vmalloc(P);
    s.vfree(b);
    s.take_diags();
    const std::string before = s.summary();
    s.vfree(0);
    s.vunmap(0);
    EXPECT_TRUE(s.take_diags().empty());
    s.vfree(a + 1);
    s.vfree(b); // double free
    s.vfree(S + (u64{1} << 30));
    s.vunmap(a + 7);
    s.vfree_atomic(a + 3);
    EXPECT_FALSE(s.remove_vm_area(a + 5));
    const auto d = s.take_diags();
    EXPECT_EQ(d.size(), 6u);
    EXPECT_EQ(count_kind(d, DiagKind::Warn), 6u);
    EXPECT_EQ(d[0].reason, "Trying to vfree() bad address (0xffffc90000000001)");
    EXPECT_EQ(s.summary(), before) << (legacy ? "legacy" : "modern");
  }
}

TEST(SpecFree, an_interior_address_frees_the_whole_area_in_modern_only) {
  VmallocSpec m;
  const u64 a = m.vmalloc(3 * P);
  m.vfree(a + P);
  auto d = m.take_diags();
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].kind, DiagKind::Warn);
  EXPECT_FALSE(m.find_vm_area(a));
  EXPECT_EQ(m.vmap_lazy_nr(), 4u);

  VmallocSpec l(legacy_config());
  const u64 b = l.vmalloc(3 * P);
  const std::string before = l.summary();
  l.vfree(b + P);
  d = l.take_diags();
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].reason, "Trying to vfree() nonexistent vm area (0xffffc90000001000)");
  EXPECT_EQ(l.summary(), before);
}

TEST(SpecFree, lookups_use_containment_in_modern_and_the_start_in_legacy) {
  VmallocSpec m;
  const u64 a = m.vmalloc(2 * P);
  EXPECT_TRUE(m.find_vm_area(a + 2 * P + 5)); // the guard page belongs to the area
  EXPECT_FALSE(m.find_vm_area(a + 3 * P));
  VmallocSpec l(legacy_config());
  const u64 b = l.vmalloc(2 * P);
  EXPECT_TRUE(l.find_vm_area(b));
  EXPECT_FALSE(l.find_vm_area(b + P));
}

TEST(SpecFree, legacy_remove_vm_area_reports_the_size_without_the_guard_page) {
  VmallocSpec l(legacy_config());
  auto a = l.get_vm_area(2 * P, VM_IOREMAP);
  ASSERT_TRUE(a);
  auto r = l.remove_vm_area(a->addr);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->size, 2 * P);
  VmallocSpec m;
  auto b = m.get_vm_area(2 * P, VM_IOREMAP);
  auto q = m.remove_vm_area(b->addr);
  ASSERT_TRUE(q);
  EXPECT_EQ(q->size, 3 * P);
}

TEST(SpecFree, vfree_in_interrupt_context_is_deferred_in_modern) {
  VmallocSpec s;
  const u64 a = s.vmalloc(P);
  const u64 b = s.vmalloc(P);
  s.irq_enter();
  s.vfree(a);
  s.vfree_atomic(b);
  EXPECT_TRUE(s.find_vm_area(a));
  EXPECT_EQ(s.check(), "");
  EXPECT_TRUE(s.irq_exit());
  EXPECT_EQ(s.run_deferred(), 1u); // one work item for the CPU's whole list
  EXPECT_FALSE(s.find_vm_area(a));
  EXPECT_FALSE(s.find_vm_area(b));
  EXPECT_EQ(s.vmap_lazy_nr(), 4u);
  EXPECT_EQ(s.run_deferred(), 0u);
  EXPECT_TRUE(s.take_diags().empty());
}

TEST(SpecFree, a_deferred_double_free_warns_when_the_work_runs) {
  VmallocSpec s;
  const u64 a = s.vmalloc(P);
  s.vfree_atomic(a);
  s.vfree_atomic(a);
  EXPECT_TRUE(s.take_diags().empty());
  EXPECT_EQ(s.run_deferred(), 1u);
  EXPECT_EQ(count_kind(s.take_diags(), DiagKind::Warn), 1u);
}

TEST(SpecFree, interrupt_context_bugs) {
  VmallocSpec l(legacy_config());
  const u64 a = l.vmalloc(P);
  l.irq_enter();
  EXPECT_THROW(l.vfree(a), KernelBug);
  VmallocSpec l2(legacy_config());
  l2.irq_enter();
  EXPECT_THROW(l2.vmalloc(P), KernelBug);
  VmallocSpec m;
  const u64 b = m.vmalloc(P);
  m.irq_enter();
  EXPECT_THROW(m.vunmap(b), KernelBug);
}

TEST(SpecFree, vfree_of_an_irq_allocation_failure_is_deferred_too) {
  VmallocSpec s;
  s.irq_enter();
  s.fail_nth(FailKind::AllocPage, 1);
  EXPECT_EQ(s.vmalloc(P), 0u);
  EXPECT_EQ(s.areas().size(), 1u);
  EXPECT_EQ(s.areas()[0].kind, AreaKind::VmArea); // waiting for the work
  s.irq_exit();
  EXPECT_EQ(s.run_deferred(), 1u);
  EXPECT_EQ(s.areas()[0].kind, AreaKind::Lazy);
}

// ---- vread / vwrite
// ---------------------------------------------------------------------------------

TEST(SpecAccess, vwrite_then_vread_round_trips_and_unknown_bytes_are_flagged) {
  VmallocSpec s;
  const u64 a = s.vmalloc(2 * P);
  const auto hello = bytes("hello");
  EXPECT_EQ(s.vwrite(hello, a + 100), 5);
  std::vector<std::uint8_t> buf(5), known;
  EXPECT_EQ(s.vread(buf, a + 100, &known), 5);
  EXPECT_EQ(buf, hello);
  EXPECT_EQ(known, std::vector<std::uint8_t>(5, 1));
  // Not written, not zeroed: whatever the frame held.
  std::vector<std::uint8_t> raw(2);
  EXPECT_EQ(s.vread(raw, a, &known), 2);
  EXPECT_EQ(known, std::vector<std::uint8_t>(2, 0));
}

// After a remap the spec knows what each user page maps: reads through it
// are the frame's bytes, kernel writes included, until the views go.
TEST(SpecAccess, user_reads_through_a_remap_see_the_area_contents) {
  VmallocSpec s;
  const u64 a = s.vmalloc_user(2 * P);
  ASSERT_EQ(s.vwrite(bytes("kernel"), a + P), 6);
  s.add_user_views(7, 0x400000, a, 2 * P);
  EXPECT_EQ(s.user_views(), 2u);
  EXPECT_EQ(s.check_user_read(7, 0x401000, "kernel"), "");
  EXPECT_EQ(s.check_user_read(7, 0x400ffe, std::string("\0\0kernel", 8)), "");
  const std::string wrong = s.check_user_read(7, 0x401000, "kernex");
  EXPECT_NE(wrong.find("0x401005"), std::string::npos) << wrong;
  EXPECT_NE(wrong.find(hex_of(a + P + 5)), std::string::npos) << wrong;
  // Another mm maps nothing the spec knows of; nor does anyone once the
  // views are dropped.
  EXPECT_EQ(s.check_user_read(8, 0x401000, "kernex"), "");
  s.drop_user_views();
  EXPECT_EQ(s.check_user_read(7, 0x401000, "kernex"), "");
}

// The engine's mapcounts must cover the views: a page a remap reported
// mapped but that user space does not map is a disagreement; a page mapped
// from elsewhere too loses its contents.
TEST(SpecAccess, user_views_need_the_engine_to_map_their_pages) {
  VmallocSpec s;
  const u64 a = s.vmalloc_user(P);
  s.add_user_views(1, 0x400000, a, P);
  const std::string err = s.set_user_mapped({});
  EXPECT_NE(err.find("mapped into user space 0 time(s)"), std::string::npos) << err;
  s.drop_user_views();
  EXPECT_EQ(s.set_user_mapped({}), "");
}

TEST(SpecAccess, vread_zero_fills_holes_and_returns_zero_without_any_area) {
  VmallocSpec s;
  const u64 a = s.vzalloc(2 * P);
  std::vector<std::uint8_t> buf(4, 0xee), known;
  EXPECT_EQ(s.vread(buf, a + 2 * P - 2, &known), 4); // two area bytes, then the guard
  EXPECT_EQ(buf, std::vector<std::uint8_t>(4, 0));
  EXPECT_EQ(known, std::vector<std::uint8_t>(4, 1));
  EXPECT_EQ(s.vread(buf, a + 2 * P, &known), 0); // the guard page alone
  EXPECT_EQ(s.vread(buf, S + (u64{1} << 30), &known), 0);
  EXPECT_EQ(s.vwrite(bytes("xy"), a + 2 * P), 0);
  EXPECT_EQ(s.vwrite(bytes("xyzw"), a + 2 * P - 2), 4);
  s.vread(buf, a + 2 * P - 2, &known);
  EXPECT_EQ(buf, (std::vector<std::uint8_t>{'x', 'y', 0, 0}));
}

TEST(SpecAccess, ioremap_areas_are_holes_for_vread_and_vwrite) {
  VmallocSpec s;
  auto io = s.alloc_vm_area(P);
  ASSERT_TRUE(io);
  EXPECT_EQ(s.vwrite(bytes("ab"), io->addr), 0);
  std::vector<std::uint8_t> buf(2, 7);
  EXPECT_EQ(s.vread(buf, io->addr), 2);
  EXPECT_EQ(buf, (std::vector<std::uint8_t>{0, 0}));
}

TEST(SpecAccess, legacy_vread_returns_the_bytes_it_walked) {
  VmallocSpec l(legacy_config());
  const u64 a = l.vzalloc(2 * P);
  std::vector<std::uint8_t> buf(4);
  EXPECT_EQ(l.vread(buf, a + 2 * P - 2, nullptr), 2); // no tail fill
  const u64 b = l.vzalloc(P);
  std::vector<std::uint8_t> big(5 * P);
  EXPECT_EQ(l.vread(big, a, nullptr), static_cast<long>(b + P - a)); // up to b's usable end
}

TEST(SpecAccess, vmap_aliases_share_the_page) {
  VmallocSpec s;
  ASSERT_TRUE(s.alloc_pages(1, GFP_KERNEL | __GFP_ZERO, 0));
  const u64 pages[] = {1, 1};
  const u64 m = s.vmap(pages, 2, VM_MAP, PAGE_KERNEL);
  ASSERT_EQ(m, S);
  EXPECT_EQ(s.vwrite(bytes("Z"), m + 10), 1);
  std::vector<std::uint8_t> buf(1), known;
  EXPECT_EQ(s.vread(buf, m + P + 10, &known), 1);
  EXPECT_EQ(buf[0], 'Z');
  EXPECT_EQ(known[0], 1);
  EXPECT_EQ(s.vmallocinfo(), "0xffffc90000000000-0xffffc90000003000   12288 vmap vmap\n");
  s.vunmap(m);
  EXPECT_FALSE(s.vmalloc_to_page(m));
  s.put_page(1); // the page stayed the caller's
  EXPECT_EQ(s.check(), "");
}

// ---- vmap, page ranges, alloc_vm_area
// -----------------------------------------------------------------

TEST(SpecMap, vmap_refuses_missing_pages_with_a_warning) {
  VmallocSpec s;
  s.vmalloc_init();
  ASSERT_TRUE(s.alloc_pages(1, GFP_KERNEL, 0));
  const std::string before = s.summary();
  const u64 one[] = {1};
  const u64 bad[] = {1, 2};
  EXPECT_EQ(s.vmap(one, 2, VM_MAP, PAGE_KERNEL), 0u);
  EXPECT_EQ(s.vmap(bad, 2, VM_MAP, PAGE_KERNEL), 0u);
  EXPECT_EQ(count_kind(s.take_diags(), DiagKind::Warn), 2u);
  EXPECT_EQ(s.vmap(one, static_cast<unsigned>(s.totalram_pages() + 1), VM_MAP, PAGE_KERNEL), 0u);
  EXPECT_TRUE(s.take_diags().empty());
  EXPECT_EQ(s.summary(), before);
}

TEST(SpecMap, map_kernel_range_maps_once_and_refuses_a_present_pte) {
  VmallocSpec s;
  auto a = s.get_vm_area(2 * P, VM_MAP);
  ASSERT_TRUE(a);
  ASSERT_TRUE(s.alloc_pages(1, GFP_KERNEL, 0));
  ASSERT_TRUE(s.alloc_pages(2, GFP_KERNEL, 0));
  const u64 pages[] = {1, 2};
  EXPECT_EQ(s.map_kernel_range_noflush(a->addr, 2 * P - 5, PAGE_KERNEL, pages), 2);
  EXPECT_TRUE(s.vmalloc_to_page(a->addr + P + 17));
  EXPECT_EQ(s.map_kernel_range_noflush(a->addr, P, PAGE_KERNEL, pages), -EBUSY);
  EXPECT_EQ(count_kind(s.take_diags(), DiagKind::Warn), 1u);
  s.unmap_kernel_range(a->addr, 1);
  EXPECT_FALSE(s.vmalloc_to_page(a->addr));
  EXPECT_TRUE(s.vmalloc_to_page(a->addr + P));
  EXPECT_EQ(s.map_kernel_range_noflush(a->addr, 2 * P, PAGE_KERNEL, std::span<const u64>(pages, 1)),
            -EBUSY); // page 0 maps again, page 1 is still present
  s.unmap_kernel_range_noflush(a->addr, 2 * P);
  EXPECT_EQ(s.map_kernel_range_noflush(a->addr, 2 * P, PAGE_KERNEL, std::span<const u64>(pages, 1)),
            -ENOMEM); // too few pages
  s.take_diags();
  const std::string before = s.summary();
  EXPECT_EQ(s.map_kernel_range_noflush(a->addr + 1, P, PAGE_KERNEL, pages), -EINVAL);
  EXPECT_EQ(s.map_kernel_range_noflush(S - P, P, PAGE_KERNEL, pages), -EINVAL);
  s.unmap_kernel_range(S - P, P);
  EXPECT_EQ(count_kind(s.take_diags(), DiagKind::Warn), 3u);
  EXPECT_EQ(s.summary(), before);
  EXPECT_THROW(s.unmap_kernel_range(a->addr, 0), KernelBug);
}

TEST(SpecMap, alloc_vm_area_builds_page_tables_and_free_vm_area_needs_a_live_area) {
  VmallocSpec s;
  auto a = s.alloc_vm_area(3 * P);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->addr, S);
  EXPECT_EQ(a->nr_ptes, 3u);
  EXPECT_EQ(s.table_pages(), 4u);
  EXPECT_EQ(s.vmallocinfo(),
            "0xffffc90000000000-0xffffc90000004000   16384 alloc_vm_area ioremap\n");
  s.free_vm_area(*a);
  EXPECT_THROW(s.free_vm_area(*a), KernelBug);
}

TEST(SpecMap, alloc_vm_area_gives_the_area_back_when_a_table_fails) {
  VmallocSpec s;
  s.fail_nth(FailKind::PageTable, 1);
  EXPECT_FALSE(s.alloc_vm_area(P));
  ASSERT_EQ(s.areas().size(), 1u);
  EXPECT_EQ(s.areas()[0].kind, AreaKind::Lazy);
}

// ---- boot
// -------------------------------------------------------------------------------------------

TEST(SpecBoot, early_areas_are_bumped_from_vmalloc_start_and_imported_at_init) {
  VmallocSpec s;
  EXPECT_EQ(s.vm_area_register_early(2 * P, VM_ALLOC, P), S);
  EXPECT_EQ(s.vm_area_register_early(P, VM_ALLOC, 4 * P), S + 4 * P);
  s.vm_area_add_early(S + 8 * P, 2 * P, VM_IOREMAP);
  EXPECT_THROW(s.vm_area_add_early(S + 9 * P, 2 * P, VM_IOREMAP), KernelBug);
}

TEST(SpecBoot, the_first_call_imports_early_areas_and_ends_the_boot) {
  VmallocSpec s;
  s.vm_area_add_early(S, 2 * P, VM_ALLOC);
  EXPECT_EQ(s.vmalloc(P), S + 2 * P);
  EXPECT_EQ(s.vmallocinfo().substr(0, 61),
            "0xffffc90000000000-0xffffc90000002000    8192 vm_area_add_ear");
  EXPECT_THROW(s.vm_area_add_early(S + 100 * P, P, VM_ALLOC), KernelBug);
}

// ---- vm_map_ram
// -------------------------------------------------------------------------------------

TEST(SpecVmMapRam, small_mappings_live_in_block_aligned_blocks_with_a_bump_pointer) {
  VmallocSpec s;
  ASSERT_EQ(s.vmalloc(P), S);
  ASSERT_TRUE(s.alloc_pages(1, GFP_KERNEL, 0));
  ASSERT_TRUE(s.alloc_pages(2, GFP_KERNEL, 0));
  const u64 pages[] = {1, 2};
  const u64 blk = S + VMAP_BLOCK_SIZE;
  EXPECT_NE(s.check_vm_map_ram(S + 4 * P, 2), ""); // neither a block nor block aligned
  EXPECT_NE(s.check_vm_map_ram(S, 2), "");         // busy
  EXPECT_NE(s.check_vm_map_ram(blk + 1, 2), "");   // unaligned
  EXPECT_EQ(s.check_vm_map_ram(blk, 2), "");
  EXPECT_EQ(s.observe_vm_map_ram(blk, 2, pages), "");
  EXPECT_TRUE(s.vmalloc_to_page(blk + P));
  EXPECT_NE(s.check_vm_map_ram(blk, 1), ""); // the bump pointer is at page 2
  EXPECT_EQ(s.check_vm_map_ram(blk + 2 * P, 3), "");
  const std::string before = s.summary();
  EXPECT_NE(s.observe_vm_map_ram(blk + 2 * P, 3, pages), ""); // three pages, two given
  EXPECT_EQ(s.summary(), before);
  EXPECT_EQ(s.check(), "");
}

TEST(SpecVmMapRam, a_block_is_freed_lazily_once_every_page_is_dirty) {
  SpecConfig c;
  VmallocSpec s(c);
  ASSERT_TRUE(s.alloc_pages(1, GFP_KERNEL, 0));
  const u64 pages[] = {1};
  const long long blk = s.new_vmap_block(0, GFP_KERNEL);
  ASSERT_EQ(static_cast<u64>(blk), S);
  EXPECT_EQ(s.vmallocinfo(), "0xffffc90000000000-0xffffc90000400000 4194304 vm_map_ram\n");
  EXPECT_EQ(s.observe_vm_map_ram(S + P, 1, pages), "");
  s.vm_unmap_ram(S + P, 1);
  s.vm_unmap_ram(S, 1);
  EXPECT_EQ(s.areas()[0].dirty, 2u);
  EXPECT_THROW(s.vm_unmap_ram(S, 1), KernelBug);
}

TEST(SpecVmMapRam, purge_gives_back_a_block_nothing_lives_in) {
  VmallocSpec s;
  ASSERT_EQ(static_cast<u64>(s.new_vmap_block(0, GFP_KERNEL)), S);
  s.vm_unmap_ram(S, 1);
  s.vm_unmap_aliases();
  EXPECT_TRUE(s.areas().empty());
  EXPECT_EQ(s.check(), "");
}

TEST(SpecVmMapRam, large_mappings_have_no_guard_page) {
  VmallocSpec s;
  std::vector<u64> pages;
  for (u64 h = 1; h <= 65; ++h) {
    ASSERT_TRUE(s.alloc_pages(h, GFP_KERNEL, 0));
    pages.push_back(h);
  }
  EXPECT_EQ(s.observe_vm_map_ram(S, 65, pages), "");
  EXPECT_EQ(s.vmalloc(P), S + 65 * P);
  s.vm_unmap_ram(S, 65);
  EXPECT_EQ(s.vmap_lazy_nr(), 65u);
  EXPECT_EQ(s.check(), "");
}

// ---- pcpu_get_vm_areas
// ----------------------------------------------------------------------------

TEST(SpecPcpu, congruent_areas_are_placed_from_the_top_down) {
  VmallocSpec s;
  const u64 offsets[] = {0, 8 * MiB};
  const u64 sizes[] = {2 * MiB, 2 * MiB};
  const u64 top = VMALLOC_END_L4 & ~(2 * MiB - 1);
  auto v = s.pcpu_get_vm_areas(offsets, sizes, 2 * MiB);
  ASSERT_EQ(v.size(), 2u);
  EXPECT_EQ(v[0].addr, top - 10 * MiB);
  EXPECT_EQ(v[1].addr, top - 2 * MiB);
  EXPECT_EQ(v[1].size, 2 * MiB);
  // The next set interleaves: its second area takes the top of the 6 MiB
  // hole between the first set's areas, its first area lies below them.
  auto w = s.pcpu_get_vm_areas(offsets, sizes, 2 * MiB);
  ASSERT_EQ(w.size(), 2u);
  EXPECT_EQ(w[0].addr, top - 12 * MiB);
  EXPECT_EQ(w[1].addr, top - 4 * MiB);
  // What is left of the hole, [top - 8M, top - 4M), takes a 4 MiB area.
  const u64 one_off[] = {0};
  const u64 one_size[] = {4 * MiB};
  auto x = s.pcpu_get_vm_areas(one_off, one_size, 2 * MiB);
  ASSERT_EQ(x.size(), 1u);
  EXPECT_EQ(x[0].addr, top - 8 * MiB);
  auto y = s.pcpu_get_vm_areas(one_off, one_size, 2 * MiB);
  ASSERT_EQ(y.size(), 1u);
  EXPECT_EQ(y[0].addr, top - 16 * MiB);
  EXPECT_NE(s.vmallocinfo().find("4194304 pcpu_get_vm_areas vmalloc\n"), std::string::npos);
  s.pcpu_free_vm_areas(w);
  EXPECT_EQ(s.vmap_lazy_nr(), 2 * 512u);
  EXPECT_EQ(s.check(), "");
}

TEST(SpecPcpu, an_unaligned_neighbour_pulls_the_base_down_to_alignment) {
  VmallocSpec s;
  const u64 top = VMALLOC_END_L4 & ~(2 * MiB - 1);
  auto a = s.__get_vm_area(P, VM_ALLOC, top - 3 * P, top);
  ASSERT_TRUE(a); // occupies [top - 3P, top - P)
  const u64 off[] = {0};
  const u64 size[] = {2 * MiB};
  auto v = s.pcpu_get_vm_areas(off, size, 2 * MiB);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].addr, top - 4 * MiB);
}

TEST(SpecPcpu, bad_requests_are_bugs_or_warnings) {
  VmallocSpec s;
  const u64 off[] = {0, 2 * MiB};
  const u64 size[] = {4 * MiB, 2 * MiB};
  EXPECT_THROW(s.pcpu_get_vm_areas(off, size, 2 * MiB), KernelBug); // overlap
  const u64 huge[] = {u64{64} << 40};
  const u64 zero[] = {0};
  EXPECT_TRUE(s.pcpu_get_vm_areas(zero, huge, 2 * MiB).empty());
  EXPECT_EQ(count_kind(s.take_diags(), DiagKind::Warn), 1u);
}

// ---- state, summary, speed
// -----------------------------------------------------------------------------

TEST(SpecState, a_mixed_run_keeps_the_spec_consistent_and_conserves_pages) {
  VmallocSpec s;
  s.vmalloc_init();
  const u64 free0 = s.nr_free_total();
  std::vector<u64> live;
  for (unsigned i = 0; i < 200; ++i) {
    s.set_cpu(i % 4);
    live.push_back(s.vmalloc((i % 7 + 1) * P + i));
    if (i % 3 == 0) {
      s.vfree(live[i / 2]);
      live[i / 2] = 0;
    }
    ASSERT_EQ(s.check(), "") << i;
  }
  for (u64 a : live)
    s.vfree(a);
  s.purge_vmap_area_lazy();
  EXPECT_TRUE(s.areas().empty());
  EXPECT_EQ(s.nr_free_total() + s.table_pages() - 1, free0);
}

TEST(SpecState, a_vmalloc_vfree_pair_over_a_thousand_areas_is_fast) {
  VmallocSpec s;
  for (int i = 0; i < 1000; ++i)
    s.vmalloc(P);
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 100; ++i)
    s.vfree(s.vmalloc(2 * P));
  const auto us =
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0)
          .count();
  EXPECT_LT(us / 100, 1000) << "microseconds per pair";
}

// The counters cannot see fragmentation: a block of order > 0 the engine
// took from further down the zonelist, or could not find, is accepted where
// the counters allow it; a block from a zone off the zonelist is not.
TEST(SpecState, higher_order_blocks_follow_the_engine_down_the_zonelist) {
  VmallocSpec s; // 2 nodes of 512 MiB: node 0 DMA32 from pfn 0xf0000, NORMAL from 0x100000
  const u64 dma32_before = s.nr_free(0, Zone::DMA32), normal_before = s.nr_free(0, Zone::Normal);
  std::string why;
  ASSERT_TRUE(s.alloc_pages_observed(1, GFP_KERNEL, 1, 0xf0000, why)) << why;
  EXPECT_EQ(s.nr_free(0, Zone::DMA32), dma32_before - 2);
  EXPECT_EQ(s.nr_free(0, Zone::Normal), normal_before);
  ASSERT_TRUE(s.alloc_pages_observed(2, GFP_KERNEL, 2, 0x110000, why)) << why; // node 1
  EXPECT_EQ(s.nr_free(1, Zone::Normal), s.totalram_pages() / 2 - 4);
  EXPECT_FALSE(s.alloc_pages_observed(3, GFP_KERNEL, 3, std::nullopt, why)); // fragmented
  EXPECT_TRUE(why.empty()) << why;
  // __GFP_DMA32 never comes from NORMAL; __GFP_THISNODE never from node 1:
  // a disagreement (the spec keeps its own block).
  EXPECT_TRUE(s.alloc_pages_observed(4, GFP_KERNEL | __GFP_DMA32, 1, 0x100000, why));
  EXPECT_FALSE(why.empty());
  why.clear();
  EXPECT_TRUE(s.alloc_pages_observed(5, GFP_KERNEL | __GFP_THISNODE, 1, 0x110000, why));
  EXPECT_FALSE(why.empty());
  why.clear();
  EXPECT_FALSE(s.alloc_pages_observed(6, GFP_KERNEL, 1, 0x1, why)); // not memory
  EXPECT_FALSE(why.empty());
  // Order 0 stays exact: the first zone with a free page.
  why.clear();
  const u64 normal_now = s.nr_free(0, Zone::Normal);
  ASSERT_TRUE(s.alloc_pages_observed(7, GFP_KERNEL, 0, 0xf0002, why)) << why;
  EXPECT_EQ(s.nr_free(0, Zone::Normal), normal_now - 1);
  EXPECT_EQ(s.check(), "");
}

TEST(SpecState, machine_ops_validate_their_arguments) {
  VmallocSpec s;
  EXPECT_FALSE(s.set_cpu(4));
  EXPECT_FALSE(s.irq_exit());
  ASSERT_TRUE(s.alloc_pages(7, GFP_KERNEL, 2));
  EXPECT_FALSE(s.alloc_pages(7, GFP_KERNEL, 0));
  EXPECT_THROW(s.free_pages(7, 1), KernelBug);
  s.get_page(7);
  s.free_pages(7, 2);
  s.put_page(7);
  EXPECT_THROW(s.put_page(7), KernelBug);
  EXPECT_FALSE(s.alloc_pages(8, GFP_KERNEL | __GFP_NOWARN, MAX_ORDER));
  EXPECT_EQ(s.nr_free_total(), s.totalram_pages() - 1);
}

} // namespace
} // namespace vmcheck::spec
