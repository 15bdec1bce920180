// Runtime values of a trace: what ops take and return, what names are bound
// to and what `->` compares. Plain data, printable in trace syntax where the
// trace language can spell the value.
#pragma once

#include "vmcheck/abi.h"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace vmcheck {

enum class ValueKind : std::uint8_t {
  None,   // an op with no result (void functions, successful touch)
  Int,    // an integer or an address
  Null,   // a NULL pointer result
  Errno,  // a negative errno (-EINVAL), in `num` as a two's-complement int
  Bytes,  // data: strings, bytes, vread results
  Page,   // a struct page handle: the head frame's PFN in `num`
  Struct, // named fields (a vm_struct): addr, size, flags, nr_pages, ...
  Array,  // items: several results (pcpu_get_vm_areas)
  Symbol, // a bare word: a mode (read, alloc_page) or a fault (guard_page)
};

struct ValueField;

struct Value {
  ValueKind kind = ValueKind::None;
  std::uint64_t num = 0;          // Int, Errno, Page
  std::string text;               // Bytes data, Symbol word, Struct type name
  std::vector<ValueField> fields; // Struct, in declaration order
  std::vector<Value> items;       // Array

  static Value none();
  static Value integer(std::uint64_t v);
  static Value null();
  static Value error(int negative_errno);
  static Value bytes(std::string data);
  static Value page(Pfn pfn);
  static Value symbol(std::string word);
  static Value structure(std::string type, std::vector<ValueField> fields);
  static Value array(std::vector<Value> items);

  int errno_value() const { return static_cast<int>(static_cast<std::int64_t>(num)); }
  // The named field of a Struct, or nullptr.
  const Value *field(std::string_view name) const;

  bool operator==(const Value &other) const;
};

struct ValueField {
  std::string name;
  Value value;

  bool operator==(const ValueField &other) const = default;
};

const char *value_kind_name(ValueKind kind);

// Trace syntax where one exists (0x1000, NULL, -EINVAL, "text", x"00"*8,
// read), a descriptive form otherwise (page(pfn 0x1a2), {addr=..., size=...}).
std::string value_to_string(const Value &v);
// "0x" and v in lower-case hex, for diagnostics.
std::string hex(std::uint64_t v);

// Whether an actual result satisfies a `-> expected` value: equality, plus
// the kernel's own identities NULL == 0 and -EINVAL == (unsigned)-22.
bool value_matches(const Value &expected, const Value &actual);

// -ENAME spelling of a negative errno ("-EINVAL"), or "-N" for other values.
std::string errno_to_string(int negative_errno);
// The positive errno of an E-name the trace language knows, or 0.
int errno_from_name(std::string_view name);

} // namespace vmcheck
