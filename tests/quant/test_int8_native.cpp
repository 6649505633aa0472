// INT8 end to end on the shared trained model: calibration through the native engine's observer, then W8A8 and
// weight-only engines compared with FP32 — close, but not identical.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <sstream>

#include "backends/native/native_backend.h"
#include "common/paths.h"
#include "model/checkpoint.h"
#include "quant/agreement.h"
#include "quant/calibration_driver.h"
#include "quant/int8_linear.h"
#include "tokenizer/gpt2_tokenizer.h"

namespace gptbench {
namespace {

namespace fs = std::filesystem;

class Int8Native : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!dir_exists(default_model_dir())) return;
    model_ = new Gpt2Model(load_model(default_model_dir()));
  }
  static void TearDownTestSuite() {
    delete model_;
    model_ = nullptr;
  }
  void SetUp() override {
    if (model_ == nullptr) GTEST_SKIP() << "shared model not found at " << default_model_dir();
  }

  // Calibrates with the FP32 engine's observer on a small slice of the validation text.
  static CalibrationArtifacts calibrate(const std::string& method, const std::string& out_dir) {
    const Gpt2Tokenizer tokenizer(model_->vocab_path, model_->merges_path);
    CalibrationRequest req;
    req.model_name = model_->identity.name;
    req.model_sha256 = model_->identity.weights_sha256();
    req.dataset_path = shared_path("data/wikitext-2/wiki.valid.tokens");
    req.samples = 8;
    req.batch = 4;
    req.seq = 128;
    req.method = method;
    req.out_dir = out_dir;
    auto current = std::make_shared<ActivationObserver>();
    NativeCpuOptions o;
    o.observer = [current](const std::string& n, const float* x, std::int64_t r, std::int64_t c) {
      if (*current) (*current)(n, x, r, c);
    };
    auto backend = create_native_cpu_backend(*model_, o);
    std::ostringstream log;
    return ensure_calibration(
        req, [&](const std::string& text, const std::string& src) { return tokenizer.encode(text, false, src); },
        [&](const std::vector<std::int32_t>& ids, int batch, int seq, const ActivationObserver& obs) {
          *current = obs;
          ForwardOutput out;
          backend->prefill(TokenBatch{batch, seq, ids}, OutputMode::kSummary, out);
          *current = nullptr;
        },
        log);
  }

  static Gpt2Model* model_;
};
Gpt2Model* Int8Native::model_ = nullptr;

TEST_F(Int8Native, CalibrationSeesEveryQuantizedLinearAndW8A8StaysCloseToFp32) {
  const fs::path out = fs::temp_directory_path() / ("gptbench-int8-native-" + std::to_string(::getpid()));
  const CalibrationArtifacts cal = calibrate("minmax", out.string());
  fs::remove_all(out);
  // 4 layers × 4 projections + the LM head.
  ASSERT_EQ(cal.cache.table.amax.size(), 4u * 4u + 1u);
  for (int i = 0; i < model_->config.n_layer; ++i)
    for (const char* p : {"attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"})
      EXPECT_TRUE(cal.cache.table.contains("h." + std::to_string(i) + "." + p)) << i << p;
  EXPECT_TRUE(cal.cache.table.contains("lm_head"));

  NativeCpuOptions fp32_options;
  auto fp32 = create_native_cpu_backend(*model_, fp32_options);
  NativeCpuOptions w8a8_options;
  w8a8_options.precision = "int8";
  w8a8_options.linear_factory = make_int8_linear_factory(cal.cache.table, false);
  auto w8a8 = create_native_cpu_backend(*model_, w8a8_options);
  NativeCpuOptions wo_options;
  wo_options.precision = "int8-weight-only";
  wo_options.linear_factory = make_int8_linear_factory(cal.cache.table, true);
  auto weight_only = create_native_cpu_backend(*model_, wo_options);

  // Evaluation-style text (the start of the test split), not the calibration text.
  const Gpt2Tokenizer tokenizer(model_->vocab_path, model_->merges_path);
  std::vector<std::int32_t> ids =
      tokenizer.encode(read_text_file(shared_path("data/wikitext-2-raw/wiki.test.raw")).substr(0, 4000));
  ids.resize(256);
  const TokenBatch batch{1, 256, ids};
  ForwardOutput ref, q, wo;
  fp32->prefill(batch, OutputMode::kLogits, ref);
  w8a8->prefill(batch, OutputMode::kLogits, q);
  weight_only->prefill(batch, OutputMode::kLogits, wo);
  const std::int64_t V = model_->config.vocab_size;
  std::vector<std::int32_t> targets(ids.begin() + 1, ids.end());
  targets.push_back(-1);
  AgreementAccumulator a_q, a_wo;
  a_q.add_rows(ref.logits.data(), q.logits.data(), 256, V, targets);
  a_wo.add_rows(ref.logits.data(), wo.logits.data(), 256, V, targets);
  const AgreementStats s_q = a_q.finish(), s_wo = a_wo.finish();
  // Quantization happened: the logits differ...
  EXPECT_NE(ref.logits, q.logits);
  EXPECT_NE(ref.logits, wo.logits);
  EXPECT_GT(s_q.kl_mean, 1e-6);
  EXPECT_GT(s_wo.kl_mean, 1e-7);
  // ...but the predictions stay close (on the full test text: KL ≈ 1e-3, top-1 ≈ 97 %, see docs/int8.md).
  EXPECT_LT(s_q.kl_mean, 0.02);
  EXPECT_GT(s_q.top1_agreement, 0.9);
  EXPECT_LT(std::fabs(s_q.ppl_ratio - 1.0), 0.03);
  EXPECT_LT(s_wo.kl_mean, s_q.kl_mean);  // float activations lose less than int8 ones
  EXPECT_EQ(w8a8->describe().precision, "int8");
}

}  // namespace
}  // namespace gptbench
