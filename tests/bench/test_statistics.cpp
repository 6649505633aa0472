#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "bench/statistics.h"

namespace gptbench::bench {
namespace {

TEST(Statistics, KnownSampleMeanMedianStddev) {
  // 2, 4, 4, 4, 5, 5, 7, 9: mean 5, sample variance 32/7.
  const std::vector<double> v{9, 2, 5, 4, 4, 7, 4, 5};
  SampleSummary s = summarize(v);
  EXPECT_EQ(s.n, 8);
  EXPECT_DOUBLE_EQ(s.mean, 5.0);
  EXPECT_DOUBLE_EQ(s.median, 4.5);
  EXPECT_NEAR(s.stddev, std::sqrt(32.0 / 7.0), 1e-12);
  EXPECT_NEAR(s.cv, std::sqrt(32.0 / 7.0) / 5.0, 1e-12);
  EXPECT_DOUBLE_EQ(s.min, 2.0);
  EXPECT_DOUBLE_EQ(s.max, 9.0);
}

TEST(Statistics, PercentilesInterpolateLinearlyLikeNumpy) {
  // numpy.percentile([1..10], 5) = 1.45, 95 -> 9.55, 50 -> 5.5
  std::vector<double> v;
  for (int i = 10; i >= 1; --i) v.push_back(i);
  EXPECT_NEAR(percentile(v, 5), 1.45, 1e-12);
  EXPECT_NEAR(percentile(v, 95), 9.55, 1e-12);
  EXPECT_NEAR(percentile(v, 50), 5.5, 1e-12);
  EXPECT_DOUBLE_EQ(percentile(v, 0), 1.0);
  EXPECT_DOUBLE_EQ(percentile(v, 100), 10.0);
  // numpy.percentile([10, 20, 30, 40], 90) = 37.0
  EXPECT_NEAR(percentile({40, 10, 30, 20}, 90), 37.0, 1e-12);
  SampleSummary s = summarize(v);
  EXPECT_NEAR(s.p5, 1.45, 1e-12);
  EXPECT_NEAR(s.p95, 9.55, 1e-12);
}

TEST(Statistics, StudentTConfidenceInterval) {
  // Sample 10, 12, 14: mean 12, s = 2, t(0.975, 2) = 4.3027 -> half width 4.3027 * 2 / sqrt(3) = 4.9683.
  SampleSummary s = summarize(std::vector<double>{10, 12, 14});
  EXPECT_NEAR(s.ci95_low, 12 - 4.302653 * 2 / std::sqrt(3.0), 1e-3);
  EXPECT_NEAR(s.ci95_high, 12 + 4.302653 * 2 / std::sqrt(3.0), 1e-3);
  EXPECT_NEAR(student_t_975(1), 12.7062, 1e-4);
  EXPECT_NEAR(student_t_975(4), 2.7764, 1e-4);
  EXPECT_NEAR(student_t_975(30), 2.0423, 1e-4);
  // Beyond the table: scipy.stats.t.ppf(0.975, 60) = 2.000298, (0.975, 120) = 1.979930.
  EXPECT_NEAR(student_t_975(60), 2.000298, 2e-4);
  EXPECT_NEAR(student_t_975(120), 1.979930, 2e-4);
  EXPECT_NEAR(student_t_975(100000), 1.959964, 1e-4);
}

TEST(Statistics, SingleValueHasNoSpread) {
  SampleSummary s = summarize(std::vector<double>{3.5});
  EXPECT_EQ(s.n, 1);
  EXPECT_DOUBLE_EQ(s.mean, 3.5);
  EXPECT_DOUBLE_EQ(s.p5, 3.5);
  EXPECT_TRUE(std::isnan(s.stddev));
  EXPECT_TRUE(std::isnan(s.ci95_low));
  EXPECT_THROW(summarize(std::vector<double>{}), std::invalid_argument);
}

}  // namespace
}  // namespace gptbench::bench
