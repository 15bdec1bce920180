#include "vmalloc/free_space.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>

namespace vmcheck {

namespace {

constexpr u64 kFreeSpaceTag = 0x4b56412d66726565ULL; // "KVA-free"

std::string describe(const char *what, u64 a, u64 b) {
  char buf[128];
  std::snprintf(buf, sizeof buf, "%s [0x%" PRIx64 ", 0x%" PRIx64 ")", what, a, b);
  return buf;
}

} // namespace

FreeSpace::FreeSpace(u64 start, u64 end) {
  reset(start, end);
}

FreeSpace::Index FreeSpace::new_node(u64 start, u64 end) {
  Index n;
  if (free_head_ != kNil) {
    n = free_head_;
    free_head_ = nodes_[n].left;
  } else {
    n = static_cast<Index>(nodes_.size());
    nodes_.emplace_back();
  }
  nodes_[n] = Node{start, end, end - start, kNil, kNil, 1};
  ++count_;
  return n;
}

void FreeSpace::free_node(Index n) {
  nodes_[n].left = free_head_;
  nodes_[n].right = kNil;
  free_head_ = n;
  --count_;
}

void FreeSpace::update(Index n) {
  Node &x = nodes_[n];
  x.height = 1 + std::max(height_of(x.left), height_of(x.right));
  x.subtree_max_size = std::max({x.end - x.start, max_of(x.left), max_of(x.right)});
}

FreeSpace::Index FreeSpace::rotate_left(Index n) {
  Index r = nodes_[n].right;
  nodes_[n].right = nodes_[r].left;
  nodes_[r].left = n;
  update(n);
  update(r);
  return r;
}

FreeSpace::Index FreeSpace::rotate_right(Index n) {
  Index l = nodes_[n].left;
  nodes_[n].left = nodes_[l].right;
  nodes_[l].right = n;
  update(n);
  update(l);
  return l;
}

FreeSpace::Index FreeSpace::rebalance(Index n) {
  update(n);
  const std::int32_t balance = height_of(nodes_[n].left) - height_of(nodes_[n].right);
  if (balance > 1) {
    Index l = nodes_[n].left;
    if (height_of(nodes_[l].left) < height_of(nodes_[l].right))
      nodes_[n].left = rotate_left(l);
    return rotate_right(n);
  }
  if (balance < -1) {
    Index r = nodes_[n].right;
    if (height_of(nodes_[r].right) < height_of(nodes_[r].left))
      nodes_[n].right = rotate_right(r);
    return rotate_left(n);
  }
  return n;
}

FreeSpace::Index FreeSpace::insert_rec(Index n, Index fresh) {
  if (n == kNil)
    return fresh;
  if (nodes_[fresh].start < nodes_[n].start)
    nodes_[n].left = insert_rec(nodes_[n].left, fresh);
  else
    nodes_[n].right = insert_rec(nodes_[n].right, fresh);
  return rebalance(n);
}

FreeSpace::Index FreeSpace::detach_min(Index n, Index &min_out) {
  if (nodes_[n].left == kNil) {
    min_out = n;
    return nodes_[n].right;
  }
  nodes_[n].left = detach_min(nodes_[n].left, min_out);
  return rebalance(n);
}

FreeSpace::Index FreeSpace::erase_rec(Index n, u64 start) {
  if (n == kNil)
    return kNil;
  if (start < nodes_[n].start) {
    nodes_[n].left = erase_rec(nodes_[n].left, start);
  } else if (start > nodes_[n].start) {
    nodes_[n].right = erase_rec(nodes_[n].right, start);
  } else {
    // The in-order successor is relinked in n's place (rather than its
    // contents copied) so that node indices held by callers stay valid.
    const Index l = nodes_[n].left;
    const Index r = nodes_[n].right;
    free_node(n);
    if (r == kNil)
      return l;
    if (l == kNil)
      return r;
    Index m = kNil;
    const Index rest = detach_min(r, m);
    nodes_[m].left = l;
    nodes_[m].right = rest;
    return rebalance(m);
  }
  return rebalance(n);
}

void FreeSpace::refresh_path(Index n, u64 start) {
  // A block changed size (or its start moved without passing a neighbour), so
  // only the subtree maxima on its root path can be stale; heights are not.
  if (n == kNil)
    return;
  if (start < nodes_[n].start)
    refresh_path(nodes_[n].left, start);
  else if (start > nodes_[n].start)
    refresh_path(nodes_[n].right, start);
  update(n);
}

FreeSpace::Index FreeSpace::find_containing_index(u64 addr) const {
  Index n = root_;
  while (n != kNil) {
    const Node &x = nodes_[n];
    if (addr < x.start)
      n = x.left;
    else if (addr >= x.end)
      n = x.right;
    else
      return n;
  }
  return kNil;
}

FreeSpace::Index FreeSpace::find_predecessor_index(u64 addr) const {
  Index best = kNil;
  for (Index n = root_; n != kNil;) {
    if (nodes_[n].start <= addr) {
      best = n;
      n = nodes_[n].right;
    } else {
      n = nodes_[n].left;
    }
  }
  return best;
}

FreeSpace::Index FreeSpace::find_successor_index(u64 addr) const {
  Index best = kNil;
  for (Index n = root_; n != kNil;) {
    if (nodes_[n].start > addr) {
      best = n;
      n = nodes_[n].left;
    } else {
      n = nodes_[n].right;
    }
  }
  return best;
}

std::optional<u64> FreeSpace::lowest_fit_rec(Index n, u64 size, u64 align, u64 vstart,
                                             u64 vend) const {
  // In-order walk that prunes subtrees without a block of at least size bytes
  // and blocks that lie wholly outside [vstart, vend). A size-sufficient block
  // that alignment or the window makes unusable costs one backtrack; without
  // such blocks this descends a single root-to-leaf path. Caller guarantees
  // vend - vstart >= size, so vend - size cannot wrap.
  const u64 mask = align - 1;
  while (n != kNil) {
    const Node &x = nodes_[n];
    if (x.subtree_max_size < size)
      return std::nullopt;
    if (x.start > vend - size) {
      n = x.left;
      continue;
    }
    if (x.end > vstart) {
      if (auto found = lowest_fit_rec(x.left, size, align, vstart, vend))
        return found;
      if (x.end - x.start >= size) {
        const u64 lo = std::max(x.start, vstart);
        if (lo + mask < lo)
          return std::nullopt; // no aligned address at or above lo exists
        const u64 a = (lo + mask) & ~mask;
        const u64 hi = std::min(x.end, vend);
        if (a <= hi && hi - a >= size)
          return a;
      }
    }
    n = x.right;
  }
  return std::nullopt;
}

std::optional<u64> FreeSpace::find_lowest(u64 size, u64 align, u64 vstart, u64 vend) const {
  if (size == 0 || !is_power_of_2(align))
    return std::nullopt;
  if (vend <= vstart || vend - vstart < size)
    return std::nullopt;
  return lowest_fit_rec(root_, size, align, vstart, vend);
}

bool FreeSpace::reserve(u64 start, u64 size) {
  const u64 end = start + size;
  if (size == 0 || end < start)
    return false;
  const Index b = find_containing_index(start);
  if (b == kNil || end > nodes_[b].end)
    return false;
  const u64 block_start = nodes_[b].start;
  const u64 block_end = nodes_[b].end;
  if (block_start == start && block_end == end) {
    root_ = erase_rec(root_, start);
  } else if (block_start == start) {
    nodes_[b].start = end;
    refresh_path(root_, end);
  } else if (block_end == end) {
    nodes_[b].end = start;
    refresh_path(root_, block_start);
  } else {
    nodes_[b].end = start;
    refresh_path(root_, block_start);
    const Index right = new_node(end, block_end);
    root_ = insert_rec(root_, right);
  }
  free_bytes_ -= size;
  return true;
}

bool FreeSpace::release(u64 start, u64 size) {
  const u64 end = start + size;
  if (size == 0 || end < start)
    return false;
  const Index prev = find_predecessor_index(start);
  const Index next = find_successor_index(start);
  if (prev != kNil && nodes_[prev].end > start)
    return false;
  if (next != kNil && nodes_[next].start < end)
    return false;
  const bool join_prev = prev != kNil && nodes_[prev].end == start;
  const bool join_next = next != kNil && nodes_[next].start == end;
  if (join_prev && join_next) {
    const u64 next_end = nodes_[next].end;
    root_ = erase_rec(root_, end);
    nodes_[prev].end = next_end;
    refresh_path(root_, nodes_[prev].start);
  } else if (join_prev) {
    nodes_[prev].end = end;
    refresh_path(root_, nodes_[prev].start);
  } else if (join_next) {
    nodes_[next].start = start;
    refresh_path(root_, start);
  } else {
    const Index fresh = new_node(start, end);
    root_ = insert_rec(root_, fresh);
  }
  free_bytes_ += size;
  return true;
}

std::optional<Range> FreeSpace::find_block_containing(u64 addr) const {
  const Index n = find_containing_index(addr);
  if (n == kNil)
    return std::nullopt;
  return Range{nodes_[n].start, nodes_[n].end};
}

std::optional<Range> FreeSpace::find_highest_block_below(u64 end) const {
  if (end == 0)
    return std::nullopt;
  const Index n = find_predecessor_index(end - 1);
  if (n == kNil)
    return std::nullopt;
  return Range{nodes_[n].start, nodes_[n].end};
}

std::optional<Range> FreeSpace::find_lowest_block_from(u64 addr) const {
  Index best = kNil;
  for (Index n = root_; n != kNil;) {
    if (nodes_[n].end > addr) {
      best = n;
      n = nodes_[n].left;
    } else {
      n = nodes_[n].right;
    }
  }
  if (best == kNil)
    return std::nullopt;
  return Range{nodes_[best].start, nodes_[best].end};
}

std::vector<Range> FreeSpace::blocks() const {
  std::vector<Range> out;
  out.reserve(count_);
  for_each([&](const Range &r) { out.push_back(r); });
  return out;
}

void FreeSpace::clear() {
  nodes_.clear();
  free_head_ = kNil;
  root_ = kNil;
  count_ = 0;
  free_bytes_ = 0;
}

void FreeSpace::reset(u64 start, u64 end) {
  clear();
  if (start >= end)
    return;
  root_ = new_node(start, end);
  free_bytes_ = end - start;
}

std::string FreeSpace::check_rec(Index n, int depth, const Node **prev, std::size_t &count,
                                 u64 &bytes) const {
  if (n == kNil)
    return "";
  // An AVL tree over at most 2^32 nodes is under 48 levels deep; anything
  // deeper is a cycle or a broken balance and must not recurse forever.
  if (depth > 64 || n >= nodes_.size())
    return "free tree link out of range or cyclic";
  const Node &x = nodes_[n];
  if (auto err = check_rec(x.left, depth + 1, prev, count, bytes); !err.empty())
    return err;
  if (x.start >= x.end)
    return describe("empty or inverted free block", x.start, x.end);
  if (*prev != nullptr) {
    if ((*prev)->start >= x.start)
      return describe("free blocks out of order at", x.start, x.end);
    if ((*prev)->end > x.start)
      return describe("free block overlaps its predecessor:", x.start, x.end);
    if ((*prev)->end == x.start)
      return describe("adjacent free blocks not merged at", x.start, x.end);
  }
  *prev = &x;
  ++count;
  bytes += x.end - x.start;
  if (auto err = check_rec(x.right, depth + 1, prev, count, bytes); !err.empty())
    return err;
  const std::int32_t hl = height_of(x.left);
  const std::int32_t hr = height_of(x.right);
  if (x.height != 1 + std::max(hl, hr))
    return describe("wrong AVL height at", x.start, x.end);
  if (hl - hr > 1 || hr - hl > 1)
    return describe("AVL balance violated at", x.start, x.end);
  if (x.subtree_max_size != std::max({x.end - x.start, max_of(x.left), max_of(x.right)}))
    return describe("wrong subtree_max_size at", x.start, x.end);
  return "";
}

std::string FreeSpace::check() const {
  const Node *prev = nullptr;
  std::size_t count = 0;
  u64 bytes = 0;
  if (auto err = check_rec(root_, 0, &prev, count, bytes); !err.empty())
    return err;
  if (count != count_)
    return "free block count does not match the tree";
  if (bytes != free_bytes_)
    return "free byte total does not match the tree";
  std::size_t pooled = 0;
  for (Index n = free_head_; n != kNil; n = nodes_[n].left) {
    if (n >= nodes_.size() || ++pooled > nodes_.size())
      return "node free list has a cycle";
  }
  if (pooled + count_ != nodes_.size())
    return "node pool leaks or double-counts nodes";
  return "";
}

void FreeSpace::hash_into(StateHasher &h) const {
  h.tag(kFreeSpaceTag);
  h.add(static_cast<u64>(count_));
  for_each([&](const Range &r) {
    h.add(r.start);
    h.add(r.end);
  });
}

} // namespace vmcheck
