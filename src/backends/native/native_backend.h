#pragma once
// The native engine on the CPU: a GPT-2 forward pass you can read top to bottom (gpt2_cpu.cpp), matrix
// products through the BLAS or the INT8 kernels behind Linear.
#include <memory>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "backends/native/linear.h"

namespace gptbench {

struct NativeCpuOptions {
  int threads = 0;                  // 0: the BLAS default
  LinearFactory linear_factory;     // empty: FP32 BLAS for every projection
  ActivationObserver observer;      // empty: none (set by calibration)
  std::string precision = "fp32";   // for describe()
  // For the record, set by whoever supplies linear_factory: which operations stay in floating point, and the
  // kernels the factory's Linear layers use.
  std::vector<std::string> floating_point_ops;
  std::string matmul_kernels;
};

// The model must outlive the backend (weights are used in place).
std::unique_ptr<Backend> create_native_cpu_backend(const Gpt2Model& model, const NativeCpuOptions& options);

// BLAS identity for the record, e.g. "OpenBLAS 0.3.21 (core: Haswell, threads: 2)".
std::string blas_description();
void set_blas_threads(int threads);

}  // namespace gptbench
