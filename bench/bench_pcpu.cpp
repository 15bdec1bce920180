// pcpu_get_vm_areas: the engine's cost of one call (plus its free) with N
// existing areas, and the Z3 checks of that same placement (validity and
// top-down maximality) on the engine's real snapshot, at N = 10, 100, 1000.
// The existing areas are pcpu chunks of two congruent 16 KiB areas 64 KiB
// apart, placed from the top with gaps the next call must interleave into,
// plus one-page vmallocs at the bottom.
#include "harness/z3_checks.h"
#include "kernel.h"
#include "spec/smt/placement_smt.h"

#include <benchmark/benchmark.h>

#include <memory>

namespace vmcheck {
namespace {

constexpr u64 kOffsets[] = {0, 64 << 10};
constexpr u64 kSizes[] = {16 << 10, 16 << 10};

std::unique_ptr<Kernel> make_kernel(long areas) {
  MachineConfig cfg;
  cfg.cpus = 2;
  cfg.nodes = 1;
  cfg.mem_per_node = u64{64} << 20;
  auto k = std::make_unique<Kernel>(cfg);
  for (long i = 0; i < areas / 2; ++i) {
    k->vmalloc().vmalloc(PAGE_SIZE);
    k->vmalloc().pcpu_get_vm_areas(kOffsets, kSizes, PAGE_SIZE);
  }
  return k;
}

void BM_pcpu_get_vm_areas(benchmark::State &state) {
  auto k = make_kernel(state.range(0));
  for (auto _ : state) {
    auto vms = k->vmalloc().pcpu_get_vm_areas(kOffsets, kSizes, PAGE_SIZE);
    if (vms.size() != 2)
      state.SkipWithError("pcpu_get_vm_areas failed");
    k->vmalloc().pcpu_free_vm_areas(vms);
    k->vmalloc().purge_vmap_area_lazy(); // the next call sees the same layout
  }
}

void BM_z3_pcpu_checks(benchmark::State &state) {
  auto k = make_kernel(state.range(0));
  const smt::Snapshot before = z3_snapshot(*k);
  auto vms = k->vmalloc().pcpu_get_vm_areas(kOffsets, kSizes, PAGE_SIZE);
  smt::PcpuCall call;
  call.offsets.assign(std::begin(kOffsets), std::end(kOffsets));
  call.sizes.assign(std::begin(kSizes), std::end(kSizes));
  call.align = PAGE_SIZE;
  for (VmStruct *v : vms)
    call.addrs.push_back(v->addr);
  smt::PlacementChecker checker;
  for (auto _ : state) {
    for (const smt::CheckResult &r : checker.check_pcpu(before, call))
      if (r.status != smt::Status::Proven)
        state.SkipWithError("a Z3 check did not prove the engine's placement");
  }
}

BENCHMARK(BM_pcpu_get_vm_areas)->Arg(10)->Arg(100)->Arg(1000)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_z3_pcpu_checks)->Arg(10)->Arg(100)->Arg(1000)->Unit(benchmark::kMillisecond);

} // namespace
} // namespace vmcheck
