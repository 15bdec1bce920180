// The percpu allocator over vmalloc: chunks as mm/percpu.c builds them,
// backed by congruent vmalloc areas (pcpu_get_vm_areas) and populated page
// by page through the ten functions of mm/percpu-vm.c (seed 002), with a
// small __alloc_percpu / free_percpu on top so there is a real workload.
//
// Emulation choices (each one a place where the kernel leaves freedom or
// where vmcheck deliberately differs; the rest follows 4.19):
//  - The first-chunk layout is derived from the machine: one unit per CPU,
//    one group per NUMA node holding that node's CPUs in order, groups
//    placed 2 * group_size apart so congruent areas have holes between them
//    as NUMA distances give the kernel. atom_size is PAGE_SIZE, the
//    page-first-chunk style (x86-64's embed allocator uses 2 MiB), so
//    chunks are small enough to create many of.
//  - There is no static first chunk: every chunk is a dynamic vmalloc-based
//    one, created on demand (a fresh machine's vmalloc range stays empty).
//    The oldest live chunk plays the first chunk's part: it is never
//    reclaimed when it empties.
//  - The populated bitmap is kept by pcpu_map_pages (set on success) and
//    pcpu_unmap_pages (cleared), the 2.6.35 split of duties, so it always
//    equals "mapped on every CPU" even when a trace drives the building
//    blocks one by one.
//  - When pcpu_map_pages fails midway, the failing unit's partial mappings
//    are removed too. 4.19 removes only the earlier units' mappings and
//    leaves PTEs to pages the caller then frees (a later map of that range
//    would meet them and fail with -EBUSY).
//  - pcpu_free_pages clears the array entries it frees. The kernel leaves
//    stale pointers; clearing them makes a repeated free a no-op instead of
//    freeing a frame someone else may own by then.
//  - Empty non-first chunks are depopulated and destroyed by a deferred work
//    item "pcpu_balance_work" (run with run_deferred()), as free_percpu
//    schedules pcpu_balance_workfn. The balance work does not pre-populate
//    empty pages (PCPU_EMPTY_POP_PAGES_*).
//  - A failed __alloc_percpu undoes everything it did: the runs it
//    populated are depopulated (with a TLB flush, so a later population of
//    the same pages meets no stale entry) and a chunk it created is
//    destroyed. 4.19 keeps both for the balance work to reclaim.
#pragma once

#include "machine/machine.h"
#include "vmalloc/vmalloc.h"

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace vmcheck {

// An empty slot of the temp pages array (the kernel's NULL struct page *).
inline constexpr Pfn kNoPage = ~Pfn{0};
// PCPU_MIN_ALLOC_SIZE: the granule of the allocation map.
inline constexpr u64 PCPU_MIN_ALLOC_SIZE = 4;

struct PcpuConfig {
  u64 unit_size = u64{32} << 10; // bytes per CPU per chunk; a page multiple
};

// struct pcpu_group_info: the units of one NUMA node.
struct PcpuGroupInfo {
  u64 base_offset = 0;       // from the chunk's base address
  std::vector<unsigned> cpu; // the group's CPUs, unit order
};

// struct pcpu_alloc_info plus the tables pcpu_setup_first_chunk derives
// from it. Invariant: groups do not overlap; every CPU has exactly one unit;
// unit_off[cpu] == groups[g].base_offset + index_in_group * unit_size.
struct PcpuLayout {
  u64 unit_size = 0;
  unsigned unit_pages = 0;
  u64 atom_size = PAGE_SIZE;
  unsigned nr_units = 0;
  std::vector<PcpuGroupInfo> groups;
  std::vector<u64> group_offsets; // pcpu_group_offsets
  std::vector<u64> group_sizes;   // pcpu_group_sizes
  std::vector<unsigned> unit_map; // cpu -> unit index (pcpu_unit_map)
  std::vector<u64> unit_off;      // cpu -> unit offset (pcpu_unit_offsets)
  unsigned first_unit_cpu = 0;    // CPU of the lowest unit offset
  unsigned last_unit_cpu = 0;     // CPU of the highest unit offset
};

// The layout for machine m with units of unit_size bytes.
PcpuLayout pcpu_build_alloc_info(const Machine &m, u64 unit_size);

// struct pcpu_chunk (vmalloc-backed). Invariants: vms[g]->addr ==
// base_addr + group_offsets[g] for every group (congruence);
// populated[i] <=> page i of every unit is mapped (to distinct Percpu
// frames whose reverse lookup names this chunk), and no other page of the
// chunk is mapped; `areas` are disjoint, inside [0, unit_size), on populated
// pages only; free_bytes == unit_size - sum of area sizes.
struct PcpuChunk {
  u64 id = 0;                  // serial, never reused: trace handles name it
  std::vector<u64> vm_ids;     // chunk->data: the vm_structs, group order
  u64 base_addr = 0;           // vms[0]->addr - group_offsets[0]
  std::vector<bool> populated; // per unit page
  std::map<u64, u64> areas;    // live allocations: offset -> size
  u64 free_bytes = 0;
};

// Cache flushes are no-ops on x86; they are counted so tests can see the
// calls. Statistics only: not part of the state hash.
struct PcpuFlushStats {
  u64 pre_unmap = 0;      // pcpu_pre_unmap_flush (flush_cache_vunmap)
  u64 post_map = 0;       // pcpu_post_map_flush (flush_cache_vmap)
  u64 post_unmap_tlb = 0; // pcpu_post_unmap_tlb_flush (flush_tlb_kernel_range)
};

class Percpu {
public:
  // Throws std::invalid_argument when cfg.unit_size is not a non-zero page
  // multiple. Allocates nothing: chunks appear on demand.
  Percpu(Machine &m, Vmalloc &v, PcpuConfig cfg = {});
  Percpu(const Percpu &) = delete;
  Percpu &operator=(const Percpu &) = delete;

  const PcpuLayout &layout() const { return layout_; }
  // pcpu_page_idx: the temp array slot of (cpu, page).
  std::size_t pcpu_page_idx(unsigned cpu, unsigned page) const;
  // pcpu_chunk_addr: the address of page `page` of cpu's unit.
  u64 pcpu_chunk_addr(const PcpuChunk &chunk, unsigned cpu, unsigned page) const;

  // ---- mm/percpu-vm.c (seed 002) -------------------------------------------------
  // Ranges are [page_start, page_end) of a unit; a range outside
  // [0, unit_pages] or reversed WARNs and changes nothing (-EINVAL where
  // the function returns an int). `pages` must be the array pcpu_get_pages
  // returned (KernelBug otherwise: the kernel would follow a NULL pointer).

  // pcpu_get_pages: the one shared temp array (nr_units * unit_pages
  // slots), allocated on first use; empty on allocation failure.
  std::span<Pfn> pcpu_get_pages();
  // pcpu_free_pages: frees every non-empty slot of the range for all CPUs.
  void pcpu_free_pages(PcpuChunk &chunk, std::span<Pfn> pages, unsigned page_start,
                       unsigned page_end);
  // pcpu_alloc_pages: one page per CPU per page index, on the CPU's node.
  // 0, or -ENOMEM with every page of this call freed.
  int pcpu_alloc_pages(PcpuChunk &chunk, std::span<Pfn> pages, unsigned page_start,
                       unsigned page_end);
  // pcpu_pre_unmap_flush: cache flush before unmapping (counted no-op).
  void pcpu_pre_unmap_flush(PcpuChunk &chunk, unsigned page_start, unsigned page_end);
  // pcpu_unmap_pages: records each CPU's mapped page in `pages` (WARN for an
  // unmapped one) and unmaps the range; no TLB flush.
  void pcpu_unmap_pages(PcpuChunk &chunk, std::span<Pfn> pages, unsigned page_start,
                        unsigned page_end);
  // pcpu_post_unmap_tlb_flush: one flush_tlb_kernel_range over the range of
  // the first unit to the range of the last.
  void pcpu_post_unmap_tlb_flush(PcpuChunk &chunk, unsigned page_start, unsigned page_end);
  // pcpu_map_pages: maps the range for every CPU and sets the reverse
  // lookup. 0, or the mapping error with nothing of this call left mapped
  // (and a TLB flush).
  int pcpu_map_pages(PcpuChunk &chunk, std::span<Pfn> pages, unsigned page_start,
                     unsigned page_end);
  // pcpu_post_map_flush: cache flush after mapping (counted no-op).
  void pcpu_post_map_flush(PcpuChunk &chunk, unsigned page_start, unsigned page_end);
  // pcpu_populate_chunk: allocate and map the range for every CPU. 0, or
  // -ENOMEM with nothing changed but the temp array's existence.
  int pcpu_populate_chunk(PcpuChunk &chunk, unsigned page_start, unsigned page_end);
  // pcpu_depopulate_chunk: unmap and free the range for every CPU, without
  // a TLB flush (vmalloc flushes lazily when the chunk's areas are freed).
  // KernelBug if the temp array cannot be had (BUG_ON(!pages)).
  void pcpu_depopulate_chunk(PcpuChunk &chunk, unsigned page_start, unsigned page_end);
  // pcpu_create_chunk: a new chunk with its congruent areas; nullptr when
  // the chunk metadata or pcpu_get_vm_areas fails.
  PcpuChunk *pcpu_create_chunk();
  // pcpu_destroy_chunk: frees the areas and the chunk. A chunk that still
  // has populated pages or allocations is refused with a WARN (freeing its
  // areas would leak the pages); false then.
  bool pcpu_destroy_chunk(PcpuChunk *chunk);
  // pcpu_chunk_addr_search: the chunk whose mapped page holds addr, through
  // the page's reverse lookup; nullptr when addr is not a percpu page.
  PcpuChunk *pcpu_chunk_addr_search(u64 addr);

  // ---- mm/percpu.c -------------------------------------------------------------------
  // __alloc_percpu: a percpu pointer to size zeroed bytes per CPU, or 0.
  // Size 0 or above unit_size, or align not a power of two or above
  // PAGE_SIZE: WARN, 0, nothing changed.
  u64 __alloc_percpu(u64 size, u64 align);
  u64 alloc_percpu(u64 size, u64 align) { return __alloc_percpu(size, align); }
  // free_percpu: releases the allocation at ptr; NULL is a no-op; a pointer
  // that is not a live allocation's start WARNs and changes nothing. An
  // emptied non-first chunk is reclaimed by the queued balance work.
  void free_percpu(u64 ptr);
  // per_cpu_ptr: cpu's copy of the percpu pointer ptr; an offline CPU WARNs
  // and gives 0.
  u64 per_cpu_ptr(u64 ptr, unsigned cpu);
  // pcpu_balance_workfn: depopulates and destroys every empty chunk except
  // the first (oldest) live one.
  void pcpu_balance_workfn();

  // ---- introspection, invariants, hashing ------------------------------------------
  const std::map<u64, std::unique_ptr<PcpuChunk>> &chunks() const { return chunks_; }
  PcpuChunk *chunk_by_id(u64 id);
  // The temp array as it is now (empty before the first pcpu_get_pages).
  std::span<const Pfn> temp_pages() const { return pages_; }
  const PcpuFlushStats &flush_stats() const { return flushes_; }
  // The chunk invariants above; first violation or empty.
  std::string check() const;
  void hash_into(StateHasher &h) const;

private:
  bool valid_range(const char *fn, unsigned page_start, unsigned page_end) const;
  void require_temp_array(const char *fn, std::span<Pfn> pages) const;
  // The lowest aligned offset where size bytes fit in chunk, or nullopt.
  std::optional<u64> find_fit(const PcpuChunk &chunk, u64 size, u64 align) const;
  // Populates the unpopulated runs of [page_start, page_end); on failure
  // depopulates the runs it populated and returns the error.
  int populate_range(PcpuChunk &chunk, unsigned page_start, unsigned page_end);
  bool is_first_chunk(const PcpuChunk &chunk) const;
  std::string check_chunk(const PcpuChunk &chunk, std::map<Pfn, u64> &frames) const;

  Machine &m_;
  Vmalloc &v_;
  PcpuLayout layout_;
  std::vector<Pfn> pages_; // the temp array; empty until pcpu_get_pages allocates it
  std::map<u64, std::unique_ptr<PcpuChunk>> chunks_; // by id: creation order
  u64 next_chunk_id_ = 1;
  PcpuFlushStats flushes_;
};

} // namespace vmcheck
