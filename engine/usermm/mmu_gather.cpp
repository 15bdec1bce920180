#include "usermm/mmu_gather.h"

#include <algorithm>

namespace vmcheck {

MmuGather::MmuGather(Machine &m, Pfn root, u64 start, u64 end)
    : m_(m), root_(root), start_(start), end_(end), range_start_(~u64{0}), range_end_(0) {}

void MmuGather::remove_tlb_entry(u64 va) {
  range_start_ = std::min(range_start_, va & PAGE_MASK);
  range_end_ = std::max(range_end_, (va & PAGE_MASK) + PAGE_SIZE);
}

void MmuGather::remove_page(Pfn pfn) {
  pages_.push_back(pfn);
  if (pages_.size() >= kBatchPages)
    flush_mmu();
}

void MmuGather::flush_mmu() {
  if (range_start_ < range_end_)
    m_.mmu().flush_tlb_mm_range(root_, range_start_, range_end_);
  range_start_ = ~u64{0};
  range_end_ = 0;
  // Only now can no CPU reach these frames: drop the PTEs' references.
  std::vector<Pfn> batch;
  batch.swap(pages_);
  for (Pfn pfn : batch)
    m_.pages().put_page(pfn);
}

void MmuGather::finish() {
  if (finished_)
    return;
  flush_mmu();
  finished_ = true;
}

} // namespace vmcheck
