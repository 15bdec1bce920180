#include "usermm/address_space.h"

#include <array>

namespace vmcheck {

std::optional<Pfn> find_or_create_page(Machine &m, AddressSpace &as, u64 index) {
  if (index >= as.nr_pages)
    return std::nullopt;
  if (auto it = as.pages.find(index); it != as.pages.end())
    return it->second;
  // Node 0: page-cache placement must not depend on which CPU faulted first.
  const Gfp gfp = GFP_HIGHUSER | (as.shmem ? __GFP_ZERO : 0);
  auto pfn = m.pages().alloc_pages_node(0, gfp, 0, PageOwner::PageCache);
  if (!pfn)
    return std::nullopt;
  if (!as.shmem) {
    std::array<std::uint8_t, PAGE_SIZE> data;
    for (u64 off = 0; off < PAGE_SIZE; ++off)
      data[off] = file_byte(index, off);
    m.mem().write(*pfn << PAGE_SHIFT, data);
  }
  Page &pg = m.mem().page(*pfn);
  pg.mapping = as.id;
  pg.private_data = index;
  pg.flags |= PG_uptodate;
  as.pages.emplace(index, *pfn);
  return pfn;
}

void release_page_cache(Machine &m, AddressSpace &as) {
  for (const auto &[index, pfn] : as.pages)
    m.pages().put_page(pfn);
  as.pages.clear();
}

} // namespace vmcheck
