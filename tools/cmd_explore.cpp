// vmcheck explore: the bounded model checker from the command line.
#include "harness/explore.h"
#include "tools/commands.h"

#include <cstdio>
#include <fstream>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

namespace vmcheck {

namespace {

constexpr const char *kExploreUsage =
    "usage: vmcheck explore [CONFIG-FILE] [--KEY=VALUE...] [--out=FILE] [--quiet]\n"
    "\n"
    "Visits every state reachable in at most DEPTH moves over a finite domain,\n"
    "breadth first, merging states that differ only in handle names or in the\n"
    "order that led to them. Moves: allocations of each size and alignment on\n"
    "each CPU, vfree / vfree_atomic / probe of each live handle, irq_enter and\n"
    "irq_exit per CPU, one deferred-work item, the lazy purge worker, and with\n"
    "shootdown=async the delivery of a purge's TLB flush to each CPU apart. Every new\n"
    "state is checked against the invariants and the reference spec; the first\n"
    "violation is printed as the shortest trace reaching it.\n"
    "\n"
    "keys (also one key=value per line of CONFIG-FILE, '#' comments):\n"
    "  depth=6                 moves per path\n"
    "  sizes=1,2,3,5           allocation sizes in pages\n"
    "  aligns=1,4              alignments in pages (1: vmalloc, else __vmalloc_node)\n"
    "  max-live=2              handles the trace holds at once\n"
    "  moves=alloc,vfree,vfree_atomic,probe,irq,deferred,purge\n"
    "  spec=on|off             also run the reference spec (default on)\n"
    "  max-states=N            stop after N transitions\n"
    "  time-limit=S            stop after S seconds\n"
    "  cpus=2 nodes=1 mem=8M lazy=4 tlb=64 backend=modern paging=4 shootdown=sync|async\n"
    "                          the machine\n"
    "\n"
    "  --out=FILE   write the violating trace to FILE (default: stdout)\n"
    "  --quiet      no progress lines\n"
    "\n"
    "Exit status: 0 no violation (the last line says whether a limit cut the\n"
    "search), 1 a violation, 2 bad usage.\n";

void print_table(const ExploreStats &st) {
  std::printf("%5s %12s %12s %12s\n", "depth", "new-unique", "unique", "transitions");
  u64 total = 0;
  for (std::size_t d = 0; d < st.new_at_depth.size(); ++d) {
    total += st.new_at_depth[d];
    std::printf("%5zu %12llu %12llu %12llu\n", d,
                static_cast<unsigned long long>(st.new_at_depth[d]),
                static_cast<unsigned long long>(total),
                static_cast<unsigned long long>(st.moves_at_depth[d]));
  }
}

double per_second(u64 n, double seconds) {
  return seconds > 0 ? static_cast<double>(n) / seconds : 0;
}

// Every transition builds and drops a whole machine: keep freed heap in the
// process instead of handing it back to the kernel each time (brk/munmap
// churn otherwise costs about a third of the run).
void keep_heap() {
#if defined(__GLIBC__)
  mallopt(M_MMAP_THRESHOLD, 1 << 30);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  mallopt(M_TOP_PAD, 64 << 20);
#endif
}

} // namespace

int cmd_explore(const std::vector<std::string_view> &args) {
  ExploreConfig cfg;
  std::string out_file;
  bool quiet = false;
  std::vector<std::string_view> flags;
  for (std::string_view a : args) {
    if (a == "--help" || a == "-h") {
      std::cout << kExploreUsage;
      return 0;
    }
    if (a.size() > 2 && a.substr(0, 2) == "--") {
      flags.push_back(a.substr(2));
      continue;
    }
    // The config file first, so that flags override it wherever they stand.
    std::string text;
    if (!read_file(std::string(a), text)) {
      std::cerr << "vmcheck explore: cannot read config file '" << a << "'\n";
      return 2;
    }
    if (std::string err = cfg.load(text); !err.empty()) {
      std::cerr << a << ": " << err << '\n';
      return 2;
    }
  }
  for (std::string_view f : flags) {
    if (f == "quiet") {
      quiet = true;
      continue;
    }
    const std::size_t eq = f.find('=');
    if (eq == std::string_view::npos) {
      std::cerr << "vmcheck explore: expected --key=value, found '--" << f << "'\n"
                << kExploreUsage;
      return 2;
    }
    if (f.substr(0, eq) == "out") {
      out_file = std::string(f.substr(eq + 1));
      continue;
    }
    if (std::string err = cfg.set(f.substr(0, eq), f.substr(eq + 1)); !err.empty()) {
      std::cerr << "vmcheck explore: " << err << '\n';
      return 2;
    }
  }
  if (std::string err = cfg.validate(); !err.empty()) {
    std::cerr << "vmcheck explore: " << err << '\n';
    return 2;
  }
  std::printf("explore: %s\n", cfg.to_string().c_str());
  std::fflush(stdout);
  ExploreHooks hooks;
  double last_report = 0;
  if (!quiet)
    hooks.progress = [&](const ExploreStats &st) {
      if (st.seconds - last_report < 2)
        return;
      last_report = st.seconds;
      std::fprintf(stderr, "explore: depth %u, %llu states (%llu unique), %.0f states/s\n",
                   st.depth, static_cast<unsigned long long>(st.transitions),
                   static_cast<unsigned long long>(st.unique),
                   per_second(st.transitions, st.seconds));
    };
  keep_heap();
  const ExploreResult r = explore(cfg, hooks);
  const ExploreStats &st = r.stats;
  print_table(st);
  std::printf("%llu states (transitions), %llu unique",
              static_cast<unsigned long long>(st.transitions),
              static_cast<unsigned long long>(st.unique));
  if (st.engine_only)
    std::printf(" (%llu checked on the engine alone)",
                static_cast<unsigned long long>(st.engine_only));
  std::printf(", depth %u; stopped: %s\n", st.depth, r.stop_reason.c_str());
  std::printf("%.2f s wall, %.2f s cpu: %.0f states/s and %.0f unique/s per cpu second "
              "(%.0f states/s wall)\n",
              st.seconds, st.cpu_seconds, per_second(st.transitions, st.cpu_seconds),
              per_second(st.unique, st.cpu_seconds), per_second(st.transitions, st.seconds));
  if (!r.violation)
    return 0;
  const ExploreViolation &v = *r.violation;
  std::fprintf(stderr, "explore: violation at depth %u: %s\n", v.depth, v.message.c_str());
  for (const std::string &d : v.details)
    std::fprintf(stderr, "  %s\n", d.c_str());
  if (out_file.empty()) {
    std::fputs(v.text.c_str(), stdout);
  } else {
    std::ofstream out(out_file, std::ios::binary);
    out << v.text;
    if (!out) {
      std::cerr << "vmcheck explore: cannot write " << out_file << '\n';
      return 2;
    }
    std::fprintf(stderr, "explore: trace written to %s\n", out_file.c_str());
  }
  return 1;
}

} // namespace vmcheck
