#pragma once
// How closely a candidate (e.g. INT8) reproduces a reference (FP32) next-token distribution, position by
// position, as llama.cpp's --kl-divergence mode reports it: KL(ref || cand) per token (mean and percentiles),
// top-1 agreement, Δp = p_cand(correct) − p_ref(correct) (mean, RMS, percentiles), and PPL(cand)/PPL(ref) with
// its uncertainty from the paired per-token NLL differences. Log-softmax in double.
#include <cstdint>
#include <span>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace gptbench {

// Linear interpolation between order statistics (numpy's default); NaN for an empty set.
struct Percentiles {
  double p99_9 = 0, p99 = 0, p95 = 0, p50 = 0, p5 = 0, p1 = 0;
  double min = 0, max = 0;
};
double percentile_of_sorted(const std::vector<double>& sorted, double percentile);
Percentiles percentiles_of(std::vector<double> values);

struct AgreementStats {
  std::int64_t tokens = 0;         // positions compared
  std::int64_t scored_tokens = 0;  // positions with a known correct token (Δp, NLL, PPL)

  double kl_mean = 0, kl_stderr = 0;
  Percentiles kl;

  double top1_agreement = 0, top1_agreement_stderr = 0;  // fraction of positions with the same arg-max

  double delta_p_mean = 0, delta_p_stderr = 0, delta_p_rms = 0;
  Percentiles delta_p;

  double ppl_reference = 0, ppl_candidate = 0;
  double ppl_ratio = 0, ppl_ratio_stderr = 0;  // exp(mean(nll_cand − nll_ref)), delta method
  double ln_ppl_ratio = 0, ln_ppl_ratio_stderr = 0;
};

nlohmann::json agreement_to_json(const AgreementStats& s);

class AgreementAccumulator {
 public:
  // One position: both logits rows of `vocab` values; target = the correct next token, or < 0 when unknown.
  void add(const float* reference, const float* candidate, std::int64_t vocab, std::int32_t target);
  // rows positions; targets has one entry per row.
  void add_rows(const float* reference, const float* candidate, std::int64_t rows, std::int64_t vocab,
                std::span<const std::int32_t> targets);
  AgreementStats finish() const;
  std::int64_t tokens() const { return static_cast<std::int64_t>(kl_.size()); }

 private:
  std::vector<double> kl_;
  std::vector<double> delta_p_;
  std::vector<double> nll_diff_;  // nll_cand − nll_ref per scored position
  double nll_ref_sum_ = 0, nll_cand_sum_ = 0;
  std::int64_t top1_same_ = 0;
};

}  // namespace gptbench
