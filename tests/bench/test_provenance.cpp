// The revision a run reports is the one its binary was built from (recorded at build time), not whatever the
// source directory holds when the binary runs.
#include <gtest/gtest.h>

#include <cstdio>
#include <memory>
#include <string>

#include "bench/environment.h"
#include "common/build_revision.h"

namespace {

std::string command_output(const std::string& command) {
  std::string out;
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(command.c_str(), "r"), pclose);
  if (!pipe) return out;
  char buffer[256];
  while (std::fgets(buffer, sizeof(buffer), pipe.get()) != nullptr) out += buffer;
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

}  // namespace

TEST(Provenance, GitRevisionIsTheBuildsSourceRevision) {
  // Tests run right after the build they belong to (scripts/test.sh, CI), so HEAD is still the built revision.
  const std::string head =
      command_output(std::string("git -C '") + GPTBENCH_SOURCE_DIR + "' rev-parse --short=12 HEAD 2>/dev/null");
  if (head.empty()) GTEST_SKIP() << "the source tree " << GPTBENCH_SOURCE_DIR << " is not a git checkout";
  EXPECT_EQ(std::string(gptbench::build_git_revision()), head);
  EXPECT_NE(gptbench::build_git_dirty(), -1) << "a git checkout has a known dirty state";

  const auto p = gptbench::bench::environment_provenance();
  EXPECT_EQ(p["git_revision"], head);
  ASSERT_TRUE(p["git_dirty"].is_boolean());
  EXPECT_EQ(p["git_dirty"].get<bool>(), gptbench::build_git_dirty() == 1);
}
