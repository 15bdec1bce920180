#include "machine/diag.h"
#include "machine/phys_mem.h"

#include <gtest/gtest.h>

#include <array>
#include <vector>

namespace vmcheck {
namespace {

constexpr u64 MiB = u64{1} << 20;

u64 hash_of(const PhysMem &m) {
  StateHasher h;
  m.hash_into(h);
  return h.value();
}

std::vector<std::uint8_t> read_bytes(const PhysMem &m, u64 pa, std::size_t n) {
  std::vector<std::uint8_t> out(n);
  m.read(pa, out);
  return out;
}

TEST(PhysMem, default_machine_puts_half_of_node0_below_4gib) {
  PhysMem m(2, 512 * MiB);
  const u64 half = (256 * MiB) >> PAGE_SHIFT;
  EXPECT_EQ(m.node_start_pfn(0), kDma32LimitPfn - half);
  EXPECT_EQ(m.node_start_pfn(1), kDma32LimitPfn + half);
  EXPECT_EQ(m.min_pfn(), m.node_start_pfn(0));
  EXPECT_EQ(m.max_pfn(), m.node_start_pfn(1) + m.pages_per_node());
  EXPECT_EQ(m.total_pages(), (u64{1} << 30) >> PAGE_SHIFT);
  EXPECT_EQ(m.pfn_zone(m.min_pfn()), Zone::DMA32);
  EXPECT_EQ(m.pfn_zone(kDma32LimitPfn - 1), Zone::DMA32);
  EXPECT_EQ(m.pfn_zone(kDma32LimitPfn), Zone::Normal);
  EXPECT_EQ(m.pfn_zone(m.max_pfn() - 1), Zone::Normal);
}

TEST(PhysMem, pfn_to_nid_switches_node_exactly_at_the_node_boundary) {
  PhysMem m(3, 8 * MiB);
  EXPECT_EQ(m.pfn_to_nid(m.node_start_pfn(0)), 0u);
  EXPECT_EQ(m.pfn_to_nid(m.node_start_pfn(1) - 1), 0u);
  EXPECT_EQ(m.pfn_to_nid(m.node_start_pfn(1)), 1u);
  EXPECT_EQ(m.pfn_to_nid(m.node_start_pfn(2)), 2u);
  EXPECT_EQ(m.pfn_to_nid(m.max_pfn() - 1), 2u);
}

TEST(PhysMem, pfn_valid_covers_exactly_min_to_max) {
  PhysMem m(2, 4 * MiB);
  EXPECT_FALSE(m.pfn_valid(m.min_pfn() - 1));
  EXPECT_TRUE(m.pfn_valid(m.min_pfn()));
  EXPECT_TRUE(m.pfn_valid(m.max_pfn() - 1));
  EXPECT_FALSE(m.pfn_valid(m.max_pfn()));
  EXPECT_FALSE(m.pfn_valid(0));
}

TEST(PhysMem, a_tiny_node0_lies_wholly_below_4gib_and_is_block_aligned) {
  PhysMem m(1, 4 * MiB);
  EXPECT_EQ(m.min_pfn() % (u64{1} << (MAX_ORDER - 1)), 0u);
  EXPECT_EQ(m.max_pfn(), kDma32LimitPfn);
  EXPECT_EQ(m.pfn_zone(m.max_pfn() - 1), Zone::DMA32);
}

TEST(PhysMem, untouched_page_records_describe_free_max_order_blocks) {
  PhysMem m(2, 8 * MiB);
  const Page &head = m.peek(m.min_pfn());
  EXPECT_EQ(head.flags, PG_buddy);
  EXPECT_EQ(head.order, MAX_ORDER - 1);
  EXPECT_EQ(head.refcount, 0u);
  EXPECT_EQ(head.owner, PageOwner::Free);
  const Page &tail = m.peek(m.min_pfn() + 1);
  EXPECT_EQ(tail.flags, 0u);
  EXPECT_EQ(tail.owner, PageOwner::Free);
  const Page &next_head = m.peek(m.min_pfn() + 1024);
  EXPECT_EQ(next_head.flags, PG_buddy);
}

TEST(PhysMem, unwritten_frames_read_as_the_uninitialised_byte) {
  PhysMem m(1, 8 * MiB);
  const auto bytes = read_bytes(m, m.min_pfn() << PAGE_SHIFT, 16);
  for (auto b : bytes)
    EXPECT_EQ(b, kUninitByte);
  EXPECT_EQ(m.read_u64((m.min_pfn() + 5) << PAGE_SHIFT), 0x5a5a5a5a5a5a5a5aULL);
  EXPECT_FALSE(m.frame_is_zero(m.min_pfn()));
}

TEST(PhysMem, zero_frame_reads_zero_and_releases_the_host_buffer) {
  PhysMem m(1, 8 * MiB);
  const Pfn pfn = m.min_pfn() + 3;
  m.write_u64(pfn << PAGE_SHIFT, 0x1234);
  EXPECT_EQ(m.backed_frames(), 1u);
  m.zero_frame(pfn);
  EXPECT_EQ(m.backed_frames(), 0u);
  EXPECT_TRUE(m.frame_is_zero(pfn));
  for (auto b : read_bytes(m, pfn << PAGE_SHIFT, PAGE_SIZE))
    ASSERT_EQ(b, 0);
}

TEST(PhysMem, a_write_crossing_a_frame_boundary_lands_in_both_frames) {
  PhysMem m(1, 8 * MiB);
  const u64 pa = ((m.min_pfn() + 1) << PAGE_SHIFT) - 3;
  const std::array<std::uint8_t, 6> in{1, 2, 3, 4, 5, 6};
  m.write(pa, in);
  EXPECT_EQ(m.backed_frames(), 2u);
  const auto out = read_bytes(m, pa - 1, 8);
  EXPECT_EQ(out, (std::vector<std::uint8_t>{kUninitByte, 1, 2, 3, 4, 5, 6, kUninitByte}));
}

TEST(PhysMem, read_u64_returns_what_write_u64_stored) {
  PhysMem m(1, 8 * MiB);
  const u64 pa = (m.min_pfn() + 7) << PAGE_SHIFT;
  m.write_u64(pa + 8, 0x0123456789abcdefULL);
  EXPECT_EQ(m.read_u64(pa + 8), 0x0123456789abcdefULL);
  EXPECT_EQ(m.read_u64(pa), 0x5a5a5a5a5a5a5a5aULL);
  const auto bytes = read_bytes(m, pa + 8, 2);
  EXPECT_EQ(bytes[0], 0xef); // little-endian, as x86-64
  EXPECT_EQ(bytes[1], 0xcd);
}

TEST(PhysMem, unaligned_u64_access_is_a_kernel_bug) {
  PhysMem m(1, 8 * MiB);
  EXPECT_THROW(m.read_u64((m.min_pfn() << PAGE_SHIFT) + 4), KernelBug);
  EXPECT_THROW(m.write_u64((m.min_pfn() << PAGE_SHIFT) + 1, 0), KernelBug);
}

TEST(PhysMem, access_outside_memory_is_a_kernel_bug) {
  PhysMem m(1, 8 * MiB);
  std::array<std::uint8_t, 2> buf{};
  EXPECT_THROW(m.read((m.max_pfn() << PAGE_SHIFT) - 1, buf), KernelBug);
  EXPECT_THROW(m.write((m.min_pfn() << PAGE_SHIFT) - 1, buf), KernelBug);
  EXPECT_THROW(m.read(~u64{0}, buf), KernelBug);
  EXPECT_THROW(m.page(m.max_pfn()), KernelBug);
}

TEST(PhysMem, backed_frames_counts_only_frames_holding_non_uniform_data) {
  PhysMem m(1, 8 * MiB);
  const u64 pa = m.min_pfn() << PAGE_SHIFT;
  std::vector<std::uint8_t> same(100, kUninitByte);
  m.write(pa, same); // what the frame already holds
  m.zero_frame(m.min_pfn() + 1);
  m.write_u64((m.min_pfn() + 1) << PAGE_SHIFT, 0); // zero into a zero frame
  m.fill_frame(m.min_pfn() + 2, 0xab);
  EXPECT_EQ(m.backed_frames(), 0u);
  m.write_u64(pa, 1);
  m.write_u64((m.min_pfn() + 9) << PAGE_SHIFT, 2);
  EXPECT_EQ(m.backed_frames(), 2u);
  EXPECT_EQ(read_bytes(m, (m.min_pfn() + 2) << PAGE_SHIFT, 1)[0], 0xab);
}

TEST(PhysMem, copy_frame_duplicates_data_and_uniform_frames) {
  PhysMem m(1, 8 * MiB);
  const Pfn a = m.min_pfn(), b = m.min_pfn() + 1, c = m.min_pfn() + 2;
  m.write_u64((a << PAGE_SHIFT) + 64, 0xfeed);
  m.copy_frame(b, a);
  EXPECT_EQ(m.read_u64((b << PAGE_SHIFT) + 64), 0xfeedu);
  EXPECT_EQ(read_bytes(m, b << PAGE_SHIFT, PAGE_SIZE), read_bytes(m, a << PAGE_SHIFT, PAGE_SIZE));
  m.zero_frame(c);
  m.copy_frame(b, c);
  EXPECT_TRUE(m.frame_is_zero(b));
  EXPECT_EQ(m.backed_frames(), 1u);
}

// Page-table sweeps skip the groups frame_nonzero_groups calls zero, so it
// must follow every way a frame's bytes can change.
TEST(PhysMem, nonzero_groups_follow_every_kind_of_write) {
  PhysMem m(1, 8 * MiB);
  const Pfn a = m.min_pfn(), b = a + 1;
  const u64 pa = a << PAGE_SHIFT;
  EXPECT_EQ(m.frame_nonzero_groups(a), ~u64{0}); // never written: the uninitialised byte
  m.zero_frame(a);
  EXPECT_EQ(m.frame_nonzero_groups(a), 0u);
  m.write_u64(pa + 3 * 64 + 8, 0x1001);
  EXPECT_EQ(m.frame_nonzero_groups(a), u64{1} << 3);
  m.write_u64(pa + 5 * 64, 7);
  m.write_u64(pa + 3 * 64 + 8, 0); // group 3 is empty again, group 5 is not
  EXPECT_EQ(m.frame_nonzero_groups(a), u64{1} << 5);
  const std::vector<std::uint8_t> bytes = {0, 0, 9};
  m.write(pa + 2 * 64 - 2, bytes); // the 9 lands in group 2, the zeros in group 1
  EXPECT_EQ(m.frame_nonzero_groups(a), (u64{1} << 2) | (u64{1} << 5));
  const std::vector<std::uint8_t> zeros(130, 0);
  m.write(pa + 2 * 64 - 1, zeros); // groups 1, 2 and 3 all zero
  EXPECT_EQ(m.frame_nonzero_groups(a), u64{1} << 5);
  m.copy_frame(b, a);
  EXPECT_EQ(m.frame_nonzero_groups(b), u64{1} << 5);
  m.write_u64(pa + 63 * 64 + 56, ~u64{0}); // the last word of the frame
  EXPECT_EQ(m.frame_nonzero_groups(a), (u64{1} << 5) | (u64{1} << 63));
  m.fill_frame(a, 0xab);
  EXPECT_EQ(m.frame_nonzero_groups(a), ~u64{0});
  m.zero_frame(a);
  EXPECT_EQ(m.frame_nonzero_groups(a), 0u);
  m.fill_frame(b, 1);
  m.write_u64(b << PAGE_SHIFT, 0); // a backed frame made from a filled one
  EXPECT_EQ(m.frame_nonzero_groups(b), ~u64{0});
}

TEST(PhysMem, hash_changes_when_one_byte_of_a_frame_changes) {
  PhysMem m(2, 4 * MiB);
  const u64 before = hash_of(m);
  const std::array<std::uint8_t, 1> x{0x11};
  m.write((m.min_pfn() << PAGE_SHIFT) + 4095, x);
  const u64 after = hash_of(m);
  EXPECT_NE(before, after);
  const std::array<std::uint8_t, 1> y{0x12};
  m.write((m.min_pfn() << PAGE_SHIFT) + 4095, y);
  EXPECT_NE(hash_of(m), after);
}

TEST(PhysMem, hash_is_equal_for_equal_histories) {
  const auto run = [] {
    PhysMem m(2, 4 * MiB);
    m.write_u64((m.min_pfn() + 3) << PAGE_SHIFT, 77);
    m.zero_frame(m.max_pfn() - 1);
    m.page(m.min_pfn() + 3).refcount = 2;
    return hash_of(m);
  };
  EXPECT_EQ(run(), run());
}

TEST(PhysMem, hash_depends_on_contents_not_on_how_they_are_stored) {
  PhysMem a(1, 4 * MiB), b(1, 4 * MiB);
  (void)b.page(b.min_pfn() + 9); // materialises the section, changes nothing
  EXPECT_EQ(hash_of(a), hash_of(b));
  a.zero_frame(a.min_pfn());
  std::vector<std::uint8_t> zeros(PAGE_SIZE, 0);
  b.write_u64(b.min_pfn() << PAGE_SHIFT, 1);
  b.write(b.min_pfn() << PAGE_SHIFT, zeros);
  EXPECT_EQ(hash_of(a), hash_of(b));
}

TEST(PhysMem, hash_covers_page_records) {
  PhysMem m(1, 4 * MiB);
  const u64 before = hash_of(m);
  m.page(m.min_pfn() + 1).owner = PageOwner::Vmalloc;
  EXPECT_NE(hash_of(m), before);
}

} // namespace
} // namespace vmcheck
