#pragma once
// INT8 Linear layers for the native CPU engine (see int8_gemm.h for the arithmetic).
//
// What stays in floating point in the INT8 modes: the token and position embeddings, every LayerNorm, the
// attention scores (Q·Kᵀ), the softmax and the attention-weighted sum of V, GELU, the residual additions, the
// bias additions, and the (de)quantization scales themselves. Only the four projections of every block and the
// LM head run in int8 (W8A8: int8 × int8 → int32; weight-only: int8 weights widened to float32).
#include <memory>
#include <string>
#include <vector>

#include "backends/native/linear.h"
#include "quant/calibration.h"
#include "quant/int8_gemm.h"

namespace gptbench {

struct Int8LinearOptions {
  int threads = 0;             // 0: every thread of the INT8 pool (hardware_concurrency)
  Int8Isa isa = Int8Isa::kAuto;
};

// W8A8: weights per output channel, activations per tensor with the given scale (amax / 127 from calibration);
// activation_scale <= 0 quantizes each call's input with its own max |x| (dynamic; for tests and comparisons).
// `weight` is [in, out], or [out, in] when transposed_weight. bias may be null. Weights and bias are copied.
std::unique_ptr<Linear> make_int8_w8a8_linear(const Tensor& weight, const Tensor* bias, bool transposed_weight,
                                              float activation_scale, const Int8LinearOptions& options = {});

// Weight-only INT8: int8 weights per output channel, float32 activations.
std::unique_ptr<Linear> make_int8_weight_only_linear(const Tensor& weight, const Tensor* bias, bool transposed_weight,
                                                     const Int8LinearOptions& options = {});

// A LinearFactory for the native engine: W8A8 with each linear's activation scale from the table (Error naming
// the linear when the table has none), or weight-only (the table is then not consulted).
LinearFactory make_int8_linear_factory(const CalibrationTable& table, bool weight_only,
                                       const Int8LinearOptions& options = {});

// For BackendDescription::floating_point_ops of the INT8 precisions.
std::vector<std::string> int8_floating_point_ops();

// "int8 kernels: avx512-vnni, 2 threads" for the record.
std::string int8_kernel_description(const Int8LinearOptions& options = {});

}  // namespace gptbench
