#pragma once
// Activation calibration for INT8: what range of values each quantized matrix-product input takes on
// calibration text, and from that the per-tensor activation scale (scale = amax / 127, symmetric int8).
//
// Methods (all on |x|, since the quantization is symmetric):
//   minmax     — amax = the largest |x| seen.
//   percentile — amax = the given percentile of |x| (e.g. 99.99), from a 2048-bin histogram.
//   entropy    — TensorRT's entropy calibrator (EntropyCalibration2): over a 2048-bin histogram of |x|, the
//                threshold i·bin_width (i = 128..2048) whose 128-level quantization loses the least information,
//                measured as KL(P || Q) of the clipped reference distribution P and its quantized version Q.
//   mse        — the threshold (on the same candidates) that minimises the mean squared quantization error of
//                the histogram's values, clipping included.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "backends/native/linear.h"  // ActivationObserver (an interface type only: no link to the engine)

namespace gptbench {

enum class CalibrationMethod { kMinMax, kPercentile, kEntropy, kMse };

CalibrationMethod parse_calibration_method(const std::string& name);  // throws Error naming the valid choices
std::string calibration_method_name(CalibrationMethod method);         // "minmax", ...

// Per linear name, the activation range chosen by calibration.
struct CalibrationTable {
  std::string method;          // minmax | percentile | entropy | mse
  double percentile = 0.0;     // the percentile, for the percentile method (else 0)
  std::map<std::string, double> amax;  // linear name -> amax of its input

  bool contains(const std::string& name) const { return amax.count(name) != 0; }
  // amax / 127; throws Error("calibration table: no entry for <name>") when absent.
  float scale(const std::string& name) const;
};

// Histogram of |x| with a fixed number of bins over [0, range). The range starts at the first non-zero batch's
// max |x| and doubles (merging neighbouring bins) whenever a larger value arrives, so every value is counted.
class AbsHistogram {
 public:
  static constexpr int kBins = 2048;
  void add(const float* x, std::int64_t n);
  double range() const { return range_; }
  double bin_width() const { return range_ / kBins; }
  double max_abs() const { return max_abs_; }
  std::int64_t count() const { return count_; }
  const std::vector<double>& bins() const { return bins_; }

 private:
  std::vector<double> bins_ = std::vector<double>(kBins, 0.0);
  double range_ = 0.0;
  double max_abs_ = 0.0;
  std::int64_t count_ = 0;
  std::int64_t zeros_before_range_ = 0;  // exact zeros seen before the range was known
};

// Thresholds from a histogram (see the method notes above). quantized_bins: 128 for int8 (7 bits of magnitude).
double entropy_amax(const AbsHistogram& h, int quantized_bins = 128);
double percentile_amax(const AbsHistogram& h, double percentile);
double mse_amax(const AbsHistogram& h, int quantized_levels = 127);

// Collects the inputs of every named matrix product and turns them into a CalibrationTable.
class ActivationCalibrator {
 public:
  explicit ActivationCalibrator(CalibrationMethod method, double percentile = 99.99);
  void observe(const std::string& name, const float* x, std::int64_t rows, std::int64_t cols);
  // An observer that forwards to observe(); this calibrator must outlive it.
  ActivationObserver observer();
  CalibrationTable table() const;
  std::vector<std::string> names() const;
  const AbsHistogram* histogram(const std::string& name) const;  // null when the name was never seen

 private:
  CalibrationMethod method_;
  double percentile_;
  std::map<std::string, AbsHistogram> histograms_;
};

}  // namespace gptbench
