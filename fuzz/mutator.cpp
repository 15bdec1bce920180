#include "fuzz/mutator.h"

#include <algorithm>
#include <cstring>
#include <vector>

namespace vmcheck {

namespace {

struct Rng {
  std::uint64_t s;
  std::uint64_t next() {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
  }
  std::size_t below(std::size_t n) { return n == 0 ? 0 : static_cast<std::size_t>(next() % n); }
};

std::size_t copy_out(const std::vector<std::uint8_t> &v, std::uint8_t *data, std::size_t max) {
  const std::size_t n = std::min(v.size(), max);
  std::memcpy(data, v.data(), n);
  return n;
}

} // namespace

std::size_t mutate_ops(Vocabulary v, std::uint8_t *data, std::size_t size, std::size_t max_size,
                       unsigned seed,
                       std::size_t (*byte_mutate)(std::uint8_t *, std::size_t, std::size_t)) {
  Rng rng{0x9e3779b97f4a7c15ULL ^ seed};
  if (size < 2)
    return byte_mutate(data, size, max_size);
  const auto offs = op_offsets({data, size}, v); // op starts, then size
  const std::size_t ops = offs.size() - 1;
  std::vector<std::uint8_t> in(data, data + size), out;
  auto op_bytes = [&](std::size_t k) {
    return std::vector<std::uint8_t>(in.begin() + static_cast<std::ptrdiff_t>(offs[k]),
                                     in.begin() + static_cast<std::ptrdiff_t>(offs[k + 1]));
  };
  switch (ops == 0 ? 4 : rng.below(5)) {
  case 0: { // delete one op
    const std::size_t k = rng.below(ops);
    out.assign(in.begin(), in.begin() + static_cast<std::ptrdiff_t>(offs[k]));
    out.insert(out.end(), in.begin() + static_cast<std::ptrdiff_t>(offs[k + 1]), in.end());
    return copy_out(out, data, max_size);
  }
  case 1: { // duplicate one op elsewhere
    const auto op = op_bytes(rng.below(ops));
    const std::size_t at = offs[rng.below(ops + 1)];
    out.assign(in.begin(), in.begin() + static_cast<std::ptrdiff_t>(at));
    out.insert(out.end(), op.begin(), op.end());
    out.insert(out.end(), in.begin() + static_cast<std::ptrdiff_t>(at), in.end());
    return copy_out(out, data, max_size);
  }
  case 2: { // swap two ops
    std::size_t a = rng.below(ops), b = rng.below(ops);
    if (a > b)
      std::swap(a, b);
    if (a == b)
      return byte_mutate(data, size, max_size);
    out.assign(in.begin(), in.begin() + static_cast<std::ptrdiff_t>(offs[a]));
    const auto ob = op_bytes(b), oa = op_bytes(a);
    out.insert(out.end(), ob.begin(), ob.end());
    out.insert(out.end(), in.begin() + static_cast<std::ptrdiff_t>(offs[a + 1]),
               in.begin() + static_cast<std::ptrdiff_t>(offs[b]));
    out.insert(out.end(), oa.begin(), oa.end());
    out.insert(out.end(), in.begin() + static_cast<std::ptrdiff_t>(offs[b + 1]), in.end());
    return copy_out(out, data, max_size);
  }
  case 3: { // change one op's arguments (its bytes), keeping its length
    const std::size_t k = rng.below(ops);
    const std::size_t len = offs[k + 1] - offs[k];
    if (len > 1)
      byte_mutate(data + offs[k] + 1, len - 1, len - 1);
    else
      data[offs[k]] = static_cast<std::uint8_t>(rng.next());
    return size;
  }
  default:
    return byte_mutate(data, size, max_size);
  }
}

std::size_t cross_over_ops(Vocabulary v, const std::uint8_t *d1, std::size_t s1,
                           const std::uint8_t *d2, std::size_t s2, std::uint8_t *out,
                           std::size_t max_out, unsigned seed) {
  Rng rng{0x2545f4914f6cdd1dULL ^ seed};
  if (s1 == 0 || s2 == 0)
    return 0;
  const auto o1 = op_offsets({d1, s1}, v);
  const auto o2 = op_offsets({d2, s2}, v);
  // The first input's config byte and its first k ops, then the second's
  // ops from j on.
  const std::size_t cut1 = o1[rng.below(o1.size())];
  const std::size_t cut2 = o2[rng.below(o2.size())];
  std::vector<std::uint8_t> r(d1, d1 + cut1);
  r.insert(r.end(), d2 + cut2, d2 + s2);
  return copy_out(r, out, max_out);
}

} // namespace vmcheck
