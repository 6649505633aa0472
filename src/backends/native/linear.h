#pragma once
// A matrix product y = x · W + b with W stored [in, out] (GPT-2's Conv1D layout), behind one small interface so
// the native engine can run it in FP32 (BLAS), W8A8 INT8 or weight-only INT8 without changing the forward pass.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "model/weights.h"

namespace gptbench {

class Linear {
 public:
  virtual ~Linear() = default;
  // x: [rows, in] row-major float32; y: [rows, out] row-major float32 (overwritten).
  virtual void forward(const float* x, std::int64_t rows, float* y) const = 0;
  virtual std::int64_t in_features() const = 0;
  virtual std::int64_t out_features() const = 0;
  virtual std::string kind() const = 0;  // "fp32-onednn-sgemm", "int8-w8a8", "int8-weight-only"
};

// FP32 through oneDNN's sgemm. `weight` is [in, out] unless transposed_weight, where it is [out, in]
// (the tied LM head: logits = x · wteᵀ). bias may be null. The Linear keeps pointers: the tensors must outlive it.
std::unique_ptr<Linear> make_fp32_linear(const Tensor& weight, const Tensor* bias, bool transposed_weight = false);

// Called with the input of every quantizable matrix product during a forward pass (calibration).
// Names: "h.<i>.attn.c_attn", "h.<i>.attn.c_proj", "h.<i>.mlp.c_fc", "h.<i>.mlp.c_proj", "lm_head".
using ActivationObserver =
    std::function<void(const std::string& linear_name, const float* x, std::int64_t rows, std::int64_t cols)>;

// Builds the Linear for one named matrix product; the native engine asks it for every projection.
// The default factory gives FP32 for all; the INT8 modes supply their own.
using LinearFactory = std::function<std::unique_ptr<Linear>(const std::string& linear_name, const Tensor& weight,
                                                            const Tensor* bias, bool transposed_weight)>;

}  // namespace gptbench
