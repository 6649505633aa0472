#include "quant/calibration_driver.h"

#include <chrono>
#include <filesystem>

#include <fmt/format.h>

#include "common/error.h"
#include "common/hash.h"
#include "common/paths.h"

namespace gptbench {

std::string calibration_method_folder(const CalibrationProvenance& p) {
  return p.method == "percentile" ? fmt::format("percentile-{}", p.percentile) : p.method;
}

bool is_evaluation_text(const std::string& path, const std::string& sha256) {
  namespace fs = std::filesystem;
  const std::string name = fs::path(path).filename().string();
  if (name.find(".test.") != std::string::npos || name.rfind("test.", 0) == 0 || name == "test") return true;
  const std::string test_raw = shared_path("data/wikitext-2-raw/wiki.test.raw");
  if (file_exists(test_raw) && fs::file_size(test_raw) == fs::file_size(path)) return sha256_file(test_raw) == sha256;
  return false;
}

std::vector<std::int64_t> calibration_offsets(std::int64_t n_tokens, int samples, int seq, const std::string& source) {
  if (samples < 1 || seq < 2) throw Error("calibration: samples must be >= 1 and seq >= 2");
  if (n_tokens < seq)
    throw Error(source + ": " + std::to_string(n_tokens) + " tokens, fewer than one sequence of " +
                std::to_string(seq));
  std::vector<std::int64_t> offsets;
  const std::int64_t span = n_tokens - seq;
  for (int i = 0; i < samples; ++i) offsets.push_back(samples == 1 ? 0 : span * i / (samples - 1));
  return offsets;
}

CalibrationArtifacts ensure_calibration(const CalibrationRequest& req, const TokenizeText& tokenize,
                                        const ObservedForward& forward, std::ostream& log) {
  namespace fs = std::filesystem;
  if (req.samples < 1 || req.batch < 1 || req.seq < 2)
    throw Error(fmt::format("calibration: samples ({}), batch ({}) and seq ({}) must be positive", req.samples,
                            req.batch, req.seq));
  if (!file_exists(req.dataset_path)) throw Error(req.dataset_path + ": calibration text not found");
  const CalibrationMethod method = parse_calibration_method(req.method);

  CalibrationArtifacts out;
  CalibrationProvenance& want = out.cache.provenance;
  want.model = req.model_name;
  want.model_sha256 = req.model_sha256;
  dataset_names_from_path(req.dataset_path, want.dataset, want.split);
  want.dataset_path = fs::absolute(req.dataset_path).string();
  want.dataset_sha256 = sha256_file(req.dataset_path);
  want.samples = req.samples;
  want.batch = req.batch;
  want.seq = req.seq;
  want.method = req.method;
  want.percentile = method == CalibrationMethod::kPercentile ? req.percentile : 0.0;

  out.evaluation_text = is_evaluation_text(req.dataset_path, want.dataset_sha256);
  if (out.evaluation_text && !req.allow_eval_text)
    throw Error(req.dataset_path +
                ": this is the evaluation (test) text; calibrating on it would leak the test set into the INT8 "
                "scales (use the validation split, or pass --allow-eval-text to do it anyway)");

  // One folder per method, so caches of several methods for the same model × text × shape live side by side
  // under the study's file name.
  const fs::path dir = fs::path(req.out_dir) / calibration_method_folder(want);
  fs::create_directories(dir);
  out.cache_path = (dir / calibration_cache_filename(want)).string();
  const std::string base = out.cache_path.substr(0, out.cache_path.size() - std::string(".calib").size());
  out.tensorrt_table_path = base + ".trt.calibration_table";
  out.metadata_path = out.tensorrt_table_path + ".json";

  if (file_exists(out.cache_path) && !req.force) {
    std::string reason;
    try {
      CalibrationCache cached = read_calibration_cache(out.cache_path);
      reason = calibration_mismatch(cached.provenance, want);
      if (reason.empty()) {
        log << "calibration: reusing " << out.cache_path << " (" << cached.table.amax.size() << " tensors, "
            << cached.provenance.method << ")\n";
        out.cache.table = cached.table;
        out.reused = true;
      }
    } catch (const Error& e) {
      reason = std::string("unreadable: ") + e.what();
    }
    if (!out.reused) log << "calibration: " << out.cache_path << " does not match (" << reason << "); rebuilding\n";
  }

  if (!out.reused) {
    const auto t0 = std::chrono::steady_clock::now();
    const std::vector<std::int32_t> ids = tokenize(read_text_file(req.dataset_path), req.dataset_path);
    const auto offsets = calibration_offsets(static_cast<std::int64_t>(ids.size()), req.samples, req.seq,
                                             req.dataset_path);
    ActivationCalibrator calibrator(method, req.percentile);
    const ActivationObserver observer = calibrator.observer();
    for (std::size_t first = 0; first < offsets.size(); first += static_cast<std::size_t>(req.batch)) {
      const std::size_t rows = std::min<std::size_t>(req.batch, offsets.size() - first);
      std::vector<std::int32_t> batch_ids;
      batch_ids.reserve(rows * req.seq);
      for (std::size_t r = 0; r < rows; ++r)
        batch_ids.insert(batch_ids.end(), ids.begin() + offsets[first + r],
                         ids.begin() + offsets[first + r] + req.seq);
      forward(batch_ids, static_cast<int>(rows), req.seq, observer);
    }
    out.cache.table = calibrator.table();
    if (out.cache.table.amax.empty())
      throw Error("calibration: the forward pass reported no quantizable inputs (observer not wired?)");
    write_calibration_cache(out.cache_path, out.cache);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    log << fmt::format("calibration: {} over {} sequences x {} tokens of {} ({} tokens in the text) in {:.1f} s -> {}\n",
                       req.method, req.samples, req.seq, req.dataset_path, ids.size(), secs, out.cache_path);
  }
  out.cache.table.method = want.method;
  out.cache.table.percentile = want.percentile;
  // The TensorRT table is derived: rewrite it every time so it always agrees with the cache beside it.
  const std::string header = tensorrt_header_for_method(want.method);
  write_file_atomic(out.tensorrt_table_path, format_tensorrt_calibration_table(out.cache.table, header));
  write_file_atomic(out.metadata_path, calibration_metadata_json(out.cache, header));
  return out;
}

}  // namespace gptbench
