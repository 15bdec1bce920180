#include "vmalloc/vmlist.h"

#include <gtest/gtest.h>

#include <vector>

namespace vmcheck {
namespace {

constexpr u64 P = PAGE_SIZE;
constexpr u64 S = VMALLOC_START_L4;
constexpr u64 E = S + 64 * P;

u64 hash_of(const VmList &l) {
  StateHasher h;
  l.hash_into(h);
  return h.value();
}

TEST(VmList, first_fit_places_areas_back_to_back_from_start) {
  VmList l;
  EXPECT_EQ(l.alloc(2 * P, 1, S, E), S);
  EXPECT_EQ(l.alloc(3 * P, 1, S, E), S + 2 * P);
  EXPECT_EQ(l.alloc(P, 1, S, E), S + 5 * P);
  EXPECT_EQ(l.areas(), (std::vector<VmListArea>{{S, 2 * P}, {S + 2 * P, 3 * P}, {S + 5 * P, P}}));
  EXPECT_EQ(l.check(), "");
}

TEST(VmList, a_freed_hole_is_reused_by_the_next_fitting_allocation) {
  VmList l;
  ASSERT_EQ(l.alloc(2 * P, 1, S, E), S);
  ASSERT_EQ(l.alloc(2 * P, 1, S, E), S + 2 * P);
  ASSERT_EQ(l.alloc(2 * P, 1, S, E), S + 4 * P);
  ASSERT_TRUE(l.remove(S + 2 * P));
  EXPECT_EQ(l.alloc(P, 1, S, E), S + 2 * P);
  EXPECT_EQ(l.alloc(P, 1, S, E), S + 3 * P);
  EXPECT_EQ(l.check(), "");
}

TEST(VmList, a_hole_too_small_is_skipped) {
  VmList l;
  ASSERT_EQ(l.alloc(2 * P, 1, S, E), S);
  ASSERT_EQ(l.alloc(2 * P, 1, S, E), S + 2 * P);
  ASSERT_EQ(l.alloc(2 * P, 1, S, E), S + 4 * P);
  ASSERT_TRUE(l.remove(S + 2 * P));
  EXPECT_EQ(l.alloc(3 * P, 1, S, E), S + 6 * P);
  EXPECT_EQ(l.check(), "");
}

TEST(VmList, alignment_rounds_every_candidate_up) {
  VmList l;
  EXPECT_EQ(l.alloc(P, 4 * P, S + P, E), S + 4 * P); // start itself is rounded up
  EXPECT_EQ(l.alloc(P, 1, S, E), S);
  EXPECT_EQ(l.alloc(P, 4 * P, S, E), S + 8 * P); // after the area at 4P
  EXPECT_EQ(l.alloc(2 * P, 2 * P, S, E), S + 2 * P);
  EXPECT_EQ(l.check(), "");
}

TEST(VmList, guard_pages_come_from_the_sizes_the_caller_passes) {
  VmList l;
  const u64 with_guard = 2 * P + P;
  ASSERT_EQ(l.alloc(with_guard, 1, S, E), S);
  ASSERT_EQ(l.alloc(with_guard, 1, S, E), S + 3 * P); // one unmapped page after [S, S + 2P)
  ASSERT_TRUE(l.remove(S));
  EXPECT_EQ(l.alloc(with_guard, 1, S, E), S);
  EXPECT_EQ(l.find(S + 3 * P), (VmListArea{S + 3 * P, with_guard}));
}

TEST(VmList, allocation_fails_when_no_room_is_left_before_end) {
  VmList l;
  const u64 end = S + 8 * P;
  ASSERT_EQ(l.alloc(4 * P, 1, S, end), S);
  EXPECT_EQ(l.alloc(4 * P, 1, S, end), S + 4 * P); // ends exactly at end
  const u64 before = hash_of(l);
  EXPECT_EQ(l.alloc(P, 1, S, end), std::nullopt);
  EXPECT_EQ(hash_of(l), before);
  EXPECT_EQ(l.size(), 2u);
}

TEST(VmList, seed_walk_does_not_compare_end_when_it_runs_off_the_list) {
  // Seed 003 checks end only after stepping over an area at or above the
  // candidate, so an empty list, or one whose areas all start below the
  // candidate, yields an area reaching past end.
  VmList empty;
  EXPECT_EQ(empty.alloc(16 * P, 1, S, S + 8 * P), S);

  VmList l;
  ASSERT_EQ(l.alloc(4 * P, 1, S, E), S);
  EXPECT_EQ(l.alloc(P, 4 * P, S + P, S + 2 * P), S + 4 * P);
}

TEST(VmList, remove_matches_the_start_address_only) {
  VmList l;
  ASSERT_EQ(l.alloc(4 * P, 1, S, E), S);
  const u64 before = hash_of(l);
  EXPECT_FALSE(l.remove(S + P));
  EXPECT_FALSE(l.remove(S + 4 * P));
  EXPECT_EQ(hash_of(l), before);
  EXPECT_TRUE(l.remove(S));
  EXPECT_TRUE(l.empty());
  EXPECT_FALSE(l.remove(S));
  EXPECT_EQ(l.check(), "");
}

TEST(VmList, find_matches_the_start_address_only) {
  VmList l;
  ASSERT_EQ(l.alloc(4 * P, 1, S, E), S);
  EXPECT_EQ(l.find(S), (VmListArea{S, 4 * P}));
  EXPECT_EQ(l.find(S + P), std::nullopt);
}

TEST(VmList, bad_size_or_alignment_is_refused) {
  VmList l;
  EXPECT_EQ(l.alloc(0, 1, S, E), std::nullopt);
  EXPECT_EQ(l.alloc(P, 0, S, E), std::nullopt);
  EXPECT_EQ(l.alloc(P, 3, S, E), std::nullopt);
  EXPECT_TRUE(l.empty());
}

TEST(VmList, same_areas_hash_the_same_whatever_the_history) {
  VmList a;
  VmList b;
  ASSERT_EQ(a.alloc(P, 1, S, E), S);
  ASSERT_EQ(a.alloc(P, 1, S, E), S + P);
  ASSERT_EQ(b.alloc(P, 1, S + P, E), S + P);
  ASSERT_EQ(b.alloc(P, 1, S, E), S);
  EXPECT_EQ(hash_of(a), hash_of(b));
  ASSERT_TRUE(b.remove(S));
  EXPECT_NE(hash_of(a), hash_of(b));
}

TEST(VmList, clear_empties_the_list_and_check_stays_clean) {
  VmList l;
  for (int i = 0; i < 32; ++i)
    ASSERT_TRUE(l.alloc(P, 1, S, E).has_value());
  for (u64 i = 0; i < 32; i += 3)
    ASSERT_TRUE(l.remove(S + i * P));
  EXPECT_EQ(l.check(), "");
  l.clear();
  EXPECT_TRUE(l.empty());
  EXPECT_EQ(l.check(), "");
  EXPECT_EQ(l.alloc(P, 1, S, E), S);
}

} // namespace
} // namespace vmcheck
