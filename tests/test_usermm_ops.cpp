// The usermm trace ops: every corpus/usermm trace replays cleanly with the
// machine, vmalloc and usermm ops, and the ops' own argument handling
// (handles, the two forms of touch, stale handles) behaves as documented.
#include "harness/executor.h"
#include "harness/ops.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace vmcheck {

void register_usermm_ops(OpTable &t);

namespace {

const OpTable &table() {
  static const OpTable t = [] {
    OpTable t;
    register_machine_ops(t);
    register_vmalloc_ops(t);
    register_usermm_ops(t);
    return t;
  }();
  return t;
}

ReplayResult run(const std::string &text) {
  ReplayOptions o;
  o.ops = &table();
  return replay_text(text, o);
}

std::filesystem::path corpus_dir() {
  return std::filesystem::path(__FILE__).parent_path().parent_path() / "corpus" / "usermm";
}

TEST(UserMmOps, every_usermm_corpus_trace_replays_cleanly) {
  std::size_t n = 0;
  for (const auto &entry : std::filesystem::directory_iterator(corpus_dir())) {
    if (entry.path().extension() != ".trace")
      continue;
    std::ifstream in(entry.path());
    std::stringstream text;
    text << in.rdbuf();
    const ReplayResult r = run(text.str());
    EXPECT_EQ(r.status, ReplayStatus::Ok) << r.report(entry.path().string());
    ++n;
  }
  EXPECT_GE(n, 6u);
}

TEST(UserMmOps, touch_keeps_its_kernel_form_beside_the_mm_form) {
  const ReplayResult r = run("# vmcheck trace v1\n"
                             "a = vmalloc(4096)\n"
                             "touch(a, write)\n"
                             "mm = mm_create()\n"
                             "v = mmap(mm, 0x10000, 4096, VM_READ)\n"
                             "touch(mm, 0x10000, read)\n"
                             "expect_fault(mm, 0x10000, write) -> sigsegv\n"
                             "expect_fault(a+4096, read) -> guard_page\n");
  EXPECT_EQ(r.status, ReplayStatus::Ok) << r.report("inline");
}

TEST(UserMmOps, a_failed_user_access_is_a_divergence_unless_expected) {
  const ReplayResult r = run("# vmcheck trace v1\n"
                             "mm = mm_create()\n"
                             "touch(mm, 0x10000, read)\n");
  EXPECT_EQ(r.status, ReplayStatus::Divergence);
  EXPECT_NE(r.message.find("sigsegv"), std::string::npos) << r.message;
}

TEST(UserMmOps, handles_of_the_wrong_kind_are_malformed_and_stale_ones_einval) {
  EXPECT_EQ(run("# vmcheck trace v1\nmmap(5, 0x10000, 4096, VM_READ)\n").status,
            ReplayStatus::Malformed);
  EXPECT_EQ(run("# vmcheck trace v1\nmm = mm_create()\nzap_page_range(mm, 0x10000, 4096)\n").status,
            ReplayStatus::Malformed);
  const ReplayResult r = run("# vmcheck trace v1\n"
                             "mm = mm_create()\n"
                             "v = mmap(mm, 0x10000, 4096, VM_READ)\n"
                             "munmap(mm, 0x10000, 4096) -> 0\n"
                             "zap_page_range(v, 0x10000, 4096) -> -EINVAL\n"
                             "mmput(mm) -> 0\n"
                             "touch(mm, 0x10000, read) -> -EINVAL\n"
                             "mmput(mm) -> -EINVAL\n");
  EXPECT_EQ(r.status, ReplayStatus::Ok) << r.report("inline");
}

TEST(UserMmOps, access_remote_vm_reads_bytes_and_writes_a_count) {
  const ReplayResult r = run("# vmcheck trace v1\n"
                             "mm = mm_create()\n"
                             "v = mmap(mm, 0, 2*4096, VM_READ|VM_WRITE)\n"
                             "v.vm_start -> 0x10000\n"
                             "access_remote_vm(mm, v.vm_start + 4094, \"hi!\", FOLL_WRITE) -> 3\n"
                             "access_remote_vm(mm, v.vm_start + 4094, 3, 0) -> \"hi!\"\n"
                             "access_remote_vm(mm, v.vm_end - 1, 5, 0) -> x\"00\"\n");
  EXPECT_EQ(r.status, ReplayStatus::Ok) << r.report("inline");
}

} // namespace
} // namespace vmcheck
