// The explorer's own op: one deferred-work step. run_deferred() drains the
// whole queue; interleaving other moves between the items of different CPUs
// needs the queue run one item at a time.
#include "harness/explore.h"
#include "harness/op_args.h"

namespace vmcheck {

namespace {

OpResult op_run_deferred_one(const OpDef &def, ExecContext &ctx, const std::vector<Value> &argv) {
  OpArgs args(def, argv);
  if (!args.count(0))
    return args.error();
  return OpResult::ok(Value::integer(ctx.machine().deferred().run_one() ? 1 : 0));
}

} // namespace

void register_explore_ops(OpTable &table) {
  OpDef def{"run_deferred_one", "run_deferred_one()", {}};
  // The handler names itself in argument errors, so it keeps its own OpDef.
  def.handler = [self = OpDef{def.name, def.usage, {}}](ExecContext &ctx,
                                                        const std::vector<Value> &argv) {
    return op_run_deferred_one(self, ctx, argv);
  };
  table.add(std::move(def));
}

} // namespace vmcheck
