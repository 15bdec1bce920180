// The bounded model checker (explore.h): the BFS, the replay of stored
// paths, the checks on each new state and the trace of a violation.
#include "harness/explore.h"

#include "harness/engine_target.h"
#include "harness/eval.h"
#include "harness/spec_target.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <memory>

namespace vmcheck {

// ---- configuration --------------------------------------------------------------------

MachineConfig ExploreConfig::small_machine() {
  MachineConfig m;
  m.cpus = 2;
  m.nodes = 1;
  m.mem_per_node = u64{8} << 20;
  m.lazy_pages = 4;
  return m;
}

namespace {

constexpr unsigned kMaxDomain = 16; // sizes and aligns: indices fit a Move byte with room
constexpr unsigned kMaxDepth = 200; // handle indices fit a Move byte

std::optional<u64> parse_u64(std::string_view s) {
  u64 v = 0;
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || s.empty())
    return std::nullopt;
  return v;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  while (true) {
    const std::size_t i = s.find(sep);
    out.push_back(s.substr(0, i));
    if (i == std::string_view::npos)
      return out;
    s.remove_prefix(i + 1);
  }
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

std::string join(const std::vector<u64> &v) {
  std::string s;
  for (u64 x : v)
    s += (s.empty() ? "" : ",") + std::to_string(x);
  return s;
}

} // namespace

std::string ExploreConfig::set(std::string_view key, std::string_view value) {
  const std::string what = std::string(key) + "=" + std::string(value) + ": ";
  auto list = [&](std::vector<u64> &out) -> std::string {
    std::vector<u64> v;
    for (std::string_view item : split(value, ',')) {
      auto n = parse_u64(trim(item));
      if (!n || *n == 0 || *n > 4096)
        return what + "expected a comma-separated list of page counts from 1 to 4096";
      v.push_back(*n);
    }
    out = std::move(v);
    return {};
  };
  auto number = [&](u64 lo, u64 hi, auto &out) -> std::string {
    auto n = parse_u64(value);
    if (!n || *n < lo || *n > hi)
      return what + "expected a number from " + std::to_string(lo) + " to " + std::to_string(hi);
    out = static_cast<std::remove_reference_t<decltype(out)>>(*n);
    return {};
  };
  if (key == "sizes")
    return list(sizes);
  if (key == "aligns")
    return list(aligns);
  if (key == "depth")
    return number(0, kMaxDepth, depth);
  if (key == "max-live")
    return number(0, 64, max_live);
  if (key == "max-states")
    return number(0, UINT64_MAX, max_states);
  if (key == "time-limit") {
    auto n = parse_u64(value);
    if (!n)
      return what + "expected whole seconds";
    time_limit = static_cast<double>(*n);
    return {};
  }
  if (key == "spec") {
    if (value != "on" && value != "off")
      return what + "expected on or off";
    differential = value == "on";
    return {};
  }
  if (key == "moves") {
    bool vf = false, va = false, pr = false, ir = false, de = false, pu = false;
    for (std::string_view m : split(value, ',')) {
      m = trim(m);
      if (m == "vfree")
        vf = true;
      else if (m == "vfree_atomic")
        va = true;
      else if (m == "probe")
        pr = true;
      else if (m == "irq")
        ir = true;
      else if (m == "deferred")
        de = true;
      else if (m == "purge")
        pu = true;
      else if (m != "alloc" && !m.empty())
        return what + "unknown move '" + std::string(m) +
               "' (known: alloc vfree vfree_atomic probe irq deferred purge)";
    }
    vfree = vf, vfree_atomic = va, probe = pr, irq = ir, deferred = de, purge = pu;
    return {};
  }
  if (const std::string err = machine.set(key, value); !err.empty())
    return err.rfind("config: unknown key", 0) == 0
               ? "unknown key '" + std::string(key) +
                     "' (known: depth sizes aligns max-live max-states time-limit spec moves, "
                     "and the machine's cpus nodes mem paging backend lazy tlb shootdown)"
               : err;
  return {};
}

std::string ExploreConfig::load(std::string_view text) {
  int line_no = 0;
  for (std::string_view line : split(text, '\n')) {
    ++line_no;
    line = trim(line.substr(0, line.find('#')));
    if (line.empty())
      continue;
    const std::size_t eq = line.find('=');
    if (eq == std::string_view::npos)
      return "line " + std::to_string(line_no) + ": expected key=value";
    if (std::string err = set(trim(line.substr(0, eq)), trim(line.substr(eq + 1))); !err.empty())
      return "line " + std::to_string(line_no) + ": " + err;
  }
  return {};
}

std::string ExploreConfig::validate() const {
  if (const std::string err = machine.validate(); !err.empty())
    return err;
  if (sizes.empty() || aligns.empty())
    return "sizes and aligns must not be empty";
  if (sizes.size() > kMaxDomain || aligns.size() > kMaxDomain)
    return "at most " + std::to_string(kMaxDomain) + " sizes and aligns";
  for (u64 a : aligns)
    if (!is_power_of_2(a))
      return "align " + std::to_string(a) + " is not a power of two";
  if (depth > kMaxDepth)
    return "depth must be at most " + std::to_string(kMaxDepth);
  if (machine.cpus > 64)
    return "at most 64 CPUs";
  return {};
}

std::string ExploreConfig::to_string() const {
  std::string moves = "alloc";
  for (auto [on, name] : {std::pair{vfree, "vfree"},
                          {vfree_atomic, "vfree_atomic"},
                          {probe, "probe"},
                          {irq, "irq"},
                          {deferred, "deferred"},
                          {purge, "purge"}})
    if (on)
      moves += std::string(",") + name;
  char limit[32];
  std::snprintf(limit, sizeof limit, "%.0f", time_limit);
  return machine.to_string() + " depth=" + std::to_string(depth) + " sizes=" + join(sizes) +
         " aligns=" + join(aligns) + " max-live=" + std::to_string(max_live) + " moves=" + moves +
         " spec=" + (differential ? "on" : "off") +
         (max_states ? " max-states=" + std::to_string(max_states) : "") +
         (time_limit > 0 ? std::string(" time-limit=") + limit : "");
}

namespace {

// ---- one run: the engine, the spec following it, and what the trace holds ----------------

// What every run of one exploration shares: the config, the ops, the values
// of the named constants the moves pass.
struct Env {
  const ExploreConfig &cfg;
  OpTable ops;
  const OpDef *op_cpu, *op_vmalloc, *op_vmalloc_node, *op_vfree, *op_vfree_atomic, *op_probe,
      *op_irq_enter, *op_irq_exit, *op_run_deferred, *op_run_deferred_one, *op_purge,
      *op_tlb_deliver;
  Value gfp_kernel, page_kernel, numa_no_node, read;
  bool lru_ranks;

  explicit Env(const ExploreConfig &c) : cfg(c), ops(default_op_table()) {
    register_explore_ops(ops);
    auto op = [&](const char *name) { return ops.find(name); };
    op_cpu = op("cpu");
    op_vmalloc = op("vmalloc");
    op_vmalloc_node = op("__vmalloc_node");
    op_vfree = op("vfree");
    op_vfree_atomic = op("vfree_atomic");
    op_probe = op("probe");
    op_irq_enter = op("irq_enter");
    op_irq_exit = op("irq_exit");
    op_run_deferred = op("run_deferred");
    op_run_deferred_one = op("run_deferred_one");
    op_purge = op("purge");
    op_tlb_deliver = op("tlb_deliver");
    auto constant = [&](const char *name) {
      Expr e;
      e.kind = ExprKind::Name;
      e.text = name;
      return evaluate(e, {}, ops).value;
    };
    gfp_kernel = constant("GFP_KERNEL");
    page_kernel = constant("PAGE_KERNEL");
    numa_no_node = constant("NUMA_NO_NODE");
    read = Value::symbol("read");
    // A path of `depth` moves makes at most `depth` TLB fills per CPU: while
    // that cannot fill a TLB, no eviction happens and the LRU order cannot
    // influence anything within the bound.
    lru_ranks = cfg.depth >= cfg.machine.tlb_entries;
  }
};

struct Handle {
  u64 addr = 0;      // 0: the allocation returned NULL
  bool live = false; // the trace still owns it (not freed, not queued for freeing)
};

// The result of a failed check: headline and details.
struct Failure {
  std::string message;
  std::vector<std::string> details;
};

// The name the trace binds the i-th allocation of a path to: a, b, ..., z,
// a1, b1, ...; the explorer never binds a reserved word.
std::string handle_name(std::size_t i) {
  std::string s(1, static_cast<char>('a' + i % 26));
  if (i >= 26)
    s += std::to_string(i / 26);
  return s;
}

Expr int_expr(u64 v) {
  Expr e;
  e.kind = ExprKind::Int;
  e.value = v;
  return e;
}

Expr name_expr(std::string name) {
  Expr e;
  e.kind = ExprKind::Name;
  e.text = std::move(name);
  return e;
}

// n pages written as the trace language would: 4096, 3*4096.
Expr pages_expr(u64 n) {
  if (n == 1)
    return int_expr(PAGE_SIZE);
  Expr e;
  e.kind = ExprKind::Mul;
  e.kids = {int_expr(n), int_expr(PAGE_SIZE)};
  return e;
}

class World {
public:
  explicit World(const Env &env)
      : env_(env), engine_(env.cfg.machine), pending_(env.cfg.machine.cpus) {
    if (env.cfg.differential)
      spec_ = std::make_unique<SpecTarget>(env.cfg.machine);
  }

  Kernel &kernel() { return engine_.kernel(); }
  bool spec_attached() const { return spec_ != nullptr; }
  void record_into(std::vector<Stmt> *stmts) { stmts_ = stmts; }

  // The moves enabled here, in a fixed order.
  void moves(std::vector<Move> &out) {
    out.clear();
    const ExploreConfig &cfg = env_.cfg;
    const Machine &m = engine_.kernel().machine();
    const bool modern = cfg.machine.backend == Backend::Modern;
    const auto live = static_cast<unsigned>(
        std::count_if(handles_.begin(), handles_.end(), [](const Handle &h) { return h.live; }));
    // shootdown=async: the CPU that started a purge waits for its flush and
    // does nothing else; whatever it would do after the flush is reached
    // through the TlbDeliver moves first (an op on it would deliver them).
    const Vmalloc &v = engine_.kernel().vmalloc();
    // (-1: nobody waits; a plain int, since g++ 12 misreads an optional here.)
    const long waiting = v.shootdown_in_flight() ? static_cast<long>(v.shootdown_initiator()) : -1;
    unsigned worker_cpu = 0;
    while (waiting == static_cast<long>(worker_cpu) && worker_cpu + 1 < m.num_online_cpus())
      ++worker_cpu;
    const auto worker = static_cast<std::uint8_t>(worker_cpu);
    for (unsigned cpu = 0; cpu < m.num_online_cpus(); ++cpu) {
      if (waiting == static_cast<long>(cpu))
        continue;
      const auto c = static_cast<std::uint8_t>(cpu);
      const bool in_irq = m.cpu(cpu).irq_depth > 0;
      // vmalloc may sleep: never from interrupt context.
      if (!in_irq && live < cfg.max_live)
        for (std::size_t s = 0; s < cfg.sizes.size(); ++s)
          for (std::size_t a = 0; a < cfg.aligns.size(); ++a)
            out.push_back(
                {MoveKind::Alloc, c, static_cast<std::uint8_t>(s), static_cast<std::uint8_t>(a)});
      for (std::size_t i = 0; i < handles_.size(); ++i) {
        if (!handles_[i].live)
          continue;
        const auto h = static_cast<std::uint8_t>(i);
        // The legacy backend has no deferral: vfree in interrupt context is a BUG there.
        if (cfg.vfree && (!in_irq || modern))
          out.push_back({MoveKind::Vfree, c, h, 0});
        if (cfg.vfree_atomic && modern)
          out.push_back({MoveKind::VfreeAtomic, c, h, 0});
        if (cfg.probe)
          out.push_back({MoveKind::Probe, c, h, 0});
      }
      if (cfg.irq)
        out.push_back({in_irq ? MoveKind::IrqExit : MoveKind::IrqEnter, c, 0, 0});
    }
    if (cfg.deferred && m.deferred().pending() > 0)
      out.push_back({MoveKind::DeferredStep, worker, 0, 0});
    if (cfg.purge && !v.lazy_areas().empty())
      out.push_back({MoveKind::PurgeWorker, worker, 0, 0});
    // A delivery is not an action of the current CPU: it keeps cpu_, so
    // the trace needs no cpu() switch for it.
    for (unsigned target : v.shootdown_pending())
      out.push_back({MoveKind::TlbDeliver, static_cast<std::uint8_t>(cpu_),
                     static_cast<std::uint8_t>(target), 0});
  }

  // Runs one move. With `check`, a failure of the transition itself (a
  // kernel BUG, a finding, a spec disagreement on the result) is returned;
  // replays of known paths skip the checks.
  std::optional<Failure> run(const Move &mv, bool check) {
    if (mv.cpu != cpu_) {
      if (auto f = call(*env_.op_cpu, {Value::integer(mv.cpu)}, {int_expr(mv.cpu)}, "", check))
        return f;
      cpu_ = mv.cpu;
    }
    const ExploreConfig &cfg = env_.cfg;
    switch (mv.kind) {
    case MoveKind::Alloc: {
      const u64 size = cfg.sizes[mv.arg] * PAGE_SIZE;
      const u64 align = cfg.aligns[mv.arg2] * PAGE_SIZE;
      const std::string name = handle_name(handles_.size());
      std::optional<Failure> f;
      if (align == PAGE_SIZE)
        f = call(*env_.op_vmalloc, {Value::integer(size)}, {pages_expr(cfg.sizes[mv.arg])}, name,
                 check);
      else
        f = call(*env_.op_vmalloc_node,
                 {Value::integer(size), Value::integer(align), env_.gfp_kernel, env_.page_kernel,
                  env_.numa_no_node},
                 {pages_expr(cfg.sizes[mv.arg]), pages_expr(cfg.aligns[mv.arg2]),
                  name_expr("GFP_KERNEL"), name_expr("PAGE_KERNEL"), name_expr("NUMA_NO_NODE")},
                 name, check);
      const Value &v = last_.result.value;
      const u64 addr = v.kind == ValueKind::Int ? v.num : 0;
      handles_.push_back({addr, addr != 0});
      return f;
    }
    case MoveKind::Vfree:
    case MoveKind::VfreeAtomic: {
      Handle &h = handles_[mv.arg];
      const bool deferred = mv.kind == MoveKind::VfreeAtomic || kernel().machine().in_interrupt();
      h.live = false;
      auto f = call(mv.kind == MoveKind::Vfree ? *env_.op_vfree : *env_.op_vfree_atomic,
                    {Value::integer(h.addr)}, {name_expr(handle_name(mv.arg))}, "", check);
      if (deferred)
        pending_[mv.cpu].push_back(h.addr);
      return f;
    }
    case MoveKind::Probe: {
      auto f = call(*env_.op_probe, {Value::integer(handles_[mv.arg].addr), env_.read},
                    {name_expr(handle_name(mv.arg)), name_expr("read")}, "", check);
      // A live handle's first page is mapped: any fault there is the kernel's.
      const Value &v = last_.result.value;
      if (!f && check && !(v.kind == ValueKind::Symbol && v.text == "ok"))
        f = Failure{"read of live area " + hex(handles_[mv.arg].addr) +
                        " faulted: " + value_to_string(v),
                    {}};
      return f;
    }
    case MoveKind::IrqEnter:
      return call(*env_.op_irq_enter, {}, {}, "", check);
    case MoveKind::IrqExit:
      return call(*env_.op_irq_exit, {}, {}, "", check);
    case MoveKind::DeferredStep: {
      const DeferredWork &q = kernel().machine().deferred();
      const WorkItem &front = q.items().front();
      if (front.kind == "vfree_deferred" && front.arg < pending_.size())
        pending_[front.arg].clear();
      // With one item queued, run_deferred() is the same step and every
      // replayer (and the spec) knows it.
      if (q.pending() == 1)
        return call(*env_.op_run_deferred, {}, {}, "", check);
      // The spec runs its queue only as a whole (it does not model
      // run_deferred_one): call() detaches it, and from here on this path is
      // checked on the engine alone.
      return call(*env_.op_run_deferred_one, {}, {}, "", check);
    }
    case MoveKind::PurgeWorker:
      return call(*env_.op_purge, {}, {}, "", check);
    case MoveKind::TlbDeliver:
      return call(*env_.op_tlb_deliver, {Value::integer(mv.arg)}, {int_expr(mv.arg)}, "", check);
    }
    return std::nullopt;
  }

  // Every check of a state: the engine's invariants, the spec's view, the
  // trace's accounting of its handles, the test hook.
  std::optional<Failure> check_state(const ExploreHooks &hooks) {
    if (std::string v = engine_.check(); !v.empty())
      return Failure{"invariant violated: " + v, {}};
    if (spec_) {
      std::string why = spec_->compare_state(kernel());
      if (why.empty())
        why = spec_->spec().check();
      if (!why.empty())
        return Failure{"engine and spec disagree: " + why, {spec_->state_diff(kernel())}};
    }
    if (std::string v = check_accounting(); !v.empty())
      return Failure{"accounting: " + v, {}};
    if (hooks.extra_check)
      if (std::string v = hooks.extra_check(kernel()); !v.empty())
        return Failure{v, {}};
    return std::nullopt;
  }

  u64 hash() {
    live_.clear();
    for (const Handle &h : handles_)
      if (h.live)
        live_.push_back(h.addr);
    return canonical_state_hash(kernel(), live_, pending_, env_.lru_ranks);
  }

private:
  // Runs one op on the engine and on the spec (while it follows), records
  // the statement, and with `check` judges the transition.
  std::optional<Failure> call(const OpDef &op, std::vector<Value> args, std::vector<Expr> exprs,
                              const std::string &bind, bool check) {
    if (stmts_) {
      Stmt s;
      s.bind = bind;
      s.is_call = true;
      s.op = op.name;
      s.args = std::move(exprs);
      stmts_->push_back(std::move(s));
    }
    last_ = engine_.run(op, args);
    std::string spec_why;
    if (spec_ && SpecTarget::models(op.name))
      spec_why = spec_->run_and_compare(op.name, args, last_);
    else
      spec_.reset();
    if (!check)
      return std::nullopt;
    std::vector<std::string> diags;
    for (const Diagnostic &d : last_.diags)
      diags.push_back("diagnostic: " + d.to_string());
    if (last_.bug)
      return Failure{"kernel BUG: " + *last_.bug, diags};
    if (last_.result.arg_error)
      return Failure{"explorer built a bad call: " + last_.result.arg_error->message, diags};
    for (const Diagnostic &d : last_.diags)
      if (d.kind == DiagKind::Finding)
        return Failure{"finding: " + d.to_string(), diags};
    if (!last_.result.divergence.empty())
      return Failure{last_.result.divergence, diags};
    if (!spec_why.empty())
      return Failure{"engine and spec disagree: " + spec_why, diags};
    return std::nullopt;
  }

  // Every live vm_struct is held by exactly one live handle or queued in one
  // CPU's deferred list, and nothing the trace freed is still there once
  // its CPU's work item has run.
  std::string check_accounting() {
    const Vmalloc &v = engine_.kernel().vmalloc();
    std::vector<u64> owned;
    for (const Handle &h : handles_)
      if (h.live)
        owned.push_back(h.addr);
    for (const auto &list : pending_)
      owned.insert(owned.end(), list.begin(), list.end());
    std::sort(owned.begin(), owned.end());
    if (std::adjacent_find(owned.begin(), owned.end()) != owned.end())
      return "an area is held twice";
    std::vector<u64> areas;
    for (const auto &[start, va] : v.busy_areas())
      if (va.vm_id != 0)
        areas.push_back(start);
    for (u64 a : areas)
      if (!std::binary_search(owned.begin(), owned.end(), a))
        return "area " + hex(a) + " is live but the trace freed it (a lost free)";
    for (u64 a : owned)
      if (!std::binary_search(areas.begin(), areas.end(), a))
        return "area " + hex(a) + " is gone but was never freed";
    const DeferredWork &q = engine_.kernel().machine().deferred();
    for (std::size_t c = 0; c < pending_.size(); ++c)
      if (!pending_[c].empty() && !q.is_pending("vfree_deferred", c))
        return "cpu " + std::to_string(c) + " has deferred frees but no work item queued";
    return {};
  }

  // EngineTarget keeps a reference to nothing of ours; World is not moved.
  const Env &env_;
  EngineTarget engine_;
  std::unique_ptr<SpecTarget> spec_;
  std::vector<Handle> handles_;
  std::vector<std::vector<u64>> pending_; // per CPU, the vfree_atomic list, oldest first
  std::vector<u64> live_;                 // scratch for hash()
  unsigned cpu_ = 0;
  OpOutcome last_;
  std::vector<Stmt> *stmts_ = nullptr;
};

// ---- the visited set ----------------------------------------------------------------------

// Open addressing over 64-bit hashes (0 is the empty slot, so a hash of 0
// is stored as 1). Deterministic: nothing iterates it.
class HashSet {
public:
  HashSet() : slots_(1u << 16, 0) {}
  // True when h was not in the set.
  bool insert(u64 h) {
    if (h == 0)
      h = 1;
    if ((count_ + 1) * 2 > slots_.size())
      grow();
    if (!place(slots_, h))
      return false;
    ++count_;
    return true;
  }
  std::size_t size() const { return count_; }

private:
  static bool place(std::vector<u64> &slots, u64 h) {
    const std::size_t mask = slots.size() - 1;
    for (std::size_t i = h & mask;; i = (i + 1) & mask) {
      if (slots[i] == h)
        return false;
      if (slots[i] == 0) {
        slots[i] = h;
        return true;
      }
    }
  }
  void grow() {
    std::vector<u64> bigger(slots_.size() * 2, 0);
    for (u64 h : slots_)
      if (h != 0)
        place(bigger, h);
    slots_.swap(bigger);
  }
  std::vector<u64> slots_;
  std::size_t count_ = 0;
};

// ---- the search -------------------------------------------------------------------------------

// A unique state: the move that first reached it and the state it left.
struct Node {
  std::uint32_t parent = 0;
  Move move;
};

class Explorer {
public:
  Explorer(const ExploreConfig &cfg, const ExploreHooks &hooks)
      : env_(cfg), hooks_(hooks), start_(std::chrono::steady_clock::now()),
        cpu_start_(std::clock()) {}

  ExploreResult run() {
    const ExploreConfig &cfg = env_.cfg;
    {
      World root(env_);
      if (auto f = root.check_state(hooks_)) {
        fail(0, std::nullopt, *f);
        return finish();
      }
      visited_.insert(root.hash());
    }
    nodes_.push_back({});
    result_.stats.unique = 1;
    result_.stats.new_at_depth.push_back(1);
    result_.stats.moves_at_depth.push_back(0);
    std::size_t level_begin = 0;
    for (unsigned d = 0; d < cfg.depth; ++d) {
      const std::size_t level_end = nodes_.size();
      result_.stats.new_at_depth.push_back(0);
      result_.stats.moves_at_depth.push_back(0);
      result_.stats.depth = d + 1;
      for (std::size_t n = level_begin; n < level_end; ++n)
        if (!expand(static_cast<std::uint32_t>(n), d + 1))
          return finish();
      level_begin = level_end;
      report_progress();
      if (nodes_.size() == level_end) {
        result_.stats.exhausted = true;
        result_.stop_reason = "exhausted";
        result_.stats.complete = true;
        return finish();
      }
    }
    result_.stop_reason = "depth bound";
    result_.stats.complete = true;
    return finish();
  }

private:
  void path_to(std::uint32_t n, std::vector<Move> &out) const {
    out.clear();
    while (n != 0) {
      out.push_back(nodes_[n].move);
      n = nodes_[n].parent;
    }
    std::reverse(out.begin(), out.end());
  }

  std::unique_ptr<World> rebuild(const std::vector<Move> &path) {
    auto w = std::make_unique<World>(env_);
    for (const Move &m : path)
      w->run(m, false);
    return w;
  }

  // Generates every successor of node n (at depth `depth`); false when the
  // search must stop.
  bool expand(std::uint32_t n, unsigned depth) {
    path_to(n, path_);
    std::unique_ptr<World> w = rebuild(path_);
    w->moves(moves_);
    const std::vector<Move> moves = moves_;
    for (std::size_t i = 0; i < moves.size(); ++i) {
      if (i > 0)
        w = rebuild(path_);
      ExploreStats &st = result_.stats;
      ++st.transitions;
      ++st.moves_at_depth[depth];
      if (auto f = w->run(moves[i], true)) {
        fail(n, moves[i], *f);
        return false;
      }
      if (visited_.insert(w->hash())) {
        if (auto f = w->check_state(hooks_)) {
          fail(n, moves[i], *f);
          return false;
        }
        nodes_.push_back({n, moves[i]});
        ++st.unique;
        ++st.new_at_depth[depth];
        st.engine_only += !w->spec_attached() && env_.cfg.differential;
      }
      if ((st.transitions & 4095) == 0) {
        report_progress();
        if (env_.cfg.max_states && st.transitions >= env_.cfg.max_states) {
          result_.stop_reason = "max-states";
          return false;
        }
        if (env_.cfg.time_limit > 0 && elapsed() >= env_.cfg.time_limit) {
          result_.stop_reason = "time-limit";
          return false;
        }
      }
    }
    return true;
  }

  double elapsed() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

  void stamp() {
    result_.stats.seconds = elapsed();
    result_.stats.cpu_seconds = static_cast<double>(std::clock() - cpu_start_) / CLOCKS_PER_SEC;
  }

  void report_progress() {
    stamp();
    if (hooks_.progress)
      hooks_.progress(result_.stats);
  }

  ExploreResult finish() {
    stamp();
    return std::move(result_);
  }

  // Rebuilds the failing path once more, recording its statements, and
  // turns it into the violation report.
  void fail(std::uint32_t n, std::optional<Move> last, const Failure &f) {
    std::vector<Move> path;
    if (last) {
      path_to(n, path);
      path.push_back(*last);
    }
    std::vector<Stmt> stmts;
    World w(env_);
    w.record_into(&stmts);
    for (const Move &m : path)
      w.run(m, false);
    ExploreViolation v;
    v.message = f.message;
    v.details = f.details;
    v.depth = static_cast<unsigned>(path.size());
    ConfigLine config;
    const std::string machine = env_.cfg.machine.to_string();
    for (std::string_view pair : split(machine, ' ')) {
      const std::size_t eq = pair.find('=');
      config.pairs.push_back(
          {std::string(pair.substr(0, eq)), std::string(pair.substr(eq + 1)), 0});
    }
    v.trace.config = std::move(config);
    v.trace.stmts = std::move(stmts);
    std::string text = print_trace(v.trace);
    const std::size_t header_end = text.find('\n') + 1;
    std::string comments = "# found by vmcheck explore (" + env_.cfg.to_string() + ")\n";
    comments += "# shortest path (" + std::to_string(v.depth) + " moves) to: " + f.message + "\n";
    text.insert(header_end, comments);
    v.text = std::move(text);
    result_.violation = std::move(v);
    result_.stop_reason = "violation";
  }

  Env env_;
  const ExploreHooks &hooks_;
  std::chrono::steady_clock::time_point start_;
  std::clock_t cpu_start_;
  ExploreResult result_;
  HashSet visited_;
  std::vector<Node> nodes_;
  std::vector<Move> path_;
  std::vector<Move> moves_;
};

} // namespace

ExploreResult explore(const ExploreConfig &cfg, const ExploreHooks &hooks) {
  return Explorer(cfg, hooks).run();
}

} // namespace vmcheck
