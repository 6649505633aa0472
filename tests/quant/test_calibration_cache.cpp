// Calibration cache files: round trip, reuse, invalidation, refusal of the evaluation text, TensorRT's format.
#include <gtest/gtest.h>

#include <filesystem>
#include <sstream>

#include "common/error.h"
#include "common/paths.h"
#include "quant/calibration_cache.h"
#include "quant/calibration_driver.h"

namespace gptbench {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    path_ = fs::temp_directory_path() / ("gptbench-quant-" + std::to_string(::getpid()) + "-" +
                                         std::to_string(counter_++));
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
  static inline int counter_ = 0;
};

CalibrationCache sample_cache() {
  CalibrationCache c;
  c.provenance = {"gpt2-tiny-wt2", std::string(64, 'a'), "wikitext-2", "valid", "/x/wiki.valid.tokens",
                  std::string(64, 'b'), 16, 4, 128, "percentile", 99.9};
  c.table.method = "percentile";
  c.table.percentile = 99.9;
  c.table.amax = {{"h.0.attn.c_attn", 2.5}, {"h.0.mlp.c_proj", 17.25}, {"lm_head", 0.123456789}};
  return c;
}

TEST(CalibrationCache, FileNameFollowsTheStudysPattern) {
  EXPECT_EQ(calibration_cache_filename(sample_cache().provenance), "gpt2-tiny-wt2_wikitext-2_valid_16x4x128.calib");
  std::string dataset, split;
  dataset_names_from_path("/s/data/wikitext-2/wiki.valid.tokens", dataset, split);
  EXPECT_EQ(dataset, "wikitext-2");
  EXPECT_EQ(split, "valid");
  dataset_names_from_path("/s/data/wikitext-2-raw/wiki.test.raw", dataset, split);
  EXPECT_EQ(split, "test");
}

TEST(CalibrationCache, RoundTripsThroughTheFile) {
  TempDir dir;
  const CalibrationCache c = sample_cache();
  write_calibration_cache(dir.file("a.calib"), c);
  const CalibrationCache r = read_calibration_cache(dir.file("a.calib"));
  EXPECT_EQ(calibration_mismatch(r.provenance, c.provenance), "");
  EXPECT_EQ(r.provenance.model, "gpt2-tiny-wt2");
  EXPECT_EQ(r.provenance.dataset_path, "/x/wiki.valid.tokens");
  EXPECT_EQ(r.table.method, "percentile");
  EXPECT_DOUBLE_EQ(r.table.percentile, 99.9);
  ASSERT_EQ(r.table.amax.size(), 3u);
  for (const auto& [name, amax] : c.table.amax) EXPECT_DOUBLE_EQ(r.table.amax.at(name), amax) << name;
}

TEST(CalibrationCache, MismatchNamesWhatChanged) {
  const CalibrationProvenance a = sample_cache().provenance;
  CalibrationProvenance b = a;
  b.model_sha256 = std::string(64, 'c');
  EXPECT_NE(calibration_mismatch(a, b).find("model_sha256"), std::string::npos);
  b = a;
  b.dataset_sha256 = std::string(64, 'd');
  EXPECT_NE(calibration_mismatch(a, b).find("dataset_sha256"), std::string::npos);
  b = a;
  b.seq = 256;
  EXPECT_NE(calibration_mismatch(a, b).find("shape"), std::string::npos);
  b = a;
  b.percentile = 99.99;
  EXPECT_NE(calibration_mismatch(a, b).find("percentile"), std::string::npos);
  b = a;
  b.dataset_path = "/elsewhere/same-bytes.txt";  // only the bytes count
  EXPECT_EQ(calibration_mismatch(a, b), "");
}

TEST(CalibrationCache, MalformedOrTruncatedFilesAreErrorsNamingTheFile) {
  std::string text = format_calibration_cache(sample_cache());
  const std::string truncated = text.substr(0, text.rfind("tensor "));  // last tensor line lost
  try {
    parse_calibration_cache(truncated, "x.calib");
    FAIL() << "truncated cache accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("x.calib"), std::string::npos);
  }
  EXPECT_THROW(parse_calibration_cache("hello\n", "x.calib"), Error);
  std::string bad = text;
  bad.replace(bad.find("amax=2.5"), 8, "amax=abc");
  EXPECT_THROW(parse_calibration_cache(bad, "x.calib"), Error);
}

TEST(TensorRtTable, ScalesAreBigEndianFloatBitsInHex) {
  EXPECT_EQ(tensorrt_scale_hex(0.0078125f), "3c000000");
  EXPECT_EQ(tensorrt_scale_hex(1.0f), "3f800000");
  EXPECT_EQ(tensorrt_scale_hex(-2.0f), "c0000000");
  EXPECT_FLOAT_EQ(tensorrt_scale_from_hex("3c000000", "t"), 0.0078125f);
  EXPECT_THROW(tensorrt_scale_from_hex("3c00", "t"), Error);
}

TEST(TensorRtTable, FormatsAndParsesBack) {
  CalibrationTable t;
  t.method = "entropy";
  t.amax = {{"h.0.attn.c_attn", 127.0 * 0.0078125}, {"lm_head", 127.0}};
  const std::string header = tensorrt_header_for_method("entropy");
  EXPECT_EQ(header, "TRT-8601-EntropyCalibration2");
  const std::string text = format_tensorrt_calibration_table(t, header);
  EXPECT_EQ(text, "TRT-8601-EntropyCalibration2\nh.0.attn.c_attn: 3c000000\nlm_head: 3f800000\n");
  std::string parsed_header;
  const auto scales = parse_tensorrt_calibration_table(text, "t.table", &parsed_header);
  EXPECT_EQ(parsed_header, header);
  EXPECT_FLOAT_EQ(scales.at("lm_head"), 1.0f);
  EXPECT_THROW(parse_tensorrt_calibration_table("lm_head: 3f800000\n", "t.table"), Error);
}

// ensure_calibration with a fake tokenizer and a fake forward pass whose activations depend on the token ids.
struct FakeRun {
  int forwards = 0;
  TokenizeText tokenize = [](const std::string& text, const std::string&) {
    std::vector<std::int32_t> ids;
    for (unsigned char c : text) ids.push_back(c);
    return ids;
  };
  ObservedForward forward = [this](const std::vector<std::int32_t>& ids, int batch, int seq,
                                   const ActivationObserver& observer) {
    ++forwards;
    EXPECT_EQ(ids.size(), static_cast<std::size_t>(batch * seq));
    std::vector<float> x(ids.begin(), ids.end());
    observer("h.0.attn.c_attn", x.data(), batch, seq);
    for (auto& v : x) v = -v / 2;
    observer("lm_head", x.data(), batch, seq);
  };
};

TEST(CalibrationDriver, BuildsThenReusesThenRebuildsWhenModelOrTextChange) {
  TempDir dir;
  const std::string text_path = dir.file("wiki.valid.tokens");
  write_file_atomic(text_path, std::string(300, 'a') + std::string(300, 'b') + "zz");
  CalibrationRequest req;
  req.model_name = "m";
  req.model_sha256 = std::string(64, '1');
  req.dataset_path = text_path;
  req.samples = 6;
  req.batch = 4;
  req.seq = 32;
  req.method = "minmax";
  req.out_dir = dir.file("out");
  FakeRun fake;
  std::ostringstream log1;
  const auto first = ensure_calibration(req, fake.tokenize, fake.forward, log1);
  EXPECT_FALSE(first.reused);
  EXPECT_EQ(fake.forwards, 2);  // 6 samples in batches of 4
  const std::string name = fs::path(first.cache_path).filename().string();
  EXPECT_EQ(name.rfind("m_gptbench-quant-", 0), 0u) << name;  // <model>_<dataset folder>_…
  EXPECT_NE(name.find("_valid_6x4x32.calib"), std::string::npos) << name;
  EXPECT_EQ(fs::path(first.cache_path).parent_path().filename(), "minmax");  // one folder per method
  EXPECT_TRUE(file_exists(first.cache_path));
  EXPECT_TRUE(file_exists(first.tensorrt_table_path));
  EXPECT_TRUE(file_exists(first.metadata_path));
  EXPECT_DOUBLE_EQ(first.cache.table.amax.at("h.0.attn.c_attn"), 'z');  // the last sample ends at the text's end
  EXPECT_DOUBLE_EQ(first.cache.table.amax.at("lm_head"), 'z' / 2.0);

  std::ostringstream log2;
  const auto second = ensure_calibration(req, fake.tokenize, fake.forward, log2);
  EXPECT_TRUE(second.reused);
  EXPECT_EQ(fake.forwards, 2);
  EXPECT_NE(log2.str().find("reusing"), std::string::npos);
  EXPECT_EQ(second.cache.table.amax, first.cache.table.amax);

  req.model_sha256 = std::string(64, '2');
  std::ostringstream log3;
  const auto third = ensure_calibration(req, fake.tokenize, fake.forward, log3);
  EXPECT_FALSE(third.reused);
  EXPECT_EQ(fake.forwards, 4);
  EXPECT_NE(log3.str().find("model_sha256 differs"), std::string::npos) << log3.str();

  write_file_atomic(text_path, std::string(600, 'c'));
  std::ostringstream log4;
  const auto fourth = ensure_calibration(req, fake.tokenize, fake.forward, log4);
  EXPECT_FALSE(fourth.reused);
  EXPECT_NE(log4.str().find("dataset_sha256 differs"), std::string::npos) << log4.str();
  EXPECT_DOUBLE_EQ(fourth.cache.table.amax.at("h.0.attn.c_attn"), 'c');
}

TEST(CalibrationDriver, RefusesTheEvaluationTextUnlessAllowed) {
  TempDir dir;
  const std::string test_path = dir.file("wiki.test.raw");
  write_file_atomic(test_path, std::string(500, 'q'));
  CalibrationRequest req;
  req.model_name = "m";
  req.model_sha256 = std::string(64, '1');
  req.dataset_path = test_path;
  req.samples = 2;
  req.batch = 2;
  req.seq = 16;
  req.out_dir = dir.file("out");
  FakeRun fake;
  std::ostringstream log;
  try {
    ensure_calibration(req, fake.tokenize, fake.forward, log);
    FAIL() << "calibrated on the test split";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("wiki.test.raw"), std::string::npos);
  }
  EXPECT_EQ(fake.forwards, 0);
  req.allow_eval_text = true;
  const auto a = ensure_calibration(req, fake.tokenize, fake.forward, log);
  EXPECT_TRUE(a.evaluation_text);
  EXPECT_EQ(fake.forwards, 1);
}

TEST(CalibrationDriver, TextShorterThanOneSequenceIsAnError) {
  EXPECT_THROW(calibration_offsets(10, 4, 32, "short.txt"), Error);
  const auto offsets = calibration_offsets(100, 3, 20, "t");
  EXPECT_EQ(offsets, (std::vector<std::int64_t>{0, 40, 80}));
}

}  // namespace
}  // namespace gptbench
