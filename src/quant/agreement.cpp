#include "quant/agreement.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/stats.h"

namespace gptbench {
namespace {

struct RowStats {
  double max = 0, log_sum_exp = 0;
  std::int64_t argmax = 0;
};

// Max, arg-max and log-sum-exp of a row; with `shifted`, also keeps exp(logit − max) of every entry so the KL sum
// needs no second exponential (the exponentials are most of the cost at a 50257-word vocabulary).
RowStats row_stats(const float* logits, std::int64_t vocab, std::vector<double>* shifted = nullptr) {
  RowStats s;
  s.max = logits[0];
  for (std::int64_t i = 1; i < vocab; ++i)
    if (logits[i] > s.max) {  // strict: the lowest id wins ties
      s.max = logits[i];
      s.argmax = i;
    }
  double sum = 0.0;
  if (shifted != nullptr) {
    shifted->resize(static_cast<std::size_t>(vocab));
    for (std::int64_t i = 0; i < vocab; ++i) sum += ((*shifted)[i] = std::exp(static_cast<double>(logits[i]) - s.max));
  } else {
    for (std::int64_t i = 0; i < vocab; ++i) sum += std::exp(static_cast<double>(logits[i]) - s.max);
  }
  s.log_sum_exp = s.max + std::log(sum);
  return s;
}

double mean_of(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0.0 : s / static_cast<double>(v.size());
}

double stderr_of(const std::vector<double>& v, double mean) {
  if (v.size() < 2) return 0.0;
  double ss = 0;
  for (double x : v) ss += (x - mean) * (x - mean);
  return std::sqrt(ss / static_cast<double>(v.size() - 1) / static_cast<double>(v.size()));
}

nlohmann::json percentiles_json(const Percentiles& p) {
  return {{"p99.9", p.p99_9}, {"p99", p.p99}, {"p95", p.p95}, {"p50", p.p50},
          {"p5", p.p5},       {"p1", p.p1},   {"min", p.min}, {"max", p.max}};
}

}  // namespace

double percentile_of_sorted(const std::vector<double>& v, double percentile) {
  return stats::percentile_sorted(v, percentile);
}

Percentiles percentiles_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  Percentiles p;
  p.p99_9 = percentile_of_sorted(v, 99.9);
  p.p99 = percentile_of_sorted(v, 99);
  p.p95 = percentile_of_sorted(v, 95);
  p.p50 = percentile_of_sorted(v, 50);
  p.p5 = percentile_of_sorted(v, 5);
  p.p1 = percentile_of_sorted(v, 1);
  p.min = v.empty() ? std::numeric_limits<double>::quiet_NaN() : v.front();
  p.max = v.empty() ? std::numeric_limits<double>::quiet_NaN() : v.back();
  return p;
}

void AgreementAccumulator::add(const float* reference, const float* candidate, std::int64_t vocab,
                               std::int32_t target) {
  if (vocab <= 0) throw Error("agreement: vocabulary size must be positive");
  if (target >= vocab) throw Error("agreement: target id " + std::to_string(target) + " outside the vocabulary");
  thread_local std::vector<double> ref_exp;
  const RowStats r = row_stats(reference, vocab, &ref_exp), c = row_stats(candidate, vocab);
  // KL = Σ p_ref (log p_ref − log p_cand), p_ref = exp(l − max) / exp(lse − max).
  const double inv_sum = std::exp(r.max - r.log_sum_exp);
  double kl = 0.0;
  for (std::int64_t i = 0; i < vocab; ++i) {
    const double lr = reference[i] - r.log_sum_exp, lc = candidate[i] - c.log_sum_exp;
    kl += ref_exp[i] * inv_sum * (lr - lc);
  }
  kl_.push_back(std::max(0.0, kl));  // rounding can leave -1e-17 for identical rows
  top1_same_ += r.argmax == c.argmax;
  if (target >= 0) {
    const double lr = reference[target] - r.log_sum_exp, lc = candidate[target] - c.log_sum_exp;
    delta_p_.push_back(std::exp(lc) - std::exp(lr));
    nll_ref_sum_ += -lr;
    nll_cand_sum_ += -lc;
    nll_diff_.push_back(lr - lc);  // (−lc) − (−lr)
  }
}

void AgreementAccumulator::add_rows(const float* reference, const float* candidate, std::int64_t rows,
                                    std::int64_t vocab, std::span<const std::int32_t> targets) {
  if (static_cast<std::int64_t>(targets.size()) != rows)
    throw Error("agreement: " + std::to_string(targets.size()) + " targets for " + std::to_string(rows) + " rows");
  for (std::int64_t i = 0; i < rows; ++i) add(reference + i * vocab, candidate + i * vocab, vocab, targets[i]);
}

AgreementStats AgreementAccumulator::finish() const {
  AgreementStats s;
  s.tokens = static_cast<std::int64_t>(kl_.size());
  s.scored_tokens = static_cast<std::int64_t>(delta_p_.size());
  if (s.tokens == 0) return s;
  s.kl_mean = mean_of(kl_);
  s.kl_stderr = stderr_of(kl_, s.kl_mean);
  s.kl = percentiles_of(kl_);
  const double n = static_cast<double>(s.tokens);
  s.top1_agreement = static_cast<double>(top1_same_) / n;
  s.top1_agreement_stderr = std::sqrt(s.top1_agreement * (1.0 - s.top1_agreement) / n);
  if (s.scored_tokens > 0) {
    const double m = static_cast<double>(s.scored_tokens);
    s.delta_p_mean = mean_of(delta_p_);
    s.delta_p_stderr = stderr_of(delta_p_, s.delta_p_mean);
    double sq = 0;
    for (double d : delta_p_) sq += d * d;
    s.delta_p_rms = std::sqrt(sq / m);
    s.delta_p = percentiles_of(delta_p_);
    s.ppl_reference = std::exp(nll_ref_sum_ / m);
    s.ppl_candidate = std::exp(nll_cand_sum_ / m);
    s.ln_ppl_ratio = mean_of(nll_diff_);
    s.ln_ppl_ratio_stderr = stderr_of(nll_diff_, s.ln_ppl_ratio);
    s.ppl_ratio = std::exp(s.ln_ppl_ratio);
    s.ppl_ratio_stderr = s.ppl_ratio * s.ln_ppl_ratio_stderr;
  }
  return s;
}

nlohmann::json agreement_to_json(const AgreementStats& s) {
  return {{"tokens", s.tokens},
          {"scored_tokens", s.scored_tokens},
          {"kl_divergence", {{"mean", s.kl_mean}, {"stderr", s.kl_stderr}, {"percentiles", percentiles_json(s.kl)}}},
          {"top1_agreement", {{"value", s.top1_agreement}, {"stderr", s.top1_agreement_stderr}}},
          {"delta_p",
           {{"mean", s.delta_p_mean},
            {"stderr", s.delta_p_stderr},
            {"rms", s.delta_p_rms},
            {"percentiles", percentiles_json(s.delta_p)}}},
          {"ppl_reference", s.ppl_reference},
          {"ppl_candidate", s.ppl_candidate},
          {"ppl_ratio", {{"value", s.ppl_ratio}, {"stderr", s.ppl_ratio_stderr}}},
          {"ln_ppl_ratio", {{"value", s.ln_ppl_ratio}, {"stderr", s.ln_ppl_ratio_stderr}}}};
}

}  // namespace gptbench
