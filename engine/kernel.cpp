#include "kernel.h"

namespace vmcheck {

Kernel::Kernel(const MachineConfig &cfg) : machine_(cfg), vmalloc_(machine_) {}

std::string Kernel::check() const {
  if (auto e = machine_.check(); !e.empty())
    return e;
  if (auto e = vmalloc_.check(); !e.empty())
    return "vmalloc: " + e;
  return {};
}

u64 Kernel::state_hash() const {
  StateHasher h;
  machine_.hash_into(h);
  vmalloc_.hash_into(h);
  return h.value();
}

} // namespace vmcheck
