#include "harness/engine_target.h"

#include <exception>

namespace vmcheck {

bool op_waits_for_own_shootdown(const std::string &op) {
  return op != "cpu" && op != "tlb_deliver" && op != "check";
}

OpOutcome EngineTarget::run(const OpDef &op, const std::vector<Value> &args) {
  OpOutcome out;
  run_into(op, args, out);
  return out;
}

void EngineTarget::run_into(const OpDef &op, const std::vector<Value> &args, OpOutcome &out) {
  const std::size_t mark = kernel_.machine().diag().size();
  ExecContext ctx{kernel_, lenient_handles_};
  try {
    out.result = op.handler(ctx, args);
  } catch (const KernelBug &bug) {
    out.bug = bug.what();
  } catch (const std::exception &e) {
    // Anything else escaping the engine is a harness-visible bug too: it
    // must never take the host process down.
    out.bug = std::string("engine exception: ") + e.what();
  }
  out.diags = kernel_.machine().diag().since(mark);
}

std::string EngineTarget::check() const {
  try {
    return kernel_.check();
  } catch (const std::exception &e) {
    return std::string("check() threw: ") + e.what();
  }
}

u64 EngineTarget::state_hash() const {
  try {
    return kernel_.state_hash();
  } catch (const std::exception &) {
    return 0;
  }
}

} // namespace vmcheck
