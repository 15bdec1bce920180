// Brute-force answers to the questions the Z3 checks ask, for cross-checking
// the encodings: plain u64 arithmetic in bytes over the same Snapshot, no Z3.
// The *_fits predicates state the constraints once more; the searches try
// every candidate base that can be extremal; the scans try every aligned
// position (small ranges only).
#pragma once

#include "spec/smt/placement_smt.h"

#include <optional>

namespace vmcheck::smt {

// Whether the call's areas at base are aligned, inside the range
// [ALIGN(vmalloc_start, align), vmalloc_end & ~(align - 1)] and miss every
// reserved area (lazy ones only when lazy_reserved). The call's result is ignored.
bool brute_pcpu_fits(const Snapshot &snap, const PcpuCall &call, u64 base, bool lazy_reserved);

// The base pcpu_get_vm_areas must pick: the highest fit with lazy areas
// reserved, else (after the purge) the highest fit without them, else nullopt.
std::optional<u64> brute_pcpu_base(const Snapshot &snap, const PcpuCall &call);

// Same answer as brute_pcpu_base by trying every aligned base; cost is linear
// in the number of aligned positions in the range, so only for small ranges.
std::optional<u64> scan_pcpu_base(const Snapshot &snap, const PcpuCall &call);

// Whether [start, start + size) is aligned, inside [vstart, vend) and the
// vmalloc range and misses every reserved area (lazy ones only when lazy_reserved).
bool brute_vmalloc_fits(const Snapshot &snap, const VmallocCall &call, u64 start,
                        bool lazy_reserved);

// The start alloc_vmap_area must return: the lowest fit with lazy areas
// reserved, else (after the purge) the lowest without them, else nullopt.
std::optional<u64> brute_vmalloc_start(const Snapshot &snap, const VmallocCall &call);

// Same answer as brute_vmalloc_start by trying every aligned start (small ranges only).
std::optional<u64> scan_vmalloc_start(const Snapshot &snap, const VmallocCall &call);

} // namespace vmcheck::smt
