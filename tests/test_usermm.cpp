// User address spaces and the mm/memory.c functions of seed 004: VMAs
// (mmap / munmap / mprotect, split and merge), the fault path (zero page,
// copy on write, page_mkwrite, page cache), the mmu_gather discipline, every
// seed function with its error paths, access_remote_vm, and
// remap_vmalloc_range of seed 000. Every test ends with Kernel::check().
#include "kernel.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace vmcheck {
namespace {

constexpr u64 A = 0x400000; // a user address well inside a PTE table

MachineConfig config(unsigned levels = 4) {
  MachineConfig cfg;
  cfg.cpus = 2;
  cfg.nodes = 2;
  cfg.mem_per_node = u64{16} << 20;
  cfg.paging_levels = levels;
  return cfg;
}

struct UserMmTest : ::testing::Test {
  Kernel k{config()};
  Machine &m = k.machine();
  UserMm &u = k.usermm();
  Vmalloc &v = k.vmalloc();
  u64 mm = u.mm_create();

  void TearDown() override { EXPECT_EQ(k.check(), ""); }

  VmAreaStruct &vma(std::int64_t id) {
    EXPECT_GT(id, 0);
    VmAreaStruct *p = u.vma_by_id(static_cast<u64>(id));
    EXPECT_NE(p, nullptr);
    return *p;
  }
  std::int64_t map(u64 addr, u64 len, u64 flags) { return u.mmap(mm, addr, len, flags); }
  std::string read(u64 addr, std::size_t n, unsigned flags = 0, u64 in = 0) {
    std::string s(n, '\0');
    const int done = u.access_remote_vm(in ? in : mm, addr,
                                        {reinterpret_cast<std::uint8_t *>(s.data()), n}, flags);
    s.resize(static_cast<std::size_t>(done));
    return s;
  }
  int write(u64 addr, std::string s, unsigned flags = FOLL_WRITE, u64 in = 0) {
    return u.access_remote_vm(in ? in : mm, addr,
                              {reinterpret_cast<std::uint8_t *>(s.data()), s.size()}, flags);
  }
  PteRef pte(u64 addr, u64 in = 0) { return m.pt().walk(u.find_mm(in ? in : mm)->pgd, addr); }
  const Page &page(Pfn pfn) { return m.mem().peek(pfn); }
  std::size_t warns() const { return m.diag().count(DiagKind::Warn); }
  bool tlb_has(unsigned cpu, u64 addr) {
    for (const TlbEntry &e : m.mmu().tlb(cpu))
      if (e.root == u.find_mm(mm)->pgd && e.vpn == addr >> PAGE_SHIFT)
        return true;
    return false;
  }
  std::string file_bytes(u64 index, u64 off, std::size_t n) {
    std::string s;
    for (std::size_t i = 0; i < n; ++i)
      s.push_back(static_cast<char>(file_byte(index, off + i)));
    return s;
  }
};

// ---- address spaces and VMAs -------------------------------------------------------------

TEST_F(UserMmTest, mm_create_gives_each_mm_its_own_id_and_root) {
  const u64 other = u.mm_create();
  EXPECT_NE(mm, 0u);
  EXPECT_NE(other, mm);
  EXPECT_NE(u.find_mm(mm)->pgd, u.find_mm(other)->pgd);
}

TEST_F(UserMmTest, mm_create_fails_cleanly_when_the_root_table_cannot_be_allocated) {
  m.faults().fail_nth(FailPoint::PageTable, 1);
  EXPECT_EQ(u.mm_create(), 0u);
}

TEST_F(UserMmTest, anonymous_memory_reads_zero_through_the_read_only_zero_page) {
  const auto id = map(A, 2 * PAGE_SIZE, VM_READ | VM_WRITE);
  EXPECT_EQ(vma(id).vm_start, A);
  EXPECT_TRUE(u.touch(mm, A, Access::Read).ok());
  const PteRef r = pte(A);
  ASSERT_TRUE(r.present());
  EXPECT_EQ(r.pfn(), *u.zero_pfn());
  EXPECT_TRUE(r.value & _PAGE_SPECIAL);
  EXPECT_FALSE(r.value & _PAGE_RW);
  EXPECT_TRUE(r.value & _PAGE_USER);
  EXPECT_EQ(read(A + 10, 4), std::string(4, '\0'));
}

TEST_F(UserMmTest, writing_anonymous_memory_replaces_the_zero_page_with_a_private_page) {
  map(A, PAGE_SIZE, VM_READ | VM_WRITE);
  ASSERT_TRUE(u.touch(mm, A, Access::Read).ok());
  const UserAccess w = u.touch(mm, A, Access::Write);
  ASSERT_TRUE(w.ok());
  const PteRef r = pte(A);
  EXPECT_NE(r.pfn(), *u.zero_pfn());
  EXPECT_TRUE(r.value & _PAGE_RW);
  EXPECT_EQ(page(r.pfn()).owner, PageOwner::User);
  EXPECT_EQ(page(r.pfn()).mapcount, 1);
  EXPECT_EQ(w.pa >> PAGE_SHIFT, r.pfn());
  EXPECT_EQ(write(A + 5, "hello"), 5);
  EXPECT_EQ(read(A + 5, 5), "hello");
}

TEST_F(UserMmTest, mmap_refuses_bad_arguments_with_einval_and_changes_nothing) {
  const u64 before = k.state_hash();
  const std::size_t w = warns();
  EXPECT_EQ(map(A + 1, PAGE_SIZE, VM_READ), -EINVAL);
  EXPECT_EQ(map(A, 0, VM_READ), -EINVAL);
  EXPECT_EQ(map(A, PAGE_SIZE, VM_READ | VM_MAYSHARE), -EINVAL);
  EXPECT_EQ(map(A, PAGE_SIZE, VM_PFNMAP | VM_MIXEDMAP), -EINVAL);
  EXPECT_EQ(map(0, PAGE_SIZE, VM_READ), static_cast<std::int64_t>(1)); // sanity: ids start at 1
  EXPECT_EQ(u.munmap(mm, MMAP_MIN_ADDR, PAGE_SIZE), 0);
  const u64 after_sanity = k.state_hash();
  EXPECT_EQ(map(USER_TOP_L4 - PAGE_SIZE, 2 * PAGE_SIZE, VM_READ), -EINVAL);
  EXPECT_EQ(map(0xffffc90000000000ULL, PAGE_SIZE, VM_READ), -EINVAL);
  EXPECT_EQ(map(A, ~u64{0}, VM_READ), -EINVAL);
  EXPECT_EQ(u.mmap(999, A, PAGE_SIZE, VM_READ), -EINVAL);
  EXPECT_EQ(u.mmap_file(mm, A, PAGE_SIZE, VM_READ, 12345, 0), -EINVAL);
  EXPECT_EQ(k.state_hash(), after_sanity);
  EXPECT_NE(before, after_sanity);
  EXPECT_GE(warns(), w + 9);
}

TEST_F(UserMmTest, mmap_without_an_address_takes_the_lowest_free_range) {
  const auto a = map(0, 2 * PAGE_SIZE, VM_READ);
  const auto b = map(0, PAGE_SIZE, VM_READ | VM_WRITE);
  EXPECT_EQ(vma(a).vm_start, MMAP_MIN_ADDR);
  EXPECT_EQ(vma(b).vm_start, MMAP_MIN_ADDR + 2 * PAGE_SIZE);
}

TEST_F(UserMmTest, mmap_over_an_existing_mapping_replaces_it) {
  map(A, 4 * PAGE_SIZE, VM_READ | VM_WRITE);
  ASSERT_EQ(write(A + PAGE_SIZE, "old"), 3);
  const auto id = map(A + PAGE_SIZE, PAGE_SIZE, VM_READ | VM_WRITE | VM_SHARED);
  EXPECT_EQ(u.find_mm(mm)->vmas.size(), 3u);
  EXPECT_EQ(vma(id).vm_start, A + PAGE_SIZE);
  EXPECT_EQ(read(A + PAGE_SIZE, 3), std::string(3, '\0'));
}

TEST_F(UserMmTest, adjacent_compatible_anonymous_mappings_merge_into_one_vma) {
  const auto a = map(A, PAGE_SIZE, VM_READ | VM_WRITE);
  const auto b = map(A + PAGE_SIZE, PAGE_SIZE, VM_READ | VM_WRITE);
  EXPECT_EQ(a, b);
  EXPECT_EQ(vma(a).vm_end, A + 2 * PAGE_SIZE);
  const auto c = map(A + 2 * PAGE_SIZE, PAGE_SIZE, VM_READ);
  EXPECT_NE(c, a);
  EXPECT_EQ(u.find_mm(mm)->vmas.size(), 2u);
}

TEST_F(UserMmTest, munmap_of_the_middle_splits_the_vma_and_the_upper_part_gets_a_new_id) {
  const auto id = map(A, 3 * PAGE_SIZE, VM_READ | VM_WRITE);
  ASSERT_EQ(write(A, std::string(3 * PAGE_SIZE, 'x')), static_cast<int>(3 * PAGE_SIZE));
  EXPECT_EQ(u.munmap(mm, A + PAGE_SIZE, PAGE_SIZE), 0);
  const auto &vmas = u.find_mm(mm)->vmas;
  ASSERT_EQ(vmas.size(), 2u);
  EXPECT_EQ(vmas.at(A).id, static_cast<u64>(id));
  EXPECT_EQ(vmas.at(A).vm_end, A + PAGE_SIZE);
  EXPECT_NE(vmas.at(A + 2 * PAGE_SIZE).id, static_cast<u64>(id));
  EXPECT_EQ(read(A, 2), "xx");
  EXPECT_EQ(read(A + PAGE_SIZE, 2), "");
  EXPECT_EQ(read(A + 2 * PAGE_SIZE, 2), "xx");
  EXPECT_EQ(u.touch(mm, A + PAGE_SIZE, Access::Read).fault, VM_FAULT_SIGSEGV);
}

TEST_F(UserMmTest, munmap_refuses_bad_ranges_and_ignores_holes) {
  map(A, PAGE_SIZE, VM_READ);
  const u64 before = k.state_hash();
  EXPECT_EQ(u.munmap(mm, A + 1, PAGE_SIZE), -EINVAL);
  EXPECT_EQ(u.munmap(mm, A, 0), -EINVAL);
  EXPECT_EQ(u.munmap(mm, 0, PAGE_SIZE), -EINVAL);
  EXPECT_EQ(u.munmap(mm, USER_TOP_L4 - PAGE_SIZE, 2 * PAGE_SIZE), -EINVAL);
  EXPECT_EQ(u.munmap(77, A, PAGE_SIZE), -EINVAL);
  EXPECT_EQ(u.munmap(mm, A + 16 * PAGE_SIZE, PAGE_SIZE), 0);
  EXPECT_EQ(k.state_hash(), before);
}

TEST_F(UserMmTest, munmap_gives_back_every_page_and_page_table) {
  map(A, PAGE_SIZE, VM_READ);
  ASSERT_TRUE(u.touch(mm, A, Access::Read).ok()); // the zero page, kept for good
  ASSERT_EQ(u.munmap(mm, A, PAGE_SIZE), 0);
  const u64 free_before = m.pages().nr_free_total();
  const u64 tables_before = m.pt().table_pages();
  map(A + (u64{1} << 30), 8 * PAGE_SIZE, VM_READ | VM_WRITE);
  ASSERT_EQ(write(A + (u64{1} << 30), std::string(8 * PAGE_SIZE, 'z')),
            static_cast<int>(8 * PAGE_SIZE));
  EXPECT_LT(m.pages().nr_free_total(), free_before);
  EXPECT_EQ(u.munmap(mm, A + (u64{1} << 30), 8 * PAGE_SIZE), 0);
  EXPECT_EQ(m.pages().nr_free_total(), free_before);
  EXPECT_EQ(m.pt().table_pages(), tables_before);
}

TEST_F(UserMmTest, mmput_frees_the_address_space_and_every_page_it_held) {
  const u64 free_before = m.pages().nr_free_total();
  const u64 other = u.mm_create();
  u.mmap(other, A, 4 * PAGE_SIZE, VM_READ | VM_WRITE | VM_SHARED);
  u.mmap(other, 2 * A, 4 * PAGE_SIZE, VM_READ | VM_WRITE);
  ASSERT_EQ(write(A, std::string(4 * PAGE_SIZE, 's'), FOLL_WRITE, other), 4 * 4096);
  ASSERT_EQ(write(2 * A, std::string(4 * PAGE_SIZE, 'p'), FOLL_WRITE, other), 4 * 4096);
  ASSERT_TRUE(u.touch(other, A, Access::Read).ok());
  EXPECT_EQ(u.mmput(other), 0);
  EXPECT_EQ(u.find_mm(other), nullptr);
  EXPECT_EQ(m.pages().nr_free_total(), free_before);
  EXPECT_EQ(u.mmput(other), -EINVAL);
}

TEST_F(UserMmTest, mprotect_read_only_makes_writes_fault_and_merges_back_when_restored) {
  const auto id = map(A, 3 * PAGE_SIZE, VM_READ | VM_WRITE);
  ASSERT_EQ(write(A + PAGE_SIZE, "data"), 4);
  ASSERT_TRUE(u.touch(mm, A + PAGE_SIZE, Access::Write).ok());
  EXPECT_EQ(u.mprotect(mm, A + PAGE_SIZE, PAGE_SIZE, VM_READ), 0);
  EXPECT_EQ(u.find_mm(mm)->vmas.size(), 3u);
  EXPECT_EQ(u.touch(mm, A + PAGE_SIZE, Access::Write).fault, VM_FAULT_SIGSEGV);
  EXPECT_TRUE(u.touch(mm, A + PAGE_SIZE, Access::Read).ok());
  EXPECT_EQ(write(A + PAGE_SIZE, "x"), 0);
  EXPECT_EQ(u.mprotect(mm, A + PAGE_SIZE, PAGE_SIZE, VM_READ | VM_WRITE), 0);
  EXPECT_EQ(u.find_mm(mm)->vmas.size(), 1u);
  EXPECT_EQ(vma(id).vm_end, A + 3 * PAGE_SIZE);
  // The exclusively owned page is reused in place, not copied.
  const Pfn before = pte(A + PAGE_SIZE).pfn();
  EXPECT_TRUE(u.touch(mm, A + PAGE_SIZE, Access::Write).ok());
  EXPECT_EQ(pte(A + PAGE_SIZE).pfn(), before);
  EXPECT_EQ(read(A + PAGE_SIZE, 4), "data");
}

TEST_F(UserMmTest, mprotect_none_keeps_the_data_but_refuses_every_user_access) {
  map(A, PAGE_SIZE, VM_READ | VM_WRITE);
  ASSERT_EQ(write(A, "keep"), 4);
  EXPECT_EQ(u.mprotect(mm, A, PAGE_SIZE, 0), 0);
  EXPECT_EQ(u.touch(mm, A, Access::Read).fault, VM_FAULT_SIGSEGV);
  EXPECT_FALSE(pte(A).value & _PAGE_USER);
  EXPECT_EQ(read(A, 4), "");
  EXPECT_EQ(read(A, 4, FOLL_FORCE), "keep");
  EXPECT_EQ(u.mprotect(mm, A, PAGE_SIZE, VM_READ), 0);
  EXPECT_EQ(read(A, 4), "keep");
}

TEST_F(UserMmTest, mprotect_of_a_range_with_a_hole_is_enomem_and_changes_nothing) {
  map(A, PAGE_SIZE, VM_READ | VM_WRITE);
  map(A + 2 * PAGE_SIZE, PAGE_SIZE, VM_READ | VM_WRITE);
  const u64 before = k.state_hash();
  EXPECT_EQ(u.mprotect(mm, A, 3 * PAGE_SIZE, VM_READ), -ENOMEM);
  EXPECT_EQ(u.mprotect(mm, A, PAGE_SIZE, VM_SHARED), -EINVAL);
  EXPECT_EQ(u.mprotect(mm, A + 1, PAGE_SIZE, VM_READ), -EINVAL);
  EXPECT_EQ(u.mprotect(mm, A, 0, VM_READ), 0);
  EXPECT_EQ(k.state_hash(), before);
}

// ---- the fault path ------------------------------------------------------------------------

TEST_F(UserMmTest, a_private_file_mapping_reads_the_file_and_copies_on_write) {
  const u64 f = u.file_create(4);
  const u64 other = u.mm_create();
  const auto id = u.mmap_file(mm, A, 2 * PAGE_SIZE, VM_READ | VM_WRITE, f, 1);
  ASSERT_GT(id, 0);
  ASSERT_GT(u.mmap_file(other, A, 2 * PAGE_SIZE, VM_READ, f, 1), 0);
  EXPECT_EQ(read(A + 3, 4), file_bytes(1, 3, 4));
  ASSERT_TRUE(u.touch(other, A, Access::Read).ok());
  const Pfn cache = pte(A).pfn();
  EXPECT_EQ(pte(A, other).pfn(), cache);
  EXPECT_EQ(page(cache).owner, PageOwner::PageCache);
  EXPECT_EQ(page(cache).mapcount, 2);
  EXPECT_FALSE(pte(A).value & _PAGE_RW);
  ASSERT_EQ(write(A + 3, "COW"), 3);
  EXPECT_NE(pte(A).pfn(), cache);
  EXPECT_TRUE(pte(A).value & _PAGE_RW);
  EXPECT_EQ(page(cache).mapcount, 1);
  EXPECT_EQ(read(A + 2, 5), file_bytes(1, 2, 1) + "COW" + file_bytes(1, 6, 1));
  EXPECT_EQ(read(A + 3, 3, 0, other), file_bytes(1, 3, 3));
}

TEST_F(UserMmTest, a_write_fault_on_a_not_present_private_file_page_copies_at_once) {
  const u64 f = u.file_create(1);
  u.mmap_file(mm, A, PAGE_SIZE, VM_READ | VM_WRITE, f, 0);
  ASSERT_TRUE(u.touch(mm, A, Access::Write).ok());
  EXPECT_EQ(page(pte(A).pfn()).owner, PageOwner::User);
  EXPECT_EQ(read(A, 3), file_bytes(0, 0, 3));
  EXPECT_EQ(page(u.mappings().at(f).pages.at(0)).mapcount, 0);
}

TEST_F(UserMmTest, a_shared_file_mapping_write_goes_through_page_mkwrite_and_reaches_the_file) {
  const u64 f = u.file_create(2);
  const u64 other = u.mm_create();
  u.mmap_file(mm, A, 2 * PAGE_SIZE, VM_READ | VM_WRITE | VM_SHARED, f, 0);
  u.mmap_file(other, 3 * A, PAGE_SIZE, VM_READ, f, 1);
  ASSERT_TRUE(u.touch(mm, A + PAGE_SIZE, Access::Read).ok());
  EXPECT_FALSE(pte(A + PAGE_SIZE).value & _PAGE_RW); // write notification pending
  const Pfn cache = pte(A + PAGE_SIZE).pfn();
  ASSERT_TRUE(u.touch(mm, A + PAGE_SIZE, Access::Write).ok());
  EXPECT_TRUE(pte(A + PAGE_SIZE).value & _PAGE_RW);
  EXPECT_EQ(pte(A + PAGE_SIZE).pfn(), cache);
  EXPECT_TRUE(page(cache).flags & PG_dirty);
  ASSERT_EQ(write(A + PAGE_SIZE + 8, "shared"), 6);
  EXPECT_EQ(read(3 * A + 8, 6, 0, other), "shared");
}

TEST_F(UserMmTest, shared_anonymous_memory_survives_a_zap_in_its_shmem_object) {
  const auto id = map(A, 2 * PAGE_SIZE, VM_READ | VM_WRITE | VM_SHARED);
  ASSERT_EQ(write(A + 4, "shm"), 3);
  EXPECT_TRUE(pte(A).value & _PAGE_RW);
  u.zap_page_range(vma(id), A, 2 * PAGE_SIZE);
  EXPECT_FALSE(pte(A).present());
  EXPECT_EQ(read(A + 4, 3), "shm");
}

TEST_F(UserMmTest, private_anonymous_memory_is_lost_by_a_zap) {
  const auto id = map(A, PAGE_SIZE, VM_READ | VM_WRITE);
  ASSERT_EQ(write(A, "gone"), 4);
  u.zap_page_range(vma(id), A, PAGE_SIZE);
  EXPECT_EQ(read(A, 4), std::string(4, '\0'));
}

TEST_F(UserMmTest, faults_past_the_end_of_the_file_or_in_a_driver_mapping_are_sigbus) {
  const u64 f = u.file_create(1);
  u.mmap_file(mm, A, 2 * PAGE_SIZE, VM_READ, f, 0);
  EXPECT_TRUE(u.touch(mm, A, Access::Read).ok());
  EXPECT_EQ(u.touch(mm, A + PAGE_SIZE, Access::Read).fault, VM_FAULT_SIGBUS);
  map(2 * A, PAGE_SIZE, VM_READ | VM_SHARED | VM_PFNMAP);
  EXPECT_EQ(u.touch(mm, 2 * A, Access::Read).fault, VM_FAULT_SIGBUS);
}

TEST_F(UserMmTest, accesses_outside_a_vma_or_beyond_its_rights_are_sigsegv) {
  map(A, PAGE_SIZE, VM_READ);
  EXPECT_EQ(u.touch(mm, A + PAGE_SIZE, Access::Read).fault, VM_FAULT_SIGSEGV);
  EXPECT_EQ(u.touch(mm, A, Access::Write).fault, VM_FAULT_SIGSEGV);
  EXPECT_EQ(u.touch(mm, A, Access::Exec).fault, VM_FAULT_SIGSEGV);
  EXPECT_EQ(u.touch(mm, 0xffffc90000000000ULL, Access::Read).fault, VM_FAULT_SIGSEGV);
  EXPECT_EQ(u.touch(mm, 0x0000900000000000ULL, Access::Read).fault, VM_FAULT_SIGSEGV);
  EXPECT_EQ(u.touch(4242, A, Access::Read).fault, VM_FAULT_SIGSEGV);
}

TEST_F(UserMmTest, an_executable_mapping_can_be_executed) {
  map(A, PAGE_SIZE, VM_READ | VM_EXEC);
  EXPECT_TRUE(u.touch(mm, A, Access::Exec).ok());
  EXPECT_FALSE(pte(A).value & _PAGE_NX);
}

TEST_F(UserMmTest, a_failed_page_allocation_in_a_fault_is_vm_fault_oom) {
  map(A, PAGE_SIZE, VM_READ | VM_WRITE);
  m.faults().fail_nth(FailPoint::AllocPage, 1);
  EXPECT_EQ(u.touch(mm, A, Access::Write).fault, VM_FAULT_OOM);
  EXPECT_TRUE(u.touch(mm, A, Access::Write).ok());
  map(2 * A, PAGE_SIZE, VM_READ | VM_WRITE);
  m.faults().fail_nth(FailPoint::PageTable, 1);
  EXPECT_EQ(u.touch(mm, 2 * A, Access::Read).fault, VM_FAULT_OOM);
}

TEST_F(UserMmTest, copy_on_write_pages_are_never_writable_in_two_address_spaces) {
  const u64 f = u.file_create(1);
  const u64 other = u.mm_create();
  u.mmap_file(mm, A, PAGE_SIZE, VM_READ | VM_WRITE, f, 0);
  u.mmap_file(other, A, PAGE_SIZE, VM_READ | VM_WRITE, f, 0);
  ASSERT_TRUE(u.touch(mm, A, Access::Read).ok());
  ASSERT_TRUE(u.touch(other, A, Access::Read).ok());
  ASSERT_TRUE(u.touch(mm, A, Access::Write).ok());
  ASSERT_TRUE(u.touch(other, A, Access::Write).ok());
  EXPECT_NE(pte(A).pfn(), pte(A, other).pfn());
  EXPECT_EQ(page(pte(A).pfn()).mapcount, 1);
  EXPECT_EQ(page(pte(A, other).pfn()).mapcount, 1);
  EXPECT_EQ(k.check(), "");
}

TEST_F(UserMmTest, a_write_after_a_cached_read_flushes_the_old_translation_on_every_cpu) {
  map(A, PAGE_SIZE, VM_READ | VM_WRITE);
  ASSERT_TRUE(u.touch(mm, A, Access::Read).ok());
  m.set_current_cpu(1);
  ASSERT_TRUE(u.touch(mm, A, Access::Read).ok());
  EXPECT_TRUE(tlb_has(1, A));
  m.set_current_cpu(0);
  ASSERT_TRUE(u.touch(mm, A, Access::Write).ok());
  EXPECT_FALSE(tlb_has(1, A));
  m.set_current_cpu(1);
  EXPECT_TRUE(u.touch(mm, A, Access::Read).ok());
}

// ---- mmu_gather --------------------------------------------------------------------------------

TEST_F(UserMmTest, unmap_vmas_keeps_pages_until_the_gather_has_flushed_the_tlbs) {
  const auto id = map(A, 2 * PAGE_SIZE, VM_READ | VM_WRITE);
  ASSERT_TRUE(u.touch(mm, A, Access::Write).ok());
  const Pfn pfn = pte(A).pfn();
  ASSERT_TRUE(tlb_has(0, A));
  MmuGather tlb(m, u.find_mm(mm)->pgd, A, A + 2 * PAGE_SIZE);
  u.unmap_vmas(tlb, vma(id), A, A + 2 * PAGE_SIZE);
  EXPECT_FALSE(pte(A).present());
  EXPECT_EQ(page(pfn).refcount, 1u); // still the gather's
  EXPECT_EQ(page(pfn).owner, PageOwner::User);
  EXPECT_TRUE(tlb_has(0, A)); // stale until the flush
  ASSERT_EQ(tlb.pending_pages().size(), 1u);
  tlb.finish();
  EXPECT_FALSE(tlb_has(0, A));
  EXPECT_EQ(page(pfn).owner, PageOwner::Free);
  EXPECT_EQ(u.touch(mm, A, Access::Read).fault, 0u); // the VMA stays; it refaults
}

TEST_F(UserMmTest, unmap_vmas_with_a_gather_of_another_mm_warns_and_does_nothing) {
  const auto id = map(A, PAGE_SIZE, VM_READ | VM_WRITE);
  ASSERT_EQ(write(A, "x"), 1);
  const u64 other = u.mm_create();
  const u64 before = k.state_hash();
  MmuGather tlb(m, u.find_mm(other)->pgd, A, A + PAGE_SIZE);
  u.unmap_vmas(tlb, vma(id), A, A + PAGE_SIZE);
  tlb.finish();
  EXPECT_EQ(k.state_hash(), before);
  EXPECT_EQ(m.diag().entries().back().function, "unmap_vmas");
}

TEST_F(UserMmTest, a_full_gather_batch_is_flushed_before_its_pages_are_freed) {
  const u64 n = MmuGather::kBatchPages + 3;
  const auto id = map(A, n * PAGE_SIZE, VM_READ | VM_WRITE);
  for (u64 i = 0; i < n; ++i)
    ASSERT_TRUE(u.touch(mm, A + i * PAGE_SIZE, Access::Write).ok());
  const u64 free_before = m.pages().nr_free_total();
  MmuGather tlb(m, u.find_mm(mm)->pgd, A, A + n * PAGE_SIZE);
  u.unmap_vmas(tlb, vma(id), A, A + n * PAGE_SIZE);
  EXPECT_EQ(tlb.pending_pages().size(), 3u);
  EXPECT_EQ(m.pages().nr_free_total(), free_before + MmuGather::kBatchPages);
  for (const TlbEntry &e : m.mmu().tlb(0))
    EXPECT_FALSE(e.vpn < ((A + MmuGather::kBatchPages * PAGE_SIZE) >> PAGE_SHIFT) &&
                 e.root == u.find_mm(mm)->pgd);
  tlb.finish();
  EXPECT_EQ(m.pages().nr_free_total(), free_before + n);
}

// ---- zapping -----------------------------------------------------------------------------------

TEST_F(UserMmTest, zap_page_range_continues_into_the_following_vmas) {
  const auto a = map(A, 2 * PAGE_SIZE, VM_READ | VM_WRITE);
  map(A + 2 * PAGE_SIZE, 2 * PAGE_SIZE, VM_READ | VM_WRITE | VM_SHARED);
  ASSERT_EQ(write(A, std::string(4 * PAGE_SIZE, 'q')), 4 * 4096);
  u.zap_page_range(vma(a), A + PAGE_SIZE, 2 * PAGE_SIZE);
  EXPECT_TRUE(pte(A).present());
  EXPECT_FALSE(pte(A + PAGE_SIZE).present());
  EXPECT_FALSE(pte(A + 2 * PAGE_SIZE).present());
  EXPECT_TRUE(pte(A + 3 * PAGE_SIZE).present());
}

TEST_F(UserMmTest, zap_page_range_single_stays_inside_its_vma) {
  const auto a = map(A, 2 * PAGE_SIZE, VM_READ | VM_WRITE);
  map(A + 2 * PAGE_SIZE, 2 * PAGE_SIZE, VM_READ | VM_WRITE | VM_SHARED);
  ASSERT_EQ(write(A, std::string(4 * PAGE_SIZE, 'q')), 4 * 4096);
  u.zap_page_range_single(vma(a), A, 4 * PAGE_SIZE);
  EXPECT_FALSE(pte(A + PAGE_SIZE).present());
  EXPECT_TRUE(pte(A + 2 * PAGE_SIZE).present());
}

TEST_F(UserMmTest, zap_with_a_bad_range_warns_and_changes_nothing) {
  const auto a = map(A, 2 * PAGE_SIZE, VM_READ | VM_WRITE);
  ASSERT_EQ(write(A, "z"), 1);
  const u64 before = k.state_hash();
  u.zap_page_range(vma(a), A + 1, PAGE_SIZE);
  u.zap_page_range(vma(a), A, 0);
  u.zap_page_range_single(vma(a), A, PAGE_SIZE + 5);
  u.zap_page_range_single(vma(a), ~u64{0} & PAGE_MASK, 2 * PAGE_SIZE);
  EXPECT_EQ(k.state_hash(), before);
}

TEST_F(UserMmTest, zap_vma_ptes_refuses_a_vma_that_is_not_pfnmap_and_says_why) {
  const auto a = map(A, PAGE_SIZE, VM_READ | VM_WRITE);
  ASSERT_EQ(write(A, "z"), 1);
  const u64 before = k.state_hash();
  u.zap_vma_ptes(vma(a), A, PAGE_SIZE);
  EXPECT_EQ(k.state_hash(), before);
  EXPECT_NE(m.diag().entries().back().reason.find("VM_PFNMAP"), std::string::npos);
}

TEST_F(UserMmTest, zap_vma_ptes_clears_a_pfnmap_range_only_when_it_lies_inside_the_vma) {
  const auto id = map(A, 2 * PAGE_SIZE, VM_READ | VM_WRITE | VM_SHARED);
  auto p = m.alloc_pages(GFP_KERNEL, 1);
  ASSERT_EQ(u.remap_pfn_range(vma(id), A, *p, 2 * PAGE_SIZE, PAGE_SHARED), 0);
  const u64 before = k.state_hash();
  u.zap_vma_ptes(vma(id), A + PAGE_SIZE, 2 * PAGE_SIZE);
  u.zap_vma_ptes(vma(id), A - PAGE_SIZE, 2 * PAGE_SIZE);
  EXPECT_EQ(k.state_hash(), before);
  EXPECT_NE(m.diag().entries().back().reason.find("not inside"), std::string::npos);
  u.zap_vma_ptes(vma(id), A + PAGE_SIZE, PAGE_SIZE);
  EXPECT_TRUE(pte(A).present());
  EXPECT_FALSE(pte(A + PAGE_SIZE).present());
  EXPECT_EQ(page(*p).refcount, 1u); // pfn mappings never held a reference
  m.pages().free_pages(*p, 1);
  u.zap_vma_ptes(vma(id), A, PAGE_SIZE);
}

// ---- vm_insert_page
// ------------------------------------------------------------------------------

TEST_F(UserMmTest, vm_insert_page_maps_the_page_takes_a_reference_and_sets_mixedmap) {
  const auto id = map(A, 2 * PAGE_SIZE, VM_READ | VM_WRITE | VM_SHARED);
  auto p = m.alloc_pages(GFP_KERNEL | __GFP_ZERO, 0);
  EXPECT_EQ(u.vm_insert_page(vma(id), A + PAGE_SIZE, *p), 0);
  EXPECT_EQ(page(*p).refcount, 2u);
  EXPECT_EQ(page(*p).mapcount, 1);
  EXPECT_TRUE(vma(id).vm_flags & VM_MIXEDMAP);
  EXPECT_EQ(pte(A + PAGE_SIZE).pfn(), *p);
  EXPECT_FALSE(pte(A + PAGE_SIZE).value & _PAGE_SPECIAL);
  ASSERT_EQ(write(A + PAGE_SIZE, "drv"), 3);
  std::vector<std::uint8_t> buf(3);
  m.mem().read(*p << PAGE_SHIFT, buf);
  EXPECT_EQ(std::string(buf.begin(), buf.end()), "drv");
  // The driver drops its reference; the mapping keeps the page alive.
  m.pages().put_page(*p);
  EXPECT_EQ(page(*p).refcount, 1u);
  EXPECT_EQ(read(A + PAGE_SIZE, 3), "drv");
  EXPECT_EQ(u.munmap(mm, A, 2 * PAGE_SIZE), 0);
  EXPECT_EQ(page(*p).owner, PageOwner::Free);
}

TEST_F(UserMmTest, vm_insert_page_reports_efault_ebusy_and_einval) {
  const auto id = map(A, PAGE_SIZE, VM_READ | VM_WRITE | VM_SHARED);
  auto p = m.alloc_pages(GFP_KERNEL, 0);
  auto big = m.alloc_pages(GFP_KERNEL, 1);
  auto freed = m.alloc_pages(GFP_KERNEL, 0);
  m.pages().free_pages(*freed, 0);
  const u64 before = k.state_hash();
  EXPECT_EQ(u.vm_insert_page(vma(id), A + PAGE_SIZE, *p), -EFAULT);
  EXPECT_EQ(u.vm_insert_page(vma(id), A - PAGE_SIZE, *p), -EFAULT);
  EXPECT_EQ(u.vm_insert_page(vma(id), A, *freed), -EINVAL);
  EXPECT_EQ(u.vm_insert_page(vma(id), A, *big), -EINVAL);
  EXPECT_EQ(u.vm_insert_page(vma(id), A, *big + 1), -EINVAL);
  EXPECT_EQ(u.vm_insert_page(vma(id), A, m.pt().kernel_root()), -EINVAL);
  EXPECT_EQ(u.vm_insert_page(vma(id), A, ~u64{0} >> 20), -EINVAL);
  EXPECT_EQ(u.vm_insert_page(vma(id), A + 8, *p), -EINVAL);
  EXPECT_EQ(k.state_hash(), before);
  ASSERT_EQ(u.vm_insert_page(vma(id), A, *p), 0);
  EXPECT_EQ(u.vm_insert_page(vma(id), A, *p), -EBUSY);
  EXPECT_EQ(page(*p).refcount, 2u);
  // An anonymous page (PageAnon) cannot be inserted.
  const auto anon = map(2 * A, PAGE_SIZE, VM_READ | VM_WRITE);
  ASSERT_EQ(write(2 * A, "a"), 1);
  const auto other = map(3 * A, PAGE_SIZE, VM_READ | VM_SHARED);
  EXPECT_EQ(u.vm_insert_page(vma(other), 3 * A, pte(2 * A).pfn()), -EINVAL);
  (void)anon;
  EXPECT_EQ(u.vm_insert_page(vma(other), 3 * A, m.pt().kernel_root()), -EINVAL);
  // A compound block cannot be freed piecemeal by a driver either: free it whole.
  m.pages().free_pages(*big, 1);
}

TEST_F(UserMmTest, vm_insert_page_into_a_pfnmap_vma_is_a_kernel_bug) {
  const auto id = map(A, PAGE_SIZE, VM_READ | VM_SHARED | VM_PFNMAP);
  auto p = m.alloc_pages(GFP_KERNEL, 0);
  EXPECT_THROW(u.vm_insert_page(vma(id), A, *p), KernelBug);
  m.pages().free_pages(*p, 0);
}

TEST_F(UserMmTest, vm_insert_page_into_a_private_mapping_is_copied_on_write) {
  const auto id = map(A, PAGE_SIZE, VM_READ | VM_WRITE);
  auto p = m.alloc_pages(GFP_KERNEL | __GFP_ZERO, 0);
  ASSERT_EQ(u.vm_insert_page(vma(id), A, *p), 0);
  EXPECT_FALSE(pte(A).value & _PAGE_RW);
  ASSERT_TRUE(u.touch(mm, A, Access::Write).ok());
  EXPECT_NE(pte(A).pfn(), *p);
  EXPECT_EQ(page(*p).refcount, 1u);
  EXPECT_EQ(page(*p).mapcount, 0);
  m.pages().put_page(*p);
}

TEST_F(UserMmTest, vm_insert_page_without_a_page_table_is_enomem) {
  const auto id = map(A, PAGE_SIZE, VM_READ | VM_SHARED);
  auto p = m.alloc_pages(GFP_KERNEL, 0);
  m.faults().fail_nth(FailPoint::PageTable, 1);
  EXPECT_EQ(u.vm_insert_page(vma(id), A, *p), -ENOMEM);
  EXPECT_EQ(page(*p).refcount, 1u);
  m.pages().put_page(*p);
}

// ---- vmf_insert_pfn / vmf_insert_pfn_prot
// ---------------------------------------------------------

TEST_F(UserMmTest, vmf_insert_pfn_maps_a_special_pte_and_returns_nopage) {
  const auto id = map(A, 2 * PAGE_SIZE, VM_READ | VM_WRITE | VM_SHARED | VM_PFNMAP);
  auto p = m.alloc_pages(GFP_KERNEL | __GFP_ZERO, 0);
  EXPECT_EQ(u.vmf_insert_pfn(vma(id), A, *p), VM_FAULT_NOPAGE);
  EXPECT_TRUE(pte(A).value & _PAGE_SPECIAL);
  EXPECT_EQ(pte(A).pfn(), *p);
  EXPECT_EQ(page(*p).refcount, 1u);
  EXPECT_EQ(page(*p).mapcount, 0);
  // A PTE that is already there is the fault already served.
  EXPECT_EQ(u.vmf_insert_pfn(vma(id), A, *p + 1), VM_FAULT_NOPAGE);
  EXPECT_EQ(pte(A).pfn(), *p);
  EXPECT_EQ(u.vmf_insert_pfn(vma(id), A + 2 * PAGE_SIZE, *p), VM_FAULT_SIGBUS);
  EXPECT_EQ(u.vmf_insert_pfn(vma(id), A + PAGE_SIZE, ~u64{0} >> 30), VM_FAULT_SIGBUS);
  EXPECT_TRUE(u.touch(mm, A, Access::Read).ok());
  u.zap_vma_ptes(vma(id), A, 2 * PAGE_SIZE);
  m.pages().put_page(*p);
}

TEST_F(UserMmTest, vmf_insert_pfn_prot_overrides_the_protection_of_one_page) {
  const auto id = map(A, 2 * PAGE_SIZE, VM_READ | VM_WRITE | VM_SHARED | VM_PFNMAP);
  auto p = m.alloc_pages(GFP_KERNEL | __GFP_ZERO, 0);
  EXPECT_EQ(u.vmf_insert_pfn_prot(vma(id), A, *p, PAGE_READONLY), VM_FAULT_NOPAGE);
  EXPECT_FALSE(pte(A).value & _PAGE_RW);
  EXPECT_EQ(u.vmf_insert_pfn_prot(vma(id), A + PAGE_SIZE, *p, PAGE_KERNEL), VM_FAULT_SIGBUS);
  EXPECT_FALSE(pte(A + PAGE_SIZE).present());
  // A write to the read-only pfn of a shared mapping just makes it writable.
  EXPECT_TRUE(u.touch(mm, A, Access::Write).ok());
  EXPECT_TRUE(pte(A).value & _PAGE_RW);
  u.zap_vma_ptes(vma(id), A, PAGE_SIZE);
  m.pages().put_page(*p);
}

TEST_F(UserMmTest, vmf_insert_pfn_without_a_page_table_is_oom) {
  const auto id = map(A, PAGE_SIZE, VM_READ | VM_SHARED | VM_PFNMAP);
  auto p = m.alloc_pages(GFP_KERNEL, 0);
  m.faults().fail_nth(FailPoint::PageTable, 1);
  EXPECT_EQ(u.vmf_insert_pfn(vma(id), A, *p), VM_FAULT_OOM);
  m.pages().put_page(*p);
}

TEST_F(UserMmTest, vmf_insert_pfn_bugs_on_cow_mappings_and_on_vmas_without_pfnmap_or_mixedmap) {
  auto p = m.alloc_pages(GFP_KERNEL, 0);
  const auto cow = map(A, PAGE_SIZE, VM_READ | VM_WRITE | VM_PFNMAP);
  EXPECT_THROW(u.vmf_insert_pfn(vma(cow), A, *p), KernelBug);
  const auto plain = map(2 * A, PAGE_SIZE, VM_READ | VM_SHARED);
  EXPECT_THROW(u.vmf_insert_pfn(vma(plain), 2 * A, *p), KernelBug);
  const auto mixed = map(3 * A, PAGE_SIZE, VM_READ | VM_SHARED | VM_MIXEDMAP);
  EXPECT_THROW(u.vmf_insert_pfn(vma(mixed), 3 * A, *p), KernelBug);
  EXPECT_EQ(u.vmf_insert_pfn(vma(mixed), 3 * A, ~u64{0} >> 30), VM_FAULT_SIGBUS);
  m.pages().put_page(*p);
}

// ---- remap_pfn_range / vm_iomap_memory / follow_pfn
// -------------------------------------------------

TEST_F(UserMmTest, remap_pfn_range_maps_pfns_and_marks_the_vma_io_pfnmap) {
  const auto id = map(A, 4 * PAGE_SIZE, VM_READ | VM_WRITE | VM_SHARED);
  auto p = m.alloc_pages(GFP_KERNEL | __GFP_ZERO, 1);
  EXPECT_EQ(u.remap_pfn_range(vma(id), A + PAGE_SIZE, *p, PAGE_SIZE + 1, PAGE_SHARED), 0);
  EXPECT_EQ(vma(id).vm_flags & (VM_IO | VM_PFNMAP | VM_DONTEXPAND | VM_DONTDUMP),
            VM_IO | VM_PFNMAP | VM_DONTEXPAND | VM_DONTDUMP);
  u64 pfn = 0;
  EXPECT_EQ(u.follow_pfn(vma(id), A + 2 * PAGE_SIZE + 7, &pfn), 0);
  EXPECT_EQ(pfn, *p + 1);
  EXPECT_EQ(u.follow_pfn(vma(id), A, &pfn), -EINVAL);
  EXPECT_EQ(page(*p).refcount, 1u);
  EXPECT_TRUE(u.touch(mm, A + PAGE_SIZE, Access::Write).ok());
  // access_remote_vm does not reach into pfn mappings.
  EXPECT_EQ(read(A + PAGE_SIZE, 1), "");
  EXPECT_EQ(u.munmap(mm, A, 4 * PAGE_SIZE), 0);
  m.pages().free_pages(*p, 1);
}

TEST_F(UserMmTest, remap_pfn_range_refuses_bad_ranges_protections_and_partial_cow_remaps) {
  const auto id = map(A, 4 * PAGE_SIZE, VM_READ | VM_WRITE | VM_SHARED);
  const auto cow = map(2 * A, 2 * PAGE_SIZE, VM_READ | VM_WRITE);
  auto p = m.alloc_pages(GFP_KERNEL, 2);
  const u64 before = k.state_hash();
  EXPECT_EQ(u.remap_pfn_range(vma(id), A + 1, *p, PAGE_SIZE, PAGE_SHARED), -EINVAL);
  EXPECT_EQ(u.remap_pfn_range(vma(id), A + 3 * PAGE_SIZE, *p, 2 * PAGE_SIZE, PAGE_SHARED), -EINVAL);
  EXPECT_EQ(u.remap_pfn_range(vma(id), A, *p, ~u64{0}, PAGE_SHARED), -EINVAL);
  EXPECT_EQ(u.remap_pfn_range(vma(id), A, *p, PAGE_SIZE, PAGE_KERNEL), -EINVAL);
  EXPECT_EQ(u.remap_pfn_range(vma(id), A, ~u64{0} >> 13, PAGE_SIZE, PAGE_SHARED), -EINVAL);
  EXPECT_EQ(u.remap_pfn_range(vma(cow), 2 * A, *p, PAGE_SIZE, PAGE_READONLY), -EINVAL);
  EXPECT_EQ(k.state_hash(), before);
  EXPECT_THROW(u.remap_pfn_range(vma(id), A, *p, 0, PAGE_SHARED), KernelBug);
  EXPECT_EQ(u.remap_pfn_range(vma(cow), 2 * A, *p, 2 * PAGE_SIZE, PAGE_READONLY), 0);
  EXPECT_EQ(vma(cow).vm_pgoff, *p);
  EXPECT_THROW(u.remap_pfn_range(vma(cow), 2 * A, *p, 2 * PAGE_SIZE, PAGE_READONLY), KernelBug);
}

TEST_F(UserMmTest, a_write_to_a_private_pfn_mapping_copies_the_frame) {
  const auto cow = map(A, PAGE_SIZE, VM_READ | VM_WRITE);
  auto p = m.alloc_pages(GFP_KERNEL, 0);
  m.mem().fill_frame(*p, 0x7e);
  ASSERT_EQ(u.remap_pfn_range(vma(cow), A, *p, PAGE_SIZE, PAGE_READONLY), 0);
  const UserAccess t = u.touch(mm, A, Access::Write);
  ASSERT_TRUE(t.ok());
  EXPECT_NE(pte(A).pfn(), *p);
  EXPECT_FALSE(pte(A).value & _PAGE_SPECIAL);
  std::uint8_t byte = 0;
  m.mem().read(t.pa, {&byte, 1});
  EXPECT_EQ(byte, 0x7e);
  m.pages().put_page(*p);
}

TEST_F(UserMmTest, remap_pfn_range_unwinds_when_a_page_table_cannot_be_allocated) {
  const u64 base = 2 * PMD_SIZE - PAGE_SIZE; // the range crosses into a second PTE table
  const auto id = map(base, 2 * PAGE_SIZE, VM_READ | VM_SHARED);
  auto p = m.alloc_pages(GFP_KERNEL, 1);
  m.faults().fail_nth(FailPoint::PageTable, 4); // pud, pmd, first pte table; then fail
  EXPECT_EQ(u.remap_pfn_range(vma(id), base, *p, 2 * PAGE_SIZE, PAGE_READONLY), -ENOMEM);
  EXPECT_FALSE(pte(base).present());
  EXPECT_FALSE(pte(base + PAGE_SIZE).present());
  m.pages().free_pages(*p, 1);
}

TEST_F(UserMmTest, vm_iomap_memory_maps_the_whole_vma_from_vm_pgoff_and_checks_the_length) {
  const auto id = map(A, 2 * PAGE_SIZE, VM_READ | VM_SHARED);
  auto p = m.alloc_pages(GFP_KERNEL, 2);
  const u64 phys = *p << PAGE_SHIFT;
  const u64 before = k.state_hash();
  EXPECT_EQ(u.vm_iomap_memory(vma(id), phys, PAGE_SIZE), -EINVAL);   // too small
  EXPECT_EQ(u.vm_iomap_memory(vma(id), ~u64{0} - 10, 100), -EINVAL); // wraps
  EXPECT_EQ(u.vm_iomap_memory(vma(id), 0, ~u64{0} - 100), -EINVAL);  // page count wraps
  vma(id).vm_pgoff = 5;
  EXPECT_EQ(u.vm_iomap_memory(vma(id), phys, 4 * PAGE_SIZE), -EINVAL); // pgoff past the range
  vma(id).vm_pgoff = 1;
  EXPECT_EQ(u.vm_iomap_memory(vma(id), phys + 16, 2 * PAGE_SIZE), 0); // pages 1..2 of the range
  EXPECT_NE(k.state_hash(), before);
  u64 pfn = 0;
  EXPECT_EQ(u.follow_pfn(vma(id), A, &pfn), 0);
  EXPECT_EQ(pfn, *p + 1);
  EXPECT_EQ(u.follow_pfn(vma(id), A + PAGE_SIZE, &pfn), 0);
  EXPECT_EQ(pfn, *p + 2);
  EXPECT_EQ(u.munmap(mm, A, 2 * PAGE_SIZE), 0);
  m.pages().free_pages(*p, 2);
}

TEST_F(UserMmTest, follow_pfn_is_einval_outside_io_and_pfnmap_vmas) {
  const auto id = map(A, PAGE_SIZE, VM_READ | VM_WRITE);
  ASSERT_EQ(write(A, "x"), 1);
  u64 pfn = 99;
  EXPECT_EQ(u.follow_pfn(vma(id), A, &pfn), -EINVAL);
  EXPECT_EQ(pfn, 99u);
}

// ---- finish_mkwrite_fault, alloc_set_pte, finish_fault
// ------------------------------------------------

TEST_F(UserMmTest, finish_mkwrite_fault_makes_the_pte_writable_or_reports_a_changed_pte) {
  const u64 f = u.file_create(1);
  const auto id = u.mmap_file(mm, A, PAGE_SIZE, VM_READ | VM_WRITE | VM_SHARED, f, 0);
  ASSERT_TRUE(u.touch(mm, A, Access::Read).ok());
  VmFault vmf;
  vmf.vma = static_cast<u64>(id);
  vmf.address = A;
  vmf.flags = FAULT_FLAG_WRITE;
  vmf.orig_pte = pte(A).value ^ (u64{1} << PAGE_SHIFT); // as if another fault changed it
  EXPECT_EQ(u.finish_mkwrite_fault(vmf), 0u);
  EXPECT_FALSE(pte(A).value & _PAGE_RW);
  vmf.orig_pte = pte(A).value;
  EXPECT_EQ(u.finish_mkwrite_fault(vmf), VM_FAULT_WRITE);
  EXPECT_TRUE(pte(A).value & _PAGE_RW);
  EXPECT_TRUE(pte(A).value & _PAGE_DIRTY);
}

TEST_F(UserMmTest, finish_mkwrite_fault_on_a_private_mapping_warns_and_changes_nothing) {
  const u64 f = u.file_create(1);
  const auto id = u.mmap_file(mm, A, PAGE_SIZE, VM_READ | VM_WRITE, f, 0);
  ASSERT_TRUE(u.touch(mm, A, Access::Read).ok());
  const u64 before = k.state_hash();
  VmFault vmf;
  vmf.vma = static_cast<u64>(id);
  vmf.address = A;
  vmf.orig_pte = pte(A).value;
  EXPECT_EQ(u.finish_mkwrite_fault(vmf), 0u);
  vmf.vma = 9999;
  EXPECT_EQ(u.finish_mkwrite_fault(vmf), 0u);
  EXPECT_EQ(k.state_hash(), before);
}

TEST_F(UserMmTest, alloc_set_pte_maps_the_page_and_consumes_the_callers_reference) {
  const u64 f = u.file_create(2);
  const auto id = u.mmap_file(mm, A, 2 * PAGE_SIZE, VM_READ | VM_SHARED, f, 0);
  auto p = m.alloc_pages(GFP_KERNEL, 0);
  m.mem().fill_frame(*p, 'k');
  VmFault vmf;
  vmf.vma = static_cast<u64>(id);
  vmf.address = A + PAGE_SIZE;
  EXPECT_EQ(u.alloc_set_pte(vmf, *p), 0u);
  EXPECT_EQ(page(*p).refcount, 1u);
  EXPECT_EQ(page(*p).mapcount, 1);
  EXPECT_EQ(read(A + PAGE_SIZE, 2), "kk");
  auto q = m.alloc_pages(GFP_KERNEL, 0);
  EXPECT_EQ(u.alloc_set_pte(vmf, *q), VM_FAULT_NOPAGE);
  EXPECT_EQ(page(*q).mapcount, 0);
  EXPECT_EQ(u.alloc_set_pte(vmf, m.pt().kernel_root()), VM_FAULT_SIGBUS);
  vmf.address = A;
  m.faults().fail_nth(FailPoint::PageTable, 1);
  EXPECT_EQ(u.alloc_set_pte(vmf, *q), 0u); // the table exists already
  EXPECT_EQ(u.munmap(mm, A, 2 * PAGE_SIZE), 0);
  EXPECT_EQ(page(*p).owner, PageOwner::Free);
  EXPECT_EQ(page(*q).owner, PageOwner::Free);
  m.faults().fail_nth(FailPoint::PageTable, 0);
}

TEST_F(UserMmTest, alloc_set_pte_without_a_page_table_is_oom) {
  const auto id = map(A, PAGE_SIZE, VM_READ | VM_SHARED);
  auto p = m.alloc_pages(GFP_KERNEL, 0);
  VmFault vmf;
  vmf.vma = static_cast<u64>(id);
  vmf.address = A;
  m.faults().fail_nth(FailPoint::PageTable, 1);
  EXPECT_EQ(u.alloc_set_pte(vmf, *p), VM_FAULT_OOM);
  m.pages().put_page(*p);
}

TEST_F(UserMmTest, finish_fault_maps_the_cow_page_on_a_private_write_and_the_page_otherwise) {
  const auto priv = map(A, PAGE_SIZE, VM_READ | VM_WRITE);
  const auto shared = map(2 * A, PAGE_SIZE, VM_READ | VM_WRITE | VM_SHARED);
  auto page_a = m.alloc_pages(GFP_KERNEL | __GFP_ZERO, 0);
  auto cow = m.alloc_pages(GFP_KERNEL | __GFP_ZERO, 0);
  VmFault vmf;
  vmf.vma = static_cast<u64>(priv);
  vmf.address = A;
  vmf.flags = FAULT_FLAG_WRITE;
  vmf.page = page_a;
  EXPECT_EQ(u.finish_fault(vmf), VM_FAULT_SIGBUS); // no cow_page prepared
  vmf.cow_page = cow;
  EXPECT_EQ(u.finish_fault(vmf), 0u);
  EXPECT_EQ(pte(A).pfn(), *cow);
  EXPECT_TRUE(pte(A).value & _PAGE_RW);
  VmFault sh;
  sh.vma = static_cast<u64>(shared);
  sh.address = 2 * A;
  sh.flags = FAULT_FLAG_WRITE;
  sh.page = page_a;
  EXPECT_EQ(u.finish_fault(sh), 0u);
  EXPECT_EQ(pte(2 * A).pfn(), *page_a);
  EXPECT_TRUE(pte(2 * A).value & _PAGE_RW);
}

// ---- unmap_mapping_pages / unmap_mapping_range
// ---------------------------------------------------------

struct MappingTest : UserMmTest {
  u64 f = u.file_create(8);
  u64 other = u.mm_create();
  void SetUp() override {
    // mm: shared pages 0..3 at A; other: private pages 2..5 at A, page 3 copied.
    ASSERT_GT(u.mmap_file(mm, A, 4 * PAGE_SIZE, VM_READ | VM_WRITE | VM_SHARED, f, 0), 0);
    ASSERT_GT(u.mmap_file(other, A, 4 * PAGE_SIZE, VM_READ | VM_WRITE, f, 2), 0);
    for (u64 i = 0; i < 4; ++i) {
      ASSERT_TRUE(u.touch(mm, A + i * PAGE_SIZE, Access::Read).ok());
      ASSERT_TRUE(u.touch(other, A + i * PAGE_SIZE, Access::Read).ok());
    }
    ASSERT_EQ(write(A + PAGE_SIZE, "cow", FOLL_WRITE, other), 3);
  }
  bool mapped(u64 in, u64 page_nr) { return pte(A + page_nr * PAGE_SIZE, in).present(); }
};

TEST_F(MappingTest, unmap_mapping_pages_zaps_file_pages_everywhere_but_keeps_private_copies) {
  u.unmap_mapping_pages(f, 3, 1, false);
  EXPECT_FALSE(mapped(mm, 3));
  EXPECT_TRUE(mapped(mm, 2));
  EXPECT_TRUE(mapped(other, 1)); // file page 3 there is a private copy
  EXPECT_EQ(read(A + PAGE_SIZE, 3, 0, other), "cow");
  u.unmap_mapping_pages(f, 3, 1, true);
  EXPECT_FALSE(mapped(other, 1));
  EXPECT_EQ(read(A + PAGE_SIZE, 3, 0, other), file_bytes(3, 0, 3));
}

TEST_F(MappingTest, unmap_mapping_pages_with_nr_zero_goes_to_the_end_of_the_file) {
  u.unmap_mapping_pages(f, 2, 0, true);
  EXPECT_TRUE(mapped(mm, 0));
  EXPECT_TRUE(mapped(mm, 1));
  EXPECT_FALSE(mapped(mm, 2));
  EXPECT_FALSE(mapped(mm, 3));
  for (u64 i = 0; i < 4; ++i)
    EXPECT_FALSE(mapped(other, i));
}

TEST_F(MappingTest, unmap_mapping_range_rounds_the_hole_out_to_whole_pages) {
  // Begin and length round separately (4.19): 2*4096+100 for 4096 bytes is
  // page 2 only, though the hole's last 100 bytes lie in page 3.
  u.unmap_mapping_range(f, 2 * PAGE_SIZE + 100, PAGE_SIZE, 0);
  EXPECT_TRUE(mapped(mm, 1));
  EXPECT_FALSE(mapped(mm, 2));
  EXPECT_TRUE(mapped(mm, 3));
  EXPECT_FALSE(mapped(other, 0));
  EXPECT_TRUE(mapped(other, 1)); // the private copy
  EXPECT_TRUE(mapped(other, 2));
  u.unmap_mapping_range(f, 2 * PAGE_SIZE + 100, PAGE_SIZE + 1, 0); // rounds up to pages 2..3
  EXPECT_FALSE(mapped(mm, 3));
  EXPECT_TRUE(mapped(other, 1));
  u.unmap_mapping_range(f, 0, 0, 1); // holelen 0: to the end
  for (u64 i = 0; i < 4; ++i) {
    EXPECT_FALSE(mapped(mm, i));
    EXPECT_FALSE(mapped(other, i));
  }
}

TEST_F(MappingTest, unmap_mapping_range_with_negative_values_or_an_unknown_file_warns) {
  const u64 before = k.state_hash();
  u.unmap_mapping_range(f, -4096, 4096, 1);
  u.unmap_mapping_range(f, 0, -1, 1);
  u.unmap_mapping_pages(4242, 0, 0, true);
  EXPECT_EQ(k.state_hash(), before);
}

// ---- access_remote_vm
// ----------------------------------------------------------------------------------

TEST_F(UserMmTest, access_remote_vm_crosses_pages_and_stops_at_the_first_unmapped_address) {
  map(A, 2 * PAGE_SIZE, VM_READ | VM_WRITE);
  EXPECT_EQ(write(A + PAGE_SIZE - 2, "abcd"), 4);
  EXPECT_EQ(read(A + PAGE_SIZE - 2, 4), "abcd");
  EXPECT_EQ(write(A + 2 * PAGE_SIZE - 2, "wxyz"), 2);
  EXPECT_EQ(read(A + 2 * PAGE_SIZE - 2, 10), "wx");
  EXPECT_EQ(read(A - 1, 4), "");
}

TEST_F(UserMmTest, access_remote_vm_needs_write_permission_unless_forced_into_a_private_copy) {
  const u64 f = u.file_create(1);
  u.mmap_file(mm, A, PAGE_SIZE, VM_READ, f, 0);
  u.mmap_file(mm, 2 * A, PAGE_SIZE, VM_READ | VM_SHARED, f, 0);
  EXPECT_EQ(write(A, "no"), 0);
  EXPECT_EQ(write(2 * A, "no", FOLL_WRITE | FOLL_FORCE), 0);
  EXPECT_EQ(write(A, "yes", FOLL_WRITE | FOLL_FORCE), 3);
  EXPECT_EQ(read(A, 3), "yes");
  EXPECT_FALSE(pte(A).value & _PAGE_RW);
  EXPECT_EQ(page(pte(A).pfn()).owner, PageOwner::User);
  EXPECT_EQ(read(2 * A, 3), file_bytes(0, 0, 3));
  const u64 before = k.state_hash();
  EXPECT_EQ(write(A, "x", FOLL_WRITE | 0x4), 0);
  EXPECT_EQ(read(A, 3, 0, 777), "");
  EXPECT_EQ(k.state_hash(), before);
}

// ---- remap_vmalloc_range
// -------------------------------------------------------------------------------

TEST_F(UserMmTest, remap_vmalloc_range_shares_a_vmalloc_user_area_with_user_space) {
  const u64 kaddr = v.vmalloc_user(2 * PAGE_SIZE);
  ASSERT_NE(kaddr, 0u);
  const auto id = map(A, 2 * PAGE_SIZE, VM_READ | VM_WRITE | VM_SHARED);
  EXPECT_EQ(u.remap_vmalloc_range(vma(id), kaddr, 0), 0);
  EXPECT_TRUE(vma(id).vm_flags & VM_DONTEXPAND);
  EXPECT_TRUE(vma(id).vm_flags & VM_DONTDUMP);
  EXPECT_TRUE(vma(id).vm_flags & VM_MIXEDMAP);
  const std::string hello = "from the kernel";
  ASSERT_TRUE(m.kernel_write(kaddr + PAGE_SIZE + 3,
                             {reinterpret_cast<const std::uint8_t *>(hello.data()), hello.size()}));
  EXPECT_EQ(read(A + PAGE_SIZE + 3, hello.size()), hello);
  ASSERT_EQ(write(A + 10, "from user"), 9);
  std::vector<std::uint8_t> buf(9);
  ASSERT_TRUE(m.kernel_read(kaddr + 10, buf));
  EXPECT_EQ(std::string(buf.begin(), buf.end()), "from user");
  const UserAccess t = u.touch(mm, A + PAGE_SIZE, Access::Write);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t.pa >> PAGE_SHIFT, *v.vmalloc_to_page(kaddr + PAGE_SIZE));
}

TEST_F(UserMmTest, remap_vmalloc_range_pages_outlive_vfree_until_the_user_mapping_goes) {
  const u64 kaddr = v.vmalloc_user(PAGE_SIZE);
  const Pfn pfn = *v.vmalloc_to_page(kaddr);
  const auto id = map(A, PAGE_SIZE, VM_READ | VM_WRITE | VM_SHARED);
  ASSERT_EQ(u.remap_vmalloc_range(vma(id), kaddr, 0), 0);
  ASSERT_EQ(write(A, "alive"), 5);
  EXPECT_EQ(page(pfn).refcount, 2u);
  v.vfree(kaddr);
  EXPECT_EQ(page(pfn).refcount, 1u);
  EXPECT_EQ(read(A, 5), "alive");
  EXPECT_EQ(k.check(), "");
  EXPECT_EQ(u.munmap(mm, A, PAGE_SIZE), 0);
  EXPECT_EQ(page(pfn).owner, PageOwner::Free);
}

TEST_F(UserMmTest, remap_vmalloc_range_refuses_areas_and_ranges_it_cannot_map) {
  const u64 kaddr = v.vmalloc_user(2 * PAGE_SIZE);
  const u64 plain = v.vmalloc(2 * PAGE_SIZE);
  const auto id = map(A, 2 * PAGE_SIZE, VM_READ | VM_WRITE | VM_SHARED);
  const auto big = map(2 * A, 3 * PAGE_SIZE, VM_READ | VM_WRITE | VM_SHARED);
  const u64 before = k.state_hash();
  EXPECT_EQ(u.remap_vmalloc_range(vma(id), plain, 0), -EINVAL);            // not VM_USERMAP
  EXPECT_EQ(u.remap_vmalloc_range(vma(id), kaddr + 1, 0), -EINVAL);        // unaligned
  EXPECT_EQ(u.remap_vmalloc_range(vma(id), kaddr, 1), -EINVAL);            // runs into the guard
  EXPECT_EQ(u.remap_vmalloc_range(vma(big), kaddr, 0), -EINVAL);           // VMA bigger than area
  EXPECT_EQ(u.remap_vmalloc_range(vma(id), kaddr, ~u64{0} >> 4), -EINVAL); // pgoff overflows
  EXPECT_EQ(u.remap_vmalloc_range(vma(id), kaddr, u64{1} << 51), -EINVAL); // addr + off wraps
  EXPECT_EQ(u.remap_vmalloc_range(vma(id), A, 0), -EINVAL);                // not a vmalloc address
  EXPECT_EQ(u.remap_vmalloc_range_partial(vma(id), A + 1, kaddr, PAGE_SIZE), -EINVAL);
  EXPECT_EQ(u.remap_vmalloc_range_partial(vma(id), A, kaddr, 0), -EINVAL);
  EXPECT_EQ(u.remap_vmalloc_range_partial(vma(id), A, kaddr, ~u64{0}), -EINVAL);
  EXPECT_EQ(u.remap_vmalloc_range_partial(vma(id), A, kaddr + 2 * PAGE_SIZE, PAGE_SIZE), -EINVAL);
  EXPECT_EQ(k.state_hash(), before);
}

TEST_F(UserMmTest, remap_vmalloc_range_partial_returns_the_first_insert_error_and_keeps_the_rest) {
  const u64 kaddr = v.vmalloc_user(2 * PAGE_SIZE);
  const auto id = map(A, 2 * PAGE_SIZE, VM_READ | VM_WRITE | VM_SHARED);
  EXPECT_EQ(u.remap_vmalloc_range_partial(vma(id), A + PAGE_SIZE, kaddr, 2 * PAGE_SIZE), -EFAULT);
  EXPECT_TRUE(pte(A + PAGE_SIZE).present());
  EXPECT_FALSE(vma(id).vm_flags & VM_DONTDUMP);
  EXPECT_EQ(u.remap_vmalloc_range_partial(vma(id), A, kaddr, 2 * PAGE_SIZE), -EBUSY);
  EXPECT_TRUE(pte(A).present());
  EXPECT_EQ(u.remap_vmalloc_range_partial(vma(id), A, kaddr + PAGE_SIZE, 1), -EBUSY);
}

TEST_F(UserMmTest, remap_vmalloc_range_of_a_usermap_area_without_pages_is_a_kernel_bug) {
  VmStruct *area = v.get_vm_area(2 * PAGE_SIZE, VM_USERMAP);
  ASSERT_NE(area, nullptr);
  const auto id = map(A, PAGE_SIZE, VM_READ | VM_SHARED);
  EXPECT_THROW(u.remap_vmalloc_range(vma(id), area->addr, 0), KernelBug);
}

// ---- hashing and 5-level paging
// ----------------------------------------------------------------------------

TEST(UserMmHash, equal_histories_hash_equal_and_different_ones_do_not) {
  auto run = [](bool extra) {
    Kernel k{config()};
    UserMm &u = k.usermm();
    const u64 mm = u.mm_create();
    u.mmap(mm, A, 2 * PAGE_SIZE, VM_READ | VM_WRITE);
    u.touch(mm, A, Access::Write);
    if (extra)
      u.touch(mm, A + PAGE_SIZE, Access::Read);
    return k.state_hash();
  };
  EXPECT_EQ(run(false), run(false));
  EXPECT_NE(run(false), run(true));
}

TEST(UserMm5Level, the_user_half_reaches_user_top_l5) {
  Kernel k{config(5)};
  UserMm &u = k.usermm();
  EXPECT_EQ(u.user_top(), USER_TOP_L5);
  const u64 mm = u.mm_create();
  const u64 high = USER_TOP_L5 - 2 * PAGE_SIZE;
  EXPECT_GT(u.mmap(mm, high, PAGE_SIZE, VM_READ | VM_WRITE), 0);
  EXPECT_TRUE(u.touch(mm, high, Access::Write).ok());
  EXPECT_EQ(u.mmap(mm, USER_TOP_L5, PAGE_SIZE, VM_READ), -EINVAL);
  EXPECT_EQ(k.check(), "");
  EXPECT_EQ(u.mmput(mm), 0);
  EXPECT_EQ(k.check(), "");
}

} // namespace
} // namespace vmcheck
