// vm_map_ram / vm_unmap_ram over per-CPU vmap blocks, the large-mapping
// fallback, block recycling through the lazy list, purging fragmented blocks
// on allocation failure, vm_unmap_aliases and the refusal of bad input.
#include "machine/machine.h"
#include "vmalloc/vmalloc.h"

#include <gtest/gtest.h>

#include <vector>

namespace vmcheck {
namespace {

constexpr u64 kStart = VMALLOC_START_L4;
constexpr u64 kRangeSize = VMALLOC_END_L4 + 1 - VMALLOC_START_L4;

MachineConfig config(Backend backend = Backend::Modern, unsigned nodes = 1) {
  MachineConfig cfg;
  cfg.cpus = 2;
  cfg.nodes = nodes;
  cfg.mem_per_node = u64{16} << 20;
  cfg.backend = backend;
  return cfg;
}

struct VmapBlockTest : ::testing::Test {
  explicit VmapBlockTest(Backend backend = Backend::Modern) : m(config(backend)), v(m) {}

  Machine m;
  Vmalloc v;

  void TearDown() override { expect_clean(); }

  void expect_clean() {
    EXPECT_EQ(m.check(), "");
    EXPECT_EQ(v.check(), "");
  }
  u64 state_hash() const {
    StateHasher h;
    m.hash_into(h);
    v.hash_into(h);
    return h.value();
  }
  std::size_t warns() const { return m.diag().count(DiagKind::Warn); }
  std::vector<Pfn> alloc_pages(unsigned n) {
    std::vector<Pfn> out;
    for (unsigned i = 0; i < n; ++i) {
      auto pfn = m.alloc_pages(GFP_KERNEL, 0);
      EXPECT_TRUE(pfn.has_value());
      out.push_back(pfn.value_or(0));
    }
    return out;
  }
  u64 map(const std::vector<Pfn> &pages, unsigned count) {
    return v.vm_map_ram(pages, count, NUMA_NO_NODE, PAGE_KERNEL);
  }
  const VmapBlock &block(u64 va_start) { return v.vmap_blocks().at(va_start); }
};

struct LegacyVmapBlockTest : VmapBlockTest {
  LegacyVmapBlockTest() : VmapBlockTest(Backend::Legacy) {}
};

TEST_F(VmapBlockTest, small_mappings_share_one_block_at_consecutive_power_of_two_offsets) {
  const auto pages = alloc_pages(8);
  const u64 a = map(pages, 1);
  const u64 b = map(pages, 3);
  const u64 c = map(pages, 2);
  EXPECT_EQ(a, kStart);
  EXPECT_EQ(b, kStart + 1 * PAGE_SIZE);
  EXPECT_EQ(c, kStart + 5 * PAGE_SIZE); // the 3-page mapping consumed 4 pages
  ASSERT_EQ(v.vmap_blocks().size(), 1u);
  const VmapBlock &vb = block(kStart);
  EXPECT_EQ(vb.free, VMAP_BBMAP_BITS - 1 - 4 - 2);
  EXPECT_EQ(vb.live, (std::map<unsigned, unsigned>{{0, 0}, {1, 2}, {5, 1}}));
  for (unsigned i = 0; i < 3; ++i)
    EXPECT_EQ(v.vmalloc_to_page(b + i * PAGE_SIZE), pages[i]);
  EXPECT_FALSE(v.vmalloc_to_page(b + 3 * PAGE_SIZE).has_value());
  const VmapArea &va = v.busy_areas().at(kStart);
  EXPECT_EQ(va.size(), VMAP_BLOCK_SIZE);
  EXPECT_EQ(va.flags, VMAP_RAM | VMAP_BLOCK);
  EXPECT_EQ(v.find_vm_area(a), nullptr);
  expect_clean();
}

TEST_F(VmapBlockTest, mapped_pages_read_back_what_was_written_through_the_mapping) {
  const auto pages = alloc_pages(2);
  const u64 a = map(pages, 2);
  const std::vector<std::uint8_t> data = {1, 2, 3, 4};
  ASSERT_TRUE(m.kernel_write(a + PAGE_SIZE - 2, data));
  std::vector<std::uint8_t> back(4);
  m.mem().read((pages[0] << PAGE_SHIFT) + PAGE_SIZE - 2, std::span(back).first(2));
  m.mem().read(pages[1] << PAGE_SHIFT, std::span(back).last(2));
  EXPECT_EQ(back, data);
}

TEST_F(VmapBlockTest, each_cpu_carves_its_own_block) {
  const auto pages = alloc_pages(1);
  EXPECT_EQ(map(pages, 1), kStart);
  ASSERT_TRUE(m.set_current_cpu(1));
  EXPECT_EQ(map(pages, 1), kStart + VMAP_BLOCK_SIZE);
  EXPECT_EQ(block(kStart + VMAP_BLOCK_SIZE).cpu, 1u);
  ASSERT_TRUE(m.set_current_cpu(0));
  EXPECT_EQ(map(pages, 1), kStart + PAGE_SIZE);
  EXPECT_EQ(block(kStart).cpu, 0u);
  EXPECT_EQ(v.vmap_blocks().size(), 2u);
}

TEST_F(VmapBlockTest, a_new_block_is_started_when_the_current_one_cannot_fit_the_request) {
  const auto pages = alloc_pages(64);
  for (unsigned i = 0; i < 15; ++i)
    EXPECT_EQ(map(pages, 64), kStart + i * 64 * PAGE_SIZE);
  EXPECT_EQ(map(pages, 33), kStart + 960 * PAGE_SIZE); // order 6: the last 64 pages
  EXPECT_EQ(block(kStart).free, 0u);
  EXPECT_EQ(map(pages, 1), kStart + VMAP_BLOCK_SIZE);
}

TEST_F(VmapBlockTest, more_than_64_pages_get_an_exact_size_area_without_a_guard_page) {
  const auto pages = alloc_pages(65);
  EXPECT_EQ(map(pages, 64), kStart); // still a block
  const u64 big = map(pages, 65);
  EXPECT_EQ(big, kStart + VMAP_BLOCK_SIZE);
  const VmapArea &va = v.busy_areas().at(big);
  EXPECT_EQ(va.size(), 65 * PAGE_SIZE);
  EXPECT_EQ(va.flags, VMAP_RAM);
  EXPECT_EQ(va.vm_id, 0u);
  EXPECT_EQ(v.find_vm_area(big), nullptr);
  EXPECT_EQ(v.vmap_blocks().size(), 1u);
  EXPECT_NE(v.vmallocinfo().find("vm_map_ram"), std::string::npos);
  // No guard page: the next area starts right at the end.
  EXPECT_EQ(v.vmalloc(PAGE_SIZE), big + 65 * PAGE_SIZE);
  EXPECT_FALSE(v.is_guard_page(big + 64 * PAGE_SIZE));
  EXPECT_TRUE(m.touch(big + 64 * PAGE_SIZE, Access::Read).ok());
}

TEST_F(VmapBlockTest, unmapping_a_large_mapping_frees_its_va_lazily) {
  const auto pages = alloc_pages(70);
  const u64 big = map(pages, 70);
  v.vm_unmap_ram(big, 70);
  EXPECT_EQ(v.busy_areas().count(big), 0u);
  EXPECT_EQ(v.lazy_areas().count(big), 1u);
  EXPECT_EQ(v.vmap_lazy_nr(), 70u);
  EXPECT_FALSE(v.vmalloc_to_page(big).has_value());
  expect_clean();
  v.purge_vmap_area_lazy();
  EXPECT_TRUE(v.lazy_areas().empty());
  EXPECT_EQ(map(pages, 70), big);
}

TEST_F(VmapBlockTest, vm_unmap_ram_with_the_wrong_count_is_a_kernel_bug_and_changes_nothing) {
  const auto pages = alloc_pages(70);
  const u64 small = map(pages, 3);
  const u64 big = map(pages, 70);
  const u64 before = state_hash();
  EXPECT_THROW(v.vm_unmap_ram(small, 5), KernelBug); // order 3, mapped at order 2
  EXPECT_THROW(v.vm_unmap_ram(small, 1), KernelBug);
  EXPECT_THROW(v.vm_unmap_ram(small, 0), KernelBug);
  EXPECT_THROW(v.vm_unmap_ram(small + PAGE_SIZE, 1), KernelBug); // inside, not a start
  EXPECT_THROW(v.vm_unmap_ram(small, 70), KernelBug);            // a block, not a large area
  EXPECT_THROW(v.vm_unmap_ram(big, 69), KernelBug);              // a large area, not a block
  EXPECT_THROW(v.vm_unmap_ram(big, 71), KernelBug);
  EXPECT_THROW(v.vm_unmap_ram(big + PAGE_SIZE, 69), KernelBug);
  EXPECT_EQ(state_hash(), before);
  expect_clean();
  v.vm_unmap_ram(small, 3);
  v.vm_unmap_ram(big, 70);
  EXPECT_TRUE(block(kStart).live.empty());
}

TEST_F(VmapBlockTest, vm_unmap_ram_of_a_bad_address_is_a_kernel_bug_and_changes_nothing) {
  const auto pages = alloc_pages(1);
  const u64 a = map(pages, 1);
  const u64 before = state_hash();
  EXPECT_THROW(v.vm_unmap_ram(0, 1), KernelBug);
  EXPECT_THROW(v.vm_unmap_ram(kStart - PAGE_SIZE, 1), KernelBug);
  EXPECT_THROW(v.vm_unmap_ram(VMALLOC_END_L4 + 1, 1), KernelBug);
  EXPECT_THROW(v.vm_unmap_ram(a + 8, 1), KernelBug);
  EXPECT_THROW(v.vm_unmap_ram(kStart + 4 * VMAP_BLOCK_SIZE, 1), KernelBug); // no block there
  EXPECT_EQ(state_hash(), before);
}

TEST_F(VmapBlockTest, unmapping_a_small_mapping_clears_its_ptes_and_marks_the_pages_dirty) {
  const auto pages = alloc_pages(4);
  map(pages, 1);
  const u64 b = map(pages, 4);
  map(pages, 2);
  v.vm_unmap_ram(b, 4);
  const VmapBlock &vb = block(kStart);
  EXPECT_EQ(vb.dirty, 4u);
  EXPECT_EQ(vb.dirty_min, 1u);
  EXPECT_EQ(vb.dirty_max, 5u);
  EXPECT_EQ(vb.free, VMAP_BBMAP_BITS - 7);
  EXPECT_FALSE(v.vmalloc_to_page(b).has_value());
  // Dirty pages are not reused: the bump pointer moves on.
  EXPECT_EQ(map(pages, 1), kStart + 7 * PAGE_SIZE);
}

TEST_F(VmapBlockTest, a_fully_dirty_block_goes_to_the_lazy_list_and_its_va_comes_back_after_purge) {
  const auto pages = alloc_pages(64);
  std::vector<u64> addrs;
  for (unsigned i = 0; i < 16; ++i)
    addrs.push_back(map(pages, 64));
  EXPECT_EQ(block(kStart).free, 0u);
  for (unsigned i = 0; i < 15; ++i)
    v.vm_unmap_ram(addrs[i], 64);
  EXPECT_EQ(block(kStart).dirty, 960u);
  EXPECT_TRUE(v.lazy_areas().empty());
  expect_clean();
  v.vm_unmap_ram(addrs[15], 64);
  EXPECT_TRUE(v.vmap_blocks().empty());
  EXPECT_TRUE(v.busy_areas().empty());
  ASSERT_EQ(v.lazy_areas().count(kStart), 1u);
  EXPECT_EQ(v.lazy_areas().at(kStart).size(), VMAP_BLOCK_SIZE);
  EXPECT_EQ(v.vmap_lazy_nr(), VMAP_BBMAP_BITS);
  expect_clean();
  // The lazy VA is not handed out again before a purge...
  EXPECT_EQ(map(pages, 1), kStart + VMAP_BLOCK_SIZE);
  v.purge_vmap_area_lazy();
  EXPECT_TRUE(v.lazy_areas().empty());
  // ...and is after one.
  ASSERT_TRUE(m.set_current_cpu(1));
  EXPECT_EQ(map(pages, 1), kStart);
}

TEST_F(VmapBlockTest, allocation_failure_purges_fragmented_blocks_and_retries) {
  const auto pages = alloc_pages(64);
  std::vector<u64> addrs;
  for (unsigned i = 0; i < 15; ++i)
    addrs.push_back(map(pages, 64));
  addrs.push_back(map(pages, 32));
  ASSERT_EQ(block(kStart).free, 32u);
  // Everything else in the range is taken (the last page is never usable).
  ASSERT_NE(v.get_vm_area(kRangeSize - VMAP_BLOCK_SIZE - 2 * PAGE_SIZE, VM_MAP), nullptr);
  for (u64 a : addrs)
    v.vm_unmap_ram(a, a == addrs.back() ? 32 : 64);
  ASSERT_EQ(block(kStart).free + block(kStart).dirty, VMAP_BBMAP_BITS);
  const std::size_t w = warns();
  // 64 pages do not fit in the block's last 32, and no new block fits until
  // the fragmented one is purged.
  EXPECT_EQ(map(pages, 64), kStart);
  EXPECT_EQ(warns(), w);
  ASSERT_EQ(v.vmap_blocks().size(), 1u);
  EXPECT_EQ(block(kStart).live, (std::map<unsigned, unsigned>{{0, 6}}));
  EXPECT_EQ(block(kStart).dirty, 0u);
  EXPECT_TRUE(v.lazy_areas().empty());
}

TEST_F(VmapBlockTest, allocation_fails_cleanly_when_no_block_fits_and_none_can_be_purged) {
  const auto pages = alloc_pages(64);
  const u64 kept = map(pages, 1);
  ASSERT_NE(v.get_vm_area(kRangeSize - VMAP_BLOCK_SIZE - 2 * PAGE_SIZE, VM_MAP), nullptr);
  for (unsigned i = 0; i < 15; ++i)
    map(pages, 64);
  const u64 before = state_hash();
  const std::size_t w = warns();
  EXPECT_EQ(map(pages, 64), 0u);
  EXPECT_GT(warns(), w);
  EXPECT_EQ(state_hash(), before);
  v.vm_unmap_ram(kept, 1);
}

TEST_F(VmapBlockTest, page_table_allocation_failure_unmaps_and_returns_null) {
  const auto pages = alloc_pages(65);
  m.faults().fail_nth(FailPoint::PageTable, 1);
  EXPECT_EQ(map(pages, 2), 0u);
  ASSERT_EQ(v.vmap_blocks().size(), 1u);
  EXPECT_TRUE(block(kStart).live.empty());
  EXPECT_EQ(block(kStart).dirty, 2u);
  expect_clean();
  m.faults().fail_nth(FailPoint::PageTable, 1);
  EXPECT_EQ(map(pages, 65), 0u);
  EXPECT_EQ(v.busy_areas().size(), 1u);
  EXPECT_EQ(map(pages, 2), kStart + 2 * PAGE_SIZE);
}

TEST_F(VmapBlockTest, vm_unmap_aliases_leaves_no_stale_tlb_entry) {
  const auto pages = alloc_pages(70);
  // cpu 0: a block filled completely (off the free list), cpu 1: a block
  // with room left, plus one large mapping.
  std::vector<u64> full;
  for (unsigned i = 0; i < 16; ++i)
    full.push_back(map(pages, 64));
  ASSERT_TRUE(m.set_current_cpu(1));
  const u64 keep = map(pages, 2);
  const u64 gone = map(pages, 2);
  const u64 big = map(pages, 70);
  for (unsigned cpu = 0; cpu < 2; ++cpu) {
    ASSERT_TRUE(m.set_current_cpu(cpu));
    for (u64 va : {full[3], full[3] + PAGE_SIZE, full[7], keep, gone, gone + PAGE_SIZE, big,
                   big + 69 * PAGE_SIZE})
      ASSERT_TRUE(m.touch(va, Access::Read).ok());
  }
  v.vm_unmap_ram(full[3], 64);
  v.vm_unmap_ram(gone, 2);
  v.vm_unmap_ram(big, 70);
  EXPECT_FALSE(m.mmu().stale_entries().empty());
  expect_clean();
  v.vm_unmap_aliases();
  EXPECT_TRUE(m.mmu().stale_entries().empty());
  EXPECT_TRUE(v.lazy_areas().empty());
  expect_clean();
  for (unsigned cpu = 0; cpu < 2; ++cpu) {
    ASSERT_TRUE(m.set_current_cpu(cpu));
    EXPECT_TRUE(m.touch(keep, Access::Read).ok());
    EXPECT_TRUE(m.touch(full[7], Access::Read).ok());
    EXPECT_EQ(m.touch(gone, Access::Read).fault, Fault::NotPresent);
  }
}

TEST_F(VmapBlockTest, vm_unmap_aliases_does_not_flush_a_dirty_range_twice) {
  const auto pages = alloc_pages(2);
  const u64 a = map(pages, 2);
  map(pages, 1);
  v.vm_unmap_ram(a, 2);
  v.vm_unmap_aliases();
  EXPECT_EQ(block(kStart).dirty, 2u);
  EXPECT_EQ(block(kStart).dirty_min, VMAP_BBMAP_BITS);
  EXPECT_EQ(block(kStart).dirty_max, 0u);
  const u64 flushes = m.mmu().stats(0).remote_flushes + m.mmu().stats(0).local_flushes +
                      m.mmu().stats(0).full_flushes;
  v.vm_unmap_aliases();
  EXPECT_EQ(m.mmu().stats(0).remote_flushes + m.mmu().stats(0).local_flushes +
                m.mmu().stats(0).full_flushes,
            flushes);
}

TEST_F(VmapBlockTest, vm_unmap_aliases_frees_blocks_with_nothing_live) {
  const auto pages = alloc_pages(1);
  const u64 a = map(pages, 1);
  v.vm_unmap_ram(a, 1);
  ASSERT_EQ(v.vmap_blocks().size(), 1u);
  v.vm_unmap_aliases();
  EXPECT_TRUE(v.vmap_blocks().empty());
  EXPECT_TRUE(v.busy_areas().empty());
  EXPECT_TRUE(v.lazy_areas().empty()); // freed to the lazy list, then purged
}

TEST_F(VmapBlockTest, bad_input_warns_returns_null_and_changes_nothing) {
  v.vmalloc_init();
  auto pages = alloc_pages(4);
  const auto freed = m.alloc_pages(GFP_KERNEL, 0);
  ASSERT_TRUE(freed.has_value());
  m.pages().free_pages(*freed, 0);
  const u64 before = state_hash();
  std::size_t w = warns();
  auto refused = [&](std::span<const Pfn> p, unsigned count, int node) {
    EXPECT_EQ(v.vm_map_ram(p, count, node, PAGE_KERNEL), 0u);
    EXPECT_EQ(warns(), ++w);
    EXPECT_EQ(state_hash(), before);
  };
  refused(pages, 0, NUMA_NO_NODE);
  refused(pages, 5, NUMA_NO_NODE);  // short page array
  refused(pages, 65, NUMA_NO_NODE); // short, large path
  refused(pages, 4, 1);             // node 1 does not exist
  refused(pages, 4, -2);            // nor does node -2
  pages[2] = *freed;                // a free page
  refused(pages, 4, NUMA_NO_NODE);
  pages[2] = m.mem().max_pfn(); // not memory at all
  refused(pages, 4, NUMA_NO_NODE);
  EXPECT_TRUE(v.vmap_blocks().empty());
}

TEST_F(VmapBlockTest, new_vmap_block_returns_the_first_pages_of_a_fresh_block) {
  const u64 a = v.new_vmap_block(3, GFP_KERNEL);
  EXPECT_EQ(a, kStart);
  EXPECT_EQ(block(kStart).free, VMAP_BBMAP_BITS - 8);
  EXPECT_EQ(block(kStart).live, (std::map<unsigned, unsigned>{{0, 3}}));
  EXPECT_EQ(v.new_vmap_block(9, GFP_KERNEL), kStart + VMAP_BLOCK_SIZE);
  EXPECT_THROW(v.new_vmap_block(10, GFP_KERNEL), KernelBug);
  const u64 before = state_hash();
  m.faults().fail_nth(FailPoint::VmapArea, 1);
  const u64 err = v.new_vmap_block(0, GFP_KERNEL);
  ASSERT_TRUE(IS_ERR_VALUE(err));
  EXPECT_EQ(PTR_ERR(err), -ENOMEM);
  EXPECT_EQ(state_hash(), before);
  v.vm_unmap_ram(a, 8);
}

TEST_F(LegacyVmapBlockTest, legacy_backend_serves_small_mappings_as_plain_areas) {
  const auto pages = alloc_pages(3);
  const u64 a = map(pages, 3);
  const u64 b = map(pages, 1);
  EXPECT_EQ(a, kStart);
  EXPECT_EQ(b, kStart + 3 * PAGE_SIZE); // exact size, no guard page
  EXPECT_TRUE(v.vmap_blocks().empty());
  EXPECT_EQ(v.busy_areas().at(a).flags, VMAP_RAM);
  EXPECT_EQ(v.vmalloc_to_page(a + 2 * PAGE_SIZE), pages[2]);
  const u64 before = state_hash();
  EXPECT_THROW(v.vm_unmap_ram(a, 4), KernelBug);
  EXPECT_EQ(state_hash(), before);
  ASSERT_TRUE(m.touch(a, Access::Read).ok());
  v.vm_unmap_ram(a, 3);
  EXPECT_EQ(v.busy_areas().count(a), 0u);
  EXPECT_TRUE(m.mmu().stale_entries().empty()); // legacy flushes at once
  EXPECT_EQ(map(pages, 2), kStart);
  v.vm_unmap_aliases();
  EXPECT_TRUE(m.mmu().stale_entries().empty());
}

} // namespace
} // namespace vmcheck
