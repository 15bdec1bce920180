// The user-space ops against spec::UserSpace: each engine result is judged
// by what the spec's VMAs predict, and after each op the mms, VMAs and files
// of both sides are compared. (SpecTarget::follow then follows the op's
// page-level effects.)
#include "harness/spec_target.h"

#include <cinttypes>
#include <cstdio>
#include <optional>
#include <string_view>

namespace vmcheck {

namespace {

std::string hex(u64 v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%" PRIx64, v);
  return buf;
}

// The kernel's vm_fault_t codes the checks below name.
constexpr u64 kFaultOom = 0x1;
constexpr u64 kFaultSigbus = 0x2;
constexpr u64 kFaultWrite = 0x8;
constexpr u64 kFaultNopage = 0x100;

// Pages a user access may allocate: the zero page or a copy, the source
// page of a copy, and the page tables down to the PTE.
constexpr u64 kPagesPerFault = 8;

std::optional<u64> id_of(const Value &v) {
  const Value *id = v.field("id");
  return id == nullptr ? std::nullopt : std::optional(id->num);
}

std::string errno_or_int(std::int64_t v) {
  return v < 0 ? "errno " + std::to_string(v) : std::to_string(v);
}

// The engine's result as an int the kernel function returned (0 or a
// negative errno), or nullopt for any other kind of value.
std::optional<std::int64_t> int_of(const Value &v) {
  if (v.kind == ValueKind::Errno)
    return v.errno_value();
  if (v.kind == ValueKind::Int)
    return static_cast<std::int64_t>(v.num);
  return std::nullopt;
}

// WARNs only: a page allocation failure that a fault hits reports itself
// (pr_warn), which the spec does not predict where it cannot see the page
// tables. (mm_create, whose one allocation it does predict, counts both.)
std::size_t warns_in(const std::vector<Diagnostic> &diags, bool with_errors) {
  std::size_t n = 0;
  for (const Diagnostic &d : diags)
    n += d.kind == DiagKind::Warn || (with_errors && d.kind == DiagKind::Error);
  return n;
}

std::size_t warns_in(const std::vector<spec::Diag> &diags, bool with_errors) {
  std::size_t n = 0;
  for (const spec::Diag &d : diags)
    n += d.kind == spec::DiagKind::Warn || with_errors;
  return n;
}

const char *end_word(unsigned end) {
  switch (end) {
  case spec::kAccessOk:
    return "ok";
  case spec::kAccessSigsegv:
    return "sigsegv";
  case spec::kAccessSigbus:
    return "sigbus";
  default:
    return "oom";
  }
}

std::string ends_text(unsigned ends) {
  std::string s;
  for (unsigned bit = 1; bit <= spec::kAccessOom; bit <<= 1)
    if (ends & bit)
      s += std::string(s.empty() ? "" : " or ") + end_word(bit);
  return s;
}

// A fault code among `allowed` (bit set over the codes above; 0 stands for
// "done"), with OOM only where an allocation may have failed.
std::string check_fault_code(u64 got, std::initializer_list<u64> allowed, bool oom_plausible) {
  for (u64 code : allowed)
    if (got == code && (code != kFaultOom || oom_plausible))
      return {};
  std::string s = "spec predicts one of";
  for (u64 code : allowed)
    if (code != kFaultOom || oom_plausible)
      s += " " + hex(code);
  return s + ", engine returned " + hex(got);
}

} // namespace

std::string SpecTarget::predict_user(const std::string &op, const std::vector<Value> &args,
                                     const OpOutcome &engine, const Kernel &k,
                                     const std::array<u64, spec::kNumFailKinds> &fail_now) {
  const Value &got = engine.result.value;
  const bool with_errors = op == "mm_create";
  const std::size_t engine_warns = warns_in(engine.diags, with_errors);
  spec_.take_diags();
  user_.take_diags();
  auto spec_warns = [&] {
    return warns_in(user_.take_diags(), with_errors) + warns_in(spec_.take_diags(), with_errors);
  };
  auto same_int = [&](std::int64_t want) -> std::string {
    const std::optional<std::int64_t> g = int_of(got);
    if (g && *g == want)
      return {};
    return "spec predicts " + errno_or_int(want) + ", engine returned " + value_to_string(got);
  };
  auto warns_match = [&](std::size_t want) -> std::string {
    if (want == engine_warns)
      return {};
    return "spec predicts " + std::to_string(want) + " diagnostic(s), the engine recorded " +
           std::to_string(engine_warns);
  };
  auto exact_int = [&](std::int64_t want) -> std::string {
    const std::size_t w = spec_warns();
    std::string err = same_int(want);
    return err.empty() ? warns_match(w) : err;
  };
  // A stale handle: the harness refuses the op with a WARN and -EINVAL.
  auto stale = [&]() {
    std::string err = same_int(-EINVAL);
    return err.empty() ? warns_match(1) : err;
  };

  // ---- the harness's mm ops: exact -----------------------------------------------------------
  if (op == "mm_create") {
    const u64 id = user_.mm_create();
    const std::size_t w = spec_warns();
    const std::optional<u64> g = id_of(got);
    if ((id == 0) != (got.kind == ValueKind::Null) || (id != 0 && g != id))
      return "spec predicts " + (id == 0 ? std::string("NULL") : "mm " + std::to_string(id)) +
             ", engine returned " + value_to_string(got);
    return warns_match(w);
  }
  if (op == "mmput")
    return exact_int(user_.mmput(id_of(args[0]).value_or(0)));
  if (op == "file_create") {
    const u64 id = user_.file_create(args[0].num);
    const std::size_t w = spec_warns();
    const std::optional<u64> g = id_of(got);
    if ((id == 0) != (got.kind == ValueKind::Null) || (id != 0 && g != id))
      return "spec predicts " + (id == 0 ? std::string("NULL") : "file " + std::to_string(id)) +
             ", engine returned " + value_to_string(got);
    return warns_match(w);
  }
  if (op == "mmap" || op == "mmap_file") {
    const u64 mm = id_of(args[0]).value_or(0);
    const std::int64_t r = op == "mmap" ? user_.mmap(mm, args[1].num, args[2].num, args[3].num)
                                        : user_.mmap_file(mm, args[1].num, args[2].num, args[3].num,
                                                          id_of(args[4]).value_or(0), args[5].num);
    const std::size_t w = spec_warns();
    if (r < 0) {
      if (std::string err = same_int(r); !err.empty())
        return err;
      return warns_match(w);
    }
    const std::optional<u64> g = id_of(got);
    if (g != static_cast<u64>(r))
      return "spec predicts VMA " + std::to_string(r) + ", engine returned " + value_to_string(got);
    return warns_match(w);
  }
  if (op == "munmap")
    return exact_int(user_.munmap(id_of(args[0]).value_or(0), args[1].num, args[2].num));
  if (op == "mprotect")
    return exact_int(
        user_.mprotect(id_of(args[0]).value_or(0), args[1].num, args[2].num, args[3].num));

  // ---- accesses: the outcomes the VMAs allow ---------------------------------------------------
  const bool access_op = op == "touch" || op == "expect_fault" || op == "probe";
  if (access_op || op == "access_remote_vm") {
    const u64 mm = id_of(args[0]).value_or(0);
    if (user_.mms().count(mm) == 0)
      return stale();
    const u64 addr = args[1].num;
    if (access_op) {
      const std::string_view mode = args[2].text;
      const spec::UserAccess a = mode == "write"  ? spec::UserAccess::Write
                                 : mode == "exec" ? spec::UserAccess::Exec
                                                  : spec::UserAccess::Read;
      unsigned ends = user_.access_ends(mm, addr, a);
      if (!spec_.user_alloc_may_fail(fail_now, kPagesPerFault))
        ends &= ~unsigned{spec::kAccessOom};
      const std::string word = got.kind == ValueKind::None ? "ok" : got.text;
      for (unsigned bit = 1; bit <= spec::kAccessOom; bit <<= 1)
        if ((ends & bit) && word == end_word(bit))
          return {};
      return "user " + std::string(mode) + " of " + hex(addr) + ": spec predicts " +
             ends_text(ends) + ", engine reports " + word;
    }
    const unsigned flags = static_cast<unsigned>(args[3].num);
    if ((flags & ~(FOLL_WRITE | FOLL_FORCE)) != 0)
      return {}; // refused with a WARN and nothing done: the engine's own checks see to it
    const bool write = args[2].kind == ValueKind::Bytes;
    const u64 len = write ? args[2].text.size() : args[2].num;
    const u64 done = write ? got.num : got.text.size();
    if (got.kind != (write ? ValueKind::Int : ValueKind::Bytes))
      return "engine returned " + value_to_string(got);
    spec::ByteRange r = user_.remote_access_bytes(mm, addr, len, flags);
    if (spec_.user_alloc_may_fail(fail_now, (r.hi / PAGE_SIZE + 2) * kPagesPerFault))
      r.lo = 0;
    // It stops where it starts, at a page boundary, or at the end.
    const bool boundary = done == 0 || done == len || ((addr + done) & (PAGE_SIZE - 1)) == 0;
    if (done < r.lo || done > r.hi || !boundary)
      return "access_remote_vm of " + std::to_string(len) + " byte(s) at " + hex(addr) +
             ": spec predicts " + std::to_string(r.lo) +
             (r.lo == r.hi ? "" : " to " + std::to_string(r.hi)) +
             " byte(s) at page boundaries, engine did " + std::to_string(done);
    return {};
  }

  // ---- address_space ops ----------------------------------------------------------------------
  if (op == "unmap_mapping_pages" || op == "unmap_mapping_range") {
    if (user_.files().count(id_of(args[0]).value_or(0)) == 0)
      return stale();
    const bool negative =
        op == "unmap_mapping_range" &&
        (static_cast<std::int64_t>(args[1].num) < 0 || static_cast<std::int64_t>(args[2].num) < 0);
    return warns_match(negative ? 1 : 0);
  }

  // ---- memory.c calls on a VMA ------------------------------------------------------------------
  const spec::UserVma *vma = user_.vma_by_id(id_of(args[0]).value_or(0));
  if (vma == nullptr)
    return stale();
  const bool oom_plausible = spec_.user_alloc_may_fail(fail_now, kPagesPerFault);
  const u64 addr = args.size() > 1 ? args[1].num : 0;
  const bool inside = vma->start <= addr && addr < vma->end;
  if (op == "zap_vma_ptes") {
    const u64 size = args[2].num;
    const bool ok =
        (vma->flags & VM_PFNMAP) && addr >= vma->start && size <= ~addr && addr + size <= vma->end;
    if (!ok)
      return warns_match(1);
  }
  if (op == "zap_vma_ptes" || op == "zap_page_range" || op == "zap_page_range_single") {
    const u64 size = args[2].num;
    const bool bad = addr % PAGE_SIZE != 0 || size % PAGE_SIZE != 0 || size == 0 || size > ~addr;
    return warns_match(bad ? 1 : 0);
  }
  if (op == "unmap_vmas") {
    const u64 end = args[2].num;
    const bool bad = addr % PAGE_SIZE != 0 || end % PAGE_SIZE != 0 || end < addr;
    return warns_match(bad ? 1 : 0);
  }
  if (op == "follow_pfn") {
    if ((vma->flags & (VM_IO | VM_PFNMAP)) == 0)
      return same_int(-EINVAL);
    return {}; // the pfn of the PTE there, or -EINVAL without one
  }
  if (op == "vm_insert_page") {
    if (!inside)
      return same_int(-EFAULT);
    if (addr % PAGE_SIZE != 0) {
      if (std::string err = same_int(-EINVAL); !err.empty())
        return err;
      return warns_match(1);
    }
    if ((vma->flags & (VM_MIXEDMAP | VM_PFNMAP)) == VM_PFNMAP && got.kind != ValueKind::Errno)
      return "spec predicts a BUG or a refused page (VM_PFNMAP VMA), engine returned " +
             value_to_string(got);
    // The page's state decides -EINVAL (before the VMA is marked), the PTE
    // there -EBUSY, a page table -ENOMEM.
    const std::optional<std::int64_t> r = int_of(got);
    const bool marked = r && (*r == 0 || *r == -EBUSY || (*r == -ENOMEM && oom_plausible));
    if (!marked && !(r && *r == -EINVAL))
      return "spec predicts 0, -EINVAL, -EBUSY" + std::string(oom_plausible ? " or -ENOMEM" : "") +
             ", engine returned " + value_to_string(got);
    return take_engine_vma(k, vma->id, marked ? VM_MIXEDMAP : 0, false);
  }
  if (op == "remap_pfn_range" || op == "vm_iomap_memory") {
    const spec::UserSpace::RemapVerdict v =
        op == "remap_pfn_range"
            ? user_.remap_pfn_range(vma->id, addr, args[2].num, args[3].num, args[4].num)
            : user_.vm_iomap_memory(vma->id, args[1].num, args[2].num);
    if (v.bug)
      return "spec predicts a BUG (an empty range), engine returned " + value_to_string(got);
    if (v.err != 0) {
      if (std::string err = same_int(v.err); !err.empty())
        return err;
      return warns_match(v.warn ? 1 : 0);
    }
    const std::optional<std::int64_t> r = int_of(got);
    if (!(r && (*r == 0 || (*r == -ENOMEM && oom_plausible))))
      return "spec predicts 0" + std::string(oom_plausible ? " or -ENOMEM" : "") +
             ", engine returned " + value_to_string(got);
    return warns_match(0);
  }
  if (op == "remap_vmalloc_range" || op == "remap_vmalloc_range_partial") {
    // vm_insert_page marks the VMA VM_MIXEDMAP as it inserts (unless the
    // vmalloc side refused the range first: SpecTarget::follow checks that);
    // only success adds VM_DONTEXPAND|VM_DONTDUMP.
    const std::optional<std::int64_t> r = int_of(got);
    const u64 may = VM_MIXEDMAP | (r && *r == 0 ? VM_DONTEXPAND | VM_DONTDUMP : 0);
    return take_engine_vma(k, vma->id, may, false);
  }
  if (op == "vmf_insert_pfn" || op == "vmf_insert_pfn_prot") {
    const u64 pfn = args[2].num;
    const u64 driver = vma->flags & (VM_PFNMAP | VM_MIXEDMAP);
    const bool cow = (vma->flags & (VM_SHARED | VM_MAYWRITE)) == VM_MAYWRITE;
    if (driver == 0 || driver == (VM_PFNMAP | VM_MIXEDMAP) || (driver == VM_PFNMAP && cow) ||
        (driver == VM_MIXEDMAP && spec_.pfn_is_memory(pfn)))
      return "spec predicts a BUG (VMA flags " + hex(vma->flags) + ", pfn " + hex(pfn) +
             "), engine returned " + value_to_string(got);
    const pgprot_t prot = op == "vmf_insert_pfn" ? user_.page_prot(*vma) : args[3].num;
    if (!inside)
      return check_fault_code(got.num, {kFaultSigbus}, false);
    if (addr % PAGE_SIZE != 0 || !spec::UserSpace::user_prot_ok(prot) ||
        !spec_.pfn_is_memory(pfn)) {
      if (std::string err = check_fault_code(got.num, {kFaultSigbus}, false); !err.empty())
        return err;
      return warns_match(1);
    }
    if (std::string err = check_fault_code(got.num, {kFaultNopage, kFaultOom}, oom_plausible);
        !err.empty())
      return err;
    return warns_match(0);
  }
  if (op == "finish_mkwrite_fault") {
    if (!inside || (vma->flags & VM_SHARED) == 0) {
      if (std::string err = check_fault_code(got.num, {0}, false); !err.empty())
        return err;
      return warns_match(1);
    }
    return check_fault_code(got.num, {0, kFaultWrite}, false);
  }
  if (op == "alloc_set_pte" || op == "finish_fault") {
    if (!inside) {
      if (std::string err = check_fault_code(got.num, {kFaultSigbus}, false); !err.empty())
        return err;
      return warns_match(1);
    }
    // The page's state decides a SIGBUS (with its WARN), the PTE a NOPAGE.
    return check_fault_code(got.num, {0, kFaultNopage, kFaultSigbus, kFaultOom}, oom_plausible);
  }
  return {};
}

std::string SpecTarget::take_engine_vma(const Kernel &k, u64 id, u64 may_set, bool pgoff_may_move) {
  for (const auto &[mid, mm] : k.usermm().mms())
    for (const auto &[start, v] : mm.vmas)
      if (v.id == id)
        return user_.take_vma_change(id, v.vm_flags, v.vm_pgoff, may_set, pgoff_may_move);
  return "the engine has no VMA " + std::to_string(id) + " after the call";
}

std::string SpecTarget::compare_user_state(const Kernel &k) const {
  const UserMm &um = k.usermm();
  if (um.mms().size() != user_.mms().size())
    return std::to_string(um.mms().size()) + " mm(s) in the engine, " +
           std::to_string(user_.mms().size()) + " in the spec";
  auto s = user_.mms().begin();
  for (const auto &[id, mm] : um.mms()) {
    const auto &[sid, svmas] = *s++;
    if (id != sid)
      return "engine has mm " + std::to_string(id) + " where the spec has mm " +
             std::to_string(sid);
    auto sv = svmas.begin();
    for (const auto &[start, v] : mm.vmas) {
      const spec::UserVma e{v.id, v.vm_start, v.vm_end, v.vm_flags, v.vm_pgoff, v.mapping};
      if (sv == svmas.end() || !(e == *sv))
        return "mm " + std::to_string(id) + ": engine VMA " + std::to_string(v.id) + " " +
               hex(v.vm_start) + "-" + hex(v.vm_end) + " flags " + hex(v.vm_flags) + " pgoff " +
               hex(v.vm_pgoff) + " mapping " + std::to_string(v.mapping) +
               (sv == svmas.end()
                    ? std::string(", spec has none")
                    : ", spec VMA " + std::to_string(sv->id) + " " + hex(sv->start) + "-" +
                          hex(sv->end) + " flags " + hex(sv->flags) + " pgoff " + hex(sv->pgoff) +
                          " mapping " + std::to_string(sv->mapping));
      ++sv;
    }
    if (sv != svmas.end())
      return "mm " + std::to_string(id) + ": spec VMA " + std::to_string(sv->id) + " at " +
             hex(sv->start) + " is not in the engine";
  }
  if (um.mappings().size() != user_.files().size())
    return std::to_string(um.mappings().size()) + " address_space(s) in the engine, " +
           std::to_string(user_.files().size()) + " in the spec";
  auto f = user_.files().begin();
  for (const auto &[id, as] : um.mappings()) {
    const auto &[fid, file] = *f++;
    if (id != fid || as.nr_pages != file.nr_pages || as.shmem != file.shmem)
      return "engine address_space " + std::to_string(id) + " (" + std::to_string(as.nr_pages) +
             " pages" + (as.shmem ? ", shmem" : "") + "), spec " + std::to_string(fid) + " (" +
             std::to_string(file.nr_pages) + " pages" + (file.shmem ? ", shmem" : "") + ")";
  }
  return {};
}

} // namespace vmcheck
