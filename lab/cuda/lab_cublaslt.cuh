#pragma once
// For the labs that time a kernel against cuBLASLt: the product's descriptors, the heuristic's candidates for it,
// each timed cold, the fastest kept — as the engine's autotune picks (gemm_tune_cold) — and main()'s set-up.
#include <cublasLt.h>

#include <cmath>
#include <cstddef>
#include <type_traits>

#include "lab_common.cuh"

namespace lab {

// One cuBLASLt product as the engine's Gemm runs it: y [M, N] row-major = a [M, K] . W [N, K]^T (+ bias [N] in the
// epilogue when given, then GELU (tanh form) with gelu), i.e. the column-major product W^T(op T) x a; C and D share
// the layout lc. algo and ok are set by lt_fastest_cold.
struct LtProduct {
  cublasLtMatmulDesc_t desc{};
  cublasLtMatrixLayout_t la{}, lb{}, lc{};
  cublasLtMatmulAlgo_t algo{};
  bool ok = false;
};
template <typename T>
LtProduct make_lt_product(int M, int N, int K, const T* bias = nullptr, bool gelu = false) {
  LtProduct L;
  const cudaDataType_t dt = std::is_same_v<T, __half> ? CUDA_R_16F : CUDA_R_16BF;
  CB(cublasLtMatmulDescCreate(&L.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
  CB(cublasLtMatmulDescSetAttribute(L.desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)));
  CB(cublasLtMatmulDescSetAttribute(L.desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)));
  if (bias) {
    cublasLtEpilogue_t epi = gelu ? CUBLASLT_EPILOGUE_GELU_BIAS : CUBLASLT_EPILOGUE_BIAS;
    CB(cublasLtMatmulDescSetAttribute(L.desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof(epi)));
    CB(cublasLtMatmulDescSetAttribute(L.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)));
    cudaDataType_t bt = dt;
    CB(cublasLtMatmulDescSetAttribute(L.desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bt, sizeof(bt)));
  }
  CB(cublasLtMatrixLayoutCreate(&L.la, dt, K, N, K));
  CB(cublasLtMatrixLayoutCreate(&L.lb, dt, K, M, K));
  CB(cublasLtMatrixLayoutCreate(&L.lc, dt, N, M, N));
  return L;
}
inline void destroy_lt_product(LtProduct& L) {
  cublasLtMatrixLayoutDestroy(L.la);
  cublasLtMatrixLayoutDestroy(L.lb);
  cublasLtMatrixLayoutDestroy(L.lc);
  cublasLtMatmulDescDestroy(L.desc);
}

// Up to 8 of cuBLASLt's heuristic candidates for desc / la / lb / lc (C = D), each timed cold (median of 5 single
// calls after an L2 flush, time_hot_cold); the fastest goes to algo. call(algo) enqueues the product on stream
// and returns whether cuBLASLt took it. False when no candidate ran.
template <typename Call>
bool lt_fastest_cold(cublasLtHandle_t lt, cublasLtMatmulDesc_t desc, cublasLtMatrixLayout_t la,
                     cublasLtMatrixLayout_t lb, cublasLtMatrixLayout_t lc, std::size_t workspace_bytes,
                     cudaStream_t stream, void* flush, std::size_t flush_bytes, Call call, cublasLtMatmulAlgo_t& algo) {
  cublasLtMatmulPreference_t pref;
  CB(cublasLtMatmulPreferenceCreate(&pref));
  CB(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace_bytes,
                                          sizeof(workspace_bytes)));
  cublasLtMatmulHeuristicResult_t res[8];
  int found = 0;
  CB(cublasLtMatmulAlgoGetHeuristic(lt, desc, la, lb, lc, lc, pref, 8, res, &found));
  cublasLtMatmulPreferenceDestroy(pref);
  double best = INFINITY;
  for (int i = 0; i < found; ++i) {
    if (!call(res[i].algo)) continue;
    const double us = time_hot_cold(
                          stream, flush, flush_bytes, [&] { call(res[i].algo); }, 0, 5)
                          .cold_us;
    if (us < best) best = us, algo = res[i].algo;
  }
  return best < INFINITY;
}

// What a lab that times kernels against cuBLASLt sets up in main() and takes down at its end: the card, the L2
// flush buffer of time_hot_cold (twice the L2), cuBLASLt's handle and workspace.
struct LtLabDevice {
  cudaDeviceProp prop{};
  cublasLtHandle_t lt = nullptr;
  void* ws = nullptr;
  std::size_t ws_bytes = 0;
  void* flush = nullptr;
  std::size_t flush_bytes = 0;
};
// False (after saying so) where the card is not of compute capability 9.0: these labs' kernels need sm_90a.
inline bool open_lt_lab(const char* lab_name, std::size_t ws_bytes, LtLabDevice& d) {
  CK(cudaGetDeviceProperties(&d.prop, 0));
  if (d.prop.major != 9 || d.prop.minor != 0) {
    std::printf("%s needs a compute capability 9.0 card (this is %s): nothing to do\n", lab_name, d.prop.name);
    return false;
  }
  d.flush_bytes = static_cast<std::size_t>(d.prop.l2CacheSize) * 2;
  CK(cudaMalloc(&d.flush, d.flush_bytes));
  d.ws_bytes = ws_bytes;
  CK(cudaMalloc(&d.ws, ws_bytes));
  CB(cublasLtCreate(&d.lt));
  return true;
}
// Frees what open_lt_lab made, closes the JSON file, says whether every check passed; the lab's exit status.
inline int close_lt_lab(LtLabDevice& d, std::FILE* json, int failures) {
  cublasLtDestroy(d.lt);
  cudaFree(d.ws);
  cudaFree(d.flush);
  if (json) std::fclose(json);
  std::printf("%s (%d failure%s)\n", failures ? "FAILED" : "ALL PASS", failures, failures == 1 ? "" : "s");
  return failures ? 1 : 0;
}

}  // namespace lab
