// User address-space ops (TRACE.md, seed 004 and remap_vmalloc_range of
// seed 000). Handles are structs carrying the object's id:
//   mm = mm_create()                      -> mm_struct{id}
//   f = file_create(npages)               -> address_space{id, nr_pages}: a file whose byte
//                                            at offset o of page i reads (i*31 + o) & 0xff
//   v = mmap(mm, addr, len, flags)        -> vm_area_struct{id, vm_start, vm_end, vm_flags,
//   v = mmap_file(mm, addr, len, flags, f, pgoff)                                 vm_pgoff}
// addr 0 lets mmap choose; otherwise it replaces what was there (MAP_FIXED).
// Anonymous VM_SHARED memory is a private zero-filled shmem object; any of
// VM_IO|VM_PFNMAP|VM_MIXEDMAP makes a driver mapping with no fault handler.
// A handle's fields are a snapshot; ops find the object by id (a split keeps
// the id on the lower part).
//
// touch(mm, addr, read|write|exec), expect_fault(mm, addr, mode) and
// probe(mm, addr, mode) are user-mode accesses on the current CPU through
// the fault path; a failed access yields sigsegv, sigbus, oom (or
// stale_tlb). touch must succeed and expect_fault must fail; probe (what
// decoded traces use) returns ok or the failure word, and only a stale
// translation is a divergence. Their two-argument kernel forms stay those
// of register_machine_ops, which must therefore be registered first. vm_fault_t results are
// integers (VM_FAULT_NOPAGE is 0x100). alloc_set_pte and finish_fault take the prepared page and
// the fault's direction: finish_fault(v, addr, p, write) on a private mapping maps p as the fault's
// private copy (vmf->cow_page). finish_mkwrite_fault(v, addr) takes the PTE as it is now as the
// fault's orig_pte.
#include "harness/op_args.h"
#include "harness/ops.h"
#include "harness/trace.h"

#include <climits>
#include <utility>

namespace vmcheck {

namespace {

// Plain arrays: a namespace-scope constexpr initializer_list is not portable
// (GCC rejects it).
constexpr const char *kAccessWords[] = {"read", "write", "exec"};
constexpr const char *kResultWords[] = {"sigsegv", "sigbus", "oom"};

Access access_from_word(const std::string &w) {
  return w == "read" ? Access::Read : w == "write" ? Access::Write : Access::Exec;
}

// Arguments of the usermm ops: OpArgs plus object handles, pfns and bytes.
class UArgs {
public:
  UArgs(const OpDef &def, const std::vector<Value> &argv)
      : def_(def), argv_(argv), args_(def, argv) {}

  bool count(std::size_t n) { return args_.count(n); }
  std::optional<std::uint64_t> integer(std::size_t i) { return args_.integer(i); }
  std::optional<std::uint64_t> integer_in(std::size_t i, std::uint64_t lo, std::uint64_t hi) {
    return args_.integer_in(i, lo, hi);
  }
  std::optional<std::string> word(std::size_t i, std::initializer_list<std::string_view> c) {
    return args_.word(i, c);
  }
  // The id of a handle of the given struct type (mm_struct, ...).
  std::optional<std::uint64_t> handle(std::size_t i, const std::string &type) {
    if (i < argv_.size() && argv_[i].kind == ValueKind::Struct && argv_[i].text == type)
      if (const Value *id = argv_[i].field("id"); id && id->kind == ValueKind::Int)
        return id->num;
    return fail(i, "a " + type + " handle");
  }
  // A page frame: a page handle or an integer pfn.
  std::optional<std::uint64_t> pfn(std::size_t i) {
    if (i < argv_.size() && (argv_[i].kind == ValueKind::Page || argv_[i].kind == ValueKind::Int))
      return argv_[i].num;
    return fail(i, "a page or a pfn");
  }
  std::optional<Pfn> page(std::size_t i) {
    if (i < argv_.size() && argv_[i].kind == ValueKind::Page)
      return argv_[i].num;
    return fail(i, "a page");
  }
  bool is_bytes(std::size_t i) const {
    return i < argv_.size() && argv_[i].kind == ValueKind::Bytes;
  }
  const std::string &bytes(std::size_t i) const { return argv_[i].text; }

  OpResult error() const { return error_.empty() ? args_.error() : OpResult::bad_arg(error_); }

private:
  std::nullopt_t fail(std::size_t i, const std::string &expected) {
    const std::string found = i < argv_.size() ? value_to_string(argv_[i]) : "nothing";
    error_ = def_.name + ": argument " + std::to_string(i + 1) + ": expected " + expected +
             ", found " + found;
    return std::nullopt;
  }

  const OpDef &def_;
  const std::vector<Value> &argv_;
  OpArgs args_;
  std::string error_;
};

UserMm &um(ExecContext &ctx) {
  return ctx.kernel.usermm();
}

// A handle naming no live object (an id from a finished mm, a VMA unmapped
// since): like bad input to the kernel, a diagnostic and -EINVAL.
OpResult stale(ExecContext &ctx, const std::string &op, const std::string &what, u64 id) {
  ctx.machine().diag().warn(op, "no " + what + " " + std::to_string(id));
  return OpResult::ok(Value::error(-EINVAL));
}

Value int_result(int ret) {
  return ret < 0 ? Value::error(ret) : Value::integer(static_cast<u64>(ret));
}

Value mm_value(u64 id) {
  return Value::structure("mm_struct", {{"id", Value::integer(id)}});
}

Value vma_value(const VmAreaStruct &v) {
  return Value::structure("vm_area_struct", {{"id", Value::integer(v.id)},
                                             {"vm_start", Value::integer(v.vm_start)},
                                             {"vm_end", Value::integer(v.vm_end)},
                                             {"vm_flags", Value::integer(v.vm_flags)},
                                             {"vm_pgoff", Value::integer(v.vm_pgoff)}});
}

const char *access_failure_word(const UserAccess &a) {
  if (a.fault & VM_FAULT_OOM)
    return "oom";
  if (a.fault & VM_FAULT_SIGBUS)
    return "sigbus";
  if (a.fault & VM_FAULT_SIGSEGV)
    return "sigsegv";
  return a.mmu == Fault::StaleTlb ? "stale_tlb" : "sigbus";
}

// ---- address spaces ----------------------------------------------------------------------

OpResult op_mm_create(const OpDef &def, ExecContext &ctx, const std::vector<Value> &argv) {
  UArgs a(def, argv);
  if (!a.count(0))
    return a.error();
  const u64 id = um(ctx).mm_create();
  return OpResult::ok(id == 0 ? Value::null() : mm_value(id));
}

OpResult op_mmput(const OpDef &def, ExecContext &ctx, const std::vector<Value> &argv) {
  UArgs a(def, argv);
  std::optional<u64> mm;
  if (!a.count(1) || !(mm = a.handle(0, "mm_struct")))
    return a.error();
  return OpResult::ok(int_result(um(ctx).mmput(*mm)));
}

OpResult op_file_create(const OpDef &def, ExecContext &ctx, const std::vector<Value> &argv) {
  UArgs a(def, argv);
  std::optional<u64> n;
  if (!a.count(1) || !(n = a.integer(0)))
    return a.error();
  const u64 id = um(ctx).file_create(*n);
  if (id == 0)
    return OpResult::ok(Value::null());
  return OpResult::ok(Value::structure(
      "address_space", {{"id", Value::integer(id)}, {"nr_pages", Value::integer(*n)}}));
}

OpResult mmap_result(ExecContext &ctx, std::int64_t ret) {
  if (ret < 0)
    return OpResult::ok(Value::error(static_cast<int>(ret)));
  return OpResult::ok(vma_value(*um(ctx).vma_by_id(static_cast<u64>(ret))));
}

OpResult op_mmap(const OpDef &def, ExecContext &ctx, const std::vector<Value> &argv) {
  UArgs a(def, argv);
  std::optional<u64> mm, addr, len, flags;
  if (!a.count(4) || !(mm = a.handle(0, "mm_struct")) || !(addr = a.integer(1)) ||
      !(len = a.integer(2)) || !(flags = a.integer(3)))
    return a.error();
  return mmap_result(ctx, um(ctx).mmap(*mm, *addr, *len, *flags));
}

OpResult op_mmap_file(const OpDef &def, ExecContext &ctx, const std::vector<Value> &argv) {
  UArgs a(def, argv);
  std::optional<u64> mm, addr, len, flags, file, pgoff;
  if (!a.count(6) || !(mm = a.handle(0, "mm_struct")) || !(addr = a.integer(1)) ||
      !(len = a.integer(2)) || !(flags = a.integer(3)) || !(file = a.handle(4, "address_space")) ||
      !(pgoff = a.integer(5)))
    return a.error();
  return mmap_result(ctx, um(ctx).mmap_file(*mm, *addr, *len, *flags, *file, *pgoff));
}

OpResult op_munmap(const OpDef &def, ExecContext &ctx, const std::vector<Value> &argv) {
  UArgs a(def, argv);
  std::optional<u64> mm, addr, len;
  if (!a.count(3) || !(mm = a.handle(0, "mm_struct")) || !(addr = a.integer(1)) ||
      !(len = a.integer(2)))
    return a.error();
  return OpResult::ok(int_result(um(ctx).munmap(*mm, *addr, *len)));
}

OpResult op_mprotect(const OpDef &def, ExecContext &ctx, const std::vector<Value> &argv) {
  UArgs a(def, argv);
  std::optional<u64> mm, addr, len, flags;
  if (!a.count(4) || !(mm = a.handle(0, "mm_struct")) || !(addr = a.integer(1)) ||
      !(len = a.integer(2)) || !(flags = a.integer(3)))
    return a.error();
  return OpResult::ok(int_result(um(ctx).mprotect(*mm, *addr, *len, *flags)));
}

enum class AccessCheck : std::uint8_t { MustSucceed, MustFault, Probe };

// touch / expect_fault / probe: the mm form here, the kernel form from the
// machine ops.
OpResult user_access(const OpDef &def, ExecContext &ctx, const std::vector<Value> &argv,
                     AccessCheck check) {
  UArgs a(def, argv);
  std::optional<u64> mm, addr;
  std::optional<std::string> mode;
  if (!a.count(3) || !(mm = a.handle(0, "mm_struct")) || !(addr = a.integer(1)) ||
      !(mode = a.word(2, {"read", "write", "exec"})))
    return a.error();
  if (um(ctx).find_mm(*mm) == nullptr)
    return stale(ctx, def.name, "mm", *mm);
  const UserAccess r = um(ctx).touch(*mm, *addr, access_from_word(*mode));
  if (check == AccessCheck::Probe) {
    if (r.ok())
      return OpResult::ok(Value::symbol("ok"));
    const char *word = access_failure_word(r);
    if (r.mmu == Fault::StaleTlb)
      return OpResult::diverged(Value::symbol(word),
                                "user " + *mode + " of " + hex(*addr) + " used a stale TLB entry");
    return OpResult::ok(Value::symbol(word));
  }
  if (check == AccessCheck::MustFault) {
    if (!r.ok())
      return OpResult::ok(Value::symbol(access_failure_word(r)));
    return OpResult::diverged(Value::none(), *mode + " of " + hex(*addr) + " did not fault (pa " +
                                                 hex(r.pa) + ")");
  }
  if (r.ok())
    return OpResult::ok();
  const char *word = access_failure_word(r);
  return OpResult::diverged(Value::symbol(word),
                            "user " + *mode + " of " + hex(*addr) + " failed: " + word);
}

// ---- seed 004 ---------------------------------------------------------------------------------

// Reads "v" as a live VMA or answers for the op.
struct VmaArg {
  VmAreaStruct *vma = nullptr;
  std::optional<OpResult> early;
};

VmaArg vma_arg(UArgs &a, const OpDef &def, ExecContext &ctx, std::size_t i) {
  const auto id = a.handle(i, "vm_area_struct");
  if (!id)
    return {nullptr, a.error()};
  VmAreaStruct *v = um(ctx).vma_by_id(*id);
  if (v == nullptr)
    return {nullptr, stale(ctx, def.name, "VMA", *id)};
  return {v, std::nullopt};
}

// op(v, x, y) for the void zap functions.
template <void (UserMm::*Fn)(VmAreaStruct &, u64, u64)>
OpResult zap_op(const OpDef &def, ExecContext &ctx, const std::vector<Value> &argv) {
  UArgs a(def, argv);
  if (!a.count(3))
    return a.error();
  VmaArg v = vma_arg(a, def, ctx, 0);
  if (v.early)
    return *v.early;
  std::optional<u64> x, y;
  if (!(x = a.integer(1)) || !(y = a.integer(2)))
    return a.error();
  (um(ctx).*Fn)(*v.vma, *x, *y);
  return OpResult::ok();
}

OpResult op_unmap_vmas(const OpDef &def, ExecContext &ctx, const std::vector<Value> &argv) {
  UArgs a(def, argv);
  if (!a.count(3))
    return a.error();
  VmaArg v = vma_arg(a, def, ctx, 0);
  if (v.early)
    return *v.early;
  std::optional<u64> start, end;
  if (!(start = a.integer(1)) || !(end = a.integer(2)))
    return a.error();
  MmuGather tlb(ctx.machine(), um(ctx).find_mm(v.vma->mm)->pgd, *start, *end);
  um(ctx).unmap_vmas(tlb, *v.vma, *start, *end);
  tlb.finish();
  return OpResult::ok();
}

OpResult op_zap_page_range_single(const OpDef &def, ExecContext &ctx,
                                  const std::vector<Value> &argv) {
  UArgs a(def, argv);
  if (!a.count(3))
    return a.error();
  VmaArg v = vma_arg(a, def, ctx, 0);
  if (v.early)
    return *v.early;
  std::optional<u64> addr, size;
  if (!(addr = a.integer(1)) || !(size = a.integer(2)))
    return a.error();
  um(ctx).zap_page_range_single(*v.vma, *addr, *size, nullptr);
  return OpResult::ok();
}

OpResult op_vm_insert_page(const OpDef &def, ExecContext &ctx, const std::vector<Value> &argv) {
  UArgs a(def, argv);
  if (!a.count(3))
    return a.error();
  VmaArg v = vma_arg(a, def, ctx, 0);
  if (v.early)
    return *v.early;
  std::optional<u64> addr;
  std::optional<Pfn> page;
  if (!(addr = a.integer(1)) || !(page = a.page(2)))
    return a.error();
  return OpResult::ok(int_result(um(ctx).vm_insert_page(*v.vma, *addr, *page)));
}

OpResult op_vmf_insert_pfn(const OpDef &def, ExecContext &ctx, const std::vector<Value> &argv) {
  UArgs a(def, argv);
  if (!a.count(3))
    return a.error();
  VmaArg v = vma_arg(a, def, ctx, 0);
  if (v.early)
    return *v.early;
  std::optional<u64> addr, pfn;
  if (!(addr = a.integer(1)) || !(pfn = a.pfn(2)))
    return a.error();
  return OpResult::ok(Value::integer(um(ctx).vmf_insert_pfn(*v.vma, *addr, *pfn)));
}

OpResult op_vmf_insert_pfn_prot(const OpDef &def, ExecContext &ctx,
                                const std::vector<Value> &argv) {
  UArgs a(def, argv);
  if (!a.count(4))
    return a.error();
  VmaArg v = vma_arg(a, def, ctx, 0);
  if (v.early)
    return *v.early;
  std::optional<u64> addr, pfn, prot;
  if (!(addr = a.integer(1)) || !(pfn = a.pfn(2)) || !(prot = a.integer(3)))
    return a.error();
  return OpResult::ok(Value::integer(um(ctx).vmf_insert_pfn_prot(*v.vma, *addr, *pfn, *prot)));
}

OpResult op_remap_pfn_range(const OpDef &def, ExecContext &ctx, const std::vector<Value> &argv) {
  UArgs a(def, argv);
  if (!a.count(5))
    return a.error();
  VmaArg v = vma_arg(a, def, ctx, 0);
  if (v.early)
    return *v.early;
  std::optional<u64> addr, pfn, size, prot;
  if (!(addr = a.integer(1)) || !(pfn = a.pfn(2)) || !(size = a.integer(3)) ||
      !(prot = a.integer(4)))
    return a.error();
  return OpResult::ok(int_result(um(ctx).remap_pfn_range(*v.vma, *addr, *pfn, *size, *prot)));
}

OpResult op_vm_iomap_memory(const OpDef &def, ExecContext &ctx, const std::vector<Value> &argv) {
  UArgs a(def, argv);
  if (!a.count(3))
    return a.error();
  VmaArg v = vma_arg(a, def, ctx, 0);
  if (v.early)
    return *v.early;
  std::optional<u64> start, len;
  if (!(start = a.integer(1)) || !(len = a.integer(2)))
    return a.error();
  return OpResult::ok(int_result(um(ctx).vm_iomap_memory(*v.vma, *start, *len)));
}

OpResult op_finish_mkwrite_fault(const OpDef &def, ExecContext &ctx,
                                 const std::vector<Value> &argv) {
  UArgs a(def, argv);
  if (!a.count(2))
    return a.error();
  VmaArg v = vma_arg(a, def, ctx, 0);
  if (v.early)
    return *v.early;
  std::optional<u64> addr;
  if (!(addr = a.integer(1)))
    return a.error();
  VmFault vmf;
  vmf.vma = v.vma->id;
  vmf.address = *addr & PAGE_MASK;
  vmf.flags = FAULT_FLAG_WRITE;
  vmf.orig_pte = ctx.machine().pt().walk(um(ctx).find_mm(v.vma->mm)->pgd, vmf.address).value;
  return OpResult::ok(Value::integer(um(ctx).finish_mkwrite_fault(vmf)));
}

OpResult unmap_mapping_op(const OpDef &def, ExecContext &ctx, const std::vector<Value> &argv,
                          bool bytes) {
  UArgs a(def, argv);
  std::optional<u64> f, x, y, even_cows;
  if (!a.count(4) || !(f = a.handle(0, "address_space")) || !(x = a.integer(1)) ||
      !(y = a.integer(2)) || !(even_cows = a.integer_in(3, 0, 1)))
    return a.error();
  if (um(ctx).find_mapping(*f) == nullptr)
    return stale(ctx, def.name, "address_space", *f);
  if (bytes)
    um(ctx).unmap_mapping_range(*f, static_cast<std::int64_t>(*x), static_cast<std::int64_t>(*y),
                                static_cast<int>(*even_cows));
  else
    um(ctx).unmap_mapping_pages(*f, *x, *y, *even_cows != 0);
  return OpResult::ok();
}

OpResult op_unmap_mapping_pages(const OpDef &def, ExecContext &ctx,
                                const std::vector<Value> &argv) {
  return unmap_mapping_op(def, ctx, argv, false);
}

OpResult op_unmap_mapping_range(const OpDef &def, ExecContext &ctx,
                                const std::vector<Value> &argv) {
  return unmap_mapping_op(def, ctx, argv, true);
}

// alloc_set_pte(v, addr, p, dir) / finish_fault(v, addr, p, dir)
OpResult fault_tail_op(const OpDef &def, ExecContext &ctx, const std::vector<Value> &argv,
                       bool finish) {
  UArgs a(def, argv);
  if (!a.count(4))
    return a.error();
  VmaArg v = vma_arg(a, def, ctx, 0);
  if (v.early)
    return *v.early;
  std::optional<u64> addr;
  std::optional<Pfn> page;
  std::optional<std::string> dir;
  if (!(addr = a.integer(1)) || !(page = a.page(2)) || !(dir = a.word(3, {"read", "write"})))
    return a.error();
  VmFault vmf;
  vmf.vma = v.vma->id;
  vmf.address = *addr & PAGE_MASK;
  vmf.flags = *dir == "write" ? FAULT_FLAG_WRITE : 0;
  if (!finish)
    return OpResult::ok(Value::integer(um(ctx).alloc_set_pte(vmf, *page)));
  if ((vmf.flags & FAULT_FLAG_WRITE) && !(v.vma->vm_flags & VM_SHARED))
    vmf.cow_page = page;
  else
    vmf.page = page;
  return OpResult::ok(Value::integer(um(ctx).finish_fault(vmf)));
}

OpResult op_alloc_set_pte(const OpDef &def, ExecContext &ctx, const std::vector<Value> &argv) {
  return fault_tail_op(def, ctx, argv, false);
}

OpResult op_finish_fault(const OpDef &def, ExecContext &ctx, const std::vector<Value> &argv) {
  return fault_tail_op(def, ctx, argv, true);
}

OpResult op_follow_pfn(const OpDef &def, ExecContext &ctx, const std::vector<Value> &argv) {
  UArgs a(def, argv);
  if (!a.count(2))
    return a.error();
  VmaArg v = vma_arg(a, def, ctx, 0);
  if (v.early)
    return *v.early;
  std::optional<u64> addr;
  if (!(addr = a.integer(1)))
    return a.error();
  u64 pfn = 0;
  const int ret = um(ctx).follow_pfn(*v.vma, *addr, &pfn);
  return OpResult::ok(ret < 0 ? Value::error(ret) : Value::integer(pfn));
}

// access_remote_vm(mm, addr, len, flags) -> bytes read;
// access_remote_vm(mm, addr, "data", flags) -> count written.
OpResult op_access_remote_vm(const OpDef &def, ExecContext &ctx, const std::vector<Value> &argv) {
  UArgs a(def, argv);
  std::optional<u64> mm, addr, flags;
  if (!a.count(4) || !(mm = a.handle(0, "mm_struct")) || !(addr = a.integer(1)) ||
      !(flags = a.integer_in(3, 0, UINT_MAX)))
    return a.error();
  std::string buf;
  const bool source = a.is_bytes(2);
  if (source) {
    buf = a.bytes(2);
  } else {
    const auto len = a.integer_in(2, 0, kMaxBytesValue);
    if (!len)
      return a.error();
    buf.assign(*len, '\0');
  }
  if (um(ctx).find_mm(*mm) == nullptr)
    return stale(ctx, def.name, "mm", *mm);
  const int done = um(ctx).access_remote_vm(
      *mm, *addr, {reinterpret_cast<std::uint8_t *>(buf.data()), buf.size()},
      static_cast<unsigned>(*flags));
  if (source)
    return OpResult::ok(Value::integer(static_cast<u64>(done)));
  buf.resize(static_cast<std::size_t>(done));
  return OpResult::ok(Value::bytes(std::move(buf)));
}

// ---- seed 000: remap_vmalloc_range ---------------------------------------------------------

OpResult op_remap_vmalloc_range(const OpDef &def, ExecContext &ctx,
                                const std::vector<Value> &argv) {
  UArgs a(def, argv);
  if (!a.count(3))
    return a.error();
  VmaArg v = vma_arg(a, def, ctx, 0);
  if (v.early)
    return *v.early;
  std::optional<u64> addr, pgoff;
  if (!(addr = a.integer(1)) || !(pgoff = a.integer(2)))
    return a.error();
  return OpResult::ok(int_result(um(ctx).remap_vmalloc_range(*v.vma, *addr, *pgoff)));
}

OpResult op_remap_vmalloc_range_partial(const OpDef &def, ExecContext &ctx,
                                        const std::vector<Value> &argv) {
  UArgs a(def, argv);
  if (!a.count(4))
    return a.error();
  VmaArg v = vma_arg(a, def, ctx, 0);
  if (v.early)
    return *v.early;
  std::optional<u64> uaddr, kaddr, size;
  if (!(uaddr = a.integer(1)) || !(kaddr = a.integer(2)) || !(size = a.integer(3)))
    return a.error();
  return OpResult::ok(
      int_result(um(ctx).remap_vmalloc_range_partial(*v.vma, *uaddr, *kaddr, *size)));
}

// touch, expect_fault and probe: three arguments are the mm form; anything
// else goes to the op registered before (the machine's kernel-mode form).
void add_access(OpTable &table, const std::string &name, AccessCheck check) {
  const OpDef *prev = table.find(name);
  OpHandler kernel_form = prev ? prev->handler : OpHandler{};
  const std::string kernel_usage = prev ? prev->usage + " or " : "";
  OpDef def{name, kernel_usage + name + "(mm, addr, read|write|exec)", {}};
  def.handler = [kernel_form, check, self = def](ExecContext &ctx, const std::vector<Value> &argv) {
    if (argv.size() != 3 && kernel_form)
      return kernel_form(ctx, argv);
    return user_access(self, ctx, argv, check);
  };
  table.add(std::move(def));
}

} // namespace

void register_usermm_ops(OpTable &t) {
  t.add("mm_create", "mm = mm_create()", op_mm_create);
  t.add("mmput", "mmput(mm)", op_mmput);
  t.add("file_create", "f = file_create(npages)", op_file_create);
  t.add("mmap", "v = mmap(mm, addr, len, flags)", op_mmap);
  t.add("mmap_file", "v = mmap_file(mm, addr, len, flags, f, pgoff)", op_mmap_file);
  t.add("munmap", "munmap(mm, addr, len)", op_munmap);
  t.add("mprotect", "mprotect(mm, addr, len, flags)", op_mprotect);
  add_access(t, "touch", AccessCheck::MustSucceed);
  add_access(t, "expect_fault", AccessCheck::MustFault);
  add_access(t, "probe", AccessCheck::Probe);
  t.add("unmap_vmas", "unmap_vmas(v, start, end)", op_unmap_vmas);
  t.add("zap_page_range", "zap_page_range(v, start, size)", zap_op<&UserMm::zap_page_range>);
  t.add("zap_page_range_single", "zap_page_range_single(v, addr, size)", op_zap_page_range_single);
  t.add("zap_vma_ptes", "zap_vma_ptes(v, addr, size)", zap_op<&UserMm::zap_vma_ptes>);
  t.add("vm_insert_page", "vm_insert_page(v, addr, p)", op_vm_insert_page);
  t.add("vmf_insert_pfn", "vmf_insert_pfn(v, addr, pfn)", op_vmf_insert_pfn);
  t.add("vmf_insert_pfn_prot", "vmf_insert_pfn_prot(v, addr, pfn, prot)", op_vmf_insert_pfn_prot);
  t.add("remap_pfn_range", "remap_pfn_range(v, addr, pfn, size, prot)", op_remap_pfn_range);
  t.add("vm_iomap_memory", "vm_iomap_memory(v, start, len)", op_vm_iomap_memory);
  t.add("finish_mkwrite_fault", "finish_mkwrite_fault(v, addr)", op_finish_mkwrite_fault);
  t.add("unmap_mapping_pages", "unmap_mapping_pages(f, start, nr, even_cows)",
        op_unmap_mapping_pages);
  t.add("unmap_mapping_range", "unmap_mapping_range(f, holebegin, holelen, even_cows)",
        op_unmap_mapping_range);
  t.add("alloc_set_pte", "alloc_set_pte(v, addr, p, read|write)", op_alloc_set_pte);
  t.add("finish_fault", "finish_fault(v, addr, p, read|write)", op_finish_fault);
  t.add("follow_pfn", "follow_pfn(v, addr)", op_follow_pfn);
  t.add("access_remote_vm", "access_remote_vm(mm, addr, len|\"data\", gup_flags)",
        op_access_remote_vm);
  t.add("remap_vmalloc_range", "remap_vmalloc_range(v, addr, pgoff)", op_remap_vmalloc_range);
  t.add("remap_vmalloc_range_partial", "remap_vmalloc_range_partial(v, uaddr, kaddr, size)",
        op_remap_vmalloc_range_partial);
  for (const char *w : kAccessWords)
    t.add_keyword(w);
  for (const char *w : kResultWords)
    t.add_keyword(w);
  t.add_keyword("stale_tlb");
}

} // namespace vmcheck
