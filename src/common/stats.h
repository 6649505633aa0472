#pragma once
// The small amount of statistics the runner, the gates, the report, `compare` and the agreement figures need:
// summaries of samples, percentiles, Student-t intervals and Welch's test. Written out here (no statistics library
// in Debian's C++ set) and tested on known values (tests/checks/test_stats.cpp).
#include <span>
#include <vector>

namespace gptbench::stats {

double mean(std::span<const double> x);
double stddev(std::span<const double> x);           // sample (n - 1) standard deviation; 0 for n < 2
double median(std::vector<double> x);               // NaN for an empty sample
double percentile(std::vector<double> x, double p);  // linear interpolation, p in [0, 100]
// The same on an already sorted sample (NaN when empty).
double percentile_sorted(std::span<const double> sorted, double p);

// Student-t distribution with df degrees of freedom.
double student_t_two_sided_p(double t, double df);     // P(|T| >= |t|)
double student_t_quantile(double probability, double df);  // inverse CDF, e.g. 0.975 for a 95 % interval

struct WelchResult {
  double t = 0.0;
  double df = 0.0;
  double p_value = 1.0;  // two-sided
};
// Welch's unequal-variance t-test of mean(b) - mean(a). Needs n >= 2 in both samples (p = NaN otherwise).
WelchResult welch_t_test(std::span<const double> a, std::span<const double> b);

struct RatioInterval {
  double ratio = 0.0;  // mean(b) / mean(a)
  double low = 0.0;
  double high = 0.0;
};
// 95 % interval of mean(b) / mean(a) by the delta method on the log ratio with Welch's degrees of freedom.
RatioInterval ratio_of_means_ci95(std::span<const double> a, std::span<const double> b);

}  // namespace gptbench::stats
