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
// "none"), so an id is its slot; a removed item leaves an empty slot.
template <typename T> class IdTable {
public:
  u64 add(T item) {
    slots_.emplace_back(std::move(item));
    ++live_;
    return slots_.size();
  }
  T *find(u64 id) {
    return id != 0 && id <= slots_.size() && slots_[id - 1] ? &*slots_[id - 1] : nullptr;
  }
  const T *find(u64 id) const {
    return id != 0 && id <= slots_.size() && slots_[id - 1] ? &*slots_[id - 1] : nullptr;
  }
  bool contains(u64 id) const { return find(id) != nullptr; }
  T &at(u64 id) {
    if (T *t = find(id))
      return *t;
    throw std::out_of_range("IdTable::at: no item " + std::to_string(id));
  }
  const T &at(u64 id) const {
    if (const T *t = find(id))
      return *t;
    throw std::out_of_range("IdTable::at: no item " + std::to_string(id));
  }
  void erase(u64 id) {
    if (find(id) != nullptr) {
      slots_[id - 1].reset();
      --live_;
    }
  }
  std::size_t size() const { return live_; }
  // fn(id, item) for every item, in id order.
  template <typename Fn> void for_each(Fn fn) const {
    for (std::size_t i = 0; i < slots_.size(); ++i)
      if (slots_[i])
        fn(u64{i + 1}, *slots_[i]);
  }

private:
  std::vector<std::optional<T>> slots_;
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
    std::vector<Entry> run;
    run.reserve(frames.size());
    for (std::size_t i = 0; i < frames.size(); ++i)
      run.emplace_back(start + i * PAGE_SIZE, frames[i]);
    entries_.insert(lower(start), run.begin(), run.end());
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
