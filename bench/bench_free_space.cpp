// One vmalloc-sized allocation and its free, with N areas already live, for
// the tree-based FreeSpace and the seed-003 VmList baseline.
//
// Layout shared by both: N live areas of one page plus a guard page, placed
// every three pages from VMALLOC_START, so every busy area is followed by a
// one-page hole that is too small for the request. The measured allocation
// therefore has to get past all N holes to the free tail: FreeSpace prunes
// them through subtree_max_size, VmList walks every area. Time per iteration
// is one alloc + free pair.
#include "vmalloc/free_space.h"
#include "vmalloc/vmlist.h"

#include <benchmark/benchmark.h>

#include <cstdlib>

namespace vmcheck {
namespace {

constexpr u64 kStart = VMALLOC_START_L4;
constexpr u64 kEnd = VMALLOC_END_L4 + 1;
constexpr u64 kAreaSize = PAGE_SIZE + PAGE_SIZE; // 4 KiB plus its guard page
constexpr u64 kStride = 3 * PAGE_SIZE;

void fail(benchmark::State &state, const char *why) {
  state.SkipWithError(why);
}

void BM_FreeSpace_alloc_free(benchmark::State &state) {
  const u64 n = static_cast<u64>(state.range(0));
  FreeSpace fs(kStart, kEnd);
  for (u64 i = 0; i < n; ++i) {
    if (!fs.reserve(kStart + i * kStride, kAreaSize))
      return fail(state, "pre-population failed");
  }
  const u64 expected =
      kStart + (n - 1) * kStride + kAreaSize; // the hole after the last area is the tail
  const auto first = fs.find_lowest(kAreaSize, PAGE_SIZE, kStart, kEnd);
  if (first != expected)
    return fail(state, "lowest fit is not the free tail");
  for (auto _ : state) {
    const auto addr = fs.find_lowest(kAreaSize, PAGE_SIZE, kStart, kEnd);
    benchmark::DoNotOptimize(addr);
    fs.reserve(*addr, kAreaSize);
    fs.release(*addr, kAreaSize);
  }
  state.counters["free_blocks"] = static_cast<double>(fs.size());
}

void BM_VmList_alloc_free(benchmark::State &state) {
  const u64 n = static_cast<u64>(state.range(0));
  VmList list;
  // Placing from the highest slot down makes every insertion a head insertion,
  // so building the list is O(N) through the public first-fit walk itself.
  for (u64 i = n; i-- > 0;) {
    const u64 slot = kStart + i * kStride;
    if (list.alloc(kAreaSize, 1, slot, kEnd) != slot)
      return fail(state, "pre-population failed");
  }
  const u64 expected =
      kStart + (n - 1) * kStride + kAreaSize; // the hole after the last area is the tail
  if (list.alloc(kAreaSize, 1, kStart, kEnd) != expected || !list.remove(expected))
    return fail(state, "first fit is not the free tail");
  for (auto _ : state) {
    const auto addr = list.alloc(kAreaSize, 1, kStart, kEnd);
    benchmark::DoNotOptimize(addr);
    list.remove(*addr);
  }
  state.counters["areas"] = static_cast<double>(list.size());
}

BENCHMARK(BM_FreeSpace_alloc_free)->Arg(1000)->Arg(10000)->Arg(100000)->Arg(1000000);
BENCHMARK(BM_VmList_alloc_free)->Arg(1000)->Arg(10000)->Arg(100000);

} // namespace
} // namespace vmcheck
