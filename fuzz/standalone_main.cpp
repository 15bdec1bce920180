// Replays fuzz inputs without libFuzzer (g++ builds, valgrind, gdb, CI):
// every argument is a file or a directory of files; each is run once
// through the target's LLVMFuzzerTestOneInput. A .trace file is first
// encoded to the target's bytes (trace_parser takes it as text), so the
// shipped corpus/<target>/seed traces replay directly.
#include "harness/codec.h"
#include "harness/fuzz_target.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size);
extern "C" int vmcheck_fuzz_target_id();

namespace {

namespace fs = std::filesystem;

bool input_bytes(const fs::path &p, std::vector<std::uint8_t> &out) {
  std::ifstream in(p, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "%s: cannot read file\n", p.string().c_str());
    return false;
  }
  // Read in blocks through the stream buffer: an istreambuf_iterator copy
  // goes a character at a time, which showed in profiles of whole runs.
  std::ostringstream buf;
  buf << in.rdbuf();
  const std::string text = std::move(buf).str();
  const auto target = static_cast<vmcheck::FuzzTarget>(vmcheck_fuzz_target_id());
  if (p.extension() != ".trace" || target == vmcheck::FuzzTarget::TraceParser) {
    out.assign(text.begin(), text.end());
    return true;
  }
  const vmcheck::ParseResult r = vmcheck::parse_trace(text);
  const vmcheck::Vocabulary v = *vmcheck::fuzz_target_vocabulary(target);
  if (!r.ok()) {
    std::fprintf(stderr, "%s\n", r.error->to_string(p.string()).c_str());
    return false;
  }
  const std::string err = vmcheck::encode_trace(r.trace, v, out);
  if (!err.empty())
    std::fprintf(stderr, "%s: %s\n", p.string().c_str(), err.c_str());
  return err.empty();
}

} // namespace

int main(int argc, char **argv) {
  std::vector<fs::path> files;
  for (int i = 1; i < argc; ++i) {
    std::error_code ec;
    if (fs::is_directory(argv[i], ec)) {
      for (const auto &e : fs::recursive_directory_iterator(argv[i], ec))
        if (e.is_regular_file())
          files.push_back(e.path());
    } else {
      files.emplace_back(argv[i]);
    }
  }
  std::sort(files.begin(), files.end());
  int bad = 0;
  for (const fs::path &f : files) {
    std::vector<std::uint8_t> bytes;
    if (!input_bytes(f, bytes)) {
      ++bad;
      continue;
    }
    LLVMFuzzerTestOneInput(bytes.data(), bytes.size()); // aborts on a finding
    std::printf("%s: ok\n", f.string().c_str());
  }
  std::printf("%zu inputs replayed, %d unreadable\n", files.size() - static_cast<std::size_t>(bad),
              bad);
  return bad == 0 ? 0 : 2;
}
