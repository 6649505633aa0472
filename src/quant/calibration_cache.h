#pragma once
// Calibration caches: the activation ranges of one model × calibration text × shape, with the provenance that
// decides whether a cache may be reused. Format (text, one item per line, '#' starts a comment):
//
//   gptbench-calibration 1
//   model: gpt2-tiny-wt2
//   model_sha256: <64 hex>            sha256 of the weight file(s) (ModelIdentity::weights_sha256)
//   dataset: wikitext-2
//   split: valid
//   dataset_path: /…/wiki.valid.tokens   (informational; not compared)
//   dataset_sha256: <64 hex>          sha256 of the calibration text file's bytes
//   samples: 64                       N sequences…
//   batch: 4                          …run B at a time…
//   seq: 256                          …of S tokens each
//   method: entropy
//   percentile: 0                     (the percentile method's percentile, else 0)
//   quantization: int8 symmetric per-tensor activations, scale = amax / 127
//   tensors: 49
//   tensor h.0.attn.c_attn amax=2.8143e+00 scale=2.2160e-02
//   …
//
// A cache is reused only when model_sha256, dataset_sha256, samples, batch, seq, method and percentile all
// match; otherwise it is rebuilt and the reason is printed.
#include <string>

#include "quant/calibration.h"

namespace gptbench {

struct CalibrationProvenance {
  std::string model;          // model name (ModelIdentity::name)
  std::string model_sha256;
  std::string dataset;        // e.g. "wikitext-2" (the text file's folder)
  std::string split;          // e.g. "valid"
  std::string dataset_path;
  std::string dataset_sha256;
  int samples = 0;
  int batch = 0;
  int seq = 0;
  std::string method;
  double percentile = 0.0;
};

struct CalibrationCache {
  CalibrationProvenance provenance;
  CalibrationTable table;
};

// "<model>_<dataset>_<split>_<N>x<B>x<S>.calib", characters outside [A-Za-z0-9.-] replaced by '-'.
std::string calibration_cache_filename(const CalibrationProvenance& p);

// Dataset and split names from a text file path: ".../wikitext-2/wiki.valid.tokens" -> {"wikitext-2", "valid"}
// (split: the first of train/valid/validation/test among the name's dot-separated parts, else the file stem).
void dataset_names_from_path(const std::string& path, std::string& dataset, std::string& split);

std::string format_calibration_cache(const CalibrationCache& cache);
CalibrationCache parse_calibration_cache(const std::string& text, const std::string& source);  // Error: "<source>: …"
void write_calibration_cache(const std::string& path, const CalibrationCache& cache);
CalibrationCache read_calibration_cache(const std::string& path);
// The cache an INT8 engine runs with: read_calibration_cache, then Error naming the file unless it was made for
// the weights whose sha256 is `model_weights_sha256` (ModelIdentity::weights_sha256).
CalibrationCache read_calibration_cache_for_model(const std::string& path, const std::string& model_weights_sha256);

// "" when a cache of provenance `cached` may stand for `wanted`, else the first difference, e.g.
// "model_sha256 differs (cache 1a2b3c4d…, now 5e6f7a8b…)".
std::string calibration_mismatch(const CalibrationProvenance& cached, const CalibrationProvenance& wanted);

// TensorRT's calibration-table text: a header line (e.g. "TRT-8601-EntropyCalibration2"), then one
// "<tensor>: <hex>" line per tensor, hex = the float32 scale's IEEE-754 bits as 8 lowercase hex digits, most
// significant first (0.0078125 -> 3c000000).
std::string tensorrt_scale_hex(float scale);
float tensorrt_scale_from_hex(const std::string& hex, const std::string& source);
std::string tensorrt_header_for_method(const std::string& method);  // entropy: EntropyCalibration2, others: MinMax
std::string format_tensorrt_calibration_table(const CalibrationTable& table, const std::string& header);
// name -> scale; Error on a malformed line.
std::map<std::string, float> parse_tensorrt_calibration_table(const std::string& text, const std::string& source,
                                                              std::string* header = nullptr);
// The provenance as JSON, written beside the TensorRT table (which has no room for it).
std::string calibration_metadata_json(const CalibrationCache& cache, const std::string& tensorrt_header);

}  // namespace gptbench
