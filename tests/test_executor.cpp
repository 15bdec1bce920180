// The executor: bindings, `->` checks, exit statuses, malformed arguments,
// kernel BUG reporting and determinism of the final state hash.
#include "harness/codec.h"
#include "harness/executor.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

namespace vmcheck {
namespace {

const std::string kHeader = "# vmcheck trace v1\n";

ReplayResult run(const std::string &body, const ReplayOptions &options = {}) {
  return replay_text(kHeader + body, options);
}

Value vm_struct(std::uint64_t addr, std::uint64_t size) {
  return Value::structure("vm_struct", {{"addr", Value::integer(addr)},
                                        {"size", Value::integer(size)},
                                        {"flags", Value::integer(VM_ALLOC)},
                                        {"nr_pages", Value::integer(size / PAGE_SIZE - 1)}});
}

// The machine ops plus a few test-only ops with fixed behaviour, so that the
// executor's handling of structs, arrays, BUGs and findings is tested without
// depending on any particular kernel layer.
const OpTable &test_ops() {
  static const OpTable table = [] {
    OpTable t = default_op_table();
    t.add({"bug", "bug()", [](ExecContext &, const std::vector<Value> &) -> OpResult {
             throw KernelBug("test_bug", "always");
           }});
    t.add({"area", "area()", [](ExecContext &, const std::vector<Value> &) {
             return OpResult::ok(vm_struct(0xffffc90000000000ULL, 0x3000));
           }});
    t.add({"areas", "areas()", [](ExecContext &, const std::vector<Value> &) {
             return OpResult::ok(Value::array({vm_struct(0xffffc90000000000ULL, 0x2000),
                                               vm_struct(0xffffc90000004000ULL, 0x2000)}));
           }});
    t.add({"echo", "echo(x)", [](ExecContext &, const std::vector<Value> &args) {
             return OpResult::ok(args.empty() ? Value::none() : args[0]);
           }});
    t.add({"finding", "finding()", [](ExecContext &ctx, const std::vector<Value> &) {
             ctx.machine().diag().finding("test_finding", "something is off", 0x1234);
             return OpResult::ok();
           }});
    return t;
  }();
  return table;
}

ReplayResult run_test_ops(const std::string &body) {
  ReplayOptions options;
  options.ops = &test_ops();
  return run(body, options);
}

TEST(Executor, empty_trace_replays_ok_with_zero_ops) {
  const ReplayResult r = run("");
  EXPECT_EQ(r.status, ReplayStatus::Ok);
  EXPECT_EQ(r.exit_code(), 0);
  EXPECT_EQ(r.ops, 0u);
  EXPECT_EQ(r.report("t.trace"), "t.trace: ok (0 ops)");
}

TEST(Executor, bound_page_flows_through_get_put_and_free) {
  const ReplayResult r = run("p = alloc_page(GFP_KERNEL)\n"
                             "get_page(p)\n"
                             "put_page(p)\n"
                             "__free_pages(p, 0)\n"
                             "q = alloc_pages(GFP_KERNEL|__GFP_ZERO, 2)\n"
                             "__free_pages(q, 2)\n");
  EXPECT_EQ(r.status, ReplayStatus::Ok) << r.report("t");
  EXPECT_EQ(r.ops, 6u);
}

TEST(Executor, fail_nth_makes_the_next_page_allocation_return_null) {
  const ReplayResult r = run("fail_nth(alloc_page, 1)\n"
                             "p = alloc_page(GFP_KERNEL) -> NULL\n"
                             "q = alloc_page(GFP_KERNEL)\n"
                             "__free_pages(q, 0)\n");
  EXPECT_EQ(r.status, ReplayStatus::Ok) << r.report("t");
}

TEST(Executor, failed_expectation_is_a_divergence_with_line_op_and_values) {
  const ReplayResult r = run("\np = alloc_page(GFP_KERNEL) -> NULL\n");
  EXPECT_EQ(r.status, ReplayStatus::Divergence);
  EXPECT_EQ(r.exit_code(), 1);
  EXPECT_EQ(r.line, 3);
  EXPECT_EQ(r.ops, 0u);
  const std::string report = r.report("t.trace");
  EXPECT_EQ(report.rfind("t.trace:3: divergence: expected NULL, got page(pfn ", 0), 0u) << report;
  EXPECT_NE(report.find("op: p = alloc_page(GFP_KERNEL) -> NULL"), std::string::npos);
  EXPECT_NE(report.find("expected: NULL"), std::string::npos);
  EXPECT_NE(report.find("state hash: 0x"), std::string::npos);
}

TEST(Executor, first_failure_stops_the_replay) {
  const ReplayResult r = run("irq_enter()\nalloc_page(GFP_KERNEL) -> NULL\nunknown_op()\n");
  EXPECT_EQ(r.status, ReplayStatus::Divergence);
  EXPECT_EQ(r.line, 3);
  EXPECT_EQ(r.ops, 1u);
}

TEST(Executor, unmapped_vmalloc_address_faults) {
  const ReplayResult r = run("expect_fault(0xffffc90000000000, read)\n"
                             "expect_fault(0xffffc90000000000+0x1000, write)\n"
                             "expect_fault(0xffffc90000000000, exec)\n");
  EXPECT_EQ(r.status, ReplayStatus::Ok) << r.report("t");
}

TEST(Executor, touch_of_unmapped_address_is_a_divergence_unless_expected) {
  const ReplayResult bad = run("touch(0xffffc90000000000, read)\n");
  EXPECT_EQ(bad.status, ReplayStatus::Divergence);
  EXPECT_NE(bad.message.find("faulted"), std::string::npos) << bad.message;
  const ReplayResult ok = run("f = expect_fault(0xffffc90000000000, read)\n"
                              "touch(0xffffc90000000000, read) -> f\n");
  EXPECT_EQ(ok.status, ReplayStatus::Ok) << ok.report("t");
}

TEST(Executor, irq_exit_without_irq_enter_warns_and_returns_einval) {
  const ReplayResult r = run("irq_exit() -> -EINVAL\nirq_enter()\nirq_exit() -> -EINVAL\n");
  EXPECT_EQ(r.status, ReplayStatus::Divergence);
  EXPECT_EQ(r.line, 4);
  EXPECT_EQ(r.message, "expected -EINVAL, got nothing");
}

TEST(Executor, cpu_switch_accepts_online_cpus_and_refuses_others) {
  const ReplayResult r = run("config cpus=2\ncpu(1)\ncpu(0)\ncpu(2) -> -EINVAL\n");
  EXPECT_EQ(r.status, ReplayStatus::Ok) << r.report("t");
}

TEST(Executor, run_deferred_and_check_succeed_on_a_fresh_machine) {
  const ReplayResult r = run("run_deferred() -> 0\ncheck()\n");
  EXPECT_EQ(r.status, ReplayStatus::Ok) << r.report("t");
}

TEST(Executor, bad_argument_kind_is_malformed_naming_the_argument) {
  const ReplayResult r = run("touch(0x1000, 5)\n");
  EXPECT_EQ(r.status, ReplayStatus::Malformed);
  EXPECT_EQ(r.exit_code(), 2);
  EXPECT_EQ(r.report("t.trace"),
            "t.trace:2:1: touch: argument 2: expected read|write|exec, found 5");
}

TEST(Executor, wrong_argument_count_is_malformed_with_usage) {
  const ReplayResult r = run("  fail_nth(alloc_page)\n");
  EXPECT_EQ(r.status, ReplayStatus::Malformed);
  EXPECT_EQ(r.column, 3);
  EXPECT_EQ(r.message, "fail_nth: expected 2 arguments as in "
                       "fail_nth(alloc_page|page_table|vmap_area, n), found 1");
}

TEST(Executor, freeing_null_page_is_malformed) {
  const ReplayResult r = run("fail_nth(alloc_page, 1)\np = alloc_page(GFP_KERNEL)\nput_page(p)\n");
  EXPECT_EQ(r.status, ReplayStatus::Malformed);
  EXPECT_EQ(r.message, "put_page: argument 1: expected a page, found NULL");
}

TEST(Executor, unknown_name_is_malformed_at_its_column) {
  const ReplayResult r = run("touch(a+1, read)\n");
  EXPECT_EQ(r.status, ReplayStatus::Malformed);
  EXPECT_EQ(r.report("t.trace"), "t.trace:2:7: unknown name 'a'");
}

TEST(Executor, errno_name_without_minus_is_malformed) {
  const ReplayResult r = run("irq_exit() -> EINVAL\n");
  EXPECT_EQ(r.status, ReplayStatus::Malformed);
  EXPECT_EQ(r.column, 15);
}

TEST(Executor, unknown_op_is_malformed) {
  const ReplayResult r = run("x = frobnicate(1)\n");
  EXPECT_EQ(r.status, ReplayStatus::Malformed);
  EXPECT_EQ(r.report("t.trace"), "t.trace:2:5: unknown op 'frobnicate'");
}

TEST(Executor, binding_a_reserved_name_is_malformed) {
  EXPECT_EQ(run("read = alloc_page(GFP_KERNEL)\n").status, ReplayStatus::Malformed);
  EXPECT_EQ(run("GFP_KERNEL = alloc_page(GFP_KERNEL)\n").status, ReplayStatus::Malformed);
  EXPECT_EQ(run("NULL = alloc_page(GFP_KERNEL)\n").status, ReplayStatus::Malformed);
}

TEST(Executor, bad_config_key_or_value_is_malformed_naming_the_key) {
  const ReplayResult key = run("config cpus=2 colour=blue\n");
  EXPECT_EQ(key.status, ReplayStatus::Malformed);
  EXPECT_EQ(key.line, 2);
  EXPECT_EQ(key.column, 15);
  EXPECT_NE(key.message.find("colour"), std::string::npos) << key.message;
  const ReplayResult value = run("config cpus=1000\n");
  EXPECT_EQ(value.status, ReplayStatus::Malformed);
  EXPECT_NE(value.message.find("cpus"), std::string::npos) << value.message;
}

TEST(Executor, syntax_error_is_malformed) {
  const ReplayResult r = run("vmalloc(1 -> 5\n");
  EXPECT_EQ(r.status, ReplayStatus::Malformed);
  EXPECT_EQ(r.report("trace.trace"), "trace.trace:2:11: expected ')' after arguments, found '->'");
}

TEST(Executor, kernel_bug_is_a_finding_with_the_op_line) {
  const ReplayResult r = run_test_ops("irq_enter()\nbug()\n");
  EXPECT_EQ(r.status, ReplayStatus::Divergence);
  EXPECT_EQ(r.line, 3);
  EXPECT_EQ(r.message, "kernel BUG in test_bug: always");
}

TEST(Executor, double_free_of_a_page_is_reported_as_kernel_bug) {
  const ReplayResult r =
      run("p = alloc_page(GFP_KERNEL)\n__free_pages(p, 0)\n__free_pages(p, 0)\n");
  EXPECT_EQ(r.status, ReplayStatus::Divergence);
  EXPECT_EQ(r.line, 4);
  EXPECT_NE(r.message.find("kernel BUG"), std::string::npos) << r.message;
}

TEST(Executor, finding_diagnostic_is_a_divergence_listing_the_diagnostics) {
  const ReplayResult r = run_test_ops("finding()\n");
  EXPECT_EQ(r.status, ReplayStatus::Divergence);
  const std::string report = r.report("t");
  EXPECT_NE(report.find("diagnostics:"), std::string::npos) << report;
  EXPECT_NE(report.find("FINDING test_finding: something is off (0x1234)"), std::string::npos);
}

TEST(Executor, struct_fields_and_array_elements_are_checked) {
  const ReplayResult r = run_test_ops("area = area()\n"
                                      "area.size -> 0x3000\n"
                                      "area.nr_pages -> 2\n"
                                      "area.flags -> VM_ALLOC\n"
                                      "v = areas()\n"
                                      "v[1].addr -> 0xffffc90000000000+0x4000\n"
                                      "echo(v[0].size - PAGE_SIZE) -> 0x1000\n");
  EXPECT_EQ(r.status, ReplayStatus::Ok) << r.report("t");
  EXPECT_EQ(r.ops, 7u);
  const ReplayResult bad = run_test_ops("area = area()\narea.size -> 8192\n");
  EXPECT_EQ(bad.status, ReplayStatus::Divergence);
  EXPECT_EQ(bad.message, "expected 0x2000, got 0x3000");
  EXPECT_EQ(run_test_ops("area = area()\narea.caller\n").status, ReplayStatus::Malformed);
  EXPECT_EQ(run_test_ops("v = areas()\nv[2]\n").status, ReplayStatus::Malformed);
}

TEST(Executor, strings_bytes_and_arithmetic_evaluate_as_documented) {
  const ReplayResult r = run_test_ops("echo(\"AB\" + x\"00\"*3 + \"CD\") -> \"AB\\0\\0\\0CD\"\n"
                                      "s = echo(\"hi\")\n"
                                      "echo(s + \"!\"*2) -> \"hi!!\"\n"
                                      "echo(3*4K+1) -> 12289\n"
                                      "echo(-1) -> 0xffffffffffffffff\n"
                                      "echo(NUMA_NO_NODE) -> -1\n"
                                      "echo(GFP_KERNEL|__GFP_ZERO) -> 0xdc0\n"
                                      "echo(NULL) -> NULL\n"
                                      "echo(-ENOMEM) -> -ENOMEM\n"
                                      "echo([1, 2]) -> [1, 2]\n");
  EXPECT_EQ(r.status, ReplayStatus::Ok) << r.report("t");
  EXPECT_EQ(run_test_ops("echo(\"a\" - 1)\n").status, ReplayStatus::Malformed);
}

TEST(Executor, backend_option_overrides_the_config_line) {
  ReplayOptions legacy;
  legacy.backend = Backend::Legacy;
  const std::string body = "config backend=modern\np = alloc_page(GFP_KERNEL)\n";
  EXPECT_EQ(run(body, legacy).status, ReplayStatus::Ok);
}

TEST(Executor, same_trace_replays_to_the_same_state_hash) {
  const std::string body = "config cpus=2\n"
                           "p = alloc_page(GFP_KERNEL)\n"
                           "cpu(1)\n"
                           "q = alloc_pages(GFP_KERNEL, 3)\n"
                           "fail_nth(page_table, 2)\n"
                           "expect_fault(0xffffc90000000000, read)\n";
  const ReplayResult a = run(body);
  const ReplayResult b = run(body);
  ASSERT_EQ(a.status, ReplayStatus::Ok) << a.report("t");
  EXPECT_EQ(a.state_hash, b.state_hash);
  EXPECT_NE(a.state_hash, run("config cpus=2\n").state_hash);
}

TEST(Executor, warning_diagnostics_alone_are_not_failures) {
  const ReplayResult r = run("irq_exit()\ncpu(99)\n");
  EXPECT_EQ(r.status, ReplayStatus::Ok) << r.report("t");
}

// check_every > 1 (the fuzz targets): a broken invariant found at a later
// check is replayed with a check after every op, so the report names the op
// that broke it, exactly as a run that checks after every op would.
TEST(Executor, sparse_invariant_checks_report_the_op_that_broke_the_invariant) {
  // unmap_kernel_range over a vmalloc area is the caller's bug: the area's
  // pages are no longer mapped, which the vmalloc invariants catch.
  const std::string body = "a = vmalloc(0x2000)\n"
                           "b = vmalloc(0x1000)\n"
                           "unmap_kernel_range(a, 0x1000)\n"
                           "c = vmalloc(0x1000)\n"
                           "vfree(c)\n";
  const ReplayResult every_op = run(body);
  ASSERT_EQ(every_op.status, ReplayStatus::Divergence);
  EXPECT_EQ(every_op.line, 4);
  ReplayOptions sparse;
  sparse.check_every = 16;
  const ReplayResult r = run(body, sparse);
  ASSERT_EQ(r.status, ReplayStatus::Divergence);
  EXPECT_EQ(r.line, every_op.line);
  EXPECT_EQ(r.message, every_op.message);
  EXPECT_EQ(r.state_hash, every_op.state_hash);
  // A clean trace replays to the same state either way.
  const std::string clean = "a = vmalloc(0x2000)\nvfree(a)\nb = vmalloc(0x1000)\n";
  EXPECT_EQ(run(clean, sparse).state_hash, run(clean).state_hash);
  EXPECT_EQ(run(clean, sparse).status, ReplayStatus::Ok);
}

// The spec follows user address spaces: faults, mmap and munmap hand it
// their effect on the page allocator, so the vmalloc ops after them are
// still compared, to the end of the trace.
// Replays `body` on engine and spec and expects the spec to compare every
// op, to the end.
void expect_compared_to_the_end(const std::string &body) {
  ReplayOptions diff;
  diff.differential = true;
  const ReplayResult r = run(body, diff);
  EXPECT_EQ(r.status, ReplayStatus::Ok) << r.report("t");
  EXPECT_EQ(r.spec_stopped_at, 0) << r.report("t");
}

TEST(Executor, differential_replay_follows_user_space_ops) {
  expect_compared_to_the_end("config cpus=2 nodes=1 mem=64M\n"
                             "mm = mm_create()\n"
                             "v = mmap(mm, 0x400000, 4*4096, VM_READ|VM_WRITE)\n"
                             "touch(mm, 0x400000, write)\n"
                             "touch(mm, 0x402000, write)\n"
                             "a = vmalloc(0x3000)\n"
                             "munmap(mm, 0x400000, 4096)\n"
                             "b = vmalloc_user(0x2000)\n"
                             "remap_vmalloc_range(v, a, 0) -> -EINVAL\n"
                             "vfree(a)\n"
                             "mmput(mm)\n"
                             "c = vmalloc(0x1000)\n");
}

// Pages user space maps outlive the kernel's reference: the spec counts them
// as user space's from the vfree or __free_pages on, until munmap returns
// them, and forgets their contents (user space may write them).
TEST(Executor, differential_replay_follows_kernel_pages_mapped_into_user_space) {
  expect_compared_to_the_end("config cpus=2 nodes=1 mem=64M\n"
                             "a = vmalloc_user(2*4096)\n"
                             "p = alloc_page(GFP_KERNEL)\n"
                             "mm = mm_create()\n"
                             "v = mmap(mm, 0x400000, 2*4096, VM_READ|VM_WRITE|VM_SHARED)\n"
                             "w = mmap(mm, 0x800000, 4096, VM_READ|VM_WRITE|VM_SHARED)\n"
                             "remap_vmalloc_range(v, a, 0) -> 0\n"
                             "vm_insert_page(w, 0x800000, p) -> 0\n"
                             "access_remote_vm(mm, 0x400010, \"user\", FOLL_WRITE) -> 4\n"
                             "vread(a+16, 4) -> \"user\"\n"
                             "vfree(a)\n"
                             "__free_pages(p, 0)\n"
                             "b = vmalloc(0x3000)\n"
                             "munmap(mm, 0x400000, 2*4096) -> 0\n"
                             "mmput(mm)\n"
                             "c = vmalloc(0x3000)\n");
}

// Raw PFN maps hold no reference and write nothing through their special
// PTEs: the spec follows them too, and comparison goes on after them.
TEST(Executor, differential_replay_follows_raw_pfn_maps) {
  expect_compared_to_the_end("config cpus=2 nodes=1 mem=64M\n"
                             "mm = mm_create()\n"
                             "d = mmap(mm, 0x400000, 4*4096, VM_READ|VM_WRITE|VM_SHARED)\n"
                             "buf = alloc_pages(GFP_KERNEL|__GFP_ZERO, 2)\n"
                             "remap_pfn_range(d, 0x401000, buf, 2*4096, PAGE_SHARED) -> 0\n"
                             "touch(mm, 0x402000, write)\n"
                             "vmf_insert_pfn(d, 0x400000, buf) -> 0x100\n"
                             "io = mmap(mm, 0x800000, 4096, VM_READ|VM_SHARED)\n"
                             "p = follow_pfn(d, 0x401000)\n"
                             "vm_iomap_memory(io, p*4096, 4096) -> 0\n"
                             "__free_pages(buf, 2)\n"
                             "a = vzalloc(0x3000)\n"
                             "vread(a, 4) -> x\"00000000\"\n"
                             "munmap(mm, 0x400000, 4*4096) -> 0\n"
                             "mmput(mm)\n"
                             "b = vmalloc(0x1000)\n");
}

// An engine whose remap_vmalloc_range_partial ignores VM_USERMAP (the
// remap_no_usermap_check mutant), or refuses a VM_USERMAP area, disagrees
// with the spec's prediction of the vmalloc side.
TEST(Executor, the_spec_predicts_the_vmalloc_side_of_remap_vmalloc_range) {
  const auto with_remap_result = [](int ret) {
    auto t = std::make_unique<OpTable>(default_op_table());
    t->add({"remap_vmalloc_range_partial", "remap_vmalloc_range_partial(v, uaddr, kaddr, size)",
            [ret](ExecContext &, const std::vector<Value> &) {
              return OpResult::ok(ret == 0 ? Value::integer(0) : Value::error(ret));
            }});
    return t;
  };
  const std::string body = "config cpus=1 nodes=1 mem=64M\n"
                           "plain = vmalloc(0x2000)\n"
                           "user = vmalloc_user(0x2000)\n"
                           "mm = mm_create()\n"
                           "v = mmap(mm, 0x400000, 2*4096, VM_READ|VM_WRITE|VM_SHARED)\n";
  ReplayOptions diff;
  diff.differential = true;
  const auto accepts = with_remap_result(0);
  diff.ops = accepts.get();
  ReplayResult r = run(body + "remap_vmalloc_range_partial(v, 0x400000, plain, 0x2000)\n", diff);
  EXPECT_EQ(r.status, ReplayStatus::Divergence) << r.report("t");
  EXPECT_NE(r.message.find("spec predicts -EINVAL"), std::string::npos) << r.message;
  const auto refuses = with_remap_result(-EINVAL);
  diff.ops = refuses.get();
  r = run(body + "remap_vmalloc_range_partial(v, 0x400000, user, 0x2000)\n", diff);
  EXPECT_EQ(r.status, ReplayStatus::Divergence) << r.report("t");
  EXPECT_NE(r.message.find("accepts the range"), std::string::npos) << r.message;
  // The real engine agrees with the spec on both.
  diff.ops = nullptr;
  r = run(body + "remap_vmalloc_range_partial(v, 0x400000, plain, 0x2000) -> -EINVAL\n" +
              "remap_vmalloc_range_partial(v, 0x400000, user, 0x2000) -> 0\n",
          diff);
  EXPECT_EQ(r.status, ReplayStatus::Ok) << r.report("t");
}

// Through a remap the spec knows what user space reads: an engine whose
// access_remote_vm returns other bytes disagrees with it, though the trace
// states no expected value; the real engine agrees.
TEST(Executor, the_spec_predicts_user_reads_through_a_remap) {
  const std::string body = "config cpus=1 nodes=1 mem=64M\n"
                           "a = vmalloc_user(0x2000)\n"
                           "vwrite(a+0x1000, \"kernel\")\n"
                           "mm = mm_create()\n"
                           "v = mmap(mm, 0x400000, 2*4096, VM_READ|VM_SHARED)\n"
                           "remap_vmalloc_range(v, a, 0)\n"
                           "probe(mm, 0x401000, read)\n"
                           "access_remote_vm(mm, 0x400ffe, 8, 0)\n";
  auto lying = std::make_unique<OpTable>(default_op_table());
  lying->add({"access_remote_vm", "access_remote_vm(mm, addr, len, flags)",
              [](ExecContext &, const std::vector<Value> &) {
                return OpResult::ok(Value::bytes(std::string("\0\0kernex", 8)));
              }});
  ReplayOptions diff;
  diff.differential = true;
  diff.ops = lying.get();
  ReplayResult r = run(body, diff);
  ASSERT_EQ(r.status, ReplayStatus::Divergence) << r.report("t");
  EXPECT_EQ(r.line, 9);
  EXPECT_NE(r.message.find("0x401005"), std::string::npos) << r.message;
  diff.ops = nullptr;
  r = run(body, diff);
  EXPECT_EQ(r.status, ReplayStatus::Ok) << r.report("t");
  EXPECT_EQ(r.spec_stopped_at, 0) << r.report("t");
}

// Fuzzers run many inputs in one process (libFuzzer, AFL++'s persistent
// mode): nothing may carry over from one replay to the next.
TEST(Executor, a_replay_does_not_depend_on_the_replays_before_it) {
  std::uint64_t seed = 0x2545f4914f6cdd1dULL;
  std::vector<Trace> traces;
  for (int i = 0; i < 12; ++i) {
    std::vector<std::uint8_t> bytes(200);
    for (auto &b : bytes) {
      seed ^= seed << 13;
      seed ^= seed >> 7;
      seed ^= seed << 17;
      b = static_cast<std::uint8_t>(seed);
    }
    traces.push_back(decode_bytes(bytes, i % 2 ? Vocabulary::VmallocApi : Vocabulary::Usermm));
  }
  ReplayOptions diff;
  diff.differential = true;
  std::vector<ReplayResult> first;
  for (const Trace &t : traces)
    first.push_back(replay(t, diff));
  for (std::size_t i = traces.size(); i-- > 0;) {
    const ReplayResult again = replay(traces[i], diff);
    EXPECT_EQ(again.status, first[i].status) << i;
    EXPECT_EQ(again.ops, first[i].ops) << i;
    EXPECT_EQ(again.state_hash, first[i].state_hash) << i;
  }
}

} // namespace
} // namespace vmcheck
