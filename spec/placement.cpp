// Where a new area goes: the modern lowest fit, the legacy list walk of
// seed 003, and the top-down congruent search of pcpu_get_vm_areas.
#include "spec/vmalloc_spec.h"

#include <algorithm>
#include <functional>

namespace vmcheck::spec {

namespace {

// ALIGN(x, a) for a power of two a; nullopt when it wraps past 2^64.
std::optional<u64> align_up(u64 x, u64 a) {
  const u64 r = (x + (a - 1)) & ~(a - 1);
  if (r < x)
    return std::nullopt;
  return r;
}

} // namespace

// The lowest a >= vstart with a % align == 0 and a + size <= vend such that
// [a, a + size) meets no area (busy or lazy). The areas are sorted and
// disjoint, so walking them once while pushing the candidate past every
// area it meets visits candidates in increasing order and stops at the first
// one that fits: the lowest.
std::optional<u64> VmallocSpec::lowest_fit(u64 size, u64 align, u64 vstart, u64 vend) const {
  std::optional<u64> a = align_up(vstart, align);
  for (const Area &area : areas_) {
    if (!a)
      return std::nullopt;
    if (area.end <= *a)
      continue;
    if (*a + size >= *a && *a + size <= area.start)
      break;
    a = align_up(area.end, align);
  }
  if (!a || *a + size < *a || *a + size > vend)
    return std::nullopt;
  return a;
}

// Seed 003's __get_vm_area_node walk over the address-sorted list, step by
// step: an area below the candidate pushes it up only when it reaches it;
// an area at or above it either leaves room (found) or pushes the candidate
// past its end, and only then is `end` checked. Running off the end of the
// list accepts the candidate without looking at `end` (the seed does so).
// The one departure: a candidate whose end would wrap past 2^64 fails,
// because such an area cannot exist in the emulated address space.
std::optional<u64> VmallocSpec::legacy_fit(u64 size, u64 align, u64 start, u64 end) const {
  std::optional<u64> addr = align_up(start, align);
  for (const Area &tmp : areas_) {
    if (!addr)
      return std::nullopt;
    if (tmp.start < *addr) {
      if (tmp.end >= *addr)
        addr = align_up(tmp.end, align);
      continue;
    }
    if (size + *addr < *addr)
      return std::nullopt;
    if (size + *addr <= tmp.start)
      return addr;
    addr = align_up(tmp.end, align);
    if (addr && *addr > end - size)
      return std::nullopt;
  }
  if (!addr || *addr + size < *addr)
    return std::nullopt;
  return addr;
}

// [start, end) meets no area (lazy ones ignored if asked).
bool VmallocSpec::range_is_free(u64 start, u64 end, bool ignore_lazy) const {
  for (const Area &area : areas_) {
    if (ignore_lazy && area.kind == AreaKind::Lazy)
      continue;
    if (area.start < end && start < area.end)
      return false;
  }
  return true;
}

// The highest base, aligned, with base >= ALIGN(VMALLOC_START, align), such
// that every [base + off_i, base + off_i + size_i) ends at or below
// VMALLOC_END & ~(align - 1) and meets no area (guard pages of the others
// count as theirs; these areas have none of their own).
//
// Scanning every aligned base of 32 TiB is out of the question, but only a
// few bases can be the answer. Let b* be the answer and hi the highest base
// the top limit allows. If b* < hi then b* + align is not feasible, so some
// area i at base b* + align meets some occupied [s, e), i.e. lies in the
// open interval (s - off_i - size_i, e - off_i) of bases, while b* does not:
// b* <= s - off_i - size_i < b* + align, so b* = ALIGN_DOWN(s - off_i -
// size_i, align). Hence b* is hi or such a value (area i's end touching an
// occupied start); trying those candidates from the highest down and taking
// the first feasible one gives b*.
std::optional<u64> VmallocSpec::pcpu_find_base(std::span<const u64> offsets,
                                               std::span<const u64> sizes, u64 align) const {
  const std::optional<u64> lo = align_up(vstart_, align);
  const u64 top = vend_ & ~(align - 1);
  u64 last_end = 0;
  for (std::size_t i = 0; i < offsets.size(); ++i)
    last_end = std::max(last_end, offsets[i] + sizes[i]);
  if (!lo || top < last_end || top - last_end < *lo)
    return std::nullopt;
  const u64 hi = top - last_end;

  std::vector<u64> candidates{hi};
  for (const Area &area : areas_)
    for (std::size_t i = 0; i < offsets.size(); ++i) {
      const u64 span_end = offsets[i] + sizes[i];
      if (area.start >= span_end)
        candidates.push_back((area.start - span_end) & ~(align - 1));
    }
  std::sort(candidates.begin(), candidates.end(), std::greater<>());
  candidates.erase(std::unique(candidates.begin(), candidates.end()), candidates.end());

  for (u64 base : candidates) {
    if (base > hi || base < *lo)
      continue;
    bool fits = true;
    for (std::size_t i = 0; i < offsets.size() && fits; ++i)
      fits = range_is_free(base + offsets[i], base + offsets[i] + sizes[i], false);
    if (fits)
      return base;
  }
  return std::nullopt;
}

} // namespace vmcheck::spec
