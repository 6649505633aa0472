#pragma once
// Descriptive statistics of a cell's repetitions (docs/run-format.md, latency_summary.csv).
#include <cstdint>
#include <span>
#include <vector>

namespace gptbench::bench {

struct SampleSummary {
  std::int64_t n = 0;
  double mean = 0, median = 0, p5 = 0, p95 = 0, min = 0, max = 0;
  double stddev = 0;    // sample standard deviation (n - 1); NaN when n < 2
  double cv = 0;        // stddev / mean; NaN when n < 2
  double ci95_low = 0;  // Student-t 95 % interval of the mean; NaN when n < 2
  double ci95_high = 0;
};

// Percentile p in [0, 100] with linear interpolation between closest ranks (numpy's default "linear":
// position (n - 1) * p / 100). `sorted` must be sorted ascending and non-empty.
double percentile_sorted(std::span<const double> sorted, double p);
double percentile(std::vector<double> values, double p);
double median(std::vector<double> values);

// The 0.975 quantile of Student's t distribution with `df` degrees of freedom (df >= 1).
double student_t_975(std::int64_t df);

// Throws std::invalid_argument for an empty sample.
SampleSummary summarize(std::span<const double> values);

}  // namespace gptbench::bench
