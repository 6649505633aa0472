#pragma once
// A residual product and the LayerNorm after it in one kernel, for many-row prefills on Hopper (B8 x S512: 4096
// rows), over the residual stream in the 16-bit type T (option residual_16bit):
//   x[M, C] = round_T(x + a[M, K] . W[C, K]^T + bias)      the attention / MLP projection into the stream
//   h[M, C] = LN(x) * ln_w + ln_b                           the next block's input
// Why: the cuBLASLt path runs these as a product and then a LayerNorm kernel that reads x back (24 kernels of
// ~6 us in the B8 x S512 forward, 7 % of it; docs/cuda-engine.md). Here the LayerNorm is the product's epilogue.
// Engine option fused_layernorm_rows, OFF by default: measured slower (H200, docs/results/2026-11-27-session11/:
// B8 x S512 2.29 against 2.17 ms, B32 x S128 2.30 against 2.15). Its main loop is as fast as cuBLASLt's product
// (4096-row attention projection 9.35 us, MLP projection 27.3, graph-replayed), but the epilogue costs ~12 us
// against ~4 us for the LayerNorm kernel: it runs on the 8 consumer warps of one block per SM, after the main
// loop, issue-bound (three passes over the tile's rows, each re-deriving v from shared memory), where the
// LayerNorm kernel fills every SM with warps. Hiding it needs the next tile's main loop running beside it
// (ping-pong consumer warpgroups over smaller tiles), which one wave of 128 tiles does not give.
//
// A row's LayerNorm needs all C columns, so the blocks that share a band of rows form a cluster of CL blocks along
// N. Each block has a producer warpgroup keeping a TMA ring full and two consumer warpgroups of 64 rows x BN
// columns each (wgmma m64nBNk16), stacked (a 128 x BN block tile) or, with SPLIT_N, side by side (64 x 2BN).
// GPT-2 124M (C = 768) at 4096 rows: 128 x 192 tiles in clusters of 4 are 32 clusters, but only 30 clusters of 4
// of these blocks fit an H200 at once (a cluster's blocks must share a GPC), so they run in two waves; 64 x 384
// tiles in clusters of 2 are 64 clusters, one wave (the engine's shape). The epilogue:
//   0. during the main loop the block's columns of bias, ln_w, ln_b and (cp.async) the stream's old values of
//      its tile come into shared memory; after it, the accumulators go to shared memory over the ring, and each
//      consumer warp takes whole rows (16-byte, coalesced global accesses);
//   1. v = round_T(x + product + bias) (the LayerNorm sees what the next reader of x will, as
//      residual_layernorm_reg does); per row the sum of v over the block's columns -> shared memory; cluster
//      barrier; the cluster's partial sums, read through distributed shared memory, give the mean;
//   2. the centred sum of squares likewise -> rstd (the two passes of row_mean_rstd, kernels.cuh);
//   3. stores x = v and h = (v - mean) * rstd * ln_w + ln_b.
// The sums are formed in another order than the LayerNorm kernel's, so h agrees with the unfused path to float
// rounding, not bit for bit.
//
// Developed in lab/cuda/residual_layernorm_lab.cu (CPU reference in double, timing, versions with parts left
// out). Needs sm_90a (wgmma, setmaxnreg, clusters); elsewhere the body traps and the engine does not take it.
#include <cuda.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "backends/cuda/gemm_wgmma.cuh"
#include "backends/cuda/wgmma_wide.cuh"

namespace gptbench::cuda_engine::kernels {

template <typename T>
struct ResidualLayerNormArgs {
  int M = 0, N = 0, K = 0;      // N = C = BN * CL; K a multiple of 64
  T* x = nullptr;               // [M, N] residual stream: read, then written
  const T* bias = nullptr;      // [N] or nullptr
  const float* ln_w = nullptr;  // [N]
  const float* ln_b = nullptr;  // [N]
  T* h = nullptr;               // [M, N] LN(x) * ln_w + ln_b
  float eps = 1e-5f;
};

namespace residual_ln_detail {
__device__ __forceinline__ void cluster_sync_relaxed() {
  asm volatile("barrier.cluster.arrive.relaxed.aligned;\nbarrier.cluster.wait.aligned;\n" ::: "memory");
}
// The float at `local_addr` in the shared memory of the cluster's block `rank`.
__device__ __forceinline__ float ld_cluster_f32(std::uint32_t local_addr, int rank) {
  std::uint32_t remote;
  float v;
  asm volatile("mapa.shared::cluster.u32 %0, %1, %2;\n" : "=r"(remote) : "r"(local_addr), "r"(rank));
  asm volatile("ld.shared::cluster.f32 %0, [%1];\n" : "=f"(v) : "r"(remote) : "memory");
  return v;
}
}  // namespace residual_ln_detail

// The block's tile: two consumer warpgroups, each 64 rows x BN columns of the product — stacked (a 128 x BN tile)
// or, with SPLIT_N, side by side (64 x 2BN: both read the same 64 rows of a, each its own BN rows of W).
template <int BN, int STAGES, bool SPLIT_N>
struct ResidualLnTile {
  static constexpr int BM = SPLIT_N ? 64 : 128, BNB = SPLIT_N ? 2 * BN : BN;  // rows, columns of the block
  static constexpr std::uint32_t kABytes = BM * 128, kBBytes = BNB * 128, kStage = kABytes + kBBytes;
  static constexpr std::uint32_t kRingBytes = STAGES * kStage;
  // The product tile in float, written over the ring once the main loop is done; rows padded by 8 floats so that
  // the accumulators' 8-row stores spread over all the banks.
  static constexpr int kPStride = BNB + 8;
  static_assert(BM * kPStride * 4 <= static_cast<int>(kRingBytes), "the product tile must fit in the ring");
  // After the ring: the stream's old values of the block's tile, [row][column] in T (copied during the main loop).
  static constexpr std::uint32_t kXBytes = BM * BNB * 2;
  static constexpr int smem_bytes = static_cast<int>(kRingBytes + kXBytes) + 1024;  // + alignment slack
};

// LAB (lab/cuda/residual_layernorm_lab.cu only; 0 in the engine) leaves parts out to time the rest: 1 = nothing
// after the launch, 2 = the main loop (and the products' store to shared memory) without the rest of the epilogue,
// 3 = the epilogue without the main loop.
template <typename T, int BN, int STAGES, int CL, bool SPLIT_N, int LAB = 0>
__global__ void __launch_bounds__(384, 1)
    gemm_residual_layernorm(const __grid_constant__ CUtensorMap map_a, const __grid_constant__ CUtensorMap map_w,
                            ResidualLayerNormArgs<T> p) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  using namespace wgmma_detail;
  using residual_ln_detail::cluster_sync_relaxed;
  using S = ResidualLnTile<BN, STAGES, SPLIT_N>;
  using Registers = RegisterSplit<40, 232>;
  constexpr int kChunks = S::BNB / 8;  // 8-column (16-byte) chunks of a block row
  extern __shared__ __align__(1024) unsigned char rln_smem[];
  __shared__ alignas(8) std::uint64_t bars[2 * STAGES];  // full[s], empty[s]
  __shared__ float row_part[2][S::BM];  // this block's per-row partial sums: [0] values, [1] centred squares
  // The block's columns of bias, ln_w, ln_b, staged by the consumers before their main loop.
  __shared__ alignas(16) float col_bias[S::BNB], col_w[S::BNB], col_b[S::BNB];
  const std::uint32_t base = (static_cast<std::uint32_t>(__cvta_generic_to_shared(rln_smem)) + 1023u) & ~1023u;
  const std::uint32_t bar0 = static_cast<std::uint32_t>(__cvta_generic_to_shared(bars));
  auto full = [&](int s) { return bar0 + 8u * s; };
  auto empty = [&](int s) { return bar0 + 8u * (STAGES + s); };
  const int tid = threadIdx.x, lane = tid % 32;
  const int rank = static_cast<int>(blockIdx.x % CL);  // clusters are (CL, 1, 1): the rank is the N tile
  const int m0 = static_cast<int>(blockIdx.x / CL) * S::BM, n0 = rank * S::BNB;
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
  if constexpr (LAB == 1) return;

  if (wg == 0) {  // producer warpgroup
    Registers::producer();
    if (tid == 0 && LAB != 3) {
      asm volatile("prefetch.tensormap [%0];\n" ::"l"(reinterpret_cast<std::uint64_t>(&map_w)) : "memory");
      asm volatile("prefetch.tensormap [%0];\n" ::"l"(reinterpret_cast<std::uint64_t>(&map_a)) : "memory");
      for (int kt = 0; kt < kt_n; ++kt) {
        const int s = kt % STAGES;
        if (kt >= STAGES) mbar_wait(empty(s), ((kt / STAGES) - 1) & 1);
        mbar_expect_tx(full(s), S::kStage);
        const std::uint32_t dst = base + s * S::kStage;
        tma_load_2d(dst, &map_a, kt * 64, m0, full(s));
        for (int part = 0; part < S::BNB / BN; ++part)  // W in boxes of BN rows (a box has at most 256)
          tma_load_2d(dst + S::kABytes + part * BN * 128, &map_w, kt * 64, n0 + part * BN, full(s));
      }
    }
    __syncwarp();
    // Every thread of the cluster arrives on its barriers: the producers on the epilogue's three.
    cluster_sync();
    cluster_sync();
    cluster_sync_relaxed();
    return;
  }

  Registers::consumer();
  const int cw = wg - 1, wwarp = (tid / 32) % 4, ctid = tid - 128, cwarp = ctid / 32;
  const std::uint32_t xs = base + S::kRingBytes;  // the old values' tile, [row][column] in T
  // While the first tiles arrive (neither depends on the product): the block's columns of the parameters into
  // shared memory, and the stream's old values of the tile copied asynchronously (cp.async, 16 bytes a copy).
  for (int c = ctid; c < S::BNB; c += 256) {
    col_bias[c] = p.bias ? to_f(p.bias[n0 + c]) : 0.f;
    col_w[c] = p.ln_w[n0 + c];
    col_b[c] = p.ln_b[n0 + c];
  }
  for (int i = ctid; i < S::BM * kChunks; i += 256) {
    const int r = i / kChunks, c8 = i % kChunks;
    if (m0 + r < p.M)
      asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(xs + 16u * i),
                   "l"(p.x + static_cast<std::int64_t>(m0 + r) * p.N + n0 + 8 * c8)
                   : "memory");
  }
  asm volatile("cp.async.commit_group;\n" ::: "memory");

  float acc[BN / 2];
  if constexpr (LAB == 3)
#pragma unroll
    for (int i = 0; i < BN / 2; ++i) acc[i] = 0.f;
  int it = 0;
  if (LAB != 3)
    warpgroup_tile_mainloop<T, BN, STAGES>(acc, base, S::kStage, SPLIT_N ? 0 : cw * (64 * 128),
                                           S::kABytes + (SPLIT_N ? cw * (BN * 128) : 0), kt_n, it, full,
                                           [&](int s) { mbar_arrive(empty(s)); });
  // The epilogue works on rows: the accumulators (n8 block j: columns 8j + 2 (lane % 4) + {0, 1} of rows lr0 and
  // lr0 + 8) go to shared memory over the ring, once neither warpgroup reads the ring any more; then each warp
  // takes whole rows, so every global access is a 16-byte, coalesced one (in the accumulators' layout a warp's
  // store touches 8 rows x 16 bytes: Nsight Compute counted half of those sectors as excess).
  asm volatile("bar.sync 1, 256;\n" ::: "memory");
  {
    float* tile =
        reinterpret_cast<float*>(rln_smem + (base - static_cast<std::uint32_t>(__cvta_generic_to_shared(rln_smem))));
    const int lr0 = (SPLIT_N ? 0 : cw * 64) + wwarp * 16 + lane / 4;
    const int cl0 = (SPLIT_N ? cw * BN : 0) + 2 * (lane % 4);
#pragma unroll
    for (int j = 0; j < BN / 8; ++j)
#pragma unroll
      for (int hh = 0; hh < 2; ++hh)
        *reinterpret_cast<float2*>(tile + (lr0 + 8 * hh) * S::kPStride + cl0 + 8 * j) =
            make_float2(acc[4 * j + 2 * hh], acc[4 * j + 2 * hh + 1]);
  }
  asm volatile("cp.async.wait_all;\n" ::: "memory");  // this thread's old values have landed
  asm volatile("bar.sync 1, 256;\n" ::: "memory");    // the tile, the old values and the parameters are all there
  if constexpr (LAB == 2) {
    cluster_sync();
    cluster_sync();
    cluster_sync_relaxed();
    return;
  }

  const float* tile = reinterpret_cast<const float*>(
      rln_smem + (base - static_cast<std::uint32_t>(__cvta_generic_to_shared(rln_smem))));
  const T* xold = reinterpret_cast<const T*>(tile) + S::kRingBytes / sizeof(T);
  constexpr int kRows = S::BM / 8;               // rows of each of the 8 consumer warps: r0 .. r0 + kRows - 1
  constexpr int kPerLane = (kChunks + 31) / 32;  // chunks of a row per lane: lane + 32 k
  const int r0 = cwarp * kRows;
  // v = round_T(x + product + bias) for chunk c8 of block row r (8 columns).
  auto row_values = [&](int r, int c8, float (&v)[8]) {
    const float* t = tile + r * S::kPStride + 8 * c8;
    const float4 t0 = *reinterpret_cast<const float4*>(t), t1 = *reinterpret_cast<const float4*>(t + 4);
    const float4 b0 = *reinterpret_cast<const float4*>(col_bias + 8 * c8);
    const float4 b1 = *reinterpret_cast<const float4*>(col_bias + 8 * c8 + 4);
    const uint4 xo = *reinterpret_cast<const uint4*>(xold + r * S::BNB + 8 * c8);
    const float prod[8] = {t0.x + b0.x, t0.y + b0.y, t0.z + b0.z, t0.w + b0.w,
                           t1.x + b1.x, t1.y + b1.y, t1.z + b1.z, t1.w + b1.w};
    const std::uint32_t xw[4] = {xo.x, xo.y, xo.z, xo.w};
#pragma unroll
    for (int q = 0; q < 4; ++q) {
      const float2 x2 = unpack_pair<T>(xw[q]);
      const float2 r2 = unpack_pair<T>(pack_pair<T>(x2.x + prod[2 * q], x2.y + prod[2 * q + 1]));
      v[2 * q] = r2.x;
      v[2 * q + 1] = r2.y;
    }
  };
  // f(c8, v) for each of this lane's chunks of block row r.
  auto each_chunk = [&](int r, auto&& f) {
#pragma unroll
    for (int k = 0; k < kPerLane; ++k) {
      const int c8 = lane + 32 * k;
      if (c8 >= kChunks) break;
      float v[8];
      row_values(r, c8, v);
      f(c8, v);
    }
  };
  // The warp's kRows partial sums (each summed over the warp's lanes) -> row_part[pass]; cluster barrier; then the
  // cluster's totals, read in one round trip: value q * kRows + i (lane q * kRows + i, mod 32) is row i's sum in
  // block q, and shuffles gather them (read row by row, the epilogue took 1.5 us longer).
  auto cluster_totals = [&](int pass, float (&part)[kRows], float (&total)[kRows]) {
#pragma unroll
    for (int i = 0; i < kRows; ++i)
#pragma unroll
      for (int o = 16; o > 0; o /= 2) part[i] += __shfl_xor_sync(0xffffffffu, part[i], o);
    float mine = 0.f;
#pragma unroll
    for (int i = 0; i < kRows; ++i) mine = lane == i ? part[i] : mine;
    if (lane < kRows) row_part[pass][r0 + lane] = mine;
    __syncwarp();
    cluster_sync();
    constexpr int kReads = (kRows * CL + 31) / 32;  // remote reads per lane: value lane + 32 k
    float remote[kReads];
#pragma unroll
    for (int k = 0; k < kReads; ++k) {
      const int idx = lane + 32 * k;
      remote[k] = idx < kRows * CL ? residual_ln_detail::ld_cluster_f32(static_cast<std::uint32_t>(
                                         __cvta_generic_to_shared(&row_part[pass][r0 + idx % kRows])), idx / kRows)
                                   : 0.f;
    }
#pragma unroll
    for (int i = 0; i < kRows; ++i) {
      total[i] = 0.f;
#pragma unroll
      for (int q = 0; q < CL; ++q) {
        const int idx = q * kRows + i;
        total[i] += __shfl_sync(0xffffffffu, remote[idx / 32], idx % 32);
      }
    }
  };
  // 1. the mean: the rows' sums over the block's columns, then over the cluster's.
  float part[kRows], total[kRows], mean[kRows], rstd[kRows];
#pragma unroll
  for (int i = 0; i < kRows; ++i) {
    part[i] = 0.f;
    each_chunk(r0 + i, [&](int, const float (&v)[8]) {
      part[i] += ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7]));
    });
  }
  cluster_totals(0, part, total);
#pragma unroll
  for (int i = 0; i < kRows; ++i) mean[i] = total[i] / p.N;
  // 2. rstd from the centred squares, the same way (the two passes of row_mean_rstd, kernels.cuh).
#pragma unroll
  for (int i = 0; i < kRows; ++i) {
    part[i] = 0.f;
    each_chunk(r0 + i, [&](int, const float (&v)[8]) {
#pragma unroll
      for (int e = 0; e < 8; ++e) part[i] += (v[e] - mean[i]) * (v[e] - mean[i]);
    });
  }
  cluster_totals(1, part, total);
#pragma unroll
  for (int i = 0; i < kRows; ++i) rstd[i] = rsqrtf(total[i] / p.N + p.eps);
  // 3. x = v, h = (v - mean) * rstd * ln_w + ln_b: 16 bytes a store.
#pragma unroll
  for (int i = 0; i < kRows; ++i) {
    const int r = r0 + i;
    if (m0 + r >= p.M) continue;
    T* xrow = p.x + static_cast<std::int64_t>(m0 + r) * p.N + n0;
    T* hrow = p.h + static_cast<std::int64_t>(m0 + r) * p.N + n0;
    each_chunk(r, [&](int c8, const float (&v)[8]) {
      uint4 xv, hv;
      std::uint32_t* xw = &xv.x;
      std::uint32_t* hw = &hv.x;
#pragma unroll
      for (int q = 0; q < 4; ++q) {
        const int c = 8 * c8 + 2 * q;
        xw[q] = pack_pair<T>(v[2 * q], v[2 * q + 1]);
        hw[q] = pack_pair<T>((v[2 * q] - mean[i]) * rstd[i] * col_w[c] + col_b[c],
                             (v[2 * q + 1] - mean[i]) * rstd[i] * col_w[c + 1] + col_b[c + 1]);
      }
      *reinterpret_cast<uint4*>(xrow + 8 * c8) = xv;
      *reinterpret_cast<uint4*>(hrow + 8 * c8) = hv;
    });
  }
  // No block leaves while a peer may still read its row sums (those reads have returned: rstd used them), so this
  // barrier orders nothing: relaxed, it does not wait for the stores above.
  __syncwarp();
  cluster_sync_relaxed();
#else
  __trap();  // built without sm_90a: the host never launches this
#endif
}

// The clusters of this kernel that fit on the card at once (0: none, or the query failed): every band of rows is
// one cluster, and a second wave of them would double the time.
template <typename T, int BN, int STAGES, int CL, bool SPLIT_N>
int residual_layernorm_max_clusters() {
  using S = ResidualLnTile<BN, STAGES, SPLIT_N>;
  auto kernel = gemm_residual_layernorm<T, BN, STAGES, CL, SPLIT_N>;
  if (cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, S::smem_bytes) != cudaSuccess)
    return 0;
  const LaunchConfig launch(dim3(CL * 32), dim3(384), S::smem_bytes, nullptr, false, dim3(CL, 1, 1));
  int clusters = 0;
  if (cudaOccupancyMaxActiveClusters(&clusters, kernel, &launch.cfg) != cudaSuccess) return 0;
  return clusters;
}

// One launch: `a` maps a [M, K] with boxes of 128 rows (SPLIT_N: 64), `w` maps W [N, K] with boxes of BN rows
// (wgmma_tensor_map); N must be the cluster's columns (CL blocks of BN, SPLIT_N: 2 BN), K a multiple of 64.
template <typename T, int BN, int STAGES, int CL, bool SPLIT_N, int LAB = 0>
cudaError_t launch_gemm_residual_layernorm(const CUtensorMap& a, const CUtensorMap& w,
                                           const ResidualLayerNormArgs<T>& p, cudaStream_t stream, bool pdl) {
  using S = ResidualLnTile<BN, STAGES, SPLIT_N>;
  if (p.N != S::BNB * CL || p.K % 64 != 0 || p.K <= 0 || p.M <= 0) return cudaErrorInvalidValue;
  auto kernel = gemm_residual_layernorm<T, BN, STAGES, CL, SPLIT_N, LAB>;
  static const cudaError_t configured =  // once per instantiation
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, S::smem_bytes);
  if (configured != cudaSuccess) return configured;
  const LaunchConfig launch(dim3(CL * ((p.M + S::BM - 1) / S::BM)), dim3(384), S::smem_bytes, stream, pdl,
                            dim3(CL, 1, 1));
  return cudaLaunchKernelEx(&launch.cfg, kernel, a, w, p);
}

}  // namespace gptbench::cuda_engine::kernels
