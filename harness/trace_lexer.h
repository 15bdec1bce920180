// The trace lexer: turns one line of trace text into tokens. Internal to the
// parser; lines are lexed one at a time because a statement never spans lines.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace vmcheck {

enum class TokenKind : std::uint8_t {
  Ident,
  Int,
  Bytes, // "text" or x"hex": data holds the decoded bytes
  LParen,
  RParen,
  LBracket,
  RBracket,
  Comma,
  Assign,
  Dot,
  Plus,
  Minus,
  Star,
  Pipe,
  Arrow,
  End,   // end of line or start of a comment
  Error, // data holds the message
};

struct Token {
  TokenKind kind = TokenKind::End;
  std::string_view text; // source spelling
  std::uint64_t value = 0;
  std::string data;
  int column = 1;

  // How an error message names this token: "'->'", "end of line", ...
  std::string describe() const;
};

class TraceLexer {
public:
  explicit TraceLexer(std::string_view line) : line_(line) {}

  // The next token; End forever once the line is exhausted. An Error token
  // carries the message and its column.
  Token next();
  // Column (1-based) of the next unread character, after skipping blanks.
  int column();
  // The rest of the line from the current position, comment excluded.
  std::string_view rest_before_comment();

private:
  void skip_blanks();
  Token lex_int();
  Token lex_string(std::size_t start, bool hex);
  Token make(TokenKind kind, std::size_t start);
  Token error(std::size_t at, std::string message);

  std::string_view line_;
  std::size_t pos_ = 0;
};

} // namespace vmcheck
