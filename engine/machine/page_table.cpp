#include "machine/page_table.h"

#include "machine/diag.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cstdio>
#include <cstring>
#include <span>

namespace vmcheck {

namespace {

// Intermediate entries grant everything; the leaf alone decides protection,
// so a walk's permission check needs to look at one entry only.
constexpr u64 kTableEntryBits =
    _PAGE_PRESENT | _PAGE_RW | _PAGE_USER | _PAGE_ACCESSED | _PAGE_DIRTY;
constexpr unsigned kEntries = PTRS_PER_TABLE;
constexpr unsigned kKernelFirst = kEntries / 2; // top-level index of the kernel half

// A copy of (part of) a table. Not zeroed: every use reads into it with
// read_table the range it then looks at (zeroing 4 KiB per table read was a
// tenth of a fuzz run).
using TableBuf = std::array<u64, kEntries>;

std::string hex(u64 v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

u64 slot_of(Pfn table, unsigned i) {
  return (table << PAGE_SHIFT) + u64{i} * sizeof(u64);
}
Pfn entry_pfn(u64 e) {
  return (e & PTE_PFN_MASK) >> PAGE_SHIFT;
}
bool present(u64 e) {
  return (e & _PAGE_PRESENT) != 0;
}
// Size of the range one entry at `level` covers (level 1 = one 4 KiB page).
u64 entry_span(unsigned level) {
  return u64{1} << (PAGE_SHIFT + 9 * (level - 1));
}
bool is_huge_leaf(u64 e, unsigned level) {
  return level == 2 && present(e) && (e & _PAGE_PSE);
}

// Entry i of a table's bytes (a frame's buffer or a TableBuf).
u64 entry_at(const std::uint8_t *table, unsigned i) {
  u64 v;
  std::memcpy(&v, table + std::size_t{i} * sizeof(u64), sizeof v);
  return v;
}

// Entries per group of PhysMem::frame_nonzero_groups.
constexpr unsigned kGroupEntries = PhysMem::kGroupBytes / sizeof(u64);
static_assert(kEntries == 64 * kGroupEntries);

// The groups (bits of TableView::groups) that hold entries of [lo, hi].
std::uint64_t groups_between(unsigned lo, unsigned hi) {
  return (~std::uint64_t{0} << (lo / kGroupEntries)) &
         (~std::uint64_t{0} >> (63 - hi / kGroupEntries));
}

} // namespace

// The index of the first present entry of `table` in [i, hi], or hi + 1.
// Most of a table is empty: the groups of entries that are all zero are
// passed over by their bit in `groups`, without reading them.
unsigned PageTables::next_present(const TableView &table, unsigned i, unsigned hi) {
  while (i <= hi) {
    const std::uint64_t from_here = table.groups >> (i / kGroupEntries);
    if (from_here == 0)
      return hi + 1;
    if (const unsigned skip = static_cast<unsigned>(std::countr_zero(from_here)); skip != 0) {
      i = (i / kGroupEntries + skip) * kGroupEntries;
      continue;
    }
    for (const unsigned group_last = std::min(hi, i | (kGroupEntries - 1)); i <= group_last; ++i)
      if (present(entry_at(table.bytes, i)))
        return i;
  }
  return hi + 1;
}

template <typename Fn>
void PageTables::for_each_present(const TableView &table, unsigned lo, unsigned hi, Fn &&fn) {
  for (std::uint64_t groups = table.groups & groups_between(lo, hi); groups != 0;
       groups &= groups - 1) {
    const unsigned g = static_cast<unsigned>(std::countr_zero(groups)) * kGroupEntries;
    const unsigned last = std::min(hi, g + kGroupEntries - 1);
    for (unsigned i = std::max(lo, g); i <= last; ++i)
      if (const u64 v = entry_at(table.bytes, i); present(v))
        fn(i, v);
  }
}

PageTables::PageTables(PhysMem &mem, PageAllocator &alloc, DiagLog &diag, unsigned levels)
    : mem_(mem), alloc_(alloc), diag_(diag), levels_(levels == 5 ? 5 : 4),
      va_bits_(levels == 5 ? 57 : 48) {}

unsigned PageTables::index(u64 va, unsigned level) const {
  return static_cast<unsigned>((va >> (PAGE_SHIFT + 9 * (level - 1))) & (kEntries - 1));
}

u64 PageTables::sign_extend(u64 va) const {
  const unsigned shift = 64 - va_bits_;
  return static_cast<u64>(static_cast<std::int64_t>(va << shift) >> shift);
}

bool PageTables::canonical(u64 va) const {
  return sign_extend(va) == va;
}

bool PageTables::is_kernel_va(u64 va) const {
  return index(va, levels_) >= kKernelFirst;
}

// Table pages come from node 0: the kernel's own tables are node-agnostic
// and one fixed node keeps placement independent of which CPU mapped.
std::optional<Pfn> PageTables::alloc_table() {
  auto pfn = alloc_.alloc_pages_node(0, GFP_KERNEL | __GFP_ZERO, 0, PageOwner::PageTable);
  if (pfn)
    ++table_pages_;
  return pfn;
}

void PageTables::free_table(Pfn table) {
  alloc_.free_pages(table, 0);
  --table_pages_;
}

bool PageTables::init() {
  if (kernel_root_ != 0)
    return true;
  auto root = alloc_table();
  if (!root)
    return false;
  kernel_root_ = *root;
  return true;
}

std::optional<Pfn> PageTables::create_root() {
  auto root = alloc_table();
  if (!root)
    return std::nullopt;
  TableBuf k;
  read_table(kernel_root_, kKernelFirst, kEntries - 1, k.data());
  for (unsigned i = kKernelFirst; i < kEntries; ++i)
    if (k[i - kKernelFirst] != 0)
      mem_.write_u64(slot_of(*root, i), k[i - kKernelFirst]);
  roots_.push_back(*root);
  return root;
}

void PageTables::destroy_root(Pfn root) {
  auto it = std::find(roots_.begin(), roots_.end(), root);
  if (it == roots_.end()) {
    diag_.warn("destroy_root", "not a registered user root", root << PAGE_SHIFT);
    return;
  }
  TableBuf e;
  read_table(root, 0, kKernelFirst - 1, e.data());
  u64 leaves = 0;
  for (unsigned i = 0; i < kKernelFirst; ++i)
    if (present(e[i]))
      leaves += free_subtree(entry_pfn(e[i]), levels_ - 1);
  if (leaves != 0)
    diag_.warn("destroy_root", std::to_string(leaves) + " user mappings still present",
               root << PAGE_SHIFT);
  roots_.erase(it);
  free_table(root);
}

// Frees a table and everything below it; returns the present leaves it held.
u64 PageTables::free_subtree(Pfn table, unsigned level) {
  TableBuf e;
  read_table(table, 0, kEntries - 1, e.data());
  u64 leaves = 0;
  for (unsigned i = 0; i < kEntries; ++i) {
    if (!present(e[i]))
      continue;
    if (level == 1 || is_huge_leaf(e[i], level))
      ++leaves;
    else
      leaves += free_subtree(entry_pfn(e[i]), level - 1);
  }
  free_table(table);
  return leaves;
}

void PageTables::sync_kernel_entry(unsigned top_index, u64 value) {
  for (Pfn r : roots_)
    mem_.write_u64(slot_of(r, top_index), value);
}

void PageTables::read_table(Pfn table, unsigned lo, unsigned hi, u64 *out) const {
  std::span<std::uint8_t> bytes(reinterpret_cast<std::uint8_t *>(out), (hi - lo + 1) * sizeof(u64));
  mem_.read(slot_of(table, lo), bytes);
}

bool PageTables::known_empty(Pfn table) const {
  return mem_.frame_nonzero_groups(table) == 0;
}

PageTables::TableView PageTables::view(Pfn table, TableBuf &buf, bool snapshot) const {
  const PhysMem::FrameView f = mem_.frame_view(table);
  if (!snapshot && f.bytes != nullptr)
    return {f.bytes, f.nonzero_groups};
  read_table(table, 0, kEntries - 1, buf.data());
  return {reinterpret_cast<const std::uint8_t *>(buf.data()), f.nonzero_groups};
}

int PageTables::descend_alloc(Pfn root, u64 va, unsigned level, Pfn *table) {
  const bool kernel = is_kernel_va(va);
  Pfn t = resolve(root);
  for (unsigned l = levels_; l > level; --l) {
    // The kernel half belongs to init_mm: new top-level kernel entries are
    // made there and mirrored, so every root keeps an identical copy.
    if (l == levels_ && kernel)
      t = kernel_root_;
    const unsigned i = index(va, l);
    const u64 slot = slot_of(t, i);
    u64 e = mem_.read_u64(slot);
    if (!present(e)) {
      auto child = alloc_table();
      if (!child)
        return -ENOMEM;
      e = (*child << PAGE_SHIFT) | kTableEntryBits;
      mem_.write_u64(slot, e);
      if (l == levels_ && kernel)
        sync_kernel_entry(i, e);
    } else if (is_huge_leaf(e, l)) {
      return -EBUSY;
    }
    t = entry_pfn(e);
  }
  *table = t;
  return 0;
}

int PageTables::map_page(Pfn root, u64 va, Pfn pfn, pgprot_t prot) {
  if (!canonical(va) || !page_aligned(va)) {
    diag_.warn("map_page", "non-canonical or unaligned address", va);
    return -EINVAL;
  }
  Pfn table = 0;
  if (int err = descend_alloc(root, va, 1, &table); err != 0) {
    if (err == -EBUSY)
      diag_.warn("map_page", "huge PMD mapping covers the address", va);
    return err;
  }
  const u64 slot = slot_of(table, index(va, 1));
  if (present(mem_.read_u64(slot))) {
    diag_.warn("map_page", "PTE already present", va);
    return -EBUSY;
  }
  set_leaf(slot, pfn, prot);
  return 0;
}

int PageTables::map_huge(Pfn root, u64 va, Pfn pfn, pgprot_t prot) {
  if (!canonical(va) || (va & (PMD_SIZE - 1)) != 0 || ((pfn << PAGE_SHIFT) & (PMD_SIZE - 1)) != 0) {
    diag_.warn("map_huge", "non-canonical or not 2 MiB aligned", va);
    return -EINVAL;
  }
  Pfn table = 0;
  if (int err = descend_alloc(root, va, 2, &table); err != 0)
    return err;
  const u64 slot = slot_of(table, index(va, 2));
  const u64 old = mem_.read_u64(slot);
  if (present(old)) {
    diag_.warn("map_huge",
               (old & _PAGE_PSE) ? "PMD already present" : "PTE table present under the PMD", va);
    return -EBUSY;
  }
  mem_.write_u64(slot, ((pfn << PAGE_SHIFT) & PTE_PFN_MASK) | (prot & ~PTE_PFN_MASK) | _PAGE_PSE);
  return 0;
}

std::optional<Pfn> PageTables::ensure_pte_table(Pfn root, u64 va) {
  if (!canonical(va))
    return std::nullopt;
  Pfn table = 0;
  if (int err = descend_alloc(root, va, 1, &table); err != 0) {
    if (err == -EBUSY)
      diag_.warn("ensure_pte_slot", "huge PMD mapping covers the address", va);
    return std::nullopt;
  }
  return table;
}

std::optional<u64> PageTables::ensure_pte_slot(Pfn root, u64 va) {
  const std::optional<Pfn> table = ensure_pte_table(root, va);
  if (!table)
    return std::nullopt;
  return slot_of(*table, index(va, 1));
}

u64 PteSlots::slot(std::size_t i) const {
  const u64 va = start + u64{i} * PAGE_SIZE;
  return slot_of(tables[(va >> PMD_SHIFT) - (start >> PMD_SHIFT)],
                 static_cast<unsigned>((va >> PAGE_SHIFT) & (kEntries - 1)));
}

bool PageTables::ensure_pte_slots(Pfn root, u64 start, u64 end, PteSlots &slots) {
  slots = PteSlots{start, 0, {}};
  for (u64 va = start; va < end;) {
    const std::optional<Pfn> table = ensure_pte_table(root, va);
    if (!table)
      return false;
    slots.tables.push_back(*table);
    va = std::min(end, (va | (PMD_SIZE - 1)) + 1);
    slots.count = (va - start) >> PAGE_SHIFT;
  }
  return true;
}

u64 PageTables::clear(Pfn root, u64 va) {
  if (!canonical(va))
    return 0;
  Pfn t = resolve(root);
  for (unsigned l = levels_; l >= 1; --l) {
    const u64 slot = slot_of(t, index(va, l));
    const u64 e = mem_.read_u64(slot);
    if (l == 1 || is_huge_leaf(e, l)) {
      if (e != 0)
        mem_.write_u64(slot, 0);
      return e;
    }
    if (!present(e))
      return 0;
    t = entry_pfn(e);
  }
  return 0;
}

void PageTables::set_entry(u64 slot_pa, u64 value) {
  mem_.write_u64(slot_pa, value);
}

PteRef PageTables::walk(Pfn root, u64 va) const {
  if (!canonical(va) || kernel_root_ == 0)
    return {};
  Pfn t = resolve(root);
  for (unsigned l = levels_; l >= 1; --l) {
    const u64 slot = slot_of(t, index(va, l));
    const u64 e = mem_.read_u64(slot);
    if (l == 1 || is_huge_leaf(e, l))
      return {slot, e, l};
    if (!present(e))
      return l == 2 ? PteRef{slot, e, 2} : PteRef{};
    t = entry_pfn(e);
  }
  return {};
}

bool PageTables::leaf_range(u64 start, u64 end, u64 &first, u64 &last) const {
  if (end <= start || kernel_root_ == 0)
    return false;
  first = start;
  last = end - 1;
  // Clip the ends out of the non-canonical hole so indices stay monotonic.
  const u64 user_last = (u64{1} << (va_bits_ - 1)) - 1;
  if (!canonical(first))
    first = sign_extend(user_last + 1);
  if (!canonical(last))
    last = user_last;
  return first <= last;
}

void PageTables::for_each_leaf(Pfn root, u64 start, u64 end,
                               const std::function<void(u64, const PteRef &)> &fn) const {
  u64 first = 0, last = 0;
  if (leaf_range(start, end, first, last))
    leaves_in<true>(resolve(root), levels_, 0, first, last, fn);
}

std::optional<u64> PageTables::first_leaf_from(Pfn root, u64 start, u64 end) const {
  std::optional<u64> found;
  u64 first = 0, last = 0;
  // Leaves come in address order: the first that starts inside is the one.
  auto note = [&found, start](u64 va, const PteRef &) {
    if (!found && va >= start)
      found = va;
  };
  if (leaf_range(start, end, first, last))
    leaves_in<false>(resolve(root), levels_, 0, first, last, note);
  return found;
}

std::size_t PageTables::mapped_prefix(Pfn root, u64 va, std::span<const Pfn> pfns) const {
  TableBuf buf;
  std::size_t i = 0;
  while (i < pfns.size()) {
    const u64 cur = va + u64{i} * PAGE_SIZE;
    const PteRef r = walk(root, cur);
    if (!r.present())
      return i;
    if (r.level != 1) {
      // A huge leaf: it matches where it starts, and every later page it
      // covers is a page no leaf starts at.
      if ((cur & (r.page_size() - 1)) != 0 || r.pfn() != pfns[i])
        return i;
      ++i;
      continue;
    }
    // The rest of this PTE table, compared entry by entry.
    const TableView t = view(r.slot_pa >> PAGE_SHIFT, buf, false);
    // Mismatches are OR-ed over the whole stretch first (no branch per
    // entry); only a stretch that has one is searched for the first.
    const std::uint8_t *entries = t.bytes + std::size_t{index(cur, 1)} * sizeof(u64);
    const std::size_t n = std::min<std::size_t>(kEntries - index(cur, 1), pfns.size() - i);
    const auto mismatch = [&](std::size_t k) {
      const u64 v = entry_at(entries, static_cast<unsigned>(k));
      return (~v & _PAGE_PRESENT) | (entry_pfn(v) ^ pfns[i + k]);
    };
    u64 any = 0;
    for (std::size_t k = 0; k < n; ++k)
      any |= mismatch(k);
    if (any != 0)
      for (std::size_t k = 0;; ++k)
        if (mismatch(k) != 0)
          return i + k;
    i += n;
  }
  return i;
}

template <bool Snapshot, typename Fn>
void PageTables::leaves_in(Pfn table, unsigned level, u64 base, u64 first, u64 last, Fn &fn) const {
  const u64 span = entry_span(level);
  unsigned lo = 0, hi = kEntries - 1;
  if (level == levels_) {
    lo = index(first, level);
    hi = index(last, level);
  } else {
    if (first > base)
      lo = index(first, level);
    if (last < base + (span * kEntries - 1))
      hi = index(last, level);
  }
  if (known_empty(table))
    return;
  // With Snapshot, a copy of the entries: fn may clear leaves of this very
  // table. Without, fn only reads and the entries are read in place.
  TableBuf buf;
  const TableView e = view(table, buf, Snapshot);
  if (level == 1) {
    // A PTE table, where nearly every leaf is: each present entry is a
    // 4 KiB leaf below `base`, nothing to descend into.
    for_each_present(e, lo, hi, [&](unsigned i, u64 v) {
      fn(base + u64{i} * PAGE_SIZE, PteRef{slot_of(table, i), v, 1});
    });
    return;
  }
  for_each_present(e, lo, hi, [&](unsigned i, u64 v) {
    const u64 va = level == levels_ ? sign_extend(u64{i} * span) : base + u64{i} * span;
    if (is_huge_leaf(v, level))
      fn(va, PteRef{slot_of(table, i), v, level});
    else if (!known_empty(entry_pfn(v))) // most PTE tables of a long range: no call
      leaves_in<Snapshot>(entry_pfn(v), level - 1, va, first, last, fn);
  });
}

void PageTables::free_empty_tables(Pfn root, u64 start, u64 end) {
  if (end <= start || kernel_root_ == 0)
    return;
  const u64 user_last = (u64{1} << (va_bits_ - 1)) - 1;
  if (start > user_last)
    return;
  free_empty_in(resolve(root), levels_, 0, start, std::min(end - 1, user_last));
}

// Frees, below `table`, every table that is empty and lies wholly inside
// [first, last]; returns whether `table` itself ended up empty.
bool PageTables::free_empty_in(Pfn table, unsigned level, u64 base, u64 first, u64 last) {
  const u64 span = entry_span(level);
  unsigned lo = 0, hi = kEntries - 1;
  if (first > base)
    lo = index(first, level);
  if (last < base + (span * kEntries - 1))
    hi = index(last, level);
  TableBuf e;
  read_table(table, 0, kEntries - 1, e.data());
  for (unsigned i = lo; i <= hi; ++i) {
    const u64 v = e[i];
    if (!present(v) || is_huge_leaf(v, level))
      continue;
    const Pfn child = entry_pfn(v);
    const u64 cva = base + u64{i} * span;
    bool child_empty;
    if (level - 1 >= 2) {
      child_empty = free_empty_in(child, level - 1, cva, first, last);
    } else {
      TableBuf c;
      child_empty = known_empty(child);
      if (!child_empty) {
        read_table(child, 0, kEntries - 1, c.data());
        child_empty = std::all_of(c.begin(), c.end(), [](u64 x) { return x == 0; });
      }
    }
    if (child_empty && cva >= first && cva + (span - 1) <= last) {
      mem_.write_u64(slot_of(table, i), 0);
      free_table(child);
      e[i] = 0;
    }
  }
  return std::all_of(e.begin(), e.end(), [](u64 x) { return x == 0; });
}

std::string PageTables::check_table(Pfn table, unsigned level, unsigned lo, unsigned hi,
                                    std::vector<Pfn> &seen) const {
  if (!mem_.pfn_valid(table))
    return "table pfn " + hex(table) + " outside memory";
  const Page &p = mem_.peek(table);
  if (p.owner != PageOwner::PageTable || p.refcount < 1)
    return "table pfn " + hex(table) + " has owner " + page_owner_name(p.owner) + " refcount " +
           std::to_string(p.refcount);
  seen.push_back(table);
  if (known_empty(table))
    return {};
  TableBuf buf;
  const TableView e = view(table, buf, false);
  if (level == 1) {
    // A PTE table, the bulk of the tables: only a failing one is searched
    // again for the message below.
    bool bad = false;
    for_each_present(e, lo, hi, [&](unsigned, u64 v) { bad |= !mem_.pfn_valid(entry_pfn(v)); });
    if (!bad)
      return {};
  }
  if (level == 2) {
    // A PMD table: every PTE table below it checked on the fast path in
    // one sweep; on any doubt, the sweep below redoes it and words the
    // failure.
    const std::size_t mark = seen.size();
    bool ok = true;
    for_each_present(e, lo, hi, [&](unsigned, u64 v) {
      if (!mem_.pfn_valid(entry_pfn(v)))
        ok = false;
      else if (!is_huge_leaf(v, level) && (ok &= pte_table_ok(entry_pfn(v))))
        seen.push_back(entry_pfn(v));
    });
    if (ok)
      return {};
    seen.resize(mark);
  }
  for (unsigned i = next_present(e, lo, hi); i <= hi; i = next_present(e, i + 1, hi)) {
    const u64 v = entry_at(e.bytes, i);
    if (!mem_.pfn_valid(entry_pfn(v)))
      return "level " + std::to_string(level) + " entry " + std::to_string(i) + " of table pfn " +
             hex(table) + " points outside memory: " + hex(v);
    if (level == 1 || is_huge_leaf(v, level))
      continue;
    // Most tables are PTE tables that pass: those are checked here without
    // a call; any other goes through check_table, which words the failure.
    if (level == 2 && pte_table_ok(entry_pfn(v))) {
      seen.push_back(entry_pfn(v));
      continue;
    }
    if (auto err = check_table(entry_pfn(v), level - 1, 0, kEntries - 1, seen); !err.empty())
      return err;
  }
  return {};
}

bool PageTables::pte_table_ok(Pfn table) const {
  if (!mem_.pfn_valid(table))
    return false;
  const PhysMem::FrameView f = mem_.frame_view(table);
  if (f.page->owner != PageOwner::PageTable || f.page->refcount < 1)
    return false;
  const std::uint64_t groups = f.nonzero_groups;
  if (groups == 0)
    return true;
  const std::uint8_t *bytes = f.bytes;
  if (bytes == nullptr)
    return false; // uniform non-zero bytes: rare, left to check_table
  // Every present entry inside memory, tested a group at a time without a
  // branch per entry.
  const u64 min_pfn = mem_.min_pfn(), pages = mem_.total_pages();
  u64 bad = 0;
  for (std::uint64_t rest = groups; rest != 0; rest &= rest - 1) {
    const unsigned first = static_cast<unsigned>(std::countr_zero(rest)) * kGroupEntries;
    for (unsigned k = 0; k < kGroupEntries; ++k) {
      const u64 v = entry_at(bytes, first + k);
      bad |= (v & _PAGE_PRESENT) & u64{entry_pfn(v) - min_pfn >= pages};
    }
  }
  return bad == 0;
}

std::string PageTables::check() const {
  if (kernel_root_ == 0)
    return table_pages_ == 0 ? std::string{} : "table pages counted without a kernel root";
  std::vector<Pfn> seen;
  if (auto err = check_table(kernel_root_, levels_, 0, kEntries - 1, seen); !err.empty())
    return err;
  TableBuf k, u;
  read_table(kernel_root_, kKernelFirst, kEntries - 1, k.data());
  for (Pfn r : roots_) {
    if (auto err = check_table(r, levels_, 0, kKernelFirst - 1, seen); !err.empty())
      return err;
    read_table(r, kKernelFirst, kEntries - 1, u.data());
    for (unsigned i = 0; i < kKernelFirst; ++i)
      if (u[i] != k[i])
        return "root pfn " + hex(r) + " kernel entry " + std::to_string(i + kKernelFirst) + " is " +
               hex(u[i]) + ", init_mm has " + hex(k[i]);
  }
  // Tables are mostly allocated in the order the walk meets them.
  if (!std::is_sorted(seen.begin(), seen.end()))
    std::sort(seen.begin(), seen.end());
  if (auto dup = std::adjacent_find(seen.begin(), seen.end()); dup != seen.end())
    return "table pfn " + hex(*dup) + " is linked twice";
  if (seen.size() != table_pages_)
    return "table_pages() is " + std::to_string(table_pages_) + " but " +
           std::to_string(seen.size()) + " table pages are reachable";
  return {};
}

void PageTables::hash_table(StateHasher &h, Pfn table, unsigned level, unsigned lo,
                            unsigned hi) const {
  // An empty table hashes as its tag alone, read or not.
  if (!known_empty(table)) {
    TableBuf e;
    read_table(table, lo, hi, e.data());
    for (unsigned i = lo; i <= hi; ++i) {
      const u64 v = e[i - lo];
      if (v == 0)
        continue;
      h.add((u64{level} << 16) | i);
      h.add(v);
      if (level > 1 && present(v) && !is_huge_leaf(v, level))
        hash_table(h, entry_pfn(v), level - 1, 0, kEntries - 1);
    }
  }
  h.tag(0x7ab1e0 + level);
}

void PageTables::hash_into(StateHasher &h) const {
  h.tag(0x9a6e7ab1);
  h.add(levels_);
  h.add(kernel_root_);
  h.add(table_pages_);
  h.add(roots_.size());
  if (kernel_root_ == 0)
    return;
  hash_table(h, kernel_root_, levels_, 0, kEntries - 1);
  for (Pfn r : roots_) {
    h.add(r);
    hash_table(h, r, levels_, 0, kKernelFirst - 1);
  }
}

} // namespace vmcheck
