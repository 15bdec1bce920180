#include "harness/trace_lexer.h"

#include <cstdio>

namespace vmcheck {

namespace {

bool is_ident_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool is_ident_char(char c) {
  return is_ident_start(c) || (c >= '0' && c <= '9');
}
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

// A character as an error message shows it: printable as is, others as \xNN.
std::string show_char(char c) {
  const auto u = static_cast<unsigned char>(c);
  if (u >= 0x20 && u < 0x7f)
    return std::string(1, c);
  char buf[8];
  std::snprintf(buf, sizeof buf, "\\x%02x", u);
  return buf;
}

} // namespace

std::string Token::describe() const {
  switch (kind) {
  case TokenKind::End:
    return "end of line";
  case TokenKind::Bytes:
    return text.size() > 24 ? "string literal" : "'" + std::string(text) + "'";
  case TokenKind::Error:
    return "invalid input";
  default:
    break;
  }
  std::string shown;
  for (char c : text.substr(0, 24))
    shown += show_char(c);
  if (text.size() > 24)
    shown += "...";
  return "'" + shown + "'";
}

void TraceLexer::skip_blanks() {
  while (pos_ < line_.size() && (line_[pos_] == ' ' || line_[pos_] == '\t' || line_[pos_] == '\r'))
    ++pos_;
}

int TraceLexer::column() {
  skip_blanks();
  return static_cast<int>(pos_) + 1;
}

std::string_view TraceLexer::rest_before_comment() {
  skip_blanks();
  std::string_view rest = line_.substr(pos_);
  const auto hash = rest.find('#');
  pos_ = line_.size();
  return hash == std::string_view::npos ? rest : rest.substr(0, hash);
}

Token TraceLexer::make(TokenKind kind, std::size_t start) {
  Token t;
  t.kind = kind;
  t.text = line_.substr(start, pos_ - start);
  t.column = static_cast<int>(start) + 1;
  return t;
}

Token TraceLexer::error(std::size_t at, std::string message) {
  Token t;
  t.kind = TokenKind::Error;
  t.column = static_cast<int>(at) + 1;
  t.data = std::move(message);
  pos_ = line_.size();
  return t;
}

Token TraceLexer::next() {
  skip_blanks();
  const std::size_t start = pos_;
  if (pos_ >= line_.size() || line_[pos_] == '#')
    return make(TokenKind::End, start);
  const char c = line_[pos_];
  if (c == 'x' && pos_ + 1 < line_.size() && line_[pos_ + 1] == '"') {
    pos_ += 2;
    return lex_string(start, true);
  }
  if (is_ident_start(c)) {
    while (pos_ < line_.size() && is_ident_char(line_[pos_]))
      ++pos_;
    return make(TokenKind::Ident, start);
  }
  if (is_digit(c))
    return lex_int();
  if (c == '"') {
    ++pos_;
    return lex_string(start, false);
  }
  ++pos_;
  switch (c) {
  case '(':
    return make(TokenKind::LParen, start);
  case ')':
    return make(TokenKind::RParen, start);
  case '[':
    return make(TokenKind::LBracket, start);
  case ']':
    return make(TokenKind::RBracket, start);
  case ',':
    return make(TokenKind::Comma, start);
  case '=':
    return make(TokenKind::Assign, start);
  case '.':
    return make(TokenKind::Dot, start);
  case '+':
    return make(TokenKind::Plus, start);
  case '*':
    return make(TokenKind::Star, start);
  case '|':
    return make(TokenKind::Pipe, start);
  case '-':
    if (pos_ < line_.size() && line_[pos_] == '>') {
      ++pos_;
      return make(TokenKind::Arrow, start);
    }
    return make(TokenKind::Minus, start);
  default:
    return error(start, "unexpected character '" + show_char(c) + "'");
  }
}

Token TraceLexer::lex_int() {
  const std::size_t start = pos_;
  while (pos_ < line_.size() && is_ident_char(line_[pos_]))
    ++pos_;
  std::string_view word = line_.substr(start, pos_ - start);
  Token t = make(TokenKind::Int, start);
  std::uint64_t multiplier = 1;
  switch (word.back()) {
  case 'K':
    multiplier = std::uint64_t{1} << 10;
    break;
  case 'M':
    multiplier = std::uint64_t{1} << 20;
    break;
  case 'G':
    multiplier = std::uint64_t{1} << 30;
    break;
  default:
    break;
  }
  if (multiplier != 1)
    word.remove_suffix(1);
  unsigned base = 10;
  if (word.size() > 2 && word[0] == '0' && (word[1] == 'x' || word[1] == 'X')) {
    base = 16;
    word.remove_prefix(2);
  }
  std::uint64_t v = 0;
  bool overflow = false;
  for (char c : word) {
    const int d = hex_digit(c);
    if (d < 0 || static_cast<unsigned>(d) >= base)
      return error(start, "invalid integer literal '" + std::string(t.text) + "'");
    if (v > (UINT64_MAX - static_cast<unsigned>(d)) / base)
      overflow = true;
    v = v * base + static_cast<unsigned>(d);
  }
  if (word.empty())
    return error(start, "invalid integer literal '" + std::string(t.text) + "'");
  if (overflow || v > UINT64_MAX / multiplier)
    return error(start, "integer does not fit in 64 bits");
  t.value = v * multiplier;
  return t;
}

Token TraceLexer::lex_string(std::size_t start, bool hex) {
  std::string data;
  while (true) {
    if (pos_ >= line_.size())
      return error(start, hex ? "unterminated bytes literal" : "unterminated string");
    const char c = line_[pos_];
    if (c == '"')
      break;
    if (hex) {
      const int hi = hex_digit(c);
      if (hi < 0)
        return error(pos_, "expected a hex digit in bytes literal, found '" + show_char(c) + "'");
      if (pos_ + 1 >= line_.size() || line_[pos_ + 1] == '"')
        return error(pos_, "odd number of hex digits in bytes literal");
      const int lo = hex_digit(line_[pos_ + 1]);
      if (lo < 0)
        return error(pos_ + 1, "expected a hex digit in bytes literal, found '" +
                                   show_char(line_[pos_ + 1]) + "'");
      data += static_cast<char>(hi * 16 + lo);
      pos_ += 2;
      continue;
    }
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 && c != '\t')
      return error(pos_, "control character '" + show_char(c) + "' in string; write it as \\xNN");
    if (c != '\\') {
      data += c;
      ++pos_;
      continue;
    }
    const std::size_t esc = pos_;
    if (pos_ + 1 >= line_.size())
      return error(esc, "unterminated string");
    const char e = line_[pos_ + 1];
    pos_ += 2;
    switch (e) {
    case 'n':
      data += '\n';
      break;
    case 't':
      data += '\t';
      break;
    case 'r':
      data += '\r';
      break;
    case '0':
      data += '\0';
      break;
    case '\\':
      data += '\\';
      break;
    case '"':
      data += '"';
      break;
    case 'x': {
      const int hi = pos_ < line_.size() ? hex_digit(line_[pos_]) : -1;
      const int lo = pos_ + 1 < line_.size() ? hex_digit(line_[pos_ + 1]) : -1;
      if (hi < 0 || lo < 0)
        return error(esc, "expected two hex digits after \\x");
      data += static_cast<char>(hi * 16 + lo);
      pos_ += 2;
      break;
    }
    default:
      return error(esc, "unknown escape '\\" + show_char(e) + "' in string");
    }
  }
  ++pos_; // closing quote
  Token t = make(TokenKind::Bytes, start);
  t.data = std::move(data);
  return t;
}

} // namespace vmcheck
