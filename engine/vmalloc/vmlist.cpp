#include "vmalloc/vmlist.h"

#include <cinttypes>
#include <cstdio>

namespace vmcheck {

namespace {

constexpr u64 kVmListTag = 0x766d6c6973743236ULL; // "vmlist26"

// ALIGN() as the seed's macro computes it: wraps to a low value on overflow.
u64 align_up_wrapping(u64 x, u64 align) {
  return (x + align - 1) & ~(align - 1);
}

std::string describe(const char *what, u64 addr, u64 size) {
  char buf[128];
  std::snprintf(buf, sizeof buf, "%s 0x%" PRIx64 " size 0x%" PRIx64, what, addr, size);
  return buf;
}

} // namespace

VmList::Index VmList::new_node(u64 addr, u64 size, Index next) {
  Index n;
  if (free_head_ != kNil) {
    n = free_head_;
    free_head_ = nodes_[n].next;
  } else {
    n = static_cast<Index>(nodes_.size());
    nodes_.emplace_back();
  }
  nodes_[n] = Node{addr, size, next};
  ++count_;
  return n;
}

std::optional<u64> VmList::alloc(u64 size, u64 align, u64 start, u64 end) {
  if (size == 0 || !is_power_of_2(align))
    return std::nullopt;
  // Wrapping arithmetic throughout on purpose: these are the seed's unsigned
  // long comparisons, including `end - size` underflowing when size > end.
  u64 addr = align_up_wrapping(start, align);
  Index prev = kNil;
  Index cur = head_;
  for (; cur != kNil; prev = cur, cur = nodes_[cur].next) {
    const u64 area_addr = nodes_[cur].addr;
    const u64 area_size = nodes_[cur].size;
    if (area_addr < addr) {
      if (area_addr + area_size >= addr)
        addr = align_up_wrapping(area_size + area_addr, align);
      continue;
    }
    if (size + addr < addr)
      return std::nullopt;
    if (size + addr <= area_addr)
      break;
    addr = align_up_wrapping(area_size + area_addr, align);
    if (addr > end - size)
      return std::nullopt;
  }
  const Index fresh = new_node(addr, size, cur);
  if (prev == kNil)
    head_ = fresh;
  else
    nodes_[prev].next = fresh;
  return addr;
}

bool VmList::remove(u64 addr) {
  Index prev = kNil;
  for (Index cur = head_; cur != kNil; prev = cur, cur = nodes_[cur].next) {
    if (nodes_[cur].addr != addr)
      continue;
    if (prev == kNil)
      head_ = nodes_[cur].next;
    else
      nodes_[prev].next = nodes_[cur].next;
    nodes_[cur].next = free_head_;
    free_head_ = cur;
    --count_;
    return true;
  }
  return false;
}

std::optional<VmListArea> VmList::find(u64 addr) const {
  for (Index n = head_; n != kNil; n = nodes_[n].next) {
    if (nodes_[n].addr == addr)
      return VmListArea{nodes_[n].addr, nodes_[n].size};
  }
  return std::nullopt;
}

std::vector<VmListArea> VmList::areas() const {
  std::vector<VmListArea> out;
  out.reserve(count_);
  for_each([&](const VmListArea &a) { out.push_back(a); });
  return out;
}

void VmList::clear() {
  nodes_.clear();
  free_head_ = kNil;
  head_ = kNil;
  count_ = 0;
}

std::string VmList::check() const {
  std::size_t seen = 0;
  const Node *prev = nullptr;
  for (Index n = head_; n != kNil; n = nodes_[n].next) {
    if (n >= nodes_.size() || ++seen > nodes_.size())
      return "vmlist link out of range or cyclic";
    const Node &x = nodes_[n];
    if (x.size == 0)
      return describe("zero-sized area at", x.addr, x.size);
    if (x.addr + x.size < x.addr)
      return describe("area wraps past the top of the address space at", x.addr, x.size);
    if (prev != nullptr && prev->addr + prev->size > x.addr)
      return describe("area out of order or overlapping its predecessor at", x.addr, x.size);
    prev = &x;
  }
  if (seen != count_)
    return "vmlist length does not match its count";
  std::size_t pooled = 0;
  for (Index n = free_head_; n != kNil; n = nodes_[n].next) {
    if (n >= nodes_.size() || ++pooled > nodes_.size())
      return "vmlist node free list out of range or cyclic";
  }
  if (pooled + count_ != nodes_.size())
    return "vmlist node pool leaks or double-counts nodes";
  return "";
}

void VmList::hash_into(StateHasher &h) const {
  h.tag(kVmListTag);
  h.add(static_cast<u64>(count_));
  for_each([&](const VmListArea &a) {
    h.add(a.addr);
    h.add(a.size);
  });
}

} // namespace vmcheck
