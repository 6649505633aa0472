// gptbench calibrate: INT8 activation ranges of a model on calibration text, written as a reusable cache
// (<model>_<dataset>_<split>_<N>x<B>x<S>.calib) plus a TensorRT-format calibration table and its metadata.
// The FP32 native engine runs the text; its ActivationObserver shows every quantizable matrix-product input
// to the collector (src/quant/calibration.h). See docs/int8.md.
#include <cstdio>
#include <functional>
#include <iostream>
#include <memory>

#include <fmt/format.h>

#include "backends/native/native_backend.h"
#include "cli/commands.h"
#include "eval/calibrate_native.h"
#include "cli/model_json.h"
#include "common/error.h"
#include "common/paths.h"
#include "model/checkpoint.h"
#include "quant/calibration_driver.h"
#include "tokenizer/gpt2_tokenizer.h"

namespace gptbench::cli {

void add_calibrate_command(CLI::App& app) {
  struct Options {
    std::string model;
    CalibrationRequest request;
    int threads = 0;
  };
  auto opts = std::make_shared<Options>();
  auto& req = opts->request;
  auto* cmd = app.add_subcommand("calibrate", "INT8 activation calibration on calibration text (FP32 native engine)");
  cmd->add_option("--model", opts->model, "Model directory or hub name (default: gpt2-tiny-wt2 in ../shared)");
  cmd->add_option("--dataset", req.dataset_path,
                  "Calibration text (default: WikiText-2 validation split, ../shared/data/wikitext-2/wiki.valid.tokens)");
  cmd->add_option("--samples", req.samples, "N: sequences of calibration text")->capture_default_str();
  cmd->add_option("--batch", req.batch, "B: sequences per forward pass")->capture_default_str();
  cmd->add_option("--seq", req.seq, "S: tokens per sequence")->capture_default_str();
  cmd->add_option("--method", req.method, "minmax | percentile | entropy | mse")->capture_default_str();
  cmd->add_option("--percentile", req.percentile, "Percentile of |x| for --method percentile")->capture_default_str();
  cmd->add_option("--out", req.out_dir, "Folder for the cache files")->capture_default_str();
  cmd->add_option("--threads", opts->threads, "BLAS threads of the FP32 pass (0: default)")->capture_default_str();
  cmd->add_flag("--allow-eval-text", req.allow_eval_text,
                "Allow calibrating on the evaluation (test) text; runs using it fail the data-hygiene gate");
  cmd->add_flag("--force", req.force, "Rebuild even when a matching cache exists");
  cmd->callback([opts] {
    CalibrationRequest r = opts->request;
    if (r.dataset_path.empty()) r.dataset_path = shared_path("data/wikitext-2/wiki.valid.tokens");
    parse_calibration_method(r.method);  // a bad --method fails before the model loads
    const Gpt2Model model = load_model(opts->model.empty() ? default_model_dir_or_name() : opts->model);
    if (r.seq > model.config.n_positions)
      throw Error(fmt::format("--seq {} exceeds the model's n_positions ({}, {}/config.json)", r.seq,
                              model.config.n_positions, model.identity.directory));
    if (model.identity.untrained)
      std::fprintf(stderr, "calibrate: warning: %s is untrained (random weights); its ranges mean nothing\n",
                   model.identity.name.c_str());
    const CalibrationArtifacts a = calibrate_with_native_engine(model, r, opts->threads, std::cerr);
    if (a.evaluation_text)
      std::fprintf(stderr, "calibrate: warning: %s is the evaluation text (allowed by --allow-eval-text)\n",
                   r.dataset_path.c_str());
    std::printf("%s", fmt::format("model {} ({} parameters), method {}{}, {} tensors\n", model.identity.name,
                                  model.identity.parameters, a.cache.provenance.method,
                                  a.cache.provenance.method == "percentile"
                                      ? fmt::format(" ({})", a.cache.provenance.percentile)
                                      : std::string(),
                                  a.cache.table.amax.size()).c_str());
    double lo = 1e300, hi = 0;
    std::string lo_name, hi_name;
    for (const auto& [name, amax] : a.cache.table.amax) {
      if (amax < lo) lo = amax, lo_name = name;
      if (amax > hi) hi = amax, hi_name = name;
    }
    std::printf("%s", fmt::format("amax from {:.4g} ({}) to {:.4g} ({})\n", lo, lo_name, hi, hi_name).c_str());
    std::printf("cache: %s%s\n", a.cache_path.c_str(), a.reused ? " (reused)" : "");
    std::printf("tensorrt table: %s\n", a.tensorrt_table_path.c_str());
    std::printf("metadata: %s\n", a.metadata_path.c_str());
  });
}

}  // namespace gptbench::cli
