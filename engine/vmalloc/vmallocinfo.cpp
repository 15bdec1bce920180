// /proc/vmallocinfo in the 4.19 line format, areas in address order:
//   0x<start>-0x<end> <size> <caller> pages=N phys=0x... ioremap vmalloc vmap user vpages N0=..
// lazily freed areas as "unpurged vm_area", vm-less areas (vm_map_ram,
// vmap blocks) as "vm_map_ram". The caller is the API function that made
// the area (the emulation has no return addresses to symbolise).
#include "vmalloc/vmalloc.h"

#include <cinttypes>
#include <cstdio>

namespace vmcheck {

std::string Vmalloc::vmallocinfo() const {
  std::map<u64, std::pair<const VmapArea *, bool>> all; // start -> (area, lazy)
  for (const auto &[s, va] : busy_)
    all[s] = {&va, false};
  for (const auto &[s, va] : lazy_)
    all[s] = {&va, true};

  std::string out;
  char buf[160];
  for (const auto &[s, entry] : all) {
    const auto [va, lazy] = entry;
    if (lazy || va->vm_id == 0) {
      std::snprintf(buf, sizeof buf, "0x%016" PRIx64 "-0x%016" PRIx64 " %7" PRIu64 " %s\n",
                    va->va_start, va->va_end, va->size(), lazy ? "unpurged vm_area" : "vm_map_ram");
      out += buf;
      continue;
    }
    const VmStruct &vm = *vms_.at(va->vm_id);
    if (vm.flags & VM_UNINITIALIZED)
      continue;
    std::snprintf(buf, sizeof buf, "0x%016" PRIx64 "-0x%016" PRIx64 " %7" PRIu64, vm.addr,
                  vm.addr + vm.size, vm.size);
    out += buf;
    if (!vm.caller.empty())
      out += " " + vm.caller;
    if (vm.nr_pages != 0)
      out += " pages=" + std::to_string(vm.nr_pages);
    if (vm.phys_addr != 0) {
      std::snprintf(buf, sizeof buf, " phys=0x%016" PRIx64, vm.phys_addr);
      out += buf;
    }
    if (vm.flags & VM_IOREMAP)
      out += " ioremap";
    if (vm.flags & VM_ALLOC)
      out += " vmalloc";
    if (vm.flags & VM_MAP)
      out += " vmap";
    if (vm.flags & VM_USERMAP)
      out += " user";
    if (vm.flags & VM_VPAGES)
      out += " vpages";
    std::vector<unsigned> per_node(m_.mem().nr_nodes(), 0);
    for (unsigned i = 0; i < vm.nr_pages; ++i)
      ++per_node[m_.mem().pfn_to_nid(vm.pages[i])];
    for (unsigned n = 0; n < per_node.size(); ++n)
      if (per_node[n] != 0)
        out += " N" + std::to_string(n) + "=" + std::to_string(per_node[n]);
    out += '\n';
  }
  return out;
}

} // namespace vmcheck
