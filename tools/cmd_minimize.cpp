// vmcheck minimize: shrinks a failing trace to the smallest one that still
// fails the same way, and writes it ready for corpus/<target>/crashes/.
#include "harness/minimize.h"
#include "tools/commands.h"

#include <fstream>
#include <iostream>

namespace vmcheck {

int cmd_minimize(const Args &args) {
  constexpr const char *kUsage =
      "usage: vmcheck minimize [--target=vmalloc_api|backends|pcpu|usermm] TRACE OUT\n"
      "\n"
      "Delta-debugs TRACE's statements, then shrinks argument values, keeping the\n"
      "failure signature (kind of failure and failing op) of the target's check\n"
      "(default vmalloc_api: engine vs spec plus invariants). Writes the result\n"
      "to OUT with the failure as a comment. Exit 1 if TRACE does not fail.\n";
  FuzzTarget target = FuzzTarget::VmallocApi;
  std::vector<std::string> files;
  for (std::string_view a : args) {
    if (a == "--help" || a == "-h") {
      std::cout << kUsage;
      return 0;
    }
    if (a.starts_with("--target=")) {
      auto t = fuzz_target_from_name(a.substr(9));
      if (!t || *t == FuzzTarget::TraceParser) {
        std::cerr << "vmcheck minimize: unknown target '" << a.substr(9) << "'\n" << kUsage;
        return 2;
      }
      target = *t;
    } else if (a.starts_with("-")) {
      std::cerr << "vmcheck minimize: unknown option '" << a << "'\n" << kUsage;
      return 2;
    } else {
      files.emplace_back(a);
    }
  }
  if (files.size() != 2) {
    std::cerr << kUsage;
    return 2;
  }
  std::string text;
  if (!read_file(files[0], text)) {
    std::cerr << files[0] << ": cannot read file\n";
    return 2;
  }
  const ParseResult r = parse_trace(text);
  if (!r.ok()) {
    std::cerr << r.error->to_string(files[0]) << '\n';
    return 2;
  }
  const FuzzOutcome first = run_fuzz_trace(target, r.trace);
  if (!first.finding) {
    std::cerr << files[0] << ": does not fail; nothing to minimize\n";
    return 1;
  }
  MinimizeStats stats;
  const Trace small = minimize_finding(target, r.trace, &stats);
  const FuzzOutcome last = run_fuzz_trace(target, small);
  std::ofstream out(files[1]);
  out << "# vmcheck trace v1\n# minimized by vmcheck minimize (" << fuzz_target_name(target)
      << "): " << last.report.substr(0, last.report.find('\n')) << '\n';
  std::string body = print_trace(small);
  if (body.rfind("# vmcheck trace v1\n", 0) == 0)
    body = body.substr(19);
  out << body;
  std::cout << files[1] << ": " << stats.ops_before << " -> " << stats.ops_after << " ops ("
            << stats.runs << " runs)\n"
            << last.report << '\n';
  return out ? 0 : 2;
}

} // namespace vmcheck
