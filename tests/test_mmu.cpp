// The MMU and per-CPU TLBs: translation, protection, guard pages, A/D bits,
// staleness and alias detection, flushes and LRU replacement.
#include "machine/diag.h"
#include "machine/fault_inject.h"
#include "machine/mmu.h"
#include "machine/page_alloc.h"
#include "machine/page_table.h"
#include "machine/phys_mem.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <ostream>
#include <vector>

namespace vmcheck {

// Readable gtest failure messages.
void PrintTo(Fault f, std::ostream *os) {
  *os << fault_name(f);
}

namespace {

constexpr u64 kVa = VMALLOC_START_L4 + 0x40000;
constexpr u64 kUserVa = 0x0000000000400000ULL;

struct Rig {
  explicit Rig(unsigned cpus = 2, unsigned tlb = 8)
      : mem(1, u64{8} << 20), alloc(mem, faults, diag), pt(mem, alloc, diag, 4),
        mmu(pt, diag, cpus, tlb) {
    EXPECT_TRUE(pt.init());
  }
  Pfn root() const { return pt.kernel_root(); }
  Pfn page() { return *alloc.alloc_pages_node(0, GFP_KERNEL, 0, PageOwner::Kernel); }
  Pfn map(u64 va, pgprot_t prot = PAGE_KERNEL) {
    const Pfn pfn = page();
    EXPECT_EQ(pt.map_page(root(), va, pfn, prot), 0);
    return pfn;
  }
  Translation read(unsigned cpu, u64 va) {
    return mmu.translate(cpu, root(), va, Access::Read, false);
  }

  DiagLog diag;
  FaultInjector faults;
  PhysMem mem;
  PageAllocator alloc;
  PageTables pt;
  Mmu mmu;
};

TEST(Mmu, first_access_walks_and_the_second_hits_the_tlb) {
  Rig r;
  const Pfn pfn = r.map(kVa);
  Translation t = r.read(0, kVa + 0x123);
  ASSERT_TRUE(t.ok());
  EXPECT_FALSE(t.tlb_hit);
  EXPECT_EQ(t.pa, (pfn << PAGE_SHIFT) + 0x123);
  t = r.read(0, kVa + 0x456);
  ASSERT_TRUE(t.ok());
  EXPECT_TRUE(t.tlb_hit);
  EXPECT_EQ(t.pa, (pfn << PAGE_SHIFT) + 0x456);
  EXPECT_EQ(r.mmu.stats(0).misses, 1u);
  EXPECT_EQ(r.mmu.stats(0).hits, 1u);
  // The other CPU has its own TLB.
  EXPECT_FALSE(r.read(1, kVa).tlb_hit);
  EXPECT_EQ(r.mmu.stats(1).misses, 1u);
}

TEST(Mmu, non_canonical_address_faults_without_touching_the_tlb) {
  Rig r;
  Translation t = r.read(0, 0x0000800000000000ULL);
  EXPECT_EQ(t.fault, Fault::NonCanonical);
  EXPECT_TRUE(r.mmu.tlb(0).empty());
  EXPECT_STREQ(fault_name(t.fault), "non_canonical");
}

TEST(Mmu, write_to_a_read_only_page_is_a_protection_fault) {
  Rig r;
  r.map(kVa, PAGE_KERNEL_RO);
  EXPECT_EQ(r.mmu.translate(0, r.root(), kVa, Access::Write, false).fault, Fault::Protection);
  EXPECT_TRUE(r.mmu.tlb(0).empty()); // faults never fill the TLB
  ASSERT_TRUE(r.read(0, kVa).ok());
  // Served from the TLB, the cached protection still refuses the write.
  Translation t = r.mmu.translate(0, r.root(), kVa, Access::Write, false);
  EXPECT_EQ(t.fault, Fault::Protection);
  EXPECT_TRUE(t.tlb_hit);
}

TEST(Mmu, executing_a_no_execute_page_is_a_protection_fault) {
  Rig r;
  r.map(kVa, PAGE_KERNEL);
  r.map(kVa + PAGE_SIZE, PAGE_KERNEL_EXEC);
  EXPECT_EQ(r.mmu.translate(0, r.root(), kVa, Access::Exec, false).fault, Fault::Protection);
  EXPECT_TRUE(r.mmu.translate(0, r.root(), kVa + PAGE_SIZE, Access::Exec, false).ok());
}

TEST(Mmu, user_mode_cannot_touch_kernel_pages_but_can_touch_user_pages) {
  Rig r;
  r.map(kVa, PAGE_KERNEL);
  r.map(kUserVa, PAGE_SHARED);
  EXPECT_EQ(r.mmu.translate(0, r.root(), kVa, Access::Read, true).fault, Fault::Protection);
  EXPECT_TRUE(r.mmu.translate(0, r.root(), kUserVa, Access::Write, true).ok());
  // A kernel translation already cached must not serve user mode either.
  ASSERT_TRUE(r.read(0, kVa).ok());
  EXPECT_EQ(r.mmu.translate(0, r.root(), kVa, Access::Read, true).fault, Fault::Protection);
}

TEST(Mmu, unmapped_kernel_address_is_a_guard_page_when_the_classifier_says_so) {
  Rig r;
  EXPECT_EQ(r.read(0, kVa).fault, Fault::NotPresent);
  r.mmu.set_guard_classifier([](u64 va) { return (va & PAGE_MASK) == kVa; });
  EXPECT_EQ(r.read(0, kVa + 0x80).fault, Fault::GuardPage);
  EXPECT_EQ(r.read(0, kVa + PAGE_SIZE).fault, Fault::NotPresent);
  EXPECT_TRUE(r.mmu.tlb(0).empty());
  r.mmu.set_guard_classifier([](u64) { return true; });
  EXPECT_EQ(r.read(0, kUserVa).fault, Fault::NotPresent); // user addresses are never guards
}

TEST(Mmu, access_sets_the_accessed_bit_and_a_write_sets_the_dirty_bit) {
  Rig r;
  const pgprot_t clean = _PAGE_PRESENT | _PAGE_RW | _PAGE_GLOBAL | _PAGE_NX;
  r.map(kVa, clean);
  ASSERT_TRUE(r.read(0, kVa).ok());
  u64 pte = r.pt.walk(r.root(), kVa).value;
  EXPECT_TRUE(pte & _PAGE_ACCESSED);
  EXPECT_FALSE(pte & _PAGE_DIRTY);
  // The read left a clean entry in the TLB; the write must still dirty the PTE.
  Translation t = r.mmu.translate(0, r.root(), kVa, Access::Write, false);
  ASSERT_TRUE(t.ok());
  EXPECT_TRUE(t.tlb_hit);
  pte = r.pt.walk(r.root(), kVa).value;
  EXPECT_TRUE(pte & _PAGE_DIRTY);
  // Updating A/D bits does not make anyone's cached entry stale.
  EXPECT_TRUE(r.mmu.stale_entries().empty());
}

TEST(Mmu, access_after_clear_without_flush_is_detected_as_stale_without_a_finding) {
  Rig r;
  r.map(kVa);
  ASSERT_TRUE(r.read(0, kVa).ok());
  r.pt.clear(r.root(), kVa);
  const auto mark = r.diag.size();
  Translation t = r.read(0, kVa);
  EXPECT_EQ(t.fault, Fault::StaleTlb);
  EXPECT_EQ(r.mmu.stats(0).stale_hits, 1u);
  EXPECT_EQ(r.diag.since(mark).size(), 0u);
  EXPECT_EQ(r.mmu.stale_entries().size(), 1u);
  EXPECT_TRUE(r.mmu.alias_entries().empty());
  // CPU 1 never cached it: a plain not-present fault.
  EXPECT_EQ(r.read(1, kVa).fault, Fault::NotPresent);
}

TEST(Mmu, remapping_a_cached_va_to_another_frame_without_flush_is_an_alias_finding) {
  Rig r;
  const Pfn old_pfn = r.map(kVa);
  ASSERT_TRUE(r.read(0, kVa).ok());
  r.pt.clear(r.root(), kVa);
  const Pfn new_pfn = r.map(kVa);
  ASSERT_NE(old_pfn, new_pfn);
  ASSERT_EQ(r.mmu.alias_entries().size(), 1u);
  EXPECT_EQ(r.mmu.alias_entries()[0].first, 0u);

  const auto mark = r.diag.size();
  EXPECT_EQ(r.read(0, kVa).fault, Fault::StaleTlb);
  auto found = r.diag.since(mark);
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].kind, DiagKind::Finding);
  EXPECT_EQ(found[0].function, "tlb");
  EXPECT_NE(found[0].reason.find("stale TLB alias"), std::string::npos);
  EXPECT_EQ(found[0].addr, kVa);
}

TEST(Mmu, flush_tlb_kernel_range_makes_every_cpu_walk_and_see_the_new_mapping) {
  Rig r(3);
  r.map(kVa);
  const Pfn keep = r.map(kVa + 16 * PAGE_SIZE);
  for (unsigned c = 0; c < 3; ++c) {
    ASSERT_TRUE(r.read(c, kVa).ok());
    ASSERT_TRUE(r.read(c, kVa + 16 * PAGE_SIZE).ok());
  }
  r.pt.clear(r.root(), kVa);
  const Pfn fresh = r.map(kVa);
  r.mmu.flush_tlb_kernel_range(kVa, kVa + PAGE_SIZE);
  EXPECT_TRUE(r.mmu.alias_entries().empty());
  for (unsigned c = 0; c < 3; ++c) {
    EXPECT_EQ(r.mmu.stats(c).remote_flushes, 1u);
    Translation t = r.read(c, kVa);
    ASSERT_TRUE(t.ok());
    EXPECT_FALSE(t.tlb_hit);
    EXPECT_EQ(t.pa >> PAGE_SHIFT, fresh);
    // Outside the range the entry survived.
    t = r.read(c, kVa + 16 * PAGE_SIZE);
    EXPECT_TRUE(t.tlb_hit);
    EXPECT_EQ(t.pa >> PAGE_SHIFT, keep);
  }
}

TEST(Mmu, local_and_full_flushes_empty_the_tlbs_they_name) {
  Rig r(2);
  r.map(kVa);
  r.map(kVa + PAGE_SIZE);
  for (unsigned c = 0; c < 2; ++c) {
    r.read(c, kVa);
    r.read(c, kVa + PAGE_SIZE);
  }
  r.mmu.flush_tlb_one(0, kVa + 0x10);
  EXPECT_EQ(r.mmu.tlb(0).size(), 1u);
  EXPECT_EQ(r.mmu.tlb(1).size(), 2u);
  r.mmu.flush_tlb_local(1);
  EXPECT_TRUE(r.mmu.tlb(1).empty());
  EXPECT_EQ(r.mmu.stats(0).local_flushes, 1u);
  EXPECT_EQ(r.mmu.stats(1).local_flushes, 1u);
  r.mmu.flush_tlb_all();
  EXPECT_TRUE(r.mmu.tlb(0).empty());
  EXPECT_EQ(r.mmu.stats(0).full_flushes, 1u);
  EXPECT_EQ(r.mmu.stats(1).full_flushes, 1u);
}

TEST(Mmu, least_recently_used_entry_is_replaced_at_capacity) {
  Rig r(1, 4);
  for (u64 i = 0; i < 5; ++i)
    r.map(kVa + i * PAGE_SIZE);
  for (u64 i = 0; i < 4; ++i)
    ASSERT_TRUE(r.read(0, kVa + i * PAGE_SIZE).ok());
  ASSERT_TRUE(r.read(0, kVa).tlb_hit); // page 0 is now the most recent, page 1 the least
  ASSERT_FALSE(r.read(0, kVa + 4 * PAGE_SIZE).tlb_hit);
  std::vector<u64> cached;
  for (const TlbEntry &e : r.mmu.tlb(0))
    cached.push_back((e.vpn << PAGE_SHIFT) - kVa);
  std::sort(cached.begin(), cached.end());
  EXPECT_EQ(cached, (std::vector<u64>{0, 2 * PAGE_SIZE, 3 * PAGE_SIZE, 4 * PAGE_SIZE}));
  EXPECT_FALSE(r.read(0, kVa + PAGE_SIZE).tlb_hit);
  EXPECT_TRUE(r.read(0, kVa + 4 * PAGE_SIZE).tlb_hit);
}

TEST(Mmu, user_entries_of_one_root_do_not_serve_another_root) {
  Rig r;
  auto a = r.pt.create_root(), b = r.pt.create_root();
  ASSERT_TRUE(a && b);
  const Pfn pa = r.page(), pb = r.page();
  ASSERT_EQ(r.pt.map_page(*a, kUserVa, pa, PAGE_SHARED), 0);
  ASSERT_EQ(r.pt.map_page(*b, kUserVa, pb, PAGE_SHARED), 0);
  ASSERT_EQ(r.mmu.translate(0, *a, kUserVa, Access::Read, true).pa >> PAGE_SHIFT, pa);
  Translation t = r.mmu.translate(0, *b, kUserVa, Access::Read, true);
  ASSERT_TRUE(t.ok());
  EXPECT_FALSE(t.tlb_hit);
  EXPECT_EQ(t.pa >> PAGE_SHIFT, pb);

  // Kernel entries are global: cached through one root, they serve the other.
  const Pfn k = r.map(kVa);
  ASSERT_TRUE(r.mmu.translate(0, *a, kVa, Access::Read, false).ok());
  t = r.mmu.translate(0, *b, kVa, Access::Read, false);
  EXPECT_TRUE(t.tlb_hit);
  EXPECT_EQ(t.pa >> PAGE_SHIFT, k);

  // flush_tlb_mm_range drops only the named root's entries.
  r.mmu.flush_tlb_mm_range(*a, 0, USER_TOP_L4);
  EXPECT_FALSE(r.mmu.translate(0, *a, kUserVa, Access::Read, true).tlb_hit);
  EXPECT_TRUE(r.mmu.translate(0, *b, kUserVa, Access::Read, true).tlb_hit);
}

TEST(Mmu, huge_leaf_translates_with_a_two_mebibyte_offset) {
  Rig r;
  auto block = r.alloc.alloc_pages_node(0, GFP_KERNEL, 9, PageOwner::Kernel);
  ASSERT_TRUE(block.has_value());
  const u64 va = VMALLOC_START_L4 + PMD_SIZE;
  ASSERT_EQ(r.pt.map_huge(r.root(), va, *block, PAGE_KERNEL), 0);
  Translation t = r.read(0, va + 0x1a2b3c);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t.pa, (*block << PAGE_SHIFT) + 0x1a2b3c);
  t = r.read(0, va + 0x5000);
  EXPECT_TRUE(t.tlb_hit);
  EXPECT_EQ(t.pa, (*block << PAGE_SHIFT) + 0x5000);
  EXPECT_EQ(r.mmu.tlb(0).size(), 1u);
}

TEST(Mmu, tlb_hash_depends_on_contents_and_lru_order_not_on_access_counts) {
  auto hash = [](const Mmu &m) {
    StateHasher h;
    m.hash_into(h);
    return h.value();
  };
  Rig a, b;
  a.map(kVa);
  a.map(kVa + PAGE_SIZE);
  b.map(kVa);
  b.map(kVa + PAGE_SIZE);
  a.read(0, kVa);
  a.read(0, kVa + PAGE_SIZE);
  b.read(0, kVa);
  b.read(0, kVa);
  b.read(0, kVa + PAGE_SIZE);
  EXPECT_EQ(hash(a.mmu), hash(b.mmu));
  b.read(0, kVa); // now page 0 is the most recent on b only
  EXPECT_NE(hash(a.mmu), hash(b.mmu));
}

} // namespace
} // namespace vmcheck
