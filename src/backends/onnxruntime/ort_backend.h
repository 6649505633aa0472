#pragma once
// The ONNX Runtime backend: the GPT-2 graph exported by gptbench (export/onnx_export.h), or a given .onnx file,
// run through ONNX Runtime's C++ API.
//
// BackendSpec::options:
//   graph_optimization  disabled | basic | extended | all (default all)
//   model_path          an existing prefill .onnx (input_ids -> logits); otherwise the model is exported to
//                       cache_dir/<model>_<precision>.onnx, reused while the weights' sha256 matches
//   past_model_path     an existing decoder-with-past .onnx for decode sessions (otherwise exported likewise)
//   cache_dir           where exported graphs are kept (default artifacts/onnx)
//   save_optimized      path: keep ONNX Runtime's optimised graph there (initializers in <path>.data)
//   optimized_graph_stats  1 (default): record node counts by op type of the optimised graph in describe()
//   allow_spinning      0 | 1: ONNX Runtime's intra-op threads spin-wait between runs (its default: 1)
//   calibration_cache   precision int8 (required): a .calib file made for this model (its model_sha256 must be
//                       the weights' sha256); the graph is the QDQ export of export/onnx_qdq.h, cached under
//                       cache_dir/<model>_int8_<calibration sha256, 12 hex>.onnx
// BackendSpec::threads sets the intra-op thread count (0: ONNX Runtime's default); device cpu | cuda (cuda needs
// an ONNX Runtime with the CUDA execution provider; describe() says when the library is CPU only).
//
// The library is loaded at run time (dlopen of libonnxruntime.so.1; GPTBENCH_ORT_LIBRARY overrides the path), so
// a machine without it still runs every other backend, and asking for this one gives a clear error.
#include <memory>
#include <string>

#include "backends/backend.h"

namespace gptbench {

std::unique_ptr<Backend> create_onnxruntime_backend(const BackendSpec& spec, const Gpt2Model& model);

// "1.30.0" for the library that would be loaded; throws Error when it cannot be loaded.
std::string onnxruntime_version();

}  // namespace gptbench
