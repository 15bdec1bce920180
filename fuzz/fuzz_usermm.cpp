// libFuzzer target usermm: see fuzz/target.h and harness/fuzz_target.cpp.
#include <cstdint>

#include "harness/fuzz_target.h"

namespace {
constexpr vmcheck::FuzzTarget kTarget = vmcheck::FuzzTarget::Usermm;
[[maybe_unused]] constexpr vmcheck::Vocabulary kVocabulary = vmcheck::Vocabulary::Usermm;
} // namespace

#include "fuzz/target.h"
#ifdef VMCHECK_WITH_LIBFUZZER
#define VMCHECK_FUZZ_ENTRY_POINTS
#include "fuzz/mutator.h"
#endif
