// /proc/vmallocinfo in the 4.19 line format, areas in address order:
//   0x<start>-0x<end> <size> <caller> pages=N phys=0x... ioremap vmalloc vmap user vpages N0=..
// lazily freed areas as "unpurged vm_area", vm-less areas (vm_map_ram,
// vmap blocks) as "vm_map_ram". The caller is the API function that made
// the area (the emulation has no return addresses to symbolise).
#include "vmalloc/vmalloc.h"

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstring>
#include <string>
#include <vector>

namespace vmcheck {

namespace {

// The two hex digits of every byte value: a line's addresses are written a
// byte at a time, not a digit at a time (vmallocinfo prints two per area).
constexpr std::array<char, 512> kHexPairs = [] {
  constexpr char digits[] = "0123456789abcdef";
  std::array<char, 512> pairs{};
  for (std::size_t b = 0; b < 256; ++b) {
    pairs[2 * b] = digits[b >> 4];
    pairs[2 * b + 1] = digits[b & 15];
  }
  return pairs;
}();

// "0x" and 16 hex digits.
void append_hex16(std::string &out, u64 v) {
  char buf[18] = {'0', 'x'};
  for (std::size_t i = 16; i >= 2; i -= 2, v >>= 8)
    std::memcpy(buf + i, &kHexPairs[2 * (v & 0xff)], 2);
  out.append(buf, sizeof buf);
}

// "0x<start>-0x<end> <size, right-aligned in 7>": the head of every line.
void append_head(std::string &out, u64 start, u64 end, u64 size) {
  append_hex16(out, start);
  out += '-';
  append_hex16(out, end);
  const std::string digits = std::to_string(size);
  out.append(digits.size() < 7 ? 8 - digits.size() : 1, ' ');
  out += digits;
}

} // namespace

std::string Vmalloc::vmallocinfo() const {
  // (area, lazy) by start: the two ordered maps merged, a start in both
  // listed once, as its lazy area.
  std::vector<std::pair<const VmapArea *, bool>> all;
  all.reserve(busy_.size() + lazy_.size());
  for (auto b = busy_.begin(), l = lazy_.begin(); b != busy_.end() || l != lazy_.end();) {
    if (l == lazy_.end() || (b != busy_.end() && b->first < l->first)) {
      all.emplace_back(&b->second, false);
      ++b;
    } else {
      if (b != busy_.end() && b->first == l->first)
        ++b;
      all.emplace_back(&l->second, true);
      ++l;
    }
  }

  std::string out;
  const PhysMem &mem = m_.mem();
  std::vector<unsigned> per_node(mem.nr_nodes(), 0);
  for (const auto &[va, lazy] : all) {
    if (lazy || va->vm_id == 0) {
      append_head(out, va->va_start, va->va_end, va->size());
      out += lazy ? " unpurged vm_area\n" : " vm_map_ram\n";
      continue;
    }
    const VmStruct &vm = *va->vm;
    if (vm.flags & VM_UNINITIALIZED)
      continue;
    append_head(out, vm.addr, vm.addr + vm.size, vm.size);
    if (!vm.caller.empty()) {
      out += ' ';
      out += vm.caller;
    }
    if (vm.nr_pages != 0) {
      out += " pages=";
      out += std::to_string(vm.nr_pages);
    }
    if (vm.phys_addr != 0) {
      out += " phys=";
      append_hex16(out, vm.phys_addr);
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
    std::fill(per_node.begin(), per_node.end(), 0);
    for (unsigned i = 0; i < vm.nr_pages; ++i)
      ++per_node[mem.pfn_to_nid(vm.pages[i])];
    for (unsigned n = 0; n < per_node.size(); ++n)
      if (per_node[n] != 0) {
        out += " N";
        out += std::to_string(n);
        out += '=';
        out += std::to_string(per_node[n]);
      }
    out += '\n';
  }
  return out;
}

} // namespace vmcheck
