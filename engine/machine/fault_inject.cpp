#include "machine/fault_inject.h"

#include "machine/hash.h"

namespace vmcheck {

namespace {
constexpr std::string_view kNames[] = {"alloc_page", "page_table", "vmap_area"};
} // namespace

std::string_view fail_point_name(FailPoint p) {
  return kNames[static_cast<std::size_t>(p)];
}

std::optional<FailPoint> fail_point_from_name(std::string_view name) {
  for (std::size_t i = 0; i < std::size(kNames); ++i)
    if (kNames[i] == name)
      return static_cast<FailPoint>(i);
  return std::nullopt;
}

void FaultInjector::hash_into(StateHasher &h) const {
  // Only what changes future behaviour: the armed counters. attempts_ and
  // injected_ are statistics.
  h.tag(0xfa17);
  for (auto r : remaining_)
    h.add(r);
}

} // namespace vmcheck
