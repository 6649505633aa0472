#include "eval/perplexity.h"

#include <chrono>
#include <algorithm>
#include <cmath>

#include "backends/backend.h"
#include "common/error.h"

namespace gptbench {

std::vector<Window> sliding_windows(std::int64_t n_tokens, int ctx, int stride) {
  if (ctx < 2) throw Error("perplexity: ctx must be at least 2 (got " + std::to_string(ctx) + ")");
  if (stride < 1) throw Error("perplexity: stride must be at least 1 (got " + std::to_string(stride) + ")");
  if (stride > ctx) throw Error("perplexity: stride (" + std::to_string(stride) + ") must not exceed ctx (" + std::to_string(ctx) + ")");
  std::vector<Window> windows;
  // As in the Hugging Face recipe: a window [begin, end) with end = min(begin + ctx, n); it scores the targets
  // in [prev_end, end) — the tokens no earlier window scored — i.e. positions t with t + 1 >= prev_end.
  std::int64_t prev_end = 0;
  for (std::int64_t begin = 0; begin < n_tokens; begin += stride) {
    const std::int64_t end = std::min<std::int64_t>(begin + ctx, n_tokens);
    const std::int64_t target_len = end - prev_end;  // new targets in this window
    Window w;
    w.begin = begin;
    w.length = static_cast<int>(end - begin);
    // Targets are the tokens at window positions [length - target_len, length), the first token never is one.
    w.score_from = static_cast<int>(std::max<std::int64_t>(w.length - target_len, 1) - 1);
    if (w.length >= 2 && w.score_from < w.length - 1) windows.push_back(w);
    prev_end = end;
    if (end == n_tokens) break;
  }
  return windows;
}

PerplexityResult evaluate_perplexity(Backend& backend, std::span<const std::int32_t> ids,
                                     const PerplexitySettings& settings, int n_positions, const ProgressFn& progress) {
  if (settings.ctx > n_positions)
    throw Error("perplexity: ctx " + std::to_string(settings.ctx) + " exceeds the model's n_positions (" +
                std::to_string(n_positions) + ")");
  std::span<const std::int32_t> tokens = ids;
  if (settings.max_tokens > 0 && static_cast<std::int64_t>(tokens.size()) > settings.max_tokens)
    tokens = tokens.first(static_cast<std::size_t>(settings.max_tokens));
  if (tokens.size() < 2) throw Error("perplexity: the dataset has fewer than 2 tokens");

  const auto start = std::chrono::steady_clock::now();
  const auto windows = sliding_windows(static_cast<std::int64_t>(tokens.size()), settings.ctx, settings.stride);
  PerplexityResult result;
  result.token_nll.reserve(tokens.size());
  // Windows go to the backend in groups, so engines that batch windows per launch can (and progress is seen).
  constexpr std::size_t kWindowsPerCall = 16;
  for (std::size_t i = 0; i < windows.size(); i += kWindowsPerCall) {
    const std::span<const Window> group =
        std::span<const Window>(windows).subspan(i, std::min(kWindowsPerCall, windows.size() - i));
    std::size_t expected = result.token_nll.size();
    for (const Window& w : group) expected += static_cast<std::size_t>(w.length - 1 - w.score_from);
    backend.score_windows(tokens, group, result.token_nll);
    if (result.token_nll.size() != expected)
      throw Error("perplexity: backend scored " + std::to_string(result.token_nll.size()) + " tokens, expected " +
                  std::to_string(expected));
    if (progress) progress(static_cast<std::int64_t>(i + group.size()), static_cast<std::int64_t>(windows.size()));
  }
  result.windows = static_cast<std::int64_t>(windows.size());
  result.scored_tokens = static_cast<std::int64_t>(result.token_nll.size());
  double sum = 0.0;
  for (double v : result.token_nll) {
    if (!std::isfinite(v)) throw Error("perplexity: the backend produced a non-finite log-likelihood");
    sum += v;
  }
  result.nll_sum = sum;
  result.nll_mean = sum / static_cast<double>(result.scored_tokens);
  result.ppl = std::exp(result.nll_mean);
  // Standard error of the mean NLL, carried to ppl by the delta method (d exp(m) = exp(m) dm).
  double sq = 0.0;
  for (double v : result.token_nll) sq += (v - result.nll_mean) * (v - result.nll_mean);
  const double n = static_cast<double>(result.scored_tokens);
  const double stderr_mean = n > 1 ? std::sqrt(sq / (n - 1) / n) : 0.0;
  result.ppl_stderr = result.ppl * stderr_mean;
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

}  // namespace gptbench
