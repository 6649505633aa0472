#include "bench/statistics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

namespace gptbench::bench {

double percentile_sorted(std::span<const double> sorted, double p) {
  if (sorted.empty()) throw std::invalid_argument("percentile of an empty sample");
  if (sorted.size() == 1) return sorted[0];
  const double position = (static_cast<double>(sorted.size()) - 1.0) * std::clamp(p, 0.0, 100.0) / 100.0;
  const auto lower = static_cast<std::size_t>(std::floor(position));
  const std::size_t upper = std::min(lower + 1, sorted.size() - 1);
  const double fraction = position - static_cast<double>(lower);
  return sorted[lower] + fraction * (sorted[upper] - sorted[lower]);
}

double percentile(std::vector<double> values, double p) {
  std::sort(values.begin(), values.end());
  return percentile_sorted(values, p);
}

double median(std::vector<double> values) { return percentile(std::move(values), 50.0); }

double student_t_975(std::int64_t df) {
  // Exact table for small samples (where the choice matters most), Cornish-Fisher expansion beyond
  // (error < 1e-4 for df > 30).
  static const double table[] = {0,      12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646,
                                 2.3060, 2.2622,  2.2281, 2.2010, 2.1788, 2.1604, 2.1448, 2.1314,
                                 2.1199, 2.1098,  2.1009, 2.0930, 2.0860, 2.0796, 2.0739, 2.0687,
                                 2.0639, 2.0595,  2.0555, 2.0518, 2.0484, 2.0452, 2.0423};
  if (df < 1) throw std::invalid_argument("student_t_975: df must be >= 1");
  if (df <= 30) return table[df];
  const double z = 1.959963984540054;
  const double n = static_cast<double>(df);
  const double z3 = z * z * z, z5 = z3 * z * z, z7 = z5 * z * z;
  return z + (z3 + z) / (4 * n) + (5 * z5 + 16 * z3 + 3 * z) / (96 * n * n) +
         (3 * z7 + 19 * z5 + 17 * z3 - 15 * z) / (384 * n * n * n);
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
