#include "harness/ops.h"

#include "harness/explore.h"

namespace vmcheck {

OpResult OpResult::ok(Value v) {
  OpResult r;
  r.value = std::move(v);
  return r;
}

OpResult OpResult::bad_arg(std::string message) {
  OpResult r;
  r.arg_error = ArgError{std::move(message)};
  return r;
}

OpResult OpResult::diverged(Value v, std::string why) {
  OpResult r;
  r.value = std::move(v);
  r.divergence = std::move(why);
  return r;
}

void OpTable::add(OpDef def) {
  std::string name = def.name;
  ops_.insert_or_assign(std::move(name), std::move(def));
}

void OpTable::add(std::string name, std::string usage, OpFunction fn) {
  OpDef def{name, std::move(usage), {}};
  // The handler names itself in argument errors, so it gets its own OpDef.
  def.handler = [fn, self = OpDef{name, def.usage, {}}](ExecContext &ctx,
                                                        const std::vector<Value> &argv) {
    return fn(self, ctx, argv);
  };
  add(std::move(def));
}

const OpDef *OpTable::find(std::string_view name) const {
  const auto it = ops_.find(name);
  return it == ops_.end() ? nullptr : &it->second;
}

void OpTable::add_keyword(std::string_view word) {
  keywords_.emplace(word);
}

bool OpTable::is_keyword(std::string_view word) const {
  return keywords_.count(word) != 0;
}

const OpTable &default_op_table() {
  static const OpTable table = [] {
    OpTable t;
    register_machine_ops(t);
    register_vmalloc_ops(t);
    register_percpu_ops(t);
    register_usermm_ops(t);
    register_explore_ops(t);
    return t;
  }();
  return table;
}

} // namespace vmcheck
