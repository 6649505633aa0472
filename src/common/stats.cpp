#include "common/stats.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace gptbench::stats {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Continued fraction of the regularized incomplete beta function (modified Lentz), as in Numerical Recipes.
double beta_continued_fraction(double a, double b, double x) {
  constexpr int kMaxIterations = 300;
  constexpr double kEps = 1e-15, kTiny = 1e-300;
  double qab = a + b, qap = a + 1.0, qam = a - 1.0;
  double c = 1.0, d = 1.0 - qab * x / qap;
  if (std::fabs(d) < kTiny) d = kTiny;
  d = 1.0 / d;
  double h = d;
  for (int m = 1; m <= kMaxIterations; ++m) {
    int m2 = 2 * m;
    double aa = m * (b - m) * x / ((qam + m2) * (a + m2));
    d = 1.0 + aa * d;
    if (std::fabs(d) < kTiny) d = kTiny;
    c = 1.0 + aa / c;
    if (std::fabs(c) < kTiny) c = kTiny;
    d = 1.0 / d;
    h *= d * c;
    aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
    d = 1.0 + aa * d;
    if (std::fabs(d) < kTiny) d = kTiny;
    c = 1.0 + aa / c;
    if (std::fabs(c) < kTiny) c = kTiny;
    d = 1.0 / d;
    double del = d * c;
    h *= del;
    if (std::fabs(del - 1.0) < kEps) break;
  }
  return h;
}

double regularized_incomplete_beta(double a, double b, double x) {
  if (x <= 0.0) return 0.0;
  if (x >= 1.0) return 1.0;
  double log_front = std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b) + a * std::log(x) + b * std::log1p(-x);
  double front = std::exp(log_front);
  if (x < (a + 1.0) / (a + b + 2.0)) return front * beta_continued_fraction(a, b, x) / a;
  return 1.0 - front * beta_continued_fraction(b, a, 1.0 - x) / b;
}

}  // namespace

double mean(std::span<const double> x) {
  if (x.empty()) return kNaN;
  return std::accumulate(x.begin(), x.end(), 0.0) / static_cast<double>(x.size());
}

double stddev(std::span<const double> x) {
  if (x.size() < 2) return 0.0;
  double m = mean(x), ss = 0.0;
  for (double v : x) ss += (v - m) * (v - m);
  return std::sqrt(ss / static_cast<double>(x.size() - 1));
}

double median(std::vector<double> x) { return percentile(std::move(x), 50.0); }

double percentile(std::vector<double> x, double p) {
  std::sort(x.begin(), x.end());
  return percentile_sorted(x, p);
}

double percentile_sorted(std::span<const double> x, double p) {
  if (x.empty()) return kNaN;
  double pos = std::clamp(p, 0.0, 100.0) / 100.0 * static_cast<double>(x.size() - 1);
  auto lo = static_cast<std::size_t>(std::floor(pos));
  std::size_t hi = std::min(lo + 1, x.size() - 1);
  double frac = pos - static_cast<double>(lo);
  return x[lo] + frac * (x[hi] - x[lo]);
}

double student_t_two_sided_p(double t, double df) {
  if (std::isnan(t) || !(df > 0.0)) return kNaN;
  if (std::isinf(t)) return 0.0;
  return regularized_incomplete_beta(df / 2.0, 0.5, df / (df + t * t));
}

double student_t_quantile(double probability, double df) {
  if (!(probability > 0.0 && probability < 1.0) || !(df > 0.0)) return kNaN;
  if (probability == 0.5) return 0.0;
  // Bisection on the CDF: monotone, and precise to far below anything a report prints.
  double target_two_sided = 2.0 * std::min(probability, 1.0 - probability);
  double lo = 0.0, hi = 1.0;
  while (student_t_two_sided_p(hi, df) > target_two_sided) hi *= 2.0;
  for (int i = 0; i < 200; ++i) {
    double mid = 0.5 * (lo + hi);
    if (student_t_two_sided_p(mid, df) > target_two_sided) lo = mid;
    else hi = mid;
  }
  double t = 0.5 * (lo + hi);
  return probability > 0.5 ? t : -t;
}

WelchResult welch_t_test(std::span<const double> a, std::span<const double> b) {
  WelchResult r;
  if (a.size() < 2 || b.size() < 2) {
    r.t = r.df = r.p_value = kNaN;
    return r;
  }
  double na = static_cast<double>(a.size()), nb = static_cast<double>(b.size());
  double va = std::pow(stddev(a), 2) / na, vb = std::pow(stddev(b), 2) / nb;
  double diff = mean(b) - mean(a);
  if (va + vb == 0.0) {  // both samples constant: any difference is certain, none is no evidence
    r.t = diff == 0.0 ? 0.0 : std::copysign(std::numeric_limits<double>::infinity(), diff);
    r.df = na + nb - 2.0;
    r.p_value = diff == 0.0 ? 1.0 : 0.0;
    return r;
  }
  r.t = diff / std::sqrt(va + vb);
  r.df = (va + vb) * (va + vb) / (va * va / (na - 1.0) + vb * vb / (nb - 1.0));
  r.p_value = student_t_two_sided_p(r.t, r.df);
  return r;
}

RatioInterval ratio_of_means_ci95(std::span<const double> a, std::span<const double> b) {
  RatioInterval r;
  double ma = mean(a), mb = mean(b);
  r.ratio = mb / ma;
  if (a.size() < 2 || b.size() < 2 || !(ma > 0.0) || !(mb > 0.0)) {
    r.low = r.high = kNaN;
    return r;
  }
  double na = static_cast<double>(a.size()), nb = static_cast<double>(b.size());
  // Relative variances of each mean: the variance of log(mean) by the delta method.
  double ra = std::pow(stddev(a) / ma, 2) / na, rb = std::pow(stddev(b) / mb, 2) / nb;
  double se = std::sqrt(ra + rb);
  if (se == 0.0) {
    r.low = r.high = r.ratio;
    return r;
  }
  double df = (ra + rb) * (ra + rb) / (ra * ra / (na - 1.0) + rb * rb / (nb - 1.0));
  double t = student_t_quantile(0.975, df);
  r.low = r.ratio * std::exp(-t * se);
  r.high = r.ratio * std::exp(t * se);
  return r;
}

}  // namespace gptbench::stats
