// The user-space ops against spec::UserSpace: each engine result is
// compared with the spec's prediction (value and WARNs), and after each op
// the mms, VMAs and files of both sides are compared. (SpecTarget::follow
// then follows what the op did to the pages both sides share.)
#include "harness/spec_target.h"

#include <optional>
#include <string_view>

namespace vmcheck {

namespace {

// The kernel's vm_fault_t codes.
constexpr u64 kFaultOom = 0x1;
constexpr u64 kFaultSigbus = 0x2;

// Pages a user access may allocate: the zero page or a copy, the source
// page of a copy, and the page tables down to the PTE.
constexpr u64 kPagesPerFault = 8;

std::optional<u64> id_of(const Value &v) {
  const Value *id = v.field("id");
  return id == nullptr ? std::nullopt : std::optional(id->num);
}

// The engine's result as the int a kernel function returned (an errno or
// a count), or nullopt for any other kind of value.
std::optional<std::int64_t> int_of(const Value &v) {
  if (v.kind == ValueKind::Errno)
    return v.errno_value();
  if (v.kind == ValueKind::Int)
    return static_cast<std::int64_t>(v.num);
  return std::nullopt;
}

// WARNs only: a page allocation failure that a fault hits reports itself
// (pr_warn) from an allocation the spec cannot see (a page table).
// mm_create, whose one allocation the spec does see, counts both.
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

const char *end_word(spec::AccessEnd end) {
  switch (end) {
  case spec::AccessEnd::Ok:
    return "ok";
  case spec::AccessEnd::Sigsegv:
    return "sigsegv";
  case spec::AccessEnd::Sigbus:
    return "sigbus";
  case spec::AccessEnd::Oom:
    break;
  }
  return "oom";
}

std::string vma_text(const spec::UserVma &v) {
  return "VMA " + std::to_string(v.id) + " " + hex(v.start) + "-" + hex(v.end) + " flags " +
         hex(v.flags) + " pgoff " + hex(v.pgoff) + " mapping " + std::to_string(v.mapping);
}

spec::UserAccess access_of(std::string_view word) {
  return word == "write"  ? spec::UserAccess::Write
         : word == "exec" ? spec::UserAccess::Exec
                          : spec::UserAccess::Read;
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
  auto warns_match = [&]() -> std::string {
    const std::size_t want =
        warns_in(user_.take_diags(), with_errors) + warns_in(spec_.take_diags(), with_errors);
    if (want == engine_warns)
      return {};
    return "spec predicts " + std::to_string(want) + " diagnostic(s), the engine recorded " +
           std::to_string(engine_warns);
  };
  // The spec's value, then its diagnostics.
  auto expect = [&](const Value &want) -> std::string {
    if (!(want == got))
      return "spec predicts " + value_to_string(want) + ", engine returned " + value_to_string(got);
    return warns_match();
  };
  auto expect_int = [&](std::int64_t want) {
    return expect(want < 0 ? Value::error(static_cast<int>(want))
                           : Value::integer(static_cast<u64>(want)));
  };
  // A WARN the spec predicts without a model call (a stale handle, an
  // argument the call refuses up front).
  auto one_warn = [&](const char *why) -> std::string {
    if (engine_warns == 1)
      return {};
    return std::string("spec predicts a WARN (") + why + "), the engine recorded " +
           std::to_string(engine_warns) + " diagnostic(s)";
  };
  // A stale handle: the harness refuses the op with a WARN and -EINVAL.
  auto stale = [&]() -> std::string {
    if (!(got == Value::error(-EINVAL)))
      return "spec predicts -EINVAL (a stale handle), engine returned " + value_to_string(got);
    return one_warn("a stale handle");
  };
  // Whether an allocation may have failed in this op (the spec then takes
  // the engine's word for it: spec::UserSpace's alloc_fails).
  auto may_fail = [&](u64 pages) { return spec_.user_alloc_may_fail(fail_now, pages); };
  const std::optional<std::int64_t> got_int = int_of(got);

  try {
    // ---- the harness's mm ops ------------------------------------------------------------------
    if (op == "mm_create") {
      const u64 id = user_.mm_create();
      return expect(id == 0 ? Value::null()
                            : Value::structure("mm_struct", {{"id", Value::integer(id)}}));
    }
    if (op == "mmput")
      return expect_int(user_.mmput(id_of(args[0]).value_or(0)));
    if (op == "file_create") {
      const u64 id = user_.file_create(args[0].num);
      if (id == 0)
        return expect(Value::null());
      return expect(Value::structure("address_space", {{"id", Value::integer(id)},
                                                       {"nr_pages", Value::integer(args[0].num)}}));
    }
    if (op == "mmap" || op == "mmap_file") {
      const u64 mm = id_of(args[0]).value_or(0);
      const std::int64_t r = op == "mmap"
                                 ? user_.mmap(mm, args[1].num, args[2].num, args[3].num)
                                 : user_.mmap_file(mm, args[1].num, args[2].num, args[3].num,
                                                   id_of(args[4]).value_or(0), args[5].num);
      if (r < 0)
        return expect_int(r);
      const spec::UserVma &v = *user_.vma_by_id(static_cast<u64>(r));
      return expect(Value::structure("vm_area_struct", {{"id", Value::integer(v.id)},
                                                        {"vm_start", Value::integer(v.start)},
                                                        {"vm_end", Value::integer(v.end)},
                                                        {"vm_flags", Value::integer(v.flags)},
                                                        {"vm_pgoff", Value::integer(v.pgoff)}}));
    }
    if (op == "munmap")
      return expect_int(user_.munmap(id_of(args[0]).value_or(0), args[1].num, args[2].num));
    if (op == "mprotect")
      return expect_int(
          user_.mprotect(id_of(args[0]).value_or(0), args[1].num, args[2].num, args[3].num));

    // ---- accesses
    // ----------------------------------------------------------------------------------
    const bool access_op = op == "touch" || op == "expect_fault" || op == "probe";
    if (access_op || op == "access_remote_vm") {
      const u64 mm = id_of(args[0]).value_or(0);
      if (user_.mms().count(mm) == 0)
        return stale();
      const u64 addr = args[1].num;
      if (access_op) {
        // touch answers nothing when the access went through.
        const std::string word = got.kind == ValueKind::None ? "ok" : got.text;
        const spec::AccessEnd end = user_.touch(mm, addr, access_of(args[2].text),
                                                word == "oom" && may_fail(kPagesPerFault));
        if (word != end_word(end))
          return "user " + args[2].text + " of " + hex(addr) + ": spec predicts " + end_word(end) +
                 ", engine reports " + word;
        return warns_match();
      }
      const unsigned flags = static_cast<unsigned>(args[3].num);
      if ((flags & ~(FOLL_WRITE | FOLL_FORCE)) != 0)
        return one_warn("unsupported gup flags");
      // The buffer is the given bytes (the op answers a count) or len
      // zeros (it answers the buffer as far as it got); FOLL_WRITE copies
      // it into the mm, otherwise the mm is read into it.
      const bool source = args[2].kind == ValueKind::Bytes;
      const bool write = (flags & FOLL_WRITE) != 0;
      const std::string data = source ? args[2].text : std::string(args[2].num, '\0');
      const u64 len = data.size();
      if (got.kind != (source ? ValueKind::Int : ValueKind::Bytes))
        return "spec predicts " + std::string(source ? "a count" : "bytes") + ", engine returned " +
               value_to_string(got);
      const u64 engine_done = source ? got.num : got.text.size();
      const spec::UserSpace::RemoteAccess r =
          user_.access_remote_vm(mm, addr, len, data, flags,
                                 may_fail((len / PAGE_SIZE + 2) * kPagesPerFault), engine_done);
      if (r.done != engine_done)
        return "access_remote_vm of " + std::to_string(len) + " byte(s) at " + hex(addr) +
               ": spec predicts " + std::to_string(r.done) + " byte(s), engine did " +
               std::to_string(engine_done);
      if (!write && !source)
        for (std::size_t i = 0; i < r.bytes.size(); ++i)
          if (r.known[i] && r.bytes[i] != got.text[i])
            return "access_remote_vm: the byte at " + hex(addr + i) + ": spec predicts " +
                   hex(static_cast<std::uint8_t>(r.bytes[i])) + ", engine read " +
                   hex(static_cast<std::uint8_t>(got.text[i]));
      return warns_match();
    }

    // ---- address_space ops
    // -------------------------------------------------------------------------
    if (op == "unmap_mapping_pages" || op == "unmap_mapping_range") {
      const u64 file = id_of(args[0]).value_or(0);
      if (user_.files().count(file) == 0)
        return stale();
      const bool even_cows = args[3].num != 0;
      if (op == "unmap_mapping_pages") {
        user_.unmap_mapping_pages(file, args[1].num, args[2].num, even_cows);
        return warns_match();
      }
      // unmap_mapping_range(): the hole in bytes, rounded out to pages.
      const auto begin = static_cast<std::int64_t>(args[1].num);
      const auto len = static_cast<std::int64_t>(args[2].num);
      if (begin < 0 || len < 0)
        return one_warn("a negative hole");
      user_.unmap_mapping_pages(file, static_cast<u64>(begin) >> PAGE_SHIFT,
                                (static_cast<u64>(len) + PAGE_SIZE - 1) >> PAGE_SHIFT, even_cows);
      return warns_match();
    }

    // ---- memory.c calls on a VMA
    // ---------------------------------------------------------------------
    const spec::UserVma *vma = user_.vma_by_id(id_of(args[0]).value_or(0));
    if (vma == nullptr)
      return stale();
    const u64 id = vma->id, mm = vma->mm;
    const u64 addr = args.size() > 1 ? args[1].num : 0;
    const bool oom_plausible = may_fail(kPagesPerFault);
    if (op == "zap_vma_ptes" || op == "zap_page_range" || op == "zap_page_range_single") {
      const u64 size = args[2].num;
      if (op == "zap_vma_ptes" && !((vma->flags & VM_PFNMAP) && addr >= vma->start &&
                                    size <= ~addr && addr + size <= vma->end))
        return one_warn("not a range of a VM_PFNMAP VMA");
      if (!page_aligned(addr) || !page_aligned(size) || size == 0 || size > ~addr)
        return one_warn("a bad range");
      user_.zap(mm, vma->start, addr, addr + size, 0, op != "zap_page_range");
      return warns_match();
    }
    if (op == "unmap_vmas") {
      const u64 end = args[2].num;
      if (!page_aligned(addr) || !page_aligned(end) || end < addr)
        return one_warn("a bad range");
      user_.zap(mm, vma->start, addr, end, 0, false);
      return warns_match();
    }
    if (op == "follow_pfn" && addr >= user_.user_top()) {
      // The walk reaches the kernel half the mm shares: a kernel page there
      // (or -EINVAL where a huge leaf maps it; the spec does not track leaf
      // sizes), -EINVAL where nothing is mapped.
      if (!spec_.vmalloc_to_page(addr))
        return expect(Value::error(-EINVAL));
      if (got.kind != ValueKind::Int && !(got == Value::error(-EINVAL)))
        return "spec predicts a pfn or -EINVAL, engine returned " + value_to_string(got);
      return warns_match();
    }
    if (op == "follow_pfn") {
      std::optional<u64> pfn;
      const int r = user_.follow_pfn(id, addr, &pfn);
      if (r < 0 || pfn)
        return expect(r < 0 ? Value::error(r) : Value::integer(*pfn));
      if (got.kind != ValueKind::Int)
        return "spec predicts a pfn, engine returned " + value_to_string(got);
      return warns_match();
    }
    if (op == "vm_insert_page") {
      // An -EINVAL past the address checks is the engine's verdict on the
      // page's state, which the spec follows.
      const bool page_ok = !(got_int && *got_int == -EINVAL);
      const bool alloc_fails = got_int && *got_int == -ENOMEM && oom_plausible;
      return expect_int(user_.vm_insert_page(id, addr, args[2].num, page_ok, alloc_fails));
    }
    if (op == "vmf_insert_pfn" || op == "vmf_insert_pfn_prot") {
      const pgprot_t prot = op == "vmf_insert_pfn" ? user_.page_prot(*vma) : args[3].num;
      const bool alloc_fails = got.num == kFaultOom && oom_plausible;
      return expect(
          Value::integer(user_.vmf_insert_pfn_prot(id, addr, args[2].num, prot, alloc_fails)));
    }
    if (op == "remap_pfn_range" || op == "vm_iomap_memory") {
      const bool alloc_fails = got_int && *got_int == -ENOMEM && may_fail(4 * kPagesPerFault);
      const spec::UserSpace::RemapVerdict v =
          op == "remap_pfn_range"
              ? user_.remap_pfn_range(id, addr, args[2].num, args[3].num, args[4].num, alloc_fails)
              : user_.vm_iomap_memory(id, args[1].num, args[2].num, alloc_fails);
      return expect_int(v.err);
    }
    if (op == "finish_mkwrite_fault")
      return expect(Value::integer(user_.finish_mkwrite_fault(id, addr & PAGE_MASK)));
    if (op == "alloc_set_pte" || op == "finish_fault") {
      // A SIGBUS inside the VMA is the engine's verdict on the page.
      const bool inside = addr >= vma->start && addr < vma->end;
      const bool page_ok = !(inside && got.num == kFaultSigbus);
      const bool alloc_fails = got.num == kFaultOom && oom_plausible;
      return expect(Value::integer(user_.alloc_set_pte(
          id, addr & PAGE_MASK, args[2].num, args[3].text == "write", page_ok, alloc_fails)));
    }
    if (op == "remap_vmalloc_range" || op == "remap_vmalloc_range_partial")
      return remap_vmalloc(op, args, got, k, oom_plausible);
    return {};
  } catch (const spec::KernelBug &bug) {
    return std::string("spec predicts a kernel BUG (") + bug.what() + "), the engine carried on";
  }
}

std::string SpecTarget::remap_vmalloc(const std::string &op, const std::vector<Value> &args,
                                      const Value &got, const Kernel &k, bool oom_plausible) {
  const spec::UserVma &vma = *user_.vma_by_id(id_of(args[0]).value_or(0));
  // The range remap_vmalloc_range_partial is asked to map.
  int verdict = -EINVAL;
  u64 uaddr = 0, kaddr = 0, size = 0;
  if (op == "remap_vmalloc_range_partial") {
    uaddr = args[1].num;
    kaddr = args[2].num;
    size = args[3].num;
    verdict = spec_.remap_vmalloc_check(uaddr, kaddr, size);
  } else {
    // The whole VMA from page offset pgoff of the area at addr.
    const u64 addr = args[1].num, pgoff = args[2].num;
    if (pgoff <= (~u64{0} >> PAGE_SHIFT) && addr <= ~u64{0} - (pgoff << PAGE_SHIFT)) {
      uaddr = vma.start;
      kaddr = addr + (pgoff << PAGE_SHIFT);
      size = vma.end - vma.start;
      verdict = spec_.remap_vmalloc_check(uaddr, kaddr, size);
    }
  }
  const bool engine_einval = got == Value::error(-EINVAL);
  if (verdict != 0) {
    // Refused on the vmalloc side before anything is inserted.
    if (!engine_einval)
      return "spec predicts -EINVAL (no VM_USERMAP area holds the range, or a bad alignment or "
             "size), engine returned " +
             value_to_string(got);
    return {};
  }
  if (engine_einval)
    return "spec predicts the vmalloc side accepts the range (a VM_USERMAP area holds it), "
           "engine returned -EINVAL";
  // The user side: vm_insert_page of each page. A page table that cannot
  // be allocated stops it at the first page the engine did not map.
  const u64 pages = page_align(size) >> PAGE_SHIFT;
  const bool alloc_fails = got == Value::error(-ENOMEM) && oom_plausible;
  u64 fail_at = 0;
  if (const MmStruct *m = k.usermm().find_mm(vma.mm); m != nullptr)
    while (fail_at < pages &&
           k.machine().pt().walk(m->pgd, uaddr + (fail_at << PAGE_SHIFT)).present())
      ++fail_at;
  const int r = user_.remap_vmalloc_pages(vma.id, uaddr, pages, alloc_fails, fail_at);
  const Value want = r < 0 ? Value::error(r) : Value::integer(0);
  if (!(want == got))
    return "spec predicts " + value_to_string(want) + ", engine returned " + value_to_string(got);
  // All pages mapped: the spec now knows what each user page maps.
  if (r == 0)
    spec_.add_user_views(vma.mm, uaddr, kaddr, page_align(size));
  return {};
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
      const spec::UserVma e{v.id, v.mm, v.vm_start, v.vm_end, v.vm_flags, v.vm_pgoff, v.mapping};
      if (sv == svmas.end() || !(e == *sv))
        return "mm " + std::to_string(id) + ": engine " + vma_text(e) + ", spec " +
               (sv == svmas.end() ? std::string("has none") : vma_text(*sv));
      ++sv;
    }
    if (sv != svmas.end())
      return "mm " + std::to_string(id) + ": spec " + vma_text(*sv) + " is not in the engine";
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
