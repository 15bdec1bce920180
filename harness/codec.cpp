#include "harness/codec.h"

#include "vmcheck/abi.h"

#include <algorithm>
#include <array>
#include <functional>
#include <map>

namespace vmcheck {

namespace {

constexpr std::uint8_t kLiteral = 0xff;  // selector: an 8-byte literal follows
constexpr std::uint8_t kNullAddr = 0xfe; // selector: the literal NULL
constexpr std::size_t kMaxHandles = 200; // handle selectors stay below kNullAddr

// ---- tables of interesting values ------------------------------------------------------

constexpr u64 P = PAGE_SIZE;
constexpr u64 S = VMALLOC_START_L4;

// Sizes come in two weights. The selector bytes below kBigSizeSelector pick
// a small size; the 15 above it (but kLiteral) the large ones, together
// once in 17 draws: a page array that needs a vmalloc of its own (513
// pages), 1 MiB, one that exhausts memory (4 GiB), and, once in 256 draws,
// an area of which two reach lazy=auto's threshold (8191 pages and a guard
// each; 2 CPUs give 16384). Each of those but 4 GiB (refused before any
// page is allocated) costs a page allocation and a PTE per page: drawn as
// often as the small ones they made most inputs 10 times slower, and the
// 8191-page one alone, drawn as often as the other large ones, still took
// half of all the work.
constexpr std::array<u64, 14> kSmallSizes = {0,      1,       P - 1,  P,         P + 1,
                                             2 * P,  3 * P,   4 * P,  16 * P,    64 * P,
                                             65 * P, 100 * P, ~P + 1, 17 * P + 5};
constexpr std::uint8_t kBigSizeSelector = 0xf0;
// Selector kBigSizeSelector + i draws kBigSizes[i]; the encoder writes the
// first selector of a size.
constexpr std::array<u64, 15> kBigSizes = {
    513 * P,      1 << 20, u64{1} << 32, 513 * P,      1 << 20, u64{1} << 32, 513 * P,      1 << 20,
    u64{1} << 32, 513 * P, 1 << 20,      u64{1} << 32, 513 * P, 1 << 20,      u64{8191} * P};
static_assert(kBigSizeSelector + kBigSizes.size() == kLiteral);
static_assert(kSmallSizes.size() <= kBigSizeSelector);
constexpr std::array<u64, 11> kAligns = {1,       P, 2 * P, 8 * P,        1 << 16,     1 << 21,
                                         1 << 22, 3, 0,     u64{1} << 40, u64{1} << 46};
constexpr std::array<u64, 9> kGfps = {
    GFP_KERNEL, GFP_KERNEL | __GFP_ZERO, GFP_KERNEL | __GFP_NOWARN,  GFP_ATOMIC,
    GFP_NOWAIT, GFP_DMA32 | GFP_KERNEL,  GFP_KERNEL | __GFP_HIGHMEM, GFP_KERNEL | __GFP_THISNODE,
    0x80000000u};
// Table only: a prot without _PAGE_PRESENT makes mappings no access can use.
constexpr std::array<u64, 3> kProts = {PAGE_KERNEL, PAGE_KERNEL_EXEC, PAGE_KERNEL_RO};
constexpr std::array<u64, 8> kVmFlags = {
    0, VM_ALLOC, VM_IOREMAP, VM_MAP, VM_USERMAP, VM_NO_GUARD, VM_IOREMAP | VM_NO_GUARD, 0x10000};
// What both backends treat alike (VM_NO_GUARD and VM_IOREMAP alignment are
// documented differences).
constexpr std::array<u64, 5> kSharedVmFlags = {0, VM_ALLOC, VM_MAP, VM_USERMAP, 0x10000};
constexpr std::array<u64, 5> kNodes = {static_cast<u64>(-1), 0, 1, 2, 7};
constexpr std::array<u64, 12> kCounts = {0, 1, 2, 3, 4, 5, 8, 16, 63, 64, 65, 70};
constexpr std::array<u64, 8> kListLens = {1, 2, 3, 4, 8, 64, 65, 70};
constexpr std::array<u64, 7> kOrders = {0, 1, 2, 3, 6, 10, 11};
constexpr std::array<u64, 5> kCpus = {0, 1, 2, 3, 5};
constexpr std::array<u64, 6> kFailNs = {1, 2, 3, 5, 10, 0};
constexpr std::array<u64, 7> kByteLens = {1, 2, 3, 8, 64, P, P + 1};
constexpr std::array<u64, 7> kReadLens = {0, 1, 2, 8, P, P + 1, 2 * P};
constexpr std::array<std::int64_t, 8> kOffsets = {0, 1, 4095, 4096, 8192, 12288, -1, -4096};
constexpr std::array<std::int64_t, 3> kFreeOffsets = {0, 1, 4095};
// Only the start: an offset could leave a small area for its neighbour.
constexpr std::array<std::int64_t, 1> kVmOffsets = {0};
constexpr std::array<u64, 4> kFreeRawAddrs = {0, VMALLOC_END_L4, S - P, S + 0x123};
constexpr std::array<u64, 6> kRawAddrs = {S, S + P, VMALLOC_END_L4, 0, S - P, S + 0x100000};
// (start, end) windows for __get_vm_area / __vmalloc_node_range.
constexpr std::array<std::pair<u64, u64>, 6> kWindows = {
    {{S, VMALLOC_END_L4},
     {S + 0x100000, S + 0x104000},
     {S, S + 0x10000},
     {VMALLOC_END_L4 - 0x100000 + 1, VMALLOC_END_L4},
     {S - P, S + P},
     {S + 0x2000, S + 0x2000}}};
constexpr std::array<std::string_view, 3> kModes = {"read", "write", "exec"};

// The usermm vocabulary: user addresses around three VMA bases (0x400000,
// 0x800000, 0xc00000) and the edges of the user half, lengths around a page, flags that make plain,
// shared, read-only and driver (VM_PFNMAP) mappings.
constexpr std::array<u64, 12> kUserAddrs = {0x400000, 0x401000, 0x402000,       0x403000,
                                            0x800000, 0x801000, 0xc00000,       0x400010,
                                            0x401ffc, 0,        0x7ffffffff000, 0x400001};
constexpr std::array<u64, 8> kUserLens = {P, 2 * P, 3 * P, 4 * P, 0, 1, 16 * P, P + 1};
// Mappings vm_insert_page and the fault path may fill: never VM_PFNMAP.
constexpr std::array<u64, 7> kPageVmaFlags = {VM_READ | VM_WRITE | VM_SHARED,
                                              VM_READ | VM_WRITE,
                                              VM_READ,
                                              VM_READ | VM_SHARED,
                                              VM_READ | VM_WRITE | VM_EXEC,
                                              0,
                                              VM_READ | VM_WRITE | VM_SHARED | VM_MIXEDMAP};
// Driver mappings: VM_PFNMAP and shared, so never a COW mapping (what
// vmf_insert_pfn BUGs on).
constexpr std::array<u64, 2> kPfnVmaFlags = {VM_READ | VM_WRITE | VM_SHARED | VM_IO | VM_PFNMAP,
                                             VM_READ | VM_SHARED | VM_PFNMAP};
constexpr std::array<u64, 5> kProtFlags = {VM_READ, VM_READ | VM_WRITE, 0, VM_READ | VM_EXEC,
                                           VM_READ | VM_WRITE | VM_EXEC};
constexpr std::array<u64, 5> kPgOffs = {0, 1, 2, 3, u64{1} << 52};
constexpr std::array<u64, 4> kGupFlags = {0, FOLL_WRITE, FOLL_FORCE, FOLL_WRITE | FOLL_FORCE};
constexpr std::array<u64, 3> kUserProts = {PAGE_SHARED, PAGE_READONLY, PAGE_KERNEL};
constexpr std::array<u64, 2> kEvenCows = {0, 1};
constexpr std::array<u64, 4> kFilePages = {1, 2, 4, 8};
constexpr std::array<std::string_view, 3> kFailKinds = {"alloc_page", "page_table", "vmap_area"};

struct PcpuCall {
  std::vector<u64> offsets, sizes;
  u64 align;
};
const std::vector<PcpuCall> &pcpu_calls() {
  static const std::vector<PcpuCall> calls = {
      {{0, 64 << 10}, {16 << 10, 16 << 10}, P},
      {{0}, {P}, P},
      {{0, 1 << 20, 3 << 20}, {64 << 10, 64 << 10, 64 << 10}, 64 << 10},
      {{0, 2 << 20}, {2 << 20, 2 << 20}, 2 << 20},
      {{0}, {u64{32} << 40}, P},
      {{0, 2 * P}, {2 * P, 2 * P}, 2 * P},
  };
  return calls;
}

const std::vector<std::string> &configs(Vocabulary v) {
  static const std::vector<std::string> api = {
      "cpus=2 nodes=2 mem=64M lazy=auto",        "cpus=2 nodes=2 mem=64M lazy=0",
      "cpus=4 nodes=2 mem=64M lazy=16",          "cpus=1 nodes=1 mem=32M lazy=64",
      "cpus=2 nodes=2 mem=64M paging=5 lazy=32", "cpus=3 nodes=1 mem=16M lazy=auto"};
  static const std::vector<std::string> backends = {"cpus=2 nodes=1 mem=64M lazy=0",
                                                    "cpus=4 nodes=2 mem=32M lazy=0"};
  static const std::vector<std::string> pcpu = {"cpus=4 nodes=2 mem=64M lazy=auto",
                                                "cpus=2 nodes=1 mem=32M lazy=8"};
  static const std::vector<std::string> usermm = {"cpus=2 nodes=2 mem=64M lazy=auto",
                                                  "cpus=1 nodes=1 mem=32M lazy=0",
                                                  "cpus=4 nodes=2 mem=64M lazy=16"};
  switch (v) {
  case Vocabulary::VmallocApi:
    return api;
  case Vocabulary::Backends:
    return backends;
  case Vocabulary::Pcpu:
    return pcpu;
  case Vocabulary::Usermm:
    return usermm;
  }
  return api;
}

// ---- AST builders ---------------------------------------------------------------------

Expr int_expr(u64 v) {
  Expr e;
  e.kind = ExprKind::Int;
  e.value = v;
  return e;
}
Expr name_expr(std::string n) {
  Expr e;
  e.kind = ExprKind::Name;
  e.text = std::move(n);
  return e;
}
Expr offset_expr(const std::string &n, std::int64_t off) {
  if (off == 0)
    return name_expr(n);
  Expr e;
  e.kind = off > 0 ? ExprKind::Add : ExprKind::Sub;
  // Moved in one by one: a braced list would copy both operands.
  e.kids.reserve(2);
  e.kids.push_back(name_expr(n));
  e.kids.push_back(int_expr(static_cast<u64>(off > 0 ? off : -off)));
  return e;
}
Expr bytes_expr(std::string data) {
  Expr e;
  e.kind = ExprKind::Bytes;
  e.text = std::move(data);
  return e;
}
Expr list_expr(std::vector<Expr> items) {
  Expr e;
  e.kind = ExprKind::List;
  e.kids = std::move(items);
  return e;
}

// ---- the argument kinds and the op catalogue -------------------------------------------

enum class Arg : std::uint8_t {
  Size,
  Align,
  Gfp,
  Prot,
  VmFlags,
  SharedVmFlags,
  VmAddr,   // the start of a live get_vm_area area (+ a page offset): what
            // the raw page-table calls are documented to work on
  LiveAddr, // backends: the start of an address handle not freed yet (a
            // dead one's start may be another area's interior, which the
            // backends look up differently by design)
  FreeAddr, // what frees take: offsets that stay inside the handle's own area
            // and raw addresses no area can occupy, so that a free never
            // reaches an area the decoder tracks under another handle
  Node,
  Window,
  Addr,
  StartAddr,
  Count,
  Order,
  Cpu,
  FailKind,
  FailN,
  Mode,
  Bytes,
  ReadLen,
  PageList,
  LiveVm,
  LivePage,
  LiveRam,
  LivePcpu,
  PcpuCall,
  // usermm
  Mm,          // any mm handle: a finished one is a stale handle (-EINVAL)
  LiveMm,      // mmput's: a live mm, consumed
  File,        // any address_space handle
  Vma,         // any VMA handle
  PageVma,     // a VMA made with kPageVmaFlags (vm_insert_page BUGs on VM_PFNMAP)
  PfnVma,      // a driver VMA (vmf_insert_pfn BUGs on anything else)
  FreshPfnVma, // a driver VMA nothing was inserted into (remap_pfn_range BUGs on a PTE)
  MapPage,     // a live page that a user mapping will use: never freed after
  UserAddr,
  UserLen,
  PfnLen, // remap_pfn_range's size: one page, the page the decoder owns
  PageVmaFlags,
  PfnVmaFlags,
  ProtFlags,
  PgOff,
  GupFlags,
  UserProt,
  EvenCows,
  FilePages,
};
enum class Binds : std::uint8_t { None, Addr, Vm, Page, Ram, Pcpu, Mm, File, PageVma, PfnVma };

struct OpSpec {
  std::string_view name;
  std::vector<Arg> args;
  Binds binds = Binds::None;
  bool irq_ok = true; // may be emitted in interrupt context
};

const std::vector<OpSpec> &catalogue(Vocabulary v) {
  using A = Arg;
  static const std::vector<OpSpec> api = {
      {"vmalloc", {A::Size}, Binds::Addr},
      {"vzalloc", {A::Size}, Binds::Addr},
      {"vmalloc_user", {A::Size}, Binds::Addr},
      {"vmalloc_node", {A::Size, A::Node}, Binds::Addr},
      {"vzalloc_node", {A::Size, A::Node}, Binds::Addr},
      {"vmalloc_exec", {A::Size}, Binds::Addr},
      {"vmalloc_32", {A::Size}, Binds::Addr},
      {"vmalloc_32_user", {A::Size}, Binds::Addr},
      {"__vmalloc", {A::Size, A::Gfp, A::Prot}, Binds::Addr},
      {"__vmalloc_node", {A::Size, A::Align, A::Gfp, A::Prot, A::Node}, Binds::Addr},
      {"__vmalloc_node_range",
       {A::Size, A::Align, A::Window, A::Gfp, A::Prot, A::VmFlags, A::Node},
       Binds::Addr},
      {"vfree", {A::FreeAddr}},
      {"vfree_atomic", {A::FreeAddr}},
      {"vunmap", {A::FreeAddr}, Binds::None, false},
      {"get_vm_area", {A::Size, A::VmFlags}, Binds::Vm},
      {"__get_vm_area", {A::Size, A::VmFlags, A::Window}, Binds::Vm},
      {"alloc_vm_area", {A::Size}, Binds::Vm},
      {"free_vm_area", {A::LiveVm}},
      {"find_vm_area", {A::Addr}},
      {"vmap", {A::PageList, A::Count, A::VmFlags, A::Prot}, Binds::Addr, false},
      {"map_kernel_range_noflush", {A::VmAddr, A::Size, A::Prot, A::PageList}},
      {"unmap_kernel_range", {A::VmAddr, A::Size}},
      {"unmap_kernel_range_noflush", {A::VmAddr, A::Size}},
      {"vm_map_ram", {A::PageList, A::Count, A::Node, A::Prot}, Binds::Ram},
      {"vm_unmap_ram", {A::LiveRam}},
      {"vm_unmap_aliases", {}},
      {"purge", {}},
      {"vread", {A::Addr, A::ReadLen}},
      {"vwrite", {A::Addr, A::Bytes}},
      {"vmalloc_to_page", {A::Addr}},
      {"vmalloc_to_pfn", {A::Addr}},
      {"is_vmalloc_addr", {A::Addr}},
      {"vmallocinfo", {}},
      {"cpu", {A::Cpu}},
      {"irq_enter", {}},
      {"irq_exit", {}},
      {"run_deferred", {}},
      {"fail_nth", {A::FailKind, A::FailN}},
      {"alloc_page", {A::Gfp}, Binds::Page},
      {"alloc_pages", {A::Gfp, A::Order}, Binds::Page},
      {"__free_pages", {A::LivePage}},
      {"get_page", {A::LivePage}},
      {"put_page", {A::LivePage}},
      {"probe", {A::Addr, A::Mode}},
      {"pcpu_get_vm_areas", {A::PcpuCall}, Binds::Pcpu},
      {"pcpu_free_vm_areas", {A::LivePcpu}},
  };
  // lazy=0, both backends: only what they must answer identically (DESIGN:
  // start-address frees, no VM_IOREMAP, no vread/vwrite, no irq context).
  static const std::vector<OpSpec> backends = {
      {"vmalloc", {A::Size}, Binds::Addr},
      {"vzalloc", {A::Size}, Binds::Addr},
      {"vmalloc_user", {A::Size}, Binds::Addr},
      {"vmalloc_node", {A::Size, A::Node}, Binds::Addr},
      {"vmalloc_32", {A::Size}, Binds::Addr},
      {"__vmalloc_node_range",
       {A::Size, A::Align, A::Window, A::Gfp, A::Prot, A::SharedVmFlags, A::Node},
       Binds::Addr},
      {"vfree", {A::LiveAddr}},
      {"vunmap", {A::LiveAddr}},
      {"get_vm_area", {A::Size, A::SharedVmFlags}, Binds::Vm},
      {"__get_vm_area", {A::Size, A::SharedVmFlags, A::Window}, Binds::Vm},
      {"free_vm_area", {A::LiveVm}},
      {"find_vm_area", {A::LiveAddr}},
      {"vmap", {A::PageList, A::Count, A::SharedVmFlags, A::Prot}, Binds::Addr},
      {"vmallocinfo", {}},
      {"alloc_page", {A::Gfp}, Binds::Page},
      {"__free_pages", {A::LivePage}},
      {"fail_nth", {A::FailKind, A::FailN}},
      {"cpu", {A::Cpu}},
  };
  // User address spaces, remap_vmalloc_range and the memory.c functions of
  // seed 004, with the vmalloc calls that give them something to map.
  static const std::vector<OpSpec> usermm = {
      {"vmalloc_user", {A::Size}, Binds::Addr},
      {"vmalloc_user", {A::Size}, Binds::Addr},
      {"vmalloc", {A::Size}, Binds::Addr},
      {"vfree", {A::FreeAddr}},
      {"vwrite", {A::Addr, A::Bytes}},
      {"vread", {A::Addr, A::ReadLen}},
      {"mm_create", {}, Binds::Mm},
      {"mmput", {A::LiveMm}},
      {"file_create", {A::FilePages}, Binds::File},
      {"mmap", {A::Mm, A::UserAddr, A::UserLen, A::PageVmaFlags}, Binds::PageVma},
      {"mmap", {A::Mm, A::UserAddr, A::UserLen, A::PageVmaFlags}, Binds::PageVma},
      {"mmap", {A::Mm, A::UserAddr, A::UserLen, A::PfnVmaFlags}, Binds::PfnVma},
      {"mmap_file",
       {A::Mm, A::UserAddr, A::UserLen, A::PageVmaFlags, A::File, A::PgOff},
       Binds::PageVma},
      {"munmap", {A::Mm, A::UserAddr, A::UserLen}},
      {"mprotect", {A::Mm, A::UserAddr, A::UserLen, A::ProtFlags}},
      {"probe", {A::Mm, A::UserAddr, A::Mode}},
      {"probe", {A::Mm, A::UserAddr, A::Mode}},
      {"access_remote_vm", {A::Mm, A::UserAddr, A::ReadLen, A::GupFlags}},
      {"access_remote_vm", {A::Mm, A::UserAddr, A::Bytes, A::GupFlags}},
      {"remap_vmalloc_range", {A::PageVma, A::StartAddr, A::PgOff}},
      {"remap_vmalloc_range", {A::PageVma, A::StartAddr, A::PgOff}},
      {"remap_vmalloc_range_partial", {A::PageVma, A::UserAddr, A::Addr, A::UserLen}},
      {"vm_insert_page", {A::PageVma, A::UserAddr, A::MapPage}},
      {"remap_pfn_range", {A::FreshPfnVma, A::UserAddr, A::MapPage, A::PfnLen, A::UserProt}},
      {"vmf_insert_pfn", {A::PfnVma, A::UserAddr, A::MapPage}},
      {"vmf_insert_pfn_prot", {A::PfnVma, A::UserAddr, A::MapPage, A::UserProt}},
      {"follow_pfn", {A::Vma, A::UserAddr}},
      {"zap_page_range", {A::Vma, A::UserAddr, A::UserLen}},
      {"zap_page_range_single", {A::Vma, A::UserAddr, A::UserLen}},
      {"zap_vma_ptes", {A::Vma, A::UserAddr, A::UserLen}},
      {"unmap_vmas", {A::Vma, A::UserAddr, A::UserAddr}},
      {"unmap_mapping_range", {A::File, A::UserLen, A::UserLen, A::EvenCows}},
      {"unmap_mapping_pages", {A::File, A::PgOff, A::PgOff, A::EvenCows}},
      {"alloc_page", {A::Gfp}, Binds::Page},
      {"put_page", {A::LivePage}},
      {"cpu", {A::Cpu}},
      {"fail_nth", {A::FailKind, A::FailN}},
      {"purge", {}},
  };
  static const std::vector<OpSpec> pcpu = {
      {"pcpu_get_vm_areas", {A::PcpuCall}, Binds::Pcpu},
      {"pcpu_get_vm_areas", {A::PcpuCall}, Binds::Pcpu},
      {"pcpu_free_vm_areas", {A::LivePcpu}},
      {"vmalloc", {A::Size}, Binds::Addr},
      {"__get_vm_area", {A::Size, A::VmFlags, A::Window}, Binds::Vm},
      {"free_vm_area", {A::LiveVm}},
      {"vfree", {A::FreeAddr}},
      {"purge", {}},
      {"fail_nth", {A::FailKind, A::FailN}},
      {"probe", {A::Addr, A::Mode}},
  };
  switch (v) {
  case Vocabulary::VmallocApi:
    return api;
  case Vocabulary::Backends:
    return backends;
  case Vocabulary::Pcpu:
    return pcpu;
  case Vocabulary::Usermm:
    return usermm;
  }
  return api;
}

// ---- the decoder state, shared by decode and encode --------------------------------------

// The handles a trace has made so far. Both directions walk the same state,
// so "handle number k" means the same name to each.
struct Handles {
  struct Page {
    std::string name;
    unsigned order;
    int refs;
    // Listed in a vmap / vm_map_ram / map_kernel_range_noflush: freeing it
    // would be the caller's use-after-free, so it is never freed.
    bool mapped = false;
  };
  struct Ram {
    std::string name;
    u64 count;
  };
  struct Pcpu {
    std::string name;
    u64 nr;
  };
  std::vector<std::string> addrs; // live and dead: freeing a dead one is a WARN path
  std::vector<std::string> live;  // the addrs no emitted free has named yet
  std::vector<std::string> vms;   // live only: freeing twice is a BUG
  std::vector<Page> pages;        // live only
  std::vector<Ram> rams;          // live only
  std::vector<Pcpu> pcpus;        // live only
  struct Vma {
    std::string name;
    bool pfn;   // made with kPfnVmaFlags
    bool fresh; // pfn only: no remap_pfn_range or vmf_insert_pfn named it yet
  };
  std::vector<std::string> mms;      // live and dead: a dead one is a stale handle
  std::vector<std::string> live_mms; // the mms no mmput has named yet
  std::vector<std::string> files;
  std::vector<Vma> vmas; // live and dead (a VMA unmapped since is a stale handle)
  unsigned irq_depth = 0;
  unsigned next_name = 1;

  std::string fresh(char prefix) { return std::string(1, prefix) + std::to_string(next_name++); }

  // Live address handles whose area a free through a stale address may
  // have released: still fine to read through, but a free through one may
  // release another area, like a free through a dead handle.
  std::vector<std::string> unsure;
  // Handles a free was left to the deferred work for (vfree_atomic, or
  // vfree in interrupt context): run_deferred releases whatever area then
  // lies at each address.
  std::vector<std::string> deferred;
  // A deferred free that may release another area when it runs: its handle
  // was dead already, or was freed again while the free waited.
  bool deferred_stale = false;

  // A free by `op` (vfree, vfree_atomic, vunmap) through address handle
  // `name`. While the handle is live and sure, the address lies in its own
  // area, so the free releases that area at most. Otherwise its VA may
  // belong to another area by the time the free runs, which the free then
  // releases (as the kernel would): every handle such an area could be
  // bound to is dropped (see drop_bound), so that no later op uses one that
  // may be gone (free_vm_area would BUG, unmap_kernel_range would unmap
  // another area's pages).
  void free_through(const std::string &name, std::string_view op) {
    const bool later = op == "vfree_atomic" || (op == "vfree" && irq_depth > 0);
    const bool was_live = erase(live, name);
    const bool was_unsure = erase(unsure, name);
    const bool was_deferred = erase(deferred, name);
    if (was_live && !was_unsure) {
      if (later)
        deferred.push_back(name);
      return;
    }
    if (later || was_deferred)
      deferred_stale = true;
    drop_bound();
  }
  // run_deferred(): every deferred free runs now.
  void run_deferred() {
    if (deferred_stale)
      drop_bound();
    deferred.clear();
    deferred_stale = false;
  }

private:
  static bool erase(std::vector<std::string> &list, const std::string &name) {
    const auto it = std::find(list.begin(), list.end(), name);
    if (it == list.end())
      return false;
    list.erase(it);
    return true;
  }
  // A free released an area the handles cannot name: the get_vm_area,
  // vm_map_ram and pcpu handles are dropped (a second free of theirs is a
  // BUG), and every live address handle becomes unsure.
  void drop_bound() {
    vms.clear();
    rams.clear();
    pcpus.clear();
    unsure = live;
  }
};

// The handle whose area a free of address `e` may release: "a3" for a3 or
// a3 plus whole pages. Empty for NULL, a raw address, or an offset that is
// not page aligned (that free WARNs and releases nothing).
std::string freed_handle(const Expr &e) {
  if (e.kind == ExprKind::Name && e.text != "NULL")
    return e.text;
  if (e.kind == ExprKind::Add && e.kids.size() == 2 && e.kids[0].kind == ExprKind::Name &&
      e.kids[1].kind == ExprKind::Int && (e.kids[1].value & (PAGE_SIZE - 1)) == 0)
    return e.kids[0].text;
  return {};
}

// The pages op `o` may name: any live page, or for the ops that can free
// one, only pages no mapping uses.
std::vector<std::size_t> page_choices(const OpSpec &o, const Handles &h) {
  const bool frees = o.name == "__free_pages" || o.name == "put_page";
  std::vector<std::size_t> out;
  for (std::size_t i = 0; i < h.pages.size(); ++i)
    if (!frees || !h.pages[i].mapped)
      out.push_back(i);
  return out;
}

// The VMAs argument kind `a` may name (Vma, PageVma, PfnVma, FreshPfnVma).
std::vector<std::size_t> vma_choices(Arg a, const Handles &h) {
  std::vector<std::size_t> out;
  for (std::size_t i = 0; i < h.vmas.size(); ++i) {
    const Handles::Vma &v = h.vmas[i];
    if (a == Arg::Vma || (a == Arg::PageVma && !v.pfn) || (a == Arg::PfnVma && v.pfn) ||
        (a == Arg::FreshPfnVma && v.pfn && v.fresh))
      out.push_back(i);
  }
  return out;
}

bool is_vma_arg(Arg a) {
  return a == Arg::Vma || a == Arg::PageVma || a == Arg::PfnVma || a == Arg::FreshPfnVma;
}

// Whether op `o` can be emitted now, and the state change once it is.
bool applicable(const OpSpec &o, const Handles &h) {
  if (h.irq_depth > 0 && !o.irq_ok)
    return false;
  if (o.name == "irq_enter")
    return h.irq_depth < 2;
  if (o.name == "irq_exit")
    return h.irq_depth > 0;
  // Interrupt depth is per CPU and tracked for the current one only, so no
  // CPU switch happens inside interrupt context.
  if (o.name == "cpu")
    return h.irq_depth == 0;
  for (Arg a : o.args) {
    if ((a == Arg::LiveVm || a == Arg::VmAddr) && h.vms.empty())
      return false;
    if (a == Arg::LivePage && page_choices(o, h).empty())
      return false;
    if (a == Arg::LiveRam && h.rams.empty())
      return false;
    if (a == Arg::LivePcpu && h.pcpus.empty())
      return false;
    if (a == Arg::PageList && h.pages.empty())
      return false;
    if (a == Arg::StartAddr && h.addrs.empty())
      return false;
    if (a == Arg::LiveAddr && h.live.empty())
      return false;
    if ((a == Arg::Mm && h.mms.empty()) || (a == Arg::LiveMm && h.live_mms.empty()) ||
        (a == Arg::File && h.files.empty()) || (a == Arg::MapPage && h.pages.empty()))
      return false;
    if (is_vma_arg(a) && vma_choices(a, h).empty())
      return false;
  }
  return h.addrs.size() < kMaxHandles;
}

// ---- decoding ------------------------------------------------------------------------

class Reader {
public:
  explicit Reader(std::span<const std::uint8_t> d) : d_(d) {}
  bool empty() const { return pos_ >= d_.size(); }
  std::size_t pos() const { return pos_; }
  std::size_t remaining() const { return empty() ? 0 : d_.size() - pos_; }
  std::uint8_t byte() { return pos_ < d_.size() ? d_[pos_++] : 0; }
  u64 literal() {
    u64 v = 0;
    for (unsigned i = 0; i < 8; ++i)
      v |= u64{byte()} << (8 * i);
    return v;
  }

private:
  std::span<const std::uint8_t> d_;
  std::size_t pos_ = 0;
};

// The raw page-table calls (map_kernel_range_noflush, unmap_kernel_range
// and _noflush) BUG when the page-aligned size is 0: size 0, or a size
// within a page of 2^64 (any other bad range is a WARN and -EINVAL). The
// decoder never gives them such a size.
constexpr u64 kMaxRawRange = ~u64{0} - (P - 1);
bool raw_range_op(std::string_view op) {
  return op.starts_with("unmap_kernel_range") || op == "map_kernel_range_noflush";
}
bool raw_range_size_ok(u64 size) {
  return size != 0 && size <= kMaxRawRange;
}

// A value of an argument kind that also takes any 64-bit literal.
template <std::size_t N> u64 pick(Reader &r, const std::array<u64, N> &table) {
  const std::uint8_t s = r.byte();
  return s == kLiteral ? r.literal() : table[s % N];
}
// A value of a kind whose range the op checks (counts, lengths, orders,
// gfp masks): table entries only, so a decoded trace is never malformed.
template <std::size_t N> u64 pick_table(Reader &r, const std::array<u64, N> &table) {
  return table[r.byte() % N];
}
// A size (see kBigSizeSelector) or a literal.
u64 pick_size(Reader &r) {
  const std::uint8_t s = r.byte();
  if (s == kLiteral)
    return r.literal();
  return s < kBigSizeSelector ? kSmallSizes[s % kSmallSizes.size()]
                              : kBigSizes[s - kBigSizeSelector];
}

class Decoder {
public:
  Decoder(Reader &r, Vocabulary v, std::vector<std::size_t> *offsets = nullptr)
      : r_(r), ops_(catalogue(v)), offsets_(offsets) {}

  Trace run(Vocabulary v) {
    Trace t;
    ConfigLine cfg;
    const auto &cfgs = configs(v);
    std::string line = cfgs[r_.byte() % cfgs.size()] + " on_null=skip";
    std::size_t pos = 0;
    while (pos < line.size()) {
      const std::size_t sp = line.find(' ', pos);
      const std::string kv = line.substr(pos, sp == std::string::npos ? sp : sp - pos);
      const std::size_t eq = kv.find('=');
      cfg.pairs.push_back(ConfigPair{kv.substr(0, eq), kv.substr(eq + 1), 0});
      pos = sp == std::string::npos ? line.size() : sp + 1;
    }
    cfg.line = 2;
    t.config = std::move(cfg);
    // An op takes at least one byte, most take two or more.
    t.stmts.reserve(std::min(r_.remaining() / 2 + 1, kMaxDecodedOps));
    while (!r_.empty() && t.stmts.size() < kMaxDecodedOps) {
      if (offsets_)
        offsets_->push_back(r_.pos());
      const OpSpec &o = ops_[r_.byte() % ops_.size()];
      if (!applicable(o, h_))
        continue;
      if (auto s = op(o))
        t.stmts.push_back(std::move(*s));
    }
    for (std::size_t i = 0; i < t.stmts.size(); ++i)
      t.stmts[i].line = static_cast<int>(i) + 3;
    return t;
  }

private:
  std::optional<Stmt> op(const OpSpec &o) {
    Stmt s;
    s.is_call = true;
    s.op = std::string(o.name);
    // Some argument kinds expand to two expressions (a window, a page and
    // its order) and a percpu call to four: room for them without a regrowth.
    s.args.reserve(o.args.size() + 3);
    std::optional<u64> ram_count;
    std::optional<std::size_t> consumed_vm, consumed_page, consumed_ram, consumed_pcpu,
        consumed_live, consumed_mm;
    for (Arg a : o.args) {
      switch (a) {
      case Arg::Mm:
        s.args.push_back(name_expr(h_.mms[r_.byte() % h_.mms.size()]));
        break;
      case Arg::LiveMm: {
        const std::size_t i = r_.byte() % h_.live_mms.size();
        s.args.push_back(name_expr(h_.live_mms[i]));
        consumed_mm = i;
        break;
      }
      case Arg::File:
        s.args.push_back(name_expr(h_.files[r_.byte() % h_.files.size()]));
        break;
      case Arg::Vma:
      case Arg::PageVma:
      case Arg::PfnVma:
      case Arg::FreshPfnVma: {
        const auto choices = vma_choices(a, h_);
        Handles::Vma &v = h_.vmas[choices[r_.byte() % choices.size()]];
        s.args.push_back(name_expr(v.name));
        if (o.name == "remap_pfn_range" || o.name.starts_with("vmf_insert_pfn"))
          v.fresh = false;
        break;
      }
      case Arg::MapPage: {
        Handles::Page &p = h_.pages[r_.byte() % h_.pages.size()];
        p.mapped = true;
        s.args.push_back(name_expr(p.name));
        break;
      }
      case Arg::UserAddr:
        s.args.push_back(int_expr(pick(r_, kUserAddrs)));
        break;
      case Arg::UserLen:
        s.args.push_back(int_expr(pick(r_, kUserLens)));
        break;
      case Arg::PfnLen:
        s.args.push_back(int_expr(P));
        break;
      case Arg::PageVmaFlags:
        s.args.push_back(int_expr(pick_table(r_, kPageVmaFlags)));
        break;
      case Arg::PfnVmaFlags:
        s.args.push_back(int_expr(pick_table(r_, kPfnVmaFlags)));
        break;
      case Arg::ProtFlags:
        s.args.push_back(int_expr(pick_table(r_, kProtFlags)));
        break;
      case Arg::PgOff:
        s.args.push_back(int_expr(pick(r_, kPgOffs)));
        break;
      case Arg::GupFlags:
        s.args.push_back(int_expr(pick_table(r_, kGupFlags)));
        break;
      case Arg::UserProt:
        s.args.push_back(int_expr(pick_table(r_, kUserProts)));
        break;
      case Arg::EvenCows:
        s.args.push_back(int_expr(pick_table(r_, kEvenCows)));
        break;
      case Arg::FilePages:
        s.args.push_back(int_expr(pick_table(r_, kFilePages)));
        break;
      case Arg::Size:
        s.args.push_back(int_expr(pick_size(r_)));
        if (raw_range_op(o.name) && !raw_range_size_ok(s.args.back().value))
          s.args.back().value = P; // an empty range is a BUG_ON, not an input error
        break;
      case Arg::Align:
        s.args.push_back(int_expr(pick(r_, kAligns)));
        break;
      case Arg::Gfp:
        s.args.push_back(int_expr(pick_table(r_, kGfps)));
        break;
      case Arg::Prot:
        s.args.push_back(int_expr(pick_table(r_, kProts)));
        break;
      case Arg::VmFlags:
        s.args.push_back(int_expr(pick(r_, kVmFlags)));
        break;
      case Arg::SharedVmFlags:
        s.args.push_back(int_expr(pick_table(r_, kSharedVmFlags)));
        break;
      case Arg::Node:
        s.args.push_back(int_expr(pick(r_, kNodes)));
        break;
      case Arg::Count:
        s.args.push_back(int_expr(pick_table(r_, kCounts)));
        break;
      case Arg::Order:
        s.args.push_back(int_expr(pick_table(r_, kOrders)));
        break;
      case Arg::Cpu:
        s.args.push_back(int_expr(pick_table(r_, kCpus)));
        break;
      case Arg::FailN:
        s.args.push_back(int_expr(pick_table(r_, kFailNs)));
        break;
      case Arg::ReadLen:
        s.args.push_back(int_expr(pick_table(r_, kReadLens)));
        break;
      case Arg::Window: {
        const auto &[lo, hi] = kWindows[r_.byte() % kWindows.size()];
        s.args.push_back(int_expr(lo));
        s.args.push_back(int_expr(hi));
        break;
      }
      case Arg::FailKind:
        s.args.push_back(name_expr(std::string(kFailKinds[r_.byte() % kFailKinds.size()])));
        break;
      case Arg::Mode:
        s.args.push_back(name_expr(std::string(kModes[r_.byte() % kModes.size()])));
        break;
      case Arg::Bytes: {
        const u64 n = pick_table(r_, kByteLens);
        s.args.push_back(bytes_expr(std::string(n, static_cast<char>(r_.byte()))));
        break;
      }
      case Arg::Addr:
      case Arg::StartAddr:
        s.args.push_back(address(a == Arg::StartAddr));
        break;
      case Arg::FreeAddr:
        s.args.push_back(free_address());
        if (const std::string name = freed_handle(s.args.back()); !name.empty())
          h_.free_through(name, o.name);
        break;
      case Arg::LiveAddr: {
        const std::size_t i = r_.byte() % h_.live.size();
        s.args.push_back(name_expr(h_.live[i]));
        if (o.name == "vfree" || o.name == "vunmap")
          consumed_live = i;
        break;
      }
      case Arg::VmAddr: {
        const std::string &v = h_.vms[r_.byte() % h_.vms.size()];
        Expr f;
        f.kind = ExprKind::Field;
        f.text = "addr";
        f.kids.push_back(name_expr(v));
        const std::int64_t off = kVmOffsets[r_.byte() % kVmOffsets.size()];
        if (off == 0) {
          s.args.push_back(std::move(f));
        } else {
          Expr sum;
          sum.kind = ExprKind::Add;
          sum.kids.reserve(2);
          sum.kids.push_back(std::move(f));
          sum.kids.push_back(int_expr(static_cast<u64>(off)));
          s.args.push_back(std::move(sum));
        }
        break;
      }
      case Arg::PageList: {
        const u64 n = pick_table(r_, kListLens);
        const std::size_t first = r_.byte() % h_.pages.size();
        std::vector<Expr> items;
        items.reserve(n);
        for (u64 i = 0; i < n; ++i) {
          Handles::Page &p = h_.pages[(first + i) % h_.pages.size()];
          p.mapped = true;
          items.push_back(name_expr(p.name));
        }
        s.args.push_back(list_expr(std::move(items)));
        break;
      }
      case Arg::LiveVm: {
        const std::size_t i = r_.byte() % h_.vms.size();
        s.args.push_back(name_expr(h_.vms[i]));
        consumed_vm = i;
        break;
      }
      case Arg::LivePage: {
        const auto choices = page_choices(o, h_);
        const std::size_t i = choices[r_.byte() % choices.size()];
        s.args.push_back(name_expr(h_.pages[i].name));
        if (o.name == "__free_pages")
          s.args.push_back(int_expr(h_.pages[i].order));
        consumed_page = i;
        break;
      }
      case Arg::LiveRam: {
        const std::size_t i = r_.byte() % h_.rams.size();
        s.args.push_back(name_expr(h_.rams[i].name));
        s.args.push_back(int_expr(h_.rams[i].count));
        consumed_ram = i;
        break;
      }
      case Arg::LivePcpu: {
        const std::size_t i = r_.byte() % h_.pcpus.size();
        s.args.push_back(name_expr(h_.pcpus[i].name));
        s.args.push_back(int_expr(h_.pcpus[i].nr));
        consumed_pcpu = i;
        break;
      }
      case Arg::PcpuCall: {
        const PcpuCall &c = pcpu_calls()[r_.byte() % pcpu_calls().size()];
        std::vector<Expr> offs, sizes;
        for (u64 x : c.offsets)
          offs.push_back(int_expr(x));
        for (u64 x : c.sizes)
          sizes.push_back(int_expr(x));
        s.args.push_back(list_expr(std::move(offs)));
        s.args.push_back(list_expr(std::move(sizes)));
        s.args.push_back(int_expr(c.offsets.size()));
        s.args.push_back(int_expr(c.align));
        ram_count = c.offsets.size();
        break;
      }
      }
    }
    if (consumed_live) {
      const std::string name = h_.live[*consumed_live];
      h_.free_through(name, o.name);
    }
    if (consumed_mm)
      h_.live_mms.erase(h_.live_mms.begin() + static_cast<std::ptrdiff_t>(*consumed_mm));
    apply(o, s, ram_count, consumed_vm, consumed_page, consumed_ram, consumed_pcpu);
    return s;
  }

  Expr address(bool start_only) {
    const std::uint8_t sel = r_.byte();
    if (sel == kLiteral)
      return int_expr(r_.literal());
    if (sel == kNullAddr || h_.addrs.empty()) {
      if (sel == kNullAddr)
        return name_expr("NULL");
      return int_expr(kRawAddrs[sel % kRawAddrs.size()]);
    }
    const std::string &n = h_.addrs[sel % h_.addrs.size()];
    const std::int64_t off = start_only ? 0 : kOffsets[r_.byte() % kOffsets.size()];
    return offset_expr(n, off);
  }

  Expr free_address() {
    const std::uint8_t sel = r_.byte();
    if (sel == kNullAddr)
      return name_expr("NULL");
    if (h_.addrs.empty() || sel >= kMaxHandles)
      return int_expr(kFreeRawAddrs[sel % kFreeRawAddrs.size()]);
    const std::string &n = h_.addrs[sel % h_.addrs.size()];
    return offset_expr(n, kFreeOffsets[r_.byte() % kFreeOffsets.size()]);
  }

  void apply(const OpSpec &o, Stmt &s, std::optional<u64> count, std::optional<std::size_t> vm,
             std::optional<std::size_t> page, std::optional<std::size_t> ram,
             std::optional<std::size_t> pcpu) {
    if (o.name == "irq_enter")
      ++h_.irq_depth;
    if (o.name == "irq_exit")
      --h_.irq_depth;
    if (o.name == "run_deferred")
      h_.run_deferred();
    if (vm)
      h_.vms.erase(h_.vms.begin() + static_cast<std::ptrdiff_t>(*vm));
    if (ram)
      h_.rams.erase(h_.rams.begin() + static_cast<std::ptrdiff_t>(*ram));
    if (pcpu)
      h_.pcpus.erase(h_.pcpus.begin() + static_cast<std::ptrdiff_t>(*pcpu));
    if (page) {
      Handles::Page &p = h_.pages[*page];
      if (o.name == "get_page")
        ++p.refs;
      else if (o.name == "__free_pages" || --p.refs == 0)
        h_.pages.erase(h_.pages.begin() + static_cast<std::ptrdiff_t>(*page));
    }
    switch (o.binds) {
    case Binds::None:
      break;
    case Binds::Addr:
      s.bind = h_.fresh('a');
      h_.addrs.push_back(s.bind);
      h_.live.push_back(s.bind);
      break;
    case Binds::Vm:
      s.bind = h_.fresh('v');
      h_.vms.push_back(s.bind);
      break;
    case Binds::Page:
      s.bind = h_.fresh('p');
      h_.pages.push_back(
          {s.bind, o.name == "alloc_pages" ? static_cast<unsigned>(s.args[1].value) : 0u, 1});
      break;
    case Binds::Ram:
      s.bind = h_.fresh('r');
      h_.rams.push_back({s.bind, s.args[1].value});
      break;
    case Binds::Pcpu:
      s.bind = h_.fresh('c');
      h_.pcpus.push_back({s.bind, count.value_or(0)});
      break;
    case Binds::Mm:
      s.bind = h_.fresh('m');
      h_.mms.push_back(s.bind);
      h_.live_mms.push_back(s.bind);
      break;
    case Binds::File:
      s.bind = h_.fresh('f');
      h_.files.push_back(s.bind);
      break;
    case Binds::PageVma:
    case Binds::PfnVma:
      s.bind = h_.fresh('u');
      h_.vmas.push_back({s.bind, o.binds == Binds::PfnVma, true});
      break;
    }
  }

  Reader &r_;
  const std::vector<OpSpec> &ops_;
  std::vector<std::size_t> *offsets_;
  Handles h_;
};

// ---- encoding ----------------------------------------------------------------------------

class Encoder {
public:
  Encoder(Vocabulary v, std::vector<std::uint8_t> &out) : v_(v), ops_(catalogue(v)), out_(out) {}

  std::string run(const Trace &t) {
    std::string cfg;
    if (t.config)
      for (const ConfigPair &p : t.config->pairs)
        if (p.key != "on_null")
          cfg += (cfg.empty() ? "" : " ") + p.key + "=" + p.value;
    const auto &cfgs = configs(v_);
    std::size_t ci = 0;
    while (ci < cfgs.size() && cfgs[ci] != cfg)
      ++ci;
    if (ci == cfgs.size())
      return "config line '" + cfg + "' is not one of the " + std::string(vocabulary_name(v_)) +
             " configurations";
    out_.push_back(static_cast<std::uint8_t>(ci));
    for (const Stmt &s : t.stmts) {
      if (std::string e = stmt(s); !e.empty())
        return "line " + std::to_string(s.line) + ": " + e;
    }
    return {};
  }

private:
  template <std::size_t N> std::string table_only(const std::array<u64, N> &table, u64 v) {
    for (std::size_t i = 0; i < N; ++i)
      if (table[i] == v) {
        out_.push_back(static_cast<std::uint8_t>(i));
        return {};
      }
    return "value " + std::to_string(v) + " is not one the decoder produces here";
  }
  // The selector pick_size decodes to v, or a literal.
  std::string size(const Expr *e) {
    if (!e || !int_of(*e))
      return "expected an integer";
    for (std::size_t i = 0; i < kBigSizes.size(); ++i)
      if (kBigSizes[i] == e->value) {
        out_.push_back(static_cast<std::uint8_t>(kBigSizeSelector + i));
        return {};
      }
    number(kSmallSizes, e->value);
    return {};
  }
  template <std::size_t N> void number(const std::array<u64, N> &table, u64 v) {
    for (std::size_t i = 0; i < N; ++i)
      if (table[i] == v) {
        out_.push_back(static_cast<std::uint8_t>(i));
        return;
      }
    out_.push_back(kLiteral);
    for (unsigned i = 0; i < 8; ++i)
      out_.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
  }
  template <typename T, std::size_t N>
  std::string index_of(const std::array<T, N> &table, const T &v, const char *what) {
    for (std::size_t i = 0; i < N; ++i)
      if (table[i] == v) {
        out_.push_back(static_cast<std::uint8_t>(i));
        return {};
      }
    return std::string("no encoding for this ") + what;
  }
  static std::optional<u64> int_of(const Expr &e) {
    if (e.kind == ExprKind::Int)
      return e.value;
    return std::nullopt;
  }
  std::string handle(const std::vector<std::string> &names, const Expr &e, const char *what) {
    if (e.kind == ExprKind::Name)
      for (std::size_t i = 0; i < names.size(); ++i)
        if (names[i] == e.text) {
          out_.push_back(static_cast<std::uint8_t>(i));
          return {};
        }
    return std::string("expected a live ") + what + " handle";
  }

  std::string address(const Expr &e, bool start_only) {
    if (e.kind == ExprKind::Name && e.text == "NULL") {
      out_.push_back(kNullAddr);
      return {};
    }
    std::string name;
    std::int64_t off = 0;
    if (e.kind == ExprKind::Name) {
      name = e.text;
    } else if ((e.kind == ExprKind::Add || e.kind == ExprKind::Sub) && e.kids.size() == 2 &&
               e.kids[0].kind == ExprKind::Name && e.kids[1].kind == ExprKind::Int) {
      name = e.kids[0].text;
      off = static_cast<std::int64_t>(e.kids[1].value) * (e.kind == ExprKind::Add ? 1 : -1);
    }
    if (!name.empty()) {
      for (std::size_t i = 0; i < h_.addrs.size(); ++i)
        if (h_.addrs[i] == name) {
          out_.push_back(static_cast<std::uint8_t>(i));
          if (!start_only)
            return index_of(kOffsets, off, "address offset");
          return off == 0 ? std::string() : "only start addresses here";
        }
      return "'" + name + "' is not an address handle";
    }
    if (e.kind != ExprKind::Int)
      return "expected an address";
    out_.push_back(kLiteral);
    for (unsigned i = 0; i < 8; ++i)
      out_.push_back(static_cast<std::uint8_t>(e.value >> (8 * i)));
    return {};
  }

  std::string free_address(const Expr &e) {
    if (e.kind == ExprKind::Name && e.text == "NULL") {
      out_.push_back(kNullAddr);
      return {};
    }
    if (e.kind == ExprKind::Int) {
      // Raw selectors sit above every handle selector.
      for (std::size_t i = 0; i < kFreeRawAddrs.size(); ++i)
        if (kFreeRawAddrs[i] == e.value) {
          std::size_t sel = kMaxHandles;
          while (sel % kFreeRawAddrs.size() != i)
            ++sel;
          out_.push_back(static_cast<std::uint8_t>(h_.addrs.empty() ? i : sel));
          return {};
        }
      return "a free of a raw address must use one the decoder produces";
    }
    std::string name;
    std::int64_t off = 0;
    if (e.kind == ExprKind::Name) {
      name = e.text;
    } else if (e.kind == ExprKind::Add && e.kids.size() == 2 && e.kids[0].kind == ExprKind::Name &&
               e.kids[1].kind == ExprKind::Int) {
      name = e.kids[0].text;
      off = static_cast<std::int64_t>(e.kids[1].value);
    }
    for (std::size_t i = 0; i < h_.addrs.size(); ++i)
      if (h_.addrs[i] == name) {
        out_.push_back(static_cast<std::uint8_t>(i));
        return index_of(kFreeOffsets, off, "free offset");
      }
    return "expected an address handle";
  }

  // A vocabulary may list one op name several times with different argument
  // kinds (mmap of a plain or a driver VMA): the first entry that encodes
  // the statement wins.
  std::string stmt(const Stmt &s) {
    if (!s.is_call)
      return "only calls can be encoded";
    std::string first_error;
    for (std::size_t oi = 0; oi < ops_.size(); ++oi) {
      if (ops_[oi].name != s.op || !applicable(ops_[oi], h_))
        continue;
      const std::size_t mark = out_.size();
      const Handles saved = h_;
      std::string err = encode_as(oi, s);
      if (err.empty())
        return {};
      out_.resize(mark);
      h_ = saved;
      if (first_error.empty())
        first_error = std::move(err);
    }
    return first_error.empty() ? "op '" + s.op + "' is not in the vocabulary here" : first_error;
  }

  std::string encode_as(std::size_t oi, const Stmt &s) {
    const OpSpec &o = ops_[oi];
    out_.push_back(static_cast<std::uint8_t>(oi));
    std::size_t ai = 0;
    auto next = [&]() -> const Expr * { return ai < s.args.size() ? &s.args[ai++] : nullptr; };
    auto num = [&](auto &table) -> std::string {
      const Expr *e = next();
      if (!e || !int_of(*e))
        return "expected an integer";
      number(table, e->value);
      return {};
    };
    auto tab = [&](auto &table) -> std::string {
      const Expr *e = next();
      if (!e || !int_of(*e))
        return "expected an integer";
      return table_only(table, e->value);
    };
    for (Arg a : o.args) {
      std::string err;
      switch (a) {
      case Arg::Mm:
      case Arg::LiveMm:
      case Arg::File: {
        const Expr *e = next();
        if (!e)
          return "expected a handle";
        const bool live = a == Arg::LiveMm;
        err = handle(a == Arg::File ? h_.files
                     : live         ? h_.live_mms
                                    : h_.mms,
                     *e, a == Arg::File ? "address_space" : "mm_struct");
        if (err.empty() && live)
          h_.live_mms.erase(h_.live_mms.begin() + out_.back());
        break;
      }
      case Arg::Vma:
      case Arg::PageVma:
      case Arg::PfnVma:
      case Arg::FreshPfnVma: {
        const Expr *e = next();
        if (!e)
          return "expected a VMA handle";
        const auto choices = vma_choices(a, h_);
        std::vector<std::string> names;
        for (std::size_t i : choices)
          names.push_back(h_.vmas[i].name);
        err = handle(names, *e,
                     a == Arg::PfnVma        ? "driver VMA"
                     : a == Arg::FreshPfnVma ? "driver VMA with nothing inserted"
                     : a == Arg::PageVma     ? "non-VM_PFNMAP VMA"
                                             : "VMA");
        if (err.empty() && (s.op == "remap_pfn_range" || s.op.starts_with("vmf_insert_pfn")))
          h_.vmas[choices[out_.back()]].fresh = false;
        break;
      }
      case Arg::MapPage: {
        const Expr *e = next();
        if (!e)
          return "expected a page handle";
        err = handle(names_of(h_.pages), *e, "page");
        if (err.empty())
          h_.pages[out_.back()].mapped = true;
        break;
      }
      case Arg::UserAddr:
        err = num(kUserAddrs);
        break;
      case Arg::UserLen:
        err = num(kUserLens);
        break;
      case Arg::PfnLen: {
        const Expr *e = next();
        if (!e || !int_of(*e) || e->value != P)
          return "remap_pfn_range's size must be one page here";
        break;
      }
      case Arg::PageVmaFlags:
        err = tab(kPageVmaFlags);
        break;
      case Arg::PfnVmaFlags:
        err = tab(kPfnVmaFlags);
        break;
      case Arg::ProtFlags:
        err = tab(kProtFlags);
        break;
      case Arg::PgOff:
        err = num(kPgOffs);
        break;
      case Arg::GupFlags:
        err = tab(kGupFlags);
        break;
      case Arg::UserProt:
        err = tab(kUserProts);
        break;
      case Arg::EvenCows:
        err = tab(kEvenCows);
        break;
      case Arg::FilePages:
        err = tab(kFilePages);
        break;
      case Arg::Size:
        err = size(next());
        if (err.empty() && raw_range_op(s.op) && !raw_range_size_ok(s.args[ai - 1].value))
          err = "the decoder gives map/unmap_kernel_range sizes of 1.." +
                std::to_string(kMaxRawRange);
        break;
      case Arg::Align:
        err = num(kAligns);
        break;
      case Arg::Gfp:
        err = tab(kGfps);
        break;
      case Arg::Prot:
        err = tab(kProts);
        break;
      case Arg::VmFlags:
        err = num(kVmFlags);
        break;
      case Arg::SharedVmFlags:
        err = tab(kSharedVmFlags);
        break;
      case Arg::Node:
        err = num(kNodes);
        break;
      case Arg::Count:
        err = tab(kCounts);
        break;
      case Arg::Order:
        err = tab(kOrders);
        break;
      case Arg::Cpu:
        err = tab(kCpus);
        break;
      case Arg::FailN:
        err = tab(kFailNs);
        break;
      case Arg::ReadLen:
        err = tab(kReadLens);
        break;
      case Arg::Window: {
        const Expr *lo = next(), *hi = next();
        if (!lo || !hi || !int_of(*lo) || !int_of(*hi))
          return "expected a start and end";
        err = index_of(kWindows, std::pair<u64, u64>{lo->value, hi->value}, "window");
        break;
      }
      case Arg::FailKind:
      case Arg::Mode: {
        const Expr *e = next();
        const auto &table = a == Arg::FailKind ? kFailKinds : kModes;
        if (!e || e->kind != ExprKind::Name)
          return "expected a word";
        err = index_of(table, std::string_view(e->text), "word");
        break;
      }
      case Arg::Bytes: {
        const Expr *e = next();
        if (!e || e->kind != ExprKind::Bytes || e->text.empty() ||
            e->text.find_first_not_of(e->text[0]) != std::string::npos)
          return "expected bytes of one repeated value";
        if (std::string e2 = table_only(kByteLens, e->text.size()); !e2.empty())
          return e2;
        out_.push_back(static_cast<std::uint8_t>(e->text[0]));
        break;
      }
      case Arg::Addr:
      case Arg::StartAddr: {
        const Expr *e = next();
        if (!e)
          return "expected an address";
        err = address(*e, a == Arg::StartAddr);
        break;
      }
      case Arg::FreeAddr: {
        const Expr *e = next();
        if (!e)
          return "expected an address";
        err = free_address(*e);
        if (const std::string name = freed_handle(*e); err.empty() && !name.empty())
          h_.free_through(name, s.op);
        break;
      }
      case Arg::LiveAddr: {
        const Expr *e = next();
        if (!e)
          return "expected a live address handle";
        err = handle(h_.live, *e, "address");
        if (err.empty() && (s.op == "vfree" || s.op == "vunmap")) {
          const std::string name = h_.live[out_.back()];
          h_.free_through(name, s.op);
        }
        break;
      }
      case Arg::VmAddr: {
        const Expr *e = next();
        std::int64_t off = 0;
        const Expr *f = e;
        if (e && e->kind == ExprKind::Add && e->kids.size() == 2 &&
            e->kids[1].kind == ExprKind::Int) {
          f = &e->kids[0];
          off = static_cast<std::int64_t>(e->kids[1].value);
        }
        if (!f || f->kind != ExprKind::Field || f->text != "addr" || f->kids.size() != 1)
          return "expected v.addr of a live vm_struct handle";
        err = handle(h_.vms, f->kids[0], "vm_struct");
        if (err.empty())
          err = index_of(kVmOffsets, off, "vm_struct offset");
        break;
      }
      case Arg::PageList: {
        const Expr *e = next();
        if (!e || e->kind != ExprKind::List || e->kids.empty())
          return "expected a page list";
        if (std::string e2 = table_only(kListLens, e->kids.size()); !e2.empty())
          return e2;
        const std::vector<std::string> names = names_of(h_.pages);
        err = handle(names, e->kids[0], "page");
        for (std::size_t i = 0; err.empty() && i < e->kids.size(); ++i) {
          const std::size_t first = out_.back() % names.size();
          if (e->kids[i].kind != ExprKind::Name ||
              e->kids[i].text != names[(first + i) % names.size()])
            err = "page lists must cycle through the live pages in order";
        }
        for (std::size_t i = 0; err.empty() && i < e->kids.size(); ++i)
          h_.pages[(out_.back() % names.size() + i) % names.size()].mapped = true;
        break;
      }
      case Arg::LiveVm:
        if (const Expr *e = next())
          err = handle(h_.vms, *e, "vm_struct");
        break;
      case Arg::LivePage: {
        std::vector<std::string> names;
        for (std::size_t i : page_choices(o, h_))
          names.push_back(h_.pages[i].name);
        if (const Expr *e = next())
          err = handle(names, *e, "page");
        if (err.empty() && s.op == "__free_pages")
          next();
        break;
      }
      case Arg::LiveRam:
      case Arg::LivePcpu: {
        // A handle, then the count the decoder wrote beside it.
        const bool ram = a == Arg::LiveRam;
        if (const Expr *e = next())
          err = handle(ram ? names_of(h_.rams) : names_of(h_.pcpus), *e,
                       ram ? "vm_map_ram" : "pcpu area array");
        next();
        break;
      }
      case Arg::PcpuCall: {
        const Expr *offs = next(), *sizes = next();
        next();
        const Expr *align = next();
        if (!offs || !sizes || !align)
          return "expected offsets, sizes, nr_vms and align";
        std::size_t k = 0;
        for (; k < pcpu_calls().size(); ++k) {
          const PcpuCall &c = pcpu_calls()[k];
          bool same = offs->kids.size() == c.offsets.size() &&
                      sizes->kids.size() == c.sizes.size() && align->value == c.align;
          for (std::size_t i = 0; same && i < c.offsets.size(); ++i)
            same = offs->kids[i].value == c.offsets[i] && sizes->kids[i].value == c.sizes[i];
          if (same)
            break;
        }
        if (k == pcpu_calls().size())
          return "this pcpu_get_vm_areas call has no encoding";
        out_.push_back(static_cast<std::uint8_t>(k));
        break;
      }
      }
      if (!err.empty())
        return s.op + ": " + err;
    }
    return mirror(o, s);
  }

  // The decoder's bookkeeping for the statement just encoded.
  std::string mirror(const OpSpec &o, const Stmt &s) {
    auto find = [](auto &list, const std::string &n) {
      for (std::size_t i = 0; i < list.size(); ++i)
        if (name_of(list[i]) == n)
          return std::optional<std::size_t>(i);
      return std::optional<std::size_t>();
    };
    if (o.name == "irq_enter")
      ++h_.irq_depth;
    if (o.name == "irq_exit")
      --h_.irq_depth;
    if (o.name == "run_deferred")
      h_.run_deferred();
    const std::string first =
        !s.args.empty() && s.args[0].kind == ExprKind::Name ? s.args[0].text : std::string();
    if (o.name == "free_vm_area")
      if (auto i = find(h_.vms, first))
        h_.vms.erase(h_.vms.begin() + static_cast<std::ptrdiff_t>(*i));
    if (o.name == "vm_unmap_ram")
      if (auto i = find(h_.rams, first))
        h_.rams.erase(h_.rams.begin() + static_cast<std::ptrdiff_t>(*i));
    if (o.name == "pcpu_free_vm_areas")
      if (auto i = find(h_.pcpus, first))
        h_.pcpus.erase(h_.pcpus.begin() + static_cast<std::ptrdiff_t>(*i));
    if (o.name == "__free_pages" || o.name == "get_page" || o.name == "put_page")
      if (auto i = find(h_.pages, first)) {
        Handles::Page &p = h_.pages[*i];
        if (o.name == "get_page")
          ++p.refs;
        else if (o.name == "__free_pages" || --p.refs == 0)
          h_.pages.erase(h_.pages.begin() + static_cast<std::ptrdiff_t>(*i));
      }
    // Names are regenerated in the decoder's scheme; a trace in the
    // decoder's image already uses them.
    switch (o.binds) {
    case Binds::None:
      break;
    case Binds::Addr:
      h_.addrs.push_back(expect_name(s, 'a'));
      h_.live.push_back(h_.addrs.back());
      break;
    case Binds::Vm:
      h_.vms.push_back(expect_name(s, 'v'));
      break;
    case Binds::Page:
      h_.pages.push_back({expect_name(s, 'p'),
                          s.op == "alloc_pages" ? static_cast<unsigned>(s.args[1].value) : 0u, 1});
      break;
    case Binds::Ram:
      h_.rams.push_back({expect_name(s, 'r'), s.args[1].value});
      break;
    case Binds::Pcpu:
      h_.pcpus.push_back({expect_name(s, 'c'), s.args[2].value});
      break;
    case Binds::Mm:
      h_.mms.push_back(expect_name(s, 'm'));
      h_.live_mms.push_back(h_.mms.back());
      break;
    case Binds::File:
      h_.files.push_back(expect_name(s, 'f'));
      break;
    case Binds::PageVma:
    case Binds::PfnVma:
      h_.vmas.push_back({expect_name(s, 'u'), o.binds == Binds::PfnVma, true});
      break;
    }
    return {};
  }

  static const std::string &name_of(const std::string &s) { return s; }
  static const std::string &name_of(const Handles::Page &p) { return p.name; }
  static const std::string &name_of(const Handles::Ram &r) { return r.name; }
  static const std::string &name_of(const Handles::Pcpu &p) { return p.name; }
  template <typename T> static std::vector<std::string> names_of(const std::vector<T> &list) {
    std::vector<std::string> out;
    for (const T &x : list)
      out.push_back(name_of(x));
    return out;
  }

  std::string expect_name(const Stmt &s, char prefix) {
    const std::string fresh = h_.fresh(prefix);
    return s.bind.empty() ? fresh : s.bind;
  }

  Vocabulary v_;
  const std::vector<OpSpec> &ops_;
  std::vector<std::uint8_t> &out_;
  Handles h_;
};

} // namespace

std::string_view vocabulary_name(Vocabulary v) {
  switch (v) {
  case Vocabulary::VmallocApi:
    return "vmalloc_api";
  case Vocabulary::Backends:
    return "backends";
  case Vocabulary::Pcpu:
    return "pcpu";
  case Vocabulary::Usermm:
    return "usermm";
  }
  return "?";
}

std::optional<Vocabulary> vocabulary_from_name(std::string_view name) {
  for (Vocabulary v : kVocabularies)
    if (vocabulary_name(v) == name)
      return v;
  return std::nullopt;
}

Trace decode_bytes(std::span<const std::uint8_t> data, Vocabulary vocab) {
  Reader r(data);
  return Decoder(r, vocab).run(vocab);
}

std::vector<std::size_t> op_offsets(std::span<const std::uint8_t> data, Vocabulary vocab) {
  std::vector<std::size_t> offsets;
  Reader r(data);
  Decoder(r, vocab, &offsets).run(vocab);
  offsets.push_back(data.size());
  return offsets;
}

std::string encode_trace(const Trace &trace, Vocabulary vocab, std::vector<std::uint8_t> &out) {
  out.clear();
  std::string err = Encoder(vocab, out).run(trace);
  if (!err.empty())
    out.clear();
  return err;
}

} // namespace vmcheck
