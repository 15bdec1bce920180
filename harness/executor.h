// The executor: replays a parsed trace on a fresh kernel, statement by
// statement, checking every `->` and every invariant after every op. The
// first failure stops the run and becomes the report.
//
// The fuzz targets may check the engine's invariants less often
// (ReplayOptions::check_every): results, diagnostics and the spec's state
// are still compared after every op, the invariants after every N-th op and
// after the last. When such a run fails it is replayed with a check after
// every op, so the report names the first op that broke an invariant, as a
// full run would. What a sparse run cannot see is a violation that a later
// op repairs before the next check; replay, props and corpus runs check
// after every op.
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
  // Also run the Z3 placement and guard-page checks (harness/z3_checks.h)
  // after every op; a violated check is a divergence.
  bool z3 = false;
  unsigned z3_rlimit = 0;      // Z3 resource limit per query; 0: the checker's default
  bool z3_state_checks = true; // false: placement checks only (no guard/tiling after each op)
  // Check the engine's invariants after every check_every-th call and after
  // the last statement; 1: after every statement. 0 is taken as 1.
  unsigned check_every = 1;
  // Hash the final state into ReplayResult::state_hash; false leaves it 0
  // (the fuzz targets do not use it, and hashing costs what the run touched).
  bool hash_state = true;
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
  // z3: queries run, of which proven (UNSAT); checks Z3 could not decide
  // (counted apart, never as proven, and not a failure).
  unsigned z3_queries = 0;
  unsigned z3_proven = 0;
  unsigned z3_unknown = 0;

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
