#pragma once
// The LM head with the row summary in its epilogue (Hopper, fp16 / bf16): logits = h . Wᵀ for h [M, K] and the tied
// embedding W [N, K] (N the padded vocabulary), reduced per row to top-1 (lowest id wins ties) and the sum of the
// first `vocab` logits as T values — what kernels::row_summary computes from stored logits — without writing the
// logits (STORE: write them too, for callers that want them, e.g. the logits check).
//
// Why it was tried: after a few-row prefill the LM head is a weight stream (77 MB for GPT-2) and the summary then
// reads 12.9 MB of logits back in a kernel of its own (8.4 us at B1 x S128, H200). Here every block streams its
// share of W once, the summary is a register reduction, and only 16 bytes per (row, tile) leave the block;
// lm_head_combine then folds the tiles of each row in a fixed order. Measured (H200, lab/cuda/lm_head_lab.cu): it
// saves the summary but streams W at 2.7 TB/s where cuBLASLt's LM head reaches 3.4 (29.4 vs 24.7 us under Nsight
// Compute), so the two paths take the same time; the engine keeps it as an option, off by default
// (EngineOptions::lm_head_summary_rows).
//
// Structure as lab/cuda/gemm_wgmma_large.cuh (developed in lab/cuda/lm_head_lab.cu, which checks it against a CPU
// reference and times it against cuBLASLt + row_summary): a persistent block of a producer warpgroup, whose one
// thread keeps a STAGES-deep TMA ring full across tile boundaries, and two consumer warpgroups (64 rows each)
// issuing wgmma m64nBNk16 on 128 x BN tiles. As a programmatic dependent the producer requests the first slots'
// W tiles (constant) before griddepcontrol.wait and h (the kernel before's output) after it.
//
// Needs sm_90a (wgmma, setmaxnreg); elsewhere the body traps and the engine does not take this path.
#include <cuda.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "backends/cuda/gemm_wgmma.cuh"
#include "backends/cuda/kernels.cuh"
#include "backends/cuda/wgmma_wide.cuh"

namespace gptbench::cuda_engine::kernels {

// One row's summary over one tile of columns (or, after lm_head_combine's fold, over all of them).
struct SummaryPart {
  float best;  // the largest logit (as a T value); -inf when none (NaN never wins, as in row_summary)
  int index;   // its column, the lowest on ties
  double sum;  // the sum of the tile's logits (as T values), in double
};

template <typename T>
struct LmHeadArgs {
  int M = 0, N = 0, K = 0;  // h [M, K], W [N, K]; K a multiple of 64
  int vocab = 0;            // columns >= vocab (the padding) are left out of the summary
  SummaryPart* parts = nullptr;  // [M, n_tiles]: row-major, so a row's tiles are contiguous for the fold
  T* logits = nullptr;           // STORE: [M, N]
};

template <typename T, int BN, int STAGES, bool STORE>
__global__ void __launch_bounds__(384, 1)
    lm_head_summary(const __grid_constant__ CUtensorMap map_h, const __grid_constant__ CUtensorMap map_w,
                    LmHeadArgs<T> p) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  using namespace wgmma_detail;
  using S = WideTileShape<BN, STAGES>;
  extern __shared__ __align__(1024) unsigned char lm_smem[];
  __shared__ alignas(8) std::uint64_t bars[2 * STAGES];  // full[s], empty[s]
  const std::uint32_t base = (static_cast<std::uint32_t>(__cvta_generic_to_shared(lm_smem)) + 1023u) & ~1023u;
  const std::uint32_t bar0 = static_cast<std::uint32_t>(__cvta_generic_to_shared(bars));
  auto full = [&](int s) { return bar0 + 8u * s; };
  auto empty = [&](int s) { return bar0 + 8u * (STAGES + s); };
  const int tid = threadIdx.x, lane = tid % 32;
  const int m_tiles = (p.M + S::BM - 1) / S::BM, n_tiles = S::n_tiles(p.N);
  const int work = m_tiles * n_tiles, kt_n = p.K / 64;
  // The warpgroup index through a shuffle: provably warp-uniform for ptxas (wgmma in divergent code serialises).
  const int wg = __shfl_sync(0xffffffffu, tid / 128, 0);

  if (tid == 0) {
    for (int s = 0; s < STAGES; ++s) {
      mbar_init(full(s), 1);
      mbar_init(empty(s), 256);  // every consumer thread
    }
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  __syncthreads();
  asm volatile("griddepcontrol.launch_dependents;");

  if (wg == 0) {  // producer warpgroup: registers handed to the consumers, one thread issues every copy
    asm volatile("setmaxnreg.dec.sync.aligned.u32 40;\n");
    if (tid == 0) {
      asm volatile("prefetch.tensormap [%0];\n" ::"l"(reinterpret_cast<std::uint64_t>(&map_w)) : "memory");
      asm volatile("prefetch.tensormap [%0];\n" ::"l"(reinterpret_cast<std::uint64_t>(&map_h)) : "memory");
      // Tile u: rows m0 = (u % m_tiles) * 128, columns n0 = (u / m_tiles) * BN (the row tiles of one W tile run
      // side by side on neighbouring blocks, so many-row heads read each W tile from DRAM about once).
      auto step_of = [&](int it, int& m0, int& n0, int& kt) {
        const int u = blockIdx.x + (it / kt_n) * gridDim.x;
        kt = it % kt_n;
        m0 = (u % m_tiles) * S::BM;
        n0 = (u / m_tiles) * BN;
        return u < work;
      };
      // The first slots' W tiles before the kernel before has finished (W does not depend on it), h after.
      int early = 0;
      for (int m0, n0, kt; early < STAGES && step_of(early, m0, n0, kt); ++early) {
        mbar_expect_tx(full(early), S::kStage);
        tma_load_2d(base + early * S::kStage + S::kABytes, &map_w, kt * 64, n0, full(early));
      }
      asm volatile("griddepcontrol.wait;" ::: "memory");
      for (int it = 0, m0, n0, kt; it < early && step_of(it, m0, n0, kt); ++it)
        tma_load_2d(base + it * S::kStage, &map_h, kt * 64, m0, full(it));
      for (int it = early, m0, n0, kt; step_of(it, m0, n0, kt); ++it) {
        const int s = it % STAGES;
        mbar_wait(empty(s), ((it / STAGES) - 1) & 1);
        mbar_expect_tx(full(s), S::kStage);
        const std::uint32_t dst = base + s * S::kStage;
        tma_load_2d(dst, &map_h, kt * 64, m0, full(s));
        tma_load_2d(dst + S::kABytes, &map_w, kt * 64, n0, full(s));
      }
    }
  } else {
    asm volatile("setmaxnreg.inc.sync.aligned.u32 232;\n");
    asm volatile("griddepcontrol.wait;" ::: "memory");  // (STORE writes memory the kernels before may read)
    const int cw = wg - 1;  // consumer warpgroup: rows 64 cw .. 64 cw + 63 of the tile
    const int wwarp = (tid / 32) % 4;
    float acc[BN / 2];
    int it = 0;
    for (int u = blockIdx.x; u < work; u += gridDim.x) {
      const int m0 = (u % m_tiles) * S::BM, nt = u / m_tiles, n0 = nt * BN;
      wide_tile_mainloop<T, BN, STAGES>(acc, base, cw, kt_n, it, full, [&](int s) { mbar_arrive(empty(s)); });

      // Epilogue: n8 block j of the accumulators holds columns n0 + 8j + 2 (lane % 4) + {0, 1} of rows r0 (acc[4j],
      // acc[4j+1]) and r0 + 8 (acc[4j+2], acc[4j+3]). Each logit is rounded to T first — the value a stored logit
      // would hold — then summed in double and compared in ascending column order (strict '>' keeps the lowest).
      // Both rows in one pass over j: with a pass per row ptxas serialised the main loop's wgmma (C7514).
      const int r0 = m0 + cw * 64 + wwarp * 16 + lane / 4;
      float best[2] = {-INFINITY, -INFINITY};
      int index[2] = {0x7fffffff, 0x7fffffff};
      double sum[2] = {0.0, 0.0};
#pragma unroll
      for (int j = 0; j < BN / 8; ++j) {
        const int c = n0 + j * 8 + 2 * (lane % 4);
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const float v0 = to_f(from_f<T>(acc[4 * j + 2 * h])), v1 = to_f(from_f<T>(acc[4 * j + 2 * h + 1]));
          if constexpr (STORE) {
            const int r = r0 + 8 * h;
            if (r < p.M && c < p.N)
              *reinterpret_cast<std::uint32_t*>(p.logits + static_cast<std::int64_t>(r) * p.N + c) =
                  pack_pair<T>(v0, v1);
          }
          if (c < p.vocab) {
            sum[h] += v0;
            if (v0 > best[h]) best[h] = v0, index[h] = c;
          }
          if (c + 1 < p.vocab) {
            sum[h] += v1;
            if (v1 > best[h]) best[h] = v1, index[h] = c + 1;
          }
        }
      }
      // The four lanes of a row (lane % 4) hold interleaved column pairs: fold them, ties to the lower column.
#pragma unroll
      for (int h = 0; h < 2; ++h) {
#pragma unroll
        for (int o = 1; o <= 2; o <<= 1) {
          sum[h] += __shfl_xor_sync(0xffffffffu, sum[h], o);
          const float ob = __shfl_xor_sync(0xffffffffu, best[h], o);
          const int oi = __shfl_xor_sync(0xffffffffu, index[h], o);
          better(best[h], index[h], ob, oi);
        }
        const int r = r0 + 8 * h;
        if (lane % 4 == 0 && r < p.M)
          p.parts[static_cast<std::int64_t>(r) * n_tiles + nt] = SummaryPart{best[h], index[h], sum[h]};
      }
    }
  }
#else
  __trap();  // built without sm_90a: the host never launches this
#endif
}

// top1 / row_sum of each row from its n_tiles parts: one warp per row, in a fixed order (each lane folds the tiles
// lane, lane + 32, ...; then a fixed shuffle tree), so the result does not depend on the timing. A programmatic
// dependent of lm_head_summary.
__global__ void __launch_bounds__(256) lm_head_combine(const SummaryPart* parts, int M, int n_tiles, int* top1,
                                                       double* row_sum) {
  asm volatile("griddepcontrol.wait;" ::: "memory");
  const int row = blockIdx.x * 8 + threadIdx.x / 32, lane = threadIdx.x % 32;
  if (row >= M) return;
  float best = -INFINITY;
  int index = 0x7fffffff;
  double sum = 0.0;
  const SummaryPart* r = parts + static_cast<std::int64_t>(row) * n_tiles;
  for (int t = lane; t < n_tiles; t += 32) {
    const SummaryPart q = r[t];
    sum += q.sum;
    better(best, index, q.best, q.index);
  }
  for (int o = 16; o > 0; o >>= 1) {
    sum += __shfl_xor_sync(0xffffffffu, sum, o);
    const float ob = __shfl_xor_sync(0xffffffffu, best, o);
    const int oi = __shfl_xor_sync(0xffffffffu, index, o);
    better(best, index, ob, oi);
  }
  if (lane == 0) {
    top1[row] = index;
    row_sum[row] = sum;
  }
}

// ---- host side ---------------------------------------------------------------------------------------------------

template <typename T, int BN, int STAGES, bool STORE>
cudaError_t launch_lm_head_summary_t(const CUtensorMap& h, const CUtensorMap& w, const LmHeadArgs<T>& p, int blocks,
                                     cudaStream_t stream, bool pdl) {
  using S = WideTileShape<BN, STAGES>;
  auto kernel = lm_head_summary<T, BN, STAGES, STORE>;
  static const cudaError_t configured =  // once per instantiation
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, S::smem_bytes);
  if (configured != cudaSuccess) return configured;
  const int tiles = S::tiles(p.M, p.N);
  return launch_kernel(kernel, dim3(tiles < blocks ? tiles : blocks), dim3(384), S::smem_bytes, stream, pdl, h, w, p);
}

// The LM head and its summary: `h` maps h [M, K] with boxes of 128 rows, `w` maps W [N, K] with boxes of BN rows
// (wgmma_tensor_map); p.parts holds M * lm_head_tiles(BN, N) parts. Two launches (the product, then the fold into
// top1 / row_sum), each a programmatic dependent of the one before when pdl. blocks: the persistent grid (the SMs).
template <typename T, int BN, int STAGES>
cudaError_t launch_lm_head_summary(const CUtensorMap& h, const CUtensorMap& w, const LmHeadArgs<T>& p, int* top1,
                                   double* row_sum, int blocks, cudaStream_t stream, bool pdl) {
  if (p.K % 64 != 0 || p.N % 2 != 0 || p.M < 1 || blocks < 1 || !p.parts || p.vocab > p.N) return cudaErrorInvalidValue;
  const cudaError_t e = p.logits ? launch_lm_head_summary_t<T, BN, STAGES, true>(h, w, p, blocks, stream, pdl)
                                 : launch_lm_head_summary_t<T, BN, STAGES, false>(h, w, p, blocks, stream, pdl);
  if (e != cudaSuccess) return e;
  return launch_kernel(lm_head_combine, dim3((p.M + 7) / 8), dim3(256), 0, stream, pdl, p.parts, p.M,
                       WideTileShape<BN, STAGES>::n_tiles(p.N), top1, row_sum);
}

}  // namespace gptbench::cuda_engine::kernels
