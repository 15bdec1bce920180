// mm_struct and VMA management: creation and teardown, mmap / munmap /
// mprotect for the harness, VMA split and merge.
#include "usermm/internal.h"
#include "usermm/usermm.h"

#include <algorithm>

namespace vmcheck {

using usermm_detail::hex;
using usermm_detail::page_align_checked;

pgprot_t vm_get_page_prot(u64 vm_flags, bool writenotify) {
  if ((vm_flags & VM_ACCESS_FLAGS) == 0)
    return PAGE_PROTNONE_USER;
  pgprot_t prot = _PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED;
  if ((vm_flags & VM_WRITE) && (vm_flags & VM_SHARED) && !writenotify)
    prot |= _PAGE_RW;
  if (!(vm_flags & VM_EXEC))
    prot |= _PAGE_NX;
  return prot;
}

UserMm::UserMm(Machine &m, Vmalloc &vmalloc) : m_(m), vmalloc_(vmalloc) {}

u64 UserMm::user_top() const {
  return m_.pt().levels() == 5 ? USER_TOP_L5 : USER_TOP_L4;
}

void UserMm::warn(const std::string &fn, const std::string &reason, u64 addr) {
  m_.diag().warn(fn, reason, addr);
}

bool UserMm::range_ok(u64 addr, u64 len) const {
  return addr >= PAGE_SIZE && len != 0 && addr < user_top() && len <= user_top() - addr;
}

MmStruct *UserMm::find_mm(u64 id) {
  auto it = mms_.find(id);
  return it == mms_.end() ? nullptr : &it->second;
}

const MmStruct *UserMm::find_mm(u64 id) const {
  auto it = mms_.find(id);
  return it == mms_.end() ? nullptr : &it->second;
}

VmAreaStruct *UserMm::find_vma(u64 mm, u64 addr) {
  MmStruct *m = find_mm(mm);
  if (m == nullptr)
    return nullptr;
  auto it = m->vmas.upper_bound(addr);
  if (it != m->vmas.begin() && std::prev(it)->second.vm_end > addr)
    return &std::prev(it)->second;
  return it == m->vmas.end() ? nullptr : &it->second;
}

VmAreaStruct *UserMm::vma_by_id(u64 id) {
  for (auto &[mid, mm] : mms_)
    for (auto &[start, vma] : mm.vmas)
      if (vma.id == id)
        return &vma;
  return nullptr;
}

AddressSpace *UserMm::find_mapping(u64 id) {
  auto it = mappings_.find(id);
  return it == mappings_.end() ? nullptr : &it->second;
}

u64 UserMm::mm_create() {
  if (!m_.kmalloc_ok())
    return 0;
  auto root = m_.pt().create_root();
  if (!root)
    return 0;
  const u64 id = next_mm_id_++;
  mms_.emplace(id, MmStruct{id, *root, {}});
  return id;
}

int UserMm::mmput(u64 id) {
  MmStruct *mm = find_mm(id);
  if (mm == nullptr) {
    warn("mmput", "no mm " + std::to_string(id));
    return -EINVAL;
  }
  // exit_mmap: one full-mm gather, then the tables go.
  MmuGather tlb(m_, mm->pgd, 0, user_top());
  for (auto &[start, vma] : mm->vmas)
    unmap_single_vma(tlb, vma, vma.vm_start, vma.vm_end, nullptr);
  tlb.finish();
  mm->vmas.clear();
  m_.mmu().flush_tlb_mm_range(mm->pgd, 0, user_top());
  for (unsigned cpu = 0; cpu < m_.num_online_cpus(); ++cpu)
    if (m_.cpu(cpu).root == mm->pgd)
      m_.set_cpu_root(cpu, 0);
  m_.pt().destroy_root(mm->pgd);
  mms_.erase(id);
  release_unused_shmem();
  return 0;
}

u64 UserMm::file_create(u64 nr_pages) {
  if (nr_pages == 0 || nr_pages > (u64{1} << 32)) {
    warn("file_create", "file size " + std::to_string(nr_pages) + " pages is not in [1, 2^32]");
    return 0;
  }
  if (!m_.kmalloc_ok())
    return 0;
  const u64 id = next_mapping_id_++;
  mappings_.emplace(id, AddressSpace{id, nr_pages, false, {}});
  return id;
}

std::optional<u64> UserMm::get_unmapped_area(const MmStruct &mm, u64 len) const {
  u64 cand = MMAP_MIN_ADDR;
  for (const auto &[start, vma] : mm.vmas) {
    if (vma.vm_end <= cand)
      continue;
    if (vma.vm_start >= cand && vma.vm_start - cand >= len)
      return cand;
    cand = std::max(cand, vma.vm_end);
  }
  if (cand < user_top() && user_top() - cand >= len)
    return cand;
  return std::nullopt;
}

std::int64_t UserMm::mmap(u64 mm, u64 addr, u64 len, u64 flags) {
  return do_mmap(mm, addr, len, flags, 0, 0, "mmap");
}

std::int64_t UserMm::mmap_file(u64 mm, u64 addr, u64 len, u64 flags, u64 file, u64 pgoff) {
  if (file == 0) {
    warn("mmap_file", "no file");
    return -EINVAL;
  }
  return do_mmap(mm, addr, len, flags, file, pgoff, "mmap_file");
}

std::int64_t UserMm::do_mmap(u64 mmid, u64 addr, u64 len, u64 flags, u64 file, u64 pgoff,
                             const char *fn) {
  MmStruct *mm = find_mm(mmid);
  if (mm == nullptr) {
    warn(fn, "no mm " + std::to_string(mmid));
    return -EINVAL;
  }
  if (flags & ~VM_USER_MMAP_FLAGS) {
    warn(fn, "flags " + hex(flags & ~VM_USER_MMAP_FLAGS) + " cannot be requested");
    return -EINVAL;
  }
  if ((flags & (VM_PFNMAP | VM_MIXEDMAP)) == (VM_PFNMAP | VM_MIXEDMAP)) {
    warn(fn, "VM_PFNMAP and VM_MIXEDMAP together");
    return -EINVAL;
  }
  const bool device = (flags & (VM_IO | VM_PFNMAP | VM_MIXEDMAP)) != 0;
  if (file != 0 && device) {
    warn(fn, "a file mapping cannot carry driver flags");
    return -EINVAL;
  }
  u64 size = 0;
  if (len == 0 || !page_align_checked(len, &size)) {
    warn(fn, "length " + hex(len) + " is empty or wraps");
    return -EINVAL;
  }
  if (!page_aligned(addr)) {
    warn(fn, "address " + hex(addr) + " is not page aligned", addr);
    return -EINVAL;
  }
  if (addr != 0 && !range_ok(addr, size)) {
    warn(fn, "range " + hex(addr) + "+" + hex(size) + " is not inside the user half", addr);
    return -EINVAL;
  }
  if (file != 0) {
    const AddressSpace *as = find_mapping(file);
    if (as == nullptr || as->shmem) {
      warn(fn, "no file " + std::to_string(file));
      return -EINVAL;
    }
    if (pgoff > (~u64{0} >> PAGE_SHIFT) - (size >> PAGE_SHIFT)) {
      warn(fn, "page offset " + hex(pgoff) + " overflows");
      return -EINVAL;
    }
  }
  if (addr == 0) {
    auto where = get_unmapped_area(*mm, size);
    if (!where)
      return -ENOMEM;
    addr = *where;
  }
  const bool shmem = file == 0 && !device && (flags & VM_SHARED);
  // The vm_area_struct (and a shmem object's inode) before anything is
  // undone, so an allocation failure leaves the old mappings in place.
  if (!m_.kmalloc_ok() || (shmem && !m_.kmalloc_ok()))
    return -ENOMEM;
  if (int err = munmap(mmid, addr, size); err != 0)
    return err;
  VmAreaStruct vma;
  vma.id = next_vma_id_++;
  vma.mm = mmid;
  vma.vm_start = addr;
  vma.vm_end = addr + size;
  vma.vm_flags = flags | VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC;
  if (flags & VM_SHARED)
    vma.vm_flags |= VM_MAYSHARE;
  vma.device = device;
  if (file != 0) {
    vma.mapping = file;
    vma.vm_pgoff = pgoff;
  } else if (shmem) {
    const u64 id = next_mapping_id_++;
    mappings_.emplace(id, AddressSpace{id, size >> PAGE_SHIFT, true, {}});
    vma.mapping = id;
    vma.vm_pgoff = 0;
  } else {
    vma.vm_pgoff = addr >> PAGE_SHIFT;
  }
  vma.vm_page_prot = vm_get_page_prot(vma.vm_flags, file != 0);
  mm->vmas.emplace(addr, vma);
  const u64 at = merge_around(*mm, addr);
  return static_cast<std::int64_t>(mm->vmas.at(at).id);
}

bool UserMm::split_vma(MmStruct &mm, u64 vm_start, u64 addr) {
  VmAreaStruct &lower = mm.vmas.at(vm_start);
  if (addr <= lower.vm_start || addr >= lower.vm_end)
    return true;
  if (!m_.kmalloc_ok())
    return false;
  VmAreaStruct upper = lower;
  upper.id = next_vma_id_++;
  upper.vm_start = addr;
#ifdef VMCHECK_MUTANT_split_keeps_pgoff
  upper.vm_pgoff = lower.vm_pgoff; // mutant: the upper part maps the lower part's file pages
#else
  upper.vm_pgoff = lower.vm_pgoff + ((addr - lower.vm_start) >> PAGE_SHIFT);
#endif
  lower.vm_end = addr;
  mm.vmas.emplace(addr, upper);
  return true;
}

bool UserMm::can_merge(const VmAreaStruct &prev, const VmAreaStruct &next) const {
#ifdef VMCHECK_MUTANT_merge_ignores_pgoff
  // mutant: VMAs of one file merge whatever pages of it they map
  return prev.vm_end == next.vm_start && prev.vm_flags == next.vm_flags &&
         !(prev.vm_flags & VM_SPECIAL) && prev.device == next.device &&
         prev.mapping == next.mapping;
#else
  return prev.vm_end == next.vm_start && prev.vm_flags == next.vm_flags &&
         !(prev.vm_flags & VM_SPECIAL) && prev.device == next.device &&
         prev.mapping == next.mapping && prev.vm_pgoff + prev.pages() == next.vm_pgoff;
#endif
}

u64 UserMm::merge_around(MmStruct &mm, u64 vm_start) {
  auto it = mm.vmas.find(vm_start);
  auto next = std::next(it);
  if (next != mm.vmas.end() && can_merge(it->second, next->second)) {
    it->second.vm_end = next->second.vm_end;
    mm.vmas.erase(next);
  }
  if (it != mm.vmas.begin()) {
    auto prev = std::prev(it);
    if (can_merge(prev->second, it->second)) {
      prev->second.vm_end = it->second.vm_end;
      mm.vmas.erase(it);
      return prev->first;
    }
  }
  return vm_start;
}

void UserMm::free_pgtables(MmStruct &mm, u64 start, u64 end) {
  // Widen to the neighbouring VMAs: no PTE can live in the gap, so every
  // empty table wholly inside it may go.
  u64 floor = 0, ceiling = user_top();
  auto it = mm.vmas.lower_bound(start);
  if (it != mm.vmas.end())
    ceiling = std::min(ceiling, it->second.vm_start);
  if (it != mm.vmas.begin())
    floor = std::prev(it)->second.vm_end;
  if (end > ceiling)
    ceiling = end;
  m_.pt().free_empty_tables(mm.pgd, floor, ceiling);
}

void UserMm::detach_range(MmStruct &mm, u64 start, u64 end) {
  MmuGather tlb(m_, mm.pgd, start, end);
  auto first = mm.vmas.lower_bound(start);
  if (first != mm.vmas.end() && first->second.vm_start < end)
    unmap_vmas(tlb, first->second, start, end);
  tlb.finish();
  for (auto it = mm.vmas.lower_bound(start); it != mm.vmas.end() && it->first < end;)
    it = mm.vmas.erase(it);
  // Tables only after the flush: no TLB entry may point into a freed table.
  free_pgtables(mm, start, end);
  release_unused_shmem();
}

int UserMm::munmap(u64 mmid, u64 addr, u64 len) {
  MmStruct *mm = find_mm(mmid);
  if (mm == nullptr) {
    warn("munmap", "no mm " + std::to_string(mmid));
    return -EINVAL;
  }
  u64 size = 0;
  if (!page_aligned(addr) || len == 0 || !page_align_checked(len, &size) || !range_ok(addr, size)) {
    warn("munmap", "bad range " + hex(addr) + "+" + hex(len), addr);
    return -EINVAL;
  }
  const u64 end = addr + size;
  VmAreaStruct *vma = find_vma(mmid, addr);
  if (vma == nullptr || vma->vm_start >= end)
    return 0;
  if (vma->vm_start < addr && !split_vma(*mm, vma->vm_start, addr))
    return -ENOMEM;
  if (VmAreaStruct *last = find_vma(mmid, end - 1); last != nullptr && last->vm_start < end &&
                                                    last->vm_end > end &&
                                                    !split_vma(*mm, last->vm_start, end))
    return -ENOMEM;
  detach_range(*mm, addr, end);
  return 0;
}

void UserMm::change_protection(MmStruct &mm, VmAreaStruct &vma) {
  PageTables &pt = m_.pt();
  bool changed = false;
  pt.for_each_leaf(mm.pgd, vma.vm_start, vma.vm_end, [&](u64, const PteRef &r) {
    const u64 keep = r.value & (PTE_PFN_MASK | _PAGE_SPECIAL | PTE_HW_UPDATED);
    const u64 now = keep | (vma.vm_page_prot & ~PTE_PFN_MASK);
    if (now != r.value) {
      pt.set_entry(r.slot_pa, now);
      changed = true;
    }
  });
  if (changed)
    m_.mmu().flush_tlb_mm_range(mm.pgd, vma.vm_start, vma.vm_end);
}

int UserMm::mprotect(u64 mmid, u64 addr, u64 len, u64 flags) {
  MmStruct *mm = find_mm(mmid);
  if (mm == nullptr) {
    warn("mprotect", "no mm " + std::to_string(mmid));
    return -EINVAL;
  }
  if (flags & ~VM_ACCESS_FLAGS) {
    warn("mprotect", "flags " + hex(flags & ~VM_ACCESS_FLAGS) + " are not protection flags");
    return -EINVAL;
  }
  if (!page_aligned(addr)) {
    warn("mprotect", "address " + hex(addr) + " is not page aligned", addr);
    return -EINVAL;
  }
  if (len == 0)
    return 0;
  u64 size = 0;
  if (!page_align_checked(len, &size) || !range_ok(addr, size)) {
    warn("mprotect", "bad range " + hex(addr) + "+" + hex(len), addr);
    return -EINVAL;
  }
  const u64 end = addr + size;
  // The whole range must be mapped, without holes, before anything changes.
  for (u64 cur = addr; cur < end;) {
    const VmAreaStruct *vma = find_vma(mmid, cur);
    if (vma == nullptr || vma->vm_start > cur)
      return -ENOMEM;
    cur = vma->vm_end;
  }
  if (!split_vma(*mm, find_vma(mmid, addr)->vm_start, addr))
    return -ENOMEM;
  if (VmAreaStruct *last = find_vma(mmid, end - 1);
      last->vm_end > end && !split_vma(*mm, last->vm_start, end))
    return -ENOMEM;
  for (auto it = mm->vmas.lower_bound(addr); it != mm->vmas.end() && it->first < end; ++it) {
    VmAreaStruct &vma = it->second;
    const u64 newflags = (vma.vm_flags & ~VM_ACCESS_FLAGS) | flags;
    if (newflags == vma.vm_flags)
      continue;
    const AddressSpace *as = find_mapping(vma.mapping);
    vma.vm_flags = newflags;
    vma.vm_page_prot = vm_get_page_prot(newflags, as != nullptr && !as->shmem);
    change_protection(*mm, vma);
  }
  // Merge back whatever now matches a neighbour, from the VMA before the
  // range up to the one that starts at its end (merge_around joins a VMA
  // with its predecessor, so that one must be visited too).
  auto it = mm->vmas.lower_bound(addr);
  if (it != mm->vmas.begin())
    --it;
  u64 cur = it->first;
  while (true) {
    cur = merge_around(*mm, cur);
    auto at = mm->vmas.find(cur);
    auto next = std::next(at);
    if (next == mm->vmas.end() || next->first > end)
      break;
    cur = next->first;
  }
  return 0;
}

void UserMm::release_unused_shmem() {
  std::vector<u64> unused;
  for (const auto &[id, as] : mappings_) {
    if (!as.shmem)
      continue;
    bool used = false;
    for (const auto &[mid, mm] : mms_)
      for (const auto &[start, vma] : mm.vmas)
        used = used || vma.mapping == id;
    if (!used)
      unused.push_back(id);
  }
  for (u64 id : unused) {
    release_page_cache(m_, mappings_.at(id));
    mappings_.erase(id);
  }
}

} // namespace vmcheck
