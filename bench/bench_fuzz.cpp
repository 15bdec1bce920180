// Fuzz-target throughput, as ratios measured in one run (issue 7):
//   - executions per second of every target on the same seeded inputs of
//     1..512 bytes, exactly as the libFuzzer entry point runs them;
//   - the cost of the reference spec: the same decoded traces replayed on
//     the engine alone (invariants still checked after every op) against
//     the differential run;
//   - the cost of a fresh machine: a one-op trace on a 64 MiB machine
//     against the same trace on an 8 GiB one (state reset must cost what
//     an input touches, not the size of the machine).
// Plain program, no google-benchmark: ci/bench also runs it from the ASan
// build, so the release/ASan ratio is measured in the same run too.
// Usage: bench_fuzz [SECONDS_PER_MEASUREMENT] [INPUTS] [TARGET|fresh]
//   (default 1.0, 200, everything; naming a target, or "fresh" for the
//   fresh-machine measurement, skips the rest, for profiling one of them)
#include "harness/codec.h"
#include "harness/executor.h"
#include "harness/fuzz_target.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace vmcheck {
namespace {

using Input = std::vector<std::uint8_t>;

// The inputs every measurement shares: seeded xorshift, lengths 1..512.
std::vector<Input> make_inputs(std::size_t n) {
  std::uint64_t s = 0x9e3779b97f4a7c15ULL;
  auto next = [&s] {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
  };
  std::vector<Input> out(n);
  for (Input &in : out) {
    in.resize(1 + next() % 512);
    for (auto &b : in)
      b = static_cast<std::uint8_t>(next());
  }
  return out;
}

// Runs fn(i) over the inputs, round after round, for at least `seconds`;
// returns runs per second. Every round is complete, so each input weighs
// the same.
double rate(std::size_t n, double seconds, const std::function<void(std::size_t)> &fn) {
  const auto start = std::chrono::steady_clock::now();
  std::size_t runs = 0;
  double elapsed = 0;
  do {
    for (std::size_t i = 0; i < n; ++i)
      fn(i);
    runs += n;
    elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  } while (elapsed < seconds);
  return static_cast<double>(runs) / elapsed;
}

int findings = 0;

// Each input run once, timed: the median and the slowest input in
// microseconds (a few inputs that allocate most of the machine weigh more
// in exec/s than their number).
std::pair<double, double> median_and_max_us(std::size_t n,
                                            const std::function<void(std::size_t)> &fn) {
  std::vector<double> us(n);
  for (std::size_t i = 0; i < n; ++i) {
    const auto start = std::chrono::steady_clock::now();
    fn(i);
    us[i] =
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count();
  }
  std::sort(us.begin(), us.end());
  return {us[n / 2], us.back()};
}

void run_target(FuzzTarget t, const std::vector<Input> &inputs) {
  if (run_fuzz_input(t, inputs[0]).finding) // warm-up; a finding is the fuzzers' business
    ++findings;
}

} // namespace
} // namespace vmcheck

int main(int argc, char **argv) {
  using namespace vmcheck;
  const double seconds = argc > 1 ? std::atof(argv[1]) : 1.0;
  const std::size_t n = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 200;
  // A third argument names one target, or "fresh" for the fresh-machine
  // measurement alone.
  const bool only_fresh = argc > 3 && std::string(argv[3]) == "fresh";
  const std::optional<FuzzTarget> only =
      argc > 3 ? fuzz_target_from_name(argv[3]) : std::optional<FuzzTarget>();
  if (seconds <= 0 || n == 0 || (argc > 3 && !only && !only_fresh)) {
    std::fprintf(stderr, "usage: bench_fuzz [SECONDS_PER_MEASUREMENT > 0] [INPUTS > 0] "
                         "[vmalloc_api|backends|pcpu|usermm|trace_parser|fresh]\n");
    return 2;
  }
  const std::vector<Input> inputs = make_inputs(n);

  std::printf("fuzz targets: %zu seeded inputs of 1..512 bytes, >= %.1f s per measurement\n\n", n,
              seconds);
  std::printf("%-12s %12s %14s %10s %11s %11s %10s\n", "target", "exec/s", "engine-only/s",
              "spec-cost", "median-us", "slowest-us", "ops/input");
  for (FuzzTarget t : kFuzzTargets) {
    if ((only && t != *only) || only_fresh)
      continue;
    run_target(t, inputs);
    const auto run_one = [&](std::size_t i) {
      if (run_fuzz_input(t, inputs[i]).finding)
        ++findings;
    };
    const double target_rate = rate(n, seconds, run_one);
    const auto [median_us, max_us] = median_and_max_us(n, run_one);
    const std::string name(fuzz_target_name(t));
    const auto vocab = fuzz_target_vocabulary(t);
    std::vector<Trace> traces;
    std::size_t ops = 0;
    if (vocab)
      for (const Input &in : inputs) {
        traces.push_back(decode_bytes(in, *vocab));
        ops += traces.back().stmts.size();
      }
    const std::string ops_per_input =
        vocab ? std::to_string(static_cast<double>(ops) / static_cast<double>(n)).substr(0, 5)
              : "-";
    if (!vocab || t == FuzzTarget::Backends) {
      // trace_parser has no engine; backends runs two engines and no spec.
      std::printf("%-12s %12.0f %14s %10s %11.0f %11.0f %10s\n", name.c_str(), target_rate, "-",
                  "-", median_us, max_us, ops_per_input.c_str());
      continue;
    }
    ReplayOptions engine_only;
    engine_only.check_every = kFuzzCheckEvery;
    const double engine_rate =
        rate(n, seconds, [&](std::size_t i) { (void)replay(traces[i], engine_only); });
    // spec-cost: how many engine-only runs one differential run costs
    // (the pcpu target's rate also includes its Z3 checks).
    std::printf("%-12s %12.0f %14.0f %9.2fx %11.0f %11.0f %10s\n", name.c_str(), target_rate,
                engine_rate, engine_rate / target_rate, median_us, max_us, ops_per_input.c_str());
  }

  if (only)
    return 0;
  // A fresh machine per input: one small op on a small and on a large machine.
  auto one_op = [](const char *mem) {
    const ParseResult r =
        parse_trace(std::string("# vmcheck trace v1\nconfig cpus=4 nodes=2 mem=") + mem +
                    "\na = vmalloc(4096)\nvfree(a)\n");
    return r.trace;
  };
  const Trace small = one_op("64M"), large = one_op("8G");
  ReplayOptions diff;
  diff.differential = true;
  const double small_rate = rate(64, seconds, [&](std::size_t) { (void)replay(small, diff); });
  const double large_rate = rate(64, seconds, [&](std::size_t) { (void)replay(large, diff); });
  std::printf("\nfresh machine + vmalloc/vfree, differential: 2x64 MiB %.0f/s, 2x8 GiB %.0f/s\n",
              small_rate, large_rate);
  std::printf("ratio small/large machine: %.2f (goal <= 1.5: reset costs what an input touches)\n",
              small_rate / large_rate);
  std::printf("(findings among the inputs: %d; the fuzzers report them)\n", findings);
  return 0;
}
