#include "harness/trace.h"
#include "harness/trace_lexer.h"

#include <vector>

namespace vmcheck {

namespace {

constexpr std::string_view kHeader = "# vmcheck trace v1";

// Recursive descent over the tokens of one line. Every parse_* returns false
// after recording the first error; nothing throws.
class LineParser {
public:
  LineParser(std::string_view line, int line_no) : line_(line), line_no_(line_no) {
    TraceLexer lexer(line);
    while (true) {
      tokens_.push_back(lexer.next());
      if (tokens_.back().kind == TokenKind::End || tokens_.back().kind == TokenKind::Error)
        break;
    }
  }

  bool is_blank() const { return tokens_.front().kind == TokenKind::End; }

  bool is_config() const {
    return tokens_[0].kind == TokenKind::Ident && tokens_[0].text == "config" &&
           (tokens_[1].kind == TokenKind::Ident || tokens_[1].kind == TokenKind::End);
  }

  bool parse_config(ConfigLine &out) {
    TraceLexer lexer(line_);
    lexer.next(); // "config"
    const int base = lexer.column();
    const std::string_view rest = lexer.rest_before_comment();
    out.line = line_no_;
    std::size_t i = 0;
    while (i < rest.size()) {
      while (i < rest.size() && (rest[i] == ' ' || rest[i] == '\t' || rest[i] == '\r'))
        ++i;
      if (i >= rest.size())
        break;
      const std::size_t start = i;
      while (i < rest.size() && rest[i] != ' ' && rest[i] != '\t' && rest[i] != '\r')
        ++i;
      const std::string_view word = rest.substr(start, i - start);
      const int col = base + static_cast<int>(start);
      const auto eq = word.find('=');
      if (eq == std::string_view::npos || eq == 0 || eq + 1 == word.size())
        return fail(col, "expected key=value in config line, found '" + std::string(word) + "'");
      out.pairs.push_back({std::string(word.substr(0, eq)), std::string(word.substr(eq + 1)), col});
    }
    return true;
  }

  bool parse_stmt(Stmt &out) {
    out.line = line_no_;
    if (peek().kind == TokenKind::Ident && peek(1).kind == TokenKind::Assign) {
      out.bind = std::string(take().text);
      take();
      if (peek().kind == TokenKind::End)
        return expected("an op call or expression after '='");
    }
    out.column = peek().column;
    if (peek().kind == TokenKind::Ident && peek(1).kind == TokenKind::LParen) {
      out.is_call = true;
      out.op = std::string(take().text);
      take();
      if (!parse_args(out.args))
        return false;
    } else {
      Expr value;
      if (!parse_expr(value))
        return false;
      out.value = std::move(value);
    }
    if (peek().kind == TokenKind::Arrow) {
      take();
      Expr expect;
      if (!parse_expr(expect))
        return false;
      out.expect = std::move(expect);
    }
    if (peek().kind != TokenKind::End)
      return expected(out.expect ? "end of line after the expected value"
                                 : "'->' or end of line after the statement");
    return true;
  }

  const ParseError &error() const { return error_; }

private:
  const Token &peek(std::size_t ahead = 0) const {
    const std::size_t i = pos_ + ahead;
    return i < tokens_.size() ? tokens_[i] : tokens_.back();
  }
  const Token &take() {
    const Token &t = peek();
    if (pos_ + 1 < tokens_.size())
      ++pos_;
    return t;
  }

  bool fail(int column, std::string message) {
    error_ = {line_no_, column, std::move(message)};
    return false;
  }
  // "expected WHAT, found TOKEN" at the current token; a lexer error wins
  // because it says more about the same position.
  bool expected(const std::string &what) {
    const Token &t = peek();
    if (t.kind == TokenKind::Error)
      return fail(t.column, t.data);
    return fail(t.column, "expected " + what + ", found " + t.describe());
  }

  bool enter() {
    if (++depth_ > kMaxExprDepth)
      return fail(peek().column, "expression nested too deeply (more than " +
                                     std::to_string(kMaxExprDepth) + " levels)");
    return true;
  }
  bool check_height(int height, int column) {
    if (height > kMaxExprDepth)
      return fail(column, "expression nested too deeply (more than " +
                              std::to_string(kMaxExprDepth) + " levels)");
    return true;
  }

  bool parse_args(std::vector<Expr> &args) {
    if (peek().kind == TokenKind::RParen) {
      take();
      return true;
    }
    while (true) {
      Expr arg;
      if (!parse_expr(arg))
        return false;
      args.push_back(std::move(arg));
      if (peek().kind == TokenKind::Comma) {
        take();
        continue;
      }
      if (peek().kind == TokenKind::RParen) {
        take();
        return true;
      }
      return expected("')' after arguments");
    }
  }

  bool parse_expr(Expr &out) {
    int height = 0;
    return parse_or(out, height);
  }

  bool parse_or(Expr &out, int &height) {
    if (!enter())
      return false;
    const bool ok = parse_binary_level(0, out, height);
    --depth_;
    return ok;
  }

  // Levels: 0 is '|', 1 is '+' '-', 2 is '*'; all left-associative.
  bool parse_binary_level(int level, Expr &out, int &height) {
    if (level == 3)
      return parse_unary(out, height);
    if (!parse_binary_level(level + 1, out, height))
      return false;
    while (true) {
      const TokenKind k = peek().kind;
      ExprKind kind;
      if (level == 0 && k == TokenKind::Pipe)
        kind = ExprKind::Or;
      else if (level == 1 && k == TokenKind::Plus)
        kind = ExprKind::Add;
      else if (level == 1 && k == TokenKind::Minus)
        kind = ExprKind::Sub;
      else if (level == 2 && k == TokenKind::Star)
        kind = ExprKind::Mul;
      else
        return true;
      const int column = take().column;
      Expr rhs;
      int rhs_height = 0;
      if (!parse_binary_level(level + 1, rhs, rhs_height))
        return false;
      if (!combine(kind, column, out, std::move(rhs), height, rhs_height))
        return false;
    }
  }

  // Builds lhs OP rhs into `lhs`, folding literal bytes concatenation and
  // repetition so that a bytes literal is one node however it was spelled.
  bool combine(ExprKind kind, int column, Expr &lhs, Expr rhs, int &height, int rhs_height) {
    if (kind == ExprKind::Add && lhs.kind == ExprKind::Bytes && rhs.kind == ExprKind::Bytes) {
      if (lhs.text.size() + rhs.text.size() > kMaxBytesValue)
        return fail(column, "bytes value too large (more than " + std::to_string(kMaxBytesValue) +
                                " bytes)");
      lhs.text += rhs.text;
      height = 1;
      return true;
    }
    if (kind == ExprKind::Mul && lhs.kind == ExprKind::Bytes && rhs.kind == ExprKind::Int) {
      if (!lhs.text.empty() && rhs.value > kMaxBytesValue / lhs.text.size())
        return fail(column, "bytes value too large (more than " + std::to_string(kMaxBytesValue) +
                                " bytes)");
      std::string data;
      data.reserve(lhs.text.size() * rhs.value);
      for (std::uint64_t i = 0; i < rhs.value && !lhs.text.empty(); ++i)
        data += lhs.text;
      lhs.text = std::move(data);
      height = 1;
      return true;
    }
    Expr node;
    node.kind = kind;
    node.column = lhs.column;
    node.kids.push_back(std::move(lhs));
    node.kids.push_back(std::move(rhs));
    lhs = std::move(node);
    height = std::max(height, rhs_height) + 1;
    return check_height(height, column);
  }

  bool parse_unary(Expr &out, int &height) {
    if (peek().kind != TokenKind::Minus)
      return parse_postfix(out, height);
    const int column = take().column;
    if (!enter())
      return false;
    Expr operand;
    const bool ok = parse_unary(operand, height);
    --depth_;
    if (!ok)
      return false;
    out = Expr{};
    out.kind = ExprKind::Neg;
    out.column = column;
    out.kids.push_back(std::move(operand));
    ++height;
    return check_height(height, column);
  }

  bool parse_postfix(Expr &out, int &height) {
    if (!parse_primary(out, height))
      return false;
    while (true) {
      if (peek().kind == TokenKind::Dot) {
        take();
        if (peek().kind != TokenKind::Ident)
          return expected("a field name after '.'");
        Expr node;
        node.kind = ExprKind::Field;
        node.column = out.column;
        node.text = std::string(take().text);
        node.kids.push_back(std::move(out));
        out = std::move(node);
        ++height;
      } else if (peek().kind == TokenKind::LBracket) {
        const int column = take().column;
        Expr index;
        int index_height = 0;
        if (!parse_or(index, index_height))
          return false;
        if (peek().kind != TokenKind::RBracket)
          return expected("']' after index");
        take();
        Expr node;
        node.kind = ExprKind::Index;
        node.column = out.column;
        node.kids.push_back(std::move(out));
        node.kids.push_back(std::move(index));
        out = std::move(node);
        height = std::max(height, index_height) + 1;
        if (!check_height(height, column))
          return false;
      } else {
        return check_height(height, out.column);
      }
    }
  }

  bool parse_primary(Expr &out, int &height) {
    const Token &t = peek();
    out = Expr{};
    out.column = t.column;
    height = 1;
    switch (t.kind) {
    case TokenKind::Int:
      out.kind = ExprKind::Int;
      out.value = take().value;
      return true;
    case TokenKind::Ident:
      out.kind = ExprKind::Name;
      out.text = std::string(take().text);
      return true;
    case TokenKind::Bytes:
      out.kind = ExprKind::Bytes;
      out.text = take().data;
      return true;
    case TokenKind::LParen: {
      take();
      if (!parse_or(out, height))
        return false;
      if (peek().kind != TokenKind::RParen)
        return expected("')' to close '('");
      take();
      return true;
    }
    case TokenKind::LBracket:
      take();
      out.kind = ExprKind::List;
      return parse_list(out, height);
    default:
      return expected("an expression");
    }
  }

  bool parse_list(Expr &out, int &height) {
    if (peek().kind == TokenKind::RBracket) {
      take();
      return true;
    }
    while (true) {
      Expr elem;
      int elem_height = 0;
      if (!parse_or(elem, elem_height))
        return false;
      out.kids.push_back(std::move(elem));
      height = std::max(height, elem_height + 1);
      if (peek().kind == TokenKind::Comma) {
        take();
        continue;
      }
      if (peek().kind == TokenKind::RBracket) {
        take();
        return check_height(height, out.column);
      }
      return expected("',' or ']' in list");
    }
  }

  std::string_view line_;
  int line_no_;
  std::vector<Token> tokens_;
  std::size_t pos_ = 0;
  int depth_ = 0;
  ParseError error_;
};

std::string_view trim_right(std::string_view s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

} // namespace

ParseResult parse_trace(std::string_view text) {
  ParseResult result;
  std::size_t pos = 0;
  int line_no = 0;
  while (pos <= text.size()) {
    const std::size_t nl = text.find('\n', pos);
    const std::size_t end = nl == std::string_view::npos ? text.size() : nl;
    const std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (line_no == 1) {
      if (trim_right(line) != kHeader) {
        std::string found;
        for (char c : trim_right(line).substr(0, 40))
          found += (c >= 0x20 && c < 0x7f) ? c : '?';
        result.error =
            ParseError{1, 1,
                       "expected '" + std::string(kHeader) + "' as the first line, found " +
                           (text.empty() ? std::string("end of input") : "'" + found + "'")};
        return result;
      }
      continue;
    }
    LineParser parser(line, line_no);
    if (parser.is_blank())
      continue;
    if (parser.is_config()) {
      if (result.trace.config) {
        result.error = ParseError{line_no, 1,
                                  "duplicate config line (first on line " +
                                      std::to_string(result.trace.config->line) + ")"};
        return result;
      }
      if (!result.trace.stmts.empty()) {
        result.error = ParseError{line_no, 1, "config line must come before the first op"};
        return result;
      }
      ConfigLine config;
      if (!parser.parse_config(config)) {
        result.error = parser.error();
        return result;
      }
      result.trace.config = std::move(config);
      continue;
    }
    Stmt stmt;
    if (!parser.parse_stmt(stmt)) {
      result.error = parser.error();
      return result;
    }
    result.trace.stmts.push_back(std::move(stmt));
  }
  return result;
}

} // namespace vmcheck
