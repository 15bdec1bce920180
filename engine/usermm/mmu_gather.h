// struct mmu_gather: the batch of pages a zap has taken out of the page
// tables. A page leaves the batch (put_page) only after the TLB flush that
// covers every PTE removed so far, so no CPU can still reach a freed frame
// through a cached translation.
#pragma once

#include "machine/machine.h"

#include <vector>

namespace vmcheck {

class MmuGather {
public:
  // Pages held before a forced intermediate flush (the kernel's batch pages
  // run out the same way; one flush then frees the whole batch).
  static constexpr std::size_t kBatchPages = 512;

  // tlb_gather_mmu(): a gather for the address space rooted at `root`
  // covering [start, end) (fullmm when the whole space goes, as in mmput).
  MmuGather(Machine &m, Pfn root, u64 start, u64 end);
  MmuGather(const MmuGather &) = delete;
  MmuGather &operator=(const MmuGather &) = delete;

  // tlb_remove_tlb_entry(): a PTE at va was cleared; widens the flush range.
  void remove_tlb_entry(u64 va);
  // __tlb_remove_page(): the PTE's page reference, dropped after the flush.
  // A full batch is flushed and freed at once.
  void remove_page(Pfn pfn);
  // tlb_flush_mmu(): flush the accumulated range on every CPU, then free
  // the batch.
  void flush_mmu();
  // tlb_finish_mmu(): the final flush_mmu(). Idempotent.
  void finish();

  bool finished() const { return finished_; }
  const std::vector<Pfn> &pending_pages() const { return pages_; }
  // Range still to flush; empty (start >= end) when nothing is pending.
  u64 flush_start() const { return range_start_; }
  u64 flush_end() const { return range_end_; }
  u64 start() const { return start_; }
  u64 end() const { return end_; }
  Pfn root() const { return root_; }

private:
  Machine &m_;
  Pfn root_;
  u64 start_, end_;
  // Invariant: every page in pages_ had its PTE cleared inside
  // [range_start_, range_end_) or before an earlier flush.
  u64 range_start_, range_end_;
  std::vector<Pfn> pages_;
  bool finished_ = false;
};

} // namespace vmcheck
