#pragma once
// The calibration procedure, independent of any engine: choose calibration sequences from a text, run a forward
// pass (supplied by the caller, e.g. the native FP32 engine with its ActivationObserver) over them, and write or
// reuse the cache files. `gptbench calibrate` and the benchmark runner both call ensure_calibration().
#include <cstdint>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "quant/calibration_cache.h"

namespace gptbench {

struct CalibrationRequest {
  std::string model_name;
  std::string model_sha256;
  std::string dataset_path;  // calibration text (default: shared wiki.valid.tokens)
  int samples = 64;          // N sequences …
  int batch = 4;             // … B per forward pass …
  int seq = 256;             // … of S tokens
  std::string method = "mse";  // the closest to FP32 on gpt2-tiny-wt2 (docs/int8.md)
  double percentile = 99.99;  // percentile method only
  std::string out_dir = "calibration";
  bool allow_eval_text = false;  // permit calibrating on the evaluation (test) text
  bool force = false;            // rebuild even when a matching cache exists
};

struct CalibrationArtifacts {
  std::string cache_path;            // <out>/<method folder>/<model>_<dataset>_<split>_<N>x<B>x<S>.calib
  std::string tensorrt_table_path;   // <cache stem>.trt.calibration_table
  std::string metadata_path;         // <cache stem>.trt.calibration_table.json
  CalibrationCache cache;
  bool reused = false;
  bool evaluation_text = false;      // the text is the evaluation split (allowed only with allow_eval_text)
};

using TokenizeText = std::function<std::vector<std::int32_t>(const std::string& text, const std::string& source)>;
// Runs the FP32 model over ids ([batch, seq], row-major) calling `observer` with every quantizable input.
using ObservedForward = std::function<void(const std::vector<std::int32_t>& ids, int batch, int seq,
                                           const ActivationObserver& observer)>;

// "entropy", "minmax", "mse", "percentile-99.99": the folder under --out that holds one method's caches.
std::string calibration_method_folder(const CalibrationProvenance& p);

// True for the WikiText-2 test split (by name, e.g. wiki.test.raw / wiki.test.tokens, or by content: the same
// bytes as shared data/wikitext-2-raw/wiki.test.raw).
bool is_evaluation_text(const std::string& path, const std::string& sha256);

// Start offsets of `samples` sequences of `seq` tokens spread evenly over n_tokens (deterministic); Error when
// the text is shorter than one sequence.
std::vector<std::int64_t> calibration_offsets(std::int64_t n_tokens, int samples, int seq, const std::string& source);

// Reuses <out>/<name>.calib when its provenance matches the request (printing that it did), else runs the
// calibration and writes the cache, the TensorRT table and its metadata (printing why it rebuilt).
CalibrationArtifacts ensure_calibration(const CalibrationRequest& request, const TokenizeText& tokenize,
                                        const ObservedForward& forward, std::ostream& log);

}  // namespace gptbench
