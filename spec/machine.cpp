// The spec's machine: physical memory as per-(node, zone) free counters,
// page frames with byte images, page tables as a set of table keys plus a
// map of mapped pages, CPUs, interrupt depth, fault injection and the
// machine ops of TRACE.md.
#include "spec/vmalloc_spec.h"

#include <algorithm>
#include <cstdio>

namespace vmcheck::spec {

namespace {

constexpr u64 kMiB = u64{1} << 20;
constexpr u64 kGiB = u64{1} << 30;
constexpr u64 kMaxOrderBlock = u64{4} << 20;           // one MAX_ORDER buddy block
constexpr u64 kDma32LimitPfn = (4 * kGiB) / PAGE_SIZE; // frames below it are DMA32

std::string hex(u64 v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%#llx", static_cast<unsigned long long>(v));
  return buf;
}

} // namespace

KernelBug::KernelBug(std::string function, std::string reason)
    : std::runtime_error("kernel BUG in " + function + ": " + reason),
      function_(std::move(function)), reason_(std::move(reason)) {}

std::string SpecConfig::validate() const {
  if (cpus == 0 || cpus > 4096)
    return "cpus must be 1..4096";
  if (nodes == 0 || nodes > 64)
    return "nodes must be 1..64";
  if (mem_per_node == 0 || mem_per_node % kMaxOrderBlock != 0)
    return "mem per node must be a positive multiple of 4 MiB";
  if (mem_per_node > (u64{1} << 40))
    return "mem per node must be at most 1 TiB";
  if (paging_levels != 4 && paging_levels != 5)
    return "paging must be 4 or 5";
  if (lazy_pages < -1)
    return "lazy must be auto (-1) or a page count";
  return "";
}

std::string SpecConfig::to_string() const {
  std::string s = "cpus=" + std::to_string(cpus) + " nodes=" + std::to_string(nodes) +
                  " mem=" + std::to_string(mem_per_node / kMiB) +
                  "M paging=" + std::to_string(paging_levels) +
                  " backend=" + (legacy ? "legacy" : "modern") +
                  " lazy=" + (lazy_pages < 0 ? std::string("auto") : std::to_string(lazy_pages));
  if (async_shootdown)
    s += " shootdown=async";
  return s;
}

VmallocSpec::VmallocSpec(const SpecConfig &cfg) : cfg_(cfg) {
  if (const std::string e = cfg.validate(); !e.empty())
    throw std::invalid_argument("SpecConfig: " + e);
  vstart_ = cfg.paging_levels == 5 ? VMALLOC_START_L5 : VMALLOC_START_L4;
  vend_ = cfg.paging_levels == 5 ? VMALLOC_END_L5 : VMALLOC_END_L4;

  // Node 0 straddles 4 GiB (half DMA32, half NORMAL), rounded down to a
  // MAX_ORDER block; the other nodes follow contiguously.
  pages_per_node_ = cfg.mem_per_node / PAGE_SIZE;
  const u64 half = cfg.mem_per_node / 2;
  const u64 base = half >= 4 * kGiB ? 0 : ((4 * kGiB - half) / kMaxOrderBlock) * kMaxOrderBlock;
  base_pfn_ = base / PAGE_SIZE;
  for (unsigned n = 0; n < cfg.nodes; ++n) {
    const u64 first = base_pfn_ + u64{n} * pages_per_node_;
    const u64 last = first + pages_per_node_;
    const u64 dma32 = first >= kDma32LimitPfn ? 0 : std::min(last, kDma32LimitPfn) - first;
    capacity_.push_back({dma32, pages_per_node_ - dma32});
  }
  free_ = capacity_;
  table_locs_.assign(cfg.nodes, {0, 0});
  user_.assign(cfg.nodes, {0, 0});

  for (unsigned c = 0; c < cfg.cpus; ++c)
    cpu_node_.push_back(static_cast<unsigned>(u64{c} * cfg.nodes / cfg.cpus));
  irq_depth_.assign(cfg.cpus, 0);
  deferred_.assign(cfg.cpus, {});

  // init_mm's root table is allocated at boot, before any fault is armed.
  const std::optional<Loc> root = pick_location(0, GFP_KERNEL, 0);
  free_[root->first][static_cast<unsigned>(root->second)] -= 1;
  table_locs_[root->first][static_cast<unsigned>(root->second)] += 1;
  table_pages_ = 1;
}

// ---- diagnostics --------------------------------------------------------------------

void VmallocSpec::warn(std::string function, std::string reason) {
  diags_.push_back({DiagKind::Warn, std::move(function), std::move(reason)});
}

void VmallocSpec::error(std::string function, std::string reason) {
  diags_.push_back({DiagKind::Error, std::move(function), std::move(reason)});
}

void VmallocSpec::warn_alloc(Gfp gfp, std::string function, std::string reason) {
  if ((gfp & __GFP_NOWARN) == 0)
    error(std::move(function), std::move(reason));
}

std::vector<Diag> VmallocSpec::take_diags() {
  std::vector<Diag> out;
  out.swap(diags_);
  return out;
}

// ---- fault injection ---------------------------------------------------------------------

bool VmallocSpec::should_fail(FailKind kind) {
  u64 &left = fail_remaining_[static_cast<unsigned>(kind)];
  if (left == 0)
    return false;
  return --left == 0;
}

void VmallocSpec::fail_nth(FailKind kind, u64 n) {
  fail_remaining_[static_cast<unsigned>(kind)] = n;
}

// ---- the page allocator as counters ------------------------------------------------------------

int VmallocSpec::node_or_current(int node) const {
  return node == NUMA_NO_NODE ? static_cast<int>(cpu_node_[cpu_]) : node;
}

// Zonelist order: the preferred node then n+1, n+2, ... (only the preferred
// one with __GFP_THISNODE); on each node NORMAL then DMA32, or DMA32 alone
// for __GFP_DMA32 / ___GFP_DMA. An order-k block is assumed available when
// 2^k pages are free there (the counters know nothing of fragmentation).
std::optional<VmallocSpec::Loc> VmallocSpec::pick_location(int node, Gfp gfp,
                                                           unsigned order) const {
  const bool dma32_only = (gfp & (__GFP_DMA32 | ___GFP_DMA)) != 0;
  const unsigned tries = (gfp & __GFP_THISNODE) != 0 ? 1 : cfg_.nodes;
  const u64 need = u64{1} << order;
  for (unsigned i = 0; i < tries; ++i) {
    const unsigned n = (static_cast<unsigned>(node) + i) % cfg_.nodes;
    for (Zone z : {Zone::Normal, Zone::DMA32}) {
      if (dma32_only && z != Zone::DMA32)
        continue;
      if (free_[n][static_cast<unsigned>(z)] >= need)
        return Loc{n, z};
    }
  }
  return std::nullopt;
}

bool VmallocSpec::allowed_location(int node, Gfp gfp, unsigned order, Loc loc) const {
  const bool dma32_only = (gfp & (__GFP_DMA32 | ___GFP_DMA)) != 0;
  const unsigned tries = (gfp & __GFP_THISNODE) != 0 ? 1 : cfg_.nodes;
  for (unsigned i = 0; i < tries; ++i)
    if ((static_cast<unsigned>(node) + i) % cfg_.nodes == loc.first)
      return (!dma32_only || loc.second == Zone::DMA32) &&
             free_[loc.first][static_cast<unsigned>(loc.second)] >= (u64{1} << order);
  return false;
}

std::optional<VmallocSpec::Loc> VmallocSpec::location_of_pfn(u64 pfn) const {
  if (pfn < base_pfn_ || pfn - base_pfn_ >= u64{cfg_.nodes} * pages_per_node_)
    return std::nullopt;
  const unsigned node = static_cast<unsigned>((pfn - base_pfn_) / pages_per_node_);
  return Loc{node, pfn < kDma32LimitPfn ? Zone::DMA32 : Zone::Normal};
}

// alloc_pages_node(): fault injection first (not for __GFP_NOFAIL), then the
// zonelist. A failure reports "page allocation failure" unless __GFP_NOWARN.
std::optional<VmallocSpec::Loc> VmallocSpec::alloc_block(int node, Gfp gfp, unsigned order,
                                                         FailKind kind,
                                                         const std::optional<Loc> *seen,
                                                         std::string *why) {
  const bool nofail = (gfp & __GFP_NOFAIL) != 0;
  std::optional<Loc> loc;
  if (nofail || !should_fail(kind)) {
    loc = pick_location(node, gfp, order);
    if (seen != nullptr && order > 0 && loc && *seen != loc) {
      // Fragmentation may have sent the engine down the zonelist (or out of
      // it): acceptable where the counters allow the engine's outcome.
      const bool later_zone_with_room =
          seen->has_value() && allowed_location(node, gfp, order, **seen);
      if (later_zone_with_room || !seen->has_value()) {
        loc = *seen;
      } else if (why != nullptr) {
        *why = "spec predicts the order-" + std::to_string(order) +
               " block from a zone with room for it on the zonelist";
      }
    }
  }
  if (!loc) {
    if (nofail)
      throw KernelBug("alloc_pages", "__GFP_NOFAIL allocation cannot be satisfied");
    warn_alloc(gfp, "alloc_pages",
               "page allocation failure: order:" + std::to_string(order) + ", mode:" + hex(gfp));
    return std::nullopt;
  }
  free_[loc->first][static_cast<unsigned>(loc->second)] -= u64{1} << order;
  return loc;
}

std::optional<u64> VmallocSpec::alloc_frame(int node, Gfp gfp, unsigned order, FailKind kind,
                                            const std::optional<Loc> *seen, std::string *why) {
  const std::optional<Loc> loc = alloc_block(node, gfp, order, kind, seen, why);
  if (!loc)
    return std::nullopt;
  Frame f;
  f.node = loc->first;
  f.zone = loc->second;
  f.order = order;
  f.zero = (gfp & __GFP_ZERO) != 0;
  return frames_.add(std::move(f));
}

bool VmallocSpec::alloc_frames(int node, Gfp gfp, u64 n, std::vector<u64> &out) {
  const bool nofail = (gfp & __GFP_NOFAIL) != 0;
  u64 &fail_left = fail_remaining_[static_cast<unsigned>(FailKind::AllocPage)];
  for (u64 taken = 0; taken < n;) {
    // Page by page, alloc_frame takes from the first zone on the zonelist
    // with a free page, and that zone stays the first until it is empty. So
    // take a run from it: up to its free pages, and short of the page an
    // injected failure is due on (fail_left == k: the k-th page fails).
    const std::optional<Loc> loc = pick_location(node, gfp, 0);
    u64 run = 0;
    if (loc) {
      run = std::min(n - taken, free_[loc->first][static_cast<unsigned>(loc->second)]);
      if (!nofail && fail_left != 0)
        run = std::min(run, fail_left - 1);
    }
    if (run == 0) {
      // No zone has a free page, or the injected failure is due on this
      // one: alloc_frame itself decides (and reports) this page.
      const std::optional<u64> f = alloc_frame(node, gfp, 0, FailKind::AllocPage);
      if (!f)
        return false;
      out.push_back(*f);
      ++taken;
      continue;
    }
    free_[loc->first][static_cast<unsigned>(loc->second)] -= run;
    if (!nofail && fail_left != 0)
      fail_left -= run;
    out.reserve(out.size() + run); // one run per zone at most: few reallocations
    const u64 first = frames_.add_n(run, [&loc, gfp] {
      Frame f;
      f.node = loc->first;
      f.zone = loc->second;
      f.zero = (gfp & __GFP_ZERO) != 0;
      return f;
    });
    for (u64 i = 0; i < run; ++i)
      out.push_back(first + i);
    taken += run;
  }
  return true;
}

void VmallocSpec::free_frame(u64 frame) {
  const Frame &f = frames_.at(frame);
  const unsigned n = f.node, z = static_cast<unsigned>(f.zone);
  // A frame user space still maps stays allocated: user space holds it now.
  (user_mapped_.erase(frame) != 0 ? user_ : free_)[n][z] += u64{1} << f.order;
  frames_.erase(frame);
}

u64 VmallocSpec::nr_free_total() const {
  u64 sum = 0;
  for (const auto &node : free_)
    for (u64 v : node)
      sum += v;
  return sum;
}

// ---- page tables ------------------------------------------------------------------------

// Builds the tables covering va, top-down: (P4D per 256 TiB with 5 levels,)
// PUD per 512 GiB, PMD per 1 GiB, PTE per 2 MiB. Each is a page_table
// allocation on node 0 (NORMAL then DMA32, then the next node).
bool VmallocSpec::ensure_tables(u64 va) {
  struct Level {
    unsigned level;
    unsigned shift;
  };
  static constexpr Level kFive[] = {{4, 48}, {3, 39}, {2, 30}, {1, 21}};
  const std::span<const Level> levels = cfg_.paging_levels == 5
                                            ? std::span<const Level>(kFive)
                                            : std::span<const Level>(kFive + 1, 3);
  for (const Level &l : levels) {
    std::vector<u64> &tables = tables_[l.level];
    const u64 index = va >> l.shift;
    const auto at = std::lower_bound(tables.begin(), tables.end(), index);
    if (at != tables.end() && *at == index)
      continue;
    const std::optional<Loc> loc = alloc_block(0, GFP_KERNEL | __GFP_ZERO, 0, FailKind::PageTable);
    if (!loc)
      return false;
    tables.insert(at, index);
    table_locs_[loc->first][static_cast<unsigned>(loc->second)] += 1;
    ++table_pages_;
  }
  return true;
}

int VmallocSpec::map_frames(u64 start, std::span<const u64> frames, const char *function) {
  // The first PTE at or above start: the first one the range runs into.
  const std::optional<u64> occupied = ptes_.first_at_or_above(start);
  // Pages before a failure stay mapped, as in the kernel.
  std::size_t mapped = 0;
  int err = 0;
  for (; mapped < frames.size(); ++mapped) {
    const u64 va = start + mapped * PAGE_SIZE;
    // One PTE table per 2 MiB: its tables are those of the 2 MiB's first page.
    if ((mapped == 0 || (va & (PMD_SIZE - 1)) == 0) && !ensure_tables(va)) {
      err = -ENOMEM;
      break;
    }
    if (occupied == va) {
      warn(function, "PTE already present at " + hex(va));
      err = -EBUSY;
      break;
    }
    if (frames[mapped] == 0) {
      warn(function, "no page to map at " + hex(va));
      err = -ENOMEM;
      break;
    }
  }
  ptes_.insert_run(start, frames.first(mapped));
  return err;
}

void VmallocSpec::unmap_range(u64 start, u64 end) {
  ptes_.erase(start, end);
}

// ---- allocations of user space -----------------------------------------------------------------

bool VmallocSpec::user_table_page_ok() {
  if (should_fail(FailKind::PageTable) || !pick_location(0, GFP_KERNEL, 0)) {
    warn_alloc(GFP_KERNEL, "alloc_pages",
               "page allocation failure: order:0, mode:" + hex(GFP_KERNEL | __GFP_ZERO));
    return false;
  }
  return true;
}

bool VmallocSpec::user_alloc_may_fail(const std::array<u64, kNumFailKinds> &fail_now,
                                      u64 pages) const {
  for (FailKind k : {FailKind::AllocPage, FailKind::PageTable}) {
    const unsigned i = static_cast<unsigned>(k);
    if (fail_remaining_[i] != 0 && fail_now[i] == 0)
      return true;
  }
  return nr_free_total() < pages;
}

// ---- user address spaces: followed --------------------------------------------------------------

std::string VmallocSpec::follow_user_op(const std::vector<std::array<u64, kNumZones>> &free_now,
                                        u64 table_pages_now,
                                        const std::array<u64, kNumFailKinds> &fail_remaining_now) {
  if (free_now.size() != cfg_.nodes)
    return "free counts for " + std::to_string(free_now.size()) + " nodes, the machine has " +
           std::to_string(cfg_.nodes);
  // Check everything before changing anything.
  for (unsigned n = 0; n < cfg_.nodes; ++n)
    for (unsigned z = 0; z < kNumZones; ++z)
      if (free_now[n][z] > free_[n][z] + user_[n][z])
        return "a user-space op freed " +
               std::to_string(free_now[n][z] - free_[n][z] - user_[n][z]) + " page(s) on node " +
               std::to_string(n) + " zone " + std::to_string(z) + " that user space did not hold";
  if (table_pages_now < table_pages_)
    return "a user-space op freed kernel page tables";
  for (unsigned n = 0; n < cfg_.nodes; ++n)
    for (unsigned z = 0; z < kNumZones; ++z) {
      user_[n][z] = free_[n][z] + user_[n][z] - free_now[n][z];
      free_[n][z] = free_now[n][z];
    }
  user_tables_ = table_pages_now - table_pages_;
  fail_remaining_ = fail_remaining_now;
  return {};
}

void VmallocSpec::add_user_views(u64 mm, u64 uaddr, u64 kaddr, u64 size) {
  for (u64 off = 0; off < size; off += PAGE_SIZE)
    if (const u64 *pte = ptes_.find(kaddr + off))
      user_views_[{mm, uaddr + off}] = UserView{*pte, kaddr + off};
}

std::string VmallocSpec::set_user_mapped(const std::map<u64, u64> &mapcounts) {
  std::map<u64, u64> viewed; // frame -> user views of it
  for (const auto &[where, view] : user_views_)
    if (frames_.contains(view.frame))
      ++viewed[view.frame];
  for (const auto &[where, view] : user_views_) {
    const auto mc = mapcounts.find(view.frame);
    const u64 mapped = mc == mapcounts.end() ? 0 : mc->second;
    if (frames_.contains(view.frame) && mapped < viewed[view.frame])
      return "the page of " + hex(view.kva) + " is mapped into user space " +
             std::to_string(mapped) + " time(s), but remaps put it at " +
             std::to_string(viewed[view.frame]) + " user page(s), among them " + hex(where.second) +
             " of mm " + std::to_string(where.first);
  }
  user_mapped_.clear();
  for (const auto &[f, mapped] : mapcounts) {
    const auto v = viewed.find(f);
    if (mapped > (v == viewed.end() ? 0 : v->second))
      forget_contents(frames_.at(f));
    user_mapped_.insert(f);
  }
  return {};
}

std::vector<std::pair<u64, u64>> VmallocSpec::handle_frames() const {
  std::vector<std::pair<u64, u64>> out;
  for (const auto &[h, p] : handles_)
    out.emplace_back(h, p.frame);
  return out;
}

int VmallocSpec::remap_vmalloc_check(u64 uaddr, u64 kaddr, u64 size) const {
  if (size == 0 || size > ~u64{0} - (PAGE_SIZE - 1))
    return -EINVAL; // nothing to map, or PAGE_ALIGN(size) overflows
  const u64 len = page_align(size);
  if (uaddr % PAGE_SIZE != 0 || kaddr % PAGE_SIZE != 0)
    return -EINVAL;
  const std::optional<std::size_t> i = vm_index_for_free(kaddr);
  if (!i || (areas_[*i].flags & VM_USERMAP) == 0)
    return -EINVAL;
  const u64 usable_end = areas_[*i].start + areas_[*i].usable;
  if (kaddr >= usable_end || len > usable_end - kaddr)
    return -EINVAL;
  return 0;
}

// ---- CPUs and deferred work ------------------------------------------------------------------

bool VmallocSpec::set_cpu(unsigned cpu) {
  if (cpu >= cfg_.cpus)
    return false;
  cpu_ = cpu;
  return true;
}

void VmallocSpec::irq_enter() {
  ++irq_depth_[cpu_];
}

bool VmallocSpec::irq_exit() {
  if (irq_depth_[cpu_] == 0)
    return false;
  --irq_depth_[cpu_];
  return true;
}

// The work item of a CPU takes that CPU's whole list (llist_del_all) and
// frees it newest first, in process context.
std::size_t VmallocSpec::run_deferred() {
  std::size_t ran = 0;
  while (!work_.empty()) {
    const unsigned cpu = work_.front();
    work_.pop_front();
    ++ran;
    std::vector<u64> list;
    list.swap(deferred_[cpu]);
    in_work_ = true;
    for (auto it = list.rbegin(); it != list.rend(); ++it)
      do_vunmap(*it, true, "vfree");
    in_work_ = false;
  }
  return ran;
}

// ---- pages the harness holds ------------------------------------------------------------------

bool VmallocSpec::alloc_pages(u64 handle, Gfp gfp, unsigned order) {
  return alloc_handle(handle, gfp, order, nullptr, nullptr);
}

bool VmallocSpec::alloc_pages_observed(u64 handle, Gfp gfp, unsigned order,
                                       std::optional<u64> engine_pfn, std::string &why) {
  const std::optional<Loc> seen = engine_pfn ? location_of_pfn(*engine_pfn) : std::nullopt;
  if (engine_pfn && !seen) {
    why = "the engine's block " + hex(*engine_pfn) + " is outside memory";
    return false;
  }
  return alloc_handle(handle, gfp, order, &seen, &why);
}

bool VmallocSpec::alloc_handle(u64 handle, Gfp gfp, unsigned order, const std::optional<Loc> *seen,
                               std::string *why) {
  if (handles_.count(handle) != 0) {
    warn("alloc_pages", "page handle " + std::to_string(handle) + " is already in use");
    return false;
  }
  if ((gfp & ~GFP_KNOWN_MASK) != 0) {
    warn("alloc_pages", "unknown gfp bits " + hex(gfp & ~GFP_KNOWN_MASK));
    return false;
  }
  if (order >= MAX_ORDER) {
    if ((gfp & __GFP_NOWARN) == 0)
      warn("alloc_pages", "order " + std::to_string(order) + " >= MAX_ORDER");
    return false;
  }
  const std::optional<u64> f =
      alloc_frame(node_or_current(NUMA_NO_NODE), gfp, order, FailKind::AllocPage, seen, why);
  if (!f)
    return false;
  handles_.emplace(handle, HandlePage{*f, 1});
  return true;
}

void VmallocSpec::free_pages(u64 handle, unsigned order) {
  const auto it = handles_.find(handle);
  if (it == handles_.end())
    throw KernelBug("free_pages", "bad page state: page " + std::to_string(handle) + " is free");
  if (frames_.at(it->second.frame).order != order)
    throw KernelBug("free_pages", "bad page state: freed at order " + std::to_string(order) +
                                      ", allocated at order " +
                                      std::to_string(frames_.at(it->second.frame).order));
  put_page(handle);
}

void VmallocSpec::get_page(u64 handle) {
  const auto it = handles_.find(handle);
  if (it == handles_.end())
    throw KernelBug("get_page", "page " + std::to_string(handle) + " is free");
  ++it->second.refcount;
}

void VmallocSpec::put_page(u64 handle) {
  const auto it = handles_.find(handle);
  if (it == handles_.end())
    throw KernelBug("put_page", "bad page state: page " + std::to_string(handle) + " is free");
  if (--it->second.refcount == 0) {
    free_frame(it->second.frame);
    handles_.erase(it);
  }
}

std::optional<u64> VmallocSpec::handle_frame(u64 handle) const {
  const auto it = handles_.find(handle);
  if (it == handles_.end())
    return std::nullopt;
  return it->second.frame;
}

} // namespace vmcheck::spec
