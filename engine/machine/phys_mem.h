// Emulated physical memory: frames, their `struct page` records, and the
// node/zone layout. Backing is sparse: a frame costs host memory only once
// something non-zero is written to it.
//
// Layout (documented in README "Machine model"): node n covers the PFN range
// [node_start_pfn(n), node_start_pfn(n) + pages_per_node). Node 0 starts so
// that half of it lies below 4 GiB (zone DMA32) and half above (zone NORMAL),
// rounded to a MAX_ORDER block; later nodes follow contiguously (all NORMAL
// once past 4 GiB). So every default machine has both zones, and
// vmalloc_32 / __GFP_DMA32 have something to prove.
//
// Frame contents have three states: never written (reads as the
// deterministic "uninitialised" byte kUninitByte, like fresh RAM holding
// garbage), zero (after zero_frame, e.g. __GFP_ZERO) and data (host buffer).
// Freed frames keep their contents, as real RAM does.
#pragma once

#include "machine/hash.h"
#include "vmcheck/abi.h"

#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <vector>

namespace vmcheck {

inline constexpr std::uint8_t kUninitByte = 0x5a;
inline constexpr u64 kDma32LimitPfn = (u64{4} << 30) >> PAGE_SHIFT; // 4 GiB

enum class Zone : std::uint8_t { DMA32 = 0, Normal = 1 };
inline constexpr unsigned kNumZones = 2;
const char *zone_name(Zone z);

// Who owns an allocated frame (the page allocator sets Free / Buddy states;
// the caller of alloc_pages sets the owner tag it wants reported).
enum class PageOwner : std::uint8_t {
  Free = 0,    // in the buddy allocator
  Kernel,      // plain alloc_pages() caller (trace's alloc_page, vmap pages)
  PageTable,   // a page-table page
  Vmalloc,     // backing page of a vmalloc area
  VmallocMeta, // a vmalloc pages[] array allocated as pages
  User,        // anonymous user page
  PageCache,   // file page in an address_space
  Percpu,      // percpu chunk page
};
const char *page_owner_name(PageOwner o);

// Page flags (a small subset of the kernel's).
inline constexpr std::uint32_t PG_buddy = 1u << 0; // head of a free buddy block
inline constexpr std::uint32_t PG_head = 1u << 1;  // head of an allocated higher-order block
inline constexpr std::uint32_t PG_tail = 1u << 2;  // tail page of an allocated higher-order block
inline constexpr std::uint32_t PG_reserved = 1u << 3; // never handed out
inline constexpr std::uint32_t PG_dirty = 1u << 4;
inline constexpr std::uint32_t PG_uptodate = 1u << 5;

// The `struct page` record. Invariant: a frame inside a free buddy block has
// owner Free and refcount 0; only the block head has PG_buddy, with `order`
// the block's order. An allocated block of order k has its head's refcount
// >= 1, PG_head when k > 0, and order == k on the head.
struct Page {
  std::uint32_t refcount = 0;
  std::int32_t mapcount = 0; // user mappings (memory.c); -1 style offsets not used
  std::uint32_t flags = 0;
  PageOwner owner = PageOwner::Free;
  std::uint8_t order = 0;
  std::uint64_t private_data = 0; // owner-defined (e.g. page cache index)
  std::uint64_t mapping = 0;      // owner-defined id (e.g. address_space id)
};

class PhysMem {
public:
  PhysMem(unsigned nodes, u64 bytes_per_node);
  PhysMem(const PhysMem &) = delete;
  PhysMem &operator=(const PhysMem &) = delete;
  ~PhysMem();

  unsigned nr_nodes() const { return nodes_; }
  u64 pages_per_node() const { return pages_per_node_; }
  Pfn node_start_pfn(unsigned node) const { return base_pfn_ + node * pages_per_node_; }
  Pfn min_pfn() const { return base_pfn_; }
  Pfn max_pfn() const { return base_pfn_ + total_pages(); } // exclusive
  u64 total_pages() const { return total_pages_; }
  bool pfn_valid(Pfn pfn) const { return pfn - base_pfn_ < total_pages_; }
  unsigned pfn_to_nid(Pfn pfn) const { // precondition: pfn_valid
    return static_cast<unsigned>((pfn - base_pfn_) / pages_per_node_);
  }
  Zone pfn_zone(Pfn pfn) const { return pfn < kDma32LimitPfn ? Zone::DMA32 : Zone::Normal; }

  // struct page of a valid pfn. page() may allocate host memory for the
  // record's section the first time; peek() never does (returns the
  // section's default record when untouched).
  Page &page(Pfn pfn) {
    // The common case inline: a valid pfn in a section that exists.
    if (pfn - base_pfn_ < total_pages_)
      if (Section *s = section(pfn))
        return s->pages[pfn & (kSectionPages - 1)];
    return page_slow(pfn);
  }
  const Page &peek(Pfn pfn) const {
    if (pfn - base_pfn_ >= total_pages())
      throw_bad_pfn("page", pfn);
    if (const Section *s = section(pfn))
      return s->pages[pfn & (kSectionPages - 1)];
    return fresh_page(pfn);
  }

  // The index of the first of pfns whose record `bad` holds for, or
  // pfns.size(): peek() over a list, with one section lookup per run of
  // pfns in the same section. A pfn outside memory throws as peek() does.
  template <typename Bad> std::size_t first_record(std::span<const Pfn> pfns, Bad bad) const {
    const Section *s = nullptr;
    u64 s_index = ~u64{0};
    for (std::size_t i = 0; i < pfns.size(); ++i) {
      const u64 off = pfns[i] - base_pfn_;
      if (off >= total_pages_)
        throw_bad_pfn("page", pfns[i]);
      if ((off >> kSectionShift) != s_index) {
        s_index = off >> kSectionShift;
        s = sections_[s_index].get();
      }
      if (bad(s != nullptr ? s->pages[pfns[i] & (kSectionPages - 1)] : fresh_page(pfns[i])))
        return i;
    }
    return pfns.size();
  }

  // ---- frame contents (pa = physical address) --------------------------------
  // Reads/writes may cross frame boundaries. Precondition: the whole range is
  // valid memory (callers check pfn_valid); violations throw KernelBug.
  void read(u64 pa, std::span<std::uint8_t> out) const;
  void write(u64 pa, std::span<const std::uint8_t> in);
  u64 read_u64(u64 pa) const { // pa 8-byte aligned
    if ((pa & 7) != 0 || (pa >> PAGE_SHIFT) - base_pfn_ >= total_pages())
      throw_bad_u64(pa, "phys_read");
    const Frame *f = frame(pa >> PAGE_SHIFT);
    if (f && f->data) {
      u64 v;
      std::memcpy(&v, f->data.get() + (pa & (PAGE_SIZE - 1)), sizeof v);
      return v;
    }
    return u64{f ? f->fill : kUninitByte} * 0x0101010101010101ULL;
  }
  void write_u64(u64 pa, u64 v) { // pa 8-byte aligned
    if ((pa & 7) != 0 || (pa >> PAGE_SHIFT) - base_pfn_ >= total_pages())
      throw_bad_u64(pa, "phys_write");
    if (Section *s = section(pa >> PAGE_SHIFT)) {
      Frame &f = s->frames[(pa >> PAGE_SHIFT) & (kSectionPages - 1)];
      if (f.data) { // the common case: a page table already written
        std::memcpy(f.data.get() + (pa & (PAGE_SIZE - 1)), &v, sizeof v);
        f.digest_valid = false;
        f.note_written((pa & (PAGE_SIZE - 1)) / kGroupBytes, v != 0);
        return;
      }
    }
    std::uint8_t bytes[8];
    std::memcpy(bytes, &v, sizeof bytes);
    write(pa, bytes);
  }
  void zero_frame(Pfn pfn); // O(1): drops the host buffer, marks zero
  void fill_frame(Pfn pfn, std::uint8_t byte);
  void copy_frame(Pfn dst, Pfn src);
  bool frame_is_zero(Pfn pfn) const;                    // true if every byte reads 0
  std::size_t backed_frames() const { return backed_; } // host buffers in use
  // A frame as a page-table sweep looks at it, found with one lookup: its
  // record (peek), frame_nonzero_groups, and its bytes, read in place when
  // it has a host buffer; bytes is nullptr when it has none (every byte then
  // reads alike: kUninitByte, or what zero_frame or fill_frame last set).
  // Lets a sweep read a table without copying it. Valid until the frame is
  // next written, filled or zeroed.
  struct FrameView {
    const Page *page;
    std::uint64_t nonzero_groups;
    const std::uint8_t *bytes;
  };
  FrameView frame_view(Pfn pfn) const {
    if (pfn - base_pfn_ >= total_pages())
      throw_bad_pfn("frame_view", pfn);
    const Section *s = section(pfn);
    if (s == nullptr)
      return {&fresh_page(pfn), nonzero_groups(nullptr), nullptr};
    const Frame &f = s->frames[pfn & (kSectionPages - 1)];
    return {&s->pages[pfn & (kSectionPages - 1)], nonzero_groups(&f), f.data.get()};
  }
  // A frame's bytes in 64 groups of kGroupBytes: bit g of frame_nonzero_groups
  // is set when group g (bytes [g * 64, g * 64 + 64)) holds a non-zero byte,
  // clear when all 64 read 0. O(1): kept up to date by every write, so a
  // sweep of a mostly empty page table looks only at the groups in use.
  static constexpr u64 kGroupBytes = PAGE_SIZE / 64;
  std::uint64_t frame_nonzero_groups(Pfn pfn) const {
    if (pfn - base_pfn_ >= total_pages())
      throw_bad_pfn("frame_nonzero_groups", pfn);
    return nonzero_groups(frame(pfn));
  }

  // Hash of every page record and every frame's contents, in PFN order.
  // Untouched sections contribute nothing, so the cost follows what the run
  // touched, not the machine size.
  void hash_into(StateHasher &h) const;

  // Sections (MAX_ORDER blocks, numbered from min_pfn()) whose records or
  // frames have host memory, in increasing order; every other section is
  // untouched: one free MAX_ORDER block of never-written frames.
  std::vector<std::size_t> touched_sections() const;
  std::size_t nr_sections() const { return sections_.size(); }
  // The page records of a touched section, in PFN order (a sweep without
  // a lookup per page); the first is 16-byte aligned (so is every record:
  // a Page is 32 bytes).
  std::span<const Page> section_pages(std::size_t section) const;

private:
  static constexpr u64 kSectionShift = MAX_ORDER - 1;
  static constexpr u64 kSectionPages = u64{1} << kSectionShift;
  // Invariant: when data is null every byte of the frame equals fill; a
  // non-null buffer holds all PAGE_SIZE bytes and is counted in backed_.
  // digest caches the digest of data while digest_valid; every write clears
  // it (frames are reachable only through PhysMem's own methods, so none is
  // missed). With data, bit g of nonzero is set exactly when group g of data
  // holds a non-zero byte: every method that changes data (write, write_u64,
  // copy_frame; fill_frame drops data) updates it in the same step.
  struct Frame {
    std::unique_ptr<std::uint8_t[]> data;
    mutable std::uint64_t digest = 0;
    std::uint64_t nonzero = 0;
    std::uint8_t fill = kUninitByte;
    mutable bool digest_valid = false;
    std::uint64_t content_digest() const;
    // After a write into group g: `nonzero_value` says whether what was
    // written holds a non-zero byte. A zero write may have emptied the
    // group, which then is read again to know.
    void note_written(u64 g, bool nonzero_value) {
      if (nonzero_value)
        nonzero |= std::uint64_t{1} << g;
      else
        recount_group(g);
    }
    void recount_group(u64 g);
  };
  // One MAX_ORDER block of records and frames, created on first mutable use.
  struct Section {
    alignas(16) Page pages[kSectionPages]; // section_pages() promises 16
    Frame frames[kSectionPages];
    Section();
  };
  [[noreturn, gnu::noinline, gnu::cold]] static void throw_bad_pfn(const char *fn, Pfn pfn);
  // An unaligned or out-of-memory 8-byte access.
  [[noreturn, gnu::noinline, gnu::cold]] void throw_bad_u64(u64 pa, const char *fn) const;
  // The record of a frame in an untouched section.
  static const Page &fresh_page(Pfn pfn);
  Section *section(Pfn pfn) const { return sections_[(pfn - base_pfn_) >> kSectionShift].get(); }
  Section &materialize(Pfn pfn) {
    Section *s = section(pfn);
    return s != nullptr ? *s : make_section(pfn);
  }
  [[gnu::noinline]] Section &make_section(Pfn pfn);
  // page() of a pfn outside memory (throws) or in an untouched section.
  [[gnu::noinline]] Page &page_slow(Pfn pfn);
  const Frame *frame(Pfn pfn) const {
    const Section *s = section(pfn);
    return s ? &s->frames[pfn & (kSectionPages - 1)] : nullptr;
  }
  Frame &frame_mut(Pfn pfn) { return materialize(pfn).frames[pfn & (kSectionPages - 1)]; }
  // frame_nonzero_groups of a frame (nullptr: in an untouched section).
  static std::uint64_t nonzero_groups(const Frame *f) {
    if (f && f->data)
      return f->nonzero;
    return (f ? f->fill : kUninitByte) != 0 ? ~std::uint64_t{0} : 0;
  }

  unsigned nodes_;
  u64 pages_per_node_;
  u64 total_pages_; // pages_per_node_ * nodes_, kept: every access bounds-checks against it
  Pfn base_pfn_;
  std::vector<std::unique_ptr<Section>> sections_; // one per MAX_ORDER block
  std::vector<std::size_t> touched_;               // indices of the non-null sections_, as made
  std::size_t backed_ = 0;
};

} // namespace vmcheck
