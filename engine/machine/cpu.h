// CPUs, execution context and deferred work. Nothing here runs on a host
// thread: "concurrency" is explicit events (switching the current CPU,
// entering interrupt context, running a queued work item), so every run is a
// sequence the harness controls and replays.
#pragma once

#include "machine/hash.h"

#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <vector>

namespace vmcheck {

struct CpuState {
  unsigned node = 0;      // NUMA node the CPU belongs to
  unsigned irq_depth = 0; // > 0: in interrupt context
  std::uint64_t root = 0; // current address space (CR3); 0 = kernel only
};

// A queued work item. `kind` and `arg` identify it canonically (for the
// state hash and for printing); `fn` does the work.
struct WorkItem {
  std::string kind;
  std::uint64_t arg = 0;
  std::function<void()> fn;
};

// The deferred-work queue (schedule_work / queue_work). FIFO. A pending item
// with the same kind and arg is not queued twice (a work_struct is queued at
// most once), matching the kernel's "already pending" rule.
class DeferredWork {
public:
  // Returns false when an identical item is already pending.
  bool queue(std::string kind, std::uint64_t arg, std::function<void()> fn);
  // Runs one item (the oldest); false when the queue was empty.
  bool run_one();
  // Runs until empty, including items queued by the items run. Returns the
  // number run. Throws KernelBug after `limit` items (a work loop).
  std::size_t run_all(std::size_t limit = 1u << 20);
  std::size_t pending() const { return queue_.size(); }
  bool is_pending(const std::string &kind, std::uint64_t arg) const;
  const std::deque<WorkItem> &items() const { return queue_; }
  void hash_into(StateHasher &h) const;

private:
  std::deque<WorkItem> queue_;
};

} // namespace vmcheck
