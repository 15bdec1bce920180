// The vmcheck subcommands, one file each; main() in vmcheck.cpp dispatches.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace vmcheck {

using Args = std::vector<std::string_view>;

int cmd_decode(const Args &args);
int cmd_encode(const Args &args);
int cmd_fuzz(const Args &args);
int cmd_minimize(const Args &args);
int cmd_explore(const Args &args);
int cmd_vmallocinfo(const Args &args);

// Reads a whole file; false when it cannot be read.
bool read_file(const std::string &path, std::string &out);

} // namespace vmcheck
