// libFuzzer target trace_parser: arbitrary text must give a clear error or
// a trace that prints and parses back the same, never a crash.
#include <cstdint>

#include "harness/fuzz_target.h"

namespace {
constexpr vmcheck::FuzzTarget kTarget = vmcheck::FuzzTarget::TraceParser;
} // namespace

#include "fuzz/target.h"
