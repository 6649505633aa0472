#pragma once
// A plain product for many rows — y [M, N] = act(a [M, K] . W [N, K]^T + bias) (+ y: RESIDUAL, in place, the
// engine's 16-bit residual stream) — on the LM head's ping-pong schedule (lm_head_summary.cuh: a producer warp's
// TMA ring, each consumer warpgroup a whole 128 x BN tile, the two alternating so that one's epilogue runs beside
// the other's products) with a store epilogue through shared memory: each 64-row half of a tile rounded once to T
// (bias, GELU, the residual added in float first) into a padded staging buffer, then written to y in whole
// 16-byte row pieces. Lab only (lab/cuda/gemm_pingpong_lab.cu, twentieth session): the question is whether the
// schedule that runs the LM head at ~750 TFLOP/s runs the per-layer products faster than cuBLASLt once their
// epilogue stores (the twelfth session's v28, a TMA-store epilogue, was not: QKV 25.5 against 24.0 us).
// Answer (H200, the lab's header): no — as fast as cuBLASLt on QKV, 10-60 % slower on the other three.
#include <cuda.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "backends/cuda/kernels.cuh"
#include "backends/cuda/lm_head_summary.cuh"

namespace gptbench::cuda_engine::kernels {

template <typename T>
struct PingPongStoreArgs {
  int M = 0, N = 0, K = 0;  // N a multiple of the tile's BN, K of 64
  const T* bias = nullptr;  // [N]
  T* y = nullptr;           // [M, N]; RESIDUAL: read and written in place
};

namespace pingpong_store_detail {
// One 64-row half (rows m0 .. m0 + 63) of warpgroup cw's accumulators into y through `staged` (PITCH bytes a row).
// Named barrier 2 + cw orders the warpgroup's writes and reads of the buffer (and the last reads before the next
// half's writes).
template <typename T, int BN, bool GELU, bool RESIDUAL, std::uint32_t PITCH>
__device__ __forceinline__ void store_half(const float (&acc)[BN / 2], unsigned char* staged, int m0, int n0, int wtid,
                                           int cw, const PingPongStoreArgs<T>& p) {
  using namespace wgmma_detail;
  const int lane = wtid % 32, wr = (wtid / 32) * 16 + lane / 4;  // this thread's accumulator rows wr, wr + 8
  asm volatile("bar.sync %0, 128;\n" ::"r"(2 + cw) : "memory");
#pragma unroll
  for (int j = 0; j < BN / 8; ++j) {
    const int c = j * 8 + 2 * (lane % 4);
    const float2 b = unpack_pair<T>(*reinterpret_cast<const std::uint32_t*>(p.bias + n0 + c));
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      float v0 = acc[4 * j + 2 * h] + b.x, v1 = acc[4 * j + 2 * h + 1] + b.y;
      if constexpr (GELU) v0 = gelu_tanh(v0), v1 = gelu_tanh(v1);
      if constexpr (RESIDUAL) {
        const int r = m0 + wr + 8 * h;
        if (r < p.M) {
          const float2 x = unpack_pair<T>(
              *reinterpret_cast<const std::uint32_t*>(p.y + static_cast<std::int64_t>(r) * p.N + n0 + c));
          v0 += x.x, v1 += x.y;
        }
      }
      *reinterpret_cast<std::uint32_t*>(staged + (wr + 8 * h) * PITCH + c * 2) = pack_pair<T>(v0, v1);
    }
  }
  asm volatile("bar.sync %0, 128;\n" ::"r"(2 + cw) : "memory");
  constexpr int kPieces = BN / 8;  // 16-byte pieces a row
#pragma unroll 4
  for (int i = wtid; i < 64 * kPieces; i += 128) {
    const int row = i / kPieces, q = i % kPieces, r = m0 + row;
    if (r < p.M)
      *reinterpret_cast<uint4*>(p.y + static_cast<std::int64_t>(r) * p.N + n0 + q * 8) =
          *reinterpret_cast<const uint4*>(staged + row * PITCH + q * 16);
  }
}
}  // namespace pingpong_store_detail

template <typename T, int BN, int STAGES, bool GELU, bool RESIDUAL>
__global__ void __launch_bounds__(384, 1)
    gemm_pingpong_store(const __grid_constant__ CUtensorMap map_a, const __grid_constant__ CUtensorMap map_w,
                        PingPongStoreArgs<T> p) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  using namespace wgmma_detail;
  using S = LmHeadPingPongShape<BN, STAGES, 2>;  // a staging buffer a consumer warpgroup
  extern __shared__ __align__(1024) unsigned char pps_smem[];
  __shared__ alignas(8) std::uint64_t bars[2 * STAGES];
  const std::uint32_t raw = static_cast<std::uint32_t>(__cvta_generic_to_shared(pps_smem));
  const std::uint32_t base = (raw + 1023u) & ~1023u;
  const std::uint32_t bar0 = static_cast<std::uint32_t>(__cvta_generic_to_shared(bars));
  auto full = [&](int s) { return bar0 + 8u * s; };
  auto empty = [&](int s) { return bar0 + 8u * (STAGES + s); };
  const int tid = threadIdx.x;
  const int m_tiles = (p.M + S::BM - 1) / S::BM, n_tiles = p.N / BN;
  const int work = m_tiles * n_tiles, kt_n = p.K / 64;
  const int wg = __shfl_sync(0xffffffffu, tid / 128, 0);  // provably warp-uniform
  using Registers = wgmma_detail::RegisterSplit<24, 240>;

  init_ring<STAGES>(bar0, 128);
  __syncthreads();
  if (wg == 0) {
    Registers::producer();
    if (tid == 0)
      lm_head_detail::produce_tiles<STAGES>(&map_a, &map_w, base, bar0, S::kStage, S::kABytes, BN, m_tiles, work, kt_n);
    return;
  }
  Registers::consumer();
  const int cw = wg - 1, wtid = tid % 128;
  unsigned char* staged = pps_smem + (base - raw) + STAGES * S::kStage + cw * S::kStagedBytes;
  float acc0[BN / 2], acc1[BN / 2];
  for (int i = cw;; i += 2) {
    const int u = blockIdx.x + i * gridDim.x;
    if (u >= work) break;
    const int m0 = (u % m_tiles) * S::BM, n0 = (u / m_tiles) * BN;
    pingpong_tile_mainloop<T, BN, STAGES>(acc0, acc1, base, S::kStage, S::kABytes, i, cw, kt_n, full, empty);
    pingpong_store_detail::store_half<T, BN, GELU, RESIDUAL, S::kPitch>(acc0, staged, m0, n0, wtid, cw, p);
    pingpong_store_detail::store_half<T, BN, GELU, RESIDUAL, S::kPitch>(acc1, staged, m0 + 64, n0, wtid, cw, p);
  }
#else
  __trap();
#endif
}

// `a` maps a [M, K] with boxes of 128 rows, `w` maps W [N, K] with boxes of BN rows (wgmma_tensor_map).
template <typename T, int BN, int STAGES, bool GELU, bool RESIDUAL>
cudaError_t launch_gemm_pingpong_store(const CUtensorMap& a, const CUtensorMap& w, const PingPongStoreArgs<T>& p,
                                       int blocks, cudaStream_t stream) {
  using S = LmHeadPingPongShape<BN, STAGES, 2>;
  if (p.M < 1 || p.N % BN != 0 || p.K % 64 != 0 || p.K < 64 || !p.bias || !p.y || blocks < 1)
    return cudaErrorInvalidValue;
  auto kernel = gemm_pingpong_store<T, BN, STAGES, GELU, RESIDUAL>;
  static const cudaError_t configured =
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, S::smem_bytes);
  if (configured != cudaSuccess) return configured;
  const int tiles = ((p.M + S::BM - 1) / S::BM) * (p.N / BN);
  return launch_kernel(kernel, dim3(tiles < blocks ? tiles : blocks), dim3(384), S::smem_bytes, stream, false, a, w, p);
}

}  // namespace gptbench::cuda_engine::kernels
