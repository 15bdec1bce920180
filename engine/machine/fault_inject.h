// Deterministic fault injection: "the n-th allocation of this kind from now
// fails". Counters only, no randomness: a trace line fail_nth(kind, n) is the
// whole story, so a failure replays exactly.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

namespace vmcheck {

class StateHasher;

enum class FailPoint : std::uint8_t {
  AllocPage, // page allocations other than page tables (alloc_pages & co)
  PageTable, // page-table page allocations
  VmapArea,  // metadata (kmalloc-like): vmap_area, vm_struct, vmap_block, arrays
  Count_,
};

std::string_view fail_point_name(FailPoint p);
std::optional<FailPoint> fail_point_from_name(std::string_view name); // "alloc_page", ...

class FaultInjector {
public:
  // Arm: the n-th (1 = the next) allocation of kind p fails. n == 0 disarms.
  void fail_nth(FailPoint p, std::uint64_t n) { remaining_[idx(p)] = n; }
  // Called at every allocation site of kind p: true means "fail this one".
  // Counts the allocation either way.
  // Inline: every page allocation asks.
  bool should_fail(FailPoint p) {
    const std::size_t i = idx(p);
    ++attempts_[i];
    if (remaining_[i] == 0 || --remaining_[i] != 0)
      return false;
    ++injected_[i];
    return true;
  }
  bool armed(FailPoint p) const { return remaining_[idx(p)] != 0; }
  // The armed count: the remaining(p)-th allocation of kind p from now fails
  // (0: disarmed).
  std::uint64_t remaining(FailPoint p) const { return remaining_[idx(p)]; }
  std::uint64_t attempts(FailPoint p) const { return attempts_[idx(p)]; }
  std::uint64_t injected(FailPoint p) const { return injected_[idx(p)]; }
  void hash_into(StateHasher &h) const;

private:
  static std::size_t idx(FailPoint p) { return static_cast<std::size_t>(p); }
  static constexpr std::size_t N = static_cast<std::size_t>(FailPoint::Count_);
  std::array<std::uint64_t, N> remaining_{};
  std::array<std::uint64_t, N> attempts_{};
  std::array<std::uint64_t, N> injected_{};
};

} // namespace vmcheck
