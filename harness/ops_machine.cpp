// Machine ops (TRACE.md "Machine ops"): the events a trace uses to steer the
// emulated machine itself rather than the kernel API.
#include "harness/op_args.h"
#include "harness/ops.h"

namespace vmcheck {

namespace {

constexpr std::string_view kAccessWords[] = {"read", "write", "exec"};
constexpr std::string_view kFailPointWords[] = {"alloc_page", "page_table", "vmap_area"};

// The words a faulting access yields; `-> guard_page` expects one.
const char *fault_word(Fault f) {
  switch (f) {
  case Fault::None:
    return "none";
  case Fault::NotPresent:
    return "not_present";
  case Fault::Protection:
    return "protection";
  case Fault::GuardPage:
    return "guard_page";
  case Fault::NonCanonical:
    return "non_canonical";
  case Fault::StaleTlb:
    return "stale_tlb";
  }
  return "unknown_fault";
}

constexpr const char *kFaultWords[] = {"not_present", "protection", "guard_page", "non_canonical",
                                       "stale_tlb"};

Access access_from_word(const std::string &w) {
  return w == "read" ? Access::Read : w == "write" ? Access::Write : Access::Exec;
}

// Bad input to a machine op (like a kernel WARN): a diagnostic and -EINVAL,
// nothing changed.
OpResult refuse(ExecContext &ctx, const std::string &op, const std::string &reason) {
  ctx.machine().diag().warn(op, reason);
  return OpResult::ok(Value::error(-EINVAL));
}

OpResult op_cpu(const OpDef &def, ExecContext &ctx, const std::vector<Value> &argv) {
  OpArgs args(def, argv);
  std::optional<std::uint64_t> n;
  if (!args.count(1) || !(n = args.integer(0)))
    return args.error();
  if (*n >= ctx.machine().num_online_cpus() ||
      !ctx.machine().set_current_cpu(static_cast<unsigned>(*n)))
    return refuse(ctx, def.name,
                  "no CPU " + std::to_string(*n) + " (" +
                      std::to_string(ctx.machine().num_online_cpus()) + " online)");
  return OpResult::ok();
}

OpResult op_irq_enter(const OpDef &def, ExecContext &ctx, const std::vector<Value> &argv) {
  OpArgs args(def, argv);
  if (!args.count(0))
    return args.error();
  ctx.machine().irq_enter();
  return OpResult::ok();
}

OpResult op_irq_exit(const OpDef &def, ExecContext &ctx, const std::vector<Value> &argv) {
  OpArgs args(def, argv);
  if (!args.count(0))
    return args.error();
  if (!ctx.machine().irq_exit())
    return refuse(ctx, def.name,
                  "CPU " + std::to_string(ctx.machine().current_cpu()) +
                      " is not in interrupt context");
  return OpResult::ok();
}

OpResult op_run_deferred(const OpDef &def, ExecContext &ctx, const std::vector<Value> &argv) {
  OpArgs args(def, argv);
  if (!args.count(0))
    return args.error();
  return OpResult::ok(Value::integer(ctx.machine().deferred().run_all()));
}

OpResult op_touch(const OpDef &def, ExecContext &ctx, const std::vector<Value> &argv) {
  OpArgs args(def, argv);
  std::optional<std::uint64_t> addr;
  std::optional<std::string> mode;
  if (!args.count(2) || !(addr = args.integer(0)) || !(mode = args.word(1, kAccessWords)))
    return args.error();
  const Translation t = ctx.machine().touch(*addr, access_from_word(*mode));
  if (t.ok())
    return OpResult::ok();
  return OpResult::diverged(Value::symbol(fault_word(t.fault)),
                            *mode + " of " + hex(*addr) + " faulted: " + fault_word(t.fault));
}

OpResult op_expect_fault(const OpDef &def, ExecContext &ctx, const std::vector<Value> &argv) {
  OpArgs args(def, argv);
  std::optional<std::uint64_t> addr;
  std::optional<std::string> mode;
  if (!args.count(2) || !(addr = args.integer(0)) || !(mode = args.word(1, kAccessWords)))
    return args.error();
  const Translation t = ctx.machine().touch(*addr, access_from_word(*mode));
  if (!t.ok())
    return OpResult::ok(Value::symbol(fault_word(t.fault)));
  return OpResult::diverged(Value::none(),
                            *mode + " of " + hex(*addr) + " did not fault (pa " + hex(t.pa) + ")");
}

// probe: one access whose fault is a result, not a divergence. Fuzz-decoded
// traces use it to fill TLBs (so stale aliases can be caught) without
// knowing in advance what is mapped.
OpResult op_probe(const OpDef &def, ExecContext &ctx, const std::vector<Value> &argv) {
  OpArgs args(def, argv);
  std::optional<std::uint64_t> addr;
  std::optional<std::string> mode;
  if (!args.count(2) || !(addr = args.integer(0)) || !(mode = args.word(1, kAccessWords)))
    return args.error();
  const Translation t = ctx.machine().touch(*addr, access_from_word(*mode));
  return OpResult::ok(Value::symbol(t.ok() ? "ok" : fault_word(t.fault)));
}

OpResult op_fail_nth(const OpDef &def, ExecContext &ctx, const std::vector<Value> &argv) {
  OpArgs args(def, argv);
  std::optional<std::string> kind;
  std::optional<std::uint64_t> n;
  if (!args.count(2) || !(kind = args.word(0, kFailPointWords)) || !(n = args.integer(1)))
    return args.error();
  ctx.machine().faults().fail_nth(*fail_point_from_name(*kind), *n);
  return OpResult::ok();
}

OpResult page_or_null(std::optional<Pfn> pfn) {
  return OpResult::ok(pfn ? Value::page(*pfn) : Value::null());
}

OpResult op_alloc_page(const OpDef &def, ExecContext &ctx, const std::vector<Value> &argv) {
  OpArgs args(def, argv);
  std::optional<std::uint64_t> gfp;
  if (!args.count(1) || !(gfp = args.integer_in(0, 0, UINT32_MAX)))
    return args.error();
  return page_or_null(ctx.machine().alloc_pages(static_cast<Gfp>(*gfp), 0));
}

OpResult op_alloc_pages(const OpDef &def, ExecContext &ctx, const std::vector<Value> &argv) {
  OpArgs args(def, argv);
  std::optional<std::uint64_t> gfp;
  std::optional<std::uint64_t> order;
  if (!args.count(2) || !(gfp = args.integer_in(0, 0, UINT32_MAX)) ||
      !(order = args.integer_in(1, 0, 63)))
    return args.error();
  return page_or_null(
      ctx.machine().alloc_pages(static_cast<Gfp>(*gfp), static_cast<unsigned>(*order)));
}

OpResult op_free_pages(const OpDef &def, ExecContext &ctx, const std::vector<Value> &argv) {
  OpArgs args(def, argv);
  std::optional<Pfn> page;
  std::optional<std::uint64_t> order;
  if (!args.count(2) || !(page = args.page(0)) || !(order = args.integer_in(1, 0, 63)))
    return args.error();
  ctx.machine().pages().free_pages(*page, static_cast<unsigned>(*order));
  return OpResult::ok();
}

OpResult op_get_page(const OpDef &def, ExecContext &ctx, const std::vector<Value> &argv) {
  OpArgs args(def, argv);
  std::optional<Pfn> page;
  if (!args.count(1) || !(page = args.page(0)))
    return args.error();
  ctx.machine().pages().get_page(*page);
  return OpResult::ok();
}

OpResult op_put_page(const OpDef &def, ExecContext &ctx, const std::vector<Value> &argv) {
  OpArgs args(def, argv);
  std::optional<Pfn> page;
  if (!args.count(1) || !(page = args.page(0)))
    return args.error();
  ctx.machine().pages().put_page(*page);
  return OpResult::ok();
}

OpResult op_check(const OpDef &def, ExecContext &ctx, const std::vector<Value> &argv) {
  OpArgs args(def, argv);
  if (!args.count(0))
    return args.error();
  if (const std::string violation = ctx.kernel.check(); !violation.empty())
    return OpResult::diverged(Value::none(), "invariant violated: " + violation);
  return OpResult::ok();
}

} // namespace

void register_machine_ops(OpTable &table) {
  table.add("cpu", "cpu(n)", op_cpu);
  table.add("irq_enter", "irq_enter()", op_irq_enter);
  table.add("irq_exit", "irq_exit()", op_irq_exit);
  table.add("run_deferred", "run_deferred()", op_run_deferred);
  table.add("touch", "touch(addr, read|write|exec)", op_touch);
  table.add("expect_fault", "expect_fault(addr, read|write|exec)", op_expect_fault);
  table.add("probe", "probe(addr, read|write|exec)", op_probe);
  table.add("fail_nth", "fail_nth(alloc_page|page_table|vmap_area, n)", op_fail_nth);
  table.add("alloc_page", "p = alloc_page(gfp)", op_alloc_page);
  table.add("alloc_pages", "p = alloc_pages(gfp, order)", op_alloc_pages);
  table.add("__free_pages", "__free_pages(p, order)", op_free_pages);
  table.add("get_page", "get_page(p)", op_get_page);
  table.add("put_page", "put_page(p)", op_put_page);
  table.add("check", "check()", op_check);
  for (std::string_view w : kAccessWords)
    table.add_keyword(w);
  for (std::string_view w : kFailPointWords)
    table.add_keyword(w);
  for (const char *w : kFaultWords)
    table.add_keyword(w);
  table.add_keyword("ok");
}

} // namespace vmcheck
