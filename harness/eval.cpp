#include "harness/eval.h"

#include "harness/constants.h"

namespace vmcheck {

namespace {

class Evaluator {
public:
  Evaluator(const Bindings &bindings, const OpTable &table) : bindings_(bindings), table_(table) {}

  // `out` is default-constructed (every caller passes a fresh Value, as
  // evaluate_into requires), so a plain integer only sets its two fields.
  bool eval(const Expr &e, Value &out) {
    switch (e.kind) {
    case ExprKind::Int:
      out.kind = ValueKind::Int;
      out.num = e.value;
      return true;
    case ExprKind::Bytes:
      out = Value::bytes(e.text);
      return true;
    case ExprKind::Name:
      return name(e, out);
    case ExprKind::List: {
      std::vector<Value> items;
      items.reserve(e.kids.size());
      for (const Expr &k : e.kids) {
        Value v;
        if (!eval(k, v))
          return false;
        items.push_back(std::move(v));
      }
      out = Value::array(std::move(items));
      return true;
    }
    case ExprKind::Neg:
      return negate(e, out);
    case ExprKind::Add:
    case ExprKind::Sub:
    case ExprKind::Mul:
    case ExprKind::Or:
      return binary(e, out);
    case ExprKind::Field:
      return field(e, out);
    case ExprKind::Index:
      return index(e, out);
    }
    return fail(e, "unknown expression");
  }

  const EvalError &error() const { return error_; }

private:
  bool fail(const Expr &e, std::string message) {
    error_ = {e.column, std::move(message)};
    return false;
  }

  bool name(const Expr &e, Value &out) {
    if (const auto it = bindings_.find(e.text); it != bindings_.end()) {
      out = it->second;
      return true;
    }
    if (e.text == "NULL") {
      out = Value::null();
      return true;
    }
    if (const auto c = lookup_constant(e.text)) {
      out = Value::integer(*c);
      return true;
    }
    if (table_.is_keyword(e.text)) {
      out = Value::symbol(e.text);
      return true;
    }
    if (errno_from_name(e.text) != 0)
      return fail(e, "errno name '" + e.text + "' needs a minus sign: -" + e.text);
    return fail(e, "unknown name '" + e.text + "'");
  }

  bool negate(const Expr &e, Value &out) {
    const Expr &operand = e.kids[0];
    if (operand.kind == ExprKind::Name && !bindings_.count(operand.text)) {
      if (const int err = errno_from_name(operand.text)) {
        out = Value::error(-err);
        return true;
      }
    }
    Value v;
    if (!eval(operand, v))
      return false;
    if (v.kind != ValueKind::Int)
      return fail(e, "cannot negate " + std::string(value_kind_name(v.kind)));
    out = Value::integer(0 - v.num);
    return true;
  }

  bool binary(const Expr &e, Value &out) {
    Value a;
    Value b;
    if (!eval(e.kids[0], a) || !eval(e.kids[1], b))
      return false;
    if (a.kind == ValueKind::Int && b.kind == ValueKind::Int) {
      switch (e.kind) {
      case ExprKind::Add:
        out = Value::integer(a.num + b.num);
        return true;
      case ExprKind::Sub:
        out = Value::integer(a.num - b.num);
        return true;
      case ExprKind::Mul:
        out = Value::integer(a.num * b.num);
        return true;
      default:
        out = Value::integer(a.num | b.num);
        return true;
      }
    }
    if (e.kind == ExprKind::Add && a.kind == ValueKind::Bytes && b.kind == ValueKind::Bytes) {
      if (a.text.size() + b.text.size() > kMaxBytesValue)
        return fail(e, "bytes value too large");
      out = Value::bytes(a.text + b.text);
      return true;
    }
    if (e.kind == ExprKind::Mul && a.kind == ValueKind::Bytes && b.kind == ValueKind::Int) {
      if (!a.text.empty() && b.num > kMaxBytesValue / a.text.size())
        return fail(e, "bytes value too large");
      std::string data;
      for (std::uint64_t i = 0; i < b.num && !a.text.empty(); ++i)
        data += a.text;
      out = Value::bytes(std::move(data));
      return true;
    }
    const char *op = e.kind == ExprKind::Add   ? "+"
                     : e.kind == ExprKind::Sub ? "-"
                     : e.kind == ExprKind::Mul ? "*"
                                               : "|";
    return fail(e, "cannot apply '" + std::string(op) + "' to " + value_kind_name(a.kind) +
                       " and " + value_kind_name(b.kind));
  }

  // The value `e` stands for: the bound value itself when e is a bound
  // name (a struct or an array handle is not copied to read one part of
  // it), else `scratch`, evaluated into; nullptr on error.
  const Value *operand(const Expr &e, Value &scratch) {
    if (e.kind == ExprKind::Name)
      if (const auto it = bindings_.find(e.text); it != bindings_.end())
        return &it->second;
    return eval(e, scratch) ? &scratch : nullptr;
  }

  bool field(const Expr &e, Value &out) {
    Value scratch;
    const Value *b = operand(e.kids[0], scratch);
    if (b == nullptr)
      return false;
    const Value &base = *b;
    if (base.kind != ValueKind::Struct)
      return fail(e, "'." + e.text + "' needs a struct, found " + value_kind_name(base.kind));
    const Value *f = base.field(e.text);
    if (!f)
      return fail(e, base.text + " has no field '" + e.text + "'");
    out = *f;
    return true;
  }

  bool index(const Expr &e, Value &out) {
    Value scratch;
    Value idx;
    const Value *b = operand(e.kids[0], scratch);
    if (b == nullptr || !eval(e.kids[1], idx))
      return false;
    const Value &base = *b;
    if (base.kind != ValueKind::Array)
      return fail(e, "indexing needs an array, found " + std::string(value_kind_name(base.kind)));
    if (idx.kind != ValueKind::Int || idx.num >= base.items.size())
      return fail(e, "index " + value_to_string(idx) + " out of range for an array of " +
                         std::to_string(base.items.size()));
    out = base.items[idx.num];
    return true;
  }

  const Bindings &bindings_;
  const OpTable &table_;
  EvalError error_;
};

} // namespace

EvalResult evaluate(const Expr &expr, const Bindings &bindings, const OpTable &table) {
  EvalResult r;
  r.error = evaluate_into(expr, bindings, table, r.value);
  return r;
}

std::optional<EvalError> evaluate_into(const Expr &expr, const Bindings &bindings,
                                       const OpTable &table, Value &out) {
  Evaluator ev(bindings, table);
  if (!ev.eval(expr, out))
    return ev.error();
  return std::nullopt;
}

std::string reserved_name_reason(std::string_view name, const OpTable &table) {
  if (name == "NULL" || name == "config")
    return "'" + std::string(name) + "' is reserved";
  if (lookup_constant(name))
    return "'" + std::string(name) + "' is a constant";
  if (errno_from_name(name) != 0)
    return "'" + std::string(name) + "' is an errno name";
  if (table.is_keyword(name))
    return "'" + std::string(name) + "' is a keyword";
  return {};
}

} // namespace vmcheck
