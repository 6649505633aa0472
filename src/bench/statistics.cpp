#include "bench/statistics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "common/stats.h"

namespace gptbench::bench {

double percentile_sorted(std::span<const double> sorted, double p) {
  if (sorted.empty()) throw std::invalid_argument("percentile of an empty sample");
  return stats::percentile_sorted(sorted, p);
}

double percentile(std::vector<double> values, double p) {
  std::sort(values.begin(), values.end());
  return percentile_sorted(values, p);
}

double median(std::vector<double> values) { return percentile(std::move(values), 50.0); }

double student_t_975(std::int64_t df) {
  if (df < 1) throw std::invalid_argument("student_t_975: df must be >= 1");
  return stats::student_t_quantile(0.975, static_cast<double>(df));
}

SampleSummary summarize(std::span<const double> values) {
  if (values.empty()) throw std::invalid_argument("summary of an empty sample");
  std::vector<double> sorted(values.begin(), values.end());
  std::sort(sorted.begin(), sorted.end());
  SampleSummary s;
  s.n = static_cast<std::int64_t>(sorted.size());
  double sum = 0;
  for (double v : sorted) sum += v;
  s.mean = sum / static_cast<double>(s.n);
  s.median = percentile_sorted(sorted, 50);
  s.p5 = percentile_sorted(sorted, 5);
  s.p95 = percentile_sorted(sorted, 95);
  s.min = sorted.front();
  s.max = sorted.back();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  if (s.n < 2) {
    s.stddev = s.cv = s.ci95_low = s.ci95_high = nan;
    return s;
  }
  double squares = 0;
  for (double v : sorted) squares += (v - s.mean) * (v - s.mean);
  s.stddev = std::sqrt(squares / static_cast<double>(s.n - 1));
  s.cv = s.mean != 0 ? s.stddev / s.mean : nan;
  const double half_width = student_t_975(s.n - 1) * s.stddev / std::sqrt(static_cast<double>(s.n));
  s.ci95_low = s.mean - half_width;
  s.ci95_high = s.mean + half_width;
  return s;
}

}  // namespace gptbench::bench
