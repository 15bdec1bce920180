// Random alloc_percpu / free_percpu / per-CPU write / read sequences, with
// injected page and page-table allocation failures, against a model that
// holds every live allocation's bytes for every CPU. Every invariant of the
// whole kernel is checked after every step.
#include "kernel.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <map>
#include <string>
#include <vector>

namespace vmcheck {
namespace {

enum class Kind : std::uint8_t { Alloc, Free, Write, Read, Balance };

struct Step {
  Kind kind = Kind::Alloc;
  u64 size = 1;
  unsigned align_shift = 0; // align = 1 << align_shift; 13 is illegal (> PAGE_SIZE)
  std::size_t victim = 0;
  unsigned cpu = 0;
  u64 offset = 0;
  std::vector<std::uint8_t> data;
  unsigned fail = 0; // 0: none; else fail the fail-th page (odd) or page-table (even) allocation
};

constexpr unsigned kCpus = 4;

rc::Gen<Step> gen_step() {
  return rc::gen::build<Step>(
      rc::gen::set(&Step::kind, rc::gen::weightedElement<Kind>({{5, Kind::Alloc},
                                                                {3, Kind::Free},
                                                                {4, Kind::Write},
                                                                {3, Kind::Read},
                                                                {1, Kind::Balance}})),
      // Mostly small objects, sometimes whole pages and more, rarely illegal.
      rc::gen::set(&Step::size,
                   rc::gen::weightedOneOf<u64>({{8, rc::gen::inRange<u64>(1, 257)},
                                                {3, rc::gen::inRange<u64>(1, 12289)},
                                                {1, rc::gen::inRange<u64>(0, 40000)}})),
      rc::gen::set(&Step::align_shift, rc::gen::inRange(0u, 14u)),
      rc::gen::set(&Step::victim, rc::gen::arbitrary<std::size_t>()),
      rc::gen::set(&Step::cpu, rc::gen::inRange(0u, kCpus)),
      rc::gen::set(&Step::offset, rc::gen::arbitrary<u64>()),
      rc::gen::set(&Step::data, rc::gen::nonEmpty(rc::gen::container<std::vector<std::uint8_t>>(
                                    rc::gen::arbitrary<std::uint8_t>()))),
      rc::gen::set(&Step::fail, rc::gen::weightedOneOf<unsigned>(
                                    {{9, rc::gen::just(0u)}, {1, rc::gen::inRange(1u, 12u)}})));
}

struct Live {
  u64 size = 0;
  std::vector<std::vector<std::uint8_t>> bytes; // per CPU
};

RC_GTEST_PROP(PercpuProp, random_workload_matches_the_model_and_keeps_every_invariant, ()) {
  const auto steps = *rc::gen::container<std::vector<Step>>(gen_step());
  MachineConfig cfg;
  cfg.cpus = kCpus;
  cfg.nodes = 2;
  cfg.mem_per_node = u64{16} << 20;
  Kernel k(cfg);
  Machine &m = k.machine();
  Percpu &p = k.percpu();
  const u64 unit_size = p.layout().unit_size;

  std::map<u64, Live> live; // percpu pointer -> model
  auto victim = [&](std::size_t v) {
    return std::next(live.begin(), static_cast<long>(v % live.size()));
  };

  for (const Step &s : steps) {
    switch (s.kind) {
    case Kind::Alloc: {
      const u64 align = u64{1} << s.align_shift;
      const bool legal = s.size != 0 && s.size <= unit_size && align <= PAGE_SIZE;
      const FailPoint fp = s.fail % 2 ? FailPoint::AllocPage : FailPoint::PageTable;
      const u64 before = k.state_hash();
      if (s.fail != 0)
        m.faults().fail_nth(fp, (s.fail + 1) / 2);
      const u64 ptr = p.alloc_percpu(s.size, align);
      // The counter disarms itself when it fires.
      const bool injected = s.fail != 0 && !m.faults().armed(fp);
      m.faults().fail_nth(fp, 0);
      if (!legal) {
        RC_ASSERT(ptr == 0u);
        RC_ASSERT(k.state_hash() == before);
        break;
      }
      if (ptr == 0) {
        RC_ASSERT(injected); // only an injected failure may refuse a legal request
        break;
      }
      RC_ASSERT(!injected); // a failed page or page-table allocation fails the request
      RC_ASSERT(ptr % align == 0);
      // No overlap with any live allocation in the same chunk's unit.
      for (const auto &[q, l] : live)
        RC_ASSERT(ptr + s.size <= q || q + l.size <= ptr);
      Live l;
      l.size = s.size;
      l.bytes.assign(kCpus, std::vector<std::uint8_t>(s.size, 0));
      live[ptr] = std::move(l);
      break;
    }
    case Kind::Free:
      if (live.empty()) {
        p.free_percpu(0);
        break;
      }
      {
        const auto it = victim(s.victim);
        p.free_percpu(it->first);
        live.erase(it);
      }
      break;
    case Kind::Write: {
      if (live.empty())
        break;
      auto &[ptr, l] = *victim(s.victim);
      const u64 off = s.offset % l.size;
      const std::size_t n = std::min<std::size_t>(s.data.size(), l.size - off);
      const std::vector<std::uint8_t> chunk(s.data.begin(), s.data.begin() + static_cast<long>(n));
      RC_ASSERT(m.kernel_write(p.per_cpu_ptr(ptr, s.cpu) + off, chunk));
      std::copy(chunk.begin(), chunk.end(), l.bytes[s.cpu].begin() + static_cast<long>(off));
      break;
    }
    case Kind::Read: {
      if (live.empty())
        break;
      const auto &[ptr, l] = *victim(s.victim);
      for (unsigned cpu = 0; cpu < kCpus; ++cpu) {
        std::vector<std::uint8_t> buf(l.size);
        RC_ASSERT(m.kernel_read(p.per_cpu_ptr(ptr, cpu), buf));
        RC_ASSERT(buf == l.bytes[cpu]);
      }
      break;
    }
    case Kind::Balance:
      m.deferred().run_all();
      break;
    }
    const std::string violation = k.check();
    RC_ASSERT(violation == "");
  }
  // Free everything: after the balance work only the first chunk is left.
  for (const auto &[ptr, l] : live)
    p.free_percpu(ptr);
  m.deferred().run_all();
  RC_ASSERT(p.chunks().size() <= 1u);
  for (const auto &[id, c] : p.chunks())
    RC_ASSERT(c->free_bytes == unit_size);
  RC_ASSERT(k.check() == "");
}

} // namespace
} // namespace vmcheck
