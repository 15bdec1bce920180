#include "machine/phys_mem.h"

#include "machine/diag.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <string>

namespace vmcheck {

namespace {

// The record every frame of an untouched section has: each section starts as
// one free MAX_ORDER block, so its first frame is the block's buddy head.
const Page kFreshHead{0, 0, PG_buddy, PageOwner::Free, MAX_ORDER - 1, 0, 0};
const Page kFreshTail{};

std::uint64_t rotl(std::uint64_t x, unsigned r) {
  return (x << r) | (x >> (64 - r));
}

std::uint64_t load_u64(const std::uint8_t *p) {
  std::uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// A wide digest: words go round-robin into four independent
// multiply-rotate lanes (xxHash-style rounds), so long inputs hash at memory
// speed instead of one dependent multiply chain per word.
class WideDigest {
public:
  void add(std::uint64_t w) {
    std::uint64_t &l = lane_[n_++ & 3];
    l = rotl(l + w * k2, 31) * k1;
  }
  std::uint64_t value() const {
    std::uint64_t h =
        rotl(lane_[0], 1) + rotl(lane_[1], 7) + rotl(lane_[2], 12) + rotl(lane_[3], 18) + n_;
    h = (h ^ (h >> 33)) * k2;
    return h ^ (h >> 29);
  }

private:
  static constexpr std::uint64_t k1 = 0x9e3779b185ebca87ULL;
  static constexpr std::uint64_t k2 = 0xc2b2ae3d27d4eb4fULL;
  std::uint64_t lane_[4] = {k1 + k2, k2, 0, 0 - k1};
  std::uint64_t n_ = 0;
};

// Digest of one frame's bytes.
std::uint64_t digest_bytes(const std::uint8_t *p) {
  WideDigest d;
  for (u64 off = 0; off < PAGE_SIZE; off += 8)
    d.add(load_u64(p + off));
  return d.value();
}

// Digest of a frame whose every byte is `byte`, equal to digest_bytes of the
// materialised page so that representation never shows in the hash.
std::uint64_t uniform_digest(std::uint8_t byte) {
  static const std::array<std::uint64_t, 256> table = [] {
    std::array<std::uint64_t, 256> t{};
    std::array<std::uint8_t, PAGE_SIZE> buf{};
    for (unsigned b = 0; b < 256; ++b) {
      buf.fill(static_cast<std::uint8_t>(b));
      t[b] = digest_bytes(buf.data());
    }
    return t;
  }();
  return table[byte];
}

void hash_page(WideDigest &d, const Page &p) {
  d.add(u64{p.refcount} | (u64{static_cast<std::uint32_t>(p.mapcount)} << 32));
  d.add(u64{p.flags} | (u64{static_cast<std::uint8_t>(p.owner)} << 32) | (u64{p.order} << 40));
  d.add(p.private_data);
  d.add(p.mapping);
}

} // namespace

const char *zone_name(Zone z) {
  return z == Zone::DMA32 ? "DMA32" : "Normal";
}

const char *page_owner_name(PageOwner o) {
  switch (o) {
  case PageOwner::Free:
    return "free";
  case PageOwner::Kernel:
    return "kernel";
  case PageOwner::PageTable:
    return "page_table";
  case PageOwner::Vmalloc:
    return "vmalloc";
  case PageOwner::VmallocMeta:
    return "vmalloc_meta";
  case PageOwner::User:
    return "user";
  case PageOwner::PageCache:
    return "page_cache";
  case PageOwner::Percpu:
    return "percpu";
  }
  return "?";
}

std::uint64_t PhysMem::Frame::content_digest() const {
  if (!data)
    return uniform_digest(fill);
  if (!digest_valid) {
    digest = digest_bytes(data.get());
    digest_valid = true;
  }
  return digest;
}

void PhysMem::Frame::recount_group(u64 g) {
  const std::uint8_t *p = data.get() + g * kGroupBytes;
  std::uint64_t any = 0;
  for (u64 off = 0; off < kGroupBytes; off += 8)
    any |= load_u64(p + off);
  if (any != 0)
    nonzero |= std::uint64_t{1} << g;
  else
    nonzero &= ~(std::uint64_t{1} << g);
}

PhysMem::Section::Section() {
  pages[0] = kFreshHead;
}

PhysMem::PhysMem(unsigned nodes, u64 bytes_per_node)
    : nodes_(nodes), pages_per_node_(bytes_per_node >> PAGE_SHIFT),
      total_pages_(pages_per_node_ * nodes) {
  // Half of node 0 below 4 GiB; a node larger than 8 GiB simply starts at 0.
  const u64 half = pages_per_node_ / 2;
  const Pfn start = half < kDma32LimitPfn ? kDma32LimitPfn - half : 0;
  base_pfn_ = start & ~(kSectionPages - 1);
  sections_.resize(total_pages() >> kSectionShift);
}

PhysMem::~PhysMem() = default;

PhysMem::Section &PhysMem::make_section(Pfn pfn) {
  const std::size_t i = (pfn - base_pfn_) >> kSectionShift;
  sections_[i] = std::make_unique<Section>();
  touched_.push_back(i);
  return *sections_[i];
}

Page &PhysMem::page_slow(Pfn pfn) {
  if (pfn - base_pfn_ >= total_pages())
    throw_bad_pfn("page", pfn);
  return materialize(pfn).pages[pfn & (kSectionPages - 1)];
}

const Page &PhysMem::fresh_page(Pfn pfn) {
  return (pfn & (kSectionPages - 1)) == 0 ? kFreshHead : kFreshTail;
}

void PhysMem::throw_bad_pfn(const char *fn, Pfn pfn) {
  throw KernelBug(fn, "pfn " + std::to_string(pfn) + " outside physical memory");
}

namespace {
void check_range(const PhysMem &m, const char *fn, u64 pa, u64 len) {
  const u64 lo = m.min_pfn() << PAGE_SHIFT;
  const u64 hi = m.max_pfn() << PAGE_SHIFT;
  if (pa < lo || pa > hi || len > hi - pa)
    throw KernelBug(fn, "physical range [" + std::to_string(pa) + ", +" + std::to_string(len) +
                            ") outside memory");
}
} // namespace

void PhysMem::read(u64 pa, std::span<std::uint8_t> out) const {
  check_range(*this, "phys_read", pa, out.size());
  std::size_t done = 0;
  while (done < out.size()) {
    const u64 off = (pa + done) & (PAGE_SIZE - 1);
    const std::size_t chunk = std::min<std::size_t>(out.size() - done, PAGE_SIZE - off);
    const Frame *f = frame((pa + done) >> PAGE_SHIFT);
    if (f && f->data)
      std::memcpy(out.data() + done, f->data.get() + off, chunk);
    else
      std::memset(out.data() + done, f ? f->fill : kUninitByte, chunk);
    done += chunk;
  }
}

void PhysMem::write(u64 pa, std::span<const std::uint8_t> in) {
  check_range(*this, "phys_write", pa, in.size());
  std::size_t done = 0;
  while (done < in.size()) {
    const u64 off = (pa + done) & (PAGE_SIZE - 1);
    const std::size_t chunk = std::min<std::size_t>(in.size() - done, PAGE_SIZE - off);
    const std::uint8_t *src = in.data() + done;
    const Pfn pfn = (pa + done) >> PAGE_SHIFT;
    const Frame *cur = frame(pfn);
    const std::uint8_t fill = cur ? cur->fill : kUninitByte;
    // Writing what a uniform frame already holds (zeroing a zeroed page
    // table, say) must not cost a host buffer.
    const bool same = (!cur || !cur->data) &&
                      std::all_of(src, src + chunk, [fill](std::uint8_t b) { return b == fill; });
    if (!same) {
      Frame &f = frame_mut(pfn);
      if (!f.data) {
        f.data = std::make_unique_for_overwrite<std::uint8_t[]>(PAGE_SIZE);
        std::memset(f.data.get(), f.fill, PAGE_SIZE);
        f.nonzero = f.fill != 0 ? ~std::uint64_t{0} : 0;
        ++backed_;
      }
      std::memcpy(f.data.get() + off, src, chunk);
      f.digest_valid = false;
      for (u64 g = off / kGroupBytes; g <= (off + chunk - 1) / kGroupBytes; ++g)
        f.recount_group(g);
    }
    done += chunk;
  }
}

void PhysMem::throw_bad_u64(u64 pa, const char *fn) const {
  if ((pa & 7) != 0)
    throw KernelBug(fn, "unaligned 8-byte access at " + std::to_string(pa));
  check_range(*this, fn, pa, 8);
  throw KernelBug(fn, "bad 8-byte access at " + std::to_string(pa));
}

void PhysMem::zero_frame(Pfn pfn) {
  fill_frame(pfn, 0);
}

void PhysMem::fill_frame(Pfn pfn, std::uint8_t byte) {
  if (!pfn_valid(pfn))
    throw_bad_pfn("fill_frame", pfn);
  const Frame *cur = frame(pfn);
  if (!cur && byte == kUninitByte)
    return;
  Frame &f = frame_mut(pfn);
  if (f.data) {
    f.data.reset();
    --backed_;
  }
  f.fill = byte;
}

void PhysMem::copy_frame(Pfn dst, Pfn src) {
  if (!pfn_valid(dst) || !pfn_valid(src))
    throw KernelBug("copy_frame", "pfn outside physical memory");
  if (dst == src)
    return;
  const Frame *s = frame(src);
  if (!s || !s->data) {
    fill_frame(dst, s ? s->fill : kUninitByte);
    return;
  }
  Frame &d = frame_mut(dst);
  // frame_mut may create dst's section; src's section already exists, so
  // `s` stays valid (sections never move).
  if (!d.data) {
    d.data = std::make_unique_for_overwrite<std::uint8_t[]>(PAGE_SIZE);
    ++backed_;
  }
  std::memcpy(d.data.get(), s->data.get(), PAGE_SIZE);
  d.nonzero = s->nonzero;
  d.digest = s->digest;
  d.digest_valid = s->digest_valid;
}

bool PhysMem::frame_is_zero(Pfn pfn) const {
  if (!pfn_valid(pfn))
    throw_bad_pfn("frame_is_zero", pfn);
  const Frame *f = frame(pfn);
  if (!f)
    return kUninitByte == 0;
  if (!f->data)
    return f->fill == 0;
  const std::uint8_t *p = f->data.get();
  return p[0] == 0 && std::memcmp(p, p + 1, PAGE_SIZE - 1) == 0;
}

void PhysMem::hash_into(StateHasher &h) const {
  // Each section is folded to one digest first; an untouched section and a
  // touched one that holds the same records and bytes give the same digest,
  // so merely looking at a page (page() materialises) never changes the hash.
  static const std::uint64_t fresh_digest = [] {
    WideDigest d;
    for (u64 i = 0; i < kSectionPages; ++i) {
      hash_page(d, i == 0 ? kFreshHead : kFreshTail);
      d.add(uniform_digest(kUninitByte));
    }
    return d.value();
  }();
  h.tag(0x9a76);
  h.add(nodes_);
  h.add(pages_per_node_);
  h.add(base_pfn_);
  // (section, digest) of each section that differs from an untouched one.
  for (std::size_t s : touched_sections()) {
    const Section &sec = *sections_[s];
    WideDigest d;
    for (u64 i = 0; i < kSectionPages; ++i) {
      hash_page(d, sec.pages[i]);
      d.add(sec.frames[i].content_digest());
    }
    if (d.value() == fresh_digest)
      continue;
    h.add(s);
    h.add(d.value());
  }
  h.tag(0x9a77);
}

std::span<const Page> PhysMem::section_pages(std::size_t section) const {
  const Section *s = section < sections_.size() ? sections_[section].get() : nullptr;
  if (s == nullptr)
    throw KernelBug("section_pages", "section " + std::to_string(section) + " is not touched");
  return {s->pages, kSectionPages};
}

std::vector<std::size_t> PhysMem::touched_sections() const {
  std::vector<std::size_t> out = touched_;
  std::sort(out.begin(), out.end());
  return out;
}

} // namespace vmcheck
