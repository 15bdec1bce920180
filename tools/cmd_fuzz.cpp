// vmcheck fuzz: runs every fuzz target for a while and prints one summary
// table (target, executions, exec/s, coverage, new corpus files, findings).
// With libFuzzer binaries (the `fuzz` preset builds them next to this
// program) it drives them; otherwise, or with --builtin, it runs its own
// seeded random inputs through the same target code (no coverage feedback).
// Every finding is written as a replayable trace and its path printed.
#include "harness/codec.h"
#include "harness/fuzz_target.h"
#include "tools/commands.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

namespace vmcheck {

namespace fs = std::filesystem;

namespace {

constexpr const char *kUsage =
    "usage: vmcheck fuzz [--targets=a,b,...] [--time=SECONDS] [--seed=N] [--builtin]\n"
    "                    [--out=DIR] [--fuzzer-dir=DIR] [--corpus=DIR]\n"
    "\n"
    "Fuzzes each target (vmalloc_api, backends, pcpu, usermm, trace_parser; default all)\n"
    "for SECONDS (default 60) starting from the shipped corpus (corpus/<target>/seed,\n"
    "encoded to bytes), then prints a summary table. Findings are written to\n"
    "OUT/<target>/ (default fuzz-out) as .trace files ready for 'vmcheck replay'.\n"
    "\n"
    "  --builtin          use vmcheck's own seeded random inputs instead of libFuzzer\n"
    "  --fuzzer-dir=DIR   where the fuzz_<target> binaries are (default: ../fuzz\n"
    "                     next to this program, as the 'fuzz' preset builds them)\n"
    "  --corpus=DIR       the corpus root (default: corpus)\n"
    "\n"
    "libFuzzer runs with the flags of the target's .options file next to its binary\n"
    "([libfuzzer] section: max_len, dict, ...).\n"
    "\n"
    "Exit status: 0 no findings, 1 findings, 2 bad usage.\n";

struct Row {
  std::string target;
  std::uint64_t execs = 0;
  double exec_per_sec = 0;
  std::string coverage = "-";
  std::uint64_t new_files = 0;
  double first_finding_s = -1; // seconds to the first finding (builtin driver), -1 when none
  std::vector<std::string> findings;
};

std::vector<std::uint8_t> bytes_of(const std::string &s) {
  return {s.begin(), s.end()};
}

// The seed inputs of a target: its traces encoded (or, for trace_parser,
// every trace of the corpus as text).
std::vector<std::vector<std::uint8_t>> seeds(const fs::path &corpus, FuzzTarget t) {
  std::vector<std::vector<std::uint8_t>> out;
  std::error_code ec;
  const fs::path dir =
      t == FuzzTarget::TraceParser ? corpus : corpus / fuzz_target_name(t) / "seed";
  if (!fs::exists(dir, ec))
    return out;
  std::vector<fs::path> files;
  for (const auto &e : fs::recursive_directory_iterator(dir, ec))
    if (e.is_regular_file() && e.path().extension() == ".trace")
      files.push_back(e.path());
  std::sort(files.begin(), files.end());
  for (const fs::path &f : files) {
    std::string text;
    if (!read_file(f.string(), text))
      continue;
    if (t == FuzzTarget::TraceParser) {
      out.push_back(bytes_of(text));
      continue;
    }
    const ParseResult r = parse_trace(text);
    std::vector<std::uint8_t> b;
    if (r.ok() && encode_trace(r.trace, *fuzz_target_vocabulary(t), b).empty())
      out.push_back(std::move(b));
  }
  return out;
}

std::string write_finding(const fs::path &dir, FuzzTarget t, const std::string &name,
                          std::span<const std::uint8_t> input, const FuzzOutcome &o) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  const fs::path bin = dir / (name + ".bin");
  std::ofstream(bin, std::ios::binary)
      .write(reinterpret_cast<const char *>(input.data()),
             static_cast<std::streamsize>(input.size()));
  const fs::path trace = dir / (name + ".trace");
  std::ofstream out(trace);
  std::istringstream report(o.report);
  out << "# vmcheck trace v1\n# found by vmcheck fuzz (" << fuzz_target_name(t) << ")\n";
  for (std::string line; std::getline(report, line);)
    out << "# " << line << '\n';
  std::string body = o.trace;
  if (body.rfind("# vmcheck trace v1\n", 0) == 0)
    body = body.substr(19);
  out << (t == FuzzTarget::TraceParser
              ? std::string(reinterpret_cast<const char *>(input.data()), input.size())
              : body);
  return trace.string();
}

// Seeded xorshift: the builtin driver's only source of randomness.
struct Rng {
  std::uint64_t s;
  std::uint64_t next() {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
  }
};

Row run_builtin(FuzzTarget t, double seconds, std::uint64_t seed, const fs::path &corpus,
                const fs::path &out) {
  Row row;
  row.target = std::string(fuzz_target_name(t));
  Rng rng{seed * 0x9e3779b97f4a7c15ULL + static_cast<std::uint64_t>(t) + 1};
  const auto pool = seeds(corpus, t);
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::uint8_t> input;
  for (;;) {
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (elapsed >= seconds)
      break;
    // Half the time a seed with a few bytes changed, else fresh bytes.
    if (!pool.empty() && rng.next() % 2 == 0) {
      input = pool[rng.next() % pool.size()];
      for (int k = 0; k < 4 && !input.empty(); ++k)
        input[rng.next() % input.size()] = static_cast<std::uint8_t>(rng.next());
      if (rng.next() % 2)
        input.push_back(static_cast<std::uint8_t>(rng.next()));
    } else {
      input.resize(1 + rng.next() % 512);
      for (auto &b : input)
        b = static_cast<std::uint8_t>(rng.next());
    }
    const FuzzOutcome o = run_fuzz_input(t, input);
    ++row.execs;
    if (o.finding && row.first_finding_s < 0)
      row.first_finding_s =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (o.finding && row.findings.size() < 5)
      row.findings.push_back(
          write_finding(out / row.target, t, "finding-" + std::to_string(row.execs), input, o));
  }
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  row.exec_per_sec = elapsed > 0 ? static_cast<double>(row.execs) / elapsed : 0;
  return row;
}

std::string stat(const std::string &log, const std::string &key) {
  const std::size_t at = log.rfind(key);
  if (at == std::string::npos)
    return {};
  std::size_t p = at + key.size();
  while (p < log.size() && (log[p] == ':' || log[p] == ' '))
    ++p;
  std::size_t e = p;
  while (e < log.size() && log[e] != '\n' && log[e] != ' ')
    ++e;
  return log.substr(p, e - p);
}

// The libFuzzer flags of a target's .options file (next to its binary, as
// the fuzz preset copies it; ClusterFuzz's format): " -key=value" for each
// `key = value` line of its [libfuzzer] section, a relative dict path made
// relative to the file. No file: no flags. A line that is not a section,
// a comment or `key = value` sets `err`, naming the file and the line.
std::string options_flags(const fs::path &bin, std::string &err) {
  const fs::path file = fs::path(bin.string() + ".options");
  std::ifstream in(file);
  if (!in)
    return {};
  const auto trim = [](const std::string &s) {
    const auto b = s.find_first_not_of(" \t\r");
    const auto e = s.find_last_not_of(" \t\r");
    return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
  };
  std::string flags, line, section;
  for (int n = 1; std::getline(in, line); ++n) {
    line = trim(line);
    if (line.empty() || line[0] == '#')
      continue;
    if (line.front() == '[' && line.back() == ']') {
      section = line.substr(1, line.size() - 2);
      continue;
    }
    const auto eq = line.find('=');
    const std::string key = eq == std::string::npos ? "" : trim(line.substr(0, eq));
    std::string value = eq == std::string::npos ? "" : trim(line.substr(eq + 1));
    if (key.empty() || value.empty() ||
        key.find_first_not_of("abcdefghijklmnopqrstuvwxyz_") != std::string::npos ||
        value.find('\'') != std::string::npos) {
      err = file.string() + ":" + std::to_string(n) + ": expected 'key = value', found '" + line +
            "'";
      return {};
    }
    if (section != "libfuzzer")
      continue;
    if (key == "dict" && fs::path(value).is_relative())
      value = (file.parent_path() / value).string();
    flags += " '-" + key + "=" + value + "'";
  }
  return flags;
}

Row run_libfuzzer(FuzzTarget t, const fs::path &bin, const std::string &flags, double seconds,
                  std::uint64_t seed, const fs::path &corpus, const fs::path &out) {
  Row row;
  row.target = std::string(fuzz_target_name(t));
  const fs::path work = out / row.target;
  const fs::path dir = work / "corpus";
  std::error_code ec;
  fs::create_directories(dir, ec);
  unsigned k = 0;
  for (const auto &s : seeds(corpus, t)) {
    std::ofstream(dir / ("seed-" + std::to_string(k++)), std::ios::binary)
        .write(reinterpret_cast<const char *>(s.data()), static_cast<std::streamsize>(s.size()));
  }
  std::size_t before = 0;
  for ([[maybe_unused]] const auto &e : fs::directory_iterator(dir, ec))
    ++before;
  const fs::path log = work / "libfuzzer.log";
  std::string cmd =
      "'" + bin.string() + "' -max_total_time=" + std::to_string(static_cast<int>(seconds)) +
      " -seed=" + std::to_string(seed) + flags + " -print_final_stats=1 -artifact_prefix='" +
      work.string() + "/' '" + dir.string() + "' > '" + log.string() + "' 2>&1";
  const int rc = std::system(cmd.c_str());
  (void)rc;
  std::string text;
  read_file(log.string(), text);
  row.execs = std::strtoull(stat(text, "stat::number_of_executed_units").c_str(), nullptr, 10);
  row.exec_per_sec = std::strtod(stat(text, "stat::average_exec_per_sec").c_str(), nullptr);
  if (const std::string cov = stat(text, "cov"); !cov.empty())
    row.coverage = cov;
  std::size_t after = 0;
  for ([[maybe_unused]] const auto &e : fs::directory_iterator(dir, ec))
    ++after;
  row.new_files = after > before ? after - before : 0;
  for (const auto &e : fs::directory_iterator(work, ec)) {
    const std::string name = e.path().filename().string();
    if (!(name.starts_with("crash-") || name.starts_with("leak-") || name.starts_with("timeout-") ||
          name.starts_with("oom-")) ||
        e.path().extension() == ".trace")
      continue;
    std::string bytes;
    read_file(e.path().string(), bytes);
    const auto input = bytes_of(bytes);
    FuzzOutcome o = run_fuzz_input(t, input);
    if (!o.finding)
      o.report = name + " (reproduces only under libFuzzer: see " + log.string() + ")";
    row.findings.push_back(write_finding(work, t, name, input, o));
  }
  return row;
}

} // namespace

int cmd_fuzz(const Args &args) {
  std::vector<FuzzTarget> targets(std::begin(kFuzzTargets), std::end(kFuzzTargets));
  double seconds = 60;
  std::uint64_t seed = 1;
  bool builtin = false;
  fs::path out = "fuzz-out", corpus = "corpus", fuzzer_dir;
  for (std::string_view a : args) {
    auto value = [&](std::string_view flag) { return std::string(a.substr(flag.size())); };
    if (a == "--help" || a == "-h") {
      std::cout << kUsage;
      return 0;
    } else if (a == "--builtin") {
      builtin = true;
    } else if (a.starts_with("--time=")) {
      seconds = std::strtod(value("--time=").c_str(), nullptr);
    } else if (a.starts_with("--seed=")) {
      seed = std::strtoull(value("--seed=").c_str(), nullptr, 10);
    } else if (a.starts_with("--out=")) {
      out = value("--out=");
    } else if (a.starts_with("--corpus=")) {
      corpus = value("--corpus=");
    } else if (a.starts_with("--fuzzer-dir=")) {
      fuzzer_dir = value("--fuzzer-dir=");
    } else if (a.starts_with("--targets=")) {
      targets.clear();
      std::stringstream list(value("--targets="));
      for (std::string name; std::getline(list, name, ',');) {
        auto t = fuzz_target_from_name(name);
        if (!t) {
          std::cerr << "vmcheck fuzz: unknown target '" << name << "'\n" << kUsage;
          return 2;
        }
        targets.push_back(*t);
      }
    } else {
      std::cerr << "vmcheck fuzz: unknown option '" << a << "'\n" << kUsage;
      return 2;
    }
  }
  if (!(seconds > 0)) {
    std::cerr << "vmcheck fuzz: --time must be a positive number of seconds\n";
    return 2;
  }
  if (fuzzer_dir.empty()) {
    std::error_code ec;
    fuzzer_dir = fs::canonical("/proc/self/exe", ec).parent_path().parent_path() / "fuzz";
  }
  // Every target's options are read before any runs: a bad file stops
  // the job at once, not after the targets before it.
  std::vector<fs::path> bins;
  for (FuzzTarget t : targets)
    bins.push_back(fuzzer_dir / ("fuzz_" + std::string(fuzz_target_name(t))));
  std::vector<std::string> flags(targets.size());
  for (std::size_t i = 0; i < targets.size() && !builtin; ++i) {
    std::string err;
    flags[i] = options_flags(bins[i], err);
    if (!err.empty()) {
      std::cerr << "vmcheck fuzz: " << err << "\n";
      return 2;
    }
  }
  std::vector<Row> rows;
  for (std::size_t i = 0; i < targets.size(); ++i) {
    const FuzzTarget t = targets[i];
    std::error_code ec;
    const bool libfuzzer = !builtin && fs::exists(bins[i], ec);
    std::cout << "fuzzing " << fuzz_target_name(t) << " for " << seconds << " s ("
              << (libfuzzer ? "libFuzzer" : "builtin random driver") << ")..." << std::endl;
    rows.push_back(libfuzzer ? run_libfuzzer(t, bins[i], flags[i], seconds, seed, corpus, out)
                             : run_builtin(t, seconds, seed, corpus, out));
  }
  std::printf("\n%-14s %12s %10s %10s %10s %9s %9s\n", "target", "executions", "exec/s", "coverage",
              "new files", "findings", "first@s");
  std::size_t findings = 0;
  for (const Row &r : rows) {
    char first[16] = "-";
    if (r.first_finding_s >= 0)
      std::snprintf(first, sizeof first, "%.1f", r.first_finding_s);
    std::printf("%-14s %12llu %10.0f %10s %10llu %9zu %9s\n", r.target.c_str(),
                static_cast<unsigned long long>(r.execs), r.exec_per_sec, r.coverage.c_str(),
                static_cast<unsigned long long>(r.new_files), r.findings.size(), first);
    findings += r.findings.size();
  }
  for (const Row &r : rows)
    for (const std::string &f : r.findings)
      std::printf("finding (%s): %s\n", r.target.c_str(), f.c_str());
  return findings == 0 ? 0 : 1;
}

} // namespace vmcheck
