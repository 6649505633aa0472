// Kernel lab for the decode-step matrix-vector kernels (src/backends/cuda/gemv.cuh), after llm.c's dev/cuda.
//
//   v0  cublasGemmEx fp16 TN (W [N][K] row-major = column-major [K][N], op T), bare product: no LayerNorm,
//       bias or epilogue (the unfused engine ran those as separate kernels; see the chain timing)
//   v1  launch_gemv (the engine's choice of configuration)
//   v2  1 column / warp, 4 chunks in flight / lane, 8 warps / block
//   v3  1 column / warp, 4 chunks, 4 warps
//   v4  2 columns / warp, 2 chunks each, 4 warps
//   v5  2 columns / warp, 2 chunks each, 8 warps
//   v6  4 columns / warp, 1 chunk each, 4 warps
//   v7  1 column / warp, 8 chunks, 4 warps
//
// Check: CPU reference in double from the same T-rounded inputs (LayerNorm prologue, bias, GELU, residual add,
// KV-cache scatter at pos = 3 of max_tokens = 7), for T = half, float, bfloat16 and rows 1, 2, 3, 4, 5, 8.
// Error = max |gpu - ref| / max |ref| over the written outputs; tolerances: T outputs half 4e-3 (fp16 rounding is
// 4.9e-4 of a value), bfloat16 1.6e-2 (3.9e-3), float 1e-3 (fast-math tanh / rsqrt); the float residual stream
// 1e-4. Every element that must not be written (rows >= rows, the padding columns of y, the rest of the cache,
// resid rows >= rows) must keep its sentinel exactly. Exit status 1 on any failure.
// Timing (T = half, rows 1, 2, 4, 8): a CUDA graph of --iters launches replayed 3 times after a warm-up; the
// weights rotate through >= 256 MB of copies so that every call reads them from HBM as a real decode step
// does (GPT-2 124M is 250 MB of fp16 weights, more than L2). Prints us / call and GB/s of weight bytes.
// Chain: one transformer layer's four products for rows 1 and 8 (weights rotating over >= 256 MB of layers):
// v0 = the unfused engine path (residual_layernorm, GEMM qkv, append_kv, GEMM proj, residual_layernorm,
// GEMM fc, gelu_inplace, GEMM mproj; no bias) vs the 4 fused kernels of each version.
//
// Int8 (W8A8, launch_gemv_int8: int8 weights with per-channel scales, input rows quantized with the calibrated
// activation scale, __dp4a): i1 = launch_gemv_int8's choice, i2..i8 fixed configurations (cols, chunks, warps:
// 1/2/4, 1/4/8, 2/2/4, 2/2/8, 4/1/4, 4/2/4, 4/2/8). Checked for rows 1, 2, 3, 4, 5, 8 against an exact int64
// reference (tolerance: see Case8; i1 also with the PDL launch), timed for rows 1, 2, 4, 8 with int8 weights
// rotating through >= 256 MB, each shape next to launch_gemv<half> on the same shape ("f16", x = fp16 us / int8
// us), then one layer's four products int8 vs fp16. JSON rows: T "int8" (fp16_us, speedup_vs_fp16), "f16cmp".
//
// Build: nvcc -std=c++20 -O3 --use_fast_math -lineinfo -arch=sm_90 -I src lab/cuda/gemv_lab.cu -o gemv_lab
//        -lcublasLt -lcublas
// Run:   ./gemv_lab [--iters N] [--json FILE] [--check-only] [--int8-only | --no-int8]
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <type_traits>
#include <vector>

#include "backends/cuda/gemv.cuh"
#include "backends/cuda/kernels.cuh"
#include "lab_common.cuh"

using namespace gptbench::cuda_engine::kernels;
using namespace lab;

namespace {

template <typename T>
__global__ void fill_hash(T* p, std::size_t n, std::uint32_t seed) {
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
    std::uint32_t h = static_cast<std::uint32_t>(i) * 2654435761u ^ seed ^ static_cast<std::uint32_t>(i >> 32);
    h ^= h >> 15;
    h *= 2246822519u;
    h ^= h >> 13;
    p[i] = from_f<T>((static_cast<float>(h >> 8) * (1.f / 16777216.f) - 0.5f) * 0.06f);
  }
}

template <typename T>
T* dev_upload(const std::vector<T>& h) {
  T* d = nullptr;
  CK(cudaMalloc(&d, std::max<std::size_t>(h.size(), 1) * sizeof(T)));
  if (!h.empty()) CK(cudaMemcpy(d, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice));
  return d;
}
template <typename T>
std::vector<T> dev_download(const T* d, std::size_t n) {
  std::vector<T> h(n);
  CK(cudaMemcpy(h.data(), d, n * sizeof(T), cudaMemcpyDeviceToHost));
  return h;
}

struct Shape {
  const char* name;
  int K, N;
  GemvIn in;
  GemvOut out;
  bool bias;
  bool timed;
};
const Shape kShapes[] = {
    {"qkv", 768, 2304, GemvIn::kLayerNorm, GemvOut::kStoreKV, true, true},
    {"proj", 768, 768, GemvIn::kPlain, GemvOut::kResidualAdd, true, true},
    {"fc", 768, 3072, GemvIn::kLayerNorm, GemvOut::kGeluTanh, true, true},
    {"mproj", 3072, 768, GemvIn::kPlain, GemvOut::kResidualAdd, true, true},
    {"lm_head", 768, 50304, GemvIn::kLayerNorm, GemvOut::kStore, false, true},
    {"fc_erf", 768, 3072, GemvIn::kLayerNorm, GemvOut::kGeluErf, true, false},   // check only
    {"qkv_odd", 520, 1560, GemvIn::kLayerNorm, GemvOut::kStoreKV, true, false},  // K/8 not a multiple of 32
    {"plain_st", 1024, 1001, GemvIn::kPlain, GemvOut::kStore, false, false},    // odd N, plain + store
};
constexpr int kMaxTokens = 7, kPos = 3;
constexpr float kSentinel = -7.25f;

template <typename T>
using LaunchFn = void (*)(const GemvArgs&, GemvIn, GemvOut, int, cudaStream_t);
struct Variant {
  const char* name;
  int cols, chunks, warps;  // cols 0: launch_gemv
};
const Variant kVariants[] = {{"v1", 0, 0, 0}, {"v2", 1, 4, 8}, {"v3", 1, 4, 4}, {"v4", 2, 2, 4},
                             {"v5", 2, 2, 8}, {"v6", 4, 1, 4}, {"v7", 1, 8, 4}};
constexpr int kNumVariants = sizeof(kVariants) / sizeof(kVariants[0]);

template <typename T>
void launch_variant(int v, const GemvArgs& a, GemvIn in, GemvOut out, cudaStream_t s) {
  const Variant& var = kVariants[v];
  if (var.cols == 0) return launch_gemv<T>(a, in, out, s);
  if (var.cols == 1 && var.chunks == 4) return launch_gemv_config<T, 1, 4>(a, in, out, var.warps, s);
  if (var.cols == 2 && var.chunks == 2) return launch_gemv_config<T, 2, 2>(a, in, out, var.warps, s);
  if (var.cols == 4 && var.chunks == 1) return launch_gemv_config<T, 4, 1>(a, in, out, var.warps, s);
  if (var.cols == 1 && var.chunks == 8) return launch_gemv_config<T, 1, 8>(a, in, out, var.warps, s);
  std::fprintf(stderr, "no such variant\n");
  std::exit(2);
}

// ---- globals ---------------------------------------------------------------------------------------------------
cudaStream_t g_stream;
cublasHandle_t g_cublas;
std::string g_gpu;
FILE* g_json = nullptr;
int g_iters = 200;
bool g_check_only = false;
bool g_int8 = true, g_float_types = true;  // --int8-only / --no-int8
int g_failures = 0;
constexpr std::size_t kRotateBytes = 256ull << 20;

void json_line(const std::string& body) {
  if (!g_json) return;
  std::fprintf(g_json, "{\"lab\":\"gemv\",\"gpu\":\"%s\",%s}\n", g_gpu.c_str(), body.c_str());
  std::fflush(g_json);
}

// Time `launch(it)` for it = 0..iters-1 inside one CUDA graph; returns microseconds per iteration.
double time_graph(const std::function<void(int)>& launch, int iters) {
  cudaGraph_t graph;
  cudaGraphExec_t exec;
  CK(cudaStreamBeginCapture(g_stream, cudaStreamCaptureModeThreadLocal));
  for (int it = 0; it < iters; ++it) launch(it);
  CK(cudaStreamEndCapture(g_stream, &graph));
  CK(cudaGraphInstantiate(&exec, graph, 0));
  CK(cudaGraphLaunch(exec, g_stream));  // warm-up
  CK(cudaStreamSynchronize(g_stream));
  cudaEvent_t e0, e1;
  CK(cudaEventCreate(&e0));
  CK(cudaEventCreate(&e1));
  constexpr int kReps = 3;
  CK(cudaEventRecord(e0, g_stream));
  for (int r = 0; r < kReps; ++r) CK(cudaGraphLaunch(exec, g_stream));
  CK(cudaEventRecord(e1, g_stream));
  CK(cudaEventSynchronize(e1));
  float ms = 0;
  CK(cudaEventElapsedTime(&ms, e0, e1));
  CK(cudaGetLastError());
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  return 1000.0 * ms / (kReps * iters);
}

void gemm_tn(const __half* W, const __half* x, __half* y, int rows, int K, int N) {
  const float alpha = 1.f, beta = 0.f;
  CB(cublasGemmEx(g_cublas, CUBLAS_OP_T, CUBLAS_OP_N, N, rows, K, &alpha, W, CUDA_R_16F, K, x, CUDA_R_16F, K, &beta, y,
                  CUDA_R_16F, N, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

// One (shape, rows, T) case: host inputs, device buffers, reference.
template <typename T>
struct Case {
  Shape sh;
  int rows, ldy, C = 0;
  std::vector<float> Wf, biasf, x, lnw, lnb, actf, resid0;  // T-rounded where T
  std::vector<double> acc;                                  // [rows][N] incl. bias
  std::vector<double> plain;                                // act . W^T (for v0), kPlain only
  T *dW = nullptr, *dbias = nullptr, *dact = nullptr, *dy = nullptr, *dcache = nullptr;
  float *dx = nullptr, *dlnw = nullptr, *dlnb = nullptr, *dresid = nullptr;
  int* dpos = nullptr;
  std::size_t ysize = 0, csize = 0;

  Case(const Shape& s, int r) : sh(s), rows(r) {
    const int K = sh.K, N = sh.N;
    ldy = (sh.out == GemvOut::kStoreKV) ? N : N + 8;  // padded y rows exercise ldy != N
    if (sh.out == GemvOut::kStoreKV) C = N / 3;
    Rng rng(static_cast<std::uint64_t>(K) * 131 + N * 7 + r);
    const float ws = 1.f / std::sqrt(static_cast<float>(K));
    Wf.resize(static_cast<std::size_t>(N) * K);
    for (auto& v : Wf) v = h_round<T>(rng.uni() * ws * 1.7f);
    biasf.assign(N, 0.f);
    if (sh.bias)
      for (auto& v : biasf) v = h_round<T>(rng.uni() * 0.2f);
    x.resize(static_cast<std::size_t>(8) * K);
    for (int rr = 0; rr < 8; ++rr)
      for (int k = 0; k < K; ++k) x[static_cast<std::size_t>(rr) * K + k] = 0.3f * rr - 1.f + 2.f * rng.uni();
    lnw.resize(K);
    lnb.resize(K);
    for (int k = 0; k < K; ++k) {
      lnw[k] = 1.f + 0.2f * rng.uni();
      lnb[k] = 0.1f * rng.uni();
    }
    actf.resize(static_cast<std::size_t>(8) * K);
    for (auto& v : actf) v = h_round<T>(rng.uni());
    resid0.resize(static_cast<std::size_t>(8) * N);
    for (auto& v : resid0) v = 2.f * rng.uni();

    // reference
    std::vector<double> in(static_cast<std::size_t>(rows) * K);
    for (int rr = 0; rr < rows; ++rr) {
      if (sh.in == GemvIn::kLayerNorm) {
        layernorm_ref(&x[static_cast<std::size_t>(rr) * K], K, lnw.data(), lnb.data(), &in[static_cast<std::size_t>(rr) * K]);
      } else {
        for (int k = 0; k < K; ++k)
          in[static_cast<std::size_t>(rr) * K + k] = actf[static_cast<std::size_t>(rr) * K + k];
      }
    }
    acc.assign(static_cast<std::size_t>(rows) * N, 0.0);
    for (int n = 0; n < N; ++n) {
      const float* w = &Wf[static_cast<std::size_t>(n) * K];
      for (int rr = 0; rr < rows; ++rr) {
        const double* ir = &in[static_cast<std::size_t>(rr) * K];
        double s = 0;
        for (int k = 0; k < K; ++k) s += static_cast<double>(w[k]) * ir[k];
        acc[static_cast<std::size_t>(rr) * N + n] = s + biasf[n];
      }
    }
    if (sh.in == GemvIn::kPlain) {
      plain.assign(static_cast<std::size_t>(rows) * N, 0.0);
      for (std::size_t i = 0; i < plain.size(); ++i) plain[i] = acc[i] - biasf[i % N];
    }

    // device
    std::vector<T> tmp(Wf.size());
    for (std::size_t i = 0; i < Wf.size(); ++i) tmp[i] = h_from<T>(Wf[i]);
    dW = dev_upload(tmp);
    tmp.resize(N);
    for (int n = 0; n < N; ++n) tmp[n] = h_from<T>(biasf[n]);
    dbias = dev_upload(tmp);
    tmp.resize(actf.size());
    for (std::size_t i = 0; i < actf.size(); ++i) tmp[i] = h_from<T>(actf[i]);
    dact = dev_upload(tmp);
    dx = dev_upload(x);
    dlnw = dev_upload(lnw);
    dlnb = dev_upload(lnb);
    dresid = dev_upload(resid0);
    dpos = dev_upload(std::vector<int>{kPos});
    ysize = static_cast<std::size_t>(8) * ldy;
    CK(cudaMalloc(&dy, ysize * sizeof(T)));
    csize = C ? static_cast<std::size_t>(8) * kMaxTokens * 2 * C : 1;
    CK(cudaMalloc(&dcache, csize * sizeof(T)));
  }
  ~Case() {
    cudaFree(dW);
    cudaFree(dbias);
    cudaFree(dact);
    cudaFree(dx);
    cudaFree(dlnw);
    cudaFree(dlnb);
    cudaFree(dresid);
    cudaFree(dpos);
    cudaFree(dy);
    cudaFree(dcache);
  }
  void reset_outputs() {
    std::vector<T> s(std::max(ysize, csize), h_from<T>(kSentinel));
    CK(cudaMemcpy(dy, s.data(), ysize * sizeof(T), cudaMemcpyHostToDevice));
    CK(cudaMemcpy(dcache, s.data(), csize * sizeof(T), cudaMemcpyHostToDevice));
    CK(cudaMemcpy(dresid, resid0.data(), resid0.size() * sizeof(float), cudaMemcpyHostToDevice));
  }
  GemvArgs args(const T* W) const {
    GemvArgs a{};
    a.rows = rows;
    a.K = sh.K;
    a.N = sh.N;
    a.W = W;
    a.bias = sh.bias ? dbias : nullptr;
    a.x = dx;
    a.ln_w = dlnw;
    a.ln_b = dlnb;
    a.eps = 1e-5f;
    a.act = dact;
    a.y = dy;
    a.ldy = ldy;
    a.resid = dresid;
    a.kv_cache = dcache;
    a.max_tokens = kMaxTokens;
    a.pos = dpos;
    return a;
  }
};

struct ErrStat {
  double max_abs = 0, max_ref = 0;
  long long bad_untouched = 0, nonfinite = 0;
  void add(double got, double ref) {
    if (!std::isfinite(got)) ++nonfinite;
    max_abs = std::max(max_abs, std::fabs(got - ref));
    max_ref = std::max(max_ref, std::fabs(ref));
  }
  double rel() const { return max_abs / std::max(max_ref, 1e-30); }
};

// Compares the device outputs of a gemv launch with the reference; returns the relative error (or +inf).
template <typename T>
double check_gemv(Case<T>& c, double tol_t, bool* ok) {
  const int N = c.sh.N, rows = c.rows;
  ErrStat st;
  double tol = tol_t;
  if (c.sh.out == GemvOut::kResidualAdd) {
    tol = 1e-4;
    auto r = dev_download(c.dresid, c.resid0.size());
    for (int rr = 0; rr < 8; ++rr)
      for (int n = 0; n < N; ++n) {
        const std::size_t i = static_cast<std::size_t>(rr) * N + n;
        if (rr < rows) st.add(r[i], c.resid0[i] + c.acc[i]);
        else if (r[i] != c.resid0[i]) ++st.bad_untouched;
      }
    auto y = dev_download(c.dy, c.ysize);  // untouched
    for (auto v : y)
      if (h_to<T>(v) != kSentinel) ++st.bad_untouched;
  } else {
    const bool gelu = c.sh.out == GemvOut::kGeluTanh || c.sh.out == GemvOut::kGeluErf;
    auto y = dev_download(c.dy, c.ysize);
    for (int rr = 0; rr < 8; ++rr)
      for (int j = 0; j < c.ldy; ++j) {
        const float got = h_to<T>(y[static_cast<std::size_t>(rr) * c.ldy + j]);
        if (rr < rows && j < N) {
          double ref = c.acc[static_cast<std::size_t>(rr) * N + j];
          if (gelu) ref = gelu_ref(ref, c.sh.out == GemvOut::kGeluTanh);
          st.add(got, ref);
        } else if (got != kSentinel) {
          ++st.bad_untouched;
        }
      }
    if (c.sh.out == GemvOut::kStoreKV) {
      const int C = c.C;
      auto cache = dev_download(c.dcache, c.csize);
      for (int b = 0; b < 8; ++b)
        for (int t = 0; t < kMaxTokens; ++t)
          for (int j = 0; j < 2 * C; ++j) {
            const float got = h_to<T>(cache[(static_cast<std::size_t>(b) * kMaxTokens + t) * 2 * C + j]);
            if (b < rows && t == kPos) st.add(got, c.acc[static_cast<std::size_t>(b) * N + C + j]);
            else if (got != kSentinel) ++st.bad_untouched;
          }
    }
    auto r = dev_download(c.dresid, c.resid0.size());  // untouched
    for (std::size_t i = 0; i < r.size(); ++i)
      if (r[i] != c.resid0[i]) ++st.bad_untouched;
  }
  const double rel = st.rel();
  *ok = st.bad_untouched == 0 && st.nonfinite == 0 && rel <= tol;
  if (!*ok)
    std::printf("    FAIL: rel err %.3e (tol %.1e), %lld untouched elements overwritten, %lld non-finite\n", rel, tol,
                st.bad_untouched, st.nonfinite);
  return rel;
}

template <typename T>
void run_type(double tol_t, bool timed) {
  std::printf("\n=== T = %s (tolerance %.1e on T outputs, 1e-4 on the float residual) ===\n", tname<T>(), tol_t);
  for (const Shape& sh : kShapes) {
    for (int rows : {1, 2, 3, 4, 5, 8}) {
      Case<T> c(sh, rows);
      const double wbytes = static_cast<double>(sh.N) * sh.K * sizeof(T);
      const bool time_it = timed && sh.timed && !g_check_only && (rows == 1 || rows == 2 || rows == 4 || rows == 8);
      // Weight pool for timing: copies rotating through >= kRotateBytes.
      T* pool = nullptr;
      int ncopy = 0;
      if (time_it) {
        ncopy = static_cast<int>(std::max<double>(2.0, std::ceil(kRotateBytes / wbytes)));
        CK(cudaMalloc(&pool, static_cast<std::size_t>(ncopy) * sh.N * sh.K * sizeof(T)));
        fill_hash<T><<<1024, 256, 0, g_stream>>>(pool, static_cast<std::size_t>(ncopy) * sh.N * sh.K, 1234u + rows);
        CK(cudaGetLastError());
        CK(cudaStreamSynchronize(g_stream));
      }
      auto pool_w = [&](int it) { return pool + static_cast<std::size_t>(it % ncopy) * sh.N * sh.K; };

      // v0: cuBLAS (half only)
      if constexpr (std::is_same_v<T, __half>) {
        double rel = -1;
        bool ok = true;
        CK(cudaMemset(c.dy, 0, c.ysize * sizeof(T)));
        gemm_tn(c.dW, c.dact, c.dy, rows, sh.K, sh.N);
        CK(cudaStreamSynchronize(g_stream));
        if (sh.in == GemvIn::kPlain) {
          auto y = dev_download(c.dy, static_cast<std::size_t>(rows) * sh.N);
          ErrStat st;
          for (std::size_t i = 0; i < y.size(); ++i) st.add(h_to<T>(y[i]), c.plain[i]);
          rel = st.rel();
          ok = rel <= tol_t;
          if (!ok) std::printf("    FAIL v0: rel err %.3e\n", rel);
          if (!ok) ++g_failures;
        }
        if (time_it) {
          const double us = time_graph(
              [&](int it) { gemm_tn(pool_w(it), c.dact, c.dy, rows, sh.K, sh.N); }, g_iters);
          std::printf("v0  %-8s T=%-5s rows=%d K=%5d N=%5d  %8.2f us  %7.1f GB/s  err %.2e%s\n", sh.name, tname<T>(),
                      rows, sh.K, sh.N, us, wbytes / us * 1e-3, rel, ok ? "" : "  FAIL");
          char buf[512];
          std::snprintf(buf, sizeof buf,
                        "\"version\":\"v0\",\"shape\":\"%s\",\"T\":\"%s\",\"rows\":%d,\"K\":%d,\"N\":%d,\"us\":%.3f,"
                        "\"gbps\":%.1f,\"max_rel_err\":%.3e,\"ok\":%s",
                        sh.name, tname<T>(), rows, sh.K, sh.N, us, wbytes / us * 1e-3, rel, ok ? "true" : "false");
          json_line(buf);
        }
      }

      for (int v = 0; v < kNumVariants; ++v) {
        c.reset_outputs();
        launch_variant<T>(v, c.args(c.dW), sh.in, sh.out, g_stream);
        CK(cudaGetLastError());
        CK(cudaStreamSynchronize(g_stream));
        bool ok = false;
        const double rel = check_gemv(c, tol_t, &ok);
        if (!ok) {
          ++g_failures;
          std::printf("    ^ %s %s T=%s rows=%d K=%d N=%d\n", kVariants[v].name, sh.name, tname<T>(), rows, sh.K, sh.N);
        }
        if (time_it) {
          const double us = time_graph(
              [&](int it) { launch_variant<T>(v, c.args(pool_w(it)), sh.in, sh.out, g_stream); }, g_iters);
          std::printf("%-3s %-8s T=%-5s rows=%d K=%5d N=%5d  %8.2f us  %7.1f GB/s  err %.2e%s\n", kVariants[v].name,
                      sh.name, tname<T>(), rows, sh.K, sh.N, us, wbytes / us * 1e-3, rel, ok ? "" : "  FAIL");
          char buf[512];
          std::snprintf(buf, sizeof buf,
                        "\"version\":\"%s\",\"shape\":\"%s\",\"T\":\"%s\",\"rows\":%d,\"K\":%d,\"N\":%d,\"us\":%.3f,"
                        "\"gbps\":%.1f,\"max_rel_err\":%.3e,\"ok\":%s",
                        kVariants[v].name, sh.name, tname<T>(), rows, sh.K, sh.N, us, wbytes / us * 1e-3, rel,
                        ok ? "true" : "false");
          json_line(buf);
        } else {
          std::printf("%-3s %-8s T=%-5s rows=%d K=%5d N=%5d  check err %.2e %s\n", kVariants[v].name, sh.name,
                      tname<T>(), rows, sh.K, sh.N, rel, ok ? "ok" : "FAIL");
        }
      }
      if (pool) CK(cudaFree(pool));
    }
  }
}

// ---- one layer's decode chain (T = half) ----------------------------------------------------------------------
void run_chain() {
  using T = __half;
  constexpr int C = 768, I = 3072;
  const std::size_t n_qkv = 3ull * C * C, n_proj = 1ull * C * C, n_fc = 1ull * I * C, n_mproj = 1ull * C * I;
  const std::size_t per_layer = n_qkv + n_proj + n_fc + n_mproj + 3 * C + C + I + C;  // weights + biases
  const double wbytes = static_cast<double>(n_qkv + n_proj + n_fc + n_mproj) * sizeof(T);
  const int nl = static_cast<int>(std::ceil(kRotateBytes / wbytes));
  T* pool = nullptr;
  CK(cudaMalloc(&pool, per_layer * nl * sizeof(T)));
  fill_hash<T><<<1024, 256, 0, g_stream>>>(pool, per_layer * nl, 99u);
  CK(cudaGetLastError());
  struct L {
    const T *qkv, *proj, *fc, *mproj, *bqkv, *bproj, *bfc, *bmproj;
  };
  auto layer = [&](int it) {
    const T* p = pool + static_cast<std::size_t>(it % nl) * per_layer;
    L l;
    l.qkv = p;
    l.proj = l.qkv + n_qkv;
    l.fc = l.proj + n_proj;
    l.mproj = l.fc + n_fc;
    l.bqkv = l.mproj + n_mproj;
    l.bproj = l.bqkv + 3 * C;
    l.bfc = l.bproj + C;
    l.bmproj = l.bfc + I;
    return l;
  };
  std::vector<float> ones(C, 1.f), zeros(C, 0.f), xh(8 * C);
  Rng rng(7);
  for (auto& v : xh) v = rng.uni();
  float* x = dev_upload(xh);
  float* lnw = dev_upload(ones);
  float* lnb = dev_upload(zeros);
  T *a_ln, *qkv, *att, *pbuf, *fc, *mbuf, *cache;
  CK(cudaMalloc(&a_ln, 8 * C * sizeof(T)));
  CK(cudaMalloc(&qkv, 8 * 3 * C * sizeof(T)));
  CK(cudaMalloc(&att, 8 * C * sizeof(T)));
  CK(cudaMalloc(&pbuf, 8 * C * sizeof(T)));
  CK(cudaMalloc(&fc, 8 * I * sizeof(T)));
  CK(cudaMalloc(&mbuf, 8 * C * sizeof(T)));
  constexpr int kMt = 64;
  CK(cudaMalloc(&cache, 8ull * kMt * 2 * C * sizeof(T)));
  fill_hash<T><<<64, 256, 0, g_stream>>>(att, 8 * C, 5u);
  CK(cudaMemset(mbuf, 0, 8 * C * sizeof(T)));
  int* pos = dev_upload(std::vector<int>{10});
  CK(cudaStreamSynchronize(g_stream));
  std::printf("\n=== one layer's decode chain, T = half, weights %.2f MB / layer rotating over %d layers ===\n",
              wbytes / 1e6, nl);
  for (int rows : {1, 8}) {
    auto report = [&](const char* name, double us) {
      std::printf("%-3s chain    T=half  rows=%d  %8.2f us / layer  %7.1f GB/s  (x12 layers: %.1f us)\n", name, rows,
                  us, wbytes / us * 1e-3, 12 * us);
      char buf[256];
      std::snprintf(buf, sizeof buf,
                    "\"version\":\"%s\",\"shape\":\"layer_chain\",\"T\":\"half\",\"rows\":%d,\"us\":%.3f,\"gbps\":%.1f",
                    name, rows, us, wbytes / us * 1e-3);
      json_line(buf);
    };
    const double us0 = time_graph(
        [&](int it) {
          const L l = layer(it);
          residual_layernorm<T><<<(rows + 3) / 4, 128, 0, g_stream>>>(x, mbuf, lnw, lnb, a_ln, rows, C, 1e-5f);
          gemm_tn(l.qkv, a_ln, qkv, rows, C, 3 * C);
          append_kv<T><<<rows, 256, 0, g_stream>>>(qkv, cache, 1, C, kMt, pos);
          gemm_tn(l.proj, att, pbuf, rows, C, C);
          residual_layernorm<T><<<(rows + 3) / 4, 128, 0, g_stream>>>(x, pbuf, lnw, lnb, a_ln, rows, C, 1e-5f);
          gemm_tn(l.fc, a_ln, fc, rows, C, I);
          gelu_inplace<T, true><<<(rows * I + 255) / 256, 256, 0, g_stream>>>(fc, static_cast<std::int64_t>(rows) * I);
          gemm_tn(l.mproj, fc, mbuf, rows, I, C);
        },
        g_iters);
    report("v0", us0);
    for (int v = 0; v < kNumVariants; ++v) {
      const double us = time_graph(
          [&](int it) {
            const L l = layer(it);
            GemvArgs a{};
            a.rows = rows;
            a.x = x;
            a.ln_w = lnw;
            a.ln_b = lnb;
            a.eps = 1e-5f;
            a.kv_cache = cache;
            a.max_tokens = kMt;
            a.pos = pos;
            a.K = C;
            a.N = 3 * C;
            a.W = l.qkv;
            a.bias = l.bqkv;
            a.y = qkv;
            a.ldy = 3 * C;
            launch_variant<T>(v, a, GemvIn::kLayerNorm, GemvOut::kStoreKV, g_stream);
            a.N = C;
            a.W = l.proj;
            a.bias = l.bproj;
            a.act = att;
            a.resid = x;
            launch_variant<T>(v, a, GemvIn::kPlain, GemvOut::kResidualAdd, g_stream);
            a.N = I;
            a.W = l.fc;
            a.bias = l.bfc;
            a.y = fc;
            a.ldy = I;
            a.resid = nullptr;
            launch_variant<T>(v, a, GemvIn::kLayerNorm, GemvOut::kGeluTanh, g_stream);
            a.K = I;
            a.N = C;
            a.W = l.mproj;
            a.bias = l.bmproj;
            a.act = fc;
            a.resid = x;
            launch_variant<T>(v, a, GemvIn::kPlain, GemvOut::kResidualAdd, g_stream);
          },
          g_iters);
      report(kVariants[v].name, us);
    }
  }
  for (void* p : std::initializer_list<void*>{pool, x, lnw, lnb, a_ln, qkv, att, pbuf, fc, mbuf, cache, pos})
    cudaFree(p);
}

// ---- int8 (W8A8, launch_gemv_int8) -----------------------------------------------------------------------------
struct Variant8 {
  const char* name;
  int cols, chunks, warps;  // cols 0: launch_gemv_int8
};
const Variant8 kVariants8[] = {{"i1", 0, 0, 0}, {"i2", 1, 2, 4}, {"i3", 1, 4, 8}, {"i4", 2, 2, 4},
                               {"i5", 2, 2, 8}, {"i6", 4, 1, 4}, {"i7", 4, 2, 4}, {"i8", 4, 2, 8}};
constexpr int kNumVariants8 = sizeof(kVariants8) / sizeof(kVariants8[0]);

void launch_variant8(int v, const GemvInt8Args& a, GemvIn in, GemvOut out, cudaStream_t s) {
  const Variant8& var = kVariants8[v];
  if (var.cols == 0) return launch_gemv_int8(a, in, out, s);
  if (var.cols == 1 && var.chunks == 2) return launch_gemv_int8_config<1, 2>(a, in, out, var.warps, s);
  if (var.cols == 1 && var.chunks == 4) return launch_gemv_int8_config<1, 4>(a, in, out, var.warps, s);
  if (var.cols == 2 && var.chunks == 2) return launch_gemv_int8_config<2, 2>(a, in, out, var.warps, s);
  if (var.cols == 4 && var.chunks == 1) return launch_gemv_int8_config<4, 1>(a, in, out, var.warps, s);
  if (var.cols == 4 && var.chunks == 2) return launch_gemv_int8_config<4, 2>(a, in, out, var.warps, s);
  std::fprintf(stderr, "no such int8 variant\n");
  std::exit(2);
}

// K % 16 == 0 for int8: qkv_odd (K = 520) is replaced by K = 528 (33 chunks of 16: K/16 not a multiple of 32).
const Shape kShapes8[] = {
    {"qkv", 768, 2304, GemvIn::kLayerNorm, GemvOut::kStoreKV, true, true},
    {"proj", 768, 768, GemvIn::kPlain, GemvOut::kResidualAdd, true, true},
    {"fc", 768, 3072, GemvIn::kLayerNorm, GemvOut::kGeluTanh, true, true},
    {"mproj", 3072, 768, GemvIn::kPlain, GemvOut::kResidualAdd, true, true},
    {"lm_head", 768, 50304, GemvIn::kLayerNorm, GemvOut::kStore, false, true},
    {"fc_erf", 768, 3072, GemvIn::kLayerNorm, GemvOut::kGeluErf, true, false},
    {"qkv_odd", 528, 1584, GemvIn::kLayerNorm, GemvOut::kStoreKV, true, false},
    {"plain_st", 1024, 1001, GemvIn::kPlain, GemvOut::kStore, false, false},
};

__global__ void fill_hash_i8(std::int8_t* p, std::size_t n, std::uint32_t seed) {
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
    std::uint32_t h = static_cast<std::uint32_t>(i) * 2654435761u ^ seed ^ static_cast<std::uint32_t>(i >> 32);
    h ^= h >> 15;
    h *= 2246822519u;
    h ^= h >> 13;
    p[i] = static_cast<std::int8_t>(static_cast<int>(h % 255u) - 127);
  }
}

// One int8 case. Reference: the input rows in double (LayerNorm in double, or the half activations), s_x =
// 0.9 max |input| / 127 rounded to float (so the largest inputs clamp), q_x = clamp(rint(in * inv), -127, 127)
// with inv = 1.f / s_x (float, as the launcher), acc exact in int64, pre = s_x w_scale[n] acc + bias in double.
// The kernel's float LayerNorm (fast-math rsqrt and division) cannot be emulated bit for bit, so an input whose
// t = in * inv lies within w (|t| + 1) of a rounding tie (w = 2e-4 after LayerNorm, above the worst-case float LN
// error in t; 1e-6 for half activations, where t is only rounded to float) may round either way: it is marked
// ambiguous and each output gets the bound s_x w_scale[n] sum_{ambiguous k} |q_w[n][k]| on its
// pre-activation (a flip moves q_x by 1). Per output: |got - ref| <= lip bound + 2e-3 |ref| (+ 1e-3 |pre| for
// GELU, fast-math tanh) + 1e-4 max |ref| for __half outputs; bound + 2e-5 max |ref| for the float residual
// (lip = 1.13 for GELU, its largest slope, else 1).
struct Case8 {
  Shape sh;
  int rows, ldy, C = 0;
  std::vector<std::int8_t> qw;
  std::vector<float> wscale, biasf, x, lnw, lnb, actf, resid0;
  float sx = 0.f;
  std::vector<double> pre, bound;  // [rows][N]
  long long ambiguous = 0, clamped = 0;
  std::int8_t* dW = nullptr;
  float *dws = nullptr, *dx = nullptr, *dlnw = nullptr, *dlnb = nullptr, *dresid = nullptr;
  __half *dbias = nullptr, *dact = nullptr, *dy = nullptr, *dcache = nullptr;
  int* dpos = nullptr;
  std::size_t ysize = 0, csize = 0;

  Case8(const Shape& s, int r) : sh(s), rows(r) {
    const int K = sh.K, N = sh.N;
    ldy = (sh.out == GemvOut::kStoreKV) ? N : N + 8;
    if (sh.out == GemvOut::kStoreKV) C = N / 3;
    Rng rng(static_cast<std::uint64_t>(K) * 977 + N * 13 + r);
    qw.resize(static_cast<std::size_t>(N) * K);
    for (auto& v : qw) v = static_cast<std::int8_t>(std::lround(rng.uni() * 127.f));
    wscale.resize(N);
    for (auto& v : wscale) v = (0.75f + 0.25f * rng.uni()) * 1.7f / (std::sqrt(static_cast<float>(K)) * 127.f);
    biasf.assign(N, 0.f);
    if (sh.bias)
      for (auto& v : biasf) v = h_round<__half>(rng.uni() * 0.2f);
    x.resize(static_cast<std::size_t>(8) * K);
    for (int rr = 0; rr < 8; ++rr)
      for (int k = 0; k < K; ++k) x[static_cast<std::size_t>(rr) * K + k] = 0.3f * rr - 1.f + 2.f * rng.uni();
    lnw.resize(K);
    lnb.resize(K);
    for (int k = 0; k < K; ++k) {
      lnw[k] = 1.f + 0.2f * rng.uni();
      lnb[k] = 0.1f * rng.uni();
    }
    actf.resize(static_cast<std::size_t>(8) * K);
    for (auto& v : actf) v = h_round<__half>(rng.uni());
    resid0.resize(static_cast<std::size_t>(8) * N);
    for (auto& v : resid0) v = 2.f * rng.uni();

    // reference
    std::vector<double> in(static_cast<std::size_t>(rows) * K);
    double maxin = 0;
    for (int rr = 0; rr < rows; ++rr) {
      double* ir = &in[static_cast<std::size_t>(rr) * K];
      if (sh.in == GemvIn::kLayerNorm) {
        const float* xr = &x[static_cast<std::size_t>(rr) * K];
        double mean = 0, var = 0;
        for (int k = 0; k < K; ++k) mean += xr[k];
        mean /= K;
        for (int k = 0; k < K; ++k) var += (xr[k] - mean) * (xr[k] - mean);
        var /= K;
        const double rstd = 1.0 / std::sqrt(var + 1e-5);
        for (int k = 0; k < K; ++k) ir[k] = (xr[k] - mean) * rstd * lnw[k] + lnb[k];
      } else {
        for (int k = 0; k < K; ++k) ir[k] = actf[static_cast<std::size_t>(rr) * K + k];
      }
      for (int k = 0; k < K; ++k) maxin = std::max(maxin, std::fabs(ir[k]));
    }
    sx = static_cast<float>(0.9 * maxin / 127.0);
    const float inv = 1.f / sx;
    std::vector<std::int8_t> q(in.size());
    std::vector<std::uint8_t> amb(in.size(), 0);
    // LayerNorm: the float mean / variance / rsqrt errors reach ~1e-6 |t| + ~1e-4 (worst case, mean error times
    // rstd times inv); half activations: t is exact in double, the kernel rounds it to float once (6e-8 |t|).
    const double tie_window = sh.in == GemvIn::kLayerNorm ? 2e-4 : 1e-6;
    auto clampq = [](double v) { return std::min(127.0, std::max(-127.0, v)); };
    for (std::size_t i = 0; i < in.size(); ++i) {
      const double t = in[i] * static_cast<double>(inv);
      q[i] = static_cast<std::int8_t>(clampq(std::nearbyint(t)));  // round half to even, as rintf
      const double fl = std::floor(t);
      if (std::fabs(t - fl - 0.5) < tie_window * (std::fabs(t) + 1.0) && clampq(fl) != clampq(fl + 1.0)) {
        amb[i] = 1;
        ++ambiguous;
      }
      if (std::fabs(t) > 127.5) ++clamped;
    }
    pre.assign(static_cast<std::size_t>(rows) * N, 0.0);
    bound.assign(static_cast<std::size_t>(rows) * N, 0.0);
    for (int n = 0; n < N; ++n) {
      const std::int8_t* w = &qw[static_cast<std::size_t>(n) * K];
      const double scale = static_cast<double>(sx) * wscale[n];
      for (int rr = 0; rr < rows; ++rr) {
        const std::int8_t* qr = &q[static_cast<std::size_t>(rr) * K];
        const std::uint8_t* ar = &amb[static_cast<std::size_t>(rr) * K];
        std::int64_t acc = 0, b = 0;
        for (int k = 0; k < K; ++k) acc += static_cast<std::int32_t>(qr[k]) * w[k];
        for (int k = 0; k < K; ++k)
          if (ar[k]) b += std::abs(static_cast<int>(w[k]));
        pre[static_cast<std::size_t>(rr) * N + n] = scale * static_cast<double>(acc) + biasf[n];
        bound[static_cast<std::size_t>(rr) * N + n] = scale * static_cast<double>(b);
      }
    }

    // device
    dW = dev_upload(qw);
    dws = dev_upload(wscale);
    std::vector<__half> tmp(N);
    for (int n = 0; n < N; ++n) tmp[n] = h_from<__half>(biasf[n]);
    dbias = dev_upload(tmp);
    tmp.resize(actf.size());
    for (std::size_t i = 0; i < actf.size(); ++i) tmp[i] = h_from<__half>(actf[i]);
    dact = dev_upload(tmp);
    dx = dev_upload(x);
    dlnw = dev_upload(lnw);
    dlnb = dev_upload(lnb);
    dresid = dev_upload(resid0);
    dpos = dev_upload(std::vector<int>{kPos});
    ysize = static_cast<std::size_t>(8) * ldy;
    CK(cudaMalloc(&dy, ysize * sizeof(__half)));
    csize = C ? static_cast<std::size_t>(8) * kMaxTokens * 2 * C : 1;
    CK(cudaMalloc(&dcache, csize * sizeof(__half)));
  }
  ~Case8() {
    for (void* p : std::initializer_list<void*>{dW, dws, dbias, dact, dx, dlnw, dlnb, dresid, dpos, dy, dcache})
      cudaFree(p);
  }
  void reset_outputs() {
    std::vector<__half> s(std::max(ysize, csize), h_from<__half>(kSentinel));
    CK(cudaMemcpy(dy, s.data(), ysize * sizeof(__half), cudaMemcpyHostToDevice));
    CK(cudaMemcpy(dcache, s.data(), csize * sizeof(__half), cudaMemcpyHostToDevice));
    CK(cudaMemcpy(dresid, resid0.data(), resid0.size() * sizeof(float), cudaMemcpyHostToDevice));
  }
  GemvInt8Args args(const void* W) const {  // W: int8 weights (or half weights for the fp16 comparison)
    GemvInt8Args a{};
    a.rows = rows;
    a.K = sh.K;
    a.N = sh.N;
    a.W = W;
    a.bias = sh.bias ? dbias : nullptr;
    a.x = dx;
    a.ln_w = dlnw;
    a.ln_b = dlnb;
    a.eps = 1e-5f;
    a.act = dact;
    a.y = dy;
    a.ldy = ldy;
    a.resid = dresid;
    a.kv_cache = dcache;
    a.max_tokens = kMaxTokens;
    a.pos = dpos;
    a.w_scale = dws;
    a.act_scale = sx;
    return a;
  }
};

// Per-output check of an int8 launch (see Case8). Returns max |gpu - ref| / max |ref| (reported like the fp16
// errors); *ok also requires every sentinel untouched.
double check_int8(Case8& c, bool* ok) {
  const int N = c.sh.N, rows = c.rows;
  ErrStat st;
  long long over = 0;
  double worst = 0;  // max of |err| / tolerance
  if (c.sh.out == GemvOut::kResidualAdd) {
    auto r = dev_download(c.dresid, c.resid0.size());
    double maxref = 0;
    for (int rr = 0; rr < rows; ++rr)
      for (int n = 0; n < N; ++n) {
        const std::size_t i = static_cast<std::size_t>(rr) * N + n;
        maxref = std::max(maxref, std::fabs(c.resid0[i] + c.pre[i]));
      }
    for (int rr = 0; rr < 8; ++rr)
      for (int n = 0; n < N; ++n) {
        const std::size_t i = static_cast<std::size_t>(rr) * N + n;
        if (rr < rows) {
          const double ref = c.resid0[i] + c.pre[i];
          st.add(r[i], ref);
          const double tol = c.bound[i] + 2e-5 * maxref;
          const double e = std::fabs(r[i] - ref);
          worst = std::max(worst, e / tol);
          if (!(e <= tol)) ++over;
        } else if (r[i] != c.resid0[i]) {
          ++st.bad_untouched;
        }
      }
    auto y = dev_download(c.dy, c.ysize);
    for (auto v : y)
      if (h_to<__half>(v) != kSentinel) ++st.bad_untouched;
  } else {
    const bool gelu = c.sh.out == GemvOut::kGeluTanh || c.sh.out == GemvOut::kGeluErf;
    const double lip = gelu ? 1.13 : 1.0;
    std::vector<double> ref(c.pre.size());
    double maxref = 0;
    for (std::size_t i = 0; i < ref.size(); ++i) {
      ref[i] = gelu ? gelu_ref(c.pre[i], c.sh.out == GemvOut::kGeluTanh) : c.pre[i];
      maxref = std::max(maxref, std::fabs(ref[i]));
    }
    auto tol_of = [&](std::size_t i) {
      return lip * c.bound[i] + 2e-3 * std::fabs(ref[i]) + (gelu ? 1e-3 * std::fabs(c.pre[i]) : 0.0) + 1e-4 * maxref;
    };
    auto cmp = [&](float got, std::size_t i) {
      st.add(got, ref[i]);
      const double e = std::fabs(got - ref[i]), tol = tol_of(i);
      worst = std::max(worst, e / tol);
      if (!(e <= tol)) ++over;
    };
    auto y = dev_download(c.dy, c.ysize);
    for (int rr = 0; rr < 8; ++rr)
      for (int j = 0; j < c.ldy; ++j) {
        const float got = h_to<__half>(y[static_cast<std::size_t>(rr) * c.ldy + j]);
        if (rr < rows && j < N) cmp(got, static_cast<std::size_t>(rr) * N + j);
        else if (got != kSentinel) ++st.bad_untouched;
      }
    if (c.sh.out == GemvOut::kStoreKV) {
      const int C = c.C;
      auto cache = dev_download(c.dcache, c.csize);
      for (int b = 0; b < 8; ++b)
        for (int t = 0; t < kMaxTokens; ++t)
          for (int j = 0; j < 2 * C; ++j) {
            const float got = h_to<__half>(cache[(static_cast<std::size_t>(b) * kMaxTokens + t) * 2 * C + j]);
            if (b < rows && t == kPos) cmp(got, static_cast<std::size_t>(b) * N + C + j);
            else if (got != kSentinel) ++st.bad_untouched;
          }
    }
    auto r = dev_download(c.dresid, c.resid0.size());
    for (std::size_t i = 0; i < r.size(); ++i)
      if (r[i] != c.resid0[i]) ++st.bad_untouched;
  }
  const double rel = st.rel();
  *ok = st.bad_untouched == 0 && st.nonfinite == 0 && over == 0;
  if (!*ok)
    std::printf("    FAIL: %lld outputs over tolerance (worst %.2f x tol), rel err %.3e, %lld untouched elements "
                "overwritten, %lld non-finite\n",
                over, worst, rel, st.bad_untouched, st.nonfinite);
  return rel;
}

void run_int8() {
  std::printf("\n=== W8A8 int8 (launch_gemv_int8; activations / outputs half). Per-output tolerance: flips of "
              "near-tie inputs + 2e-3 |ref| + 1e-4 max |ref| (half), 2e-5 max |ref| (float residual) ===\n");
  for (const Shape& sh : kShapes8) {
    for (int rows : {1, 2, 3, 4, 5, 8}) {
      if (!gemv_int8_supported(rows, sh.K)) {
        std::printf("int8 %s rows=%d K=%d: not supported, skipped\n", sh.name, rows, sh.K);
        continue;
      }
      Case8 c(sh, rows);
      std::printf("int8 %-8s rows=%d K=%5d N=%5d  s_x %.4g, %lld near-tie inputs, %lld clamped\n", sh.name, rows, sh.K,
                  sh.N, c.sx, c.ambiguous, c.clamped);
      const double wbytes8 = static_cast<double>(sh.N) * sh.K;
      const double wbytes16 = 2.0 * wbytes8;
      const bool time_it = sh.timed && !g_check_only && (rows == 1 || rows == 2 || rows == 4 || rows == 8);
      std::int8_t* pool8 = nullptr;
      __half* pool16 = nullptr;
      int ncopy8 = 0, ncopy16 = 0;
      double us16 = 0;
      if (time_it) {
        ncopy8 = static_cast<int>(std::max<double>(2.0, std::ceil(kRotateBytes / wbytes8)));
        ncopy16 = static_cast<int>(std::max<double>(2.0, std::ceil(kRotateBytes / wbytes16)));
        CK(cudaMalloc(&pool8, static_cast<std::size_t>(ncopy8) * sh.N * sh.K));
        fill_hash_i8<<<1024, 256, 0, g_stream>>>(pool8, static_cast<std::size_t>(ncopy8) * sh.N * sh.K, 77u + rows);
        CK(cudaGetLastError());
        CK(cudaMalloc(&pool16, static_cast<std::size_t>(ncopy16) * sh.N * sh.K * sizeof(__half)));
        fill_hash<__half><<<1024, 256, 0, g_stream>>>(pool16, static_cast<std::size_t>(ncopy16) * sh.N * sh.K,
                                                      1234u + rows);
        CK(cudaGetLastError());
        CK(cudaStreamSynchronize(g_stream));
        // fp16 comparison: the engine's fp16 GEMV (launch_gemv<half>) on the same shape, inputs and outputs.
        auto f16 = [&](int it) {
          const GemvArgs a16 = c.args(pool16 + static_cast<std::size_t>(it % ncopy16) * sh.N * sh.K);
          launch_gemv<__half>(a16, sh.in, sh.out, g_stream);
        };
        f16(0);  // first launch outside the capture (sets the kernel attributes, caches the occupancy)
        CK(cudaGetLastError());
        CK(cudaStreamSynchronize(g_stream));
        us16 = time_graph(f16, g_iters);
        std::printf("f16 %-8s T=half  rows=%d K=%5d N=%5d  %8.2f us  %7.1f GB/s  (launch_gemv<half>, comparison)\n",
                    sh.name, rows, sh.K, sh.N, us16, wbytes16 / us16 * 1e-3);
        char buf[512];
        std::snprintf(buf, sizeof buf,
                      "\"version\":\"f16cmp\",\"shape\":\"%s\",\"T\":\"half\",\"rows\":%d,\"K\":%d,\"N\":%d,\"us\":%.3f,"
                      "\"gbps\":%.1f",
                      sh.name, rows, sh.K, sh.N, us16, wbytes16 / us16 * 1e-3);
        json_line(buf);
      }
      for (int v = 0; v < kNumVariants8; ++v) {
        for (int pdl = 0; pdl < (v == 0 ? 2 : 1); ++pdl) {  // i1 is also checked with the PDL launch
          c.reset_outputs();
          GemvInt8Args a = c.args(c.dW);
          a.pdl = pdl != 0;
          launch_variant8(v, a, sh.in, sh.out, g_stream);
          CK(cudaGetLastError());
          CK(cudaStreamSynchronize(g_stream));
          bool ok = false;
          const double rel = check_int8(c, &ok);
          if (!ok) {
            ++g_failures;
            std::printf("    ^ %s%s %s T=int8 rows=%d K=%d N=%d\n", kVariants8[v].name, pdl ? " (pdl)" : "", sh.name,
                        rows, sh.K, sh.N);
          }
          if (pdl) continue;
          if (time_it) {
            const double us = time_graph(
                [&](int it) {
                  launch_variant8(v, c.args(pool8 + static_cast<std::size_t>(it % ncopy8) * sh.N * sh.K), sh.in,
                                  sh.out, g_stream);
                },
                g_iters);
            std::printf("%-3s %-8s T=int8  rows=%d K=%5d N=%5d  %8.2f us  %7.1f GB/s  err %.2e  x%.2f vs fp16%s\n",
                        kVariants8[v].name, sh.name, rows, sh.K, sh.N, us, wbytes8 / us * 1e-3, rel, us16 / us,
                        ok ? "" : "  FAIL");
            char buf[512];
            std::snprintf(buf, sizeof buf,
                          "\"version\":\"%s\",\"shape\":\"%s\",\"T\":\"int8\",\"rows\":%d,\"K\":%d,\"N\":%d,\"us\":%.3f,"
                          "\"gbps\":%.1f,\"max_rel_err\":%.3e,\"ok\":%s,\"fp16_us\":%.3f,\"speedup_vs_fp16\":%.3f",
                          kVariants8[v].name, sh.name, rows, sh.K, sh.N, us, wbytes8 / us * 1e-3, rel,
                          ok ? "true" : "false", us16, us16 / us);
            json_line(buf);
          } else {
            std::printf("%-3s %-8s T=int8  rows=%d K=%5d N=%5d  check err %.2e %s\n", kVariants8[v].name, sh.name,
                        rows, sh.K, sh.N, rel, ok ? "ok" : "FAIL");
          }
        }
      }
      if (pool8) CK(cudaFree(pool8));
      if (pool16) CK(cudaFree(pool16));
    }
  }
}

// One layer's four products, int8 (launch_gemv_int8) vs fp16 (launch_gemv<half>), weights rotating over >= 256 MB
// of layers in both (biases and weight scales shared by the layers: a few KB, L2-resident either way).
void run_chain_int8() {
  constexpr int C = 768, I = 3072;
  const std::size_t n_qkv = 3ull * C * C, n_proj = 1ull * C * C, n_fc = 1ull * I * C, n_mproj = 1ull * C * I;
  const std::size_t per_layer = n_qkv + n_proj + n_fc + n_mproj;
  const int nl8 = static_cast<int>(std::ceil(kRotateBytes / static_cast<double>(per_layer)));
  const int nl16 = static_cast<int>(std::ceil(kRotateBytes / (2.0 * per_layer)));
  std::int8_t* pool8 = nullptr;
  __half* pool16 = nullptr;
  CK(cudaMalloc(&pool8, per_layer * nl8));
  CK(cudaMalloc(&pool16, per_layer * nl16 * sizeof(__half)));
  fill_hash_i8<<<1024, 256, 0, g_stream>>>(pool8, per_layer * nl8, 5u);
  fill_hash<__half><<<1024, 256, 0, g_stream>>>(pool16, per_layer * nl16, 6u);
  CK(cudaGetLastError());
  std::vector<float> ones(C, 1.f), zeros(C, 0.f), xh(8 * C), wsh(I, 0.02f / 127.f);
  Rng rng(11);
  for (auto& v : xh) v = rng.uni();
  float* x = dev_upload(xh);
  float* lnw = dev_upload(ones);
  float* lnb = dev_upload(zeros);
  float* ws = dev_upload(wsh);
  __half *bias, *qkv, *att, *fc, *cache;
  CK(cudaMalloc(&bias, I * sizeof(__half)));
  CK(cudaMalloc(&qkv, 8 * 3 * C * sizeof(__half)));
  CK(cudaMalloc(&att, 8 * C * sizeof(__half)));
  CK(cudaMalloc(&fc, 8 * I * sizeof(__half)));
  constexpr int kMt = 64;
  CK(cudaMalloc(&cache, 8ull * kMt * 2 * C * sizeof(__half)));
  fill_hash<__half><<<64, 256, 0, g_stream>>>(att, 8 * C, 5u);
  fill_hash<__half><<<64, 256, 0, g_stream>>>(fc, 8 * I, 8u);
  fill_hash<__half><<<64, 256, 0, g_stream>>>(bias, I, 9u);
  CK(cudaGetLastError());
  int* pos = dev_upload(std::vector<int>{10});
  CK(cudaStreamSynchronize(g_stream));
  std::printf("\n=== one layer's four products, int8 vs fp16 (%.2f / %.2f MB of weights per layer) ===\n",
              per_layer / 1e6, 2.0 * per_layer / 1e6);
  for (int rows : {1, 2, 4, 8}) {
    double us[2];
    for (int t = 0; t < 2; ++t) {  // 0: fp16, 1: int8
      auto body = [&](int it) {
        GemvInt8Args a{};
        const std::size_t base = static_cast<std::size_t>(it % (t ? nl8 : nl16)) * per_layer;
        auto w = [&](std::size_t off) -> const void* {
          return t ? static_cast<const void*>(pool8 + base + off) : static_cast<const void*>(pool16 + base + off);
        };
        auto go = [&](GemvIn in, GemvOut out) {
          if (t) launch_gemv_int8(a, in, out, g_stream);
          else launch_gemv<__half>(a, in, out, g_stream);
        };
        a.rows = rows;
        a.x = x;
        a.ln_w = lnw;
        a.ln_b = lnb;
        a.eps = 1e-5f;
        a.kv_cache = cache;
        a.max_tokens = kMt;
        a.pos = pos;
        a.w_scale = ws;
        a.act_scale = 0.05f;
        a.bias = bias;
        a.K = C;
        a.N = 3 * C;
        a.W = w(0);
        a.y = qkv;
        a.ldy = 3 * C;
        go(GemvIn::kLayerNorm, GemvOut::kStoreKV);
        a.N = C;
        a.W = w(n_qkv);
        a.act = att;
        a.resid = x;
        go(GemvIn::kPlain, GemvOut::kResidualAdd);
        a.N = I;
        a.W = w(n_qkv + n_proj);
        a.y = fc;
        a.ldy = I;
        a.resid = nullptr;
        go(GemvIn::kLayerNorm, GemvOut::kGeluTanh);
        a.K = I;
        a.N = C;
        a.W = w(n_qkv + n_proj + n_fc);
        a.act = fc;
        a.resid = x;
        go(GemvIn::kPlain, GemvOut::kResidualAdd);
      };
      body(0);  // first launches outside the capture
      CK(cudaGetLastError());
      CK(cudaStreamSynchronize(g_stream));
      us[t] = time_graph(body, g_iters);
    }
    std::printf("chain  rows=%d  fp16 %8.2f us / layer  int8 %8.2f us / layer  (x%.2f; x12 layers: %.1f vs %.1f us)\n",
                rows, us[0], us[1], us[0] / us[1], 12 * us[0], 12 * us[1]);
    char buf[256];
    std::snprintf(buf, sizeof buf,
                  "\"version\":\"i1\",\"shape\":\"layer_chain\",\"T\":\"int8\",\"rows\":%d,\"us\":%.3f,"
                  "\"gbps\":%.1f,\"fp16_us\":%.3f,\"speedup_vs_fp16\":%.3f",
                  rows, us[1], per_layer / us[1] * 1e-3, us[0], us[0] / us[1]);
    json_line(buf);
  }
  for (void* p : std::initializer_list<void*>{pool8, pool16, x, lnw, lnb, ws, bias, qkv, att, fc, cache, pos})
    cudaFree(p);
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (const int taken = common_option(argc, argv, i, g_json, g_iters); taken != 0) {
      if (taken < 0) return 2;
    } else if (!std::strcmp(argv[i], "--check-only")) {
      g_check_only = true;
    } else if (!std::strcmp(argv[i], "--int8-only")) {
      g_float_types = false;
    } else if (!std::strcmp(argv[i], "--no-int8")) {
      g_int8 = false;
    } else {
      std::fprintf(stderr, "usage: %s [--iters N] [--json FILE] [--check-only] [--int8-only | --no-int8]\n", argv[0]);
      return 2;
    }
  }
  cudaDeviceProp prop{};
  CK(cudaGetDeviceProperties(&prop, 0));
  g_gpu = prop.name;
  std::printf("gemv_lab on %s (%d SMs, %.0f MB L2), %d iterations per timing\n", prop.name, prop.multiProcessorCount,
              prop.l2CacheSize / 1e6, g_iters);
  CK(cudaStreamCreateWithFlags(&g_stream, cudaStreamNonBlocking));
  CB(cublasCreate(&g_cublas));
  CB(cublasSetStream(g_cublas, g_stream));
  void* cublas_ws = nullptr;
  constexpr std::size_t kWs = 32u << 20;
  CK(cudaMalloc(&cublas_ws, kWs));
  CB(cublasSetWorkspace(g_cublas, cublas_ws, kWs));

  if (g_float_types) {
    run_type<__half>(4e-3, true);
    run_type<float>(1e-3, false);
    run_type<__nv_bfloat16>(1.6e-2, false);
    if (!g_check_only) run_chain();
  }
  if (g_int8) {
    run_int8();
    if (!g_check_only) run_chain_int8();
  }

  std::printf("\n%s (%d failures)\n", g_failures ? "FAILED" : "ALL CHECKS PASSED", g_failures);
  if (g_json) std::fclose(g_json);
  cublasDestroy(g_cublas);
  cudaFree(cublas_ws);
  cudaStreamDestroy(g_stream);
  return g_failures ? 1 : 0;
}
