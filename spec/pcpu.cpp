// pcpu_get_vm_areas / pcpu_free_vm_areas: congruent areas placed top-down
// (the search itself is pcpu_find_base in placement.cpp).
#include "spec/vmalloc_spec.h"

#include <algorithm>

namespace vmcheck::spec {

std::vector<VmInfo> VmallocSpec::pcpu_get_vm_areas(std::span<const u64> offsets,
                                                   std::span<const u64> sizes, u64 align) {
  ensure_init();
  const char *fn = "pcpu_get_vm_areas";
  if (offsets.size() != sizes.size())
    throw KernelBug(fn, "offsets and sizes differ in length");
  if (offsets.empty()) {
    warn(fn, "no areas requested");
    return {};
  }
  if (!is_power_of_2(align) || !page_aligned(align))
    throw KernelBug(fn, "align is not a page-multiple power of two");
  const std::size_t nr = offsets.size();
  for (std::size_t i = 0; i < nr; ++i) {
    if (offsets[i] % align != 0 || sizes[i] % align != 0)
      throw KernelBug(fn, "area " + std::to_string(i) + " is not aligned to align");
    if (offsets[i] + sizes[i] < offsets[i])
      throw KernelBug(fn, "area " + std::to_string(i) + " wraps");
  }
  for (std::size_t i = 0; i < nr; ++i)
    for (std::size_t j = i + 1; j < nr; ++j)
      if (offsets[j] < offsets[i] + sizes[i] && offsets[i] < offsets[j] + sizes[j])
        throw KernelBug(fn,
                        "areas " + std::to_string(i) + " and " + std::to_string(j) + " overlap");
  if (std::find(sizes.begin(), sizes.end(), u64{0}) != sizes.end()) {
    warn(fn, "an area of size 0");
    return {};
  }
  const u64 lo = (vstart_ + align - 1) & ~(align - 1);
  const u64 top = vend_ & ~(align - 1);
  u64 last_end = 0;
  for (std::size_t i = 0; i < nr; ++i)
    last_end = std::max(last_end, offsets[i] + sizes[i]);
  if (top < lo || top - lo < last_end) {
    warn(fn, "the areas span more than the vmalloc space");
    return {};
  }

  // The two pointer arrays, then a vmap_area and a vm_struct per area; each
  // pair is attempted in full before a failure is acted on.
  const bool vms_ok = !should_fail(FailKind::VmapArea);
  const bool vas_ok = !should_fail(FailKind::VmapArea);
  if (!vms_ok || !vas_ok)
    return {};
  for (std::size_t i = 0; i < nr; ++i) {
    const bool va_ok = !should_fail(FailKind::VmapArea);
    const bool vm_ok = !should_fail(FailKind::VmapArea);
    if (!va_ok || !vm_ok)
      return {};
  }

  std::optional<u64> base = pcpu_find_base(offsets, sizes, align);
  if (!base) {
    purge_all();
    base = pcpu_find_base(offsets, sizes, align);
  }
  if (!base)
    return {};

  std::vector<VmInfo> out;
  for (std::size_t i = 0; i < nr; ++i) {
    Area a;
    a.start = *base + offsets[i];
    a.end = a.start + sizes[i];
    a.kind = AreaKind::VmArea;
    a.vm_id = next_vm_id_++;
    a.flags = VM_ALLOC;
    a.caller = fn;
    // get_vm_area_size() goes by the flags, and these have no VM_NO_GUARD.
    a.usable = sizes[i] - PAGE_SIZE;
    out.push_back(to_info(a));
    insert_area(std::move(a));
  }
  return out;
}

void VmallocSpec::pcpu_free_vm_areas(std::span<const VmInfo> vms) {
  for (const VmInfo &vm : vms)
    free_vm_area(vm);
}

} // namespace vmcheck::spec
