// The named constants a trace may use as integers (abi.h's GFP_*, __GFP_*,
// VM_*, PAGE_*, FOLL_*, NUMA_NO_NODE). NULL and errno names are values of
// their own kinds and live in the evaluator and value.h.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace vmcheck {

// The value of a named constant, or nullopt when the name is not one.
std::optional<std::uint64_t> lookup_constant(std::string_view name);

} // namespace vmcheck
