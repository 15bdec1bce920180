// The minimizer: delta debugging over a failing trace's statements, then
// argument shrinking, keeping the same failure signature throughout.
#pragma once

#include "harness/fuzz_target.h"
#include "harness/trace.h"

#include <cstddef>
#include <functional>

namespace vmcheck {

struct MinimizeStats {
  std::size_t runs = 0;
  std::size_t ops_before = 0, ops_after = 0;
};

// Smallest trace (by statements, then argument values) that `still_fails`.
// Precondition: still_fails(trace) is true.
Trace minimize_trace(const Trace &trace, const std::function<bool(const Trace &)> &still_fails,
                     MinimizeStats *stats = nullptr);

// Minimizes a finding of target `t`, keeping failure_signature() equal.
Trace minimize_finding(FuzzTarget t, const Trace &trace, MinimizeStats *stats = nullptr);

} // namespace vmcheck
