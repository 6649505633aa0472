// Maps a BackendSpec to an engine. Optional engines are compiled in only when their module was built
// (GPTBENCH_WITH_* definitions come from those modules' CMake files).
#include <algorithm>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "backends/backend.h"
#include "backends/backend_options.h"
#include "backends/native/native_backend.h"
#include "common/error.h"
#include "model/checkpoint.h"
#include "quant/calibration_cache.h"
#include "quant/int8_linear.h"

#ifdef GPTBENCH_WITH_ONNXRUNTIME
#include "backends/onnxruntime/ort_backend.h"
#endif
#ifdef GPTBENCH_WITH_CUDA
#include "backends/cuda/cuda_backend.h"
#endif

namespace gptbench {

namespace {

const std::vector<std::string>& cpu_precisions() {
  static const std::vector<std::string> p = {"fp32", "int8", "int8-weight-only"};
  return p;
}

// INT8 on the native CPU engine: the projections run through quant/'s kernels. W8A8 needs the activation scales
// of a calibration cache made for this very model; weight-only needs none.
void use_int8_linears(const BackendSpec& spec, const Gpt2Model& model, NativeCpuOptions& options) {
  const bool weight_only = spec.precision == "int8-weight-only";
  CalibrationTable table;
  if (!weight_only) {
    auto it = spec.options.find("calibration_cache");
    if (it == spec.options.end())
      throw Error("backend " + spec.label() + ": needs option calibration_cache (a .calib file from `gptbench calibrate`)");
    table = read_calibration_cache_for_model(it->second, model.identity.weights_sha256()).table;
  }
  Int8LinearOptions int8_options;
  int8_options.threads = spec.threads;
  options.linear_factory = make_int8_linear_factory(table, weight_only, int8_options);
  options.floating_point_ops = int8_floating_point_ops();
  options.matmul_kernels = int8_kernel_description(int8_options);
}

std::unique_ptr<Backend> create_native(const BackendSpec& spec, const Gpt2Model& model) {
  if (spec.device == "cuda") {  // (the CUDA backend checks its option keys itself: it is also created directly)
#ifdef GPTBENCH_WITH_CUDA
    return create_cuda_backend(spec, model);
#else
    throw Error("backend native/cuda: this build has no CUDA engine (the CUDA toolkit was not found at build time)");
#endif
  }
  if (spec.device != "cpu") throw Error("backend native: unknown device '" + spec.device + "' (cpu, cuda)");
  check_backend_options(spec);
  NativeCpuOptions options;
  options.threads = spec.threads;
  options.precision = spec.precision;
  if (std::find(cpu_precisions().begin(), cpu_precisions().end(), spec.precision) == cpu_precisions().end())
    throw Error(fmt::format("backend native/cpu: unsupported precision '{}' ({})", spec.precision,
                            fmt::join(cpu_precisions(), ", ")));
  if (spec.precision != "fp32") use_int8_linears(spec, model, options);
  return create_native_cpu_backend(model, options);
}

}  // namespace

std::vector<std::string> available_backends() {
  std::vector<std::string> names = {"native"};
#ifdef GPTBENCH_WITH_ONNXRUNTIME
  names.push_back("onnxruntime");
#endif
  return names;
}

std::unique_ptr<Backend> create_backend(const BackendSpec& spec, const Gpt2Model& model) {
  if (spec.name == "native") return create_native(spec, model);
  if (spec.name == "onnxruntime") {
    check_backend_options(spec);
#ifdef GPTBENCH_WITH_ONNXRUNTIME
    return create_onnxruntime_backend(spec, model);
#else
    throw Error("backend onnxruntime: not in this build (ONNX Runtime was not found; run scripts/setup.sh)");
#endif
  }
  throw Error(fmt::format("unknown backend '{}' (available: {})", spec.name, fmt::join(available_backends(), ", ")));
}

}  // namespace gptbench
