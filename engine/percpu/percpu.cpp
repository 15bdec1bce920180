// mm/percpu.c, the small part vmcheck needs: the first-chunk layout, the
// per-chunk allocation map, __alloc_percpu / free_percpu / per_cpu_ptr, the
// balance work, and the invariants and state hash of the whole allocator.
#include "percpu/percpu.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <set>
#include <stdexcept>

namespace vmcheck {

namespace {

std::string hex(u64 v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%" PRIx64, v);
  return buf;
}

u64 align_up(u64 x, u64 a) {
  return (x + a - 1) & ~(a - 1);
}

} // namespace

PcpuLayout pcpu_build_alloc_info(const Machine &m, u64 unit_size) {
  PcpuLayout l;
  l.unit_size = unit_size;
  l.unit_pages = static_cast<unsigned>(unit_size >> PAGE_SHIFT);
  const unsigned cpus = m.num_online_cpus();
  // One group per node that has CPUs, the node's CPUs in id order.
  for (unsigned node = 0; node < m.mem().nr_nodes(); ++node) {
    PcpuGroupInfo g;
    for (unsigned cpu = 0; cpu < cpus; ++cpu)
      if (m.cpu_to_node(cpu) == node)
        g.cpu.push_back(cpu);
    if (!g.cpu.empty())
      l.groups.push_back(std::move(g));
  }
  l.unit_map.assign(cpus, 0);
  l.unit_off.assign(cpus, 0);
  u64 offset = 0;
  unsigned unit = 0;
  for (PcpuGroupInfo &g : l.groups) {
    const u64 size = g.cpu.size() * unit_size;
    g.base_offset = offset;
    l.group_offsets.push_back(offset);
    l.group_sizes.push_back(size);
    for (std::size_t i = 0; i < g.cpu.size(); ++i) {
      l.unit_map[g.cpu[i]] = unit++;
      l.unit_off[g.cpu[i]] = offset + i * unit_size;
    }
    // A hole as large as the group before the next one: congruent areas
    // then have gaps between them, as NUMA distances give the kernel.
    offset += 2 * size;
  }
  l.nr_units = unit;
  for (unsigned cpu = 0; cpu < cpus; ++cpu) {
    if (l.unit_off[cpu] < l.unit_off[l.first_unit_cpu])
      l.first_unit_cpu = cpu;
    if (l.unit_off[cpu] > l.unit_off[l.last_unit_cpu])
      l.last_unit_cpu = cpu;
  }
  return l;
}

Percpu::Percpu(Machine &m, Vmalloc &v, PcpuConfig cfg) : m_(m), v_(v) {
  if (cfg.unit_size == 0 || !page_aligned(cfg.unit_size) || cfg.unit_size > (u64{1} << 30))
    throw std::invalid_argument("percpu unit_size must be a page multiple in (0, 1G]");
  layout_ = pcpu_build_alloc_info(m, cfg.unit_size);
}

PcpuChunk *Percpu::chunk_by_id(u64 id) {
  const auto it = chunks_.find(id);
  return it == chunks_.end() ? nullptr : it->second.get();
}

bool Percpu::is_first_chunk(const PcpuChunk &chunk) const {
  return !chunks_.empty() && chunks_.begin()->first == chunk.id;
}

std::optional<u64> Percpu::find_fit(const PcpuChunk &chunk, u64 size, u64 align) const {
  if (chunk.free_bytes < size)
    return std::nullopt;
  u64 cur = 0;
  for (const auto &[off, len] : chunk.areas) {
    const u64 start = align_up(cur, align);
    if (start + size <= off)
      return start;
    cur = off + len;
  }
  const u64 start = align_up(cur, align);
  if (start + size <= layout_.unit_size)
    return start;
  return std::nullopt;
}

int Percpu::populate_range(PcpuChunk &chunk, unsigned page_start, unsigned page_end) {
  std::vector<std::pair<unsigned, unsigned>> done;
  unsigned rs = page_start;
  while (rs < page_end) {
    if (chunk.populated[rs]) {
      ++rs;
      continue;
    }
    unsigned re = rs;
    while (re < page_end && !chunk.populated[re])
      ++re;
    if (const int err = pcpu_populate_chunk(chunk, rs, re); err != 0) {
      for (const auto &[s, e] : done) {
        pcpu_depopulate_chunk(chunk, s, e);
        pcpu_post_unmap_tlb_flush(chunk, s, e);
      }
      return err;
    }
    done.emplace_back(rs, re);
    rs = re;
  }
  return 0;
}

u64 Percpu::__alloc_percpu(u64 size, u64 align) {
  if (size == 0 || size > layout_.unit_size || !is_power_of_2(align) || align > PAGE_SIZE) {
    m_.diag().warn("pcpu_alloc", "illegal size (" + std::to_string(size) + ") or align (" +
                                     std::to_string(align) + ") for percpu allocation");
    return 0;
  }
  align = std::max(align, PCPU_MIN_ALLOC_SIZE);
  size = align_up(size, PCPU_MIN_ALLOC_SIZE);

  PcpuChunk *chunk = nullptr;
  u64 off = 0;
  for (const auto &[id, c] : chunks_)
    if (const std::optional<u64> fit = find_fit(*c, size, align)) {
      chunk = c.get();
      off = *fit;
      break;
    }
  bool created = false;
  if (chunk == nullptr) {
    chunk = pcpu_create_chunk();
    if (chunk == nullptr) {
      m_.diag().error("pcpu_alloc", "allocation failed, size=" + std::to_string(size) + " align=" +
                                        std::to_string(align) + ", failed to allocate new chunk");
      return 0;
    }
    created = true;
    off = 0; // a fresh chunk fits any legal request at offset 0
  }

  chunk->areas[off] = size;
  chunk->free_bytes -= size;
  const unsigned page_start = static_cast<unsigned>(off >> PAGE_SHIFT);
  const unsigned page_end = static_cast<unsigned>(page_align(off + size) >> PAGE_SHIFT);
  if (populate_range(*chunk, page_start, page_end) != 0) {
    chunk->areas.erase(off);
    chunk->free_bytes += size;
    if (created)
      pcpu_destroy_chunk(chunk);
    m_.diag().error("pcpu_alloc", "allocation failed, size=" + std::to_string(size) + " align=" +
                                      std::to_string(align) + ", unable to populate area");
    return 0;
  }

  // The kernel memsets every CPU's copy through its mapping.
  const std::vector<std::uint8_t> zeros(size, 0);
  for (unsigned cpu = 0; cpu < m_.num_online_cpus(); ++cpu) {
    const u64 addr = pcpu_chunk_addr(*chunk, cpu, 0) + off;
    u64 fault = 0;
    if (!m_.kernel_write(addr, zeros, &fault))
      m_.diag().finding("pcpu_alloc", "clearing cpu " + std::to_string(cpu) + "'s copy faulted",
                        fault);
  }
  return chunk->base_addr + off;
}

void Percpu::free_percpu(u64 ptr) {
  if (ptr == 0)
    return;
  PcpuChunk *chunk = pcpu_chunk_addr_search(ptr);
  if (chunk == nullptr || !chunk->areas.contains(ptr - chunk->base_addr)) {
    m_.diag().warn("free_percpu", "not the start of a live percpu allocation", ptr);
    return;
  }
  const auto it = chunk->areas.find(ptr - chunk->base_addr);
  chunk->free_bytes += it->second;
  chunk->areas.erase(it);
  if (chunk->areas.empty() && !is_first_chunk(*chunk))
    m_.deferred().queue("pcpu_balance_work", 0, [this] { pcpu_balance_workfn(); });
}

u64 Percpu::per_cpu_ptr(u64 ptr, unsigned cpu) {
  if (cpu >= m_.num_online_cpus()) {
    m_.diag().warn("per_cpu_ptr", "no CPU " + std::to_string(cpu), ptr);
    return 0;
  }
  return ptr + layout_.unit_off[cpu];
}

void Percpu::pcpu_balance_workfn() {
  std::vector<PcpuChunk *> to_free;
  for (const auto &[id, c] : chunks_)
    if (c->areas.empty() && !is_first_chunk(*c))
      to_free.push_back(c.get());
  for (PcpuChunk *chunk : to_free) {
    unsigned rs = 0;
    while (rs < layout_.unit_pages) {
      if (!chunk->populated[rs]) {
        ++rs;
        continue;
      }
      unsigned re = rs;
      while (re < layout_.unit_pages && chunk->populated[re])
        ++re;
      pcpu_depopulate_chunk(*chunk, rs, re);
      rs = re;
    }
    pcpu_destroy_chunk(chunk);
  }
}

// ---- invariants and hashing -------------------------------------------------------------

std::string Percpu::check_chunk(const PcpuChunk &c, std::map<Pfn, u64> &frames) const {
  const std::string name = "chunk " + std::to_string(c.id);
  if (c.id == 0 || c.id >= next_chunk_id_)
    return name + " has an id never handed out";
  if (c.vm_ids.size() != layout_.groups.size())
    return name + " has " + std::to_string(c.vm_ids.size()) + " areas for " +
           std::to_string(layout_.groups.size()) + " groups";
  const auto &vms = v_.vm_structs();
  for (std::size_t g = 0; g < c.vm_ids.size(); ++g) {
    const auto it = vms.find(c.vm_ids[g]);
    if (it == vms.end())
      return name + ": area of group " + std::to_string(g) + " is not live";
    const VmStruct &vm = *it->second;
    if (vm.addr - layout_.group_offsets[g] != c.base_addr)
      return name + ": area of group " + std::to_string(g) + " at " + hex(vm.addr) +
             " is not congruent with base " + hex(c.base_addr);
    if (vm.size != layout_.group_sizes[g])
      return name + ": area of group " + std::to_string(g) + " has size " + hex(vm.size);
  }
  if (c.populated.size() != layout_.unit_pages)
    return name + " has a populated bitmap of the wrong size";
  const PageTables &pt = m_.pt();
  for (unsigned i = 0; i < layout_.unit_pages; ++i)
    for (unsigned cpu = 0; cpu < m_.num_online_cpus(); ++cpu) {
      const u64 va = pcpu_chunk_addr(c, cpu, i);
      const PteRef r = pt.walk(pt.kernel_root(), va);
      const std::string where = name + " page " + std::to_string(i) + " of cpu " +
                                std::to_string(cpu) + " (" + hex(va) + ")";
      if (r.present() != c.populated[i])
        return where +
               (r.present() ? " is mapped but not populated" : " is populated but unmapped");
      if (!r.present())
        continue;
      if (r.level != 1)
        return where + " is not a 4 KiB mapping";
      const Pfn pfn = r.pfn();
      if (!m_.mem().pfn_valid(pfn))
        return where + " maps an invalid frame";
      const Page &pg = m_.mem().peek(pfn);
      if (pg.owner != PageOwner::Percpu || pg.refcount == 0)
        return where + " maps a frame not owned by percpu";
      if (pg.private_data != c.id)
        return where + ": reverse lookup names chunk " + std::to_string(pg.private_data);
      if (const auto [it, fresh] = frames.emplace(pfn, va); !fresh)
        return where + " shares its frame with " + hex(it->second);
    }
  u64 used = 0;
  u64 prev_end = 0;
  for (const auto &[off, size] : c.areas) {
    const std::string where = name + " allocation at offset " + hex(off);
    if (size == 0 || off % PCPU_MIN_ALLOC_SIZE != 0 || size % PCPU_MIN_ALLOC_SIZE != 0)
      return where + " is not made of whole allocation units";
    if (off < prev_end)
      return where + " overlaps the previous one";
    if (off + size > layout_.unit_size || off + size < off)
      return where + " leaves the unit";
    for (u64 p = off >> PAGE_SHIFT; p < page_align(off + size) >> PAGE_SHIFT; ++p)
      if (!c.populated[p])
        return where + " lies on unpopulated page " + std::to_string(p);
    prev_end = off + size;
    used += size;
  }
  if (c.free_bytes != layout_.unit_size - used)
    return name + " counts " + std::to_string(c.free_bytes) + " free bytes, the map has " +
           std::to_string(layout_.unit_size - used);
  return {};
}

std::string Percpu::check() const {
  if (!pages_.empty() && pages_.size() != std::size_t{layout_.nr_units} * layout_.unit_pages)
    return "temp pages array has the wrong size";
  std::map<Pfn, u64> frames; // every mapped percpu frame -> where: no frame serves two slots
  std::set<u64> bases;
  for (const auto &[id, c] : chunks_) {
    if (id != c->id)
      return "chunk " + std::to_string(c->id) + " filed under id " + std::to_string(id);
    if (!bases.insert(c->base_addr).second)
      return "two chunks share base " + hex(c->base_addr);
    if (std::string e = check_chunk(*c, frames); !e.empty())
      return e;
  }
  return {};
}

void Percpu::hash_into(StateHasher &h) const {
  h.tag(0x9c9u);
  h.add(layout_.unit_size);
  h.add(layout_.nr_units);
  h.add(next_chunk_id_);
  h.tag(pages_.size());
  for (Pfn p : pages_)
    h.add(p);
  h.tag(chunks_.size());
  for (const auto &[id, c] : chunks_) {
    h.add(id);
    h.add(c->base_addr);
    h.tag(c->vm_ids.size());
    for (u64 vm : c->vm_ids)
      h.add(vm);
    u64 word = 0;
    for (unsigned i = 0; i < c->populated.size(); ++i) {
      word = (word << 1) | (c->populated[i] ? 1 : 0);
      if (i % 64 == 63) {
        h.add(word);
        word = 0;
      }
    }
    h.add(word);
    h.tag(c->areas.size());
    for (const auto &[off, size] : c->areas) {
      h.add(off);
      h.add(size);
    }
    h.add(c->free_bytes);
  }
}

} // namespace vmcheck
