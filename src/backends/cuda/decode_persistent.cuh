#pragma once
// A decode step of <= 8 sequences in ONE persistent kernel: the embedding of the new tokens and every transformer
// block, one block of 256 threads per SM, the phases separated by grid-wide barriers instead of kernel boundaries.
// ln_f and the LM head follow as the fused matrix-vector kernel (gemv.cuh), which already reads its 77 MB near
// the memory's pace.
//
// Why: the fused decode step is 5 kernels a layer (gemv.cuh + decode_attention), each moving 1.2-4.7 MB of
// weights: latency-bound kernels whose launch, ramp and drain cost more than their bytes (0.30 ms a step on an
// H200 for GPT-2 124M, ~20 us a layer, against ~3 us a layer of weight bytes). Here a layer is 5 phases and 5
// barriers, and each warp loads the first weights of its next product into registers during the barrier that
// releases the product's input (after its block's arrival, before the wait): weights do not depend on
// activations, so their HBM latency overlaps the barrier and the input's trip from L2.
//
// Phases of layer l (G blocks x 8 warps; products warp-major: warp w of block b is grid warp w * G + b and takes
// output groups w * G + b, + 8G, ...):
//   A  every block: x rows -> shared memory (l = 0: x = wte[id] + wpe[pos], block 0 also stores x), LN1 in place;
//      QKV: qkv = LN1(x) . Wqkv^T + b (4 columns a warp), the k and v thirds also into the cache at pos
//   B  attention: a block per (sequence, head) item: decode_attention_item over the cache positions [0, pos]
//   C  proj: x += att . Wproj^T + b                                  (1 column a warp, K = C)
//   D  every block: x rows -> LN2 in shared memory; FC: u = GELU(LN2(x) . Wfc^T + b)   (4 columns a warp)
//   E  MLP projection: x += u . Wmproj^T + b                         (1 column a warp, K = F)
// Every output is finished by one warp (no split-K), and each warp does exactly the arithmetic of gemv_kernel
// (the same prologues, the same per-lane FMA order over the 16-byte chunks, the same shuffle tree, bias, GELU,
// residual add) and the attention that of decode_attention: the step gives the 5-kernel chain's bits.
//
// Memory ordering: activations are written with ordinary stores and read after a barrier (a release-add and
// acquire polls on one global counter, layers_persistent.cuh's) through L2 (ld.global.cg) or, in the attention
// item, by plain loads after the acquire. Co-residency: one block per SM, cooperative launch (it fails rather
// than deadlocks). Weights are read with ld.global.nc (they never change).
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "backends/cuda/attention_mma.cuh"
#include "backends/cuda/gemv.cuh"
#include "backends/cuda/kernels.cuh"
#include "backends/cuda/layers_persistent.cuh"

namespace gptbench::cuda_engine::kernels {

constexpr int kDecodeMaxLayers = 64;  // the cache pointers travel in the kernel's arguments
constexpr int kDecodeMaxRows = 8;
constexpr int kDecodeThreads = 256;
constexpr int kDecodeHeadDim = 64;
// The products of a layer, a bit each: which of them run on tensor cores (decode_mma below) in a step of 5-8
// sequences in fp16 / bf16 (DecodeArgs::mma); the others on CUDA cores.
constexpr unsigned kDecodeQkv = 1, kDecodeProj = 2, kDecodeFc = 4, kDecodeMproj = 8;
constexpr unsigned kDecodeMmaAll = kDecodeQkv | kDecodeProj | kDecodeFc | kDecodeMproj;

// One block's parameters (device pointers; weights [out][in], K contiguous, as the gemv kernels read them).
template <typename T>
struct DecodeLayer {
  const T *w_qkv = nullptr, *w_proj = nullptr, *w_fc = nullptr, *w_mproj = nullptr;
  const T *b_qkv = nullptr, *b_proj = nullptr, *b_fc = nullptr, *b_mproj = nullptr;  // each may be null
  const float *ln1_g = nullptr, *ln1_b = nullptr, *ln2_g = nullptr, *ln2_b = nullptr;
  float scale_log2 = 0.f;  // attention: softmax scale * log2(e)
};

template <typename T>
struct DecodeArgs {
  const DecodeLayer<T>* layers = nullptr;  // device array [n_layers]
  int n_layers = 0;
  int rows = 0;                  // sequences, 1..kDecodeMaxRows
  int C = 0, H = 0, F = 0;       // head size C / H = kDecodeHeadDim
  int max_tokens = 0;            // the cache's positions per sequence
  T* cache[kDecodeMaxLayers] = {};  // per layer [rows][max_tokens][2C] (the K row, then the V row)
  const int* ids = nullptr;      // [rows] the new tokens
  const int* pos = nullptr;      // their position (the same for every sequence)
  const T *wte = nullptr, *wpe = nullptr;
  float* x = nullptr;            // [rows][C] residual stream out (the last block's output)
  T *qkv = nullptr, *att = nullptr, *u = nullptr;  // [rows][3C], [rows][C], [rows][F]
  // the grid barrier's arrivals (zero at launch, and at exit: persistent_detail::leave_and_reset), then the
  // synchronisation words of layers_persistent.cuh (kPersistentSyncWords)
  unsigned* counter = nullptr;
  float eps = 1e-5f;
  int gelu_tanh = 1;             // GELU's tanh form (GPT-2's gelu_new), else erf
  // lab (decode_persistent_lab; the engine sets neither): block 0's %globaltimer at the start and after each
  // barrier [5 L], each block's when its work before barrier i was done [5 L - 1][blocks].
  unsigned long long* trace = nullptr;
  unsigned long long* trace_done = nullptr;
  // 5-8 sequences in fp16 / bf16: the products on tensor cores (decode_mma below), a kDecode* bit each —
  // kDecodeMmaAll (the engine's option decode_mma) or, in the lab, kDecodeMproj alone — instead of the CUDA-core
  // products that give the chain's bits. Ignored for float and for <= 4 rows. Each mask is a kernel instance of
  // its own (gpt2_decode_persistent's kMma).
  int mma = 0;
  // The twenty-fifth session's lab switches (the first weights requested before the arrival or after the
  // barrier, the rows staged by loads, the tensor-core path's 7 product warps, its polling warp's weights after
  // the wait, its weights read row by row) are gone: each was measured slower or no faster
  // (docs/cuda-engine.md, the twenty-fifth session; docs/results/2026-11-29-session25/).
};

namespace decode_detail {

using gemv_detail::unpack;

constexpr int kWarps = kDecodeThreads / 32;
constexpr int kWeightRegs = 12;  // uint4 registers a thread holds for its next product's first weights

// A product's mapping: COLS output columns a warp ("a group"), U 16-byte chunks per column per lane and stage.
// QKV / FC: 4 x 3 (K = 768: one stage; 576 / 768 groups for the grid's 1,056 warps on 132 SMs — COLS * rows must
// be a power of two for the shuffle tree); attention / MLP projection: 1 x 3 and 1 x 12 (K = 768 / 3072: one stage).
template <int COLS_, int U_>
struct Mapping {
  static constexpr int COLS = COLS_, U = U_;
  static_assert(COLS * U <= kWeightRegs, "a stage must fit the weight registers");
};
using QkvMap = Mapping<4, 3>;
using ProjMap = Mapping<1, 3>;
using FcMap = Mapping<4, 3>;
using MprojMap = Mapping<1, 12>;

// The weight registers seen as [COLS][U] (indices are compile-time after unrolling: they stay registers).
template <int COLS, int U>
__device__ __forceinline__ uint4 (&stage_view(uint4 (&regs)[kWeightRegs]))[COLS][U] {
  return *reinterpret_cast<uint4(*)[COLS][U]>(&regs[0]);
}

// The output a lane writes after the warp's shuffle tree (gemv_kernel's epilogue): column c of the group, row r;
// false for the lanes that hold no total.
template <int ROWS, int COLS>
__device__ __forceinline__ bool lane_output(int lane, int& c, int& r) {
  constexpr int kShift = 5 - gemv_detail::ilog2(COLS * ROWS);
  const int idx = lane >> kShift;
  c = idx / ROWS;
  r = idx % ROWS;
  return (lane & ((1 << kShift) - 1)) == 0;
}

// A warp's first weights of its next product, and this lane's bias value of it, requested between the barrier's
// arrival and its wait (preload: the weight loads are volatile asm, so the compiler keeps them there) and used by
// the product after it.
struct Preloaded {
  uint4 regs[kWeightRegs];
  float bias = 0.f;
};

// Requests the first stage of this warp's first group of product W [N][K] and the bias of the lane's output.
template <typename T, int ROWS, typename M>
__device__ __forceinline__ void preload(Preloaded& pl, const T* W, const T* bias, int N, int K, int gwarp, int lane) {
  constexpr int kVec = 16 / static_cast<int>(sizeof(T));
  if (gwarp >= (N + M::COLS - 1) / M::COLS) return;
  gemv_detail::load_weight_stage<M::COLS, M::U, true>(stage_view<M::COLS, M::U>(pl.regs), W,
                                                      static_cast<std::int64_t>(K) * sizeof(T), N, K / kVec, gwarp, 0,
                                                      lane);
  int c, r;
  lane_output<ROWS, M::COLS>(lane, c, r);
  const int n = gwarp * M::COLS + c;
  if (bias && n < N) pl.bias = to_f(bias[n]);
}

// This warp's groups of y = W . xs (the input rows staged as float). The first stage of its first group and that
// group's bias are already in pl (preload, during the barrier before the product); every later stage is loaded when it is needed.
// Each valid output v (bias added) is added to resid[r * N + n] (resid: the residual stream, whose old values are
// requested before the products) or else passed to write(r, n, v).
template <typename T, int ROWS, typename M, typename Write>
__device__ __forceinline__ void product(Preloaded& pl, const T* W, const T* bias, int N, int K, const float* xs,
                                        int rows, int gwarp, int nwarps, int lane, float* resid,
                                        Write write) {
  constexpr int COLS = M::COLS, U = M::U;
  constexpr int kVec = 16 / static_cast<int>(sizeof(T));
  constexpr int kV = COLS * ROWS;
  static_assert(kV <= 32, "COLS * ROWS must be <= 32");
  const int nchunks = K / kVec, ngroups = (N + COLS - 1) / COLS;
  const std::int64_t row_bytes = static_cast<std::int64_t>(K) * sizeof(T);
  uint4(&cur)[COLS][U] = stage_view<COLS, U>(pl.regs);
  int lc, lr;
  const bool writer = lane_output<ROWS, COLS>(lane, lc, lr);
  float old = 0.f;  // the first group's residual value (written by an earlier phase): requested now
  if (resid && writer && gwarp < ngroups && lr < rows && gwarp * COLS + lc < N)
    old = __ldcg(resid + static_cast<std::int64_t>(lr) * N + gwarp * COLS + lc);
  bool first = true;
  for (int g = gwarp; g < ngroups; g += nwarps) {  // warp-uniform
    float acc[kV];
#pragma unroll
    for (int i = 0; i < kV; ++i) acc[i] = 0.f;
    for (int k0 = 0; k0 < nchunks; k0 += 32 * U) {
      if (!(first && k0 == 0)) gemv_detail::load_weight_stage<COLS, U>(cur, W, row_bytes, N, nchunks, g, k0, lane);
      gemv_detail::accumulate_stage<T, ROWS, COLS, U>(cur, xs, K, nchunks, k0, lane, acc);
    }
    const float s = gemv_detail::warp_reduce_multi<kV>(acc, lane);
    const int n = g * COLS + lc;
    if (writer && lr < rows && n < N) {
      const float v = !bias ? s : s + (first ? pl.bias : to_f(bias[n]));
      if (resid) {
        float* xp = resid + static_cast<std::int64_t>(lr) * N + n;
        *xp = (first ? old : __ldcg(xp)) + v;
      } else {
        write(lr, n, v);
      }
    }
    first = false;
  }
}

// The float residual rows [rows][K] (written by other blocks before the barrier) -> xs [ROWS][K], zeros for the
// padding rows: cp.async copies, all of a thread's in flight at once (gemv.cuh's staging by loads, 4 in flight a
// thread, was 1.4-1.9 % slower at 4-8 rows: twenty-fifth session).
template <int ROWS>
__device__ __forceinline__ void stage_float_rows_async(float* xs, const float* x, int rows, int K) {
  const int K4 = K / 4;
  for (int i = threadIdx.x; i < ROWS * K4; i += blockDim.x) {
    float4* dst = reinterpret_cast<float4*>(xs) + i;
    if (i < rows * K4) mma_detail::cp_async_16(mma_detail::smem_addr(dst), reinterpret_cast<const float4*>(x) + i);
    else *dst = make_float4(0.f, 0.f, 0.f, 0.f);
  }
  mma_detail::cp_async_commit();
  mma_detail::cp_async_wait<0>();
}

}  // namespace decode_detail

// ---- 8 rows on tensor cores (fp16 / bf16) ------------------------------------------------------------------------
// Why: at 8 rows the CUDA-core products above read 8 input rows (as float, from shared memory) for every weight
// load: on an H200 the MLP projection's phase went from 3.4 to 9.8 us a layer from 1 to 8 rows, QKV 3.6 -> 6.6, FC
// 4.1 -> 7.0 (twenty-fourth session), and cuBLASLt stayed faster at batch 8. One mma.sync.m16n8k16 takes 8 rows x
// 8 columns x 16 k from registers that one 16-byte weight load and one 16-byte input load a lane fill (two of
// them per 32 k), so the input's shared-memory traffic drops 32-fold and the phases are back to streaming weights.
//
// Fragments: A = the input rows (rows 8-15 of the m16 tile are zero registers), B = 8 weight rows (8 output
// columns). Lane (g, t) (g = lane / 4, t = lane % 4) loads output column g's 16-byte chunk 4q + t of a "quad" q
// (32 k) and input row g's same chunk. Inside a quad the k order is relabelled so that these two loads ARE the
// fragments of two k16 steps: step s's logical k {2t, 2t+1} are the chunk's elements 4s + {0, 1} and its logical k
// {2t+8, 2t+9} the elements 4s + {2, 3}; A and B are relabelled alike, and a dot product is the same sum in any k
// order. The accumulator's c0 / c1 are then (row g, columns 2t, 2t+1) of the 8 x 8 result; c2 / c3 (rows 8-15) stay 0.
//
// Work: the output columns in groups of 8; group j belongs to block j % G (a block's groups: b, b + G, ...), and a
// block's warps split every one of its groups' k by quads (warp w: quads w, w + W, ...). A warp's weights for the
// whole product fit its 12 weight registers at GPT-2's widths on 132 SMs (QKV / FC: <= 3 groups x 3 quads; the
// MLP projection: 1 group x 12 quads), so the barrier's preload requests all of them. The warps' partial 8 x 8
// sums meet in shared memory and one thread per output adds them in warp order (bitwise reproducible), adds the
// bias and finishes the output as the CUDA-core path does. Not the chain's bits: the input rows are rounded to 16
// bits before the product (as a prefill's are), and the sums run in another order.
// Measured (H200, twenty-fifth session): correct, but slower than the CUDA-core products (506-601 against 402-429
// us a step at 8 rows, by card). An ablation puts the cost in none of the work items (MMAs, weight requests,
// reduction), for reasons not yet found (docs/cuda-engine.md, that session). Off by default (option decode_mma).
namespace decode_mma {

using decode_detail::kWarps;
using decode_detail::kWeightRegs;
constexpr int kRows = 8;
constexpr int kGroupCols = 8;
constexpr int kQuadK = 32;

// Input rows in shared memory: [kRows][xh_stride(K)] 16-bit values; a row is 64 bytes past a multiple of 128 from
// the one before, so a quarter-warp's 16-byte loads (rows g, g + 1, chunks t = 0..3) hit 32 different banks.
__host__ __device__ constexpr int xh_stride(int K) { return (K + 63) / 64 * 64 + 32; }
__host__ __device__ constexpr int groups_per_block(int N, int blocks) {
  return (N / kGroupCols + blocks - 1) / blocks;
}
// Byte offsets in the rows region: the LayerNorm's float rows [kRows][C] first, then the 16-bit rows, then the
// warps' partial sums [kWarps][groups][64].
__host__ __device__ constexpr int xh_offset(int C) { return kRows * C * 4; }
__host__ __device__ constexpr int part_offset(int C, int F) {
  return xh_offset(C) + kRows * xh_stride(C > F ? C : F) * 2;
}
__host__ __device__ constexpr int rows_region_bytes(int C, int F, int blocks) {
  return part_offset(C, F) +
         kWarps * groups_per_block(3 * C > F ? 3 * C : F, blocks) * kRows * kGroupCols * 4;
}

// Which of a product's items (group, quad) this warp takes.
struct Work {
  int groups = 0;  // this block's groups
  int quads = 0;   // this warp's quads of each group
  int items = 0;   // groups * quads, group-major
  int warp = 0;
};
__device__ __forceinline__ Work work_of(int N, int K, int warp) {
  constexpr int warps = kWarps;
  Work w;
  const int ngroups = N / kGroupCols, nquads = K / kQuadK, b = blockIdx.x, G = gridDim.x;
  w.groups = b < ngroups ? (ngroups - b + G - 1) / G : 0;
  w.quads = warp < warps && warp < nquads ? (nquads - warp + warps - 1) / warps : 0;
  w.items = w.groups * w.quads;
  w.warp = warp;
  return w;
}

// Requests the weights of this warp's items [i0, i0 + kWeightRegs) (kHere: where the call stands).
template <typename T, bool kHere>
__device__ __forceinline__ void load_items(uint4 (&regs)[kWeightRegs], const T* W, int K, const Work& w, int i0,
                                           int lane) {
  const int g = lane >> 2, t = lane & 3;
#pragma unroll
  for (int j = 0; j < kWeightRegs; ++j) {
    const int i = i0 + j;
    if (i < w.items) {
      const int gi = i / w.quads, q = w.warp + kWarps * (i - gi * w.quads);
      const int n = (blockIdx.x + gi * gridDim.x) * kGroupCols + g, chunk = 4 * q + t;
      const T* at = W + static_cast<std::int64_t>(n) * K + chunk * 8;
      regs[j] = kHere ? gemv_detail::ld_weights_here(at) : gemv_detail::ld_weights(at);
    }
  }
}

// The LayerNorm's float rows [kRows][K] -> 16-bit rows (rounded to nearest, as a stored activation is).
template <typename T>
__device__ __forceinline__ void float_rows_to_16bit(T* xh, const float* xs, int K) {
  const int chunks = K / 8;
  for (int i = threadIdx.x; i < kRows * chunks; i += blockDim.x) {
    const int r = i / chunks, c = 8 * (i % chunks);
    const float4 a = *reinterpret_cast<const float4*>(xs + r * K + c);
    const float4 b = *reinterpret_cast<const float4*>(xs + r * K + c + 4);
    uint4 v;
    v.x = mma_detail::pack2<T>(a.x, a.y);
    v.y = mma_detail::pack2<T>(a.z, a.w);
    v.z = mma_detail::pack2<T>(b.x, b.y);
    v.w = mma_detail::pack2<T>(b.z, b.w);
    *reinterpret_cast<uint4*>(xh + r * xh_stride(K) + c) = v;
  }
}
// 16-bit activation rows [rows][K] (written by other blocks before the barrier: read through L2) -> xh; zeros for
// the padding rows. cp.async copies: a thread's copies are all in flight at once — a loop of loads waited for each
// (K = 3,072: 12 a thread, ~6 us of the phase in the first measurement).
template <typename T>
__device__ __forceinline__ void stage_16bit_rows(T* xh, const T* act, int rows, int K) {
  const int chunks = K / 8;
  for (int i = threadIdx.x; i < kRows * chunks; i += blockDim.x) {
    const int r = i / chunks, c = 8 * (i % chunks);
    T* dst = xh + r * xh_stride(K) + c;
    const T* src = act + static_cast<std::int64_t>(r) * K + c;
    if (r >= rows) *reinterpret_cast<uint4*>(dst) = make_uint4(0u, 0u, 0u, 0u);
    else mma_detail::cp_async_16(mma_detail::smem_addr(dst), src);
  }
  mma_detail::cp_async_commit();
  mma_detail::cp_async_wait<0>();
}

// The product y = xh . W^T + bias for this block's groups, each valid output (row < rows) added to resid[r * N + n]
// (the float residual stream) or passed to write(r, n, v). The first kWeightRegs items' weights are in regs
// already (load_items<T, true> during the barrier before the product). A thread's first output's bias and old residual
// value are requested before the MMAs, so their trip from L2 overlaps them.
template <typename T, typename Write>
__device__ __forceinline__ void product(uint4 (&regs)[kWeightRegs], const T* W, const T* bias, int N, int K,
                                        const T* xh, float* part, int rows, int lane, float* resid, Write write) {
  const Work w = work_of(N, K, threadIdx.x / 32);
  const int g = lane >> 2, t = lane & 3;
  auto output_of = [&](int o, int& r, int& n) {  // output o of the block: (group o / 64, row, column)
    const int gi = o / 64, rc = o % 64;
    r = rc / kGroupCols;
    n = (blockIdx.x + gi * gridDim.x) * kGroupCols + rc % kGroupCols;
  };
  float first_bias = 0.f, first_old = 0.f;
  if (static_cast<int>(threadIdx.x) < w.groups * 64) {
    int r, n;
    output_of(threadIdx.x, r, n);
    if (bias) first_bias = to_f(bias[n]);
    if (resid && r < rows) first_old = __ldcg(resid + static_cast<std::int64_t>(r) * N + n);
  }
  const T* xrow = xh + g * xh_stride(K) + 8 * t;
  // two accumulator sets (the two k16 steps of a quad): half as long a chain of dependent MMAs
  float acc0[4] = {0.f, 0.f, 0.f, 0.f}, acc1[4] = {0.f, 0.f, 0.f, 0.f};
  for (int i0 = 0; i0 < w.items; i0 += kWeightRegs) {  // one round at GPT-2's widths on 132 SMs
    if (i0 > 0) load_items<T, false>(regs, W, K, w, i0, lane);
#pragma unroll
    for (int j = 0; j < kWeightRegs; ++j) {
      const int i = i0 + j;
      if (i < w.items) {
        const int gi = i / w.quads, qi = i - gi * w.quads, q = w.warp + kWarps * qi;
        const uint4 a = *reinterpret_cast<const uint4*>(xrow + q * kQuadK);
        const uint4 b = regs[j];
        const std::uint32_t a0[4] = {a.x, 0u, a.y, 0u}, a1[4] = {a.z, 0u, a.w, 0u};
        mma_detail::mma_16816<T>(acc0, a0, b.x, b.y);
        mma_detail::mma_16816<T>(acc1, a1, b.z, b.w);
        if (qi == w.quads - 1) {  // the warp's last quad of group gi: its partial 8 x 8 sums
          *reinterpret_cast<float2*>(part + (w.warp * w.groups + gi) * 64 + g * 8 + 2 * t) =
              make_float2(acc0[0] + acc1[0], acc0[1] + acc1[1]);
#pragma unroll
          for (int e = 0; e < 4; ++e) acc0[e] = acc1[e] = 0.f;
        }
      }
    }
  }
  __syncthreads();
  const int summed = min(kWarps, K / kQuadK);  // the warps that have quads
  for (int o = threadIdx.x; o < w.groups * 64; o += blockDim.x) {
    const bool first = o == static_cast<int>(threadIdx.x);
    int r, n;
    output_of(o, r, n);
    if (r >= rows) continue;
    float s = 0.f;
    for (int v = 0; v < summed; ++v) s += part[(v * w.groups + o / 64) * 64 + o % 64];
    const float v = !bias ? s : s + (first ? first_bias : to_f(bias[n]));
    if (resid) {
      float* xp = resid + static_cast<std::int64_t>(r) * N + n;
      *xp = (first ? first_old : __ldcg(xp)) + v;
    } else {
      write(r, n, v);
    }
  }
}

}  // namespace decode_mma

// Dynamic shared memory: the staged input rows [ROWS][max(C, F)] floats, the attention's scores [max_tokens,
// rounded up to 4: the float4 accesses after them stay 16-byte aligned] and a LayerNorm's weight and bias [2][C].
// With the tensor-core products (mma_blocks: the grid's blocks; 0 without them), the rows region holds decode_mma's
// layout instead where that is larger.
__host__ __device__ constexpr int decode_scores_floats(int max_tokens) { return (max_tokens + 3) / 4 * 4; }
__host__ __device__ constexpr int decode_rows_bytes(int rows_padded, int C, int F, int mma_blocks) {
  const int plain = rows_padded * (C > F ? C : F) * 4;
  const int mma = mma_blocks > 0 ? decode_mma::rows_region_bytes(C, F, mma_blocks) : 0;
  return plain > mma ? plain : mma;
}
__host__ __device__ constexpr int decode_persistent_smem(int rows_padded, int C, int F, int max_tokens,
                                                         int mma_blocks = 0) {
  return decode_rows_bytes(rows_padded, C, F, mma_blocks) + decode_scores_floats(max_tokens) * 4 + 2 * C * 4;
}

// kMma: the products (kDecode* bits) that run decode_mma's tensor-core products (5-8 sequences in fp16 / bf16,
// ROWS = 8), the others CUDA-core products. An instance per mask rather than a run-time switch, so that no kernel
// carries code it does not run (one 8-row kernel with both paths was 27,960 SASS instructions, against ~8,300 for
// the 4-row kernel, and its steps ran 406 and 588 us against 365 and 374 as two instances: H200, lab).
template <typename T, int ROWS, unsigned kMma>
__global__ void __launch_bounds__(kDecodeThreads, 1) gpt2_decode_persistent(const DecodeArgs<T> p) {
  using namespace decode_detail;
  constexpr int D = kDecodeHeadDim;
  static_assert(kMma == 0 || (ROWS == decode_mma::kRows && !std::is_same_v<T, float>),
                "the tensor-core products take 8 rows of fp16 / bf16");
  using Qkv = std::integral_constant<unsigned, kDecodeQkv>;
  using Proj = std::integral_constant<unsigned, kDecodeProj>;
  using Fc = std::integral_constant<unsigned, kDecodeFc>;
  using Mproj = std::integral_constant<unsigned, kDecodeMproj>;
  float* xs = reinterpret_cast<float*>(gemv_detail::gemv_smem);  // [ROWS][max(C, F)] (decode_mma: its own layout)
  float* scores = xs + decode_rows_bytes(ROWS, p.C, p.F, kMma ? gridDim.x : 0) / 4;  // [max_tokens]
  T* xh = reinterpret_cast<T*>(gemv_detail::gemv_smem + decode_mma::xh_offset(p.C));
  float* part = reinterpret_cast<float*>(gemv_detail::gemv_smem + decode_mma::part_offset(p.C, p.F));
  float* ln_ws = scores + decode_scores_floats(p.max_tokens);     // [2][C]: a LayerNorm's weight and bias
  __shared__ float partial[decode_attention_keys<T, D>()][D];
  __shared__ float red[kWarps];
  const int tid = threadIdx.x, lane = tid % 32;
  // Warp-major over the grid: a product's groups spread over every SM (5-6 warps of each for GPT-2's widths),
  // and the last warp, which then has none, does the barrier's arrival and polls (its loads queue behind no
  // weight requests).
  const int gwarp = (tid / 32) * gridDim.x + blockIdx.x, nwarps = gridDim.x * kWarps;
  constexpr int kSyncThread = kDecodeThreads - 32;
  const int C = p.C, F = p.F, rows = p.rows;
  const int pos = *p.pos;
  unsigned barrier_index = 0;
  // The grid barrier in two halves, so that the next product's first weights are requested between them: after
  // this block's arrival, and before the wait for the other blocks. Requested before the arrival, they held the
  // barrier up (last arrival to release ~2 us instead of ~0.8; the release's fence is the likely waiter): lab, H200,
  // 240.6 against 228.7 us a step.
  auto arrive = [&] {
    ++barrier_index;
    __syncthreads();
    if (p.trace_done && tid == kSyncThread) p.trace_done[(barrier_index - 1) * gridDim.x + blockIdx.x] = persistent_detail::globaltimer();
    if (tid == kSyncThread) persistent_detail::red_release_add(p.counter, 1u);
  };
  auto wait = [&] {
    if (tid == kSyncThread) persistent_detail::wait_passed(p.counter, barrier_index);
    __syncthreads();
    if (p.trace && blockIdx.x == 0 && tid == kSyncThread) p.trace[barrier_index] = persistent_detail::globaltimer();
  };
  // The small parameters of the next phase (LayerNorm weights, bias) into L2, one line a thread over the grid.
  auto prefetch_params = [&](const void* a, int a_bytes, const void* b, int b_bytes, const void* c, int c_bytes) {
    const int i = blockIdx.x * kDecodeThreads + tid, la = (a_bytes + 127) / 128, lb = (b_bytes + 127) / 128;
    const int lc = c ? (c_bytes + 127) / 128 : 0;
    if (a && i < la) persistent_detail::prefetch_l2(static_cast<const char*>(a) + 128 * i);
    else if (b && i >= la && i < la + lb) persistent_detail::prefetch_l2(static_cast<const char*>(b) + 128 * (i - la));
    else if (c && i >= la + lb && i < la + lb + lc) persistent_detail::prefetch_l2(static_cast<const char*>(c) + 128 * (i - la - lb));
  };
  if (p.trace && blockIdx.x == 0 && tid == kSyncThread) p.trace[0] = persistent_detail::globaltimer();
  // Ends a phase: the barrier, with `load` (the next product's first weights) between this block's arrival and
  // the wait. Requested before the arrival or after the wait they were slower (lab, H200, batch 1: 225.3 and
  // 234.3 against 198.8 us a step, fifteenth session; the tensor-core path's polling warp's share after the wait:
  // 735 against 581 at 8 rows, twenty-fifth session).
  auto barrier = [&](auto load) {
    arrive();
    load();
    wait();
  };
  auto no_write = [](int, int, float) {};
  // A LayerNorm's weight and bias into shared memory beside the rows (their loads then overlap the rows').
  auto stage_layernorm_params = [&](const float* w, const float* b) {
    for (int i = tid; i < C / 4; i += kDecodeThreads) {
      reinterpret_cast<float4*>(ln_ws)[i] = reinterpret_cast<const float4*>(w)[i];
      reinterpret_cast<float4*>(ln_ws + C)[i] = reinterpret_cast<const float4*>(b)[i];
    }
  };
  // The layers' parameters in shared memory: read at every phase, a global load each time would sit in the path.
  __shared__ DecodeLayer<T> layer_table[kDecodeMaxLayers];
  for (int i = tid; i < p.n_layers; i += kDecodeThreads) layer_table[i] = p.layers[i];
  __syncthreads();

  Preloaded pl;
  // A product's first weights, requested during the barrier before it: the CUDA-core mapping M's (the polling
  // warp has none), or decode_mma's. That path's polling warp has a share too; its requests before its polls hold
  // the release up (~5 us on an H200: the acquire polls wait for them).
  auto preload_next = [&](auto which, auto map, const T* W, const T* bias, int N, int K) {
    if constexpr ((kMma & decltype(which)::value) != 0)
      decode_mma::load_items<T, true>(pl.regs, W, K, decode_mma::work_of(N, K, tid / 32), 0, lane);
    else
      preload<T, ROWS, decltype(map)>(pl, W, bias, N, K, gwarp, lane);
  };
  // A product of the staged rows (xs, or xh on the tensor-core path): adds into resid, or write(r, n, v).
  auto run_product = [&](auto which, auto map, const T* W, const T* bias, int N, int K, float* resid, auto write) {
    if constexpr ((kMma & decltype(which)::value) != 0)
      decode_mma::product<T>(pl.regs, W, bias, N, K, xh, part, rows, lane, resid, write);
    else
      product<T, ROWS, decltype(map)>(pl, W, bias, N, K, xs, rows, gwarp, nwarps, lane, resid, write);
  };
  // After the LayerNorm of the staged float rows: the tensor-core path's 16-bit copy of them.
  auto layernorm_rows_to_16bit = [&](auto which) {
    if constexpr ((kMma & decltype(which)::value) != 0) {
      decode_mma::float_rows_to_16bit(xh, xs, C);
      __syncthreads();
    }
  };
  // A product's 16-bit input rows (written by other blocks before the barrier) into shared memory.
  auto stage_input_rows = [&](auto which, const T* act, int K) {
    if constexpr ((kMma & decltype(which)::value) != 0)
      decode_mma::stage_16bit_rows(xh, act, rows, K);
    else
      gemv_detail::stage_activation_rows<T, ROWS>(xs, act, rows, K);
  };
  preload_next(Qkv{}, QkvMap{}, layer_table[0].w_qkv, layer_table[0].b_qkv, 3 * C, C);
  prefetch_params(layer_table[0].ln1_g, 4 * C, layer_table[0].ln1_b, 4 * C, layer_table[0].b_qkv, 3 * C * sizeof(T));
  for (int l = 0; l < p.n_layers; ++l) {
    const DecodeLayer<T>& L = layer_table[l];
    T* cache = p.cache[l];
    const int items = rows * p.H;
    // The attention items' older cache rows into L2 while A runs (one 128-byte line of K and one of V a key).
    for (int item = blockIdx.x; item < items; item += gridDim.x) {
      const int b = item / p.H, h = item % p.H;
      const T* base = cache + static_cast<std::int64_t>(b) * p.max_tokens * 2 * C + h * D;
      for (int t = tid; t < 2 * pos; t += kDecodeThreads)
        persistent_detail::prefetch_l2(base + static_cast<std::int64_t>(t / 2) * 2 * C + (t % 2) * C);
    }
    // A: LN1 (after the embedding in layer 0) and QKV, the k and v thirds also into the cache.
    stage_layernorm_params(L.ln1_g, L.ln1_b);
    if (l == 0) {
      for (int i = tid; i < ROWS * (C / 4); i += kDecodeThreads) {
        const int r = i / (C / 4), c = 4 * (i % (C / 4));
        float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
        if (r < rows) {
          v = embedding4(p.wte + static_cast<std::int64_t>(p.ids[r]) * C + c, p.wpe + static_cast<std::int64_t>(pos) * C + c);
          if (blockIdx.x == 0) *reinterpret_cast<float4*>(p.x + static_cast<std::int64_t>(r) * C + c) = v;
        }
        *reinterpret_cast<float4*>(xs + r * C + c) = v;
      }
    } else {
      stage_float_rows_async<ROWS>(xs, p.x, rows, C);
    }
    __syncthreads();
    gemv_detail::layernorm_staged_rows(xs, rows, C, ln_ws, ln_ws + C, p.eps);
    __syncthreads();
    layernorm_rows_to_16bit(Qkv{});
    run_product(Qkv{}, QkvMap{}, L.w_qkv, L.b_qkv, 3 * C, C, nullptr, [&](int r, int n, float v) {
      const T t = from_f<T>(v);
      p.qkv[static_cast<std::int64_t>(r) * 3 * C + n] = t;
      if (n >= C) cache[(static_cast<std::int64_t>(r) * p.max_tokens + pos) * 2 * C + (n - C)] = t;
    });
    barrier([&] { preload_next(Proj{}, ProjMap{}, L.w_proj, L.b_proj, C, C); });
    // B: attention, a block per (sequence, head).
    for (int item = blockIdx.x; item < items; item += gridDim.x) {
      decode_attention_item<T, D>(p.qkv, cache, p.att, C, p.max_tokens, pos + 1, L.scale_log2, item / p.H,
                                  item % p.H, scores, partial, red);
      __syncthreads();  // the next item reuses scores and partial
    }
    prefetch_params(L.b_proj, C * sizeof(T), L.ln2_g, 4 * C, L.ln2_b, 4 * C);
    barrier([] {});
    // C: x += att . Wproj^T + b
    stage_input_rows(Proj{}, p.att, C);
    __syncthreads();
    run_product(Proj{}, ProjMap{}, L.w_proj, L.b_proj, C, C, p.x, no_write);
    prefetch_params(L.b_fc, F * sizeof(T), L.b_mproj, C * sizeof(T), nullptr, 0);
    barrier([&] { preload_next(Fc{}, FcMap{}, L.w_fc, L.b_fc, F, C); });
    // D: u = GELU(LN2(x) . Wfc^T + b)
    stage_layernorm_params(L.ln2_g, L.ln2_b);
    stage_float_rows_async<ROWS>(xs, p.x, rows, C);
    __syncthreads();
    gemv_detail::layernorm_staged_rows(xs, rows, C, ln_ws, ln_ws + C, p.eps);
    __syncthreads();
    layernorm_rows_to_16bit(Fc{});
    run_product(Fc{}, FcMap{}, L.w_fc, L.b_fc, F, C, nullptr, [&](int r, int n, float v) {
      p.u[static_cast<std::int64_t>(r) * F + n] = from_f<T>(p.gelu_tanh ? gelu_tanh(v) : gelu_erf(v));
    });
    barrier([&] { preload_next(Mproj{}, MprojMap{}, L.w_mproj, L.b_mproj, C, F); });
    // E: x += u . Wmproj^T + b
    stage_input_rows(Mproj{}, p.u, F);
    __syncthreads();
    run_product(Mproj{}, MprojMap{}, L.w_mproj, L.b_mproj, C, F, p.x, no_write);
    if (l + 1 < p.n_layers) {
      const DecodeLayer<T>& N = layer_table[l + 1];
      prefetch_params(N.ln1_g, 4 * C, N.ln1_b, 4 * C, N.b_qkv, 3 * C * sizeof(T));
      barrier([&] { preload_next(Qkv{}, QkvMap{}, N.w_qkv, N.b_qkv, 3 * C, C); });
    }
  }
  __syncthreads();  // the block's last poll is behind it
  if (tid == kSyncThread) persistent_detail::leave_and_reset(p.counter, 1);
}

// ---- host side ---------------------------------------------------------------------------------------------------

// Whether a model of these widths can take the persistent decode step (the caller checks the precision: not int8).
inline bool decode_persistent_supported(int C, int H, int F, int n_layers) {
  return H > 0 && C == kDecodeHeadDim * H && C % 32 == 0 && F % 32 == 0 && n_layers >= 1 &&
         n_layers <= kDecodeMaxLayers;
}

__host__ __device__ constexpr int decode_rows_padded(int rows) {
  return rows <= 1 ? 1 : rows <= 2 ? 2 : rows <= 4 ? 4 : 8;
}

// Blocks to launch: one per SM, if one block fits an SM with the shared memory of the largest step it will run
// (kDecodeMaxRows sequences, a cache of max_positions); sets that shared memory limit on the kernels. 0: cannot run.
template <typename T>
int decode_persistent_blocks(int sms, int C, int F, int max_positions) {
  const int smem = decode_persistent_smem(kDecodeMaxRows, C, F, max_positions, std::is_same_v<T, float> ? 0 : sms);
  int fit = sms;
  auto probe = [&](auto kernel) {
    int per_sm = 0;
    if (cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem) != cudaSuccess ||
        cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, kDecodeThreads, smem) != cudaSuccess) {
      (void)cudaGetLastError();
      per_sm = 0;
    }
    if (per_sm < 1) fit = 0;
  };
  probe(gpt2_decode_persistent<T, 1, 0>);
  probe(gpt2_decode_persistent<T, 2, 0>);
  probe(gpt2_decode_persistent<T, 4, 0>);
  probe(gpt2_decode_persistent<T, 8, 0>);
  if constexpr (!std::is_same_v<T, float>) {
    probe(gpt2_decode_persistent<T, decode_mma::kRows, kDecodeMmaAll>);
    probe(gpt2_decode_persistent<T, decode_mma::kRows, kDecodeMproj>);
  }
  return fit;
}

// Launches the step on `blocks` blocks (decode_persistent_blocks). The counter must be zero: zeroed once when
// allocated, the kernel leaves it zero (persistent_detail::leave_and_reset).
template <typename T>
cudaError_t launch_gpt2_decode_persistent(const DecodeArgs<T>& p, int blocks, cudaStream_t stream) {
  if (p.rows < 1 || p.rows > kDecodeMaxRows || p.n_layers > kDecodeMaxLayers) return cudaErrorInvalidValue;
  const int R = decode_rows_padded(p.rows);
  const int mma_blocks = R == decode_mma::kRows && p.mma && !std::is_same_v<T, float> ? blocks : 0;
  if (mma_blocks > 0 && p.mma != static_cast<int>(kDecodeMmaAll) && p.mma != static_cast<int>(kDecodeMproj))
    return cudaErrorInvalidValue;  // masks without a kernel instance
  const LaunchConfig launch(dim3(blocks), dim3(kDecodeThreads), decode_persistent_smem(R, p.C, p.F, p.max_tokens, mma_blocks),
                            stream, false, dim3(1, 1, 1), true);
  if constexpr (!std::is_same_v<T, float>) {
    if (mma_blocks > 0 && p.mma == static_cast<int>(kDecodeMproj))
      return cudaLaunchKernelEx(&launch.cfg, gpt2_decode_persistent<T, decode_mma::kRows, kDecodeMproj>, p);
    if (mma_blocks > 0)
      return cudaLaunchKernelEx(&launch.cfg, gpt2_decode_persistent<T, decode_mma::kRows, kDecodeMmaAll>, p);
  }
  switch (R) {
    case 1: return cudaLaunchKernelEx(&launch.cfg, gpt2_decode_persistent<T, 1, 0>, p);
    case 2: return cudaLaunchKernelEx(&launch.cfg, gpt2_decode_persistent<T, 2, 0>, p);
    case 4: return cudaLaunchKernelEx(&launch.cfg, gpt2_decode_persistent<T, 4, 0>, p);
    default: return cudaLaunchKernelEx(&launch.cfg, gpt2_decode_persistent<T, 8, 0>, p);
  }
}

}  // namespace gptbench::cuda_engine::kernels
