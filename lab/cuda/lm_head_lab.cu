// lm_head_lab: the LM head with the row summary (top-1, row sum) in its epilogue
// (src/backends/cuda/lm_head_summary.cuh) against what the engine ran before it — cuBLASLt's LM head (the best of
// its heuristic's candidates, timed cold) followed by kernels::row_summary over the stored logits — after llm.c's
// dev/cuda: each version checked, then timed.
//
//   v0  cuBLASLt + row_summary        (the engine's path without this kernel)
//   v1  lm_head_summary<T, 192, 5>    tiles of 128 x 192, 5 ring slots, the summary only
//   v2  lm_head_summary<T, 128, 6>    128 x 128, 6 slots
//   v3  lm_head_summary<T, 256, 4>    128 x 256, 4 slots
//   v4  v1 that also stores the logits (the engine's path when a caller wants them)
//   v5  lm_head_summary_pingpong<T, 6>        128 x 128 tiles, one a consumer warpgroup, the two alternating
//   v6  v5 with each thread's run of a row summed in float (SUM_FLOAT), then in double
//   v7  v6 with 7 ring slots
//   v8  v5 that also stores the logits
//   v9  v6 without the summary (LAB 1: the main loop alone), v10 without the products too (LAB 2: the ring alone)
//   v11 v6 with 128 x 192 tiles (5 slots), v12 v11 without the summary
//   v13 v6 with 4 (best, index, sum) chains a row (CHAINS), v14 / v15 v11 with 2 / 4, v16 v14 summed in double
//       that also stores the logits
//   v17 / v18 v1 / v3 with SUM_FLOAT
//   v19 v11 with the STAGED epilogue (shared memory, 4 ring slots), v20 v19 summed in double, v21 v20 that also
//       stores the logits, v22 v19 with 128 x 128 tiles (5 slots), v23 v11 with 4 slots (v19's ring)
//   v24 v19 with one staging buffer for both warpgroups (STAGED = 1) and 5 ring slots, v25 v24 summed in double
//       that also stores the logits
// (v9, v10, v12 compute nothing usable: timed only.)
//
// Measured on an H200 (docs/results/2026-11-27-session9/): at 128 rows, weights cold, v1 38.8 us against v0's 39.1
// (v0: cuBLASLt 24.7 us under Nsight Compute at 3.4 TB/s, row_summary the rest; v1 29.4 us at 2.7 TB/s); a read of W
// alone with plain loads 24.6 us. v1 saves the summary but streams W slower than cuBLASLt (whose kernel shares each W
// tile over a cluster of two blocks by multicast): no gain, so the engine leaves it off (lm_head_summary_rows). At
// 1024 / 4096 rows the product is compute-bound and v1-v3 are slower (165 / 624 us against 150 / 517). A copy of W
// rearranged so that every TMA box is one contiguous piece was no faster either (38.9 vs 38.8 us; not kept).
// Thirteenth session (H200s, docs/results/2026-11-27-session13/, 4,096 rows, cold): v19 (the engine's default
// since) 438-445 us against v0's 516-519 in the same call; its main loop alone (v12, 5 slots) 413-435; the 128 x
// 128 ring alone (v10) 381-409; register summaries v11 481-508, v14 / v15 (chains) 539-571; doubles per logit v20
// 614-640; v24 472-481. The branch-free summary took v1 from 618-679 to 523-613, and at 128 rows v1 is 36.6-37.0
// against v0's 39.4-40.1.
//
// Checks: v4's and v8's stored logits against a CPU reference in double (every column of a sample of rows); v0's,
// v4's and v8's summaries against the CPU summary of their own stored logits (top-1 exactly, the sum to 1e-12);
// v1-v3 and v5-v7 against v4's summary (the same logits up to the rounding of a float accumulated in another order:
// top-1 where the two candidates' logits differ by more than one unit in the last place, the sum to 1e-3 of the
// row's logit norm — a missing or doubled tile moves it by ~6e-2).
// Timing: "cold" = the median of 9 single calls, each after a write of twice the L2 size (the weights are cold in
// a forward); "hot" = back to back.
// Usage: lm_head_lab [--json FILE] [--quick] [--only M]   Exits non-zero if a check fails. --only M: the fp16 GPT-2
// shape of M rows alone (for a profiler).
#include <cublasLt.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "backends/cuda/lm_head_summary.cuh"
#include "lab_common.cuh"
#include "lab_cublaslt.cuh"

namespace k = gptbench::cuda_engine::kernels;
using namespace lab;

namespace {

const char* version_name(int v) {
  const char* names[] = {"cublaslt+row_summary", "bn192_s5",      "bn128_s6",      "bn256_s4",
                         "bn192_s5_store",       "pingpong_s6",   "pingpong_s6_fsum", "pingpong_s7_fsum",
                         "pingpong_s6_store",    "pp_s6_LAB1_mainloop", "pp_s6_LAB2_ring",
                         "pp_bn192_s5_fsum",     "pp_bn192_LAB1_mainloop", "pp_s6_fsum_4chains",
                         "pp_bn192_fsum_2chains", "pp_bn192_fsum_4chains", "pp_bn192_2chains_store",
                         "bn192_s5_fsum",        "bn256_s4_fsum",    "pp_bn192_s4_staged_fsum",
                         "pp_bn192_s4_staged",   "pp_bn192_s4_staged_store", "pp_bn128_s5_staged_fsum",
                         "pp_bn192_s4_fsum",     "pp_bn192_s5_staged1_fsum", "pp_bn192_s5_staged1_store"};
  return names[v];
}

int g_failures = 0;
FILE* g_json = nullptr;
std::string g_gpu;
int g_sms = 132;
LtLabDevice g_dev;  // the card, the L2 flush buffer, cuBLASLt
constexpr size_t kWsBytes = 32u << 20;

struct Summary {
  std::vector<int> top1;
  std::vector<double> sum;
};

// The summary of stored logits rows [M, ld] over the first `vocab` columns, as row_summary defines it.
template <typename T>
Summary host_summary(const std::vector<T>& logits, int M, int ld, int vocab) {
  Summary s{std::vector<int>(M), std::vector<double>(M)};
  for (int r = 0; r < M; ++r) {
    float best = -INFINITY;
    int bi = 0x7fffffff;
    double sum = 0;
    for (int c = 0; c < vocab; ++c) {
      const float v = h_to<T>(logits[static_cast<size_t>(r) * ld + c]);
      sum += v;
      if (v > best) best = v, bi = c;
    }
    s.top1[r] = bi;
    s.sum[r] = sum;
  }
  return s;
}

// mw: W's maps with boxes of 192, 128, 256 rows.
template <typename T>
cudaError_t run_fused(int v, const CUtensorMap& mh, const CUtensorMap* mw, k::LmHeadArgs<T> p, int* top1,
                      double* row_sum, cudaStream_t stream) {
  switch (v) {
    case 1: p.logits = nullptr; return k::launch_lm_head_summary<T, 192, 5>(mh, mw[0], p, top1, row_sum, g_sms, stream, false);
    case 2: p.logits = nullptr; return k::launch_lm_head_summary<T, 128, 6>(mh, mw[1], p, top1, row_sum, g_sms, stream, false);
    case 3: p.logits = nullptr; return k::launch_lm_head_summary<T, 256, 4>(mh, mw[2], p, top1, row_sum, g_sms, stream, false);
    case 4: return k::launch_lm_head_summary<T, 192, 5>(mh, mw[0], p, top1, row_sum, g_sms, stream, false);
    case 5: p.logits = nullptr; return k::launch_lm_head_summary_pingpong<T, 128, 6, false>(mh, mw[1], p, top1, row_sum, g_sms, stream, false);
    case 6: p.logits = nullptr; return k::launch_lm_head_summary_pingpong<T, 128, 6, true>(mh, mw[1], p, top1, row_sum, g_sms, stream, false);
    case 7: p.logits = nullptr; return k::launch_lm_head_summary_pingpong<T, 128, 7, true>(mh, mw[1], p, top1, row_sum, g_sms, stream, false);
    case 8: return k::launch_lm_head_summary_pingpong<T, 128, 6, false>(mh, mw[1], p, top1, row_sum, g_sms, stream, false);
    case 9: p.logits = nullptr; return k::launch_lm_head_summary_pingpong<T, 128, 6, true, 1, false, 1>(mh, mw[1], p, top1, row_sum, g_sms, stream, false);
    case 10: p.logits = nullptr; return k::launch_lm_head_summary_pingpong<T, 128, 6, true, 1, false, 2>(mh, mw[1], p, top1, row_sum, g_sms, stream, false);
    case 11: p.logits = nullptr; return k::launch_lm_head_summary_pingpong<T, 192, 5, true>(mh, mw[0], p, top1, row_sum, g_sms, stream, false);
    case 12: p.logits = nullptr; return k::launch_lm_head_summary_pingpong<T, 192, 5, true, 1, false, 1>(mh, mw[0], p, top1, row_sum, g_sms, stream, false);
    case 13: p.logits = nullptr; return k::launch_lm_head_summary_pingpong<T, 128, 6, true, 4>(mh, mw[1], p, top1, row_sum, g_sms, stream, false);
    case 14: p.logits = nullptr; return k::launch_lm_head_summary_pingpong<T, 192, 5, true, 2>(mh, mw[0], p, top1, row_sum, g_sms, stream, false);
    case 15: p.logits = nullptr; return k::launch_lm_head_summary_pingpong<T, 192, 5, true, 4>(mh, mw[0], p, top1, row_sum, g_sms, stream, false);
    case 17: p.logits = nullptr; return k::launch_lm_head_summary<T, 192, 5, true>(mh, mw[0], p, top1, row_sum, g_sms, stream, false);
    case 18: p.logits = nullptr; return k::launch_lm_head_summary<T, 256, 4, true>(mh, mw[2], p, top1, row_sum, g_sms, stream, false);
    case 19: p.logits = nullptr; return k::launch_lm_head_summary_pingpong<T, 192, 4, true, 1, 2>(mh, mw[0], p, top1, row_sum, g_sms, stream, false);
    case 20: p.logits = nullptr; return k::launch_lm_head_summary_pingpong<T, 192, 4, false, 1, 2>(mh, mw[0], p, top1, row_sum, g_sms, stream, false);
    case 21: return k::launch_lm_head_summary_pingpong<T, 192, 4, false, 1, 2>(mh, mw[0], p, top1, row_sum, g_sms, stream, false);
    case 22: p.logits = nullptr; return k::launch_lm_head_summary_pingpong<T, 128, 5, true, 1, 2>(mh, mw[1], p, top1, row_sum, g_sms, stream, false);
    case 23: p.logits = nullptr; return k::launch_lm_head_summary_pingpong<T, 192, 4, true>(mh, mw[0], p, top1, row_sum, g_sms, stream, false);
    case 24: p.logits = nullptr; return k::launch_lm_head_summary_pingpong<T, 192, 5, true, 1, 1>(mh, mw[0], p, top1, row_sum, g_sms, stream, false);
    case 25: return k::launch_lm_head_summary_pingpong<T, 192, 5, false, 1, 1>(mh, mw[0], p, top1, row_sum, g_sms, stream, false);
    case 16: return k::launch_lm_head_summary_pingpong<T, 192, 5, false, 2>(mh, mw[0], p, top1, row_sum, g_sms, stream, false);
    default: return cudaErrorInvalidValue;
  }
}

// cuBLASLt's LM head (lab_cublaslt.cuh's product, no bias): logits [M, N] = h [M, K] . W [N, K]^T.
template <typename T>
bool lt_call(const LtProduct& L, const cublasLtMatmulAlgo_t& algo, const T* W, const T* h, T* y, cudaStream_t s) {
  static const float kOne = 1.f, kZero = 0.f;
  return cublasLtMatmul(g_dev.lt, L.desc, &kOne, W, L.la, h, L.lb, &kZero, y, L.lc, y, L.lc, &algo, g_dev.ws, kWsBytes, s) ==
         CUBLAS_STATUS_SUCCESS;
}

// The floor: W read once with 16-byte loads (4 in flight per thread), nothing computed — what the DRAM gives a
// plain stream of these bytes.
__global__ void __launch_bounds__(512) read_probe(const uint4* w, std::int64_t n, unsigned* sink) {
  unsigned x = 0;
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  for (; i + 3 * stride < n; i += 4 * stride) {
    uint4 v[4];
#pragma unroll
    for (int u = 0; u < 4; ++u) v[u] = __ldcs(w + i + u * stride);
#pragma unroll
    for (int u = 0; u < 4; ++u) x ^= v[u].x ^ v[u].y ^ v[u].z ^ v[u].w;
  }
  for (; i < n; i += stride) x ^= w[i].x;
  if (x == 0x12345678u) *sink = x;  // keeps the loads
}

template <typename T>
void summary_kernel(const T* logits, int M, int vocab, int ld, int* top1, double* sum, cudaStream_t s) {
  // The engine's choice (logits_tail): wide blocks for few rows.
  if (M <= 2 * g_sms) k::row_summary<T, 1024><<<M, 1024, 0, s>>>(logits, vocab, ld, top1, sum);
  else k::row_summary<T, 256><<<M, 256, 0, s>>>(logits, vocab, ld, top1, sum);
}

template <typename T>
void run_shape(const char* name, int M, int vocab, int K, bool timed) {
  const int N = (vocab + 127) / 128 * 128;  // the engine pads the vocabulary to a multiple of 128
  Rng rng(4242u + M + 7u * vocab + 13u * K);
  // h like ln_f's output (unit scale), W like GPT-2's embedding (std ~0.1): logits of a few units.
  std::vector<T> hh(static_cast<size_t>(M) * K), hw(static_cast<size_t>(N) * K);
  std::vector<float> fh(hh.size()), fw(hw.size());
  for (size_t i = 0; i < hh.size(); ++i) fh[i] = h_round<T>(rng.uni() * 1.7f), hh[i] = h_from<T>(fh[i]);
  for (size_t i = 0; i < hw.size(); ++i) {
    const bool pad = static_cast<int>(i / K) >= vocab;  // padded rows are zero, as in the engine
    fw[i] = pad ? 0.f : h_round<T>(rng.uni() * 0.17f);
    hw[i] = h_from<T>(fw[i]);
  }
  T *dh, *dw, *dlogits;
  k::SummaryPart* dparts;
  int* dtop1;
  double* dsum;
  CK(cudaMalloc(&dh, hh.size() * sizeof(T)));
  CK(cudaMalloc(&dw, hw.size() * sizeof(T)));
  CK(cudaMalloc(&dlogits, static_cast<size_t>(M) * N * sizeof(T)));
  CK(cudaMalloc(&dparts, static_cast<size_t>(M) * (N / 128 + 1) * sizeof(k::SummaryPart)));
  CK(cudaMalloc(&dtop1, M * sizeof(int)));
  CK(cudaMalloc(&dsum, M * sizeof(double)));
  CK(cudaMemcpy(dh, hh.data(), hh.size() * sizeof(T), cudaMemcpyHostToDevice));
  CK(cudaMemcpy(dw, hw.data(), hw.size() * sizeof(T), cudaMemcpyHostToDevice));
  CUtensorMap mh, mw[3];
  const int bns[3] = {192, 128, 256};
  bool maps = k::wgmma_tensor_map(&mh, dh, M, K, 128);
  for (int i = 0; i < 3; ++i) maps = maps && k::wgmma_tensor_map(&mw[i], dw, N, K, bns[i]);
  if (!maps) {
    std::printf("%s: tensor maps refused\n", name);
    ++g_failures;
    return;
  }
  k::LmHeadArgs<T> p;
  p.M = M, p.N = N, p.K = K, p.vocab = vocab, p.parts = dparts, p.logits = dlogits;
  cudaStream_t stream;
  CK(cudaStreamCreate(&stream));

  // cuBLASLt: the heuristic's candidates, each timed cold (median of 5), the fastest kept.
  LtProduct L = make_lt_product<T>(M, N, K);
  L.ok = lt_fastest_cold(
      g_dev.lt, L.desc, L.la, L.lb, L.lc, kWsBytes, stream, g_dev.flush, g_dev.flush_bytes,
      [&](const cublasLtMatmulAlgo_t& a) { return lt_call<T>(L, a, dw, dh, dlogits, stream); }, L.algo);
  if (!L.ok) {
    std::printf("%s: cuBLASLt found no algorithm\n", name);
    ++g_failures;
    return;
  }

  if (timed) {  // the read floor of W, cold (after the flush) as the versions below
    unsigned* sink;
    CK(cudaMalloc(&sink, sizeof(unsigned)));
    const double us = time_hot_cold(
                          stream, g_dev.flush, g_dev.flush_bytes,
                          [&] {
                            read_probe<<<g_sms * 4, 512, 0, stream>>>(
                                reinterpret_cast<const uint4*>(dw), static_cast<std::int64_t>(N) * K * sizeof(T) / 16,
                                sink);
                          },
                          0)
                          .cold_us;
    std::printf("      %-8s W alone: read in %8.2f us cold (%5.2f TB/s)\n", name, us,
                static_cast<double>(N) * K * sizeof(T) / us * 1e-6);
    cudaFree(sink);
  }

  // ---- checks ----
  const size_t sample_rows = std::min(M, 32);
  std::vector<int> rows;
  for (size_t i = 0; i < sample_rows; ++i) rows.push_back(static_cast<int>(i * M / sample_rows));
  std::vector<T> got(static_cast<size_t>(M) * N);
  Summary fused_store;  // v4: the reference of v1-v3 and v5-v7
  std::vector<int> gtop(M);
  std::vector<double> gsum(M);
  auto fetch_summary = [&] {
    CK(cudaMemcpy(gtop.data(), dtop1, M * sizeof(int), cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(gsum.data(), dsum, M * sizeof(double), cudaMemcpyDeviceToHost));
  };
  const double tol = std::is_same_v<T, __half> ? 5e-3 : 2e-2, ulp = std::is_same_v<T, __half> ? 1.0 / 1024 : 1.0 / 128;
  std::vector<double> norm(M);  // the L2 norm of each row's logits (v4's)
  for (int v : {0, 4, 8, 16, 21, 25, 1, 2, 3, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 17, 18, 19, 20, 22, 23, 24}) {
    const bool lab_part = v == 9 || v == 10 || v == 12;
    CK(cudaMemset(dlogits, 0xff, static_cast<size_t>(M) * N * sizeof(T)));  // NaN: a logit left unwritten shows
    CK(cudaMemset(dtop1, 0xff, M * sizeof(int)));
    if (v == 0) {
      if (!lt_call<T>(L, L.algo, dw, dh, dlogits, stream)) std::exit(2);
      summary_kernel<T>(dlogits, M, vocab, N, dtop1, dsum, stream);
    } else {
      CK(run_fused<T>(v, mh, mw, p, dtop1, dsum, stream));
    }
    CK(cudaStreamSynchronize(stream));
    fetch_summary();
    std::string what;
    double max_err = 0;
    bool pass = true;
    if (lab_part) {
      what = "not checked (parts left out)";
    } else if (v == 0 || v == 4 || v == 8 || v == 16 || v == 21 || v == 25) {
      CK(cudaMemcpy(got.data(), dlogits, got.size() * sizeof(T), cudaMemcpyDeviceToHost));
      const Summary own = host_summary(got, M, N, vocab);
      int bad = 0;
      for (int r = 0; r < M; ++r)
        if (own.top1[r] != gtop[r] || std::fabs(own.sum[r] - gsum[r]) > 1e-12 * std::max(1.0, std::fabs(own.sum[r])))
          ++bad;
      for (int r : rows)
        for (int c = 0; c < N; ++c) {
          double ref = 0;
          for (int kk = 0; kk < K; ++kk)
            ref += static_cast<double>(fh[static_cast<size_t>(r) * K + kk]) * fw[static_cast<size_t>(c) * K + kk];
          double err = std::fabs(h_to<T>(got[static_cast<size_t>(r) * N + c]) - ref) / std::max(1.0, std::fabs(ref));
          if (std::isnan(err)) err = INFINITY;
          max_err = std::max(max_err, err);
        }
      pass = bad == 0 && max_err <= tol;
      what = "logits max err " + std::to_string(max_err) + ", summary vs its logits: " + std::to_string(bad) +
             " rows differ";
      if (v == 4) {
        fused_store = Summary{gtop, gsum};
        for (int r = 0; r < M; ++r) {
          double s2 = 0;
          for (int c = 0; c < vocab; ++c) {
            const double x = h_to<T>(got[static_cast<size_t>(r) * N + c]);
            s2 += x * x;
          }
          norm[r] = std::sqrt(s2);
        }
      }
    } else {
      int bad_top = 0, diff_top = 0;
      double max_dsum = 0;
      for (int r = 0; r < M; ++r) {
        const int a = gtop[r], b = fused_store.top1[r];
        if (a != b) {
          ++diff_top;
          // a near tie is allowed: v4's logits at both ids within one unit in the last place of the larger
          const bool in = a >= 0 && a < vocab;
          const double la = in ? h_to<T>(got[static_cast<size_t>(r) * N + a]) : -INFINITY,
                       lb = h_to<T>(got[static_cast<size_t>(r) * N + b]);
          if (!(std::fabs(la - lb) <= ulp * std::fabs(lb))) ++bad_top;
        }
        max_dsum = std::max(max_dsum, std::fabs(gsum[r] - fused_store.sum[r]) / std::max(1e-30, norm[r]));
      }
      if (std::isnan(max_dsum)) max_dsum = INFINITY;
      pass = bad_top == 0 && max_dsum <= 1e-3;
      what = "vs v4: top-1 differs in " + std::to_string(diff_top) + " rows (" + std::to_string(bad_top) +
             " beyond a near tie), row sum max diff " + std::to_string(max_dsum) + " of the logit norm";
      max_err = max_dsum;
    }
    if (!pass) ++g_failures;
    std::printf("%-5s %-8s M%-5d V%-6d K%-5d | v%d %-21s | check %s: %s\n", tname<T>(), name, M, vocab, K, v,
                version_name(v), lab_part ? "SKIP" : pass ? "PASS" : "FAIL", what.c_str());
    std::fflush(stdout);

    if (!timed) continue;
    auto call = [&] {
      if (v == 0) {
        if (!lt_call<T>(L, L.algo, dw, dh, dlogits, stream)) std::exit(2);
        summary_kernel<T>(dlogits, M, vocab, N, dtop1, dsum, stream);
      } else {
        CK(run_fused<T>(v, mh, mw, p, dtop1, dsum, stream));
      }
    };
    const HotCold t = time_hot_cold(stream, g_dev.flush, g_dev.flush_bytes, call, 30);
    const double hot_us = t.hot_us, cold_us = t.cold_us;
    const double bytes = static_cast<double>(N) * K * sizeof(T);
    std::printf("      %-8s M%-5d | v%d %-21s | cold %8.2f us (W at %5.2f TB/s) | hot %8.2f us\n", name, M, v,
                version_name(v), cold_us, bytes / cold_us * 1e-6, hot_us);
    std::fflush(stdout);
    if (g_json) {
      std::fprintf(g_json,
                   "{\"lab\":\"lm_head\",\"gpu\":\"%s\",\"dtype\":\"%s\",\"shape\":\"%s\",\"M\":%d,\"vocab\":%d,"
                   "\"K\":%d,\"version\":%d,\"name\":\"%s\",\"cold_us\":%.3f,\"hot_us\":%.3f,\"pass\":%s}\n",
                   g_gpu.c_str(), tname<T>(), name, M, vocab, K, v, version_name(v), cold_us, hot_us,
                   pass ? "true" : "false");
      std::fflush(g_json);
    }
  }
  destroy_lt_product(L);
  cudaFree(dh);
  cudaFree(dw);
  cudaFree(dlogits);
  cudaFree(dparts);
  cudaFree(dtop1);
  cudaFree(dsum);
  cudaStreamDestroy(stream);
}

}  // namespace

int main(int argc, char** argv) {
  int iters = 0, only = 0;
  bool quick = false;
  for (int i = 1; i < argc; ++i) {
    const int c = common_option(argc, argv, i, g_json, iters);
    if (c < 0) return 2;
    if (c) continue;
    if (!std::strcmp(argv[i], "--quick")) quick = true;
    else if (!std::strcmp(argv[i], "--only") && i + 1 < argc) only = std::atoi(argv[++i]);
    else {
      std::fprintf(stderr, "usage: %s [--json FILE] [--quick] [--only M]\n", argv[0]);
      return 2;
    }
  }
  if (!open_lt_lab("lm_head_lab", kWsBytes, g_dev)) return 0;
  const cudaDeviceProp& prop = g_dev.prop;
  g_gpu = prop.name;
  g_sms = prop.multiProcessorCount;
  std::printf("lm_head_lab on %s (%d SMs)\n", prop.name, g_sms);
  if (only > 0) {
    run_shape<__half>("gpt2", only, 50257, 768, true);
  } else {
    // correctness at awkward sizes: rows past a tile, a vocabulary that is not a multiple of the tile, several tiles
    // per block
    run_shape<__half>("odd", 200, 997, 256, false);
    run_shape<__half>("odd", 3, 5000, 128, false);
    // GPT-2 124M: B1 x S128 (the persistent prefill), a decode prompt's last rows, B1 x S1024, B8 x S512
    run_shape<__half>("gpt2", 128, 50257, 768, true);
    run_shape<__half>("gpt2", 8, 50257, 768, true);
    if (!quick) {
      run_shape<__half>("gpt2", 1024, 50257, 768, true);
      run_shape<__half>("gpt2", 4096, 50257, 768, true);
    }
    run_shape<__nv_bfloat16>("gpt2", 128, 50257, 768, true);
  }
  return close_lt_lab(g_dev, g_json, g_failures);
}
