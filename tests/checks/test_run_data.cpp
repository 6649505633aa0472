// Reading a run folder back: CSV quoting, optional files, and clear errors for folders that are not runs.
#include <gtest/gtest.h>

#include "checks/roofline.h"
#include "checks/run_data.h"
#include "common/error.h"
#include "common/paths.h"
#include "synthetic_run.h"

using namespace gptbench;
using gptbench::synth::SyntheticRun;
using gptbench::synth::TempDir;

TEST(RunData, SplitsQuotedCsvFields) {
  auto f = split_csv_line(R"(a,"b,c",,"say ""hi""")");
  ASSERT_EQ(f.size(), 4u);
  EXPECT_EQ(f[1], "b,c");
  EXPECT_EQ(f[2], "");
  EXPECT_EQ(f[3], "say \"hi\"");
}

TEST(RunData, LoadsEveryFileOfASyntheticRun) {
  TempDir tmp;
  SyntheticRun good = SyntheticRun::good();
  good.cells[0].failed = true;
  good.write(tmp.path());
  RunData run = load_run(tmp.path());
  EXPECT_EQ(run.run_id(), "20261126T071500Z-good");
  EXPECT_EQ(run.latency.size(), good.cells.size());
  EXPECT_FALSE(run.latency[0].ok());
  EXPECT_EQ(run.latency[0].error, "backend unavailable");
  EXPECT_TRUE(std::isnan(run.latency[0].median_ms));
  EXPECT_EQ(run.latency[1].scenario_label(), "prefill b8 s128");
  EXPECT_EQ(run.latency.back().scenario_label(), "decode b1 p128 n32");
  EXPECT_NEAR(run.latency[1].median_ms, 45.0, 1e-9);
  EXPECT_EQ(run.bench_records.size(), 1u + 5u * (good.cells.size() - 1));
  EXPECT_EQ(run.perplexity_results().size(), 3u);
  EXPECT_EQ(run.model().parameters, 7357312);
  EXPECT_TRUE(run.agreement.is_null());
}

// Another run's bench file in raw/ (copied in by hand, or left by a run without a manifest) must not reach this
// run's records: only records of the manifest's run_id count, and a note says what was ignored.
TEST(RunData, RecordsOfAnotherRunAreIgnoredWithANote) {
  TempDir tmp;
  SyntheticRun good = SyntheticRun::good();
  good.write(tmp.path());
  const std::size_t own = load_run(tmp.path()).bench_records.size();
  std::string other = read_text_file(tmp.path() + "/raw/bench_20261126T071500Z.jsonl");
  const std::string id = "20261126T071500Z-good", stranger = "20250101T000000Z-othr";
  for (std::size_t at = other.find(id); at != std::string::npos; at = other.find(id, at + stranger.size()))
    other.replace(at, id.size(), stranger);
  write_file_atomic(tmp.path() + "/raw/bench_20250101T000000Z.jsonl", other);
  RunData run = load_run(tmp.path());
  EXPECT_EQ(run.bench_records.size(), own);
  for (const auto& r : run.bench_records) EXPECT_EQ(r.value("run_id", ""), id);
  bool noted = false;
  for (const auto& n : run.notes)
    noted |= n.find("bench_20250101T000000Z.jsonl") != std::string::npos && n.find(stranger) != std::string::npos;
  EXPECT_TRUE(noted);
}

TEST(RunData, MissingManifestIsAnErrorNamingTheFile) {
  TempDir tmp;
  try {
    load_run(tmp.path());
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("manifest.json"), std::string::npos) << e.what();
  }
  EXPECT_THROW(load_run(tmp.sub("nope")), Error);
}

TEST(RunData, CorruptCsvNumberIsAnErrorNamingFileAndLine) {
  TempDir tmp;
  SyntheticRun::good().write(tmp.path());
  std::string csv = read_text_file(tmp.path() + "/processed/latency_summary.csv");
  csv += "x,native,cpu,fp32,prefill,1,64,,,ok,5,abc,1,1,1,0,0,1,1,1,,\n";
  write_file_atomic(tmp.path() + "/processed/latency_summary.csv", csv);
  try {
    load_run(tmp.path());
    FAIL() << "expected an error";
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("latency_summary.csv"), std::string::npos) << msg;
    EXPECT_NE(msg.find("mean_ms"), std::string::npos) << msg;
  }
}

TEST(Roofline, ShapeImpliedParameterCountsMatchTheKnownModels) {
  ModelInfo gpt2;
  gpt2.n_layer = 12, gpt2.n_head = 12, gpt2.n_embd = 768, gpt2.n_positions = 1024, gpt2.vocab_size = 50257;
  EXPECT_EQ(shape_implied_parameters(gpt2), 124439808.0);
  ModelInfo tiny;
  tiny.n_layer = 4, tiny.n_head = 4, tiny.n_embd = 128, tiny.n_positions = 1024, tiny.vocab_size = 50257;
  EXPECT_EQ(shape_implied_parameters(tiny), 7357312.0);
  ModelInfo medium = gpt2;
  medium.n_layer = 24, medium.n_embd = 1024, medium.n_head = 16;
  EXPECT_EQ(shape_implied_parameters(medium), 354823168.0);
}

TEST(Roofline, PrefillFlopsOfGpt2MatchTheAnchorEstimate) {
  // anchors-h200.md: B1 S128 costs about 2 x 124.4M x 128 = 32 GFLOP (all parameters, all tokens). Our lower
  // bound leaves out the embeddings and counts the LM head once, so it must be below that and above the blocks.
  ModelInfo gpt2;
  gpt2.n_layer = 12, gpt2.n_head = 12, gpt2.n_embd = 768, gpt2.n_positions = 1024, gpt2.vocab_size = 50257;
  gpt2.parameters = 124439808;
  LatencyRow cell{};
  cell.scenario = "prefill", cell.batch = 1, cell.seq = 128, cell.precision = "fp16";
  CellWork w = estimate_work(gpt2, cell);
  EXPECT_LT(w.flops, 2 * 124439808.0 * 128);
  EXPECT_GT(w.flops, 2 * 84934656.0 * 128);
  EXPECT_DOUBLE_EQ(w.weight_bytes, 124439808.0 * 2);
}
