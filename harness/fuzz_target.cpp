#include "harness/fuzz_target.h"

#include "harness/executor.h"

#include <cctype>
#include <vector>

namespace vmcheck {

namespace {

constexpr std::string_view kNames[] = {"vmalloc_api", "backends", "pcpu", "usermm", "trace_parser"};

// The pcpu target also proves each placement with Z3 (issue 6). Only the
// placements: Z3's cost here is building the constraints, which grows with
// the number of areas whatever the resource limit, and the per-op guard-page
// and tiling checks took three quarters of it (the engine's invariants check
// both after every op anyway). The limit only bounds a hard search.
constexpr unsigned kPcpuZ3Rlimit = 1'000'000;

FuzzOutcome differential_trace(const Trace &trace, bool z3 = false) {
  FuzzOutcome out;
  ReplayOptions opts;
  opts.differential = true;
  opts.z3 = z3;
  opts.z3_rlimit = kPcpuZ3Rlimit;
  opts.z3_state_checks = false;
  opts.check_every = kFuzzCheckEvery;
  opts.hash_state = false;
  const ReplayResult r = replay(trace, opts);
  // A decoded trace is valid by construction: malformed means a codec bug.
  out.finding = r.status != ReplayStatus::Ok;
  if (out.finding) {
    out.report = r.report("input");
    out.trace = print_trace(trace);
  }
  return out;
}

// lazy=0: the modern and the legacy backend must answer every op alike.
// `trace` already ends with a vmallocinfo().
FuzzOutcome compare_backends(const Trace &trace) {
  FuzzOutcome out;
  std::vector<std::pair<std::size_t, Value>> results[2];
  ReplayResult runs[2];
  for (int b = 0; b < 2; ++b) {
    ReplayOptions opts;
    opts.backend = b == 0 ? Backend::Modern : Backend::Legacy;
    opts.check_every = kFuzzCheckEvery;
    opts.hash_state = false;
    opts.observe = [&results, b](std::size_t i, const Value &v) { results[b].push_back({i, v}); };
    runs[b] = replay(trace, opts);
    if (runs[b].status != ReplayStatus::Ok) {
      out.finding = true;
      out.report =
          std::string(b == 0 ? "modern" : "legacy") + " backend: " + runs[b].report("input");
      return out;
    }
  }
  for (std::size_t k = 0; k < std::min(results[0].size(), results[1].size()); ++k) {
    const auto &[i, modern] = results[0][k];
    const Value &legacy = results[1][k].second;
    if (!(modern == legacy)) {
      out.finding = true;
      out.report = "backends disagree at line " + std::to_string(trace.stmts[i].line) + ": " +
                   print_stmt(trace.stmts[i]) + "\n  modern: " + value_to_string(modern) +
                   "\n  legacy: " + value_to_string(legacy);
      return out;
    }
  }
  if (results[0].size() != results[1].size()) {
    out.finding = true;
    out.report = "backends ran a different number of ops";
  }
  return out;
}

FuzzOutcome backends_trace(Trace trace) {
  Stmt info;
  info.is_call = true;
  info.op = "vmallocinfo";
  info.line = trace.stmts.empty() ? 3 : trace.stmts.back().line + 1;
  trace.stmts.push_back(info);
  FuzzOutcome out = compare_backends(trace);
  if (out.finding)
    out.trace = print_trace(trace);
  return out;
}

// Any text: a clear error or a trace that prints and parses back the same.
FuzzOutcome trace_parser(std::span<const std::uint8_t> data) {
  FuzzOutcome out;
  const std::string_view text(reinterpret_cast<const char *>(data.data()), data.size());
  const ParseResult r = parse_trace(text);
  if (!r.ok()) {
    if (r.error->message.empty() || r.error->line < 1 || r.error->column < 1) {
      out.finding = true;
      out.report = "parse error without a message or a position";
    }
    return out;
  }
  const std::string printed = print_trace(r.trace);
  const ParseResult again = parse_trace(printed);
  if (!again.ok() || !(again.trace == r.trace) || print_trace(again.trace) != printed) {
    out.finding = true;
    out.report = "print/parse round trip changed the trace:\n" + printed;
  }
  return out;
}

} // namespace

std::string_view fuzz_target_name(FuzzTarget t) {
  return kNames[static_cast<std::size_t>(t)];
}

std::optional<FuzzTarget> fuzz_target_from_name(std::string_view name) {
  for (FuzzTarget t : kFuzzTargets)
    if (fuzz_target_name(t) == name)
      return t;
  return std::nullopt;
}

std::optional<Vocabulary> fuzz_target_vocabulary(FuzzTarget t) {
  switch (t) {
  case FuzzTarget::VmallocApi:
    return Vocabulary::VmallocApi;
  case FuzzTarget::Backends:
    return Vocabulary::Backends;
  case FuzzTarget::Pcpu:
    return Vocabulary::Pcpu;
  case FuzzTarget::Usermm:
    return Vocabulary::Usermm;
  case FuzzTarget::TraceParser:
    break;
  }
  return std::nullopt;
}

FuzzOutcome run_fuzz_trace(FuzzTarget t, const Trace &trace) {
  if (t == FuzzTarget::Backends)
    return backends_trace(trace);
  return differential_trace(trace, t == FuzzTarget::Pcpu);
}

FuzzOutcome run_fuzz_input(FuzzTarget t, std::span<const std::uint8_t> data) {
  if (const auto v = fuzz_target_vocabulary(t))
    return run_fuzz_trace(t, decode_bytes(data, *v));
  return trace_parser(data);
}

std::string failure_signature(const FuzzOutcome &o) {
  if (!o.finding)
    return {};
  // Keep words, drop numbers: "engine and spec disagree: spec predicts"...
  std::string sig;
  const std::string head = o.report.substr(0, o.report.find('\n'));
  for (std::size_t i = 0; i < head.size(); ++i) {
    const char c = head[i];
    if (std::isdigit(static_cast<unsigned char>(c)) || (c == 'x' && i > 0 && head[i - 1] == '0'))
      continue;
    sig += c;
  }
  // The failing op's name, from the report's "op:" detail or the backends line.
  const std::size_t op = o.report.find("op: ");
  if (op != std::string::npos) {
    std::size_t s = op + 4, e = o.report.find('(', s);
    const std::size_t eq = o.report.find(" = ", s);
    if (eq != std::string::npos && eq < e)
      s = eq + 3;
    if (e != std::string::npos)
      sig += " @" + o.report.substr(s, e - s);
  }
  return sig;
}

} // namespace vmcheck
