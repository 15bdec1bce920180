// The trace text format (TRACE.md), as plain data: what the parser produces,
// what the printer consumes, what the executor runs. Nothing here knows the
// op vocabulary or the engine; names are resolved when a trace is executed.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vmcheck {

enum class ExprKind : std::uint8_t {
  Int,   // value
  Name,  // text: a bound name, a constant (GFP_KERNEL, NULL), or a mode word (read)
  Bytes, // text: the data of a string or bytes literal, folded (see below)
  List,  // kids: the elements of [a, b, ...]
  Neg,   // kids[0]; -NAME of an errno name is an errno value (-EINVAL)
  Add,   // kids[0] + kids[1]
  Sub,   // kids[0] - kids[1]
  Mul,   // kids[0] * kids[1]
  Or,    // kids[0] | kids[1]
  Field, // kids[0].text
  Index, // kids[0][kids[1]]
};

// One expression node. Invariant of parsed trees: a Bytes node is never an
// operand of Add with another Bytes node, nor the left operand of Mul with an
// Int node (the parser folds literal concatenation and repetition into one
// Bytes node, because the printer chooses how to spell bytes data), and no
// tree is deeper than kMaxExprDepth.
struct Expr {
  ExprKind kind = ExprKind::Int;
  std::uint64_t value = 0;
  std::string text;
  std::vector<Expr> kids;
  int column = 0; // 1-based source column, 0 when built by code

  // Structural equality ignoring source positions.
  bool operator==(const Expr &other) const;
};

inline constexpr int kMaxExprDepth = 64;
// Largest bytes value a literal may fold to (and the executor may build).
inline constexpr std::size_t kMaxBytesValue = std::size_t{16} << 20;

// One trace line with an op or a checked expression:
//   [bind =] (op(args...) | value) [-> expect]
struct Stmt {
  std::string bind;           // empty: the result is not bound
  bool is_call = false;       // true: op(args); false: value
  std::string op;             // when is_call
  std::vector<Expr> args;     // when is_call
  std::optional<Expr> value;  // when !is_call
  std::optional<Expr> expect; // the `-> value` part
  int line = 0;
  int column = 0; // of the op name or the value

  bool operator==(const Stmt &other) const; // ignoring line numbers
};

struct ConfigPair {
  std::string key;
  std::string value;
  int column = 0;

  bool operator==(const ConfigPair &other) const {
    return key == other.key && value == other.value;
  }
};

// `config key=value ...`, pairs in source order.
struct ConfigLine {
  std::vector<ConfigPair> pairs;
  int line = 0;

  bool operator==(const ConfigLine &other) const { return pairs == other.pairs; }
};

// A whole trace. The `# vmcheck trace v1` header is implied: the parser
// requires it and the printer always writes it.
struct Trace {
  std::optional<ConfigLine> config;
  std::vector<Stmt> stmts;

  bool operator==(const Trace &other) const = default;
};

struct ParseError {
  int line = 0;
  int column = 0;
  std::string message;

  // "FILE:LINE:COLUMN: message"
  std::string to_string(std::string_view file) const;
};

struct ParseResult {
  Trace trace; // meaningful when ok()
  std::optional<ParseError> error;

  bool ok() const { return !error.has_value(); }
};

// Parses a trace. Never throws; any input yields a Trace or the first error.
ParseResult parse_trace(std::string_view text);

// Canonical text of a whole trace, header first, one statement per line.
std::string print_trace(const Trace &trace);
// One statement as it appears on its line (no newline), for reports.
std::string print_stmt(const Stmt &stmt);
// One expression in canonical form.
std::string print_expr(const Expr &expr);
// A bytes value spelled as the trace language would: strings, x"..", runs.
std::string print_bytes(std::string_view data);
// An integer as the printer writes it: hex from 0x1000 up, decimal below.
std::string print_int(std::uint64_t value);

} // namespace vmcheck
