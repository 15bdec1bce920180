// vmcheck: the command-line program. One table of subcommands; each parses
// its own flags and returns the process exit status.
#include "harness/executor.h"
#include "tools/commands.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace vmcheck {
namespace {

constexpr const char *kReplayUsage =
    "usage: vmcheck replay [--hash] [--engine-only] [--backend=modern|legacy] [--z3] FILE...\n"
    "\n"
    "Replays each trace on the engine and the reference spec, checking every\n"
    "'->', every invariant after every op, and that engine and spec agree on\n"
    "results, diagnostics and state (user address spaces included). From the\n"
    "first op the spec does not model (the percpu allocator's chunks) the run\n"
    "continues on the engine alone.\n"
    "\n"
    "  --hash                    print the final state hash of each trace\n"
    "  --engine-only             do not run the reference spec\n"
    "  --backend=modern|legacy   override the trace's config backend\n"
    "  --z3                      also prove placement and guard pages with Z3 after\n"
    "                            every op; prints 'z3: N queries, P proven, U unknown'\n"
    "\n"
    "Exit status: 0 all traces ok, 1 a divergence or violation, 2 a malformed\n"
    "or unreadable trace.\n";

} // namespace

bool read_file(const std::string &path, std::string &out) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    return false;
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return false;
  std::ostringstream ss;
  ss << in.rdbuf();
  out = ss.str();
  return !in.bad();
}

namespace {

int cmd_replay(const std::vector<std::string_view> &args) {
  ReplayOptions options;
  options.differential = true;
  bool print_hash = false;
  std::vector<std::string> files;
  for (std::string_view a : args) {
    if (a == "--help" || a == "-h") {
      std::cout << kReplayUsage;
      return 0;
    }
    if (a == "--hash") {
      print_hash = true;
    } else if (a == "--engine-only") {
      options.differential = false;
    } else if (a == "--z3") {
      options.z3 = true;
    } else if (a == "--backend=modern") {
      options.backend = Backend::Modern;
    } else if (a == "--backend=legacy") {
      options.backend = Backend::Legacy;
    } else if (a.size() > 1 && a[0] == '-') {
      std::cerr << "vmcheck replay: unknown option '" << a << "'\n" << kReplayUsage;
      return 2;
    } else {
      files.emplace_back(a);
    }
  }
  if (files.empty()) {
    std::cerr << "vmcheck replay: no trace file given\n" << kReplayUsage;
    return 2;
  }
  int status = 0;
  for (const std::string &file : files) {
    std::string text;
    if (!read_file(file, text)) {
      std::cerr << file << ": cannot read file\n";
      status = std::max(status, 2);
      continue;
    }
    const ReplayResult r = replay_text(text, options);
    (r.exit_code() == 0 ? std::cout : std::cerr) << r.report(file) << '\n';
    if (options.z3 && r.status != ReplayStatus::Malformed)
      std::cout << "z3: " << r.z3_queries << " queries, " << r.z3_proven << " proven, "
                << r.z3_unknown << " unknown\n";
    if (print_hash && r.status != ReplayStatus::Malformed) {
      char buf[32];
      std::snprintf(buf, sizeof buf, "hash 0x%016llx",
                    static_cast<unsigned long long>(r.state_hash));
      std::cout << buf << '\n';
    }
    status = std::max(status, r.exit_code());
  }
  return status;
}

struct Subcommand {
  std::string_view name;
  std::string_view summary;
  int (*run)(const std::vector<std::string_view> &args);
};

constexpr Subcommand kSubcommands[] = {
    {"replay", "replay trace files, checking results and invariants", cmd_replay},
    {"decode", "print a fuzz input (bytes) as a trace", cmd_decode},
    {"encode", "turn a trace back into fuzz input bytes", cmd_encode},
    {"fuzz", "run the fuzz targets and print a summary table", cmd_fuzz},
    {"minimize", "shrink a failing trace, keeping its failure", cmd_minimize},
    {"explore", "bounded exhaustive exploration (model checker)", cmd_explore},
    {"vmallocinfo", "replay a trace and print /proc/vmallocinfo", cmd_vmallocinfo},
};

void print_usage(std::ostream &out) {
  out << "usage: vmcheck COMMAND [ARGS...]\n\ncommands:\n";
  for (const Subcommand &c : kSubcommands)
    out << "  " << c.name << std::string(12 - c.name.size(), ' ') << c.summary << '\n';
  out << "\n'vmcheck COMMAND --help' describes one command.\n";
}

} // namespace
} // namespace vmcheck

int main(int argc, char **argv) {
  using namespace vmcheck;
  if (argc < 2) {
    print_usage(std::cerr);
    return 2;
  }
  const std::string_view cmd = argv[1];
  if (cmd == "--help" || cmd == "-h" || cmd == "help") {
    print_usage(std::cout);
    return 0;
  }
  const std::vector<std::string_view> args(argv + 2, argv + argc);
  for (const Subcommand &c : kSubcommands)
    if (c.name == cmd)
      return c.run(args);
  std::cerr << "vmcheck: unknown command '" << cmd << "'\n";
  print_usage(std::cerr);
  return 2;
}
