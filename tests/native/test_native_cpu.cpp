#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "../test_support.h"
#include "backends/backend.h"
#include "backends/native/native_backend.h"
#include "common/error.h"
#include "common/fast_math.h"
#include "model/checkpoint.h"

namespace gptbench {
namespace {

const Gpt2Model& tiny_model() {
  static const Gpt2Model model = load_model(testing::tiny_model_dir(), {.hash_weights = false});
  return model;
}

std::vector<std::int32_t> random_ids(int n, unsigned seed, int vocab = 50257) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> dist(0, vocab - 1);
  std::vector<std::int32_t> ids(static_cast<std::size_t>(n));
  for (auto& id : ids) id = dist(rng);
  return ids;
}

double max_abs_diff(const float* a, const float* b, std::size_t n) {
  double m = 0;
  for (std::size_t i = 0; i < n; ++i) m = std::max(m, static_cast<double>(std::fabs(a[i] - b[i])));
  return m;
}

TEST(FastMath, ExpMatchesTheLibrary) {
  for (float x = -80.0f; x < 80.0f; x += 0.37f) {
    const double ref = std::exp(static_cast<double>(x));
    EXPECT_NEAR(fast_exp(x) / ref, 1.0, 5e-7) << x;
  }
  std::vector<float> row = {1000.0f, 999.0f, -1000.0f};  // would overflow a naive exp
  EXPECT_NEAR(log_sum_exp(row.data(), 3), 1000.0 + std::log(1.0 + std::exp(-1.0)), 1e-4);
  std::vector<float> g = {-3.0f, -0.5f, 0.0f, 0.5f, 3.0f};
  gelu_new_inplace(g.data(), 5);
  const float in[] = {-3.0f, -0.5f, 0.0f, 0.5f, 3.0f};
  for (int i = 0; i < 5; ++i) {
    const double x = in[i];
    const double ref = 0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
    EXPECT_NEAR(g[i], ref, 1e-6);
  }
}

TEST(NativeCpu, DecodeWithKvCacheGivesTheLogitsOfAFullPrefill) {
  auto backend = create_native_cpu_backend(tiny_model(), {});
  const int prompt = 20, steps = 12, total = prompt + steps;
  const auto ids = random_ids(total, 7);
  TokenBatch full{1, total, ids};
  ForwardOutput reference;
  backend->prefill(full, OutputMode::kLogits, reference);
  const std::int64_t V = tiny_model().config.vocab_size;

  auto session = backend->start_decode(1, total);
  ForwardOutput out;
  session->prefill(TokenBatch{1, prompt, std::vector<std::int32_t>(ids.begin(), ids.begin() + prompt)}, OutputMode::kLogits, out);
  EXPECT_LT(max_abs_diff(out.logits.data(), reference.logits.data() + (prompt - 1) * V, V), 1e-3);
  for (int s = 0; s < steps; ++s) {
    const std::int32_t next = ids[static_cast<std::size_t>(prompt + s)];
    session->step(std::span<const std::int32_t>(&next, 1), OutputMode::kLogits, out);
    ASSERT_LT(max_abs_diff(out.logits.data(), reference.logits.data() + (prompt + s) * V, V), 1e-3) << "step " << s;
    EXPECT_EQ(out.top1[0], reference.top1[static_cast<std::size_t>(prompt + s)]);
  }
  EXPECT_EQ(session->position(), total);
}

TEST(NativeCpu, BatchedSequencesAreIndependent) {
  auto backend = create_native_cpu_backend(tiny_model(), {});
  const int S = 16;
  const auto a = random_ids(S, 1), b = random_ids(S, 2);
  std::vector<std::int32_t> both(a);
  both.insert(both.end(), b.begin(), b.end());
  ForwardOutput oa, ob, oboth;
  backend->prefill(TokenBatch{1, S, a}, OutputMode::kLogits, oa);
  backend->prefill(TokenBatch{1, S, b}, OutputMode::kLogits, ob);
  backend->prefill(TokenBatch{2, S, both}, OutputMode::kLogits, oboth);
  const std::size_t half = oa.logits.size();
  EXPECT_LT(max_abs_diff(oboth.logits.data(), oa.logits.data(), half), 1e-3);
  EXPECT_LT(max_abs_diff(oboth.logits.data() + half, ob.logits.data(), half), 1e-3);
}

TEST(NativeCpu, SummaryModeReportsTop1AndChecksumOfTheSameLogits) {
  auto backend = create_native_cpu_backend(tiny_model(), {});
  TokenBatch t{2, 8, random_ids(16, 3)};
  ForwardOutput full, summary;
  backend->prefill(t, OutputMode::kLogits, full);
  backend->prefill(t, OutputMode::kSummary, summary);
  EXPECT_TRUE(summary.logits.empty());
  EXPECT_EQ(summary.top1, full.top1);
  EXPECT_DOUBLE_EQ(summary.checksum, full.checksum);
  ASSERT_EQ(full.top1.size(), 16u);
  const std::int64_t V = tiny_model().config.vocab_size;
  for (std::size_t r = 0; r < 16; ++r) {
    const float* row = full.logits.data() + r * V;
    EXPECT_EQ(full.top1[r], std::max_element(row, row + V) - row);
  }
}

TEST(NativeCpu, AFixedPromptPredictsSensibleText) {
  // A trained model continues " the United" with " States" among its top choices; random weights would not.
  auto backend = create_native_cpu_backend(tiny_model(), {});
  // " in the United" = [287, 262, 1578]; " States" = 1829.
  TokenBatch t{1, 3, {287, 262, 1578}};
  ForwardOutput out;
  backend->prefill(t, OutputMode::kLogits, out);
  const std::int64_t V = tiny_model().config.vocab_size;
  const float* last = out.logits.data() + 2 * V;
  int better = 0;
  for (std::int64_t v = 0; v < V; ++v) better += last[v] > last[1829];
  EXPECT_LT(better, 10) << "' States' should be among the top 10 continuations of ' in the United'";
}

TEST(NativeCpu, RejectsTokensOutsideTheVocabularyAndOverlongSequences) {
  auto backend = create_native_cpu_backend(tiny_model(), {});
  ForwardOutput out;
  EXPECT_THROW(backend->prefill(TokenBatch{1, 2, {5, 50257}}, OutputMode::kSummary, out), Error);
  EXPECT_THROW(backend->prefill(TokenBatch{1, 1025, std::vector<std::int32_t>(1025, 1)}, OutputMode::kSummary, out), Error);
  EXPECT_THROW(backend->start_decode(1, 2048), Error);
}

TEST(Registry, UnknownBackendDeviceOrPrecisionIsAClearError) {
  BackendSpec spec;
  spec.name = "tensorrt";
  try {
    create_backend(spec, tiny_model());
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("unknown backend 'tensorrt'"), std::string::npos);
  }
  spec.name = "native";
  spec.device = "tpu";
  EXPECT_THROW(create_backend(spec, tiny_model()), Error);
  spec.device = "cpu";
  spec.precision = "fp8";
  EXPECT_THROW(create_backend(spec, tiny_model()), Error);
  // an option key the backend does not read: one line naming it and the keys it has, not a silently ignored typo
  spec.precision = "fp32";
  spec.options["calibration_cahce"] = "x.calib";
  try {
    create_backend(spec, tiny_model());
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "backend native/cpu/fp32: unknown option 'calibration_cahce' (known: calibration_cache)");
  }
}

}  // namespace
}  // namespace gptbench
