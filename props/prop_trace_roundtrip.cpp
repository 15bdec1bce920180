// The trace printer and parser are inverses: any canonical AST prints to text
// that parses back to the same AST, and no input at all crashes the parser.
#include "harness/trace.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <cstdlib>
#include <string>

namespace vmcheck {
namespace {

rc::Gen<std::string> gen_ident() {
  return rc::gen::oneOf(
      rc::gen::element<std::string>("a", "p", "area", "v", "x", "config", "GFP_KERNEL",
                                    "__GFP_ZERO", "NULL", "EINVAL", "read", "alloc_page"),
      rc::gen::map(rc::gen::pair(rc::gen::elementOf(std::string("abcxyz_ABC")),
                                 rc::gen::container<std::string>(
                                     rc::gen::elementOf(std::string("abz_09XY")))),
                   [](const std::pair<char, std::string> &p) {
                     return std::string(1, p.first) + p.second.substr(0, 8);
                   }));
}

Expr leaf(ExprKind kind) {
  Expr e;
  e.kind = kind;
  return e;
}

Expr gen_expr_now(int depth) {
  const int choice = *rc::gen::inRange(0, depth > 0 ? 11 : 4);
  Expr e;
  switch (choice) {
  case 0:
    e = leaf(ExprKind::Int);
    e.value = *rc::gen::oneOf(rc::gen::inRange<std::uint64_t>(0, 0x2000),
                              rc::gen::arbitrary<std::uint64_t>());
    return e;
  case 1:
    e = leaf(ExprKind::Name);
    e.text = *gen_ident();
    return e;
  case 2: {
    e = leaf(ExprKind::Bytes);
    e.text = *rc::gen::arbitrary<std::string>();
    if (*rc::gen::inRange(0, 4) == 0)
      e.text += std::string(*rc::gen::inRange<std::size_t>(1, 5000), *rc::gen::arbitrary<char>());
    return e;
  }
  case 3: {
    e = leaf(ExprKind::List);
    const int n = depth > 0 ? *rc::gen::inRange(0, 4) : 0;
    for (int i = 0; i < n; ++i)
      e.kids.push_back(gen_expr_now(depth - 1));
    return e;
  }
  case 4:
    e = leaf(ExprKind::Neg);
    e.kids.push_back(gen_expr_now(depth - 1));
    return e;
  case 5:
  case 6:
  case 7:
  case 8: {
    constexpr ExprKind kinds[] = {ExprKind::Add, ExprKind::Sub, ExprKind::Mul, ExprKind::Or};
    e = leaf(kinds[choice - 5]);
    e.kids.push_back(gen_expr_now(depth - 1));
    e.kids.push_back(gen_expr_now(depth - 1));
    // Literal bytes concatenation and repetition are folded by the parser:
    // keep generated trees in that canonical form.
    const bool lhs_bytes = e.kids[0].kind == ExprKind::Bytes;
    if (e.kind == ExprKind::Add && lhs_bytes && e.kids[1].kind == ExprKind::Bytes)
      e.kind = ExprKind::Sub;
    if (e.kind == ExprKind::Mul && lhs_bytes && e.kids[1].kind == ExprKind::Int)
      std::swap(e.kids[0], e.kids[1]);
    return e;
  }
  case 9:
    e = leaf(ExprKind::Field);
    e.kids.push_back(gen_expr_now(depth - 1));
    e.text = *gen_ident();
    return e;
  default:
    e = leaf(ExprKind::Index);
    e.kids.push_back(gen_expr_now(depth - 1));
    e.kids.push_back(gen_expr_now(depth - 1));
    return e;
  }
}

rc::Gen<Expr> gen_expr() {
  return rc::gen::exec([] { return gen_expr_now(*rc::gen::inRange(0, 5)); });
}

rc::Gen<Stmt> gen_stmt() {
  return rc::gen::exec([] {
    Stmt s;
    if (*rc::gen::arbitrary<bool>())
      s.bind = *gen_ident();
    s.is_call = *rc::gen::arbitrary<bool>();
    if (s.is_call) {
      s.op = *gen_ident();
      s.args = *rc::gen::resize(4, rc::gen::container<std::vector<Expr>>(gen_expr()));
    } else {
      s.value = *gen_expr();
    }
    if (*rc::gen::arbitrary<bool>())
      s.expect = *gen_expr();
    return s;
  });
}

rc::Gen<Trace> gen_trace() {
  return rc::gen::exec([] {
    Trace t;
    if (*rc::gen::arbitrary<bool>()) {
      t.config.emplace();
      const int n = *rc::gen::inRange(0, 4);
      for (int i = 0; i < n; ++i) {
        const std::string value = *rc::gen::nonEmpty(rc::gen::container<std::string>(
            rc::gen::elementOf(std::string("0123456789abcdefKMG=_."))));
        t.config->pairs.push_back({*gen_ident(), value, 0});
      }
    }
    t.stmts = *rc::gen::resize(8, rc::gen::container<std::vector<Stmt>>(gen_stmt()));
    return t;
  });
}

RC_GTEST_PROP(TraceRoundTrip, printed_trace_parses_back_to_the_same_ast, ()) {
  const Trace t = *gen_trace();
  const std::string text = print_trace(t);
  const ParseResult r = parse_trace(text);
  RC_ASSERT(r.ok());
  RC_ASSERT(r.trace == t);
  RC_ASSERT(print_trace(r.trace) == text);
}

RC_GTEST_PROP(TraceRoundTrip, arbitrary_text_never_crashes_the_parser, (const std::string &body)) {
  for (const std::string &text : {body, "# vmcheck trace v1\n" + body}) {
    const ParseResult r = parse_trace(text);
    if (r.ok()) {
      const std::string once = print_trace(r.trace);
      const ParseResult again = parse_trace(once);
      RC_ASSERT(again.ok());
      RC_ASSERT(again.trace == r.trace);
    } else {
      RC_ASSERT(r.error->line >= 1);
      RC_ASSERT(r.error->column >= 1);
      RC_ASSERT(!r.error->message.empty());
    }
  }
}

RC_GTEST_PROP(TraceRoundTrip, lines_of_trace_tokens_never_crash_the_parser, ()) {
  const auto pieces = *rc::gen::container<std::vector<std::string>>(rc::gen::element<std::string>(
      "a", "=", "f", "(", ")", "[", "]", ",", "->", "-", "+", "*", "|", ".", "0x10", "4K", "\"s\"",
      "x\"00\"", "\n", " ", "#", "config", "cpus=2", "EINVAL", "NULL", "99999999999999999999"));
  std::string body;
  for (const std::string &p : pieces)
    body += p;
  const ParseResult r = parse_trace("# vmcheck trace v1\n" + body);
  if (r.ok()) {
    const ParseResult again = parse_trace(print_trace(r.trace));
    RC_ASSERT(again.ok());
    RC_ASSERT(again.trace == r.trace);
  }
}

} // namespace
} // namespace vmcheck
