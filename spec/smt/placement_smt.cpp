// Encoding: linear integer arithmetic (QF_LIA). The search queries ("does a
// higher / lower / any base fit") work in page units with one unknown, the
// base = align * k for a fresh integer k, which the research notes measured
// as the fast form of alignment; integers cannot wrap, so the bogus fits at
// the top of the address space that 64-bit bit-vectors produce cannot
// happen. Measured on the worst-case fit query (1000 areas, all in the
// window): Int 37 ms, BV64 with no-overflow guards 4.3 s. The validity queries bind the returned
// addresses in bytes (so a sub-page misalignment is visible) and ask for a constraint that fails.
//
// Every query is built so that SAT means "the property is violated" and the
// model is the witness. A search query only lists the reserved areas that can
// meet an area somewhere in the base's window: the others are disjoint from
// every candidate, so dropping them changes no answer.
#include "spec/smt/placement_smt.h"

#include <z3++.h>

#include <algorithm>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <limits>
#include <optional>
#include <utility>

namespace vmcheck::smt {

namespace {

using i64 = std::int64_t;

std::string hex(u64 v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%" PRIx64, v);
  return buf;
}

std::string range_text(u64 start, u64 end) {
  return "[" + hex(start) + ", " + hex(end) + ")";
}

std::string area_text(const Snapshot &snap, std::size_t j) {
  const ReservedArea &r = snap.reserved[j];
  std::string s = std::string(r.lazy ? "lazy" : "busy") + " area " + std::to_string(j) + " " +
                  range_text(r.start, r.end);
  if (r.has_guard)
    s += " (guard page " + hex(r.end - PAGE_SIZE) + ")";
  return s;
}

i64 pages_down(u64 bytes) {
  return static_cast<i64>(bytes / PAGE_SIZE);
}

i64 pages_up(u64 bytes) {
  return static_cast<i64>(bytes / PAGE_SIZE + (bytes % PAGE_SIZE != 0));
}

u64 effective_align(u64 align) {
  return std::max(align, PAGE_SIZE);
}

bool overlaps(u64 start, u64 end, const ReservedArea &r) {
  return start < r.end && r.start < end;
}

CheckResult unknown(std::string name, std::string why) {
  CheckResult r;
  r.status = Status::Unknown;
  r.name = std::move(name);
  r.counterexample = std::move(why);
  return r;
}

// Empty when the snapshot satisfies its invariant, else what is wrong.
std::string malformed_snapshot(const Snapshot &snap) {
  if (snap.vmalloc_start >= snap.vmalloc_end)
    return "malformed snapshot: empty vmalloc range";
  auto bad_range = [&](u64 start, u64 end) {
    return !page_aligned(start) || !page_aligned(end) || start >= end;
  };
  for (std::size_t j = 0; j < snap.reserved.size(); ++j) {
    const ReservedArea &r = snap.reserved[j];
    if (bad_range(r.start, r.end) || r.start < snap.vmalloc_start || r.end - 1 > snap.vmalloc_end)
      return "malformed snapshot: reserved area " + std::to_string(j) + " " +
             range_text(r.start, r.end) + " is not a page-aligned range inside the vmalloc range";
  }
  for (const AddrRange &f : snap.free_blocks)
    if (bad_range(f.start, f.end))
      return "malformed snapshot: free block " + range_text(f.start, f.end) +
             " is not page-aligned";
  for (const AddrRange &p : snap.present_ptes)
    if (bad_range(p.start, p.end))
      return "malformed snapshot: PTE range " + range_text(p.start, p.end) + " is not page-aligned";
  return {};
}

// Empty when the request is one pcpu_get_vm_areas accepts, else why not
// (the kernel BUG()s or refuses: nothing to check then).
std::string malformed_pcpu(const PcpuCall &call) {
  if (call.offsets.empty() || call.offsets.size() != call.sizes.size())
    return "malformed call: needs as many sizes as offsets, at least one";
  if (!page_aligned(call.align) || !is_power_of_2(call.align))
    return "malformed call: align " + hex(call.align) + " is not a page-aligned power of two";
  for (std::size_t i = 0; i < call.offsets.size(); ++i) {
    const u64 off = call.offsets[i];
    const u64 size = call.sizes[i];
    if (off % call.align != 0 || size % call.align != 0 || size == 0 || off + size < off)
      return "malformed call: area " + std::to_string(i) + " is empty, wraps or is unaligned";
    for (std::size_t j = 0; j < i; ++j)
      if (call.offsets[j] < off + size && off < call.offsets[j] + call.sizes[j])
        return "malformed call: areas " + std::to_string(j) + " and " + std::to_string(i) +
               " overlap";
  }
  if (!call.addrs.empty() && call.addrs.size() != call.offsets.size())
    return "malformed call: " + std::to_string(call.addrs.size()) + " addresses for " +
           std::to_string(call.offsets.size()) + " areas";
  return {};
}

std::string malformed_vmalloc(const VmallocCall &call) {
  if (call.size == 0 || !page_aligned(call.size))
    return "malformed call: size " + hex(call.size) + " is not a positive page multiple";
  if (!is_power_of_2(call.align))
    return "malformed call: align " + hex(call.align) + " is not a power of two";
  return {};
}

// The search problem behind checks 2 and 3: rigid areas [B + off_i, B + end_i)
// (pages) moved together by an unknown base B = align * k with lo <= B <= hi,
// which must miss every obstacle [lo, hi) (pages, guard included).
struct Obstacle {
  i64 lo;
  i64 hi;
};

struct FitProblem {
  std::vector<i64> offs;
  std::vector<i64> ends;
  i64 align = 1;
  i64 lo = 0;
  i64 hi = -1;
  std::vector<Obstacle> obstacles;
};

std::vector<Obstacle> obstacles_of(const Snapshot &snap, bool lazy_reserved) {
  std::vector<Obstacle> out;
  for (const ReservedArea &r : snap.reserved)
    if (lazy_reserved || !r.lazy)
      out.push_back({pages_down(r.start), pages_down(r.end)});
  return out;
}

FitProblem pcpu_problem(const Snapshot &snap, const PcpuCall &call, bool lazy_reserved) {
  FitProblem p;
  i64 span = 0;
  for (std::size_t i = 0; i < call.offsets.size(); ++i) {
    p.offs.push_back(pages_down(call.offsets[i]));
    p.ends.push_back(pages_down(call.offsets[i] + call.sizes[i]));
    span = std::max(span, p.ends.back());
  }
  p.align = pages_down(call.align);
  // The kernel bounds the base itself from below (its underflow test) and the
  // highest area end from above by VMALLOC_END rounded down to align.
  p.lo = pages_up(snap.vmalloc_start);
  p.hi = pages_down(snap.vmalloc_end & ~(call.align - 1)) - span;
  p.obstacles = obstacles_of(snap, lazy_reserved);
  return p;
}

FitProblem vmalloc_problem(const Snapshot &snap, const VmallocCall &call, bool lazy_reserved) {
  FitProblem p;
  p.offs = {0};
  p.ends = {pages_down(call.size)};
  p.align = pages_down(effective_align(call.align));
  p.lo = pages_up(std::max(call.vstart, snap.vmalloc_start));
  p.hi = pages_down(std::min(call.vend, snap.vmalloc_end)) - p.ends[0];
  p.obstacles = obstacles_of(snap, lazy_reserved);
  return p;
}

// [lo, hi) in pages.
struct PageSpan {
  i64 lo;
  i64 hi;
};

// The pages lying in at least two of the spans, as spans: in start order,
// span k's pages below the highest end of the spans before it.
std::vector<PageSpan> covered_twice(std::vector<PageSpan> spans) {
  std::sort(spans.begin(), spans.end(),
            [](const PageSpan &a, const PageSpan &b) { return a.lo < b.lo; });
  std::vector<PageSpan> out;
  i64 highest_end = std::numeric_limits<i64>::min();
  for (const PageSpan &s : spans) {
    const i64 hi = std::min(highest_end, s.hi);
    if (s.lo < hi)
      out.push_back({s.lo, hi});
    highest_end = std::max(highest_end, s.hi);
  }
  return out;
}

// One query's outcome; model only when sat.
struct Answer {
  z3::check_result result;
  std::string reason;
  std::optional<z3::model> model;
};

} // namespace

struct PlacementChecker::Impl {
  z3::context ctx;
  unsigned rlimit;
  // The plain SMT core, without the QF_LIA tactic pipeline: its
  // preprocessing dominated (1000 areas: 12 s with "QF_LIA", 37 ms without).
  z3::solver solver;

  explicit Impl(unsigned limit) : rlimit(limit), solver(make_solver(ctx, limit)) {}

  static z3::solver make_solver(z3::context &c, unsigned limit) {
    z3::solver s(c, z3::solver::simple());
    z3::params p(c);
    p.set("rlimit", limit);
    s.set(p);
    return s;
  }

  // One query's assertions, in a scope of the one solver: popped when the
  // query is done, so no query sees another's. A fresh solver per query
  // cost more than the queries of a small state (setting up the SMT core
  // on its first assertion: about 700,000 instructions).
  class Query {
  public:
    explicit Query(z3::solver &s) : s_(s) { s_.push(); }
    ~Query() { s_.pop(); }
    Query(const Query &) = delete;
    Query &operator=(const Query &) = delete;
    z3::solver &solver() { return s_; }

  private:
    z3::solver &s_;
  };

  z3::expr num(i64 v) { return ctx.int_val(static_cast<int64_t>(v)); }
  z3::expr num_u(u64 v) { return ctx.int_val(static_cast<uint64_t>(v)); }

  Answer run(z3::solver &s) {
    Answer a{s.check(), {}, std::nullopt};
    if (a.result == z3::sat)
      a.model = s.get_model();
    else if (a.result == z3::unknown)
      a.reason = s.reason_unknown();
    return a;
  }

  static u64 value(const z3::model &m, const z3::expr &e) {
    return m.eval(e, true).get_numeral_uint64();
  }

  // Does some base in [lo, hi] fit? The base in bytes when it does.
  struct Search {
    z3::check_result result;
    std::string reason;
    u64 base = 0;
  };

  Search search(const FitProblem &p) {
    Search out{z3::unsat, {}, 0};
    Query q(solver);
    z3::solver &s = q.solver();
    const z3::expr k = ctx.int_const("k");
    const z3::expr base = num(p.align) * k;
    s.add(base >= num(p.lo));
    s.add(base <= num(p.hi));
    for (std::size_t i = 0; i < p.offs.size(); ++i)
      for (const Obstacle &o : p.obstacles) {
        // Area i only ever lies inside [lo + off_i, hi + end_i).
        if (o.hi <= p.lo + p.offs[i] || o.lo >= p.hi + p.ends[i])
          continue;
        s.add(base <= num(o.lo - p.ends[i]) || base >= num(o.hi - p.offs[i]));
      }
    const Answer a = run(s);
    out.result = a.result;
    out.reason = a.reason;
    if (a.model)
      out.base = value(*a.model, base) * PAGE_SIZE;
    return out;
  }

  // Runs one search into r; returns the fitting base when it found one.
  std::optional<u64> count_search(CheckResult &r, const FitProblem &p) {
    const Search s = search(p);
    ++r.queries;
    if (s.result == z3::unsat) {
      ++r.proven;
      return std::nullopt;
    }
    if (s.result == z3::unknown) {
      r.status = Status::Unknown;
      r.counterexample = "z3 returned unknown (" + s.reason + ")";
      return std::nullopt;
    }
    return s.base;
  }

  std::string pcpu_layout(const PcpuCall &call, u64 base) {
    std::string s;
    for (std::size_t i = 0; i < call.offsets.size(); ++i)
      s += (i ? ", " : "") + std::string("area ") + std::to_string(i) + " " +
           range_text(base + call.offsets[i], base + call.offsets[i] + call.sizes[i]);
    return s;
  }

  // A named constraint of a validity query; describe() is only built on failure.
  struct Constraint {
    z3::expr holds;
    std::function<std::string()> describe;
  };

  // Asks for a failing constraint when each of `vars` has its value in
  // `values` (the result under test); fills r accordingly. The negated
  // constraints are asserted with the values substituted, which Z3's
  // simplifier folds as it asserts them: a ground question answered without
  // a search (with the bare bindings, internalising every constraint for the
  // search cost a third of the pcpu target's time). The bindings are
  // asserted too, for the model that names the failing constraints.
  void validity_query(CheckResult &r, const z3::expr_vector &vars, const z3::expr_vector &values,
                      const std::vector<Constraint> &constraints,
                      const std::function<std::string(const z3::model &)> &show_model,
                      const std::string &note) {
    Query q(solver);
    z3::solver &s = q.solver();
    for (unsigned i = 0; i < vars.size(); ++i)
      s.add(vars[i] == values[i]);
    z3::expr_vector all(ctx);
    for (const Constraint &c : constraints)
      all.push_back(c.holds);
    z3::expr_vector from = vars, to = values; // substitute() takes non-const vectors
    s.add(!z3::mk_and(all).substitute(from, to));
    ++r.queries;
    const Answer a = run(s);
    if (a.result == z3::unsat) {
      ++r.proven;
      r.status = Status::Proven;
      return;
    }
    if (a.result == z3::unknown) {
      r.status = Status::Unknown;
      r.counterexample = "z3 returned unknown (" + a.reason + ")";
      return;
    }
    r.status = Status::Violated;
    std::string text = show_model(*a.model) + "; fails:";
    unsigned shown = 0;
    for (const Constraint &c : constraints)
      if (a.model->eval(c.holds, true).is_false() && shown++ < 8)
        text += "\n  " + c.describe();
    if (shown > 8)
      text += "\n  ... and " + std::to_string(shown - 8) + " more";
    r.counterexample = text + note;
  }

  // When the result overlaps a lazy area, the kernel must have purged, which
  // it does only when nothing fits with lazy areas reserved. Returns whether
  // lazy areas may be ignored; fills r and sets *witness on a failure.
  bool purge_justified(CheckResult &r, const FitProblem &with_lazy, bool overlaps_lazy,
                       std::optional<u64> *witness) {
    if (!overlaps_lazy)
      return false;
    *witness = count_search(r, with_lazy);
    return !*witness && r.status != Status::Unknown;
  }

  CheckResult pcpu_placement(const Snapshot &snap, const PcpuCall &call) {
    CheckResult r;
    r.name = "pcpu placement validity";
    if (call.addrs.empty()) {
      r.status = Status::Proven; // NULL places nothing; check 2 judges the failure
      return r;
    }
    const std::size_t n = call.offsets.size();
    bool overlaps_lazy = false;
    for (std::size_t i = 0; i < n; ++i)
      for (const ReservedArea &a : snap.reserved)
        overlaps_lazy |= a.lazy && overlaps(call.addrs[i], call.addrs[i] + call.sizes[i], a);
    std::optional<u64> lazy_witness;
    r.status = Status::Proven;
    const bool skip_lazy =
        purge_justified(r, pcpu_problem(snap, call, true), overlaps_lazy, &lazy_witness);
    if (r.status == Status::Unknown)
      return r;

    z3::expr_vector addr(ctx);
    z3::expr_vector returned(ctx);
    for (std::size_t i = 0; i < n; ++i) {
      addr.push_back(ctx.int_const(("addr" + std::to_string(i)).c_str()));
      returned.push_back(num_u(call.addrs[i]));
    }
    const u64 lo = (snap.vmalloc_start + call.align - 1) & ~(call.align - 1);
    const u64 top = snap.vmalloc_end & ~(call.align - 1);
    const z3::expr base = addr[0] - num_u(call.offsets[0]);
    auto who = [&call](std::size_t i) {
      return "area " + std::to_string(i) + " " +
             range_text(call.addrs[i], call.addrs[i] + call.sizes[i]);
    };
    std::vector<Constraint> cs;
    cs.push_back({base >= num_u(lo), [&call, lo] {
                    return "base at or above ALIGN(vmalloc_start, align) = " + hex(lo) + ": base " +
                           hex(call.addrs[0] - call.offsets[0]);
                  }});
    for (std::size_t i = 0; i < n; ++i) {
      cs.push_back(
          {addr[i] >= num_u(snap.vmalloc_start) && addr[i] + num_u(call.sizes[i]) <= num_u(top),
           [&snap, who, top, i] {
             return "inside the vmalloc range " + range_text(snap.vmalloc_start, top) + ": " +
                    who(i);
           }});
      cs.push_back({z3::mod(addr[i], num_u(call.align)) == 0,
                    [&call, who, i] { return "aligned to " + hex(call.align) + ": " + who(i); }});
      cs.push_back({addr[i] - num_u(call.offsets[i]) == base, [&call, who, i] {
                      return "congruent (addr[i] - offset[i] equal): " + who(i) + " gives base " +
                             hex(call.addrs[i] - call.offsets[i]) + ", area 0 gives " +
                             hex(call.addrs[0] - call.offsets[0]);
                    }});
      for (std::size_t j = 0; j < i; ++j)
        cs.push_back(
            {addr[i] + num_u(call.sizes[i]) <= addr[j] || addr[j] + num_u(call.sizes[j]) <= addr[i],
             [who, i, j] { return "areas disjoint: " + who(i) + " overlaps " + who(j); }});
      for (std::size_t j = 0; j < snap.reserved.size(); ++j) {
        const ReservedArea &o = snap.reserved[j];
        if (o.lazy && skip_lazy)
          continue;
        cs.push_back({addr[i] + num_u(call.sizes[i]) <= num_u(o.start) || addr[i] >= num_u(o.end),
                      [&snap, who, i, j] {
                        return "disjoint from " + area_text(snap, j) +
                               " (guard included): " + who(i);
                      }});
      }
    }
    auto show = [&](const z3::model &m) {
      std::string s = "returned";
      for (std::size_t i = 0; i < n; ++i)
        s += (i ? ", " : " ") + std::string("addr") + std::to_string(i) + " = " +
             hex(value(m, addr[i]));
      return s;
    };
    const std::string note =
        lazy_witness
            ? "\n  (no purge was due: base " + hex(*lazy_witness) +
                  " fits with lazy areas reserved: " + pcpu_layout(call, *lazy_witness) + ")"
            : "";
    validity_query(r, addr, returned, cs, show, note);
    return r;
  }

  CheckResult pcpu_maximal(const Snapshot &snap, const PcpuCall &call) {
    CheckResult r;
    r.status = Status::Proven;
    if (call.addrs.empty()) {
      r.name = "pcpu no false failure";
      if (const std::optional<u64> b = count_search(r, pcpu_problem(snap, call, false))) {
        r.status = Status::Violated;
        r.counterexample = "returned NULL, but base " + hex(*b) +
                           " fits once lazy areas are purged: " + pcpu_layout(call, *b);
      }
      return r;
    }
    r.name = "pcpu top-down maximality";
    const u64 base = call.addrs[0] - call.offsets[0];
    bool overlaps_lazy = false;
    for (std::size_t i = 0; i < call.offsets.size(); ++i)
      for (const ReservedArea &a : snap.reserved)
        overlaps_lazy |=
            a.lazy && overlaps(base + call.offsets[i], base + call.offsets[i] + call.sizes[i], a);
    FitProblem p = pcpu_problem(snap, call, true);
    if (overlaps_lazy) {
      if (const std::optional<u64> b = count_search(r, p)) {
        r.status = Status::Violated;
        r.counterexample = "purge without need: the result overlaps a lazy area, but base " +
                           hex(*b) + " fits with lazy areas reserved: " + pcpu_layout(call, *b);
        return r;
      }
      if (r.status == Status::Unknown)
        return r;
      p = pcpu_problem(snap, call, false);
    }
    p.lo = std::max(p.lo, pages_down(base) + 1);
    if (const std::optional<u64> b = count_search(r, p)) {
      r.status = Status::Violated;
      r.counterexample = "top-down maximality: base " + hex(*b) + " is higher than the returned " +
                         hex(base) + " and also fits (" +
                         (overlaps_lazy ? "after the purge" : "lazy areas reserved") +
                         "): " + pcpu_layout(call, *b);
    }
    return r;
  }

  CheckResult vmalloc_placement(const Snapshot &snap, const VmallocCall &call) {
    CheckResult r;
    r.name = "vmalloc placement validity";
    r.status = Status::Proven;
    if (call.result == 0)
      return r;
    const u64 start = call.result;
    bool overlaps_lazy = false;
    for (const ReservedArea &a : snap.reserved)
      overlaps_lazy |= a.lazy && overlaps(start, start + call.size, a);
    std::optional<u64> lazy_witness;
    const bool skip_lazy =
        purge_justified(r, vmalloc_problem(snap, call, true), overlaps_lazy, &lazy_witness);
    if (r.status == Status::Unknown)
      return r;

    const z3::expr s = ctx.int_const("start");
    z3::expr_vector vars(ctx), returned(ctx);
    vars.push_back(s);
    returned.push_back(num_u(start));
    const z3::expr end = s + num_u(call.size);
    const std::string who = "area " + range_text(start, start + call.size);
    const u64 align = effective_align(call.align);
    std::vector<Constraint> cs;
    cs.push_back(
        {z3::mod(s, num_u(align)) == 0, [=] { return "aligned to " + hex(align) + ": " + who; }});
    cs.push_back({s >= num_u(call.vstart),
                  [=] { return "at or above vstart " + hex(call.vstart) + ": " + who; }});
    cs.push_back({end <= num_u(call.vend),
                  [=] { return "ends at or below vend " + hex(call.vend) + ": " + who; }});
    cs.push_back({s >= num_u(snap.vmalloc_start) && end <= num_u(snap.vmalloc_end), [=, &snap] {
                    return "inside the vmalloc range " +
                           range_text(snap.vmalloc_start, snap.vmalloc_end) + ": " + who;
                  }});
    for (std::size_t j = 0; j < snap.reserved.size(); ++j) {
      const ReservedArea &o = snap.reserved[j];
      if (o.lazy && skip_lazy)
        continue;
      cs.push_back({end <= num_u(o.start) || s >= num_u(o.end), [=, &snap] {
                      return "disjoint from " + area_text(snap, j) + " (guard included): " + who;
                    }});
    }
    auto show = [&](const z3::model &m) { return "returned start = " + hex(value(m, s)); };
    const std::string note = lazy_witness ? "\n  (no purge was due: " + hex(*lazy_witness) +
                                                " fits with lazy areas reserved)"
                                          : "";
    validity_query(r, vars, returned, cs, show, note);
    return r;
  }

  CheckResult vmalloc_lowest(const Snapshot &snap, const VmallocCall &call) {
    CheckResult r;
    r.status = Status::Proven;
    auto layout = [&](u64 s) { return range_text(s, s + call.size); };
    if (call.result == 0) {
      r.name = "vmalloc no false failure";
      if (const std::optional<u64> s = count_search(r, vmalloc_problem(snap, call, false))) {
        r.status = Status::Violated;
        r.counterexample = "returned NULL, but start " + hex(*s) + " (area " + layout(*s) +
                           ") fits once lazy areas are purged";
      }
      return r;
    }
    r.name = "vmalloc lowest fit";
    bool overlaps_lazy = false;
    for (const ReservedArea &a : snap.reserved)
      overlaps_lazy |= a.lazy && overlaps(call.result, call.result + call.size, a);
    FitProblem p = vmalloc_problem(snap, call, true);
    if (overlaps_lazy) {
      if (const std::optional<u64> s = count_search(r, p)) {
        r.status = Status::Violated;
        r.counterexample = "purge without need: the result overlaps a lazy area, but start " +
                           hex(*s) + " (area " + layout(*s) + ") fits with lazy areas reserved";
        return r;
      }
      if (r.status == Status::Unknown)
        return r;
      p = vmalloc_problem(snap, call, false);
    }
    p.hi = std::min(p.hi, pages_up(call.result) - 1);
    if (const std::optional<u64> s = count_search(r, p)) {
      r.status = Status::Violated;
      r.counterexample = "lowest fit: start " + hex(*s) + " is lower than the returned " +
                         hex(call.result) + " and also fits (area " + layout(*s) + ", " +
                         (overlaps_lazy ? "after the purge" : "lazy areas reserved") +
                         ", aligned to " + hex(effective_align(call.align)) + " in [" +
                         hex(call.vstart) + ", " + hex(call.vend) + "))";
    }
    return r;
  }

  // p lies in the union of spans, stated as the union's hull minus its gaps:
  // a conjunction of bound pairs, which Z3 decides by bound propagation. Two
  // big disjunctions ("p is one of these pages" and "p is in one of these
  // ranges") made it try pairs: 1000 guards against 1000 PTE ranges took
  // 3.6 s that way, 14 ms this way.
  z3::expr in_union(const z3::expr &p, std::vector<PageSpan> spans) {
    if (spans.empty())
      return ctx.bool_val(false);
    std::sort(spans.begin(), spans.end(),
              [](const PageSpan &a, const PageSpan &b) { return a.lo < b.lo; });
    z3::expr_vector parts(ctx);
    parts.push_back(p >= num(spans.front().lo));
    i64 hi = spans.front().hi;
    for (const PageSpan &next : spans) {
      if (next.lo > hi)
        parts.push_back(p < num(hi) || p >= num(next.lo));
      hi = std::max(hi, next.hi);
    }
    parts.push_back(p < num(hi));
    return z3::mk_and(parts);
  }

  // Check 4 in two queries over one unknown page p; the model's p is looked
  // up in the snapshot to name the areas.
  CheckResult guard_pages(const Snapshot &snap) {
    CheckResult r;
    r.name = "guard pages";
    r.status = Status::Proven;
    std::vector<PageSpan> live_guards;
    std::vector<PageSpan> all_guards;
    for (const ReservedArea &a : snap.reserved) {
      if (!a.has_guard)
        continue;
      all_guards.push_back({pages_down(a.end) - 1, pages_down(a.end)});
      if (!a.lazy)
        live_guards.push_back(all_guards.back());
    }
    if (all_guards.empty())
      return r;
    const z3::expr p = ctx.int_const("page");

    // (a) A present PTE in a live area's guard page: touching it would not fault.
    if (!live_guards.empty() && !snap.present_ptes.empty()) {
      std::vector<PageSpan> ptes;
      for (const AddrRange &e : snap.present_ptes)
        ptes.push_back({pages_down(e.start), pages_down(e.end)});
      Query q(solver);
      z3::solver &s = q.solver();
      s.add(in_union(p, live_guards));
      s.add(in_union(p, ptes));
      ++r.queries;
      const Answer a = run(s);
      if (!settle(r, a))
        return r;
      if (a.model) {
        const u64 page = value(*a.model, p) * PAGE_SIZE;
        std::size_t j = 0;
        while (j < snap.reserved.size() && !(snap.reserved[j].has_guard && !snap.reserved[j].lazy &&
                                             snap.reserved[j].end - PAGE_SIZE == page))
          ++j;
        std::string pte;
        for (const AddrRange &e : snap.present_ptes)
          if (pte.empty() && e.start <= page && page < e.end)
            pte = range_text(e.start, e.end);
        r.status = Status::Violated;
        r.counterexample = "no present PTE in a guard page: guard page " + hex(page) + " of " +
                           area_text(snap, j) + " is mapped (present PTE range " + pte +
                           "), so a touch does not fault";
        return r;
      }
    }

    // (b) A guard page that a second area covers: inside another area, or
    // shared when it is that area's guard page too.
    std::vector<PageSpan> areas;
    for (const ReservedArea &a : snap.reserved)
      areas.push_back({pages_down(a.start), pages_down(a.end)});
    Query q(solver);
    z3::solver &s = q.solver();
    s.add(in_union(p, all_guards));
    s.add(in_union(p, covered_twice(areas)));
    ++r.queries;
    const Answer a = run(s);
    if (!settle(r, a) || !a.model)
      return r;
    const u64 page = value(*a.model, p) * PAGE_SIZE;
    std::size_t j = 0;
    while (j < snap.reserved.size() &&
           !(snap.reserved[j].has_guard && snap.reserved[j].end - PAGE_SIZE == page))
      ++j;
    std::size_t k = 0;
    while (k < snap.reserved.size() &&
           (k == j || !(snap.reserved[k].start <= page && page < snap.reserved[k].end)))
      ++k;
    const ReservedArea &b = snap.reserved[k];
    const bool shared = b.has_guard && b.end - PAGE_SIZE == page;
    r.status = Status::Violated;
    r.counterexample =
        std::string(shared ? "no two areas share a guard" : "guard not inside another area") +
        ": guard page " + hex(page) + " of " + area_text(snap, j) + " lies in " +
        area_text(snap, k);
    return r;
  }

  // Records an UNSAT as proven and an unknown as Unknown; false on unknown.
  static bool settle(CheckResult &r, const Answer &a) {
    if (a.result == z3::unsat) {
      ++r.proven;
      return true;
    }
    if (a.result == z3::unknown) {
      r.status = Status::Unknown;
      r.counterexample = "z3 returned unknown (" + a.reason + ")";
      return false;
    }
    return true;
  }

  // One query: a page of the range covered by no piece or by two.
  CheckResult tiling(const Snapshot &snap) {
    CheckResult r;
    r.name = "free + reserved tile the vmalloc range";
    r.status = Status::Proven;
    if (snap.free_blocks.empty())
      return r;
    struct Piece {
      u64 start, end;
      std::string what;
    };
    std::vector<Piece> pieces;
    for (std::size_t j = 0; j < snap.reserved.size(); ++j)
      pieces.push_back({snap.reserved[j].start, snap.reserved[j].end, area_text(snap, j)});
    for (const AddrRange &f : snap.free_blocks)
      pieces.push_back({f.start, f.end, "free block " + range_text(f.start, f.end)});
    const z3::expr p = ctx.int_const("page");
    z3::expr_vector outside(ctx);
    std::vector<PageSpan> spans;
    for (const Piece &piece : pieces) {
      spans.push_back({pages_down(piece.start), pages_down(piece.end)});
      outside.push_back(p < num(spans.back().lo) || p >= num(spans.back().hi));
    }
    Query q(solver);
    z3::solver &s = q.solver();
    s.add(p >= num(pages_down(snap.vmalloc_start)));
    s.add(p <= num(pages_down(snap.vmalloc_end)));
    s.add(z3::mk_and(outside) || in_union(p, covered_twice(spans)));
    ++r.queries;
    const Answer a = run(s);
    if (!settle(r, a) || !a.model)
      return r;
    const u64 page = value(*a.model, p) * PAGE_SIZE;
    std::vector<std::string> holders;
    for (const Piece &piece : pieces)
      if (piece.start <= page && page < piece.end)
        holders.push_back(piece.what);
    r.status = Status::Violated;
    if (holders.size() < 2)
      r.counterexample = "tiling: page " + hex(page) + " is neither free nor reserved";
    else
      r.counterexample =
          "tiling: page " + hex(page) + " is in both " + holders[0] + " and " + holders[1];
    return r;
  }
};

namespace {

// Runs body, turning malformed input and Z3 errors into Unknown.
template <typename Body>
CheckResult guarded(const char *name, const std::string &malformed, Body body) {
  if (!malformed.empty())
    return unknown(name, malformed);
  try {
    return body();
  } catch (const z3::exception &e) {
    return unknown(name, std::string("z3 error: ") + e.msg());
  }
}

} // namespace

Snapshot fresh_snapshot(unsigned paging_levels) {
  Snapshot s;
  s.vmalloc_start = paging_levels == 5 ? VMALLOC_START_L5 : VMALLOC_START_L4;
  s.vmalloc_end = paging_levels == 5 ? VMALLOC_END_L5 : VMALLOC_END_L4;
  return s;
}

const char *status_name(Status s) {
  switch (s) {
  case Status::Proven:
    return "proven";
  case Status::Violated:
    return "violated";
  case Status::Unknown:
    return "unknown";
  }
  return "unknown";
}

std::string z3_version() {
  return Z3_get_full_version();
}

PlacementChecker::PlacementChecker(unsigned rlimit) : impl_(std::make_unique<Impl>(rlimit)) {}

PlacementChecker::~PlacementChecker() = default;

unsigned PlacementChecker::rlimit() const {
  return impl_->rlimit;
}

CheckResult PlacementChecker::check_pcpu_placement(const Snapshot &snap, const PcpuCall &call) {
  std::string bad = malformed_snapshot(snap);
  if (bad.empty())
    bad = malformed_pcpu(call);
  return guarded("pcpu placement validity", bad, [&] { return impl_->pcpu_placement(snap, call); });
}

CheckResult PlacementChecker::check_pcpu_maximal(const Snapshot &snap, const PcpuCall &call) {
  std::string bad = malformed_snapshot(snap);
  if (bad.empty())
    bad = malformed_pcpu(call);
  return guarded("pcpu top-down maximality", bad, [&] { return impl_->pcpu_maximal(snap, call); });
}

CheckResult PlacementChecker::check_vmalloc_placement(const Snapshot &snap,
                                                      const VmallocCall &call) {
  std::string bad = malformed_snapshot(snap);
  if (bad.empty())
    bad = malformed_vmalloc(call);
  return guarded("vmalloc placement validity", bad,
                 [&] { return impl_->vmalloc_placement(snap, call); });
}

CheckResult PlacementChecker::check_vmalloc_lowest_fit(const Snapshot &snap,
                                                       const VmallocCall &call) {
  std::string bad = malformed_snapshot(snap);
  if (bad.empty())
    bad = malformed_vmalloc(call);
  return guarded("vmalloc lowest fit", bad, [&] { return impl_->vmalloc_lowest(snap, call); });
}

CheckResult PlacementChecker::check_guard_pages(const Snapshot &snap) {
  return guarded("guard pages", malformed_snapshot(snap), [&] { return impl_->guard_pages(snap); });
}

CheckResult PlacementChecker::check_tiling(const Snapshot &snap) {
  return guarded("free + reserved tile the vmalloc range", malformed_snapshot(snap),
                 [&] { return impl_->tiling(snap); });
}

std::vector<CheckResult> PlacementChecker::check_pcpu(const Snapshot &snap, const PcpuCall &call) {
  return {check_pcpu_placement(snap, call), check_pcpu_maximal(snap, call)};
}

std::vector<CheckResult> PlacementChecker::check_vmalloc(const Snapshot &snap,
                                                         const VmallocCall &call) {
  return {check_vmalloc_placement(snap, call), check_vmalloc_lowest_fit(snap, call)};
}

} // namespace vmcheck::smt
