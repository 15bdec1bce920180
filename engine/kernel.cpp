#include "kernel.h"

namespace vmcheck {

Kernel::Kernel(const MachineConfig &cfg) : machine_(cfg) {}

std::string Kernel::check() const { return machine_.check(); }

u64 Kernel::state_hash() const {
  StateHasher h;
  machine_.hash_into(h);
  return h.value();
}

} // namespace vmcheck
