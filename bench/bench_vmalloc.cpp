// vmalloc(4096) + vfree with N live areas already in place, modern and
// legacy backends, and the ratios the vmalloc issue asks for, measured in
// the same run:
//   modern(10^6) / modern(10^3)   goal <= 2
//   legacy(10^5) / modern(10^5)   goal >= 100
// Layout: N one-page areas (plus guard) packed from VMALLOC_START, the same
// for both backends (the legacy list is filled top-down so that setting it
// up is linear; its first-fit walk then has to pass all N on every call).
#include "kernel.h"

#include <benchmark/benchmark.h>

#include <cstdio>
#include <map>
#include <memory>
#include <string>

namespace vmcheck {
namespace {

std::unique_ptr<Kernel> make_kernel(Backend backend, u64 live) {
  MachineConfig cfg;
  cfg.cpus = 4;
  cfg.nodes = 1;
  // Room for the live pages, their page tables and the benchmark's churn.
  cfg.mem_per_node =
      ((live + (u64{1} << 16)) * PAGE_SIZE + (u64{4} << 20) - 1) & ~((u64{4} << 20) - 1);
  cfg.backend = backend;
  auto k = std::make_unique<Kernel>(cfg);
  Vmalloc &v = k->vmalloc();
  const u64 start = k->machine().vmalloc_start();
  const u64 stride = 2 * PAGE_SIZE;
  if (backend == Backend::Modern) {
    for (u64 i = 0; i < live; ++i)
      if (v.vmalloc(PAGE_SIZE) != start + i * stride)
        throw std::runtime_error("unexpected placement while setting up");
  } else {
    for (u64 i = live; i-- > 0;) {
      const u64 lo = start + i * stride;
      if (v.__vmalloc_node_range(PAGE_SIZE, 1, lo, lo + stride + 1, GFP_KERNEL, PAGE_KERNEL, 0,
                                 NUMA_NO_NODE, "bench") != lo)
        throw std::runtime_error("unexpected placement while setting up");
    }
  }
  return k;
}

void BM_vmalloc_vfree(benchmark::State &state) {
  const auto backend = static_cast<Backend>(state.range(0));
  const u64 live = static_cast<u64>(state.range(1));
  auto k = make_kernel(backend, live);
  Vmalloc &v = k->vmalloc();
  for (auto _ : state) {
    const u64 a = v.vmalloc(PAGE_SIZE);
    if (a == 0)
      state.SkipWithError("vmalloc failed");
    v.vfree(a);
  }
  state.counters["live"] = static_cast<double>(live);
  state.counters["backend"] = static_cast<double>(state.range(0));
}

void register_cases() {
  for (long n : {1000L, 10000L, 100000L, 1000000L})
    benchmark::RegisterBenchmark("vmalloc_vfree/modern", BM_vmalloc_vfree)
        ->Args({static_cast<long>(Backend::Modern), n})
        ->Iterations(200000)
        ->Unit(benchmark::kNanosecond);
  for (long n : {1000L, 10000L, 100000L})
    benchmark::RegisterBenchmark("vmalloc_vfree/legacy", BM_vmalloc_vfree)
        ->Args({static_cast<long>(Backend::Legacy), n})
        ->Iterations(n >= 100000 ? 300 : 3000)
        ->Unit(benchmark::kNanosecond);
}

// Console output as usual, plus the per-op CPU times kept for the ratios.
class RatioReporter : public benchmark::ConsoleReporter {
public:
  void ReportRuns(const std::vector<Run> &runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run &r : runs) {
      const auto backend = static_cast<int>(r.counters.at("backend").value);
      const auto live = static_cast<long>(r.counters.at("live").value);
      ns_[{backend, live}] = r.GetAdjustedCPUTime();
    }
  }
  double ns(Backend backend, long n) const {
    auto it = ns_.find({static_cast<int>(backend), n});
    return it == ns_.end() ? 0 : it->second;
  }

private:
  std::map<std::pair<int, long>, double> ns_;
};

} // namespace
} // namespace vmcheck

int main(int argc, char **argv) {
  using namespace vmcheck;
  benchmark::Initialize(&argc, argv);
  register_cases();
  RatioReporter rep;
  benchmark::RunSpecifiedBenchmarks(&rep);
  std::printf("\n%-10s %14s %14s\n", "live", "modern ns/op", "legacy ns/op");
  for (long n : {1000L, 10000L, 100000L, 1000000L})
    std::printf("%-10ld %14.0f %14.0f\n", n, rep.ns(Backend::Modern, n),
                rep.ns(Backend::Legacy, n));
  const double m3 = rep.ns(Backend::Modern, 1000), m6 = rep.ns(Backend::Modern, 1000000);
  const double m5 = rep.ns(Backend::Modern, 100000), l5 = rep.ns(Backend::Legacy, 100000);
  if (m3 > 0 && m6 > 0)
    std::printf("ratio modern 10^6 / 10^3 = %.2f (goal <= 2)\n", m6 / m3);
  if (m5 > 0 && l5 > 0)
    std::printf("ratio legacy / modern at 10^5 = %.0f (goal >= 100)\n", l5 / m5);
  benchmark::Shutdown();
  return 0;
}
