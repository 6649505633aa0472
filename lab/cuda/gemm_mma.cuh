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
// but SLOWER than cuBLASLt + the engine's LayerNorm / residual kernels on every shape timed (H200, 2026-11-26,
// weights rotating through HBM, us per call, best tile / split of each version):
//                     M = 64                     M = 128                    one layer's 4 products, M = 128
//   cuBLASLt + kernel  qkv 6.6 proj 5.0 mproj 7.7  qkv 6.9 proj 5.1 mproj 8.6  30.3 us (6 kernels)
//   4 warps  (KS = 1)  qkv 13.7 proj 5.9 mproj 11.5 qkv 15.9 proj 6.7 mproj 13.2 55.7 us (4 kernels)
//   16 warps (KS = 4)  qkv 8.9 proj 5.6 mproj 8.6  qkv 14.2 proj 5.7 mproj 11.4
// Fifth session: tiles "w2r" keep the block's whole weight slice resident (WRES), requested before
// griddepcontrol.wait so that a PDL launch overlaps all of its HBM latency with the kernel before; correct, but one
// layer's PDL chain took 44.8 us against 35.9 with the streamed tiles and 29.8 through cuBLASLt (H200, 128 rows).
// What the lab and Nsight Compute showed: with KS = 1 a block is 4 warps and a 128-row product has ~1 block per
// SM, so each scheduler holds one warp: 4.7 cycles between its instructions, ~3,000 instructions per warp, DRAM
// at 4 % — latency-bound on its own instruction stream. KS = 4 (16 warps splitting k inside the block) brings the
// plain products within 10 % of cuBLASLt + its residual kernel. The LayerNorm-fused products stay 2x slower: each
// block re-reads its rows of the float residual stream (x is 4 bytes a value and is read once per 32- or 64-column
// block: 14 MB of L2 traffic for a 128-row QKV, against 0.4 MB read + 3.5 MB of fp16 LN output for the unfused
// path). A small-M path that wins needs Hopper's own machinery (TMA bulk copies, warpgroup wgmma) or a
// persistent kernel that overlaps one product's weight stream with the next; this file is the measured
// starting point, not that.
//
// Design (sm_80+, built for sm_90): KS groups of 4 warps (2 x 2) per block; each warp owns a (BM/2) x (BN/2)
// accumulator tile in registers (m16n8k16, float accumulators). K is walked in stages of KS x 64 columns through a
// cp.async pipeline (4 stages, 3 for KS = 4); warp group g multiplies columns [64g, 64g + 64) of each stage and the
// groups' tiles are added in shared memory. Shared memory rows are padded by 8 elements (16 bytes), which makes
// ldmatrix's 8 row addresses hit 8 distinct 16-byte bank groups (row stride = 8 KS + 1 or K/8 + 1 groups, 1 mod 8).
//
//   GemmIn::kPlain      A tiles stream through the pipeline with W.
//   GemmIn::kLayerNorm  the block's BM rows of x (float, [M, K], K a multiple of 128 up to 1024) are read once,
//                       normalised in registers (two-pass mean / variance, like the LayerNorm kernels) and kept in
//                       shared memory as T for the whole K; only W streams. No split-K (each block needs whole rows).
//   GemmOut::kStore / kGeluTanh / kGeluErf: y = (acc + bias) (-> GELU) as T, row stride ldy.
//   GemmOut::kResidualAdd: resid[M, N] (float) += acc + bias — the residual stream update of attn.c_proj / mlp.c_proj.
//
// Split-K (splits > 1, kPlain only): block z sums stages [z*kt/splits, (z+1)*kt/splits) and writes its float
// partial tile to `partial`; the last block of a tile to arrive (an atomic counter per tile, reset by that block, so
// the counters are zero again for the next launch and inside CUDA graphs) adds the partials in split order 0, 1, ...
// — the same order whichever block arrives last, so results are bitwise reproducible — and runs the epilogue.
//
// Fragment layouts are those documented in attention_mma.cuh. A fragments: ldmatrix x4 with lanes 0-15 addressing
// rows 0-15 at k 0 and lanes 16-31 rows 0-15 at k 8. B(k, n) = W[n][k], W rows stored [n][k] (K contiguous) is the
// "col" layout, so plain ldmatrix x4 over 16 n-rows x 16 k gives {b0, b1} of n-tile 0 (lanes 0-7: n 0-7 at k 0,
// lanes 8-15: n 0-7 at k 8) and of n-tile 1 (lanes 16-31: n 8-15).
#include <cuda_runtime.h>

#include <algorithm>
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

constexpr int kBK = 64;  // k columns of one warp's slice of a pipeline stage

// 16-byte cp.async that writes zeros when `valid` is false (src-size 0: nothing is read).
__device__ __forceinline__ void cp_async_16_zfill(std::uint32_t dst, const void* src, bool valid) {
  const int bytes = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(__cvta_generic_to_global(src)),
               "r"(bytes)
               : "memory");
}

// One pipeline stage: rows [first, first + ROWS) of the row-major [*, K] matrix src, columns [k, k + CHUNKS * 8),
// into dst (row stride LD) with 16-byte cp.async; rows at or past `limit` are zero-filled, never read.
template <typename T, int ROWS, int LD, int CHUNKS, int THREADS>
__device__ __forceinline__ void load_stage(T* dst, const T* src, int K, int first, int limit, int k, int tid) {
#pragma unroll
  for (int c = tid; c < ROWS * CHUNKS; c += THREADS) {
    const int r = c / CHUNKS, kc = (c % CHUNKS) * 8;
    const bool ok = first + r < limit;
    const T* from = src + static_cast<std::int64_t>(ok ? first + r : 0) * K + k + kc;
    cp_async_16_zfill(mma_detail::smem_addr(dst + r * LD + kc), from, ok);
  }
}

// KS warp groups split each stage's k range (KS x 64 columns), so a block has 128 * KS threads.
__host__ __device__ constexpr int stages_for(int ks) { return ks >= 4 ? 3 : 4; }
__host__ __device__ constexpr int stage_ld(int ks) { return ks * kBK + 8; }  // elements per staged row (16 bytes of padding)

}  // namespace gemm_detail

// Dynamic shared memory of one block. k_split: the k extent of one split (K / splits); WRES (weights resident):
// the block's BN weight rows over its whole k extent, instead of pipeline stages.
template <typename T, int BM, int BN, int KS, bool WRES = false>
__host__ __device__ constexpr int gemm_mma_smem_bytes(GemmIn in, int K, int k_split) {
  constexpr int stages = gemm_detail::stages_for(KS), ld = gemm_detail::stage_ld(KS);
  return ((in == GemmIn::kLayerNorm ? BM * (K + 8) : stages * BM * ld) + (WRES ? BN * (k_split + 8) : stages * BN * ld)) *
         static_cast<int>(sizeof(T));
}

// KS = 1: 4 warps (2 x 2 over the BM x BN tile), each walks all of K. KS > 1: KS groups of 4 warps; group g takes
// the k columns [g*64, g*64 + 64) of every stage of KS*64 columns, and the groups' partial tiles are added (in
// group order) in shared memory before the epilogue — more warps per SM for the same number of blocks, which is
// what a 128-row product lacks (measured with KS = 1: one warp per scheduler, latency-bound instruction stream).
//
// WRES (weights resident, kPlain only): the block loads ALL of its weight rows for its k range (BN x K / splits)
// before griddepcontrol.wait — with PDL that whole fetch from HBM overlaps the kernel before — and only the
// activations stream through the pipeline. Blocks are kept small enough (~100 KB) for two kernels' blocks to share
// an SM, which is what lets a dependent become resident early at all.
template <typename T, int BM, int BN, int KS, GemmIn IN, GemmOut OUT, bool WRES = false>
__global__ void __launch_bounds__(128 * KS) gemm_mma(GemmMmaArgs<T> p) {
  static_assert(!WRES || IN == GemmIn::kPlain, "resident weights: plain products only");
  static_assert(sizeof(T) == 2, "half or bfloat16 only");
  using namespace mma_detail;
  using gemm_detail::kBK;
  constexpr int kThreads = 128 * KS;
  constexpr int STAGES = gemm_detail::stages_for(KS);
  constexpr int kLd = gemm_detail::stage_ld(KS);
  constexpr int kStageK = KS * kBK;            // k columns per stage
  constexpr int kRowChunks16 = kStageK / 8;    // 16-byte chunks per staged row
  constexpr int kWTM = BM / 2, kWTN = BN / 2;  // warp tile
  constexpr int kMT = kWTM / 16, kNT = kWTN / 8;
  static_assert(kWTM % 16 == 0 && kWTN % 16 == 0, "warp tile: multiples of 16 x 16");

  extern __shared__ __align__(16) unsigned char gemm_smem[];
  T* smem = reinterpret_cast<T*>(gemm_smem);
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int wk = warp >> 2, wm = (warp >> 1) & 1, wn = warp & 1;
  const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;
  const int k_tiles = p.K / kStageK;
  const int per_split = k_tiles / p.splits;
  const int kt0 = blockIdx.z * per_split, kt1 = kt0 + per_split;

  const int a_ld = IN == GemmIn::kLayerNorm ? p.K + 8 : kLd;
  T* a_smem = smem;
  T* w_smem = smem + (IN == GemmIn::kLayerNorm ? BM * (p.K + 8) : STAGES * BM * kLd);
  const int w_ld = WRES ? (kt1 - kt0) * kStageK + 8 : kLd;  // elements per staged weight row

  auto load_w = [&](int stage, int kt) {
    if constexpr (WRES) return;  // loaded whole in the prologue
    gemm_detail::load_stage<T, BN, kLd, kRowChunks16, kThreads>(w_smem + stage * BN * kLd, p.W, p.K, n0, p.N,
                                                               kt * kStageK, tid);
  };
  auto load_a = [&](int stage, int kt) {
    gemm_detail::load_stage<T, BM, kLd, kRowChunks16, kThreads>(a_smem + stage * BM * kLd, p.A, p.K, m0, p.M,
                                                               kt * kStageK, tid);
  };

  // Without PDL both griddepcontrol instructions are no-ops.
  asm volatile("griddepcontrol.launch_dependents;");
  // The weights do not depend on the kernel before: their first stages are in flight while it finishes (PDL)
  // and during the LayerNorm. Everything after the wait may read its outputs.
  // cp.async groups: stage kt's operands are complete once groups 0 .. kt+1 (plain: group 0 holds the first weight
  // stages, group s+1 the A stage s) or 0 .. kt (LayerNorm: group s = weight stage s) are; with one group committed
  // per main-loop iteration, cp_async_wait<STAGES - 2> at iteration kt ensures that in both cases.
  if constexpr (IN == GemmIn::kPlain) {
    if constexpr (WRES) {  // all weight rows of this block's k range
      const int chunks_per_row = (kt1 - kt0) * kStageK / 8;
      for (int c = tid; c < BN * chunks_per_row; c += kThreads) {
        const int r = c / chunks_per_row, kc = (c % chunks_per_row) * 8;
        const bool ok = n0 + r < p.N;
        const T* from = p.W + static_cast<std::int64_t>(ok ? n0 + r : 0) * p.K + kt0 * kStageK + kc;
        gemm_detail::cp_async_16_zfill(smem_addr(w_smem + r * w_ld + kc), from, ok);
      }
    } else {
#pragma unroll
      for (int s = 0; s < STAGES - 1; ++s)
        if (kt0 + s < kt1) load_w(s, kt0 + s);
    }
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
    for (int r0 = 2 * warp; r0 < BM; r0 += 2 * (kThreads / 32)) {
      float4 v[2][8];
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        const int m = m0 + r0 + j;
        const bool row_ok = r0 + j < BM && m < p.M;
        const float4* row = reinterpret_cast<const float4*>(p.x + static_cast<std::int64_t>(row_ok ? m : 0) * p.K);
#pragma unroll
        for (int i = 0; i < 8; ++i)
          if (i < nv) v[j][i] = row_ok ? row[i * 32 + lane] : make_float4(0.f, 0.f, 0.f, 0.f);
      }
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        if (r0 + j >= BM) break;
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
            const int c = (i * 32 + lane) * 4;
            const float4 x = v[j][i];
            uint2 packed = make_uint2(0u, 0u);
            if (valid) {
              const float4 w = *reinterpret_cast<const float4*>(p.ln_w + c);
              const float4 b = *reinterpret_cast<const float4*>(p.ln_b + c);
              packed.x = pack2<T>((x.x - mean) * rstd * w.x + b.x, (x.y - mean) * rstd * w.y + b.y);
              packed.y = pack2<T>((x.z - mean) * rstd * w.z + b.z, (x.w - mean) * rstd * w.w + b.w);
            }
            *reinterpret_cast<uint2*>(dst + c) = packed;
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
    // This warp group's 64 columns of the stage.
    const T* as = (IN == GemmIn::kLayerNorm ? a_smem + kt * kStageK : a_smem + stage * BM * kLd) + wk * kBK;
    const T* ws = (WRES ? w_smem + (kt - kt0) * kStageK : w_smem + stage * BN * kLd) + wk * kBK;
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
        ldmatrix_x4(r, smem_addr(ws + (wn * kWTN + np * 16 + (lane >> 4) * 8 + (lane & 7)) * w_ld + kk * 16 +
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

  // ---- epilogue: the accumulators go through shared memory (the pipeline buffers are free now): the warp
  // groups' partial tiles are added there, and global memory is read and written in 16-byte chunks, all of a
  // thread's loads issued before any is used (a fragment-order epilogue waited out one memory latency per
  // read-modify-write of the residual stream).
  __syncthreads();  // every warp is done reading the pipeline buffers
  constexpr int kCLd = BN + 4;  // floats per staged row (16-byte aligned, shifts banks by 4 per row)
  float* c_smem = reinterpret_cast<float*>(gemm_smem);
  static_assert(KS * BM * kCLd * 4 <= (WRES ? STAGES * BM * kLd : STAGES * BN * kLd) * 2,
                "staged tiles must fit the weight stages (resident weights: the activation stages)");
  {
    const int g = lane >> 2, t = lane & 3;
    float* mine = c_smem + wk * BM * kCLd;
#pragma unroll
    for (int mt = 0; mt < kMT; ++mt)
#pragma unroll
      for (int nt = 0; nt < kNT; ++nt)
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const int r = wm * kWTM + mt * 16 + g + 8 * h, c = wn * kWTN + nt * 8 + 2 * t;
          *reinterpret_cast<float2*>(mine + r * kCLd + c) = make_float2(acc[mt][nt][2 * h], acc[mt][nt][2 * h + 1]);
        }
  }
  __syncthreads();
  // Thread tid owns the 4-column chunks tid, tid + kThreads, ... of the tile (row = chunk / (BN/4)).
  constexpr int kRowChunks = BN / 4, kChunks = BM * kRowChunks / kThreads;
  static_assert(kChunks >= 1 && BM * kRowChunks % kThreads == 0, "tile chunks must spread evenly");
  float4 v[kChunks];
#pragma unroll
  for (int i = 0; i < kChunks; ++i) {
    const int chunk = tid + i * kThreads, r = chunk / kRowChunks, c = (chunk % kRowChunks) * 4;
    v[i] = *reinterpret_cast<const float4*>(c_smem + r * kCLd + c);
#pragma unroll
    for (int g = 1; g < KS; ++g) {  // warp groups in order: the same sum every run
      const float4 q = *reinterpret_cast<const float4*>(c_smem + (g * BM + r) * kCLd + c);
      v[i].x += q.x;
      v[i].y += q.y;
      v[i].z += q.z;
      v[i].w += q.w;
    }
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

// Block shapes that are compiled: BM x BN, and wK = KS warp groups splitting k (128 * KS threads).
// "r": weights resident (WRES), plain products only.
enum class GemmTile { k32x64, k64x64, k64x32, k32x64w2, k32x64w4, k64x64w4, k64x32w4, k32x32w2r, k64x32w2r, k32x64w2r };
constexpr GemmTile kGemmTiles[] = {GemmTile::k32x64,    GemmTile::k64x64,    GemmTile::k64x32,   GemmTile::k32x64w2,
                                   GemmTile::k32x64w4,  GemmTile::k64x64w4,  GemmTile::k64x32w4, GemmTile::k32x32w2r,
                                   GemmTile::k64x32w2r, GemmTile::k32x64w2r};

inline int gemm_tile_m(GemmTile t) {
  return t == GemmTile::k32x64 || t == GemmTile::k32x64w2 || t == GemmTile::k32x64w4 || t == GemmTile::k32x32w2r ||
                 t == GemmTile::k32x64w2r
             ? 32
             : 64;
}
inline int gemm_tile_n(GemmTile t) {
  return t == GemmTile::k64x32 || t == GemmTile::k64x32w4 || t == GemmTile::k32x32w2r || t == GemmTile::k64x32w2r ? 32
                                                                                                                 : 64;
}
inline bool gemm_tile_resident(GemmTile t) {
  return t == GemmTile::k32x32w2r || t == GemmTile::k64x32w2r || t == GemmTile::k32x64w2r;
}
inline int gemm_tile_ks(GemmTile t) {
  return t == GemmTile::k32x64w2 || gemm_tile_resident(t)                                       ? 2
         : t == GemmTile::k32x64w4 || t == GemmTile::k64x64w4 || t == GemmTile::k64x32w4 ? 4
                                                                                              : 1;
}
inline const char* gemm_tile_name(GemmTile t) {
  switch (t) {
    case GemmTile::k32x64: return "32x64";
    case GemmTile::k64x64: return "64x64";
    case GemmTile::k64x32: return "64x32";
    case GemmTile::k32x64w2: return "32x64w2";
    case GemmTile::k32x64w4: return "32x64w4";
    case GemmTile::k64x64w4: return "64x64w4";
    case GemmTile::k64x32w4: return "64x32w4";
    case GemmTile::k32x32w2r: return "32x32w2r";
    case GemmTile::k64x32w2r: return "64x32w2r";
    case GemmTile::k32x64w2r: return "32x64w2r";
  }
  return "?";
}
// The k extent of one pipeline stage: K must be a multiple of it, and split-K divides K by it.
inline int gemm_tile_stage_k(GemmTile t) { return 64 * gemm_tile_ks(t); }

inline int gemm_tile_smem_bytes(GemmTile t, GemmIn in, int K, int splits = 1) {
  const int ks = gemm_tile_ks(t), stages = gemm_detail::stages_for(ks), ld = gemm_detail::stage_ld(ks);
  const int bm = gemm_tile_m(t), bn = gemm_tile_n(t);
  return ((in == GemmIn::kLayerNorm ? bm * (K + 8) : stages * bm * ld) +
          (gemm_tile_resident(t) ? bn * (K / splits + 8) : stages * bn * ld)) *
         2;
}

// Whether the kernels take this product with this tile and split-K factor: K a multiple of the stage (and of 128,
// at most 1024, with LayerNorm in the prologue), N a multiple of 8 (4-column chunks are written whole), splits
// dividing the k stages (1 with LayerNorm), resident weights only for plain products, shared memory within the
// 227 KB a Hopper block may have (less 1 KB for the static shared memory). Without `splits`: whether some split-K factor is supported.
inline bool gemm_mma_supported(GemmIn in, int N, int K, GemmTile t, int splits) {
  if (K <= 0 || N <= 0 || K % gemm_tile_stage_k(t) != 0 || N % 8 != 0 || splits < 1) return false;
  if ((K / gemm_tile_stage_k(t)) % splits != 0) return false;
  if (in == GemmIn::kLayerNorm && (K % 128 != 0 || K > 1024 || splits != 1 || gemm_tile_resident(t))) return false;
  return gemm_tile_smem_bytes(t, in, K, splits) <= 226 * 1024;  // 227 KB less the static shared memory
}
inline bool gemm_mma_supported(GemmIn in, int N, int K, GemmTile t) {
  const int kt = K > 0 && K % gemm_tile_stage_k(t) == 0 ? K / gemm_tile_stage_k(t) : 0;
  for (int s = 1; s <= kt; ++s)
    if (gemm_mma_supported(in, N, K, t, s)) return true;
  return false;
}
inline bool gemm_mma_supported(GemmIn in, int N, int K) { return gemm_mma_supported(in, N, K, GemmTile::k32x64); }

// A default shape (the lab ranks it among all shapes; measured: often not the best one): a cost model of whole
// waves. Blocks per SM from shared memory (and one 512-thread block per SM for KS = 4, whose registers fill the
// SM); cost = waves x the k-work of one block x (1 + 1/4 for a split-K reduction), halved for KS = 4.
struct GemmMmaConfig {
  GemmTile tile = GemmTile::k64x64;
  int splits = 1;
};
inline GemmMmaConfig choose_gemm_mma(GemmIn in, int M, int N, int K, int sm_count) {
  GemmMmaConfig best;
  double best_cost = 1e300;
  for (GemmTile t : kGemmTiles) {
    if (gemm_tile_resident(t) || !gemm_mma_supported(in, N, K, t)) continue;  // resident: for PDL chains only
    const int bm = gemm_tile_m(t), bn = gemm_tile_n(t), ks = gemm_tile_ks(t);
    const int smem = gemm_tile_smem_bytes(t, in, K);
    const int per_sm = ks >= 4 ? 1 : std::max(1, std::min(3, (228 * 1024) / (smem + 1024)));
    const int tiles = ((M + bm - 1) / bm) * ((N + bn - 1) / bn), k_tiles = K / gemm_tile_stage_k(t);
    for (int s = 1; s <= (in == GemmIn::kPlain ? k_tiles : 1); ++s) {
      if (k_tiles % s != 0) continue;
      const int blocks = tiles * s;
      const int waves = (blocks + sm_count * per_sm - 1) / (sm_count * per_sm);
      const double cost = waves * static_cast<double>(bm) * bn * (K / s) * (s > 1 ? 1.25 : 1.0) / (ks >= 4 ? 2.0 : 1.0);
      if (cost < best_cost * 0.999) {
        best_cost = cost;
        best.tile = t;
        best.splits = s;
      }
    }
  }
  return best;
}

template <typename T, int BM, int BN, int KS, GemmIn IN, GemmOut OUT, bool WRES = false>
void launch_gemm_mma_shape(const GemmMmaArgs<T>& p, cudaStream_t stream) {
  auto kernel = gemm_mma<T, BM, BN, KS, IN, OUT, WRES>;
  const int smem = gemm_mma_smem_bytes<T, BM, BN, KS, WRES>(IN, p.K, p.K / p.splits);
  static int configured = 0;  // per instantiation: the largest dynamic shared memory allowed so far
  if (smem > 48 * 1024 && smem > configured) {
    cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
    configured = smem;
  }
  launch_kernel(kernel, dim3((p.N + BN - 1) / BN, (p.M + BM - 1) / BM, p.splits), dim3(128 * KS),
                static_cast<std::size_t>(smem), stream, p.pdl, p);
}

template <typename T, GemmIn IN, GemmOut OUT>
void launch_gemm_mma_out(const GemmMmaArgs<T>& p, GemmTile tile, cudaStream_t stream) {
  switch (tile) {
    case GemmTile::k32x64: launch_gemm_mma_shape<T, 32, 64, 1, IN, OUT>(p, stream); break;
    case GemmTile::k64x64: launch_gemm_mma_shape<T, 64, 64, 1, IN, OUT>(p, stream); break;
    case GemmTile::k64x32: launch_gemm_mma_shape<T, 64, 32, 1, IN, OUT>(p, stream); break;
    case GemmTile::k32x64w2: launch_gemm_mma_shape<T, 32, 64, 2, IN, OUT>(p, stream); break;
    case GemmTile::k32x64w4: launch_gemm_mma_shape<T, 32, 64, 4, IN, OUT>(p, stream); break;
    case GemmTile::k64x64w4: launch_gemm_mma_shape<T, 64, 64, 4, IN, OUT>(p, stream); break;
    case GemmTile::k64x32w4: launch_gemm_mma_shape<T, 64, 32, 4, IN, OUT>(p, stream); break;
    case GemmTile::k32x32w2r:
    case GemmTile::k64x32w2r:
    case GemmTile::k32x64w2r:
      if constexpr (IN == GemmIn::kPlain) {
        if (tile == GemmTile::k32x32w2r) launch_gemm_mma_shape<T, 32, 32, 2, IN, OUT, true>(p, stream);
        else if (tile == GemmTile::k64x32w2r) launch_gemm_mma_shape<T, 64, 32, 2, IN, OUT, true>(p, stream);
        else launch_gemm_mma_shape<T, 32, 64, 2, IN, OUT, true>(p, stream);
      }
      break;
  }
}

// One product. The caller checks gemm_mma_supported for the tile, gives splits == 1 with kLayerNorm, splits
// dividing K / gemm_tile_stage_k(tile), and a `partial` / `counters` pair with splits > 1 (counters: at least the
// number of output tiles, zeroed once).
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
