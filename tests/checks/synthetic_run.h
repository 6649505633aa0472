#pragma once
// Synthetic run folders written file by file as docs/run-format.md describes them: a good run that passes every
// gate, which tests then spoil one fault at a time. Shared by tests/checks and tests/report.
#include <stdlib.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/stats.h"
#include "common/paths.h"

namespace gptbench::synth {

// A folder under $TMPDIR removed when the object goes.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "gptbench-rep-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

struct SynthCell {
  std::string backend = "native", device = "cpu", precision = "fp32", scenario = "prefill";
  int batch = 1, seq = 128, prompt = 0, new_tokens = 0;
  double latency_ms = 10.0;  // per call (prefill) or per step (decode)
  double cv = 0.01;          // spread of the repetitions around latency_ms
  int reps = 5;
  double repeated_input_factor = 1.0;  // repeated_input_ms = fresh_input_ms * this
  double first_repeated_input_factor = 0.0;  // > 0: the factor of repetition 0 only (timing noise)
  // The timed calls' speed against the fresh input (they repeat one input: a cache serves them as it serves the
  // audit's repeated calls; an honest engine runs them as fast as fresh input).
  double timed_input_factor = 1.0;
  double first_timed_input_factor = 0.0;  // > 0: the timed calls' factor in repetition 0 only
  // > 0: the audit's calls are recorded (2 of each kind), and one fresh call of every repetition was this much
  // slower (contention on a busy host); fresh_input_ms is then the median of the two.
  double slow_fresh_call_factor = 0.0;
  // When set: each repetition's latency (the fresh input's audit median too) and the repeated input's audit median,
  // as a real run recorded them (reps = their count; the factors above then do not apply to the audit).
  std::vector<double> fresh_ms_by_repetition, repeated_ms_by_repetition;
  bool vary_top1 = false;              // give each repetition a different top-1 hash
  bool failed = false;

  std::string cell_id() const {
    std::string shape = scenario == "decode" ? fmt::format("b{}_p{}_n{}", batch, prompt, new_tokens)
                                             : fmt::format("b{}_s{}", batch, seq);
    return fmt::format("{}/{}/{}/{}/{}", backend, device, precision, scenario, shape);
  }
};

inline double tiny_reference_ppl() { return 581.1065448201081; }

struct SyntheticRun {
  nlohmann::json manifest;
  std::vector<SynthCell> cells;
  nlohmann::json perplexity;
  nlohmann::json artifacts;  // null: no artifacts.json
  nlohmann::json agreement;  // null: no agreement.json

  // The good run: gpt2-tiny-wt2 on a 2-thread CPU, FP32 and INT8 native cells, ONNX Runtime FP32, perplexity
  // matching the PyTorch reference, calibration on the validation split, every latency well above its floor.
  static SyntheticRun good() {
    SyntheticRun r;
    nlohmann::json model = {{"name", "gpt2-tiny-wt2"}, {"source", "/work/shared/models/gpt2-tiny-wt2"},
                            {"parameters", 7357312}, {"config_parameters", 7357312}, {"storage_dtype", "F16"},
                            {"weights_sha256", "5d1c0ffee"}, {"untrained", false}, {"expected_name", "gpt2-tiny-wt2"},
                            {"expected_parameters", 7357312}, {"n_layer", 4}, {"n_head", 4}, {"n_embd", 128},
                            {"n_positions", 1024}, {"vocab_size", 50257}};
    nlohmann::json prov = {{"tool_version", "0.1.0"}, {"git_revision", "abc1234"}, {"git_dirty", false},
                           {"build_type", "Release"}, {"build_optimised", true}, {"host", "testhost"},
                           {"os", "Linux 6.1"}, {"cpu_model", "AMD EPYC test"}, {"cpu_threads", 2},
                           {"gpu", nlohmann::json::array()}, {"model", model}};
    r.manifest = {{"schema", "gptbench.manifest/1"}, {"run_id", "20261126T071500Z-good"}, {"status", "complete"},
                  {"cells_total", 6}, {"cells_failed", 0}, {"config_path", "configs/smoke.yaml"},
                  {"config_sha256", "c0ffee"}, {"config", {{"model", {{"path", "${shared}/models/gpt2-tiny-wt2"}}}}},
                  {"provenance", prov},
                  {"stages", {{{"name", "load_model"}, {"seconds", 0.4}}, {{"name", "bench"}, {"seconds", 50.0}}}},
                  {"warnings", nlohmann::json::array()},
                  {"hardware", {{"cpu", {{"peak_gflops_fp32", 255.0}, {"peak_source", "measured: sgemm"},
                                         {"bandwidth_gb_s", 20.1}, {"bandwidth_source", "measured: memcpy"}}}}},
                  {"harness_overhead", {{"empty_call_ms_median", 0.00004}, {"empty_call_ms_p99", 0.0001}, {"clock_resolution_ns", 20}}},
                  {"calibration", {{"dataset", shared_path("data/wikitext-2/wiki.valid.tokens")},
                                   {"dataset_sha256", "validsha"}, {"split", "validation"}}}};
    auto prefill = [](std::string backend, std::string precision, int batch, double ms) {
      SynthCell c;
      c.backend = backend;
      c.precision = precision;
      c.batch = batch;
      c.latency_ms = ms;
      return c;
    };
    r.cells = {prefill("native", "fp32", 1, 8.0), prefill("native", "fp32", 8, 45.0), prefill("native", "int8", 1, 4.5),
               prefill("native", "int8", 8, 20.0), prefill("onnxruntime", "fp32", 1, 9.5)};
    SynthCell decode;
    decode.scenario = "decode";
    decode.seq = 0;
    decode.prompt = 128;
    decode.new_tokens = 32;
    decode.latency_ms = 1.5;
    r.cells.push_back(decode);

    double ref = tiny_reference_ppl();
    auto result = [&](std::string backend, std::string precision, double ppl, bool identical) {
      return nlohmann::json{{"backend", backend}, {"device", "cpu"}, {"precision", precision}, {"status", "ok"},
                            {"ppl", ppl}, {"ppl_stderr", 3.1}, {"scored_tokens", 287643},
                            {"nll_sum", std::log(ppl) * 287643}, {"seconds", 40.0},
                            {"delta_pct", 100.0 * (ppl - ref) / ref}, {"identical_to_reference", identical},
                            {"timed_check", {{"top1_match", true}}}};
    };
    r.perplexity = {{"schema", "gptbench.perplexity/1"}, {"dataset", shared_path("data/wikitext-2-raw/wiki.test.raw")},
                    {"dataset_sha256", "testsha"}, {"dataset_tokens", 287644}, {"ctx", 1024}, {"stride", 512},
                    {"max_tokens", 0}, {"reference", "native/cpu/fp32"},
                    {"results", {result("native", "fp32", ref, true), result("native", "int8", ref * 1.012, false),
                                 result("onnxruntime", "fp32", ref * 1.0002, false)}}};
    double params = 7357312, blocks = 786432;
    r.artifacts = {{"schema", "gptbench.artifacts/1"},
                   {"artifacts", {{{"backend", "onnxruntime"}, {"precision", "fp32"}, {"kind", "onnx"},
                                   {"path", "artifacts/onnx/model.onnx"}, {"bytes", params * 4 * 1.01}, {"parameters", params}},
                                  {{"backend", "onnxruntime"}, {"precision", "int8"}, {"kind", "onnx"},
                                   {"path", "artifacts/onnx/model_int8.onnx"},
                                   {"bytes", blocks + (params - blocks) * 4}, {"parameters", params}}}}};
    return r;
  }

  SynthCell& cell(const std::string& backend, const std::string& precision, int batch, const std::string& scenario = "prefill") {
    for (SynthCell& c : cells)
      if (c.backend == backend && c.precision == precision && c.batch == batch && c.scenario == scenario) return c;
    throw std::runtime_error("no such synthetic cell");
  }
  nlohmann::json& ppl_result(const std::string& backend, const std::string& precision) {
    for (nlohmann::json& r : perplexity["results"])
      if (r["backend"] == backend && r["precision"] == precision) return r;
    throw std::runtime_error("no such synthetic perplexity result");
  }

  void write(const std::string& dir) const {
    namespace fs = std::filesystem;
    fs::create_directories(dir + "/raw");
    fs::create_directories(dir + "/processed");
    write_file_atomic(dir + "/manifest.json", manifest.dump(2));
    std::string jsonl, csv =
        "cell_id,backend,device,precision,scenario,batch,seq,prompt,new_tokens,status,n,mean_ms,median_ms,p5_ms,p95_ms,"
        "stddev_ms,cv,ci95_low_ms,ci95_high_ms,tokens_per_s,ttft_ms,error\n";
    for (const SynthCell& c : cells) {
      nlohmann::json base = {{"schema", "gptbench.bench/1"}, {"run_id", manifest["run_id"]}, {"cell_id", c.cell_id()},
                             {"backend", c.backend}, {"device", c.device}, {"precision", c.precision}, {"threads", 2},
                             {"provenance", manifest["provenance"]}};
      base["scenario"] = c.scenario == "decode"
                             ? nlohmann::json{{"kind", "decode"}, {"batch", c.batch}, {"prompt", c.prompt}, {"new_tokens", c.new_tokens}}
                             : nlohmann::json{{"kind", "prefill"}, {"batch", c.batch}, {"seq", c.seq}};
      if (c.failed) {
        nlohmann::json rec = base;
        rec["status"] = "failed";
        rec["error"] = "backend unavailable";
        jsonl += rec.dump() + "\n";
        csv += fmt::format("{},{},{},{},{},{},{},{},{},failed,0,,,,,,,,,,,backend unavailable\n", c.cell_id(), c.backend,
                           c.device, c.precision, c.scenario, c.batch, c.seq, c.prompt, c.new_tokens);
        continue;
      }
      static const double z[] = {-1.2, -0.5, 0.0, 0.5, 1.2, -0.8, 0.8, -0.3, 0.3, 0.0};
      std::vector<double> reps;
      double tokens_per_call = c.scenario == "decode" ? c.batch : static_cast<double>(c.batch) * c.seq;
      const bool by_repetition = !c.fresh_ms_by_repetition.empty();
      const int n_reps = by_repetition ? static_cast<int>(c.fresh_ms_by_repetition.size()) : c.reps;
      for (int i = 0; i < n_reps; ++i) {
        double ms = by_repetition ? c.fresh_ms_by_repetition[i] : c.latency_ms * (1.0 + c.cv * z[i % 10]);
        reps.push_back(ms);
        nlohmann::json rec = base;
        rec["repetition"] = i;
        rec["status"] = "ok";
        rec["calls"] = 20;
        rec["seconds"] = ms * 20 / 1000.0;
        rec["latency_ms"] = ms;
        rec["tokens_per_call"] = tokens_per_call;
        rec["tokens_per_s"] = tokens_per_call / ms * 1000.0;
        const double repeated_ms =
            by_repetition ? c.repeated_ms_by_repetition.at(i)
                          : ms * (i == 0 && c.first_repeated_input_factor > 0 ? c.first_repeated_input_factor
                                                                              : c.repeated_input_factor);
        rec["fresh_input_ms"] = ms;
        rec["repeated_input_ms"] = repeated_ms;
        if (c.slow_fresh_call_factor > 0) {
          rec["fresh_input_call_ms"] = {ms * c.slow_fresh_call_factor, ms};
          rec["fresh_input_ms"] = ms * (c.slow_fresh_call_factor + 1.0) / 2.0;
          rec["repeated_input_call_ms"] = {repeated_ms, repeated_ms};
        }
        const double timed_factor =
            i == 0 && c.first_timed_input_factor > 0 ? c.first_timed_input_factor : c.timed_input_factor;
        rec["host_peak_rss_bytes"] = 123456789;
        rec["device_peak_bytes"] = -1;
        if (c.scenario == "decode") {
          rec["ttft_ms"] = 9.0;
          rec["ttft_ms_all"] = std::vector<double>(3, ms * timed_factor);  // the audit's measure: same kind
          rec["step_ms"] = std::vector<double>(c.new_tokens, ms);
          rec["generated_hash"] = c.vary_top1 ? fmt::format("gen{}", i) : "gen";
        } else {
          rec["call_ms"] = std::vector<double>(20, ms * timed_factor);
          rec["checksum"] = 1234.5;
          rec["top1_hash"] = c.vary_top1 ? fmt::format("top{}", i) : "top";
        }
        jsonl += rec.dump() + "\n";
      }
      double mean = stats::mean(reps), sd = stats::stddev(reps);
      double half = stats::student_t_quantile(0.975, reps.size() - 1.0) * sd / std::sqrt(static_cast<double>(reps.size()));
      csv += fmt::format("{},{},{},{},{},{},{},{},{},ok,{},{},{},{},{},{},{},{},{},{},{},\n", c.cell_id(), c.backend,
                         c.device, c.precision, c.scenario, c.batch, c.seq, c.prompt, c.new_tokens, reps.size(), mean,
                         stats::median(reps), stats::percentile(reps, 5), stats::percentile(reps, 95), sd, sd / mean,
                         mean - half, mean + half, tokens_per_call / mean * 1000.0,
                         c.scenario == "decode" ? std::string("9.0") : std::string());
    }
    write_file_atomic(dir + "/raw/bench_20261126T071500Z.jsonl", jsonl);
    write_file_atomic(dir + "/processed/latency_summary.csv", csv);
    if (!perplexity.is_null()) write_file_atomic(dir + "/processed/perplexity_results.json", perplexity.dump(2));
    if (!artifacts.is_null()) write_file_atomic(dir + "/processed/artifacts.json", artifacts.dump(2));
    if (!agreement.is_null()) write_file_atomic(dir + "/processed/agreement.json", agreement.dump(2));
  }
};

}  // namespace gptbench::synth
