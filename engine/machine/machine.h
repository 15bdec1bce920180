// The emulated machine: the one narrow interface through which everything
// nondeterministic (which CPU runs, interrupt context, deferred work, time,
// allocation failures) reaches the kernel code above it.
#pragma once

#include "machine/cpu.h"
#include "machine/diag.h"
#include "machine/fault_inject.h"
#include "machine/mmu.h"
#include "machine/page_alloc.h"
#include "machine/page_table.h"
#include "machine/phys_mem.h"

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace vmcheck {

enum class Backend : std::uint8_t { Modern, Legacy };

struct MachineConfig {
  unsigned cpus = 4;
  unsigned nodes = 2;
  u64 mem_per_node = u64{512} << 20;
  unsigned paging_levels = 4;
  Backend backend = Backend::Modern;
  // Lazy-free threshold in pages; -1 = auto (lazy_max_pages()), 0 = purge on
  // every free.
  std::int64_t lazy_pages = -1;
  unsigned tlb_entries = 64;
  // shootdown=async: the TLB flush of a lazy purge reaches the other CPUs one
  // at a time (Vmalloc::deliver_shootdown), as IPIs do; the purging CPU
  // waits, and the purged VA is reusable only once every CPU has flushed.
  // The model checker interleaves the deliveries with everything else.
  bool async_shootdown = false;

  // Parses one "key=value" pair of a trace's config line. Returns an error
  // message naming the key and what was wrong, or empty on success; on error
  // the config is unchanged.
  std::string set(std::string_view key, std::string_view value);
  // Checks the whole config (ranges, memory a multiple of the 4 MiB
  // MAX_ORDER block, ...). Error message or empty.
  std::string validate() const;
  std::string to_string() const; // "cpus=4 nodes=2 mem=512M paging=4 backend=modern lazy=auto"
};

class Machine {
public:
  // Precondition: cfg.validate() is empty (throws std::invalid_argument otherwise).
  explicit Machine(const MachineConfig &cfg);
  Machine(const Machine &) = delete;
  Machine &operator=(const Machine &) = delete;

  const MachineConfig &config() const { return cfg_; }
  PhysMem &mem() { return mem_; }
  const PhysMem &mem() const { return mem_; }
  PageAllocator &pages() { return alloc_; }
  const PageAllocator &pages() const { return alloc_; }
  PageTables &pt() { return pt_; }
  const PageTables &pt() const { return pt_; }
  Mmu &mmu() { return mmu_; }
  const Mmu &mmu() const { return mmu_; }
  FaultInjector &faults() { return faults_; }
  const FaultInjector &faults() const { return faults_; }
  DiagLog &diag() { return diag_; }
  const DiagLog &diag() const { return diag_; }
  DeferredWork &deferred() { return deferred_; }
  const DeferredWork &deferred() const { return deferred_; }

  // ---- address-space layout ----------------------------------------------------
  u64 vmalloc_start() const;
  u64 vmalloc_end() const; // inclusive, as the kernel's VMALLOC_END

  // ---- CPUs and context -----------------------------------------------------------
  unsigned num_online_cpus() const { return static_cast<unsigned>(cpus_.size()); }
  unsigned current_cpu() const { return current_; }
  unsigned cpu_to_node(unsigned cpu) const { return cpus_[cpu].node; }
  unsigned numa_node_id() const { return cpus_[current_].node; }
  // Switch the current CPU; false (nothing changed) for an invalid id.
  bool set_current_cpu(unsigned cpu);
  bool in_interrupt() const { return cpus_[current_].irq_depth > 0; }
  void irq_enter();
  // false (nothing changed) when the current CPU is not in interrupt context.
  bool irq_exit();
  const CpuState &cpu(unsigned n) const { return cpus_[n]; }
  void set_cpu_root(unsigned cpu, Pfn root) { cpus_[cpu].root = root; }

  // ---- boot phase -----------------------------------------------------------------
  // Early boot lasts until vmalloc_init() marks it over (vm_area_register_early
  // is legal only before).
  bool booting() const { return booting_; }
  void end_boot() { booting_ = false; }

  // ---- logical clock --------------------------------------------------------------
  u64 clock() const { return clock_; }
  void tick() { ++clock_; }

  // ---- conveniences over the page allocator ----------------------------------------
  // alloc_pages(gfp, order): current CPU's node first. (Inline: vmalloc
  // asks once per page.)
  std::optional<Pfn> alloc_pages(Gfp gfp, unsigned order, PageOwner owner = PageOwner::Kernel) {
    return alloc_.alloc_pages_node(static_cast<int>(numa_node_id()), gfp, order, owner);
  }
  // alloc_pages_node(nid, ...) with NUMA_NO_NODE meaning the current node.
  std::optional<Pfn> alloc_pages_node(int nid, Gfp gfp, unsigned order,
                                      PageOwner owner = PageOwner::Kernel) {
    return alloc_.alloc_pages_node(nid == NUMA_NO_NODE ? static_cast<int>(numa_node_id()) : nid,
                                   gfp, order, owner);
  }
  // PageAllocator::alloc_pages_bulk with NUMA_NO_NODE meaning the current node.
  unsigned alloc_pages_bulk(int nid, Gfp gfp, PageOwner owner, unsigned count,
                            std::vector<Pfn> &out) {
    return alloc_.alloc_pages_bulk(nid == NUMA_NO_NODE ? static_cast<int>(numa_node_id()) : nid,
                                   gfp, owner, count, out);
  }
  // A metadata (kmalloc-like) allocation: false when fault injection fails it.
  bool kmalloc_ok() { return !faults_.should_fail(FailPoint::VmapArea); }

  // Kernel-mode access by the current CPU through its TLB.
  Translation touch(u64 va, Access access);
  // Kernel-mode copy through the MMU (no TLB fill side effects beyond
  // translate()); false with the faulting address on a fault.
  bool kernel_read(u64 va, std::span<std::uint8_t> out, u64 *fault_va = nullptr);
  bool kernel_write(u64 va, std::span<const std::uint8_t> in, u64 *fault_va = nullptr);

  // Machine-level invariants (buddy, page tables). First violation or empty.
  std::string check() const;
  // Canonical hash of the whole machine (not the diagnostics log).
  u64 state_hash() const;
  void hash_into(StateHasher &h) const;

private:
  MachineConfig cfg_;
  DiagLog diag_;
  FaultInjector faults_;
  PhysMem mem_;
  PageAllocator alloc_;
  PageTables pt_;
  Mmu mmu_;
  DeferredWork deferred_;
  std::vector<CpuState> cpus_;
  unsigned current_ = 0;
  bool booting_ = true;
  u64 clock_ = 0;
};

} // namespace vmcheck
