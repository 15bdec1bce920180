#include "machine/diag.h"
#include "machine/page_alloc.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

namespace vmcheck {
namespace {

constexpr u64 MiB = u64{1} << 20;
constexpr unsigned kTop = MAX_ORDER - 1;

// A bare machine: memory, injector, log and allocator, nothing else.
struct Rig {
  PhysMem mem;
  FaultInjector faults;
  DiagLog diag;
  PageAllocator alloc;
  Rig(unsigned nodes, u64 bytes) : mem(nodes, bytes), alloc(mem, faults, diag) {}

  u64 hash() const {
    StateHasher h;
    mem.hash_into(h);
    alloc.hash_into(h);
    faults.hash_into(h);
    return h.value();
  }
};

TEST(PageAlloc, a_fresh_allocator_holds_every_page_as_max_order_blocks) {
  Rig r(2, 512 * MiB);
  EXPECT_EQ(r.alloc.nr_free_total(), r.alloc.totalram_pages());
  EXPECT_EQ(r.alloc.nr_free(0, Zone::DMA32), (256 * MiB) >> PAGE_SHIFT);
  EXPECT_EQ(r.alloc.nr_free(0, Zone::Normal), (256 * MiB) >> PAGE_SHIFT);
  EXPECT_EQ(r.alloc.nr_free(1, Zone::DMA32), 0u);
  EXPECT_EQ(r.alloc.nr_free(1, Zone::Normal), (512 * MiB) >> PAGE_SHIFT);
  EXPECT_EQ(r.alloc.nr_free_blocks(1, Zone::Normal, kTop), 128u);
  EXPECT_EQ(r.alloc.check(), "");
}

TEST(PageAlloc, order0_allocation_takes_the_lowest_normal_pfn_and_splits_its_block) {
  Rig r(2, 512 * MiB);
  const auto p = r.alloc.alloc_pages_node(0, GFP_KERNEL, 0);
  ASSERT_TRUE(p);
  EXPECT_EQ(*p, kDma32LimitPfn);
  for (unsigned k = 0; k < kTop; ++k)
    EXPECT_EQ(r.alloc.nr_free_blocks(0, Zone::Normal, k), 1u) << "order " << k;
  const auto q = r.alloc.alloc_pages_node(0, GFP_KERNEL, 0);
  ASSERT_TRUE(q);
  EXPECT_EQ(*q, kDma32LimitPfn + 1);
  EXPECT_EQ(r.alloc.check(), "");
}

TEST(PageAlloc, an_allocated_block_carries_owner_refcount_and_compound_flags) {
  Rig r(1, 8 * MiB);
  const auto p = r.alloc.alloc_pages_node(0, GFP_KERNEL, 2, PageOwner::Vmalloc);
  ASSERT_TRUE(p);
  const Page &head = r.mem.peek(*p);
  EXPECT_EQ(head.refcount, 1u);
  EXPECT_EQ(head.order, 2u);
  EXPECT_EQ(head.flags, PG_head);
  for (Pfn t = *p + 1; t < *p + 4; ++t) {
    EXPECT_EQ(r.mem.peek(t).flags, PG_tail);
    EXPECT_EQ(r.mem.peek(t).refcount, 0u);
    EXPECT_EQ(r.mem.peek(t).owner, PageOwner::Vmalloc);
  }
  EXPECT_EQ(head.owner, PageOwner::Vmalloc);
}

TEST(PageAlloc, dma32_requests_are_served_only_from_the_dma32_zone) {
  Rig r(2, 512 * MiB);
  const auto p = r.alloc.alloc_pages_node(0, GFP_KERNEL | __GFP_DMA32, 0);
  ASSERT_TRUE(p);
  EXPECT_EQ(r.mem.pfn_zone(*p), Zone::DMA32);
  EXPECT_EQ(*p, r.mem.min_pfn());
  // Node 1 has no DMA32 memory: the request falls back to node 0's.
  const auto q = r.alloc.alloc_pages_node(1, GFP_KERNEL | __GFP_DMA32, 3);
  ASSERT_TRUE(q);
  EXPECT_EQ(r.mem.pfn_zone(*q), Zone::DMA32);
  EXPECT_EQ(r.mem.pfn_to_nid(*q), 0u);
  EXPECT_EQ(r.alloc.nr_free(1, Zone::Normal), r.mem.pages_per_node());
}

TEST(PageAlloc, dma32_request_with_thisnode_fails_on_a_node_without_dma32) {
  Rig r(2, 512 * MiB);
  EXPECT_FALSE(r.alloc.alloc_pages_node(1, GFP_KERNEL | __GFP_DMA32 | __GFP_THISNODE, 0));
}

TEST(PageAlloc, normal_requests_fall_back_to_dma32_when_normal_is_exhausted) {
  // 16 MiB on one node: 8 MiB on each side of 4 GiB.
  Rig r(1, 16 * MiB);
  ASSERT_EQ(r.alloc.nr_free(0, Zone::Normal), 2048u);
  for (int i = 0; i < 2; ++i) {
    const auto p = r.alloc.alloc_pages_node(0, GFP_KERNEL, kTop);
    ASSERT_TRUE(p);
    EXPECT_EQ(r.mem.pfn_zone(*p), Zone::Normal);
  }
  const auto p = r.alloc.alloc_pages_node(0, GFP_KERNEL, 0);
  ASSERT_TRUE(p);
  EXPECT_EQ(r.mem.pfn_zone(*p), Zone::DMA32);
}

TEST(PageAlloc, the_preferred_node_is_used_first_then_the_next_one) {
  Rig r(2, 4 * MiB);
  const auto a = r.alloc.alloc_pages_node(1, GFP_KERNEL, 0);
  ASSERT_TRUE(a);
  EXPECT_EQ(r.mem.pfn_to_nid(*a), 1u);
  const auto b = r.alloc.alloc_pages_node(0, GFP_KERNEL, kTop);
  ASSERT_TRUE(b);
  EXPECT_EQ(r.mem.pfn_to_nid(*b), 0u);
  // Node 0 is now full: the next request from node 0 lands on node 1.
  const auto c = r.alloc.alloc_pages_node(0, GFP_KERNEL, 0);
  ASSERT_TRUE(c);
  EXPECT_EQ(r.mem.pfn_to_nid(*c), 1u);
}

TEST(PageAlloc, node_fallback_wraps_around_from_the_last_node_to_node0) {
  Rig r(3, 4 * MiB);
  ASSERT_TRUE(r.alloc.alloc_pages_node(2, GFP_KERNEL, kTop));
  const auto p = r.alloc.alloc_pages_node(2, GFP_KERNEL, 0);
  ASSERT_TRUE(p);
  EXPECT_EQ(r.mem.pfn_to_nid(*p), 0u);
}

TEST(PageAlloc, thisnode_fails_when_its_node_is_full_even_if_others_are_free) {
  Rig r(2, 4 * MiB);
  ASSERT_TRUE(r.alloc.alloc_pages_node(0, GFP_KERNEL, kTop));
  const auto before = r.hash();
  EXPECT_FALSE(r.alloc.alloc_pages_node(0, GFP_KERNEL | __GFP_THISNODE | __GFP_NOWARN, 0));
  EXPECT_EQ(r.hash(), before);
  EXPECT_EQ(r.alloc.nr_free(1, Zone::Normal), 1024u);
}

TEST(PageAlloc, gfp_zero_returns_zeroed_frames_even_after_the_block_was_dirtied) {
  Rig r(1, 8 * MiB);
  const auto p = r.alloc.alloc_pages_node(0, GFP_KERNEL, 1);
  ASSERT_TRUE(p);
  r.mem.write_u64(*p << PAGE_SHIFT, 0xdead);
  r.mem.write_u64((*p + 1) << PAGE_SHIFT, 0xbeef);
  r.alloc.free_pages(*p, 1);
  const auto q = r.alloc.alloc_pages_node(0, GFP_KERNEL | __GFP_ZERO, 1);
  ASSERT_EQ(q, p);
  EXPECT_TRUE(r.mem.frame_is_zero(*q));
  EXPECT_TRUE(r.mem.frame_is_zero(*q + 1));
}

TEST(PageAlloc, without_gfp_zero_a_reused_frame_keeps_its_old_contents) {
  Rig r(1, 8 * MiB);
  const auto p = r.alloc.alloc_pages_node(0, GFP_KERNEL, 0);
  ASSERT_TRUE(p);
  r.mem.write_u64(*p << PAGE_SHIFT, 0xdead);
  r.alloc.free_pages(*p, 0);
  const auto q = r.alloc.alloc_pages_node(0, GFP_KERNEL, 0);
  ASSERT_EQ(q, p);
  EXPECT_EQ(r.mem.read_u64(*q << PAGE_SHIFT), 0xdeadu);
}

TEST(PageAlloc, a_bulk_allocation_takes_the_pages_single_calls_would_and_stops_at_a_failure) {
  // Two machines, one fed page by page, one in bulk, with a fault armed for
  // the same page on both: same pages, same diagnostics, same state.
  Rig one(2, 8 * MiB), bulk(2, 8 * MiB);
  for (Rig *r : {&one, &bulk}) {
    ASSERT_TRUE(r->alloc.alloc_pages_node(1, GFP_KERNEL, 0)); // a split block to start from
    r->faults.fail_nth(FailPoint::AllocPage, 700);
  }
  const Gfp gfp = GFP_KERNEL | __GFP_ZERO;
  std::vector<Pfn> singles;
  while (const auto p = one.alloc.alloc_pages_node(1, gfp, 0, PageOwner::Vmalloc))
    singles.push_back(*p);
  std::vector<Pfn> pages;
  EXPECT_EQ(bulk.alloc.alloc_pages_bulk(1, gfp, PageOwner::Vmalloc, 5000, pages), 699u);
  EXPECT_EQ(pages, singles);
  EXPECT_EQ(bulk.diag.size(), one.diag.size());
  EXPECT_EQ(bulk.hash(), one.hash());
  EXPECT_EQ(bulk.alloc.check(), "");
  // Past the failure, both fall back to node 0 and run out of memory on
  // the same page.
  singles.clear();
  while (const auto p = one.alloc.alloc_pages_node(1, gfp | __GFP_NOWARN, 0, PageOwner::Vmalloc))
    singles.push_back(*p);
  pages.clear();
  EXPECT_EQ(bulk.alloc.alloc_pages_bulk(1, gfp | __GFP_NOWARN, PageOwner::Vmalloc, 5000, pages),
            singles.size());
  EXPECT_EQ(pages, singles);
  EXPECT_EQ(bulk.hash(), one.hash());
}

TEST(PageAlloc, a_bulk_allocation_refuses_what_a_single_one_refuses_for_the_first_page) {
  Rig r(1, 4 * MiB);
  std::vector<Pfn> pages;
  EXPECT_EQ(r.alloc.alloc_pages_bulk(3, GFP_KERNEL, PageOwner::Vmalloc, 4, pages), 0u);
  EXPECT_EQ(r.alloc.alloc_pages_bulk(0, GFP_KERNEL, PageOwner::Free, 4, pages), 0u);
  EXPECT_TRUE(pages.empty());
  const auto d = r.diag.since(0);
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0].reason, "invalid node 3");
  EXPECT_EQ(d[1].reason, "owner tag 'free' is reserved for the allocator");
  EXPECT_EQ(r.alloc.nr_free_total(), r.alloc.totalram_pages());
}

TEST(PageAlloc, a_failed_allocation_reports_order_and_mode) {
  Rig r(1, 4 * MiB);
  ASSERT_TRUE(r.alloc.alloc_pages_node(0, GFP_KERNEL, kTop));
  const std::size_t mark = r.diag.size();
  EXPECT_FALSE(r.alloc.alloc_pages_node(0, GFP_KERNEL, 3));
  const auto d = r.diag.since(mark);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].kind, DiagKind::Error);
  EXPECT_EQ(d[0].function, "alloc_pages");
  EXPECT_EQ(d[0].reason, "page allocation failure: order:3, mode:0xcc0");
}

TEST(PageAlloc, nowarn_suppresses_the_failure_diagnostic) {
  Rig r(1, 4 * MiB);
  ASSERT_TRUE(r.alloc.alloc_pages_node(0, GFP_KERNEL, kTop));
  const std::size_t mark = r.diag.size();
  EXPECT_FALSE(r.alloc.alloc_pages_node(0, GFP_KERNEL | __GFP_NOWARN, 0));
  r.faults.fail_nth(FailPoint::AllocPage, 1);
  EXPECT_FALSE(r.alloc.alloc_pages_node(0, GFP_KERNEL | __GFP_NOWARN, 0));
  EXPECT_EQ(r.diag.size(), mark);
}

TEST(PageAlloc, nofail_is_not_subject_to_fault_injection) {
  Rig r(1, 8 * MiB);
  r.faults.fail_nth(FailPoint::AllocPage, 1);
  EXPECT_TRUE(r.alloc.alloc_pages_node(0, GFP_KERNEL | __GFP_NOFAIL, 0));
  EXPECT_EQ(r.faults.injected(FailPoint::AllocPage), 0u);
  // The armed failure still hits the next ordinary allocation.
  EXPECT_FALSE(r.alloc.alloc_pages_node(0, GFP_KERNEL | __GFP_NOWARN, 0));
}

TEST(PageAlloc, nofail_that_cannot_be_satisfied_is_a_kernel_bug) {
  Rig r(1, 4 * MiB);
  ASSERT_TRUE(r.alloc.alloc_pages_node(0, GFP_KERNEL, kTop));
  EXPECT_THROW(r.alloc.alloc_pages_node(0, GFP_KERNEL | __GFP_NOFAIL, 0), KernelBug);
}

TEST(PageAlloc, an_order_of_max_order_or_more_fails_with_a_warning_unless_nowarn) {
  Rig r(1, 8 * MiB);
  const auto before = r.hash();
  std::size_t mark = r.diag.size();
  EXPECT_FALSE(r.alloc.alloc_pages_node(0, GFP_KERNEL, MAX_ORDER));
  ASSERT_EQ(r.diag.since(mark).size(), 1u);
  EXPECT_EQ(r.diag.since(mark)[0].kind, DiagKind::Warn);
  mark = r.diag.size();
  EXPECT_FALSE(r.alloc.alloc_pages_node(0, GFP_KERNEL | __GFP_NOWARN, MAX_ORDER + 5));
  EXPECT_EQ(r.diag.size(), mark);
  EXPECT_EQ(r.hash(), before);
}

TEST(PageAlloc, unknown_gfp_bits_warn_and_change_nothing) {
  Rig r(1, 8 * MiB);
  r.faults.fail_nth(FailPoint::AllocPage, 2);
  const auto before = r.hash();
  const std::size_t mark = r.diag.size();
  EXPECT_FALSE(r.alloc.alloc_pages_node(0, GFP_KERNEL | 0x800000, 0));
  ASSERT_EQ(r.diag.since(mark).size(), 1u);
  EXPECT_EQ(r.diag.since(mark)[0].kind, DiagKind::Warn);
  EXPECT_EQ(r.hash(), before);
  EXPECT_EQ(r.faults.attempts(FailPoint::AllocPage), 0u);
}

TEST(PageAlloc, an_invalid_node_warns_and_fails) {
  Rig r(2, 4 * MiB);
  const auto before = r.hash();
  const std::size_t mark = r.diag.size();
  EXPECT_FALSE(r.alloc.alloc_pages_node(2, GFP_KERNEL, 0));
  EXPECT_FALSE(r.alloc.alloc_pages_node(NUMA_NO_NODE, GFP_KERNEL, 0));
  EXPECT_EQ(r.diag.count(DiagKind::Warn), 2u);
  EXPECT_EQ(r.diag.since(mark).size(), 2u);
  EXPECT_EQ(r.hash(), before);
}

TEST(PageAlloc, freeing_every_page_coalesces_back_to_max_order_blocks) {
  Rig r(1, 8 * MiB);
  std::vector<Pfn> pfns;
  while (auto p = r.alloc.alloc_pages_node(0, GFP_KERNEL | __GFP_NOWARN, 0))
    pfns.push_back(*p);
  ASSERT_EQ(pfns.size(), r.alloc.totalram_pages());
  EXPECT_EQ(r.alloc.nr_free_total(), 0u);
  EXPECT_EQ(r.alloc.check(), "");
  // Free in a scattered (but fixed) order so that merging happens at every
  // level from both sides.
  for (std::size_t i = 0; i < pfns.size(); ++i)
    std::swap(pfns[i], pfns[(i * 7919) % pfns.size()]);
  for (Pfn p : pfns)
    r.alloc.free_pages(p, 0);
  EXPECT_EQ(r.alloc.nr_free_total(), r.alloc.totalram_pages());
  for (Zone z : {Zone::DMA32, Zone::Normal}) {
    EXPECT_EQ(r.alloc.nr_free_blocks(0, z, kTop), 1u);
    for (unsigned k = 0; k < kTop; ++k)
      EXPECT_EQ(r.alloc.nr_free_blocks(0, z, k), 0u) << "order " << k;
  }
  EXPECT_EQ(r.alloc.check(), "");
}

// Free MAX_ORDER blocks are kept as runs: a fresh zone is one run, taking
// blocks splits it and freeing them in any order merges it back, to a state
// that hashes as the fresh one.
TEST(PageAlloc, max_order_blocks_freed_in_any_order_merge_back_into_the_fresh_run) {
  const Rig fresh(2, 1024 * MiB);
  Rig r(2, 1024 * MiB);
  const u64 top_blocks = r.alloc.nr_free_blocks(1, Zone::Normal, kTop);
  std::vector<Pfn> blocks;
  for (int i = 0; i < 5; ++i)
    blocks.push_back(*r.alloc.alloc_pages_node(1, GFP_KERNEL | __GFP_THISNODE, kTop));
  EXPECT_EQ(blocks[1], blocks[0] + (u64{1} << kTop)); // lowest PFN first
  EXPECT_EQ(r.alloc.nr_free_blocks(1, Zone::Normal, kTop), top_blocks - 5);
  EXPECT_EQ(r.alloc.check(), "");
  for (std::size_t i : {3u, 1u, 4u, 0u, 2u}) {
    r.alloc.free_pages(blocks[i], kTop);
    ASSERT_EQ(r.alloc.check(), "") << "after freeing block " << i;
  }
  EXPECT_EQ(r.alloc.nr_free_blocks(1, Zone::Normal, kTop), top_blocks);
  EXPECT_EQ(r.hash(), fresh.hash());
}

TEST(PageAlloc, fault_injection_fails_exactly_the_nth_allocation) {
  Rig r(1, 8 * MiB);
  r.faults.fail_nth(FailPoint::AllocPage, 3);
  std::vector<bool> ok;
  for (int i = 0; i < 6; ++i)
    ok.push_back(r.alloc.alloc_pages_node(0, GFP_KERNEL | __GFP_NOWARN, 0).has_value());
  EXPECT_EQ(ok, (std::vector<bool>{true, true, false, true, true, true}));
  EXPECT_EQ(r.alloc.check(), "");
}

TEST(PageAlloc, page_table_allocations_count_as_the_page_table_fail_point) {
  Rig r(1, 8 * MiB);
  r.faults.fail_nth(FailPoint::PageTable, 1);
  EXPECT_TRUE(r.alloc.alloc_pages_node(0, GFP_KERNEL, 0, PageOwner::Kernel));
  EXPECT_FALSE(r.alloc.alloc_pages_node(0, GFP_KERNEL | __GFP_NOWARN, 0, PageOwner::PageTable));
  r.faults.fail_nth(FailPoint::AllocPage, 1);
  EXPECT_TRUE(r.alloc.alloc_pages_node(0, GFP_KERNEL, 0, PageOwner::PageTable));
  EXPECT_FALSE(r.alloc.alloc_pages_node(0, GFP_KERNEL | __GFP_NOWARN, 0, PageOwner::Vmalloc));
  EXPECT_EQ(r.faults.attempts(FailPoint::PageTable), 2u);
  EXPECT_EQ(r.faults.attempts(FailPoint::AllocPage), 2u);
}

TEST(PageAlloc, bad_frees_are_kernel_bugs_that_change_nothing) {
  Rig r(1, 8 * MiB);
  const auto p = r.alloc.alloc_pages_node(0, GFP_KERNEL, 2);
  const auto q = r.alloc.alloc_pages_node(0, GFP_KERNEL, 0);
  ASSERT_TRUE(p && q);
  r.alloc.free_pages(*q, 0);
  const auto before = r.hash();
  EXPECT_THROW(r.alloc.free_pages(*q, 0), KernelBug);                  // double free
  EXPECT_THROW(r.alloc.free_pages(*p + 1, 0), KernelBug);              // tail page
  EXPECT_THROW(r.alloc.free_pages(*p, 1), KernelBug);                  // wrong order
  EXPECT_THROW(r.alloc.free_pages(r.mem.max_pfn() - 1, 0), KernelBug); // never allocated
  EXPECT_THROW(r.alloc.free_pages(r.mem.max_pfn(), 0), KernelBug);     // not memory
  EXPECT_EQ(r.hash(), before);
  EXPECT_EQ(r.alloc.check(), "");
}

TEST(PageAlloc, freeing_a_reserved_page_is_a_kernel_bug_that_changes_nothing) {
  Rig r(1, 8 * MiB);
  const auto p = r.alloc.alloc_pages_node(0, GFP_KERNEL, 0);
  ASSERT_TRUE(p);
  r.mem.page(*p).flags |= PG_reserved;
  const auto before = r.hash();
  EXPECT_THROW(r.alloc.free_pages(*p, 0), KernelBug);
  EXPECT_EQ(r.hash(), before);
}

TEST(PageAlloc, get_page_keeps_a_block_alive_until_the_last_put) {
  Rig r(1, 8 * MiB);
  const auto p = r.alloc.alloc_pages_node(0, GFP_KERNEL, 1);
  ASSERT_TRUE(p);
  const u64 free_after_alloc = r.alloc.nr_free_total();
  r.alloc.get_page(*p + 1); // a tail reference pins the head
  EXPECT_EQ(r.mem.peek(*p).refcount, 2u);
  r.alloc.free_pages(*p, 1);
  EXPECT_EQ(r.alloc.nr_free_total(), free_after_alloc);
  r.alloc.put_page(*p);
  EXPECT_EQ(r.alloc.nr_free_total(), r.alloc.totalram_pages());
  EXPECT_EQ(r.alloc.check(), "");
}

TEST(PageAlloc, get_or_put_of_a_free_page_is_a_kernel_bug) {
  Rig r(1, 8 * MiB);
  const auto before = r.hash();
  EXPECT_THROW(r.alloc.get_page(r.mem.min_pfn()), KernelBug);
  EXPECT_THROW(r.alloc.get_page(r.mem.min_pfn() + 5), KernelBug);
  EXPECT_THROW(r.alloc.put_page(r.mem.min_pfn() + 5), KernelBug);
  EXPECT_EQ(r.hash(), before);
}

TEST(PageAlloc, check_reports_a_corrupted_free_page_record) {
  Rig r(1, 8 * MiB);
  ASSERT_TRUE(r.alloc.alloc_pages_node(0, GFP_KERNEL, 0));
  ASSERT_EQ(r.alloc.check(), "");
  const Pfn inside_free_block = r.mem.min_pfn() + 600; // in the free order-9 half
  r.mem.page(inside_free_block).refcount = 1;
  EXPECT_NE(r.alloc.check(), "");
}

// check() tests each stretch of a section in one pass and only then looks
// for the culprit: the report still names the first bad frame.
TEST(PageAlloc, check_names_the_first_bad_frame_of_each_kind_of_stretch) {
  Rig r(1, 8 * MiB);
  const auto a = r.alloc.alloc_pages_node(0, GFP_KERNEL, 2);
  ASSERT_TRUE(a);
  ASSERT_EQ(r.alloc.check(), "");
  const auto hex = [](Pfn p) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "pfn 0x%llx", static_cast<unsigned long long>(p));
    return std::string(buf);
  };
  // An allocated tail page whose record says free.
  r.mem.page(*a + 3).owner = PageOwner::Free;
  r.mem.page(*a + 3).flags = 0;
  EXPECT_EQ(r.alloc.check(), hex(*a + 3) + " is in no free block but its record says free");
  r.mem.page(*a + 3).owner = PageOwner::Kernel;
  r.mem.page(*a + 3).flags = PG_tail;
  ASSERT_EQ(r.alloc.check(), "");
  // An allocated page whose record carries the buddy flag.
  r.mem.page(*a + 2).flags = PG_tail | PG_buddy;
  EXPECT_EQ(r.alloc.check(), hex(*a + 2) + " is in no free block but its record says free");
  r.mem.page(*a + 2).flags = PG_tail;
  ASSERT_EQ(r.alloc.check(), "");
  // A tail of a free block that names an owner.
  r.mem.page(*a + 5).owner = PageOwner::Vmalloc;
  EXPECT_EQ(r.alloc.check(), hex(*a + 5) + " inside a free block has a non-free record");
  r.mem.page(*a + 5).owner = PageOwner::Free;
  ASSERT_EQ(r.alloc.check(), "");
  // Two tails of free blocks mapped by user space: the lower one is named.
  r.mem.page(*a + 700).mapcount = 1;
  r.mem.page(*a + 9).mapcount = 1;
  EXPECT_EQ(r.alloc.check(), hex(*a + 9) + " inside a free block has a non-free record");
  r.mem.page(*a + 9).mapcount = 0;
  r.mem.page(*a + 700).mapcount = 0;
  ASSERT_EQ(r.alloc.check(), "");
  // A touched section that is one free MAX_ORDER block again.
  r.alloc.free_pages(*a, 2);
  ASSERT_EQ(r.alloc.check(), "");
  r.mem.page(*a + 1023).refcount = 2;
  EXPECT_EQ(r.alloc.check(), hex(*a + 1023) + " inside a free block has a non-free record");
}

TEST(PageAlloc, check_reports_a_free_block_head_that_lost_its_buddy_flag) {
  Rig r(1, 8 * MiB);
  r.mem.page(r.mem.min_pfn() + 1024).flags = 0;
  EXPECT_NE(r.alloc.check(), "");
}

TEST(PageAlloc, equal_histories_give_equal_hashes_and_different_ones_differ) {
  const auto run = [](unsigned order) {
    Rig r(2, 4 * MiB);
    const auto p = r.alloc.alloc_pages_node(1, GFP_KERNEL, 2);
    r.alloc.alloc_pages_node(0, GFP_KERNEL, 0);
    r.alloc.free_pages(*p, 2);
    r.alloc.alloc_pages_node(1, GFP_KERNEL, order);
    return r.hash();
  };
  EXPECT_EQ(run(3), run(3));
  EXPECT_NE(run(3), run(2));
}

} // namespace
} // namespace vmcheck
