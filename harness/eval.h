// Expression evaluation: turns an argument or expected-value expression into
// a Value, resolving names against the run's bindings, the named constants
// and the op table's bare words.
#pragma once

#include "harness/ops.h"
#include "harness/string_hash.h"
#include "harness/trace.h"
#include "harness/value.h"

#include <map>
#include <optional>
#include <string>

namespace vmcheck {

using Bindings = StringMap<Value>;

struct EvalError {
  int column = 0;
  std::string message;
};

struct EvalResult {
  Value value; // meaningful when !error
  std::optional<EvalError> error;
};

// Evaluates `expr`. Integer arithmetic wraps modulo 2^64 (addresses); bytes
// concatenate with + and repeat with *; -ENAME is an errno value.
EvalResult evaluate(const Expr &expr, const Bindings &bindings, const OpTable &table);
// evaluate() into `out`, a default-constructed Value (the executor's
// per-argument form: no result to move out of); the error, if any, with
// `out` then unspecified.
std::optional<EvalError> evaluate_into(const Expr &expr, const Bindings &bindings,
                                       const OpTable &table, Value &out);

// Why `name` may not be bound by a trace (it is a constant, NULL, an errno
// name, a keyword), or empty when it may.
std::string reserved_name_reason(std::string_view name, const OpTable &table);

} // namespace vmcheck
