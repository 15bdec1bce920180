#include "spec/smt/placement_brute.h"

#include <algorithm>

namespace vmcheck::smt {

namespace {

// The page-granular alignment a placement really gets: free space is made of
// whole pages, so an alignment below PAGE_SIZE means PAGE_SIZE.
u64 effective_align(u64 align) {
  return std::max(align, PAGE_SIZE);
}

u64 align_down(u64 x, u64 align) {
  return x & ~(align - 1);
}

// x rounded up to align; nullopt when that wraps.
std::optional<u64> align_up(u64 x, u64 align) {
  const u64 up = (x + align - 1) & ~(align - 1);
  return up < x ? std::nullopt : std::optional<u64>(up);
}

bool overlaps(u64 start, u64 end, const ReservedArea &r) {
  return start < r.end && r.start < end;
}

bool misses_reserved(const Snapshot &snap, u64 start, u64 end, bool lazy_reserved) {
  for (const ReservedArea &r : snap.reserved)
    if ((lazy_reserved || !r.lazy) && overlaps(start, end, r))
      return false;
  return true;
}

// Highest end of any pcpu area relative to the base (the kernel's last_end).
u64 pcpu_span(const PcpuCall &call) {
  u64 span = 0;
  for (std::size_t i = 0; i < call.offsets.size(); ++i)
    span = std::max(span, call.offsets[i] + call.sizes[i]);
  return span;
}

// Bases the pcpu search can return: [lo, hi], both aligned; nullopt if empty.
struct BaseRange {
  u64 lo;
  u64 hi;
};

std::optional<BaseRange> pcpu_bases(const Snapshot &snap, const PcpuCall &call) {
  const u64 align = effective_align(call.align);
  const std::optional<u64> lo = align_up(snap.vmalloc_start, align);
  const u64 top = align_down(snap.vmalloc_end, align);
  const u64 span = pcpu_span(call);
  if (!lo || top < span || top - span < *lo)
    return std::nullopt;
  return BaseRange{*lo, align_down(top - span, align)};
}

// Starts alloc_vmap_area can return: [lo, hi], both aligned; nullopt if empty.
std::optional<BaseRange> vmalloc_starts(const Snapshot &snap, const VmallocCall &call) {
  const u64 align = effective_align(call.align);
  const std::optional<u64> lo = align_up(std::max(call.vstart, snap.vmalloc_start), align);
  const u64 end = std::min(call.vend, snap.vmalloc_end);
  if (!lo || end < call.size || end - call.size < *lo)
    return std::nullopt;
  return BaseRange{*lo, align_down(end - call.size, align)};
}

std::optional<u64> highest_pcpu_fit(const Snapshot &snap, const PcpuCall &call,
                                    bool lazy_reserved) {
  const std::optional<BaseRange> range = pcpu_bases(snap, call);
  if (!range)
    return std::nullopt;
  // The highest fit is either the top of the range or sits so that some area
  // ends right below (aligned down) some reserved area: one align higher, that
  // area would run into it.
  const u64 align = effective_align(call.align);
  std::vector<u64> candidates{range->hi};
  for (const ReservedArea &r : snap.reserved)
    for (std::size_t i = 0; i < call.offsets.size(); ++i) {
      const u64 area_end = call.offsets[i] + call.sizes[i];
      if (r.start >= area_end)
        candidates.push_back(align_down(r.start - area_end, align));
    }
  std::optional<u64> best;
  for (u64 base : candidates)
    if ((!best || base > *best) && brute_pcpu_fits(snap, call, base, lazy_reserved))
      best = base;
  return best;
}

std::optional<u64> lowest_vmalloc_fit(const Snapshot &snap, const VmallocCall &call,
                                      bool lazy_reserved) {
  const std::optional<BaseRange> range = vmalloc_starts(snap, call);
  if (!range)
    return std::nullopt;
  // The lowest fit is either the bottom of the range or starts at the first
  // aligned address after some reserved area: one align lower, it would run into it.
  const u64 align = effective_align(call.align);
  std::vector<u64> candidates{range->lo};
  for (const ReservedArea &r : snap.reserved)
    if (const std::optional<u64> up = align_up(r.end, align))
      candidates.push_back(*up);
  std::optional<u64> best;
  for (u64 start : candidates)
    if ((!best || start < *best) && brute_vmalloc_fits(snap, call, start, lazy_reserved))
      best = start;
  return best;
}

} // namespace

bool brute_pcpu_fits(const Snapshot &snap, const PcpuCall &call, u64 base, bool lazy_reserved) {
  const std::optional<BaseRange> range = pcpu_bases(snap, call);
  if (!range || base < range->lo || base > range->hi || base % effective_align(call.align) != 0)
    return false;
  for (std::size_t i = 0; i < call.offsets.size(); ++i) {
    const u64 start = base + call.offsets[i];
    if (!misses_reserved(snap, start, start + call.sizes[i], lazy_reserved))
      return false;
  }
  return true;
}

std::optional<u64> brute_pcpu_base(const Snapshot &snap, const PcpuCall &call) {
  if (const std::optional<u64> base = highest_pcpu_fit(snap, call, true))
    return base;
  return highest_pcpu_fit(snap, call, false);
}

std::optional<u64> scan_pcpu_base(const Snapshot &snap, const PcpuCall &call) {
  const std::optional<BaseRange> range = pcpu_bases(snap, call);
  if (!range)
    return std::nullopt;
  const u64 align = effective_align(call.align);
  for (bool lazy_reserved : {true, false})
    for (u64 base = range->hi;; base -= align) {
      if (brute_pcpu_fits(snap, call, base, lazy_reserved))
        return base;
      if (base < range->lo + align)
        break;
    }
  return std::nullopt;
}

bool brute_vmalloc_fits(const Snapshot &snap, const VmallocCall &call, u64 start,
                        bool lazy_reserved) {
  const std::optional<BaseRange> range = vmalloc_starts(snap, call);
  if (!range || start < range->lo || start > range->hi || start % effective_align(call.align) != 0)
    return false;
  return misses_reserved(snap, start, start + call.size, lazy_reserved);
}

std::optional<u64> brute_vmalloc_start(const Snapshot &snap, const VmallocCall &call) {
  if (const std::optional<u64> start = lowest_vmalloc_fit(snap, call, true))
    return start;
  return lowest_vmalloc_fit(snap, call, false);
}

std::optional<u64> scan_vmalloc_start(const Snapshot &snap, const VmallocCall &call) {
  const std::optional<BaseRange> range = vmalloc_starts(snap, call);
  if (!range)
    return std::nullopt;
  const u64 align = effective_align(call.align);
  for (bool lazy_reserved : {true, false})
    for (u64 start = range->lo; start <= range->hi; start += align)
      if (brute_vmalloc_fits(snap, call, start, lazy_reserved))
        return start;
  return std::nullopt;
}

} // namespace vmcheck::smt
