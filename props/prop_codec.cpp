// The byte <-> op codec, as pure properties over arbitrary bytes and every
// vocabulary: a decoded trace prints and parses back unchanged, encodes to
// bytes that decode to the same trace, and is never malformed when replayed
// (the fuzz targets count on "any bytes are a valid trace").
#include "harness/codec.h"
#include "harness/executor.h"
#include "harness/trace.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace vmcheck {
namespace {

// Fuzz-like inputs: mostly arbitrary bytes, sometimes bytes drawn from the
// small values that select table entries and handles, so that traces with
// many live handles (and the selectors that reach them) are common too.
// `scale` stretches rapidcheck's size (the length grows with it, up to
// 100 * scale bytes); decoding stops after kMaxDecodedOps ops anyway.
rc::Gen<std::vector<std::uint8_t>> gen_input(double scale) {
  const auto byte =
      rc::gen::weightedOneOf<std::uint8_t>({{3, rc::gen::arbitrary<std::uint8_t>()},
                                            {2, rc::gen::inRange<std::uint8_t>(0, 8)},
                                            {1, rc::gen::element<std::uint8_t>(0xfe, 0xff)}});
  return rc::gen::scale(scale, rc::gen::container<std::vector<std::uint8_t>>(byte));
}

// Whether a vmalloc_api trace is in the decoder's image (it encodes).
bool encodes(const std::string &text) {
  const ParseResult r = parse_trace(text);
  EXPECT_TRUE(r.ok()) << text;
  std::vector<std::uint8_t> bytes;
  return r.ok() && encode_trace(r.trace, Vocabulary::VmallocApi, bytes).empty();
}

std::string show_bytes(std::span<const std::uint8_t> b) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s = "x\"";
  for (std::uint8_t c : b) {
    s += kHex[c >> 4];
    s += kHex[c & 15];
  }
  return s + "\"";
}

RC_GTEST_PROP(Codec, a_decoded_trace_prints_and_parses_back_unchanged, ()) {
  const auto bytes = *gen_input(8);
  for (Vocabulary v : kVocabularies) {
    const Trace t = decode_bytes(bytes, v);
    const std::string text = print_trace(t);
    const ParseResult r = parse_trace(text);
    if (!r.ok())
      RC_FAIL(std::string(vocabulary_name(v)) + ": " + r.error->to_string("decoded") + "\n" + text);
    RC_ASSERT(r.trace == t);
    RC_ASSERT(print_trace(r.trace) == text);
  }
}

RC_GTEST_PROP(Codec, encoding_a_decoded_trace_decodes_to_the_same_trace, ()) {
  const auto bytes = *gen_input(8);
  for (Vocabulary v : kVocabularies) {
    const Trace t = decode_bytes(bytes, v);
    std::vector<std::uint8_t> encoded;
    const std::string err = encode_trace(t, v, encoded);
    if (!err.empty())
      RC_FAIL(std::string(vocabulary_name(v)) + ": encode_trace failed: " + err + "\ninput " +
              show_bytes(bytes) + "\n" + print_trace(t));
    const Trace again = decode_bytes(encoded, v);
    if (!(again == t))
      RC_FAIL(std::string(vocabulary_name(v)) + ": decode(encode(t)) != t\ninput " +
              show_bytes(bytes) + "\nencoded " + show_bytes(encoded) + "\n---- t ----\n" +
              print_trace(t) + "---- decode(encode(t)) ----\n" + print_trace(again));
  }
}

// Only Malformed is this property's business: a divergence in a decoded
// trace is a finding for the fuzz targets, which run the same check. Inputs
// stay short (replays are the cost here): up to 128 bytes, of which
// vmalloc_api, the most expensive vocabulary to replay, takes 64.
RC_GTEST_PROP(Codec, a_decoded_trace_is_never_malformed, ()) {
  const auto input = *gen_input(1.28);
  for (Vocabulary v : kVocabularies) {
    const std::span<const std::uint8_t> bytes = std::span(input).first(
        v == Vocabulary::VmallocApi ? std::min<std::size_t>(input.size(), 64) : input.size());
    const Trace t = decode_bytes(bytes, v);
    ReplayOptions opts;
    opts.differential = v != Vocabulary::Backends;
    std::vector<Backend> backends = {Backend::Modern};
    if (v == Vocabulary::Backends)
      backends.push_back(Backend::Legacy);
    for (Backend b : backends) {
      opts.backend = b;
      const ReplayResult r = replay(t, opts);
      if (r.status == ReplayStatus::Malformed)
        RC_FAIL(std::string(vocabulary_name(v)) + ": decoded trace is malformed: " +
                r.report("decoded") + "\ninput " + show_bytes(bytes) + "\n" + print_trace(t));
    }
  }
}

// The fuzzer's finding that a dead handle's free can release another area:
// a1's VA goes to v2, vfree(a1) then frees v2's area, and a later
// free_vm_area(v2) would BUG (unmap_kernel_range would unmap whatever took
// the VA next). The codec drops v2 at that free, so neither can be encoded
// and no decoded trace contains it; before the free, v2 is an operand.
TEST(Codec, a_free_through_a_dead_handle_drops_the_areas_it_may_have_released) {
  const std::string head = "# vmcheck trace v1\n"
                           "config cpus=2 nodes=2 mem=64M lazy=0 on_null=skip\n"
                           "a1 = vmalloc(0x1000)\n"
                           "vfree(a1)\n"
                           "v2 = get_vm_area(0x1000, 4)\n";
  EXPECT_TRUE(encodes(head + "free_vm_area(v2)\n"));
  EXPECT_TRUE(encodes(head + "vfree(a1+1)\nfree_vm_area(v2)\n")); // unaligned: a WARN, no free
  EXPECT_FALSE(encodes(head + "vfree(a1)\nfree_vm_area(v2)\n"));
  EXPECT_FALSE(encodes(head + "vunmap(a1)\nunmap_kernel_range(v2.addr, 0x1000)\n"));
  // map/unmap_kernel_range BUG when the size page-aligns to 0 (AFL++ found
  // the decoder passing a literal 2^64 - 1): such sizes are not in its image.
  EXPECT_TRUE(encodes(head + "unmap_kernel_range(v2.addr, 0x1000)\n"));
  EXPECT_TRUE(encodes(head + "unmap_kernel_range(v2.addr, 0xfffffffffffff000)\n")); // a WARN
  EXPECT_FALSE(encodes(head + "unmap_kernel_range(v2.addr, 0xffffffffffffffff)\n"));
  EXPECT_FALSE(encodes(head + "unmap_kernel_range_noflush(v2.addr, 0)\n"));
  // A live handle's free releases its own area only.
  EXPECT_TRUE(encodes(head + "a3 = vmalloc(0x1000)\nvfree(a3)\nfree_vm_area(v2)\n"));
}

// A deferred free (vfree_atomic) runs at run_deferred and releases whatever
// area then lies at its address. Found by the builtin fuzzer: vfree_atomic(a1),
// then vunmap(a1) released a1's area at once, get_vm_area took the VA, and
// run_deferred released that area under v2's handle.
TEST(Codec, a_deferred_free_of_a_handle_freed_again_drops_the_areas_it_may_release) {
  const std::string head = "# vmcheck trace v1\n"
                           "config cpus=2 nodes=2 mem=64M lazy=0 on_null=skip\n"
                           "a1 = vmalloc(0x1000)\n"
                           "vfree_atomic(a1)\n";
  const std::string tail = "v2 = get_vm_area(0x1000, 4)\nrun_deferred()\nfree_vm_area(v2)\n";
  EXPECT_TRUE(encodes(head + tail));
  EXPECT_FALSE(encodes(head + "vunmap(a1)\n" + tail));
  // A deferred free through a dead handle is stale from the start.
  EXPECT_FALSE(encodes(head + "run_deferred()\nvfree_atomic(a1)\n" + tail));
  // Before run_deferred, v2 is an operand.
  EXPECT_TRUE(encodes(head + "vunmap(a1)\nv2 = get_vm_area(0x1000, 4)\nfree_vm_area(v2)\n"));
}

// A free through a dead handle may release an area a live handle is bound
// to: that handle stays usable for reads, but a free through it is treated
// as a free through a dead one.
TEST(Codec, a_free_through_a_handle_a_stale_free_may_have_released_drops_bound_areas) {
  const std::string head = "# vmcheck trace v1\n"
                           "config cpus=2 nodes=2 mem=64M lazy=0 on_null=skip\n"
                           "a1 = vmalloc(0x1000)\n"
                           "vfree(a1)\n"
                           "a2 = vmalloc(0x1000)\n";
  const std::string tail = "v3 = get_vm_area(0x1000, 4)\nvfree(a2)\nfree_vm_area(v3)\n";
  EXPECT_TRUE(encodes(head + tail));
  EXPECT_FALSE(encodes(head + "vfree(a1)\n" + tail));
  // Reading through the unsure handle drops nothing.
  EXPECT_TRUE(encodes(head + "vfree(a1)\nv3 = get_vm_area(0x1000, 4)\nvread(a2, 8)\n" +
                      "free_vm_area(v3)\n"));
}

// The large sizes are drawn rarely (one size selector in 17) but are in
// the decoder's image: each encodes, and decodes back unchanged.
TEST(Codec, large_sizes_are_rare_but_reachable) {
  const std::string head = "# vmcheck trace v1\n"
                           "config cpus=2 nodes=2 mem=64M lazy=auto on_null=skip\n";
  for (const char *size : {"0x201000", "0x100000", "0x1fff000", "0x100000000"}) {
    const ParseResult r = parse_trace(head + "a1 = vmalloc(" + size + ")\n");
    ASSERT_TRUE(r.ok());
    std::vector<std::uint8_t> bytes;
    ASSERT_EQ(encode_trace(r.trace, Vocabulary::VmallocApi, bytes), "") << size;
    EXPECT_EQ(print_trace(decode_bytes(bytes, Vocabulary::VmallocApi)), print_trace(r.trace))
        << size;
  }
  // Over every selector byte after a vmalloc op byte: 15 of 256 draw a
  // large size (0xff is a literal), and 1 of those the 8191-page one.
  const ParseResult small = parse_trace(head + "a1 = vmalloc(0x1000)\n");
  std::vector<std::uint8_t> bytes;
  ASSERT_EQ(encode_trace(small.trace, Vocabulary::VmallocApi, bytes), "");
  int large = 0, huge = 0;
  for (int sel = 0; sel < 0xff; ++sel) {
    bytes.back() = static_cast<std::uint8_t>(sel);
    const Trace t = decode_bytes(bytes, Vocabulary::VmallocApi);
    ASSERT_EQ(t.stmts.size(), 1u);
    const std::uint64_t v = t.stmts[0].args[0].value;
    large += v == 0x201000 || v == 0x100000 || v == 0x1fff000 || v == 0x100000000 ? 1 : 0;
    huge += v == 0x1fff000 ? 1 : 0;
  }
  EXPECT_EQ(large, 15);
  EXPECT_EQ(huge, 1);
}

} // namespace
} // namespace vmcheck
