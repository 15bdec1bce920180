#include "machine/diag.h"

#include <cstdio>

namespace vmcheck {

const char *diag_kind_name(DiagKind kind) {
  switch (kind) {
  case DiagKind::Warn:
    return "WARN";
  case DiagKind::Error:
    return "ERROR";
  case DiagKind::Finding:
    return "FINDING";
  }
  return "?";
}

std::string Diagnostic::to_string() const {
  std::string s = diag_kind_name(kind);
  s += ' ';
  s += function;
  s += ": ";
  s += reason;
  if (addr != 0) {
    char buf[32];
    std::snprintf(buf, sizeof buf, " (0x%llx)", static_cast<unsigned long long>(addr));
    s += buf;
  }
  return s;
}

void DiagLog::warn(std::string function, std::string reason, std::uint64_t addr) {
  entries_.push_back({DiagKind::Warn, std::move(function), std::move(reason), addr});
}

void DiagLog::error(std::string function, std::string reason, std::uint64_t addr) {
  entries_.push_back({DiagKind::Error, std::move(function), std::move(reason), addr});
}

void DiagLog::finding(std::string function, std::string reason, std::uint64_t addr) {
  entries_.push_back({DiagKind::Finding, std::move(function), std::move(reason), addr});
}

std::size_t DiagLog::count(DiagKind kind) const {
  std::size_t n = 0;
  for (const auto &d : entries_)
    n += d.kind == kind;
  return n;
}

std::vector<Diagnostic> DiagLog::since(std::size_t mark) const {
  if (mark >= entries_.size())
    return {};
  return {entries_.begin() + static_cast<std::ptrdiff_t>(mark), entries_.end()};
}

KernelBug::KernelBug(std::string function, std::string reason)
    : std::runtime_error("kernel BUG in " + function + ": " + reason),
      function_(std::move(function)), reason_(std::move(reason)) {}

} // namespace vmcheck
