// Statistics used by the report and compare, on values with known answers.
#include <cmath>
#include <vector>

#include <gtest/gtest.h>

#include "common/stats.h"

using namespace gptbench;

TEST(Stats, SummaryOfAKnownSample) {
  std::vector<double> x = {2, 4, 4, 4, 5, 5, 7, 9};
  EXPECT_DOUBLE_EQ(stats::mean(x), 5.0);
  EXPECT_NEAR(stats::stddev(x), std::sqrt(32.0 / 7.0), 1e-12);
  EXPECT_DOUBLE_EQ(stats::median(x), 4.5);
  EXPECT_DOUBLE_EQ(stats::percentile({1, 2, 3, 4, 5}, 25), 2.0);
  EXPECT_DOUBLE_EQ(stats::percentile({10, 20}, 95), 19.5);
  EXPECT_TRUE(std::isnan(stats::median({})));
}

TEST(Stats, StudentTQuantilesMatchTables) {
  EXPECT_NEAR(stats::student_t_quantile(0.975, 1), 12.7062047, 1e-5);
  EXPECT_NEAR(stats::student_t_quantile(0.975, 4), 2.7764451, 1e-6);
  EXPECT_NEAR(stats::student_t_quantile(0.975, 10), 2.2281389, 1e-6);
  EXPECT_NEAR(stats::student_t_quantile(0.975, 1e6), 1.959964, 1e-4);
  EXPECT_NEAR(stats::student_t_quantile(0.025, 10), -2.2281389, 1e-6);
}

TEST(Stats, StudentTTwoSidedPMatchesClosedForms) {
  // df = 1 (Cauchy): p = 1 - 2 atan(t) / pi; df = 2: p = 1 - t / sqrt(2 + t^2).
  for (double t : {0.1, 1.0, 3.0, 20.0}) {
    EXPECT_NEAR(stats::student_t_two_sided_p(t, 1), 1 - 2 * std::atan(t) / M_PI, 1e-10) << t;
    EXPECT_NEAR(stats::student_t_two_sided_p(t, 2), 1 - t / std::sqrt(2 + t * t), 1e-10) << t;
  }
  EXPECT_NEAR(stats::student_t_two_sided_p(2.2281389, 10), 0.05, 1e-6);
}

TEST(Stats, WelchTestOnAKnownPair) {
  std::vector<double> a = {1, 2, 3, 4, 5}, b = {2, 4, 6, 8, 10};
  stats::WelchResult w = stats::welch_t_test(a, b);
  EXPECT_NEAR(w.t, 3.0 / std::sqrt(2.5), 1e-12);          // (6 - 3) / sqrt(2.5/5 + 10/5)
  EXPECT_NEAR(w.df, 6.25 / (0.25 / 4 + 4.0 / 4), 1e-12);  // Welch-Satterthwaite
  EXPECT_NEAR(w.p_value, stats::student_t_two_sided_p(w.t, w.df), 1e-15);
  EXPECT_GT(w.p_value, 0.05);
  EXPECT_LT(w.p_value, 0.2);
  std::vector<double> same = {5, 5.1, 4.9, 5.05, 4.95};
  EXPECT_NEAR(stats::welch_t_test(same, same).p_value, 1.0, 1e-12);
  EXPECT_TRUE(std::isnan(stats::welch_t_test(std::vector<double>{1.0}, b).p_value));
}

TEST(Stats, RatioIntervalCoversTheTrueRatioAndExcludesOneForARealChange) {
  std::vector<double> a = {10.0, 10.1, 9.9, 10.05, 9.95}, b;
  for (double v : a) b.push_back(v * 1.2);
  stats::RatioInterval r = stats::ratio_of_means_ci95(a, b);
  EXPECT_NEAR(r.ratio, 1.2, 1e-12);
  EXPECT_LT(r.low, 1.2);
  EXPECT_GT(r.high, 1.2);
  EXPECT_GT(r.low, 1.0);
  stats::RatioInterval same = stats::ratio_of_means_ci95(a, a);
  EXPECT_LT(same.low, 1.0);
  EXPECT_GT(same.high, 1.0);
}
