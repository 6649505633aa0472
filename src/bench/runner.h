#pragma once
// `gptbench run`: load the model, prove it is the configured one, then measure every cell of the config in a
// deterministic order and write the run folder of docs/run-format.md. A failing cell is recorded with its reason
// and the run goes on; a backend this build does not have gives "skipped" cells.
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "bench/run_config.h"
#include "model/checkpoint.h"

namespace gptbench::bench {

// Injection points: the defaults are the real loader, registry and tokenizer; tests substitute doubles.
using ModelLoader = std::function<Gpt2Model(const ModelSpec& spec, bool need_tokenizer)>;
using BackendFactory = std::function<std::unique_ptr<Backend>(const BackendSpec& spec, const Gpt2Model& model)>;
// Why a backend cannot run in this build ("" when it can): its cells are recorded as skipped.
using AvailabilityCheck = std::function<std::string(const BackendSpec& spec)>;

struct DatasetTokens {
  std::string path;
  std::string sha256;  // of the file's bytes
  std::vector<std::int32_t> ids;
};
using DatasetLoader = std::function<DatasetTokens(const Gpt2Model& model, const std::string& path)>;

// Calibration of INT8 backends: the cache file to pass as the backend option "calibration_cache", and what the
// manifest records about it (dataset, dataset_sha256, split, method, ...: the data-hygiene gate's input).
struct CalibrationOutcome {
  std::string cache_path;
  nlohmann::json record;
};
using Calibrator = std::function<CalibrationOutcome(const Gpt2Model& model, const CalibrationSpec& spec, int threads,
                                                    const std::function<void(const std::string&)>& log)>;

struct RunOptions {
  std::string out_dir;                 // "" = the config's output, else runs/<run_id>
  bool resume = false;                 // skip cells already complete in out_dir
  bool progress = false;               // cell i/n, elapsed, ETA on stderr (the CLI sets it when stderr is a terminal)
  ModelLoader load_model;              // empty: gptbench::load_model
  BackendFactory create_backend;       // empty: gptbench::create_backend
  AvailabilityCheck not_built_reason;  // empty: available_backends() and the GPTBENCH_WITH_* definitions
  DatasetLoader load_dataset;          // empty: read + GPT-2 tokenizer of the model
  Calibrator calibrate;                // empty: ensure_calibration() with the native FP32 engine
  std::function<void(const std::string&)> log;  // one-line notes (warnings, stages); empty: stderr
};

struct RunOutcome {
  std::string run_dir;
  std::string run_id;
  int cells_total = 0;
  int cells_ok = 0;
  int cells_failed = 0;
  int cells_skipped = 0;
  int cells_resumed = 0;  // complete in the folder before this invocation
  int perplexity_failed = 0;
  double seconds = 0;
  // 0 when nothing failed, 2 when a cell or a perplexity evaluation failed.
  int exit_code() const { return cells_failed + perplexity_failed > 0 ? 2 : 0; }
  nlohmann::json to_json() const;
};

// Throws Error before anything is measured when the model is not the configured one or the config does not fit it.
RunOutcome run_experiment(const RunConfig& config, const RunOptions& options = {});

// "20261126T071500Z-3f2a"
std::string make_run_id();

// The default loaders, exposed for the CLI and tests.
std::string default_not_built_reason(const BackendSpec& spec);
DatasetTokens default_dataset_loader(const Gpt2Model& model, const std::string& path);
CalibrationOutcome default_calibrator(const Gpt2Model& model, const CalibrationSpec& spec, int threads,
                                      const std::function<void(const std::string&)>& log);

// The model part of the provenance (docs/run-format.md).
nlohmann::json model_provenance(const Gpt2Model& model, const ModelSpec& expected);

}  // namespace gptbench::bench
