// Backend / DecodeSession adapters over the CUDA engine, and the batched perplexity path.
#include "backends/cuda/cuda_backend.h"

#include <algorithm>
#include <iterator>
#include <string_view>
#include <charconv>
#include <chrono>
#include <cmath>
#include <numeric>
#include <optional>

#include "backends/backend_options.h"
#include "backends/cuda/cuda_engine.h"
#include "common/error.h"
#include "model/checkpoint.h"
#include "quant/calibration_cache.h"
#include "quant/int8_linear.h"

namespace gptbench {

namespace {

using cuda_engine::CallOutput;

void fill_output(CallOutput& call, std::vector<float>& logits, bool want_logits, ForwardOutput& out) {
  out.top1 = std::move(call.top1);
  out.checksum = std::accumulate(call.row_sums.begin(), call.row_sums.end(), 0.0);
  if (want_logits) out.logits = std::move(logits);
  else out.logits.clear();
}

class CudaDecodeSession final : public DecodeSession {
 public:
  CudaDecodeSession(std::unique_ptr<cuda_engine::DecodeState> state, double* last_ms)
      : state_(std::move(state)), last_ms_(last_ms) {}

  void prefill(const TokenBatch& prompt, OutputMode mode, ForwardOutput& out) override {
    if (prompt.batch != state_->batch())
      throw Error("decode: prompt batch " + std::to_string(prompt.batch) + " differs from the session's " +
                  std::to_string(state_->batch()));
    if (static_cast<std::int64_t>(prompt.ids.size()) != static_cast<std::int64_t>(prompt.batch) * prompt.seq)
      throw Error("decode: prompt ids do not match batch x seq");
    CallOutput call;
    std::vector<float> logits;
    const bool want = mode == OutputMode::kLogits;
    state_->prefill(prompt.ids.data(), prompt.seq, want ? &logits : nullptr, call);
    *last_ms_ = call.gpu_ms;
    fill_output(call, logits, want, out);
  }

  void step(std::span<const std::int32_t> next_ids, OutputMode mode, ForwardOutput& out) override {
    if (static_cast<int>(next_ids.size()) != state_->batch())
      throw Error("decode: step got " + std::to_string(next_ids.size()) + " ids for a batch of " +
                  std::to_string(state_->batch()));
    CallOutput call;
    std::vector<float> logits;
    const bool want = mode == OutputMode::kLogits;
    state_->step(next_ids.data(), want ? &logits : nullptr, call);
    *last_ms_ = call.gpu_ms;
    fill_output(call, logits, want, out);
  }

  int position() const override { return state_->position(); }

 private:
  std::unique_ptr<cuda_engine::DecodeState> state_;
  double* last_ms_;
};

class CudaBackend final : public Backend {
 public:
  CudaBackend(const BackendSpec& spec, const Gpt2Model& model) : spec_(spec), n_positions_(model.config.n_positions) {
    const auto start = std::chrono::steady_clock::now();
    check_backend_options(spec);  // (also for callers outside the registry: gptbench_cuda_check's --opt)
    cuda_engine::EngineOptions options;
    if (!cuda_engine::parse_precision(spec.precision, options.precision))
      throw Error(spec.label() + ": unknown precision '" + spec.precision + "' (fp32, tf32, fp16, bf16, int8)");
    const bool sixteen_bit = options.precision != cuda_engine::Precision::kFp32 &&
                             options.precision != cuda_engine::Precision::kTf32;
    if (options.precision == cuda_engine::Precision::kInt8) {
      // W8A8 needs the activation scales of a calibration cache made for this very model.
      auto it = spec.options.find("calibration_cache");
      if (it == spec.options.end())
        throw Error(spec.label() + ": needs option calibration_cache (a .calib file from `gptbench calibrate`)");
      const CalibrationCache cache = read_calibration_cache_for_model(it->second, model.identity.weights_sha256());
      for (const auto& [name, amax] : cache.table.amax) options.int8_activation_scales[name] = cache.table.scale(name);
      calibration_cache_ = it->second;
      calibration_method_ = cache.table.method;
    }
    options.gelu_epilogue = option_flag(spec, "gelu_epilogue", sixteen_bit);
    options.use_graphs = option_flag(spec, "graphs", true);
    options.gemm_autotune = option_flag(spec, "gemm_autotune", true);
    if (auto it = spec.options.find("gemm_tune_l2"); it != spec.options.end()) {
      if (it->second != "cold" && it->second != "hot")
        throw Error(spec.label() + ": option gemm_tune_l2 must be cold or hot, not '" + it->second + "'");
      options.gemm_tune_cold = it->second == "cold";
    }
    options.profile = option_flag(spec, "profile", false);
    options.gemv_kernels = option_flag(spec, "gemv_kernels", true);
    options.pdl = option_flag(spec, "pdl", false);
    options.decode_persistent = option_flag(spec, "decode_persistent", options.decode_persistent);
    if (auto it = spec.options.find("decode_mma"); it != spec.options.end()) {
      const std::string& v = it->second;
      const std::optional<bool> flag = flag_value(v);
      if (v != "mproj" && !flag)
        throw Error(spec.label() + ": option decode_mma must be 0, 1 or mproj, got '" + v + "'");
      options.decode_mma = v == "mproj" ? cuda_engine::DecodeMma::kMproj
                           : *flag      ? cuda_engine::DecodeMma::kAll
                                        : cuda_engine::DecodeMma::kOff;
    }
    options.prefill_pdl = option_flag(spec, "prefill_pdl", options.prefill_pdl);
    options.residual_epilogue = option_flag(spec, "residual_epilogue", options.residual_epilogue);
    // fp16: on by default (what "FP16 inference" means in PyTorch and TensorRT; the logits' error against fp32 stays
    // near PyTorch's own). bf16: off (its 8-bit mantissa puts the logits' rel-norm error at 9.7e-3, at the 1e-2 the
    // issue allows, against 5.8e-3 with a float stream: H200, GPT-2 124M shape).
    options.residual_16bit =
        option_flag(spec, "residual_16bit", options.precision == cuda_engine::Precision::kFp16);
    options.layernorm_rows = option_int(spec, "layernorm_rows", options.layernorm_rows, 0, 4);
    if (options.layernorm_rows == 3)
      throw Error(spec.label() + ": option layernorm_rows must be 0, 1, 2 or 4, got '3'");
    options.fused_layernorm_rows =
        option_int(spec, "fused_layernorm_rows", options.fused_layernorm_rows, 0, 1 << 20);
    options.gemv_max_rows = option_int(spec, "gemv_max_rows", 0, 1, 8);
    options.gemv_lm_head_max_rows = option_int(spec, "gemv_lm_head_max_rows", 0, 1, 8);
    options.wgmma_max_rows = option_int(spec, "wgmma_max_rows", options.wgmma_max_rows, 0, 1 << 20);
    if (auto it = spec.options.find("wgmma_tile"); it != spec.options.end()) {
      static const char* kTiles[] = {"128x64", "64x64", "64x32", "128x32"};  // kernels::kWgmmaConfigs' order
      const auto at = std::find(std::begin(kTiles), std::end(kTiles), std::string_view(it->second));
      if (at == std::end(kTiles))
        throw Error(spec.label() + ": option wgmma_tile must be 128x64, 64x64, 64x32 or 128x32, not '" + it->second +
                    "'");
      options.wgmma_tile = static_cast<int>(at - std::begin(kTiles));
    }
    options.wgmma_pdl = option_flag(spec, "wgmma_pdl", options.wgmma_pdl);
    options.wgmma_lm_head = option_flag(spec, "wgmma_lm_head", options.wgmma_lm_head);
    options.persistent = option_flag(spec, "persistent", options.persistent);
    options.persistent_pairs = option_flag(spec, "persistent_pairs", options.persistent_pairs);
    options.persistent_embed = option_flag(spec, "persistent_embed", options.persistent_embed);
    options.persistent_head_flags = option_flag(spec, "persistent_head_flags", options.persistent_head_flags);
    options.persistent_lm_head = option_flag(spec, "persistent_lm_head", options.persistent_lm_head);
    options.sync_memset = option_flag(spec, "sync_memset", options.sync_memset);
    options.lm_head_summary_rows =
        option_int(spec, "lm_head_summary_rows", options.lm_head_summary_rows, 0, 1 << 20);
    options.lm_head_summary_min_rows =
        option_int(spec, "lm_head_summary_min_rows", options.lm_head_summary_min_rows, 1, 1 << 20);
    options.lm_head_pingpong = option_flag(spec, "lm_head_pingpong", options.lm_head_pingpong);
    options.decode_reuse = option_flag(spec, "decode_reuse", options.decode_reuse);
    options.mapped_outputs = option_flag(spec, "mapped_outputs", options.mapped_outputs);
    options.int8_fused = option_flag(spec, "int8_fused", options.int8_fused);
    if (auto it = spec.options.find("attention"); it != spec.options.end()) {
      using A = cuda_engine::EngineOptions::Attention;
      if (it->second == "wgmma") options.attention = A::kWgmma;
      else if (it->second == "mma") options.attention = A::kMma;
      else if (it->second == "wmma") options.attention = A::kWmma;
      else throw Error(spec.label() + ": option attention must be wgmma, mma or wmma, not '" + it->second + "'");
    }
    if (auto it = spec.options.find("attention_ksplit"); it != spec.options.end()) {
      if (it->second != "auto" && it->second != "0" && it->second != "1")
        throw Error(spec.label() + ": option attention_ksplit must be auto, 0 or 1, not '" + it->second + "'");
      options.attention_ksplit = it->second == "auto" ? -1 : it->second == "1" ? 1 : 0;
    }
    options.attention_warps = option_int(spec, "attention_warps", 0, 0, 4);
    if (options.attention_warps == 2 || options.attention_warps == 3)
      throw Error(spec.label() + ": option attention_warps must be 0, 1 or 4, got '" +
                  std::to_string(options.attention_warps) + "'");
    options.device = option_int(spec, "device", 0, 0, 1024);
    std::string why;
    if (!cuda_engine::device_available(&why)) throw Error(spec.label() + ": " + why);
    engine_ = cuda_engine::make_engine(model.config, model.weights, options);
    setup_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }

  BackendDescription describe() const override {
    BackendDescription d;
    d.name = spec_.name;
    d.device = "cuda";
    d.precision = spec_.precision;
    const auto v = cuda_engine::runtime_versions();
    d.versions["cuda_runtime"] = v.runtime;
    d.versions["cuda_driver"] = v.driver;
    d.versions["cublasLt"] = v.cublaslt;
    d.details["gpu"] = engine_->device_name();
    d.details["kernels"] = engine_->describe_kernels();
    d.details["logits_dtype"] = spec_.precision == "fp16" || spec_.precision == "int8" ? "float16"
                                : spec_.precision == "bf16"                           ? "bfloat16"
                                                                                      : "float32";
    if (spec_.precision == "int8") {
      d.details["calibration_cache"] = calibration_cache_;
      d.details["calibration_method"] = calibration_method_;
      d.floating_point_ops = int8_floating_point_ops();
      d.floating_point_ops.push_back("(on the GPU: activations between the products are fp16)");
    }
    return d;
  }

  void prefill(const TokenBatch& tokens, OutputMode mode, ForwardOutput& out) override {
    if (static_cast<std::int64_t>(tokens.ids.size()) != static_cast<std::int64_t>(tokens.batch) * tokens.seq)
      throw Error("prefill: ids do not match batch x seq");
    CallOutput call;
    std::vector<float> logits;
    const bool want = mode == OutputMode::kLogits;
    engine_->prefill(tokens.ids.data(), tokens.batch, tokens.seq, want ? &logits : nullptr, call);
    last_ms_ = call.gpu_ms;
    fill_output(call, logits, want, out);
  }

  std::unique_ptr<DecodeSession> start_decode(int batch, int max_tokens) override {
    return std::make_unique<CudaDecodeSession>(engine_->start_decode(batch, max_tokens), &last_ms_);
  }

  void score_window(std::span<const std::int32_t> ids, int score_from, std::vector<double>& nll) override {
    const int seq = static_cast<int>(ids.size());
    if (seq < 1) return;
    std::vector<std::int32_t> targets(ids.size(), -1);
    for (int t = std::max(score_from, 0); t + 1 < seq; ++t) targets[t] = ids[t + 1];
    std::vector<double> all;
    engine_->score(ids.data(), targets.data(), 1, seq, all, &last_ms_);
    for (int t = std::max(score_from, 0); t + 1 < seq; ++t) nll.push_back(all[t]);
  }

  // Consecutive windows of one length share a launch; the NLL of each scored token is computed on the device,
  // so only ids go in and NLL values come out.
  void score_windows(std::span<const std::int32_t> tokens, std::span<const ScoreWindow> windows,
                     std::vector<double>& nll) override {
    std::size_t i = 0;
    while (i < windows.size()) {
      std::size_t j = i;
      while (j < windows.size() && windows[j].length == windows[i].length) ++j;
      const int len = windows[i].length;
      const int count = static_cast<int>(j - i);
      batch_ids_.assign(static_cast<std::size_t>(count) * len, 0);
      batch_targets_.assign(static_cast<std::size_t>(count) * len, -1);
      for (int w = 0; w < count; ++w) {
        const ScoreWindow& win = windows[i + w];
        for (int t = 0; t < len; ++t) batch_ids_[w * len + t] = tokens[win.begin + t];
        for (int t = win.score_from; t + 1 < len; ++t) batch_targets_[w * len + t] = tokens[win.begin + t + 1];
      }
      engine_->score(batch_ids_.data(), batch_targets_.data(), count, len, batch_nll_, &last_ms_);
      for (int w = 0; w < count; ++w)
        for (int t = windows[i + w].score_from; t + 1 < len; ++t) nll.push_back(batch_nll_[w * len + t]);
      i = j;
    }
  }

  MemoryStats memory() const override { return {engine_->device_peak_bytes()}; }

  cuda_engine::Engine& engine() { return *engine_; }
  std::int64_t graphs_captured() const { return engine_->graphs_captured(); }
  double last_ms() const { return last_ms_; }

 private:
  // A flag's spellings: 1 / true / on, 0 / false / off; nothing for any other text.
  static std::optional<bool> flag_value(const std::string& text) {
    if (text == "1" || text == "true" || text == "on") return true;
    if (text == "0" || text == "false" || text == "off") return false;
    return std::nullopt;
  }
  static bool option_flag(const BackendSpec& spec, const std::string& key, bool fallback) {
    auto it = spec.options.find(key);
    if (it == spec.options.end()) return fallback;
    if (const std::optional<bool> flag = flag_value(it->second)) return *flag;
    throw Error(spec.label() + ": option " + key + " must be 0 or 1, got '" + it->second + "'");
  }
  // The option's integer value in [lo, hi], or fallback when absent; anything else is one clear error.
  static int option_int(const BackendSpec& spec, const std::string& key, int fallback, int lo, int hi) {
    auto it = spec.options.find(key);
    if (it == spec.options.end()) return fallback;
    const std::string& text = it->second;
    int value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size() || value < lo || value > hi)
      throw Error(spec.label() + ": option " + key + " must be an integer in " + std::to_string(lo) + ".." +
                  std::to_string(hi) + ", got '" + text + "'");
    return value;
  }

  BackendSpec spec_;
  int n_positions_;
  std::unique_ptr<cuda_engine::Engine> engine_;
  double last_ms_ = -1.0;
  std::string calibration_cache_, calibration_method_;  // int8
  std::vector<std::int32_t> batch_ids_, batch_targets_;
  std::vector<double> batch_nll_;
};

}  // namespace

bool cuda_device_available(std::string* why) { return cuda_engine::device_available(why); }

std::unique_ptr<Backend> create_cuda_backend(const BackendSpec& spec, const Gpt2Model& model) {
  return std::make_unique<CudaBackend>(spec, model);
}

bool is_cuda_backend(const Backend& backend) { return dynamic_cast<const CudaBackend*>(&backend) != nullptr; }

double cuda_last_gpu_ms(const Backend& backend) {
  auto* b = dynamic_cast<const CudaBackend*>(&backend);
  return b ? b->last_ms() : -1.0;
}

std::int64_t cuda_graphs_captured(const Backend& backend) {
  auto* b = dynamic_cast<const CudaBackend*>(&backend);
  return b ? b->graphs_captured() : -1;
}

}  // namespace gptbench
