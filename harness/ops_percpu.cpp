// The percpu vocabulary: the ten functions of mm/percpu-vm.c (seed 002) in
// the kernel's argument order, chunk creation and destruction, and the
// alloc_percpu / free_percpu / per_cpu_ptr workload on top.
//
// A chunk result is a Struct {id, base_addr}; `id` names the live chunk, so
// a handle kept after the chunk died is recognised (and treated as the
// kernel's use-after-free: a BUG). The `pages` argument of the functions
// that take one may be left out: there is only the one temp array, and
// `pages = pcpu_get_pages()` yields a Struct {nr} standing for it.
#include "harness/op_args.h"
#include "harness/ops.h"

namespace vmcheck {

namespace {

Percpu &pcpu(ExecContext &ctx) {
  return ctx.kernel.percpu();
}

Value addr_or_null(u64 addr) {
  return addr == 0 ? Value::null() : Value::integer(addr);
}

Value int_result(int r) {
  return r < 0 ? Value::error(r) : Value::integer(static_cast<u64>(r));
}

Value chunk_value(const PcpuChunk *c) {
  if (c == nullptr)
    return Value::null();
  return Value::structure(
      "pcpu_chunk", {{"id", Value::integer(c->id)}, {"base_addr", Value::integer(c->base_addr)}});
}

std::string found(const std::vector<Value> &argv, std::size_t i) {
  return i < argv.size() ? value_to_string(argv[i]) : "nothing";
}

// The chunk handle of argument 0 for the ops that take only a chunk.
PcpuChunk *chunk_arg(const OpDef &def, ExecContext &ctx, const std::vector<Value> &argv,
                     std::string &err) {
  const Value *id =
      !argv.empty() && argv[0].kind == ValueKind::Struct && argv[0].text == "pcpu_chunk"
          ? argv[0].field("id")
          : nullptr;
  if (id == nullptr || id->kind != ValueKind::Int) {
    err = def.name + ": argument 1: expected a chunk, found " + found(argv, 0);
    return nullptr;
  }
  PcpuChunk *c = pcpu(ctx).chunk_by_id(id->num);
  if (c == nullptr)
    throw KernelBug(def.name, "chunk " + std::to_string(id->num) + " is no longer live");
  return c;
}

// The arguments of a percpu-vm function: chunk, optional pages, and the
// page range. Fills `err` (a malformed trace) or throws KernelBug for a
// dead chunk.
struct ChunkRange {
  PcpuChunk *chunk = nullptr;
  std::span<Pfn> pages;
  unsigned page_start = 0;
  unsigned page_end = 0;
};

std::optional<ChunkRange> chunk_range(const OpDef &def, ExecContext &ctx,
                                      const std::vector<Value> &argv, bool takes_pages,
                                      std::string &err) {
  const bool explicit_pages = takes_pages && argv.size() == 4;
  if (argv.size() != (explicit_pages ? 4u : 3u)) {
    err =
        def.name + ": expected " + (takes_pages ? "3 or 4" : "3") + " arguments as in " + def.usage;
    return std::nullopt;
  }
  ChunkRange r;
  if (!(r.chunk = chunk_arg(def, ctx, argv, err)))
    return std::nullopt;
  if (explicit_pages && (argv[1].kind != ValueKind::Struct || argv[1].text != "pcpu_pages")) {
    err = def.name + ": argument 2: expected the pcpu_get_pages() array, found " + found(argv, 1);
    return std::nullopt;
  }
  OpArgs a(def, argv);
  const std::size_t first = explicit_pages ? 2 : 1;
  std::optional<u64> start, end;
  if (!(start = a.integer_in(first, 0, UINT32_MAX)) ||
      !(end = a.integer_in(first + 1, 0, UINT32_MAX))) {
    err = a.error().arg_error->message;
    return std::nullopt;
  }
  r.page_start = static_cast<unsigned>(*start);
  r.page_end = static_cast<unsigned>(*end);
  if (takes_pages) {
    const std::span<const Pfn> temp = pcpu(ctx).temp_pages();
    if (temp.empty()) {
      err = def.name + ": there is no temp pages array yet: call pcpu_get_pages() first";
      return std::nullopt;
    }
    r.pages = pcpu(ctx).pcpu_get_pages(); // already allocated: no fault point is crossed
  }
  return r;
}

template <void (Percpu::*Fn)(PcpuChunk &, std::span<Pfn>, unsigned, unsigned)>
OpResult op_pages_void(const OpDef &def, ExecContext &ctx, const std::vector<Value> &argv) {
  std::string err;
  const std::optional<ChunkRange> r = chunk_range(def, ctx, argv, true, err);
  if (!r)
    return OpResult::bad_arg(err);
  (pcpu(ctx).*Fn)(*r->chunk, r->pages, r->page_start, r->page_end);
  return OpResult::ok();
}

template <int (Percpu::*Fn)(PcpuChunk &, std::span<Pfn>, unsigned, unsigned)>
OpResult op_pages_int(const OpDef &def, ExecContext &ctx, const std::vector<Value> &argv) {
  std::string err;
  const std::optional<ChunkRange> r = chunk_range(def, ctx, argv, true, err);
  if (!r)
    return OpResult::bad_arg(err);
  return OpResult::ok(int_result((pcpu(ctx).*Fn)(*r->chunk, r->pages, r->page_start, r->page_end)));
}

template <void (Percpu::*Fn)(PcpuChunk &, unsigned, unsigned)>
OpResult op_range_void(const OpDef &def, ExecContext &ctx, const std::vector<Value> &argv) {
  std::string err;
  const std::optional<ChunkRange> r = chunk_range(def, ctx, argv, false, err);
  if (!r)
    return OpResult::bad_arg(err);
  (pcpu(ctx).*Fn)(*r->chunk, r->page_start, r->page_end);
  return OpResult::ok();
}

OpResult op_pcpu_populate_chunk(const OpDef &def, ExecContext &ctx,
                                const std::vector<Value> &argv) {
  std::string err;
  const std::optional<ChunkRange> r = chunk_range(def, ctx, argv, false, err);
  if (!r)
    return OpResult::bad_arg(err);
  return OpResult::ok(
      int_result(pcpu(ctx).pcpu_populate_chunk(*r->chunk, r->page_start, r->page_end)));
}

OpResult op_pcpu_get_pages(const OpDef &def, ExecContext &ctx, const std::vector<Value> &argv) {
  OpArgs a(def, argv);
  if (!a.count(0))
    return a.error();
  const std::span<Pfn> pages = pcpu(ctx).pcpu_get_pages();
  if (pages.empty())
    return OpResult::ok(Value::null());
  return OpResult::ok(Value::structure("pcpu_pages", {{"nr", Value::integer(pages.size())}}));
}

OpResult op_pcpu_create_chunk(const OpDef &def, ExecContext &ctx, const std::vector<Value> &argv) {
  OpArgs a(def, argv);
  if (!a.count(0))
    return a.error();
  return OpResult::ok(chunk_value(pcpu(ctx).pcpu_create_chunk()));
}

OpResult op_pcpu_destroy_chunk(const OpDef &def, ExecContext &ctx, const std::vector<Value> &argv) {
  if (argv.size() != 1)
    return OpResult::bad_arg(def.name + ": expected 1 argument as in " + def.usage);
  std::string err;
  PcpuChunk *c = chunk_arg(def, ctx, argv, err);
  if (c == nullptr)
    return OpResult::bad_arg(err);
  pcpu(ctx).pcpu_destroy_chunk(c);
  return OpResult::ok();
}

OpResult op_pcpu_chunk_addr(const OpDef &def, ExecContext &ctx, const std::vector<Value> &argv) {
  if (argv.size() != 3)
    return OpResult::bad_arg(def.name + ": expected 3 arguments as in " + def.usage);
  std::string err;
  PcpuChunk *c = chunk_arg(def, ctx, argv, err);
  if (c == nullptr)
    return OpResult::bad_arg(err);
  OpArgs a(def, argv);
  const Percpu &p = pcpu(ctx);
  std::optional<u64> cpu, page;
  if (!(cpu = a.integer_in(1, 0, ctx.machine().num_online_cpus() - 1)) ||
      !(page = a.integer_in(2, 0, p.layout().unit_pages)))
    return a.error();
  return OpResult::ok(Value::integer(
      p.pcpu_chunk_addr(*c, static_cast<unsigned>(*cpu), static_cast<unsigned>(*page))));
}

OpResult op_alloc_percpu(const OpDef &def, ExecContext &ctx, const std::vector<Value> &argv) {
  OpArgs a(def, argv);
  std::optional<u64> size, align;
  if (!a.count(2) || !(size = a.integer(0)) || !(align = a.integer(1)))
    return a.error();
  return OpResult::ok(addr_or_null(pcpu(ctx).__alloc_percpu(*size, *align)));
}

OpResult op_free_percpu(const OpDef &def, ExecContext &ctx, const std::vector<Value> &argv) {
  OpArgs a(def, argv);
  std::optional<u64> ptr;
  if (!a.count(1) || !(ptr = a.integer(0)))
    return a.error();
  pcpu(ctx).free_percpu(*ptr);
  return OpResult::ok();
}

OpResult op_per_cpu_ptr(const OpDef &def, ExecContext &ctx, const std::vector<Value> &argv) {
  OpArgs a(def, argv);
  std::optional<u64> ptr, cpu;
  if (!a.count(2) || !(ptr = a.integer(0)) || !(cpu = a.integer_in(1, 0, UINT32_MAX)))
    return a.error();
  return OpResult::ok(addr_or_null(pcpu(ctx).per_cpu_ptr(*ptr, static_cast<unsigned>(*cpu))));
}

} // namespace

void register_percpu_ops(OpTable &t) {
  t.add("pcpu_create_chunk", "chunk = pcpu_create_chunk()", op_pcpu_create_chunk);
  t.add("pcpu_destroy_chunk", "pcpu_destroy_chunk(chunk)", op_pcpu_destroy_chunk);
  t.add("pcpu_get_pages", "pages = pcpu_get_pages()", op_pcpu_get_pages);
  t.add("pcpu_free_pages", "pcpu_free_pages(chunk, pages, page_start, page_end)",
        op_pages_void<&Percpu::pcpu_free_pages>);
  t.add("pcpu_alloc_pages", "pcpu_alloc_pages(chunk, pages, page_start, page_end)",
        op_pages_int<&Percpu::pcpu_alloc_pages>);
  t.add("pcpu_pre_unmap_flush", "pcpu_pre_unmap_flush(chunk, page_start, page_end)",
        op_range_void<&Percpu::pcpu_pre_unmap_flush>);
  t.add("pcpu_unmap_pages", "pcpu_unmap_pages(chunk, pages, page_start, page_end)",
        op_pages_void<&Percpu::pcpu_unmap_pages>);
  t.add("pcpu_post_unmap_tlb_flush", "pcpu_post_unmap_tlb_flush(chunk, page_start, page_end)",
        op_range_void<&Percpu::pcpu_post_unmap_tlb_flush>);
  t.add("pcpu_map_pages", "pcpu_map_pages(chunk, pages, page_start, page_end)",
        op_pages_int<&Percpu::pcpu_map_pages>);
  t.add("pcpu_post_map_flush", "pcpu_post_map_flush(chunk, page_start, page_end)",
        op_range_void<&Percpu::pcpu_post_map_flush>);
  t.add("pcpu_populate_chunk", "pcpu_populate_chunk(chunk, page_start, page_end)",
        op_pcpu_populate_chunk);
  t.add("pcpu_depopulate_chunk", "pcpu_depopulate_chunk(chunk, page_start, page_end)",
        op_range_void<&Percpu::pcpu_depopulate_chunk>);
  t.add("pcpu_chunk_addr", "pcpu_chunk_addr(chunk, cpu, page)", op_pcpu_chunk_addr);
  t.add("alloc_percpu", "p = alloc_percpu(size, align)", op_alloc_percpu);
  t.add("__alloc_percpu", "p = __alloc_percpu(size, align)", op_alloc_percpu);
  t.add("free_percpu", "free_percpu(p)", op_free_percpu);
  t.add("per_cpu_ptr", "per_cpu_ptr(p, cpu)", op_per_cpu_ptr);
}

} // namespace vmcheck
