#pragma once
// Measuring one cell on one backend: an untimed accuracy call, discarded warm-up calls, then repetitions that each
// run until both min_calls and min_seconds are reached, every timed call recorded; plus the caching audit (fresh
// random inputs vs the repeated input, interleaved). Backends are blocking (backends/backend.h), so
// steady_clock around a call measures finished work.
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "bench/run_config.h"

namespace gptbench::bench {

// Deterministic token ids in [0, vocab) for a scenario: the same input for every backend of a run, so
// checksums can be compared across backends.
TokenBatch random_tokens(int batch, int seq, int vocab, std::uint64_t seed);
std::uint64_t stable_hash(const std::string& text);  // FNV-1a 64, stable across platforms and runs

class CellMeasurement {
 public:
  CellMeasurement(Backend& backend, const Cell& cell, int vocab_size, std::uint64_t run_seed);

  // The untimed accuracy call and the warm-up; fields for every record of this cell
  // (accuracy_checksum, accuracy_top1_hash / accuracy_generated_hash).
  nlohmann::json prepare();

  // One repetition: timings and outputs as docs/run-format.md's raw record fields (without run/cell/provenance).
  nlohmann::json run_repetition(int repetition);

 private:
  nlohmann::json prefill_repetition();
  nlohmann::json decode_repetition();
  struct Generation {
    double ttft_ms = 0;
    std::vector<double> step_ms;
    std::vector<std::int32_t> generated;  // [new_tokens, batch], step-major
    double last_checksum = 0;
  };
  Generation generate(const TokenBatch& prompt);
  double time_decode_prompt(const TokenBatch& prompt);  // prompt prefill only, for the audit
  TokenBatch fresh_input();  // the caching audit's next fresh input
  const TokenBatch& fresh_at(std::vector<TokenBatch>& fresh, int i);

  Backend& backend_;
  Cell cell_;
  int vocab_size_;
  std::uint64_t seed_;
  std::uint64_t fresh_counter_ = 0;
  TokenBatch input_;  // the fixed input of the timed calls
  ForwardOutput out_;
};

}  // namespace gptbench::bench
