// Random alloc/free sequences against a model of who holds which frame.
#include "machine/diag.h"
#include "machine/page_alloc.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

namespace vmcheck {
namespace {

constexpr u64 MiB = u64{1} << 20;

// One step: allocate (order, gfp, node) or free the victim-th live block.
struct Step {
  bool alloc = true;
  unsigned order = 0;
  unsigned gfp_kind = 0;
  unsigned node = 0;
  std::size_t victim = 0;
};

constexpr Gfp kGfps[] = {
    GFP_KERNEL,
    GFP_KERNEL | __GFP_DMA32,
    GFP_KERNEL | __GFP_THISNODE,
    GFP_KERNEL | __GFP_ZERO,
};

rc::Gen<Step> gen_step() {
  return rc::gen::build<Step>(
      rc::gen::set(&Step::alloc, rc::gen::arbitrary<bool>()),
      // Small orders mostly, so blocks split and merge at every level.
      rc::gen::set(&Step::order,
                   rc::gen::weightedOneOf<unsigned>(
                       {{6, rc::gen::inRange(0u, 4u)}, {1, rc::gen::inRange(0u, MAX_ORDER)}})),
      rc::gen::set(&Step::gfp_kind, rc::gen::inRange<unsigned>(0, std::size(kGfps))),
      rc::gen::set(&Step::node, rc::gen::inRange(0u, 2u)),
      rc::gen::set(&Step::victim, rc::gen::arbitrary<std::size_t>()));
}

// True if some zone the request may use on some node it may use still has a
// free block big enough: a failed allocation must not leave one.
bool could_serve(const PageAllocator &a, unsigned nodes, const Step &s) {
  const Gfp gfp = kGfps[s.gfp_kind];
  for (unsigned i = 0; i < nodes; ++i) {
    const unsigned nid = (s.node + i) % nodes;
    if ((gfp & __GFP_THISNODE) != 0 && nid != s.node)
      continue;
    for (Zone z : {Zone::DMA32, Zone::Normal}) {
      if ((gfp & __GFP_DMA32) != 0 && z != Zone::DMA32)
        continue;
      for (unsigned k = s.order; k < MAX_ORDER; ++k)
        if (a.nr_free_blocks(nid, z, k) != 0)
          return true;
    }
  }
  return false;
}

RC_GTEST_PROP(PageAllocProp, random_alloc_free_never_double_allocates_and_fully_coalesces, ()) {
  const auto steps = *rc::gen::container<std::vector<Step>>(gen_step());
  constexpr unsigned kNodes = 2;
  PhysMem mem(kNodes, 8 * MiB); // node 0 straddles 4 GiB: both zones
  FaultInjector faults;
  DiagLog diag;
  PageAllocator alloc(mem, faults, diag);

  std::map<Pfn, unsigned> live; // head -> order
  std::set<Pfn> held;           // every frame of every live block
  for (const Step &s : steps) {
    if (s.alloc || live.empty()) {
      const Gfp gfp = kGfps[s.gfp_kind] | __GFP_NOWARN;
      const auto p = alloc.alloc_pages_node(static_cast<int>(s.node), gfp, s.order);
      if (!p) {
        RC_ASSERT(s.order >= MAX_ORDER || !could_serve(alloc, kNodes, s));
      } else {
        const u64 n = u64{1} << s.order;
        RC_ASSERT(*p % n == 0);
        for (Pfn f = *p; f < *p + n; ++f) {
          RC_ASSERT(held.insert(f).second);
          if ((gfp & __GFP_ZERO) != 0)
            RC_ASSERT(mem.frame_is_zero(f));
        }
        if ((gfp & __GFP_DMA32) != 0)
          RC_ASSERT(mem.pfn_zone(*p + n - 1) == Zone::DMA32);
        if ((gfp & __GFP_THISNODE) != 0)
          RC_ASSERT(mem.pfn_to_nid(*p) == s.node);
        // Dirty the frame so that __GFP_ZERO has something to undo later.
        mem.write_u64(*p << PAGE_SHIFT, *p);
        live.emplace(*p, s.order);
      }
    } else {
      auto it = live.begin();
      std::advance(it, static_cast<std::ptrdiff_t>(s.victim % live.size()));
      alloc.free_pages(it->first, it->second);
      for (Pfn f = it->first; f < it->first + (u64{1} << it->second); ++f)
        held.erase(f);
      live.erase(it);
    }
    RC_ASSERT(alloc.nr_free_total() + held.size() == alloc.totalram_pages());
    RC_ASSERT(alloc.check() == std::string());
  }

  for (const auto &[head, order] : live)
    alloc.free_pages(head, order);
  RC_ASSERT(alloc.nr_free_total() == alloc.totalram_pages());
  u64 top_blocks = 0;
  for (unsigned nid = 0; nid < kNodes; ++nid) {
    for (Zone z : {Zone::DMA32, Zone::Normal}) {
      top_blocks += alloc.nr_free_blocks(nid, z, MAX_ORDER - 1);
      for (unsigned k = 0; k + 1 < MAX_ORDER; ++k)
        RC_ASSERT(alloc.nr_free_blocks(nid, z, k) == 0u);
    }
  }
  RC_ASSERT((top_blocks << (MAX_ORDER - 1)) == alloc.totalram_pages());
  RC_ASSERT(alloc.check() == std::string());
}

} // namespace
} // namespace vmcheck
