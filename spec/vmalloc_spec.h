// The executable reference specification of the vmalloc subsystem (4.19-era
// mm/vmalloc.c, plus the 2.6-era "legacy" list allocator of seed 003).
//
// Written from the seeds, DESIGN.md and the research notes only, never from
// the engine: when the two disagree the engine is the suspect, so this model
// is deliberately naive. Areas are one sorted std::vector scanned linearly,
// placement is a first-fit walk over it, page tables are a set of table keys
// plus a map of mapped pages, memory is per-(node, zone) free counters and
// page contents are per-frame byte images with a known/unknown mask.
//
// Where the kernel leaves freedom (which vmap_block serves a vm_map_ram) the
// spec states the invariant (check_vm_map_ram) and is told the engine's choice
// (observe_vm_map_ram). Everything else is predicted exactly: addresses,
// return values, errno, page counts, the diagnostics of each call (kind and
// count) and /proc/vmallocinfo text.
//
// A kernel BUG_ON is thrown as spec::KernelBug, the only exception the public
// functions throw. The state after a KernelBug is unspecified (as the
// engine's): nothing may run on that spec afterwards. Preconditions are
// checked before anything changes wherever that is cheap.
#pragma once

#include "spec/tables.h"
#include "vmcheck/abi.h"

#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace vmcheck::spec {

enum class Zone : std::uint8_t { DMA32 = 0, Normal = 1 };
inline constexpr unsigned kNumZones = 2;

// The fault-injection points of TRACE.md's fail_nth.
enum class FailKind : std::uint8_t { AllocPage = 0, PageTable = 1, VmapArea = 2 };
inline constexpr unsigned kNumFailKinds = 3;

// Warn: WARN_ON()/WARN() (a caller bug the kernel complains about).
// Error: an allocation failure the kernel reports (warn_alloc, pr_warn).
enum class DiagKind : std::uint8_t { Warn, Error };

struct Diag {
  DiagKind kind;
  std::string function; // kernel function that reports it
  std::string reason;
};

// A BUG_ON: the predicted outcome "the kernel crashes here".
class KernelBug : public std::runtime_error {
public:
  KernelBug(std::string function, std::string reason);
  const std::string &function() const { return function_; }
  const std::string &reason() const { return reason_; }

private:
  std::string function_;
  std::string reason_;
};

struct SpecConfig {
  unsigned cpus = 4;
  unsigned nodes = 2;
  u64 mem_per_node = u64{512} << 20;
  unsigned paging_levels = 4;
  bool legacy = false;
  // Lazy-free threshold in pages; -1: fls(num_online_cpus) * 8192 pages.
  std::int64_t lazy_pages = -1;
  // The lazy purge's TLB flush reaches the other CPUs one delivery at a
  // time; the purged VA stays reserved until the last one.
  bool async_shootdown = false;

  // Empty when usable, else what is wrong (the constructor's precondition).
  std::string validate() const;
  std::string to_string() const; // "cpus=4 nodes=2 mem=512M paging=4 backend=modern lazy=auto"
};

inline constexpr u64 VMAP_BLOCK_SIZE = u64{VMAP_BBMAP_BITS} * PAGE_SIZE;

// One page frame whose contents the spec follows. Before the first write the
// whole page is uniform: known zero (__GFP_ZERO) or unknown (whatever the
// reused frame held). After it, bytes/known hold PAGE_SIZE entries each.
struct Frame {
  unsigned node = 0;
  Zone zone = Zone::Normal;
  unsigned order = 0; // the page block this frame heads (2^order pages)
  bool zero = false;
  std::vector<std::uint8_t> bytes;
  std::vector<std::uint8_t> known; // 1: bytes[i] is what the kernel holds
};

enum class AreaKind : std::uint8_t {
  VmArea,    // a vmap_area with its vm_struct (vmalloc, get_vm_area, vmap, pcpu, early)
  VmMapRam,  // a large vm_map_ram: vmap_area without vm_struct, no guard page
  VmapBlock, // a vmap_block's vmap_area (small vm_map_ram), no guard page
  Lazy,      // freed, unmapped, VA not reusable until the next purge (modern only)
};

// One reserved range of kernel VA. Invariant (check()): the areas are sorted
// by start, pairwise disjoint, non-empty and inside [VMALLOC_START,
// VMALLOC_END]; [start, end) is everything the area keeps from other
// allocations, guard page included when it has one.
struct Area {
  u64 start = 0;
  u64 end = 0;
  AreaKind kind = AreaKind::VmArea;

  // ---- VmArea: the vm_struct ----
  u64 vm_id = 0; // spec serial number of the vm_struct, never reused
  VmFlags flags = 0;
  std::string caller;
  // get_vm_area_size(): what vread/vwrite see. size - PAGE_SIZE unless the
  // vm_struct says VM_NO_GUARD (legacy: always size - PAGE_SIZE).
  u64 usable = 0;
  std::vector<u64> pages; // owned frames (vmalloc), address order; nr_pages == pages.size()
  u64 pages_array = 0;    // VM_VPAGES: start of the vmalloc'ed pages[] area

  // ---- VmapBlock: a bump allocator over VMAP_BBMAP_BITS pages ----
  // Invariant: free + dirty + sum(2^order over live) == VMAP_BBMAP_BITS, and
  // the next sub-allocation starts at page VMAP_BBMAP_BITS - free.
  unsigned cpu = 0;
  unsigned free = 0;
  unsigned dirty = 0;
  std::map<unsigned, unsigned> live; // page offset -> order

  // ---- Lazy: its purge waits for the other CPUs' TLB flushes ----
  bool purging = false;

  u64 size() const { return end - start; }
};

// What a vm_struct result exposes (TRACE.md: area.addr, .size, .flags, .nr_pages).
struct VmInfo {
  u64 vm_id = 0;
  u64 addr = 0;
  u64 size = 0; // including the guard page (legacy remove_vm_area: without)
  VmFlags flags = 0;
  u64 nr_pages = 0;
  std::string caller;
  u64 nr_ptes = 0; // alloc_vm_area: PTE slots prepared
};

class VmallocSpec {
public:
  // Precondition: cfg.validate() is empty (std::invalid_argument otherwise,
  // as the engine's Machine; this is construction, not a kernel call).
  explicit VmallocSpec(const SpecConfig &cfg = {});

  const SpecConfig &config() const { return cfg_; }
  u64 vmalloc_start() const { return vstart_; }
  u64 vmalloc_end() const { return vend_; } // inclusive, as VMALLOC_END

  // ---- boot ----------------------------------------------------------------------
  // Adds the fixed area [addr, addr + size) before vmalloc_init. KernelBug
  // after vmalloc_init, on overlap, or for a range that is not whole pages
  // inside the vmalloc range.
  void vm_area_add_early(u64 addr, u64 size, VmFlags flags);
  // Bump placement from VMALLOC_START; returns the address. KernelBug as
  // vm_area_add_early, or for an align that is not a power of two.
  u64 vm_area_register_early(u64 size, VmFlags flags, u64 align);
  // Imports the early areas. Every other vmalloc-layer call runs it first;
  // a second call does nothing.
  void vmalloc_init();
  bool initialized() const { return initialized_; }

  // ---- KVA reservations -------------------------------------------------------------
  // The vm_struct reserved (guard page included) or nullopt.
  std::optional<VmInfo> get_vm_area(u64 size, VmFlags flags);
  std::optional<VmInfo> get_vm_area_caller(u64 size, VmFlags flags, const std::string &caller);
  std::optional<VmInfo> __get_vm_area(u64 size, VmFlags flags, u64 start, u64 end);
  std::optional<VmInfo> __get_vm_area_caller(u64 size, VmFlags flags, u64 start, u64 end,
                                             const std::string &caller);
  // The vm_struct containing addr (modern) / starting at addr (legacy).
  std::optional<VmInfo> find_vm_area(u64 addr);
  // Unmaps and unlinks the area (VA lazily freed in modern); its pages are
  // not freed. nullopt (with vfree's diagnostics) when there is none.
  std::optional<VmInfo> remove_vm_area(u64 addr);
  // Reserves a VM_IOREMAP area and builds the page tables of its pages.
  std::optional<VmInfo> alloc_vm_area(u64 size);
  // remove_vm_area(area.addr) must find this very vm_struct, else KernelBug.
  void free_vm_area(const VmInfo &area);

  // ---- allocation: the address or 0 ----------------------------------------------------
  u64 __vmalloc_node_range(u64 size, u64 align, u64 start, u64 end, Gfp gfp, pgprot_t prot,
                           VmFlags vm_flags, int node, const std::string &caller);
  u64 __vmalloc_node(u64 size, u64 align, Gfp gfp, pgprot_t prot, int node,
                     const std::string &caller);
  u64 __vmalloc(u64 size, Gfp gfp, pgprot_t prot);
  u64 vmalloc(u64 size);
  u64 vzalloc(u64 size);
  u64 vmalloc_user(u64 size);
  u64 vmalloc_node(u64 size, int node);
  u64 vzalloc_node(u64 size, int node);
  u64 vmalloc_exec(u64 size);
  u64 vmalloc_32(u64 size);
  u64 vmalloc_32_user(u64 size);

  // ---- freeing ---------------------------------------------------------------------------
  // Frees the area and its pages; in interrupt context defers (modern) or
  // is a KernelBug (legacy).
  void vfree(u64 addr);
  // Queues the free on the current CPU's list; bad addresses WARN at once.
  void vfree_atomic(u64 addr);
  // Frees the area, not the pages. KernelBug in interrupt context.
  void vunmap(u64 addr);

  // ---- mapping given pages (page handles of alloc_pages) ----------------------------------
  // Maps the first `count` handles into a new VM area; the address or 0.
  u64 vmap(std::span<const u64> pages, unsigned count, VmFlags flags, pgprot_t prot);
  // Number of pages mapped, -ENOMEM, -EBUSY or -EINVAL.
  long map_kernel_range_noflush(u64 addr, u64 size, pgprot_t prot, std::span<const u64> pages);
  void unmap_kernel_range_noflush(u64 addr, u64 size);
  void unmap_kernel_range(u64 addr, u64 size);

  // ---- vm_map_ram: the engine chooses, the spec checks and follows ----------------------------
  // Why addr is not a result vm_map_ram(pages, count, ...) may return now;
  // empty when it is acceptable.
  std::string check_vm_map_ram(u64 addr, unsigned count) const;
  // Applies the engine's successful vm_map_ram(pages, count) == addr.
  // Returns check_vm_map_ram's complaint, or another reason the spec cannot
  // follow (an allocation it predicts to fail), and then changes nothing.
  std::string observe_vm_map_ram(u64 addr, unsigned count, std::span<const u64> pages);
  // KernelBug for anything vm_map_ram did not return with this count.
  void vm_unmap_ram(u64 mem, unsigned count);
  // A new block for the current CPU with its first 2^order pages in use:
  // the address, or -errno in the kernel's ERR_PTR encoding.
  long long new_vmap_block(unsigned order, Gfp gfp);
  // Purges fragmented vmap blocks and every lazily freed area.
  void vm_unmap_aliases();

  // ---- percpu areas
  // ------------------------------------------------------------------------------ Congruent areas
  // [base + offsets[i], base + offsets[i] + sizes[i]) at the highest aligned base that fits (no
  // guard pages); empty on failure.
  std::vector<VmInfo> pcpu_get_vm_areas(std::span<const u64> offsets, std::span<const u64> sizes,
                                        u64 align);
  void pcpu_free_vm_areas(std::span<const VmInfo> vms);

  // ---- access
  // -------------------------------------------------------------------------------------- Reads
  // buf.size() bytes at addr; returns what the seeds say (0 when no live area meets the range).
  // `known` (if given) receives one flag per byte: 1 where the spec knows the value, 0 where only
  // the engine does.
  long vread(std::span<std::uint8_t> buf, u64 addr, std::vector<std::uint8_t> *known = nullptr);
  long vwrite(std::span<const std::uint8_t> buf, u64 addr);

  // ---- lookup
  // ----------------------------------------------------------------------------------------
  // vmalloc_to_page() != NULL: the spec cannot predict PFNs.
  bool vmalloc_to_page(u64 addr) const;
  bool is_vmalloc_addr(u64 addr) const;

  // ---- lazy purge
  // --------------------------------------------------------------------------------------
  void purge_vmap_area_lazy();
  // purge(): the purge worker; with async_shootdown its flush may be left
  // in flight for deliver_shootdown.
  void purge_worker();
  u64 lazy_max_pages() const;
  // async_shootdown: the CPUs still to flush (empty: no purge in flight).
  bool deliver_shootdown(unsigned cpu); // false when nothing was pending on cpu
  void complete_shootdown();
  u64 vmap_lazy_nr() const { return lazy_nr_; }

  // ---- /proc/vmallocinfo
  // ----------------------------------------------------------------------------------
  std::string vmallocinfo() const;

  // ---- machine ops (TRACE.md)
  // ------------------------------------------------------------------------------- false (nothing
  // changed) for a CPU that does not exist.
  bool set_cpu(unsigned cpu);
  void irq_enter();
  // false (nothing changed) outside interrupt context.
  bool irq_exit();
  // Runs queued work (vfree_atomic lists) FIFO until none is left; returns
  // the number of work items run.
  std::size_t run_deferred();
  // The n-th allocation of that kind from now fails (0 disarms).
  void fail_nth(FailKind kind, u64 n);
  // alloc_pages(gfp, order) naming the result `handle` (the harness's id);
  // false when the allocation fails (or the handle is in use: WARN).
  bool alloc_pages(u64 handle, Gfp gfp, unsigned order);
  // alloc_pages() where the engine's outcome is known: `engine_pfn` is the
  // block it returned (nullopt: it failed). The spec counts free pages and
  // cannot see fragmentation, so a block of order > 0 may come from any zone
  // of the zonelist holding 2^order free pages, and may fail where one does:
  // the spec then takes the engine's outcome. A block from elsewhere is a
  // disagreement, described in `why` (the spec keeps its own block). Order
  // 0 is predicted exactly.
  bool alloc_pages_observed(u64 handle, Gfp gfp, unsigned order, std::optional<u64> engine_pfn,
                            std::string &why);
  // Drop one reference; the block is freed at zero. KernelBug for a handle
  // that is not allocated or an order that is not its own.
  void free_pages(u64 handle, unsigned order);
  void get_page(u64 handle);
  void put_page(u64 handle);

  // ---- allocations of user space (spec::UserSpace draws on these) ---------
  // A kmalloc (vm_area_struct, mm_struct): false when fault injection fails
  // it (fail point vmap_area).
  bool kmalloc_ok() { return !should_fail(FailKind::VmapArea); }
  // Whether a page-table page for user space (an mm's root) can be had:
  // fault injection, then the zonelist from node 0; a failure is reported
  // as the page allocator reports it. The page is not taken here:
  // follow_user_op counts it among the pages user space holds.
  bool user_table_page_ok();
  // Whether an allocation may have failed during a user-space op that
  // needs at most `pages` pages (tables included): an injected failure of a
  // page or page-table allocation fired (the engine's counters after the
  // op, `fail_now`, against the spec's before it), or fewer than `pages`
  // pages were free before it.
  bool user_alloc_may_fail(const std::array<u64, kNumFailKinds> &fail_now, u64 pages) const;
  // Whether pfn is a frame of the machine's memory (it has a struct page).
  bool pfn_is_memory(u64 pfn) const { return location_of_pfn(pfn).has_value(); }

  // ---- what user space holds: followed (spec/machine.cpp) -----------------
  // What user space holds in pages is followed, not modelled (its VMAs and
  // PTEs are: spec/user.h). After a user-space op
  // (mm_create, mmap, a fault, munmap, ...) the harness hands it what the op
  // did to the resources both sides share: the free pages per node and zone
  // now (the difference becomes the pages user space holds, user page
  // tables included), the page-table pages now, and the fault-injection
  // counters now. An error names a user op that returned more pages than
  // user space held (it must have freed pages the spec owns).
  std::string follow_user_op(const std::vector<std::array<u64, kNumZones>> &free_now,
                             u64 table_pages_now,
                             const std::array<u64, kNumFailKinds> &fail_remaining_now);
  // remap_vmalloc_range_partial(), its vmalloc side: 0 when uaddr and kaddr
  // are page aligned and the page-aligned size (not 0, no overflow) lies in
  // the usable part of a live VM_USERMAP area from kaddr on; -EINVAL
  // otherwise. (The user side, inserting each page, is not modelled.)
  int remap_vmalloc_check(u64 uaddr, u64 kaddr, u64 size) const;
  // Pages user space holds, per node and zone (see follow_user_op).
  u64 user_pages(unsigned node, Zone zone) const {
    return user_[node][static_cast<unsigned>(zone)];
  }
  // User views: after a remap_vmalloc_range(_partial) that succeeded in
  // user address space `mm`, user page uaddr + i pages maps the frame the
  // kernel page kaddr + i pages maps, for the page-aligned size (the range
  // remap_vmalloc_check accepted). The spec keeps a view until
  // drop_user_views, which the harness calls before any user-space op that
  // may change a user mapping or write through one (everything but reads
  // and remaps, which only add mappings). While it holds, what user space
  // reads through the page is the frame's contents, vwrite and friends
  // included.
  void add_user_views(u64 mm, u64 uaddr, u64 kaddr, u64 size);
  void drop_user_views() { user_views_.clear(); }
  std::size_t user_views() const { return user_views_.size(); }
  // access_remote_vm's bytes read at addr of mm: every byte read through a
  // user view whose frame contents the spec knows must be that content.
  // Empty, or the first byte that differs, described. (Which bytes the read
  // reaches, and so the count, is the user side's and not checked.)
  std::string check_user_read(u64 mm, u64 addr, std::string_view got) const;
  // After a user-space op: the frames the spec holds (pages of its areas,
  // page handles) that user space now maps, with the engine's mapcount of
  // each (remap_vmalloc_range, vm_insert_page, ...). A frame mapped more
  // often than by user views may be written from user space, so its
  // contents become unknown; when the spec lets one go (vfree,
  // __free_pages) it stays allocated, as a page user space holds, until a
  // user-space op returns it (follow_user_op). Error: a frame the engine
  // maps fewer times than the spec has user views of it (a remap that did
  // not map the page it reported).
  std::string set_user_mapped(const std::map<u64, u64> &mapcounts);
  // Page handles and the frames they name.
  std::vector<std::pair<u64, u64>> handle_frames() const;

  // ---- introspection
  // -------------------------------------------------------------------------------------------
  // Diagnostics recorded since the last take_diags().
  std::vector<Diag> take_diags();
  const std::vector<Diag> &diags() const { return diags_; }
  const std::vector<Area> &areas() const { return areas_; }
  u64 nr_free(unsigned node, Zone zone) const { return free_[node][static_cast<unsigned>(zone)]; }
  u64 nr_free_total() const;
  u64 totalram_pages() const { return u64{cfg_.nodes} * pages_per_node_; }
  // Kernel tables (root included) plus the user tables follow_user_op saw.
  u64 table_pages() const { return table_pages_ + user_tables_; }
  unsigned current_cpu() const { return cpu_; }
  bool in_interrupt() const { return irq_depth_[cpu_] > 0 && !in_work_; }
  unsigned cpu_to_node(unsigned cpu) const { return cpu_node_[cpu]; }
  // Canonical text of everything observable except diagnostics and page
  // contents; equal summaries = equal states for the "changes nothing" checks.
  std::string summary() const;
  // The spec's own invariants; the first violation or empty.
  std::string check() const;

private:
  struct HandlePage {
    u64 frame = 0;
    unsigned refcount = 1;
  };
  using Loc = std::pair<unsigned, Zone>; // (node, zone)

  // ---- machine model (spec/machine.cpp) ----
  void warn(std::string function, std::string reason);
  void error(std::string function, std::string reason);
  void warn_alloc(Gfp gfp, std::string function, std::string reason);
  bool should_fail(FailKind kind);
  int node_or_current(int node) const;
  std::optional<Loc> pick_location(int node, Gfp gfp, unsigned order) const;
  // Whether `loc` is on the zonelist pick_location walks and holds 2^order
  // free pages.
  bool allowed_location(int node, Gfp gfp, unsigned order, Loc loc) const;
  // `seen` (order > 0 only): the block the engine took, or nullopt for its
  // failure, accepted when fragmentation explains it (see alloc_pages).
  std::optional<Loc> alloc_block(int node, Gfp gfp, unsigned order, FailKind kind,
                                 const std::optional<Loc> *seen = nullptr,
                                 std::string *why = nullptr);
  std::optional<Loc> location_of_pfn(u64 pfn) const;
  bool alloc_handle(u64 handle, Gfp gfp, unsigned order, const std::optional<Loc> *seen,
                    std::string *why);
  std::optional<u64> alloc_frame(int node, Gfp gfp, unsigned order, FailKind kind,
                                 const std::optional<Loc> *seen = nullptr,
                                 std::string *why = nullptr);
  // n order-0 frames appended to `out`, exactly as n calls of
  // alloc_frame(node, gfp, 0, FailKind::AllocPage) would take them; false
  // at the first that fails (reported as alloc_frame reports it).
  bool alloc_frames(int node, Gfp gfp, u64 n, std::vector<u64> &out);
  void free_frame(u64 frame);
  bool ensure_tables(u64 va);
  // Maps one frame per page from start; 0, -ENOMEM or -EBUSY. A frame id 0
  // is a missing page (-ENOMEM).
  int map_frames(u64 start, std::span<const u64> frames, const char *function);
  void unmap_range(u64 start, u64 end);
  std::optional<u64> handle_frame(u64 handle) const;
  void mark_frames_unknown(const Area &area);
  static void forget_contents(Frame &frame); // every byte unknown

  // ---- placement (spec/placement.cpp) ----
  std::optional<u64> lowest_fit(u64 size, u64 align, u64 vstart, u64 vend) const;
  std::optional<u64> legacy_fit(u64 size, u64 align, u64 start, u64 end) const;
  bool range_is_free(u64 start, u64 end, bool ignore_lazy) const;
  std::optional<u64> pcpu_find_base(std::span<const u64> offsets, std::span<const u64> sizes,
                                    u64 align) const;

  // ---- areas and the KVA core (spec/vmalloc_spec.cpp) ----
  void ensure_init();
  std::size_t insert_area(Area area);
  Area *area_at(u64 start);
  std::optional<std::size_t> index_containing(u64 addr) const;
  std::optional<std::size_t> vm_index_for_free(u64 addr) const;
  // The reserved start, or the errno alloc_vmap_area would return.
  std::optional<u64> alloc_vmap_area(u64 size, u64 align, u64 vstart, u64 vend, Gfp gfp, int *err);
  void release_va(std::size_t index);
  // Drops every Lazy area (after waiting for a purge in flight); `defer`:
  // with async_shootdown, only marks them purging until the last delivery.
  void purge_lazy(bool defer = false);
  void release_purging();
  void purge_fragmented_blocks();
  void purge_all(bool defer = false);
  std::optional<u64> get_vm_area_node(u64 size, u64 align, VmFlags flags, u64 start, u64 end,
                                      Gfp gfp, const std::string &caller);
  u64 vmalloc_range(u64 size, u64 align, u64 start, u64 end, Gfp gfp, VmFlags vm_flags, int node,
                    const std::string &caller);
  u64 vmalloc_area_node(u64 addr, Gfp gfp, int node);
  Area detach_vm_area(std::size_t index);
  void vfree_checked(u64 addr, const char *function);
  void do_vunmap(u64 addr, bool deallocate_pages, const char *function);
  bool valid_for_free(u64 addr, const char *function);
  void defer_vfree(u64 addr);
  VmInfo to_info(const Area &area) const;
  std::optional<std::size_t> block_containing(u64 addr) const;
  std::string add_block(u64 start, unsigned order);

  // ---- access (spec/access.cpp) ----
  bool read_page(u64 va, std::size_t len, std::uint8_t *out, std::uint8_t *known) const;
  void read_frame(u64 frame, std::size_t off, std::size_t len, std::uint8_t *out,
                  std::uint8_t *known) const;
  void write_page(u64 va, std::size_t len, const std::uint8_t *in);

  SpecConfig cfg_;
  u64 vstart_ = 0;
  u64 vend_ = 0; // inclusive VMALLOC_END, also the exclusive bound of searches
  u64 pages_per_node_ = 0;
  u64 base_pfn_ = 0;                                 // node 0's first PFN
  std::vector<std::array<u64, kNumZones>> capacity_; // pages per (node, zone)
  std::vector<std::array<u64, kNumZones>> free_;     // free pages per (node, zone)
  std::vector<unsigned> cpu_node_;
  std::vector<unsigned> irq_depth_;
  unsigned cpu_ = 0;
  bool in_work_ = false; // running deferred work: process context on any CPU

  bool initialized_ = false;
  std::vector<Area> early_; // before vmalloc_init, sorted by start
  u64 early_off_ = 0;       // vm_area_register_early's bump offset from VMALLOC_START

  std::vector<Area> areas_;              // busy and lazy, sorted by start, disjoint
  u64 lazy_nr_ = 0;                      // pages (guard pages included) of the Lazy areas
  std::set<unsigned> shootdown_pending_; // CPUs yet to flush the purge in flight
  unsigned shootdown_initiator_ = 0;
  u64 next_vm_id_ = 1;

  IdTable<Frame> frames_; // allocated page blocks the spec follows (id 0: "no page")
  std::map<u64, HandlePage> handles_;

  // Page tables: the root exists from boot; below it, tables_[level] (1:
  // PTE, 2: PMD, 3: PUD, 4: P4D) holds va >> (the shift of what one table
  // of that level covers) for each of its tables, sorted. Never freed.
  std::array<std::vector<u64>, 5> tables_;
  u64 table_pages_ = 0;
  std::vector<std::array<u64, kNumZones>> table_locs_; // table pages per (node, zone)
  PteMap ptes_; // mapped kernel page VA -> frame id (may be freed: contents unknown)

  // What user space holds (follow_user_op): pages per (node, zone), user
  // page tables among them, and the number of user page-table pages.
  std::vector<std::array<u64, kNumZones>> user_;
  u64 user_tables_ = 0;
  std::set<u64> user_mapped_; // frames the spec holds that user space maps too
  struct UserView {
    u64 frame = 0; // may have been freed since: contents unknown then
    u64 kva = 0;   // the kernel page it was mapped from, for reports
  };
  std::map<std::pair<u64, u64>, UserView> user_views_; // (mm id, user page VA)

  std::array<u64, kNumFailKinds> fail_remaining_{};
  std::vector<std::vector<u64>> deferred_; // per CPU: vfree_atomic's list, oldest first
  std::deque<unsigned> work_;              // pending work items (CPU ids), each at most once

  std::vector<Diag> diags_;
};

} // namespace vmcheck::spec
