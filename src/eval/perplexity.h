#pragma once
// Perplexity by the standard sliding window (the Hugging Face recipe): windows of ctx tokens start every
// stride tokens; each window scores only the tokens no earlier window scored (the first window: all but its
// first token). ppl = exp(NLL sum / scored tokens), accumulation in double.
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "backends/backend.h"

namespace gptbench {

struct PerplexitySettings {
  int ctx = 1024;
  int stride = 512;
  std::int64_t max_tokens = 0;  // 0: the whole dataset; otherwise only its first max_tokens tokens
};

struct PerplexityResult {
  double ppl = 0.0;
  double ppl_stderr = 0.0;     // delta method: ppl * stderr of the per-token NLL mean
  std::int64_t scored_tokens = 0;
  double nll_sum = 0.0;
  double nll_mean = 0.0;
  double seconds = 0.0;
  std::int64_t windows = 0;
  std::vector<double> token_nll;  // per scored token, in order (kept for agreement statistics)
};

// begin: first token of the window in the dataset; length: tokens in it; score_from: first position (within the
// window) whose next token is scored.
using Window = Backend::ScoreWindow;

// The windows of the method above for n tokens; throws Error when stride > ctx or either is < 1.
std::vector<Window> sliding_windows(std::int64_t n_tokens, int ctx, int stride);

using ProgressFn = std::function<void(std::int64_t windows_done, std::int64_t windows_total)>;

// `n_positions` bounds ctx (Error when ctx exceeds it).
PerplexityResult evaluate_perplexity(Backend& backend, std::span<const std::int32_t> ids,
                                     const PerplexitySettings& settings, int n_positions,
                                     const ProgressFn& progress = {});

}  // namespace gptbench
