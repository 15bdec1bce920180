// Properties of user address spaces: random sequences of mmap (anonymous,
// shared anonymous, private and shared file), munmap, mprotect, user
// accesses on either CPU, access_remote_vm reads and (forced) writes,
// zap_page_range and unmap_mapping_pages agree with a simple model of which
// user address reads which byte, every invariant holds after every op, and
// tearing the address spaces down gives every page back.
#include "kernel.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <array>
#include <map>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

namespace vmcheck {
namespace {

constexpr u64 kBase = 0x400000;
constexpr u64 kPages = 6;     // window of each mm, in pages: small, so ops collide
constexpr u64 kFilePages = 4; // the one file
// Writable protections twice: writes must mostly land for copies to exist.
constexpr u64 kProts[] = {0, VM_READ, VM_READ | VM_WRITE, VM_READ | VM_WRITE, VM_READ | VM_EXEC};
constexpr unsigned kNumProts = sizeof kProts / sizeof kProts[0];

enum class Kind : int {
  MmapAnon,
  MmapFile,
  Munmap,
  Mprotect,
  Write,
  Read,
  Touch,
  Zap,
  UnmapMapping,
  Count_
};

struct Op {
  int kind = 0;
  int mm = 0;
  int page = 0;
  int npages = 1;
  int prot = 0;
  int shared = 0; // also: FOLL_FORCE for Write, even_cows for UnmapMapping
  int pgoff = 0;
  int off = 0; // byte offset in the page; large values cross into the next page
  int len = 1;
  int value = 0;
  int mode = 0; // touch: read, write, exec
  int cpu = 0;
};

void showValue(const Op &op, std::ostream &os) {
  static const char *const names[] = {"mmap_anon", "mmap_file", "munmap", "mprotect",     "write",
                                      "read",      "touch",     "zap",    "unmap_mapping"};
  os << names[op.kind] << " mm" << op.mm << " page " << op.page << " n " << op.npages << " prot#"
     << op.prot << " shared/force " << op.shared << " pgoff " << op.pgoff << " off " << op.off
     << " len " << op.len << " value " << op.value << " mode " << op.mode << " cpu" << op.cpu;
}

// Reads and writes come often, so that what a map, zap or fault did gets
// looked at before the next op changes it.
constexpr Kind kKindWeights[] = {Kind::MmapAnon, Kind::MmapFile,    Kind::MmapFile, Kind::Munmap,
                                 Kind::Mprotect, Kind::Write,       Kind::Write,    Kind::Read,
                                 Kind::Read,     Kind::Read,        Kind::Touch,    Kind::Touch,
                                 Kind::Zap,      Kind::UnmapMapping};

rc::Gen<Op> gen_op() {
  constexpr int kinds = static_cast<int>(sizeof kKindWeights / sizeof kKindWeights[0]);
  // Full size for every field: rapidcheck narrows inRange at small sizes,
  // which would starve the later kinds and pages.
  return rc::gen::resize(
      100, rc::gen::build<Op>(
               rc::gen::set(&Op::kind,
                            rc::gen::map(rc::gen::inRange(0, kinds),
                                         [](int k) { return static_cast<int>(kKindWeights[k]); })),
               rc::gen::set(&Op::mm, rc::gen::weightedElement<int>({{3, 0}, {1, 1}})),
               rc::gen::set(&Op::page, rc::gen::inRange(0, static_cast<int>(kPages))),
               rc::gen::set(&Op::npages, rc::gen::inRange(1, 4)),
               rc::gen::set(&Op::prot, rc::gen::inRange(0, static_cast<int>(kNumProts))),
               rc::gen::set(&Op::shared, rc::gen::inRange(0, 2)),
               rc::gen::set(&Op::pgoff, rc::gen::inRange(0, static_cast<int>(kFilePages))),
               rc::gen::set(&Op::off,
                            rc::gen::oneOf(rc::gen::inRange(0, 64), rc::gen::inRange(4080, 4096))),
               rc::gen::set(&Op::len, rc::gen::inRange(1, 40)),
               rc::gen::set(&Op::value, rc::gen::inRange(1, 256)),
               rc::gen::set(&Op::mode, rc::gen::inRange(0, 3)),
               rc::gen::set(&Op::cpu, rc::gen::inRange(0, 2))));
}

using PageData = std::vector<std::uint8_t>;

// A VMA of the model, in page indices of the window.
struct MVma {
  u64 start = 0, end = 0;
  u64 prot = 0;
  bool shared = false;
  bool file = false;
  u64 pgoff = 0; // file page (or shmem object page) at start
  int shm = 0;   // shared anonymous object, 0 for none
};

// The model: who reads what. A private page exists once written (or
// copied on write); until then a private mapping reads its backing (zeros
// for anonymous memory, the file's current bytes for a file).
struct Model {
  std::array<std::map<u64, MVma>, 2> vmas;
  std::array<std::map<u64, PageData>, 2> priv;
  std::map<u64, PageData> file;               // file pages written through shared maps
  std::map<int, std::map<u64, PageData>> shm; // shared anonymous objects
  int next_shm = 1;

  const MVma *vma_at(int m, u64 page) const {
    auto it = vmas[m].upper_bound(page);
    if (it == vmas[m].begin() || std::prev(it)->second.end <= page)
      return nullptr;
    return &std::prev(it)->second;
  }
  static u64 index(const MVma &v, u64 page) { return v.pgoff + (page - v.start); }
  // SIGBUS: a file page past the end of the file.
  static bool backed(const MVma &v, u64 page) { return !v.file || index(v, page) < kFilePages; }

  PageData backing(const MVma &v, u64 page) const {
    const u64 idx = index(v, page);
    if (v.file) {
      if (auto it = file.find(idx); it != file.end())
        return it->second;
      PageData d(PAGE_SIZE);
      for (u64 o = 0; o < PAGE_SIZE; ++o)
        d[o] = file_byte(idx, o);
      return d;
    }
    if (v.shared) {
      const auto &obj = shm.at(v.shm);
      if (auto it = obj.find(idx); it != obj.end())
        return it->second;
    }
    return PageData(PAGE_SIZE, 0);
  }
  PageData content(int m, const MVma &v, u64 page) const {
    if (auto it = priv[m].find(page); it != priv[m].end())
      return it->second;
    return backing(v, page);
  }
  // The page a write lands in; a private mapping copies on first write.
  PageData &writable(int m, const MVma &v, u64 page) {
    if (!v.shared) {
      auto it = priv[m].find(page);
      if (it == priv[m].end())
        it = priv[m].emplace(page, backing(v, page)).first;
      return it->second;
    }
    const u64 idx = index(v, page);
    auto &store = v.file ? file : shm.at(v.shm);
    auto it = store.find(idx);
    if (it == store.end())
      it = store.emplace(idx, backing(v, page)).first;
    return it->second;
  }

  void unmap(int m, u64 s, u64 e) {
    std::map<u64, MVma> out;
    for (const auto &[start, v] : vmas[m]) {
      if (v.end <= s || v.start >= e) {
        out.emplace(start, v);
        continue;
      }
      if (v.start < s) {
        MVma left = v;
        left.end = s;
        out.emplace(left.start, left);
      }
      if (v.end > e) {
        MVma right = v;
        right.start = e;
        right.pgoff = v.pgoff + (e - v.start);
        out.emplace(right.start, right);
      }
    }
    vmas[m] = out;
    for (u64 p = s; p < e; ++p)
      priv[m].erase(p);
  }
  bool covered(int m, u64 s, u64 e) const {
    for (u64 p = s; p < e; ++p)
      if (vma_at(m, p) == nullptr)
        return false;
    return true;
  }
  void protect(int m, u64 s, u64 e, u64 prot) {
    std::map<u64, MVma> out;
    for (const auto &[start, v] : vmas[m]) {
      const u64 cut[] = {v.start, std::max(v.start, std::min(s, v.end)),
                         std::max(v.start, std::min(e, v.end)), v.end};
      for (int i = 0; i < 3; ++i) {
        if (cut[i] >= cut[i + 1])
          continue;
        MVma piece = v;
        piece.start = cut[i];
        piece.end = cut[i + 1];
        piece.pgoff = v.pgoff + (cut[i] - v.start);
        if (i == 1)
          piece.prot = prot;
        out.emplace(piece.start, piece);
      }
    }
    vmas[m] = out;
  }
};

u64 va(u64 page) {
  return kBase + page * PAGE_SIZE;
}

// Two CPUs (so that TLBs on both can go stale), one 32 MiB node.
MachineConfig small_machine() {
  MachineConfig cfg;
  cfg.cpus = 2;
  cfg.nodes = 1;
  cfg.mem_per_node = u64{32} << 20;
  return cfg;
}

RC_GTEST_PROP(UserMmProps, random_map_fault_zap_unmap_sequences_read_what_the_model_says, ()) {
  Kernel k(small_machine());
  Machine &m = k.machine();
  UserMm &u = k.usermm();
  const u64 free_at_start = m.pages().nr_free_total();
  const u64 file = u.file_create(kFilePages);
  const std::array<u64, 2> mm = {u.mm_create(), u.mm_create()};
  RC_ASSERT(mm[0] != 0 && mm[1] != 0);
  Model model;

  // Every readable byte of both windows reads what the model says: effects
  // a single read may miss (a copy zapped that should have stayed) show here.
  const auto sweep = [&] {
    for (int j = 0; j < 2; ++j)
      for (u64 p = 0; p < kPages; ++p) {
        const MVma *v = model.vma_at(j, p);
        std::string buf(PAGE_SIZE, '\0');
        const int done = u.access_remote_vm(
            mm[j], va(p), {reinterpret_cast<std::uint8_t *>(buf.data()), buf.size()}, 0);
        if (v == nullptr || !Model::backed(*v, p) || !(v->prot & VM_READ)) {
          RC_ASSERT(done == 0);
          continue;
        }
        const PageData want = model.content(j, *v, p);
        RC_ASSERT(buf == std::string(want.begin(), want.end()));
      }
  };

  const auto ops = *rc::gen::container<std::vector<Op>>(gen_op());
  for (const Op &op : ops) {
    const int i = op.mm;
    const u64 page = static_cast<u64>(op.page);
    const u64 n = std::min<u64>(static_cast<u64>(op.npages), kPages - page);
    const u64 prot = kProts[op.prot];
    switch (static_cast<Kind>(op.kind)) {
    case Kind::MmapAnon:
    case Kind::MmapFile: {
      const bool is_file = static_cast<Kind>(op.kind) == Kind::MmapFile;
      const u64 flags = prot | (op.shared ? VM_SHARED : 0);
      const std::int64_t id = is_file ? u.mmap_file(mm[i], va(page), n * PAGE_SIZE, flags, file,
                                                    static_cast<u64>(op.pgoff))
                                      : u.mmap(mm[i], va(page), n * PAGE_SIZE, flags);
      RC_ASSERT(id > 0);
      model.unmap(i, page, page + n);
      MVma v{
          page, page + n, prot, op.shared != 0, is_file, is_file ? static_cast<u64>(op.pgoff) : 0,
          0};
      if (!is_file && op.shared) {
        v.shm = model.next_shm++;
        model.shm[v.shm];
      }
      model.vmas[i].emplace(page, v);
      break;
    }
    case Kind::Munmap:
      RC_ASSERT(u.munmap(mm[i], va(page), n * PAGE_SIZE) == 0);
      model.unmap(i, page, page + n);
      break;
    case Kind::Mprotect: {
      const int ret = u.mprotect(mm[i], va(page), n * PAGE_SIZE, prot);
      if (!model.covered(i, page, page + n)) {
        RC_ASSERT(ret == -ENOMEM);
      } else {
        RC_ASSERT(ret == 0);
        model.protect(i, page, page + n, prot);
      }
      break;
    }
    case Kind::Write: {
      const bool force = op.shared != 0;
      const std::string data(static_cast<std::size_t>(op.len), static_cast<char>(op.value));
      std::string buf = data;
      const u64 addr = va(page) + static_cast<u64>(op.off);
      const int done = u.access_remote_vm(
          mm[i], addr, {reinterpret_cast<std::uint8_t *>(buf.data()), buf.size()},
          FOLL_WRITE | (force ? FOLL_FORCE : 0));
      std::size_t expect = 0;
      while (expect < data.size()) {
        const u64 a = addr + expect;
        const u64 p = (a - kBase) / PAGE_SIZE;
        const MVma *v = p < kPages ? model.vma_at(i, p) : nullptr;
        if (v == nullptr || !Model::backed(*v, p) ||
            !((v->prot & VM_WRITE) || (force && !v->shared)))
          break;
        model.writable(i, *v, p)[a % PAGE_SIZE] = static_cast<std::uint8_t>(op.value);
        ++expect;
      }
      RC_ASSERT(static_cast<std::size_t>(done) == expect);
      break;
    }
    case Kind::Read: {
      const u64 addr = va(page) + static_cast<u64>(op.off);
      std::string buf(static_cast<std::size_t>(op.len), '\0');
      const int done = u.access_remote_vm(
          mm[i], addr, {reinterpret_cast<std::uint8_t *>(buf.data()), buf.size()}, 0);
      std::string expect;
      while (expect.size() < buf.size()) {
        const u64 a = addr + expect.size();
        const u64 p = (a - kBase) / PAGE_SIZE;
        const MVma *v = p < kPages ? model.vma_at(i, p) : nullptr;
        if (v == nullptr || !Model::backed(*v, p) || !(v->prot & VM_READ))
          break;
        expect.push_back(static_cast<char>(model.content(i, *v, p)[a % PAGE_SIZE]));
      }
      buf.resize(static_cast<std::size_t>(done));
      RC_ASSERT(buf == expect);
      break;
    }
    case Kind::Touch: {
      m.set_current_cpu(static_cast<unsigned>(op.cpu));
      const Access acc = op.mode == 0 ? Access::Read : op.mode == 1 ? Access::Write : Access::Exec;
      const UserAccess r = u.touch(mm[i], va(page) + 8, acc);
      const MVma *v = model.vma_at(i, page);
      const u64 need = acc == Access::Write  ? VM_WRITE
                       : acc == Access::Exec ? VM_EXEC
                                             : (VM_READ | VM_WRITE | VM_EXEC);
      if (v == nullptr || !(v->prot & need)) {
        RC_ASSERT(r.fault == VM_FAULT_SIGSEGV);
      } else if (!Model::backed(*v, page)) {
        RC_ASSERT(r.fault == VM_FAULT_SIGBUS);
      } else {
        RC_ASSERT(r.ok());
        if (acc == Access::Write && !v->shared)
          model.writable(i, *v, page); // copy on write freezes the page now
      }
      break;
    }
    case Kind::Zap: {
      VmAreaStruct *v = u.find_vma(mm[i], va(page));
      if (v == nullptr || v->vm_start > va(page))
        break;
      u.zap_page_range(*v, va(page), n * PAGE_SIZE);
      for (u64 p = page; p < page + n; ++p)
        model.priv[i].erase(p);
      break;
    }
    case Kind::UnmapMapping: {
      const bool even_cows = op.shared != 0;
      const u64 first = static_cast<u64>(op.pgoff);
      const u64 nr = static_cast<u64>(op.npages) - 1; // 0: to the end of the file
      u.unmap_mapping_pages(file, first, nr, even_cows);
      if (even_cows)
        for (int j = 0; j < 2; ++j)
          for (const auto &[s, v] : model.vmas[j])
            if (v.file && !v.shared)
              for (u64 p = v.start; p < v.end; ++p) {
                const u64 idx = Model::index(v, p);
                if (idx >= first && (nr == 0 || idx < first + nr))
                  model.priv[j].erase(p);
              }
      sweep();
      break;
    }
    case Kind::Count_:
      break;
    }
    const std::string err = k.check();
    RC_ASSERT(err == std::string{});
    RC_ASSERT(m.diag().count(DiagKind::Finding) == 0u);
  }

  sweep();
  RC_ASSERT(u.mmput(mm[0]) == 0);
  RC_ASSERT(u.mmput(mm[1]) == 0);
  RC_ASSERT(k.check() == std::string{});
  // Everything is back but the shared zero page and the file's page cache.
  const u64 kept = (u.zero_pfn() ? 1 : 0) + u.mappings().at(file).pages.size();
  RC_ASSERT(m.pages().nr_free_total() + kept == free_at_start);
}

// remap_vmalloc_range (seed 000): a VMA of n pages maps pages pgoff..pgoff+n-1
// of the area, which must be VM_USERMAP (vmalloc_user) and hold them all;
// otherwise -EINVAL. Predicted from how the area was made, never from the
// engine's own flags; what the user side then reads is what vwrite wrote.
RC_GTEST_PROP(UserMmProps, remap_vmalloc_range_maps_exactly_usermap_areas_that_hold_the_vma, ()) {
  Kernel k(small_machine());
  const bool user = *rc::gen::arbitrary<bool>();
  const u64 area_pages = *rc::gen::inRange<u64>(1, 5);
  const u64 vma_pages = *rc::gen::inRange<u64>(1, 5);
  const u64 pgoff = *rc::gen::inRange<u64>(0, 3);
  const u64 a = user ? k.vmalloc().vmalloc_user(area_pages * PAGE_SIZE)
                     : k.vmalloc().vmalloc(area_pages * PAGE_SIZE);
  RC_ASSERT(a != 0);
  std::string pattern(area_pages * PAGE_SIZE, '\0');
  // Every page holds different bytes (i * 7 alone repeats each page), so a
  // user page mapping the wrong kernel page reads wrong.
  for (std::size_t i = 0; i < pattern.size(); ++i)
    pattern[i] = static_cast<char>((i * 7 + 1 + i / PAGE_SIZE * 31) & 0xff);
  RC_ASSERT(
      k.vmalloc().vwrite({reinterpret_cast<const std::uint8_t *>(pattern.data()), pattern.size()},
                         a) == static_cast<long>(pattern.size()));
  UserMm &u = k.usermm();
  const u64 mm = u.mm_create();
  const std::int64_t id = u.mmap(mm, kBase, vma_pages * PAGE_SIZE, VM_READ | VM_WRITE | VM_SHARED);
  RC_ASSERT(id > 0);
  const int ret = u.remap_vmalloc_range(*u.vma_by_id(static_cast<u64>(id)), a, pgoff);
  const bool fits = pgoff + vma_pages <= area_pages;
  RC_ASSERT(ret == (user && fits ? 0 : -EINVAL));
  if (ret == 0) {
    std::string buf(vma_pages * PAGE_SIZE, '\0');
    RC_ASSERT(u.access_remote_vm(mm, kBase,
                                 {reinterpret_cast<std::uint8_t *>(buf.data()), buf.size()},
                                 0) == static_cast<int>(buf.size()));
    RC_ASSERT(buf == pattern.substr(pgoff * PAGE_SIZE, buf.size()));
  }
  RC_ASSERT(k.check().empty());
}

} // namespace
} // namespace vmcheck
