#include "harness/value.h"

#include "harness/string_hash.h"
#include "harness/trace.h"

#include <cstdio>

namespace vmcheck {

namespace {

struct ErrnoName {
  std::string_view name;
  int value;
};

constexpr ErrnoName kErrnos[] = {
    {"ENOENT", ENOENT}, {"E2BIG", E2BIG},   {"ENOMEM", ENOMEM}, {"EFAULT", EFAULT},
    {"EBUSY", EBUSY},   {"EINVAL", EINVAL}, {"ERANGE", ERANGE},
};

} // namespace

Value Value::none() {
  return {};
}

Value Value::integer(std::uint64_t v) {
  Value r;
  r.kind = ValueKind::Int;
  r.num = v;
  return r;
}

Value Value::null() {
  Value r;
  r.kind = ValueKind::Null;
  return r;
}

Value Value::error(int negative_errno) {
  Value r;
  r.kind = ValueKind::Errno;
  r.num = static_cast<std::uint64_t>(static_cast<std::int64_t>(negative_errno));
  return r;
}

Value Value::bytes(std::string data) {
  Value r;
  r.kind = ValueKind::Bytes;
  r.text = std::move(data);
  return r;
}

Value Value::page(Pfn pfn) {
  Value r;
  r.kind = ValueKind::Page;
  r.num = pfn;
  return r;
}

Value Value::symbol(std::string word) {
  Value r;
  r.kind = ValueKind::Symbol;
  r.text = std::move(word);
  return r;
}

Value Value::structure(std::string type, std::vector<ValueField> fields) {
  Value r;
  r.kind = ValueKind::Struct;
  r.text = std::move(type);
  r.fields = std::move(fields);
  return r;
}

Value Value::array(std::vector<Value> items) {
  Value r;
  r.kind = ValueKind::Array;
  r.items = std::move(items);
  return r;
}

const Value *Value::field(std::string_view name) const {
  for (const ValueField &f : fields)
    if (f.name == name)
      return &f.value;
  return nullptr;
}

bool Value::operator==(const Value &other) const {
  return kind == other.kind && num == other.num && text == other.text && fields == other.fields &&
         items == other.items;
}

const char *value_kind_name(ValueKind kind) {
  switch (kind) {
  case ValueKind::None:
    return "nothing";
  case ValueKind::Int:
    return "an integer";
  case ValueKind::Null:
    return "NULL";
  case ValueKind::Errno:
    return "an errno";
  case ValueKind::Bytes:
    return "bytes";
  case ValueKind::Page:
    return "a page";
  case ValueKind::Struct:
    return "a struct";
  case ValueKind::Array:
    return "an array";
  case ValueKind::Symbol:
    return "a word";
  }
  return "?";
}

std::string errno_to_string(int negative_errno) {
  for (const ErrnoName &e : kErrnos)
    if (-e.value == negative_errno)
      return "-" + std::string(e.name);
  return std::to_string(negative_errno);
}

int errno_from_name(std::string_view name) {
  static const StringMap<int> by_name = [] {
    StringMap<int> m;
    for (const ErrnoName &e : kErrnos)
      m.emplace(std::string(e.name), e.value);
    return m;
  }();
  const auto it = by_name.find(name);
  return it == by_name.end() ? 0 : it->second;
}

std::string hex(std::uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

std::string value_to_string(const Value &v) {
  switch (v.kind) {
  case ValueKind::None:
    return "nothing";
  case ValueKind::Int:
    return print_int(v.num);
  case ValueKind::Null:
    return "NULL";
  case ValueKind::Errno:
    return errno_to_string(v.errno_value());
  case ValueKind::Bytes:
    return print_bytes(v.text);
  case ValueKind::Page:
    return "page(pfn " + print_int(v.num) + ")";
  case ValueKind::Symbol:
    return v.text;
  case ValueKind::Struct: {
    std::string s = v.text + "{";
    for (std::size_t i = 0; i < v.fields.size(); ++i)
      s += (i ? ", " : "") + v.fields[i].name + "=" + value_to_string(v.fields[i].value);
    return s + "}";
  }
  case ValueKind::Array: {
    std::string s = "[";
    for (std::size_t i = 0; i < v.items.size(); ++i)
      s += (i ? ", " : "") + value_to_string(v.items[i]);
    return s + "]";
  }
  }
  return "?";
}

bool value_matches(const Value &expected, const Value &actual) {
  if (expected == actual)
    return true;
  const auto as_number = [](const Value &v, std::uint64_t &out) {
    if (v.kind == ValueKind::Int || v.kind == ValueKind::Errno) {
      out = v.num;
      return true;
    }
    if (v.kind == ValueKind::Null) {
      out = 0;
      return true;
    }
    return false;
  };
  std::uint64_t a = 0;
  std::uint64_t b = 0;
  return as_number(expected, a) && as_number(actual, b) && a == b;
}

} // namespace vmcheck
