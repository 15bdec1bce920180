#include "harness/trace.h"

namespace vmcheck {

bool Expr::operator==(const Expr &other) const {
  return kind == other.kind && value == other.value && text == other.text && kids == other.kids;
}

bool Stmt::operator==(const Stmt &other) const {
  return bind == other.bind && is_call == other.is_call && op == other.op && args == other.args &&
         value == other.value && expect == other.expect;
}

std::string ParseError::to_string(std::string_view file) const {
  std::string s(file);
  s += ':' + std::to_string(line) + ':' + std::to_string(column) + ": " + message;
  return s;
}

} // namespace vmcheck
