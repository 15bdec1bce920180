// The trace text format: every syntax element, exact error positions, the
// printer's canonical form and hostile inputs.
#include "harness/trace.h"

#include <gtest/gtest.h>

#include <string>

namespace vmcheck {
namespace {

const std::string kHeader = "# vmcheck trace v1\n";

Trace parse_ok(const std::string &body) {
  ParseResult r = parse_trace(kHeader + body);
  EXPECT_TRUE(r.ok()) << (r.error ? r.error->to_string("t") : "");
  return r.trace;
}

std::string parse_error(const std::string &body) {
  ParseResult r = parse_trace(kHeader + body);
  EXPECT_FALSE(r.ok()) << body;
  return r.error ? r.error->to_string("trace.trace") : "";
}

Expr parse_arg(const std::string &text) {
  Trace t = parse_ok("f(" + text + ")\n");
  if (t.stmts.size() != 1 || t.stmts[0].args.size() != 1)
    return {};
  return t.stmts[0].args[0];
}

Expr int_expr(std::uint64_t v) {
  Expr e;
  e.kind = ExprKind::Int;
  e.value = v;
  return e;
}

Expr name_expr(std::string n) {
  Expr e;
  e.kind = ExprKind::Name;
  e.text = std::move(n);
  return e;
}

Expr bytes_expr(std::string data) {
  Expr e;
  e.kind = ExprKind::Bytes;
  e.text = std::move(data);
  return e;
}

Expr node(ExprKind kind, std::vector<Expr> kids, std::string text = {}) {
  Expr e;
  e.kind = kind;
  e.kids = std::move(kids);
  e.text = std::move(text);
  return e;
}

TEST(TraceParser, header_alone_is_an_empty_trace) {
  Trace t = parse_ok("");
  EXPECT_FALSE(t.config);
  EXPECT_TRUE(t.stmts.empty());
}

TEST(TraceParser, missing_header_is_an_error_on_line_1) {
  ParseResult r = parse_trace("a = vmalloc(1)\n");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error->line, 1);
  EXPECT_EQ(r.error->column, 1);
  EXPECT_NE(r.error->message.find("# vmcheck trace v1"), std::string::npos);
  EXPECT_FALSE(parse_trace("").ok());
  EXPECT_FALSE(parse_trace("# vmcheck trace v2\n").ok());
}

TEST(TraceParser, header_tolerates_crlf_and_trailing_blanks) {
  EXPECT_TRUE(parse_trace("# vmcheck trace v1 \r\nf()\r\n").ok());
}

TEST(TraceParser, integers_in_decimal_hex_and_with_size_suffixes) {
  EXPECT_EQ(parse_arg("42"), int_expr(42));
  EXPECT_EQ(parse_arg("0x1F"), int_expr(31));
  EXPECT_EQ(parse_arg("4K"), int_expr(4096));
  EXPECT_EQ(parse_arg("2M"), int_expr(2u << 20));
  EXPECT_EQ(parse_arg("1G"), int_expr(1u << 30));
  EXPECT_EQ(parse_arg("0xffffffffffffffff"), int_expr(UINT64_MAX));
  EXPECT_EQ(parse_arg("18446744073709551615"), int_expr(UINT64_MAX));
}

TEST(TraceParser, arithmetic_has_normal_precedence_and_parentheses) {
  EXPECT_EQ(parse_arg("1+2*3"),
            node(ExprKind::Add, {int_expr(1), node(ExprKind::Mul, {int_expr(2), int_expr(3)})}));
  EXPECT_EQ(parse_arg("(1+2)*3"),
            node(ExprKind::Mul, {node(ExprKind::Add, {int_expr(1), int_expr(2)}), int_expr(3)}));
  EXPECT_EQ(parse_arg("8-2-1"),
            node(ExprKind::Sub, {node(ExprKind::Sub, {int_expr(8), int_expr(2)}), int_expr(1)}));
  EXPECT_EQ(parse_arg("-1"), node(ExprKind::Neg, {int_expr(1)}));
}

TEST(TraceParser, names_offsets_fields_and_indexing) {
  EXPECT_EQ(parse_arg("a+100"), node(ExprKind::Add, {name_expr("a"), int_expr(100)}));
  EXPECT_EQ(parse_arg("a-0x10"), node(ExprKind::Sub, {name_expr("a"), int_expr(16)}));
  EXPECT_EQ(parse_arg("area.size"), node(ExprKind::Field, {name_expr("area")}, "size"));
  EXPECT_EQ(parse_arg("v[1].addr"),
            node(ExprKind::Field, {node(ExprKind::Index, {name_expr("v"), int_expr(1)})}, "addr"));
}

TEST(TraceParser, flag_sets_bind_looser_than_arithmetic) {
  EXPECT_EQ(parse_arg("GFP_KERNEL|__GFP_ZERO"),
            node(ExprKind::Or, {name_expr("GFP_KERNEL"), name_expr("__GFP_ZERO")}));
  EXPECT_EQ(
      parse_arg("A|B|C"),
      node(ExprKind::Or, {node(ExprKind::Or, {name_expr("A"), name_expr("B")}), name_expr("C")}));
  EXPECT_EQ(parse_arg("A|1+2"),
            node(ExprKind::Or, {name_expr("A"), node(ExprKind::Add, {int_expr(1), int_expr(2)})}));
}

TEST(TraceParser, page_lists_and_nested_lists) {
  EXPECT_EQ(parse_arg("[p1, p2]"), node(ExprKind::List, {name_expr("p1"), name_expr("p2")}));
  EXPECT_EQ(parse_arg("[]"), node(ExprKind::List, {}));
  EXPECT_EQ(parse_arg("[[1]]"), node(ExprKind::List, {node(ExprKind::List, {int_expr(1)})}));
}

TEST(TraceParser, strings_with_escapes_and_bytes_literals) {
  EXPECT_EQ(parse_arg("\"hello\""), bytes_expr("hello"));
  EXPECT_EQ(parse_arg(R"("a\nb\t\\\"\x41\x00")"), bytes_expr(std::string("a\nb\t\\\"A\0", 8)));
  EXPECT_EQ(parse_arg("x\"00ff10\""), bytes_expr(std::string("\x00\xff\x10", 3)));
  EXPECT_EQ(parse_arg("\"# not a comment\""), bytes_expr("# not a comment"));
}

TEST(TraceParser, literal_bytes_concatenation_and_repetition_fold_to_one_value) {
  EXPECT_EQ(parse_arg(R"("AB" + x"00"*4096 + "CD")"),
            bytes_expr("AB" + std::string(4096, '\0') + "CD"));
  EXPECT_EQ(parse_arg(R"("ab"*3)"), bytes_expr("ababab"));
  EXPECT_EQ(parse_arg(R"(s+"x")"), node(ExprKind::Add, {name_expr("s"), bytes_expr("x")}));
}

TEST(TraceParser, null_numa_no_node_and_errno_are_names) {
  EXPECT_EQ(parse_arg("NULL"), name_expr("NULL"));
  EXPECT_EQ(parse_arg("NUMA_NO_NODE"), name_expr("NUMA_NO_NODE"));
  EXPECT_EQ(parse_arg("-EINVAL"), node(ExprKind::Neg, {name_expr("EINVAL")}));
}

TEST(TraceParser, statements_bind_call_and_expect) {
  Trace t = parse_ok("# comment\n\n  a = vmalloc(8192)   # trailing\nvread(a+100, 5) -> \"hi\"\n"
                     "area.size -> 12288\nirq_enter()\n");
  ASSERT_EQ(t.stmts.size(), 4u);
  EXPECT_EQ(t.stmts[0].bind, "a");
  EXPECT_TRUE(t.stmts[0].is_call);
  EXPECT_EQ(t.stmts[0].op, "vmalloc");
  EXPECT_EQ(t.stmts[0].line, 4);
  EXPECT_EQ(t.stmts[0].column, 7);
  EXPECT_EQ(t.stmts[1].args.size(), 2u);
  EXPECT_EQ(*t.stmts[1].expect, bytes_expr("hi"));
  EXPECT_FALSE(t.stmts[2].is_call);
  EXPECT_EQ(*t.stmts[2].value, node(ExprKind::Field, {name_expr("area")}, "size"));
  EXPECT_EQ(*t.stmts[2].expect, int_expr(12288));
  EXPECT_TRUE(t.stmts[3].args.empty());
}

TEST(TraceParser, config_line_keeps_pairs_in_order) {
  Trace t = parse_ok("config cpus=4 mem=512M backend=legacy # comment\nf()\n");
  ASSERT_TRUE(t.config);
  EXPECT_EQ(t.config->line, 2);
  ASSERT_EQ(t.config->pairs.size(), 3u);
  EXPECT_EQ(t.config->pairs[1].key, "mem");
  EXPECT_EQ(t.config->pairs[1].value, "512M");
  EXPECT_EQ(t.config->pairs[1].column, 15);
}

TEST(TraceParser, config_is_an_ordinary_name_when_bound_or_called) {
  Trace t = parse_ok("config = f()\nconfig.x -> 1\n");
  ASSERT_EQ(t.stmts.size(), 2u);
  EXPECT_EQ(t.stmts[0].bind, "config");
  EXPECT_FALSE(t.config);
}

struct BadInput {
  const char *body;
  const char *error;
};

TEST(TraceParser, malformed_lines_report_exact_line_column_and_expectation) {
  const BadInput cases[] = {
      {"a = vmalloc(8192)\nb = f(a,\n",
       "trace.trace:3:9: expected an expression, found end of line"},
      {"\nvmalloc(1 -> 5\n", "trace.trace:3:11: expected ')' after arguments, found '->'"},
      {"x = (1+2\n", "trace.trace:2:9: expected ')' to close '(', found end of line"},
      {"f([1, 2)\n", "trace.trace:2:8: expected ',' or ']' in list, found ')'"},
      {"f(a.)\n", "trace.trace:2:5: expected a field name after '.', found ')'"},
      {"f(v[1)\n", "trace.trace:2:6: expected ']' after index, found ')'"},
      {"f() g()\n", "trace.trace:2:5: expected '->' or end of line after the statement, found 'g'"},
      {"f() -> 1 2\n",
       "trace.trace:2:10: expected end of line after the expected value, found '2'"},
      {"x =\n", "trace.trace:2:4: expected an op call or expression after '=', found end of line"},
      {"f(\"abc)\n", "trace.trace:2:3: unterminated string"},
      {"f(\"a\\q\")\n", "trace.trace:2:5: unknown escape '\\q' in string"},
      {"f(x\"0g\")\n", "trace.trace:2:6: expected a hex digit in bytes literal, found 'g'"},
      {"f(x\"012\")\n", "trace.trace:2:7: odd number of hex digits in bytes literal"},
      {"f(12abc)\n", "trace.trace:2:3: invalid integer literal '12abc'"},
      {"f(18446744073709551616)\n", "trace.trace:2:3: integer does not fit in 64 bits"},
      {"f(0x10000000000000000)\n", "trace.trace:2:3: integer does not fit in 64 bits"},
      {"f(17179869184G)\n", "trace.trace:2:3: integer does not fit in 64 bits"},
      {"f(@)\n", "trace.trace:2:3: unexpected character '@'"},
      {"config cpus\n", "trace.trace:2:8: expected key=value in config line, found 'cpus'"},
      {"f()\nconfig cpus=2\n", "trace.trace:3:1: config line must come before the first op"},
      {"config cpus=2\nconfig cpus=1\n",
       "trace.trace:3:1: duplicate config line (first on line 2)"},
  };
  for (const BadInput &c : cases)
    EXPECT_EQ(parse_error(c.body), c.error) << c.body;
}

TEST(TraceParser, nul_bytes_and_invalid_utf8_are_errors_not_crashes) {
  EXPECT_EQ(parse_error(std::string("f(\0)\n", 5)),
            "trace.trace:2:3: unexpected character '\\x00'");
  EXPECT_EQ(parse_error("f(\xff\xfe)\n"), "trace.trace:2:3: unexpected character '\\xff'");
  EXPECT_EQ(parse_error(std::string("f(\"a\0\")\n", 8)),
            "trace.trace:2:5: control character '\\x00' in string; write it as \\xNN");
  EXPECT_FALSE(parse_trace(std::string("\0\0\0", 3)).ok());
}

TEST(TraceParser, deep_nesting_is_bounded) {
  const std::string parens = std::string(10000, '(') + "1" + std::string(10000, ')');
  EXPECT_NE(parse_error("f(" + parens + ")\n").find("nested too deeply"), std::string::npos);
  const std::string lists = std::string(10000, '[') + std::string(10000, ']');
  EXPECT_NE(parse_error("f(" + lists + ")\n").find("nested too deeply"), std::string::npos);
  EXPECT_NE(parse_error("f(" + std::string(10000, '-') + "1)\n").find("nested too deeply"),
            std::string::npos);
  std::string chain = "1";
  for (int i = 0; i < 10000; ++i)
    chain += "+1";
  EXPECT_NE(parse_error("f(" + chain + ")\n").find("nested too deeply"), std::string::npos);
  std::string fields = "a";
  for (int i = 0; i < 10000; ++i)
    fields += ".x";
  EXPECT_NE(parse_error("f(" + fields + ")\n").find("nested too deeply"), std::string::npos);
  const std::string ok = std::string(60, '(') + "1" + std::string(60, ')');
  EXPECT_EQ(parse_arg(ok), int_expr(1));
}

TEST(TraceParser, huge_bytes_repetition_is_an_error) {
  EXPECT_NE(parse_error("f(x\"00\"*0xffffffffffffffff)\n").find("bytes value too large"),
            std::string::npos);
}

TEST(TraceParser, very_long_lines_parse) {
  std::string args;
  for (int i = 0; i < 20000; ++i)
    args += (i ? "," : "") + std::to_string(i);
  Trace t = parse_ok("f(" + args + ")\n");
  ASSERT_EQ(t.stmts.size(), 1u);
  EXPECT_EQ(t.stmts[0].args.size(), 20000u);
}

TEST(TracePrinter, integers_print_in_hex_from_0x1000_up) {
  EXPECT_EQ(print_int(4095), "4095");
  EXPECT_EQ(print_int(4096), "0x1000");
  EXPECT_EQ(print_expr(parse_arg("4K")), "0x1000");
}

TEST(TracePrinter, bytes_print_as_strings_hex_and_collapsed_runs) {
  EXPECT_EQ(print_bytes("hello \"x\"\n"), R"("hello \"x\"\n")");
  EXPECT_EQ(print_bytes(std::string("\x00\xff\x10", 3)), R"(x"00ff10")");
  EXPECT_EQ(print_bytes(std::string(4096, '\0')), R"(x"00"*4096)");
  EXPECT_EQ(print_bytes("AB" + std::string(4096, '\0') + "CD"), R"("AB"+x"00"*4096+"CD")");
  EXPECT_EQ(print_bytes(""), R"("")");
}

TEST(TracePrinter, operands_are_parenthesised_only_when_needed) {
  EXPECT_EQ(print_expr(parse_arg("(1+2)*3")), "(1+2)*3");
  EXPECT_EQ(print_expr(parse_arg("1+(2*3)")), "1+2*3");
  EXPECT_EQ(print_expr(parse_arg("8-(2-1)")), "8-(2-1)");
  EXPECT_EQ(print_expr(parse_arg("A | B|C")), "A|B|C");
  EXPECT_EQ(print_expr(parse_arg("-(a+1)")), "-(a+1)");
  EXPECT_EQ(print_expr(parse_arg("n*(x\"00\"*8)")), "n*(x\"00\"*8)");
  EXPECT_EQ(print_expr(parse_arg("s+(\"a\"+x\"00\"*9)")), "s+(\"a\"+x\"00\"*9)");
  EXPECT_EQ(print_expr(parse_arg("[ p1 ,p2 ]")), "[p1, p2]");
}

TEST(TracePrinter, statement_and_trace_canonical_form) {
  const std::string text = "# vmcheck trace v1\n"
                           "config cpus=2 backend=legacy\n"
                           "a = vmalloc(0x2000)\n"
                           "vwrite(a+100, \"hello\") -> 5\n"
                           "area.size -> 0x3000\n"
                           "b = vmap([p, p], 2, VM_MAP, PAGE_KERNEL) -> -EINVAL\n";
  ParseResult r = parse_trace(text);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(print_trace(r.trace), text);
}

TEST(TracePrinter, printing_reaches_a_fixed_point_after_one_round) {
  const std::string messy =
      "# vmcheck trace v1  \n"
      "  config   mem=512M\n"
      "x=f( 3*4096 ,  GFP_KERNEL| __GFP_ZERO,\"AB\" + x\"00\"*4096+ \"CD\" )\n"
      "  ( config )\n"
      "g(-EINVAL, NULL, v[1].addr, ((a)))->  4K # c\n";
  ParseResult first = parse_trace(messy);
  ASSERT_TRUE(first.ok()) << first.error->to_string("m");
  const std::string once = print_trace(first.trace);
  ParseResult second = parse_trace(once);
  ASSERT_TRUE(second.ok()) << second.error->to_string("once") << "\n" << once;
  EXPECT_EQ(second.trace, first.trace);
  EXPECT_EQ(print_trace(second.trace), once);
}

} // namespace
} // namespace vmcheck
