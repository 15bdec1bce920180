// The buddy page allocator: one per zone per node, orders 0..MAX_ORDER-1,
// coalescing on free, GFP-driven zone and node selection, deterministic by
// construction (a free list is kept sorted; the lowest PFN goes first).
//
// Zone selection: __GFP_DMA32 (or ___GFP_DMA) -> DMA32 only; otherwise NORMAL
// then DMA32 (x86-64 has no HIGHMEM: __GFP_HIGHMEM is accepted and ignored).
// Node order: the preferred node first, then the others by increasing
// distance (n+1, n+2, ... wrapping), unless __GFP_THISNODE.
#pragma once

#include "machine/fault_inject.h"
#include "machine/phys_mem.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace vmcheck {

class DiagLog;

class PageAllocator {
public:
  PageAllocator(PhysMem &mem, FaultInjector &faults, DiagLog &diag);

  // alloc_pages_node(): a block of 2^order frames, head PFN returned, head
  // refcount 1, owner tag set on every frame of the block. Fails (nullopt)
  // when no zone on the allowed nodes has a free block, when fault injection
  // says so (FailPoint::AllocPage, or PageTable when owner is PageTable), or
  // for order >= MAX_ORDER (with a WARN unless __GFP_NOWARN). __GFP_ZERO
  // zeroes the frames. __GFP_NOFAIL ignores injection; a __GFP_NOFAIL request
  // that cannot be met throws KernelBug (the kernel would loop forever).
  // A failure records "page allocation failure: order:N, mode:0x..." unless
  // __GFP_NOWARN. `node` must name a node (Machine::alloc_pages resolves
  // NUMA_NO_NODE to the current CPU's node); an invalid node WARNs and fails.
  std::optional<Pfn> alloc_pages_node(int node, Gfp gfp, unsigned order,
                                      PageOwner owner = PageOwner::Kernel);
  // alloc_pages_node(node, gfp, 0, owner) up to `count` times, appending
  // each page to `out` and stopping at the first failure: every page is
  // taken, injected, zeroed and reported exactly as a call of its own would
  // do it, in the same order. Returns how many pages were allocated (vmalloc
  // fills an area's pages this way, one page at a time as the kernel does).
  unsigned alloc_pages_bulk(int node, Gfp gfp, PageOwner owner, unsigned count,
                            std::vector<Pfn> &out);
  // __free_pages(): drops one reference on the head; frees the block when
  // the count reaches 0. Freeing a free page or a tail page is a KernelBug
  // ("bad page state").
  void free_pages(Pfn head, unsigned order);
  void get_page(Pfn pfn); // refcount++ (on the head of a compound block)
  void put_page(Pfn pfn); // refcount--, frees (at the block's order) at 0

  // Per-zone free counts and totals.
  u64 nr_free(unsigned node, Zone zone) const;
  u64 nr_free_total() const;
  u64 totalram_pages() const { return mem_.total_pages(); }
  u64 nr_free_blocks(unsigned node, Zone zone, unsigned order) const;

  // Checks the buddy invariants (free blocks aligned, non-overlapping,
  // not coalescible with a free buddy, counts consistent with page
  // records). Returns a description of the first violation, or empty.
  std::string check() const;
  void hash_into(StateHasher &h) const;

private:
  // The head PFNs of one order's free blocks, kept sorted from the highest
  // to the lowest: the lowest block, the one an allocation takes and a split
  // or a fresh free usually adds, is at the back, where a vector is cheap.
  class FreeList {
  public:
    bool empty() const { return desc_.empty(); }
    std::size_t size() const { return desc_.size(); }
    Pfn lowest() const { return desc_.back(); }
    void pop_lowest() { desc_.pop_back(); }
    // Precondition: pfn is below every listed block (a split's upper half,
    // which always lands in an empty list).
    void push_lowest(Pfn pfn) { desc_.push_back(pfn); }
    void insert(Pfn pfn) {
      // A new lowest block (every split's upper half lands in an empty
      // list) goes to the back without a search.
      if (desc_.empty() || desc_.back() > pfn)
        desc_.push_back(pfn);
      else
        insert_sorted(pfn);
    }
    bool contains(Pfn pfn) const {
      const auto it = position(pfn);
      return it != desc_.end() && *it == pfn;
    }
    void erase(Pfn pfn) {
      const auto it = position(pfn);
      if (it != desc_.end() && *it == pfn)
        desc_.erase(it);
    }
    // In increasing PFN order.
    auto begin() const { return desc_.rbegin(); }
    auto end() const { return desc_.rend(); }

  private:
    // insert() of a block that is not the new lowest: kept out of line so
    // that the common case stays small enough to inline.
    [[gnu::noinline]] void insert_sorted(Pfn pfn) { desc_.insert(position(pfn), pfn); }
    // The first entry not above pfn.
    std::vector<Pfn>::const_iterator position(Pfn pfn) const {
      return std::lower_bound(desc_.begin(), desc_.end(), pfn, std::greater<Pfn>());
    }
    std::vector<Pfn> desc_;
  };
  // Free blocks of orders below MAX_ORDER - 1 are listed one by one; free
  // MAX_ORDER blocks as runs of consecutive ones (a fresh zone is one run),
  // so that building, checking and hashing the allocator costs what a run
  // touched, not the size of the machine.
  struct FreeArea {
    std::array<FreeList, MAX_ORDER - 1> blocks; // head PFNs of free blocks, by order
    std::map<Pfn, Pfn>
        top_runs;       // [start, end) of consecutive free MAX_ORDER blocks, never adjacent
    u64 top_blocks = 0; // MAX_ORDER blocks in top_runs
    u64 nr_free = 0;    // in pages
    // Bit k set <=> blocks[k] is not empty: an allocation finds the lowest
    // order it can split in one step instead of testing the lists in turn.
    std::uint32_t listed_orders = 0;
  };
  static void add_top_block(FreeArea &a, Pfn head);
  // The WARN of a request alloc_pages_node refuses outright (unknown gfp
  // bits, no such node, the reserved owner tag, order >= MAX_ORDER).
  [[gnu::cold]] std::optional<Pfn> refuse(int node, Gfp gfp, unsigned order, PageOwner owner);
  // A failed allocation: "page allocation failure" unless __GFP_NOWARN.
  [[gnu::cold]] std::optional<Pfn> allocation_failure(Gfp gfp, unsigned order);
  FreeArea &area(unsigned node, Zone zone);
  const FreeArea &area(unsigned node, Zone zone) const;
  std::optional<Pfn> take_block(unsigned node, Zone zone, unsigned order);
  // take_block's source when no list holds a block big enough: the lowest
  // free MAX_ORDER block, or nullopt when the zone has none.
  std::optional<Pfn> take_top_block(FreeArea &a);
  // alloc_pages_node() for a request that passed its up-front checks.
  std::optional<Pfn> alloc_checked(unsigned node, Gfp gfp, unsigned order, PageOwner owner);
  void release_block(Pfn head, unsigned order);

  PhysMem &mem_;
  FaultInjector &faults_;
  DiagLog &diag_;
  std::vector<FreeArea> areas_; // [node * kNumZones + zone]
};

} // namespace vmcheck
