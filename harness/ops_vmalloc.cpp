// The vmalloc vocabulary (seeds 000/001/003): every public function of
// engine/vmalloc, in the kernel's argument order, plus purge() and
// vmallocinfo(). A vm_struct result is a Struct {addr, size, flags,
// nr_pages, id}; `id` names the live object, so a handle kept after the
// area died is recognised as such.
#include "harness/op_args.h"
#include "harness/ops.h"

#include <cstdio>

namespace vmcheck {

namespace {

// Larger vread/vwrite buffers are refused as a malformed trace: the harness
// would have to hold them in host memory.
constexpr u64 kMaxBuffer = u64{64} << 20;

Vmalloc &vm(ExecContext &ctx) {
  return ctx.kernel.vmalloc();
}

Value addr_or_null(u64 addr) {
  return addr == 0 ? Value::null() : Value::integer(addr);
}

Value vm_struct_value(const VmStruct *v) {
  if (v == nullptr)
    return Value::null();
  return Value::structure("vm_struct", {{"addr", Value::integer(v->addr)},
                                        {"size", Value::integer(v->size)},
                                        {"flags", Value::integer(v->flags)},
                                        {"nr_pages", Value::integer(v->nr_pages)},
                                        {"id", Value::integer(v->id)}});
}

// Argument accessors beyond OpArgs: lists, bytes and vm_struct handles.
// Each returns nullopt and fills `err` naming the argument.
struct MoreArgs {
  const OpDef &def;
  const std::vector<Value> &argv;
  std::string err;

  bool fail(std::size_t i, const std::string &expected) {
    const std::string found = i < argv.size() ? value_to_string(argv[i]) : "nothing";
    err = def.name + ": argument " + std::to_string(i + 1) + ": expected " + expected + ", found " +
          found;
    return false;
  }
  std::optional<std::vector<Pfn>> pages(std::size_t i) {
    if (i < argv.size() && argv[i].kind == ValueKind::Array) {
      std::vector<Pfn> out;
      for (const Value &item : argv[i].items) {
        if (item.kind != ValueKind::Page) {
          fail(i, "a list of pages");
          return std::nullopt;
        }
        out.push_back(item.num);
      }
      return out;
    }
    fail(i, "a list of pages [p1, p2]");
    return std::nullopt;
  }
  std::optional<std::vector<u64>> integers(std::size_t i) {
    if (i < argv.size() && argv[i].kind == ValueKind::Array) {
      std::vector<u64> out;
      for (const Value &item : argv[i].items) {
        if (item.kind != ValueKind::Int) {
          fail(i, "a list of integers");
          return std::nullopt;
        }
        out.push_back(item.num);
      }
      return out;
    }
    fail(i, "a list of integers [a, b]");
    return std::nullopt;
  }
  std::optional<std::string> bytes(std::size_t i) {
    if (i < argv.size() && argv[i].kind == ValueKind::Bytes)
      return argv[i].text;
    fail(i, "a string or bytes");
    return std::nullopt;
  }
  // A vm_struct handle: the id of a live area. A dead one is the kernel's
  // use-after-free, so the caller decides (most treat it as a BUG).
  std::optional<u64> vm_id(std::size_t i) {
    if (i < argv.size() && argv[i].kind == ValueKind::Struct)
      if (const Value *id = argv[i].field("id"); id != nullptr && id->kind == ValueKind::Int)
        return id->num;
    fail(i, "a vm_struct");
    return std::nullopt;
  }
  OpResult error() const { return OpResult::bad_arg(err); }
};

int node_arg(u64 v) {
  return static_cast<int>(static_cast<std::int64_t>(v));
}

// ---- allocation ---------------------------------------------------------------------

template <u64 (Vmalloc::*Fn)(u64)>
OpResult op_size(const OpDef &def, ExecContext &ctx, const std::vector<Value> &argv) {
  OpArgs a(def, argv);
  std::optional<u64> size;
  if (!a.count(1) || !(size = a.integer(0)))
    return a.error();
  return OpResult::ok(addr_or_null((vm(ctx).*Fn)(*size)));
}

template <u64 (Vmalloc::*Fn)(u64, int)>
OpResult op_size_node(const OpDef &def, ExecContext &ctx, const std::vector<Value> &argv) {
  OpArgs a(def, argv);
  std::optional<u64> size, node;
  if (!a.count(2) || !(size = a.integer(0)) || !(node = a.integer(1)))
    return a.error();
  return OpResult::ok(addr_or_null((vm(ctx).*Fn)(*size, node_arg(*node))));
}

OpResult op___vmalloc(const OpDef &def, ExecContext &ctx, const std::vector<Value> &argv) {
  OpArgs a(def, argv);
  std::optional<u64> size, gfp, prot;
  if (!a.count(3) || !(size = a.integer(0)) || !(gfp = a.integer_in(1, 0, UINT32_MAX)) ||
      !(prot = a.integer(2)))
    return a.error();
  return OpResult::ok(addr_or_null(vm(ctx).__vmalloc(*size, static_cast<Gfp>(*gfp), *prot)));
}

OpResult op___vmalloc_node(const OpDef &def, ExecContext &ctx, const std::vector<Value> &argv) {
  OpArgs a(def, argv);
  std::optional<u64> size, align, gfp, prot, node;
  if (!a.count(5) || !(size = a.integer(0)) || !(align = a.integer(1)) ||
      !(gfp = a.integer_in(2, 0, UINT32_MAX)) || !(prot = a.integer(3)) || !(node = a.integer(4)))
    return a.error();
  return OpResult::ok(addr_or_null(vm(ctx).__vmalloc_node(
      *size, *align, static_cast<Gfp>(*gfp), *prot, node_arg(*node), "__vmalloc_node")));
}

OpResult op___vmalloc_node_range(const OpDef &def, ExecContext &ctx,
                                 const std::vector<Value> &argv) {
  OpArgs a(def, argv);
  std::optional<u64> size, align, start, end, gfp, prot, flags, node;
  if (!a.count(8) || !(size = a.integer(0)) || !(align = a.integer(1)) || !(start = a.integer(2)) ||
      !(end = a.integer(3)) || !(gfp = a.integer_in(4, 0, UINT32_MAX)) || !(prot = a.integer(5)) ||
      !(flags = a.integer(6)) || !(node = a.integer(7)))
    return a.error();
  return OpResult::ok(addr_or_null(
      vm(ctx).__vmalloc_node_range(*size, *align, *start, *end, static_cast<Gfp>(*gfp), *prot,
                                   *flags, node_arg(*node), "__vmalloc_node_range")));
}

// ---- freeing -------------------------------------------------------------------------

template <void (Vmalloc::*Fn)(u64)>
OpResult op_addr_void(const OpDef &def, ExecContext &ctx, const std::vector<Value> &argv) {
  OpArgs a(def, argv);
  std::optional<u64> addr;
  if (!a.count(1) || !(addr = a.integer(0)))
    return a.error();
  (vm(ctx).*Fn)(*addr);
  return OpResult::ok();
}

// ---- vm_struct reservations ------------------------------------------------------------

OpResult op_get_vm_area(const OpDef &def, ExecContext &ctx, const std::vector<Value> &argv) {
  OpArgs a(def, argv);
  std::optional<u64> size, flags;
  if (!a.count(2) || !(size = a.integer(0)) || !(flags = a.integer(1)))
    return a.error();
  return OpResult::ok(vm_struct_value(vm(ctx).get_vm_area(*size, *flags)));
}

OpResult op_get_vm_area_caller(const OpDef &def, ExecContext &ctx, const std::vector<Value> &argv) {
  OpArgs a(def, argv);
  std::optional<u64> size, flags;
  if (!a.count(2) || !(size = a.integer(0)) || !(flags = a.integer(1)))
    return a.error();
  return OpResult::ok(
      vm_struct_value(vm(ctx).get_vm_area_caller(*size, *flags, "get_vm_area_caller")));
}

OpResult op___get_vm_area(const OpDef &def, ExecContext &ctx, const std::vector<Value> &argv) {
  OpArgs a(def, argv);
  std::optional<u64> size, flags, start, end;
  if (!a.count(4) || !(size = a.integer(0)) || !(flags = a.integer(1)) || !(start = a.integer(2)) ||
      !(end = a.integer(3)))
    return a.error();
  return OpResult::ok(vm_struct_value(vm(ctx).__get_vm_area(*size, *flags, *start, *end)));
}

OpResult op_find_vm_area(const OpDef &def, ExecContext &ctx, const std::vector<Value> &argv) {
  OpArgs a(def, argv);
  std::optional<u64> addr;
  if (!a.count(1) || !(addr = a.integer(0)))
    return a.error();
  return OpResult::ok(vm_struct_value(vm(ctx).find_vm_area(*addr)));
}

OpResult op_remove_vm_area(const OpDef &def, ExecContext &ctx, const std::vector<Value> &argv) {
  OpArgs a(def, argv);
  std::optional<u64> addr;
  if (!a.count(1) || !(addr = a.integer(0)))
    return a.error();
  std::unique_ptr<VmStruct> v = vm(ctx).remove_vm_area(*addr);
  return OpResult::ok(vm_struct_value(v.get()));
}

OpResult op_alloc_vm_area(const OpDef &def, ExecContext &ctx, const std::vector<Value> &argv) {
  OpArgs a(def, argv);
  std::optional<u64> size;
  if (!a.count(1) || !(size = a.integer(0)))
    return a.error();
  return OpResult::ok(vm_struct_value(vm(ctx).alloc_vm_area(*size)));
}

OpResult op_free_vm_area(const OpDef &def, ExecContext &ctx, const std::vector<Value> &argv) {
  MoreArgs m{def, argv, {}};
  std::optional<u64> id;
  if (argv.size() != 1)
    return OpResult::bad_arg(def.name + ": expected 1 argument as in " + def.usage);
  if (!(id = m.vm_id(0)))
    return m.error();
  VmStruct *area = vm(ctx).vm_by_id(*id);
  if (area == nullptr && ctx.lenient_handles)
    return OpResult::ok(Value::symbol("skipped"));
  if (area == nullptr)
    throw KernelBug("free_vm_area", "the area is no longer live (remove_vm_area != area)");
  vm(ctx).free_vm_area(area);
  return OpResult::ok();
}

// ---- mapping caller pages ---------------------------------------------------------------

OpResult op_vmap(const OpDef &def, ExecContext &ctx, const std::vector<Value> &argv) {
  OpArgs a(def, argv);
  MoreArgs m{def, argv, {}};
  std::optional<std::vector<Pfn>> pages;
  std::optional<u64> count, flags, prot;
  if (!a.count(4))
    return a.error();
  if (!(pages = m.pages(0)))
    return m.error();
  if (!(count = a.integer_in(1, 0, UINT32_MAX)) || !(flags = a.integer(2)) ||
      !(prot = a.integer(3)))
    return a.error();
  return OpResult::ok(
      addr_or_null(vm(ctx).vmap(*pages, static_cast<unsigned>(*count), *flags, *prot)));
}

OpResult op_map_kernel_range_noflush(const OpDef &def, ExecContext &ctx,
                                     const std::vector<Value> &argv) {
  OpArgs a(def, argv);
  MoreArgs m{def, argv, {}};
  std::optional<u64> addr, size, prot;
  std::optional<std::vector<Pfn>> pages;
  if (!a.count(4) || !(addr = a.integer(0)) || !(size = a.integer(1)) || !(prot = a.integer(2)))
    return a.error();
  if (!(pages = m.pages(3)))
    return m.error();
  const long r = vm(ctx).map_kernel_range_noflush(*addr, *size, *prot, *pages);
  return OpResult::ok(r < 0 ? Value::error(static_cast<int>(r))
                            : Value::integer(static_cast<u64>(r)));
}

template <void (Vmalloc::*Fn)(u64, u64)>
OpResult op_addr_size_void(const OpDef &def, ExecContext &ctx, const std::vector<Value> &argv) {
  OpArgs a(def, argv);
  std::optional<u64> addr, size;
  if (!a.count(2) || !(addr = a.integer(0)) || !(size = a.integer(1)))
    return a.error();
  (vm(ctx).*Fn)(*addr, *size);
  return OpResult::ok();
}

// ---- vm_map_ram and blocks ------------------------------------------------------------------

OpResult op_vm_map_ram(const OpDef &def, ExecContext &ctx, const std::vector<Value> &argv) {
  OpArgs a(def, argv);
  MoreArgs m{def, argv, {}};
  std::optional<std::vector<Pfn>> pages;
  std::optional<u64> count, node, prot;
  if (!a.count(4))
    return a.error();
  if (!(pages = m.pages(0)))
    return m.error();
  if (!(count = a.integer_in(1, 0, UINT32_MAX)) || !(node = a.integer(2)) || !(prot = a.integer(3)))
    return a.error();
  return OpResult::ok(addr_or_null(
      vm(ctx).vm_map_ram(*pages, static_cast<unsigned>(*count), node_arg(*node), *prot)));
}

OpResult op_vm_unmap_ram(const OpDef &def, ExecContext &ctx, const std::vector<Value> &argv) {
  OpArgs a(def, argv);
  std::optional<u64> mem, count;
  if (!a.count(2) || !(mem = a.integer(0)) || !(count = a.integer_in(1, 0, UINT32_MAX)))
    return a.error();
  vm(ctx).vm_unmap_ram(*mem, static_cast<unsigned>(*count));
  return OpResult::ok();
}

OpResult op_new_vmap_block(const OpDef &def, ExecContext &ctx, const std::vector<Value> &argv) {
  OpArgs a(def, argv);
  std::optional<u64> order, gfp;
  if (!a.count(2) || !(order = a.integer_in(0, 0, 63)) || !(gfp = a.integer_in(1, 0, UINT32_MAX)))
    return a.error();
  const u64 r = vm(ctx).new_vmap_block(static_cast<unsigned>(*order), static_cast<Gfp>(*gfp));
  return OpResult::ok(IS_ERR_VALUE(r) ? Value::error(PTR_ERR(r)) : Value::integer(r));
}

template <void (Vmalloc::*Fn)()>
OpResult op_void(const OpDef &def, ExecContext &ctx, const std::vector<Value> &argv) {
  OpArgs a(def, argv);
  if (!a.count(0))
    return a.error();
  (vm(ctx).*Fn)();
  return OpResult::ok();
}

// tlb_deliver(cpu): with shootdown=async, the TLB flush of the purge in
// flight reaches `cpu`; 1, or 0 when nothing was pending there.
OpResult op_tlb_deliver(const OpDef &def, ExecContext &ctx, const std::vector<Value> &argv) {
  OpArgs a(def, argv);
  std::optional<u64> cpu;
  if (!a.count(1) || !(cpu = a.integer_in(0, 0, 1023)))
    return a.error();
  return OpResult::ok(
      Value::integer(vm(ctx).deliver_shootdown(static_cast<unsigned>(*cpu)) ? 1 : 0));
}

// ---- percpu areas ----------------------------------------------------------------------------

Value vmap_area_value(const std::optional<VmapArea> &va) {
  if (!va)
    return Value::null();
  return Value::structure("vmap_area", {{"va_start", Value::integer(va->va_start)},
                                        {"va_end", Value::integer(va->va_end)}});
}

OpResult op_pvm_find_next_prev(const OpDef &def, ExecContext &ctx, const std::vector<Value> &argv) {
  OpArgs a(def, argv);
  std::optional<u64> end;
  if (!a.count(1) || !(end = a.integer(0)))
    return a.error();
  const Vmalloc::PvmResult r = vm(ctx).pvm_find_next_prev(*end);
  return OpResult::ok(Value::structure("pvm", {{"found", Value::integer(r.found)},
                                               {"next", vmap_area_value(r.next)},
                                               {"prev", vmap_area_value(r.prev)}}));
}

// pvm_determine_end(end, align): next/prev come from pvm_find_next_prev(end),
// as pcpu_get_vm_areas obtains them; the result is the determined end.
OpResult op_pvm_determine_end(const OpDef &def, ExecContext &ctx, const std::vector<Value> &argv) {
  OpArgs a(def, argv);
  std::optional<u64> end, align;
  if (!a.count(2) || !(end = a.integer(0)) || !(align = a.integer(1)))
    return a.error();
  if (!is_power_of_2(*align))
    return OpResult::bad_arg(def.name + ": argument 2: expected a power of two");
  Vmalloc::PvmResult r = vm(ctx).pvm_find_next_prev(*end);
  return OpResult::ok(Value::integer(vm(ctx).pvm_determine_end(r.next, r.prev, *align)));
}

OpResult op_pcpu_get_vm_areas(const OpDef &def, ExecContext &ctx, const std::vector<Value> &argv) {
  OpArgs a(def, argv);
  MoreArgs m{def, argv, {}};
  std::optional<std::vector<u64>> offsets, sizes;
  std::optional<u64> nr, align;
  if (!a.count(4))
    return a.error();
  if (!(offsets = m.integers(0)) || !(sizes = m.integers(1)))
    return m.error();
  if (!(nr = a.integer_in(2, 1, 1024)) || !(align = a.integer(3)))
    return a.error();
  if (offsets->size() < *nr || sizes->size() < *nr)
    return OpResult::bad_arg(def.name + ": offsets and sizes must hold nr_vms entries");
  offsets->resize(*nr);
  sizes->resize(*nr);
  std::vector<VmStruct *> vms = vm(ctx).pcpu_get_vm_areas(*offsets, *sizes, *align);
  if (vms.empty())
    return OpResult::ok(Value::null());
  std::vector<Value> items;
  for (VmStruct *v : vms)
    items.push_back(vm_struct_value(v));
  return OpResult::ok(Value::array(std::move(items)));
}

OpResult op_pcpu_free_vm_areas(const OpDef &def, ExecContext &ctx, const std::vector<Value> &argv) {
  OpArgs a(def, argv);
  std::optional<u64> nr;
  if (!a.count(2) || argv[0].kind != ValueKind::Array || !(nr = a.integer(1)))
    return argv.size() == 2 && argv[0].kind != ValueKind::Array
               ? OpResult::bad_arg(def.name + ": argument 1: expected the array of vm_structs")
               : a.error();
  if (*nr > argv[0].items.size())
    return OpResult::bad_arg(def.name + ": nr_vms is larger than the array");
  std::vector<VmStruct *> vms;
  for (std::size_t i = 0; i < *nr; ++i) {
    const Value *id = argv[0].items[i].field("id");
    VmStruct *v = id ? vm(ctx).vm_by_id(id->num) : nullptr;
    if (v == nullptr && ctx.lenient_handles)
      return OpResult::ok(Value::symbol("skipped"));
    if (v == nullptr)
      throw KernelBug("pcpu_free_vm_areas", "area " + std::to_string(i) + " is not live");
    vms.push_back(v);
  }
  vm(ctx).pcpu_free_vm_areas(vms);
  return OpResult::ok();
}

// ---- access and lookup -------------------------------------------------------------------------

OpResult op_vread(const OpDef &def, ExecContext &ctx, const std::vector<Value> &argv) {
  OpArgs a(def, argv);
  std::optional<u64> addr, count;
  if (!a.count(2) || !(addr = a.integer(0)) || !(count = a.integer_in(1, 0, kMaxBuffer)))
    return a.error();
  // A kernel caller's buffer holds whatever was there: poison it, so that a
  // hole vread fails to zero-fill reads back as 0xcc, not as a lucky 0.
  std::string buf(*count, '\xcc');
  const long n = vm(ctx).vread(
      std::span<std::uint8_t>(reinterpret_cast<std::uint8_t *>(buf.data()), buf.size()), *addr);
  buf.resize(static_cast<std::size_t>(n));
  return OpResult::ok(Value::bytes(std::move(buf)));
}

OpResult op_vwrite(const OpDef &def, ExecContext &ctx, const std::vector<Value> &argv) {
  OpArgs a(def, argv);
  MoreArgs m{def, argv, {}};
  std::optional<u64> addr;
  std::optional<std::string> data;
  if (!a.count(2) || !(addr = a.integer(0)))
    return a.error();
  if (!(data = m.bytes(1)))
    return m.error();
  if (data->size() > kMaxBuffer)
    return OpResult::bad_arg(def.name + ": argument 2: longer than 64M");
  const long n =
      vm(ctx).vwrite(std::span<const std::uint8_t>(
                         reinterpret_cast<const std::uint8_t *>(data->data()), data->size()),
                     *addr);
  return OpResult::ok(Value::integer(static_cast<u64>(n)));
}

OpResult op_vmalloc_to_page(const OpDef &def, ExecContext &ctx, const std::vector<Value> &argv) {
  OpArgs a(def, argv);
  std::optional<u64> addr;
  if (!a.count(1) || !(addr = a.integer(0)))
    return a.error();
  auto p = vm(ctx).vmalloc_to_page(*addr);
  return OpResult::ok(p ? Value::page(*p) : Value::null());
}

OpResult op_vmalloc_to_pfn(const OpDef &def, ExecContext &ctx, const std::vector<Value> &argv) {
  OpArgs a(def, argv);
  std::optional<u64> addr;
  if (!a.count(1) || !(addr = a.integer(0)))
    return a.error();
  return OpResult::ok(Value::integer(vm(ctx).vmalloc_to_pfn(*addr).value_or(0)));
}

OpResult op_is_vmalloc_addr(const OpDef &def, ExecContext &ctx, const std::vector<Value> &argv) {
  OpArgs a(def, argv);
  std::optional<u64> addr;
  if (!a.count(1) || !(addr = a.integer(0)))
    return a.error();
  return OpResult::ok(Value::integer(vm(ctx).is_vmalloc_addr(*addr) ? 1 : 0));
}

OpResult op_vmallocinfo(const OpDef &def, ExecContext &ctx, const std::vector<Value> &argv) {
  OpArgs a(def, argv);
  if (!a.count(0))
    return a.error();
  return OpResult::ok(Value::bytes(vm(ctx).vmallocinfo()));
}

// ---- boot
// ------------------------------------------------------------------------------------------

OpResult op_vm_area_add_early(const OpDef &def, ExecContext &ctx, const std::vector<Value> &argv) {
  OpArgs a(def, argv);
  std::optional<u64> addr, size, flags;
  if (!a.count(3) || !(addr = a.integer(0)) || !(size = a.integer(1)) || !(flags = a.integer(2)))
    return a.error();
  vm(ctx).vm_area_add_early(*addr, *size, *flags);
  return OpResult::ok();
}

OpResult op_vm_area_register_early(const OpDef &def, ExecContext &ctx,
                                   const std::vector<Value> &argv) {
  OpArgs a(def, argv);
  std::optional<u64> size, flags, align;
  if (!a.count(3) || !(size = a.integer(0)) || !(flags = a.integer(1)) || !(align = a.integer(2)))
    return a.error();
  return OpResult::ok(Value::integer(vm(ctx).vm_area_register_early(*size, *flags, *align)));
}

} // namespace

void register_vmalloc_ops(OpTable &t) {
  t.add("vmalloc", "vmalloc(size)", op_size<&Vmalloc::vmalloc>);
  t.add("vzalloc", "vzalloc(size)", op_size<&Vmalloc::vzalloc>);
  t.add("vmalloc_user", "vmalloc_user(size)", op_size<&Vmalloc::vmalloc_user>);
  t.add("vmalloc_exec", "vmalloc_exec(size)", op_size<&Vmalloc::vmalloc_exec>);
  t.add("vmalloc_32", "vmalloc_32(size)", op_size<&Vmalloc::vmalloc_32>);
  t.add("vmalloc_32_user", "vmalloc_32_user(size)", op_size<&Vmalloc::vmalloc_32_user>);
  t.add("vmalloc_node", "vmalloc_node(size, node)", op_size_node<&Vmalloc::vmalloc_node>);
  t.add("vzalloc_node", "vzalloc_node(size, node)", op_size_node<&Vmalloc::vzalloc_node>);
  t.add("__vmalloc", "__vmalloc(size, gfp, prot)", op___vmalloc);
  t.add("__vmalloc_node", "__vmalloc_node(size, align, gfp, prot, node)", op___vmalloc_node);
  t.add("__vmalloc_node_range",
        "__vmalloc_node_range(size, align, start, end, gfp, prot, vm_flags, node)",
        op___vmalloc_node_range);
  t.add("vfree", "vfree(addr)", op_addr_void<&Vmalloc::vfree>);
  t.add("vfree_atomic", "vfree_atomic(addr)", op_addr_void<&Vmalloc::vfree_atomic>);
  t.add("vunmap", "vunmap(addr)", op_addr_void<&Vmalloc::vunmap>);
  t.add("get_vm_area", "area = get_vm_area(size, flags)", op_get_vm_area);
  t.add("get_vm_area_caller", "area = get_vm_area_caller(size, flags)", op_get_vm_area_caller);
  t.add("__get_vm_area", "area = __get_vm_area(size, flags, start, end)", op___get_vm_area);
  t.add("find_vm_area", "area = find_vm_area(addr)", op_find_vm_area);
  t.add("remove_vm_area", "area = remove_vm_area(addr)", op_remove_vm_area);
  t.add("alloc_vm_area", "area = alloc_vm_area(size)", op_alloc_vm_area);
  t.add("free_vm_area", "free_vm_area(area)", op_free_vm_area);
  t.add("vmap", "vmap([pages], count, flags, prot)", op_vmap);
  t.add("map_kernel_range_noflush", "map_kernel_range_noflush(addr, size, prot, [pages])",
        op_map_kernel_range_noflush);
  t.add("unmap_kernel_range_noflush", "unmap_kernel_range_noflush(addr, size)",
        op_addr_size_void<&Vmalloc::unmap_kernel_range_noflush>);
  t.add("unmap_kernel_range", "unmap_kernel_range(addr, size)",
        op_addr_size_void<&Vmalloc::unmap_kernel_range>);
  t.add("vm_map_ram", "vm_map_ram([pages], count, node, prot)", op_vm_map_ram);
  t.add("vm_unmap_ram", "vm_unmap_ram(mem, count)", op_vm_unmap_ram);
  t.add("new_vmap_block", "new_vmap_block(order, gfp)", op_new_vmap_block);
  t.add("vm_unmap_aliases", "vm_unmap_aliases()", op_void<&Vmalloc::vm_unmap_aliases>);
  t.add("purge", "purge()", op_void<&Vmalloc::purge_worker>);
  t.add("tlb_deliver", "tlb_deliver(cpu)", op_tlb_deliver);
  t.add("vmalloc_init", "vmalloc_init()", op_void<&Vmalloc::vmalloc_init>);
  t.add("pvm_find_next_prev", "pvm_find_next_prev(end)", op_pvm_find_next_prev);
  t.add("pvm_determine_end", "pvm_determine_end(end, align)", op_pvm_determine_end);
  t.add("pcpu_get_vm_areas", "vms = pcpu_get_vm_areas([offsets], [sizes], nr_vms, align)",
        op_pcpu_get_vm_areas);
  t.add("pcpu_free_vm_areas", "pcpu_free_vm_areas(vms, nr_vms)", op_pcpu_free_vm_areas);
  t.add("vread", "vread(addr, count)", op_vread);
  t.add("vwrite", "vwrite(addr, bytes)", op_vwrite);
  t.add("vmalloc_to_page", "p = vmalloc_to_page(addr)", op_vmalloc_to_page);
  t.add("vmalloc_to_pfn", "vmalloc_to_pfn(addr)", op_vmalloc_to_pfn);
  t.add("is_vmalloc_addr", "is_vmalloc_addr(addr)", op_is_vmalloc_addr);
  t.add("vmallocinfo", "vmallocinfo()", op_vmallocinfo);
  t.add("vm_area_add_early", "vm_area_add_early(addr, size, flags)", op_vm_area_add_early);
  t.add("vm_area_register_early", "vm_area_register_early(size, flags, align)",
        op_vm_area_register_early);
}

} // namespace vmcheck
