// `compare` on two synthetic runs: a real slowdown is significant, an unchanged cell is not.
#include <gtest/gtest.h>

#include "report/compare.h"
#include "synthetic_run.h"

using namespace gptbench;
using gptbench::synth::SyntheticRun;
using gptbench::synth::TempDir;

namespace {
const LatencyChange& change_of(const RunComparison& c, const std::string& cell) {
  for (const auto& ch : c.latency)
    if (ch.cell_id == cell) return ch;
  throw std::runtime_error("no change for " + cell);
}
}  // namespace

TEST(Compare, SlowdownIsSignificantAndUnchangedCellIsNot) {
  TempDir a, b;
  SyntheticRun run_a = SyntheticRun::good(), run_b = SyntheticRun::good();
  run_b.manifest["run_id"] = "20261127T000000Z-b";
  run_b.cell("native", "fp32", 8).latency_ms = 45.0 * 1.2;  // 20 % slower, cv 1 %
  run_b.cell("native", "int8", 1).latency_ms = 4.5 * 1.002;  // 0.2 % slower: inside the noise
  run_b.ppl_result("native", "int8")["ppl"] = synth::tiny_reference_ppl() * 1.05;
  run_a.write(a.path());
  run_b.write(b.path());
  RunComparison c = compare_runs(a.path(), b.path());
  EXPECT_EQ(c.latency.size(), run_a.cells.size());

  const LatencyChange& slow = change_of(c, "native/cpu/fp32/prefill/b8_s128");
  EXPECT_EQ(slow.n_a, 5);
  EXPECT_NEAR(slow.change_pct, 20.0, 1e-6);
  EXPECT_LT(slow.p_value, 1e-4);
  EXPECT_TRUE(slow.significant);
  EXPECT_GT(slow.ratio_low, 1.0);

  const LatencyChange& same = change_of(c, "native/cpu/int8/prefill/b1_s128");
  EXPECT_FALSE(same.significant);
  EXPECT_GT(same.p_value, 0.5);
  EXPECT_LT(same.ratio_low, 1.0);
  EXPECT_GT(same.ratio_high, 1.0);

  bool found_ppl = false;
  for (const auto& p : c.perplexity)
    if (p.cell == "native/cpu/int8") {
      found_ppl = true;
      EXPECT_NEAR(p.change_pct, 100.0 * (1.05 / 1.012 - 1.0), 1e-9);
      EXPECT_GT(p.z, 5.0);
      EXPECT_TRUE(p.comparable);
    }
  EXPECT_TRUE(found_ppl);

  std::string text = format_comparison(c);
  EXPECT_NE(text.find("| native/cpu/fp32/prefill/b8_s128 | 5 | 5 |"), std::string::npos) << text;
  EXPECT_NE(text.find("**slower**"), std::string::npos);
  EXPECT_NE(text.find("no significant change"), std::string::npos);
  EXPECT_NE(text.find("+20.00 %"), std::string::npos) << text;
}

TEST(Compare, CellsInOneRunOnlyAndDifferentModelsAreNoted) {
  TempDir a, b;
  SyntheticRun run_a = SyntheticRun::good(), run_b = SyntheticRun::good();
  run_b.cells.pop_back();  // no decode cell in B
  run_b.manifest["provenance"]["model"]["parameters"] = 124439808;
  run_b.manifest["provenance"]["model"]["name"] = "gpt2";
  run_a.write(a.path());
  run_b.write(b.path());
  RunComparison c = compare_runs(a.path(), b.path());
  ASSERT_EQ(c.only_in_a.size(), 1u);
  EXPECT_EQ(c.only_in_a[0], "native/cpu/fp32/decode/b1_p128_n32");
  EXPECT_TRUE(c.only_in_b.empty());
  ASSERT_FALSE(c.notes.empty());
  EXPECT_NE(c.notes[0].find("different models"), std::string::npos);
  EXPECT_NE(format_comparison(c).find("only in A"), std::string::npos);
}
