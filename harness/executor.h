// The executor: replays a parsed trace on a fresh kernel, statement by
// statement, checking every `->` and every invariant after every op. The
// first failure stops the run and becomes the report.
#pragma once

#include "engine/machine/machine.h"
#include "harness/ops.h"
#include "harness/trace.h"

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vmcheck {

enum class ReplayStatus : std::uint8_t {
  Ok,
  Divergence, // a `->` mismatch, an invariant violation, a finding or a kernel BUG
  Malformed,  // the trace itself is wrong: syntax, unknown names, bad arguments, bad config
};

struct ReplayOptions {
  std::optional<Backend> backend; // overrides the config line's backend
  const OpTable *ops = nullptr;   // nullptr: default_op_table()
  // Also run every op on the reference spec and compare results,
  // diagnostics and state after each op.
  bool differential = false;
  // Called with each call statement's index in the trace and its result
  // (the backends differential compares two runs this way).
  std::function<void(std::size_t, const Value &)> observe;
};

struct ReplayResult {
  ReplayStatus status = ReplayStatus::Ok;
  int line = 0;                     // of the failing statement (0 when none)
  int column = 0;                   // for Malformed: where in the line
  std::string message;              // one-line headline of the failure
  std::vector<std::string> details; // "op: ...", "expected: ...", diagnostics, ...
  std::uint64_t state_hash = 0;     // of the final (or failing) state
  std::size_t ops = 0;              // statements completed
  int spec_stopped_at = 0;          // differential: line of the first op the spec does not model

  // 0 ok, 1 divergence, 2 malformed: the `vmcheck replay` exit status.
  int exit_code() const;
  // The report `vmcheck replay` prints: "FILE:LINE[:COL]: message" and details.
  std::string report(std::string_view file) const;
};

// Replays a parsed trace on the engine.
ReplayResult replay(const Trace &trace, const ReplayOptions &options = {});
// Parses then replays; a parse error is a Malformed result.
ReplayResult replay_text(std::string_view text, const ReplayOptions &options = {});

} // namespace vmcheck
