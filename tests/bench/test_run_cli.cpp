// `gptbench run` through the program itself: bad configs and the wrong model end with one error line and exit 1,
// a small run prints its --json summary.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/paths.h"
#include "../test_support.h"

namespace gptbench {
namespace {

using ::testing::HasSubstr;
namespace fs = std::filesystem;

const std::string kSmoke = std::string(GPTBENCH_SOURCE_DIR) + "/configs/smoke.yaml";

TEST(RunCli, ConfigErrorNamesFileAndKey) {
  testing::TempDir tmp;
  const std::string bad = tmp / "bad.yaml";
  testing::write_bytes(bad, read_text_file(kSmoke) + "repetitons: 3\n");
  auto r = testing::run_gptbench("run --config '" + bad + "' --out '" + (tmp / "run") + "'");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("bad.yaml: repetitons: unknown key; allowed: "));
  EXPECT_FALSE(fs::exists(tmp / "run"));
  r = testing::run_gptbench("run --config '" + kSmoke + "' --set scenarios.0.batch=0");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("smoke.yaml: scenarios[0].batch: 0 is out of range"));
}

TEST(RunCli, WrongModelStopsWithBothCounts) {
  testing::TempDir tmp;
  auto r = testing::run_gptbench("run --config '" + kSmoke + "' --set 'model.expect={name: gpt2}' --out '" +
                                 (tmp / "run") + "'");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("124439808"));
  EXPECT_THAT(r.err, HasSubstr("7357312"));
  EXPECT_FALSE(fs::exists(tmp / "run"));
}

TEST(RunCli, SmallRunPrintsJsonSummary) {
  testing::TempDir tmp;
  const std::string dir = tmp / "run";
  auto r = testing::run_gptbench("run --config '" + kSmoke + "' --out '" + dir +
                                 "' --set 'backends=[{name: native, precisions: [fp32]}]'"
                                 " --set 'scenarios=[{kind: prefill, seq: 16}]' --set repetitions=2"
                                 " --set min_calls=1 --set min_seconds=0 --set perplexity.enabled=false"
                                 " --set probe_hardware=false --no-report --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["run_dir"], dir);
  EXPECT_EQ(j["cells_total"], 1);
  EXPECT_EQ(j["cells_ok"], 1);
  EXPECT_EQ(j["exit_code"], 0);
  EXPECT_TRUE(fs::exists(dir + "/processed/latency_summary.csv"));
  EXPECT_TRUE(fs::exists(dir + "/manifest.json"));
}

}  // namespace
}  // namespace gptbench
