// Diagnostics: the WARN / pr_err records of the emulated kernel, and
// KernelBug, the one exception that may cross the API boundary (BUG_ON).
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace vmcheck {

enum class DiagKind : std::uint8_t {
  Warn,    // WARN_ON / WARN(...): the kernel complains and carries on
  Error,   // pr_err / pr_warn: a failure the kernel reports (e.g. allocation failure)
  Finding, // something the machine detected that is a bug in the code above it
};

const char *diag_kind_name(DiagKind kind);

struct Diagnostic {
  DiagKind kind;
  std::string function; // kernel function that reported it
  std::string reason;
  std::uint64_t addr = 0; // address concerned, 0 when none

  std::string to_string() const; // "WARN vfree: bad address 0x... (reason)"
};

// Append-only log. It is deliberately NOT part of the state hash: a refused
// call must leave the hash unchanged while still saying why it was refused.
class DiagLog {
public:
  void warn(std::string function, std::string reason, std::uint64_t addr = 0);
  void error(std::string function, std::string reason, std::uint64_t addr = 0);
  void finding(std::string function, std::string reason, std::uint64_t addr = 0);

  const std::vector<Diagnostic> &entries() const { return entries_; }
  std::size_t size() const { return entries_.size(); }
  std::size_t count(DiagKind kind) const;
  // Entries added since a mark taken with size(); for "did this call warn?".
  std::vector<Diagnostic> since(std::size_t mark) const;
  void clear() { entries_.clear(); }

private:
  std::vector<Diagnostic> entries_;
};

// A BUG_ON condition. The harness reports it as a finding; the machine state
// after it is unspecified, so nothing may run on that machine afterwards.
class KernelBug : public std::runtime_error {
public:
  KernelBug(std::string function, std::string reason);
  const std::string &function() const { return function_; }
  const std::string &reason() const { return reason_; }

private:
  std::string function_;
  std::string reason_;
};

} // namespace vmcheck
