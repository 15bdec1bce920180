// The reference spec as the executor's second target: runs each op on
// spec::VmallocSpec and compares its prediction with what the engine did.
// Where the kernel leaves freedom (vm_map_ram placement, PFNs, bytes of
// non-zeroed pages) the spec states the invariant the engine's result must
// meet instead of a value.
#pragma once

#include "engine/kernel.h"
#include "harness/engine_target.h"
#include "spec/user.h"
#include "spec/vmalloc_spec.h"

#include <array>

#include <memory>
#include <string>
#include <vector>

namespace vmcheck {

struct AdapterState;

class SpecTarget {
public:
  // Precondition: cfg.validate() is empty.
  explicit SpecTarget(const MachineConfig &cfg);
  ~SpecTarget();

  // Whether the spec models `op` (ops it does not model make the run
  // engine-only from then on: the two states could no longer be compared).
  static bool models(const std::string &op);
  // Whether `op` is a user-space op (memory.c, mm_create, mmap, munmap,
  // ...; touch, expect_fault and probe in their user form, with an mm),
  // which follow() runs: the spec models its result and follows its
  // effect on the pages both sides share.
  static bool follows(const std::string &op, const std::vector<Value> &args);

  // Runs a followed op. Its result is judged by the spec's model of user
  // VMAs (spec::UserSpace, harness/spec_user.cpp): exactly where the VMAs
  // decide it, as a set of outcomes where the page tables do; afterwards
  // the VMAs of both sides must agree. remap_vmalloc_range(_partial) has
  // its vmalloc side predicted (an -EINVAL there changes nothing). Then the
  // op hands the spec its effect on the page allocator, the page tables
  // and fault injection (spec::VmallocSpec::follow_user_op), and which of
  // the spec's frames user space now maps (spec::VmallocSpec::
  // set_user_mapped). Returns the first disagreement, or empty.
  std::string follow(const std::string &op, const std::vector<Value> &args, const OpOutcome &engine,
                     const Kernel &k);

  // Runs `op` on the spec and compares with the engine's outcome; returns a
  // description of the first disagreement, or empty.
  std::string run_and_compare(const std::string &op, const std::vector<Value> &args,
                              const OpOutcome &engine);
  // Compares the spec's state with the engine's: areas, lazy pages, free
  // pages per node and zone, page-table pages. First difference or empty.
  std::string compare_state(const Kernel &k) const;
  // Both states side by side, for reports.
  std::string state_diff(const Kernel &k) const;

  spec::VmallocSpec &spec() { return spec_; }
  // True once an op left the engine in a state the spec cannot follow.
  bool desynced() const { return desynced_; }

private:
  // The user-space half of follow(): the result of `op` against
  // spec::UserSpace's prediction (spec_user.cpp). `fail_now`: the engine's
  // fault-injection counters after the op.
  std::string predict_user(const std::string &op, const std::vector<Value> &args,
                           const OpOutcome &engine, const Kernel &k,
                           const std::array<u64, spec::kNumFailKinds> &fail_now);
  // remap_vmalloc_range(_partial): the vmalloc side's verdict (an -EINVAL
  // there changes nothing), then the user side's pages.
  std::string remap_vmalloc(const std::string &op, const std::vector<Value> &args, const Value &got,
                            const Kernel &k, bool oom_plausible);
  // The mms, VMAs and files of both sides; the first difference or empty.
  std::string compare_user_state(const Kernel &k) const;

  spec::VmallocSpec spec_;
  spec::UserSpace user_; // draws on spec_: declared after it
  std::unique_ptr<AdapterState> state_;
  bool desynced_ = false;
};

} // namespace vmcheck
