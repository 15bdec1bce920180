#include "harness/minimize.h"

#include "vmcheck/abi.h"

namespace vmcheck {

namespace {

Trace with(const Trace &base, const std::vector<Stmt> &stmts) {
  Trace t = base;
  t.stmts = stmts;
  return t;
}

// ddmin over statements: try dropping chunks, halving the chunk size when
// nothing can go, down to single statements.
std::vector<Stmt> shrink_statements(const Trace &base, std::vector<Stmt> stmts,
                                    const std::function<bool(const Trace &)> &fails,
                                    std::size_t &runs) {
  std::size_t chunk = std::max<std::size_t>(1, stmts.size() / 2);
  while (!stmts.empty()) {
    bool removed = false;
    for (std::size_t start = 0; start < stmts.size();) {
      std::vector<Stmt> candidate(stmts.begin(),
                                  stmts.begin() + static_cast<std::ptrdiff_t>(start));
      candidate.insert(candidate.end(),
                       stmts.begin() +
                           static_cast<std::ptrdiff_t>(std::min(stmts.size(), start + chunk)),
                       stmts.end());
      ++runs;
      if (fails(with(base, candidate))) {
        stmts = std::move(candidate);
        removed = true;
      } else {
        start += chunk;
      }
    }
    if (!removed) {
      if (chunk == 1)
        break;
      chunk /= 2;
    }
  }
  return stmts;
}

// Integer literals toward small values: 0, then halving.
bool shrink_ints(Expr &e, const std::function<bool()> &fails, std::size_t &runs) {
  bool changed = false;
  if (e.kind == ExprKind::Int && e.value != 0) {
    for (u64 candidate : {u64{0}, u64{1}, PAGE_SIZE, e.value / 2}) {
      if (candidate >= e.value)
        continue;
      const u64 old = e.value;
      e.value = candidate;
      ++runs;
      if (fails()) {
        changed = true;
        break;
      }
      e.value = old;
    }
  }
  for (Expr &k : e.kids)
    changed = shrink_ints(k, fails, runs) || changed;
  return changed;
}

} // namespace

Trace minimize_trace(const Trace &trace, const std::function<bool(const Trace &)> &still_fails,
                     MinimizeStats *stats) {
  std::size_t runs = 0;
  Trace best = trace;
  best.stmts = shrink_statements(trace, trace.stmts, still_fails, runs);
  // Argument shrinking, statement by statement, until nothing changes.
  for (bool again = true; again;) {
    again = false;
    for (Stmt &s : best.stmts)
      for (Expr &a : s.args)
        again = shrink_ints(
                    a, [&] { return still_fails(best); }, runs) ||
                again;
  }
  if (stats) {
    stats->runs = runs;
    stats->ops_before = trace.stmts.size();
    stats->ops_after = best.stmts.size();
  }
  return best;
}

Trace minimize_finding(FuzzTarget t, const Trace &trace, MinimizeStats *stats) {
  const std::string signature = failure_signature(run_fuzz_trace(t, trace));
  return minimize_trace(
      trace,
      [&](const Trace &candidate) {
        return failure_signature(run_fuzz_trace(t, candidate)) == signature;
      },
      stats);
}

} // namespace vmcheck
