#pragma once
// The LM head with the row summary in its epilogue (Hopper, fp16 / bf16): logits = h . Wᵀ for h [M, K] and the tied
// embedding W [N, K] (N the padded vocabulary), reduced per row to top-1 (lowest id wins ties) and the sum of the
// first `vocab` logits as T values — what kernels::row_summary computes from stored logits — without writing the
// logits (STORE: write them too, for callers that want them, e.g. the logits check).
//
// Why: cuBLASLt's LM head writes every logit and the row_summary kernel reads them back — 412 MB at B8 x S512,
// ~0.1 ms of a ~2.1 ms prefill (H200) — and after a few-row prefill the summary is a kernel of its own (8.4 us at
// B1 x S128). Here only 16 bytes per (row, tile) leave a block; lm_head_combine then folds the tiles of each row in
// a fixed order. Two kernels, both developed in lab/cuda/lm_head_lab.cu (CPU reference, timing against cuBLASLt +
// row_summary):
// - lm_head_summary (ninth session): two consumer warpgroups on one 128 x BN tile, the summary from registers.
//   No faster than cuBLASLt at 128 rows, slower at 4,096 (its summary ran with the tensor cores idle, and as
//   branches: 618-679 us against 521-526; written without branches, thirteenth session, 523-613).
// - lm_head_summary_pingpong (thirteenth session; the engine's default from 256 rows, EngineOptions::
//   lm_head_summary_rows / _min_rows / lm_head_pingpong): each consumer warpgroup a whole 128 x 192 tile, the two
//   alternating so that one's summary runs beside the other's products, the summary through shared memory
//   (STAGED). H200, 4,096 rows, weights cold: 438-445 us against 516-519 (its main loop alone 413-435); engine
//   B8 x S512 2.014 ms against 2.205 (docs/results/2026-11-27-session13/).
// Both: a persistent block of a producer warpgroup, whose one thread keeps a STAGES-deep TMA ring full across tile
// boundaries, and two consumer warpgroups issuing wgmma. As a programmatic dependent the producer requests the
// first slots' W tiles (constant) before griddepcontrol.wait and h (the kernel before's output) after it.
//
// Needs sm_90a (wgmma, setmaxnreg); elsewhere the body traps and the engine does not take this path.
#include <cuda.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

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

namespace lm_head_detail {
// The producer thread of both LM head kernels: the block's tiles u = blockIdx.x, + gridDim.x, ... < work, rows
// m0 = (u % m_tiles) * 128 and columns n0 = (u / m_tiles) * bn (the row tiles of one W tile run side by side on
// neighbouring blocks, so many-row heads read each W tile from DRAM about once), their kt_n k-blocks of h and W into
// the ring at base (stage bytes a slot, W at a_bytes), each slot once released. As a programmatic dependent it
// requests the first slots' W tiles before the kernel before has finished (W does not depend on it), h after.
template <int STAGES>
__device__ __forceinline__ void produce_tiles(const CUtensorMap* map_h, const CUtensorMap* map_w, std::uint32_t base,
                                              std::uint32_t bar0, std::uint32_t stage, std::uint32_t a_bytes, int bn,
                                              int m_tiles, int work, int kt_n) {
  using namespace wgmma_detail;
  auto full = [&](int s) { return bar0 + 8u * s; };
  auto empty = [&](int s) { return bar0 + 8u * (STAGES + s); };
  asm volatile("prefetch.tensormap [%0];\n" ::"l"(reinterpret_cast<std::uint64_t>(map_w)) : "memory");
  asm volatile("prefetch.tensormap [%0];\n" ::"l"(reinterpret_cast<std::uint64_t>(map_h)) : "memory");
  auto step_of = [&](int it, int& m0, int& n0, int& kt) {
    const int u = blockIdx.x + (it / kt_n) * gridDim.x;
    kt = it % kt_n;
    m0 = (u % m_tiles) * 128;
    n0 = (u / m_tiles) * bn;
    return u < work;
  };
  int early = 0;
  for (int m0, n0, kt; early < STAGES && step_of(early, m0, n0, kt); ++early) {
    mbar_expect_tx(full(early), stage);
    tma_load_2d(base + early * stage + a_bytes, map_w, kt * 64, n0, full(early));
  }
  asm volatile("griddepcontrol.wait;" ::: "memory");
  for (int it = 0, m0, n0, kt; it < early && step_of(it, m0, n0, kt); ++it)
    tma_load_2d(base + it * stage, map_h, kt * 64, m0, full(it));
  for (int it = early, m0, n0, kt; step_of(it, m0, n0, kt); ++it) {
    const int s = it % STAGES;
    mbar_wait(empty(s), ((it / STAGES) - 1) & 1);
    mbar_expect_tx(full(s), stage);
    const std::uint32_t dst = base + s * stage;
    tma_load_2d(dst, map_h, kt * 64, m0, full(s));
    tma_load_2d(dst + a_bytes, map_w, kt * 64, n0, full(s));
  }
}

// One logit v of column col into a row's (run, best, index), both epilogues' step: left out past the vocabulary
// (in = false); strict '>' in ascending column order keeps the lowest column on ties; selects, no branches.
template <typename Sum>
__device__ __forceinline__ void take_logit(float v, int col, bool in, Sum& run, float& best, int& index) {
  run += in ? v : 0.f;
  const bool greater = in && v > best;
  best = greater ? v : best;
  index = greater ? col : index;
}
}  // namespace lm_head_detail

// The epilogue of one warpgroup's 64 x BN block of logits at rows r0 - (lane / 4) ..: each thread's two rows r0
// and r0 + 8 reduced to their (row, tile nt) parts. n8 block j of the accumulators holds columns n0 + 8j +
// 2 (lane % 4) + {0, 1} of rows r0 (acc[4j], acc[4j+1]) and r0 + 8 (acc[4j+2], acc[4j+3]). Each logit is rounded to
// T first — the value a stored logit would hold — then compared (strict '>' in ascending column order keeps the
// lowest) and summed: in double (SUM_FLOAT = false: what row_summary does), or, with SUM_FLOAT, in float along the
// thread's columns and in double from the four lanes of a row on (a conversion to double per run of BN / 4 values
// instead of per logit; the run's rounding is ~BN / 4 float ulps of its magnitude, far inside the checksum gate's
// 1e-3). CHAINS > 1 splits each row's columns into that many independent (best, index, sum) chains (n8 blocks j %
// CHAINS, each still in ascending order), folded at the end with ties to the lower column: the same top-1, and
// CHAINS-fold instruction-level parallelism for the one warp per scheduler that runs a ping-pong epilogue. Both rows
// in one pass over j: with a pass per row ptxas serialised the main loop's wgmma (C7514). Written without branches
// (the comparisons select).
template <typename T, int BN, bool STORE, bool SUM_FLOAT, int CHAINS = 1>
__device__ __forceinline__ void summarise_rows(const float (&acc)[BN / 2], int r0, int n0, int nt, int n_tiles,
                                               int lane, const LmHeadArgs<T>& p) {
  using namespace wgmma_detail;
  using Sum = std::conditional_t<SUM_FLOAT, float, double>;
  static_assert((BN / 8) % CHAINS == 0, "whole n8 blocks a chain");
  float best[2][CHAINS];
  int index[2][CHAINS];
  Sum run[2][CHAINS];
#pragma unroll
  for (int h = 0; h < 2; ++h)
#pragma unroll
    for (int q = 0; q < CHAINS; ++q) best[h][q] = -INFINITY, index[h][q] = 0x7fffffff, run[h][q] = 0;
#pragma unroll
  for (int j = 0; j < BN / 8; ++j) {
    const int c = n0 + j * 8 + 2 * (lane % 4), q = j % CHAINS;
    const bool in0 = c < p.vocab, in1 = c + 1 < p.vocab;  // the padding columns are left out
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      // Rounded as a pair (one packed conversion): rounded one by one, ptxas serialised the ping-pong kernel's
      // wgmma (C7514).
      const std::uint32_t pair = pack_pair<T>(acc[4 * j + 2 * h], acc[4 * j + 2 * h + 1]);
      const float2 v = unpack_pair<T>(pair);
      if constexpr (STORE) {
        const int r = r0 + 8 * h;
        if (r < p.M && c < p.N)
          *reinterpret_cast<std::uint32_t*>(p.logits + static_cast<std::int64_t>(r) * p.N + c) = pair;
      }
      lm_head_detail::take_logit(v.x, c, in0, run[h][q], best[h][q], index[h][q]);
      lm_head_detail::take_logit(v.y, c + 1, in1, run[h][q], best[h][q], index[h][q]);
    }
  }
  // The chains, then the four lanes of a row (lane % 4: interleaved column pairs): ties to the lower column.
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    double sum = run[h][0];
#pragma unroll
    for (int q = 1; q < CHAINS; ++q) {
      sum += run[h][q];
      better(best[h][0], index[h][0], best[h][q], index[h][q]);
    }
#pragma unroll
    for (int o = 1; o <= 2; o <<= 1) {
      sum += __shfl_xor_sync(0xffffffffu, sum, o);
      const float ob = __shfl_xor_sync(0xffffffffu, best[h][0], o);
      const int oi = __shfl_xor_sync(0xffffffffu, index[h][0], o);
      better(best[h][0], index[h][0], ob, oi);
    }
    const int r = r0 + 8 * h;
    if (lane % 4 == 0 && r < p.M)
      p.parts[static_cast<std::int64_t>(r) * n_tiles + nt] = SummaryPart{best[h][0], index[h][0], sum};
  }
}

template <typename T, int BN, int STAGES, bool STORE, bool SUM_FLOAT = false>
__global__ void __launch_bounds__(384, 1)
    lm_head_summary(const __grid_constant__ CUtensorMap map_h, const __grid_constant__ CUtensorMap map_w,
                    LmHeadArgs<T> p) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  using namespace wgmma_detail;
  using S = WideTileShape<BN, STAGES>;
  using Registers = RegisterSplit<40, 232>;  // the producer thread's loop needs few
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

  init_ring<STAGES>(bar0, 256);  // every consumer thread releases each slot
  __syncthreads();
  asm volatile("griddepcontrol.launch_dependents;");

  if (wg == 0) {  // producer warpgroup: registers handed to the consumers, one thread issues every copy
    Registers::producer();
    if (tid == 0)
      lm_head_detail::produce_tiles<STAGES>(&map_h, &map_w, base, bar0, S::kStage, S::kABytes, BN, m_tiles, work, kt_n);
  } else {
    Registers::consumer();
    asm volatile("griddepcontrol.wait;" ::: "memory");  // (STORE writes memory the kernels before may read)
    const int cw = wg - 1;  // consumer warpgroup: rows 64 cw .. 64 cw + 63 of the tile
    const int wwarp = (tid / 32) % 4;
    float acc[BN / 2];
    int it = 0;
    for (int u = blockIdx.x; u < work; u += gridDim.x) {
      const int m0 = (u % m_tiles) * S::BM, nt = u / m_tiles, n0 = nt * BN;
      wide_tile_mainloop<T, BN, STAGES>(acc, base, cw, kt_n, it, full, [&](int s) { mbar_arrive(empty(s)); });

      summarise_rows<T, BN, STORE, SUM_FLOAT>(acc, m0 + cw * 64 + wwarp * 16 + lane / 4, n0, nt, n_tiles, lane, p);
    }
  }
#else
  __trap();  // built without sm_90a: the host never launches this
#endif
}

// ---- ping-pong: each consumer warpgroup a whole 128 x BN tile, the two alternating -------------------------------
// In lm_head_summary above both consumer warpgroups run the summary at once, with the tensor cores idle: at 4,096
// rows that kernel took 624 us against 517 for cuBLASLt + row_summary (H200, ninth session). The twelfth session
// found the hand-written main loop itself at the card's product ceiling (lab/cuda/gemm_layernorm_folded.cuh), the
// epilogue being what is lost. Here warpgroup cw takes the block's tiles i = cw, cw + 2, ... (tile u = blockIdx.x
// + i * gridDim.x, rows (u % m_tiles) * 128 — the row tiles of one W tile side by side on neighbouring blocks, as
// above): the producer fills the ring tile after tile, so one warpgroup's products run while the other reduces its
// last tile (CUTLASS's "ping-pong" schedule). Per k16 step a warpgroup issues two m64nBNk16 products (rows 0-63
// and 64-127 of its tile) that share W's slot. What the lab measured (H200, 4,096 rows, thirteenth session): with
// 128 x 128 tiles the ring alone takes 381-409 us (L2 -> SM traffic) and the main loop alone 523-552, so BN = 192
// (main loop alone 413-435); the summary from registers (summarise_rows) stays exposed (481-508: ~2,000 unrolled
// instructions a thread; 539-571 with independent chains), through shared memory (STAGED) in a rolled loop it hides
// (438-445 with the in-vocabulary fast path; 471-474 without); a double per logit costs ~140 us more than float
// runs; one shared staging buffer to afford a fifth ring slot is slower (472-481). The main loop is wgmma_wide.cuh's
// pingpong_tile_mainloop (how the two warpgroups hand the ring over is said there).
template <int BN_, int STAGES, int STAGED = 0>
struct LmHeadPingPongShape {
  static constexpr int BM = 128, BN = BN_;
  static constexpr std::uint32_t kABytes = BM * 128, kBBytes = BN * 128, kStage = kABytes + kBBytes;
  // STAGED: a 64-row half tile in T, rows kPitch bytes apart (16 bytes of padding: the accumulators' layout then
  // writes without bank conflicts, and 16-byte row reads stay aligned): one buffer (STAGED = 1) or one a consumer
  // warpgroup (2).
  static constexpr std::uint32_t kPitch = BN * 2 + 16, kStagedBytes = STAGED ? 64 * kPitch : 0;
  static constexpr int smem_bytes = STAGES * static_cast<int>(kStage) + STAGED * static_cast<int>(kStagedBytes) + 1024;
  __host__ __device__ static int n_tiles(int N) { return (N + BN - 1) / BN; }
  __host__ __device__ static int tiles(int M, int N) { return ((M + BM - 1) / BM) * n_tiles(N); }
};

// The ping-pong kernel's STAGED epilogue for one 64-row half (rows m0 .. m0 + 63) of warpgroup cw's tile: the
// accumulators rounded to T and written to `staged` (rows PITCH bytes apart; with STORE also to p.logits), then
// row r read back by threads 2r (columns 0 .. BN/2 - 1) and 2r + 1 (the rest), each in ascending order, merged
// with ties to the lower column. Named barrier 2 + cw orders the warpgroup's writes and reads (and the reads
// before the next half's writes).
template <typename T, int BN, bool STORE, bool SUM_FLOAT, std::uint32_t PITCH>
__device__ __forceinline__ void summarise_staged(const float (&acc)[BN / 2], unsigned char* staged, int m0, int n0,
                                                 int nt, int n_tiles, int wtid, int cw, const LmHeadArgs<T>& p) {
  using namespace wgmma_detail;
  using Sum = std::conditional_t<SUM_FLOAT, float, double>;
  const int lane = wtid % 32, wr = (wtid / 32) * 16 + lane / 4;  // this thread's accumulator rows wr, wr + 8
  asm volatile("bar.sync %0, 128;\n" ::"r"(2 + cw) : "memory");  // the last reads of `staged` are done
#pragma unroll
  for (int j = 0; j < BN / 8; ++j) {
    const int c = j * 8 + 2 * (lane % 4);
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const std::uint32_t pair = pack_pair<T>(acc[4 * j + 2 * h], acc[4 * j + 2 * h + 1]);
      *reinterpret_cast<std::uint32_t*>(staged + (wr + 8 * h) * PITCH + c * 2) = pair;
      if constexpr (STORE) {
        const int r = m0 + wr + 8 * h;
        if (r < p.M && n0 + c < p.N)
          *reinterpret_cast<std::uint32_t*>(p.logits + static_cast<std::int64_t>(r) * p.N + n0 + c) = pair;
      }
    }
  }
  asm volatile("bar.sync %0, 128;\n" ::"r"(2 + cw) : "memory");
  const int row = wtid / 2, half = wtid % 2, first = half * (BN / 2);
  const int valid = min(BN / 2, p.vocab - n0 - first);  // columns of this half inside the vocabulary
  const unsigned char* src = staged + row * PITCH + first * 2;
  float best = -INFINITY;
  int index = 0x7fffffff;
  Sum run = 0;
  // CHECK: some of the half's columns lie past the vocabulary (the last tile); other tiles skip the comparisons.
  auto scan = [&](auto check) {
#pragma unroll 2
    for (int k = 0; k < BN / 16; ++k) {
      const uint4 q = *reinterpret_cast<const uint4*>(src + 16 * k);
      const std::uint32_t w4[4] = {q.x, q.y, q.z, q.w};
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const float2 v = unpack_pair<T>(w4[e]);
        const int col = 8 * k + 2 * e;
        const bool in0 = !decltype(check)::value || col < valid, in1 = !decltype(check)::value || col + 1 < valid;
        lm_head_detail::take_logit(v.x, col, in0, run, best, index);
        lm_head_detail::take_logit(v.y, col + 1, in1, run, best, index);
      }
    }
  };
  if (valid >= BN / 2) scan(std::false_type{});
  else scan(std::true_type{});
  if (index != 0x7fffffff) index += n0 + first;
  double sum = run;
  sum += __shfl_xor_sync(0xffffffffu, sum, 1);
  const float ob = __shfl_xor_sync(0xffffffffu, best, 1);
  const int oi = __shfl_xor_sync(0xffffffffu, index, 1);
  better(best, index, ob, oi);
  const int r = m0 + row;
  if (half == 0 && r < p.M) p.parts[static_cast<std::int64_t>(r) * n_tiles + nt] = SummaryPart{best, index, sum};
}

// LAB (lab/cuda/lm_head_lab.cu only) leaves parts out, to time the rest: 1 = the summary (the main loop alone; a
// store that never happens keeps the products, which ptxas would otherwise delete), 2 = the products too (the
// ring's data movement alone).
// STAGED: the summary through shared memory — each 64-row half of the tile written there as T pairs, then each row
// read back by two threads (half of its columns each, in ascending order, in a rolled loop) and their results
// merged: a small loop instead of summarise_rows' fully unrolled register code. STAGED = 2: a buffer a consumer
// warpgroup; 1: one buffer, which the two warpgroups' epilogues take in turns (named barriers 6 and 7: the other's
// arrival once it has read its last tile out), leaving room for a fifth ring slot with 128 x 192 tiles.
template <typename T, int BN, int STAGES, bool STORE, bool SUM_FLOAT, int CHAINS = 1, int STAGED = 0, int LAB = 0>
__global__ void __launch_bounds__(384, 1)
    lm_head_summary_pingpong(const __grid_constant__ CUtensorMap map_h, const __grid_constant__ CUtensorMap map_w,
                             LmHeadArgs<T> p) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  using namespace wgmma_detail;
  using S = LmHeadPingPongShape<BN, STAGES, STAGED>;
  using Registers = RegisterSplit<24, 240>;  // two 128 x 192 accumulators a consumer thread (spilled at 232)
  extern __shared__ __align__(1024) unsigned char lmp_smem[];
  __shared__ alignas(8) std::uint64_t bars[2 * STAGES];  // full[s], empty[s]
  const std::uint32_t base = (static_cast<std::uint32_t>(__cvta_generic_to_shared(lmp_smem)) + 1023u) & ~1023u;
  const std::uint32_t bar0 = static_cast<std::uint32_t>(__cvta_generic_to_shared(bars));
  auto full = [&](int s) { return bar0 + 8u * s; };
  auto empty = [&](int s) { return bar0 + 8u * (STAGES + s); };
  const int tid = threadIdx.x, lane = tid % 32;
  const int m_tiles = (p.M + S::BM - 1) / S::BM, n_tiles = S::n_tiles(p.N);
  const int work = m_tiles * n_tiles, kt_n = p.K / 64;
  const int wg = __shfl_sync(0xffffffffu, tid / 128, 0);  // provably warp-uniform (see lm_head_summary)

  init_ring<STAGES>(bar0, 128);  // one warpgroup releases each slot
  __syncthreads();
  asm volatile("griddepcontrol.launch_dependents;");

  if (wg == 0) {  // producer warpgroup, as in lm_head_summary
    Registers::producer();
    if (tid == 0)
      lm_head_detail::produce_tiles<STAGES>(&map_h, &map_w, base, bar0, S::kStage, S::kABytes, BN, m_tiles, work, kt_n);
    return;
  }
  Registers::consumer();
  asm volatile("griddepcontrol.wait;" ::: "memory");  // (STORE writes memory the kernels before may read)
  const int cw = wg - 1, wwarp = (tid / 32) % 4;
  float acc0[BN / 2], acc1[BN / 2];
  for (int i = cw;; i += 2) {
    const int u = blockIdx.x + i * gridDim.x;
    if (u >= work) break;
    const int m0 = (u % m_tiles) * S::BM, nt = u / m_tiles, n0 = nt * BN;
    pingpong_tile_mainloop<T, BN, STAGES, LAB != 2>(acc0, acc1, base, S::kStage, S::kABytes, i, cw, kt_n, full, empty);
    if constexpr (LAB == 2) continue;
    const int r0 = m0 + wwarp * 16 + lane / 4;
    if constexpr (LAB == 1) {
      if (p.vocab < 0) {  // never: keeps the products
        float t = 0.f;
#pragma unroll
        for (int j = 0; j < BN / 2; ++j) t += acc0[j] + acc1[j];
        p.parts[r0].best = t;
      }
      continue;
    }
    if constexpr (STAGED != 0) {
      const std::uint32_t raw = static_cast<std::uint32_t>(__cvta_generic_to_shared(lmp_smem));
      unsigned char* staged = lmp_smem + (base - raw) + STAGES * S::kStage + (STAGED == 2 ? cw : 0) * S::kStagedBytes;
      const int wtid = tid % 128;
      if (STAGED == 1 && i > 0) asm volatile("bar.sync %0, 256;\n" ::"r"(6 + cw) : "memory");  // the buffer is free
      summarise_staged<T, BN, STORE, SUM_FLOAT, S::kPitch>(acc0, staged, m0, n0, nt, n_tiles, wtid, cw, p);
      summarise_staged<T, BN, STORE, SUM_FLOAT, S::kPitch>(acc1, staged, m0 + 64, n0, nt, n_tiles, wtid, cw, p);
      if constexpr (STAGED == 1) {  // read out: the buffer to the other warpgroup
        asm volatile("bar.sync %0, 128;\n" ::"r"(2 + cw) : "memory");
        asm volatile("bar.arrive %0, 256;\n" ::"r"(7 - cw) : "memory");
      }
    } else {
      summarise_rows<T, BN, STORE, SUM_FLOAT, CHAINS>(acc0, r0, n0, nt, n_tiles, lane, p);
      summarise_rows<T, BN, STORE, SUM_FLOAT, CHAINS>(acc1, r0 + 64, n0, nt, n_tiles, lane, p);
    }
  }
#else
  __trap();  // built without sm_90a: the host never launches this
#endif
}

// One warp folds one row's n parts (parts[0 .. n)) into *top1 / *row_sum in a fixed order — each lane the parts
// lane, lane + 32, ...; then a fixed shuffle tree — so the result does not depend on the timing. (Also the
// persistent prefill kernel's LM head fold, layers_persistent.cuh.)
__device__ __forceinline__ void fold_summary_parts(const SummaryPart* parts, int n, int lane, int* top1,
                                                   double* row_sum) {
  float best = -INFINITY;
  int index = 0x7fffffff;
  double sum = 0.0;
  for (int t = lane; t < n; t += 32) {
    const SummaryPart q = parts[t];
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
    *top1 = index;
    *row_sum = sum;
  }
}

// top1 / row_sum of each row from its n_tiles parts: one warp per row (fold_summary_parts). A programmatic
// dependent of lm_head_summary.
__global__ void __launch_bounds__(256) lm_head_combine(const SummaryPart* parts, int M, int n_tiles, int* top1,
                                                       double* row_sum) {
  asm volatile("griddepcontrol.wait;" ::: "memory");
  const int row = blockIdx.x * 8 + threadIdx.x / 32, lane = threadIdx.x % 32;
  if (row >= M) return;
  fold_summary_parts(parts + static_cast<std::int64_t>(row) * n_tiles, n_tiles, lane, top1 + row, row_sum + row);
}

// ---- host side ---------------------------------------------------------------------------------------------------

namespace lm_head_detail {
// Both LM heads' launch: the arguments checked, the product (launch_product(store): STORE when p.logits is set),
// then lm_head_combine folding each row's n_tiles parts into top1 / row_sum, each a programmatic dependent of the
// kernel before when pdl.
template <typename T, typename LaunchProduct>
cudaError_t launch_with_combine(const LmHeadArgs<T>& p, int n_tiles, int* top1, double* row_sum, int blocks,
                                cudaStream_t stream, bool pdl, LaunchProduct launch_product) {
  if (p.K % 64 != 0 || p.N % 2 != 0 || p.M < 1 || blocks < 1 || !p.parts || p.vocab > p.N) return cudaErrorInvalidValue;
  const cudaError_t e = launch_product(p.logits != nullptr);
  if (e != cudaSuccess) return e;
  return launch_kernel(lm_head_combine, dim3((p.M + 7) / 8), dim3(256), 0, stream, pdl, p.parts, p.M, n_tiles, top1,
                       row_sum);
}
}  // namespace lm_head_detail

template <typename T, int BN, int STAGES, bool STORE, bool SUM_FLOAT>
cudaError_t launch_lm_head_summary_t(const CUtensorMap& h, const CUtensorMap& w, const LmHeadArgs<T>& p, int blocks,
                                     cudaStream_t stream, bool pdl) {
  using S = WideTileShape<BN, STAGES>;
  auto kernel = lm_head_summary<T, BN, STAGES, STORE, SUM_FLOAT>;
  static const cudaError_t configured =  // once per instantiation
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, S::smem_bytes);
  if (configured != cudaSuccess) return configured;
  const int tiles = S::tiles(p.M, p.N);
  return launch_kernel(kernel, dim3(tiles < blocks ? tiles : blocks), dim3(384), S::smem_bytes, stream, pdl, h, w, p);
}

template <typename T, int BN, int STAGES, bool STORE, bool SUM_FLOAT, int CHAINS, int STAGED, int LAB>
cudaError_t launch_lm_head_summary_pingpong_t(const CUtensorMap& h, const CUtensorMap& w, const LmHeadArgs<T>& p,
                                              int blocks, cudaStream_t stream, bool pdl) {
  using S = LmHeadPingPongShape<BN, STAGES, STAGED>;
  auto kernel = lm_head_summary_pingpong<T, BN, STAGES, STORE, SUM_FLOAT, CHAINS, STAGED, LAB>;
  static const cudaError_t configured =
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, S::smem_bytes);
  if (configured != cudaSuccess) return configured;
  const int tiles = S::tiles(p.M, p.N);
  return launch_kernel(kernel, dim3(tiles < blocks ? tiles : blocks), dim3(384), S::smem_bytes, stream, pdl, h, w, p);
}

// The same through the ping-pong kernel: `w` maps W with boxes of BN rows; p.parts holds M * n_tiles(N) parts of
// LmHeadPingPongShape<BN, STAGES>.
template <typename T, int BN, int STAGES, bool SUM_FLOAT, int CHAINS = 1, int STAGED = 0, int LAB = 0>
cudaError_t launch_lm_head_summary_pingpong(const CUtensorMap& h, const CUtensorMap& w, const LmHeadArgs<T>& p,
                                            int* top1, double* row_sum, int blocks, cudaStream_t stream, bool pdl) {
  return lm_head_detail::launch_with_combine(
      p, LmHeadPingPongShape<BN, STAGES>::n_tiles(p.N), top1, row_sum, blocks, stream, pdl, [&](bool store) {
        return store ? launch_lm_head_summary_pingpong_t<T, BN, STAGES, true, SUM_FLOAT, CHAINS, STAGED, LAB>(
                           h, w, p, blocks, stream, pdl)
                     : launch_lm_head_summary_pingpong_t<T, BN, STAGES, false, SUM_FLOAT, CHAINS, STAGED, LAB>(
                           h, w, p, blocks, stream, pdl);
      });
}

// The LM head and its summary: `h` maps h [M, K] with boxes of 128 rows, `w` maps W [N, K] with boxes of BN rows
// (wgmma_tensor_map); p.parts holds M * lm_head_tiles(BN, N) parts. Two launches (the product, then the fold into
// top1 / row_sum), each a programmatic dependent of the one before when pdl. blocks: the persistent grid (the SMs).
template <typename T, int BN, int STAGES, bool SUM_FLOAT = false>
cudaError_t launch_lm_head_summary(const CUtensorMap& h, const CUtensorMap& w, const LmHeadArgs<T>& p, int* top1,
                                   double* row_sum, int blocks, cudaStream_t stream, bool pdl) {
  return lm_head_detail::launch_with_combine(
      p, WideTileShape<BN, STAGES>::n_tiles(p.N), top1, row_sum, blocks, stream, pdl, [&](bool store) {
        return store ? launch_lm_head_summary_t<T, BN, STAGES, true, SUM_FLOAT>(h, w, p, blocks, stream, pdl)
                     : launch_lm_head_summary_t<T, BN, STAGES, false, SUM_FLOAT>(h, w, p, blocks, stream, pdl);
      });
}

}  // namespace gptbench::cuda_engine::kernels
