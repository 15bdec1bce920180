// The whole emulated kernel the harness drives: the machine plus the
// subsystems built on it. One object per run; nothing global.
#pragma once

#include "machine/machine.h"
#include "percpu/percpu.h"
#include "usermm/usermm.h"
#include "vmalloc/vmalloc.h"

#include <string>

namespace vmcheck {

class Kernel {
public:
  // Precondition: cfg.validate() is empty.
  explicit Kernel(const MachineConfig &cfg);
  Kernel(const Kernel &) = delete;
  Kernel &operator=(const Kernel &) = delete;

  Machine &machine() { return machine_; }
  const Machine &machine() const { return machine_; }
  Vmalloc &vmalloc() { return vmalloc_; }
  const Vmalloc &vmalloc() const { return vmalloc_; }
  UserMm &usermm() { return usermm_; }
  const UserMm &usermm() const { return usermm_; }
  Percpu &percpu() { return percpu_; }
  const Percpu &percpu() const { return percpu_; }

  // Every invariant of every layer; the first violation, or empty.
  std::string check() const;
  // Canonical hash of everything (diagnostics excluded).
  u64 state_hash() const;

private:
  Machine machine_;
  Vmalloc vmalloc_;
  UserMm usermm_;
  Percpu percpu_;
};

} // namespace vmcheck
