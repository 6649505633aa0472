// gemm_large_lab: a many-row Hopper product (lab/cuda/gemm_wgmma_large.cuh; not used by the engine: no faster than
// cuBLASLt) on GPT-2's four per-layer shapes, after llm.c's dev/cuda: each version checked against a CPU reference
// in double precision (every column of a sample of rows), then timed.
//
//   v1  gemm_wgmma_large<T, 128, 6>   tiles of 128 x 128, 6 ring slots
//   v2  gemm_wgmma_large<T, 192, 5>   128 x 192, 5 slots (whole waves for N = 768, 2304, 3072 on 132 SMs)
//   v3  gemm_wgmma_large<T, 256, 4>   128 x 256, 4 slots
//   v4  gemm_wgmma_large<T, 192, 5, MC>  v2 in clusters of two blocks that share (multicast) the W tile
//   v5  gemm_wgmma_large<T, 256, 4, MC>  v3 likewise
// Measured on an H200 (docs/results/2026-11-27-session7/call5..call9): v2 best; the epilogue's loads issued in
// chunks before its stores took mproj from 46.5 to 35.0 us (hot); the multicast versions are slower everywhere.
//
// Timing: "hot" = the mean of back-to-back launches; "cold" = the median of single launches each after a write of
// twice the L2 size (the weights are cold in a forward, and the engine's cuBLASLt autotune times its candidates so:
// compare with its "gemm tune (cold L2)" lines, e.g. `gptbench_cuda_check profile`).
// Usage: gemm_large_lab [--json FILE] [--version N] [--quick]   Exits non-zero if a check fails.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "gemm_wgmma_large.cuh"
#include "lab_common.cuh"

namespace k = gptbench::cuda_engine::kernels;
using namespace lab;

namespace {

struct Shape {
  const char* name;
  int M, N, K;
  k::WgmmaOut out;
};

const char* out_name(k::WgmmaOut o) {
  return o == k::WgmmaOut::kStore ? "store" : o == k::WgmmaOut::kGeluTanh ? "gelu" : "residual";
}

constexpr int kVersions = 5;
const char* version_name(int v) {
  const char* names[] = {"?", "bn128_s6", "bn192_s5", "bn256_s4", "bn192_s5_mc", "bn256_s4_mc"};
  return names[v];
}
int version_bn(int v) { return v == 1 ? 128 : v == 2 || v == 4 ? 192 : 256; }
bool version_mc(int v) { return v >= 4; }

template <typename T>
cudaError_t run_version(int v, k::WgmmaOut out, const CUtensorMap& a, const CUtensorMap& w, const k::WgmmaArgs<T>& p,
                        int blocks, cudaStream_t stream) {
  switch (v) {
    case 1: return k::launch_gemm_wgmma_large<T, 128, 6>(out, a, w, p, blocks, stream, false);
    case 2: return k::launch_gemm_wgmma_large<T, 192, 5>(out, a, w, p, blocks, stream, false);
    case 3: return k::launch_gemm_wgmma_large<T, 256, 4>(out, a, w, p, blocks, stream, false);
    case 4: return k::launch_gemm_wgmma_large<T, 192, 5, true>(out, a, w, p, blocks, stream, false);
    case 5: return k::launch_gemm_wgmma_large<T, 256, 4, true>(out, a, w, p, blocks, stream, false);
    default: return cudaErrorInvalidValue;
  }
}

int g_failures = 0;
FILE* g_json = nullptr;
std::string g_gpu;
int g_sms = 132;
void* g_flush = nullptr;
size_t g_flush_bytes = 0;

template <typename T>
void run_shape(const Shape& sh, int only_version) {
  const int M = sh.M, N = sh.N, K = sh.K;
  Rng rng(1000u + M + 7u * N + 13u * K);
  std::vector<T> hA(static_cast<size_t>(M) * K), hW(static_cast<size_t>(N) * K), hb(N);
  std::vector<float> fA(hA.size()), fW(hW.size()), fb(N), hx(static_cast<size_t>(M) * N);
  for (size_t i = 0; i < hA.size(); ++i) fA[i] = h_round<T>(rng.uni() * 2.f), hA[i] = h_from<T>(fA[i]);
  const float ws = 1.f / std::sqrt(static_cast<float>(K));
  for (size_t i = 0; i < hW.size(); ++i) fW[i] = h_round<T>(rng.uni() * ws * 1.7f), hW[i] = h_from<T>(fW[i]);
  for (int i = 0; i < N; ++i) fb[i] = h_round<T>(rng.uni() * 0.1f), hb[i] = h_from<T>(fb[i]);
  for (auto& v : hx) v = rng.uni();
  T *dA, *dW, *db, *dy;
  float *dx, *dbf;
  CK(cudaMalloc(&dA, hA.size() * sizeof(T)));
  CK(cudaMalloc(&dW, hW.size() * sizeof(T)));
  CK(cudaMalloc(&db, N * sizeof(T)));
  CK(cudaMalloc(&dbf, N * sizeof(float)));
  CK(cudaMalloc(&dy, static_cast<size_t>(M) * N * sizeof(T)));
  CK(cudaMalloc(&dx, static_cast<size_t>(M) * N * sizeof(float)));
  CK(cudaMemcpy(dA, hA.data(), hA.size() * sizeof(T), cudaMemcpyHostToDevice));
  CK(cudaMemcpy(dW, hW.data(), hW.size() * sizeof(T), cudaMemcpyHostToDevice));
  CK(cudaMemcpy(db, hb.data(), N * sizeof(T), cudaMemcpyHostToDevice));
  CK(cudaMemcpy(dbf, fb.data(), N * sizeof(float), cudaMemcpyHostToDevice));
  cudaStream_t stream;
  CK(cudaStreamCreate(&stream));
  // Rows checked: all of a small M, else 48 spread over M and the edges (checked_rows).
  const std::vector<int> rows = checked_rows(M, 48);
  const bool is_bf16 = std::is_same_v<T, __nv_bfloat16>;
  const double tol = is_bf16 ? 3e-2 : 4e-3;

  for (int v = 1; v <= kVersions; ++v) {
    if (only_version && v != only_version) continue;
    CUtensorMap ma{}, mw{};
    if (!k::wgmma_tensor_map(&ma, dA, M, K, 128) || !k::wgmma_tensor_map(&mw, dW, N, K, version_bn(v) / (version_mc(v) ? 2 : 1))) {
      std::fprintf(stderr, "tensor map refused\n");
      std::exit(2);
    }
    k::WgmmaArgs<T> p;
    p.M = M;
    p.N = N;
    p.K = K;
    p.y = dy;
    p.bias = db;
    p.x = dx;
    p.bias_f = dbf;
    // ---- check ----
    CK(cudaMemcpy(dx, hx.data(), hx.size() * sizeof(float), cudaMemcpyHostToDevice));
    CK(cudaMemset(dy, 0xff, static_cast<size_t>(M) * N * sizeof(T)));
    CK(run_version<T>(v, sh.out, ma, mw, p, g_sms, stream));
    CK(cudaStreamSynchronize(stream));
    std::vector<T> gy(static_cast<size_t>(M) * N);
    std::vector<float> gx(static_cast<size_t>(M) * N);
    CK(cudaMemcpy(gy.data(), dy, gy.size() * sizeof(T), cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(gx.data(), dx, gx.size() * sizeof(float), cudaMemcpyDeviceToHost));
    double max_err = 0.0;
    for (int r : rows) {
      for (int c = 0; c < N; ++c) {
        double s = 0.0;
        for (int kk = 0; kk < K; ++kk)
          s += static_cast<double>(fA[static_cast<size_t>(r) * K + kk]) * fW[static_cast<size_t>(c) * K + kk];
        s += fb[c];
        double ref, got;
        const size_t i = static_cast<size_t>(r) * N + c;
        if (sh.out == k::WgmmaOut::kResidual) {
          ref = hx[i] + s;
          got = gx[i];
        } else {
          ref = sh.out == k::WgmmaOut::kGeluTanh ? gelu_ref(s, true) : s;
          got = h_to<T>(gy[i]);
        }
        double err = std::fabs(got - ref) / std::max(1.0, std::fabs(ref));
        if (std::isnan(err)) err = INFINITY;
        max_err = std::max(max_err, err);
      }
    }
    const bool pass = max_err <= tol;
    if (!pass) ++g_failures;

    const HotCold t = time_hot_cold(
        stream, g_flush, g_flush_bytes, [&] { CK(run_version<T>(v, sh.out, ma, mw, p, g_sms, stream)); }, 50);
    const double hot_us = t.hot_us, cold_us = t.cold_us;
    const double flop = 2.0 * M * N * static_cast<double>(K);
    std::printf("%-5s %-6s M%-5d N%-5d K%-5d %-8s | v%d %-9s | hot %8.2f us %6.0f TFLOP/s | cold %8.2f us %6.0f "
                "TFLOP/s | max err %.2e %s\n",
                tname<T>(), sh.name, M, N, K, out_name(sh.out), v, version_name(v), hot_us, flop / hot_us * 1e-6,
                cold_us, flop / cold_us * 1e-6, max_err, pass ? "PASS" : "FAIL");
    std::fflush(stdout);
    if (g_json) {
      std::fprintf(g_json,
                   "{\"lab\":\"gemm_large\",\"gpu\":\"%s\",\"dtype\":\"%s\",\"shape\":\"%s\",\"M\":%d,\"N\":%d,"
                   "\"K\":%d,\"out\":\"%s\",\"version\":%d,\"name\":\"%s\",\"hot_us\":%.3f,\"cold_us\":%.3f,"
                   "\"max_err\":%.3e,\"pass\":%s}\n",
                   g_gpu.c_str(), tname<T>(), sh.name, M, N, K, out_name(sh.out), v, version_name(v), hot_us,
                   cold_us, max_err, pass ? "true" : "false");
      std::fflush(g_json);
    }
  }
  cudaFree(dA);
  cudaFree(dW);
  cudaFree(db);
  cudaFree(dbf);
  cudaFree(dy);
  cudaFree(dx);
  cudaStreamDestroy(stream);
}

}  // namespace

int main(int argc, char** argv) {
  int only_version = 0, iters = 0;
  bool quick = false;
  for (int i = 1; i < argc; ++i) {
    const int c = common_option(argc, argv, i, g_json, iters);
    if (c < 0) return 2;
    if (c) continue;
    if (!std::strcmp(argv[i], "--version") && i + 1 < argc) only_version = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--quick")) quick = true;
    else {
      std::fprintf(stderr, "usage: %s [--json FILE] [--version N] [--quick]\n", argv[0]);
      return 2;
    }
  }
  cudaDeviceProp prop{};
  if (!lab::sm90_device("gemm_large_lab", prop)) return 0;
  g_gpu = prop.name;
  g_sms = prop.multiProcessorCount;
  g_flush_bytes = static_cast<size_t>(prop.l2CacheSize) * 2;
  CK(cudaMalloc(&g_flush, g_flush_bytes));
  std::printf("gemm_large_lab on %s (%d SMs)\n", prop.name, g_sms);
  const std::vector<Shape> shapes = {
      // correctness at awkward sizes: rows and columns past the tile, several tiles per block
      {"odd", 200, 384, 256, k::WgmmaOut::kStore},
      {"odd", 200, 128, 512, k::WgmmaOut::kResidual},
      {"odd", 1000, 520, 192, k::WgmmaOut::kGeluTanh},
      // GPT-2 124M at B8 x S512 (4096 rows) and B1 x S1024
      {"qkv", 4096, 2304, 768, k::WgmmaOut::kStore},
      {"proj", 4096, 768, 768, k::WgmmaOut::kResidual},
      {"fc", 4096, 3072, 768, k::WgmmaOut::kGeluTanh},
      {"mproj", 4096, 768, 3072, k::WgmmaOut::kResidual},
      {"qkv", 1024, 2304, 768, k::WgmmaOut::kStore},
      {"proj", 1024, 768, 768, k::WgmmaOut::kResidual},
      {"fc", 1024, 3072, 768, k::WgmmaOut::kGeluTanh},
      {"mproj", 1024, 768, 3072, k::WgmmaOut::kResidual},
  };
  for (const Shape& sh : shapes) {
    if (quick && sh.M == 1024) continue;
    run_shape<__half>(sh, only_version);
  }
  run_shape<__nv_bfloat16>(shapes[4], only_version);  // bf16: one shape
  cudaFree(g_flush);
  if (g_json) std::fclose(g_json);
  std::printf("%s (%d failure%s)\n", g_failures ? "FAILED" : "ALL PASS", g_failures, g_failures == 1 ? "" : "s");
  return g_failures ? 1 : 0;
}
