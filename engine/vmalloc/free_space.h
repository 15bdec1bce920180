// The free kernel-virtual-address space of the vmalloc range: the role of the
// kernel's free_vmap_area_root, redesigned as a self-contained augmented AVL
// tree. It knows nothing about vmap_area or vm_struct; the layer above asks it
// for the lowest aligned fit, carves the result out, and gives ranges back.
#pragma once

#include "machine/hash.h"
#include "vmcheck/abi.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace vmcheck {

// A half-open address range [start, end). end is exclusive and therefore at
// most 2^64 - 1: a range cannot reach the very last byte of the address space,
// which no vmalloc range (4- or 5-level) needs.
struct Range {
  u64 start = 0;
  u64 end = 0;

  // Returns the number of bytes in the range.
  u64 size() const { return end - start; }
  friend bool operator==(const Range &, const Range &) = default;
};

class FreeSpace {
public:
  // Starts with no free space at all.
  FreeSpace() = default;
  // Starts with the single free block [start, end), or nothing when start >= end.
  FreeSpace(u64 start, u64 end);

  // Returns the lowest a with a % align == 0, vstart <= a and a + size <= vend
  // such that [a, a + size) lies in one free block; nullopt when there is none,
  // when size == 0 or when align is not a power of two.
  std::optional<u64> find_lowest(u64 size, u64 align, u64 vstart, u64 vend) const;

  // Carves [start, start + size) out of the one free block holding all of it;
  // false and no change when no single free block holds it or size == 0.
  bool reserve(u64 start, u64 size);

  // Returns [start, start + size) to free space, merged with adjacent blocks;
  // false and no change when it overlaps free space, wraps, or size == 0.
  bool release(u64 start, u64 size);

  // Returns the free block with start <= addr < end, if any.
  std::optional<Range> find_block_containing(u64 addr) const;
  // Returns the free block with the highest start below end, if any.
  std::optional<Range> find_highest_block_below(u64 end) const;
  // Returns the lowest free block whose end lies above addr, if any.
  std::optional<Range> find_lowest_block_from(u64 addr) const;

  // Calls fn(const Range&) for every free block in ascending address order.
  template <typename Fn> void for_each(Fn &&fn) const { visit_in_order(root_, fn); }
  // Returns all free blocks in ascending address order.
  std::vector<Range> blocks() const;

  // Returns the number of free blocks.
  std::size_t size() const { return count_; }
  // Returns true when there is no free space.
  bool empty() const { return count_ == 0; }
  // Returns the total number of free bytes.
  u64 free_bytes() const { return free_bytes_; }

  // Drops all free space (every address becomes busy); keeps the node pool.
  void clear();
  // Makes [start, end) the single free block (nothing when start >= end).
  void reset(u64 start, u64 end);

  // Returns a description of the first broken invariant, or "" when sound.
  std::string check() const;
  // Feeds the free blocks, in address order, into h.
  void hash_into(StateHasher &h) const;

private:
  using Index = std::uint32_t;
  static constexpr Index kNil = UINT32_MAX;

  // One free block. Invariants (checked by check()): in-order traversal gives
  // strictly increasing starts with prev.end < next.start (disjoint and never
  // touching: touching blocks are always merged); start < end; height is
  // 1 + max(child heights) and the child heights differ by at most one;
  // subtree_max_size is the largest end - start in the subtree.
  struct Node {
    u64 start = 0;
    u64 end = 0;
    u64 subtree_max_size = 0;
    Index left = kNil;
    Index right = kNil;
    std::int32_t height = 1;
  };

  Index new_node(u64 start, u64 end);
  void free_node(Index n);

  std::int32_t height_of(Index n) const { return n == kNil ? 0 : nodes_[n].height; }
  u64 max_of(Index n) const { return n == kNil ? 0 : nodes_[n].subtree_max_size; }
  void update(Index n);
  Index rotate_left(Index n);
  Index rotate_right(Index n);
  Index rebalance(Index n);

  Index insert_rec(Index n, Index fresh);
  Index erase_rec(Index n, u64 start);
  Index detach_min(Index n, Index &min_out);
  void refresh_path(Index n, u64 start);

  Index find_containing_index(u64 addr) const;
  Index find_predecessor_index(u64 addr) const;
  Index find_successor_index(u64 addr) const;
  std::optional<u64> lowest_fit_rec(Index n, u64 size, u64 align, u64 vstart, u64 vend) const;

  std::string check_rec(Index n, int depth, const Node **prev, std::size_t &count,
                        u64 &bytes) const;

  template <typename Fn> void visit_in_order(Index n, Fn &fn) const {
    while (n != kNil) {
      visit_in_order(nodes_[n].left, fn);
      fn(Range{nodes_[n].start, nodes_[n].end});
      n = nodes_[n].right;
    }
  }

  // Pool of nodes; unused slots are chained through Node::left from
  // free_head_, so steady-state reserve/release never touch the heap.
  std::vector<Node> nodes_;
  Index free_head_ = kNil;
  Index root_ = kNil;
  std::size_t count_ = 0;
  u64 free_bytes_ = 0;
};

} // namespace vmcheck
