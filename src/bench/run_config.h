#pragma once
// The experiment description `gptbench run` reads: a YAML file (docs/configs.md) checked key by key against its
// schema, with `--set key.sub=value` overrides applied to the YAML tree before checking, and every scenario
// parameter list or range expanded into cells in a deterministic order.
#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "backends/backend.h"

namespace gptbench {
struct Gpt2Config;
}

namespace gptbench::bench {

// The names the schema knows. Whether this build has a backend is a run-time question (a "skipped" cell);
// a name outside these lists is a config error.
const std::vector<std::string>& known_backend_names();  // native, onnxruntime
const std::vector<std::string>& known_devices();        // cpu, cuda
const std::vector<std::string>& known_precisions();     // fp32, tf32, fp16, bf16, int8, int8-weight-only

struct ModelSpec {
  std::string source;                  // directory or hub name, ${shared} expanded
  std::string expect_name;             // "" = no name check
  std::int64_t expect_parameters = 0;  // 0 = the name's known count
  bool hash_weights = true;
};

struct BackendEntry {
  std::string name = "native";
  std::string device = "cpu";
  std::vector<std::string> precisions{"fp32"};
  int threads = 0;  // 0: the run's `threads`
  std::map<std::string, std::string> options;
};

// How long and how often each cell is measured (top-level keys, overridable per scenario).
struct MeasureSettings {
  int repetitions = 5;
  int warmup_calls = 3;
  int min_calls = 10;        // per repetition, and ...
  double min_seconds = 1.0;  // ... per repetition: both must be reached
  int audit_calls = 3;       // caching audit: at least this many fresh-input calls per repetition (0: off)
};

struct ScenarioSpec {
  std::string kind;  // prefill | decode
  std::vector<std::int64_t> batch{1};
  std::vector<std::int64_t> seq{128};        // prefill
  std::vector<std::int64_t> prompt{32};      // decode
  std::vector<std::int64_t> new_tokens{32};  // decode
  MeasureSettings measure;                   // the run's settings with this scenario's overrides
  std::string key_path;                      // "scenarios[0]", for errors found after the model is loaded
};

struct PerplexitySpec {
  bool enabled = false;
  std::string dataset;  // ${shared} expanded
  int ctx = 1024;
  int stride = 512;
  std::int64_t max_tokens = 0;  // 0: the whole dataset
};

struct AgreementSpec {
  bool enabled = true;
  std::string reference;           // "" = native/cpu/fp32 when present, else the first fp32 cell
  std::int64_t max_tokens = 2048;  // positions compared (from the start of the perplexity dataset)
  int ctx = 0;                     // window length; 0 = the perplexity ctx
};

// How INT8 (W8A8) backends get their activation scales: the runner calls ensure_calibration() (quant/) once per
// run when an int8 backend's options name no calibration_cache, and passes the cache to it.
struct CalibrationSpec {
  std::string dataset;  // ${shared} expanded; default: the WikiText-2 validation split
  int samples = 64;
  int batch = 4;
  int seq = 256;
  // mse: the method that kept gpt2-tiny-wt2 closest to FP32 (docs/int8.md); entropy clips GELU outputs hard.
  std::string method = "mse";  // minmax | percentile | entropy | mse
  double percentile = 99.99;
  std::string out_dir = "artifacts/calibration";  // caches are reused across runs when their provenance matches
  bool allow_eval_text = false;
};

struct RunConfig {
  std::string file;  // the config file (for errors and the manifest)
  std::string name;
  ModelSpec model;
  std::vector<BackendEntry> backends;
  std::vector<ScenarioSpec> scenarios;
  MeasureSettings measure;
  double cooldown_seconds = 0.0;
  int threads = 0;  // 0: the libraries' default
  std::uint64_t seed = 1234;
  double gpu_sample_seconds = 0.1;
  bool probe_hardware = true;  // measure the CPU sgemm peak and memcpy bandwidth for the roofline gate
  PerplexitySpec perplexity;
  AgreementSpec agreement;
  CalibrationSpec calibration;
  std::string output;  // "" = runs/<run_id>; "${run_id}" is replaced

  nlohmann::json to_json() const;  // the resolved config, every default filled in
};

// One measured unit: a backend × precision × scenario parameter combination.
struct Cell {
  int index = 0;  // position in the run's deterministic order
  BackendSpec backend;
  std::string kind;  // prefill | decode
  int batch = 1;
  int seq = 0;         // prefill
  int prompt = 0;      // decode
  int new_tokens = 0;  // decode
  MeasureSettings measure;
  std::string id() const;  // "native/cpu/fp32/prefill/b1_s128", "native/cpu/fp32/decode/b1_p32_n32"
  nlohmann::json scenario_json() const;
  int tokens_per_call() const;  // prefill: batch*seq; decode: batch*new_tokens
};

// Applies "key.sub=value" (value parsed as YAML; numeric path parts index lists) to a parsed document.
void apply_override(YAML::Node& root, const std::string& assignment, const std::string& file);

RunConfig parse_run_config(const std::string& yaml_text, const std::string& file,
                           const std::vector<std::string>& overrides = {});
RunConfig load_run_config(const std::string& path, const std::vector<std::string>& overrides = {});

// Checks what needs the model: sequence lengths against n_positions. Throws Error naming the config key.
void check_against_model(const RunConfig& config, const Gpt2Config& model_config);

// Every cell, in run order: backends (config order) × precisions × scenarios × batch × seq/prompt × new_tokens.
std::vector<Cell> expand_cells(const RunConfig& config);

}  // namespace gptbench::bench
