// rc::state model tests over the shared op vocabulary: rapidcheck generates
// command sequences (each command is one TRACE.md statement), shrinks them
// when they fail, and the executor runs them on the engine (the system) and
// on the reference spec (the model) in lockstep.
//
// Design choice: a command's run() only appends its statement to the trace
// under construction, and the property replays the finished trace once with
// ReplayOptions{differential = true}. The executor already compares results,
// diagnostics and state and checks every invariant after every statement,
// stopping at the first failure, so one replay of the whole sequence checks
// exactly what replaying every prefix would, in O(n) instead of O(n^2), and
// without a second, incremental executor API. The rapidcheck Model is the
// decoder-style bookkeeping that keeps every generated statement legal
// (live handles, interrupt depth); the Sut is the trace itself.
//
// A failure is reported as a TRACE.md trace ready for `vmcheck replay` (the
// RC_FAIL message of the minimal case), next to rapidcheck's own list of
// commands; RC_PARAMS="seed=N" or the printed "reproduce=" string reruns it.
#include "harness/executor.h"
#include "harness/fuzz_target.h"
#include "harness/trace.h"
#include "vmcheck/abi.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>
#include <rapidcheck/state.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <initializer_list>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace vmcheck {
namespace {

constexpr u64 P = PAGE_SIZE;
constexpr u64 S = VMALLOC_START_L4;

// The vmalloc_api machine: a lazy threshold of 16 pages so that sequences
// of a few frees cross it; on_null=skip because a generated sequence cannot
// know which allocations fail (fail_nth, ENOMEM).
constexpr std::string_view kApiConfig = "cpus=2 nodes=2 mem=64M lazy=16 on_null=skip";
// The backends machine: run_fuzz_trace(Backends) replays it once per backend.
constexpr std::string_view kBackendsConfig = "cpus=2 nodes=2 mem=64M lazy=0 on_null=skip";

// rapidcheck draws a sequence length uniformly from [1, size + 1] with size
// ramping up to max_size (100 by default); scaling it lets the later cases
// run a few hundred commands, enough to cross the lazy threshold many times
// and to reuse vmap blocks and freed ranges. One replay per case is linear
// in the length, so 100 cases stay within a few seconds under ASan.
constexpr double kSizeScale = 2.5;

// ---- the model: what a legal next statement may refer to ----------------------------

struct Ram {
  std::string name;
  u64 count = 0;
  bool operator==(const Ram &) const = default;
};

struct Pcpu {
  std::string name;
  u64 nr = 0;
  bool operator==(const Pcpu &) const = default;
};

// Invariant: every name in a list was bound by an earlier statement of the
// sequence and is unique in the whole sequence (next_name is above all of
// them). A handle whose allocation returned NULL stays listed: with
// on_null=skip the executor skips the calls that use it.
struct Model {
  bool backends = false;          // the backends vocabulary (lazy=0, no irq, start frees)
  std::vector<std::string> addrs; // every address handle, live or dead (freeing a dead one WARNs)
  std::vector<std::string> live;  // the address handles no free has named yet
  std::vector<std::string> vms;   // vm_struct handles not yet freed: a double free is a BUG
  std::vector<std::string> pages; // order-0 pages not yet freed
  // Pages a vmap or vm_map_ram has mapped. vmap takes no page reference,
  // so freeing a page that is still mapped is the caller's use-after-free
  // (a later vwrite through the mapping scribbles over whatever reuses the
  // frame, e.g. a page-table page). When the mapping goes away depends on
  // lazy and deferred frees, so a mapped page simply stays allocated.
  std::vector<std::string> pinned;
  std::vector<Ram> rams;   // vm_map_ram handles and the count they must be unmapped with
  std::vector<Pcpu> pcpus; // pcpu_get_vm_areas handles and their nr_vms
  // Interrupt context is per CPU: irq_enter on CPU 0, cpu(1), irq_exit
  // leaves CPU 0 in interrupt context.
  std::array<unsigned, 2> irq_depth = {0, 0};
  unsigned cpu = 0;
  unsigned next_name = 1;
  // Whether a fail_nth has been issued: it stays armed until the n-th
  // allocation of its kind, which the model does not count.
  bool armed_failure = false;

  bool in_irq() const { return irq_depth[cpu] > 0; }
};

struct Sut {
  Trace trace; // the statements run() appended, in order
};

using Cmd = rc::state::Command<Model, Sut>;

template <typename T> bool has(const std::vector<T> &list, const T &x) {
  return std::find(list.begin(), list.end(), x) != list.end();
}
template <typename T> void drop(std::vector<T> &list, const T &x) {
  list.erase(std::remove(list.begin(), list.end(), x), list.end());
}

// ---- expression builders ----------------------------------------------------------

Expr int_expr(u64 v) {
  Expr e;
  e.kind = ExprKind::Int;
  e.value = v;
  return e;
}
Expr name_expr(std::string n) {
  Expr e;
  e.kind = ExprKind::Name;
  e.text = std::move(n);
  return e;
}
Expr binary(ExprKind kind, Expr lhs, Expr rhs) {
  Expr e;
  e.kind = kind;
  e.kids = {std::move(lhs), std::move(rhs)};
  return e;
}
// `A|B|C` from constant names; an empty set is 0.
Expr flag_set(std::initializer_list<std::string_view> names) {
  if (names.size() == 0)
    return int_expr(0);
  Expr e = name_expr(std::string(*names.begin()));
  for (auto it = names.begin() + 1; it != names.end(); ++it)
    e = binary(ExprKind::Or, std::move(e), name_expr(std::string(*it)));
  return e;
}
Expr offset_expr(const std::string &handle, std::int64_t off) {
  if (off == 0)
    return name_expr(handle);
  return binary(off > 0 ? ExprKind::Add : ExprKind::Sub, name_expr(handle),
                int_expr(static_cast<u64>(off > 0 ? off : -off)));
}
Expr list_expr(std::vector<Expr> items) {
  Expr e;
  e.kind = ExprKind::List;
  e.kids = std::move(items);
  return e;
}
Expr bytes_expr(std::string data) {
  Expr e;
  e.kind = ExprKind::Bytes;
  e.text = std::move(data);
  return e;
}

Stmt call(std::string op, std::vector<Expr> args, std::string bind = {}) {
  Stmt s;
  s.is_call = true;
  s.op = std::move(op);
  s.args = std::move(args);
  s.bind = std::move(bind);
  return s;
}

// ---- argument generators ------------------------------------------------------------

// Sizes cluster where behaviour changes: page boundaries, the lazy threshold
// (16 pages) and VMAP_MAX_ALLOC (64 pages), one page either side; some are
// anywhere up to 40 pages; a few are invalid (0, wrapping) or too large for
// the machine, to reach the error paths.
rc::Gen<u64> gen_size() {
  return rc::gen::weightedOneOf<u64>(
      {{8, rc::gen::map(rc::gen::pair(rc::gen::element<u64>(1, 2, 3, 15, 16, 17, 63, 64, 65, 128),
                                      rc::gen::element<int>(0, -1, 1)),
                        [](const std::pair<u64, int> &p) {
                          return p.first * P +
                                 static_cast<u64>(static_cast<std::int64_t>(p.second));
                        })},
       {3, rc::gen::inRange<u64>(1, 40 * P)},
       {1, rc::gen::element<u64>(0, u64{1} << 20, u64{8191} * P, u64{1} << 32, ~P + 1)}});
}

// Nodes 2 and 7 do not exist (nodes=2): the callers reject them. Pass a
// larger `valid_weight` where a rejection is costly (vm_map_ram).
rc::Gen<Expr> gen_node(int valid_weight = 1) {
  return rc::gen::weightedOneOf<Expr>({{4 * valid_weight, rc::gen::just(name_expr("NUMA_NO_NODE"))},
                                       {3 * valid_weight, rc::gen::just(int_expr(0))},
                                       {3 * valid_weight, rc::gen::just(int_expr(1))},
                                       {1, rc::gen::element(int_expr(2), int_expr(7))}});
}

rc::Gen<Expr> gen_gfp() {
  return rc::gen::weightedOneOf<Expr>(
      {{6, rc::gen::just(flag_set({"GFP_KERNEL"}))},
       {3, rc::gen::element(flag_set({"GFP_KERNEL", "__GFP_ZERO"}),
                            flag_set({"GFP_KERNEL", "__GFP_NOWARN"}), flag_set({"GFP_ATOMIC"}),
                            flag_set({"GFP_NOWAIT"}), flag_set({"GFP_DMA32", "GFP_KERNEL"}),
                            flag_set({"GFP_KERNEL", "__GFP_HIGHMEM"}),
                            flag_set({"GFP_KERNEL", "__GFP_THISNODE"}))},
       {1, rc::gen::just(int_expr(0x80000000u))}});
}

rc::Gen<Expr> gen_prot() {
  return rc::gen::element(flag_set({"PAGE_KERNEL"}), flag_set({"PAGE_KERNEL_EXEC"}),
                          flag_set({"PAGE_KERNEL_RO"}));
}

rc::Gen<u64> gen_align() {
  return rc::gen::weightedOneOf<u64>(
      {{6, rc::gen::element<u64>(1, P, 2 * P, 8 * P, 1 << 16, 1 << 21)},
       {1, rc::gen::element<u64>(3, 0, u64{1} << 40)}});
}

// VM_IOREMAP alignment and VM_NO_GUARD are documented backend differences:
// the backends vocabulary leaves them out.
rc::Gen<Expr> gen_vm_flags(bool backends) {
  if (backends)
    return rc::gen::element(int_expr(0), flag_set({"VM_ALLOC"}), flag_set({"VM_MAP"}),
                            flag_set({"VM_USERMAP"}), int_expr(0x10000));
  return rc::gen::element(int_expr(0), flag_set({"VM_ALLOC"}), flag_set({"VM_IOREMAP"}),
                          flag_set({"VM_MAP"}), flag_set({"VM_USERMAP"}), flag_set({"VM_NO_GUARD"}),
                          flag_set({"VM_IOREMAP", "VM_NO_GUARD"}), int_expr(0x10000));
}

// (start, end) windows of __get_vm_area / __vmalloc_node_range: the whole
// range, a small one that fills up, one at the top, and empty or bad ones.
rc::Gen<std::pair<u64, u64>> gen_window() {
  return rc::gen::weightedOneOf<std::pair<u64, u64>>(
      {{4, rc::gen::just(std::pair<u64, u64>{S, VMALLOC_END_L4})},
       {3, rc::gen::element(std::pair<u64, u64>{S + 0x100000, S + 0x104000},
                            std::pair<u64, u64>{S, S + 0x10000},
                            std::pair<u64, u64>{VMALLOC_END_L4 - 0x100000 + 1, VMALLOC_END_L4})},
       {1, rc::gen::element(std::pair<u64, u64>{S - P, S + P},
                            std::pair<u64, u64>{S + 0x2000, S + 0x2000})}});
}

// Page arrays for vmap/vm_map_ram: a few live pages (repeats allowed, as
// the kernel allows) and a count that mostly matches, sometimes not.
struct PageArgs {
  std::vector<std::string> pages;
  u64 count = 0;
};
// A vm_map_ram that fails ends the spec comparison for the rest of the
// sequence (the spec only follows placements it observes), so its bad counts
// are rare; vmap's failures are predicted exactly.
PageArgs gen_page_args(const Model &m, bool for_vm_map_ram) {
  RC_PRE(!m.pages.empty());
  PageArgs a;
  a.pages = *rc::gen::resize(6, rc::gen::nonEmpty(rc::gen::container<std::vector<std::string>>(
                                    rc::gen::elementOf(m.pages))));
  if (for_vm_map_ram && *rc::gen::inRange(0, 4) == 0) {
    // vm_map_ram switches from vmap blocks to whole areas above
    // VMAP_MAX_ALLOC pages: cycle the array up to around that count.
    a.count = *rc::gen::element<u64>(63, 64, 65, 70);
    const std::vector<std::string> base = a.pages;
    while (a.pages.size() < a.count)
      a.pages.push_back(base[a.pages.size() % base.size()]);
  } else {
    a.count = *rc::gen::weightedOneOf<u64>(
        {{for_vm_map_ram ? 40 : 6, rc::gen::just<u64>(a.pages.size())},
         {1, rc::gen::element<u64>(0, a.pages.size() + 1, VMAP_MAX_ALLOC + 1)}});
  }
  return a;
}
void pin_pages(Model &m, const std::vector<Expr> &args) {
  for (const Expr &p : args.at(0).kids)
    if (!has(m.pinned, p.text))
      m.pinned.push_back(p.text);
}
bool pages_live(const Model &m, const std::vector<Expr> &args) {
  for (const Expr &p : args.at(0).kids)
    if (!has(m.pages, p.text))
      return false;
  return true;
}
Expr page_list(const std::vector<std::string> &pages) {
  std::vector<Expr> items;
  for (const std::string &p : pages)
    items.push_back(name_expr(p));
  return list_expr(std::move(items));
}

// The pcpu_get_vm_areas shapes of the codec: congruent groups of a few
// areas, one of them too large for the range.
struct PcpuShape {
  std::vector<u64> offsets, sizes;
  u64 align;
};
const std::vector<PcpuShape> &pcpu_shapes() {
  static const std::vector<PcpuShape> shapes = {
      {{0, 64 << 10}, {16 << 10, 16 << 10}, P},
      {{0}, {P}, P},
      {{0, 1 << 20, 3 << 20}, {64 << 10, 64 << 10, 64 << 10}, 64 << 10},
      {{0, 2 << 20}, {2 << 20, 2 << 20}, 2 << 20},
      {{0}, {u64{32} << 40}, P},
      {{0, 2 * P}, {2 * P, 2 * P}, 2 * P},
  };
  return shapes;
}

// ---- commands ---------------------------------------------------------------------

// Every command is one statement. run() appends it; show() prints it as its
// trace line, so rapidcheck's counterexample reads as a trace too.
struct Op : Cmd {
  Stmt stmt;

  void run(const Model &, Sut &sut) const override { sut.trace.stmts.push_back(stmt); }
  void show(std::ostream &os) const override { os << print_stmt(stmt); }
};

// A statement that binds a fresh handle. Names come from Model::next_name
// when generated; a shrink that keeps this command but removes earlier ones
// keeps the name, so uniqueness is re-asserted as a precondition.
struct Binder : Op {
  unsigned number = 0;

  std::string take_name(const Model &m, char prefix) {
    number = m.next_name;
    return std::string(1, prefix) + std::to_string(number);
  }
  void check_fresh(const Model &m) const { RC_PRE(number >= m.next_name); }
  void bump(Model &m) const { m.next_name = number + 1; }
};

// vmalloc and friends: binds an address handle.
struct Alloc : Binder {
  explicit Alloc(const Model &m) {
    const std::string a = take_name(m, 'a');
    const u64 size = *gen_size();
    const int kind = *rc::gen::inRange(0, m.backends ? 7 : 9);
    switch (kind) {
    case 0:
      stmt = call("vmalloc", {int_expr(size)}, a);
      break;
    case 1:
      stmt = call("vzalloc", {int_expr(size)}, a);
      break;
    case 2:
      stmt = call("vmalloc_user", {int_expr(size)}, a);
      break;
    case 3:
      stmt = call("vmalloc_node", {int_expr(size), *gen_node()}, a);
      break;
    case 4:
      stmt = call("vmalloc_32", {int_expr(size)}, a);
      break;
    case 5:
    case 6:
      if (m.backends) {
        const auto [lo, hi] = *gen_window();
        stmt = call("__vmalloc_node_range",
                    {int_expr(size), int_expr(*gen_align()), int_expr(lo), int_expr(hi), *gen_gfp(),
                     *gen_prot(), *gen_vm_flags(true), *gen_node()},
                    a);
      } else {
        stmt =
            call("__vmalloc_node",
                 {int_expr(size), int_expr(*gen_align()), *gen_gfp(), *gen_prot(), *gen_node()}, a);
      }
      break;
    case 7:
      stmt = call("vzalloc_node", {int_expr(size), *gen_node()}, a);
      break;
    default:
      stmt = call("vmalloc_exec", {int_expr(size)}, a);
      break;
    }
  }
  void checkPreconditions(const Model &m) const override { check_fresh(m); }
  void apply(Model &m) const override {
    bump(m);
    m.addrs.push_back(stmt.bind);
    m.live.push_back(stmt.bind);
  }
};

// get_vm_area / __get_vm_area: binds a vm_struct handle.
struct GetVmArea : Binder {
  explicit GetVmArea(const Model &m) {
    const std::string v = take_name(m, 'v');
    const u64 size = *gen_size();
    const Expr flags = *gen_vm_flags(m.backends);
    if (*rc::gen::inRange(0, 3) == 0) {
      const auto [lo, hi] = *gen_window();
      stmt = call("__get_vm_area", {int_expr(size), flags, int_expr(lo), int_expr(hi)}, v);
    } else {
      stmt = call("get_vm_area", {int_expr(size), flags}, v);
    }
  }
  void checkPreconditions(const Model &m) const override { check_fresh(m); }
  void apply(Model &m) const override {
    bump(m);
    m.vms.push_back(stmt.bind);
  }
};

// free_vm_area of a vm_struct handle not freed yet (freeing twice is the
// caller's BUG; an area a stray vfree already released is skipped by the
// executor under on_null=skip).
struct FreeVmArea : Op {
  explicit FreeVmArea(const Model &m) {
    RC_PRE(!m.vms.empty());
    stmt = call("free_vm_area", {name_expr(*rc::gen::elementOf(m.vms))});
  }
  void checkPreconditions(const Model &m) const override { RC_PRE(has(m.vms, stmt.args[0].text)); }
  void apply(Model &m) const override { drop(m.vms, stmt.args[0].text); }
};

// vfree / vfree_atomic / vunmap. vmalloc_api: any address handle, live or
// dead, at offsets that stay inside its own area (an interior page-aligned
// free is a documented backend difference, a misaligned one WARNs), NULL,
// or raw addresses no area can occupy. backends: the start of a live handle.
struct Free : Op {
  std::string handle; // empty: NULL or a raw address

  explicit Free(const Model &m) {
    if (m.backends) {
      RC_PRE(!m.live.empty());
      handle = *rc::gen::elementOf(m.live);
      stmt = call(*rc::gen::element<std::string>("vfree", "vunmap"), {name_expr(handle)});
      return;
    }
    // vunmap in interrupt context is a BUG_ON: only vfree defers there.
    const std::string op = m.in_irq()
                               ? *rc::gen::element<std::string>("vfree", "vfree_atomic")
                               : *rc::gen::element<std::string>("vfree", "vfree_atomic", "vunmap");
    const int target = m.addrs.empty() ? 1 : *rc::gen::weightedElement<int>({{8, 0}, {1, 1}});
    if (target == 0) {
      handle = *rc::gen::elementOf(m.addrs);
      const std::int64_t off = *rc::gen::weightedElement<std::int64_t>({{6, 0}, {1, 1}, {1, 4095}});
      stmt = call(op, {offset_expr(handle, off)});
    } else {
      stmt = call(op, {*rc::gen::element(name_expr("NULL"), int_expr(VMALLOC_END_L4),
                                         int_expr(S - P), int_expr(S + 0x123))});
    }
  }
  void checkPreconditions(const Model &m) const override {
    if (m.backends) {
      RC_PRE(has(m.live, handle));
      return;
    }
    RC_PRE(stmt.op != "vunmap" || !m.in_irq());
    RC_PRE(handle.empty() || has(m.addrs, handle));
  }
  void apply(Model &m) const override {
    if (!handle.empty())
      drop(m.live, handle);
  }
};

// find_vm_area of a live handle's start (backends: both must find the same
// area and report the same fields).
struct FindVmArea : Op {
  explicit FindVmArea(const Model &m) {
    RC_PRE(!m.live.empty());
    stmt = call("find_vm_area", {name_expr(*rc::gen::elementOf(m.live))});
  }
  void checkPreconditions(const Model &m) const override { RC_PRE(has(m.live, stmt.args[0].text)); }
  void apply(Model &) const override {}
};

// vmap of live pages: binds an address handle.
struct Vmap : Binder {
  explicit Vmap(const Model &m) {
    const PageArgs a = gen_page_args(m, false);
    stmt = call("vmap",
                {page_list(a.pages), int_expr(a.count), *gen_vm_flags(m.backends), *gen_prot()},
                take_name(m, 'a'));
  }
  void checkPreconditions(const Model &m) const override {
    check_fresh(m);
    RC_PRE(pages_live(m, stmt.args));
    // Caller contract: vmap may sleep, and a vmap in interrupt context whose
    // mapping fails undoes itself through vunmap, whose BUG_ON(in_interrupt())
    // engine and spec both raise (4.19). So no vmap in interrupt context once
    // a failure may be armed.
    RC_PRE(!(m.in_irq() && m.armed_failure));
  }
  void apply(Model &m) const override {
    bump(m);
    m.addrs.push_back(stmt.bind);
    m.live.push_back(stmt.bind);
    pin_pages(m, stmt.args);
  }
};

// vm_map_ram of live pages: binds a handle that vm_unmap_ram must free with
// the same count (a wrong count is a BUG_ON).
struct VmMapRam : Binder {
  explicit VmMapRam(const Model &m) {
    const PageArgs a = gen_page_args(m, true);
    stmt = call("vm_map_ram", {page_list(a.pages), int_expr(a.count), *gen_node(4), *gen_prot()},
                take_name(m, 'r'));
  }
  void checkPreconditions(const Model &m) const override {
    check_fresh(m);
    RC_PRE(pages_live(m, stmt.args));
  }
  void apply(Model &m) const override {
    bump(m);
    m.rams.push_back({stmt.bind, stmt.args[1].value});
    pin_pages(m, stmt.args);
  }
};

struct VmUnmapRam : Op {
  explicit VmUnmapRam(const Model &m) {
    RC_PRE(!m.rams.empty());
    const Ram r = *rc::gen::elementOf(m.rams);
    stmt = call("vm_unmap_ram", {name_expr(r.name), int_expr(r.count)});
  }
  Ram ram() const { return {stmt.args[0].text, stmt.args[1].value}; }
  void checkPreconditions(const Model &m) const override { RC_PRE(has(m.rams, ram())); }
  void apply(Model &m) const override { drop(m.rams, ram()); }
};

// An address for vread/vwrite: a handle (live or dead) plus an offset that
// may cross into the guard page or the next area, or a raw address.
struct AccessTarget {
  std::string handle;
  Expr addr;
};
AccessTarget gen_access_target(const Model &m) {
  AccessTarget t;
  if (!m.addrs.empty() && *rc::gen::inRange(0, 6) != 0) {
    t.handle = *rc::gen::elementOf(m.addrs);
    t.addr = offset_expr(t.handle,
                         *rc::gen::element<std::int64_t>(0, 1, 4095, 4096, 8192, 12288, -1, -4096));
  } else {
    t.addr = *rc::gen::element(int_expr(S), int_expr(S + P), int_expr(VMALLOC_END_L4),
                               name_expr("NULL"), int_expr(S - P), int_expr(S + 0x100000));
  }
  return t;
}

struct Vread : Op {
  std::string handle;
  explicit Vread(const Model &m) {
    AccessTarget t = gen_access_target(m);
    handle = t.handle;
    stmt = call("vread",
                {std::move(t.addr), int_expr(*rc::gen::element<u64>(0, 1, 2, 8, P, P + 1, 2 * P))});
  }
  void checkPreconditions(const Model &m) const override {
    RC_PRE(handle.empty() || has(m.addrs, handle));
  }
  void apply(Model &) const override {}
};

// probe: one access through the current CPU's TLB, so translations get
// cached and a missing flush (a stale alias after reuse) becomes visible to
// the invariants. Its fault word is not compared (the spec has no MMU).
struct Probe : Op {
  std::string handle;
  explicit Probe(const Model &m) {
    AccessTarget t = gen_access_target(m);
    handle = t.handle;
    Expr mode;
    mode.kind = ExprKind::Name;
    mode.text = *rc::gen::element<std::string>("read", "write");
    stmt = call("probe", {std::move(t.addr), std::move(mode)});
  }
  void checkPreconditions(const Model &m) const override {
    RC_PRE(handle.empty() || has(m.addrs, handle));
  }
  void apply(Model &) const override {}
};

struct Vwrite : Op {
  std::string handle;
  explicit Vwrite(const Model &m) {
    AccessTarget t = gen_access_target(m);
    handle = t.handle;
    // Short arbitrary strings, or a page-sized run that crosses a page.
    std::string data = *rc::gen::weightedOneOf<std::string>(
        {{4, rc::gen::resize(16, rc::gen::nonEmpty(rc::gen::string<std::string>()))},
         {1, rc::gen::map(
                 rc::gen::pair(rc::gen::element(P, P + 1), rc::gen::arbitrary<char>()),
                 [](const std::pair<u64, char> &p) { return std::string(p.first, p.second); })}});
    stmt = call("vwrite", {std::move(t.addr), bytes_expr(std::move(data))});
  }
  void checkPreconditions(const Model &m) const override {
    RC_PRE(handle.empty() || has(m.addrs, handle));
  }
  void apply(Model &) const override {}
};

// Argument-less ops that drive the lazy and deferred machinery.
struct Housekeeping : Op {
  explicit Housekeeping(const Model &m) {
    stmt = call(m.backends ? std::string("vmallocinfo")
                           : *rc::gen::element<std::string>("purge", "vm_unmap_aliases",
                                                            "run_deferred", "vmallocinfo"),
                {});
  }
  void apply(Model &) const override {}
};

// cpu(n): 0 and 1 exist (both configs say cpus=2), 3 does not (the op
// refuses it and the current CPU stays).
struct Cpu : Op {
  explicit Cpu(const Model &) {
    stmt = call("cpu", {int_expr(*rc::gen::weightedElement<u64>({{4, 0}, {4, 1}, {1, 3}}))});
  }
  void apply(Model &m) const override {
    if (stmt.args[0].value < m.irq_depth.size())
      m.cpu = static_cast<unsigned>(stmt.args[0].value);
  }
};

struct IrqEnter : Op {
  explicit IrqEnter(const Model &) { stmt = call("irq_enter", {}); }
  void checkPreconditions(const Model &m) const override {
    RC_PRE(!m.backends && m.irq_depth[m.cpu] < 2);
  }
  void apply(Model &m) const override { ++m.irq_depth[m.cpu]; }
};

struct IrqExit : Op {
  explicit IrqExit(const Model &) { stmt = call("irq_exit", {}); }
  void checkPreconditions(const Model &m) const override { RC_PRE(!m.backends && m.in_irq()); }
  void apply(Model &m) const override { --m.irq_depth[m.cpu]; }
};

struct AllocPage : Binder {
  explicit AllocPage(const Model &m) {
    const std::string p = take_name(m, 'p');
    stmt = call("alloc_page", {*gen_gfp()}, p);
  }
  void checkPreconditions(const Model &m) const override { check_fresh(m); }
  void apply(Model &m) const override {
    bump(m);
    m.pages.push_back(stmt.bind);
  }
};

struct FreePage : Op {
  explicit FreePage(const Model &m) {
    std::vector<std::string> unmapped;
    for (const std::string &p : m.pages)
      if (!has(m.pinned, p))
        unmapped.push_back(p);
    RC_PRE(!unmapped.empty());
    stmt = call("__free_pages", {name_expr(*rc::gen::elementOf(unmapped)), int_expr(0)});
  }
  void checkPreconditions(const Model &m) const override {
    RC_PRE(has(m.pages, stmt.args[0].text) && !has(m.pinned, stmt.args[0].text));
  }
  void apply(Model &m) const override { drop(m.pages, stmt.args[0].text); }
};

struct FailNth : Op {
  explicit FailNth(const Model &) {
    stmt = call("fail_nth",
                {name_expr(*rc::gen::element<std::string>("alloc_page", "page_table", "vmap_area")),
                 int_expr(*rc::gen::element<u64>(1, 2, 3, 5, 10, 0))});
  }
  void apply(Model &m) const override { m.armed_failure = true; }
};

struct PcpuGet : Binder {
  explicit PcpuGet(const Model &m) {
    const std::string c = take_name(m, 'c');
    const PcpuShape &shape = pcpu_shapes()[*rc::gen::inRange<std::size_t>(0, pcpu_shapes().size())];
    std::vector<Expr> offs, sizes;
    for (u64 x : shape.offsets)
      offs.push_back(int_expr(x));
    for (u64 x : shape.sizes)
      sizes.push_back(int_expr(x));
    stmt = call("pcpu_get_vm_areas",
                {list_expr(std::move(offs)), list_expr(std::move(sizes)),
                 int_expr(shape.offsets.size()), int_expr(shape.align)},
                c);
  }
  void checkPreconditions(const Model &m) const override {
    RC_PRE(!m.backends);
    check_fresh(m);
  }
  void apply(Model &m) const override {
    bump(m);
    m.pcpus.push_back({stmt.bind, stmt.args[2].value});
  }
};

struct PcpuFree : Op {
  explicit PcpuFree(const Model &m) {
    RC_PRE(!m.pcpus.empty());
    const Pcpu c = *rc::gen::elementOf(m.pcpus);
    stmt = call("pcpu_free_vm_areas", {name_expr(c.name), int_expr(c.nr)});
  }
  Pcpu pcpu() const { return {stmt.args[0].text, stmt.args[1].value}; }
  void checkPreconditions(const Model &m) const override { RC_PRE(has(m.pcpus, pcpu())); }
  void apply(Model &m) const override { drop(m.pcpus, pcpu()); }
};

// Repeated types weigh the choice towards allocations and frees, which is
// where placement, lazy purging and reuse happen.
const auto gen_api_command = rc::state::gen::execOneOfWithArgs<
    Alloc, Alloc, Alloc, GetVmArea, FreeVmArea, Free, Free, Free, Vmap, Vmap, VmMapRam, VmMapRam,
    VmUnmapRam, VmUnmapRam, Vread, Vwrite, Probe, Probe, Housekeeping, Cpu, IrqEnter, IrqExit,
    IrqExit, AllocPage, AllocPage, FreePage, FailNth, PcpuGet, PcpuFree>();

const auto gen_backends_command =
    rc::state::gen::execOneOfWithArgs<Alloc, Alloc, Alloc, GetVmArea, FreeVmArea, Free, Free,
                                      FindVmArea, Vmap, Housekeeping, Cpu, AllocPage, AllocPage,
                                      FreePage, FailNth>();

// ---- running a sequence -------------------------------------------------------------

// The finished trace, printed and parsed back: what fails is then exactly
// the text the report shows, with the line numbers it shows.
Trace finish(const Sut &sut, std::string_view config) {
  Trace t = sut.trace;
  const ParseResult cfg = parse_trace("# vmcheck trace v1\nconfig " + std::string(config) + "\n");
  RC_ASSERT(cfg.ok());
  t.config = cfg.trace.config;
  const ParseResult parsed = parse_trace(print_trace(t));
  if (!parsed.ok())
    RC_FAIL("a generated trace does not parse back: " + parsed.error->to_string("generated") +
            "\n" + print_trace(t));
  return parsed.trace;
}

template <typename GenFunc> Sut run_sequence(const Model &initial, const GenFunc &gen_command) {
  const auto cmds = *rc::gen::scale(kSizeScale, rc::state::gen::commands(initial, gen_command));
  Model m = initial;
  Sut sut;
  rc::state::runAll(cmds, m, sut);
  return sut;
}

constexpr std::string_view kTraceBanner =
    "\n---- counterexample as a trace (save it and run `vmcheck replay FILE`) ----\n";

RC_GTEST_PROP(StateVmalloc, engine_and_spec_agree_on_every_command_sequence, ()) {
  const Sut sut = run_sequence(Model{}, gen_api_command);
  const Trace trace = finish(sut, kApiConfig);
  ReplayOptions opts;
  opts.differential = true;
  const ReplayResult r = replay(trace, opts);
  // How much of the sequence the spec followed: it stops comparing after an
  // op it cannot follow (a failed vm_map_ram), and the rest runs on the
  // engine alone with its invariants.
  std::string followed = "spec compared to the end";
  for (const Stmt &s : trace.stmts)
    if (r.spec_stopped_at != 0 && s.line == r.spec_stopped_at)
      followed = "spec stopped after " + s.op;
  RC_TAG(followed);
  if (r.status != ReplayStatus::Ok)
    RC_FAIL(r.report("counterexample.trace") + std::string(kTraceBanner) + print_trace(trace));
}

RC_GTEST_PROP(StateVmalloc, legacy_and_modern_backends_agree_with_lazy_purging_off, ()) {
  Model initial;
  initial.backends = true;
  const Sut sut = run_sequence(initial, gen_backends_command);
  const Trace trace = finish(sut, kBackendsConfig);
  const FuzzOutcome o = run_fuzz_trace(FuzzTarget::Backends, trace);
  if (o.finding)
    RC_FAIL(o.report + std::string(kTraceBanner) + o.trace);
}

} // namespace
} // namespace vmcheck
