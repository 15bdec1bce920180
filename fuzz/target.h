// Each fuzz target is one translation unit that defines kTarget and
// includes this header: the libFuzzer entry point, the custom op-level
// mutator and crossover, and nothing else. The logic lives in
// harness/fuzz_target.cpp, shared with `vmcheck fuzz` and the tests.
#pragma once

#include "harness/codec.h"
#include "harness/fuzz_target.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
  const vmcheck::FuzzOutcome o =
      vmcheck::run_fuzz_input(kTarget, std::span<const std::uint8_t>(data, size));
  if (o.finding) {
    std::fprintf(stderr, "vmcheck finding (%s):\n%s\n--- input as a trace ---\n%s\n",
                 std::string(vmcheck::fuzz_target_name(kTarget)).c_str(), o.report.c_str(),
                 o.trace.c_str());
    std::abort(); // a crash is how libFuzzer and AFL++ learn of a finding
  }
  return 0;
}

// Which target this binary is, for the standalone replay main.
extern "C" int vmcheck_fuzz_target_id() {
  return static_cast<int>(kTarget);
}
