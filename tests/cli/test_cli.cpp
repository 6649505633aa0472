#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "../test_support.h"
#include "model/checkpoint.h"

namespace gptbench {
namespace {

namespace fs = std::filesystem;
using testing::run_gptbench;
using testing::TempDir;

// Bad input must produce exactly one error line on stderr, naming what is wrong, and a non-zero exit.
void expect_one_error_line(const testing::CommandResult& r, const std::string& must_contain) {
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_EQ(r.err.rfind("gptbench: error: ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find(must_contain), std::string::npos) << r.err;
  EXPECT_TRUE(r.out.empty()) << "no result may be printed on failure: " << r.out;
}

class Cli : public ::testing::Test {
 protected:
  void SetUp() override {
    // Under ctest the program always exists: a missing one is a failure, not a reason to skip.
    const char* bin = std::getenv("GPTBENCH_BIN");
    ASSERT_TRUE(bin != nullptr && fs::exists(bin)) << "GPTBENCH_BIN must name the built gptbench program (run through ctest)";
  }
  const std::string model = "'" + testing::tiny_model_dir() + "'";
};

TEST_F(Cli, InfoPrintsTheExactParameterCountAndHashes) {
  const auto r = run_gptbench("info --json --model " + model);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["parameters"], 7357312);
  EXPECT_EQ(j["config_parameters"], 7357312);
  EXPECT_EQ(j["bytes_fp32"], 7357312LL * 4);
  EXPECT_EQ(j["storage_dtype"], "F16");
  EXPECT_EQ(j["weights_sha256"].get<std::string>().size(), 64u);
  EXPECT_EQ(j["untrained"], false);
}

TEST_F(Cli, ExpectingGpt2OfTheTinyModelFailsWithBothCounts) {
  const auto r = run_gptbench("info --expect gpt2 --model " + model);
  expect_one_error_line(r, "124439808");
  EXPECT_NE(r.err.find("7357312"), std::string::npos);
}

TEST_F(Cli, InitRandomWritesAnUntrainedCheckpointOfTheExactShape) {
  TempDir dir;
  const auto w = run_gptbench("init-random --shape distilgpt2 --dtype F16 --out '" + dir.str() + "/m'");
  ASSERT_EQ(w.exit_code, 0) << w.err;
  const auto r = run_gptbench("info --json --expect distilgpt2 --model '" + dir.str() + "/m'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["parameters"], 81912576);
  EXPECT_EQ(j["untrained"], true);
  EXPECT_EQ(j["name"], "distilgpt2");
}

TEST_F(Cli, PerplexityJsonHasTheDocumentedKeys) {
  const auto r = run_gptbench("perplexity --json --max-tokens 600 --ctx 256 --stride 128 --model " + model);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  for (const char* key : {"ppl", "ppl_stderr", "scored_tokens", "nll_sum"}) EXPECT_TRUE(j.contains(key)) << key;
  EXPECT_EQ(j["scored_tokens"], 599);
  EXPECT_GT(j["ppl"].get<double>(), 50.0);
  EXPECT_LT(j["ppl"].get<double>(), 5000.0);
}

TEST_F(Cli, MissingModelDirectory) {
  expect_one_error_line(run_gptbench("info --model /nonexistent/model"), "/nonexistent/model");
}

TEST_F(Cli, CorruptCheckpoint) {
  TempDir dir;
  for (const char* f : {"config.json", "vocab.json", "merges.txt"})
    fs::copy_file(testing::tiny_model_dir() + "/" + f, dir / f);
  testing::write_bytes(dir / "model.safetensors", std::string("\x10\x00\x00\x00\x00\x00\x00\x00{\"a\":", 13));
  expect_one_error_line(run_gptbench("info --model '" + dir.str() + "'"), dir / "model.safetensors");
}

TEST_F(Cli, ContextLongerThanTheModel) {
  expect_one_error_line(run_gptbench("perplexity --ctx 2048 --stride 512 --model " + model), "n_positions (1024");
}

TEST_F(Cli, DatasetThatIsNotUtf8) {
  TempDir dir;
  testing::write_bytes(dir / "bad.txt", "good text then \xff\xfe bad bytes");
  expect_one_error_line(run_gptbench("perplexity --dataset '" + (dir / "bad.txt") + "' --model " + model),
                        dir / "bad.txt");
}

TEST_F(Cli, MissingDataset) {
  expect_one_error_line(run_gptbench("perplexity --dataset /nonexistent/text.raw --model " + model), "/nonexistent/text.raw");
}

TEST_F(Cli, UnknownBackend) {
  expect_one_error_line(run_gptbench("perplexity --backend tensorrt --max-tokens 100 --model " + model), "unknown backend 'tensorrt'");
}

TEST_F(Cli, TokenizeMatchesKnownIds) {
  const auto r = run_gptbench("tokenize --json --model " + model, "Hello world");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out), nlohmann::json::parse("[15496, 995]"));
}

}  // namespace
}  // namespace gptbench
