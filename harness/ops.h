// The op vocabulary: every name a trace may call, with its usage and the
// handler that runs it on the engine. Layers register their ops through
// explicit functions (register_machine_ops, ...), never static initialisers:
// a static library drops objects nothing references.
#pragma once

#include "engine/kernel.h"
#include "harness/string_hash.h"
#include "harness/value.h"

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vmcheck {

// What an op handler may touch: the engine of one run.
struct ExecContext {
  Kernel &kernel;
  // Fuzz-decoded traces (config on_null=skip): a vm_struct handle whose area
  // another op already freed is skipped instead of being the caller's BUG.
  bool lenient_handles = false;

  Machine &machine() { return kernel.machine(); }
};

// A bad argument in the trace (wrong kind, unknown mode word, wrong count):
// the trace is malformed, the kernel never saw the call.
struct ArgError {
  std::string message; // "touch: argument 2: expected read|write|exec, found 5"
};

struct OpResult {
  Value value;
  std::optional<ArgError> arg_error;
  // Non-empty: the op observed a failure (an unexpected fault, an invariant
  // violation) that is a divergence unless the statement's `->` expects
  // exactly `value`.
  std::string divergence;

  static OpResult ok(Value v = Value::none());
  static OpResult bad_arg(std::string message);
  static OpResult diverged(Value v, std::string why);
};

using OpHandler = std::function<OpResult(ExecContext &, const std::vector<Value> &)>;

struct OpDef {
  std::string name;
  std::string usage; // how a call is written: "touch(addr, read|write|exec)"
  OpHandler handler;
};

// An op written as a plain function that is told its own OpDef, so that its
// argument errors can name it and quote its usage.
using OpFunction = OpResult (*)(const OpDef &, ExecContext &, const std::vector<Value> &);

// Invariant: names are unique; iteration is by name (deterministic).
class OpTable {
public:
  // Adds an op; a second op with the same name replaces the first.
  void add(OpDef def);
  // Adds an op implemented by `fn`.
  void add(std::string name, std::string usage, OpFunction fn);
  // The op called `name`, or nullptr.
  const OpDef *find(std::string_view name) const;
  // Declares a bare word that evaluates to itself (a Symbol): modes such as
  // read or alloc_page, fault names such as guard_page.
  void add_keyword(std::string_view word);
  bool is_keyword(std::string_view word) const;

private:
  StringMap<OpDef> ops_;
  StringSet keywords_;
};

// cpu, irq_enter, irq_exit, run_deferred, touch, expect_fault, fail_nth,
// alloc_page(s), __free_pages, get_page, put_page, check (TRACE.md).
void register_machine_ops(OpTable &table);

// The vmalloc API of seeds 000/001/003, plus purge() and vmallocinfo().
void register_vmalloc_ops(OpTable &table);

// User address spaces and the mm/memory.c functions (seed 004), plus
// remap_vmalloc_range. Registered after the machine ops: its 3-argument
// touch/expect_fault hand the 2-argument forms to the machine's handlers.
void register_usermm_ops(OpTable &table);

// percpu-vm (seed 002) and the small percpu allocator.
void register_percpu_ops(OpTable &table);

// Every layer's ops, built once.
const OpTable &default_op_table();

} // namespace vmcheck
