#include "kernel.h"

namespace vmcheck {

Kernel::Kernel(const MachineConfig &cfg)
    : machine_(cfg), vmalloc_(machine_), usermm_(machine_, vmalloc_), percpu_(machine_, vmalloc_) {}

std::string Kernel::check() const {
  if (auto e = machine_.check(); !e.empty())
    return e;
  if (auto e = vmalloc_.check(); !e.empty())
    return "vmalloc: " + e;
  if (auto e = usermm_.check(); !e.empty())
    return "usermm: " + e;
  if (auto e = percpu_.check(); !e.empty())
    return "percpu: " + e;
  return {};
}

u64 Kernel::state_hash() const {
  StateHasher h;
  machine_.hash_into(h);
  vmalloc_.hash_into(h);
  usermm_.hash_into(h);
  percpu_.hash_into(h);
  return h.value();
}

} // namespace vmcheck
