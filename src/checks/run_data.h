#pragma once
// A finished (or partial) run folder read back from disk, exactly as docs/run-format.md describes it.
// The report, the gates and `compare` work only from this, never from a live runner, so any run folder
// (from this machine, a GPU host or an older version) can be judged the same way.
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace gptbench {

// One row of processed/latency_summary.csv. Numbers the CSV leaves empty (failed cells, decode-only columns)
// are NaN; integer columns it leaves empty are 0.
struct LatencyRow {
  std::string cell_id, backend, device, precision, scenario;
  int batch = 0, seq = 0, prompt = 0, new_tokens = 0;
  std::string status;
  int n = 0;
  static constexpr double kMissing = std::numeric_limits<double>::quiet_NaN();
  double mean_ms = kMissing, median_ms = kMissing, p5_ms = kMissing, p95_ms = kMissing, stddev_ms = kMissing;
  double cv = kMissing, ci95_low_ms = kMissing, ci95_high_ms = kMissing, tokens_per_s = kMissing, ttft_ms = kMissing;
  std::string error;

  bool ok() const { return status == "ok"; }
  bool is_gpu() const { return device.rfind("cpu", 0) != 0; }
  // "prefill b1 s128" / "decode b1 p128 n64": the scenario part of a cell, for grouping rows into tables.
  std::string scenario_label() const;
};

// What the manifest says about the model (provenance.model); absent numbers are 0.
struct ModelInfo {
  std::string name, expected_name, storage_dtype, source;
  std::int64_t parameters = 0, config_parameters = 0, expected_parameters = 0;
  bool untrained = false;
  int n_layer = 0, n_head = 0, n_embd = 0, n_inner = 0, n_positions = 0, vocab_size = 0;
  bool has_shape() const { return n_layer > 0 && n_embd > 0 && vocab_size > 0; }
};

struct RunData {
  std::string dir;
  nlohmann::json manifest = nlohmann::json::object();
  std::vector<nlohmann::json> bench_records;  // every line of raw/bench_*.jsonl, files in name order
  std::vector<LatencyRow> latency;            // processed/latency_summary.csv
  nlohmann::json perplexity;                  // processed/perplexity_results.json, null when absent
  nlohmann::json agreement;                   // processed/agreement.json, null when absent
  nlohmann::json artifacts;                   // processed/artifacts.json, null when absent
  std::vector<std::string> notes;             // problems found while reading that did not stop it

  std::string run_id() const;
  ModelInfo model() const;
  // The perplexity results array ([] when there is none).
  const nlohmann::json& perplexity_results() const;
};

// Reads a run folder. Throws Error when the folder or its manifest.json is missing, or a file present does not
// parse (naming the file and line); optional files that are absent are left null/empty.
RunData load_run(const std::string& dir);

// Splits one CSV line (RFC 4180 quoting).
std::vector<std::string> split_csv_line(const std::string& line);

// Number from JSON, NaN when absent, null or not a number.
double json_number(const nlohmann::json& j, const char* key);

}  // namespace gptbench
