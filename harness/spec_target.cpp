#include "harness/spec_target.h"

#include <algorithm>
#include <array>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string_view>

namespace vmcheck {

// What adapters remember across ops: spec handles for pages the engine
// failed to allocate, and which spec vm_struct each engine vm_struct id is.
struct AdapterState {
  u64 next_fake_handle = u64{1} << 62;
  std::map<u64, spec::VmInfo> vm_of_engine_id;

  // Records engine/spec pairs of vm_structs created by one op.
  void pair(const Value &engine, const std::optional<spec::VmInfo> &sp) {
    if (const Value *id = engine.field("id"); id != nullptr && sp)
      vm_of_engine_id[id->num] = *sp;
  }
  std::optional<spec::VmInfo> spec_vm(const Value &engine) const {
    const Value *id = engine.field("id");
    if (id == nullptr)
      return std::nullopt;
    auto it = vm_of_engine_id.find(id->num);
    return it == vm_of_engine_id.end() ? std::nullopt : std::optional(it->second);
  }
};

namespace {

spec::SpecConfig spec_config(const MachineConfig &cfg) {
  spec::SpecConfig s;
  s.cpus = cfg.cpus;
  s.nodes = cfg.nodes;
  s.mem_per_node = cfg.mem_per_node;
  s.paging_levels = cfg.paging_levels;
  s.legacy = cfg.backend == Backend::Legacy;
  s.lazy_pages = cfg.lazy_pages;
  s.async_shootdown = cfg.async_shootdown;
  return s;
}

// What the spec predicts for one op. `value` is compared with the engine's
// result unless `check` is set, which judges the engine's result instead.
struct Prediction {
  Value value;
  std::function<std::string(const Value &engine)> check;
  std::optional<std::string> bug;
  std::vector<spec::Diag> diags;
  // Diagnostics the harness itself records when it refuses a machine op
  // (no such CPU, irq_exit outside interrupt context): not kernel ones.
  std::size_t harness_diags = 0;
  // The spec cannot follow this op's effect (a vm_map_ram that failed may
  // have consumed fault points and left a block behind, and the spec only
  // learns the placements it observes): comparison ends after it.
  bool desync = false;
};

Value addr_or_null(u64 a) {
  return a == 0 ? Value::null() : Value::integer(a);
}

Value vm_value(const std::optional<spec::VmInfo> &v) {
  if (!v)
    return Value::null();
  return Value::structure("vm_struct", {{"addr", Value::integer(v->addr)},
                                        {"size", Value::integer(v->size)},
                                        {"flags", Value::integer(v->flags)},
                                        {"nr_pages", Value::integer(v->nr_pages)}});
}

// Engine values carry an `id` the spec numbers differently; compare the
// fields the kernel defines.
bool same_value(const Value &spec, const Value &engine) {
  if (spec.kind == ValueKind::Struct && engine.kind == ValueKind::Struct) {
    for (const ValueField &f : spec.fields) {
      const Value *e = engine.field(f.name);
      if (e == nullptr || !same_value(f.value, *e))
        return false;
    }
    return true;
  }
  if (spec.kind == ValueKind::Array && engine.kind == ValueKind::Array) {
    if (spec.items.size() != engine.items.size())
      return false;
    for (std::size_t i = 0; i < spec.items.size(); ++i)
      if (!same_value(spec.items[i], engine.items[i]))
        return false;
    return true;
  }
  return value_matches(spec, engine);
}

u64 num(const Value &v) {
  return v.num;
}
int node(const Value &v) {
  return static_cast<int>(static_cast<std::int64_t>(v.num));
}

std::vector<u64> page_handles(const Value &list) {
  std::vector<u64> out;
  for (const Value &item : list.items)
    out.push_back(item.num);
  return out;
}

std::vector<u64> integers(const Value &list) {
  std::vector<u64> out;
  for (const Value &item : list.items)
    out.push_back(item.num);
  return out;
}

using Adapter = std::function<Prediction(spec::VmallocSpec &, const std::vector<Value> &,
                                         const OpOutcome &, AdapterState &st)>;

Prediction value(Value v) {
  return Prediction{std::move(v), nullptr, std::nullopt, {}};
}
Prediction any() {
  return Prediction{Value::none(), [](const Value &) { return std::string(); }, std::nullopt, {}};
}

const StringMap<Adapter> &adapters() {
  static const StringMap<Adapter> table = [] {
    StringMap<Adapter> t;
    using A = const std::vector<Value> &;
    using E = const OpOutcome &;
    // ---- machine ops ----
    auto refused = [](bool ok) {
      Prediction p = value(ok ? Value::none() : Value::error(-EINVAL));
      p.harness_diags = ok ? 0 : 1;
      return p;
    };
    t["cpu"] = [refused](spec::VmallocSpec &s, A a, E, AdapterState &) {
      return refused(a[0].num < 1024 && s.set_cpu(static_cast<unsigned>(a[0].num)));
    };
    t["irq_enter"] = [](spec::VmallocSpec &s, A, E, AdapterState &) {
      s.irq_enter();
      return value(Value::none());
    };
    t["irq_exit"] = [refused](spec::VmallocSpec &s, A, E, AdapterState &) {
      return refused(s.irq_exit());
    };
    t["run_deferred"] = [](spec::VmallocSpec &s, A, E, AdapterState &) {
      return value(Value::integer(s.run_deferred()));
    };
    t["fail_nth"] = [](spec::VmallocSpec &s, A a, E, AdapterState &) {
      const std::string &w = a[0].text;
      const spec::FailKind k = w == "alloc_page"   ? spec::FailKind::AllocPage
                               : w == "page_table" ? spec::FailKind::PageTable
                                                   : spec::FailKind::VmapArea;
      s.fail_nth(k, a[1].num);
      return value(Value::none());
    };
    auto alloc = [](spec::VmallocSpec &s, Gfp gfp, unsigned order, E e, AdapterState &st) {
      const bool engine_ok = e.result.value.kind == ValueKind::Page;
      const u64 handle = engine_ok ? e.result.value.num : st.next_fake_handle++;
      std::string why;
      const bool ok = s.alloc_pages_observed(
          handle, gfp, order, engine_ok ? std::optional<u64>(handle) : std::nullopt, why);
      Prediction p = any();
      p.check = [ok, why](const Value &v) {
        if (!why.empty())
          return why;
        const bool got = v.kind == ValueKind::Page;
        return got == ok
                   ? std::string()
                   : std::string("spec predicts the allocation ") + (ok ? "succeeds" : "fails");
      };
      return p;
    };
    t["alloc_page"] = [alloc](spec::VmallocSpec &s, A a, E e, AdapterState &f) {
      return alloc(s, static_cast<Gfp>(a[0].num), 0, e, f);
    };
    t["alloc_pages"] = [alloc](spec::VmallocSpec &s, A a, E e, AdapterState &f) {
      return alloc(s, static_cast<Gfp>(a[0].num), static_cast<unsigned>(a[1].num), e, f);
    };
    t["__free_pages"] = [](spec::VmallocSpec &s, A a, E, AdapterState &) {
      s.free_pages(a[0].num, static_cast<unsigned>(a[1].num));
      return value(Value::none());
    };
    t["get_page"] = [](spec::VmallocSpec &s, A a, E, AdapterState &) {
      s.get_page(a[0].num);
      return value(Value::none());
    };
    t["put_page"] = [](spec::VmallocSpec &s, A a, E, AdapterState &) {
      s.put_page(a[0].num);
      return value(Value::none());
    };
    // touch/expect_fault go through the MMU, which the spec does not model;
    // check() is the engine's own invariants. Neither changes spec state.
    for (const char *op : {"touch", "expect_fault", "probe", "check"})
      t[op] = [](spec::VmallocSpec &, A, E, AdapterState &) { return any(); };
    // ---- allocation ----
    t["vmalloc"] = [](spec::VmallocSpec &s, A a, E, AdapterState &) {
      return value(addr_or_null(s.vmalloc(num(a[0]))));
    };
    t["vzalloc"] = [](spec::VmallocSpec &s, A a, E, AdapterState &) {
      return value(addr_or_null(s.vzalloc(num(a[0]))));
    };
    t["vmalloc_user"] = [](spec::VmallocSpec &s, A a, E, AdapterState &) {
      return value(addr_or_null(s.vmalloc_user(num(a[0]))));
    };
    t["vmalloc_exec"] = [](spec::VmallocSpec &s, A a, E, AdapterState &) {
      return value(addr_or_null(s.vmalloc_exec(num(a[0]))));
    };
    t["vmalloc_32"] = [](spec::VmallocSpec &s, A a, E, AdapterState &) {
      return value(addr_or_null(s.vmalloc_32(num(a[0]))));
    };
    t["vmalloc_32_user"] = [](spec::VmallocSpec &s, A a, E, AdapterState &) {
      return value(addr_or_null(s.vmalloc_32_user(num(a[0]))));
    };
    t["vmalloc_node"] = [](spec::VmallocSpec &s, A a, E, AdapterState &) {
      return value(addr_or_null(s.vmalloc_node(num(a[0]), node(a[1]))));
    };
    t["vzalloc_node"] = [](spec::VmallocSpec &s, A a, E, AdapterState &) {
      return value(addr_or_null(s.vzalloc_node(num(a[0]), node(a[1]))));
    };
    t["__vmalloc"] = [](spec::VmallocSpec &s, A a, E, AdapterState &) {
      return value(addr_or_null(s.__vmalloc(num(a[0]), static_cast<Gfp>(a[1].num), a[2].num)));
    };
    t["__vmalloc_node"] = [](spec::VmallocSpec &s, A a, E, AdapterState &) {
      return value(addr_or_null(s.__vmalloc_node(num(a[0]), a[1].num, static_cast<Gfp>(a[2].num),
                                                 a[3].num, node(a[4]), "__vmalloc_node")));
    };
    t["__vmalloc_node_range"] = [](spec::VmallocSpec &s, A a, E, AdapterState &) {
      return value(addr_or_null(s.__vmalloc_node_range(
          num(a[0]), a[1].num, a[2].num, a[3].num, static_cast<Gfp>(a[4].num), a[5].num, a[6].num,
          node(a[7]), "__vmalloc_node_range")));
    };
    // ---- freeing ----
    t["vfree"] = [](spec::VmallocSpec &s, A a, E, AdapterState &) {
      s.vfree(num(a[0]));
      return value(Value::none());
    };
    t["vfree_atomic"] = [](spec::VmallocSpec &s, A a, E, AdapterState &) {
      s.vfree_atomic(num(a[0]));
      return value(Value::none());
    };
    t["vunmap"] = [](spec::VmallocSpec &s, A a, E, AdapterState &) {
      s.vunmap(num(a[0]));
      return value(Value::none());
    };
    // ---- reservations ----
    t["get_vm_area"] = [](spec::VmallocSpec &s, A a, E e, AdapterState &st) {
      const auto v = s.get_vm_area(num(a[0]), a[1].num);
      st.pair(e.result.value, v);
      return value(vm_value(v));
    };
    t["get_vm_area_caller"] = [](spec::VmallocSpec &s, A a, E e, AdapterState &st) {
      const auto v = s.get_vm_area_caller(num(a[0]), a[1].num, "get_vm_area_caller");
      st.pair(e.result.value, v);
      return value(vm_value(v));
    };
    t["__get_vm_area"] = [](spec::VmallocSpec &s, A a, E e, AdapterState &st) {
      const auto v = s.__get_vm_area(num(a[0]), a[1].num, a[2].num, a[3].num);
      st.pair(e.result.value, v);
      return value(vm_value(v));
    };
    t["find_vm_area"] = [](spec::VmallocSpec &s, A a, E, AdapterState &) {
      return value(vm_value(s.find_vm_area(num(a[0]))));
    };
    t["remove_vm_area"] = [](spec::VmallocSpec &s, A a, E, AdapterState &) {
      return value(vm_value(s.remove_vm_area(num(a[0]))));
    };
    t["alloc_vm_area"] = [](spec::VmallocSpec &s, A a, E e, AdapterState &st) {
      const auto v = s.alloc_vm_area(num(a[0]));
      st.pair(e.result.value, v);
      return value(vm_value(v));
    };
    t["free_vm_area"] = [](spec::VmallocSpec &s, A a, E e, AdapterState &st) {
      if (e.result.value.kind == ValueKind::Symbol) // the engine skipped a dead handle
        return any();
      if (auto info = st.spec_vm(a[0]))
        s.free_vm_area(*info);
      return value(Value::none());
    };
    // ---- mapping caller pages ----
    t["vmap"] = [](spec::VmallocSpec &s, A a, E, AdapterState &) {
      const auto pages = page_handles(a[0]);
      return value(
          addr_or_null(s.vmap(pages, static_cast<unsigned>(a[1].num), a[2].num, a[3].num)));
    };
    t["map_kernel_range_noflush"] = [](spec::VmallocSpec &s, A a, E, AdapterState &) {
      const auto pages = page_handles(a[3]);
      const long r = s.map_kernel_range_noflush(a[0].num, a[1].num, a[2].num, pages);
      return value(r < 0 ? Value::error(static_cast<int>(r)) : Value::integer(static_cast<u64>(r)));
    };
    t["unmap_kernel_range_noflush"] = [](spec::VmallocSpec &s, A a, E, AdapterState &) {
      s.unmap_kernel_range_noflush(a[0].num, a[1].num);
      return value(Value::none());
    };
    t["unmap_kernel_range"] = [](spec::VmallocSpec &s, A a, E, AdapterState &) {
      s.unmap_kernel_range(a[0].num, a[1].num);
      return value(Value::none());
    };
    // ---- vm_map_ram: the placement is the engine's choice within rules ----
    t["vm_map_ram"] = [](spec::VmallocSpec &s, A a, E e, AdapterState &) {
      const auto pages = page_handles(a[0]);
      const unsigned count = static_cast<unsigned>(a[1].num);
      Prediction p = any();
      const Value &got = e.result.value;
      if (got.kind == ValueKind::Int && got.num != 0) {
        std::string why = s.check_vm_map_ram(got.num, count);
        if (why.empty())
          why = s.observe_vm_map_ram(got.num, count, pages);
        p.check = [why](const Value &) { return why; };
      } else {
        p.desync = true;
      }
      return p;
    };
    t["vm_unmap_ram"] = [](spec::VmallocSpec &s, A a, E, AdapterState &) {
      s.vm_unmap_ram(a[0].num, static_cast<unsigned>(a[1].num));
      return value(Value::none());
    };
    t["vm_unmap_aliases"] = [](spec::VmallocSpec &s, A, E, AdapterState &) {
      s.vm_unmap_aliases();
      return value(Value::none());
    };
    t["purge"] = [](spec::VmallocSpec &s, A, E, AdapterState &) {
      s.purge_worker();
      return value(Value::none());
    };
    t["tlb_deliver"] = [](spec::VmallocSpec &s, A a, E, AdapterState &) {
      return value(Value::integer(
          a[0].num < 1024 && s.deliver_shootdown(static_cast<unsigned>(a[0].num)) ? 1 : 0));
    };
    t["vmalloc_init"] = [](spec::VmallocSpec &s, A, E, AdapterState &) {
      s.vmalloc_init();
      return value(Value::none());
    };
    // ---- percpu areas ----
    t["pcpu_get_vm_areas"] = [](spec::VmallocSpec &s, A a, E e, AdapterState &st) {
      auto offsets = integers(a[0]);
      auto sizes = integers(a[1]);
      offsets.resize(a[2].num);
      sizes.resize(a[2].num);
      const auto vms = s.pcpu_get_vm_areas(offsets, sizes, a[3].num);
      if (vms.empty())
        return value(Value::null());
      std::vector<Value> items;
      for (std::size_t i = 0; i < vms.size(); ++i) {
        items.push_back(vm_value(vms[i]));
        if (e.result.value.kind == ValueKind::Array && i < e.result.value.items.size())
          st.pair(e.result.value.items[i], vms[i]);
      }
      return value(Value::array(std::move(items)));
    };
    t["pcpu_free_vm_areas"] = [](spec::VmallocSpec &s, A a, E e, AdapterState &st) {
      if (e.result.value.kind == ValueKind::Symbol) // the engine skipped a dead handle
        return any();
      std::vector<spec::VmInfo> vms;
      for (std::size_t i = 0; i < a[1].num && i < a[0].items.size(); ++i)
        if (auto info = st.spec_vm(a[0].items[i]))
          vms.push_back(*info);
      s.pcpu_free_vm_areas(vms);
      return value(Value::none());
    };
    // ---- access and lookup ----
    t["vread"] = [](spec::VmallocSpec &s, A a, E, AdapterState &) {
      std::vector<std::uint8_t> buf(a[1].num), known;
      const long n = s.vread(buf, a[0].num, &known);
      Prediction p = any();
      p.check = [buf = std::move(buf), known = std::move(known), n](const Value &v) -> std::string {
        if (v.kind != ValueKind::Bytes || static_cast<long>(v.text.size()) != n)
          return "spec predicts " + std::to_string(n) + " bytes";
        // Every byte as predicted: so is every known one.
        if (v.text.compare(0, v.text.size(), reinterpret_cast<const char *>(buf.data()),
                           v.text.size()) == 0)
          return {};
        for (long i = 0; i < n; ++i)
          if (known[static_cast<std::size_t>(i)] &&
              static_cast<std::uint8_t>(v.text[static_cast<std::size_t>(i)]) !=
                  buf[static_cast<std::size_t>(i)])
            return "byte " + std::to_string(i) + ": spec predicts " +
                   std::to_string(buf[static_cast<std::size_t>(i)]);
        return {};
      };
      return p;
    };
    t["vwrite"] = [](spec::VmallocSpec &s, A a, E, AdapterState &) {
      const std::string &d = a[1].text;
      return value(Value::integer(static_cast<u64>(s.vwrite(
          std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t *>(d.data()), d.size()),
          a[0].num))));
    };
    t["vmalloc_to_page"] = [](spec::VmallocSpec &s, A a, E, AdapterState &) {
      const bool mapped = s.vmalloc_to_page(a[0].num);
      Prediction p = any();
      p.check = [mapped](const Value &v) {
        return (v.kind == ValueKind::Page) == mapped
                   ? std::string()
                   : std::string("spec predicts ") + (mapped ? "a page" : "NULL");
      };
      return p;
    };
    t["vmalloc_to_pfn"] = [](spec::VmallocSpec &s, A a, E, AdapterState &) {
      const bool mapped = s.vmalloc_to_page(a[0].num);
      Prediction p = any();
      p.check = [mapped](const Value &v) {
        return (v.num != 0) == mapped ? std::string()
                                      : std::string("spec predicts ") + (mapped ? "a pfn" : "0");
      };
      return p;
    };
    t["is_vmalloc_addr"] = [](spec::VmallocSpec &s, A a, E, AdapterState &) {
      return value(Value::integer(s.is_vmalloc_addr(a[0].num) ? 1 : 0));
    };
    t["vmallocinfo"] = [](spec::VmallocSpec &s, A, E, AdapterState &) {
      return value(Value::bytes(s.vmallocinfo()));
    };
    t["vm_area_add_early"] = [](spec::VmallocSpec &s, A a, E, AdapterState &) {
      s.vm_area_add_early(a[0].num, a[1].num, a[2].num);
      return value(Value::none());
    };
    t["vm_area_register_early"] = [](spec::VmallocSpec &s, A a, E, AdapterState &) {
      return value(Value::integer(s.vm_area_register_early(a[0].num, a[1].num, a[2].num)));
    };
    t["new_vmap_block"] = [](spec::VmallocSpec &s, A a, E, AdapterState &) {
      const u64 r = static_cast<u64>(
          s.new_vmap_block(static_cast<unsigned>(a[0].num), static_cast<Gfp>(a[1].num)));
      return value(IS_ERR_VALUE(r) ? Value::error(PTR_ERR(r)) : Value::integer(r));
    };
    return t;
  }();
  return table;
}

std::size_t reported(const std::vector<Diagnostic> &diags) {
  std::size_t n = 0;
  for (const Diagnostic &d : diags)
    n += d.kind != DiagKind::Finding;
  return n;
}

} // namespace

SpecTarget::SpecTarget(const MachineConfig &cfg)
    : spec_(spec_config(cfg)), user_(spec_, cfg.paging_levels == 5 ? USER_TOP_L5 : USER_TOP_L4),
      state_(std::make_unique<AdapterState>()) {}

SpecTarget::~SpecTarget() = default;

bool SpecTarget::models(const std::string &op) {
  return adapters().count(op) != 0;
}

namespace {

// The user-space ops the spec follows (SpecTarget::follows). Among them
// the raw PFN maps (vmf_insert_pfn*, remap_pfn_range, vm_iomap_memory) may
// map frames the spec holds, without a reference or a mapcount; they are
// followed like the rest because nothing writes through them: their PTEs
// are special, so access_remote_vm (the only user-side op that stores
// data) refuses them, a user-mode touch stores nothing, and a COW fault
// only reads the frame it copies.
constexpr std::string_view kUserOps[] = {"mm_create",
                                         "mmput",
                                         "file_create",
                                         "mmap",
                                         "mmap_file",
                                         "munmap",
                                         "mprotect",
                                         "unmap_vmas",
                                         "zap_page_range",
                                         "zap_page_range_single",
                                         "zap_vma_ptes",
                                         "finish_mkwrite_fault",
                                         "unmap_mapping_pages",
                                         "unmap_mapping_range",
                                         "follow_pfn",
                                         "access_remote_vm",
                                         "remap_vmalloc_range",
                                         "remap_vmalloc_range_partial",
                                         "vm_insert_page",
                                         "alloc_set_pte",
                                         "finish_fault",
                                         "vmf_insert_pfn",
                                         "vmf_insert_pfn_prot",
                                         "remap_pfn_range",
                                         "vm_iomap_memory"};
// touch(mm, addr, mode) and the like: a user access, which may fault pages in.
constexpr std::string_view kUserAccessOps[] = {"touch", "expect_fault", "probe"};

bool listed(std::span<const std::string_view> names, std::string_view op) {
  return std::find(names.begin(), names.end(), op) != names.end();
}

// The user-space ops that neither change a user mapping nor write through
// one, so the spec's user views (VmallocSpec::add_user_views) outlive them:
// reads, and the ops that only create objects. (A remap only adds
// mappings; SpecTarget::follow handles it.)
bool keeps_user_views(const std::string &op, const std::vector<Value> &args) {
  if (op == "mm_create" || op == "file_create" || op == "follow_pfn")
    return true;
  if (listed(kUserAccessOps, op))
    return args.size() == 3 && args[2].kind == ValueKind::Symbol && args[2].text != "write";
  if (op == "access_remote_vm")
    return args.size() == 4 && args[2].kind == ValueKind::Int && args[3].kind == ValueKind::Int &&
           (args[3].num & FOLL_WRITE) == 0;
  return false;
}

// The spec's frames whose engine page user space maps (mapcount > 0), with
// that mapcount: the pages of each spec area, matched by position with the
// engine's area at the same address, and the page handles (a handle is its
// engine PFN).
std::map<u64, u64> user_mapped_frames(const spec::VmallocSpec &sp, const Kernel &k) {
  const PhysMem &mem = k.machine().mem();
  const auto mapped = [&mem](Pfn pfn) -> u64 {
    const std::int32_t mc = mem.pfn_valid(pfn) ? mem.peek(pfn).mapcount : 0;
    return mc > 0 ? static_cast<u64>(mc) : 0;
  };
  const Vmalloc &v = k.vmalloc();
  std::map<u64, u64> out;
  for (const spec::Area &a : sp.areas()) {
    if (a.kind != spec::AreaKind::VmArea || a.pages.empty())
      continue;
    const auto it = v.busy_areas().find(a.start);
    if (it == v.busy_areas().end() || it->second.vm_id == 0)
      continue; // compare_state reports the mismatch
    const VmStruct &vm = *it->second.vm;
    for (std::size_t i = 0; i < a.pages.size() && i < vm.pages.size(); ++i)
      if (const u64 mc = mapped(vm.pages[i]))
        out[a.pages[i]] = mc;
  }
  for (const auto &[handle, frame] : sp.handle_frames())
    if (const u64 mc = mapped(handle))
      out[frame] = mc;
  return out;
}

} // namespace

bool SpecTarget::follows(const std::string &op, const std::vector<Value> &args) {
  static const StringSet user_ops = [] {
    StringSet set;
    for (std::string_view name : kUserOps)
      set.emplace(name);
    return set;
  }();
  if (listed(kUserAccessOps, op))
    return args.size() == 3;
  return user_ops.count(op) != 0;
}

std::string SpecTarget::follow(const std::string &op, const std::vector<Value> &args,
                               const OpOutcome &engine, const Kernel &k) {
  const FaultInjector &f = k.machine().faults();
  const std::array<u64, spec::kNumFailKinds> fail_now = {f.remaining(FailPoint::AllocPage),
                                                         f.remaining(FailPoint::PageTable),
                                                         f.remaining(FailPoint::VmapArea)};
  const bool remap = op == "remap_vmalloc_range" || op == "remap_vmalloc_range_partial";
  const bool keeps_views = keeps_user_views(op, args);
  if (!remap && !keeps_views)
    spec_.drop_user_views();
  if (op == "access_remote_vm" && keeps_views && engine.result.value.kind == ValueKind::Bytes) {
    const Value *mm = args[0].field("id");
    if (mm != nullptr)
      if (std::string err = spec_.check_user_read(mm->num, args[1].num, engine.result.value.text);
          !err.empty())
        return op + ": " + err;
  }
  if (std::string err = predict_user(op, args, engine, k, fail_now); !err.empty())
    return op + ": " + err;
  std::vector<std::array<u64, spec::kNumZones>> free_now(k.machine().mem().nr_nodes());
  for (unsigned n = 0; n < free_now.size(); ++n)
    for (Zone z : {Zone::DMA32, Zone::Normal})
      free_now[n][static_cast<unsigned>(z)] = k.machine().pages().nr_free(n, z);
  if (std::string err = spec_.follow_user_op(free_now, k.machine().pt().table_pages(), fail_now);
      !err.empty())
    return op + ": " + err;
  if (std::string err = spec_.set_user_mapped(user_mapped_frames(spec_, k)); !err.empty())
    return op + ": " + err;
  if (std::string err = compare_user_state(k); !err.empty())
    return op + ": " + err;
  return {};
}

std::string SpecTarget::run_and_compare(const std::string &op, const std::vector<Value> &args,
                                        const OpOutcome &engine) {
  const Adapter &adapt = adapters().find(op)->second;
  spec_.take_diags();
  Prediction p = [&] {
    try {
      return adapt(spec_, args, engine, *state_);
    } catch (const spec::KernelBug &bug) {
      Prediction crashed;
      crashed.bug = bug.what();
      return crashed;
    }
  }();
  p.diags = spec_.take_diags();
  if (p.bug.has_value() != engine.bug.has_value())
    return p.bug ? "spec predicts a kernel BUG (" + *p.bug + "), the engine carried on"
                 : "the engine hit a kernel BUG the spec does not predict";
  if (p.bug)
    return {};
  const Value &got = engine.result.value;
  if (p.check) {
    if (std::string why = p.check(got); !why.empty())
      return why + "; engine returned " + value_to_string(got);
  } else if (!same_value(p.value, got)) {
    return "spec predicts " + value_to_string(p.value) + ", engine returned " +
           value_to_string(got);
  }
  if (p.desync) {
    desynced_ = true;
    return {};
  }
  if (p.diags.size() + p.harness_diags != reported(engine.diags)) {
    std::string s = "spec predicts " + std::to_string(p.diags.size() + p.harness_diags) +
                    " diagnostic(s), the engine recorded " + std::to_string(reported(engine.diags));
    for (const spec::Diag &d : p.diags)
      s += "\n  spec:   " + d.function + ": " + d.reason;
    for (const Diagnostic &d : engine.diags)
      s += "\n  engine: " + d.to_string();
    return s;
  }
  return {};
}

namespace {

// One reserved range as both sides describe it, compared field by field
// and printed only for a report.
struct AreaRow {
  enum class Kind : std::uint8_t { Vm, VmMapRam, Block, Lazy };
  u64 start = 0;
  u64 end = 0;
  Kind kind = Kind::Vm;
  u64 flags = 0; // Vm only: without VM_NO_GUARD and VM_UNINITIALIZED
  u64 pages = 0; // Vm only

  bool operator==(const AreaRow &) const = default;
  std::string to_string() const {
    std::string s = hex(start) + "-" + hex(end) + " ";
    switch (kind) {
    case Kind::Vm:
      return s + "vm flags=" + hex(flags) + " pages=" + std::to_string(pages);
    case Kind::VmMapRam:
      return s + "vm_map_ram";
    case Kind::Block:
      return s + "block";
    case Kind::Lazy:
      return s + "lazy";
    }
    return s;
  }
};

constexpr u64 kComparedVmFlags = ~(VM_NO_GUARD | VM_UNINITIALIZED);

// The engine's busy and lazy areas as rows, one at a time in address order
// (two sorted maps, merged).
class EngineRows {
public:
  explicit EngineRows(const Kernel &k)
      : v_(k.vmalloc()), busy_(v_.busy_areas().begin()), lazy_(v_.lazy_areas().begin()) {}

  // The next row into r; false after the last.
  bool next(AreaRow &r) {
    const bool busy_left = busy_ != v_.busy_areas().end();
    const bool lazy_left = lazy_ != v_.lazy_areas().end();
    if (!busy_left && !lazy_left)
      return false;
    const bool take_lazy = !busy_left || (lazy_left && lazy_->first < busy_->first);
    if (take_lazy) {
      r = AreaRow{lazy_->second.va_start, lazy_->second.va_end, AreaRow::Kind::Lazy};
      ++lazy_;
    } else {
      r = busy_row(busy_->second);
      ++busy_;
    }
    return true;
  }

private:
  AreaRow busy_row(const VmapArea &va) const {
    AreaRow r{va.va_start, va.va_end, AreaRow::Kind::Vm};
    if (va.vm_id != 0) {
      const VmStruct &vm = *va.vm;
      r.flags = vm.flags & kComparedVmFlags;
      r.pages = vm.nr_pages;
    } else {
      r.kind = (va.flags & VMAP_BLOCK) ? AreaRow::Kind::Block : AreaRow::Kind::VmMapRam;
    }
    return r;
  }

  const Vmalloc &v_;
  std::map<u64, VmapArea>::const_iterator busy_;
  std::map<u64, VmapArea>::const_iterator lazy_;
};

std::vector<AreaRow> engine_areas(const Kernel &k) {
  std::vector<AreaRow> out;
  EngineRows rows(k);
  for (AreaRow r; rows.next(r);)
    out.push_back(r);
  return out;
}

AreaRow spec_row(const spec::Area &a) {
  AreaRow r{a.start, a.end, AreaRow::Kind::Lazy};
  switch (a.kind) {
  case spec::AreaKind::VmArea:
    r.kind = AreaRow::Kind::Vm;
    r.flags = a.flags & kComparedVmFlags;
    r.pages = a.pages.size();
    break;
  case spec::AreaKind::VmMapRam:
    r.kind = AreaRow::Kind::VmMapRam;
    break;
  case spec::AreaKind::VmapBlock:
    r.kind = AreaRow::Kind::Block;
    break;
  case spec::AreaKind::Lazy:
    break;
  }
  return r;
}

std::vector<AreaRow> spec_areas(const spec::VmallocSpec &sp) {
  std::vector<AreaRow> out;
  for (const spec::Area &a : sp.areas())
    out.push_back(spec_row(a));
  return out;
}

std::string row_text(const std::vector<AreaRow> &rows, std::size_t i, const char *none) {
  return i < rows.size() ? rows[i].to_string() : none;
}

// Runs after every op: compares the rows as they come, gathering none.
bool same_areas(const Kernel &k, const spec::VmallocSpec &sp) {
  EngineRows rows(k);
  AreaRow e;
  for (const spec::Area &a : sp.areas())
    if (!rows.next(e) || !(e == spec_row(a)))
      return false;
  return !rows.next(e);
}

// The first row where the two lists differ, described; empty if none.
std::string first_area_difference(const Kernel &k, const spec::VmallocSpec &sp) {
  const std::vector<AreaRow> e = engine_areas(k), s = spec_areas(sp);
  for (std::size_t i = 0; i < std::max(e.size(), s.size()); ++i)
    if (i >= e.size() || i >= s.size() || !(e[i] == s[i]))
      return "area " + std::to_string(i) + ": engine " + row_text(e, i, "(none)") + ", spec " +
             row_text(s, i, "(none)");
  return {};
}

} // namespace

std::string SpecTarget::compare_state(const Kernel &k) const {
  if (!same_areas(k, spec_))
    return first_area_difference(k, spec_);
  if (k.vmalloc().vmap_lazy_nr() != spec_.vmap_lazy_nr())
    return "vmap_lazy_nr: engine " + std::to_string(k.vmalloc().vmap_lazy_nr()) + ", spec " +
           std::to_string(spec_.vmap_lazy_nr());
  const Machine &m = k.machine();
  for (unsigned n = 0; n < m.mem().nr_nodes(); ++n)
    for (Zone z : {Zone::DMA32, Zone::Normal}) {
      const u64 en = m.pages().nr_free(n, z);
      const u64 sn = spec_.nr_free(n, static_cast<spec::Zone>(z));
      if (en != sn)
        return std::string("free pages on node ") + std::to_string(n) + " " + zone_name(z) +
               ": engine " + std::to_string(en) + ", spec " + std::to_string(sn);
    }
  if (m.pt().table_pages() != spec_.table_pages())
    return "page-table pages: engine " + std::to_string(m.pt().table_pages()) + ", spec " +
           std::to_string(spec_.table_pages());
  return {};
}

std::string SpecTarget::state_diff(const Kernel &k) const {
  const std::vector<AreaRow> e = engine_areas(k), s = spec_areas(spec_);
  std::string out = "areas (engine | spec):";
  for (std::size_t i = 0; i < std::max(e.size(), s.size()); ++i) {
    const bool same = i < e.size() && i < s.size() && e[i] == s[i];
    out +=
        "\n  " + std::string(same ? "  " : "! ") + row_text(e, i, "") + " | " + row_text(s, i, "");
  }
  return out;
}

} // namespace vmcheck
