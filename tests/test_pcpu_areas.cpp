// pcpu_get_vm_areas and its helpers: the issue's example, congruence,
// alignment, no guard pages, argument checks, top-down maximal placement
// against a brute-force search, purge-and-retry, pcpu_free_vm_areas, and
// pvm_find_next_prev / pvm_determine_end as seed 000 describes them.
#include "machine/machine.h"
#include "vmalloc/vmalloc.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

namespace vmcheck {
namespace {

constexpr u64 kStart = VMALLOC_START_L4;
constexpr u64 kRangeSize = VMALLOC_END_L4 + 1 - VMALLOC_START_L4;
constexpr u64 kTop = VMALLOC_END_L4 & PAGE_MASK; // highest page-aligned end pcpu uses
constexpr u64 K = 1024;

MachineConfig config(Backend backend = Backend::Modern) {
  MachineConfig cfg;
  cfg.cpus = 2;
  cfg.nodes = 2;
  cfg.mem_per_node = u64{8} << 20;
  cfg.backend = backend;
  return cfg;
}

struct Fixture {
  explicit Fixture(Backend backend = Backend::Modern) : m(config(backend)), v(m) {}
  Machine m;
  Vmalloc v;

  u64 state_hash() const {
    StateHasher h;
    m.hash_into(h);
    v.hash_into(h);
    return h.value();
  }
  std::vector<VmStruct *> get(std::vector<u64> offsets, std::vector<u64> sizes, u64 align) {
    return v.pcpu_get_vm_areas(offsets, sizes, align);
  }
  // A VM_ALLOC area (with its guard page) placed exactly at addr.
  VmStruct *area_at(u64 addr, u64 size) {
    VmStruct *vm = v.__get_vm_area(size, VM_ALLOC, addr, addr + size + PAGE_SIZE);
    EXPECT_NE(vm, nullptr);
    if (vm != nullptr) {
      EXPECT_EQ(vm->addr, addr);
    }
    return vm;
  }
};

struct PcpuTest : ::testing::Test, Fixture {
  void TearDown() override {
    EXPECT_EQ(m.check(), "");
    EXPECT_EQ(v.check(), "");
  }
  std::size_t warns() const { return m.diag().count(DiagKind::Warn); }
};

std::vector<u64> addrs(const std::vector<VmStruct *> &vms) {
  std::vector<u64> out;
  for (const VmStruct *vm : vms)
    out.push_back(vm->addr);
  return out;
}

// The highest base, stepping down by align from the top, at which every
// [base + offsets[i], + sizes[i]) misses every busy and lazy area.
u64 brute_force_base(const Vmalloc &v, const std::vector<u64> &offsets,
                     const std::vector<u64> &sizes, u64 align) {
  u64 last_end = 0;
  for (std::size_t i = 0; i < offsets.size(); ++i)
    last_end = std::max(last_end, offsets[i] + sizes[i]);
  auto hits = [&](u64 s, u64 e) {
    for (const auto *set : {&v.busy_areas(), &v.lazy_areas()})
      for (const auto &[start, va] : *set)
        if (va.va_start < e && s < va.va_end)
          return true;
    return false;
  };
  for (u64 base = (VMALLOC_END_L4 & ~(align - 1)) - last_end; base >= kStart; base -= align) {
    bool fits = true;
    for (std::size_t i = 0; i < offsets.size() && fits; ++i)
      fits = !hits(base + offsets[i], base + offsets[i] + sizes[i]);
    if (fits)
      return base;
  }
  return 0;
}

TEST_F(PcpuTest, the_issue_example_places_areas_at_the_top_and_a_second_call_interleaves) {
  const auto first = get({0, 64 * K}, {16 * K, 16 * K}, 4 * K);
  EXPECT_EQ(addrs(first), (std::vector<u64>{0xffffe8fffffeb000, 0xffffe8ffffffb000}));
  const auto second = get({0, 64 * K}, {16 * K, 16 * K}, 4 * K);
  EXPECT_EQ(addrs(second), (std::vector<u64>{0xffffe8fffffe7000, 0xffffe8ffffff7000}));
  for (const VmStruct *vm : first) {
    EXPECT_EQ(vm->size, 16 * K);
    EXPECT_EQ(vm->flags, VM_ALLOC); // as 4.19 sets it: the guard is absent all the same
    EXPECT_FALSE(vm->has_guard);
    EXPECT_EQ(vm->caller, "pcpu_get_vm_areas");
    EXPECT_EQ(v.find_vm_area(vm->addr), vm);
  }
}

TEST_F(PcpuTest, areas_have_no_guard_page) {
  const auto vms = get({0, 64 * K}, {16 * K, 16 * K}, 4 * K);
  ASSERT_EQ(vms.size(), 2u);
  const VmStruct &vm = *vms[0];
  // 4.19 quirk: the area is plain VM_ALLOC, so get_vm_area_size() still
  // subtracts a page, although the reserved VA holds no guard page.
  EXPECT_EQ(get_vm_area_size(vm), 12 * K);
  EXPECT_EQ(v.busy_areas().at(vm.addr).size(), 16 * K);
  EXPECT_FALSE(v.is_guard_page(vm.addr + 16 * K - PAGE_SIZE));
  EXPECT_EQ(m.touch(vm.addr + 16 * K - PAGE_SIZE, Access::Read).fault, Fault::NotPresent);
  // The second call's area 0 ends exactly where this one starts.
  const auto next = get({0, 64 * K}, {16 * K, 16 * K}, 4 * K);
  EXPECT_EQ(next[0]->addr + 16 * K, vm.addr);
}

TEST_F(PcpuTest, areas_are_congruent_aligned_and_inside_the_range) {
  area_at(kTop - 3 * 1024 * K, 8 * K);
  area_at(kTop - 9 * 1024 * K, 4 * K);
  const std::vector<u64> offsets = {0, 4 * PMD_SIZE, 10 * PMD_SIZE};
  const std::vector<u64> sizes = {2 * PMD_SIZE, PMD_SIZE, 4 * PMD_SIZE};
  for (int round = 0; round < 3; ++round) {
    const u64 expected = brute_force_base(v, offsets, sizes, PMD_SIZE);
    const auto vms = get(offsets, sizes, PMD_SIZE);
    ASSERT_EQ(vms.size(), 3u);
    const u64 base = vms[0]->addr - offsets[0];
    EXPECT_EQ(base, expected);
    for (std::size_t i = 0; i < 3; ++i) {
      EXPECT_EQ(vms[i]->addr - offsets[i], base);
      EXPECT_EQ(vms[i]->addr % PMD_SIZE, 0u);
      EXPECT_EQ(vms[i]->size, sizes[i]);
      EXPECT_GE(vms[i]->addr, kStart);
      EXPECT_LE(vms[i]->addr + vms[i]->size, VMALLOC_END_L4);
    }
    EXPECT_EQ(v.check(), "");
  }
}

TEST_F(PcpuTest, placement_is_the_highest_fitting_base_among_existing_and_lazy_areas) {
  std::uint64_t seed = 0x5eed;
  auto rnd = [&](u64 n) {
    seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    return (seed >> 33) % n;
  };
  for (int scenario = 0; scenario < 60; ++scenario) {
    SCOPED_TRACE("scenario " + std::to_string(scenario));
    Fixture f;
    f.v.vmalloc_init();
    // Obstacles in the top 128 KiB, some of them freed lazily.
    std::vector<VmStruct *> made;
    for (int i = 0, n = 3 + static_cast<int>(rnd(8)); i < n; ++i) {
      const u64 size = (1 + rnd(8)) * PAGE_SIZE;
      const u64 at = kTop - 128 * K + rnd(32) * PAGE_SIZE;
      if (at + size + PAGE_SIZE > kTop)
        continue;
      if (VmStruct *vm = f.v.__get_vm_area(size, VM_ALLOC, at, at + size + PAGE_SIZE))
        made.push_back(vm);
    }
    for (VmStruct *vm : made)
      if (rnd(3) == 0)
        f.v.free_vm_area(vm);
    const u64 align = PAGE_SIZE << rnd(3);
    std::vector<u64> offsets, sizes;
    u64 off = 0;
    for (int i = 0, n = 1 + static_cast<int>(rnd(3)); i < n; ++i) {
      off += rnd(6) * align;
      offsets.push_back(off);
      sizes.push_back((1 + rnd(4)) * align);
      off += sizes.back();
    }
    // Index order is not address order: the scan starts from the highest.
    std::reverse(offsets.begin(), offsets.end());
    std::reverse(sizes.begin(), sizes.end());
    const u64 expected = brute_force_base(f.v, offsets, sizes, align);
    const auto vms = f.v.pcpu_get_vm_areas(offsets, sizes, align);
    ASSERT_EQ(vms.size(), offsets.size());
    for (std::size_t i = 0; i < vms.size(); ++i)
      EXPECT_EQ(vms[i]->addr, expected + offsets[i]);
    EXPECT_EQ(f.v.check(), "");
  }
}

TEST_F(PcpuTest, a_request_that_fits_only_in_lazily_freed_space_purges_and_retries) {
  ASSERT_NE(v.get_vm_area(kRangeSize - 1024 * K - PAGE_SIZE, VM_MAP), nullptr);
  VmStruct *top = v.__get_vm_area(1024 * K - 2 * PAGE_SIZE, VM_ALLOC, VMALLOC_END_L4 + 1 - 1024 * K,
                                  VMALLOC_END_L4);
  ASSERT_NE(top, nullptr);
  v.free_vm_area(top);
  ASSERT_EQ(v.lazy_areas().size(), 1u);
  const auto vms = get({0}, {64 * K}, 4 * K);
  ASSERT_EQ(vms.size(), 1u);
  EXPECT_EQ(vms[0]->addr, kTop - 64 * K);
  EXPECT_TRUE(v.lazy_areas().empty());
}

TEST_F(PcpuTest, a_request_that_fits_nowhere_returns_empty_and_changes_nothing) {
  ASSERT_NE(v.get_vm_area(kRangeSize - 1024 * K - PAGE_SIZE, VM_MAP), nullptr);
  ASSERT_NE(v.__get_vm_area(1024 * K - 2 * PAGE_SIZE, VM_ALLOC, VMALLOC_END_L4 + 1 - 1024 * K,
                            VMALLOC_END_L4),
            nullptr);
  const u64 before = state_hash();
  EXPECT_TRUE(get({0}, {4 * K}, 4 * K).empty());
  EXPECT_EQ(state_hash(), before);
}

TEST_F(PcpuTest, metadata_allocation_failure_returns_empty_and_changes_nothing) {
  v.vmalloc_init();
  const u64 before = state_hash();
  for (u64 nth = 1; nth <= 3; ++nth) {
    m.faults().fail_nth(FailPoint::VmapArea, nth);
    EXPECT_TRUE(get({0, 64 * K}, {16 * K, 16 * K}, 4 * K).empty());
    EXPECT_EQ(state_hash(), before);
  }
  EXPECT_EQ(get({0, 64 * K}, {16 * K, 16 * K}, 4 * K).size(), 2u);
}

TEST_F(PcpuTest, bad_arguments_are_kernel_bugs_and_change_nothing) {
  v.vmalloc_init();
  const u64 before = state_hash();
  EXPECT_THROW(get({0}, {12 * K}, 12 * K), KernelBug);                // align not a power of 2
  EXPECT_THROW(get({0}, {4 * K}, 2 * K), KernelBug);                  // align below a page
  EXPECT_THROW(get({0}, {4 * K}, 0), KernelBug);                      // align 0
  EXPECT_THROW(get({0, 4 * K}, {8 * K, 8 * K}, 4 * K), KernelBug);    // areas overlap
  EXPECT_THROW(get({0, 12 * K}, {8 * K, 8 * K}, 8 * K), KernelBug);   // offset not aligned
  EXPECT_THROW(get({0}, {12 * K}, 8 * K), KernelBug);                 // size not aligned
  EXPECT_THROW(get({64 * K, 0}, {8 * K, 128 * K}, 8 * K), KernelBug); // one inside the other
  EXPECT_EQ(state_hash(), before);
}

TEST_F(PcpuTest, a_span_larger_than_the_vmalloc_range_warns_returns_empty_and_changes_nothing) {
  v.vmalloc_init();
  const u64 before = state_hash();
  const std::size_t w = warns();
  EXPECT_TRUE(get({0, kRangeSize}, {4 * K, 4 * K}, 4 * K).empty());
  EXPECT_EQ(warns(), w + 1);
  EXPECT_TRUE(get({0}, {kRangeSize}, 4 * K).empty()); // the top page is never used
  EXPECT_EQ(warns(), w + 2);
  EXPECT_TRUE(get({0}, {u64{1} << 63}, u64{1} << 63).empty()); // no aligned start in range
  EXPECT_EQ(warns(), w + 3);
  EXPECT_TRUE(get({0}, {0}, 4 * K).empty());
  EXPECT_TRUE(get({}, {}, 4 * K).empty());
  EXPECT_EQ(warns(), w + 5);
  EXPECT_EQ(state_hash(), before);
}

TEST_F(PcpuTest, the_largest_span_that_fits_starts_at_vmalloc_start) {
  const auto vms = get({0, kRangeSize - 2 * PAGE_SIZE}, {PAGE_SIZE, PAGE_SIZE}, PAGE_SIZE);
  EXPECT_EQ(addrs(vms), (std::vector<u64>{kStart, kTop - PAGE_SIZE}));
}

TEST_F(PcpuTest, pcpu_free_vm_areas_frees_lazily_and_the_space_comes_back_after_a_purge) {
  const auto vms = get({0, 64 * K}, {16 * K, 16 * K}, 4 * K);
  const auto placed = addrs(vms);
  v.pcpu_free_vm_areas(vms);
  EXPECT_TRUE(v.vm_structs().empty());
  EXPECT_TRUE(v.busy_areas().empty());
  EXPECT_EQ(v.lazy_areas().size(), 2u);
  EXPECT_EQ(v.vmap_lazy_nr(), 8u);
  v.purge_vmap_area_lazy();
  EXPECT_EQ(addrs(get({0, 64 * K}, {16 * K, 16 * K}, 4 * K)), placed);
}

TEST_F(PcpuTest, pvm_find_next_prev_brackets_an_end_address) {
  v.vmalloc_init();
  EXPECT_FALSE(v.pvm_find_next_prev(kTop).found);
  VmStruct *a = area_at(kTop - 64 * K, 2 * PAGE_SIZE); // [.., +12K) with its guard
  VmStruct *b = area_at(kTop - 16 * K, PAGE_SIZE);     // [.., +8K)
  const u64 a_end = a->addr + 3 * PAGE_SIZE;
  const u64 b_start = b->addr;

  auto r = v.pvm_find_next_prev(b_start);
  EXPECT_TRUE(r.found);
  ASSERT_TRUE(r.next && r.prev);
  EXPECT_EQ(r.next->va_start, b_start);
  EXPECT_EQ(r.prev->va_start, a->addr);

  r = v.pvm_find_next_prev(a_end); // prev may end exactly at end
  ASSERT_TRUE(r.next && r.prev);
  EXPECT_EQ(r.next->va_start, b_start);
  EXPECT_EQ(r.prev->va_end, a_end);

  r = v.pvm_find_next_prev(a_end - 1);
  EXPECT_TRUE(r.found);
  ASSERT_TRUE(r.next);
  EXPECT_EQ(r.next->va_start, a->addr);
  EXPECT_FALSE(r.prev);

  v.free_vm_area(b); // lazily freed areas still count
  r = v.pvm_find_next_prev(kTop);
  EXPECT_TRUE(r.found);
  EXPECT_FALSE(r.next);
  ASSERT_TRUE(r.prev);
  EXPECT_EQ(r.prev->va_start, b_start);
}

TEST_F(PcpuTest, pvm_determine_end_finds_the_highest_aligned_end_below_next) {
  VmStruct *a = area_at(kTop - 64 * K, 2 * PAGE_SIZE); // ends at kTop - 52K
  VmStruct *b = area_at(kTop - 16 * K, PAGE_SIZE);
  const VmapArea va = v.busy_areas().at(a->addr);
  const VmapArea vb = v.busy_areas().at(b->addr);

  std::optional<VmapArea> next = vb, prev = va;
  EXPECT_EQ(v.pvm_determine_end(next, prev, 4 * K), vb.va_start);
  EXPECT_EQ(next->va_start, vb.va_start);
  EXPECT_EQ(prev->va_start, va.va_start);

  // Aligned down to 64K the end falls inside a: a becomes next, and the
  // returned address is inside it (the caller checks).
  const u64 aligned = vb.va_start & ~(64 * K - 1);
  ASSERT_LT(aligned, va.va_end);
  next = vb;
  prev = va;
  EXPECT_EQ(v.pvm_determine_end(next, prev, 64 * K), aligned);
  ASSERT_TRUE(next);
  EXPECT_EQ(next->va_start, va.va_start);
  EXPECT_FALSE(prev);

  // No next: VMALLOC_END aligned down, prev moved below it.
  next.reset();
  prev = vb;
  EXPECT_EQ(v.pvm_determine_end(next, prev, PMD_SIZE), VMALLOC_END_L4 & ~(PMD_SIZE - 1));
  EXPECT_EQ(next->va_start, va.va_start);
  EXPECT_FALSE(prev);

  next.reset();
  prev = vb;
  EXPECT_EQ(v.pvm_determine_end(next, prev, 4 * K), kTop);
  EXPECT_FALSE(next);
  EXPECT_EQ(prev->va_start, vb.va_start);
}

TEST(PcpuLegacyTest, legacy_backend_places_the_issue_example_identically) {
  Fixture f(Backend::Legacy);
  const auto first = f.get({0, 64 * K}, {16 * K, 16 * K}, 4 * K);
  EXPECT_EQ(addrs(first), (std::vector<u64>{0xffffe8fffffeb000, 0xffffe8ffffffb000}));
  const auto second = f.get({0, 64 * K}, {16 * K, 16 * K}, 4 * K);
  EXPECT_EQ(addrs(second), (std::vector<u64>{0xffffe8fffffe7000, 0xffffe8ffffff7000}));
  EXPECT_EQ(f.v.check(), "");
  f.v.pcpu_free_vm_areas(first);
  EXPECT_EQ(f.v.busy_areas().size(), 2u);
  EXPECT_EQ(f.v.check(), "");
  EXPECT_EQ(f.m.check(), "");
}

} // namespace
} // namespace vmcheck
