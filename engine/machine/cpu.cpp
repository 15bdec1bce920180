#include "machine/cpu.h"

#include "machine/diag.h"

namespace vmcheck {

bool DeferredWork::queue(std::string kind, std::uint64_t arg, std::function<void()> fn) {
  if (is_pending(kind, arg))
    return false;
  queue_.push_back({std::move(kind), arg, std::move(fn)});
  return true;
}

bool DeferredWork::run_one() {
  if (queue_.empty())
    return false;
  // Pop first: the item may queue itself again (a re-armed work_struct).
  WorkItem item = std::move(queue_.front());
  queue_.pop_front();
  item.fn();
  return true;
}

std::size_t DeferredWork::run_all(std::size_t limit) {
  std::size_t n = 0;
  while (run_one()) {
    if (++n >= limit)
      throw KernelBug("run_deferred", "deferred work keeps re-queueing itself");
  }
  return n;
}

bool DeferredWork::is_pending(const std::string &kind, std::uint64_t arg) const {
  for (const auto &w : queue_)
    if (w.kind == kind && w.arg == arg)
      return true;
  return false;
}

void DeferredWork::hash_into(StateHasher &h) const {
  h.tag(0xdefe);
  h.add(queue_.size());
  for (const auto &w : queue_) {
    h.add(w.kind);
    h.add(w.arg);
  }
}

} // namespace vmcheck
