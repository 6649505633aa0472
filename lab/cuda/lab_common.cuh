#pragma once
// What every kernel lab needs (after llm.c's dev/cuda/common.h): error checks that stop the lab with exit status 2,
// host-side conversions to and from the 16-bit types, a deterministic host random generator, the reference GELU and
// LayerNorm, the graph timing loop, and the command-line options every lab takes.
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <string>
#include <vector>

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

// LayerNorm of one row of K floats in double (eps 1e-5, the engine's GPT-2 value): out[k] = (x[k] - mean) * rstd *
// w[k] + b[k].
inline void layernorm_ref(const float* x, int K, const float* w, const float* b, double* out) {
  double mean = 0, var = 0;
  for (int k = 0; k < K; ++k) mean += x[k];
  mean /= K;
  for (int k = 0; k < K; ++k) var += (x[k] - mean) * (x[k] - mean);
  var /= K;
  const double rstd = 1.0 / std::sqrt(var + 1e-5);
  for (int k = 0; k < K; ++k) out[k] = (x[k] - mean) * rstd * w[k] + b[k];
}

// Time launch(it), it = 0 .. iters-1, inside one CUDA graph on `stream`: one eager call first (kernel attributes,
// cuBLASLt state), then capture, a warm-up replay and 3 timed replays; returns the best replay's us / call, or -1
// when a launch failed (reported by launch returning false or by a launch error; the error is cleared).
// edit (optional) may change the captured graph before it is instantiated (e.g. programmatic edges); false = failure.
inline double time_graph_best(cudaStream_t stream, const std::function<bool(int)>& launch, int iters,
                              const std::function<bool(cudaGraph_t)>& edit = {}) {
  if (!launch(0) || cudaGetLastError() != cudaSuccess) {
    (void)cudaGetLastError();
    return -1;
  }
  CK(cudaStreamSynchronize(stream));
  cudaGraph_t graph = nullptr;
  CK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
  bool ok = true;
  for (int it = 0; it < iters && ok; ++it) ok = launch(it);
  const cudaError_t end = cudaStreamEndCapture(stream, &graph);
  const cudaError_t last = cudaGetLastError();
  if (!ok || end != cudaSuccess || last != cudaSuccess) {
    if (graph) cudaGraphDestroy(graph);
    (void)cudaGetLastError();
    return -1;
  }
  if (edit && !edit(graph)) {
    cudaGraphDestroy(graph);
    (void)cudaGetLastError();
    return -1;
  }
  cudaGraphExec_t exec;
  CK(cudaGraphInstantiate(&exec, graph, 0));
  CK(cudaGraphLaunch(exec, stream));  // warm-up
  CK(cudaStreamSynchronize(stream));
  cudaEvent_t e0, e1;
  CK(cudaEventCreate(&e0));
  CK(cudaEventCreate(&e1));
  float best = std::numeric_limits<float>::max();
  for (int r = 0; r < 3; ++r) {
    CK(cudaEventRecord(e0, stream));
    CK(cudaGraphLaunch(exec, stream));
    CK(cudaEventRecord(e1, stream));
    CK(cudaEventSynchronize(e1));
    float ms = 0;
    CK(cudaEventElapsedTime(&ms, e0, e1));
    best = std::min(best, ms);
  }
  CK(cudaGetLastError());
  CK(cudaEventDestroy(e0));
  CK(cudaEventDestroy(e1));
  CK(cudaGraphExecDestroy(exec));
  CK(cudaGraphDestroy(graph));
  return 1000.0 * best / iters;
}

// Times call() on `stream` two ways: "hot" = the mean of `hot_iters` back-to-back calls (after 3 warm-up calls;
// none when hot_iters is 0), "cold" = the median of `cold_iters` single calls, each after `flush_bytes` of `flush`
// were written (twice the L2: the operands come from memory, as weights do in a forward). call() may only enqueue
// work on `stream`.
struct HotCold {
  double hot_us = 0, cold_us = 0;
};
inline HotCold time_hot_cold(cudaStream_t stream, void* flush, std::size_t flush_bytes,
                             const std::function<void()>& call, int hot_iters = 30, int cold_iters = 9) {
  cudaEvent_t e0, e1;
  CK(cudaEventCreate(&e0));
  CK(cudaEventCreate(&e1));
  float ms = 0.f;
  HotCold t;
  if (hot_iters > 0) {
    for (int i = 0; i < 3; ++i) call();
    CK(cudaEventRecord(e0, stream));
    for (int i = 0; i < hot_iters; ++i) call();
    CK(cudaEventRecord(e1, stream));
    CK(cudaEventSynchronize(e1));
    CK(cudaEventElapsedTime(&ms, e0, e1));
    t.hot_us = 1000.0 * ms / hot_iters;
  }
  double cold[64];
  cold_iters = std::min(cold_iters, 64);
  for (int i = 0; i < cold_iters; ++i) {
    CK(cudaMemsetAsync(flush, i & 0xff, flush_bytes, stream));
    CK(cudaEventRecord(e0, stream));
    call();
    CK(cudaEventRecord(e1, stream));
    CK(cudaEventSynchronize(e1));
    CK(cudaEventElapsedTime(&ms, e0, e1));
    cold[i] = 1000.0 * ms;
  }
  std::sort(cold, cold + cold_iters);
  t.cold_us = cold[cold_iters / 2];
  CK(cudaEventDestroy(e0));
  CK(cudaEventDestroy(e1));
  return t;
}

// The rows of an M-row output a lab checks against its reference: all of them up to 256, else `spread` rows
// i * 977 mod M and the last row and both sides of the first 128-row tile boundary.
inline std::vector<int> checked_rows(int M, int spread) {
  std::vector<int> rows;
  if (M <= 256) {
    for (int r = 0; r < M; ++r) rows.push_back(r);
    return rows;
  }
  for (int i = 0; i < spread; ++i) rows.push_back(static_cast<int>((static_cast<long long>(i) * 977) % M));
  rows.push_back(M - 1);
  rows.push_back(127);
  rows.push_back(128);
  return rows;
}

// The GPU's nanosecond clock (%globaltimer), the same on every SM: a kernel's own start and end stamps.
__device__ __forceinline__ unsigned long long globaltimer_ns() {
  unsigned long long t;
  asm volatile("mov.u64 %0, %%globaltimer;\n" : "=l"(t));
  return t;
}

// Device 0's properties into `prop`; false, after a line saying so, unless it is a compute capability 9.0 card (the
// labs built for sm_90a only: wgmma, TMA, clusters), on which such a lab has nothing to do and exits 0.
inline bool sm90_device(const char* lab_name, cudaDeviceProp& prop) {
  CK(cudaGetDeviceProperties(&prop, 0));
  if (prop.major == 9 && prop.minor == 0) return true;
  std::printf("%s needs a compute capability 9.0 card (this is %s): nothing to do\n", lab_name, prop.name);
  return false;
}

// A JSON number, or null where there is none (not checked, or not finite).
inline std::string json_number(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3e", v);
  return buf;
}

// The options every lab with a graph timing loop takes: --json FILE (one JSON object per line, appended) and
// --iters N. Returns 1 when argv[i] (and its value, i then advanced past it) was one of them, 0 when it was not,
// -1 when the JSON file cannot be opened (the reason printed).
inline int common_option(int argc, char** argv, int& i, std::FILE*& json, int& iters) {
  if (!std::strcmp(argv[i], "--json") && i + 1 < argc) {
    json = std::fopen(argv[++i], "a");
    if (!json) {
      std::perror("--json");
      return -1;
    }
    return 1;
  }
  if (!std::strcmp(argv[i], "--iters") && i + 1 < argc) {
    iters = std::max(1, std::atoi(argv[++i]));
    return 1;
  }
  return 0;
}

// The options of a lab with versions and named shapes: common_option's (--iters is accepted and unused), --version N
// (only that version) and --shape NAME:M (only that shape). 0, or the exit status after the usage line.
inline int version_shape_options(int argc, char** argv, std::FILE*& json, int& only_version, std::string& only_shape) {
  int iters = 0;
  for (int i = 1; i < argc; ++i) {
    const int c = common_option(argc, argv, i, json, iters);
    if (c < 0) return 2;
    if (c) continue;
    if (!std::strcmp(argv[i], "--version") && i + 1 < argc) {
      only_version = std::atoi(argv[++i]);
    } else if (!std::strcmp(argv[i], "--shape") && i + 1 < argc) {
      only_shape = argv[++i];
    } else {
      std::fprintf(stderr, "usage: %s [--json FILE] [--version N] [--shape NAME:M]\n", argv[0]);
      return 2;
    }
  }
  return 0;
}

}  // namespace lab
