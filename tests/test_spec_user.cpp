// The spec's model of user VMAs (spec/user.h) against expectations worked
// out by hand from the harness's mm contract and mm/memory.c (never from
// the engine).
#include "spec/user.h"

#include <gtest/gtest.h>

#include <vector>

namespace vmcheck::spec {
namespace {

constexpr u64 P = PAGE_SIZE;
constexpr u64 kRw = VM_READ | VM_WRITE;
constexpr u64 kMay = VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC;

struct UserSpec : ::testing::Test {
  VmallocSpec machine;
  UserSpace user{machine, USER_TOP_L4};

  const std::vector<UserVma> &vmas(u64 mm) { return user.mms().at(mm); }
};

TEST_F(UserSpec, mmap_without_an_address_takes_the_lowest_gap_from_mmap_min_addr) {
  const u64 mm = user.mm_create();
  ASSERT_EQ(mm, 1u);
  ASSERT_GT(user.mmap(mm, kMmapMinAddr + 2 * P, P, VM_READ), 0);
  // One page fits below the fixed mapping, two do not.
  const std::int64_t one = user.mmap(mm, 0, P, VM_READ | VM_EXEC);
  ASSERT_GT(one, 0);
  EXPECT_EQ(user.vma_by_id(static_cast<u64>(one))->start, kMmapMinAddr);
  const std::int64_t two = user.mmap(mm, 0, 2 * P, VM_READ | VM_EXEC);
  ASSERT_GT(two, 0);
  EXPECT_EQ(user.vma_by_id(static_cast<u64>(two))->start, kMmapMinAddr + 3 * P);
}

TEST_F(UserSpec, adjacent_anonymous_mappings_merge_into_the_lower_one) {
  const u64 mm = user.mm_create();
  const std::int64_t lo = user.mmap(mm, 0x400000, P, kRw);
  const std::int64_t hi = user.mmap(mm, 0x401000, P, kRw);
  EXPECT_EQ(hi, lo);
  ASSERT_EQ(vmas(mm).size(), 1u);
  EXPECT_EQ(vmas(mm)[0].end, 0x402000u);
  EXPECT_EQ(vmas(mm)[0].flags, kRw | kMay);
  // Different protection: no merge.
  EXPECT_NE(user.mmap(mm, 0x402000, P, VM_READ), lo);
  EXPECT_EQ(vmas(mm).size(), 2u);
}

TEST_F(UserSpec, file_mappings_merge_only_where_their_page_offsets_continue) {
  const u64 mm = user.mm_create();
  const u64 f = user.file_create(8);
  const std::int64_t a = user.mmap_file(mm, 0x400000, P, VM_READ, f, 0);
  const std::int64_t b = user.mmap_file(mm, 0x401000, P, VM_READ, f, 5);
  EXPECT_NE(b, a);
  EXPECT_EQ(vmas(mm).size(), 2u);
  // Page 6 after page 5: it joins b.
  EXPECT_EQ(user.mmap_file(mm, 0x402000, P, VM_READ, f, 6), b);
  EXPECT_EQ(vmas(mm).size(), 2u);
}

TEST_F(UserSpec, munmap_in_the_middle_gives_the_upper_part_a_new_id_and_its_own_offset) {
  const u64 mm = user.mm_create();
  const u64 f = user.file_create(16);
  const std::int64_t id = user.mmap_file(mm, 0x400000, 4 * P, VM_READ, f, 2);
  ASSERT_EQ(user.munmap(mm, 0x401000, P), 0);
  ASSERT_EQ(vmas(mm).size(), 2u);
  EXPECT_EQ(vmas(mm)[0].id, static_cast<u64>(id));
  EXPECT_EQ(vmas(mm)[0].end, 0x401000u);
  EXPECT_NE(vmas(mm)[1].id, static_cast<u64>(id));
  EXPECT_EQ(vmas(mm)[1].start, 0x402000u);
  EXPECT_EQ(vmas(mm)[1].pgoff, 4u);
}

TEST_F(UserSpec, munmap_whose_second_split_fails_keeps_the_first_split) {
  const u64 mm = user.mm_create();
  user.mmap(mm, 0x400000, 4 * P, kRw);
  machine.fail_nth(FailKind::VmapArea, 2); // the second vm_area_struct
  EXPECT_EQ(user.munmap(mm, 0x401000, P), -ENOMEM);
  ASSERT_EQ(vmas(mm).size(), 2u);
  EXPECT_EQ(vmas(mm)[0].end, 0x401000u);
  EXPECT_EQ(vmas(mm)[1].start, 0x401000u);
  EXPECT_EQ(vmas(mm)[1].end, 0x404000u);
}

TEST_F(UserSpec, mprotect_over_a_hole_fails_and_changes_nothing) {
  const u64 mm = user.mm_create();
  user.mmap(mm, 0x400000, P, kRw);
  user.mmap(mm, 0x402000, P, kRw);
  const std::vector<UserVma> before = vmas(mm);
  EXPECT_EQ(user.mprotect(mm, 0x400000, 3 * P, VM_READ), -ENOMEM);
  EXPECT_EQ(vmas(mm), before);
  EXPECT_TRUE(user.take_diags().empty());
}

TEST_F(UserSpec, mprotect_splits_and_protecting_back_merges_the_pieces) {
  const u64 mm = user.mm_create();
  const std::int64_t id = user.mmap(mm, 0x400000, 3 * P, kRw);
  ASSERT_EQ(user.mprotect(mm, 0x401000, P, VM_READ), 0);
  ASSERT_EQ(vmas(mm).size(), 3u);
  EXPECT_EQ(vmas(mm)[1].flags, VM_READ | kMay);
  ASSERT_EQ(user.mprotect(mm, 0x401000, P, kRw), 0);
  ASSERT_EQ(vmas(mm).size(), 1u);
  EXPECT_EQ(vmas(mm)[0].id, static_cast<u64>(id));
  EXPECT_EQ(vmas(mm)[0].end, 0x403000u);
}

TEST_F(UserSpec, a_shared_anonymous_mapping_has_a_shmem_object_until_its_last_vma_goes) {
  const u64 mm = user.mm_create();
  const u64 f = user.file_create(1);
  user.mmap(mm, 0x400000, 2 * P, kRw | VM_SHARED);
  ASSERT_EQ(user.files().size(), 2u);
  EXPECT_TRUE(user.files().at(f + 1).shmem);
  EXPECT_EQ(user.files().at(f + 1).nr_pages, 2u);
  ASSERT_EQ(user.munmap(mm, 0x400000, P), 0);
  EXPECT_EQ(user.files().size(), 2u);
  ASSERT_EQ(user.mmput(mm), 0);
  EXPECT_EQ(user.files().size(), 1u);
  // Ids are never reused.
  EXPECT_EQ(user.file_create(1), f + 2);
}

TEST_F(UserSpec, bad_mmap_arguments_warn_return_einval_and_change_nothing) {
  const u64 mm = user.mm_create();
  const u64 f = user.file_create(4);
  struct Case {
    u64 addr, len, flags, file;
  };
  const Case cases[] = {
      {0x400000, P, VM_MAYSHARE, 0},             // a flag mmap does not take
      {0x400000, P, VM_PFNMAP | VM_MIXEDMAP, 0}, // both driver kinds
      {0x400000, P, VM_READ | VM_IO, f},         // a file with driver flags
      {0x400000, 0, VM_READ, 0},                 // empty
      {0x400000, ~u64{0}, VM_READ, 0},           // wraps
      {0x400800, P, VM_READ, 0},                 // unaligned
      {USER_TOP_L4 - P, 2 * P, VM_READ, 0},      // past the user half
      {0x400000, P, VM_READ, f + 7},             // no such file
  };
  for (const Case &c : cases) {
    const std::int64_t r = c.file != 0 ? user.mmap_file(mm, c.addr, c.len, c.flags, c.file, 0)
                                       : user.mmap(mm, c.addr, c.len, c.flags);
    EXPECT_EQ(r, -EINVAL) << c.addr << " " << c.len << " " << c.flags;
    EXPECT_EQ(user.take_diags().size(), 1u);
    EXPECT_TRUE(vmas(mm).empty());
  }
  EXPECT_EQ(user.mmap(mm + 1, 0, P, VM_READ), -EINVAL);
  EXPECT_EQ(user.take_diags().size(), 1u);
}

TEST_F(UserSpec, mm_create_that_cannot_kmalloc_returns_0_and_uses_no_id) {
  machine.fail_nth(FailKind::VmapArea, 1);
  EXPECT_EQ(user.mm_create(), 0u);
  EXPECT_EQ(user.mm_create(), 1u);
}

TEST_F(UserSpec, accesses_the_vmas_forbid_are_sigsegv_and_file_pages_past_the_end_may_be_sigbus) {
  const u64 mm = user.mm_create();
  const u64 f = user.file_create(1);
  user.mmap(mm, 0x400000, P, VM_READ);
  user.mmap_file(mm, 0x500000, 2 * P, VM_READ, f, 0);
  EXPECT_EQ(user.access_ends(mm, 0x3ff000, UserAccess::Read), unsigned{kAccessSigsegv});
  EXPECT_EQ(user.access_ends(mm, 0x400000, UserAccess::Write), unsigned{kAccessSigsegv});
  EXPECT_EQ(user.access_ends(mm, 0x400000, UserAccess::Exec), unsigned{kAccessSigsegv});
  EXPECT_EQ(user.access_ends(mm, 0x400000, UserAccess::Read), kAccessOk | kAccessOom);
  EXPECT_EQ(user.access_ends(mm, 0x501000, UserAccess::Read),
            kAccessOk | kAccessOom | kAccessSigbus);
}

TEST_F(UserSpec, access_remote_vm_reaches_up_to_a_mapping_without_vm_read_unless_forced) {
  const u64 mm = user.mm_create();
  user.mmap(mm, 0x400000, P, kRw);
  user.mmap(mm, 0x401000, P, VM_WRITE);
  const ByteRange plain = user.remote_access_bytes(mm, 0x400800, 3 * P, 0);
  EXPECT_EQ(plain.lo, P / 2);
  EXPECT_EQ(plain.hi, P / 2);
  const ByteRange forced = user.remote_access_bytes(mm, 0x400800, 3 * P, FOLL_FORCE);
  EXPECT_EQ(forced.hi, P / 2 + P);
  // A forced write into a private read-only mapping goes to a copy.
  user.mmap(mm, 0x500000, P, VM_READ);
  EXPECT_EQ(user.remote_access_bytes(mm, 0x500000, 10, FOLL_WRITE).hi, 0u);
  EXPECT_EQ(user.remote_access_bytes(mm, 0x500000, 10, FOLL_WRITE | FOLL_FORCE).hi, 10u);
}

TEST_F(UserSpec, a_driver_mapping_bounds_the_reach_of_access_remote_vm_only_from_above) {
  const u64 mm = user.mm_create();
  user.mmap(mm, 0x400000, P, kRw);
  user.mmap(mm, 0x401000, P, kRw | VM_MIXEDMAP);
  user.mmap(mm, 0x402000, P, kRw | VM_PFNMAP | VM_SHARED);
  const ByteRange r = user.remote_access_bytes(mm, 0x400000, 3 * P, 0);
  EXPECT_EQ(r.lo, P);
  EXPECT_EQ(r.hi, 2 * P);
}

TEST_F(UserSpec, remap_pfn_range_remaps_a_cow_mapping_only_whole) {
  const u64 mm = user.mm_create();
  const u64 id = static_cast<u64>(user.mmap(mm, 0x400000, 2 * P, VM_READ));
  const u64 pfn = (u64{4} << 30) / P; // node 0 straddles 4 GiB
  ASSERT_TRUE(machine.pfn_is_memory(pfn) && machine.pfn_is_memory(pfn + 1));
  const pgprot_t prot = _PAGE_PRESENT | _PAGE_USER | _PAGE_NX;
  const auto part = user.remap_pfn_range(id, 0x400000, pfn, P, prot);
  EXPECT_EQ(part.err, -EINVAL);
  EXPECT_FALSE(part.warn);
  EXPECT_EQ(user.vma_by_id(id)->flags, VM_READ | kMay);
  const auto whole = user.remap_pfn_range(id, 0x400000, pfn, 2 * P, prot);
  EXPECT_EQ(whole.err, 0);
  EXPECT_EQ(user.vma_by_id(id)->pgoff, pfn);
  EXPECT_EQ(user.vma_by_id(id)->flags,
            VM_READ | kMay | VM_IO | VM_PFNMAP | VM_DONTEXPAND | VM_DONTDUMP);
  EXPECT_TRUE(user.remap_pfn_range(id, 0x400000, pfn, 0, prot).bug);
}

} // namespace
} // namespace vmcheck::spec
