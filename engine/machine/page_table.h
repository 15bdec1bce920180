// x86-64 page tables stored in emulated page frames (4-level by default,
// 5-level by config). Table pages come from the page allocator with owner
// PageTable and can fail to allocate (FailPoint::PageTable).
//
// The kernel half (top-level indices 256..511) is shared by every address
// space: when init_mm gains a top-level kernel entry it is copied into every
// registered root, as x86's sync_global_pgds does, so a kernel mapping made
// after an mm was created is visible through it.
//
// Entry format is the hardware's (vmcheck/abi.h _PAGE_* bits, PFN in bits
// 12..51). Intermediate entries are PRESENT|RW|USER|ACCESSED|DIRTY (the
// leaf decides the protection); a PMD entry with _PAGE_PSE is a 2 MiB leaf.
#pragma once

#include "machine/page_alloc.h"
#include "machine/phys_mem.h"

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace vmcheck {

// Where a walk ended: the leaf entry and the physical address of its slot.
// A walk that stops above the PMD level (no PMD table) reports slot_pa 0,
// value 0 and level 0.
struct PteRef {
  u64 slot_pa = 0;    // physical address of the entry (0: no table reaches it)
  u64 value = 0;      // entry value (0 when none)
  unsigned level = 0; // 1 = PTE (4 KiB), 2 = PMD (2 MiB leaf or missing table below)
  bool present() const { return (value & _PAGE_PRESENT) != 0; }
  Pfn pfn() const { return (value & PTE_PFN_MASK) >> PAGE_SHIFT; }
  u64 page_size() const { return level == 2 ? PMD_SIZE : PAGE_SIZE; }
};

class DiagLog;

// The PTE slots of a page range (alloc_vm_area's ptes): one PTE table per
// 2 MiB the range touches, so the slot of each page is computed, not
// stored (a 4 GiB area has a million).
struct PteSlots {
  u64 start = 0;           // page-aligned VA of page 0
  u64 count = 0;           // pages with a slot
  std::vector<Pfn> tables; // the PTE table of each 2 MiB, from start's on
  std::size_t size() const { return count; }
  // Physical address of page i's PTE, i < size().
  u64 slot(std::size_t i) const;
};

class PageTables {
public:
  // `diag` receives the WARNs of refused mappings. levels: 4 or 5.
  PageTables(PhysMem &mem, PageAllocator &alloc, DiagLog &diag, unsigned levels);

  unsigned levels() const { return levels_; }
  // The kernel's root (init_mm.pgd). Created by init(); init() returns
  // false when the root page itself cannot be allocated.
  bool init();
  Pfn kernel_root() const { return kernel_root_; }
  // A new address space: own top-level page, kernel half shared. nullopt on
  // allocation failure. destroy_root() frees every user-half table and the
  // root (the user half's leaf PTEs must already be gone).
  std::optional<Pfn> create_root();
  void destroy_root(Pfn root);

  bool canonical(u64 va) const;
  bool is_kernel_va(u64 va) const; // upper half

  // Map one 4 KiB page: allocates missing tables (-ENOMEM when that fails,
  // leaving already-built tables in place as the kernel does). The entry
  // must be empty: an existing present entry is left alone, a WARN is
  // recorded and -EBUSY returned. `prot` carries the _PAGE_* bits.
  int map_page(Pfn root, u64 va, Pfn pfn, pgprot_t prot);
  // Map a 2 MiB leaf at the PMD level (va and pfn 2 MiB aligned).
  int map_huge(Pfn root, u64 va, Pfn pfn, pgprot_t prot);
  // Make sure the PTE table covering va exists (alloc_vm_area, apply_to_page_range);
  // returns the PTE slot's physical address or nullopt (-ENOMEM).
  std::optional<u64> ensure_pte_slot(Pfn root, u64 va);
  // ensure_pte_slot for every page of [start, end) (page aligned), in
  // address order, into `slots` (reset first): the same tables are
  // allocated in the same order, with one descent per PTE table. false on
  // the first failure (slots then holds the pages before it).
  bool ensure_pte_slots(Pfn root, u64 start, u64 end, PteSlots &slots);
  // Clear the leaf covering va (4 KiB PTE or 2 MiB PMD leaf); returns the old
  // entry (0 when nothing was mapped). Does NOT flush any TLB.
  u64 clear(Pfn root, u64 va);
  // Overwrite the leaf entry at an existing slot (mprotect, COW, mkwrite).
  void set_entry(u64 slot_pa, u64 value);
  // Map one 4 KiB page at a PTE slot ensure_pte_slot returned and nothing
  // is mapped at: the entry map_page would write.
  void set_leaf(u64 slot_pa, Pfn pfn, pgprot_t prot) {
    // Bit 7 of a 4 KiB PTE is PAT, not PSE: never let a huge prot leak into it.
    mem_.write_u64(slot_pa,
                   ((pfn << PAGE_SHIFT) & PTE_PFN_MASK) | (prot & ~PTE_PFN_MASK & ~_PAGE_PSE));
  }
  // The entry at a slot (the MMU re-reads a cached translation's PTE).
  u64 read_entry(u64 slot_pa) const { return mem_.read_u64(slot_pa); }

  // Walk without side effects.
  PteRef walk(Pfn root, u64 va) const;

  // Every present leaf in [start, end), in address order. fn may clear or
  // rewrite leaves but must not free tables.
  void for_each_leaf(Pfn root, u64 start, u64 end,
                     const std::function<void(u64 va, const PteRef &)> &fn) const;
  // The address of the first present leaf for_each_leaf(root, start, end)
  // would visit that starts at or above `start` (a huge leaf that begins
  // below it does not count); nullopt when there is none.
  std::optional<u64> first_leaf_from(Pfn root, u64 start, u64 end) const;
  // How many of pfns, from the first on, are mapped in order from va: the
  // first i for which no present leaf starts at va + i pages mapping
  // pfns[i] (a huge leaf counts where it starts), or pfns.size(). The PTE
  // tables are compared in place, one descent per table.
  std::size_t mapped_prefix(Pfn root, u64 va, std::span<const Pfn> pfns) const;
  // Free the user-half tables that map nothing in [start, end) (free_pgtables).
  void free_empty_tables(Pfn root, u64 start, u64 end);

  u64 table_pages() const { return table_pages_; }
  // Structural checks: every table page has owner PageTable, kernel halves
  // identical in all roots, no entry points outside memory.
  std::string check() const;
  void hash_into(StateHasher &h) const;

private:
  unsigned index(u64 va, unsigned level) const; // level: 1 = PTE .. levels_ = top
  std::optional<Pfn> alloc_table();
  void free_table(Pfn table);
  void sync_kernel_entry(unsigned top_index, u64 value);
  Pfn resolve(Pfn root) const { return root == 0 ? kernel_root_ : root; }
  u64 sign_extend(u64 va) const;
  // Descends from the root to the table at `level`, allocating missing
  // tables. 0 on success with *table set; -ENOMEM, or -EBUSY when a huge leaf
  // sits in the way.
  int descend_alloc(Pfn root, u64 va, unsigned level, Pfn *table);
  // The PTE table covering va, built if missing; nullopt (a WARN when a huge
  // leaf is in the way) when it cannot be.
  std::optional<Pfn> ensure_pte_table(Pfn root, u64 va);
  void read_table(Pfn table, unsigned lo, unsigned hi, u64 *out) const;
  // A table's entries as a sweep reads them: all of their bytes, and which
  // groups of eight entries hold a non-zero one (bit g: entries 8g..8g+7,
  // PhysMem::frame_nonzero_groups).
  struct TableView {
    const std::uint8_t *bytes;
    std::uint64_t groups;
  };
  // The bytes are read in place from the frame when it has a host buffer
  // and `snapshot` is false (for sweeps that write nothing while they
  // read), else copied into `buf`.
  TableView view(Pfn table, std::array<u64, PTRS_PER_TABLE> &buf, bool snapshot) const;
  // The index of the first present entry of `table` in [i, hi], or hi + 1.
  static unsigned next_present(const TableView &table, unsigned i, unsigned hi);
  // fn(i, entry) for every present entry i of `table` in [lo, hi], in order.
  template <typename Fn>
  static void for_each_present(const TableView &table, unsigned lo, unsigned hi, Fn &&fn);
  // O(1): the table's frame holds only zero entries.
  bool known_empty(Pfn table) const;
  // The canonical [first, last] for_each_leaf walks, or false if empty.
  bool leaf_range(u64 start, u64 end, u64 &first, u64 &last) const;
  // Snapshot: fn may write to the tables, so each is copied before its
  // entries are visited.
  template <bool Snapshot, typename Fn>
  void leaves_in(Pfn table, unsigned level, u64 base, u64 first, u64 last, Fn &fn) const;
  bool free_empty_in(Pfn table, unsigned level, u64 base, u64 first, u64 last);
  u64 free_subtree(Pfn table, unsigned level);
  std::string check_table(Pfn table, unsigned level, unsigned lo, unsigned hi,
                          std::vector<Pfn> &seen) const;
  // Whether check_table(table, 1, 0, PTRS_PER_TABLE - 1, ...) would pass
  // (without adding the table to its `seen`): the fast path of check().
  bool pte_table_ok(Pfn table) const;
  void hash_table(StateHasher &h, Pfn table, unsigned level, unsigned lo, unsigned hi) const;

  PhysMem &mem_;
  PageAllocator &alloc_;
  DiagLog &diag_;
  unsigned levels_;
  unsigned va_bits_; // 48 or 57: bits above are copies of bit va_bits_ - 1
  Pfn kernel_root_ = 0;
  std::vector<Pfn> roots_; // user roots, creation order
  u64 table_pages_ = 0;
};

} // namespace vmcheck
