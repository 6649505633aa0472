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
// Why it is not in the engine (H200s, twelfth session, docs/results/2026-11-27-session12/): correct, but not faster
// where it matters. The 4096-row QKV / FC + GELU against the LayerNorm kernel + cuBLASLt (~29 / ~38 us): the first
// kernel (4-byte stores from the accumulators) 36 / 44 us. Taken apart (LAB), its main loop alone runs at the card's
// product ceiling (19.7 / 25.9 us, ~740 TFLOP/s — faster than cuBLASLt's whole product, 25 / 33), so the seventh
// session's reading of gemm_wgmma_large.cuh ("the main loop waits on its ring") was wrong: the epilogue costs
// 13-16 us and the statistics ~3. With the epilogue through shared memory and a TMA store (TMA_STORE, EPI) QKV is
// 28.0-28.5 us (a ~1 us win) and FC 41.9 (still ~4 us slower). The ping-pong kernel below hides the epilogue (26.6 /
// 35.8 without statistics) but its statistics cost ~10 us there, and read by the producer warpgroup's three idle
// warps (SW) they are slower still (the ring waits for them: QKV 42-59 us). Next: the statistics from the previous
// product's epilogue (a residual product of our own writing x and per-row partial sums), with the ping-pong kernel.
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

namespace folded_detail {
// Adds the sum and the sum of squares of one 16-byte chunk (8 values of T) to sum / sum_sq: pairwise within the
// chunk, so that the dependent chain through the accumulators is one add a chunk, not eight (the ping-pong
// kernel's statistics cost 9 us at 4096 rows with the chain).
template <typename T>
__device__ __forceinline__ void add_chunk_sums(const std::uint32_t (&w4)[4], float& sum, float& sum_sq) {
  float2 v[4];
#pragma unroll
  for (int q = 0; q < 4; ++q) v[q] = wgmma_detail::unpack_pair<T>(w4[q]);
  const float s = ((v[0].x + v[0].y) + (v[1].x + v[1].y)) + ((v[2].x + v[2].y) + (v[3].x + v[3].y));
  const float sq = (fmaf(v[0].x, v[0].x, v[0].y * v[0].y) + fmaf(v[1].x, v[1].x, v[1].y * v[1].y)) +
                   (fmaf(v[2].x, v[2].x, v[2].y * v[2].y) + fmaf(v[3].x, v[3].x, v[3].y * v[3].y));
  sum += s;
  sum_sq += sq;
}
// Adds CHUNKS of the 16-byte chunks of row `row` of a slot's x rows (at a, 128 bytes a row) to sum / sum_sq, from
// chunk `first` on. A row's chunks all lie in its own 128 bytes (the swizzle only permutes them, and a sum does not
// care); chunk c is read at position (c + row) % 8, which sends 8 neighbouring rows to 8 different bank groups.
template <typename T, int CHUNKS>
__device__ __forceinline__ void add_row_sums(std::uint32_t a, int row, int first, float& sum, float& sum_sq) {
#pragma unroll
  for (int j = 0; j < CHUNKS; ++j) {
    std::uint32_t w4[4];
    asm volatile("ld.shared.v4.b32 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(w4[0]), "=r"(w4[1]), "=r"(w4[2]), "=r"(w4[3])
                 : "r"(a + row * 128 + 16u * ((first + j + row) & 7)));
    add_chunk_sums<T>(w4, sum, sum_sq);
  }
}
// GELU (tanh form) with the hardware tanh (tanh.approx.f32: about 2^-11 relative error, under the 16-bit output's
// rounding).
__device__ __forceinline__ float gelu_tanh_approx(float v) {
  float t;
  asm("tanh.approx.f32 %0, %1;" : "=f"(t) : "f"(0.7978845608028654f * (v + 0.044715f * v * v * v)));
  return 0.5f * v * (1.f + t);
}
// The outputs at columns c and c + 1 of a row from their accumulators: act(rstd * acc - mean * rstd * col_c + col_b),
// packed in T (FAST_TANH: GELU's tanh by the tanh.approx instruction).
template <typename T, bool GELU, bool FAST_TANH = false>
__device__ __forceinline__ std::uint32_t folded_pair(float acc0, float acc1, float rstd, float mean_rstd,
                                                     const float* col_c, const float* col_b, int c) {
  const float2 cc = *reinterpret_cast<const float2*>(col_c + c);
  const float2 bb = *reinterpret_cast<const float2*>(col_b + c);
  float v0 = fmaf(rstd, acc0, fmaf(-mean_rstd, cc.x, bb.x));
  float v1 = fmaf(rstd, acc1, fmaf(-mean_rstd, cc.y, bb.y));
  if constexpr (GELU && FAST_TANH) {
    v0 = gelu_tanh_approx(v0);
    v1 = gelu_tanh_approx(v1);
  } else if constexpr (GELU) {
    v0 = gelu_tanh(v0);
    v1 = gelu_tanh(v1);
  }
  return wgmma_detail::pack_pair<T>(v0, v1);
}
// TMA-store epilogues: a warpgroup stages its tile in boxes of 64 columns (box_bytes apart, 128-byte rows, the
// 128-byte swizzle the store's tensor map reads). Writes output pair v of row r, n8 block j, for `lane` there:
// chunk j % 8 of the row sits at (j % 8) ^ (r % 8), so a warp's 8 rows land in 8 bank groups.
__device__ __forceinline__ void stage_pair(std::uint32_t out, std::uint32_t box_bytes, int r, int j, int lane,
                                           std::uint32_t v) {
  const std::uint32_t addr = out + (j / 8) * box_bytes + r * 128 + 16u * ((j % 8) ^ (r % 8)) + 4u * (lane % 4);
  asm volatile("st.shared.b32 [%0], %1;\n" ::"r"(addr), "r"(v) : "memory");
}
// One thread: the staged boxes to y at columns n0 .., rows m0 .. by TMA, as one bulk group.
__device__ __forceinline__ void store_staged_boxes(const CUtensorMap* map_y, std::uint32_t out,
                                                   std::uint32_t box_bytes, int boxes, int n0, int m0) {
  for (int bx = 0; bx < boxes; ++bx)
    asm volatile("cp.async.bulk.tensor.2d.global.shared::cta.bulk_group [%0, {%1, %2}], [%3];\n" ::"l"(
                     reinterpret_cast<std::uint64_t>(map_y)),
                 "r"(n0 + 64 * bx), "r"(m0), "r"(out + bx * box_bytes)
                 : "memory");
  asm volatile("cp.async.bulk.commit_group;\n" ::: "memory");
}
// The SMs of the current device (the persistent grids' size), asked once; 0 where the query fails.
inline int sm_count() {
  static const int n = [] {
    int device = 0, count = 0;
    if (cudaGetDevice(&device) != cudaSuccess ||
        cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, device) != cudaSuccess)
      count = 0;
    return count;
  }();
  return n;
}
// The producer thread of a persistent block: for tiles u = blockIdx.x, + gridDim.x, ... < tiles (rows
// (u / n_tiles) * bm, columns (u % n_tiles) * bnb), the kt_n k-blocks of x (bm rows) and W' (bnb rows, in boxes of
// wbox) into the ring at base, slot after slot (stage bytes each, W' at a_bytes), each once its slot is released.
template <int STAGES>
__device__ __forceinline__ void produce_tiles(const CUtensorMap* map_a, const CUtensorMap* map_w, std::uint32_t base,
                                              std::uint32_t bar0, std::uint32_t stage, std::uint32_t a_bytes, int bm,
                                              int bnb, int wbox, int n_tiles, int tiles, int kt_n) {
  using namespace wgmma_detail;
  asm volatile("prefetch.tensormap [%0];\n" ::"l"(reinterpret_cast<std::uint64_t>(map_w)) : "memory");
  asm volatile("prefetch.tensormap [%0];\n" ::"l"(reinterpret_cast<std::uint64_t>(map_a)) : "memory");
  int it = 0;
  for (int u = blockIdx.x; u < tiles; u += gridDim.x) {
    const int m0 = (u / n_tiles) * bm, n0 = (u % n_tiles) * bnb;
    for (int kt = 0; kt < kt_n; ++kt, ++it) {
      const int s = it % STAGES;
      const std::uint32_t full = bar0 + 8u * s, empty = bar0 + 8u * (STAGES + s);
      if (it >= STAGES) mbar_wait(empty, ((it / STAGES) - 1) & 1);
      mbar_expect_tx(full, stage);
      const std::uint32_t dst = base + s * stage;
      tma_load_2d(dst, map_a, kt * 64, m0, full);
      for (int part = 0; part < bnb / wbox; ++part)  // a box has at most 256 rows
        tma_load_2d(dst + a_bytes + part * wbox * 128, map_w, kt * 64, n0 + part * wbox, full);
    }
  }
}
}  // namespace folded_detail

// The block's tile: two consumer warpgroups, each 64 rows x BN columns of the product — stacked (a 128 x BN tile)
// or, with SPLIT_N, side by side (64 x 2BN: both read the same 64 rows of x, each its own BN rows of W'); a ring
// slot holds the tile's A rows (64 k) then its W' rows.
template <int BN, int STAGES, bool SPLIT_N, int CW = 2, bool TMA_STORE = false>
struct FoldedLnTile {
  static_assert(CW == 2 || (CW == 3 && !SPLIT_N), "two consumer warpgroups, or three stacked");
  static constexpr int BM = SPLIT_N ? 64 : 64 * CW, BNB = SPLIT_N ? 2 * BN : BN;  // rows, columns of the block
  static constexpr std::uint32_t kABytes = BM * 128, kBBytes = BNB * 128, kStage = kABytes + kBBytes;
  // TMA_STORE: after the ring, each consumer warpgroup's 64 x BN output tile in T, as BN / 64 boxes of 64 rows x
  // 128 bytes with the 128-byte swizzle (what the store's tensor map reads).
  static constexpr std::uint32_t kOutBoxBytes = 64 * 128, kOutBytes = TMA_STORE ? CW * (BN / 64) * kOutBoxBytes : 0;
  static constexpr int smem_bytes = STAGES * static_cast<int>(kStage) + static_cast<int>(kOutBytes) + 1024;
  __host__ __device__ static int tiles(int M, int N) { return (N / BNB) * ((M + BM - 1) / BM); }
};

// LAB (lab/cuda/layernorm_folded_lab.cu only) leaves parts out, to time the rest: 1 = the row statistics (mean 0,
// rstd 1: a plain product), 2 = the statistics and the epilogue (the main loop alone), 3 = those and the products
// (the ring's data movement alone: the consumers wait for each slot and release it).
// TMA_STORE: the epilogue writes each warpgroup's tile to shared memory (swizzled, conflict-free from the
// accumulators' layout) and one thread stores it with TMA (map_y: y [M, N], boxes of 64 x 64, the 128-byte swizzle),
// asynchronously: the warpgroup goes on to the next tile's products while the copy drains. Without it, 4-byte
// stores straight from the accumulators.
// EPI (with TMA_STORE) bit 0: the tile's columns of c and b' come into shared memory by cp.async (no thread
// waits for those loads before its products); bit 1: GELU's tanh by the tanh.approx instruction.
template <typename T, int BN, int STAGES, bool GELU, bool SPLIT_N, int LAB = 0, int CW = 2, int IN_FLIGHT = 1,
          bool TMA_STORE = false, int EPI = 0>
__global__ void __launch_bounds__(128 * (CW + 1), 1)
    gemm_layernorm_folded(const __grid_constant__ CUtensorMap map_a, const __grid_constant__ CUtensorMap map_w,
                          const __grid_constant__ CUtensorMap map_y, FoldedLayerNormArgs<T> p) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  using namespace wgmma_detail;
  using S = FoldedLnTile<BN, STAGES, SPLIT_N, CW, TMA_STORE>;
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
  using Registers = wgmma_detail::RegisterSplit<40, CW == 2 ? 232 : 152, CW>;  // 128 x (CW + 1) threads

  wgmma_detail::init_ring<STAGES>(bar0, 128 * CW);  // every consumer thread releases
  __syncthreads();
  asm volatile("griddepcontrol.wait;" ::: "memory");  // as a programmatic dependent: inputs only after the writer

  if (wg == 0) {  // producer warpgroup: one thread issues the copies
    Registers::producer();
    if (tid == 0)
      folded_detail::produce_tiles<STAGES>(&map_a, &map_w, base, bar0, S::kStage, S::kABytes, S::BM, S::BNB, BN,
                                           n_tiles, tiles, kt_n);
    return;
  }

  // three consumer warpgroups: 128 registers a thread at launch, the producers' 88 spread over 384 consumers
  Registers::consumer();
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
    if constexpr (LAB == 0) {
      folded_detail::add_row_sums<T, kChunks>(a, srow, spart * kChunks, sum, sum_sq);
    }
  };
  auto release = [&](int s) { mbar_arrive(empty(s)); };
  float acc[BN / 2];
  int it = 0;
  for (int u = blockIdx.x; u < tiles; u += gridDim.x) {
    const int m0 = (u / n_tiles) * S::BM, n0 = (u % n_tiles) * S::BNB;
    asm volatile("bar.sync 1, %0;\n" ::"n"(128 * CW) : "memory");  // the last tile's epilogue is done with the arrays
    if constexpr ((EPI & 1) != 0) {
      for (int i = tid - 128; i < S::BNB / 2; i += 128 * CW) {  // 16-byte copies: c, then b'
        const bool is_c = i < S::BNB / 4;
        const int c4 = is_c ? i : i - S::BNB / 4;
        asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(static_cast<std::uint32_t>(
                         __cvta_generic_to_shared((is_c ? col_c : col_b) + 4 * c4))),
                     "l"((is_c ? p.colsum : p.bias) + n0 + 4 * c4)
                     : "memory");
      }
      asm volatile("cp.async.commit_group;\n" ::: "memory");
    } else {
      for (int c = tid - 128; c < S::BNB; c += 128 * CW) {
        col_c[c] = p.colsum[n0 + c];
        col_b[c] = p.bias[n0 + c];
      }
    }
    sum = sum_sq = 0.f;
    if constexpr (LAB == 3) {
      for (int kt = 0; kt < kt_n; ++kt, ++it) {
        mbar_wait(full(it % STAGES), (it / STAGES) & 1);
        release(it % STAGES);
      }
    } else {
      warpgroup_tile_mainloop<T, BN, STAGES, decltype(full), decltype(release), decltype(row_sums), IN_FLIGHT>(
          acc, base, S::kStage, SPLIT_N ? 0 : cw * (64 * 128), S::kABytes + (SPLIT_N ? cw * (BN * 128) : 0), kt_n, it,
          full, release, row_sums);
    }
#pragma unroll
    for (int o = 1; o < kRowThreads; o *= 2) {
      sum += __shfl_xor_sync(0xffffffffu, sum, o);
      sum_sq += __shfl_xor_sync(0xffffffffu, sum_sq, o);
    }
    if (spart == 0) {
      const float mean = LAB != 0 ? 0.f : sum / p.K;
      const float var = fmaxf(sum_sq / p.K - mean * mean, 0.f);
      row_stats[(SPLIT_N ? 0 : cw * 64) + srow] = make_float2(mean, LAB != 0 ? 1.f : rsqrtf(var + p.eps));
    }
    if constexpr ((EPI & 1) != 0) asm volatile("cp.async.wait_all;\n" ::: "memory");
    asm volatile("bar.sync 1, %0;\n" ::"n"(128 * CW) : "memory");  // the statistics and the columns' arrays are in

    // Epilogue from the accumulators (n8 block j: columns 8j + 2 (lane % 4) + {0, 1} of rows lr and lr + 8); the
    // stores drain while the next tile's products run.
    const int lr = (SPLIT_N ? 0 : cw * 64) + wwarp * 16 + lane / 4, cl = SPLIT_N ? cw * BN : 0;
    if constexpr (TMA_STORE && LAB < 2) {
      const std::uint32_t out = base + STAGES * S::kStage + cw * (BN / 64) * S::kOutBoxBytes;
      const int wr0 = SPLIT_N ? 0 : cw * 64;  // the warpgroup's first row of the block tile
      if (wtid == 0) asm volatile("cp.async.bulk.wait_group.read 0;\n" ::: "memory");  // the last store has read
      asm volatile("bar.sync %0, 128;\n" ::"r"(2 + cw) : "memory");
#pragma unroll
      for (int hh = 0; hh < 2; ++hh) {
        const int r = wwarp * 16 + lane / 4 + 8 * hh;  // the warpgroup's row
        const float2 st = row_stats[wr0 + r];
        const float rstd = st.y, mean_rstd = st.x * st.y;
#pragma unroll
        for (int j = 0; j < BN / 8; ++j) {
          const std::uint32_t v = folded_detail::folded_pair<T, GELU, (EPI & 2) != 0>(
              acc[4 * j + 2 * hh], acc[4 * j + 2 * hh + 1], rstd, mean_rstd, col_c, col_b, cl + 8 * j + 2 * (lane % 4));
          folded_detail::stage_pair(out, S::kOutBoxBytes, r, j, lane, v);
        }
      }
      asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");  // the copy engine sees the writes
      asm volatile("bar.sync %0, 128;\n" ::"r"(2 + cw) : "memory");
      if (wtid == 0) folded_detail::store_staged_boxes(&map_y, out, S::kOutBoxBytes, BN / 64, n0 + cl, m0 + wr0);
    } else {
    if constexpr (LAB == 2) {  // the products must look used, or ptxas drops them (a store that never happens)
      if (p.eps < 0.f) p.y[tid] = from_f<T>(acc[0]);
    }
#pragma unroll
    for (int hh = 0; hh < (LAB >= 2 ? 0 : 2); ++hh) {
      const int r = lr + 8 * hh;
      if (m0 + r >= p.M) continue;
      const float2 st = row_stats[r];
      const float rstd = st.y, mean_rstd = st.x * st.y;
      T* yrow = p.y + static_cast<std::int64_t>(m0 + r) * p.N + n0;
#pragma unroll
      for (int j = 0; j < BN / 8; ++j) {
        const int c = cl + 8 * j + 2 * (lane % 4);
        *reinterpret_cast<std::uint32_t*>(yrow + c) = folded_detail::folded_pair<T, GELU>(
            acc[4 * j + 2 * hh], acc[4 * j + 2 * hh + 1], rstd, mean_rstd, col_c, col_b, c);
      }
    }
    }
  }
  if constexpr (TMA_STORE) {
    if (wtid == 0) asm volatile("cp.async.bulk.wait_group 0;\n" ::: "memory");  // the last stores are done
  }
#else
  __trap();  // built without sm_90a: the host never launches this
#endif
}

// One launch (a persistent grid: one block an SM): `a` maps the stream x [M, K] with boxes of 128 rows (SPLIT_N:
// 64), `w` maps W' [N, K] with boxes of BN rows (wgmma_tensor_map); N a multiple of the block's columns, K a
// multiple of 64.
template <typename T, int BN, int STAGES, bool GELU, bool SPLIT_N, int LAB = 0, int CW = 2, int IN_FLIGHT = 1,
          bool TMA_STORE = false, int EPI = 0>
cudaError_t launch_gemm_layernorm_folded(const CUtensorMap& a, const CUtensorMap& w, const CUtensorMap& y,
                                         const FoldedLayerNormArgs<T>& p, cudaStream_t stream, bool pdl) {
  using S = FoldedLnTile<BN, STAGES, SPLIT_N, CW, TMA_STORE>;
  if (p.N <= 0 || p.N % S::BNB != 0 || p.K % 64 != 0 || p.K <= 0 || p.M <= 0) return cudaErrorInvalidValue;
  auto kernel = gemm_layernorm_folded<T, BN, STAGES, GELU, SPLIT_N, LAB, CW, IN_FLIGHT, TMA_STORE, EPI>;
  static const cudaError_t configured =  // once per instantiation
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, S::smem_bytes);
  if (configured != cudaSuccess) return configured;
  const int sm_count = folded_detail::sm_count();
  if (sm_count <= 0) return cudaErrorInvalidDevice;
  const int tiles = S::tiles(p.M, p.N);
  const LaunchConfig launch(dim3(tiles < sm_count ? tiles : sm_count), dim3(128 * (CW + 1)), S::smem_bytes, stream,
                            pdl);
  return cudaLaunchKernelEx(&launch.cfg, kernel, a, w, y, p);
}

// ---- ping-pong: each consumer warpgroup a whole 128 x BN tile, the two alternating ----------------------------
// The cooperative kernel above runs its epilogue on both warpgroups at once, with the tensor cores idle (lab: the
// 4096-row QKV's main loop alone 19.7 us, with the epilogue 28-33). Here warpgroup cw takes the block's tiles
// cw, cw + 2, ...: the producer fills the ring tile after tile, so one warpgroup's products run while the other
// finishes its epilogue (CUTLASS's "ping-pong" schedule). Per k16 step a warpgroup issues two m64nBNk16 products
// (rows 0-63 and 64-127 of its tile) that share W'; thread t of the warpgroup sums row t. Epilogue: TMA store from
// shared memory, as TMA_STORE above (boxes of 64 columns x 128 rows). The two warpgroups' main loops take turns
// (named barriers 4 and 5), their epilogues overlap the other's main loop.
template <int BN, int STAGES>
struct FoldedLnPingPongTile {
  static constexpr int BM = 128;
  static constexpr std::uint32_t kABytes = BM * 128, kBBytes = BN * 128, kStage = kABytes + kBBytes;
  static constexpr std::uint32_t kOutBoxBytes = 128 * 128, kOutBytes = (BN / 64) * kOutBoxBytes;  // a warpgroup's
  static constexpr int smem_bytes = STAGES * static_cast<int>(kStage) + 2 * static_cast<int>(kOutBytes) + 1024;
  __host__ __device__ static int tiles(int M, int N) { return (N / BN) * ((M + BM - 1) / BM); }
};

// SW: the row statistics come from the producer warpgroup's three idle warps (96 threads: rows t and t + 96), which
// read every slot's x rows and release the slot too (its empty barrier counts 128 + 96), then hand each tile's
// (mean, rstd) to its warpgroup through stat_full[tile % 2] and wait on stat_empty[...] before overwriting them.
template <typename T, int BN, int STAGES, bool GELU, int LAB = 0, bool SW = false>
__global__ void __launch_bounds__(384, 1)
    gemm_layernorm_folded_pingpong(const __grid_constant__ CUtensorMap map_a, const __grid_constant__ CUtensorMap map_w,
                                   const __grid_constant__ CUtensorMap map_y, FoldedLayerNormArgs<T> p) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  using namespace wgmma_detail;
  using S = FoldedLnPingPongTile<BN, STAGES>;
  extern __shared__ __align__(1024) unsigned char flp_smem[];
  __shared__ alignas(8) std::uint64_t bars[2 * STAGES];
  __shared__ alignas(16) float col_c[2][BN], col_b[2][BN];  // per consumer warpgroup
  __shared__ float2 row_stats[2][S::BM];
  __shared__ alignas(8) std::uint64_t stat_bars[4];  // SW: stat_full[2], stat_empty[2]
  const std::uint32_t base = (static_cast<std::uint32_t>(__cvta_generic_to_shared(flp_smem)) + 1023u) & ~1023u;
  const std::uint32_t bar0 = static_cast<std::uint32_t>(__cvta_generic_to_shared(bars));
  auto full = [&](int s) { return bar0 + 8u * s; };
  auto empty = [&](int s) { return bar0 + 8u * (STAGES + s); };
  const int tid = threadIdx.x, lane = tid % 32;
  const int n_tiles = p.N / BN, tiles = S::tiles(p.M, p.N);
  const int kt_n = p.K / 64;
  const int wg = __shfl_sync(0xffffffffu, tid / 128, 0);
  using Registers = wgmma_detail::RegisterSplit<SW ? 56 : 24, SW ? 224 : 240>;
  const std::uint32_t sbar0 = static_cast<std::uint32_t>(__cvta_generic_to_shared(stat_bars));
  auto stat_full = [&](int c) { return sbar0 + 8u * c; };
  auto stat_empty = [&](int c) { return sbar0 + 8u * (2 + c); };
  if (SW && tid == 0) {
    for (int c = 0; c < 2; ++c) {
      mbar_init(stat_full(c), 96);
      mbar_init(stat_empty(c), 128);
    }
  }
  wgmma_detail::init_ring<STAGES>(bar0, SW ? 128 + 96 : 128);  // one warpgroup (and the statistics warps)
  __syncthreads();
  asm volatile("griddepcontrol.wait;" ::: "memory");
  if (wg == 0) {
    // SW: the statistics warps keep 56 registers (their loop's), the consumers 224 (the same 64,512 in all); else 24
    // and 240 (thirteenth session: 128 x 192 tiles spilled with 40 and 232)
    Registers::producer();
    if (tid == 0) {
      folded_detail::produce_tiles<STAGES>(&map_a, &map_w, base, bar0, S::kStage, S::kABytes, S::BM, BN, BN, n_tiles,
                                           tiles, kt_n);
    } else if (SW && tid >= 32) {  // the statistics warps
      const int r0 = tid - 32, r1 = r0 + 96;
      const bool two = r1 < S::BM;
      int it = 0;
      for (int i = 0;; ++i) {
        const int u = blockIdx.x + i * gridDim.x;
        if (u >= tiles) break;
        float s0 = 0.f, q0 = 0.f, s1 = 0.f, q1 = 0.f;
        for (int kt = 0; kt < kt_n; ++kt, ++it) {
          const int s = it % STAGES;
          mbar_wait(full(s), (it / STAGES) & 1);
          const std::uint32_t a = base + s * S::kStage;
          folded_detail::add_row_sums<T, 8>(a, r0, 0, s0, q0);
          if (two) folded_detail::add_row_sums<T, 8>(a, r1, 0, s1, q1);
          mbar_arrive(empty(s));
        }
        const int c = i & 1;
        if (i >= 2) mbar_wait(stat_empty(c), ((i >> 1) - 1) & 1);  // its warpgroup has read tile i - 2's
        auto stats = [&](float sum, float sum_sq) {
          const float mean = sum / p.K;
          return make_float2(mean, rsqrtf(fmaxf(sum_sq / p.K - mean * mean, 0.f) + p.eps));
        };
        row_stats[c][r0] = stats(s0, q0);
        if (two) row_stats[c][r1] = stats(s1, q1);
        mbar_arrive(stat_full(c));
      }
    }
    return;
  }
  Registers::consumer();
  const int cw = wg - 1, wwarp = (tid / 32) % 4, wtid = tid % 128;
  const std::uint32_t out = base + STAGES * S::kStage + cw * S::kOutBytes;
  float acc0[BN / 2], acc1[BN / 2];
  for (int i = cw;; i += 2) {  // this block's tiles i = cw, cw + 2, ...
    const int u = blockIdx.x + i * gridDim.x;
    if (u >= tiles) break;
    const int m0 = (u / n_tiles) * S::BM, n0 = (u % n_tiles) * BN;
    asm volatile("bar.sync %0, 128;\n" ::"r"(2 + cw) : "memory");  // the last epilogue is done with the arrays
    for (int q = wtid; q < BN / 2; q += 128) {  // 16-byte copies: c, then b'
      const bool is_c = q < BN / 4;
      const int c4 = is_c ? q : q - BN / 4;
      asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(static_cast<std::uint32_t>(
                       __cvta_generic_to_shared((is_c ? col_c[cw] : col_b[cw]) + 4 * c4))),
                   "l"((is_c ? p.colsum : p.bias) + n0 + 4 * c4)
                   : "memory");
    }
    asm volatile("cp.async.commit_group;\n" ::: "memory");
    float sum = 0.f, sum_sq = 0.f;
    pingpong_tile_mainloop<T, BN, STAGES>(acc0, acc1, base, S::kStage, S::kABytes, i, cw, kt_n, full, empty,
                                          [&](std::uint32_t a, int) {
                                            if constexpr (LAB == 0 && !SW)
                                              folded_detail::add_row_sums<T, 8>(a, wtid, 0, sum, sum_sq);
                                          });
    if constexpr (SW) {
      mbar_wait(stat_full(cw), (i >> 1) & 1);  // this tile's statistics are in
    } else {
      const float mean = LAB != 0 ? 0.f : sum / p.K;
      const float var = fmaxf(sum_sq / p.K - mean * mean, 0.f);
      row_stats[cw][wtid] = make_float2(mean, LAB != 0 ? 1.f : rsqrtf(var + p.eps));
    }
    asm volatile("cp.async.wait_all;\n" ::: "memory");
    if (wtid == 0) asm volatile("cp.async.bulk.wait_group.read 0;\n" ::: "memory");  // the last store has read out
    asm volatile("bar.sync %0, 128;\n" ::"r"(2 + cw) : "memory");
#pragma unroll
    for (int mb = 0; mb < 2; ++mb) {
      const float* acc = mb == 0 ? acc0 : acc1;
#pragma unroll
      for (int hh = 0; hh < 2; ++hh) {
        const int r = mb * 64 + wwarp * 16 + lane / 4 + 8 * hh;
        const float2 st = row_stats[cw][r];
        const float rstd = st.y, mean_rstd = st.x * st.y;
#pragma unroll
        for (int j = 0; j < BN / 8; ++j) {
          const int c = 8 * j + 2 * (lane % 4);
          const std::uint32_t v = folded_detail::folded_pair<T, GELU, true>(
              acc[4 * j + 2 * hh], acc[4 * j + 2 * hh + 1], rstd, mean_rstd, col_c[cw], col_b[cw], c);
          folded_detail::stage_pair(out, S::kOutBoxBytes, r, j, lane, v);
        }
      }
    }
    if constexpr (SW) mbar_arrive(stat_empty(cw));  // done with this tile's statistics
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
    asm volatile("bar.sync %0, 128;\n" ::"r"(2 + cw) : "memory");
    if (wtid == 0) folded_detail::store_staged_boxes(&map_y, out, S::kOutBoxBytes, BN / 64, n0, m0);
  }
  if (wtid == 0) asm volatile("cp.async.bulk.wait_group 0;\n" ::: "memory");
#else
  __trap();
#endif
}

// `a` maps x [M, K] with boxes of 128 rows, `w` maps W' [N, K] with boxes of BN rows, `y` maps y [M, N] with boxes
// of 128 rows (x 64 columns); N a multiple of BN.
template <typename T, int BN, int STAGES, bool GELU, int LAB = 0, bool SW = false>
cudaError_t launch_gemm_layernorm_folded_pingpong(const CUtensorMap& a, const CUtensorMap& w, const CUtensorMap& y,
                                                  const FoldedLayerNormArgs<T>& p, cudaStream_t stream, bool pdl) {
  using S = FoldedLnPingPongTile<BN, STAGES>;
  if (p.N <= 0 || p.N % BN != 0 || p.K % 64 != 0 || p.K <= 0 || p.M <= 0) return cudaErrorInvalidValue;
  auto kernel = gemm_layernorm_folded_pingpong<T, BN, STAGES, GELU, LAB, SW>;
  static const cudaError_t configured =
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, S::smem_bytes);
  if (configured != cudaSuccess) return configured;
  const int sms = folded_detail::sm_count();
  if (sms <= 0) return cudaErrorInvalidDevice;
  const int tiles = S::tiles(p.M, p.N);
  const LaunchConfig launch(dim3(tiles < sms ? tiles : sms), dim3(384), S::smem_bytes, stream, pdl);
  return cudaLaunchKernelEx(&launch.cfg, kernel, a, w, y, p);
}

// ---- 192 x 192 tiles, the shape of cuBLASLt's pick for these products -------------------------------------------
// (nvjet_sm90_hsh_192x192_64x4_2x1_v_bz_coopB: Nsight Compute, call 4). Each consumer warpgroup takes all 192 rows
// and its own 96 columns: per k16 step three m64n96k16 products that share the warpgroup's B (W') columns. A slot
// holds 192 rows of x and 192 rows of W' (48 KB, 4 slots). Row statistics: warpgroup 0's threads take rows 0-127,
// warpgroup 1's first 64 threads rows 128-191, a whole row (eight chunks) each.
namespace wgmma_detail {
template <>
__device__ __forceinline__ void wgmma_k16<__half, 96>(float (&d)[48], std::uint64_t a, std::uint64_t b, int accumulate) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %50, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n96k16.f32.f16.f16 "
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47}, "
      "%48, %49, p, 1, 1, 0, 0;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47])
      : "l"(a), "l"(b), "r"(accumulate));
}
template <>
__device__ __forceinline__ void wgmma_k16<__nv_bfloat16, 96>(float (&d)[48], std::uint64_t a, std::uint64_t b, int accumulate) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %50, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n96k16.f32.bf16.bf16 "
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47}, "
      "%48, %49, p, 1, 1, 0, 0;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47])
      : "l"(a), "l"(b), "r"(accumulate));
}
}  // namespace wgmma_detail

struct FoldedLnWideTile {
  static constexpr int BM = 192, BNB = 192, BN = 96;  // block rows, block columns, a warpgroup's columns
  static constexpr std::uint32_t kABytes = BM * 128, kBBytes = BNB * 128, kStage = kABytes + kBBytes;
  static constexpr int stages = 4;
  static constexpr int smem_bytes = stages * static_cast<int>(kStage) + 1024;
  __host__ __device__ static int tiles(int M, int N) { return (N / BNB) * ((M + BM - 1) / BM); }
};

template <typename T, bool GELU, int LAB = 0>
__global__ void __launch_bounds__(384, 1)
    gemm_layernorm_folded_wide(const __grid_constant__ CUtensorMap map_a, const __grid_constant__ CUtensorMap map_w,
                               FoldedLayerNormArgs<T> p) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  using namespace wgmma_detail;
  using S = FoldedLnWideTile;
  constexpr int STAGES = S::stages;
  extern __shared__ __align__(1024) unsigned char flw_smem[];
  __shared__ alignas(8) std::uint64_t bars[2 * STAGES];
  __shared__ alignas(16) float col_c[S::BNB], col_b[S::BNB];
  __shared__ float2 row_stats[S::BM];
  const std::uint32_t base = (static_cast<std::uint32_t>(__cvta_generic_to_shared(flw_smem)) + 1023u) & ~1023u;
  const std::uint32_t bar0 = static_cast<std::uint32_t>(__cvta_generic_to_shared(bars));
  auto full = [&](int s) { return bar0 + 8u * s; };
  auto empty = [&](int s) { return bar0 + 8u * (STAGES + s); };
  const int tid = threadIdx.x, lane = tid % 32;
  const int n_tiles = p.N / S::BNB, tiles = S::tiles(p.M, p.N);
  const int kt_n = p.K / 64;
  const int wg = __shfl_sync(0xffffffffu, tid / 128, 0);
  using Registers = wgmma_detail::RegisterSplit<40, 232>;
  wgmma_detail::init_ring<STAGES>(bar0, 256);
  __syncthreads();
  asm volatile("griddepcontrol.wait;" ::: "memory");
  if (wg == 0) {
    Registers::producer();
    if (tid == 0)
      folded_detail::produce_tiles<STAGES>(&map_a, &map_w, base, bar0, S::kStage, S::kABytes, S::BM, S::BNB, S::BNB,
                                           n_tiles, tiles, kt_n);
    return;
  }
  Registers::consumer();
  const int cw = wg - 1, wwarp = (tid / 32) % 4, wtid = tid % 128;
  const int srow = cw * 128 + wtid;  // this thread's row of the statistics (none past 191)
  const bool has_row = srow < S::BM && LAB != 1;
  float sum = 0.f, sum_sq = 0.f;
  float acc[3][S::BN / 2];
  int it = 0;
  for (int u = blockIdx.x; u < tiles; u += gridDim.x) {
    const int m0 = (u / n_tiles) * S::BM, n0 = (u % n_tiles) * S::BNB;
    asm volatile("bar.sync 1, 256;\n" ::: "memory");
    for (int c = tid - 128; c < S::BNB; c += 256) {
      col_c[c] = p.colsum[n0 + c];
      col_b[c] = p.bias[n0 + c];
    }
    sum = sum_sq = 0.f;
    for (int kt = 0; kt < kt_n; ++kt, ++it) {
      const int s = it % STAGES;
      mbar_wait(full(s), (it / STAGES) & 1);
      const std::uint32_t a = base + s * S::kStage, w = a + S::kABytes + cw * (S::BN * 128);
      asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#pragma unroll
      for (int k16 = 0; k16 < 4; ++k16)
#pragma unroll
        for (int i = 0; i < 3; ++i)
          wgmma_k16<T, S::BN>(acc[i], sw128_desc(a + i * (64 * 128) + k16 * 32), sw128_desc(w + k16 * 32),
                              kt > 0 || k16 > 0);
      asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
      if (has_row) {
        folded_detail::add_row_sums<T, 8>(a, srow, 0, sum, sum_sq);
      }
      asm volatile("wgmma.wait_group.sync.aligned 1;\n" ::: "memory");
      if (kt > 0) mbar_arrive(empty((it - 1) % STAGES));
    }
    asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
    mbar_arrive(empty((it - 1) % STAGES));
    if (srow < S::BM) {
      const float mean = LAB == 1 ? 0.f : sum / p.K;
      const float var = fmaxf(sum_sq / p.K - mean * mean, 0.f);
      row_stats[srow] = make_float2(mean, LAB == 1 ? 1.f : rsqrtf(var + p.eps));
    }
    asm volatile("bar.sync 1, 256;\n" ::: "memory");
#pragma unroll
    for (int i = 0; i < 3; ++i)
#pragma unroll
      for (int hh = 0; hh < 2; ++hh) {
        const int r = i * 64 + wwarp * 16 + lane / 4 + 8 * hh;
        if (m0 + r >= p.M) continue;
        const float2 st = row_stats[r];
        const float rstd = st.y, mean_rstd = st.x * st.y;
        T* yrow = p.y + static_cast<std::int64_t>(m0 + r) * p.N + n0;
#pragma unroll
        for (int j = 0; j < S::BN / 8; ++j) {
          const int c = cw * S::BN + 8 * j + 2 * (lane % 4);
          *reinterpret_cast<std::uint32_t*>(yrow + c) = folded_detail::folded_pair<T, GELU>(
              acc[i][4 * j + 2 * hh], acc[i][4 * j + 2 * hh + 1], rstd, mean_rstd, col_c, col_b, c);
        }
      }
  }
#else
  __trap();
#endif
}

// `a` maps x [M, K] with boxes of 192 rows, `w` maps W' [N, K] with boxes of 192 rows; N a multiple of 192.
template <typename T, bool GELU, int LAB = 0>
cudaError_t launch_gemm_layernorm_folded_wide(const CUtensorMap& a, const CUtensorMap& w,
                                              const FoldedLayerNormArgs<T>& p, cudaStream_t stream, bool pdl) {
  using S = FoldedLnWideTile;
  if (p.N <= 0 || p.N % S::BNB != 0 || p.K % 64 != 0 || p.K <= 0 || p.M <= 0) return cudaErrorInvalidValue;
  auto kernel = gemm_layernorm_folded_wide<T, GELU, LAB>;
  static const cudaError_t configured =
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, S::smem_bytes);
  if (configured != cudaSuccess) return configured;
  const int sms = folded_detail::sm_count();
  if (sms <= 0) return cudaErrorInvalidDevice;
  const int tiles = S::tiles(p.M, p.N);
  const LaunchConfig launch(dim3(tiles < sms ? tiles : sms), dim3(384), S::smem_bytes, stream, pdl);
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
