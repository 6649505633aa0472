#pragma once
// The product after a LayerNorm with that LayerNorm folded into it, for many-row prefills on Hopper over the
// residual stream in the 16-bit type T (the engine's option residual_16bit). A LAB kernel, not in the engine:
// correct, and slower than what the engine runs (below).
//   y[M, N] = act(LN(x)[M, K] . W[N, K]^T + b),     LN(x) = (x - mean) * rstd * ln_w + ln_b,  act = GELU or none
// is computed as
//   y[r, n] = act(rstd[r] * (x . W'^T)[r, n] - mean[r] * rstd[r] * c[n] + b'[n])
// with W'[n, k] = round_T(W[n, k] * ln_w[k]), c[n] = sum_k W'[n, k] and b' = b + W . ln_b, made once at set-up
// (fold_layernorm_affine). The A operand is the stream x itself, and each row's mean and rstd are summed from the
// A tiles while they sit in shared memory for the product (a few threads a row read its 64 k of each slot while
// the slot's wgmma runs): the LayerNorm kernel and its output h disappear.
// Why it was tried: in the engine the QKV and FC products read h = LN(x), which a LayerNorm kernel wrote just
// before (B8 x S512: 24 LayerNorm kernels of ~6 us; docs/cuda-engine.md). The eleventh session put the LayerNorm
// into the residual products' epilogue instead (src/backends/cuda/gemm_residual_layernorm.cuh), where a row's
// statistics need every block of its band and the epilogue cost more than the kernel it replaced. Here no block
// needs another's rows (K = the stream's width: a block's rows pass through its own shared memory in full), and
// the epilogue is a bias epilogue with two more multiply-adds.
// Numerics: x is already in T (the 16-bit stream), as h was; W' takes one rounding to T as h did; the float
// accumulator holds mean * c[n] + (x - mean) . W' and the epilogue takes mean * c[n] off in float — exact to float
// rounding unless |mean| is ~1e3 times the row's spread. The variance is E[x^2] - mean^2 in float (one pass: the
// tiles go by once), with the same caveat. Measured: the error against double is below the unfused path's.
// Why it is not in the engine (H200, twelfth session, docs/results/2026-11-27-session12/): the row statistics
// cost ~1-2 us, but the product itself — persistent, TMA ring, two consumer warpgroups, the main loop of
// wgmma_wide.cuh — runs at 400-460 TFLOP/s where cuBLASLt's (nvjet 192 x 192 tiles, clusters of 2) runs at
// ~580: 4096-row QKV 35.9 us against 29.1 for the LayerNorm kernel + cuBLASLt, FC + GELU 44.3 against 38.5. Nsight
// Compute: tensor pipe 48.5 % active against cuBLASLt's 70 % — the seventh session's many-row main-loop problem
// (lab/cuda/gemm_wgmma_large.cuh) again.
//
// Block: a producer warpgroup keeping a TMA ring of STAGES slots full, two consumer warpgroups of 64 rows x BN
// columns, stacked (128 x BN) or side by side (SPLIT_N, 64 x 2BN); one block an SM (two of 384 threads would
// leave 85 registers a thread, and ptxas needs ~90 for an m64n128 wgmma).
// Developed in lab/cuda/layernorm_folded_lab.cu (CPU reference in double, versions, timing against cuBLASLt +
// the LayerNorm kernel). Needs sm_90a (wgmma, setmaxnreg); elsewhere the body traps.
#include <cuda.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "backends/cuda/gemm_wgmma.cuh"
#include "backends/cuda/wgmma_wide.cuh"

namespace gptbench::cuda_engine::kernels {

template <typename T>
struct FoldedLayerNormArgs {
  int M = 0, N = 0, K = 0;        // N a multiple of the tile's BN, K (the stream's width) a multiple of 64
  const float* colsum = nullptr;  // c [N]
  const float* bias = nullptr;    // b' [N]
  T* y = nullptr;                 // [M, N]
  float eps = 1e-5f;
};

// The block's tile: two consumer warpgroups, each 64 rows x BN columns of the product — stacked (a 128 x BN tile)
// or, with SPLIT_N, side by side (64 x 2BN: both read the same 64 rows of x, each its own BN rows of W'); a ring
// slot holds the tile's A rows (64 k) then its W' rows.
template <int BN, int STAGES, bool SPLIT_N>
struct FoldedLnTile {
  static constexpr int BM = SPLIT_N ? 64 : 128, BNB = SPLIT_N ? 2 * BN : BN;  // rows, columns of the block
  static constexpr std::uint32_t kABytes = BM * 128, kBBytes = BNB * 128, kStage = kABytes + kBBytes;
  static constexpr int smem_bytes = STAGES * static_cast<int>(kStage) + 1024;  // + alignment slack
  __host__ __device__ static int tiles(int M, int N) { return (N / BNB) * ((M + BM - 1) / BM); }
};

// LAB (lab/cuda/layernorm_folded_lab.cu only; 0 in the engine) = 1 leaves the row statistics out (mean 0, rstd 1:
// a plain product), to time what they cost.
template <typename T, int BN, int STAGES, bool GELU, bool SPLIT_N, int LAB = 0>
__global__ void __launch_bounds__(384, 1)
    gemm_layernorm_folded(const __grid_constant__ CUtensorMap map_a, const __grid_constant__ CUtensorMap map_w,
                          FoldedLayerNormArgs<T> p) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  using namespace wgmma_detail;
  using S = FoldedLnTile<BN, STAGES, SPLIT_N>;
  extern __shared__ __align__(1024) unsigned char fln_smem[];
  __shared__ alignas(8) std::uint64_t bars[2 * STAGES];  // full[s], empty[s]
  __shared__ alignas(16) float col_c[S::BNB], col_b[S::BNB];  // the block's columns of c and b'
  __shared__ float2 row_stats[S::BM];                    // (mean, rstd) of the block's rows
  const std::uint32_t base = (static_cast<std::uint32_t>(__cvta_generic_to_shared(fln_smem)) + 1023u) & ~1023u;
  const std::uint32_t bar0 = static_cast<std::uint32_t>(__cvta_generic_to_shared(bars));
  auto full = [&](int s) { return bar0 + 8u * s; };
  auto empty = [&](int s) { return bar0 + 8u * (STAGES + s); };
  const int tid = threadIdx.x, lane = tid % 32;
  // Persistent: block b takes tiles b, b + gridDim.x, ...; tile u is rows m0 = (u / n_tiles) * BM, columns
  // n0 = (u % n_tiles) * BNB (neighbouring tiles share their rows of x). The producer runs ahead into the next tile
  // while the consumers finish this one, so the ring is full when they come back from the epilogue.
  const int n_tiles = p.N / S::BNB, tiles = S::tiles(p.M, p.N);
  const int kt_n = p.K / 64;
  const int wg = __shfl_sync(0xffffffffu, tid / 128, 0);  // provably warp-uniform for ptxas

  if (tid == 0) {
    for (int s = 0; s < STAGES; ++s) {
      mbar_init(full(s), 1);
      mbar_init(empty(s), 256);  // every consumer thread releases
    }
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  __syncthreads();
  asm volatile("griddepcontrol.wait;" ::: "memory");  // as a programmatic dependent: inputs only after the writer

  if (wg == 0) {  // producer warpgroup: one thread issues the copies
    asm volatile("setmaxnreg.dec.sync.aligned.u32 40;\n");
    if (tid == 0) {
      asm volatile("prefetch.tensormap [%0];\n" ::"l"(reinterpret_cast<std::uint64_t>(&map_w)) : "memory");
      asm volatile("prefetch.tensormap [%0];\n" ::"l"(reinterpret_cast<std::uint64_t>(&map_a)) : "memory");
      int it = 0;
      for (int u = blockIdx.x; u < tiles; u += gridDim.x) {
        const int m0 = (u / n_tiles) * S::BM, n0 = (u % n_tiles) * S::BNB;
        for (int kt = 0; kt < kt_n; ++kt, ++it) {
          const int s = it % STAGES;
          if (it >= STAGES) mbar_wait(empty(s), ((it / STAGES) - 1) & 1);
          mbar_expect_tx(full(s), S::kStage);
          const std::uint32_t dst = base + s * S::kStage;
          tma_load_2d(dst, &map_a, kt * 64, m0, full(s));
          for (int part = 0; part < S::BNB / BN; ++part)  // W' in boxes of BN rows (a box has at most 256)
            tma_load_2d(dst + S::kABytes + part * BN * 128, &map_w, kt * 64, n0 + part * BN, full(s));
        }
      }
    }
    return;
  }

  asm volatile("setmaxnreg.inc.sync.aligned.u32 232;\n");
  const int cw = wg - 1, wwarp = (tid / 32) % 4, wtid = tid % 128;
  // Row statistics: the row's chunks (eight of 16 bytes in a slot) lie in its own 128 bytes — the swizzle only
  // permutes them, and a sum does not care. Stacked, thread pair (2i, 2i + 1) of a warpgroup sums row i of its 64,
  // four chunks each; SPLIT_N (both warpgroups see the same 64 rows), warpgroup cw sums rows 32 cw .. 32 cw + 31,
  // four threads a row, two chunks each. Chunk (part * chunks + j + row) % 8 sends 8 neighbouring lanes to 8
  // different bank groups.
  constexpr int kRowThreads = SPLIT_N ? 4 : 2, kChunks = 8 / kRowThreads;
  const int srow = (SPLIT_N ? cw * 32 : 0) + wtid / kRowThreads, spart = wtid % kRowThreads;
  float sum = 0.f, sum_sq = 0.f;
  auto row_sums = [&](std::uint32_t a, int) {
    if constexpr (LAB != 1) {
#pragma unroll
      for (int j = 0; j < kChunks; ++j) {
        const std::uint32_t addr = a + srow * 128 + 16u * ((spart * kChunks + j + srow) & 7);
        std::uint32_t w4[4];
        asm volatile("ld.shared.v4.b32 {%0, %1, %2, %3}, [%4];\n"
                     : "=r"(w4[0]), "=r"(w4[1]), "=r"(w4[2]), "=r"(w4[3])
                     : "r"(addr));
#pragma unroll
        for (int q = 0; q < 4; ++q) {
          const float2 v = unpack_pair<T>(w4[q]);
          sum += v.x + v.y;
          sum_sq = fmaf(v.x, v.x, fmaf(v.y, v.y, sum_sq));
        }
      }
    }
  };
  float acc[BN / 2];
  int it = 0;
  for (int u = blockIdx.x; u < tiles; u += gridDim.x) {
    const int m0 = (u / n_tiles) * S::BM, n0 = (u % n_tiles) * S::BNB;
    asm volatile("bar.sync 1, 256;\n" ::: "memory");  // the last tile's epilogue has read col_c, col_b, row_stats
    for (int c = tid - 128; c < S::BNB; c += 256) {
      col_c[c] = p.colsum[n0 + c];
      col_b[c] = p.bias[n0 + c];
    }
    sum = sum_sq = 0.f;
    warpgroup_tile_mainloop<T, BN, STAGES>(acc, base, S::kStage, SPLIT_N ? 0 : cw * (64 * 128),
                                           S::kABytes + (SPLIT_N ? cw * (BN * 128) : 0), kt_n, it, full,
                                           [&](int s) { mbar_arrive(empty(s)); }, row_sums);
#pragma unroll
    for (int o = 1; o < kRowThreads; o *= 2) {
      sum += __shfl_xor_sync(0xffffffffu, sum, o);
      sum_sq += __shfl_xor_sync(0xffffffffu, sum_sq, o);
    }
    if (spart == 0) {
      const float mean = LAB == 1 ? 0.f : sum / p.K;
      const float var = fmaxf(sum_sq / p.K - mean * mean, 0.f);
      row_stats[(SPLIT_N ? 0 : cw * 64) + srow] = make_float2(mean, LAB == 1 ? 1.f : rsqrtf(var + p.eps));
    }
    asm volatile("bar.sync 1, 256;\n" ::: "memory");  // the statistics and the columns' arrays are in

    // Epilogue from the accumulators (n8 block j: columns 8j + 2 (lane % 4) + {0, 1} of rows lr and lr + 8); the
    // stores drain while the next tile's products run.
    const int lr = (SPLIT_N ? 0 : cw * 64) + wwarp * 16 + lane / 4, cl = SPLIT_N ? cw * BN : 0;
#pragma unroll
    for (int hh = 0; hh < 2; ++hh) {
      const int r = lr + 8 * hh;
      if (m0 + r >= p.M) continue;
      const float2 st = row_stats[r];
      const float rstd = st.y, mean_rstd = st.x * st.y;
      T* yrow = p.y + static_cast<std::int64_t>(m0 + r) * p.N + n0;
#pragma unroll
      for (int j = 0; j < BN / 8; ++j) {
        const int c = cl + 8 * j + 2 * (lane % 4);
        const float2 cc = *reinterpret_cast<const float2*>(col_c + c);
        const float2 bb = *reinterpret_cast<const float2*>(col_b + c);
        float v0 = fmaf(rstd, acc[4 * j + 2 * hh], fmaf(-mean_rstd, cc.x, bb.x));
        float v1 = fmaf(rstd, acc[4 * j + 2 * hh + 1], fmaf(-mean_rstd, cc.y, bb.y));
        if constexpr (GELU) {
          v0 = gelu_tanh(v0);
          v1 = gelu_tanh(v1);
        }
        *reinterpret_cast<std::uint32_t*>(yrow + c) = pack_pair<T>(v0, v1);
      }
    }
  }
#else
  __trap();  // built without sm_90a: the host never launches this
#endif
}

// One launch (a persistent grid: one block an SM): `a` maps the stream x [M, K] with boxes of 128 rows (SPLIT_N:
// 64), `w` maps W' [N, K] with boxes of BN rows (wgmma_tensor_map); N a multiple of the block's columns, K a
// multiple of 64.
template <typename T, int BN, int STAGES, bool GELU, bool SPLIT_N, int LAB = 0>
cudaError_t launch_gemm_layernorm_folded(const CUtensorMap& a, const CUtensorMap& w, const FoldedLayerNormArgs<T>& p,
                                         cudaStream_t stream, bool pdl) {
  using S = FoldedLnTile<BN, STAGES, SPLIT_N>;
  if (p.N <= 0 || p.N % S::BNB != 0 || p.K % 64 != 0 || p.K <= 0 || p.M <= 0) return cudaErrorInvalidValue;
  auto kernel = gemm_layernorm_folded<T, BN, STAGES, GELU, SPLIT_N, LAB>;
  static const cudaError_t configured =  // once per instantiation
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, S::smem_bytes);
  if (configured != cudaSuccess) return configured;
  static const int sm_count = [] {
    int device = 0, n = 0;
    if (cudaGetDevice(&device) != cudaSuccess ||
        cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, device) != cudaSuccess)
      n = 0;
    return n;
  }();
  if (sm_count <= 0) return cudaErrorInvalidDevice;
  const int tiles = S::tiles(p.M, p.N);
  const LaunchConfig launch(dim3(tiles < sm_count ? tiles : sm_count), dim3(384), S::smem_bytes, stream, pdl);
  return cudaLaunchKernelEx(&launch.cfg, kernel, a, w, p);
}

// ---- host side ---------------------------------------------------------------------------------------------------

// The folded product's operands from a LayerNorm's ln_w, ln_b [K] and the product after it, W [N, K] given by
// w(n, k) and bias [N] (or nullptr): w_folded [N, K] = round(W * ln_w) (round: to the engine's 16-bit type, as the
// device copy will hold it), colsum [N] = the sums of those rounded rows, bias_folded [N] = bias + W . ln_b (in
// double).
template <typename WeightAt, typename Round>
void fold_layernorm_affine(int N, int K, WeightAt w, const float* bias, const float* ln_w, const float* ln_b,
                           Round round, std::vector<float>& w_folded, std::vector<float>& colsum,
                           std::vector<float>& bias_folded) {
  w_folded.assign(static_cast<std::size_t>(N) * K, 0.f);
  colsum.assign(N, 0.f);
  bias_folded.assign(N, 0.f);
  for (int n = 0; n < N; ++n) {
    double c = 0.0, b = bias ? bias[n] : 0.0;
    for (int k = 0; k < K; ++k) {
      const float wk = w(n, k);
      const float f = round(wk * ln_w[k]);
      w_folded[static_cast<std::size_t>(n) * K + k] = f;
      c += f;
      b += static_cast<double>(wk) * ln_b[k];
    }
    colsum[n] = static_cast<float>(c);
    bias_folded[n] = static_cast<float>(b);
  }
}

}  // namespace gptbench::cuda_engine::kernels
