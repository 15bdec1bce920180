// Argument checking for op handlers: each accessor either yields the typed
// argument or records an error naming the argument, what was expected and
// what was found, which the handler returns as its ArgError.
#pragma once

#include "harness/ops.h"

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace vmcheck {

class OpArgs {
public:
  OpArgs(const OpDef &def, const std::vector<Value> &args) : def_(def), args_(args) {}

  // Exactly n arguments.
  bool count(std::size_t n);
  // Argument i (0-based) as an integer or address; NULL reads as 0.
  std::optional<std::uint64_t> integer(std::size_t i);
  // Argument i as an integer in [lo, hi].
  std::optional<std::uint64_t> integer_in(std::size_t i, std::uint64_t lo, std::uint64_t hi);
  // Argument i as a page handle.
  std::optional<Pfn> page(std::size_t i);
  // Argument i as one of the given bare words.
  std::optional<std::string> word(std::size_t i, std::span<const std::string_view> choices);

  // The first error as an op result.
  OpResult error() const { return OpResult::bad_arg(error_); }

private:
  bool fail(std::size_t i, const std::string &expected);

  const OpDef &def_;
  const std::vector<Value> &args_;
  std::string error_;
};

} // namespace vmcheck
