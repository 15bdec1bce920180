// Two plain containers of the reference spec, kept apart so that
// vmalloc_spec.h reads as the model: the frames it follows, by id, and its
// kernel PTEs, by virtual address. Both are vectors: a vmalloc of thousands
// of pages adds thousands of frames and PTEs, and a tree or hash node per
// entry made the spec cost more than the engine it checks.
#pragma once

#include "vmcheck/abi.h"

#include <algorithm>
#include <cstddef>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace vmcheck::spec {

// Items by id. Ids are handed out 1, 2, 3, ... and never reused (0 means
// "none"), so an id is its slot; a removed item leaves an empty slot. Slots
// live in fixed chunks, so adding never moves an item (a vmalloc of
// thousands of pages adds thousands of frames).
template <typename T> class IdTable {
public:
  u64 add(T item) {
    return add_n(1, [&item] { return std::move(item); });
  }
  // Adds n items, each make(), under consecutive ids; returns the first.
  template <typename Make> u64 add_n(u64 n, Make make) {
    const u64 first = next_ + 1;
    for (u64 left = n; left != 0;) {
      if (next_ % kChunk == 0)
        chunks_.emplace_back().reserve(kChunk);
      // As many as fit in the last chunk.
      const u64 k = std::min(left, kChunk - next_ % kChunk);
      for (u64 i = 0; i < k; ++i)
        chunks_.back().emplace_back(make());
      next_ += k;
      left -= k;
    }
    live_ += n;
    return first;
  }
  T *find(u64 id) {
    std::optional<T> *s = slot(id);
    return s != nullptr && *s ? &**s : nullptr;
  }
  const T *find(u64 id) const { return const_cast<IdTable *>(this)->find(id); }
  bool contains(u64 id) const { return find(id) != nullptr; }
  T &at(u64 id) {
    if (T *t = find(id))
      return *t;
    throw std::out_of_range("IdTable::at: no item " + std::to_string(id));
  }
  const T &at(u64 id) const { return const_cast<IdTable *>(this)->at(id); }
  void erase(u64 id) {
    if (find(id) != nullptr) {
      slot(id)->reset();
      --live_;
    }
  }
  std::size_t size() const { return live_; }
  // fn(id, item) for every item, in id order.
  template <typename Fn> void for_each(Fn fn) const {
    for (u64 id = 1; id <= next_; ++id)
      if (const T *t = find(id))
        fn(id, *t);
  }

private:
  static constexpr u64 kChunk = 256;
  std::optional<T> *slot(u64 id) {
    return id != 0 && id <= next_ ? &chunks_[(id - 1) / kChunk][(id - 1) % kChunk] : nullptr;
  }
  // Each chunk holds up to kChunk slots and is reserved to that on creation.
  std::vector<std::vector<std::optional<T>>> chunks_;
  u64 next_ = 0; // ids handed out
  std::size_t live_ = 0;
};

// Page VA -> frame id, sorted by VA.
class PteMap {
public:
  using Entry = std::pair<u64, u64>;

  const u64 *find(u64 va) const {
    const auto it = lower(va);
    return it != entries_.end() && it->first == va ? &it->second : nullptr;
  }
  bool contains(u64 va) const { return find(va) != nullptr; }
  // The VA of the first PTE at or above va.
  std::optional<u64> first_at_or_above(u64 va) const {
    const auto it = lower(va);
    return it == entries_.end() ? std::nullopt : std::optional<u64>(it->first);
  }
  // Maps frames[i] at start + i pages; none of those pages may be mapped.
  void insert_run(u64 start, std::span<const u64> frames) {
    const auto run = entries_.insert(lower(start), frames.size(), Entry{});
    for (std::size_t i = 0; i < frames.size(); ++i)
      run[static_cast<std::ptrdiff_t>(i)] = {start + i * PAGE_SIZE, frames[i]};
  }
  // Unmaps every page in [start, end).
  void erase(u64 start, u64 end) { entries_.erase(lower(start), lower(end)); }
  bool empty() const { return entries_.empty(); }
  const std::vector<Entry> &entries() const { return entries_; }

private:
  std::vector<Entry>::const_iterator lower(u64 va) const {
    return std::lower_bound(entries_.begin(), entries_.end(), va,
                            [](const Entry &e, u64 v) { return e.first < v; });
  }
  std::vector<Entry> entries_;
};

} // namespace vmcheck::spec
