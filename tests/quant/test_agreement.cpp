// Agreement statistics on inputs small enough to compute by hand.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "common/error.h"
#include "quant/agreement.h"

namespace gptbench {
namespace {

TEST(Agreement, IdenticalDistributionsAgreeCompletely) {
  const std::vector<float> logits = {1.0f, 2.0f, 3.0f, -1.0f, 0.5f, 0.25f};
  AgreementAccumulator acc;
  acc.add_rows(logits.data(), logits.data(), 2, 3, std::vector<std::int32_t>{2, 0});
  const AgreementStats s = acc.finish();
  EXPECT_EQ(s.tokens, 2);
  EXPECT_EQ(s.scored_tokens, 2);
  EXPECT_NEAR(s.kl_mean, 0.0, 1e-15);
  EXPECT_DOUBLE_EQ(s.top1_agreement, 1.0);
  EXPECT_NEAR(s.delta_p_mean, 0.0, 1e-15);
  EXPECT_NEAR(s.ppl_ratio, 1.0, 1e-12);
}

TEST(Agreement, TwoTokenVocabularyByHand) {
  // ref p = (1/2, 1/2); cand p = (3/4, 1/4) (logits ln 3 and 0).
  const std::vector<float> ref = {0.0f, 0.0f};
  const std::vector<float> cand = {static_cast<float>(std::log(3.0)), 0.0f};
  AgreementAccumulator acc;
  acc.add(ref.data(), cand.data(), 2, 0);
  const AgreementStats s = acc.finish();
  // KL = ½ ln(½ / ¾) + ½ ln(½ / ¼) = ½ ln(4/3)
  EXPECT_NEAR(s.kl_mean, 0.5 * std::log(4.0 / 3.0), 1e-7);
  EXPECT_DOUBLE_EQ(s.top1_agreement, 1.0);  // the tie in ref goes to the lowest id, 0
  EXPECT_NEAR(s.delta_p_mean, 0.25, 1e-7);
  EXPECT_NEAR(s.delta_p_rms, 0.25, 1e-7);
  EXPECT_NEAR(s.ppl_reference, 2.0, 1e-7);
  EXPECT_NEAR(s.ppl_candidate, 4.0 / 3.0, 1e-7);
  EXPECT_NEAR(s.ppl_ratio, 2.0 / 3.0, 1e-7);

  // Now the correct token is 1 and the candidate disagrees on the top-1.
  const std::vector<float> ref2 = {0.0f, 1.0f};
  AgreementAccumulator acc2;
  acc2.add(ref2.data(), cand.data(), 2, 1);
  acc2.add(ref.data(), cand.data(), 2, -1);  // no target: counts for KL and top-1 only
  const AgreementStats s2 = acc2.finish();
  EXPECT_EQ(s2.tokens, 2);
  EXPECT_EQ(s2.scored_tokens, 1);
  EXPECT_DOUBLE_EQ(s2.top1_agreement, 0.5);
  const double p_ref = 1.0 / (1.0 + std::exp(-1.0));  // e / (1 + e)
  EXPECT_NEAR(s2.delta_p_mean, 0.25 - p_ref, 1e-7);
  EXPECT_NEAR(s2.ppl_ratio, p_ref / 0.25, 1e-6);
}

TEST(Agreement, PercentilesInterpolateLikeNumpy) {
  std::vector<double> v;
  for (int i = 101; i >= 1; --i) v.push_back(i);
  const Percentiles p = percentiles_of(v);
  EXPECT_DOUBLE_EQ(p.p50, 51);
  EXPECT_DOUBLE_EQ(p.p99, 100);
  EXPECT_DOUBLE_EQ(p.p1, 2);
  EXPECT_DOUBLE_EQ(p.p99_9, 100.9);
  EXPECT_DOUBLE_EQ(p.min, 1);
  EXPECT_DOUBLE_EQ(p.max, 101);
}

TEST(Agreement, StaysFiniteForExtremeLogits) {
  const std::vector<float> ref = {1e4f, -1e4f, 0.0f};
  const std::vector<float> cand = {-1e4f, 1e4f, 0.0f};
  AgreementAccumulator acc;
  acc.add(ref.data(), cand.data(), 3, 0);
  const AgreementStats s = acc.finish();
  EXPECT_TRUE(std::isfinite(s.kl_mean));
  EXPECT_NEAR(s.kl_mean, 2e4, 1.0);  // ≈ logit gap: log p_ref(0) − log p_cand(0)
  EXPECT_DOUBLE_EQ(s.top1_agreement, 0.0);
  EXPECT_NEAR(s.delta_p_mean, -1.0, 1e-9);
}

TEST(Agreement, RejectsMismatchedInputs) {
  const std::vector<float> r = {0.0f, 0.0f};
  AgreementAccumulator acc;
  EXPECT_THROW(acc.add(r.data(), r.data(), 2, 5), Error);
  EXPECT_THROW(acc.add_rows(r.data(), r.data(), 1, 2, std::vector<std::int32_t>{0, 1}), Error);
}

}  // namespace
}  // namespace gptbench
