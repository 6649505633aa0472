#pragma once
// For the labs that time a kernel against cuBLASLt: the heuristic's candidates for one product, each timed cold,
// the fastest kept — as the engine's autotune picks (gemm_tune_cold).
#include <cublasLt.h>

#include <cmath>
#include <cstddef>

#include "lab_common.cuh"

namespace lab {

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

}  // namespace lab
