// Buddy allocator throughput on the default machine (2 nodes x 512 MiB).
#include "machine/diag.h"
#include "machine/page_alloc.h"

#include <benchmark/benchmark.h>

#include <vector>

namespace vmcheck {
namespace {

constexpr u64 kNodeBytes = u64{512} << 20;

struct Rig {
  PhysMem mem{2, kNodeBytes};
  FaultInjector faults;
  DiagLog diag;
  PageAllocator alloc{mem, faults, diag};
};

// One alloc + free pair of the given order; the split and the merge back up
// to MAX_ORDER happen on every iteration, the worst case for a lone block.
void BM_alloc_free(benchmark::State &state) {
  const auto order = static_cast<unsigned>(state.range(0));
  Rig r;
  for (auto _ : state) {
    const auto p = r.alloc.alloc_pages_node(0, GFP_KERNEL, order);
    benchmark::DoNotOptimize(p);
    r.alloc.free_pages(*p, order);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_alloc_free)->Arg(0)->Arg(3);

// Steady state with many live blocks: allocate a batch, free it, so splits
// and merges stay shallow as in a running kernel.
void BM_alloc_free_batch(benchmark::State &state) {
  const auto order = static_cast<unsigned>(state.range(0));
  constexpr std::size_t kBatch = 4096;
  Rig r;
  std::vector<Pfn> held;
  held.reserve(kBatch);
  for (auto _ : state) {
    for (std::size_t i = 0; i < kBatch; ++i)
      held.push_back(*r.alloc.alloc_pages_node(0, GFP_KERNEL, order));
    for (Pfn p : held)
      r.alloc.free_pages(p, order);
    held.clear();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kBatch));
}
BENCHMARK(BM_alloc_free_batch)->Arg(0)->Arg(3);

// What a fuzzer pays per input: a fresh machine and its state hash.
void BM_fresh_machine_and_hash(benchmark::State &state) {
  for (auto _ : state) {
    Rig r;
    StateHasher h;
    r.mem.hash_into(h);
    r.alloc.hash_into(h);
    benchmark::DoNotOptimize(h.value());
  }
}
BENCHMARK(BM_fresh_machine_and_hash);

// Hash cost once a run has touched some memory (8 sections, data frames).
void BM_hash_after_touching(benchmark::State &state) {
  Rig r;
  std::vector<Pfn> held;
  for (int i = 0; i < 8 * 1024; ++i) {
    held.push_back(*r.alloc.alloc_pages_node(0, GFP_KERNEL, 0));
    r.mem.write_u64(held.back() << PAGE_SHIFT, held.back());
  }
  for (auto _ : state) {
    StateHasher h;
    r.mem.hash_into(h);
    r.alloc.hash_into(h);
    benchmark::DoNotOptimize(h.value());
  }
}
BENCHMARK(BM_hash_after_touching);

// check() on a default machine with 64 scattered live blocks, as the harness
// runs it after every step.
void BM_check_after_touching(benchmark::State &state) {
  Rig r;
  for (int i = 0; i < 64; ++i)
    r.alloc.alloc_pages_node(i % 2, GFP_KERNEL, static_cast<unsigned>(i % 4));
  for (auto _ : state)
    benchmark::DoNotOptimize(r.alloc.check());
}
BENCHMARK(BM_check_after_touching);

} // namespace
} // namespace vmcheck

BENCHMARK_MAIN();
