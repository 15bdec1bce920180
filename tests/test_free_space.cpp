#include "vmalloc/free_space.h"

#include <gtest/gtest.h>

#include <vector>

namespace vmcheck {
namespace {

constexpr u64 P = PAGE_SIZE;
constexpr u64 kStart = VMALLOC_START_L4;
constexpr u64 kEnd = VMALLOC_END_L4 + 1; // exclusive

u64 hash_of(const FreeSpace &fs) {
  StateHasher h;
  fs.hash_into(h);
  return h.value();
}

std::vector<Range> ranges(std::initializer_list<Range> r) {
  return r;
}

// A 64-page free range, small enough to reason about page by page.
FreeSpace small_space(u64 base = kStart) {
  return FreeSpace(base, base + 64 * P);
}

TEST(FreeSpace, constructor_makes_one_block_covering_the_range) {
  FreeSpace fs(kStart, kEnd);
  EXPECT_EQ(fs.blocks(), ranges({{kStart, kEnd}}));
  EXPECT_EQ(fs.size(), 1u);
  EXPECT_EQ(fs.free_bytes(), kEnd - kStart);
  EXPECT_EQ(fs.check(), "");
}

TEST(FreeSpace, empty_or_inverted_constructor_range_gives_no_free_space) {
  EXPECT_TRUE(FreeSpace(kStart, kStart).empty());
  EXPECT_TRUE(FreeSpace(kEnd, kStart).empty());
  EXPECT_TRUE(FreeSpace().empty());
}

TEST(FreeSpace, reserve_of_a_whole_block_removes_it) {
  FreeSpace fs = small_space();
  ASSERT_TRUE(fs.reserve(kStart + 4 * P, 4 * P));
  ASSERT_TRUE(fs.reserve(kStart, 4 * P)); // full fit of [0, 4P)
  EXPECT_EQ(fs.blocks(), ranges({{kStart + 8 * P, kStart + 64 * P}}));
  EXPECT_EQ(fs.check(), "");
}

TEST(FreeSpace, reserve_at_the_left_edge_shrinks_the_block_from_below) {
  FreeSpace fs = small_space();
  ASSERT_TRUE(fs.reserve(kStart, 3 * P));
  EXPECT_EQ(fs.blocks(), ranges({{kStart + 3 * P, kStart + 64 * P}}));
  EXPECT_EQ(fs.free_bytes(), 61 * P);
  EXPECT_EQ(fs.check(), "");
}

TEST(FreeSpace, reserve_at_the_right_edge_shrinks_the_block_from_above) {
  FreeSpace fs = small_space();
  ASSERT_TRUE(fs.reserve(kStart + 60 * P, 4 * P));
  EXPECT_EQ(fs.blocks(), ranges({{kStart, kStart + 60 * P}}));
  EXPECT_EQ(fs.check(), "");
}

TEST(FreeSpace, reserve_in_the_middle_splits_the_block_in_two) {
  FreeSpace fs = small_space();
  ASSERT_TRUE(fs.reserve(kStart + 10 * P, 2 * P));
  EXPECT_EQ(fs.blocks(), ranges({{kStart, kStart + 10 * P}, {kStart + 12 * P, kStart + 64 * P}}));
  EXPECT_EQ(fs.free_bytes(), 62 * P);
  EXPECT_EQ(fs.check(), "");
}

TEST(FreeSpace, reserve_not_inside_one_free_block_fails_and_changes_nothing) {
  FreeSpace fs = small_space();
  ASSERT_TRUE(fs.reserve(kStart + 10 * P, 2 * P));
  const u64 before = hash_of(fs);
  EXPECT_FALSE(fs.reserve(kStart + 9 * P, 2 * P));  // spans into busy space
  EXPECT_FALSE(fs.reserve(kStart + 8 * P, 8 * P));  // spans two blocks and the busy gap
  EXPECT_FALSE(fs.reserve(kStart + 10 * P, P));     // wholly busy
  EXPECT_FALSE(fs.reserve(kStart + 63 * P, 2 * P)); // runs past the range
  EXPECT_FALSE(fs.reserve(kStart - P, P));          // below the range
  EXPECT_FALSE(fs.reserve(kStart, 0));
  EXPECT_FALSE(fs.reserve(kStart, ~u64{0})); // wraps
  EXPECT_EQ(hash_of(fs), before);
  EXPECT_EQ(fs.free_bytes(), 62 * P);
  EXPECT_EQ(fs.check(), "");
}

TEST(FreeSpace, release_between_busy_neighbours_adds_a_new_block) {
  FreeSpace fs = small_space();
  ASSERT_TRUE(fs.reserve(kStart + 4 * P, 8 * P));
  ASSERT_TRUE(fs.release(kStart + 6 * P, 2 * P));
  EXPECT_EQ(fs.blocks(), ranges({{kStart, kStart + 4 * P},
                                 {kStart + 6 * P, kStart + 8 * P},
                                 {kStart + 12 * P, kStart + 64 * P}}));
  EXPECT_EQ(fs.check(), "");
}

TEST(FreeSpace, release_merges_with_the_left_neighbour) {
  FreeSpace fs = small_space();
  ASSERT_TRUE(fs.reserve(kStart + 4 * P, 8 * P));
  ASSERT_TRUE(fs.release(kStart + 4 * P, 2 * P));
  EXPECT_EQ(fs.blocks(), ranges({{kStart, kStart + 6 * P}, {kStart + 12 * P, kStart + 64 * P}}));
  EXPECT_EQ(fs.check(), "");
}

TEST(FreeSpace, release_merges_with_the_right_neighbour) {
  FreeSpace fs = small_space();
  ASSERT_TRUE(fs.reserve(kStart + 4 * P, 8 * P));
  ASSERT_TRUE(fs.release(kStart + 10 * P, 2 * P));
  EXPECT_EQ(fs.blocks(), ranges({{kStart, kStart + 4 * P}, {kStart + 10 * P, kStart + 64 * P}}));
  EXPECT_EQ(fs.check(), "");
}

TEST(FreeSpace, release_merges_with_both_neighbours_into_one_block) {
  FreeSpace fs = small_space();
  ASSERT_TRUE(fs.reserve(kStart + 4 * P, 8 * P));
  ASSERT_TRUE(fs.release(kStart + 4 * P, 8 * P));
  EXPECT_EQ(fs.blocks(), ranges({{kStart, kStart + 64 * P}}));
  EXPECT_EQ(fs.free_bytes(), 64 * P);
  EXPECT_EQ(fs.check(), "");
}

TEST(FreeSpace, release_overlapping_free_space_fails_and_changes_nothing) {
  FreeSpace fs = small_space();
  ASSERT_TRUE(fs.reserve(kStart + 4 * P, 8 * P));
  const u64 before = hash_of(fs);
  EXPECT_FALSE(fs.release(kStart + 3 * P, 2 * P));  // overlaps the left block's tail
  EXPECT_FALSE(fs.release(kStart + 11 * P, 2 * P)); // overlaps the right block's head
  EXPECT_FALSE(fs.release(kStart + 2 * P, 12 * P)); // covers the whole busy gap and more
  EXPECT_FALSE(fs.release(kStart, P));              // already free
  EXPECT_FALSE(fs.release(kStart + 20 * P, P));     // inside a free block
  EXPECT_FALSE(fs.release(kStart + 5 * P, 0));
  EXPECT_FALSE(fs.release(~u64{0} - P, 2 * P)); // wraps
  EXPECT_EQ(hash_of(fs), before);
  EXPECT_EQ(fs.check(), "");
}

TEST(FreeSpace, find_lowest_skips_blocks_that_are_too_small) {
  FreeSpace fs = small_space();
  ASSERT_TRUE(fs.reserve(kStart + 2 * P, 2 * P));  // free [0, 2P)
  ASSERT_TRUE(fs.reserve(kStart + 7 * P, 10 * P)); // free [4P, 7P), [17P, 64P)
  EXPECT_EQ(fs.find_lowest(P, P, kStart, kStart + 64 * P), kStart);
  EXPECT_EQ(fs.find_lowest(3 * P, P, kStart, kStart + 64 * P), kStart + 4 * P);
  EXPECT_EQ(fs.find_lowest(4 * P, P, kStart, kStart + 64 * P), kStart + 17 * P);
  EXPECT_EQ(fs.find_lowest(48 * P, P, kStart, kStart + 64 * P), std::nullopt);
}

TEST(FreeSpace, find_lowest_returns_an_exact_aligned_fit_that_the_padded_kernel_search_skips) {
  // A block exactly size bytes long at an aligned address: searching for
  // size + align - 1 bytes (the 5.x padding) would pass it over for the big
  // block above, but it is the true lowest aligned fit.
  const u64 align = 16 * P;
  const u64 base = kStart; // 2 MiB aligned, so 64K aligned
  FreeSpace fs(base, base + 256 * P);
  ASSERT_TRUE(fs.reserve(base, 16 * P));
  ASSERT_TRUE(fs.reserve(base + 20 * P, 44 * P)); // free [16P, 20P): 4 pages at a 64K boundary
  EXPECT_EQ(fs.find_lowest(4 * P, align, base, base + 256 * P), base + 16 * P);
  EXPECT_EQ(fs.find_lowest(4 * P + align - 1, P, base, base + 256 * P), base + 64 * P);
}

TEST(FreeSpace, find_lowest_backtracks_past_a_big_enough_block_that_alignment_spoils) {
  const u64 base = kStart;
  FreeSpace fs(base, base + 256 * P);
  ASSERT_TRUE(fs.reserve(base, P));
  ASSERT_TRUE(fs.reserve(base + 9 * P, 23 * P)); // free [P, 9P): 8 pages, no 8P-aligned 8 pages
  ASSERT_TRUE(fs.reserve(base + 33 * P, 7 * P)); // free [32P, 33P)
  EXPECT_EQ(fs.find_lowest(8 * P, 8 * P, base, base + 256 * P), base + 40 * P);
  EXPECT_EQ(fs.find_lowest(8 * P, P, base, base + 256 * P), base + P);
}

TEST(FreeSpace, find_lowest_honours_the_vstart_vend_window) {
  FreeSpace fs = small_space();
  const u64 end = kStart + 64 * P;
  EXPECT_EQ(fs.find_lowest(2 * P, P, kStart + 5 * P, end), kStart + 5 * P);
  EXPECT_EQ(fs.find_lowest(2 * P, 4 * P, kStart + 5 * P, end), kStart + 8 * P);
  EXPECT_EQ(fs.find_lowest(2 * P, P, kStart + 5 * P + 1, end), kStart + 6 * P);
  EXPECT_EQ(fs.find_lowest(2 * P, 1, kStart + 5 * P + 1, end), kStart + 5 * P + 1);
  // vend is exclusive: a fit ending exactly at vend is allowed, one byte more is not.
  EXPECT_EQ(fs.find_lowest(4 * P, P, kStart + 60 * P, end), kStart + 60 * P);
  EXPECT_EQ(fs.find_lowest(4 * P, P, kStart + 60 * P, end - 1), std::nullopt);
  EXPECT_EQ(fs.find_lowest(2 * P, P, kStart + 10 * P, kStart + 11 * P), std::nullopt);
  EXPECT_EQ(fs.find_lowest(P, P, kStart + 10 * P, kStart + 10 * P), std::nullopt);
  EXPECT_EQ(fs.find_lowest(P, P, end, end + 64 * P), std::nullopt);
  // A window reaching below the free space starts at the first free byte.
  EXPECT_EQ(fs.find_lowest(P, P, 0, ~u64{0}), kStart);
}

TEST(FreeSpace, find_lowest_rejects_zero_size_and_non_power_of_two_alignment) {
  FreeSpace fs = small_space();
  EXPECT_EQ(fs.find_lowest(0, P, kStart, kEnd), std::nullopt);
  EXPECT_EQ(fs.find_lowest(P, 0, kStart, kEnd), std::nullopt);
  EXPECT_EQ(fs.find_lowest(P, 3 * P, kStart, kEnd), std::nullopt);
}

TEST(FreeSpace, alignment_works_at_the_top_of_the_vmalloc_range) {
  FreeSpace fs(kStart, kEnd);
  const u64 align = u64{1} << 45;
  const u64 first = (kStart + align - 1) & ~(align - 1);
  EXPECT_EQ(fs.find_lowest(P, align, kStart, kEnd), first);
  // Only the last page left free: it is found, and nothing bigger is.
  ASSERT_TRUE(fs.reserve(kStart, kEnd - kStart - P));
  EXPECT_EQ(fs.find_lowest(P, P, kStart, kEnd), kEnd - P);
  EXPECT_EQ(fs.find_lowest(2 * P, P, kStart, kEnd), std::nullopt);
  EXPECT_EQ(fs.find_lowest(P, 2 * P, kStart, kEnd), std::nullopt);
  // VMALLOC_END inclusive as vend leaves the last page unusable, as in the kernel.
  EXPECT_EQ(fs.find_lowest(P, P, kStart, VMALLOC_END_L4), std::nullopt);
  ASSERT_TRUE(fs.reserve(kEnd - P, P));
  EXPECT_TRUE(fs.empty());
  ASSERT_TRUE(fs.release(kStart, kEnd - kStart));
  EXPECT_EQ(fs.blocks(), ranges({{kStart, kEnd}}));
  EXPECT_EQ(fs.check(), "");
}

TEST(FreeSpace, search_near_the_top_of_the_64_bit_space_does_not_overflow) {
  const u64 top = ~u64{0};         // exclusive end: the last byte itself is never free
  FreeSpace fs(top - 16 * P, top); // [2^64 - 16P - 1, 2^64 - 1), not page aligned
  const u64 last_pages = top - 16 * P + 1;
  EXPECT_EQ(fs.find_lowest(P, P, 0, top), last_pages);
  EXPECT_EQ(fs.find_lowest(16 * P - 1, P, 0, top), last_pages);
  EXPECT_EQ(fs.find_lowest(16 * P, 1, 0, top), top - 16 * P);
  EXPECT_EQ(fs.find_lowest(16 * P, P, 0, top), std::nullopt);
  EXPECT_EQ(fs.find_lowest(P, u64{1} << 63, 0, top), std::nullopt);
  EXPECT_EQ(fs.find_lowest(P, u64{1} << 20, top - P, top), std::nullopt);
  EXPECT_EQ(fs.find_lowest(top, 1, 0, top), std::nullopt);
  EXPECT_TRUE(fs.reserve(top - P, P));
  EXPECT_TRUE(fs.release(top - P, P));
  EXPECT_FALSE(fs.release(top, 1)); // [2^64 - 1, 2^64) has no exclusive end
  EXPECT_EQ(fs.blocks(), ranges({{top - 16 * P, top}}));
  EXPECT_EQ(fs.check(), "");
}

TEST(FreeSpace, top_down_helpers_find_blocks_by_containment_and_position) {
  FreeSpace fs = small_space();
  ASSERT_TRUE(fs.reserve(kStart + 4 * P, 4 * P));   // free [0, 4P), [8P, 64P)
  ASSERT_TRUE(fs.reserve(kStart + 16 * P, 48 * P)); // free [0, 4P), [8P, 16P)
  const Range low{kStart, kStart + 4 * P};
  const Range high{kStart + 8 * P, kStart + 16 * P};

  EXPECT_EQ(fs.find_block_containing(kStart), low);
  EXPECT_EQ(fs.find_block_containing(kStart + 4 * P - 1), low);
  EXPECT_EQ(fs.find_block_containing(kStart + 4 * P), std::nullopt);
  EXPECT_EQ(fs.find_block_containing(kStart + 15 * P), high);
  EXPECT_EQ(fs.find_block_containing(kStart + 16 * P), std::nullopt);

  EXPECT_EQ(fs.find_highest_block_below(kEnd), high);
  EXPECT_EQ(fs.find_highest_block_below(kStart + 8 * P + 1), high);
  EXPECT_EQ(fs.find_highest_block_below(kStart + 8 * P), low);
  EXPECT_EQ(fs.find_highest_block_below(kStart + 1), low);
  EXPECT_EQ(fs.find_highest_block_below(kStart), std::nullopt);
  EXPECT_EQ(fs.find_highest_block_below(0), std::nullopt);

  EXPECT_EQ(fs.find_lowest_block_from(0), low);
  EXPECT_EQ(fs.find_lowest_block_from(kStart + 3 * P), low);
  EXPECT_EQ(fs.find_lowest_block_from(kStart + 4 * P), high);
  EXPECT_EQ(fs.find_lowest_block_from(kStart + 10 * P), high);
  EXPECT_EQ(fs.find_lowest_block_from(kStart + 16 * P), std::nullopt);
}

TEST(FreeSpace, for_each_visits_blocks_in_address_order) {
  FreeSpace fs = small_space();
  for (int i = 62; i >= 2; i -= 4)
    ASSERT_TRUE(fs.reserve(kStart + static_cast<u64>(i) * P, P));
  u64 last_end = 0;
  std::size_t n = 0;
  fs.for_each([&](const Range &r) {
    EXPECT_LT(last_end, r.start);
    last_end = r.end;
    ++n;
  });
  EXPECT_EQ(n, fs.size());
  EXPECT_EQ(n, 17u);
}

TEST(FreeSpace, clear_drops_all_free_space_and_reset_makes_one_block) {
  FreeSpace fs = small_space();
  ASSERT_TRUE(fs.reserve(kStart + 10 * P, P));
  fs.clear();
  EXPECT_TRUE(fs.empty());
  EXPECT_EQ(fs.free_bytes(), 0u);
  EXPECT_EQ(fs.find_lowest(P, P, 0, ~u64{0}), std::nullopt);
  EXPECT_EQ(fs.check(), "");
  fs.reset(kStart, kEnd);
  EXPECT_EQ(fs.blocks(), ranges({{kStart, kEnd}}));
  EXPECT_EQ(fs.check(), "");
}

TEST(FreeSpace, same_free_blocks_hash_the_same_whatever_the_history) {
  FreeSpace a = small_space();
  FreeSpace b = small_space();
  ASSERT_TRUE(a.reserve(kStart + 8 * P, 8 * P));
  ASSERT_TRUE(b.reserve(kStart + 8 * P, 16 * P));
  ASSERT_TRUE(b.release(kStart + 16 * P, 8 * P));
  EXPECT_EQ(hash_of(a), hash_of(b));
  ASSERT_TRUE(b.reserve(kStart, P));
  EXPECT_NE(hash_of(a), hash_of(b));
}

TEST(FreeSpace, check_finds_nothing_wrong_through_a_long_fragmenting_workload) {
  const u64 n = 2048;
  FreeSpace fs(kStart, kStart + n * P);
  // Every other page busy, then every fourth freed again in a scattered order.
  for (u64 i = 1; i < n; i += 2) {
    ASSERT_TRUE(fs.reserve(kStart + i * P, P));
    ASSERT_EQ(fs.check(), "") << "after reserving page " << i;
  }
  EXPECT_EQ(fs.size(), n / 2);
  for (u64 k = 0; k < n / 2; ++k) {
    const u64 i = ((k * 769) % (n / 2)) * 2 + 1;
    if (i % 4 != 1)
      continue;
    ASSERT_TRUE(fs.release(kStart + i * P, P));
    ASSERT_EQ(fs.check(), "") << "after releasing page " << i;
  }
  EXPECT_EQ(fs.size(), n / 4);
  EXPECT_EQ(fs.find_lowest(3 * P, P, kStart, kStart + n * P), kStart);
  EXPECT_EQ(fs.find_lowest(3 * P, 4 * P, kStart + 1, kStart + n * P), kStart + 4 * P);
  EXPECT_EQ(fs.find_lowest(4 * P, P, kStart, kStart + n * P), std::nullopt);
}

} // namespace
} // namespace vmcheck
