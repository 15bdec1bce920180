// The op-level custom mutator and crossover shared by the byte-decoding
// targets (vmalloc_api, backends, pcpu): it cuts inputs at op boundaries
// (harness/codec.h op_offsets) to delete, duplicate or swap whole ops, or
// mutates the bytes of one op (one op's arguments) with libFuzzer's own
// mutator; crossover splices one input's prefix of ops onto another's
// suffix. All randomness comes from the seed libFuzzer passes in.
#pragma once

#include "harness/codec.h"

#include <cstddef>
#include <cstdint>

namespace vmcheck {

std::size_t mutate_ops(Vocabulary v, std::uint8_t *data, std::size_t size, std::size_t max_size,
                       unsigned seed,
                       std::size_t (*byte_mutate)(std::uint8_t *, std::size_t, std::size_t));

std::size_t cross_over_ops(Vocabulary v, const std::uint8_t *d1, std::size_t s1,
                           const std::uint8_t *d2, std::size_t s2, std::uint8_t *out,
                           std::size_t max_out, unsigned seed);

} // namespace vmcheck

#ifdef VMCHECK_FUZZ_ENTRY_POINTS
extern "C" std::size_t LLVMFuzzerMutate(std::uint8_t *data, std::size_t size, std::size_t max_size);

extern "C" std::size_t LLVMFuzzerCustomMutator(std::uint8_t *data, std::size_t size,
                                               std::size_t max_size, unsigned int seed) {
  return vmcheck::mutate_ops(kVocabulary, data, size, max_size, seed, LLVMFuzzerMutate);
}

extern "C" std::size_t LLVMFuzzerCustomCrossOver(const std::uint8_t *d1, std::size_t s1,
                                                 const std::uint8_t *d2, std::size_t s2,
                                                 std::uint8_t *out, std::size_t max_out,
                                                 unsigned int seed) {
  return vmcheck::cross_over_ops(kVocabulary, d1, s1, d2, s2, out, max_out, seed);
}
#endif
