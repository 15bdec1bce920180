#include "harness/executor.h"

#include "harness/engine_target.h"
#include "harness/eval.h"
#include "harness/spec_target.h"
#include "harness/z3_checks.h"

#include <cstdio>
#include <exception>
#include <memory>

namespace vmcheck {

namespace {

std::string hex64(std::uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%016llx", static_cast<unsigned long long>(v));
  return buf;
}

std::vector<std::string> split_lines(const std::string &text) {
  std::vector<std::string> lines;
  std::size_t start = 0;
  for (std::size_t nl; (nl = text.find('\n', start)) != std::string::npos; start = nl + 1)
    lines.push_back(text.substr(start, nl - start));
  lines.push_back(text.substr(start));
  return lines;
}

class Replayer {
public:
  Replayer(const Trace &trace, const ReplayOptions &options)
      : trace_(trace), options_(options), ops_(options.ops ? *options.ops : default_op_table()) {}

  ReplayResult run() {
    if (!build_target())
      return std::move(result_);
    // At most one binding per statement: no rehash as names are bound.
    bindings_.reserve(trace_.stmts.size());
    for (const Stmt &stmt : trace_.stmts) {
      if (!step(stmt, &stmt == &trace_.stmts.back()))
        break;
      ++result_.ops;
    }
    if (options_.hash_state)
      result_.state_hash = target_->state_hash();
    if (z3_) {
      result_.z3_queries = z3_->counts().queries;
      result_.z3_proven = z3_->counts().proven;
      result_.z3_unknown = z3_->counts().unknown;
    }
    return std::move(result_);
  }

private:
  bool malformed(int line, int column, std::string message) {
    result_.status = ReplayStatus::Malformed;
    result_.line = line;
    result_.column = column;
    result_.message = std::move(message);
    return false;
  }

  // A divergence at `stmt`: the report carries the op text, the diagnostics
  // the op recorded and the state hash at the point of failure.
  bool diverged(const Stmt &stmt, std::string message, std::vector<std::string> details,
                const std::vector<Diagnostic> &diags) {
    result_.status = ReplayStatus::Divergence;
    result_.line = stmt.line;
    result_.message = std::move(message);
    result_.details.push_back("op: " + print_stmt(stmt));
    for (std::string &d : details)
      result_.details.push_back(std::move(d));
    if (!diags.empty()) {
      result_.details.push_back("diagnostics:");
      for (const Diagnostic &d : diags)
        result_.details.push_back("  " + d.to_string());
    }
    result_.details.push_back("state hash: " + hex64(target_->state_hash()));
    return false;
  }

  bool build_target() {
    MachineConfig cfg;
    if (trace_.config) {
      for (const ConfigPair &p : trace_.config->pairs) {
        // on_null=skip is the executor's own setting, not the machine's.
        if (p.key == "on_null") {
          if (p.value != "skip" && p.value != "call")
            return malformed(trace_.config->line, p.column,
                             "config on_null=" + p.value + ": expected skip or call");
          skip_null_handles_ = p.value == "skip";
          continue;
        }
        const std::string err = cfg.set(p.key, p.value);
        if (!err.empty())
          return malformed(trace_.config->line, p.column, err);
      }
    }
    if (options_.backend)
      cfg.backend = *options_.backend;
    const int line = trace_.config ? trace_.config->line : 1;
    if (const std::string err = cfg.validate(); !err.empty())
      return malformed(line, 1, err);
    try {
      target_ = std::make_unique<EngineTarget>(cfg);
      target_->set_lenient_handles(skip_null_handles_);
      if (options_.differential)
        spec_ = std::make_unique<SpecTarget>(cfg);
      if (options_.z3)
        z3_ = std::make_unique<Z3Observer>(target_->kernel(), options_.z3_rlimit,
                                           options_.z3_state_checks);
    } catch (const std::exception &e) {
      return malformed(line, 1, std::string("cannot build the machine: ") + e.what());
    }
    return true;
  }

  // `out`: a default-constructed Value.
  bool eval(const Stmt &stmt, const Expr &e, Value &out) {
    if (std::optional<EvalError> err = evaluate_into(e, bindings_, ops_, out))
      return malformed(stmt.line, err->column, err->message);
    return true;
  }

  // Whether the invariants are checked after this statement (see
  // ReplayOptions::check_every).
  bool check_due(const Stmt &stmt, bool last) {
    if (options_.check_every <= 1 || last)
      return true;
    if (stmt.is_call && ++calls_since_check_ >= options_.check_every) {
      calls_since_check_ = 0;
      return true;
    }
    return false;
  }

  bool step(const Stmt &stmt, bool last) {
    if (!stmt.bind.empty()) {
      if (const std::string why = reserved_name_reason(stmt.bind, ops_); !why.empty())
        return malformed(stmt.line, 1, "cannot bind '" + stmt.bind + "': " + why);
    }
    OpOutcome outcome;
    std::vector<Value> args;
    if (stmt.is_call) {
      const OpDef *op = ops_.find(stmt.op);
      if (!op)
        return malformed(stmt.line, stmt.column, "unknown op '" + stmt.op + "'");
      args.reserve(stmt.args.size());
      for (const Expr &a : stmt.args) {
        if (skip_null_handles_ && mentions_null_handle(a)) {
          if (!stmt.bind.empty())
            bindings_.insert_or_assign(stmt.bind, Value::null());
          return true;
        }
        Value v;
        if (!eval(stmt, a, v))
          return false;
        // A handle that a failed allocation left NULL: with on_null=skip
        // the call is not made (fuzz-decoded traces cannot know in advance
        // which allocations fail).
        const bool null_handle =
            v.kind == ValueKind::Null && a.kind == ExprKind::Name && a.text != "NULL";
        bool null_in_list = false;
        for (const Value &item : v.items)
          null_in_list = null_in_list || item.kind == ValueKind::Null;
        if (skip_null_handles_ && (null_handle || (a.kind == ExprKind::List && null_in_list))) {
          if (!stmt.bind.empty())
            bindings_.insert_or_assign(stmt.bind, Value::null());
          return true;
        }
        args.push_back(std::move(v));
      }
      if (std::optional<Z3Violation> bad = wait_for_own_shootdown(stmt.op))
        return diverged(stmt, "z3 (the purge this CPU waited for): " + bad->check + " violated",
                        split_lines(bad->counterexample), {});
      target_->run_into(*op, args, outcome);
      if (outcome.bug)
        return diverged(stmt, *outcome.bug, {}, outcome.diags);
      if (outcome.result.arg_error)
        return malformed(stmt.line, stmt.column, outcome.result.arg_error->message);
      for (const Diagnostic &d : outcome.diags)
        if (d.kind == DiagKind::Finding)
          return diverged(stmt, "finding: " + d.to_string(), {}, outcome.diags);
    } else if (stmt.value) {
      if (!eval(stmt, *stmt.value, outcome.result.value))
        return false;
    }
    const Value &actual = outcome.result.value;
    if (stmt.expect) {
      Value expected;
      if (!eval(stmt, *stmt.expect, expected))
        return false;
      if (!value_matches(expected, actual)) {
        std::vector<std::string> details = {"expected: " + value_to_string(expected),
                                            "actual:   " + value_to_string(actual)};
        if (!outcome.result.divergence.empty())
          details.push_back("because:  " + outcome.result.divergence);
        return diverged(
            stmt, "expected " + value_to_string(expected) + ", got " + value_to_string(actual),
            std::move(details), outcome.diags);
      }
    } else if (!outcome.result.divergence.empty()) {
      return diverged(stmt, outcome.result.divergence, {"actual:   " + value_to_string(actual)},
                      outcome.diags);
    }
    if (check_due(stmt, last))
      if (const std::string violation = target_->check(); !violation.empty())
        return diverged(stmt, "invariant violated: " + violation, {}, outcome.diags);
    if (spec_ && stmt.is_call && !compare_with_spec(stmt, args, outcome))
      return false;
    if (z3_ && stmt.is_call)
      if (std::optional<Z3Violation> bad = z3_->after_op(stmt.op, args, actual))
        return diverged(stmt, "z3: " + bad->check + " violated", split_lines(bad->counterexample),
                        outcome.diags);
    if (options_.observe && stmt.is_call)
      options_.observe(static_cast<std::size_t>(&stmt - trace_.stmts.data()), actual);
    if (!stmt.bind.empty()) // the last use of the outcome
      bindings_.insert_or_assign(stmt.bind, std::move(outcome.result.value));
    return true;
  }

  // shootdown=async: a CPU that started a purge waits for its TLB flush to
  // reach every CPU before it does anything else, on the engine and on the
  // spec alike; the Z3 observer sees the completed purge as a step of its own.
  std::optional<Z3Violation> wait_for_own_shootdown(const std::string &op) {
    Vmalloc &v = target_->kernel().vmalloc();
    if (!v.shootdown_in_flight() || !op_waits_for_own_shootdown(op) ||
        target_->kernel().machine().current_cpu() != v.shootdown_initiator())
      return std::nullopt;
    v.complete_shootdown();
    if (spec_)
      spec_->spec().complete_shootdown();
    if (z3_)
      return z3_->after_op("tlb_deliver", {}, Value::none());
    return std::nullopt;
  }

  // Whether `e` uses a bound name whose value is NULL or an errno (a failed
  // allocation, a failed mmap: arithmetic on it, a field of it, or the name
  // itself): with on_null=skip the call is skipped.
  bool mentions_null_handle(const Expr &e) const {
    if (e.kind == ExprKind::Name && e.text != "NULL") {
      auto it = bindings_.find(e.text);
      return it != bindings_.end() &&
             (it->second.kind == ValueKind::Null || it->second.kind == ValueKind::Errno);
    }
    for (const Expr &k : e.kids)
      if (mentions_null_handle(k))
        return true;
    return false;
  }

  // Runs the op on the spec and compares result, diagnostics and state. A
  // user-space op the spec follows hands it its effect instead. An op the
  // spec neither models nor can follow ends the comparison for the rest of
  // the run (the states could no longer be compared), which the result notes.
  bool compare_with_spec(const Stmt &stmt, const std::vector<Value> &args,
                         const OpOutcome &outcome) {
    const bool follows = SpecTarget::follows(stmt.op, args);
    if (!follows && !SpecTarget::models(stmt.op)) {
      result_.spec_stopped_at = stmt.line;
      spec_.reset();
      return true;
    }
    std::string why = follows ? spec_->follow(stmt.op, args, outcome, target_->kernel())
                              : spec_->run_and_compare(stmt.op, args, outcome);
    if (why.empty() && spec_->desynced()) {
      result_.spec_stopped_at = stmt.line;
      spec_.reset();
      return true;
    }
    if (why.empty())
      why = spec_->compare_state(target_->kernel());
    if (why.empty())
      return true;
    return diverged(stmt, "engine and spec disagree: " + why,
                    {spec_->state_diff(target_->kernel())}, outcome.diags);
  }

  const Trace &trace_;
  const ReplayOptions &options_;
  const OpTable &ops_;
  std::unique_ptr<EngineTarget> target_;
  std::unique_ptr<SpecTarget> spec_;
  std::unique_ptr<Z3Observer> z3_; // reads target_'s kernel: declared after it
  bool skip_null_handles_ = false;
  unsigned calls_since_check_ = 0;
  Bindings bindings_;
  ReplayResult result_;
};

} // namespace

int ReplayResult::exit_code() const {
  switch (status) {
  case ReplayStatus::Ok:
    return 0;
  case ReplayStatus::Divergence:
    return 1;
  case ReplayStatus::Malformed:
    return 2;
  }
  return 2;
}

std::string ReplayResult::report(std::string_view file) const {
  std::string s(file);
  if (status == ReplayStatus::Ok)
    return s + ": ok (" + std::to_string(ops) + " ops" +
           (spec_stopped_at != 0
                ? "; engine alone from line " + std::to_string(spec_stopped_at) + ")"
                : ")");
  s += ':' + std::to_string(line);
  if (status == ReplayStatus::Malformed)
    s += ':' + std::to_string(column) + ": " + message;
  else
    s += ": divergence: " + message;
  for (const std::string &d : details)
    s += "\n  " + d;
  return s;
}

ReplayResult replay(const Trace &trace, const ReplayOptions &options) {
  ReplayResult r = Replayer(trace, options).run();
  if (r.status != ReplayStatus::Divergence || options.check_every <= 1)
    return r;
  // A sparse run failed: the run that checks after every op names the op
  // that broke the invariant (the replay is deterministic, so it fails too,
  // at that op or earlier). observe has seen the first run already.
  ReplayOptions every_op = options;
  every_op.check_every = 1;
  every_op.observe = nullptr;
  ReplayResult exact = Replayer(trace, every_op).run();
  return exact.status == ReplayStatus::Divergence ? exact : r;
}

ReplayResult replay_text(std::string_view text, const ReplayOptions &options) {
  ParseResult parsed = parse_trace(text);
  if (!parsed.ok()) {
    ReplayResult r;
    r.status = ReplayStatus::Malformed;
    r.line = parsed.error->line;
    r.column = parsed.error->column;
    r.message = parsed.error->message;
    return r;
  }
  return replay(parsed.trace, options);
}

} // namespace vmcheck
