// User address spaces at the level of VMAs: see user.h.
#include "spec/user.h"

#include <algorithm>

namespace vmcheck::spec {

std::string hex_text(u64 v) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s;
  do {
    s.insert(s.begin(), kDigits[v & 0xf]);
    v >>= 4;
  } while (v != 0);
  return "0x" + s;
}

UserSpace::UserSpace(VmallocSpec &machine, u64 user_top) : machine_(machine), user_top_(user_top) {}

void UserSpace::warn(std::string function, std::string reason) {
  diags_.push_back({DiagKind::Warn, std::move(function), std::move(reason)});
}

std::vector<Diag> UserSpace::take_diags() {
  std::vector<Diag> out;
  out.swap(diags_);
  return out;
}

bool UserSpace::kmalloc() {
  return machine_.kmalloc_ok();
}

bool UserSpace::range_ok(u64 addr, u64 len) const {
  return addr >= PAGE_SIZE && len != 0 && addr < user_top_ && len <= user_top_ - addr;
}

const UserVma *UserSpace::covering(const Vmas &vmas, u64 addr) const {
  for (const UserVma &v : vmas)
    if (v.start <= addr && addr < v.end)
      return &v;
  return nullptr;
}

const UserVma *UserSpace::vma_by_id(u64 id) const {
  for (const auto &[mm, vmas] : mms_)
    for (const UserVma &v : vmas)
      if (v.id == id)
        return &v;
  return nullptr;
}

pgprot_t UserSpace::page_prot(const UserVma &vma) const {
  if ((vma.flags & (VM_READ | VM_WRITE | VM_EXEC)) == 0)
    return _PAGE_PRESENT | _PAGE_ACCESSED | _PAGE_NX; // PROT_NONE: no _PAGE_USER
  // Writes to a private mapping, and the first write to a shared file
  // page (write notification), fault: only shared anonymous memory is
  // writable from the start.
  const auto it = files_.find(vma.mapping);
  const bool notify = it != files_.end() && !it->second.shmem;
  pgprot_t prot = _PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED;
  if ((vma.flags & VM_WRITE) && (vma.flags & VM_SHARED) && !notify)
    prot |= _PAGE_RW;
  if ((vma.flags & VM_EXEC) == 0)
    prot |= _PAGE_NX;
  return prot;
}

// ---- VMA surgery ------------------------------------------------------------------------------

bool UserSpace::split_at(Vmas &vmas, u64 addr) {
  for (std::size_t i = 0; i < vmas.size(); ++i) {
    UserVma &lo = vmas[i];
    if (!(lo.start < addr && addr < lo.end))
      continue;
    if (!kmalloc())
      return false;
    UserVma hi = lo;
    hi.id = next_vma_++;
    hi.start = addr;
    hi.pgoff = lo.pgoff + ((addr - lo.start) >> PAGE_SHIFT);
    lo.end = addr;
    vmas.insert(vmas.begin() + static_cast<std::ptrdiff_t>(i) + 1, hi);
    return true;
  }
  return true;
}

void UserSpace::remove_range(u64 mm, u64 start, u64 end) {
  zap_all(mm, start, end);
  std::erase_if(mms_.at(mm), [&](const UserVma &v) { return v.start >= start && v.end <= end; });
  release_unused_shmem();
}

bool UserSpace::can_merge(const UserVma &lo, const UserVma &hi) {
  return lo.end == hi.start && lo.flags == hi.flags && (lo.flags & kNoMergeFlags) == 0 &&
         lo.mapping == hi.mapping && lo.pgoff + lo.pages() == hi.pgoff;
}

void UserSpace::merge_pairs(Vmas &vmas, std::size_t first, std::size_t last) {
  // Decide on the VMAs as they are, then join: whether a pair can merge
  // does not change when its lower VMA has absorbed the one before it.
  std::vector<bool> join(vmas.size(), false); // join[i]: vmas[i] goes into vmas[i - 1]
  for (std::size_t i = 0; i + 1 < vmas.size(); ++i)
    if (i + 1 >= first && i <= last && can_merge(vmas[i], vmas[i + 1]))
      join[i + 1] = true;
  Vmas out;
  for (std::size_t i = 0; i < vmas.size(); ++i) {
    if (join[i])
      out.back().end = vmas[i].end;
    else
      out.push_back(vmas[i]);
  }
  vmas.swap(out);
}

void UserSpace::release_unused_shmem() {
  std::erase_if(files_, [&](const auto &entry) {
    if (!entry.second.shmem)
      return false;
    for (const auto &[mm, vmas] : mms_)
      for (const UserVma &v : vmas)
        if (v.mapping == entry.first)
          return false;
    // Its pages go with it.
    std::erase_if(written_, [&](const auto &w) { return w.first.first == entry.first; });
    return true;
  });
}

// ---- the harness's mm ops -----------------------------------------------------------------------

u64 UserSpace::mm_create() {
  if (!kmalloc() || !machine_.user_table_page_ok())
    return 0;
  const u64 id = next_mm_++;
  mms_.emplace(id, Vmas{});
  return id;
}

int UserSpace::mmput(u64 mm) {
  const auto it = mms_.find(mm);
  if (it == mms_.end()) {
    warn("mmput", "no mm " + std::to_string(mm));
    return -EINVAL;
  }
  zap_all(mm, 0, ~u64{0});
  ptes_.erase(mm);
  mms_.erase(it);
  release_unused_shmem();
  return 0;
}

u64 UserSpace::file_create(u64 nr_pages) {
  if (nr_pages == 0 || nr_pages > (u64{1} << 32)) {
    warn("file_create", "file size " + std::to_string(nr_pages) + " pages is not in [1, 2^32]");
    return 0;
  }
  if (!kmalloc())
    return 0;
  const u64 id = next_file_++;
  files_.emplace(id, UserFile{nr_pages, false});
  return id;
}

std::int64_t UserSpace::mmap(u64 mm, u64 addr, u64 len, u64 flags) {
  return do_mmap("mmap", mm, addr, len, flags, 0, 0);
}

std::int64_t UserSpace::mmap_file(u64 mm, u64 addr, u64 len, u64 flags, u64 file, u64 pgoff) {
  if (file == 0) {
    warn("mmap_file", "no file");
    return -EINVAL;
  }
  return do_mmap("mmap_file", mm, addr, len, flags, file, pgoff);
}

std::int64_t UserSpace::do_mmap(const char *fn, u64 mm, u64 addr, u64 len, u64 flags, u64 file,
                                u64 pgoff) {
  // Every argument is checked, in this order, before anything changes.
  const auto m = mms_.find(mm);
  u64 size = 0;
  const bool driver = (flags & kDriverFlags) != 0;
  std::string bad;
  if (m == mms_.end())
    bad = "no mm " + std::to_string(mm);
  else if ((flags & ~kMmapFlags) != 0)
    bad = "flags " + hex_text(flags & ~kMmapFlags) + " cannot be requested";
  else if ((flags & (VM_PFNMAP | VM_MIXEDMAP)) == (VM_PFNMAP | VM_MIXEDMAP))
    bad = "VM_PFNMAP and VM_MIXEDMAP together";
  else if (file != 0 && driver)
    bad = "a file mapping cannot carry driver flags";
  else if (len == 0 || !page_align_checked(len, &size))
    bad = "length " + hex_text(len) + " is empty or wraps";
  else if (!page_aligned(addr))
    bad = "address " + hex_text(addr) + " is not page aligned";
  else if (addr != 0 && !range_ok(addr, size))
    bad = "range " + hex_text(addr) + "+" + hex_text(size) + " is not inside the user half";
  else if (file != 0 && (files_.count(file) == 0 || files_.at(file).shmem))
    bad = "no file " + std::to_string(file);
  else if (file != 0 && pgoff > (~u64{0} >> PAGE_SHIFT) - (size >> PAGE_SHIFT))
    bad = "page offset " + hex_text(pgoff) + " overflows";
  if (!bad.empty()) {
    warn(fn, bad);
    return -EINVAL;
  }
  Vmas &vmas = m->second;
  if (addr == 0) {
    // The lowest gap of `size` bytes at or above mmap_min_addr.
    u64 cand = kMmapMinAddr;
    for (const UserVma &v : vmas)
      if (v.end > cand) {
        if (v.start >= cand && v.start - cand >= size)
          break;
        cand = v.end;
      }
    if (cand >= user_top_ || user_top_ - cand < size)
      return -ENOMEM;
    addr = cand;
  }
  const bool shmem = file == 0 && !driver && (flags & VM_SHARED) != 0;
  // The vm_area_struct, and a shmem object's, before the old mapping goes.
  if (!kmalloc() || (shmem && !kmalloc()))
    return -ENOMEM;
  if (const int err = munmap(mm, addr, size); err != 0)
    return err;
  UserVma v;
  v.id = next_vma_++;
  v.mm = mm;
  v.start = addr;
  v.end = addr + size;
  v.flags = flags | VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC | ((flags & VM_SHARED) ? VM_MAYSHARE : 0);
  if (file != 0) {
    v.mapping = file;
    v.pgoff = pgoff;
  } else if (shmem) {
    v.mapping = next_file_++;
    files_.emplace(v.mapping, UserFile{size >> PAGE_SHIFT, true});
  } else {
    v.pgoff = addr >> PAGE_SHIFT;
  }
  const auto at =
      std::find_if(vmas.begin(), vmas.end(), [&](const UserVma &o) { return o.start > addr; });
  const std::size_t i = static_cast<std::size_t>(at - vmas.begin());
  vmas.insert(at, v);
  // The new VMA joins its neighbours where they match: the lower one keeps
  // its id.
  merge_pairs(vmas, i, i);
  const UserVma *now = covering(vmas, addr);
  return static_cast<std::int64_t>(now->id);
}

int UserSpace::munmap(u64 mm, u64 addr, u64 len) {
  const auto m = mms_.find(mm);
  if (m == mms_.end()) {
    warn("munmap", "no mm " + std::to_string(mm));
    return -EINVAL;
  }
  u64 size = 0;
  if (!page_aligned(addr) || len == 0 || !page_align_checked(len, &size) || !range_ok(addr, size)) {
    warn("munmap", "bad range " + hex_text(addr) + "+" + hex_text(len));
    return -EINVAL;
  }
  Vmas &vmas = m->second;
  const u64 end = addr + size;
  // Split at the start before the end, as the kernel does: a failure at
  // the end leaves the first split in place.
  if (!split_at(vmas, addr) || !split_at(vmas, end))
    return -ENOMEM;
  remove_range(mm, addr, end);
  return 0;
}

int UserSpace::mprotect(u64 mm, u64 addr, u64 len, u64 flags) {
  const auto m = mms_.find(mm);
  if (m == mms_.end()) {
    warn("mprotect", "no mm " + std::to_string(mm));
    return -EINVAL;
  }
  constexpr u64 kProt = VM_READ | VM_WRITE | VM_EXEC;
  if ((flags & ~kProt) != 0) {
    warn("mprotect", "flags " + hex_text(flags & ~kProt) + " are not protection flags");
    return -EINVAL;
  }
  if (!page_aligned(addr)) {
    warn("mprotect", "address " + hex_text(addr) + " is not page aligned");
    return -EINVAL;
  }
  if (len == 0)
    return 0;
  u64 size = 0;
  if (!page_align_checked(len, &size) || !range_ok(addr, size)) {
    warn("mprotect", "bad range " + hex_text(addr) + "+" + hex_text(len));
    return -EINVAL;
  }
  Vmas &vmas = m->second;
  const u64 end = addr + size;
  for (u64 cur = addr; cur < end;) {
    const UserVma *v = covering(vmas, cur);
    if (v == nullptr)
      return -ENOMEM; // a hole: nothing changes
    cur = v->end;
  }
  if (!split_at(vmas, addr) || !split_at(vmas, end))
    return -ENOMEM;
  std::size_t first = vmas.size(), last = 0; // the VMAs of the range
  for (std::size_t i = 0; i < vmas.size(); ++i)
    if (vmas[i].start >= addr && vmas[i].end <= end) {
      const u64 now = (vmas[i].flags & ~kProt) | flags;
      if (now != vmas[i].flags) {
        // Every PTE of the VMA takes its new protection (only then).
        vmas[i].flags = now;
        reprotect(mm, vmas[i]);
      }
      first = std::min(first, i);
      last = i;
    }
  // What now matches a neighbour merges back: pairs from the VMA below the
  // range (and the one below that) up to the VMA starting at its end.
  merge_pairs(vmas, first == 0 ? 0 : first - 1, last + 1);
  return 0;
}

} // namespace vmcheck::spec
