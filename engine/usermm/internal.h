// Small helpers shared by the usermm sources (not part of the API).
#pragma once

#include "vmcheck/abi.h"

#include <cstdio>
#include <string>

namespace vmcheck::usermm_detail {

inline std::string hex(u64 v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

// PAGE_ALIGN that reports wrapping instead of returning 0.
inline bool page_align_checked(u64 len, u64 *out) {
  if (len > ~u64{0} - (PAGE_SIZE - 1))
    return false;
  *out = page_align(len);
  return true;
}

} // namespace vmcheck::usermm_detail
