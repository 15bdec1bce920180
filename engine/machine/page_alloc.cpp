#include "machine/page_alloc.h"

#include "machine/diag.h"

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <utility>

namespace vmcheck {

namespace {

constexpr unsigned kTopOrder = MAX_ORDER - 1;
constexpr u64 kBlockPages = u64{1} << kTopOrder;

std::string hex(u64 v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

std::string pfn_str(Pfn pfn) {
  return "pfn " + hex(pfn);
}

bool is_free_head(const Page &p, unsigned order) {
  return p.flags == PG_buddy && p.order == order && p.refcount == 0 && p.owner == PageOwner::Free;
}

// The sweeps of check(): the first frame of records[from, to) (a section
// starting at `base`) whose record is `bad`. The stretch is tested in one
// pass without an early exit (the common case is that all pass); only a
// failing stretch is searched for its first bad frame.
template <typename Bad>
std::optional<Pfn> first_bad(std::span<const Page> records, Pfn base, u64 from, u64 to, Bad bad) {
  bool any = false;
  for (u64 i = from; i < to; ++i)
    any |= bad(records[i]);
  if (!any)
    return std::nullopt;
  for (u64 i = from;; ++i)
    if (bad(records[i]))
      return base + i;
}

// The first 16 bytes of a record as four 32-bit lanes: refcount, mapcount,
// flags, and owner in the low byte of the last (order and padding above
// it). The sweeps below read thousands of records per check; a GCC/Clang
// vector lets them combine whole records with a few instructions each
// instead of testing field by field.
using RecordHead = std::uint32_t __attribute__((vector_size(16)));
static_assert(offsetof(Page, refcount) == 0 && offsetof(Page, mapcount) == 4 &&
              offsetof(Page, flags) == 8 && offsetof(Page, owner) == 12 && sizeof(PageOwner) == 1 &&
              sizeof(Page) >= sizeof(RecordHead));

RecordHead head_of(const Page &p) {
  RecordHead v;
  std::memcpy(&v, &p, sizeof v);
  return v;
}

// The fields that must all be zero in a free block's tail record, OR-ed.
std::uint32_t tail_bits(const Page &p) {
  return p.flags | p.refcount | static_cast<std::uint32_t>(p.mapcount) |
         static_cast<std::uint32_t>(p.owner);
}

// Inside a free block but not its head: the record must be blank. The
// stretch's records are OR-ed together first (no compare per record); only
// a stretch with a bit set in refcount, mapcount, flags or owner is
// searched.
std::optional<Pfn> first_not_free_tail(std::span<const Page> records, Pfn base, u64 from, u64 to) {
  // Aligned loads: the records of a section start 16-byte aligned and are
  // 32 bytes each (PhysMem::section_pages).
  static_assert(sizeof(Page) % 16 == 0);
  const Page *aligned = std::assume_aligned<16>(records.data());
  RecordHead any = {};
  for (u64 i = from; i < to; ++i)
    any |= head_of(aligned[i]);
  any &= RecordHead{~0u, ~0u, ~0u, 0xff};
  if ((any[0] | any[1] | any[2] | any[3]) == 0)
    return std::nullopt;
  return first_bad(records, base, from, to, [](const Page &p) { return tail_bits(p) != 0; });
}

// The same 16 bytes as bytes: byte 8 is the low byte of flags (PG_buddy's),
// byte 12 the owner.
using RecordBytes = std::uint8_t __attribute__((vector_size(16)));
static_assert(PG_buddy < 0x100);

// In no free block: the record must not say free. PG_buddy is looked for
// in the OR of all flags bytes, owner Free (0) in the bytewise minimum.
std::optional<Pfn> first_said_free(std::span<const Page> records, Pfn base, u64 from, u64 to) {
  RecordBytes any = {};
  RecordBytes least = ~any;
  for (u64 i = from; i < to; ++i) {
    RecordBytes v;
    std::memcpy(&v, &records[i], sizeof v);
    any |= v;
    least = v < least ? v : least;
  }
  static_assert(static_cast<unsigned>(PageOwner::Free) == 0);
  if ((any[8] & PG_buddy) == 0 && least[12] != 0)
    return std::nullopt;
  return first_bad(records, base, from, to, [](const Page &p) {
    return (p.flags & PG_buddy) != 0 || p.owner == PageOwner::Free;
  });
}

} // namespace

void PageAllocator::add_top_block(FreeArea &a, Pfn head) {
  Pfn start = head, end = head + kBlockPages;
  auto next = a.top_runs.lower_bound(head);
  if (next != a.top_runs.end() && next->first == end) {
    end = next->second;
    next = a.top_runs.erase(next);
  }
  if (next != a.top_runs.begin()) {
    auto prev = std::prev(next);
    if (prev->second == start) {
      start = prev->first;
      a.top_runs.erase(prev);
    }
  }
  a.top_runs.emplace(start, end);
  ++a.top_blocks;
}

PageAllocator::PageAllocator(PhysMem &mem, FaultInjector &faults, DiagLog &diag)
    : mem_(mem), faults_(faults), diag_(diag) {
  areas_.resize(mem_.nr_nodes() * kNumZones);
  // Every MAX_ORDER block starts free: each zone of each node is one run.
  for (unsigned node = 0; node < mem_.nr_nodes(); ++node) {
    const Pfn first = mem_.node_start_pfn(node), last = first + mem_.pages_per_node();
    for (Zone z : {Zone::DMA32, Zone::Normal}) {
      const Pfn lo = z == Zone::DMA32 ? first : std::max(first, kDma32LimitPfn);
      const Pfn hi = z == Zone::DMA32 ? std::min(last, kDma32LimitPfn) : last;
      if (lo >= hi)
        continue;
      FreeArea &a = area(node, z);
      a.top_runs.emplace(lo, hi);
      a.top_blocks = (hi - lo) / kBlockPages;
      a.nr_free = hi - lo;
    }
  }
}

PageAllocator::FreeArea &PageAllocator::area(unsigned node, Zone zone) {
  return areas_[node * kNumZones + static_cast<unsigned>(zone)];
}

const PageAllocator::FreeArea &PageAllocator::area(unsigned node, Zone zone) const {
  return areas_[node * kNumZones + static_cast<unsigned>(zone)];
}

std::optional<Pfn> PageAllocator::take_top_block(FreeArea &a) {
  if (a.top_runs.empty())
    return std::nullopt;
  const auto run = a.top_runs.begin();
  const Pfn head = run->first;
  const Pfn end = run->second;
  a.top_runs.erase(run);
  if (head + kBlockPages < end)
    a.top_runs.emplace(head + kBlockPages, end);
  --a.top_blocks;
  return head;
}

[[gnu::always_inline]] inline std::optional<Pfn> PageAllocator::take_block(unsigned node, Zone zone,
                                                                           unsigned order) {
  FreeArea &a = area(node, zone);
  // The lowest listed order that can serve the request; kTopOrder when none.
  const std::uint32_t usable = a.listed_orders >> order << order;
  unsigned k = usable != 0 ? static_cast<unsigned>(std::countr_zero(usable)) : kTopOrder;
  Pfn head = 0;
  if (k < kTopOrder) {
    FreeList &list = a.blocks[k];
    head = list.lowest();
    list.pop_lowest();
    if (list.empty())
      a.listed_orders &= ~(1u << k);
  } else {
    const std::optional<Pfn> top = take_top_block(a);
    if (!top)
      return std::nullopt;
    head = *top;
  }
  // Keep the lower half, return upper halves to the lists: the block stays
  // at the lowest PFN, as the ordered free lists promise. Every list below
  // k was empty (k is the lowest listed order), so each upper half is the
  // only block of its list.
  while (k > order) {
    --k;
    const Pfn upper = head + (u64{1} << k);
    a.blocks[k].push_lowest(upper);
    a.listed_orders |= 1u << k;
    Page &up = mem_.page(upper);
    up.flags = PG_buddy;
    up.order = static_cast<std::uint8_t>(k);
  }
  a.nr_free -= u64{1} << order;
  return head;
}

void PageAllocator::release_block(Pfn head, unsigned order) {
  const u64 n = u64{1} << order;
  for (Pfn p = head; p < head + n; ++p)
    mem_.page(p) = Page{};
  FreeArea &a = area(mem_.pfn_to_nid(head), mem_.pfn_zone(head));
  a.nr_free += n;
  // A buddy never leaves the MAX_ORDER block, and every such block lies in
  // one node and one zone, so the buddy is always in this same area.
  while (order < kTopOrder) {
    const Pfn buddy = head ^ (u64{1} << order);
    if (!is_free_head(mem_.peek(buddy), order))
      break;
    FreeList &list = a.blocks[order];
    list.erase(buddy);
    if (list.empty())
      a.listed_orders &= ~(1u << order);
    mem_.page(buddy) = Page{};
    head = std::min(head, buddy);
    ++order;
  }
  if (order == kTopOrder) {
    add_top_block(a, head);
  } else {
    a.blocks[order].insert(head);
    a.listed_orders |= 1u << order;
  }
  Page &h = mem_.page(head);
  h.flags = PG_buddy;
  h.order = static_cast<std::uint8_t>(order);
}

std::optional<Pfn> PageAllocator::refuse(int node, Gfp gfp, unsigned order, PageOwner owner) {
  if ((gfp & ~GFP_KNOWN_MASK) != 0)
    diag_.warn("alloc_pages", "unknown gfp flags " + hex(gfp & ~GFP_KNOWN_MASK));
  else if (node < 0 || static_cast<unsigned>(node) >= mem_.nr_nodes())
    diag_.warn("alloc_pages", "invalid node " + std::to_string(node));
  else if (owner == PageOwner::Free)
    diag_.warn("alloc_pages", "owner tag 'free' is reserved for the allocator");
  else if ((gfp & __GFP_NOWARN) == 0) // order >= MAX_ORDER
    diag_.warn("alloc_pages", "order " + std::to_string(order) + " >= MAX_ORDER");
  return std::nullopt;
}

std::optional<Pfn> PageAllocator::allocation_failure(Gfp gfp, unsigned order) {
  if ((gfp & __GFP_NOWARN) == 0)
    diag_.error("alloc_pages",
                "page allocation failure: order:" + std::to_string(order) + ", mode:" + hex(gfp));
  return std::nullopt;
}

[[gnu::always_inline]] inline std::optional<Pfn>
PageAllocator::alloc_checked(unsigned node, Gfp gfp, unsigned order, PageOwner owner) {
  const bool nofail = (gfp & __GFP_NOFAIL) != 0;
  // A __GFP_NOFAIL request never consults the injector (the kernel's
  // should_fail_alloc_page skips it), so it does not consume an armed count.
  if (!nofail) {
    const FailPoint fp =
        owner == PageOwner::PageTable ? FailPoint::PageTable : FailPoint::AllocPage;
    if (faults_.should_fail(fp))
      return allocation_failure(gfp, order);
  }

  const bool dma32_only = (gfp & (__GFP_DMA32 | ___GFP_DMA)) != 0;
  const unsigned nr_nodes = mem_.nr_nodes();
  const unsigned nodes = (gfp & __GFP_THISNODE) != 0 ? 1 : nr_nodes;
  // Each node's zones in fallback order: NORMAL then DMA32, or DMA32 alone.
  // One call site, so that take_block is inlined here.
  const Zone first_zone = dma32_only ? Zone::DMA32 : Zone::Normal;
  std::optional<Pfn> head;
  unsigned nid = node;
  for (unsigned i = 0; i < nodes && !head; ++i, nid = nid + 1 == nr_nodes ? 0 : nid + 1)
    for (Zone zone = first_zone;; zone = Zone::DMA32) {
      head = take_block(nid, zone, order);
      if (head || zone == Zone::DMA32)
        break;
    }
  if (!head) {
    if (nofail)
      throw KernelBug("alloc_pages", "__GFP_NOFAIL allocation cannot be satisfied: order:" +
                                         std::to_string(order) + ", mode:" + hex(gfp));
    return allocation_failure(gfp, order);
  }

  const u64 n = u64{1} << order;
  // The head's record is looked up once (a block never leaves its
  // section, and sections never move, so it stays valid for the tails).
  Page &h = mem_.page(*head);
  h = Page{};
  h.owner = owner;
  for (Pfn p = *head + 1; p < *head + n; ++p) {
    Page &pg = mem_.page(p);
    pg = Page{};
    pg.owner = owner;
    pg.flags = PG_tail;
  }
  h.refcount = 1;
  h.order = static_cast<std::uint8_t>(order);
  if (order > 0)
    h.flags = PG_head;
  if ((gfp & __GFP_ZERO) != 0)
    for (Pfn p = *head; p < *head + n; ++p)
      mem_.zero_frame(p);
  return head;
}

std::optional<Pfn> PageAllocator::alloc_pages_node(int node, Gfp gfp, unsigned order,
                                                   PageOwner owner) {
  // As the kernel: an impossible order is refused before anything else,
  // __GFP_NOFAIL or not. The refusals are rare: one test here, the WARN
  // that names the reason out of line.
  if ((gfp & ~GFP_KNOWN_MASK) != 0 || node < 0 || static_cast<unsigned>(node) >= mem_.nr_nodes() ||
      owner == PageOwner::Free || order >= MAX_ORDER)
    return refuse(node, gfp, order, owner);
  return alloc_checked(static_cast<unsigned>(node), gfp, order, owner);
}

unsigned PageAllocator::alloc_pages_bulk(int node, Gfp gfp, PageOwner owner, unsigned count,
                                         std::vector<Pfn> &out) {
  // The up-front checks do not depend on the page: what alloc_pages_node
  // would refuse, it refuses for the first page.
  if (count == 0)
    return 0;
  if ((gfp & ~GFP_KNOWN_MASK) != 0 || node < 0 || static_cast<unsigned>(node) >= mem_.nr_nodes() ||
      owner == PageOwner::Free) {
    refuse(node, gfp, 0, owner);
    return 0;
  }
  for (unsigned i = 0; i < count; ++i) {
    const std::optional<Pfn> pfn = alloc_checked(static_cast<unsigned>(node), gfp, 0, owner);
    if (!pfn)
      return i;
    out.push_back(*pfn);
  }
  return count;
}

void PageAllocator::free_pages(Pfn head, unsigned order) {
  if (!mem_.pfn_valid(head))
    throw KernelBug("__free_pages", "bad page state: " + pfn_str(head) + " is not memory");
  if (order >= MAX_ORDER)
    throw KernelBug("__free_pages", "bad page state: order " + std::to_string(order));
  const Page &p = mem_.peek(head);
  if ((p.flags & PG_reserved) != 0)
    throw KernelBug("__free_pages", "bad page state: " + pfn_str(head) + " is reserved");
  if ((p.flags & PG_tail) != 0)
    throw KernelBug("__free_pages", "bad page state: " + pfn_str(head) + " is a tail page");
  if (p.refcount == 0)
    throw KernelBug("__free_pages", "bad page state: " + pfn_str(head) + " is already free");
  if (p.order != order)
    throw KernelBug("__free_pages", "bad page state: " + pfn_str(head) + " has order " +
                                        std::to_string(p.order) + ", freed as order " +
                                        std::to_string(order));
  Page &pg = mem_.page(head);
  if (--pg.refcount == 0)
    release_block(head, order);
}

namespace {

// The head of the allocated block holding pfn: blocks are aligned to their
// order, so the head is pfn rounded down to some 2^k whose record says
// "head of order k".
Pfn compound_head(const PhysMem &mem, Pfn pfn) {
  if ((mem.peek(pfn).flags & PG_tail) == 0)
    return pfn;
  for (unsigned k = 1; k < MAX_ORDER; ++k) {
    const Pfn cand = pfn & ~((u64{1} << k) - 1);
    const Page &c = mem.peek(cand);
    if ((c.flags & PG_head) != 0 && c.order == k)
      return cand;
  }
  return pfn;
}

} // namespace

void PageAllocator::get_page(Pfn pfn) {
  if (!mem_.pfn_valid(pfn))
    throw KernelBug("get_page", "bad page state: " + pfn_str(pfn) + " is not memory");
  const Pfn head = compound_head(mem_, pfn);
  const Page &p = mem_.peek(head);
  if (p.refcount == 0 || (p.flags & PG_tail) != 0)
    throw KernelBug("get_page", "bad page state: " + pfn_str(pfn) + " is free");
  if (p.refcount == UINT32_MAX)
    throw KernelBug("get_page", "refcount overflow on " + pfn_str(head));
  ++mem_.page(head).refcount;
}

void PageAllocator::put_page(Pfn pfn) {
  if (!mem_.pfn_valid(pfn))
    throw KernelBug("put_page", "bad page state: " + pfn_str(pfn) + " is not memory");
  const Pfn head = compound_head(mem_, pfn);
  const Page &p = mem_.peek(head);
  if (p.refcount == 0 || (p.flags & PG_tail) != 0)
    throw KernelBug("put_page", "bad page state: " + pfn_str(pfn) + " is free");
  if (p.refcount == 1 && (p.flags & PG_reserved) != 0)
    throw KernelBug("put_page", "bad page state: " + pfn_str(head) + " is reserved");
  Page &pg = mem_.page(head);
  if (--pg.refcount == 0)
    release_block(head, pg.order);
}

u64 PageAllocator::nr_free(unsigned node, Zone zone) const {
  return node < mem_.nr_nodes() ? area(node, zone).nr_free : 0;
}

u64 PageAllocator::nr_free_total() const {
  u64 sum = 0;
  for (const FreeArea &a : areas_)
    sum += a.nr_free;
  return sum;
}

u64 PageAllocator::nr_free_blocks(unsigned node, Zone zone, unsigned order) const {
  if (node >= mem_.nr_nodes() || order >= MAX_ORDER)
    return 0;
  return order == kTopOrder ? area(node, zone).top_blocks : area(node, zone).blocks[order].size();
}

std::string PageAllocator::check() const {
  // (head, order) of every free block below MAX_ORDER - 1, and [start, end)
  // of every run of free MAX_ORDER blocks, both sorted by PFN for the overlap
  // test and the sweep of touched sections below.
  std::vector<std::pair<Pfn, unsigned>> all;
  std::vector<std::pair<Pfn, Pfn>> runs;
  u64 run_blocks = 0;
  for (unsigned node = 0; node < mem_.nr_nodes(); ++node) {
    for (unsigned z = 0; z < kNumZones; ++z) {
      const Zone zone = static_cast<Zone>(z);
      const FreeArea &a = area(node, zone);
      // Built only on failure, like the messages below.
      const auto where = [&] {
        return std::string("node ") + std::to_string(node) + " zone " + zone_name(zone) + ": ";
      };
      // Within this area's node and zone (both ends: runs and blocks are
      // contiguous).
      const auto inside = [&](Pfn first, Pfn last) {
        return mem_.pfn_valid(first) && mem_.pfn_valid(last) && mem_.pfn_to_nid(first) == node &&
               mem_.pfn_to_nid(last) == node && mem_.pfn_zone(first) == zone &&
               mem_.pfn_zone(last) == zone;
      };
      u64 pages = 0;
      for (unsigned order = 0; order < kTopOrder; ++order) {
        if (a.blocks[order].empty() == (((a.listed_orders >> order) & 1) != 0))
          return where() + "listed_orders says order " + std::to_string(order) + " has " +
                 (a.blocks[order].empty() ? "free blocks" : "none") + ", its list disagrees";
        const u64 n = u64{1} << order;
        for (Pfn head : a.blocks[order]) {
          // Built only on failure: check() runs after every harness step.
          const auto blk = [&] {
            return where() + "free block " + pfn_str(head) + " order " + std::to_string(order);
          };
          if ((head & (n - 1)) != 0)
            return blk() + " is not aligned to its order";
          if (!inside(head, head + n - 1))
            return blk() + " is not inside its node and zone";
          if (!is_free_head(mem_.peek(head), order))
            return blk() + " head record is not a free buddy head of that order";
          if (a.blocks[order].contains(head ^ n))
            return blk() + " and its buddy are both free (not coalesced)";
          pages += n;
          all.emplace_back(head, order);
        }
      }
      if ((a.listed_orders >> kTopOrder) != 0)
        return where() + "listed_orders has a bit at or above MAX_ORDER - 1";
      u64 blocks = 0;
      std::optional<Pfn> prev_end;
      for (const std::pair<const Pfn, Pfn> &r : a.top_runs) {
        const Pfn start = r.first, end = r.second;
        const auto run = [&] { return where() + "free MAX_ORDER run " + pfn_str(start); };
        if ((start & (kBlockPages - 1)) != 0 || end <= start || ((end - start) & (kBlockPages - 1)))
          return run() + " is not whole aligned MAX_ORDER blocks";
        if (!inside(start, end - 1))
          return run() + " is not inside its node and zone";
        if (prev_end && start < *prev_end)
          return run() + " overlaps the run before it";
        if (prev_end == start)
          return run() + " is adjacent to the run before it (not merged)";
        prev_end = end;
        blocks += (end - start) / kBlockPages;
        runs.emplace_back(start, end);
      }
      if (blocks != a.top_blocks)
        return where() + "top_blocks " + std::to_string(a.top_blocks) + " but the runs hold " +
               std::to_string(blocks);
      run_blocks += blocks;
      pages += blocks * kBlockPages;
      if (pages != a.nr_free)
        return where() + "nr_free " + std::to_string(a.nr_free) + " but free blocks hold " +
               std::to_string(pages) + " pages";
    }
  }
  std::sort(all.begin(), all.end());
  std::sort(runs.begin(), runs.end());
  for (std::size_t i = 1; i < all.size(); ++i)
    if (all[i - 1].first + (u64{1} << all[i - 1].second) > all[i].first)
      return "free blocks " + pfn_str(all[i - 1].first) + " and " + pfn_str(all[i].first) +
             " overlap";
  // The run holding pfn, if any.
  const auto run_of = [&](Pfn pfn) -> const std::pair<Pfn, Pfn> * {
    auto it = std::upper_bound(runs.begin(), runs.end(), std::pair<Pfn, Pfn>(pfn, ~Pfn{0}));
    if (it == runs.begin() || pfn >= std::prev(it)->second)
      return nullptr;
    return &*std::prev(it);
  };
  for (const auto &[head, order] : all)
    if (run_of(head) != nullptr)
      return "free block " + pfn_str(head) + " lies inside a free MAX_ORDER run";

  // Touched sections are swept frame by frame against the free blocks that
  // cover them. An untouched section still holds its initial free MAX_ORDER
  // block: all of them lie in runs when the runs hold every untouched
  // section, which counting shows.
  const std::vector<std::size_t> touched = mem_.touched_sections();
  u64 touched_in_runs = 0;
  for (std::size_t s : touched) {
    const Pfn base = mem_.min_pfn() + s * kBlockPages;
    const bool whole_free = run_of(base) != nullptr;
    if (whole_free) {
      ++touched_in_runs;
      if (!is_free_head(mem_.peek(base), kTopOrder))
        return pfn_str(base) + " heads a free MAX_ORDER block but its record is not a free head";
    }
    const std::span<const Page> records = mem_.section_pages(s);
    if (whole_free) {
      if (const std::optional<Pfn> bad = first_not_free_tail(records, base, 1, kBlockPages))
        return pfn_str(*bad) + " inside a free block has a non-free record";
      continue;
    }
    // The section alternates between allocated stretches and free blocks
    // (sorted in `all`); each stretch is checked in one branch-free pass.
    Pfn pfn = base;
    auto blk = std::lower_bound(all.begin(), all.end(), std::pair<Pfn, unsigned>(base, 0));
    for (; pfn < base + kBlockPages; ++blk) {
      const bool in_section = blk != all.end() && blk->first < base + kBlockPages;
      const Pfn gap_end = in_section ? blk->first : base + kBlockPages;
      if (const std::optional<Pfn> bad = first_said_free(records, base, pfn - base, gap_end - base))
        return pfn_str(*bad) + " is in no free block but its record says free";
      if (!in_section)
        break;
      const Pfn end = blk->first + (u64{1} << blk->second);
      if (const std::optional<Pfn> bad =
              first_not_free_tail(records, base, blk->first + 1 - base, end - base))
        return pfn_str(*bad) + " inside a free block has a non-free record";
      pfn = end;
    }
  }
  if (run_blocks - touched_in_runs != mem_.nr_sections() - touched.size())
    return "an untouched section is not a free MAX_ORDER block";
  return {};
}

void PageAllocator::hash_into(StateHasher &h) const {
  h.tag(0xb0de);
  for (const FreeArea &a : areas_) {
    for (const auto &set : a.blocks) {
      h.add(set.size());
      for (Pfn head : set)
        h.add(head);
    }
    h.add(a.top_runs.size());
    for (const auto &[start, end] : a.top_runs) {
      h.add(start);
      h.add(end);
    }
  }
}

} // namespace vmcheck
