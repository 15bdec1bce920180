// What every fuzz target does with one input, in one place: the libFuzzer
// entry points (fuzz/), their standalone replay main, the fuzz-smoke tests
// and `vmcheck fuzz --builtin` all call run_fuzz_input.
#pragma once

#include "harness/codec.h"
#include "harness/trace.h"

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace vmcheck {

enum class FuzzTarget : std::uint8_t { VmallocApi, Backends, Pcpu, Usermm, TraceParser };

std::string_view fuzz_target_name(FuzzTarget t);
std::optional<FuzzTarget> fuzz_target_from_name(std::string_view name);
inline constexpr FuzzTarget kFuzzTargets[] = {FuzzTarget::VmallocApi, FuzzTarget::Backends,
                                              FuzzTarget::Pcpu, FuzzTarget::Usermm,
                                              FuzzTarget::TraceParser};
// The fuzz targets check the engine's invariants after every
// kFuzzCheckEvery-th op and after the last (ReplayOptions::check_every); a
// failing input is replayed with a check after every op, so the report still
// names the op that broke the invariant. Results, diagnostics and the spec's
// state are compared after every op.
inline constexpr unsigned kFuzzCheckEvery = 16;

// The codec vocabulary a byte-decoding target's inputs use (nullopt for
// trace_parser, whose inputs are text).
std::optional<Vocabulary> fuzz_target_vocabulary(FuzzTarget t);

struct FuzzOutcome {
  bool finding = false;
  std::string report; // what went wrong, ready to print
  std::string trace;  // with a finding, the input as a trace (empty for trace_parser)
};

// Runs one input: decodes it (or, for trace_parser, parses it) and checks
// it the way the target does. A finding is a divergence, an invariant
// violation, a kernel BUG, a backend disagreement or a parser round-trip
// failure; a malformed decoded step is not one.
FuzzOutcome run_fuzz_input(FuzzTarget t, std::span<const std::uint8_t> data);

// The same check on a trace (vmalloc_api, backends, pcpu): what `vmcheck
// minimize` and the fuzzers' crash triage use.
FuzzOutcome run_fuzz_trace(FuzzTarget t, const Trace &trace);

// The part of a finding's report that must stay the same while it is
// minimized: the kind of failure and the op, without addresses or lines.
std::string failure_signature(const FuzzOutcome &o);

} // namespace vmcheck
