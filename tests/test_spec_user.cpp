// The spec's model of user VMAs (spec/user.h) against expectations worked
// out by hand from the harness's mm contract and mm/memory.c (never from
// the engine).
#include "spec/user.h"

#include <gtest/gtest.h>

#include <optional>
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

TEST_F(UserSpec, accesses_the_vmas_forbid_are_sigsegv) {
  const u64 mm = user.mm_create();
  user.mmap(mm, 0x400000, P, VM_READ);
  EXPECT_EQ(user.touch(mm, 0x3ff000, UserAccess::Read, false), AccessEnd::Sigsegv);
  EXPECT_EQ(user.touch(mm, 0x400000, UserAccess::Write, false), AccessEnd::Sigsegv);
  EXPECT_EQ(user.touch(mm, 0x400000, UserAccess::Exec, false), AccessEnd::Sigsegv);
  EXPECT_EQ(user.pte(mm, 0x400000), nullptr);
  EXPECT_EQ(user.touch(mm, 0x400000, UserAccess::Read, false), AccessEnd::Ok);
}

TEST_F(UserSpec, an_anonymous_read_maps_the_zero_page_and_a_write_then_copies_it) {
  const u64 mm = user.mm_create();
  user.mmap(mm, 0x400000, P, kRw);
  ASSERT_EQ(user.touch(mm, 0x400010, UserAccess::Read, false), AccessEnd::Ok);
  ASSERT_NE(user.pte(mm, 0x400000), nullptr);
  EXPECT_EQ(user.pte(mm, 0x400000)->kind, PteKind::Zero);
  EXPECT_EQ(user.pte(mm, 0x400000)->prot & _PAGE_RW, 0u);
  ASSERT_EQ(user.touch(mm, 0x400010, UserAccess::Write, false), AccessEnd::Ok);
  EXPECT_EQ(user.pte(mm, 0x400000)->kind, PteKind::Anon);
  EXPECT_NE(user.pte(mm, 0x400000)->prot & _PAGE_RW, 0u);
  // An allocation that fails leaves the page as it was.
  user.mmap(mm, 0x401000, P, kRw);
  EXPECT_EQ(user.touch(mm, 0x401000, UserAccess::Write, true), AccessEnd::Oom);
  EXPECT_EQ(user.pte(mm, 0x401000), nullptr);
}

TEST_F(UserSpec, a_file_page_past_the_end_is_sigbus_unless_a_page_was_mapped_there_by_hand) {
  const u64 mm = user.mm_create();
  const u64 f = user.file_create(1);
  const u64 v = static_cast<u64>(user.mmap_file(mm, 0x500000, 2 * P, VM_READ, f, 0));
  EXPECT_EQ(user.touch(mm, 0x500000, UserAccess::Read, false), AccessEnd::Ok);
  EXPECT_EQ(user.touch(mm, 0x501000, UserAccess::Read, false), AccessEnd::Sigbus);
  EXPECT_EQ(user.alloc_set_pte(v, 0x501000, 0x1234, false, true, false), 0u);
  EXPECT_EQ(user.touch(mm, 0x501000, UserAccess::Read, false), AccessEnd::Ok);
  EXPECT_EQ(user.alloc_set_pte(v, 0x501000, 0x1234, false, true, false), 0x100u); // NOPAGE
}

TEST_F(UserSpec, access_remote_vm_reads_the_file_and_what_a_shared_mapping_wrote) {
  const u64 mm = user.mm_create();
  const u64 f = user.file_create(2);
  user.mmap_file(mm, 0x500000, 2 * P, VM_READ, f, 0);         // private
  user.mmap_file(mm, 0x600000, 2 * P, kRw | VM_SHARED, f, 0); // shared
  const auto before = user.access_remote_vm(mm, 0x501000, 4, {}, 0, false, 0);
  ASSERT_EQ(before.done, 4u);
  EXPECT_EQ(static_cast<std::uint8_t>(before.bytes[1]), 31 + 1); // page 1, offset 1
  ASSERT_EQ(user.access_remote_vm(mm, 0x601000, 3, "abc", FOLL_WRITE, false, 0).done, 3u);
  const auto after = user.access_remote_vm(mm, 0x501000, 4, {}, 0, false, 0);
  EXPECT_EQ(after.bytes.substr(0, 3), "abc");
  EXPECT_TRUE(after.known[0]);
  // A forced write to the private mapping goes to a copy only it sees.
  ASSERT_EQ(user.access_remote_vm(mm, 0x501000, 1, "X", FOLL_WRITE | FOLL_FORCE, false, 0).done,
            1u);
  EXPECT_EQ(user.pte(mm, 0x501000)->kind, PteKind::Anon);
  EXPECT_EQ(user.access_remote_vm(mm, 0x601000, 1, {}, 0, false, 0).bytes, "a");
  EXPECT_EQ(user.access_remote_vm(mm, 0x501000, 1, {}, 0, false, 0).bytes, "X");
}

TEST_F(UserSpec, access_remote_vm_stops_at_a_mapping_without_vm_read_unless_forced) {
  const u64 mm = user.mm_create();
  user.mmap(mm, 0x400000, P, kRw);
  user.mmap(mm, 0x401000, P, VM_WRITE);
  EXPECT_EQ(user.access_remote_vm(mm, 0x400800, 3 * P, {}, 0, false, 0).done, P / 2);
  EXPECT_EQ(user.access_remote_vm(mm, 0x400800, 3 * P, {}, FOLL_FORCE, false, 0).done, P / 2 + P);
  // An allocation that fails stops it at the page the engine stopped at.
  user.mmap(mm, 0x500000, 2 * P, kRw);
  EXPECT_EQ(user.access_remote_vm(mm, 0x500000, 2 * P, {}, 0, true, P).done, P);
}

TEST_F(UserSpec, a_driver_mapping_without_a_pte_is_sigbus) {
  const u64 mm = user.mm_create();
  const u64 v = static_cast<u64>(user.mmap(mm, 0x400000, 2 * P, kRw | VM_MIXEDMAP | VM_SHARED));
  EXPECT_EQ(user.touch(mm, 0x400000, UserAccess::Read, false), AccessEnd::Sigbus);
  EXPECT_EQ(user.vm_insert_page(v, 0x400000, 0x1234, true, false), 0);
  EXPECT_EQ(user.vm_insert_page(v, 0x400000, 0x1234, true, false), -EBUSY);
  EXPECT_EQ(user.touch(mm, 0x400000, UserAccess::Read, false), AccessEnd::Ok);
  // access_remote_vm gets the inserted page and stops at the hole after it.
  EXPECT_EQ(user.access_remote_vm(mm, 0x400000, 2 * P, {}, 0, false, 0).done, P);
}

TEST_F(UserSpec, unmap_mapping_pages_keeps_private_copies_unless_even_cows) {
  const u64 mm = user.mm_create();
  const u64 f = user.file_create(4);
  user.mmap_file(mm, 0x500000, 2 * P, kRw, f, 0);
  ASSERT_EQ(user.touch(mm, 0x500000, UserAccess::Read, false), AccessEnd::Ok);
  ASSERT_EQ(user.touch(mm, 0x501000, UserAccess::Write, false), AccessEnd::Ok);
  EXPECT_EQ(user.pte(mm, 0x501000)->kind, PteKind::Anon);
  user.unmap_mapping_pages(f, 0, 0, false);
  EXPECT_EQ(user.pte(mm, 0x500000), nullptr);
  ASSERT_NE(user.pte(mm, 0x501000), nullptr);
  user.unmap_mapping_pages(f, 1, 1, true);
  EXPECT_EQ(user.pte(mm, 0x501000), nullptr);
}

TEST_F(UserSpec, remap_pfn_range_remaps_a_cow_mapping_only_whole_and_never_over_a_pte) {
  const u64 mm = user.mm_create();
  const u64 id = static_cast<u64>(user.mmap(mm, 0x400000, 2 * P, VM_READ));
  const u64 pfn = (u64{4} << 30) / P; // node 0 straddles 4 GiB
  ASSERT_TRUE(machine.pfn_is_memory(pfn) && machine.pfn_is_memory(pfn + 1));
  const pgprot_t prot = _PAGE_PRESENT | _PAGE_USER | _PAGE_NX;
  const auto part = user.remap_pfn_range(id, 0x400000, pfn, P, prot, false);
  EXPECT_EQ(part.err, -EINVAL);
  EXPECT_FALSE(part.warn);
  EXPECT_EQ(user.vma_by_id(id)->flags, VM_READ | kMay);
  ASSERT_EQ(user.remap_pfn_range(id, 0x400000, pfn, 2 * P, prot, false).err, 0);
  EXPECT_EQ(user.vma_by_id(id)->pgoff, pfn);
  EXPECT_EQ(user.vma_by_id(id)->flags,
            VM_READ | kMay | VM_IO | VM_PFNMAP | VM_DONTEXPAND | VM_DONTDUMP);
  std::optional<u64> got;
  EXPECT_EQ(user.follow_pfn(id, 0x401000, &got), 0);
  EXPECT_EQ(got, pfn + 1);
  EXPECT_THROW(user.remap_pfn_range(id, 0x400000, pfn, 2 * P, prot, false), KernelBug);
  EXPECT_THROW(user.remap_pfn_range(id, 0x400000, pfn, 0, prot, false), KernelBug);
}

TEST_F(UserSpec, mprotect_gives_the_ptes_of_a_changed_vma_its_protection) {
  const u64 mm = user.mm_create();
  user.mmap(mm, 0x400000, P, kRw | VM_SHARED);
  ASSERT_EQ(user.touch(mm, 0x400000, UserAccess::Write, false), AccessEnd::Ok);
  ASSERT_EQ(user.mprotect(mm, 0x400000, P, VM_READ), 0);
  EXPECT_EQ(user.pte(mm, 0x400000)->prot & _PAGE_RW, 0u);
  EXPECT_EQ(user.touch(mm, 0x400000, UserAccess::Write, false), AccessEnd::Sigsegv);
  ASSERT_EQ(user.mprotect(mm, 0x400000, P, kRw), 0);
  // Shared anonymous memory is writable from the start.
  EXPECT_NE(user.pte(mm, 0x400000)->prot & _PAGE_RW, 0u);
}

} // namespace
} // namespace vmcheck::spec
