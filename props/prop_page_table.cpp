// Properties of the page tables and TLBs: random map / clear / walk /
// translate sequences agree with a std::map model, and a TLB never serves a
// translation that differs from what the page tables map now.
#include "machine/diag.h"
#include "machine/fault_inject.h"
#include "machine/mmu.h"
#include "machine/page_alloc.h"
#include "machine/page_table.h"
#include "machine/phys_mem.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <cstdlib>
#include <map>
#include <ostream>
#include <string>
#include <vector>

namespace vmcheck {
namespace {

// VAs come from a few small windows, so ops collide often and tables get
// shared, built, emptied and freed.
constexpr u64 kRegions[] = {
    VMALLOC_START_L4,                                   // start of vmalloc
    VMALLOC_START_L4 + (u64{1} << 30) - 16 * PAGE_SIZE, // straddles a PUD boundary
    (VMALLOC_END_L4 + 1) - 32 * PAGE_SIZE,              // top of vmalloc
    0x0000000000400000ULL,                              // user text
    0x00007fffffff0000ULL - 16 * PAGE_SIZE,             // user stack top
};
constexpr unsigned kNumRegions = sizeof kRegions / sizeof kRegions[0];
constexpr unsigned kPagesPerRegion = 32;
constexpr unsigned kDataPages = 8;
constexpr pgprot_t kProts[] = {PAGE_KERNEL, PAGE_KERNEL_RO, PAGE_SHARED, PAGE_READONLY_EXEC};

enum class Kind : int { Map, Clear, Walk, Translate, Flush, FreeTables, FailTable };

struct Op {
  int kind = 0;
  int region = 0;
  int page = 0;
  int pfn = 0;
  int prot = 0;
  int cpu = 0;
  u64 va() const { return kRegions[region] + u64(page) * PAGE_SIZE; }
};

void showValue(const Op &op, std::ostream &os) {
  static const char *const names[] = {"map",   "clear",       "walk|write", "translate",
                                      "flush", "free_tables", "fail_table"};
  os << names[op.kind] << " va=0x" << std::hex << op.va() << std::dec << " pfn#" << op.pfn
     << " prot#" << op.prot << " cpu" << op.cpu;
}

// pages: how many pages of each region ops may name (fewer: more collisions).
rc::Gen<Op> gen_op(int kinds, int pages) {
  return rc::gen::construct<Op>(rc::gen::inRange(0, kinds), rc::gen::inRange(0, int(kNumRegions)),
                                rc::gen::inRange(0, pages), rc::gen::inRange(0, int(kDataPages)),
                                rc::gen::inRange(0, int(sizeof kProts / sizeof kProts[0])),
                                rc::gen::inRange(0, 2));
}

struct Rig {
  Rig()
      : mem(1, u64{8} << 20), alloc(mem, faults, diag), pt(mem, alloc, diag, 4),
        mmu(pt, diag, 2, 8) {
    RC_ASSERT(pt.init());
    auto user = pt.create_root();
    RC_ASSERT(user.has_value());
    root = *user;
    for (unsigned i = 0; i < kDataPages; ++i)
      data.push_back(*alloc.alloc_pages_node(0, GFP_KERNEL, 0, PageOwner::Kernel));
    free_at_start = alloc.nr_free_total();
    tables_at_start = pt.table_pages();
  }

  DiagLog diag;
  FaultInjector faults;
  PhysMem mem;
  PageAllocator alloc;
  PageTables pt;
  Mmu mmu;
  Pfn root = 0;
  std::vector<Pfn> data;
  u64 free_at_start = 0;
  u64 tables_at_start = 0;
};

// Model: every mapped VA with its PTE, ignoring the bits the MMU sets.
using Model = std::map<u64, u64>;

u64 current_pa(const PageTables &pt, Pfn root, u64 va) {
  const PteRef r = pt.walk(root, va);
  return r.present() ? (r.value & PTE_PFN_MASK) | (va & (PAGE_SIZE - 1)) : ~u64{0};
}

// Ops on the page tables alone, with a flush after every clear (as the
// kernel does before reuse) and injected table-allocation failures:
// everything observable matches the model.
RC_GTEST_PROP(PageTableProps, random_operations_agree_with_a_map_model, ()) {
  Rig r;
  Model model;
  const auto ops = *rc::gen::container<std::vector<Op>>(gen_op(7, kPagesPerRegion));
  for (const Op &op : ops) {
    const u64 va = op.va();
    switch (static_cast<Kind>(op.kind)) {
    case Kind::Map: {
      const int err = r.pt.map_page(r.root, va, r.data[op.pfn], kProts[op.prot]);
      if (model.count(va) != 0) {
        RC_ASSERT(err == -EBUSY);
      } else if (err == 0) {
        model[va] = (r.data[op.pfn] << PAGE_SHIFT) | kProts[op.prot];
      } else {
        RC_ASSERT(err == -ENOMEM);
      }
      break;
    }
    case Kind::Clear: {
      const u64 old = r.pt.clear(r.root, va);
      auto it = model.find(va);
      RC_ASSERT((old & ~PTE_HW_UPDATED) == (it == model.end() ? 0 : it->second & ~PTE_HW_UPDATED));
      if (it != model.end())
        model.erase(it);
      r.mmu.flush_tlb_kernel_range(va, va + PAGE_SIZE);
      r.mmu.flush_tlb_mm_range(r.root, va, va + PAGE_SIZE);
      break;
    }
    case Kind::Walk: {
      const PteRef ref = r.pt.walk(r.root, va);
      auto it = model.find(va);
      RC_ASSERT(ref.present() == (it != model.end()));
      if (it != model.end())
        RC_ASSERT((ref.value & ~PTE_HW_UPDATED) == (it->second & ~PTE_HW_UPDATED));
      break;
    }
    case Kind::Translate: {
      const Translation t = r.mmu.translate(unsigned(op.cpu), r.root, va + 8, Access::Read, false);
      auto it = model.find(va);
      if (it == model.end()) {
        RC_ASSERT(t.fault == Fault::NotPresent);
      } else {
        RC_ASSERT(t.ok());
        RC_ASSERT(t.pa == (it->second & PTE_PFN_MASK) + 8);
      }
      break;
    }
    case Kind::Flush:
      r.mmu.flush_tlb_all();
      break;
    case Kind::FreeTables:
      r.pt.free_empty_tables(r.root, 0, USER_TOP_L4);
      break;
    case Kind::FailTable:
      // The next page-table allocation fails, whichever op makes it.
      r.faults.fail_nth(FailPoint::PageTable, 1);
      break;
    }
  }
  r.faults.fail_nth(FailPoint::PageTable, 0);
  std::vector<std::pair<u64, u64>> leaves;
  r.pt.for_each_leaf(r.root, 0, ~u64{0}, [&](u64 va, const PteRef &ref) {
    leaves.emplace_back(va, ref.value & ~PTE_HW_UPDATED);
  });
  std::vector<std::pair<u64, u64>> expected;
  for (const auto &[va, pte] : model)
    expected.emplace_back(va, pte & ~PTE_HW_UPDATED);
  RC_ASSERT(leaves == expected);
  RC_ASSERT(r.pt.check() == std::string{});
  RC_ASSERT(r.diag.count(DiagKind::Finding) == 0u);

  // Unmapping everything and destroying the user root gives back every
  // page-table page except the kernel half's, which is never reclaimed.
  const u64 free0 = r.free_at_start, tables0 = r.tables_at_start;
  for (const auto &[va, pte] : model)
    r.pt.clear(r.root, va);
  r.pt.free_empty_tables(r.root, 0, USER_TOP_L4);
  r.pt.destroy_root(r.root);
  RC_ASSERT(r.pt.check() == std::string{});
  RC_ASSERT(r.alloc.nr_free_total() + r.pt.table_pages() == free0 + tables0);
}

// No flushes after clears (Walk ops are write accesses here): translate may
// fault, but whenever it succeeds it names the frame the page tables map
// now; an alias finding is raised only for a VA that maps another frame now.
RC_GTEST_PROP(PageTableProps, tlb_never_serves_a_translation_the_tables_no_longer_make, ()) {
  Rig r;
  const auto ops = *rc::gen::container<std::vector<Op>>(gen_op(5, 4));
  for (const Op &op : ops) {
    const u64 va = op.va();
    const Pfn root = va >= VMALLOC_START_L4 ? r.pt.kernel_root() : r.root;
    switch (static_cast<Kind>(op.kind)) {
    case Kind::Map:
      r.pt.map_page(root, va, r.data[op.pfn], kProts[op.prot]);
      break;
    case Kind::Clear:
      r.pt.clear(root, va);
      break;
    case Kind::Walk:
    case Kind::Translate: {
      const auto mark = r.diag.size();
      const Access access = op.kind == int(Kind::Walk) ? Access::Write : Access::Read;
      const Translation t = r.mmu.translate(unsigned(op.cpu), r.root, va + 16, access, false);
      const u64 now = current_pa(r.pt, r.root, va + 16);
      if (t.ok())
        RC_ASSERT(t.pa == now);
      const bool finding = r.diag.since(mark).size() != 0;
      if (finding) {
        RC_ASSERT(t.fault == Fault::StaleTlb);
        RC_ASSERT(now != ~u64{0});
      }
      break;
    }
    case Kind::Flush:
      r.mmu.flush_tlb_all();
      RC_ASSERT(r.mmu.stale_entries().empty());
      break;
    default:
      break;
    }
    for (const auto &[cpu, alias] : r.mmu.alias_entries()) {
      bool also_stale = false;
      for (const auto &[c2, stale] : r.mmu.stale_entries())
        also_stale |= c2 == cpu && stale.vpn == alias.vpn && stale.root == alias.root;
      RC_ASSERT(also_stale);
    }
  }
  RC_ASSERT(r.pt.check() == std::string{});
}

} // namespace
} // namespace vmcheck
