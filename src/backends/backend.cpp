#include "backends/backend.h"

#include <algorithm>
#include <cmath>

#include "common/error.h"
#include "common/fast_math.h"

namespace gptbench {

void summarize_logits(const float* logits, std::int64_t rows, std::int64_t vocab, ForwardOutput& out,
                      bool openmp_threads) {
  out.top1.resize(static_cast<std::size_t>(rows));
  // Rows in parallel where the caller runs on OpenMP (a batch-8 prefill has 51 M logits); the row sums are added
  // in row order afterwards, so the checksum does not depend on the thread count.
  std::vector<double> row_sums(static_cast<std::size_t>(rows));
#pragma omp parallel for schedule(static) if (openmp_threads)
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* row = logits + r * vocab;
    out.top1[static_cast<std::size_t>(r)] = static_cast<std::int32_t>(argmax_of(row, vocab));
    row_sums[static_cast<std::size_t>(r)] = sum_of(row, vocab);
  }
  double total = 0.0;
  for (double s : row_sums) total += s;
  out.checksum = total;
}

void nll_from_logits(const float* logits, std::int64_t vocab, std::span<const std::int32_t> ids, int score_from,
                     std::vector<double>& nll) {
  const std::int64_t seq = static_cast<std::int64_t>(ids.size());
  for (std::int64_t t = score_from; t + 1 < seq; ++t) {
    const float* row = logits + t * vocab;
    const std::int32_t target = ids[static_cast<std::size_t>(t + 1)];
    if (target < 0 || target >= vocab) throw Error("token id " + std::to_string(target) + " is outside the vocabulary");
    // -log softmax(row)[target] = logsumexp(row) - row[target]; log_sum_exp subtracts the maximum first.
    nll.push_back(log_sum_exp(row, vocab) - static_cast<double>(row[target]));
  }
}

void Backend::score_window(std::span<const std::int32_t> ids, int score_from, std::vector<double>& nll) {
  TokenBatch batch;
  batch.batch = 1;
  batch.seq = static_cast<int>(ids.size());
  batch.ids.assign(ids.begin(), ids.end());
  ForwardOutput out;
  prefill(batch, OutputMode::kLogits, out);
  const std::int64_t vocab = static_cast<std::int64_t>(out.logits.size()) / batch.seq;
  nll_from_logits(out.logits.data(), vocab, ids, score_from, nll);
}

void Backend::score_windows(std::span<const std::int32_t> tokens, std::span<const ScoreWindow> windows,
                            std::vector<double>& nll) {
  for (const ScoreWindow& w : windows)
    score_window(tokens.subspan(static_cast<std::size_t>(w.begin), static_cast<std::size_t>(w.length)), w.score_from, nll);
}

}  // namespace gptbench
