#include "harness/trace.h"

#include <cstdio>

namespace vmcheck {

namespace {

// Binding strength of what print_expr writes; an operand that binds less
// tightly than its position needs is parenthesised.
enum Prec : int { kOr = 0, kAdd = 1, kMul = 2, kUnary = 3, kPrimary = 4 };

// Runs of one byte at least this long print as `x"00"*N`.
constexpr std::size_t kMinRun = 8;

bool printable(unsigned char c) {
  return (c >= 0x20 && c < 0x7f) || c == '\n' || c == '\t';
}

std::string literal(std::string_view data) {
  bool text = true;
  for (char c : data)
    text = text && printable(static_cast<unsigned char>(c));
  std::string out;
  if (!text) {
    static constexpr char kHex[] = "0123456789abcdef";
    out = "x\"";
    for (char c : data) {
      const auto u = static_cast<unsigned char>(c);
      out += kHex[u >> 4];
      out += kHex[u & 15];
    }
    return out + '"';
  }
  out = '"';
  for (char c : data) {
    switch (c) {
    case '"':
      out += "\\\"";
      break;
    case '\\':
      out += "\\\\";
      break;
    case '\n':
      out += "\\n";
      break;
    case '\t':
      out += "\\t";
      break;
    default:
      out += c;
    }
  }
  return out + '"';
}

struct BytesSpelling {
  std::string text;
  int prec;
};

BytesSpelling spell_bytes(std::string_view data) {
  if (data.empty())
    return {"\"\"", kPrimary};
  std::vector<std::string> pieces;
  bool only_run = false;
  std::size_t lit_start = 0;
  std::size_t i = 0;
  while (i < data.size()) {
    std::size_t j = i;
    while (j < data.size() && data[j] == data[i])
      ++j;
    if (j - i >= kMinRun) {
      if (lit_start < i)
        pieces.push_back(literal(data.substr(lit_start, i - lit_start)));
      pieces.push_back(literal(data.substr(i, 1)) + '*' + std::to_string(j - i));
      only_run = pieces.size() == 1;
      lit_start = j;
    }
    i = j;
  }
  if (lit_start < data.size()) {
    pieces.push_back(literal(data.substr(lit_start)));
    only_run = false;
  }
  std::string text;
  for (std::size_t k = 0; k < pieces.size(); ++k)
    text += (k ? "+" : "") + pieces[k];
  if (pieces.size() > 1)
    return {text, kAdd};
  return {text, only_run ? kMul : kPrimary};
}

void print(const Expr &e, int min_prec, std::string &out);

void print_binary(const Expr &e, const char *op, int prec, int min_prec, std::string &out) {
  const bool parens = prec < min_prec;
  if (parens)
    out += '(';
  print(e.kids[0], prec, out);
  out += op;
  print(e.kids[1], prec + 1, out);
  if (parens)
    out += ')';
}

void print(const Expr &e, int min_prec, std::string &out) {
  switch (e.kind) {
  case ExprKind::Int:
    out += print_int(e.value);
    return;
  case ExprKind::Name:
    out += e.text;
    return;
  case ExprKind::Bytes: {
    const BytesSpelling s = spell_bytes(e.text);
    if (s.prec < min_prec)
      out += '(' + s.text + ')';
    else
      out += s.text;
    return;
  }
  case ExprKind::List:
    out += '[';
    for (std::size_t i = 0; i < e.kids.size(); ++i) {
      if (i)
        out += ", ";
      print(e.kids[i], kOr, out);
    }
    out += ']';
    return;
  case ExprKind::Neg: {
    const bool parens = kUnary < min_prec;
    out += parens ? "(-" : "-";
    print(e.kids[0], kUnary, out);
    if (parens)
      out += ')';
    return;
  }
  case ExprKind::Add:
    return print_binary(e, "+", kAdd, min_prec, out);
  case ExprKind::Sub:
    return print_binary(e, "-", kAdd, min_prec, out);
  case ExprKind::Mul:
    return print_binary(e, "*", kMul, min_prec, out);
  case ExprKind::Or:
    return print_binary(e, "|", kOr, min_prec, out);
  case ExprKind::Field:
    print(e.kids[0], kPrimary, out);
    out += '.';
    out += e.text;
    return;
  case ExprKind::Index:
    print(e.kids[0], kPrimary, out);
    out += '[';
    print(e.kids[1], kOr, out);
    out += ']';
    return;
  }
}

} // namespace

std::string print_int(std::uint64_t value) {
  if (value < 0x1000)
    return std::to_string(value);
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(value));
  return buf;
}

std::string print_bytes(std::string_view data) {
  return spell_bytes(data).text;
}

std::string print_expr(const Expr &expr) {
  std::string out;
  print(expr, kOr, out);
  return out;
}

std::string print_stmt(const Stmt &stmt) {
  std::string out;
  if (!stmt.bind.empty())
    out += stmt.bind + " = ";
  if (stmt.is_call) {
    out += stmt.op + '(';
    for (std::size_t i = 0; i < stmt.args.size(); ++i) {
      if (i)
        out += ", ";
      out += print_expr(stmt.args[i]);
    }
    out += ')';
  } else if (stmt.value) {
    // A lone `config` would read back as an empty config line.
    const bool is_config_word = stmt.bind.empty() && !stmt.expect &&
                                stmt.value->kind == ExprKind::Name && stmt.value->text == "config";
    out += is_config_word ? "(config)" : print_expr(*stmt.value);
  }
  if (stmt.expect)
    out += " -> " + print_expr(*stmt.expect);
  return out;
}

std::string print_trace(const Trace &trace) {
  std::string out = "# vmcheck trace v1\n";
  if (trace.config) {
    out += "config";
    for (const ConfigPair &p : trace.config->pairs)
      out += ' ' + p.key + '=' + p.value;
    out += '\n';
  }
  for (const Stmt &s : trace.stmts)
    out += print_stmt(s) + '\n';
  return out;
}

} // namespace vmcheck
