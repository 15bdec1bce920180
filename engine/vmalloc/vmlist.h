// The 2.6-era `vmlist` of seed 003: an address-sorted singly linked list of
// busy areas searched first-fit on every allocation. It is the legacy
// placement backend and the O(n) performance baseline for FreeSpace, so it is
// deliberately a real linked list walked from the head, quirks included.
#pragma once

#include "machine/hash.h"
#include "vmcheck/abi.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace vmcheck {

// One busy area as the list stores it; size already includes any guard page.
struct VmListArea {
  u64 addr = 0;
  u64 size = 0;

  friend bool operator==(const VmListArea &, const VmListArea &) = default;
};

class VmList {
public:
  // Places an area of size bytes by seed 003's first-fit walk from
  // ALIGN(start, align) and links it in; returns its address, or nullopt when
  // the walk fails, size == 0 or align is not a power of two.
  //
  // Faithful to the seed, end is compared (ok while addr <= end - size) only
  // when the final candidate came from stepping over an area that starts at
  // or above the previous candidate. The initial ALIGN(start, align), and a
  // candidate pushed up by an area starting below it, are returned unchecked
  // whether the walk stops at a gap or runs off the list: on an empty list, or
  // at a gap before an area lying beyond end, the new area may reach past end
  // (or wrap); only a check after the loop would close that hole.
  std::optional<u64> alloc(u64 size, u64 align, u64 start, u64 end);

  // Unlinks the area starting exactly at addr; false when no area starts there.
  bool remove(u64 addr);

  // Returns the area starting exactly at addr, if any.
  std::optional<VmListArea> find(u64 addr) const;

  // Calls fn(const VmListArea&) for every area in list (ascending address) order.
  template <typename Fn> void for_each(Fn &&fn) const {
    for (Index n = head_; n != kNil; n = nodes_[n].next)
      fn(VmListArea{nodes_[n].addr, nodes_[n].size});
  }
  // Returns all areas in list order.
  std::vector<VmListArea> areas() const;

  // Returns the number of areas on the list.
  std::size_t size() const { return count_; }
  // Returns true when the list holds no area.
  bool empty() const { return count_ == 0; }
  // Drops every area; keeps the node pool.
  void clear();

  // Returns a description of the first broken invariant, or "" when sound.
  std::string check() const;
  // Feeds the areas, in list order, into h.
  void hash_into(StateHasher &h) const;

private:
  using Index = std::uint32_t;
  static constexpr Index kNil = UINT32_MAX;

  // One busy area. Invariant (checked by check()): following next from head_
  // visits count_ nodes with size > 0, addr + size not wrapping, and
  // prev.addr + prev.size <= next.addr (sorted, disjoint; guard pages are part
  // of size, so touching areas are legitimate).
  struct Node {
    u64 addr = 0;
    u64 size = 0;
    Index next = kNil;
  };

  Index new_node(u64 addr, u64 size, Index next);

  // Pool of nodes; unused slots are chained through Node::next from free_head_.
  std::vector<Node> nodes_;
  Index free_head_ = kNil;
  Index head_ = kNil;
  std::size_t count_ = 0;
};

} // namespace vmcheck
