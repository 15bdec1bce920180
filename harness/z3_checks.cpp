// How the observer knows whether an op placed anything. A NULL result is a
// "nothing fits" claim only if the KVA search really ran; the op may have
// been refused before it (bad size, gfp, node, flags or window, an injected
// metadata failure) or placed its area and unwound it after a later failure.
// The fault injector's counters tell which, without re-deriving every
// refusal rule: __get_vm_area_node and then alloc_vmap_area each make one
// metadata (kmalloc) allocation before the search, so the search ran iff
// both were made and the second was not the injected one. After a
// successful search the vmalloc path always makes a third (the pages[]
// array, or the nested vmalloc of it), and vmap / alloc_vm_area can only
// fail afterwards in a page-table allocation; an area unwound that way is
// found as a new lazy area of the request's size, else (purged, freed at
// once by the legacy backend, or still queued for a deferred vfree in
// interrupt context) it is skipped.
//
// A vmalloc whose pages[] array needs more than a page places two areas in
// one op: the outer one against the state before the op, then the array's
// against that state plus the outer area (minus the lazy areas if placing
// the outer one needed a purge, which is the only time it overlaps one).
// Both are checked when the op succeeds; when it fails only the outer one.
#include "harness/z3_checks.h"

#include <algorithm>
#include <bit>
#include <utility>

namespace vmcheck {

namespace {

// PAGE_ALIGN with the kernel's wrap to 0 near 2^64, as the entry points use it.
u64 page_align_wrapping(u64 size) {
  return (size + PAGE_SIZE - 1) & PAGE_MASK;
}

// get_count_order(): ceil(log2(x)) for x > 0.
unsigned ceil_log2(u64 x) {
  return x <= 1 ? 0 : static_cast<unsigned>(std::bit_width(x - 1));
}

std::optional<u64> int_arg(const std::vector<Value> &args, std::size_t i) {
  if (i < args.size() && args[i].kind == ValueKind::Int)
    return args[i].num;
  return std::nullopt;
}

std::optional<std::vector<u64>> int_list_arg(const std::vector<Value> &args, std::size_t i) {
  if (i >= args.size() || args[i].kind != ValueKind::Array)
    return std::nullopt;
  std::vector<u64> out;
  for (const Value &v : args[i].items) {
    if (v.kind != ValueKind::Int)
      return std::nullopt;
    out.push_back(v.num);
  }
  return out;
}

// An address result (vmalloc family) or a vm_struct's addr; 0 for NULL.
u64 result_addr(const Value &v) {
  if (v.kind == ValueKind::Int)
    return v.num;
  if (v.kind == ValueKind::Struct)
    if (const Value *addr = v.field("addr"); addr != nullptr && addr->kind == ValueKind::Int)
      return addr->num;
  return 0;
}

constexpr std::string_view kVmallocFamily[] = {"vmalloc",
                                               "vzalloc",
                                               "vmalloc_user",
                                               "vmalloc_node",
                                               "vzalloc_node",
                                               "vmalloc_exec",
                                               "vmalloc_32",
                                               "vmalloc_32_user",
                                               "__vmalloc",
                                               "__vmalloc_node",
                                               "__vmalloc_node_range",
                                               "get_vm_area",
                                               "get_vm_area_caller",
                                               "__get_vm_area",
                                               "alloc_vm_area",
                                               "vmap"};

bool in_vmalloc_family(std::string_view op) {
  return std::find(std::begin(kVmallocFamily), std::end(kVmallocFamily), op) !=
         std::end(kVmallocFamily);
}

bool overlaps(u64 start, u64 end, const smt::ReservedArea &r) {
  return start < r.end && r.start < end;
}

bool same(const std::vector<smt::ReservedArea> &a, const std::vector<smt::ReservedArea> &b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](const auto &x, const auto &y) {
    return x.start == y.start && x.end == y.end && x.has_guard == y.has_guard && x.lazy == y.lazy;
  });
}

bool same(const std::vector<smt::AddrRange> &a, const std::vector<smt::AddrRange> &b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](const auto &x, const auto &y) {
    return x.start == y.start && x.end == y.end;
  });
}

} // namespace

smt::Snapshot z3_snapshot(const Kernel &k) {
  const Vmalloc &v = k.vmalloc();
  const Machine &m = k.machine();
  const bool modern = v.backend() == Backend::Modern;
  smt::Snapshot s;
  s.vmalloc_start = m.vmalloc_start();
  s.vmalloc_end = m.vmalloc_end();
  for (const auto &[start, va] : v.busy_areas()) {
    bool guard = false;
    if (va.vm_id != 0)
      if (auto vm = v.vm_structs().find(va.vm_id); vm != v.vm_structs().end())
        guard = vm->second->has_guard;
    bool purgeable = false;
    if (modern && (va.flags & VMAP_BLOCK))
      if (auto b = v.vmap_blocks().find(start); b != v.vmap_blocks().end())
        purgeable = b->second.free + b->second.dirty == VMAP_BBMAP_BITS &&
                    b->second.dirty != VMAP_BBMAP_BITS;
    s.reserved.push_back({va.va_start, va.va_end, guard, purgeable});
  }
  for (const auto &[start, va] : v.lazy_areas())
    s.reserved.push_back({va.va_start, va.va_end, false, true});
  if (modern)
    v.free_space().for_each([&s](const Range &r) { s.free_blocks.push_back({r.start, r.end}); });
  const u64 end = s.vmalloc_end + 1;
  const PageTables &pt = m.pt();
  pt.for_each_leaf(pt.kernel_root(), s.vmalloc_start, end, [&](u64 va, const PteRef &pte) {
    const u64 lo = std::max(va, s.vmalloc_start);
    const u64 hi = std::min(va + pte.page_size(), end);
    if (!s.present_ptes.empty() && s.present_ptes.back().end == lo)
      s.present_ptes.back().end = hi;
    else
      s.present_ptes.push_back({lo, hi});
  });
  return s;
}

std::optional<Z3Request> z3_vmalloc_request(const Kernel &k, std::string_view op,
                                            const std::vector<Value> &args) {
  const bool legacy = k.vmalloc().backend() == Backend::Legacy;
  std::optional<u64> size;
  u64 align = 1;
  VmFlags flags = 0;
  u64 start = k.machine().vmalloc_start();
  u64 end = k.machine().vmalloc_end();
  bool vmalloc_path = true;
  auto window = [&](std::size_t i) {
    const std::optional<u64> s = int_arg(args, i), e = int_arg(args, i + 1);
    if (s && e) {
      start = *s;
      end = *e;
    }
    return s && e;
  };
  if (op == "vmalloc" || op == "vzalloc" || op == "vmalloc_exec" || op == "vmalloc_32" ||
      op == "__vmalloc" || op == "vmalloc_node" || op == "vzalloc_node") {
    size = int_arg(args, 0);
  } else if (op == "vmalloc_user" || op == "vmalloc_32_user") {
    size = int_arg(args, 0);
    align = PAGE_SIZE; // SHMLBA
    flags = VM_USERMAP;
  } else if (op == "__vmalloc_node") {
    size = int_arg(args, 0);
    align = int_arg(args, 1).value_or(0);
  } else if (op == "__vmalloc_node_range") {
    size = int_arg(args, 0);
    align = int_arg(args, 1).value_or(0);
    flags = int_arg(args, 6).value_or(~VmFlags{0});
    if (!window(2))
      return std::nullopt;
  } else if (op == "get_vm_area" || op == "get_vm_area_caller" || op == "alloc_vm_area" ||
             op == "__get_vm_area" || op == "vmap") {
    vmalloc_path = false;
    if (op == "vmap") {
      const std::optional<u64> count = int_arg(args, 1);
      size = count ? std::optional<u64>(*count << PAGE_SHIFT) : std::nullopt;
      flags = int_arg(args, 2).value_or(~VmFlags{0});
    } else if (op == "alloc_vm_area") {
      size = int_arg(args, 0);
      flags = VM_IOREMAP;
    } else {
      size = int_arg(args, 0);
      flags = int_arg(args, 1).value_or(~VmFlags{0});
      if (op == "__get_vm_area" && !window(2))
        return std::nullopt;
    }
  } else {
    return std::nullopt;
  }
  if (!size || (flags & ~VM_KNOWN_MASK) || !is_power_of_2(align))
    return std::nullopt;
  u64 sz = *size;
  if (vmalloc_path) {
    sz = page_align_wrapping(sz);
    flags |= VM_ALLOC | VM_UNINITIALIZED;
  }
  // __get_vm_area_node: seed 003 (legacy) takes fls() of the size as given,
  // the modern backend get_count_order() of the page-aligned size.
  if (legacy && (flags & VM_IOREMAP))
    align = u64{1} << std::clamp<unsigned>(fls64(sz), PAGE_SHIFT, IOREMAP_MAX_ORDER);
  sz = page_align_wrapping(sz);
  if (sz == 0)
    return std::nullopt;
  if (!legacy && (flags & VM_IOREMAP))
    align = u64{1} << std::clamp<unsigned>(ceil_log2(sz), PAGE_SHIFT, IOREMAP_MAX_ORDER);
  Z3Request req;
  req.has_guard = legacy || !(flags & VM_NO_GUARD);
  if (req.has_guard) {
    if (sz + PAGE_SIZE < sz)
      return std::nullopt;
    sz += PAGE_SIZE;
  }
  req.allocates_pages = vmalloc_path;
  // VMALLOC_END is inclusive, and the entry points pass it on as the
  // exclusive end of the window: the range's last page is never used.
  req.call = smt::VmallocCall{sz, align, start, end, 0};
  return req;
}

Z3Observer::Z3Observer(Kernel &k, unsigned rlimit, bool state_checks)
    : k_(k), checker_(rlimit == 0 ? smt::kDefaultRlimit : rlimit), before_(capture()),
      state_checks_(state_checks) {}

Z3Observer::Before Z3Observer::capture() const {
  Before b;
  b.snap = z3_snapshot(k_);
  b.initialized = k_.vmalloc().initialized();
  const FaultInjector &f = k_.machine().faults();
  b.vmap_area_attempts = f.attempts(FailPoint::VmapArea);
  b.vmap_area_injected = f.injected(FailPoint::VmapArea);
  b.page_table_attempts = f.attempts(FailPoint::PageTable);
  for (const auto &[start, va] : k_.vmalloc().lazy_areas())
    b.lazy.emplace_back(va.va_start, va.va_end);
  return b;
}

// The state the op's placement saw: the state before the op, plus the boot
// areas when this op is the one that ran vmalloc_init (it imports them first).
smt::Snapshot Z3Observer::placement_snapshot() const {
  smt::Snapshot s = before_.snap;
  if (!before_.initialized)
    for (const auto &[id, vm] : k_.vmalloc().vm_structs())
      if (vm->caller == "vm_area_add_early")
        s.reserved.push_back({vm->addr, vm->addr + vm->size, false, false});
  return s;
}

std::optional<Z3Violation> Z3Observer::record(const std::vector<smt::CheckResult> &results) {
  std::optional<Z3Violation> first;
  for (const smt::CheckResult &r : results) {
    counts_.queries += r.queries;
    counts_.proven += r.proven;
    if (r.status == smt::Status::Unknown)
      ++counts_.unknown;
    if (r.status == smt::Status::Violated) {
      ++counts_.violated;
      if (!first)
        first = Z3Violation{r.name, r.counterexample};
    }
  }
  return first;
}

std::optional<Z3Violation> Z3Observer::check_pcpu(const std::vector<Value> &args,
                                                  const Value &result) {
  std::optional<std::vector<u64>> offsets = int_list_arg(args, 0), sizes = int_list_arg(args, 1);
  const std::optional<u64> nr = int_arg(args, 2), align = int_arg(args, 3);
  if (!offsets || !sizes || !nr || !align || offsets->size() < *nr || sizes->size() < *nr) {
    ++counts_.skipped;
    return std::nullopt;
  }
  offsets->resize(*nr);
  sizes->resize(*nr);
  smt::PcpuCall call{*offsets, *sizes, *align, {}};
  if (result.kind == ValueKind::Array) {
    for (const Value &vm : result.items)
      call.addrs.push_back(result_addr(vm));
  } else {
    // All of its metadata (the arrays, a vmap_area and a vm_struct per area)
    // is allocated after the argument checks and before the search, and none
    // after it: the search ran iff some was allocated and none was injected.
    const FaultInjector &f = k_.machine().faults();
    if (f.attempts(FailPoint::VmapArea) == before_.vmap_area_attempts ||
        f.injected(FailPoint::VmapArea) != before_.vmap_area_injected) {
      ++counts_.skipped;
      return std::nullopt;
    }
  }
  return record(checker_.check_pcpu(placement_snapshot(), call));
}

std::optional<Z3Violation> Z3Observer::check_vmalloc(const Z3Request &req, const Value &result) {
  const FaultInjector &f = k_.machine().faults();
  const u64 attempts = f.attempts(FailPoint::VmapArea) - before_.vmap_area_attempts;
  const u64 injected = f.injected(FailPoint::VmapArea) - before_.vmap_area_injected;
  const u64 pt_attempts = f.attempts(FailPoint::PageTable) - before_.page_table_attempts;
  if (attempts < 2 || (attempts == 2 && injected != 0)) {
    ++counts_.skipped; // refused before the search
    return std::nullopt;
  }
  const smt::Snapshot snap = placement_snapshot();
  smt::VmallocCall call = req.call;
  const Vmalloc &v = k_.vmalloc();
  if (const u64 addr = result_addr(result); addr != 0) {
    const auto area = v.busy_areas().find(addr);
    if (area == v.busy_areas().end() || area->second.size() != call.size) {
      ++counts_.violated;
      return Z3Violation{"vmalloc request size",
                         "the request needs " + hex(call.size) +
                             " bytes (guard page included), but the area at " + hex(addr) +
                             (area == v.busy_areas().end()
                                  ? " is not a busy area"
                                  : " spans " + hex(area->second.size()) + " bytes")};
    }
    call.result = addr;
    if (std::optional<Z3Violation> bad = record(checker_.check_vmalloc(snap, call)))
      return bad;
    if (!req.allocates_pages)
      return std::nullopt;
    Z3Request outer = req;
    outer.call.result = addr;
    return check_nested(snap, outer);
  }
  // NULL: an outer area that was placed and then unwound is a new lazy area
  // of the request's size (a nested array area, if any, is much smaller).
  for (const auto &[start, va] : v.lazy_areas()) {
    const bool was_lazy = std::find(before_.lazy.begin(), before_.lazy.end(),
                                    std::make_pair(va.va_start, va.va_end)) != before_.lazy.end();
    if (!was_lazy && va.size() == call.size) {
      call.result = va.va_start;
      return record(checker_.check_vmalloc(snap, call));
    }
  }
  if (attempts > 2 || pt_attempts != 0) {
    ++counts_.skipped; // placed, unwound, and its VA already purged
    return std::nullopt;
  }
  return record(checker_.check_vmalloc(snap, call));
}

std::optional<Z3Violation> Z3Observer::check_nested(const smt::Snapshot &snap,
                                                    const Z3Request &outer) {
  const Vmalloc &v = k_.vmalloc();
  const VmapArea &va = v.busy_areas().at(outer.call.result);
  const auto vm = v.vm_structs().find(va.vm_id);
  if (vm == v.vm_structs().end() || !(vm->second->flags & VM_VPAGES))
    return std::nullopt;
  const u64 start = outer.call.result;
  const u64 end = start + outer.call.size;
  smt::Snapshot s = snap;
  const bool purged =
      std::any_of(s.reserved.begin(), s.reserved.end(),
                  [&](const smt::ReservedArea &r) { return r.lazy && overlaps(start, end, r); });
  if (purged)
    std::erase_if(s.reserved, [](const smt::ReservedArea &r) { return r.lazy; });
  s.reserved.push_back({start, end, outer.has_guard, false});
  const u64 nr_pages = (outer.call.size - (outer.has_guard ? PAGE_SIZE : 0)) >> PAGE_SHIFT;
  // __vmalloc_node(nr_pages * sizeof(struct page *), 1, ...) over the whole
  // range, whatever the outer window; always with a guard page.
  smt::VmallocCall call{page_align(nr_pages * sizeof(u64)) + PAGE_SIZE, 1, s.vmalloc_start,
                        s.vmalloc_end, vm->second->pages_array};
  return record(checker_.check_vmalloc(s, call));
}

std::optional<Z3Violation> Z3Observer::after_op(std::string_view op, const std::vector<Value> &args,
                                                const Value &result) {
  std::optional<Z3Violation> bad;
  if (op == "pcpu_get_vm_areas") {
    bad = check_pcpu(args, result);
  } else if (in_vmalloc_family(op)) {
    if (const std::optional<Z3Request> req = z3_vmalloc_request(k_, op, args))
      bad = check_vmalloc(*req, result);
    else
      ++counts_.skipped;
  }
  // Most ops (probes, fault arming, frees of bad addresses, idle purges)
  // leave the snapshot as it was: the checks already ran on these very
  // inputs, so they are only run again on what changed.
  Before after = capture();
  if (!state_checks_) {
    before_ = std::move(after);
    return bad;
  }
  const bool reserved_same = checked_ && same(after.snap.reserved, before_.snap.reserved);
  if (!bad && !(reserved_same && same(after.snap.present_ptes, before_.snap.present_ptes)))
    bad = record({checker_.check_guard_pages(after.snap)});
  if (!bad && k_.vmalloc().backend() == Backend::Modern &&
      !(reserved_same && same(after.snap.free_blocks, before_.snap.free_blocks)))
    bad = record({checker_.check_tiling(after.snap)});
  before_ = std::move(after);
  checked_ = true;
  return bad;
}

} // namespace vmcheck
