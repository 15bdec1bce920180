// The bounded model checker: breadth-first exploration of every op sequence
// up to a depth over a finite argument domain, with canonical state hashing
// so that a state reached twice (in any order, under any handle names) is
// expanded once. Every new state is checked with the engine's invariants and
// against the reference spec; the first violation comes back as the shortest
// trace that reaches it (BFS order), printed in the TRACE.md format.
//
// Trade-off: the Kernel cannot be copied, so a state is stored as the move
// that reached it plus its parent, and is rebuilt by replaying its path from
// a fresh machine (replay skips the checks already made). One transition
// therefore costs a machine construction and `depth` cheap ops; the first
// move out of a state reuses the replay that enumerated its moves.
#pragma once

#include "engine/kernel.h"
#include "harness/ops.h"
#include "harness/trace.h"

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace vmcheck {

// The kinds of moves the explorer interleaves. Alloc..IrqExit run on a chosen
// CPU; DeferredStep and PurgeWorker model the kernel's asynchronous workers
// and run on CPU 0 (or, while CPU 0 waits for its own purge's TLB flush, on
// the lowest CPU that does not). TlbDeliver exists with shootdown=async: the
// flush of a purge in flight reaches one more CPU.
enum class MoveKind : std::uint8_t {
  Alloc,        // h = vmalloc(size) / __vmalloc_node(size, align, ...)
  Vfree,        // vfree(h): deferred when the CPU is in interrupt context
  VfreeAtomic,  // vfree_atomic(h)
  Probe,        // probe(h, read): fills the CPU's TLB with h's first page
  IrqEnter,     // irq_enter(), nesting bounded to one level
  IrqExit,      // irq_exit()
  DeferredStep, // the oldest deferred work item (one CPU's vfree_atomic list)
  PurgeWorker,  // purge(): the lazy purge worker draining every lazy area
  TlbDeliver,   // tlb_deliver(arg): the in-flight purge's flush reaches CPU arg
};

// One move. `arg` is the size index (Alloc), the handle's creation index
// on the path (Vfree, VfreeAtomic, Probe) or the CPU a flush reaches
// (TlbDeliver); `arg2` the alignment index.
struct Move {
  MoveKind kind = MoveKind::Alloc;
  std::uint8_t cpu = 0;
  std::uint8_t arg = 0;
  std::uint8_t arg2 = 0;
};

// The finite domain and the bounds. Every field has a command-line and
// config-file key (set()).
struct ExploreConfig {
  MachineConfig machine = small_machine();
  std::vector<u64> sizes = {1, 2, 3, 5}; // pages
  std::vector<u64> aligns = {1, 4};      // pages
  unsigned max_live = 2;                 // handles the trace holds at once
  unsigned depth = 6;                    // moves per path
  u64 max_states = 0;                    // transitions; 0 = no limit
  double time_limit = 0;                 // seconds of wall clock; 0 = no limit
  bool differential = true;              // also run the reference spec
  // Which move kinds are generated.
  bool vfree = true, vfree_atomic = true, probe = true, irq = true, deferred = true, purge = true;

  // cpus=2 nodes=1 mem=8M lazy=4: two CPUs, one small node, and a lazy
  // threshold a few frees cross.
  static MachineConfig small_machine();
  // Applies "key=value" (keys: depth, sizes, aligns, max-live, max-states,
  // time-limit, spec, moves, and every machine config key). Error or empty.
  std::string set(std::string_view key, std::string_view value);
  // Reads a config file: one key=value (or key = value) per line, '#'
  // comments. Error (with the line number) or empty.
  std::string load(std::string_view text);
  // Error or empty: domain non-empty, pages powers of two for aligns, bounds
  // within what a Move can encode, machine config valid.
  std::string validate() const;
  std::string to_string() const;
};

struct ExploreStats {
  u64 transitions = 0;             // moves executed, revisits included
  u64 unique = 0;                  // distinct canonical states, the root included
  u64 engine_only = 0;             // unique states the spec could not follow
  unsigned depth = 0;              // deepest level generated
  std::vector<u64> new_at_depth;   // unique states first reached at each depth
  std::vector<u64> moves_at_depth; // transitions into each depth
  double seconds = 0;              // wall clock
  double cpu_seconds = 0; // this process's CPU time (other load on the host does not count)
  // The last level generated no new state: everything reachable is visited,
  // whatever the depth bound.
  bool exhausted = false;
  // Every level up to the bound was expanded (no limit cut the search).
  bool complete = false;
};

struct ExploreViolation {
  std::string message;              // one line: what was violated
  std::vector<std::string> details; // diagnostics, the spec's view, ...
  unsigned depth = 0;               // moves in the trace
  Trace trace;                      // the shortest path, last statement failing
  std::string text;                 // the trace as a corpus file, comments included
};

struct ExploreResult {
  ExploreStats stats;
  std::optional<ExploreViolation> violation;
  std::string stop_reason; // "depth bound", "exhausted", "max-states", "time-limit", "violation"
};

struct ExploreHooks {
  // Called about every 4096 transitions and at the end of each level.
  std::function<void(const ExploreStats &)> progress;
  // An extra invariant over each new state (tests use it): message or empty.
  std::function<std::string(const Kernel &)> extra_check;
};

// Explores every path of at most cfg.depth moves. Precondition:
// cfg.validate() is empty.
ExploreResult explore(const ExploreConfig &cfg, const ExploreHooks &hooks = {});

// The explorer's canonical state hash: the engine state keyed by addresses,
// never by vm_struct serials or handle names (so symmetric states merge),
// plus what the trace holds: the addresses of its live handles (a set) and
// each CPU's pending vfree_atomic list (in order). TLB LRU ranks are left out
// when `lru_ranks` is false (sound when no TLB can fill up within the bound).
// The current CPU and the logical clock are left out: every move names its
// CPU, and nothing reads the clock.
u64 canonical_state_hash(const Kernel &k, std::span<const u64> live,
                         const std::vector<std::vector<u64>> &pending, bool lru_ranks);

// run_deferred_one(): runs the oldest deferred work item; 1, or 0 when none
// was queued. Explore-only: a trace the explorer prints uses it only where
// run_deferred() would do more.
void register_explore_ops(OpTable &table);

} // namespace vmcheck
