#pragma once
// `gptbench compare RUN_A RUN_B`: what changed between two runs, cell by cell, and whether the change is
// larger than the runs' own noise (regression tracking). Works from the run folders alone.
#include <string>
#include <vector>

namespace gptbench {

struct LatencyChange {
  std::string cell_id;
  int n_a = 0, n_b = 0;             // repetitions
  double median_a = 0, median_b = 0;  // median of the repetitions' latency_ms
  double change_pct = 0;            // 100 * (median_b / median_a - 1)
  double p_value = 0;               // Welch's t-test on the repetitions (NaN with fewer than 2 in a run)
  double ratio = 0, ratio_low = 0, ratio_high = 0;  // mean_b / mean_a with its 95 % interval
  bool significant = false;         // the interval of the ratio excludes 1
};

struct PerplexityChange {
  std::string cell;  // backend/device/precision
  double ppl_a = 0, ppl_b = 0, change_pct = 0;
  double z = 0;  // change / combined standard error (independent-sample; the same text makes this conservative)
  bool comparable = true;  // same dataset hash, ctx, stride and token count
};

struct RunComparison {
  std::string run_a, run_b;
  std::vector<LatencyChange> latency;
  std::vector<PerplexityChange> perplexity;
  std::vector<std::string> only_in_a, only_in_b;  // ok cells measured by one run only
  std::vector<std::string> notes;                 // e.g. different models or hardware
};

// Throws Error when either folder is not a readable run.
RunComparison compare_runs(const std::string& run_a, const std::string& run_b);
// The comparison as GitHub-flavoured Markdown tables (what `gptbench compare` prints).
std::string format_comparison(const RunComparison& c);

}  // namespace gptbench
