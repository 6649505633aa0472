#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include <nlohmann/json.hpp>

#include "../test_support.h"
#include "backends/native/native_backend.h"
#include "common/error.h"
#include "eval/dataset.h"
#include "eval/perplexity.h"
#include "model/checkpoint.h"
#include "model/random_init.h"
#include "tokenizer/gpt2_tokenizer.h"

namespace gptbench {
namespace {

// Every target token 1..n-1 is scored exactly once, and each with as much context as its window gives (the
// Hugging Face recipe). With stride == ctx the windows are disjoint and, as in that recipe, a window's first token
// has no context inside its window, so it is never a target.
TEST(SlidingWindows, ScoreEveryTargetExactlyOnce) {
  for (auto [n, ctx, stride] : std::vector<std::tuple<int, int, int>>{
           {10, 4, 2}, {287644, 1024, 512}, {1000, 1024, 512}, {1025, 1024, 1024}, {5000, 100, 1}, {17, 5, 5}, {2, 2, 1}}) {
    std::vector<int> scored(static_cast<std::size_t>(n), 0);
    for (const Window& w : sliding_windows(n, ctx, stride)) {
      ASSERT_LE(w.length, ctx);
      for (int t = w.score_from; t + 1 < w.length; ++t) scored[static_cast<std::size_t>(w.begin + t + 1)]++;
    }
    EXPECT_EQ(scored[0], 0);
    for (int i = 1; i < n; ++i) {
      const int expected = (stride == ctx && i % ctx == 0) ? 0 : 1;
      ASSERT_EQ(scored[static_cast<std::size_t>(i)], expected) << n << " " << ctx << " " << stride << " token " << i;
    }
  }
  const auto w = sliding_windows(2048, 1024, 512);
  ASSERT_EQ(w.size(), 3u);
  EXPECT_EQ(w[1].begin, 512);
  EXPECT_EQ(w[1].score_from, 511);  // the second window scores targets 1024..1535 from positions 511..1022
  EXPECT_THROW(sliding_windows(100, 4, 5), Error);
}

struct Reference {
  double ppl;
  std::int64_t scored;
};

Reference shared_reference() {
  const auto j = nlohmann::json::parse(read_text_file(shared_path("reference/gpt2-tiny-wt2.json")));
  const auto& r = j["perplexity"]["ctx1024_stride512_fp32"];
  return {r["ppl"].get<double>(), r["scored_tokens"].get<std::int64_t>()};
}

TEST(Perplexity, TinyModelOnWikiText2MatchesPyTorchWithin0_01Percent) {
  const Gpt2Model model = load_model(testing::tiny_model_dir(), {.hash_weights = false});
  const Gpt2Tokenizer tokenizer(model.vocab_path, model.merges_path);
  const TokenizedDataset data = load_dataset(testing::wikitext_test_path(), tokenizer);
  auto backend = create_native_cpu_backend(model, {});
  const PerplexityResult r = evaluate_perplexity(*backend, data.ids, {1024, 512, 0}, model.config.n_positions);
  const Reference ref = shared_reference();
  EXPECT_EQ(r.scored_tokens, ref.scored);
  EXPECT_NEAR(r.ppl, ref.ppl, ref.ppl * 1e-4) << "reference " << ref.ppl;
  EXPECT_GT(r.ppl_stderr, 0.0);
  EXPECT_NEAR(std::exp(r.nll_sum / static_cast<double>(r.scored_tokens)), r.ppl, 1e-9 * r.ppl);
  std::printf("gpt2-tiny-wt2 ctx1024/stride512: ppl %.4f ± %.4f (reference %.4f), %lld tokens, %.1f s\n", r.ppl,
              r.ppl_stderr, ref.ppl, static_cast<long long>(r.scored_tokens), r.seconds);
}

// Other settings must be just as right: a stride equal to ctx (disjoint windows) scores the same tokens with less
// context, so it must come out worse (higher) than a half-window stride on the same tokens, and both must equal a
// direct computation over the windows.
TEST(Perplexity, OtherSettingsAgreeWithADirectComputation) {
  const Gpt2Model model = load_model(testing::tiny_model_dir(), {.hash_weights = false});
  const Gpt2Tokenizer tokenizer(model.vocab_path, model.merges_path);
  const TokenizedDataset data = load_dataset(testing::wikitext_test_path(), tokenizer);
  auto backend = create_native_cpu_backend(model, {});
  const std::span<const std::int32_t> ids(data.ids.data(), 3000);
  const auto disjoint = evaluate_perplexity(*backend, ids, {256, 256, 0}, 1024);
  const auto overlapping = evaluate_perplexity(*backend, ids, {256, 64, 0}, 1024);
  EXPECT_EQ(disjoint.scored_tokens, 3000 - 12);  // 12 windows of 256, each first token unscored
  EXPECT_EQ(overlapping.scored_tokens, 2999);
  EXPECT_GT(disjoint.ppl, overlapping.ppl);
  // Direct: disjoint windows of 256 through prefill logits and a log-softmax in double.
  double nll = 0;
  for (int begin = 0; begin < 3000; begin += 256) {
    const int len = std::min(256, 3000 - begin);
    TokenBatch t{1, len, std::vector<std::int32_t>(ids.begin() + begin, ids.begin() + begin + len)};
    ForwardOutput out;
    backend->prefill(t, OutputMode::kLogits, out);
    for (int p = 0; p + 1 < len; ++p) {
      const float* row = out.logits.data() + static_cast<std::size_t>(p) * 50257;
      double m = row[0], s = 0;
      for (int v = 0; v < 50257; ++v) m = std::max(m, static_cast<double>(row[v]));
      for (int v = 0; v < 50257; ++v) s += std::exp(row[v] - m);
      nll += std::log(s) + m - row[t.ids[static_cast<std::size_t>(p + 1)]];
    }
  }
  EXPECT_NEAR(disjoint.nll_sum, nll, 1e-6 * nll);
}

TEST(Perplexity, UntrainedModelScoresNearTheVocabularySize) {
  const Gpt2Model model = make_random_model("gpt2-tiny-wt2", 1);
  const Gpt2Tokenizer tokenizer = load_tokenizer(testing::tiny_model_dir());
  const TokenizedDataset data = load_dataset(testing::wikitext_test_path(), tokenizer);
  auto backend = create_native_cpu_backend(model, {});
  const auto r = evaluate_perplexity(*backend, std::span<const std::int32_t>(data.ids.data(), 4096), {1024, 1024, 0}, 1024);
  EXPECT_GT(r.ppl, 30000.0);
  EXPECT_LT(r.ppl, 80000.0);
}

TEST(Perplexity, ContextLongerThanTheModelIsAnError) {
  const Gpt2Model model = load_model(testing::tiny_model_dir(), {.hash_weights = false});
  auto backend = create_native_cpu_backend(model, {});
  std::vector<std::int32_t> ids(3000, 5);
  try {
    evaluate_perplexity(*backend, ids, {2048, 512, 0}, model.config.n_positions);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("exceeds the model's n_positions (1024)"), std::string::npos);
  }
}

}  // namespace
}  // namespace gptbench
