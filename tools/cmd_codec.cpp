// vmcheck decode / encode: fuzz input bytes <-> trace text.
#include "harness/codec.h"
#include "tools/commands.h"

#include <fstream>
#include <iostream>

namespace vmcheck {

namespace {

constexpr const char *kDecodeUsage =
    "usage: vmcheck decode [--target=vmalloc_api|backends|pcpu|usermm] FILE\n"
    "\n"
    "Prints the trace a fuzz input (any bytes) decodes to, ready for\n"
    "'vmcheck replay'. The target picks the vocabulary (default vmalloc_api).\n";

constexpr const char *kEncodeUsage =
    "usage: vmcheck encode [--target=vmalloc_api|backends|pcpu|usermm] TRACE OUT\n"
    "\n"
    "Writes the fuzz input bytes that decode to TRACE (a trace in the decoder's\n"
    "vocabulary, e.g. one printed by 'vmcheck decode').\n";

// Parses [--target=NAME] FILE...; false (usage printed) on bad flags.
bool parse(const Args &args, const char *usage, Vocabulary &vocab, std::vector<std::string> &files,
           std::size_t want) {
  for (std::string_view a : args) {
    if (a == "--help" || a == "-h") {
      std::cout << usage;
      return false;
    }
    if (a.starts_with("--target=")) {
      auto v = vocabulary_from_name(a.substr(9));
      if (!v) {
        std::cerr << "vmcheck: unknown target '" << a.substr(9) << "'\n" << usage;
        return false;
      }
      vocab = *v;
    } else if (a.starts_with("-")) {
      std::cerr << "vmcheck: unknown option '" << a << "'\n" << usage;
      return false;
    } else {
      files.emplace_back(a);
    }
  }
  if (files.size() != want) {
    std::cerr << usage;
    return false;
  }
  return true;
}

} // namespace

int cmd_decode(const Args &args) {
  Vocabulary vocab = Vocabulary::VmallocApi;
  std::vector<std::string> files;
  if (!parse(args, kDecodeUsage, vocab, files, 1))
    return args.size() == 1 && (args[0] == "--help" || args[0] == "-h") ? 0 : 2;
  std::string bytes;
  if (!read_file(files[0], bytes)) {
    std::cerr << files[0] << ": cannot read file\n";
    return 2;
  }
  const Trace t = decode_bytes(
      std::span(reinterpret_cast<const std::uint8_t *>(bytes.data()), bytes.size()), vocab);
  std::cout << print_trace(t);
  return 0;
}

int cmd_encode(const Args &args) {
  Vocabulary vocab = Vocabulary::VmallocApi;
  std::vector<std::string> files;
  if (!parse(args, kEncodeUsage, vocab, files, 2))
    return args.size() == 1 && (args[0] == "--help" || args[0] == "-h") ? 0 : 2;
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
  std::vector<std::uint8_t> bytes;
  if (const std::string err = encode_trace(r.trace, vocab, bytes); !err.empty()) {
    std::cerr << files[0] << ": " << err << '\n';
    return 2;
  }
  std::ofstream out(files[1], std::ios::binary);
  out.write(reinterpret_cast<const char *>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  if (!out) {
    std::cerr << files[1] << ": cannot write file\n";
    return 2;
  }
  return 0;
}

} // namespace vmcheck
