#pragma once
// Products of MANY rows on Hopper (prefills of thousands of rows: B8 x S512 = 4096): a persistent kernel of
// 128 x BN tiles, TMA bulk copies into a STAGES-deep shared-memory ring, two consumer warpgroups (64 rows each)
// issuing wgmma m64nBNk16 from shared memory, and a producer warpgroup whose one thread keeps the ring full —
// across tile boundaries, so the next tile's operands arrive while the consumers run the epilogue.
// A LAB kernel (lab/cuda/gemm_large_lab.cu: CPU reference check, timing): correct, but not faster than the
// engine's cuBLASLt picks, so the engine does not use it (docs/cuda-engine.md, seventh session).
//
// Why it was tried: at M = 4096 cuBLASLt runs GPT-2's per-layer products at ~510 TFLOP/s against 766 for the LM
// head (H200 profile, cold L2: qkv 28.2, proj 18.1, fc 36.0, mproj 35.7 us): N = 768 makes 96 tiles of 128 x 256
// for 132 SMs (73 % of one wave) and QKV's 288 tiles 2.18 waves. 128 x 192 tiles divide all four shapes into whole
// waves (N = 768: 128 tiles; 2304: 384 = 2.9 waves; 3072: 512 = 3.9 waves). Measured (H200, cold, v2): mproj
// 36.9 us, proj 19.8 — cuBLASLt's level — but qkv 39.5 and fc 49.8: the main loop reaches ~53 % of the tensor
// rate and the store epilogue (4-byte stores from the accumulators, not overlapped with the next tile) costs
// the rest; sharing the W tile over a cluster of two by multicast (MC) was slower still. (Twelfth session, with the
// same main loop in lab/cuda/gemm_layernorm_folded.cuh taken apart: the main loop alone runs at the card's product
// ceiling, ~740 TFLOP/s; the ~53 % is the store epilogue's doing, with the tensor cores idle while it runs.)
//
// Same epilogues and argument block as gemm_wgmma.cuh (WgmmaOut, WgmmaArgs; splits must be 1): bias, GELU (tanh),
// or the float residual add. Layouts and descriptors as there: K-major tiles of 64 k (128-byte rows) written with
// the 128-byte swizzle, SBO = 1024, a k16 step = +32 bytes.
//
// Needs sm_90a (wgmma, setmaxnreg); elsewhere the body traps and the engine does not take this path.
#include <cuda.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "backends/cuda/gemm_wgmma.cuh"
#include "backends/cuda/wgmma_wide.cuh"

namespace gptbench::cuda_engine::kernels {

// MC: the blocks work in clusters of two on vertically adjacent tiles (same columns): each loads its own A rows and
// half of the shared W tile, multicast into both blocks' shared memory, so the pair reads W from L2 once — at
// K = 768 the ring's refills, not the tensor cores, bound v1 (~400 TFLOP/s at best: 40 KB of L2 traffic per
// 128 x 192 x 64 step). A block's slot is refilled only when the consumers of BOTH blocks have released it (their
// warps arrive on both blocks' "empty" barriers).
template <typename T, int BN, int STAGES, WgmmaOut OUT, bool MC>
__global__ void __launch_bounds__(384, 1)
    gemm_wgmma_large(const __grid_constant__ CUtensorMap map_a, const __grid_constant__ CUtensorMap map_w,
                     WgmmaArgs<T> p) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  using namespace wgmma_detail;
  using S = WideTileShape<BN, STAGES>;
  constexpr int kCta = MC ? 2 : 1;
  extern __shared__ __align__(1024) unsigned char large_smem[];
  __shared__ alignas(8) std::uint64_t bars[2 * STAGES];  // full[s], empty[s]
  const std::uint32_t base = (static_cast<std::uint32_t>(__cvta_generic_to_shared(large_smem)) + 1023u) & ~1023u;
  const std::uint32_t bar0 = static_cast<std::uint32_t>(__cvta_generic_to_shared(bars));
  auto full = [&](int s) { return bar0 + 8u * s; };
  auto empty = [&](int s) { return bar0 + 8u * (STAGES + s); };
  const int tid = threadIdx.x, lane = tid % 32;
  const int rank = MC ? static_cast<int>(blockIdx.x % 2) : 0;  // rank in the cluster (clusters are (2, 1, 1))
  const int m_tiles = (p.M + S::BM - 1) / S::BM, n_tiles = (p.N + BN - 1) / BN;
  const int m_groups = (m_tiles + kCta - 1) / kCta;  // a cluster's tiles: kCta vertically adjacent ones
  const int work = m_groups * n_tiles, kt_n = p.K / 64;
  const int unit0 = blockIdx.x / kCta, units = gridDim.x / kCta;
  // The warpgroup index through a shuffle: provably warp-uniform for ptxas (wgmma in divergent code serialises).
  const int wg = __shfl_sync(0xffffffffu, tid / 128, 0);
  using Registers = wgmma_detail::RegisterSplit<40, 232>;

  if (tid == 0) {
    for (int s = 0; s < STAGES; ++s) {
      mbar_init(full(s), 1);
      mbar_init(empty(s), MC ? 16 : 256);  // MC: lane 0 of each consumer warp of both blocks; else every thread
    }
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  if constexpr (MC) cluster_sync();  // the peer's barriers exist before anything lands or arrives on them
  else __syncthreads();
  asm volatile("griddepcontrol.wait;" ::: "memory");  // as a programmatic dependent: inputs only after the writer
  asm volatile("griddepcontrol.launch_dependents;");

  if (wg == 0) {  // producer warpgroup: registers handed to the consumers, one thread issues every copy
    Registers::producer();
    if (tid == 0) {
      asm volatile("prefetch.tensormap [%0];\n" ::"l"(reinterpret_cast<std::uint64_t>(&map_w)) : "memory");
      asm volatile("prefetch.tensormap [%0];\n" ::"l"(reinterpret_cast<std::uint64_t>(&map_a)) : "memory");
      int it = 0;  // ring position over all of this block's tiles
      for (int u = unit0; u < work; u += units) {
        const int m0 = ((u % m_groups) * kCta + rank) * S::BM, n0 = (u / m_groups) * BN;
        for (int kt = 0; kt < kt_n; ++kt, ++it) {
          const int s = it % STAGES;
          if (it >= STAGES) mbar_wait(empty(s), ((it / STAGES) - 1) & 1);
          mbar_expect_tx(full(s), S::kStage);
          const std::uint32_t dst = base + s * S::kStage;
          tma_load_2d(dst, &map_a, kt * 64, m0, full(s));
          if constexpr (MC) {  // this block's half of W, into both blocks
            constexpr std::uint32_t half = S::kBBytes / 2;
            asm volatile(
                "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes.multicast::cluster"
                " [%0], [%1, {%2, %3}], [%4], %5;\n" ::"r"(dst + S::kABytes + rank * half),
                "l"(reinterpret_cast<std::uint64_t>(&map_w)), "r"(kt * 64), "r"(n0 + rank * (BN / 2)), "r"(full(s)),
                "h"(static_cast<std::uint16_t>(3))
                : "memory");
          } else {
            tma_load_2d(dst + S::kABytes, &map_w, kt * 64, n0, full(s));
          }
        }
      }
    }
  } else {
    Registers::consumer();
    const int cw = wg - 1;  // consumer warpgroup: rows 64 cw .. 64 cw + 63 of the tile
    const int wwarp = (tid / 32) % 4;
    // Releasing a slot: every thread (one block), or lane 0 of each warp on both blocks' barriers (MC).
    auto release = [&](int s) {
      if constexpr (MC) {
        __syncwarp();
        if (lane == 0) {
          mbar_arrive(empty(s));
          std::uint32_t remote;
          asm volatile("mapa.shared::cluster.u32 %0, %1, %2;\n" : "=r"(remote) : "r"(empty(s)), "r"(rank ^ 1));
          asm volatile("mbarrier.arrive.release.cluster.shared::cluster.b64 _, [%0];\n" ::"r"(remote) : "memory");
        }
      } else {
        mbar_arrive(empty(s));
      }
    };
    float acc[BN / 2];
    int it = 0;
    for (int u = unit0; u < work; u += units) {
      const int m0 = ((u % m_groups) * kCta + rank) * S::BM, n0 = (u / m_groups) * BN;
      wide_tile_mainloop<T, BN, STAGES>(acc, base, cw, kt_n, it, full, release);

      // Epilogue straight from the accumulators: n8 block j holds columns n0 + 8j + 2 (lane % 4) + {0, 1} of rows
      // r0 (acc[4j], acc[4j+1]) and r0 + 8 (acc[4j+2], acc[4j+3]). In chunks of JC blocks whose loads (bias, and
      // the residual's x) are all issued before the chunk's first store: loads after stores to memory the compiler
      // cannot tell apart are otherwise issued one at a time, each waiting out the memory latency.
      const int r0 = m0 + cw * 64 + wwarp * 16 + lane / 4;
      constexpr int JC = 8;
      static_assert((BN / 8) % JC == 0, "BN / 8 must be a multiple of the epilogue chunk");
#pragma unroll
      for (int j0 = 0; j0 < BN / 8; j0 += JC) {
        float bias[JC][2];
        float2 xin[JC][2];
#pragma unroll
        for (int jj = 0; jj < JC; ++jj) {
          const int c = n0 + (j0 + jj) * 8 + 2 * (lane % 4);
          const bool col = c < p.N;
          bias[jj][0] = bias[jj][1] = 0.f;
          if constexpr (OUT == WgmmaOut::kResidual) {
            if (col && p.bias_f) {
              bias[jj][0] = p.bias_f[c];
              bias[jj][1] = p.bias_f[c + 1];
            }
#pragma unroll
            for (int h = 0; h < 2; ++h) {
              const int r = r0 + 8 * h;
              xin[jj][h] = col && r < p.M
                               ? *reinterpret_cast<const float2*>(p.x + static_cast<std::int64_t>(r) * p.N + c)
                               : make_float2(0.f, 0.f);
            }
          } else if (col && p.bias) {
            bias[jj][0] = to_f(p.bias[c]);
            bias[jj][1] = to_f(p.bias[c + 1]);
          }
        }
#pragma unroll
        for (int jj = 0; jj < JC; ++jj) {
          const int j = j0 + jj;
          const int c = n0 + j * 8 + 2 * (lane % 4);
          if (c >= p.N) continue;
#pragma unroll
          for (int h = 0; h < 2; ++h) {
            const int r = r0 + 8 * h;
            if (r >= p.M) continue;
            float v0 = acc[4 * j + 2 * h] + bias[jj][0], v1 = acc[4 * j + 2 * h + 1] + bias[jj][1];
            const std::int64_t i = static_cast<std::int64_t>(r) * p.N + c;
            if constexpr (OUT == WgmmaOut::kResidual) {
              *reinterpret_cast<float2*>(p.x + i) = make_float2(xin[jj][h].x + v0, xin[jj][h].y + v1);
            } else {
              if constexpr (OUT == WgmmaOut::kGeluTanh) {
                v0 = gelu_tanh(v0);
                v1 = gelu_tanh(v1);
              }
              *reinterpret_cast<std::uint32_t*>(p.y + i) = pack_pair<T>(v0, v1);
            }
          }
        }
      }
    }
  }
  // MC: no block leaves while its peer may still write into its shared memory or arrive on its barriers.
  if constexpr (MC) cluster_sync();
#else
  __trap();  // built without sm_90a: the host never launches this
#endif
}

template <typename T, int BN, int STAGES, WgmmaOut OUT, bool MC>
cudaError_t launch_gemm_wgmma_large_t(const CUtensorMap& a, const CUtensorMap& w, const WgmmaArgs<T>& p, int blocks,
                                      cudaStream_t stream, bool pdl) {
  using S = WideTileShape<BN, STAGES>;
  auto kernel = gemm_wgmma_large<T, BN, STAGES, OUT, MC>;
  static const cudaError_t configured =  // once per instantiation
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, S::smem_bytes);
  if (configured != cudaSuccess) return configured;
  const int tiles = S::tiles(p.M, p.N);
  const int grid = tiles < blocks ? tiles : blocks;
  const LaunchConfig launch(dim3(MC ? (grid + 1) / 2 * 2 : grid),  // MC: whole clusters of two
                            dim3(384), S::smem_bytes, stream, pdl, dim3(MC ? 2 : 1, 1, 1));
  return cudaLaunchKernelEx(&launch.cfg, kernel, a, w, p);
}

// One product: `a` maps A [M, K] with boxes of 128 rows, `w` maps W [N, K] with boxes of BN rows (MC: BN / 2)
// (wgmma_tensor_map). K a multiple of 64, N even, p.splits 1. grid = min(tiles, blocks) persistent blocks.
template <typename T, int BN, int STAGES, bool MC = false>
cudaError_t launch_gemm_wgmma_large(WgmmaOut out, const CUtensorMap& a, const CUtensorMap& w, const WgmmaArgs<T>& p,
                                    int blocks, cudaStream_t stream, bool pdl) {
  if (p.K % 64 != 0 || p.N % 2 != 0 || p.splits != 1 || blocks < 1) return cudaErrorInvalidValue;
  switch (out) {
    case WgmmaOut::kStore:
      return launch_gemm_wgmma_large_t<T, BN, STAGES, WgmmaOut::kStore, MC>(a, w, p, blocks, stream, pdl);
    case WgmmaOut::kGeluTanh:
      return launch_gemm_wgmma_large_t<T, BN, STAGES, WgmmaOut::kGeluTanh, MC>(a, w, p, blocks, stream, pdl);
    case WgmmaOut::kResidual:
      return launch_gemm_wgmma_large_t<T, BN, STAGES, WgmmaOut::kResidual, MC>(a, w, p, blocks, stream, pdl);
  }
  return cudaErrorInvalidValue;
}

}  // namespace gptbench::cuda_engine::kernels
