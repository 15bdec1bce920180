// vmcheck vmallocinfo: replay a trace on the engine and print what
// /proc/vmallocinfo would show at its end.
#include "harness/executor.h"
#include "tools/commands.h"

#include <iostream>

namespace vmcheck {

int cmd_vmallocinfo(const Args &args) {
  if (args.size() != 1 || args[0] == "--help" || args[0] == "-h") {
    (args.size() == 1 ? std::cout : std::cerr)
        << "usage: vmcheck vmallocinfo TRACE\n\nReplays TRACE on the engine and prints "
           "/proc/vmallocinfo of the final state\n(kernel line format, areas in address "
           "order).\n";
    return args.size() == 1 ? 0 : 2;
  }
  std::string text;
  const std::string file(args[0]);
  if (!read_file(file, text)) {
    std::cerr << file << ": cannot read file\n";
    return 2;
  }
  ParseResult parsed = parse_trace(text);
  if (!parsed.ok()) {
    std::cerr << parsed.error->to_string(file) << '\n';
    return 2;
  }
  Stmt info;
  info.is_call = true;
  info.op = "vmallocinfo";
  info.line = parsed.trace.stmts.empty() ? 2 : parsed.trace.stmts.back().line + 1;
  parsed.trace.stmts.push_back(info);
  std::string out;
  ReplayOptions opts;
  opts.observe = [&](std::size_t i, const Value &v) {
    if (i + 1 == parsed.trace.stmts.size())
      out = v.text;
  };
  const ReplayResult r = replay(parsed.trace, opts);
  if (r.status != ReplayStatus::Ok) {
    std::cerr << r.report(file) << '\n';
    return r.exit_code();
  }
  std::cout << out;
  return 0;
}

} // namespace vmcheck
