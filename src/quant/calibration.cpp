#include "quant/calibration.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "common/error.h"
#include "quant/int8_gemm.h"

namespace gptbench {

CalibrationMethod parse_calibration_method(const std::string& name) {
  if (name == "minmax") return CalibrationMethod::kMinMax;
  if (name == "percentile") return CalibrationMethod::kPercentile;
  if (name == "entropy") return CalibrationMethod::kEntropy;
  if (name == "mse") return CalibrationMethod::kMse;
  throw Error("calibration method: unknown '" + name + "' (expected minmax, percentile, entropy or mse)");
}

std::string calibration_method_name(CalibrationMethod method) {
  switch (method) {
    case CalibrationMethod::kMinMax: return "minmax";
    case CalibrationMethod::kPercentile: return "percentile";
    case CalibrationMethod::kEntropy: return "entropy";
    case CalibrationMethod::kMse: return "mse";
  }
  return "?";
}

float CalibrationTable::scale(const std::string& name) const {
  auto it = amax.find(name);
  if (it == amax.end()) throw Error("calibration table: no entry for " + name);
  return static_cast<float>(it->second / 127.0);
}

void AbsHistogram::add(const float* x, std::int64_t n) {
  if (n <= 0) return;
  const double batch_max = gptbench::max_abs(x, n);
  count_ += n;
  max_abs_ = std::max(max_abs_, batch_max);
  if (batch_max == 0.0) {
    if (range_ == 0.0)
      zeros_before_range_ += n;
    else
      bins_[0] += static_cast<double>(n);
    return;
  }
  if (range_ == 0.0) {
    range_ = batch_max;
    bins_[0] += static_cast<double>(zeros_before_range_);
  }
  while (batch_max > range_) {  // double the range: bin i of the new histogram = bins 2i and 2i+1 of the old
    for (int i = 0; i < kBins / 2; ++i) bins_[i] = bins_[2 * i] + bins_[2 * i + 1];
    std::fill(bins_.begin() + kBins / 2, bins_.end(), 0.0);
    range_ *= 2.0;
  }
  const double per_bin = kBins / range_;
  for (std::int64_t i = 0; i < n; ++i) {
    const int b = std::min(kBins - 1, static_cast<int>(std::fabs(x[i]) * per_bin));
    bins_[b] += 1.0;
  }
}

double entropy_amax(const AbsHistogram& h, int quantized_bins) {
  const auto& hist = h.bins();
  const int nbins = AbsHistogram::kBins;
  if (h.range() == 0.0) return 0.0;
  double best_kl = std::numeric_limits<double>::infinity();
  int best_i = nbins;
  std::vector<double> p(nbins), q(nbins);
  double tail = 0.0;  // Σ hist[i:]
  std::vector<double> suffix(nbins + 1, 0.0);
  for (int i = nbins - 1; i >= 0; --i) suffix[i] = suffix[i + 1] + hist[i];
  for (int i = quantized_bins; i <= nbins; ++i) {
    // P: the first i bins, the clipped outliers folded into the last one.
    std::copy(hist.begin(), hist.begin() + i, p.begin());
    tail = suffix[i];
    p[i - 1] += tail;
    // Q: the same i bins (without the outliers) merged into quantized_bins groups, each group's mass spread
    // evenly over the group's non-empty bins (empty bins stay empty: the quantizer cannot make values there).
    const int merged = i / quantized_bins;
    for (int j = 0; j < quantized_bins; ++j) {
      const int start = j * merged;
      const int stop = j == quantized_bins - 1 ? i : start + merged;
      double mass = 0.0;
      int nonzero = 0;
      for (int k = start; k < stop; ++k) {
        mass += hist[k];
        nonzero += hist[k] != 0.0;
      }
      for (int k = start; k < stop; ++k) q[k] = hist[k] != 0.0 && nonzero > 0 ? mass / nonzero : 0.0;
    }
    double p_sum = 0.0, q_sum = 0.0;
    for (int k = 0; k < i; ++k) {
      p_sum += p[k];
      q_sum += q[k];
    }
    if (p_sum == 0.0 || q_sum == 0.0) continue;
    double kl = 0.0;
    for (int k = 0; k < i; ++k) {
      if (p[k] == 0.0) continue;
      const double pk = p[k] / p_sum;
      // Where P has mass Q has none (only the outlier bin can be so): a large but finite penalty, as TensorRT's
      // smoothing does.
      const double qk = q[k] > 0.0 ? q[k] / q_sum : 1e-4 / q_sum;
      kl += pk * std::log(pk / qk);
    }
    if (kl < best_kl) {
      best_kl = kl;
      best_i = i;
    }
  }
  return best_i * h.bin_width();
}

double percentile_amax(const AbsHistogram& h, double percentile) {
  if (!(percentile > 0.0 && percentile <= 100.0))
    throw Error("calibration percentile: " + std::to_string(percentile) + " is not in (0, 100]");
  if (h.count() == 0 || h.range() == 0.0) return 0.0;
  const auto& bins = h.bins();
  double total = 0.0;
  for (double b : bins) total += b;
  const double target = total * percentile / 100.0;
  double cum = 0.0;
  for (int i = 0; i < AbsHistogram::kBins; ++i) {
    if (cum + bins[i] >= target && bins[i] > 0.0) {
      const double frac = (target - cum) / bins[i];  // linear within the bin
      return std::min(h.max_abs(), (i + frac) * h.bin_width());
    }
    cum += bins[i];
  }
  return h.max_abs();
}

double mse_amax(const AbsHistogram& h, int levels) {
  if (h.range() == 0.0) return 0.0;
  const auto& bins = h.bins();
  const double w = h.bin_width();
  double best = std::numeric_limits<double>::infinity();
  double best_amax = h.range();
  for (int i = 128; i <= AbsHistogram::kBins; ++i) {
    const double amax = i * w;
    const double step = amax / levels;
    double err = 0.0;
    for (int k = 0; k < AbsHistogram::kBins; ++k) {
      if (bins[k] == 0.0) continue;
      const double c = (k + 0.5) * w;  // the bin's values, represented by its centre
      const double dq = std::min(std::nearbyint(c / step), static_cast<double>(levels)) * step;
      err += bins[k] * (c - dq) * (c - dq);
    }
    if (err < best) {
      best = err;
      best_amax = amax;
    }
  }
  return best_amax;
}

ActivationCalibrator::ActivationCalibrator(CalibrationMethod method, double percentile)
    : method_(method), percentile_(percentile) {
  if (method == CalibrationMethod::kPercentile && !(percentile > 0.0 && percentile <= 100.0))
    throw Error("calibration percentile: " + std::to_string(percentile) + " is not in (0, 100]");
}

void ActivationCalibrator::observe(const std::string& name, const float* x, std::int64_t rows, std::int64_t cols) {
  histograms_[name].add(x, rows * cols);
}

ActivationObserver ActivationCalibrator::observer() {
  return [this](const std::string& name, const float* x, std::int64_t rows, std::int64_t cols) {
    observe(name, x, rows, cols);
  };
}

CalibrationTable ActivationCalibrator::table() const {
  CalibrationTable t;
  t.method = calibration_method_name(method_);
  t.percentile = method_ == CalibrationMethod::kPercentile ? percentile_ : 0.0;
  for (const auto& [name, h] : histograms_) {
    double amax = 0.0;
    switch (method_) {
      case CalibrationMethod::kMinMax: amax = h.max_abs(); break;
      case CalibrationMethod::kPercentile: amax = percentile_amax(h, percentile_); break;
      case CalibrationMethod::kEntropy: amax = entropy_amax(h); break;
      case CalibrationMethod::kMse: amax = mse_amax(h); break;
    }
    // An input that was all zeros still needs a usable scale.
    t.amax[name] = amax > 0.0 ? amax : 1.0;
  }
  return t;
}

std::vector<std::string> ActivationCalibrator::names() const {
  std::vector<std::string> n;
  for (const auto& kv : histograms_) n.push_back(kv.first);
  return n;
}

const AbsHistogram* ActivationCalibrator::histogram(const std::string& name) const {
  auto it = histograms_.find(name);
  return it == histograms_.end() ? nullptr : &it->second;
}

}  // namespace gptbench
