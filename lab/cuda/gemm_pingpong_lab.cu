// gemm_pingpong_lab: the per-layer products of a many-row prefill (GPT-2 124M at 4,096 rows: QKV, the attention
// projection, FC + GELU, the MLP projection; the two projections add into the 16-bit residual stream in place) on
// the LM head's ping-pong schedule with a store epilogue (gemm_pingpong_store.cuh), against cuBLASLt as the engine
// runs them (the heuristic's candidates, each timed cold, the fastest kept; BIAS / GELU_BIAS epilogues, beta = 1
// on C = D for the projections). After llm.c's dev/cuda: each version checked, then timed.
//
//   v0  cuBLASLt
//   v1  gemm_pingpong_store<T, 192, 4>   128 x 192 tiles a warpgroup, 4 ring slots (the LM head's v19 ring)
//   v2  gemm_pingpong_store<T, 128, 5>   128 x 128 tiles, 5 slots (more tiles: the N = 768 products fill the card)
//
// Why: the twentieth session's profile puts the four products at ~62 % of the B8 x S512 prefill, cuBLASLt's picks
// at ~510-590 TFLOP/s, while the same schedule runs the LM head (with its summary epilogue) at ~750.
// Measured on an H200 (docs/results/2026-11-29-session20/call5-pingpong-lab/, two runs alike; cold us, fp16):
// every check passed (the odd row counts 200 / 1,000 / 333 included). QKV v0 27.9, v1 27.8-28.0, v2 32.4;
// attention projection v0 14.3-14.4, v1 23.0-23.1, v2 20.8-21.1; FC + GELU v0 34.9, v1 38.4-38.5, v2 41.0; MLP
// projection v0 32.3-32.4, v1 41.1-41.3, v2 49.7-49.8 (bf16 FC: 34.3 / 38.1 / 40.9). Not faster anywhere: with 1-4
// tiles an SM (128 tiles for the N = 768 products: one warpgroup busy, ~470 TFLOP/s) the ramp into the first
// tile and the last tile's epilogue are not hidden as over the LM head's ~64 tiles an SM. Not in the engine.
// Checks: every version's output rows (a sample, and all rows of the small shapes) against a CPU reference in
// double from the same 16-bit operands (rel-norm and max error relative to the rows' largest value).
// Timing: "cold" = the median of 9 single calls after a write of twice the L2 (weights cold, as in a forward),
// "hot" = back to back. Usage: gemm_pingpong_lab [--json FILE] [--iters N]; exits non-zero if a check fails.
#include <cublasLt.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "gemm_pingpong_store.cuh"
#include "lab_common.cuh"
#include "lab_cublaslt.cuh"

namespace k = gptbench::cuda_engine::kernels;
using namespace lab;

namespace {

int g_failures = 0;
std::FILE* g_json = nullptr;
int g_sms = 132;
LtLabDevice g_dev;
constexpr std::size_t kWsBytes = 32u << 20;

struct Shape {
  const char* name;
  int M, N, K;
  bool gelu, residual;
};

template <typename T>
bool lt_call(const LtProduct& L, const cublasLtMatmulAlgo_t& algo, const T* W, const T* a, T* y, bool residual,
             cudaStream_t s) {
  static const float kOne = 1.f, kZero = 0.f;
  return cublasLtMatmul(g_dev.lt, L.desc, &kOne, W, L.la, a, L.lb, residual ? &kOne : &kZero, y, L.lc, y, L.lc, &algo,
                        g_dev.ws, kWsBytes, s) == CUBLAS_STATUS_SUCCESS;
}

template <typename T>
void run_shape(const Shape& sh, bool timed) {
  const int M = sh.M, N = sh.N, K = sh.K;
  Rng rng(777u + M + 3u * N + 5u * K);
  std::vector<T> ha(static_cast<std::size_t>(M) * K), hw(static_cast<std::size_t>(N) * K), hb(N),
      hy0(static_cast<std::size_t>(M) * N);
  for (auto& v : ha) v = h_from<T>(rng.uni());
  for (auto& v : hw) v = h_from<T>(rng.uni() * 0.06f);
  for (auto& v : hb) v = h_from<T>(rng.uni() * 0.2f);
  for (auto& v : hy0) v = h_from<T>(rng.uni());
  T *da, *dw, *db, *dy;
  CK(cudaMalloc(&da, ha.size() * sizeof(T)));
  CK(cudaMalloc(&dw, hw.size() * sizeof(T)));
  CK(cudaMalloc(&db, hb.size() * sizeof(T)));
  CK(cudaMalloc(&dy, hy0.size() * sizeof(T)));
  CK(cudaMemcpy(da, ha.data(), ha.size() * sizeof(T), cudaMemcpyHostToDevice));
  CK(cudaMemcpy(dw, hw.data(), hw.size() * sizeof(T), cudaMemcpyHostToDevice));
  CK(cudaMemcpy(db, hb.data(), hb.size() * sizeof(T), cudaMemcpyHostToDevice));
  CUtensorMap ma, mw192, mw128;
  if (!k::wgmma_tensor_map(&ma, da, M, K, 128) || !k::wgmma_tensor_map(&mw192, dw, N, K, 192) ||
      !k::wgmma_tensor_map(&mw128, dw, N, K, 128)) {
    std::printf("%s: tensor maps refused\n", sh.name);
    ++g_failures;
    return;
  }
  cudaStream_t stream;
  CK(cudaStreamCreate(&stream));
  LtProduct L = make_lt_product<T>(M, N, K, db, sh.gelu);
  L.ok = lt_fastest_cold(
      g_dev.lt, L.desc, L.la, L.lb, L.lc, kWsBytes, stream, g_dev.flush, g_dev.flush_bytes,
      [&](const cublasLtMatmulAlgo_t& al) { return lt_call<T>(L, al, dw, da, dy, sh.residual, stream); }, L.algo);
  if (!L.ok) {
    std::printf("%s: cuBLASLt found no algorithm\n", sh.name);
    ++g_failures;
    return;
  }
  k::PingPongStoreArgs<T> p;
  p.M = M, p.N = N, p.K = K, p.bias = db, p.y = dy;
  auto run = [&](int v) -> bool {
    switch (v) {
      case 0: return lt_call<T>(L, L.algo, dw, da, dy, sh.residual, stream);
#define PP(BN, ST, MAP)                                                                                              \
  (sh.gelu ? k::launch_gemm_pingpong_store<T, BN, ST, true, false>(ma, MAP, p, g_sms, stream)                       \
           : sh.residual ? k::launch_gemm_pingpong_store<T, BN, ST, false, true>(ma, MAP, p, g_sms, stream)         \
                         : k::launch_gemm_pingpong_store<T, BN, ST, false, false>(ma, MAP, p, g_sms, stream)) ==     \
      cudaSuccess
      case 1: return N % 192 == 0 && PP(192, 4, mw192);
      case 2: return N % 128 == 0 && PP(128, 5, mw128);
#undef PP
      default: return false;
    }
  };
  const char* names[] = {"cublaslt", "pingpong_bn192_s4", "pingpong_bn128_s5"};
  const std::vector<int> rows = checked_rows(M, 48);
  // The reference rows in double: act(a . W^T + bias) (+ y0).
  std::vector<double> ref(rows.size() * static_cast<std::size_t>(N));
  for (std::size_t ri = 0; ri < rows.size(); ++ri) {
    const int r = rows[ri];
    for (int n = 0; n < N; ++n) {
      double s = h_to<T>(hb[n]);
      for (int kk = 0; kk < K; ++kk)
        s += static_cast<double>(h_to<T>(ha[static_cast<std::size_t>(r) * K + kk])) * h_to<T>(hw[static_cast<std::size_t>(n) * K + kk]);
      if (sh.gelu) s = gelu_ref(s, true);
      if (sh.residual) s += h_to<T>(hy0[static_cast<std::size_t>(r) * N + n]);
      ref[ri * N + n] = s;
    }
  }
  const double tol = std::is_same_v<T, __half> ? 2e-3 : 1.5e-2;
  std::vector<T> got(static_cast<std::size_t>(M) * N);
  for (int v = 0; v < 3; ++v) {
    if (sh.residual) CK(cudaMemcpy(dy, hy0.data(), hy0.size() * sizeof(T), cudaMemcpyHostToDevice));
    else CK(cudaMemset(dy, 0xff, hy0.size() * sizeof(T)));  // NaN: an element left unwritten shows
    if (!run(v)) {
      std::printf("  v%d %-18s %-6s: not run on this shape\n", v, names[v], sh.name);
      (void)cudaGetLastError();
      continue;
    }
    CK(cudaStreamSynchronize(stream));
    CK(cudaGetLastError());
    CK(cudaMemcpy(got.data(), dy, got.size() * sizeof(T), cudaMemcpyDeviceToHost));
    double num = 0, den = 0, max_err = 0, max_ref = 0;
    for (std::size_t ri = 0; ri < rows.size(); ++ri)
      for (int n = 0; n < N; ++n) {
        const double g = h_to<T>(got[static_cast<std::size_t>(rows[ri]) * N + n]), e = ref[ri * N + n];
        const double d = std::isfinite(g) ? g - e : INFINITY;
        num += d * d, den += e * e;
        max_err = std::max(max_err, std::fabs(d));
        max_ref = std::max(max_ref, std::fabs(e));
      }
    const double rel = std::sqrt(num / den), rel_max = max_err / max_ref;
    const bool ok = rel <= tol && rel_max <= 4 * tol;
    if (!ok) ++g_failures;
    double cold = -1, hot = -1;
    if (timed) {
      const HotCold t = time_hot_cold(stream, g_dev.flush, g_dev.flush_bytes, [&] { run(v); }, 30, 9);
      cold = t.cold_us, hot = t.hot_us;
    }
    const double flop = 2.0 * M * N * K;
    std::printf("  v%d %-18s %-6s M %5d N %5d K %5d: rel-norm %.2e max %.2e %s", v, names[v], sh.name, M, N, K, rel,
                rel_max, ok ? "ok  " : "FAIL");
    if (timed)
      std::printf("  cold %7.2f us (%4.0f TFLOP/s)  hot %7.2f us", cold, flop / cold * 1e-6, hot);
    std::printf("\n");
    if (g_json)
      std::fprintf(g_json,
                   "{\"lab\": \"gemm_pingpong_lab\", \"version\": %d, \"name\": \"%s\", \"shape\": \"%s\", \"type\": "
                   "\"%s\", \"M\": %d, \"N\": %d, \"K\": %d, \"rel_norm\": %s, \"rel_max\": %s, \"ok\": %s, "
                   "\"cold_us\": %s, \"hot_us\": %s}\n",
                   v, names[v], sh.name, tname<T>(), M, N, K, json_number(rel).c_str(), json_number(rel_max).c_str(),
                   ok ? "true" : "false", json_number(cold).c_str(), json_number(hot).c_str());
  }
  destroy_lt_product(L);
  CK(cudaStreamDestroy(stream));
  cudaFree(da), cudaFree(dw), cudaFree(db), cudaFree(dy);
}

}  // namespace

int main(int argc, char** argv) {
  int iters = 0;
  for (int i = 1; i < argc; ++i) {
    const int used = common_option(argc, argv, i, g_json, iters);
    if (used < 0) return 2;
    if (used == 0) {
      std::fprintf(stderr, "usage: gemm_pingpong_lab [--json FILE] [--iters N]\n");
      return 2;
    }
  }
  if (!open_lt_lab("gemm_pingpong_lab", kWsBytes, g_dev)) return 0;
  g_sms = g_dev.prop.multiProcessorCount;
  std::printf("gemm_pingpong_lab on %s (%d SMs)\n", g_dev.prop.name, g_sms);
  // Odd row counts first (tails of the last row tile), checked only; then GPT-2 124M's four products at 4,096 rows.
  const Shape small[] = {{"qkv", 200, 2304, 768, false, false}, {"proj", 1000, 768, 768, false, true},
                         {"fc", 333, 3072, 768, true, false}};
  for (const Shape& s : small) run_shape<__half>(s, false);
  const Shape big[] = {{"qkv", 4096, 2304, 768, false, false}, {"proj", 4096, 768, 768, false, true},
                       {"fc", 4096, 3072, 768, true, false}, {"mproj", 4096, 768, 3072, false, true}};
  for (const Shape& s : big) run_shape<__half>(s, true);
  run_shape<__nv_bfloat16>(big[2], true);
  return close_lt_lab(g_dev, g_json, g_failures);
}
