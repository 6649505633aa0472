#pragma once
// Products of few rows (prefill of one or a few short sequences) on mma.sync tensor-core instructions, with the
// LayerNorm that feeds them fused into the prologue and bias / GELU / residual add fused into the epilogue.
//
//   y[M, N] = A[M, K] . W[N, K]^T + bias         A: T row-major, or A = LayerNorm(x) of the float residual stream
//
// A LAB KERNEL, NOT USED BY THE ENGINE (lab/cuda/gemm_lab.cu checks and times it). It was written to beat
// cuBLASLt on the 128-row products of a GPT-2 124M batch-1 prefill (N = 768 .. 3072, K = 768 / 3072: 6 .. 24
// output tiles of 128 x 128) by spreading small tiles with split-K over all SMs and fusing the LayerNorm and the
// residual add (4 kernels per layer instead of 6). It is correct (every check of the lab passes, fp16 and bf16)
// but SLOWER than cuBLASLt: measured on an H200 (2026-11-26, weights rotating through HBM), one layer's four
// products at M = 128 take 55.7 us against 30.1 us for cuBLASLt + its LayerNorm / residual kernels, and 166.7 vs
// 35.4 us at M = 512; the LayerNorm-fused products are the worst (M = 128 QKV: 15.9 vs 6.9 us, x in L2).
// Nsight Compute (M = 64, LN -> QKV, 32x64): 1 warp per scheduler (4 warps per block, 1-2 blocks per SM: 86 KB of
// shared memory, 165 registers), 4.7 cycles between issued instructions, ~3,000 instructions per warp, memory
// throughput 4 % of DRAM: the kernel is bound by the latency of its own instruction stream (the per-row
// LayerNorm, per-thread cp.async address arithmetic, 16 mma.sync per k-tile per warp), not by memory. cuBLASLt's
// Hopper kernels move a tile with one TMA instruction and multiply with warpgroup wgmma; a small-M kernel that
// wins needs the same (TMA + wgmma, or many more warps per SM), which is the next step, not this file.
//
// Design (sm_80+, built for sm_90): 4 warps (2 x 2) per block; each warp owns a (BM/2) x (BN/2) accumulator tile
// in registers (m16n8k16, float accumulators). K is walked in tiles of 64 through a STAGES-deep cp.async
// pipeline. Shared memory rows are padded by 8 elements (16 bytes), which makes ldmatrix's 8 row addresses hit
// 8 distinct 16-byte bank groups (row stride = 9 or K/8 + 1 groups, both 1 mod 8).
//
//   GemmIn::kPlain      A tiles stream through the pipeline with W.
//   GemmIn::kLayerNorm  the block's BM rows of x (float, [M, K], K a multiple of 128 up to 1024) are read once,
//                       normalised in registers (two-pass mean / variance, like the LayerNorm kernels) and kept in
//                       shared memory as T for the whole K; only W streams. No split-K (each block needs whole rows).
//   GemmOut::kStore / kGeluTanh / kGeluErf: y = (acc + bias) (-> GELU) as T, row stride ldy.
//   GemmOut::kResidualAdd: resid[M, N] (float) += acc + bias — the residual stream update of attn.c_proj / mlp.c_proj.
//
// Split-K (splits > 1, kPlain only): block z sums k-tiles [z*kt/splits, (z+1)*kt/splits) and writes its float
// partial tile to `partial`; the last block of a tile to arrive (an atomic counter per tile, reset by that block, so
// the counters are zero again for the next launch and inside CUDA graphs) adds the partials in split order 0, 1, ...
// — the same order whichever block arrives last, so results are bitwise reproducible — and runs the epilogue.
//
// Fragment layouts are those documented in attention_mma.cuh. A fragments: ldmatrix x4 with lanes 0-15 addressing
// rows 0-15 at k 0 and lanes 16-31 rows 0-15 at k 8. B(k, n) = W[n][k], W rows stored [n][k] (K contiguous) is the
// "col" layout, so plain ldmatrix x4 over 16 n-rows x 16 k gives {b0, b1} of n-tile 0 (lanes 0-7: n 0-7 at k 0,
// lanes 8-15: n 0-7 at k 8) and of n-tile 1 (lanes 16-31: n 8-15).
#include <cuda_runtime.h>

#include <cstdint>

#include "backends/cuda/attention_mma.cuh"
#include "backends/cuda/kernels.cuh"

namespace gptbench::cuda_engine::kernels {

enum class GemmIn { kPlain, kLayerNorm };
enum class GemmOut { kStore, kGeluTanh, kGeluErf, kResidualAdd };

template <typename T>
struct GemmMmaArgs {
  int M = 0, N = 0, K = 0;       // K a multiple of 64; N a multiple of 8
  const T* A = nullptr;          // kPlain: [M, K]
  const float* x = nullptr;      // kLayerNorm: [M, K] residual stream; A = LN(x; ln_w, ln_b, eps)
  const float* ln_w = nullptr;
  const float* ln_b = nullptr;
  float eps = 1e-5f;
  const T* W = nullptr;          // [N, K]
  const T* bias = nullptr;       // [N] or nullptr
  T* y = nullptr;                // kStore / kGelu*: [M, ldy]
  int ldy = 0;
  float* resid = nullptr;        // kResidualAdd: [M, N]
  int splits = 1;                // split-K factor; divides K / 64 (kPlain only)
  float* partial = nullptr;      // splits > 1: [splits, M, N]
  int* counters = nullptr;       // splits > 1: one per output tile, zero initially (and left zero)
  // Launch as a programmatic dependent of the kernel before (Hopper PDL): the blocks may become resident while
  // that kernel finishes, stream their first weight tiles in, and wait (griddepcontrol.wait) before reading A / x
  // or writing anything. The kernel lets its own dependents launch as soon as all its blocks are running.
  bool pdl = false;
};

namespace gemm_detail {

constexpr int kThreads = 128;  // 2 x 2 warps
constexpr int kBK = 64;
constexpr int kLd = kBK + 8;

// 16-byte cp.async that writes zeros when `valid` is false (src-size 0: nothing is read).
__device__ __forceinline__ void cp_async_16_zfill(std::uint32_t dst, const void* src, bool valid) {
  const int bytes = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(__cvta_generic_to_global(src)),
               "r"(bytes)
               : "memory");
}

}  // namespace gemm_detail

// Dynamic shared memory of one block.
template <typename T, int BM, int BN, int STAGES>
__host__ __device__ constexpr int gemm_mma_smem_bytes(GemmIn in, int K) {
  return ((in == GemmIn::kLayerNorm ? BM * (K + 8) : STAGES * BM * gemm_detail::kLd) +
          STAGES * BN * gemm_detail::kLd) *
         static_cast<int>(sizeof(T));
}

template <typename T, int BM, int BN, int STAGES, GemmIn IN, GemmOut OUT>
__global__ void __launch_bounds__(gemm_detail::kThreads) gemm_mma(GemmMmaArgs<T> p) {
  static_assert(sizeof(T) == 2, "half or bfloat16 only");
  using namespace mma_detail;
  using gemm_detail::kBK;
  using gemm_detail::kLd;
  using gemm_detail::kThreads;
  constexpr int kWTM = BM / 2, kWTN = BN / 2;  // warp tile
  constexpr int kMT = kWTM / 16, kNT = kWTN / 8;
  static_assert(kWTM % 16 == 0 && kWTN % 16 == 0, "warp tile: multiples of 16 x 16");

  extern __shared__ __align__(16) unsigned char gemm_smem[];
  T* smem = reinterpret_cast<T*>(gemm_smem);
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int wm = warp >> 1, wn = warp & 1;
  const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;
  const int k_tiles = p.K / kBK;
  const int per_split = k_tiles / p.splits;
  const int kt0 = blockIdx.z * per_split, kt1 = kt0 + per_split;

  const int a_ld = IN == GemmIn::kLayerNorm ? p.K + 8 : kLd;
  T* a_smem = smem;
  T* w_smem = smem + (IN == GemmIn::kLayerNorm ? BM * (p.K + 8) : STAGES * BM * kLd);

  auto load_w = [&](int stage, int kt) {
    T* dst = w_smem + stage * BN * kLd;
    const int k = kt * kBK;
#pragma unroll
    for (int c = tid; c < BN * 8; c += kThreads) {
      const int r = c >> 3, kc = (c & 7) * 8;
      const bool ok = n0 + r < p.N;
      const T* src = p.W + static_cast<std::int64_t>(ok ? n0 + r : 0) * p.K + k + kc;
      gemm_detail::cp_async_16_zfill(smem_addr(dst + r * kLd + kc), src, ok);
    }
  };
  auto load_a = [&](int stage, int kt) {
    T* dst = a_smem + stage * BM * kLd;
    const int k = kt * kBK;
#pragma unroll
    for (int c = tid; c < BM * 8; c += kThreads) {
      const int r = c >> 3, kc = (c & 7) * 8;
      const bool ok = m0 + r < p.M;
      const T* src = p.A + static_cast<std::int64_t>(ok ? m0 + r : 0) * p.K + k + kc;
      gemm_detail::cp_async_16_zfill(smem_addr(dst + r * kLd + kc), src, ok);
    }
  };

  // Without PDL both griddepcontrol instructions are no-ops.
  asm volatile("griddepcontrol.launch_dependents;");
  // The weights do not depend on the kernel before: their first stages are in flight while it finishes (PDL)
  // and during the LayerNorm. Everything after the wait may read its outputs.
  // cp.async groups: tile kt's operands are complete once groups 0 .. kt+1 (plain: group 0 holds the first weight
  // stages, group s+1 the A stage s) or 0 .. kt (LayerNorm: group s = weight stage s) are; with one group committed
  // per main-loop iteration, cp_async_wait<STAGES - 2> at iteration kt ensures that in both cases.
  if constexpr (IN == GemmIn::kPlain) {
#pragma unroll
    for (int s = 0; s < STAGES - 1; ++s)
      if (kt0 + s < kt1) load_w(s, kt0 + s);
    cp_async_commit();
    asm volatile("griddepcontrol.wait;" ::: "memory");
#pragma unroll
    for (int s = 0; s < STAGES - 1; ++s) {
      if (kt0 + s < kt1) load_a(s, kt0 + s);
      cp_async_commit();
    }
  } else {
#pragma unroll
    for (int s = 0; s < STAGES - 1; ++s) {
      if (kt0 + s < kt1) load_w(s, kt0 + s);
      cp_async_commit();
    }
    asm volatile("griddepcontrol.wait;" ::: "memory");
  }

  if constexpr (IN == GemmIn::kLayerNorm) {
    // One warp per row, two rows at a time so that 2 x K/128 16-byte loads per lane are in flight (one row at a
    // time waited out the L2 latency for every row). Lane holds columns (i*32 + lane)*4 .. +3, i < K/128 <= 8.
    const int nv = p.K / 128;
    float4 w[8], b[8];
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      if (i < nv) {
        w[i] = *reinterpret_cast<const float4*>(p.ln_w + (i * 32 + lane) * 4);
        b[i] = *reinterpret_cast<const float4*>(p.ln_b + (i * 32 + lane) * 4);
      }
    }
    for (int r0 = 2 * warp; r0 < BM; r0 += 2 * (kThreads / 32)) {
      float4 v[2][8];
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        const int m = m0 + r0 + j;
        const float4* row = reinterpret_cast<const float4*>(p.x + static_cast<std::int64_t>(m < p.M ? m : 0) * p.K);
#pragma unroll
        for (int i = 0; i < 8; ++i)
          if (i < nv) v[j][i] = m < p.M ? row[i * 32 + lane] : make_float4(0.f, 0.f, 0.f, 0.f);
      }
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        float sum = 0.f;
#pragma unroll
        for (int i = 0; i < 8; ++i)
          if (i < nv) sum += (v[j][i].x + v[j][i].y) + (v[j][i].z + v[j][i].w);
        const float mean = warp_sum(sum) / static_cast<float>(p.K);
        float sq = 0.f;
#pragma unroll
        for (int i = 0; i < 8; ++i) {
          if (i < nv) {
            const float a = v[j][i].x - mean, c = v[j][i].y - mean, d = v[j][i].z - mean, e = v[j][i].w - mean;
            sq += (a * a + c * c) + (d * d + e * e);
          }
        }
        const float rstd = rsqrtf(warp_sum(sq) / static_cast<float>(p.K) + p.eps);
        const bool valid = m0 + r0 + j < p.M;  // rows past M: zeros (never stored)
        T* dst = a_smem + (r0 + j) * a_ld;
#pragma unroll
        for (int i = 0; i < 8; ++i) {
          if (i < nv) {
            const float4 x = v[j][i];
            uint2 packed = make_uint2(0u, 0u);
            if (valid) {
              packed.x = pack2<T>((x.x - mean) * rstd * w[i].x + b[i].x, (x.y - mean) * rstd * w[i].y + b[i].y);
              packed.y = pack2<T>((x.z - mean) * rstd * w[i].z + b[i].z, (x.w - mean) * rstd * w[i].w + b[i].w);
            }
            *reinterpret_cast<uint2*>(dst + (i * 32 + lane) * 4) = packed;
          }
        }
      }
    }
  }

  float acc[kMT][kNT][4];
#pragma unroll
  for (int i = 0; i < kMT; ++i)
#pragma unroll
    for (int j = 0; j < kNT; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[i][j][e] = 0.f;

  for (int kt = kt0; kt < kt1; ++kt) {
    cp_async_wait<STAGES - 2>();
    __syncthreads();  // stage kt is visible to all; stage kt-1 is free for the prefetch below
    const int next = kt + STAGES - 1;
    if (next < kt1) {
      load_w((next - kt0) % STAGES, next);
      if constexpr (IN == GemmIn::kPlain) load_a((next - kt0) % STAGES, next);
    }
    cp_async_commit();
    const int stage = (kt - kt0) % STAGES;
    const T* as = IN == GemmIn::kLayerNorm ? a_smem + kt * kBK : a_smem + stage * BM * kLd;
    const T* ws = w_smem + stage * BN * kLd;
#pragma unroll
    for (int kk = 0; kk < kBK / 16; ++kk) {
      std::uint32_t af[kMT][4];
      std::uint32_t bf[kNT][2];
#pragma unroll
      for (int mt = 0; mt < kMT; ++mt)
        ldmatrix_x4(af[mt], smem_addr(as + (wm * kWTM + mt * 16 + (lane & 15)) * a_ld + kk * 16 + (lane >> 4) * 8));
#pragma unroll
      for (int np = 0; np < kNT / 2; ++np) {
        std::uint32_t r[4];
        ldmatrix_x4(r, smem_addr(ws + (wn * kWTN + np * 16 + (lane >> 4) * 8 + (lane & 7)) * kLd + kk * 16 +
                                 ((lane >> 3) & 1) * 8));
        bf[2 * np][0] = r[0];
        bf[2 * np][1] = r[1];
        bf[2 * np + 1][0] = r[2];
        bf[2 * np + 1][1] = r[3];
      }
#pragma unroll
      for (int mt = 0; mt < kMT; ++mt)
#pragma unroll
        for (int nt = 0; nt < kNT; ++nt) mma_16816<T>(acc[mt][nt], af[mt], bf[nt][0], bf[nt][1]);
    }
  }
  cp_async_wait<0>();

  // ---- epilogue: the accumulators go through shared memory (the pipeline buffers are free now) so that global
  // memory is read and written in 16-byte chunks, all of a thread's loads issued before any is used: the
  // fragment-order epilogue waited out one memory latency per read-modify-write of the residual stream.
  __syncthreads();  // every warp is done reading the pipeline buffers
  constexpr int kCLd = BN + 4;  // floats per staged row (16-byte aligned, shifts banks by 4 per row)
  float* c_smem = reinterpret_cast<float*>(gemm_smem);
  static_assert(BM * kCLd * 4 <= STAGES * BN * kLd * 2, "staged tile must fit the weight stages (at least)");
  {
    const int g = lane >> 2, t = lane & 3;
#pragma unroll
    for (int mt = 0; mt < kMT; ++mt)
#pragma unroll
      for (int nt = 0; nt < kNT; ++nt)
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const int r = wm * kWTM + mt * 16 + g + 8 * h, c = wn * kWTN + nt * 8 + 2 * t;
          *reinterpret_cast<float2*>(c_smem + r * kCLd + c) = make_float2(acc[mt][nt][2 * h], acc[mt][nt][2 * h + 1]);
        }
  }
  __syncthreads();
  // Thread tid owns the 4-column chunks tid, tid + 128, ... of the tile (row = chunk / (BN/4)).
  constexpr int kRowChunks = BN / 4, kChunks = BM * kRowChunks / kThreads;
  static_assert(BM * kRowChunks % kThreads == 0, "tile chunks must spread evenly");
  float4 v[kChunks];
#pragma unroll
  for (int i = 0; i < kChunks; ++i) {
    const int chunk = tid + i * kThreads, r = chunk / kRowChunks, c = (chunk % kRowChunks) * 4;
    v[i] = *reinterpret_cast<const float4*>(c_smem + r * kCLd + c);
  }
  auto in_bounds = [&](int i, int& m, int& n) {
    const int chunk = tid + i * kThreads;
    m = m0 + chunk / kRowChunks;
    n = n0 + (chunk % kRowChunks) * 4;
    return m < p.M && n < p.N;  // N is a multiple of 8: a chunk is wholly in or out
  };

  if (p.splits > 1) {
    // Every split writes its partial tile; the last to arrive adds all of them in split order.
    float* mine = p.partial + static_cast<std::int64_t>(blockIdx.z) * p.M * p.N;
#pragma unroll
    for (int i = 0; i < kChunks; ++i) {
      int m, n;
      if (in_bounds(i, m, n)) __stcg(reinterpret_cast<float4*>(mine + static_cast<std::int64_t>(m) * p.N + n), v[i]);
    }
    __threadfence();
    __syncthreads();
    __shared__ int is_last;
    if (tid == 0) {
      int* counter = p.counters + blockIdx.y * gridDim.x + blockIdx.x;
      const int arrived = atomicAdd(counter, 1);
      is_last = arrived == p.splits - 1;
      if (is_last) atomicExch(counter, 0);  // every split has arrived: ready for the next launch
    }
    __syncthreads();
    if (!is_last) return;
    __threadfence();
    float4 sum[kChunks];
#pragma unroll
    for (int i = 0; i < kChunks; ++i) sum[i] = make_float4(0.f, 0.f, 0.f, 0.f);
    for (int z = 0; z < p.splits; ++z) {
      float4 q[kChunks];
#pragma unroll
      for (int i = 0; i < kChunks; ++i) {  // all of this split's loads in flight together
        int m, n;
        q[i] = z == static_cast<int>(blockIdx.z) || !in_bounds(i, m, n)
                   ? v[i]
                   : __ldcg(reinterpret_cast<const float4*>(p.partial + (static_cast<std::int64_t>(z) * p.M + m) * p.N + n));
      }
#pragma unroll
      for (int i = 0; i < kChunks; ++i) {
        sum[i].x += q[i].x;
        sum[i].y += q[i].y;
        sum[i].z += q[i].z;
        sum[i].w += q[i].w;
      }
    }
#pragma unroll
    for (int i = 0; i < kChunks; ++i) v[i] = sum[i];
  }

  // Loads of the epilogue first (bias, and the residual stream), then the math and the stores.
  float4 bias[kChunks], old[kChunks];
#pragma unroll
  for (int i = 0; i < kChunks; ++i) {
    int m, n;
    bias[i] = make_float4(0.f, 0.f, 0.f, 0.f);
    old[i] = bias[i];
    if (!in_bounds(i, m, n)) continue;
    if (p.bias) {
      const uint2 raw = *reinterpret_cast<const uint2*>(p.bias + n);  // 4 values of T
      const T* e = reinterpret_cast<const T*>(&raw);
      bias[i] = make_float4(to_f<T>(e[0]), to_f<T>(e[1]), to_f<T>(e[2]), to_f<T>(e[3]));
    }
    if constexpr (OUT == GemmOut::kResidualAdd)
      old[i] = *reinterpret_cast<const float4*>(p.resid + static_cast<std::int64_t>(m) * p.N + n);
  }
#pragma unroll
  for (int i = 0; i < kChunks; ++i) {
    int m, n;
    if (!in_bounds(i, m, n)) continue;
    float4 o = make_float4(v[i].x + bias[i].x, v[i].y + bias[i].y, v[i].z + bias[i].z, v[i].w + bias[i].w);
    if constexpr (OUT == GemmOut::kResidualAdd) {
      o.x += old[i].x;
      o.y += old[i].y;
      o.z += old[i].z;
      o.w += old[i].w;
      *reinterpret_cast<float4*>(p.resid + static_cast<std::int64_t>(m) * p.N + n) = o;
    } else {
      if constexpr (OUT == GemmOut::kGeluTanh) {
        o = make_float4(gelu_tanh(o.x), gelu_tanh(o.y), gelu_tanh(o.z), gelu_tanh(o.w));
      } else if constexpr (OUT == GemmOut::kGeluErf) {
        o = make_float4(gelu_erf(o.x), gelu_erf(o.y), gelu_erf(o.z), gelu_erf(o.w));
      }
      *reinterpret_cast<uint2*>(p.y + static_cast<std::int64_t>(m) * p.ldy + n) =
          make_uint2(pack2<T>(o.x, o.y), pack2<T>(o.z, o.w));
    }
  }
}

// ---- host side ------------------------------------------------------------------------------------------------

// Block tile shapes that are compiled (BM x BN); all use 4 pipeline stages.
enum class GemmTile { k32x64, k64x64, k64x32 };
constexpr int kGemmStages = 4;

inline int gemm_tile_m(GemmTile t) { return t == GemmTile::k32x64 ? 32 : 64; }
inline int gemm_tile_n(GemmTile t) { return t == GemmTile::k64x32 ? 32 : 64; }
inline const char* gemm_tile_name(GemmTile t) {
  return t == GemmTile::k32x64 ? "32x64" : t == GemmTile::k64x64 ? "64x64" : "64x32";
}

// Whether the kernels take this product: K a multiple of 64 (and of 128, at most 1024, with LayerNorm in the
// prologue), N a multiple of 8 (pairs of columns are written together).
inline bool gemm_mma_supported(GemmIn in, int N, int K) {
  if (K % 64 != 0 || N % 8 != 0 || K <= 0 || N <= 0) return false;
  if (in == GemmIn::kLayerNorm) return K % 128 == 0 && K <= 1024;
  return true;
}

// A default shape (the lab ranks it among all shapes): blocks enough to cover the SMs once where possible.
// LayerNorm-fused products cannot split K, so they take the first tile that fills the SMs; plain ones take 64 x 64
// (32 x 64 below 64 rows) and split K (dividing the k-tiles, at least 2 k-tiles per split) until the blocks cover
// the SMs. Measured: a poor rule for plain products (fewer, larger splits won), fine for LayerNorm ones at M <= 128.
struct GemmMmaConfig {
  GemmTile tile = GemmTile::k64x64;
  int splits = 1;
};
inline GemmMmaConfig choose_gemm_mma(GemmIn in, int M, int N, int K, int sm_count) {
  GemmMmaConfig cfg;
  auto blocks = [&](GemmTile t) {
    return ((M + gemm_tile_m(t) - 1) / gemm_tile_m(t)) * ((N + gemm_tile_n(t) - 1) / gemm_tile_n(t));
  };
  if (in == GemmIn::kLayerNorm) {
    // Fewer rows per block re-read the weights more often, fewer columns re-read x: take the first that fills.
    for (GemmTile t : {GemmTile::k64x64, GemmTile::k32x64, GemmTile::k64x32}) {
      cfg.tile = t;
      if (blocks(t) >= sm_count) break;
    }
    if (blocks(cfg.tile) < sm_count) cfg.tile = blocks(GemmTile::k32x64) >= blocks(GemmTile::k64x32)
                                                    ? GemmTile::k32x64
                                                    : GemmTile::k64x32;
    return cfg;
  }
  cfg.tile = M <= 32 ? GemmTile::k32x64 : GemmTile::k64x64;
  const int tiles = blocks(cfg.tile), k_tiles = K / 64;
  for (int s = 1; s <= k_tiles / 2; ++s) {
    if (k_tiles % s != 0) continue;
    cfg.splits = s;
    if (tiles * s >= sm_count) break;
  }
  return cfg;
}

template <typename T, int BM, int BN, GemmIn IN, GemmOut OUT>
void launch_gemm_mma_shape(const GemmMmaArgs<T>& p, cudaStream_t stream) {
  auto kernel = gemm_mma<T, BM, BN, kGemmStages, IN, OUT>;
  const int smem = gemm_mma_smem_bytes<T, BM, BN, kGemmStages>(IN, p.K);
  static int configured = 0;  // per instantiation: the largest dynamic shared memory allowed so far
  if (smem > 48 * 1024 && smem > configured) {
    cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
    configured = smem;
  }
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = dim3((p.N + BN - 1) / BN, (p.M + BM - 1) / BM, p.splits);
  cfg.blockDim = dim3(gemm_detail::kThreads);
  cfg.dynamicSmemBytes = smem;
  cfg.stream = stream;
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = 1;
  cfg.attrs = attr;
  cfg.numAttrs = p.pdl ? 1 : 0;
  cudaLaunchKernelEx(&cfg, kernel, p);
}

template <typename T, GemmIn IN, GemmOut OUT>
void launch_gemm_mma_out(const GemmMmaArgs<T>& p, GemmTile tile, cudaStream_t stream) {
  switch (tile) {
    case GemmTile::k32x64: launch_gemm_mma_shape<T, 32, 64, IN, OUT>(p, stream); break;
    case GemmTile::k64x64: launch_gemm_mma_shape<T, 64, 64, IN, OUT>(p, stream); break;
    case GemmTile::k64x32: launch_gemm_mma_shape<T, 64, 32, IN, OUT>(p, stream); break;
  }
}

// One product. The caller checks gemm_mma_supported, gives splits == 1 with kLayerNorm, and a `partial` /
// `counters` pair with splits > 1 (counters: at least the number of output tiles, zeroed once).
template <typename T>
void launch_gemm_mma(const GemmMmaArgs<T>& p, GemmIn in, GemmOut out, GemmTile tile, cudaStream_t stream) {
  if (in == GemmIn::kLayerNorm) {
    switch (out) {
      case GemmOut::kStore: launch_gemm_mma_out<T, GemmIn::kLayerNorm, GemmOut::kStore>(p, tile, stream); break;
      case GemmOut::kGeluTanh: launch_gemm_mma_out<T, GemmIn::kLayerNorm, GemmOut::kGeluTanh>(p, tile, stream); break;
      case GemmOut::kGeluErf: launch_gemm_mma_out<T, GemmIn::kLayerNorm, GemmOut::kGeluErf>(p, tile, stream); break;
      case GemmOut::kResidualAdd: launch_gemm_mma_out<T, GemmIn::kLayerNorm, GemmOut::kResidualAdd>(p, tile, stream); break;
    }
  } else {
    switch (out) {
      case GemmOut::kStore: launch_gemm_mma_out<T, GemmIn::kPlain, GemmOut::kStore>(p, tile, stream); break;
      case GemmOut::kGeluTanh: launch_gemm_mma_out<T, GemmIn::kPlain, GemmOut::kGeluTanh>(p, tile, stream); break;
      case GemmOut::kGeluErf: launch_gemm_mma_out<T, GemmIn::kPlain, GemmOut::kGeluErf>(p, tile, stream); break;
      case GemmOut::kResidualAdd: launch_gemm_mma_out<T, GemmIn::kPlain, GemmOut::kResidualAdd>(p, tile, stream); break;
    }
  }
}

}  // namespace gptbench::cuda_engine::kernels
