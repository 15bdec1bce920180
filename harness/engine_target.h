// The engine as a target of the executor: the one place where an op runs on
// the C++ kernel. A reference-spec target with the same shape runs beside it
// for differential replay.
#pragma once

#include "engine/kernel.h"
#include "harness/ops.h"

#include <optional>
#include <string>
#include <vector>

namespace vmcheck {

// What one op did on one target.
struct OpOutcome {
  OpResult result;
  std::vector<Diagnostic> diags;  // recorded by the kernel during the op
  std::optional<std::string> bug; // a KernelBug (or an engine exception) stopped the op
};

// Whether `op` is something the current CPU does (and so, under
// shootdown=async, first waits for the TLB flush of a purge it started):
// everything but switching CPUs, delivering a flush and checking invariants.
bool op_waits_for_own_shootdown(const std::string &op);

class EngineTarget {
public:
  // Precondition: cfg.validate() is empty.
  explicit EngineTarget(const MachineConfig &cfg) : kernel_(cfg) {}

  // Runs one op on the engine; BUG_ON and exceptions come back as `bug`.
  OpOutcome run(const OpDef &op, const std::vector<Value> &args);
  // run() into an outcome the caller holds (freshly constructed): the
  // executor's per-op form, without moving a whole outcome out.
  void run_into(const OpDef &op, const std::vector<Value> &args, OpOutcome &out);
  // Every invariant; the first violation or empty (exceptions included).
  std::string check() const;
  u64 state_hash() const;
  Kernel &kernel() { return kernel_; }
  void set_lenient_handles(bool on) { lenient_handles_ = on; }

private:
  Kernel kernel_;
  bool lenient_handles_ = false;
};

} // namespace vmcheck
