// Reading the model: vread / vwrite, /proc/vmallocinfo, the canonical state
// summary and the spec's own invariants.
#include "spec/vmalloc_spec.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstring>

namespace vmcheck::spec {

namespace {

std::string hex(u64 v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%#llx", static_cast<unsigned long long>(v));
  return buf;
}

const char *kind_name(AreaKind k) {
  switch (k) {
  case AreaKind::VmArea:
    return "vm";
  case AreaKind::VmMapRam:
    return "vm_map_ram";
  case AreaKind::VmapBlock:
    return "vmap_block";
  case AreaKind::Lazy:
    return "lazy";
  }
  return "?";
}

// Calls fn(va, len, offset into the caller's buffer) for each piece of
// [lo, lo + n) that lies within one page.
template <typename Fn> void for_each_page_piece(u64 lo, u64 n, u64 buf_base, Fn fn) {
  while (n != 0) {
    const u64 len = std::min(n, PAGE_SIZE - (lo % PAGE_SIZE));
    fn(lo, static_cast<std::size_t>(len), static_cast<std::size_t>(lo - buf_base));
    lo += len;
    n -= len;
  }
}

} // namespace

// ---- page contents --------------------------------------------------------------------------

// Copies [va, va + len) (within one page) through the page tables; false
// when the page is not mapped (out untouched). A mapped page whose frame
// was freed reads as unknown: the frame may belong to someone else now.
bool VmallocSpec::read_page(u64 va, std::size_t len, std::uint8_t *out, std::uint8_t *known) const {
  const u64 *pte = ptes_.find(va & PAGE_MASK);
  if (pte == nullptr)
    return false;
  read_frame(*pte, static_cast<std::size_t>(va % PAGE_SIZE), len, out, known);
  return true;
}

// Copies [off, off + len) of a frame's first page; a frame freed since reads
// as unknown.
void VmallocSpec::read_frame(u64 frame, std::size_t off, std::size_t len, std::uint8_t *out,
                             std::uint8_t *known) const {
  const Frame *f = frames_.find(frame);
  if (f == nullptr || f->bytes.empty()) {
    const bool zero = f != nullptr && f->zero;
    std::memset(out, 0, len);
    std::memset(known, zero ? 1 : 0, len);
    return;
  }
  std::memcpy(out, f->bytes.data() + off, len);
  std::memcpy(known, f->known.data() + off, len);
}

std::string VmallocSpec::check_user_read(u64 mm, u64 addr, std::string_view got) const {
  std::array<std::uint8_t, PAGE_SIZE> want{}, known{};
  for (std::size_t done = 0; done < got.size();) {
    const u64 va = addr + done;
    const std::size_t off = static_cast<std::size_t>(va % PAGE_SIZE);
    const std::size_t n = std::min<std::size_t>(got.size() - done, PAGE_SIZE - off);
    const auto view = user_views_.find({mm, va - off});
    if (view != user_views_.end()) {
      read_frame(view->second.frame, off, n, want.data(), known.data());
      for (std::size_t i = 0; i < n; ++i) {
        const auto byte = static_cast<std::uint8_t>(got[done + i]);
        if (known[i] && want[i] != byte)
          return "user byte " + hex(va + i) + " of mm " + std::to_string(mm) + " reads " +
                 hex(byte) + ", but it maps " + hex(view->second.kva + off + i) +
                 " (remap_vmalloc_range), which holds " + hex(want[i]);
      }
    }
    done += n;
  }
  return {};
}

// Writes into the frame mapped at va, if any (unmapped pages are skipped).
void VmallocSpec::write_page(u64 va, std::size_t len, const std::uint8_t *in) {
  const u64 *pte = ptes_.find(va & PAGE_MASK);
  Frame *frame = pte != nullptr ? frames_.find(*pte) : nullptr;
  if (frame == nullptr)
    return;
  Frame &f = *frame;
  if (f.bytes.empty()) {
    f.bytes.assign(PAGE_SIZE, 0);
    f.known.assign(PAGE_SIZE, f.zero ? 1 : 0);
  }
  const std::size_t off = static_cast<std::size_t>(va % PAGE_SIZE);
  std::memcpy(f.bytes.data() + off, in, len);
  std::memset(f.known.data() + off, 1, len);
}

// ---- vread / vwrite
// ------------------------------------------------------------------------------

// Modern (seed 000, 4.19): live vm_struct areas in address order, each up to
// its usable end; gaps, unmapped pages and VM_IOREMAP areas read as zero;
// 0 when no area's usable part meets the range, else the (clipped) count.
// Legacy (seed 003): the same walk, ioremap areas read through their
// mappings, and the count is the bytes walked up to the last area's end.
long VmallocSpec::vread(std::span<std::uint8_t> buf, u64 addr, std::vector<std::uint8_t> *known) {
  ensure_init();
  std::fill(buf.begin(), buf.end(), 0);
  std::vector<std::uint8_t> kn(buf.size(), 1);
  u64 count = buf.size();
  if (addr + count < count)
    count = 0 - addr;
  long ret = 0;

  if (count != 0 && !cfg_.legacy) {
    const u64 last = addr + count - 1;
    bool hit = false;
    for (const Area &a : areas_) {
      if (a.kind != AreaKind::VmArea || a.usable == 0)
        continue;
      const u64 ulast = a.start + a.usable - 1;
      if (ulast < addr || a.start > last)
        continue;
      hit = true;
      if ((a.flags & VM_IOREMAP) != 0)
        continue;
      const u64 lo = std::max(a.start, addr);
      const u64 hi = std::min(ulast, last);
      for_each_page_piece(lo, hi - lo + 1, addr, [&](u64 va, std::size_t len, std::size_t at) {
        read_page(va, len, buf.data() + at, kn.data() + at);
      });
    }
    ret = hit ? static_cast<long>(count) : 0;
  } else if (count != 0) {
    u64 pos = addr;
    u64 left = count;
    for (const Area &a : areas_) {
      if (a.kind != AreaKind::VmArea)
        continue;
      const u64 uend = a.start + a.usable;
      if (pos >= uend)
        continue;
      if (pos < a.start) {
        const u64 gap = std::min(a.start - pos, left);
        pos += gap;
        left -= gap;
      }
      if (left == 0)
        break;
      const u64 n = std::min(uend - pos, left);
      // Touching an unmapped page here would oops the kernel: value unknown.
      for_each_page_piece(pos, n, addr, [&](u64 va, std::size_t len, std::size_t at) {
        if (!read_page(va, len, buf.data() + at, kn.data() + at))
          std::fill(kn.begin() + static_cast<std::ptrdiff_t>(at),
                    kn.begin() + static_cast<std::ptrdiff_t>(at + len), 0);
      });
      pos += n;
      left -= n;
      if (left == 0)
        break;
    }
    ret = static_cast<long>(count - left);
  }
  // Bytes the kernel never wrote keep whatever the caller's buffer held.
  const std::size_t written = ret == 0 ? 0 : static_cast<std::size_t>(ret);
  std::fill(kn.begin() + static_cast<std::ptrdiff_t>(std::min(written, kn.size())), kn.end(), 0);
  if (known != nullptr)
    *known = std::move(kn);
  return ret;
}

// Modern: copies into mapped pages of live non-ioremap vm areas only;
// returns 0 when the range meets no such area, else the (clipped) count.
// Legacy: the seed 003 walk, ioremap areas included, returning bytes walked.
long VmallocSpec::vwrite(std::span<const std::uint8_t> buf, u64 addr) {
  ensure_init();
  u64 count = buf.size();
  if (addr + count < count)
    count = 0 - addr;
  if (count == 0)
    return 0;
  if (!cfg_.legacy) {
    const u64 last = addr + count - 1;
    bool copied = false;
    for (const Area &a : areas_) {
      if (a.kind != AreaKind::VmArea || a.usable == 0 || (a.flags & VM_IOREMAP) != 0)
        continue;
      const u64 ulast = a.start + a.usable - 1;
      if (ulast < addr || a.start > last)
        continue;
      copied = true;
      const u64 lo = std::max(a.start, addr);
      const u64 hi = std::min(ulast, last);
      for_each_page_piece(lo, hi - lo + 1, addr, [&](u64 va, std::size_t len, std::size_t at) {
        write_page(va, len, buf.data() + at);
      });
    }
    return copied ? static_cast<long>(count) : 0;
  }
  u64 pos = addr;
  u64 left = count;
  for (const Area &a : areas_) {
    if (a.kind != AreaKind::VmArea)
      continue;
    const u64 uend = a.start + a.usable;
    if (pos >= uend)
      continue;
    if (pos < a.start) {
      const u64 gap = std::min(a.start - pos, left);
      pos += gap;
      left -= gap;
    }
    if (left == 0)
      break;
    const u64 n = std::min(uend - pos, left);
    for_each_page_piece(pos, n, addr, [&](u64 va, std::size_t len, std::size_t at) {
      write_page(va, len, buf.data() + at);
    });
    pos += n;
    left -= n;
    if (left == 0)
      break;
  }
  return static_cast<long>(count - left);
}

// ---- /proc/vmallocinfo
// ------------------------------------------------------------------------------

namespace {

// printf's "%016llx": exactly 16 digits, as a u64 has no more.
void append_hex16(std::string &out, u64 v) {
  char digits[16];
  for (int i = 15; i >= 0; --i, v >>= 4)
    digits[i] = "0123456789abcdef"[v & 15];
  out.append(digits, sizeof digits);
}

// printf's "%*llu".
void append_decimal(std::string &out, u64 v, std::size_t width) {
  char digits[20];
  const std::size_t len =
      static_cast<std::size_t>(std::to_chars(digits, digits + sizeof digits, v).ptr - digits);
  if (len < width)
    out.append(width - len, ' ');
  out.append(digits, len);
}

} // namespace

std::string VmallocSpec::vmallocinfo() const {
  std::string out;
  std::vector<u64> per_node(cfg_.nodes);
  for (const Area &a : areas_) {
    if (a.kind == AreaKind::VmArea && (a.flags & VM_UNINITIALIZED) != 0)
      continue;
    // "0x%016llx-0x%016llx %7llu"
    out += "0x";
    append_hex16(out, a.start);
    out += "-0x";
    append_hex16(out, a.end);
    out += ' ';
    append_decimal(out, a.size(), 7);
    if (a.kind == AreaKind::Lazy) {
      out += " unpurged vm_area\n";
      continue;
    }
    if (a.kind != AreaKind::VmArea) {
      out += " vm_map_ram\n";
      continue;
    }
    if (!a.caller.empty())
      out.append(" ").append(a.caller);
    if (!a.pages.empty())
      out.append(" pages=").append(std::to_string(a.pages.size()));
    if ((a.flags & VM_IOREMAP) != 0)
      out += " ioremap";
    if ((a.flags & VM_ALLOC) != 0)
      out += " vmalloc";
    if ((a.flags & VM_MAP) != 0)
      out += " vmap";
    if ((a.flags & VM_USERMAP) != 0)
      out += " user";
    if ((a.flags & VM_VPAGES) != 0)
      out += " vpages";
    std::fill(per_node.begin(), per_node.end(), 0);
    for (u64 f : a.pages)
      ++per_node[frames_.at(f).node];
    for (unsigned n = 0; n < cfg_.nodes; ++n)
      if (per_node[n] != 0)
        out += " N" + std::to_string(n) + "=" + std::to_string(per_node[n]);
    out += "\n";
  }
  return out;
}

// ---- summary and invariants
// ---------------------------------------------------------------------------

std::string VmallocSpec::summary() const {
  std::string s = "config " + cfg_.to_string() + "\n";
  s += "init=" + std::to_string(initialized_ ? 1 : 0) + " cpu=" + std::to_string(cpu_) + " irq=";
  for (unsigned d : irq_depth_)
    s += std::to_string(d) + ",";
  s += "\n";
  auto area_line = [&](const char *tag, const Area &a) {
    std::string l =
        std::string(tag) + " " + hex(a.start) + "-" + hex(a.end) + " " + kind_name(a.kind);
    if (a.kind == AreaKind::VmArea) {
      l += " id=" + std::to_string(a.vm_id) + " flags=" + hex(a.flags) + " caller=" + a.caller +
           " usable=" + hex(a.usable) + " pages=" + std::to_string(a.pages.size());
      std::vector<u64> per_node(cfg_.nodes, 0);
      for (u64 f : a.pages)
        ++per_node[frames_.at(f).node];
      for (unsigned n = 0; n < cfg_.nodes; ++n)
        l += " N" + std::to_string(n) + "=" + std::to_string(per_node[n]);
      if (a.pages_array != 0)
        l += " array=" + hex(a.pages_array);
    }
    if (a.kind == AreaKind::VmapBlock) {
      l += " cpu=" + std::to_string(a.cpu) + " free=" + std::to_string(a.free) +
           " dirty=" + std::to_string(a.dirty) + " live=";
      for (const auto &[off, order] : a.live)
        l += std::to_string(off) + ":" + std::to_string(order) + ",";
    }
    return l + "\n";
  };
  for (const Area &a : early_)
    s += area_line("early", a);
  for (const Area &a : areas_)
    s += area_line("area", a);
  s += "lazy_nr=" + std::to_string(lazy_nr_) + "\n";
  for (unsigned n = 0; n < cfg_.nodes; ++n)
    s += "node" + std::to_string(n) + " free dma32=" + std::to_string(free_[n][0]) +
         " normal=" + std::to_string(free_[n][1]) + "\n";
  s += "tables=" + std::to_string(table_pages_) + " user_tables=" + std::to_string(user_tables_) +
       " user_pages=";
  for (unsigned n = 0; n < cfg_.nodes; ++n)
    s += std::to_string(user_[n][0]) + "/" + std::to_string(user_[n][1]) + ",";
  s += " user_mapped=" + std::to_string(user_mapped_.size()) + " ptes=";
  const auto &ptes = ptes_.entries();
  for (auto it = ptes.begin(); it != ptes.end();) {
    const u64 first = it->first;
    u64 n = 0;
    while (it != ptes.end() && it->first == first + n * PAGE_SIZE) {
      ++n;
      ++it;
    }
    s += hex(first) + "+" + std::to_string(n) + ",";
  }
  s += "\nframes=" + std::to_string(frames_.size()) + " handles=";
  for (const auto &[h, p] : handles_)
    s += std::to_string(h) + ":" + std::to_string(p.refcount) + ",";
  s += "\ndeferred=";
  for (unsigned c = 0; c < cfg_.cpus; ++c)
    for (u64 a : deferred_[c])
      s += std::to_string(c) + ":" + hex(a) + ",";
  s += " work=";
  for (unsigned c : work_)
    s += std::to_string(c) + ",";
  s += "\nfail alloc_page=" + std::to_string(fail_remaining_[0]) +
       " page_table=" + std::to_string(fail_remaining_[1]) +
       " vmap_area=" + std::to_string(fail_remaining_[2]) + "\n";
  return s;
}

std::string VmallocSpec::check() const {
  std::map<u64, unsigned> frame_owners;
  std::set<u64> vm_ids;
  u64 lazy = 0;
  for (std::size_t i = 0; i < areas_.size(); ++i) {
    const Area &a = areas_[i];
    const std::string where = "area " + hex(a.start) + ": ";
    if (a.start >= a.end)
      return where + "empty";
    if (i > 0 && areas_[i - 1].end > a.start)
      return where + "overlaps or is out of order with the area at " + hex(areas_[i - 1].start);
    if (!page_aligned(a.start) || !page_aligned(a.end))
      return where + "not page aligned";
    // The legacy walk may run past `end` (seed 003), so only modern bounds the top.
    if (a.start < vstart_ || (!cfg_.legacy && a.end > vend_))
      return where + "outside the vmalloc range";
    switch (a.kind) {
    case AreaKind::Lazy:
      if (cfg_.legacy)
        return where + "lazy area in the legacy backend";
      lazy += a.size() / PAGE_SIZE;
      break;
    case AreaKind::VmArea:
      if (!vm_ids.insert(a.vm_id).second)
        return where + "vm id " + std::to_string(a.vm_id) + " used twice";
      if (a.usable > a.size() || a.pages.size() * PAGE_SIZE > a.usable)
        return where + "more pages than usable space";
      for (u64 f : a.pages) {
        if (!frames_.contains(f))
          return where + "owns a freed frame";
        ++frame_owners[f];
      }
      break;
    case AreaKind::VmapBlock: {
      if (a.size() != VMAP_BLOCK_SIZE || a.start % VMAP_BLOCK_SIZE != 0)
        return where + "vmap block of the wrong size or alignment";
      u64 live = 0;
      for (const auto &[off, order] : a.live) {
        live += u64{1} << order;
        if (off + (u64{1} << order) > VMAP_BBMAP_BITS - a.free)
          return where + "live mapping beyond the bump pointer";
      }
      if (a.free + a.dirty + live != VMAP_BBMAP_BITS)
        return where + "free + dirty + live != VMAP_BBMAP_BITS";
      break;
    }
    case AreaKind::VmMapRam:
      break;
    }
  }
  if (lazy != lazy_nr_)
    return "vmap_lazy_nr " + std::to_string(lazy_nr_) + " != lazy pages " + std::to_string(lazy);
  // With async_shootdown a free that crosses the threshold while a purge is
  // in flight finds the purge lock taken, and nothing purges its areas until
  // the next free or purge: the count may stay above the threshold.
  if (lazy_nr_ > lazy_max_pages() && !cfg_.async_shootdown)
    return "vmap_lazy_nr above lazy_max_pages after an operation";
  if (initialized_ && !early_.empty())
    return "early areas left after vmalloc_init";

  for (const auto &[h, p] : handles_) {
    if (!frames_.contains(p.frame) || p.refcount == 0)
      return "page handle " + std::to_string(h) + " names a freed frame";
    ++frame_owners[p.frame];
  }
  for (const auto &[f, n] : frame_owners)
    if (n > 1)
      return "frame " + std::to_string(f) + " owned " + std::to_string(n) + " times";

  std::vector<std::array<u64, kNumZones>> used = table_locs_;
  frames_.for_each([&used](u64, const Frame &f) {
    used[f.node][static_cast<unsigned>(f.zone)] += u64{1} << f.order;
  });
  u64 user_pages = 0;
  for (unsigned n = 0; n < cfg_.nodes; ++n)
    for (unsigned z = 0; z < kNumZones; ++z) {
      used[n][z] += user_[n][z];
      user_pages += user_[n][z];
    }
  if (user_tables_ > user_pages)
    return "more user page tables than pages user space holds";
  for (u64 f : user_mapped_)
    if (!frames_.contains(f))
      return "frame " + std::to_string(f) + " is user-mapped but not held";
  for (unsigned n = 0; n < cfg_.nodes; ++n)
    for (unsigned z = 0; z < kNumZones; ++z)
      if (free_[n][z] + used[n][z] != capacity_[n][z])
        return "node " + std::to_string(n) + " zone " + std::to_string(z) +
               ": free + used != present pages";
  if (!ptes_.empty() &&
      (ptes_.entries().front().first < vstart_ || ptes_.entries().back().first >= vend_))
    return "a PTE outside the vmalloc range";
  for (unsigned c = 0; c < cfg_.cpus; ++c)
    if (!deferred_[c].empty() && std::find(work_.begin(), work_.end(), c) == work_.end())
      return "cpu " + std::to_string(c) + " has deferred frees but no work queued";
  if (in_work_)
    return "deferred work left running";
  return "";
}

} // namespace vmcheck::spec
