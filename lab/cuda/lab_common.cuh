#pragma once
// What every kernel lab needs (after llm.c's dev/cuda/common.h): error checks that stop the lab with exit status 2,
// host-side conversions to and from the 16-bit types, a deterministic host random generator, the reference GELU.
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#define CK(call)                                                                                      \
  do {                                                                                                \
    cudaError_t e_ = (call);                                                                          \
    if (e_ != cudaSuccess) {                                                                          \
      std::fprintf(stderr, "CUDA error %s at %s:%d: %s\n", cudaGetErrorString(e_), __FILE__, __LINE__, \
                   #call);                                                                            \
      std::exit(2);                                                                                   \
    }                                                                                                 \
  } while (0)
#define CB(call)                                                                                  \
  do {                                                                                            \
    cublasStatus_t s_ = (call);                                                                   \
    if (s_ != CUBLAS_STATUS_SUCCESS) {                                                            \
      std::fprintf(stderr, "cuBLAS error %d at %s:%d: %s\n", int(s_), __FILE__, __LINE__, #call); \
      std::exit(2);                                                                               \
    }                                                                                             \
  } while (0)

namespace lab {

// ---- host-side T conversions (round to nearest even) ----
template <typename T>
T h_from(float v);
template <>
inline float h_from<float>(float v) { return v; }
template <>
inline __half h_from<__half>(float v) { return __float2half_rn(v); }
template <>
inline __nv_bfloat16 h_from<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }
template <typename T>
float h_to(T v);
template <>
inline float h_to<float>(float v) { return v; }
template <>
inline float h_to<__half>(__half v) { return __half2float(v); }
template <>
inline float h_to<__nv_bfloat16>(__nv_bfloat16 v) { return __bfloat162float(v); }
// v rounded to T and back: the value a T input really holds.
template <typename T>
float h_round(float v) { return h_to<T>(h_from<T>(v)); }

template <typename T>
const char* tname();
template <>
inline const char* tname<float>() { return "float"; }
template <>
inline const char* tname<__half>() { return "half"; }
template <>
inline const char* tname<__nv_bfloat16>() { return "bf16"; }

// 64-bit LCG: the same inputs on every run and machine.
struct Rng {
  std::uint64_t s;
  explicit Rng(std::uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ull + 1) {}
  std::uint32_t next() {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<std::uint32_t>(s >> 32);
  }
  float uni() { return static_cast<float>((next() >> 8) * (1.0 / 16777216.0)) * 2.f - 1.f; }  // [-1, 1)
};

// GELU in double: the tanh form (gelu_new) or the exact erf form.
inline double gelu_ref(double v, bool tanh_form) {
  if (tanh_form) return 0.5 * v * (1.0 + std::tanh(0.7978845608028654 * (v + 0.044715 * v * v * v)));
  return 0.5 * v * (1.0 + std::erf(v * 0.7071067811865476));
}

}  // namespace lab
