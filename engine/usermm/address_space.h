// struct address_space: a "file" (or the shmem object behind a shared
// anonymous mapping) with a page cache. Pages are created on first use and
// filled deterministically, so every read of a file page is predictable:
// a file's byte at offset `off` of page `index` is file_byte(index, off);
// a shmem object's pages start zeroed.
#pragma once

#include "machine/machine.h"

#include <cstdint>
#include <map>
#include <optional>

namespace vmcheck {

// Contents of a never-written file page.
inline constexpr std::uint8_t file_byte(u64 index, u64 off) {
  return static_cast<std::uint8_t>((index * 31 + off) & 0xff);
}

// Invariant: every cached page has owner PageCache, mapping == id,
// private_data == its index, index < nr_pages, and holds one reference for
// the cache itself (refcount >= 1 + its mapcount).
struct AddressSpace {
  u64 id = 0;               // serial number, never reused (trace handle)
  u64 nr_pages = 0;         // file size in pages; faults at or past it are SIGBUS
  bool shmem = false;       // backs a shared anonymous mapping: zero-filled, not a trace handle
  std::map<u64, Pfn> pages; // the page cache: index -> pfn
};

// find_or_create_page(): the cached page at `index`, created and filled when
// missing. nullopt when index is past the end or the page allocation fails
// (the cache is then unchanged).
std::optional<Pfn> find_or_create_page(Machine &m, AddressSpace &as, u64 index);

// Drops the cache's reference on every page (truncate_inode_pages of the
// whole object); the caller has already unmapped them.
void release_page_cache(Machine &m, AddressSpace &as);

} // namespace vmcheck
