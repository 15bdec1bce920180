// The percpu allocator over vmalloc: the first-chunk layout, each of the ten
// functions of seed 002 with its failure paths (nothing leaks, nothing stays
// mapped), chunk creation and destruction, and the alloc_percpu /
// free_percpu workload (congruence, per-CPU isolation, new chunks when full,
// reclaim of empty chunks, bad input leaving the state hash unchanged).
#include "kernel.h"

#include <gtest/gtest.h>

#include <set>
#include <vector>

namespace vmcheck {
namespace {

constexpr u64 K = 1024;
constexpr u64 kTop = VMALLOC_END_L4 & PAGE_MASK; // highest end pcpu_get_vm_areas uses

MachineConfig config(Backend backend = Backend::Modern) {
  MachineConfig cfg;
  cfg.cpus = 4;
  cfg.nodes = 2;
  cfg.mem_per_node = u64{16} << 20;
  cfg.backend = backend;
  return cfg;
}

// Free frames plus page-table frames: page tables built by a mapping stay
// after the unmap, so this is what must come back after a failure.
u64 frames(const Machine &m) {
  return m.pages().nr_free_total() + m.pt().table_pages();
}

struct PercpuTest : ::testing::Test {
  Kernel k{config()};
  Machine &m = k.machine();
  Vmalloc &v = k.vmalloc();
  Percpu &p = k.percpu();

  void TearDown() override { EXPECT_EQ(k.check(), ""); }

  std::size_t warns() const { return m.diag().count(DiagKind::Warn); }
  std::vector<std::uint8_t> read(u64 addr, std::size_t n) {
    std::vector<std::uint8_t> buf(n);
    EXPECT_TRUE(m.kernel_read(addr, buf));
    return buf;
  }
  void write(u64 addr, std::vector<std::uint8_t> bytes) {
    EXPECT_TRUE(m.kernel_write(addr, bytes));
  }
  bool mapped(u64 addr) const { return v.vmalloc_to_page(addr).has_value(); }
  // Pages [s, e) of chunk mapped on every CPU (true) or on none (false).
  bool range_mapped(const PcpuChunk &c, unsigned s, unsigned e, bool want) const {
    for (unsigned cpu = 0; cpu < m.num_online_cpus(); ++cpu)
      for (unsigned i = s; i < e; ++i)
        if (mapped(p.pcpu_chunk_addr(c, cpu, i)) != want)
          return false;
    return true;
  }
};

// ---- layout ----------------------------------------------------------------------------------

TEST_F(PercpuTest, layout_has_one_unit_per_cpu_and_one_group_per_node_with_holes_between_them) {
  const PcpuLayout &l = p.layout();
  EXPECT_EQ(l.unit_size, 32 * K);
  EXPECT_EQ(l.unit_pages, 8u);
  EXPECT_EQ(l.atom_size, PAGE_SIZE);
  EXPECT_EQ(l.nr_units, 4u);
  ASSERT_EQ(l.groups.size(), 2u);
  EXPECT_EQ(l.groups[0].cpu, (std::vector<unsigned>{0, 1}));
  EXPECT_EQ(l.groups[1].cpu, (std::vector<unsigned>{2, 3}));
  EXPECT_EQ(l.group_offsets, (std::vector<u64>{0, 128 * K}));
  EXPECT_EQ(l.group_sizes, (std::vector<u64>{64 * K, 64 * K}));
  EXPECT_EQ(l.unit_off, (std::vector<u64>{0, 32 * K, 128 * K, 160 * K}));
  EXPECT_EQ(l.unit_map, (std::vector<unsigned>{0, 1, 2, 3}));
  EXPECT_EQ(l.first_unit_cpu, 0u);
  EXPECT_EQ(l.last_unit_cpu, 3u);
}

TEST(PercpuLayout, uneven_nodes_give_groups_of_different_sizes) {
  MachineConfig cfg = config();
  cfg.cpus = 3;
  Kernel k(cfg);
  const PcpuLayout &l = k.percpu().layout();
  ASSERT_EQ(l.groups.size(), 2u);
  EXPECT_EQ(l.nr_units, 3u);
  EXPECT_EQ(l.group_sizes, (std::vector<u64>{64 * K, 32 * K}));
  EXPECT_EQ(l.group_offsets, (std::vector<u64>{0, 128 * K}));
  EXPECT_EQ(l.unit_off, (std::vector<u64>{0, 32 * K, 128 * K}));
  EXPECT_EQ(l.last_unit_cpu, 2u);
  const u64 a = k.percpu().alloc_percpu(8, 8);
  ASSERT_NE(a, 0u);
  EXPECT_EQ(k.check(), "");
}

TEST(PercpuLayout, unit_size_must_be_a_page_multiple) {
  Kernel k(config());
  EXPECT_THROW(Percpu(k.machine(), k.vmalloc(), PcpuConfig{1000}), std::invalid_argument);
  EXPECT_THROW(Percpu(k.machine(), k.vmalloc(), PcpuConfig{0}), std::invalid_argument);
}

// ---- chunks ------------------------------------------------------------------------------------

TEST_F(PercpuTest, create_chunk_places_congruent_areas_at_the_top_of_vmalloc_space) {
  PcpuChunk *c = p.pcpu_create_chunk();
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->id, 1u);
  ASSERT_EQ(c->vm_ids.size(), 2u);
  const VmStruct *g0 = v.vm_by_id(c->vm_ids[0]);
  const VmStruct *g1 = v.vm_by_id(c->vm_ids[1]);
  EXPECT_EQ(g1->addr + g1->size, kTop);
  EXPECT_EQ(g0->addr, c->base_addr);
  EXPECT_EQ(g1->addr - 128 * K, c->base_addr);
  EXPECT_EQ(c->free_bytes, 32 * K);
  EXPECT_EQ(p.pcpu_chunk_addr(*c, 3, 1), c->base_addr + 160 * K + PAGE_SIZE);
  // Nothing is mapped until populated.
  EXPECT_TRUE(range_mapped(*c, 0, 8, false));
  PcpuChunk *d = p.pcpu_create_chunk();
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->id, 2u);
  EXPECT_LT(d->base_addr, c->base_addr);
}

TEST_F(PercpuTest, create_chunk_fails_cleanly_when_metadata_or_areas_cannot_be_had) {
  m.faults().fail_nth(FailPoint::VmapArea, 1); // pcpu_alloc_chunk
  EXPECT_EQ(p.pcpu_create_chunk(), nullptr);
  m.faults().fail_nth(FailPoint::VmapArea, 2); // inside pcpu_get_vm_areas
  EXPECT_EQ(p.pcpu_create_chunk(), nullptr);
  EXPECT_TRUE(p.chunks().empty());
  EXPECT_TRUE(v.busy_areas().empty());
  // The next chunk still gets the first id.
  PcpuChunk *c = p.pcpu_create_chunk();
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->id, 1u);
}

TEST_F(PercpuTest, destroy_chunk_frees_its_areas_lazily) {
  PcpuChunk *c = p.pcpu_create_chunk();
  ASSERT_NE(c, nullptr);
  EXPECT_TRUE(p.pcpu_destroy_chunk(c));
  EXPECT_TRUE(p.chunks().empty());
  EXPECT_TRUE(v.busy_areas().empty());
  EXPECT_EQ(v.lazy_areas().size(), 2u);
}

TEST_F(PercpuTest, destroy_chunk_with_populated_pages_warns_and_changes_nothing) {
  PcpuChunk *c = p.pcpu_create_chunk();
  ASSERT_NE(c, nullptr);
  ASSERT_EQ(p.pcpu_populate_chunk(*c, 0, 1), 0);
  const u64 before = k.state_hash();
  const std::size_t w = warns();
  EXPECT_FALSE(p.pcpu_destroy_chunk(c));
  EXPECT_EQ(warns(), w + 1);
  EXPECT_EQ(k.state_hash(), before);
  EXPECT_EQ(p.chunks().size(), 1u);
}

// ---- the temp array and page allocation
// ------------------------------------------------------------

TEST_F(PercpuTest, get_pages_allocates_one_shared_array_once) {
  m.faults().fail_nth(FailPoint::VmapArea, 1);
  EXPECT_TRUE(p.pcpu_get_pages().empty());
  const std::span<Pfn> a = p.pcpu_get_pages();
  ASSERT_EQ(a.size(), 4u * 8u);
  for (Pfn slot : a)
    EXPECT_EQ(slot, kNoPage);
  // Allocated once: a later metadata failure does not touch it.
  m.faults().fail_nth(FailPoint::VmapArea, 1);
  EXPECT_EQ(p.pcpu_get_pages().data(), a.data());
  m.faults().fail_nth(FailPoint::VmapArea, 0);
  EXPECT_EQ(p.pcpu_page_idx(2, 3), 2u * 8u + 3u);
}

TEST_F(PercpuTest,
       alloc_pages_takes_one_page_per_cpu_on_the_cpus_node_and_free_pages_returns_them) {
  PcpuChunk *c = p.pcpu_create_chunk();
  ASSERT_NE(c, nullptr);
  const std::span<Pfn> pages = p.pcpu_get_pages();
  const u64 before = m.pages().nr_free_total();
  ASSERT_EQ(p.pcpu_alloc_pages(*c, pages, 2, 4), 0);
  EXPECT_EQ(m.pages().nr_free_total(), before - 8);
  for (unsigned cpu = 0; cpu < 4; ++cpu)
    for (unsigned i = 0; i < 8; ++i) {
      const Pfn pfn = pages[p.pcpu_page_idx(cpu, i)];
      if (i < 2 || i >= 4) {
        EXPECT_EQ(pfn, kNoPage);
        continue;
      }
      ASSERT_NE(pfn, kNoPage);
      EXPECT_EQ(m.mem().peek(pfn).owner, PageOwner::Percpu);
      EXPECT_EQ(m.mem().pfn_to_nid(pfn), m.cpu_to_node(cpu));
    }
  EXPECT_TRUE(range_mapped(*c, 0, 8, false)); // allocation maps nothing
  p.pcpu_free_pages(*c, pages, 2, 4);
  EXPECT_EQ(m.pages().nr_free_total(), before);
  for (Pfn slot : pages)
    EXPECT_EQ(slot, kNoPage);
  // A second free of the same range finds empty slots: nothing happens.
  p.pcpu_free_pages(*c, pages, 2, 4);
  EXPECT_EQ(m.pages().nr_free_total(), before);
}

TEST_F(PercpuTest, alloc_pages_failure_midway_frees_everything_it_allocated) {
  PcpuChunk *c = p.pcpu_create_chunk();
  ASSERT_NE(c, nullptr);
  const std::span<Pfn> pages = p.pcpu_get_pages();
  const u64 before = m.pages().nr_free_total();
  for (u64 n = 1; n <= 8; ++n) {
    m.faults().fail_nth(FailPoint::AllocPage, n);
    EXPECT_EQ(p.pcpu_alloc_pages(*c, pages, 0, 2), -ENOMEM) << "n=" << n;
    EXPECT_EQ(m.pages().nr_free_total(), before) << "n=" << n;
    for (Pfn slot : pages)
      EXPECT_EQ(slot, kNoPage);
  }
}

TEST_F(PercpuTest, page_ranges_outside_a_unit_warn_and_change_nothing) {
  PcpuChunk *c = p.pcpu_create_chunk();
  ASSERT_NE(c, nullptr);
  const std::span<Pfn> pages = p.pcpu_get_pages();
  const u64 before = k.state_hash();
  const std::size_t w = warns();
  EXPECT_EQ(p.pcpu_alloc_pages(*c, pages, 0, 9), -EINVAL);
  EXPECT_EQ(p.pcpu_map_pages(*c, pages, 3, 2), -EINVAL);
  EXPECT_EQ(p.pcpu_populate_chunk(*c, 7, 9), -EINVAL);
  p.pcpu_depopulate_chunk(*c, 0, 100);
  p.pcpu_unmap_pages(*c, pages, 5, 4);
  p.pcpu_free_pages(*c, pages, 0, 9);
  EXPECT_EQ(warns(), w + 6);
  EXPECT_EQ(k.state_hash(), before);
}

// ---- mapping
// ------------------------------------------------------------------------------------------

TEST_F(PercpuTest, map_pages_maps_every_unit_and_sets_the_reverse_lookup) {
  PcpuChunk *c = p.pcpu_create_chunk();
  ASSERT_NE(c, nullptr);
  const std::span<Pfn> pages = p.pcpu_get_pages();
  ASSERT_EQ(p.pcpu_alloc_pages(*c, pages, 1, 3), 0);
  ASSERT_EQ(p.pcpu_map_pages(*c, pages, 1, 3), 0);
  p.pcpu_post_map_flush(*c, 1, 3);
  EXPECT_EQ(p.flush_stats().post_map, 1u);
  EXPECT_TRUE(range_mapped(*c, 1, 3, true));
  EXPECT_TRUE(range_mapped(*c, 0, 1, false));
  EXPECT_TRUE(range_mapped(*c, 3, 8, false));
  EXPECT_TRUE(c->populated[1] && c->populated[2] && !c->populated[0]);
  for (unsigned cpu = 0; cpu < 4; ++cpu) {
    const u64 addr = p.pcpu_chunk_addr(*c, cpu, 2);
    EXPECT_EQ(v.vmalloc_to_page(addr), pages[p.pcpu_page_idx(cpu, 2)]);
    EXPECT_EQ(p.pcpu_chunk_addr_search(addr + 100), c);
  }
  EXPECT_EQ(p.pcpu_chunk_addr_search(p.pcpu_chunk_addr(*c, 0, 0)), nullptr);
}

TEST_F(PercpuTest, map_pages_over_a_mapped_page_fails_and_keeps_the_existing_mapping) {
  PcpuChunk *c = p.pcpu_create_chunk();
  ASSERT_NE(c, nullptr);
  ASSERT_EQ(p.pcpu_populate_chunk(*c, 1, 2), 0);
  const std::span<Pfn> pages = p.pcpu_get_pages();
  const std::vector<Pfn> kept(pages.begin(), pages.end());
  ASSERT_EQ(p.pcpu_alloc_pages(*c, pages, 0, 2), 0);
  EXPECT_EQ(p.pcpu_map_pages(*c, pages, 0, 2), -EBUSY);
  EXPECT_TRUE(range_mapped(*c, 0, 1, false));
  EXPECT_TRUE(range_mapped(*c, 1, 2, true));
  EXPECT_EQ(p.flush_stats().post_unmap_tlb, 1u);
  for (unsigned cpu = 0; cpu < 4; ++cpu)
    EXPECT_EQ(v.vmalloc_to_page(p.pcpu_chunk_addr(*c, cpu, 1)), kept[p.pcpu_page_idx(cpu, 1)]);
  p.pcpu_free_pages(*c, pages, 0, 2);
}

// Units 2 MiB apart so that each CPU's mapping needs page-table pages of
// its own, and a range that crosses a PMD boundary inside a unit: every
// page-table failure point lands somewhere else, first unit to last.
TEST(PercpuMapFailure, map_failure_at_every_page_table_allocation_unmaps_what_was_mapped) {
  bool succeeded = false;
  u64 failures = 0;
  for (u64 n = 1; n < 64 && !succeeded; ++n) {
    Kernel k(config());
    Machine &m = k.machine();
    Percpu p(m, k.vmalloc(), PcpuConfig{2 << 20});
    PcpuChunk *c = p.pcpu_create_chunk();
    ASSERT_NE(c, nullptr);
    unsigned cross = 1;
    while ((p.pcpu_chunk_addr(*c, 0, cross) & (PMD_SIZE - 1)) != 0)
      ++cross;
    const unsigned s = cross - 1, e = cross + 1;
    const std::span<Pfn> pages = p.pcpu_get_pages();
    const u64 before = frames(m);
    ASSERT_EQ(p.pcpu_alloc_pages(*c, pages, s, e), 0);
    m.faults().fail_nth(FailPoint::PageTable, n);
    const int err = p.pcpu_map_pages(*c, pages, s, e);
    m.faults().fail_nth(FailPoint::PageTable, 0);
    if (err == 0) {
      succeeded = true;
      p.pcpu_pre_unmap_flush(*c, s, e);
      p.pcpu_unmap_pages(*c, pages, s, e);
      p.pcpu_post_unmap_tlb_flush(*c, s, e);
    } else {
      ++failures;
      EXPECT_EQ(err, -ENOMEM) << "n=" << n;
      for (unsigned cpu = 0; cpu < 4; ++cpu)
        for (unsigned i = s; i < e; ++i)
          EXPECT_FALSE(k.vmalloc().vmalloc_to_page(p.pcpu_chunk_addr(*c, cpu, i)))
              << "n=" << n << " cpu " << cpu << " page " << i;
      EXPECT_EQ(p.flush_stats().post_unmap_tlb, 1u);
    }
    EXPECT_EQ(p.check(), "") << "n=" << n;
    p.pcpu_free_pages(*c, pages, s, e);
    EXPECT_EQ(frames(m), before) << "n=" << n;
    EXPECT_EQ(k.check(), "") << "n=" << n;
    EXPECT_EQ(p.check(), "") << "n=" << n;
    EXPECT_TRUE(p.pcpu_destroy_chunk(c));
  }
  EXPECT_TRUE(succeeded);
  // Each of the four units needs two page-table pages of its own at least.
  EXPECT_GE(failures, 8u);
}

TEST_F(PercpuTest, unmap_pages_records_the_pages_and_leaves_tlb_entries_until_the_flush) {
  PcpuChunk *c = p.pcpu_create_chunk();
  ASSERT_NE(c, nullptr);
  ASSERT_EQ(p.pcpu_populate_chunk(*c, 0, 2), 0);
  const std::span<Pfn> pages = p.pcpu_get_pages();
  std::vector<Pfn> mapped_pages;
  for (unsigned cpu = 0; cpu < 4; ++cpu)
    mapped_pages.push_back(*v.vmalloc_to_page(p.pcpu_chunk_addr(*c, cpu, 1)));
  std::fill(pages.begin(), pages.end(), kNoPage);
  ASSERT_TRUE(m.touch(p.pcpu_chunk_addr(*c, 2, 1), Access::Read).ok());
  p.pcpu_pre_unmap_flush(*c, 0, 2);
  p.pcpu_unmap_pages(*c, pages, 0, 2);
  EXPECT_EQ(p.flush_stats().pre_unmap, 1u);
  for (unsigned cpu = 0; cpu < 4; ++cpu)
    EXPECT_EQ(pages[p.pcpu_page_idx(cpu, 1)], mapped_pages[cpu]);
  EXPECT_TRUE(range_mapped(*c, 0, 2, false));
  EXPECT_FALSE(c->populated[0] || c->populated[1]);
  EXPECT_FALSE(m.mmu().stale_entries().empty());
  p.pcpu_post_unmap_tlb_flush(*c, 0, 2);
  EXPECT_TRUE(m.mmu().stale_entries().empty());
  p.pcpu_free_pages(*c, pages, 0, 2);
}

TEST_F(PercpuTest, unmap_of_an_unmapped_page_warns_and_records_an_empty_slot) {
  PcpuChunk *c = p.pcpu_create_chunk();
  ASSERT_NE(c, nullptr);
  const std::span<Pfn> pages = p.pcpu_get_pages();
  const std::size_t w = warns();
  p.pcpu_unmap_pages(*c, pages, 4, 5);
  EXPECT_EQ(warns(), w + 4); // WARN_ON(!page) once per CPU
  for (Pfn slot : pages)
    EXPECT_EQ(slot, kNoPage);
}

// ---- populate / depopulate
// ---------------------------------------------------------------------------------

TEST_F(PercpuTest, populate_chunk_maps_distinct_pages_for_every_cpu) {
  PcpuChunk *c = p.pcpu_create_chunk();
  ASSERT_NE(c, nullptr);
  const u64 before = m.pages().nr_free_total();
  ASSERT_EQ(p.pcpu_populate_chunk(*c, 0, 8), 0);
  EXPECT_TRUE(range_mapped(*c, 0, 8, true));
  std::set<Pfn> seen;
  for (unsigned cpu = 0; cpu < 4; ++cpu)
    for (unsigned i = 0; i < 8; ++i)
      seen.insert(*v.vmalloc_to_page(p.pcpu_chunk_addr(*c, cpu, i)));
  EXPECT_EQ(seen.size(), 32u);
  EXPECT_LE(m.pages().nr_free_total() + 32, before);
  EXPECT_EQ(p.flush_stats().post_map, 1u);
}

TEST_F(PercpuTest, populate_failure_at_any_allocation_returns_enomem_and_leaks_nothing) {
  PcpuChunk *c = p.pcpu_create_chunk();
  ASSERT_NE(c, nullptr);
  ASSERT_FALSE(p.pcpu_get_pages().empty());
  const u64 before = frames(m);
  for (FailPoint fp : {FailPoint::AllocPage, FailPoint::PageTable}) {
    for (u64 n = 1; n <= 8; ++n) {
      m.faults().fail_nth(fp, n);
      const int err = p.pcpu_populate_chunk(*c, 2, 4);
      m.faults().fail_nth(fp, 0);
      if (err == 0) {
        p.pcpu_depopulate_chunk(*c, 2, 4);
        p.pcpu_post_unmap_tlb_flush(*c, 2, 4);
      } else {
        EXPECT_EQ(err, -ENOMEM);
        EXPECT_TRUE(range_mapped(*c, 0, 8, false));
      }
      EXPECT_EQ(frames(m), before) << fail_point_name(fp) << " n=" << n;
      EXPECT_EQ(k.check(), "") << fail_point_name(fp) << " n=" << n;
    }
  }
}

TEST_F(PercpuTest, populate_without_a_temp_array_returns_enomem) {
  PcpuChunk *c = p.pcpu_create_chunk();
  ASSERT_NE(c, nullptr);
  m.faults().fail_nth(FailPoint::VmapArea, 1);
  EXPECT_EQ(p.pcpu_populate_chunk(*c, 0, 1), -ENOMEM);
  EXPECT_FALSE(c->populated[0]);
}

TEST_F(PercpuTest, depopulate_chunk_unmaps_and_frees_without_a_tlb_flush) {
  PcpuChunk *c = p.pcpu_create_chunk();
  ASSERT_NE(c, nullptr);
  ASSERT_FALSE(p.pcpu_get_pages().empty());
  const u64 before = frames(m);
  ASSERT_EQ(p.pcpu_populate_chunk(*c, 0, 3), 0);
  ASSERT_TRUE(m.touch(p.pcpu_chunk_addr(*c, 1, 2), Access::Write).ok());
  p.pcpu_depopulate_chunk(*c, 0, 3);
  EXPECT_EQ(frames(m), before);
  EXPECT_TRUE(range_mapped(*c, 0, 8, false));
  EXPECT_EQ(p.flush_stats().pre_unmap, 1u);
  EXPECT_EQ(p.flush_stats().post_unmap_tlb, 0u);
  // The stale entry sits inside the chunk's busy area: allowed until the
  // areas are freed and vmalloc flushes.
  EXPECT_FALSE(m.mmu().stale_entries().empty());
  EXPECT_TRUE(p.pcpu_destroy_chunk(c));
  v.purge_vmap_area_lazy();
  EXPECT_TRUE(m.mmu().stale_entries().empty());
}

TEST(PercpuBug, depopulate_without_a_temp_array_is_a_kernel_bug) {
  Kernel k(config());
  PcpuChunk *c = k.percpu().pcpu_create_chunk();
  ASSERT_NE(c, nullptr);
  k.machine().faults().fail_nth(FailPoint::VmapArea, 1);
  EXPECT_THROW(k.percpu().pcpu_depopulate_chunk(*c, 0, 1), KernelBug);
}

// ---- alloc_percpu / free_percpu
// ----------------------------------------------------------------------------------

TEST_F(PercpuTest, alloc_percpu_gives_congruent_zeroed_copies_for_every_cpu) {
  const u64 ptr = p.alloc_percpu(100, 8);
  ASSERT_NE(ptr, 0u);
  ASSERT_EQ(p.chunks().size(), 1u);
  const PcpuChunk &c = *p.chunks().begin()->second;
  EXPECT_EQ(ptr, c.base_addr);
  EXPECT_EQ(c.free_bytes, 32 * K - 100);
  for (unsigned cpu = 0; cpu < 4; ++cpu) {
    const u64 a = p.per_cpu_ptr(ptr, cpu);
    EXPECT_EQ(a - p.layout().unit_off[cpu], ptr);
    EXPECT_EQ(read(a, 100), std::vector<std::uint8_t>(100, 0));
  }
  // Only the page the allocation covers is populated.
  EXPECT_TRUE(c.populated[0]);
  EXPECT_FALSE(c.populated[1]);
}

TEST_F(PercpuTest, data_written_on_one_cpu_is_not_seen_on_another) {
  const u64 ptr = p.alloc_percpu(16, 4);
  ASSERT_NE(ptr, 0u);
  write(p.per_cpu_ptr(ptr, 0), {1, 2, 3, 4});
  write(p.per_cpu_ptr(ptr, 3), {9, 9});
  EXPECT_EQ(read(p.per_cpu_ptr(ptr, 0), 4), (std::vector<std::uint8_t>{1, 2, 3, 4}));
  EXPECT_EQ(read(p.per_cpu_ptr(ptr, 1), 4), (std::vector<std::uint8_t>{0, 0, 0, 0}));
  EXPECT_EQ(read(p.per_cpu_ptr(ptr, 2), 4), (std::vector<std::uint8_t>{0, 0, 0, 0}));
  EXPECT_EQ(read(p.per_cpu_ptr(ptr, 3), 4), (std::vector<std::uint8_t>{9, 9, 0, 0}));
}

TEST_F(PercpuTest, reused_space_reads_as_zero_again) {
  const u64 a = p.alloc_percpu(64, 8);
  write(p.per_cpu_ptr(a, 1), std::vector<std::uint8_t>(64, 0xee));
  p.free_percpu(a);
  const u64 b = p.alloc_percpu(64, 8);
  EXPECT_EQ(b, a);
  EXPECT_EQ(read(p.per_cpu_ptr(b, 1), 64), std::vector<std::uint8_t>(64, 0));
}

TEST_F(PercpuTest, allocations_are_first_fit_aligned_and_rounded_to_four_bytes) {
  const u64 a = p.alloc_percpu(1, 1);
  const u64 b = p.alloc_percpu(8, 8);
  const u64 c = p.alloc_percpu(4, 4);
  const u64 base = p.chunks().begin()->second->base_addr;
  EXPECT_EQ(a - base, 0u);
  EXPECT_EQ(b - base, 8u); // 1 rounds to 4, then aligned to 8
  EXPECT_EQ(c - base, 4u); // first fit fills the hole
  const u64 d = p.alloc_percpu(100, PAGE_SIZE);
  EXPECT_EQ(d - base, PAGE_SIZE);
  EXPECT_TRUE(p.chunks().begin()->second->populated[1]);
  p.free_percpu(b);
  EXPECT_EQ(p.alloc_percpu(8, 8), b);
}

TEST_F(PercpuTest, an_allocation_spanning_pages_populates_all_of_them) {
  const u64 a = p.alloc_percpu(100, 4);
  const u64 b = p.alloc_percpu(3 * PAGE_SIZE, 4);
  ASSERT_NE(b, 0u);
  const PcpuChunk &c = *p.chunks().begin()->second;
  EXPECT_EQ(b - c.base_addr, 100u);
  for (unsigned i = 0; i < 4; ++i)
    EXPECT_TRUE(c.populated[i]) << i;
  EXPECT_FALSE(c.populated[4]);
  write(p.per_cpu_ptr(b, 2) + 3 * PAGE_SIZE - 1, {7});
  EXPECT_EQ(read(p.per_cpu_ptr(b, 2) + 3 * PAGE_SIZE - 1, 1), std::vector<std::uint8_t>{7});
  (void)a;
}

TEST_F(PercpuTest, a_full_chunk_makes_alloc_percpu_create_a_new_one) {
  const u64 a = p.alloc_percpu(32 * K, 4);
  ASSERT_NE(a, 0u);
  EXPECT_EQ(p.chunks().begin()->second->free_bytes, 0u);
  const u64 b = p.alloc_percpu(4, 4);
  ASSERT_NE(b, 0u);
  ASSERT_EQ(p.chunks().size(), 2u);
  const PcpuChunk &second = *p.chunks().rbegin()->second;
  EXPECT_EQ(b, second.base_addr);
  EXPECT_EQ(second.id, 2u);
}

TEST_F(PercpuTest, an_emptied_non_first_chunk_is_reclaimed_by_the_balance_work) {
  const u64 a = p.alloc_percpu(32 * K, 4);
  const u64 b = p.alloc_percpu(64, 4);
  ASSERT_EQ(p.chunks().size(), 2u);
  const u64 before = m.pages().nr_free_total();
  p.free_percpu(b);
  EXPECT_EQ(p.chunks().size(), 2u); // deferred, as the kernel's pcpu_balance_work
  EXPECT_TRUE(m.deferred().is_pending("pcpu_balance_work", 0));
  EXPECT_EQ(m.deferred().run_all(), 1u);
  ASSERT_EQ(p.chunks().size(), 1u);
  EXPECT_EQ(p.chunks().begin()->first, 1u);
  EXPECT_EQ(m.pages().nr_free_total(), before + 4); // one page per CPU came back
  EXPECT_EQ(v.lazy_areas().size(), 2u);
  // The first chunk empties but stays, populated.
  p.free_percpu(a);
  EXPECT_EQ(m.deferred().pending(), 0u);
  EXPECT_EQ(p.chunks().size(), 1u);
}

TEST_F(PercpuTest, a_chunk_refilled_before_the_balance_work_runs_is_kept) {
  p.alloc_percpu(32 * K, 4);
  const u64 b = p.alloc_percpu(64, 4);
  p.free_percpu(b);
  const u64 c = p.alloc_percpu(64, 4);
  EXPECT_EQ(c, b);
  m.deferred().run_all();
  EXPECT_EQ(p.chunks().size(), 2u);
}

TEST_F(PercpuTest, bad_size_or_align_warns_and_changes_nothing) {
  p.alloc_percpu(8, 8);
  const u64 before = k.state_hash();
  const std::size_t w = warns();
  EXPECT_EQ(p.alloc_percpu(0, 4), 0u);
  EXPECT_EQ(p.alloc_percpu(32 * K + 1, 4), 0u);
  EXPECT_EQ(p.alloc_percpu(8, 3), 0u);
  EXPECT_EQ(p.alloc_percpu(8, 0), 0u);
  EXPECT_EQ(p.alloc_percpu(8, 2 * PAGE_SIZE), 0u);
  EXPECT_EQ(warns(), w + 5);
  EXPECT_EQ(k.state_hash(), before);
}

TEST_F(PercpuTest, free_percpu_of_an_unknown_pointer_warns_and_changes_nothing) {
  const u64 a = p.alloc_percpu(16, 8);
  const u64 vm = v.vmalloc(PAGE_SIZE);
  const u64 before = k.state_hash();
  const std::size_t w = warns();
  p.free_percpu(0); // NULL: silently nothing
  EXPECT_EQ(warns(), w);
  p.free_percpu(a + 4);                  // interior
  p.free_percpu(p.per_cpu_ptr(a, 1));    // another CPU's copy
  p.free_percpu(vm);                     // a vmalloc page, not percpu
  p.free_percpu(VMALLOC_START_L4 + 123); // nothing mapped
  EXPECT_EQ(warns(), w + 4);
  EXPECT_EQ(k.state_hash(), before);
  p.free_percpu(a);
  const std::size_t w2 = warns();
  p.free_percpu(a); // double free
  EXPECT_EQ(warns(), w2 + 1);
}

TEST_F(PercpuTest, per_cpu_ptr_of_an_offline_cpu_warns) {
  const u64 a = p.alloc_percpu(16, 8);
  const std::size_t w = warns();
  EXPECT_EQ(p.per_cpu_ptr(a, 4), 0u);
  EXPECT_EQ(warns(), w + 1);
}

TEST_F(PercpuTest, alloc_percpu_failure_undoes_everything) {
  const u64 before_hash = k.state_hash();
  // No chunk can be created.
  m.faults().fail_nth(FailPoint::VmapArea, 1);
  EXPECT_EQ(p.alloc_percpu(16, 8), 0u);
  EXPECT_TRUE(p.chunks().empty());
  EXPECT_EQ(k.state_hash(), before_hash);
  // The chunk is created but cannot be populated: it goes again.
  const u64 before = frames(m);
  m.faults().fail_nth(FailPoint::AllocPage, 3);
  EXPECT_EQ(p.alloc_percpu(16, 8), 0u);
  EXPECT_TRUE(p.chunks().empty());
  EXPECT_EQ(frames(m), before); // no percpu frame kept
  // Populating a second run fails: the first run is depopulated again.
  const u64 a = p.alloc_percpu(PAGE_SIZE - 8, 4);
  ASSERT_NE(a, 0u);
  const PcpuChunk &c = *p.chunks().begin()->second;
  const u64 free_before = frames(m);
  m.faults().fail_nth(FailPoint::AllocPage, 6); // inside the second page run
  EXPECT_EQ(p.alloc_percpu(3 * PAGE_SIZE, 8), 0u);
  EXPECT_EQ(frames(m), free_before);
  EXPECT_FALSE(c.populated[1]);
  EXPECT_EQ(c.areas.size(), 1u);
}

TEST_F(PercpuTest, the_legacy_backend_serves_percpu_too) {
  Kernel legacy(config(Backend::Legacy));
  Percpu &lp = legacy.percpu();
  const u64 a = lp.alloc_percpu(128, 8);
  ASSERT_NE(a, 0u);
  ASSERT_TRUE(legacy.machine().kernel_write(lp.per_cpu_ptr(a, 2), std::vector<std::uint8_t>{5, 6}));
  std::vector<std::uint8_t> buf(2);
  ASSERT_TRUE(legacy.machine().kernel_read(lp.per_cpu_ptr(a, 3), buf));
  EXPECT_EQ(buf, (std::vector<std::uint8_t>{0, 0}));
  lp.free_percpu(a);
  EXPECT_EQ(legacy.check(), "");
}

} // namespace
} // namespace vmcheck
