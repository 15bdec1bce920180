#include "machine/machine.h"

#include <charconv>
#include <stdexcept>

namespace vmcheck {

namespace {

constexpr u64 kMaxOrderBlock = PAGE_SIZE << (MAX_ORDER - 1); // 4 MiB

// Parses "512", "512M", "0x1000", "4K", "1G". Empty optional on error.
std::optional<u64> parse_size(std::string_view s) {
  if (s.empty())
    return std::nullopt;
  u64 mult = 1;
  switch (s.back()) {
  case 'K':
  case 'k':
    mult = u64{1} << 10;
    break;
  case 'M':
  case 'm':
    mult = u64{1} << 20;
    break;
  case 'G':
  case 'g':
    mult = u64{1} << 30;
    break;
  default:
    break;
  }
  if (mult != 1)
    s.remove_suffix(1);
  int base = 10;
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    base = 16;
    s.remove_prefix(2);
  }
  u64 v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v, base);
  if (ec != std::errc() || ptr != s.data() + s.size() || s.empty())
    return std::nullopt;
  if (v > ~u64{0} / mult)
    return std::nullopt;
  return v * mult;
}

std::string size_string(u64 v) {
  if (v != 0 && v % (u64{1} << 30) == 0)
    return std::to_string(v >> 30) + "G";
  if (v != 0 && v % (u64{1} << 20) == 0)
    return std::to_string(v >> 20) + "M";
  if (v != 0 && v % (u64{1} << 10) == 0)
    return std::to_string(v >> 10) + "K";
  return std::to_string(v);
}

} // namespace

std::string MachineConfig::set(std::string_view key, std::string_view value) {
  const std::string what = "config " + std::string(key) + "=" + std::string(value) + ": ";
  auto number = [&](u64 lo, u64 hi) -> std::optional<u64> {
    auto v = parse_size(value);
    if (!v || *v < lo || *v > hi)
      return std::nullopt;
    return v;
  };
  if (key == "cpus") {
    auto v = number(1, 64);
    if (!v)
      return what + "expected a CPU count from 1 to 64";
    cpus = static_cast<unsigned>(*v);
  } else if (key == "nodes") {
    auto v = number(1, 8);
    if (!v)
      return what + "expected a node count from 1 to 8";
    nodes = static_cast<unsigned>(*v);
  } else if (key == "mem") {
    auto v = number(kMaxOrderBlock, u64{64} << 30);
    if (!v || *v % kMaxOrderBlock != 0)
      return what + "expected memory per node, a multiple of 4M from 4M to 64G";
    mem_per_node = *v;
  } else if (key == "paging") {
    if (value != "4" && value != "5")
      return what + "expected 4 or 5 (paging levels)";
    paging_levels = value == "4" ? 4 : 5;
  } else if (key == "backend") {
    if (value == "modern")
      backend = Backend::Modern;
    else if (value == "legacy")
      backend = Backend::Legacy;
    else
      return what + "expected modern or legacy";
  } else if (key == "lazy") {
    if (value == "auto") {
      lazy_pages = -1;
    } else {
      auto v = number(0, u64{1} << 40);
      if (!v)
        return what + "expected auto or a page count";
      lazy_pages = static_cast<std::int64_t>(*v);
    }
  } else if (key == "shootdown") {
    if (value != "sync" && value != "async")
      return what + "expected sync or async";
    async_shootdown = value == "async";
  } else if (key == "tlb") {
    auto v = number(1, 4096);
    if (!v)
      return what + "expected a TLB capacity from 1 to 4096 entries";
    tlb_entries = static_cast<unsigned>(*v);
  } else {
    return "config: unknown key '" + std::string(key) +
           "' (known: cpus nodes mem paging backend lazy tlb shootdown)";
  }
  return {};
}

std::string MachineConfig::validate() const {
  if (cpus < 1 || cpus > 64)
    return "config: cpus must be 1..64";
  if (nodes < 1 || nodes > 8)
    return "config: nodes must be 1..8";
  if (nodes > cpus)
    return "config: every node needs a CPU (nodes <= cpus)";
  if (mem_per_node < kMaxOrderBlock || mem_per_node % kMaxOrderBlock != 0 ||
      mem_per_node > (u64{64} << 30))
    return "config: mem must be a multiple of 4M from 4M to 64G";
  if (paging_levels != 4 && paging_levels != 5)
    return "config: paging must be 4 or 5";
  if (tlb_entries < 1 || tlb_entries > 4096)
    return "config: tlb must be 1..4096";
  if (lazy_pages < -1)
    return "config: lazy must be auto or >= 0";
  return {};
}

std::string MachineConfig::to_string() const {
  std::string s = "cpus=" + std::to_string(cpus) + " nodes=" + std::to_string(nodes) +
                  " mem=" + size_string(mem_per_node) + " paging=" + std::to_string(paging_levels) +
                  " backend=" + (backend == Backend::Modern ? "modern" : "legacy") +
                  " lazy=" + (lazy_pages < 0 ? std::string("auto") : std::to_string(lazy_pages));
  if (tlb_entries != MachineConfig{}.tlb_entries)
    s += " tlb=" + std::to_string(tlb_entries);
  if (async_shootdown)
    s += " shootdown=async";
  return s;
}

static const MachineConfig &validated(const MachineConfig &cfg) {
  if (auto err = cfg.validate(); !err.empty())
    throw std::invalid_argument(err);
  return cfg;
}

Machine::Machine(const MachineConfig &cfg)
    : cfg_(validated(cfg)), mem_(cfg.nodes, cfg.mem_per_node), alloc_(mem_, faults_, diag_),
      pt_(mem_, alloc_, diag_, cfg.paging_levels), mmu_(pt_, diag_, cfg.cpus, cfg.tlb_entries) {
  cpus_.resize(cfg.cpus);
  // CPUs are spread evenly over nodes in blocks: cpus 0..k-1 on node 0, ...
  for (unsigned c = 0; c < cfg.cpus; ++c)
    cpus_[c].node = c * cfg.nodes / cfg.cpus;
  if (!pt_.init())
    throw std::invalid_argument("machine: cannot allocate the kernel page-table root");
  for (auto &c : cpus_)
    c.root = pt_.kernel_root();
}

u64 Machine::vmalloc_start() const {
  return cfg_.paging_levels == 5 ? VMALLOC_START_L5 : VMALLOC_START_L4;
}

u64 Machine::vmalloc_end() const {
  return cfg_.paging_levels == 5 ? VMALLOC_END_L5 : VMALLOC_END_L4;
}

bool Machine::set_current_cpu(unsigned cpu) {
  if (cpu >= cpus_.size())
    return false;
  current_ = cpu;
  return true;
}

void Machine::irq_enter() {
  ++cpus_[current_].irq_depth;
}

bool Machine::irq_exit() {
  if (cpus_[current_].irq_depth == 0)
    return false;
  --cpus_[current_].irq_depth;
  return true;
}

Translation Machine::touch(u64 va, Access access) {
  const CpuState &c = cpus_[current_];
  return mmu_.translate(current_, c.root, va, access, false);
}

bool Machine::kernel_read(u64 va, std::span<std::uint8_t> out, u64 *fault_va) {
  std::size_t done = 0;
  while (done < out.size()) {
    const u64 cur = va + done;
    Translation t = touch(cur, Access::Read);
    if (!t.ok()) {
      if (fault_va)
        *fault_va = cur;
      return false;
    }
    const std::size_t chunk =
        std::min<std::size_t>(out.size() - done, PAGE_SIZE - (cur & (PAGE_SIZE - 1)));
    mem_.read(t.pa, out.subspan(done, chunk));
    done += chunk;
  }
  return true;
}

bool Machine::kernel_write(u64 va, std::span<const std::uint8_t> in, u64 *fault_va) {
  std::size_t done = 0;
  while (done < in.size()) {
    const u64 cur = va + done;
    Translation t = touch(cur, Access::Write);
    if (!t.ok()) {
      if (fault_va)
        *fault_va = cur;
      return false;
    }
    const std::size_t chunk =
        std::min<std::size_t>(in.size() - done, PAGE_SIZE - (cur & (PAGE_SIZE - 1)));
    mem_.write(t.pa, in.subspan(done, chunk));
    done += chunk;
  }
  return true;
}

std::string Machine::check() const {
  if (auto e = alloc_.check(); !e.empty())
    return "page allocator: " + e;
  if (auto e = pt_.check(); !e.empty())
    return "page tables: " + e;
  return {};
}

void Machine::hash_into(StateHasher &h) const {
  h.tag(0x3ac1);
  h.add(cfg_.to_string());
  mem_.hash_into(h);
  alloc_.hash_into(h);
  pt_.hash_into(h);
  mmu_.hash_into(h);
  deferred_.hash_into(h);
  faults_.hash_into(h);
  h.tag(0xc9u);
  for (const auto &c : cpus_) {
    h.add(c.irq_depth);
    h.add(c.root);
  }
  h.add(current_);
  h.add(booting_);
  h.add(clock_);
}

u64 Machine::state_hash() const {
  StateHasher h;
  hash_into(h);
  return h.value();
}

} // namespace vmcheck
