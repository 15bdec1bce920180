// The byte <-> op codec: ANY byte string decodes to a valid trace of one
// vocabulary (what the fuzz targets run), and a decoded trace encodes back
// to bytes that decode to the same trace.
//
// Format v1: byte 0 selects the machine config, then per op one opcode
// byte and, per argument, a selector byte (an entry of that argument kind's
// table of interesting values, a handle of a live or dead object, or 0xff
// followed by an 8-byte little-endian literal). Running out of bytes ends
// the trace. Arguments are drawn to hit edges: page boundaries, alignments,
// sizes around VMAP_MAX_ALLOC and the lazy thresholds, NULL and dead
// handles. Ops whose misuse is a kernel BUG_ON (double free_vm_area, a
// wrong vm_unmap_ram count, vunmap in interrupt context) are only emitted
// in their legal form, so that every BUG the fuzzer sees is a finding.
#pragma once

#include "harness/trace.h"

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace vmcheck {

enum class Vocabulary : std::uint8_t {
  VmallocApi, // the whole vmalloc vocabulary, engine vs spec
  Backends,   // what modern and legacy share, lazy=0, no interrupt context
  Pcpu,       // pcpu_get_vm_areas placement among other areas
  Usermm,     // user address spaces, remap_vmalloc_range, the memory.c functions
};
inline constexpr Vocabulary kVocabularies[] = {Vocabulary::VmallocApi, Vocabulary::Backends,
                                               Vocabulary::Pcpu, Vocabulary::Usermm};

std::string_view vocabulary_name(Vocabulary v);
std::optional<Vocabulary> vocabulary_from_name(std::string_view name);

inline constexpr std::size_t kMaxDecodedOps = 96;

// Decodes any bytes into a trace (at most kMaxDecodedOps ops).
Trace decode_bytes(std::span<const std::uint8_t> data, Vocabulary vocab);

// Byte offsets where each op of `data` begins (config byte excluded), plus
// data.size() at the end: the op-level custom mutator cuts and splices here.
std::vector<std::size_t> op_offsets(std::span<const std::uint8_t> data, Vocabulary vocab);

// Encodes a trace in the decoder's image (what decode_bytes produces, or a
// hand-written trace using only that vocabulary with literal or handle
// arguments). Returns an error message naming the statement that cannot be
// encoded, or empty with `out` filled.
std::string encode_trace(const Trace &trace, Vocabulary vocab, std::vector<std::uint8_t> &out);

} // namespace vmcheck
