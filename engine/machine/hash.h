// Canonical 64-bit state hashing. Every value fed in is a plain integer, in
// an order fixed by the state's own structure (sorted containers, index
// order), never by host addresses or unordered iteration, so the hash is the
// same on every run, compiler and build type.
#pragma once

#include <cstdint>
#include <string_view>

namespace vmcheck {

class StateHasher {
public:
  explicit StateHasher(std::uint64_t seed = 0x76636865636b3031ULL) : h_(seed) {}

  void add(std::uint64_t v) {
    // splitmix64 finaliser of (state + value): cheap, well mixed, portable.
    std::uint64_t z = h_ + 0x9e3779b97f4a7c15ULL + v;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    h_ = z ^ (z >> 31);
  }
  void add(std::string_view s) {
    add(s.size());
    std::uint64_t word = 0;
    unsigned n = 0;
    for (unsigned char c : s) {
      word = (word << 8) | c;
      if (++n == 8) {
        add(word);
        word = 0;
        n = 0;
      }
    }
    if (n != 0)
      add(word);
  }
  // Marks the start of a section so that differently shaped states with the
  // same numbers do not collide ("tag, count, items...").
  void tag(std::uint64_t t) { add(t ^ 0xa5a5a5a5a5a5a5a5ULL); }

  std::uint64_t value() const { return h_; }

private:
  std::uint64_t h_;
};

} // namespace vmcheck
