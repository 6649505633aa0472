// Calibration collectors on distributions whose answer is known.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "common/error.h"
#include "quant/calibration.h"

namespace gptbench {
namespace {

std::vector<float> gaussian(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

std::vector<float> uniform(std::size_t n, float lo, float hi, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

double amax_for(CalibrationMethod method, const std::vector<float>& x, double percentile = 99.99) {
  ActivationCalibrator c(method, percentile);
  // In several batches, so the histogram has to grow its range on the way.
  const std::size_t step = x.size() / 4;
  for (std::size_t i = 0; i < x.size(); i += step)
    c.observe("t", x.data() + i, 1, static_cast<std::int64_t>(std::min(step, x.size() - i)));
  return c.table().amax.at("t");
}

TEST(Calibration, MinMaxIsTheLargestMagnitude) {
  auto x = gaussian(100000, 1);
  x[777] = -42.5f;
  EXPECT_DOUBLE_EQ(amax_for(CalibrationMethod::kMinMax, x), 42.5);
}

TEST(Calibration, HistogramGrowsWithoutLosingValues) {
  AbsHistogram h;
  std::vector<float> small(1000, 0.5f), big(10, 3.9f), zeros(7, 0.0f);
  h.add(zeros.data(), 7);
  h.add(small.data(), 1000);
  h.add(big.data(), 10);
  double total = 0;
  for (double b : h.bins()) total += b;
  EXPECT_EQ(total, 1017);
  EXPECT_EQ(h.count(), 1017);
  EXPECT_GE(h.range(), 3.9);
  EXPECT_DOUBLE_EQ(h.range(), 4.0);  // 0.5 doubled three times
  EXPECT_FLOAT_EQ(h.max_abs(), 3.9f);
  EXPECT_EQ(h.bins()[0], 7);
}

TEST(Calibration, PercentileOfAUniformDistribution) {
  const auto x = uniform(1'000'000, -1.0f, 1.0f, 2);
  EXPECT_NEAR(amax_for(CalibrationMethod::kPercentile, x, 99.0), 0.99, 0.003);
  EXPECT_NEAR(amax_for(CalibrationMethod::kPercentile, x, 50.0), 0.50, 0.003);
  EXPECT_THROW(ActivationCalibrator(CalibrationMethod::kPercentile, 120.0), Error);
}

TEST(Calibration, EntropyKeepsTheWholeRangeOfAUniformDistribution) {
  // No tail to clip: any threshold below the maximum throws information away.
  const auto x = uniform(1'000'000, -1.0f, 1.0f, 3);
  EXPECT_GT(amax_for(CalibrationMethod::kEntropy, x), 0.95);
}

TEST(Calibration, EntropyClipsARareOutlierOfAGaussian) {
  auto x = gaussian(1'000'000, 4);
  x[12345] = 60.0f;  // one value far out: minmax follows it, entropy must not
  const double minmax = amax_for(CalibrationMethod::kMinMax, x);
  const double entropy = amax_for(CalibrationMethod::kEntropy, x);
  EXPECT_DOUBLE_EQ(minmax, 60.0);
  // TensorRT's entropy threshold for a unit Gaussian lies around 3-5 σ (the bins are 60/2048 = 0.03 wide here).
  EXPECT_GT(entropy, 2.5);
  EXPECT_LT(entropy, 6.0);
}

TEST(Calibration, MseBalancesClippingAgainstResolution) {
  // A Laplace distribution (heavy tail, scale 1): for 8 bits the MSE-optimal clip is far inside the sample
  // maximum (Banner et al., ACIQ: ≈ 9.9 b for 8 bits), while a bounded uniform distribution is not clipped.
  std::mt19937 rng(5);
  std::exponential_distribution<float> e(1.0f);
  std::vector<float> laplace(1'000'000);
  for (std::size_t i = 0; i < laplace.size(); ++i) laplace[i] = (i % 2 ? 1.0f : -1.0f) * e(rng);
  const double minmax = amax_for(CalibrationMethod::kMinMax, laplace);
  const double mse = amax_for(CalibrationMethod::kMse, laplace);
  EXPECT_GT(minmax, 12.0);
  EXPECT_GT(mse, 7.0);
  EXPECT_LT(mse, 12.0);
  EXPECT_GT(amax_for(CalibrationMethod::kMse, uniform(1'000'000, -1.0f, 1.0f, 6)), 0.95);
}

TEST(Calibration, TableHasOneEntryPerObservedLinear) {
  ActivationCalibrator c(CalibrationMethod::kMinMax);
  const auto obs = c.observer();
  std::vector<float> a(12, 1.0f), b(12, -3.0f);
  obs("h.0.attn.c_attn", a.data(), 3, 4);
  obs("lm_head", b.data(), 3, 4);
  obs("h.0.attn.c_attn", b.data(), 2, 2);
  const CalibrationTable t = c.table();
  EXPECT_EQ(t.method, "minmax");
  ASSERT_EQ(t.amax.size(), 2u);
  EXPECT_DOUBLE_EQ(t.amax.at("h.0.attn.c_attn"), 3.0);
  EXPECT_FLOAT_EQ(t.scale("lm_head"), 3.0f / 127.0f);
  EXPECT_THROW(t.scale("h.9.mlp.c_fc"), Error);
  EXPECT_THROW(parse_calibration_method("kl"), Error);
  EXPECT_EQ(parse_calibration_method("entropy"), CalibrationMethod::kEntropy);
}

}  // namespace
}  // namespace gptbench
