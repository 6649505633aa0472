#include "backends/backend_options.h"

#include <fmt/format.h>

#include <algorithm>

#include "common/error.h"
#include "common/strings.h"

namespace gptbench {

namespace {

std::vector<std::string> sorted(std::vector<std::string> keys) {
  std::sort(keys.begin(), keys.end());
  return keys;
}

}  // namespace

const std::vector<std::string>& backend_option_keys(const std::string& name, const std::string& device) {
  // native/cpu: registry.cpp. native/cuda: cuda_backend.cpp (documented in cuda_backend.h). onnxruntime:
  // ort_backend.cpp. calibration_cache is also what the runner sets for an int8 cell.
  static const std::vector<std::string> native_cpu = {"calibration_cache"};
  static const std::vector<std::string> native_cuda = sorted({
      "attention", "attention_ksplit", "attention_warps", "calibration_cache", "decode_mma", "decode_persistent", "decode_reuse",
      "device", "fused_layernorm_rows", "gelu_epilogue", "gemm_autotune", "gemm_tune_l2", "gemv_kernels",
      "gemv_lm_head_max_rows", "gemv_max_rows", "graphs", "int8_fused", "layernorm_rows", "lm_head_pingpong", "lm_head_summary_min_rows",
      "lm_head_summary_rows", "mapped_outputs", "pdl", "persistent", "persistent_embed", "persistent_head_flags",
      "persistent_lm_head", "persistent_pairs", "prefill_pdl", "profile", "residual_16bit", "residual_epilogue",
      "sync_memset", "wgmma_lm_head", "wgmma_max_rows", "wgmma_pdl", "wgmma_tile"});
  static const std::vector<std::string> onnxruntime = sorted({"allow_spinning", "cache_dir", "calibration_cache",
                                                              "graph_optimization", "model_path",
                                                              "optimized_graph_stats", "past_model_path",
                                                              "save_optimized"});
  static const std::vector<std::string> none;
  if (name == "native") return device == "cuda" ? native_cuda : device == "cpu" ? native_cpu : none;
  if (name == "onnxruntime") return onnxruntime;
  return none;
}

std::optional<std::string> unknown_backend_option(const std::string& name, const std::string& device,
                                                  const std::map<std::string, std::string>& options) {
  const auto& keys = backend_option_keys(name, device);
  for (const auto& [key, value] : options)
    if (!std::binary_search(keys.begin(), keys.end(), key)) return key;
  return std::nullopt;
}

void check_backend_options(const BackendSpec& spec) {
  if (const auto key = unknown_backend_option(spec.name, spec.device, spec.options)) {
    const auto& known = backend_option_keys(spec.name, spec.device);
    throw Error(fmt::format("backend {}: unknown option '{}' (known: {})", spec.label(), *key,
                            known.empty() ? std::string("none") : join_list(known)));
  }
}

}  // namespace gptbench
