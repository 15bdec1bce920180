// Page-table and MMU throughput: map + first touch, TLB-hit translation,
// TLB-miss translation (a full walk plus LRU replacement) and a bare walk.
#include "machine/diag.h"
#include "machine/fault_inject.h"
#include "machine/mmu.h"
#include "machine/page_alloc.h"
#include "machine/page_table.h"
#include "machine/phys_mem.h"

#include <benchmark/benchmark.h>

#include <stdexcept>

namespace vmcheck {
namespace {

constexpr u64 kBase = VMALLOC_START_L4;

struct Rig {
  explicit Rig(unsigned tlb = 64)
      : mem(1, u64{64} << 20), alloc(mem, faults, diag), pt(mem, alloc, diag, 4),
        mmu(pt, diag, 4, tlb) {
    if (!pt.init())
      throw std::runtime_error("bench: no kernel root");
    data = *alloc.alloc_pages_node(0, GFP_KERNEL, 0, PageOwner::Kernel);
  }
  void map_range(u64 pages) {
    for (u64 i = 0; i < pages; ++i)
      if (pt.map_page(pt.kernel_root(), kBase + i * PAGE_SIZE, data, PAGE_KERNEL) != 0)
        throw std::runtime_error("bench: map failed");
  }

  DiagLog diag;
  FaultInjector faults;
  PhysMem mem;
  PageAllocator alloc;
  PageTables pt;
  Mmu mmu;
  Pfn data = 0;
};

// One vmap-like step: map a fresh page, then touch it (a TLB miss). The VA
// window is recycled (unmap + flush, untimed) so tables are reused.
void BM_MapThenTranslate(benchmark::State &state) {
  Rig r;
  constexpr u64 kWindow = 1u << 16;
  u64 i = 0;
  for (auto _ : state) {
    if (i == kWindow) {
      state.PauseTiming();
      for (u64 j = 0; j < kWindow; ++j)
        r.pt.clear(r.pt.kernel_root(), kBase + j * PAGE_SIZE);
      r.mmu.flush_tlb_all();
      i = 0;
      state.ResumeTiming();
    }
    const u64 va = kBase + i * PAGE_SIZE;
    benchmark::DoNotOptimize(r.pt.map_page(r.pt.kernel_root(), va, r.data, PAGE_KERNEL));
    benchmark::DoNotOptimize(r.mmu.translate(0, r.pt.kernel_root(), va, Access::Write, false));
    ++i;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_MapThenTranslate);

// The working set fits in the TLB: every access hits.
void BM_TranslateHit(benchmark::State &state) {
  const u64 pages = static_cast<u64>(state.range(0));
  Rig r;
  r.map_range(pages);
  for (u64 i = 0; i < pages; ++i)
    r.mmu.translate(0, r.pt.kernel_root(), kBase + i * PAGE_SIZE, Access::Read, false);
  u64 i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(
        r.mmu.translate(0, r.pt.kernel_root(), kBase + i * PAGE_SIZE + 8, Access::Read, false));
    i = i + 1 == pages ? 0 : i + 1;
  }
  if (r.mmu.stats(0).misses != pages)
    state.SkipWithError("unexpected TLB misses");
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_TranslateHit)->Arg(1)->Arg(8)->Arg(64);

// A sequential sweep over 4x the TLB: every access misses, walks four
// levels and evicts the least recently used entry.
void BM_TranslateMiss(benchmark::State &state) {
  constexpr u64 kPages = 256;
  Rig r(64);
  r.map_range(kPages);
  u64 i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(
        r.mmu.translate(0, r.pt.kernel_root(), kBase + i * PAGE_SIZE, Access::Read, false));
    i = i + 1 == kPages ? 0 : i + 1;
  }
  if (r.mmu.stats(0).hits != 0)
    state.SkipWithError("unexpected TLB hits");
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_TranslateMiss);

// The page-table walk alone (no TLB, no A/D update).
void BM_Walk(benchmark::State &state) {
  constexpr u64 kPages = 4096;
  Rig r;
  r.map_range(kPages);
  u64 i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(r.pt.walk(r.pt.kernel_root(), kBase + i * PAGE_SIZE));
    i = i + 1 == kPages ? 0 : i + 1;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Walk);

// Iterating the leaves of a sparse vmalloc range: 64 pages in each of 16
// PUD-sized holes spread over the whole 32 TiB.
void BM_ForEachLeafSparse(benchmark::State &state) {
  Rig r;
  const u64 stride = (VMALLOC_END_L4 + 1 - VMALLOC_START_L4) / 16;
  for (u64 k = 0; k < 16; ++k)
    for (u64 i = 0; i < 64; ++i)
      r.pt.map_page(r.pt.kernel_root(), kBase + k * stride + i * PAGE_SIZE, r.data, PAGE_KERNEL);
  for (auto _ : state) {
    u64 n = 0;
    r.pt.for_each_leaf(r.pt.kernel_root(), VMALLOC_START_L4, VMALLOC_END_L4 + 1,
                       [&](u64, const PteRef &) { ++n; });
    if (n != 16 * 64)
      state.SkipWithError("leaf count");
    benchmark::DoNotOptimize(n);
  }
  state.SetItemsProcessed(state.iterations() * 16 * 64);
}
BENCHMARK(BM_ForEachLeafSparse);

} // namespace
} // namespace vmcheck

BENCHMARK_MAIN();
