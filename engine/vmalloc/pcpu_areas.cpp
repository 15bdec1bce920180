// Congruent areas for the percpu allocator: pvm_find_next_prev,
// pvm_determine_end and pcpu_get_vm_areas in the 4.19 style, which searches
// top-down over the reserved areas (busy and lazily freed alike, as both sat
// in 4.19's address tree) rather than over the free space.
#include "vmalloc/vmalloc.h"

#include <cinttypes>
#include <cstdio>
#include <memory>

namespace vmcheck {

namespace {

constexpr const char *kPcpu = "pcpu_get_vm_areas";

std::string hex(u64 v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%" PRIx64, v);
  return buf;
}

using AreaMap = std::map<u64, VmapArea>;

// The lowest area in `set` ending above addr.
const VmapArea *first_ending_above(const AreaMap &set, u64 addr) {
  auto it = set.upper_bound(addr);
  if (it != set.begin() && std::prev(it)->second.va_end > addr)
    return &std::prev(it)->second;
  return it == set.end() ? nullptr : &it->second;
}

// The highest area in `set` starting below addr.
const VmapArea *last_starting_below(const AreaMap &set, u64 addr) {
  auto it = set.lower_bound(addr);
  return it == set.begin() ? nullptr : &std::prev(it)->second;
}

const VmapArea *last_of(const AreaMap &set) {
  return set.empty() ? nullptr : &set.rbegin()->second;
}

const VmapArea *lower(const VmapArea *a, const VmapArea *b) {
  if (a == nullptr)
    return b;
  if (b == nullptr)
    return a;
  return a->va_start < b->va_start ? a : b;
}

const VmapArea *higher(const VmapArea *a, const VmapArea *b) {
  if (a == nullptr)
    return b;
  if (b == nullptr)
    return a;
  return a->va_start > b->va_start ? a : b;
}

std::optional<VmapArea> copy_of(const VmapArea *va) {
  return va == nullptr ? std::nullopt : std::optional<VmapArea>(*va);
}

// The area just below `va` among all reserved areas (rb_prev in 4.19's tree).
std::optional<VmapArea> area_before(const AreaMap &busy, const AreaMap &lazy, const VmapArea &va) {
  return copy_of(
      higher(last_starting_below(busy, va.va_start), last_starting_below(lazy, va.va_start)));
}

// The 4.19 top-down scan: the highest base at which every area
// [base + offsets[i], base + offsets[i] + sizes[i]) misses all reserved
// areas, with base >= vmalloc_start; nullopt when none. The scan starts
// from the areas around top (VMALLOC_END).
std::optional<u64> find_pcpu_base(const Vmalloc &v, std::span<const u64> offsets,
                                  std::span<const u64> sizes, u64 align, std::size_t last_area,
                                  u64 vmalloc_start, u64 vmalloc_end, u64 top) {
  const std::size_t nr = offsets.size();
  const u64 last_end = offsets[last_area] + sizes[last_area];
  std::size_t area = last_area;
  std::size_t term_area = last_area;
  u64 start = offsets[area];
  u64 end = start + sizes[area];

  auto [found, next, prev] = v.pvm_find_next_prev(top);
  if (!found)
    return vmalloc_end - last_end;
  u64 base = v.pvm_determine_end(next, prev, align) - end;
  // Every move pulls base strictly down, which is what ends the scan.
  auto pull_down = [&](u64 to) {
    if (to + last_end >= base + last_end)
      throw KernelBug(kPcpu, "base did not move down from " + hex(base));
    base = to;
    term_area = area;
  };
  for (;;) {
    // base may have wrapped below zero: compare with last_end added back.
    if (base + last_end < vmalloc_start + last_end)
      return std::nullopt;
    if (next && next->va_start < base + end) {
      // Overlaps the area above: end right below it.
      pull_down(v.pvm_determine_end(next, prev, align) - end);
      continue;
    }
    if (prev && prev->va_end > base + start) {
      // Overlaps the area below: end right below that one instead.
      next = prev;
      prev = v.pvm_find_next_prev(next->va_start).prev;
      pull_down(v.pvm_determine_end(next, prev, align) - end);
      continue;
    }
    // Fits; every area must fit again since the last time base moved.
    area = (area + nr - 1) % nr;
    if (area == term_area)
      return base;
    start = offsets[area];
    end = start + sizes[area];
    auto around = v.pvm_find_next_prev(base + end);
    next = around.next;
    prev = around.prev;
  }
}

} // namespace

// pvm_find_next_prev: next is the lowest area ending above end, prev the one
// just below next (the highest ending at or below end).
Vmalloc::PvmResult Vmalloc::pvm_find_next_prev(u64 end) const {
  PvmResult r;
  const VmapArea *next = lower(first_ending_above(busy_, end), first_ending_above(lazy_, end));
  if (next != nullptr) {
    r.next = *next;
    r.prev = area_before(busy_, lazy_, *next);
  } else {
    r.prev = copy_of(higher(last_of(busy_), last_of(lazy_)));
  }
  r.found = r.next || r.prev;
  return r;
}

// pvm_determine_end: the highest align-aligned address at or below
// VMALLOC_END and next's start; next/prev move down until prev ends at or
// below it. The address may still lie inside next: the caller checks.
u64 Vmalloc::pvm_determine_end(std::optional<VmapArea> &next, std::optional<VmapArea> &prev,
                               u64 align) const {
  const u64 vmalloc_end = m_.vmalloc_end() & ~(align - 1);
  const u64 addr = next ? std::min(next->va_start & ~(align - 1), vmalloc_end) : vmalloc_end;
  while (prev && prev->va_end > addr) {
    next = prev;
    prev = area_before(busy_, lazy_, *next);
  }
  return addr;
}

// pcpu_get_vm_areas: congruent VM_ALLOC areas without guard pages, placed as
// high as they fit; empty on failure with nothing changed but a lazy purge.
std::vector<VmStruct *> Vmalloc::pcpu_get_vm_areas(std::span<const u64> offsets,
                                                   std::span<const u64> sizes, u64 align) {
  ensure_initialized();
  // The kernel takes one count for both arrays and reads offsets[0] even for
  // none; here a mismatch or an empty request is refused as bad input.
  if (offsets.empty() || offsets.size() != sizes.size()) {
    m_.diag().warn(kPcpu, "needs as many sizes as offsets, at least one");
    return {};
  }
  if (!page_aligned(align) || !is_power_of_2(align))
    throw KernelBug(kPcpu, "alignment " + hex(align) + " is not a page-aligned power of two");
  const std::size_t nr = offsets.size();
  for (std::size_t i = 0; i < nr; ++i)
    if ((offsets[i] & (align - 1)) != 0 || (sizes[i] & (align - 1)) != 0)
      throw KernelBug(kPcpu, "area " + std::to_string(i) + " (" + hex(offsets[i]) + "+" +
                                 hex(sizes[i]) + ") is not aligned to " + hex(align));
  // An empty or wrapping area has no vmap_area to stand for it; the kernel
  // never asks for one.
  for (std::size_t i = 0; i < nr; ++i)
    if (sizes[i] == 0 || offsets[i] + sizes[i] < offsets[i]) {
      m_.diag().warn(kPcpu, "area " + std::to_string(i) + " is empty or wraps");
      return {};
    }
  std::size_t last_area = 0;
  for (std::size_t i = 0; i < nr; ++i) {
    const u64 start = offsets[i];
    const u64 end = start + sizes[i];
    if (start > offsets[last_area])
      last_area = i;
    for (std::size_t j = i + 1; j < nr; ++j)
      if (offsets[j] < end && start < offsets[j] + sizes[j])
        throw KernelBug(kPcpu,
                        "areas " + std::to_string(i) + " and " + std::to_string(j) + " overlap");
  }
  const u64 last_end = offsets[last_area] + sizes[last_area];
  const u64 vmalloc_start = (m_.vmalloc_start() + align - 1) & ~(align - 1);
  const u64 vmalloc_end = m_.vmalloc_end() & ~(align - 1);
  if (vmalloc_start < m_.vmalloc_start() || vmalloc_start > vmalloc_end ||
      vmalloc_end - vmalloc_start < last_end) {
    m_.diag().warn(kPcpu, "span " + hex(last_end) + " does not fit in the vmalloc range");
    return {};
  }
  // 4.19's metadata, all before the search (a failure changes nothing):
  // the vms[] and vas[] arrays (both attempted before either is checked),
  // then per area a vmap_area and a vm_struct (both attempted, then checked).
  const bool vms_ok = m_.kmalloc_ok();
  const bool vas_ok = m_.kmalloc_ok();
  if (!vms_ok || !vas_ok)
    return {};
  for (std::size_t i = 0; i < nr; ++i) {
    const bool va_ok = m_.kmalloc_ok();
    const bool vm_ok = m_.kmalloc_ok();
    if (!va_ok || !vm_ok)
      return {};
  }

  std::optional<u64> base;
  for (bool purged = false;; purged = true) {
    base = find_pcpu_base(*this, offsets, sizes, align, last_area, vmalloc_start, vmalloc_end,
                          m_.vmalloc_end());
    if (base || purged)
      break;
    purge_vmap_area_lazy();
  }
  if (!base)
    return {};
  if (*base < vmalloc_start || *base + last_end > vmalloc_end)
    throw KernelBug(kPcpu, "base " + hex(*base) + " leaves the vmalloc range");

  std::vector<VmStruct *> vms;
  vms.reserve(nr);
  for (std::size_t i = 0; i < nr; ++i) {
#ifdef VMCHECK_MUTANT_pcpu_not_congruent
    const u64 start = *base + offsets[i] - (i > 0 ? PAGE_SIZE : 0); // mutant: offsets not kept
#else
    const u64 start = *base + offsets[i];
#endif
    const u64 size = sizes[i];
    if (backend_ == Backend::Modern) {
      if (!free_.reserve(start, size))
        throw KernelBug(kPcpu, "area " + hex(start) + " overlaps an existing area");
    } else {
      // The legacy list only places first fit: a window of exactly the area
      // makes it take this address or nothing.
      const std::optional<u64> placed = vmlist_.alloc(size, PAGE_SIZE, start, start + size);
      if (placed != start)
        throw KernelBug(kPcpu, "area " + hex(start) + " overlaps an existing area");
    }
    auto vm = std::make_unique<VmStruct>();
    vm->id = next_vm_id_++;
    vm->addr = start;
    vm->size = size;
    vm->flags = VM_ALLOC; // 4.19's setup_vmalloc_vm(..., VM_ALLOC, ...)
    vm->has_guard = false;
    vm->caller = kPcpu;
    busy_[start] = VmapArea{start, start + size, vm->id, 0, vm.get()};
    vms.push_back(vm.get());
    vms_[vm->id] = std::move(vm);
  }
  return vms;
}

// pcpu_free_vm_areas: frees every area (lazily, like vfree's VA).
void Vmalloc::pcpu_free_vm_areas(std::span<VmStruct *const> vms) {
  ensure_initialized();
  for (VmStruct *vm : vms) {
    if (vm == nullptr)
      throw KernelBug("pcpu_free_vm_areas", "NULL area in the array");
    free_vm_area(vm);
  }
}

} // namespace vmcheck
