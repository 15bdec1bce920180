// Page tables in emulated frames: mapping, walking, the shared kernel half,
// huge leaves, allocation failure and table reclaim.
#include "machine/diag.h"
#include "machine/fault_inject.h"
#include "machine/page_alloc.h"
#include "machine/page_table.h"
#include "machine/phys_mem.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <utility>
#include <vector>

namespace vmcheck {
namespace {

constexpr u64 kVa = VMALLOC_START_L4 + 0x123000;
constexpr u64 kUserVa = 0x0000000040000000ULL;
constexpr u64 kTopSpan = u64{1} << 39; // what one 4-level PML4 entry covers

struct Rig {
  explicit Rig(unsigned levels = 4)
      : mem(1, u64{8} << 20), alloc(mem, faults, diag), pt(mem, alloc, diag, levels) {
    EXPECT_TRUE(pt.init());
  }
  Pfn data_page() { return *alloc.alloc_pages_node(0, GFP_KERNEL, 0, PageOwner::Kernel); }

  DiagLog diag;
  FaultInjector faults;
  PhysMem mem;
  PageAllocator alloc;
  PageTables pt;
};

TEST(PageTables, map_then_walk_finds_the_leaf_and_clear_removes_it) {
  Rig r;
  const Pfn pfn = r.data_page();
  ASSERT_EQ(r.pt.map_page(r.pt.kernel_root(), kVa, pfn, PAGE_KERNEL), 0);
  PteRef ref = r.pt.walk(r.pt.kernel_root(), kVa + 0x10);
  EXPECT_TRUE(ref.present());
  EXPECT_EQ(ref.pfn(), pfn);
  EXPECT_EQ(ref.level, 1u);
  EXPECT_EQ(ref.value & ~PTE_PFN_MASK, PAGE_KERNEL);
  EXPECT_FALSE(r.pt.walk(r.pt.kernel_root(), kVa + PAGE_SIZE).present());

  EXPECT_EQ(r.pt.clear(r.pt.kernel_root(), kVa), ref.value);
  EXPECT_FALSE(r.pt.walk(r.pt.kernel_root(), kVa).present());
  EXPECT_EQ(r.pt.clear(r.pt.kernel_root(), kVa), 0u);
  EXPECT_EQ(r.pt.check(), "");
}

TEST(PageTables, mapping_over_a_present_pte_warns_and_returns_ebusy) {
  Rig r;
  const Pfn a = r.data_page(), b = r.data_page();
  ASSERT_EQ(r.pt.map_page(r.pt.kernel_root(), kVa, a, PAGE_KERNEL), 0);
  const auto mark = r.diag.size();
  EXPECT_EQ(r.pt.map_page(r.pt.kernel_root(), kVa, b, PAGE_KERNEL), -EBUSY);
  auto warns = r.diag.since(mark);
  ASSERT_EQ(warns.size(), 1u);
  EXPECT_EQ(warns[0].kind, DiagKind::Warn);
  EXPECT_EQ(warns[0].function, "map_page");
  EXPECT_EQ(warns[0].reason, "PTE already present");
  EXPECT_EQ(r.pt.walk(r.pt.kernel_root(), kVa).pfn(), a);
}

TEST(PageTables, four_level_mapping_builds_one_table_per_level) {
  Rig r;
  const u64 before = r.pt.table_pages();
  ASSERT_EQ(r.pt.map_page(r.pt.kernel_root(), kVa, r.data_page(), PAGE_KERNEL), 0);
  EXPECT_EQ(r.pt.table_pages(), before + 3); // PDPT, PD, PT under the PML4
}

TEST(PageTables, five_level_paging_adds_a_level_and_uses_bits_48_to_56) {
  Rig r(5);
  EXPECT_EQ(r.pt.levels(), 5u);
  const u64 before = r.pt.table_pages();
  const u64 va = 0x00ff000000000000ULL; // beyond 4-level's 47 bits, canonical with 57
  EXPECT_TRUE(r.pt.canonical(va));
  const Pfn a = r.data_page(), b = r.data_page();
  ASSERT_EQ(r.pt.map_page(r.pt.kernel_root(), va, a, PAGE_SHARED), 0);
  EXPECT_EQ(r.pt.table_pages(), before + 4);
  // Differs only in bit 48: the same leaf under 4-level indexing, another one here.
  const u64 other = va ^ (u64{1} << 48);
  ASSERT_EQ(r.pt.map_page(r.pt.kernel_root(), other, b, PAGE_SHARED), 0);
  EXPECT_EQ(r.pt.walk(r.pt.kernel_root(), va).pfn(), a);
  EXPECT_EQ(r.pt.walk(r.pt.kernel_root(), other).pfn(), b);
  ASSERT_EQ(r.pt.map_page(r.pt.kernel_root(), VMALLOC_START_L5, a, PAGE_KERNEL), 0);
  EXPECT_TRUE(r.pt.is_kernel_va(VMALLOC_START_L5));
  std::vector<u64> seen;
  r.pt.for_each_leaf(r.pt.kernel_root(), 0, ~u64{0},
                     [&](u64 v, const PteRef &) { seen.push_back(v); });
  EXPECT_EQ(seen, (std::vector<u64>{other, va, VMALLOC_START_L5}));
  EXPECT_EQ(r.pt.check(), "");
}

TEST(PageTables, non_canonical_addresses_are_detected_and_refused) {
  Rig r4(4), r5(5);
  const u64 hole = 0x0000800000000000ULL;
  EXPECT_FALSE(r4.pt.canonical(hole));
  EXPECT_TRUE(r5.pt.canonical(hole));
  EXPECT_FALSE(r5.pt.canonical(0x0100000000000000ULL));
  EXPECT_TRUE(r4.pt.canonical(0xffff800000000000ULL));
  EXPECT_FALSE(r4.pt.canonical(0xfff0800000000000ULL));
  EXPECT_TRUE(r4.pt.is_kernel_va(VMALLOC_START_L4));
  EXPECT_FALSE(r4.pt.is_kernel_va(kUserVa));

  const auto mark = r4.diag.size();
  EXPECT_EQ(r4.pt.map_page(r4.pt.kernel_root(), hole, r4.data_page(), PAGE_KERNEL), -EINVAL);
  EXPECT_EQ(r4.diag.since(mark).size(), 1u);
  EXPECT_FALSE(r4.pt.walk(r4.pt.kernel_root(), hole).present());
}

TEST(PageTables, table_allocation_failure_returns_enomem_and_maps_nothing) {
  for (unsigned n = 1; n <= 3; ++n) {
    Rig r;
    const Pfn pfn = r.data_page();
    r.faults.fail_nth(FailPoint::PageTable, n);
    EXPECT_EQ(r.pt.map_page(r.pt.kernel_root(), kVa, pfn, PAGE_KERNEL), -ENOMEM) << "n=" << n;
    EXPECT_FALSE(r.pt.walk(r.pt.kernel_root(), kVa).present());
    EXPECT_EQ(r.pt.table_pages(), n); // the root plus the n-1 tables built before the failure
    EXPECT_EQ(r.pt.check(), "");
    EXPECT_EQ(r.pt.map_page(r.pt.kernel_root(), kVa, pfn, PAGE_KERNEL), 0);
    EXPECT_EQ(r.pt.check(), "");
  }
}

TEST(PageTables, create_root_fails_cleanly_when_the_root_page_cannot_be_allocated) {
  Rig r;
  const u64 free_before = r.alloc.nr_free_total();
  r.faults.fail_nth(FailPoint::PageTable, 1);
  EXPECT_FALSE(r.pt.create_root().has_value());
  EXPECT_EQ(r.alloc.nr_free_total(), free_before);
  EXPECT_EQ(r.pt.check(), "");
}

TEST(PageTables, kernel_mapping_made_after_create_root_is_visible_from_the_user_root) {
  Rig r;
  auto user = r.pt.create_root();
  ASSERT_TRUE(user.has_value());
  const Pfn pfn = r.data_page();
  ASSERT_EQ(r.pt.map_page(r.pt.kernel_root(), kVa, pfn, PAGE_KERNEL), 0);
  EXPECT_EQ(r.pt.walk(*user, kVa).pfn(), pfn);
  // A kernel VA mapped through the user root lands in init_mm as well.
  const Pfn other = r.data_page();
  const u64 far = 0xffffe00000000000ULL;
  ASSERT_EQ(r.pt.map_page(*user, far, other, PAGE_KERNEL), 0);
  EXPECT_EQ(r.pt.walk(r.pt.kernel_root(), far).pfn(), other);
  EXPECT_EQ(r.pt.check(), "");
}

TEST(PageTables, user_mappings_are_private_to_their_root) {
  Rig r;
  auto a = r.pt.create_root(), b = r.pt.create_root();
  ASSERT_TRUE(a && b);
  ASSERT_EQ(r.pt.map_page(*a, kUserVa, r.data_page(), PAGE_SHARED), 0);
  EXPECT_TRUE(r.pt.walk(*a, kUserVa).present());
  EXPECT_FALSE(r.pt.walk(*b, kUserVa).present());
  EXPECT_FALSE(r.pt.walk(r.pt.kernel_root(), kUserVa).present());
}

TEST(PageTables, huge_mapping_covers_two_mebibytes_and_blocks_small_pages_under_it) {
  Rig r;
  auto block = r.alloc.alloc_pages_node(0, GFP_KERNEL, 9, PageOwner::Kernel);
  ASSERT_TRUE(block.has_value());
  const u64 va = VMALLOC_START_L4 + 4 * PMD_SIZE;
  ASSERT_EQ(r.pt.map_huge(r.pt.kernel_root(), va, *block, PAGE_KERNEL), 0);
  PteRef ref = r.pt.walk(r.pt.kernel_root(), va + 0x12345);
  EXPECT_TRUE(ref.present());
  EXPECT_EQ(ref.level, 2u);
  EXPECT_EQ(ref.page_size(), PMD_SIZE);
  EXPECT_EQ(ref.pfn(), *block);

  const auto mark = r.diag.size();
  EXPECT_EQ(r.pt.map_page(r.pt.kernel_root(), va + PAGE_SIZE, r.data_page(), PAGE_KERNEL), -EBUSY);
  EXPECT_EQ(r.diag.since(mark).size(), 1u);
  EXPECT_EQ(r.pt.map_huge(r.pt.kernel_root(), va + PAGE_SIZE, *block, PAGE_KERNEL), -EINVAL);
  EXPECT_EQ(r.pt.map_huge(r.pt.kernel_root(), va + PMD_SIZE, *block + 1, PAGE_KERNEL), -EINVAL);

  // A PTE table already under the PMD makes the huge mapping impossible.
  ASSERT_EQ(r.pt.map_page(r.pt.kernel_root(), va + PMD_SIZE, r.data_page(), PAGE_KERNEL), 0);
  EXPECT_EQ(r.pt.map_huge(r.pt.kernel_root(), va + PMD_SIZE, *block, PAGE_KERNEL), -EBUSY);

  EXPECT_EQ(r.pt.clear(r.pt.kernel_root(), va + 0x5000), ref.value);
  EXPECT_FALSE(r.pt.walk(r.pt.kernel_root(), va).present());
  EXPECT_EQ(r.pt.check(), "");
}

TEST(PageTables, for_each_leaf_visits_present_leaves_in_address_order_within_the_range) {
  Rig r;
  auto user = r.pt.create_root();
  ASSERT_TRUE(user.has_value());
  const std::vector<u64> vas = {
      VMALLOC_END_L4 & PAGE_MASK, kVa + 0x40000000, kVa,
      kUserVa + PAGE_SIZE,        kUserVa,          0xffff888000000000ULL};
  for (u64 va : vas)
    ASSERT_EQ(r.pt.map_page(*user, va, r.data_page(), PAGE_KERNEL), 0);

  std::vector<u64> seen;
  r.pt.for_each_leaf(*user, 0, ~u64{0}, [&](u64 va, const PteRef &ref) {
    EXPECT_TRUE(ref.present());
    seen.push_back(va);
  });
  EXPECT_EQ(seen, (std::vector<u64>{kUserVa, kUserVa + PAGE_SIZE, 0xffff888000000000ULL, kVa,
                                    kVa + 0x40000000, VMALLOC_END_L4 & PAGE_MASK}));

  seen.clear();
  r.pt.for_each_leaf(*user, VMALLOC_START_L4, VMALLOC_END_L4 + 1,
                     [&](u64 va, const PteRef &) { seen.push_back(va); });
  EXPECT_EQ(seen, (std::vector<u64>{kVa, kVa + 0x40000000, VMALLOC_END_L4 & PAGE_MASK}));

  seen.clear();
  r.pt.for_each_leaf(*user, kVa + PAGE_SIZE, kVa + 0x40000000,
                     [&](u64 va, const PteRef &) { seen.push_back(va); });
  EXPECT_TRUE(seen.empty());
}

TEST(PageTables, for_each_leaf_callback_may_clear_the_leaves_it_visits) {
  Rig r;
  for (u64 i = 0; i < 8; ++i)
    ASSERT_EQ(r.pt.map_page(r.pt.kernel_root(), kVa + i * PAGE_SIZE, r.data_page(), PAGE_KERNEL),
              0);
  unsigned n = 0;
  r.pt.for_each_leaf(r.pt.kernel_root(), kVa, kVa + 8 * PAGE_SIZE, [&](u64 va, const PteRef &) {
    r.pt.clear(r.pt.kernel_root(), va);
    ++n;
  });
  EXPECT_EQ(n, 8u);
  r.pt.for_each_leaf(r.pt.kernel_root(), kVa, kVa + 8 * PAGE_SIZE,
                     [&](u64, const PteRef &) { ADD_FAILURE() << "leaf left behind"; });
}

TEST(PageTables, free_empty_tables_returns_table_pages_to_the_allocator) {
  Rig r;
  auto user = r.pt.create_root();
  ASSERT_TRUE(user.has_value());
  const Pfn pfn = r.data_page();
  const u64 free_before = r.alloc.nr_free_total();
  const u64 tables_before = r.pt.table_pages();
  ASSERT_EQ(r.pt.map_page(*user, kUserVa, pfn, PAGE_SHARED), 0);
  ASSERT_EQ(r.pt.map_page(*user, kUserVa + kTopSpan, pfn, PAGE_SHARED), 0);
  EXPECT_LT(r.alloc.nr_free_total(), free_before);

  // Still mapped: nothing may be freed.
  r.pt.free_empty_tables(*user, 0, USER_TOP_L4);
  EXPECT_TRUE(r.pt.walk(*user, kUserVa).present());
  EXPECT_EQ(r.pt.check(), "");

  r.pt.clear(*user, kUserVa);
  r.pt.clear(*user, kUserVa + kTopSpan);
  // A range that does not wholly contain the tables frees none of them.
  const u64 partial_free = r.alloc.nr_free_total();
  r.pt.free_empty_tables(*user, kUserVa, kUserVa + PAGE_SIZE);
  EXPECT_EQ(r.alloc.nr_free_total(), partial_free);

  r.pt.free_empty_tables(*user, 0, USER_TOP_L4);
  EXPECT_EQ(r.alloc.nr_free_total(), free_before);
  EXPECT_EQ(r.pt.table_pages(), tables_before);
  EXPECT_EQ(r.pt.check(), "");
}

TEST(PageTables, destroy_root_frees_its_user_tables_and_the_root) {
  Rig r;
  const Pfn pfn = r.data_page();
  const u64 free_before = r.alloc.nr_free_total();
  const u64 tables_before = r.pt.table_pages();
  auto user = r.pt.create_root();
  ASSERT_TRUE(user.has_value());
  ASSERT_EQ(r.pt.map_page(*user, kUserVa, pfn, PAGE_SHARED), 0);
  r.pt.clear(*user, kUserVa);
  const auto mark = r.diag.size();
  r.pt.destroy_root(*user);
  EXPECT_EQ(r.diag.since(mark).size(), 0u);
  EXPECT_EQ(r.alloc.nr_free_total(), free_before);
  EXPECT_EQ(r.pt.table_pages(), tables_before);
  EXPECT_EQ(r.pt.check(), "");
}

TEST(PageTables, destroying_a_root_that_still_maps_user_pages_warns_and_frees_its_tables) {
  Rig r;
  const u64 tables_before = r.pt.table_pages();
  auto user = r.pt.create_root();
  ASSERT_TRUE(user.has_value());
  ASSERT_EQ(r.pt.map_page(*user, kUserVa, r.data_page(), PAGE_SHARED), 0);
  const auto mark = r.diag.size();
  r.pt.destroy_root(*user);
  auto warns = r.diag.since(mark);
  ASSERT_EQ(warns.size(), 1u);
  EXPECT_EQ(warns[0].function, "destroy_root");
  EXPECT_EQ(r.pt.table_pages(), tables_before);
  EXPECT_EQ(r.pt.check(), "");
}

TEST(PageTables, check_reports_an_entry_pointing_outside_memory) {
  Rig r;
  ASSERT_EQ(r.pt.map_page(r.pt.kernel_root(), kVa, r.data_page(), PAGE_KERNEL), 0);
  const PteRef ref = r.pt.walk(r.pt.kernel_root(), kVa);
  r.pt.set_entry(ref.slot_pa, (r.mem.max_pfn() << PAGE_SHIFT) | PAGE_KERNEL);
  EXPECT_NE(r.pt.check().find("outside memory"), std::string::npos) << r.pt.check();
}

// check() skips the parts of a table that PhysMem says are zero: an entry
// written straight into physical memory, into a part of a table that was
// empty when the last check passed, must still be seen.
TEST(PageTables, check_sees_an_entry_written_straight_into_physical_memory_after_a_passing_check) {
  Rig r;
  ASSERT_EQ(r.pt.map_page(r.pt.kernel_root(), kVa, r.data_page(), PAGE_KERNEL), 0);
  ASSERT_EQ(r.pt.check(), "");
  const u64 table_pa = r.pt.walk(r.pt.kernel_root(), kVa).slot_pa & ~(PAGE_SIZE - 1);
  const u64 outside = (r.mem.max_pfn() << PAGE_SHIFT) | PAGE_KERNEL;
  r.mem.write_u64(table_pa + 400 * 8, outside);
  EXPECT_NE(r.pt.check().find("entry 400 of table"), std::string::npos) << r.pt.check();
  r.mem.write_u64(table_pa + 400 * 8, 0);
  ASSERT_EQ(r.pt.check(), "");
  std::uint8_t bytes[8];
  std::memcpy(bytes, &outside, sizeof bytes);
  r.mem.write(table_pa + 200 * 8, bytes);
  EXPECT_NE(r.pt.check().find("entry 200 of table"), std::string::npos) << r.pt.check();
}

TEST(PageTables, check_reports_a_pte_table_whose_page_record_no_longer_says_page_table) {
  Rig r;
  ASSERT_EQ(r.pt.map_page(r.pt.kernel_root(), kVa, r.data_page(), PAGE_KERNEL), 0);
  ASSERT_EQ(r.pt.check(), "");
  const Pfn table = r.pt.walk(r.pt.kernel_root(), kVa).slot_pa >> PAGE_SHIFT;
  r.mem.page(table).owner = PageOwner::Kernel;
  char pfn[24];
  std::snprintf(pfn, sizeof pfn, "0x%llx", static_cast<unsigned long long>(table));
  EXPECT_EQ(r.pt.check(), "table pfn " + std::string(pfn) + " has owner kernel refcount 1");
}

// A PTE table whose frame was filled with one byte has no buffer to sweep:
// check() judges it the slow way, and counts it once.
TEST(PageTables, check_judges_a_pte_table_filled_with_one_byte_by_its_entries) {
  Rig r;
  ASSERT_EQ(r.pt.map_page(r.pt.kernel_root(), kVa, r.data_page(), PAGE_KERNEL), 0);
  const Pfn table = r.pt.walk(r.pt.kernel_root(), kVa).slot_pa >> PAGE_SHIFT;
  r.mem.fill_frame(table, 0x5a); // entries without _PAGE_PRESENT
  EXPECT_EQ(r.pt.check(), "");
  r.mem.fill_frame(table, 0xff); // present entries pointing past the end of memory
  EXPECT_NE(r.pt.check().find("level 1 entry 0 of table"), std::string::npos) << r.pt.check();
}

TEST(PageTables, check_reports_a_user_root_whose_kernel_half_diverged) {
  Rig r;
  auto user = r.pt.create_root();
  ASSERT_TRUE(user.has_value());
  ASSERT_EQ(r.pt.map_page(r.pt.kernel_root(), kVa, r.data_page(), PAGE_KERNEL), 0);
  r.pt.set_entry((*user << PAGE_SHIFT) + 8 * ((kVa >> 39) & 511), 0);
  EXPECT_NE(r.pt.check().find("kernel entry"), std::string::npos) << r.pt.check();
}

TEST(PageTables, state_hash_follows_the_mappings) {
  Rig a, b;
  auto hash = [](const PageTables &pt) {
    StateHasher h;
    pt.hash_into(h);
    return h.value();
  };
  EXPECT_EQ(hash(a.pt), hash(b.pt));
  const Pfn pa = a.data_page(), pb = b.data_page();
  ASSERT_EQ(pa, pb);
  ASSERT_EQ(a.pt.map_page(a.pt.kernel_root(), kVa, pa, PAGE_KERNEL), 0);
  EXPECT_NE(hash(a.pt), hash(b.pt));
  ASSERT_EQ(b.pt.map_page(b.pt.kernel_root(), kVa, pb, PAGE_KERNEL), 0);
  EXPECT_EQ(hash(a.pt), hash(b.pt));
  ASSERT_EQ(b.pt.map_page(b.pt.kernel_root(), kVa + PAGE_SIZE, pb, PAGE_KERNEL), 0);
  EXPECT_NE(hash(a.pt), hash(b.pt));
}

} // namespace
} // namespace vmcheck
