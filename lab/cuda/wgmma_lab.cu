// Kernel lab: Hopper warpgroup MMA (wgmma) for the engine's small-M products — the first brick of the
// Hopper-native path that docs/cuda-engine.md names for the B1 x S128 goal (after llm.c's dev/cuda: versions side
// by side, a CPU reference check, a timing loop). NOT USED BY THE ENGINE.
//
// What it establishes: the shared-memory matrix descriptors of wgmma.mma_async (no swizzle, "core matrices" of
// 8 rows x 16 bytes) and the accumulator layout, checked against a CPU reference; and what a plain cp.async-fed
// wgmma product costs against cuBLASLt and the mma.sync kernel of gemm_mma.cuh at the same shapes (run gemm_lab
// in the same call for those: same weight rotation, same timing loop).
//
//   y[M, N] = A[M, K] . W[N, K]^T   (A, W, y half; float accumulation; W rows K-contiguous as in the engine)
//
// Shared memory layout of a [rows x 64] operand tile (one pipeline stage, 64 k): core matrix (row group g = r / 8,
// k chunk c = k / 8) at byte g * 1024 + c * 128, its 8 rows 16 bytes apart. Descriptor: start address >> 4 (bits
// 0-13), leading byte offset >> 4 (bits 16-29: between core matrices adjacent in k, 128 here), stride byte offset
// >> 4 (bits 32-45: between row groups, 1024 here), layout type 0 (no swizzle, bits 62-63). One k16 step is two k
// chunks: the start address advances by 256 bytes. (--swap-offsets exchanges LBO and SBO: the check must then fail,
// which shows that the check can tell a wrong descriptor.)
// Accumulators (m64nN, f32): warp w of the warpgroup holds rows 16w + lane/4 (+8); n8 block j, registers 4j..4j+3
// hold columns 8j + 2 (lane % 4) + {0, 1} of row lane/4 (4j, 4j+1) and of row lane/4 + 8 (4j+2, 4j+3).
//
// Versions:
//   v1  BM 64 x BN 64, one warpgroup (128 threads), 4-stage cp.async pipeline of 64 k, 4 wgmma m64n64k16 per stage,
//       wait for each stage's wgmma before the next (the simplest correct order)
//   v2  BM 64 x BN 32 (m64n32k16): twice the blocks for the few-row products
//   v3  BM 128 x BN 64, two warpgroups (256 threads) sharing the weight tile: half the weight traffic per row
// Check: M = 64, 100, 128, 256 (rows past M zero-filled, never stored), N = 96, 2304, K = 64, 768, 3072;
// error = max |gpu - ref| / max |ref| with the reference in double from the same half inputs; tolerance 4e-3.
// Timing: M = 128 and 512, the four products of a GPT-2 124M layer; weights rotating through >= 256 MB of copies
// (cold in L2, as in a forward pass); a CUDA graph of --iters calls, best of 3 replays; us / call and weight GB/s.
//
// Build: part of the CMake build (sm_90a: wgmma needs the architecture-specific target).
// Run:   ./wgmma_lab [--iters N] [--json FILE] [--swap-offsets]
#include <cuda.h>
#include <cudaTypedefs.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "backends/cuda/gemm_wgmma.cuh"
#include "backends/cuda/kernels.cuh"
#include "lab_common.cuh"

using namespace lab;

namespace {

bool g_swap = false;
int g_iters = 200;
FILE* g_json = nullptr;
int g_failures = 0;
std::string g_gpu;
cudaStream_t g_stream;

__device__ __forceinline__ void cp_async_16_zfill(std::uint32_t dst, const void* src, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(__cvta_generic_to_global(src)),
               "r"(valid ? 16 : 0)
               : "memory");
}
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }

__device__ __forceinline__ std::uint64_t smem_desc(std::uint32_t addr, std::uint32_t lbo, std::uint32_t sbo) {
  return static_cast<std::uint64_t>((addr & 0x3FFFF) >> 4) | (static_cast<std::uint64_t>((lbo >> 4) & 0x3FFF) << 16) |
         (static_cast<std::uint64_t>((sbo >> 4) & 0x3FFF) << 32);
}

// The wgmma wrappers of the engine's header (gemm_wgmma.cuh).
template <int BN>
__device__ __forceinline__ void wgmma_k16(float (&d)[BN / 2], std::uint64_t a, std::uint64_t b) {
  gptbench::cuda_engine::kernels::wgmma_detail::wgmma_k16<__half, BN>(d, a, b);
}

// Rows [first, first + ROWS) x k [k0, k0 + 64) of the row-major [*, K] matrix src into the core-matrix layout at
// dst; consecutive threads fill the 8 rows of one core matrix (128 contiguous bytes: no bank conflicts).
template <int ROWS, int THREADS>
__device__ __forceinline__ void load_tile(std::uint32_t dst, const __half* src, int K, int first, int limit, int k0,
                                          int tid) {
#pragma unroll
  for (int i = tid; i < ROWS * 8; i += THREADS) {
    const int r = (i % 8) + 8 * (i / 64), c = (i / 8) % 8;
    const bool ok = first + r < limit;
    cp_async_16_zfill(dst + (r / 8) * 1024 + c * 128 + (r % 8) * 16,
                      src + static_cast<std::int64_t>(ok ? first + r : 0) * K + k0 + c * 8, ok);
  }
}

// WG warpgroups, each 64 rows; the block's tile is (64 WG) x BN; K a multiple of 64.
template <int BN, int WG>
__global__ void __launch_bounds__(128 * WG) gemm_wgmma(int M, int N, int K, const __half* __restrict__ A,
                                                       const __half* __restrict__ W, __half* __restrict__ y,
                                                       int swap) {
  constexpr int BM = 64 * WG, STAGES = 4, kThreads = 128 * WG;
  constexpr int kABytes = BM * 64 * 2, kWBytes = BN * 64 * 2, kStage = kABytes + kWBytes;
  extern __shared__ __align__(1024) unsigned char smem[];
  const std::uint32_t base = static_cast<std::uint32_t>(__cvta_generic_to_shared(smem));
  const int tid = threadIdx.x, wg = tid / 128, warp = (tid % 128) / 32, lane = tid % 32;
  const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN, kt_n = K / 64;
  const std::uint32_t lbo = swap ? 1024 : 128, sbo = swap ? 128 : 1024;

  auto load_stage = [&](int s, int kt) {
    load_tile<BM, kThreads>(base + s * kStage, A, K, m0, M, kt * 64, tid);
    load_tile<BN, kThreads>(base + s * kStage + kABytes, W, K, n0, N, kt * 64, tid);
  };
#pragma unroll
  for (int s = 0; s < STAGES - 1; ++s) {
    if (s < kt_n) load_stage(s, s);
    cp_async_commit();
  }
  float acc[BN / 2];
#pragma unroll
  for (int i = 0; i < BN / 2; ++i) acc[i] = 0.f;

  for (int kt = 0; kt < kt_n; ++kt) {
    cp_async_wait<STAGES - 2>();
    // cp.async wrote through the generic proxy; wgmma reads through the async proxy.
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
    __syncthreads();  // stage kt complete for all; stage kt-1 (its wgmma waited for) is free
    if (kt + STAGES - 1 < kt_n) load_stage((kt + STAGES - 1) % STAGES, kt + STAGES - 1);
    cp_async_commit();
    const std::uint32_t a = base + (kt % STAGES) * kStage + wg * (64 * 64 * 2), w = base + (kt % STAGES) * kStage + kABytes;
    asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#pragma unroll
    for (int k16 = 0; k16 < 4; ++k16) wgmma_k16<BN>(acc, smem_desc(a + k16 * 256, lbo, sbo), smem_desc(w + k16 * 256, lbo, sbo));
    asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
    asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
  }
  cp_async_wait<0>();

  const int r0 = m0 + wg * 64 + warp * 16 + lane / 4;
#pragma unroll
  for (int j = 0; j < BN / 8; ++j) {
    const int c = n0 + j * 8 + 2 * (lane % 4);
    if (c >= N) continue;
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int r = r0 + 8 * h;
      if (r < M) *reinterpret_cast<__half2*>(y + static_cast<std::int64_t>(r) * N + c) =
          __floats2half2_rn(acc[4 * j + 2 * h], acc[4 * j + 2 * h + 1]);
    }
  }
}


// ---- v4: the engine's kernel (src/backends/cuda/gemm_wgmma.cuh): TMA + mbarrier ring + a producer warp +
// consumer warpgroups, PDL-aware (weights requested before griddepcontrol.wait), deterministic split-K for the
// residual output. Configurations: kWgmmaConfigs (BM = 64 WG x BN, STAGES).
using gptbench::cuda_engine::kernels::WgmmaArgs;
using gptbench::cuda_engine::kernels::WgmmaConfig;
using gptbench::cuda_engine::kernels::WgmmaOut;
using gptbench::cuda_engine::kernels::kWgmmaConfigs;
using Out = WgmmaOut;

std::string cfg_name(const WgmmaConfig& c) {
  return "v4 " + std::to_string(64 * c.wg) + "x" + std::to_string(c.bn) + "/" + std::to_string(c.stages);
}
CUtensorMap tensor_map(const __half* base, int rows, int K, int box_rows) {
  CUtensorMap map;
  if (!gptbench::cuda_engine::kernels::wgmma_tensor_map(&map, base, rows, K, box_rows)) {
    std::fprintf(stderr, "cuTensorMapEncodeTiled failed or unavailable: rows %d K %d box %d\n", rows, K, box_rows);
    std::exit(2);
  }
  return map;
}
cudaError_t launch_tma(const WgmmaConfig& c, Out out, const CUtensorMap& ma, const CUtensorMap& mw,
                       WgmmaArgs<__half> a, bool pdl = false) {
  return gptbench::cuda_engine::kernels::launch_gemm_wgmma<__half>(c, out, ma, mw, a, g_stream, pdl);
}
WgmmaArgs<__half> tma_args(int M, int N, int K, int splits, __half* y, float* x, const __half* bias,
                           const float* bias_f) {
  WgmmaArgs<__half> a;
  a.M = M;
  a.N = N;
  a.K = K;
  a.splits = splits;
  a.y = y;
  a.x = x;
  a.bias = bias;
  a.bias_f = bias_f;
  return a;
}

struct Version {
  const char* name;
  int bn, wg;
};
constexpr Version kVersions[] = {{"v1 64x64", 64, 1}, {"v2 64x32", 32, 1}, {"v3 128x64", 64, 2}};

int smem_bytes(const Version& v) { return 4 * (64 * v.wg * 64 * 2 + v.bn * 64 * 2); }

cudaError_t launch(const Version& v, int M, int N, int K, const __half* A, const __half* W, __half* y) {
  const dim3 grid((N + v.bn - 1) / v.bn, (M + 64 * v.wg - 1) / (64 * v.wg));
  const int smem = smem_bytes(v);
  auto run = [&](auto kernel) {
    cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
    kernel<<<grid, 128 * v.wg, smem, g_stream>>>(M, N, K, A, W, y, g_swap ? 1 : 0);
    return cudaGetLastError();
  };
  if (v.bn == 64 && v.wg == 1) return run(gemm_wgmma<64, 1>);
  if (v.bn == 32 && v.wg == 1) return run(gemm_wgmma<32, 1>);
  return run(gemm_wgmma<64, 2>);
}

template <typename T>
T* dev_alloc(std::size_t n) {
  T* p = nullptr;
  CK(cudaMalloc(&p, std::max<std::size_t>(n, 1) * sizeof(T)));
  return p;
}

void run_checks() {
  std::printf("\n=== check (tolerance 4e-3 of max |ref|)%s ===\n", g_swap ? " with LBO and SBO swapped" : "");
  const int Ms[] = {64, 100, 128, 256};
  const int NKs[][2] = {{96, 64}, {2304, 768}, {96, 3072}};
  Rng rng(7);
  for (const auto& nk : NKs) {
    const int N = nk[0], K = nk[1], Mmax = 256;
    std::vector<__half> hA(static_cast<std::size_t>(Mmax) * K), hW(static_cast<std::size_t>(N) * K);
    for (auto& v : hA) v = __float2half(rng.uni());
    for (auto& v : hW) v = __float2half(rng.uni() / std::sqrt(static_cast<float>(K)));
    __half *dA = dev_alloc<__half>(hA.size()), *dW = dev_alloc<__half>(hW.size()),
           *dy = dev_alloc<__half>(static_cast<std::size_t>(Mmax) * N);
    CK(cudaMemcpy(dA, hA.data(), hA.size() * 2, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(dW, hW.data(), hW.size() * 2, cudaMemcpyHostToDevice));
    std::vector<double> ref(static_cast<std::size_t>(Mmax) * N);
    for (int m = 0; m < Mmax; ++m)
      for (int n = 0; n < N; ++n) {
        double s = 0;
        for (int k = 0; k < K; ++k)
          s += static_cast<double>(__half2float(hA[static_cast<std::size_t>(m) * K + k])) *
               __half2float(hW[static_cast<std::size_t>(n) * K + k]);
        ref[static_cast<std::size_t>(m) * N + n] = s;
      }
    for (const Version& v : kVersions)
      for (int M : Ms) {
        CK(cudaMemset(dy, 0x7B, static_cast<std::size_t>(Mmax) * N * 2));
        CK(launch(v, M, N, K, dA, dW, dy));
        CK(cudaStreamSynchronize(g_stream));
        std::vector<__half> out(static_cast<std::size_t>(Mmax) * N);
        CK(cudaMemcpy(out.data(), dy, out.size() * 2, cudaMemcpyDeviceToHost));
        double err = 0, mx = 0;
        int untouched_bad = 0;
        for (int m = 0; m < Mmax; ++m)
          for (int n = 0; n < N; ++n) {
            const std::size_t i = static_cast<std::size_t>(m) * N + n;
            std::uint16_t bits;
            std::memcpy(&bits, &out[i], 2);
            if (m >= M) {
              untouched_bad += bits != 0x7B7B;
              continue;
            }
            err = std::max(err, std::fabs(static_cast<double>(__half2float(out[i])) - ref[i]));
            mx = std::max(mx, std::fabs(ref[i]));
          }
        const double rel = err / std::max(mx, 1e-30);
        const bool ok = rel <= 4e-3 && untouched_bad == 0;
        if (!ok) ++g_failures;
        std::printf("  %-10s M=%3d N=%4d K=%4d: rel err %.2e, rows past M written %d  %s\n", v.name, M, N, K, rel,
                    untouched_bad, ok ? "ok" : "FAIL");
        if (g_json)
          std::fprintf(g_json,
                       "{\"lab\":\"wgmma\",\"gpu\":\"%s\",\"kind\":\"check\",\"version\":\"%s\",\"M\":%d,\"N\":%d,"
                       "\"K\":%d,\"rel_err\":%.3e,\"swap\":%s,\"ok\":%s}\n",
                       g_gpu.c_str(), v.name, M, N, K, rel, g_swap ? "true" : "false", ok ? "true" : "false");
      }
    // v4 (TMA + wgmma): store for every config and M; residual (x += product + bias) with split-K 1 and 4, and
    // GELU, for the first config.
    std::vector<__half> hb(N);
    for (auto& v : hb) v = __float2half(0.5f * rng.uni());
    std::vector<float> hx(static_cast<std::size_t>(Mmax) * N);
    for (auto& v : hx) v = rng.uni();
    std::vector<float> hbf(N);
    for (int n = 0; n < N; ++n) hbf[n] = __half2float(hb[n]);
    __half* db = dev_alloc<__half>(N);
    float* dbf = dev_alloc<float>(N);
    float* dx = dev_alloc<float>(hx.size());
    CK(cudaMemcpy(db, hb.data(), N * 2, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(dbf, hbf.data(), N * 4, cudaMemcpyHostToDevice));
    for (const WgmmaConfig& c : kWgmmaConfigs)
      for (int M : Ms)
        for (int mode = 0; mode < (&c == &kWgmmaConfigs[0] ? 4 : 1); ++mode) {
          // mode 0 store (no bias), 1 GELU (+bias) split 2, 2 residual split 1 (+bias), 3 residual split 4 (+bias)
          const Out out = mode == 0 ? Out::kStore : mode == 1 ? Out::kGeluTanh : Out::kResidual;
          const int splits = mode == 3 ? 4 : mode == 1 ? 2 : 1;
          if ((K / 64) % splits != 0) continue;
          CK(cudaMemset(dy, 0x7B, static_cast<std::size_t>(Mmax) * N * 2));
          CK(cudaMemcpy(dx, hx.data(), hx.size() * 4, cudaMemcpyHostToDevice));
          const CUtensorMap ma = tensor_map(dA, M, K, 64 * c.wg), mw = tensor_map(dW, N, K, c.bn);
          const WgmmaArgs<__half> a =
              tma_args(M, N, K, splits, dy, dx, mode == 0 ? nullptr : db, mode == 0 ? nullptr : dbf);
          CK(launch_tma(c, out, ma, mw, a));
          CK(cudaStreamSynchronize(g_stream));
          std::vector<__half> o(static_cast<std::size_t>(Mmax) * N);
          std::vector<float> ox(hx.size());
          CK(cudaMemcpy(o.data(), dy, o.size() * 2, cudaMemcpyDeviceToHost));
          CK(cudaMemcpy(ox.data(), dx, ox.size() * 4, cudaMemcpyDeviceToHost));
          bool repeat_same = true;  // split-K: a second run must give bitwise the same x (ordered reduction)
          if (splits > 1 && out == Out::kResidual) {
            CK(cudaMemcpy(dx, hx.data(), hx.size() * 4, cudaMemcpyHostToDevice));
            CK(launch_tma(c, out, ma, mw, a));
            CK(cudaStreamSynchronize(g_stream));
            std::vector<float> ox2(hx.size());
            CK(cudaMemcpy(ox2.data(), dx, ox2.size() * 4, cudaMemcpyDeviceToHost));
            repeat_same = std::memcmp(ox.data(), ox2.data(), ox.size() * 4) == 0;
          }
          double err = 0, mx = 0;
          int bad_untouched = 0;
          for (int m = 0; m < Mmax; ++m)
            for (int n = 0; n < N; ++n) {
              const std::size_t i = static_cast<std::size_t>(m) * N + n;
              std::uint16_t bits;
              std::memcpy(&bits, &o[i], 2);
              const bool resid = out == Out::kResidual;
              if (resid || m >= M) bad_untouched += bits != 0x7B7B;  // y: all of it for residual, past M else
              if (!resid || m >= M) bad_untouched += ox[i] != hx[i];  // x: all of it for store / GELU, past M else
              if (m >= M) continue;
              double want = ref[i] + (mode == 0 ? 0.0 : static_cast<double>(__half2float(hb[n])));
              if (out == Out::kGeluTanh) want = 0.5 * want * (1.0 + std::tanh(0.7978845608028654 * (want + 0.044715 * want * want * want)));
              const double got = resid ? static_cast<double>(ox[i]) - hx[i] : static_cast<double>(__half2float(o[i]));
              err = std::max(err, std::fabs(got - want));
              mx = std::max(mx, std::fabs(want));
            }
          const double rel = err / std::max(mx, 1e-30);
          const double tol = out == Out::kResidual ? 1e-4 : 4e-3;
          const bool ok = rel <= tol && bad_untouched == 0 && repeat_same;
          if (!ok) ++g_failures;
          static const char* kModes[] = {"store", "gelu+b/s2", "resid+b", "resid+b/s4"};
          std::printf("  %-11s %-10s M=%3d N=%4d K=%4d: rel err %.2e (tol %.0e), untouched cells changed %d%s  %s\n",
                      cfg_name(c).c_str(), kModes[mode], M, N, K, rel, tol, bad_untouched,
                      repeat_same ? "" : ", NOT reproducible", ok ? "ok" : "FAIL");
          if (g_json)
            std::fprintf(g_json,
                         "{\"lab\":\"wgmma\",\"gpu\":\"%s\",\"kind\":\"check\",\"version\":\"%s\",\"mode\":\"%s\","
                         "\"M\":%d,\"N\":%d,\"K\":%d,\"rel_err\":%.3e,\"ok\":%s}\n",
                         g_gpu.c_str(), cfg_name(c).c_str(), kModes[mode], M, N, K, rel, ok ? "true" : "false");
        }
    CK(cudaFree(db));
    CK(cudaFree(dbf));
    CK(cudaFree(dx));
    CK(cudaFree(dA));
    CK(cudaFree(dW));
    CK(cudaFree(dy));
  }
}

struct Product {
  const char* name;
  int N, K;
  Out out;  // what the engine does with it
};
const Product kProducts[] = {{"qkv", 2304, 768, Out::kStore},
                             {"proj", 768, 768, Out::kResidual},
                             {"fc", 3072, 768, Out::kGeluTanh},
                             {"mproj", 768, 3072, Out::kResidual}};
struct Pick {
  const WgmmaConfig* cfg = nullptr;
  int splits = 1;
  double us = -1;
};
Pick g_pick[2][4];  // [M 128 / 512][product]: the fastest v4 configuration, used by the chain

void run_timing() {
  std::printf("\n=== timing: us / call (best of 3 graph replays of %d calls), weights rotating over >= 256 MB ===\n",
              g_iters);
  const int Mmax = 512;
  __half* A = dev_alloc<__half>(static_cast<std::size_t>(Mmax) * 3072);
  __half* y = dev_alloc<__half>(static_cast<std::size_t>(Mmax) * 3072);
  float* x = dev_alloc<float>(static_cast<std::size_t>(Mmax) * 3072);
  __half* bias = dev_alloc<__half>(3072);
  float* bias_f = dev_alloc<float>(3072);
  CK(cudaMemset(bias_f, 0, 3072 * 4));
  CK(cudaMemset(A, 0x11, static_cast<std::size_t>(Mmax) * 3072 * 2));
  CK(cudaMemset(x, 0, static_cast<std::size_t>(Mmax) * 3072 * 4));
  CK(cudaMemset(bias, 0, 3072 * 2));
  for (int pi = 0; pi < 4; ++pi) {
    const Product& s = kProducts[pi];
    const std::size_t wn = static_cast<std::size_t>(s.N) * s.K;
    const int copies = static_cast<int>(std::ceil((256.0 * (1 << 20)) / (wn * 2.0)));
    __half* W = dev_alloc<__half>(wn * copies);
    CK(cudaMemset(W, 0x22, wn * copies * 2));
    for (int mi = 0; mi < 2; ++mi) {
      const int M = mi ? 512 : 128;
      for (const Version& v : kVersions) {
        const double us = time_graph_best(g_stream, [&](int it) {
          return launch(v, M, s.N, s.K, A, W + static_cast<std::size_t>(it % copies) * wn, y) == cudaSuccess;
        }, g_iters);
        std::printf("  M=%3d %-5s N=%4d K=%4d  %-14s %7.2f us  %7.1f GB/s of weights  %6.1f TFLOP/s  (store)\n", M,
                    s.name, s.N, s.K, v.name, us, wn * 2.0 / us * 1e-3, 2.0 * M * wn / us * 1e-6);
      }
      for (const WgmmaConfig& c : kWgmmaConfigs) {
        std::vector<CUtensorMap> mw(copies);
        for (int i = 0; i < copies; ++i) mw[i] = tensor_map(W + static_cast<std::size_t>(i) * wn, s.N, s.K, c.bn);
        const CUtensorMap ma = tensor_map(A, M, s.K, 64 * c.wg);
        for (int splits : {1, 2, 4, 8}) {
          if ((s.K / 64) % splits != 0) continue;
          for (int pdl = 0; pdl < 2; ++pdl) {
            const WgmmaArgs<__half> a = tma_args(M, s.N, s.K, splits, y, x, bias, bias_f);
            const double us = time_graph_best(g_stream, [&](int it) {
              return launch_tma(c, s.out, ma, mw[it % copies], a, pdl == 1) == cudaSuccess;
            }, g_iters);
            std::printf("  M=%3d %-5s N=%4d K=%4d  %-11s/s%d%s %7.2f us  %7.1f GB/s of weights  %6.1f TFLOP/s\n", M,
                        s.name, s.N, s.K, cfg_name(c).c_str(), splits, pdl ? " pdl" : "    ", us, wn * 2.0 / us * 1e-3,
                        2.0 * M * wn / us * 1e-6);
            if (us > 0 && pdl == 1 && (g_pick[mi][pi].us < 0 || us < g_pick[mi][pi].us)) g_pick[mi][pi] = {&c, splits, us};
            if (g_json)
              std::fprintf(g_json,
                           "{\"lab\":\"wgmma\",\"gpu\":\"%s\",\"kind\":\"time\",\"version\":\"%s\",\"splits\":%d,"
                           "\"pdl\":%s,\"product\":\"%s\",\"M\":%d,\"us\":%.3f}\n",
                           g_gpu.c_str(), cfg_name(c).c_str(), splits, pdl ? "true" : "false", s.name, M, us);
          }
        }
      }
    }
    CK(cudaFree(W));
  }
  CK(cudaFree(A));
  CK(cudaFree(y));
  CK(cudaFree(x));
  CK(cudaFree(bias));
  CK(cudaFree(bias_f));
}

// One GPT-2 124M layer's products and LayerNorms (attention left out, as in gemm_lab's chain) with the v4 kernels:
// LN1 -> QKV -> proj (x +=) -> LN2 -> FC GELU -> MLP projection (x +=), each product with its fastest v4
// configuration at this M, the weights rotating over >= 256 MB of layers; without and with PDL on every launch.
// Compare with gemm_lab's "chain M=... cuBLASLt" line from the same call.
void run_chain() {
  constexpr int C = 768, I = 3072;
  const std::size_t n_w[4] = {3ull * C * C, 1ull * C * C, 1ull * I * C, 1ull * C * I};
  const std::size_t per_layer = n_w[0] + n_w[1] + n_w[2] + n_w[3];
  const int nl = static_cast<int>(std::ceil(256.0 * (1 << 20) / (per_layer * 2.0)));
  __half* pool = dev_alloc<__half>(per_layer * nl);
  CK(cudaMemset(pool, 0x11, per_layer * nl * 2));
  const int Mmax = 512;
  __half *h = dev_alloc<__half>(Mmax * C), *qkv = dev_alloc<__half>(Mmax * 3 * C), *att = dev_alloc<__half>(Mmax * C),
         *fc = dev_alloc<__half>(static_cast<std::size_t>(Mmax) * I), *bias = dev_alloc<__half>(I);
  float *x = dev_alloc<float>(Mmax * C), *lnw = dev_alloc<float>(C), *lnb = dev_alloc<float>(C);
  CK(cudaMemset(att, 0x11, Mmax * C * 2));
  CK(cudaMemset(bias, 0, I * 2));
  CK(cudaMemset(x, 0, Mmax * C * 4));
  std::vector<float> ones(C, 1.f);
  CK(cudaMemcpy(lnw, ones.data(), C * 4, cudaMemcpyHostToDevice));
  CK(cudaMemset(lnb, 0, C * 4));
  std::printf("\n=== chain: one layer's products + LayerNorms with the v4 kernels (%d layers rotating) ===\n", nl);
  for (int mi = 0; mi < 2; ++mi) {
    const int M = mi ? 512 : 128;
    bool have = true;
    for (int pi = 0; pi < 4; ++pi) have = have && g_pick[mi][pi].cfg;
    if (!have) continue;
    const __half* ins[4] = {h, att, h, fc};
    __half* outs[4] = {qkv, nullptr, fc, nullptr};
    std::vector<std::array<CUtensorMap, 4>> mw(nl);
    std::array<CUtensorMap, 4> ma;
    for (int pi = 0; pi < 4; ++pi) {
      const Pick& pk = g_pick[mi][pi];
      ma[pi] = tensor_map(ins[pi], M, kProducts[pi].K, 64 * pk.cfg->wg);
      for (int l = 0; l < nl; ++l) {
        std::size_t off = static_cast<std::size_t>(l) * per_layer;
        for (int q = 0; q < pi; ++q) off += n_w[q];
        mw[l][pi] = tensor_map(pool + off, kProducts[pi].N, kProducts[pi].K, pk.cfg->bn);
      }
    }
    auto ln = [&](bool pdl) {
      return gptbench::cuda_engine::kernels::launch_kernel(
                 gptbench::cuda_engine::kernels::residual_layernorm_reg<__half, 6>, dim3((M + 3) / 4), dim3(128), 0,
                 g_stream, pdl, x, static_cast<const __half*>(nullptr), static_cast<const float*>(lnw),
                 static_cast<const float*>(lnb), h, M, C, 1e-5f) == cudaSuccess;
    };
    for (int pdl = 0; pdl < 2; ++pdl) {
      const double us = time_graph_best(g_stream, [&](int it) {
        const int l = it % nl;
        bool ok = true;
        for (int pi = 0; pi < 4 && ok; ++pi) {
          const Pick& pk = g_pick[mi][pi];
          const WgmmaArgs<__half> a =
              tma_args(M, kProducts[pi].N, kProducts[pi].K, pk.splits, outs[pi], x, bias, nullptr);
          ok = launch_tma(*pk.cfg, kProducts[pi].out, ma[pi], mw[l][pi], a, pdl == 1) == cudaSuccess;
          if (ok && (pi == 1 || pi == 3)) ok = ln(pdl == 1);
        }
        return ok;
      }, g_iters);
      std::printf("chain M=%4d  v4%s %8.2f us / layer (qkv %s/s%d, proj %s/s%d, fc %s/s%d, mproj %s/s%d)\n", M,
                  pdl ? " pdl" : "    ", us, cfg_name(*g_pick[mi][0].cfg).c_str(), g_pick[mi][0].splits, cfg_name(*g_pick[mi][1].cfg).c_str(),
                  g_pick[mi][1].splits, cfg_name(*g_pick[mi][2].cfg).c_str(), g_pick[mi][2].splits, cfg_name(*g_pick[mi][3].cfg).c_str(),
                  g_pick[mi][3].splits);
      if (g_json)
        std::fprintf(g_json, "{\"lab\":\"wgmma\",\"gpu\":\"%s\",\"kind\":\"chain\",\"M\":%d,\"pdl\":%s,\"us\":%.3f}\n",
                     g_gpu.c_str(), M, pdl ? "true" : "false", us);
    }
  }
  for (void* q : {static_cast<void*>(pool), static_cast<void*>(h), static_cast<void*>(qkv), static_cast<void*>(att),
                  static_cast<void*>(fc), static_cast<void*>(bias), static_cast<void*>(x), static_cast<void*>(lnw),
                  static_cast<void*>(lnb)})
    CK(cudaFree(q));
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (const int taken = common_option(argc, argv, i, g_json, g_iters); taken != 0) {
      if (taken < 0) return 2;
    } else if (!std::strcmp(argv[i], "--swap-offsets")) {
      g_swap = true;
    } else {
      std::fprintf(stderr, "usage: %s [--iters N] [--json FILE] [--swap-offsets]\n", argv[0]);
      return 2;
    }
  }
  cudaDeviceProp prop{};
  CK(cudaGetDeviceProperties(&prop, 0));
  g_gpu = prop.name;
  std::printf("wgmma_lab on %s (%d SMs, sm_%d%d)\n", prop.name, prop.multiProcessorCount, prop.major, prop.minor);
  if (prop.major != 9) {
    std::printf("wgmma needs an sm_90 GPU: skipped\n");
    return 0;
  }
  CK(cudaStreamCreateWithFlags(&g_stream, cudaStreamNonBlocking));
  run_checks();
  if (!g_swap) {
    run_timing();
    run_chain();
  }
  std::printf("\n%s (%d failures)\n", g_failures ? "FAILED" : "ALL CHECKS PASSED", g_failures);
  if (g_json) std::fclose(g_json);
  return g_failures ? 1 : 0;
}
