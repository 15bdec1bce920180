// The vmalloc API of seeds 000/001/003: placement, guard pages, lazy
// freeing, error paths (each WARN path leaves the state hash unchanged),
// contents, vread/vwrite, vmallocinfo, early areas, and the legacy backend.
#include "kernel.h"

#include <gtest/gtest.h>

#include <cstdio>

namespace vmcheck {
namespace {

constexpr u64 kStart = VMALLOC_START_L4;

MachineConfig config(Backend backend = Backend::Modern, std::int64_t lazy = -1) {
  MachineConfig cfg;
  cfg.cpus = 2;
  cfg.nodes = 2;
  cfg.mem_per_node = u64{16} << 20;
  cfg.backend = backend;
  cfg.lazy_pages = lazy;
  return cfg;
}

// A kernel whose invariants are checked at the end of every test.
struct VmallocTest : ::testing::Test {
  Kernel k{config()};
  Vmalloc &v = k.vmalloc();
  Machine &m = k.machine();

  void TearDown() override { EXPECT_EQ(k.check(), ""); }

  std::size_t warns() const { return m.diag().count(DiagKind::Warn); }
  std::vector<std::uint8_t> read(u64 addr, std::size_t n) {
    std::vector<std::uint8_t> buf(n);
    EXPECT_TRUE(m.kernel_read(addr, buf));
    return buf;
  }
};

TEST_F(VmallocTest, first_area_is_at_vmalloc_start_and_the_next_one_after_its_guard_page) {
  EXPECT_EQ(v.vmalloc(8192), kStart);
  EXPECT_EQ(v.vmalloc(8192), kStart + 0x3000);
  EXPECT_EQ(v.vmalloc(1), kStart + 0x6000);
  EXPECT_EQ(v.vmalloc(4097), kStart + 0x8000);
}

TEST_F(VmallocTest, area_size_includes_the_guard_page_and_get_vm_area_size_excludes_it) {
  const u64 a = v.vmalloc(3 * PAGE_SIZE);
  VmStruct *vm = v.find_vm_area(a);
  ASSERT_NE(vm, nullptr);
  EXPECT_EQ(vm->size, 4 * PAGE_SIZE);
  EXPECT_EQ(get_vm_area_size(*vm), 3 * PAGE_SIZE);
  EXPECT_EQ(vm->nr_pages, 3u);
  EXPECT_EQ(vm->flags, VM_ALLOC);
}

TEST_F(VmallocTest, touching_the_guard_page_faults_as_a_guard_page) {
  const u64 a = v.vmalloc(2 * PAGE_SIZE);
  EXPECT_TRUE(m.touch(a + PAGE_SIZE, Access::Write).ok());
  EXPECT_EQ(m.touch(a + 2 * PAGE_SIZE, Access::Read).fault, Fault::GuardPage);
}

TEST_F(VmallocTest, vmalloc_of_zero_bytes_warns_returns_null_and_changes_nothing) {
  v.vmalloc_init();
  const u64 before = k.state_hash();
  const std::size_t w = warns();
  EXPECT_EQ(v.vmalloc(0), 0u);
  EXPECT_EQ(warns(), w + 1);
  EXPECT_EQ(k.state_hash(), before);
}

TEST_F(VmallocTest, vmalloc_of_more_pages_than_totalram_returns_null_and_changes_nothing) {
  v.vmalloc_init();
  const u64 before = k.state_hash();
  EXPECT_EQ(v.vmalloc((m.pages().totalram_pages() + 1) * PAGE_SIZE), 0u);
  EXPECT_EQ(v.vmalloc(~u64{0}), 0u); // PAGE_ALIGN wraps to 0
  EXPECT_EQ(k.state_hash(), before);
}

TEST_F(VmallocTest, bad_gfp_node_or_alignment_is_refused_before_anything_changes) {
  v.vmalloc_init();
  const u64 before = k.state_hash();
  EXPECT_EQ(v.__vmalloc(PAGE_SIZE, 0x80000000u, PAGE_KERNEL), 0u);
  EXPECT_EQ(v.vmalloc_node(PAGE_SIZE, 7), 0u);
  EXPECT_EQ(v.__vmalloc_node(PAGE_SIZE, 3 * PAGE_SIZE, GFP_KERNEL, PAGE_KERNEL, NUMA_NO_NODE, "t"),
            0u);
  EXPECT_EQ(k.state_hash(), before);
  EXPECT_EQ(warns(), 3u);
}

TEST_F(VmallocTest, vzalloc_memory_reads_as_zero_while_vmalloc_memory_is_not_cleared) {
  const u64 z = v.vzalloc(2 * PAGE_SIZE);
  for (auto b : read(z, 2 * PAGE_SIZE))
    ASSERT_EQ(b, 0);
  const u64 a = v.vmalloc(PAGE_SIZE);
  EXPECT_EQ(read(a, 1)[0], kUninitByte); // fresh RAM holds garbage
  const u64 u = v.vmalloc_user(PAGE_SIZE);
  EXPECT_EQ(read(u, 8), std::vector<std::uint8_t>(8, 0));
  EXPECT_TRUE(v.find_vm_area(u)->flags & VM_USERMAP);
}

TEST_F(VmallocTest, vmalloc_32_pages_lie_below_4_gib) {
  const u64 a = v.vmalloc_32_user(8 * PAGE_SIZE);
  ASSERT_NE(a, 0u);
  for (Pfn p : v.find_vm_area(a)->pages)
    EXPECT_LT(p, kDma32LimitPfn);
  EXPECT_EQ(read(a, 4), std::vector<std::uint8_t>(4, 0));
}

TEST_F(VmallocTest, vmalloc_node_takes_pages_from_that_node) {
  for (int node : {0, 1}) {
    const u64 a = v.vzalloc_node(4 * PAGE_SIZE, node);
    for (Pfn p : v.find_vm_area(a)->pages)
      EXPECT_EQ(m.mem().pfn_to_nid(p), static_cast<unsigned>(node));
  }
}

TEST_F(VmallocTest, only_vmalloc_exec_memory_is_executable) {
  const u64 x = v.vmalloc_exec(PAGE_SIZE);
  const u64 a = v.vmalloc(PAGE_SIZE);
  EXPECT_TRUE(m.touch(x, Access::Exec).ok());
  EXPECT_EQ(m.touch(a, Access::Exec).fault, Fault::Protection);
}

TEST_F(VmallocTest, vfree_of_null_does_nothing) {
  v.vmalloc_init();
  const u64 before = k.state_hash();
  v.vfree(0);
  v.vunmap(0);
  EXPECT_EQ(k.state_hash(), before);
  EXPECT_EQ(warns(), 0u);
}

TEST_F(VmallocTest, vfree_of_an_unaligned_or_unknown_address_warns_and_changes_nothing) {
  const u64 a = v.vmalloc(PAGE_SIZE);
  const u64 before = k.state_hash();
  v.vfree(a + 1);
  v.vfree(kStart + 0x100000);
  v.vunmap(a + 7);
  EXPECT_EQ(warns(), 3u);
  EXPECT_EQ(k.state_hash(), before);
  EXPECT_NE(m.diag().entries()[0].reason.find("bad address"), std::string::npos);
  EXPECT_NE(m.diag().entries()[1].reason.find("nonexistent vm area"), std::string::npos);
}

TEST_F(VmallocTest, double_vfree_warns_and_changes_nothing) {
  const u64 a = v.vmalloc(PAGE_SIZE);
  v.vfree(a);
  const u64 before = k.state_hash();
  v.vfree(a);
  EXPECT_EQ(warns(), 1u);
  EXPECT_EQ(k.state_hash(), before);
}

TEST_F(VmallocTest, vfree_of_an_interior_address_frees_the_whole_area_and_says_so) {
  const u64 a = v.vmalloc(4 * PAGE_SIZE);
  v.vfree(a + 2 * PAGE_SIZE);
  EXPECT_EQ(v.find_vm_area(a), nullptr);
  EXPECT_EQ(warns(), 1u);
  EXPECT_NE(m.diag().entries()[0].reason.find("inside the area"), std::string::npos);
}

TEST_F(VmallocTest, vfree_frees_the_pages_at_once_but_keeps_the_va_reserved_until_a_purge) {
  v.vmalloc_init();
  const u64 free_before = m.pages().nr_free_total();
  const u64 a = v.vmalloc(2 * PAGE_SIZE);
  v.vfree(a);
  EXPECT_EQ(v.vmap_lazy_nr(), 3u); // the guard page counts
  EXPECT_EQ(v.lazy_areas().count(a), 1u);
  EXPECT_EQ(m.touch(a, Access::Read).fault, Fault::NotPresent);
  // The PUD, PMD and PTE tables built for it stay; its pages came back.
  EXPECT_EQ(m.pages().nr_free_total(), free_before - 3);
  EXPECT_EQ(v.vmalloc(2 * PAGE_SIZE), a + 3 * PAGE_SIZE); // not reused yet
  v.purge_vmap_area_lazy();
  EXPECT_EQ(v.vmap_lazy_nr(), 0u);
  EXPECT_EQ(v.vmalloc(2 * PAGE_SIZE), a);
}

TEST_F(VmallocTest, lazy_max_pages_scales_with_fls_of_the_cpu_count) {
  EXPECT_EQ(v.lazy_max_pages(), 2u * 8192u); // fls(2) = 2
  Kernel four{[] {
    MachineConfig c = config();
    c.cpus = 4;
    return c;
  }()};
  EXPECT_EQ(four.vmalloc().lazy_max_pages(), 3u * 8192u);
}

TEST(VmallocLazy, exceeding_the_lazy_threshold_purges_synchronously_with_one_flush) {
  Kernel k{config(Backend::Modern, 5)};
  Vmalloc &v = k.vmalloc();
  const u64 a = v.vmalloc(PAGE_SIZE); // 2 pages with guard
  const u64 b = v.vmalloc(PAGE_SIZE);
  const u64 c = v.vmalloc(PAGE_SIZE);
  const u64 flushes = k.machine().mmu().stats(0).remote_flushes;
  v.vfree(a);
  v.vfree(b);
  EXPECT_EQ(v.vmap_lazy_nr(), 4u); // 4 <= 5: still lazy
  EXPECT_EQ(k.machine().mmu().stats(0).remote_flushes, flushes);
  v.vfree(c); // 6 > 5: purge now
  EXPECT_EQ(v.vmap_lazy_nr(), 0u);
  EXPECT_EQ(k.machine().mmu().stats(0).remote_flushes, flushes + 1);
  EXPECT_EQ(v.vmalloc(PAGE_SIZE), a);
  EXPECT_EQ(k.check(), "");
}

TEST(VmallocLazy, lazy_zero_reuses_a_freed_address_immediately) {
  Kernel k{config(Backend::Modern, 0)};
  const u64 a = k.vmalloc().vmalloc(PAGE_SIZE);
  k.vmalloc().vfree(a);
  EXPECT_EQ(k.vmalloc().vmalloc(PAGE_SIZE), a);
  EXPECT_EQ(k.check(), "");
}

TEST_F(VmallocTest, an_allocation_that_finds_no_space_purges_and_retries_once) {
  const u64 lo = kStart + 0x100000;
  const u64 hi = lo + 4 * PAGE_SIZE;
  VmStruct *a = v.__get_vm_area(3 * PAGE_SIZE, 0, lo, hi); // 3 pages + guard fit
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->addr, lo);
  v.free_vm_area(a); // lazily freed: the window is full
  VmStruct *b = v.__get_vm_area(3 * PAGE_SIZE, 0, lo, hi);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->addr, lo);
  EXPECT_EQ(warns(), 0u);
  EXPECT_EQ(v.__get_vm_area(PAGE_SIZE, 0, lo, hi), nullptr);
  EXPECT_EQ(warns(), 1u); // "vmap allocation ... failed"
}

TEST_F(VmallocTest, a_page_allocation_failure_midway_frees_everything_and_warns) {
  v.vmalloc_init();
  ASSERT_NE(v.vmalloc(PAGE_SIZE), 0u); // build the page tables first
  const u64 free_before = m.pages().nr_free_total();
  m.faults().fail_nth(FailPoint::AllocPage, 3);
  EXPECT_EQ(v.vmalloc(4 * PAGE_SIZE), 0u);
  EXPECT_EQ(m.pages().nr_free_total(), free_before); // the two pages taken came back
  ASSERT_EQ(warns(), 1u);
  EXPECT_NE(m.diag().entries()[0].reason.find("vmalloc: allocation failure, allocated 8192"),
            std::string::npos);
  EXPECT_EQ(v.lazy_areas().size(), 1u); // the area itself was vfree'd: its VA is lazy
}

TEST_F(VmallocTest, gfp_nowarn_silences_the_allocation_failure) {
  v.vmalloc_init();
  m.faults().fail_nth(FailPoint::AllocPage, 1);
  EXPECT_EQ(v.__vmalloc(PAGE_SIZE, GFP_KERNEL | __GFP_NOWARN, PAGE_KERNEL), 0u);
  EXPECT_EQ(warns(), 0u);
}

TEST_F(VmallocTest, a_metadata_allocation_failure_returns_null) {
  v.vmalloc_init();
  m.faults().fail_nth(FailPoint::VmapArea, 1);
  EXPECT_EQ(v.vmalloc(PAGE_SIZE), 0u);
  m.faults().fail_nth(FailPoint::VmapArea, 2);
  EXPECT_EQ(v.vmalloc(PAGE_SIZE), 0u);
  EXPECT_TRUE(v.busy_areas().empty());
}

TEST_F(VmallocTest, a_page_array_larger_than_a_page_is_itself_vmalloced_right_after_the_area) {
  const u64 a = v.vmalloc(513 * PAGE_SIZE); // 513 * 8 bytes > PAGE_SIZE
  VmStruct *vm = v.find_vm_area(a);
  ASSERT_NE(vm, nullptr);
  EXPECT_TRUE(vm->flags & VM_VPAGES);
  EXPECT_EQ(vm->pages_array, a + 514 * PAGE_SIZE);
  VmStruct *arr = v.find_vm_area(vm->pages_array);
  ASSERT_NE(arr, nullptr);
  EXPECT_EQ(arr->nr_pages, 2u);
  const u64 nested = vm->pages_array;
  v.vfree(a);
  EXPECT_EQ(v.find_vm_area(nested), nullptr);
  EXPECT_TRUE(v.busy_areas().empty());
}

TEST_F(VmallocTest, vfree_in_interrupt_context_is_deferred_to_the_work_queue) {
  const u64 a = v.vmalloc(PAGE_SIZE);
  m.irq_enter();
  v.vfree(a);
  m.irq_exit();
  EXPECT_NE(v.find_vm_area(a), nullptr);
  EXPECT_EQ(m.deferred().pending(), 1u);
  m.deferred().run_all();
  EXPECT_EQ(v.find_vm_area(a), nullptr);
}

TEST_F(VmallocTest, vunmap_in_interrupt_context_is_a_kernel_bug) {
  const u64 a = v.vmalloc(PAGE_SIZE);
  m.irq_enter();
  EXPECT_THROW(v.vunmap(a), KernelBug);
  m.irq_exit();
}

TEST_F(VmallocTest, vmap_maps_the_callers_pages_and_vunmap_leaves_them_allocated) {
  auto p = m.alloc_pages(GFP_KERNEL | __GFP_ZERO, 0);
  auto q = m.alloc_pages(GFP_KERNEL | __GFP_ZERO, 0);
  ASSERT_TRUE(p && q);
  const Pfn pages[] = {*p, *q, *p};
  const u64 a = v.vmap(pages, 3, VM_MAP, PAGE_KERNEL);
  ASSERT_NE(a, 0u);
  const std::uint8_t hi[] = {'h', 'i'};
  ASSERT_TRUE(m.kernel_write(a, hi));
  EXPECT_EQ(read(a + 2 * PAGE_SIZE, 2), (std::vector<std::uint8_t>{'h', 'i'})); // same page
  EXPECT_EQ(v.find_vm_area(a)->size, 4 * PAGE_SIZE);
  v.vunmap(a);
  EXPECT_EQ(m.mem().peek(*p).refcount, 1u);
  m.pages().free_pages(*p, 0);
  m.pages().free_pages(*q, 0);
}

TEST_F(VmallocTest, vmap_refuses_a_short_page_array_or_free_pages_without_changing_anything) {
  auto p = m.alloc_pages(GFP_KERNEL, 0);
  ASSERT_TRUE(p);
  v.vmalloc_init();
  const u64 before = k.state_hash();
  const Pfn one[] = {*p};
  EXPECT_EQ(v.vmap(one, 2, VM_MAP, PAGE_KERNEL), 0u);
  const Pfn freed[] = {*p + 1};
  EXPECT_EQ(v.vmap(freed, 1, VM_MAP, PAGE_KERNEL), 0u);
  EXPECT_EQ(v.vmap(one, static_cast<unsigned>(m.pages().totalram_pages() + 1), VM_MAP, PAGE_KERNEL),
            0u);
  EXPECT_EQ(k.state_hash(), before);
  m.pages().free_pages(*p, 0);
}

TEST_F(VmallocTest, ioremap_areas_align_to_their_size_order_up_to_ioremap_max_order) {
  ASSERT_NE(v.vmalloc(PAGE_SIZE), 0u);
  VmStruct *io = v.get_vm_area(64 * 1024, VM_IOREMAP);
  ASSERT_NE(io, nullptr);
  EXPECT_EQ(io->addr % (64 * 1024), 0u);
  EXPECT_EQ(io->addr, kStart + 0x10000);
  VmStruct *big = v.get_vm_area(8 << 20, VM_IOREMAP);
  ASSERT_NE(big, nullptr);
  EXPECT_EQ(big->addr % (u64{1} << IOREMAP_MAX_ORDER), 0u);
}

TEST_F(VmallocTest, find_vm_area_finds_areas_by_containment) {
  const u64 a = v.vmalloc(3 * PAGE_SIZE);
  EXPECT_EQ(v.find_vm_area(a + 5000), v.find_vm_area(a));
  EXPECT_EQ(v.find_vm_area(a + 3 * PAGE_SIZE), v.find_vm_area(a)); // the guard page
  EXPECT_EQ(v.find_vm_area(a + 4 * PAGE_SIZE), nullptr);
}

TEST_F(VmallocTest, alloc_vm_area_builds_page_tables_but_maps_nothing) {
  VmStruct *a = v.alloc_vm_area(3 * PAGE_SIZE);
  ASSERT_NE(a, nullptr);
  ASSERT_EQ(a->ptes.size(), 3u);
  EXPECT_TRUE(a->flags & VM_IOREMAP);
  for (u64 i = 0; i < 3; ++i) {
    const PteRef r = m.pt().walk(m.pt().kernel_root(), a->addr + i * PAGE_SIZE);
    EXPECT_EQ(r.slot_pa, a->ptes.slot(i));
    EXPECT_FALSE(r.present());
  }
  v.free_vm_area(a);
}

// The slots are computed from one PTE table per 2 MiB: across a table
// boundary each page still names its own table's slot.
TEST_F(VmallocTest, alloc_vm_area_slots_across_pte_tables) {
  const u64 pages = (PMD_SIZE >> PAGE_SHIFT) + 700;
  VmStruct *a = v.alloc_vm_area(pages * PAGE_SIZE);
  ASSERT_NE(a, nullptr);
  ASSERT_EQ(a->ptes.size(), pages);
  EXPECT_GE(a->ptes.tables.size(), 2u);
  for (u64 i = 0; i < pages; ++i) {
    const PteRef r = m.pt().walk(m.pt().kernel_root(), a->addr + i * PAGE_SIZE);
    ASSERT_EQ(r.slot_pa, a->ptes.slot(i)) << "page " << i;
  }
  v.free_vm_area(a);
}

TEST_F(VmallocTest, free_vm_area_of_an_area_no_longer_live_is_a_kernel_bug) {
  VmStruct *a = v.get_vm_area(PAGE_SIZE, VM_IOREMAP);
  VmStruct copy = *a;
  v.free_vm_area(a);
  EXPECT_THROW(v.free_vm_area(&copy), KernelBug);
}

TEST_F(VmallocTest, map_kernel_range_noflush_returns_the_pages_mapped_and_refuses_a_present_pte) {
  VmStruct *a = v.get_vm_area(2 * PAGE_SIZE, VM_MAP);
  auto p = m.alloc_pages(GFP_KERNEL, 0);
  const Pfn pages[] = {*p, *p};
  EXPECT_EQ(v.map_kernel_range_noflush(a->addr, 2 * PAGE_SIZE, PAGE_KERNEL, pages), 2);
  EXPECT_EQ(v.map_kernel_range_noflush(a->addr, PAGE_SIZE, PAGE_KERNEL, pages), -EBUSY);
  EXPECT_TRUE(m.touch(a->addr, Access::Read).ok());
  v.unmap_kernel_range(a->addr, 2 * PAGE_SIZE);
  EXPECT_EQ(m.touch(a->addr, Access::Read).fault, Fault::NotPresent); // flushed: no stale hit
  v.free_vm_area(a);
  m.pages().free_pages(*p, 0);
}

TEST_F(VmallocTest, unmap_kernel_range_noflush_leaves_the_tlb_stale_until_a_flush) {
  VmStruct *a = v.get_vm_area(PAGE_SIZE, VM_MAP);
  auto p = m.alloc_pages(GFP_KERNEL, 0);
  const Pfn pages[] = {*p};
  ASSERT_EQ(v.map_kernel_range_noflush(a->addr, PAGE_SIZE, PAGE_KERNEL, pages), 1);
  ASSERT_TRUE(m.touch(a->addr, Access::Read).ok());
  v.unmap_kernel_range_noflush(a->addr, PAGE_SIZE);
  EXPECT_EQ(m.touch(a->addr, Access::Read).fault, Fault::StaleTlb);
  EXPECT_THROW(v.unmap_kernel_range_noflush(a->addr, 0), KernelBug);
  m.mmu().flush_tlb_all();
  v.free_vm_area(a);
  m.pages().free_pages(*p, 0);
}

TEST_F(VmallocTest, vread_zero_fills_holes_and_returns_the_whole_count) {
  const u64 a = v.vzalloc(PAGE_SIZE);
  const u64 b = v.vzalloc(PAGE_SIZE); // a's guard page lies between them
  const std::uint8_t msg[] = {'x', 'y'};
  ASSERT_EQ(v.vwrite(msg, a + PAGE_SIZE - 1), 2); // 'y' falls into the guard hole
  std::vector<std::uint8_t> buf(3 * PAGE_SIZE, 0xee);
  EXPECT_EQ(v.vread(buf, a), static_cast<long>(buf.size()));
  EXPECT_EQ(buf[PAGE_SIZE - 1], 'x');
  EXPECT_EQ(buf[PAGE_SIZE], 0); // the guard page reads as zero
  EXPECT_EQ(buf[2 * PAGE_SIZE], 0);
  EXPECT_EQ(b, a + 2 * PAGE_SIZE);
}

TEST_F(VmallocTest, vread_and_vwrite_return_zero_when_no_live_area_is_met) {
  v.vmalloc_init();
  std::vector<std::uint8_t> buf(100, 0xee);
  EXPECT_EQ(v.vread(buf, kStart + 0x5000), 0);
  EXPECT_EQ(v.vwrite(buf, kStart + 0x5000), 0);
}

TEST_F(VmallocTest, ioremap_areas_are_holes_for_vread_and_vwrite) {
  VmStruct *io = v.get_vm_area(PAGE_SIZE, VM_IOREMAP);
  std::vector<std::uint8_t> buf(16, 0xee);
  EXPECT_EQ(v.vwrite(buf, io->addr), 0); // nothing copied
  EXPECT_EQ(v.vread(buf, io->addr), 16); // intersects: zero filled
  EXPECT_EQ(buf, std::vector<std::uint8_t>(16, 0));
}

TEST_F(VmallocTest, vmallocinfo_prints_the_kernel_line_format) {
  const u64 a = v.vmalloc_user(2 * PAGE_SIZE);
  const u64 b = v.vmalloc(PAGE_SIZE);
  v.get_vm_area(PAGE_SIZE, VM_IOREMAP);
  v.vfree(b);
  const std::string info = v.vmallocinfo();
  EXPECT_EQ(info, "0xffffc90000000000-0xffffc90000003000   12288 vmalloc_user pages=2 vmalloc "
                  "user N0=2\n"
                  "0xffffc90000003000-0xffffc90000005000    8192 unpurged vm_area\n"
                  "0xffffc90000005000-0xffffc90000007000    8192 get_vm_area ioremap\n");
  EXPECT_EQ(a, kStart);
}

TEST(VmallocBoot, early_areas_register_before_init_and_become_areas_after) {
  Kernel k{config()};
  Vmalloc &v = k.vmalloc();
  v.vm_area_add_early(kStart + 0x10000, 0x4000, VM_IOREMAP);
  const u64 r = v.vm_area_register_early(0x3000, VM_ALLOC, 0x2000);
  EXPECT_EQ(r, kStart);
  EXPECT_EQ(v.vm_area_register_early(0x1000, VM_ALLOC, 0x1000), kStart + 0x3000);
  EXPECT_THROW(v.vm_area_add_early(kStart + 0x11000, 0x1000, 0), KernelBug); // overlaps
  EXPECT_EQ(v.vmalloc(PAGE_SIZE), kStart + 0x4000);
  EXPECT_NE(v.find_vm_area(kStart + 0x10000), nullptr);
  EXPECT_THROW(v.vm_area_add_early(kStart + 0x100000, 0x1000, 0), KernelBug); // after init
  EXPECT_EQ(k.check(), "");
}

TEST(VmallocPaging, five_level_paging_moves_the_vmalloc_range) {
  MachineConfig cfg = config();
  cfg.paging_levels = 5;
  Kernel k{cfg};
  EXPECT_EQ(k.vmalloc().vmalloc(PAGE_SIZE), VMALLOC_START_L5);
  EXPECT_TRUE(k.machine().touch(VMALLOC_START_L5, Access::Write).ok());
  EXPECT_EQ(k.check(), "");
}

TEST_F(VmallocTest, vmalloc_to_page_and_is_vmalloc_addr_agree_with_the_page_tables) {
  const u64 a = v.vmalloc(2 * PAGE_SIZE);
  VmStruct *vm = v.find_vm_area(a);
  EXPECT_EQ(v.vmalloc_to_page(a + PAGE_SIZE + 5), vm->pages[1]);
  EXPECT_EQ(v.vmalloc_to_pfn(a), vm->pages[0]);
  EXPECT_EQ(v.vmalloc_to_page(a + 2 * PAGE_SIZE), std::nullopt);
  EXPECT_TRUE(v.is_vmalloc_addr(a));
  EXPECT_TRUE(v.is_vmalloc_addr(VMALLOC_END_L4 - 1));
  EXPECT_FALSE(v.is_vmalloc_addr(VMALLOC_END_L4));
  EXPECT_FALSE(v.is_vmalloc_addr(kStart - 1));
}

TEST_F(VmallocTest, a_purge_flushes_stale_translations_before_the_va_is_reused) {
  const u64 a = v.vmalloc(PAGE_SIZE);
  ASSERT_TRUE(m.set_current_cpu(1));
  ASSERT_TRUE(m.touch(a, Access::Write).ok()); // cpu 1 caches the translation
  ASSERT_TRUE(m.set_current_cpu(0));
  v.vfree(a);
  EXPECT_EQ(m.mmu().stale_entries().size(), 1u); // lazily freed: allowed
  v.purge_vmap_area_lazy();
  EXPECT_TRUE(m.mmu().stale_entries().empty());
  EXPECT_EQ(v.vmalloc(PAGE_SIZE), a);
}

// ---- check() sees corruption made below the API ------------------------------------------

// Each test corrupts the state the way a buggy engine could, through the
// lowest layer (a raw write into a page-table frame, an edit of a page
// record), after a check that passed, and expects the next check to name it.
struct VmallocCheck : ::testing::Test {
  Kernel k{config()};
  Vmalloc &v = k.vmalloc();
  Machine &m = k.machine();

  // The physical address of va's PTE (its PTE table must exist).
  u64 pte_slot(u64 va) {
    const PteRef r = m.pt().walk(m.pt().kernel_root(), va);
    EXPECT_EQ(r.level, 1u);
    return r.slot_pa;
  }
  void raw_map(u64 va, Pfn pfn) {
    m.mem().write_u64(pte_slot(va), (pfn << PAGE_SHIFT) | PAGE_KERNEL);
  }
  static std::string hex(u64 v) {
    char buf[24];
    std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
    return buf;
  }
};

TEST_F(VmallocCheck, a_pte_written_into_free_va_is_outside_every_live_area) {
  const u64 a = v.vmalloc(2 * PAGE_SIZE);
  ASSERT_EQ(k.check(), "");
  raw_map(a + 8 * PAGE_SIZE, v.find_vm_area(a)->pages[0]);
  EXPECT_EQ(k.check(), "vmalloc: PTE at " + hex(a + 8 * PAGE_SIZE) + " outside every live area");
}

TEST_F(VmallocCheck, a_pte_written_into_a_lazily_freed_area_is_outside_every_live_area) {
  const u64 a = v.vmalloc(PAGE_SIZE);
  const u64 b = v.vmalloc(PAGE_SIZE);
  const Pfn page = v.find_vm_area(b)->pages[0];
  v.vfree(a);
  ASSERT_EQ(v.lazy_areas().count(a), 1u);
  ASSERT_EQ(k.check(), "");
  raw_map(a, page);
  EXPECT_EQ(k.check(), "vmalloc: PTE at " + hex(a) + " outside every live area");
}

TEST_F(VmallocCheck, the_first_pte_outside_every_live_area_is_the_one_reported) {
  const u64 a = v.vmalloc(PAGE_SIZE);
  const u64 b = v.vmalloc(PAGE_SIZE);
  const Pfn page = v.find_vm_area(a)->pages[0];
  v.vfree(b);
  ASSERT_EQ(k.check(), "");
  raw_map(b + 5 * PAGE_SIZE, page);
  raw_map(b + 9 * PAGE_SIZE, page);
  raw_map(b, page);
  EXPECT_EQ(k.check(), "vmalloc: PTE at " + hex(b) + " outside every live area");
}

TEST_F(VmallocCheck, a_mapped_guard_page_is_reported) {
  const u64 a = v.vmalloc(2 * PAGE_SIZE);
  ASSERT_EQ(k.check(), "");
  raw_map(a + 2 * PAGE_SIZE, v.find_vm_area(a)->pages[0]);
  EXPECT_EQ(k.check(), "vmalloc: guard page of " + hex(a) + " is mapped");
}

TEST_F(VmallocCheck, a_vmalloc_page_unmapped_or_remapped_in_any_pte_table_is_reported) {
  // 600 pages from VMALLOC_START: the area's PTEs lie in two PTE tables.
  const u64 a = v.vmalloc(600 * PAGE_SIZE);
  ASSERT_EQ(a, kStart);
  const VmStruct &vm = *v.find_vm_area(a);
  ASSERT_EQ(k.check(), "");
  m.mem().write_u64(pte_slot(a + 550 * PAGE_SIZE), 0);
  EXPECT_EQ(k.check(), "vmalloc: vmalloc page 550 of " + hex(a) + " is not mapped");
  raw_map(a + 550 * PAGE_SIZE, vm.pages[550]);
  ASSERT_EQ(k.check(), "");
  raw_map(a + 3 * PAGE_SIZE, vm.pages[4]);
  EXPECT_EQ(k.check(), "vmalloc: vmalloc page 3 of " + hex(a) + " is not mapped");
  raw_map(a + 3 * PAGE_SIZE, vm.pages[3]);
  ASSERT_EQ(k.check(), "");
  raw_map(a + 511 * PAGE_SIZE, vm.pages[512]);
  EXPECT_EQ(k.check(), "vmalloc: vmalloc page 511 of " + hex(a) + " is not mapped");
}

TEST_F(VmallocCheck, a_vmalloc_page_record_that_lost_its_owner_is_reported_in_page_order) {
  const u64 a = v.vmalloc(700 * PAGE_SIZE);
  const VmStruct &vm = *v.find_vm_area(a);
  ASSERT_EQ(k.check(), "");
  m.mem().page(vm.pages[600]).owner = PageOwner::Kernel;
  EXPECT_EQ(k.check(), "vmalloc: vmalloc page 600 of " + hex(a) + " is not owned by the area");
  // An earlier page that is not mapped comes first; at the same page, the
  // mapping is reported.
  m.mem().write_u64(pte_slot(a + 600 * PAGE_SIZE), 0);
  m.mem().write_u64(pte_slot(a + 650 * PAGE_SIZE), 0);
  EXPECT_EQ(k.check(), "vmalloc: vmalloc page 600 of " + hex(a) + " is not mapped");
  m.mem().page(vm.pages[20]).owner = PageOwner::User;
  EXPECT_EQ(k.check(), "vmalloc: vmalloc page 20 of " + hex(a) + " is not owned by the area");
}

// ---- the legacy (2.6) backend --------------------------------------------------------

TEST(VmallocLegacy, frees_immediately_and_places_first_fit_like_the_modern_backend_with_lazy_0) {
  Kernel legacy{config(Backend::Legacy)};
  Kernel modern{config(Backend::Modern, 0)};
  for (Kernel *k : {&legacy, &modern}) {
    Vmalloc &v = k->vmalloc();
    const u64 a = v.vmalloc(PAGE_SIZE);
    const u64 b = v.vmalloc(3 * PAGE_SIZE);
    v.vfree(a);
    EXPECT_EQ(v.vmalloc(PAGE_SIZE), a);
    EXPECT_EQ(b, kStart + 2 * PAGE_SIZE);
    EXPECT_EQ(k->check(), "");
  }
}

TEST(VmallocLegacy, ioremap_alignment_uses_fls_of_the_size_so_64k_aligns_to_128k) {
  Kernel k{config(Backend::Legacy)};
  Vmalloc &v = k.vmalloc();
  ASSERT_NE(v.vmalloc(PAGE_SIZE), 0u);
  VmStruct *io = v.get_vm_area(64 * 1024, VM_IOREMAP);
  ASSERT_NE(io, nullptr);
  EXPECT_EQ(io->addr, kStart + 0x20000);
}

TEST(VmallocLegacy, lookups_match_the_start_address_exactly) {
  Kernel k{config(Backend::Legacy)};
  Vmalloc &v = k.vmalloc();
  const u64 a = v.vmalloc(2 * PAGE_SIZE);
  EXPECT_EQ(v.find_vm_area(a + PAGE_SIZE), nullptr);
  const u64 before = k.state_hash();
  v.vfree(a + PAGE_SIZE);
  EXPECT_EQ(k.state_hash(), before);
  EXPECT_EQ(k.machine().diag().count(DiagKind::Warn), 1u);
  auto vm = v.remove_vm_area(a);
  ASSERT_NE(vm, nullptr);
  EXPECT_EQ(vm->size, 2 * PAGE_SIZE); // seed 003 hands back the size without the guard
}

TEST(VmallocLegacy, vfree_in_interrupt_context_is_a_kernel_bug) {
  Kernel k{config(Backend::Legacy)};
  const u64 a = k.vmalloc().vmalloc(PAGE_SIZE);
  k.machine().irq_enter();
  EXPECT_THROW(k.vmalloc().vfree(a), KernelBug);
}

TEST(VmallocLegacy, vread_returns_the_bytes_it_walked_without_tail_fill) {
  Kernel k{config(Backend::Legacy)};
  Vmalloc &v = k.vmalloc();
  const u64 a = v.vzalloc(PAGE_SIZE);
  std::vector<std::uint8_t> buf(3 * PAGE_SIZE, 0xee);
  EXPECT_EQ(v.vread(buf, a - 10), static_cast<long>(10 + PAGE_SIZE));
  EXPECT_EQ(buf[0], 0);
  EXPECT_EQ(buf[10 + PAGE_SIZE], 0xee); // untouched tail
}

} // namespace
} // namespace vmcheck
