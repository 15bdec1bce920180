#include "harness/op_args.h"

namespace vmcheck {

bool OpArgs::count(std::size_t n) {
  if (args_.size() == n)
    return true;
  error_ = def_.name + ": expected " + std::to_string(n) + " argument" + (n == 1 ? "" : "s") +
           " as in " + def_.usage + ", found " + std::to_string(args_.size());
  return false;
}

bool OpArgs::fail(std::size_t i, const std::string &expected) {
  const std::string found = i < args_.size() ? value_to_string(args_[i]) : "nothing";
  error_ = def_.name + ": argument " + std::to_string(i + 1) + ": expected " + expected +
           ", found " + found;
  return false;
}

std::optional<std::uint64_t> OpArgs::integer(std::size_t i) {
  if (i < args_.size() && args_[i].kind == ValueKind::Int)
    return args_[i].num;
  if (i < args_.size() && args_[i].kind == ValueKind::Null)
    return 0;
  fail(i, "an integer");
  return std::nullopt;
}

std::optional<std::uint64_t> OpArgs::integer_in(std::size_t i, std::uint64_t lo, std::uint64_t hi) {
  if (i < args_.size() && args_[i].kind == ValueKind::Int && args_[i].num >= lo &&
      args_[i].num <= hi)
    return args_[i].num;
  fail(i, "an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return std::nullopt;
}

std::optional<Pfn> OpArgs::page(std::size_t i) {
  if (i < args_.size() && args_[i].kind == ValueKind::Page)
    return args_[i].num;
  fail(i, "a page");
  return std::nullopt;
}

std::optional<std::string> OpArgs::word(std::size_t i, std::span<const std::string_view> choices) {
  if (i < args_.size() && args_[i].kind == ValueKind::Symbol)
    for (std::string_view c : choices)
      if (c == args_[i].text)
        return args_[i].text;
  std::string expected;
  for (std::string_view c : choices)
    expected += (expected.empty() ? "" : "|") + std::string(c);
  fail(i, expected);
  return std::nullopt;
}

} // namespace vmcheck
