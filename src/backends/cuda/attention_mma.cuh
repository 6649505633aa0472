#pragma once
// Causal prefill attention, FlashAttention-2 style, on mma.sync tensor-core instructions (sm_80+; built for sm_90).
//
// Same contract as kernels::flash_attention_wmma: qkv is [batch*seq, row_stride] (row_stride = 3C; q at column
// h*D, k at C + h*D, v at 2C + h*D); out is [batch*seq, out_stride], column h*D. Query i attends keys 0..i.
// scale_log2 = softmax scale * log2(e) (the kernel uses exp2f). Any seq >= 1; rows past the end are neither
// read (zero-filled) nor written. row_stride / out_stride must be multiples of 8 elements (16-byte rows).
//
// Design: a block = WARPS warps = 16*WARPS queries of one (batch, head). Each warp owns 16 query rows and keeps,
// in registers: its Q fragments, the S = Q K^T accumulators of one key tile, the O accumulators (16 x D, float),
// the running max m and (per-thread partial) sum l of its two rows. K/V tiles of KT keys are shared by the
// block in shared memory, double-buffered with cp.async. P = exp2(S - m) is converted in registers from the S
// accumulator layout into the A-operand layout of the P V mma (no shared-memory round trip).
//
// ---- Fragment layouts relied upon (PTX ISA, "Matrix Fragments for mma.m16n8k16" with .f16/.bf16) ----------
// lane = 0..31, g = lane / 4 ("groupID"), t = lane % 4 ("threadID_in_group"). Each .b32 register holds two
// 16-bit elements; the element with the lower column (A, C) or lower k (B) index is in the low 16 bits.
//   A (16 x 16, M x K, row-major, "row"):  4 regs a0..a3 = elements a0..a7
//     reg0 = {a0,a1}: (row g,   col 2t, 2t+1)      reg1 = {a2,a3}: (row g+8, col 2t, 2t+1)
//     reg2 = {a4,a5}: (row g,   col 2t+8, 2t+9)    reg3 = {a6,a7}: (row g+8, col 2t+8, 2t+9)
//   B (16 x 8, K x N, "col"):  2 regs = elements b0..b3
//     reg0 = {b0,b1}: (k 2t, 2t+1,   n g)          reg1 = {b2,b3}: (k 2t+8, 2t+9, n g)
//   C/D (16 x 8, float): c0..c3
//     c0,c1: (row g, col 2t, 2t+1)                 c2,c3: (row g+8, col 2t, 2t+1)
// ldmatrix.m8n8.x4.b16: lanes 8i..8i+7 give the addresses of the 8 (16-byte) rows of matrix i; register i of
//   lane l receives matrix i's (row l/4, cols 2(l%4), 2(l%4)+1). With .trans it receives instead
//   (rows 2(l%4), 2(l%4)+1; col l/4), i.e. the fragment of the transposed 8x8 matrix.
//
// How the operands map:
//   S = Q K^T: A = Q rows (16 x 16 slice of d), read from smem Q[row][d] with ldmatrix x4 (matrices:
//     rows 0-7/d 0-7 -> reg0, rows 8-15/d 0-7 -> reg1, rows 0-7/d 8-15 -> reg2, rows 8-15/d 8-15 -> reg3).
//     B(k = d, n = key) = K[key][d]: K rows stored [key][d] are exactly the "col" layout, so plain ldmatrix
//     x4 on 8 keys x 32 d gives {reg0, reg1} for d-slice 2p and {reg2, reg3} for d-slice 2p+1.
//   O += P V: A = P (16 rows x 16 keys of slice kk). The S accumulator of key n-tile j (8 keys) holds
//     (row g, keys 8j+2t, +1) in c0,c1 and (row g+8, same keys) in c2,c3, so
//       A.reg0 = pack(S[2kk].c0, c1), A.reg1 = pack(S[2kk].c2, c3),
//       A.reg2 = pack(S[2kk+1].c0, c1), A.reg3 = pack(S[2kk+1].c2, c3).
//     B(k = key, n = d) = V[key][d] stored [key][d] (row-major K x N), so ldmatrix .trans: matrices
//     (keys 0-7, d 0-7) -> reg0 of d-tile 2q, (keys 8-15, d 0-7) -> reg1, (keys 0-7, d 8-15) -> reg0 of d-tile
//     2q+1, (keys 8-15, d 8-15) -> reg1.
//   Row statistics: the 4 lanes of a quad (same g) share rows g and g+8; the row max is reduced over the quad
//   with shfl_xor 1, 2 on every tile; the row sum stays per-lane (same rescale factor on all 4 lanes) and is
//   reduced once at the end.
//
// Shared memory rows are padded to D+8 elements (16 bytes): with ldmatrix's 8 row addresses per matrix that
// makes each phase hit 8 distinct 16-byte bank groups for D = 32 and 64.
#include <cuda_runtime.h>

#include <cstdint>

#include "backends/cuda/kernels.cuh"

namespace gptbench::cuda_engine::kernels {

namespace mma_detail {

__device__ __forceinline__ std::uint32_t smem_addr(const void* p) {
  return static_cast<std::uint32_t>(__cvta_generic_to_shared(p));
}

__device__ __forceinline__ void ldmatrix_x4(std::uint32_t (&r)[4], std::uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

__device__ __forceinline__ void ldmatrix_x4_trans(std::uint32_t (&r)[4], std::uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

__device__ __forceinline__ void cp_async_16(std::uint32_t dst, const void* src) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(dst), "l"(__cvta_generic_to_global(src))
               : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

// D = A * B + D, m16n8k16, float accumulators.
template <typename T>
__device__ __forceinline__ void mma_16816(float (&d)[4], const std::uint32_t (&a)[4], std::uint32_t b0,
                                          std::uint32_t b1);
template <>
__device__ __forceinline__ void mma_16816<__half>(float (&d)[4], const std::uint32_t (&a)[4], std::uint32_t b0,
                                                  std::uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
template <>
__device__ __forceinline__ void mma_16816<__nv_bfloat16>(float (&d)[4], const std::uint32_t (&a)[4],
                                                         std::uint32_t b0, std::uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Two floats -> one .b32 register of two 16-bit values, `lo` in the low half (the lower column / k index).
template <typename T>
__device__ __forceinline__ std::uint32_t pack2(float lo, float hi);
template <>
__device__ __forceinline__ std::uint32_t pack2<__half>(float lo, float hi) {
  __half2 v = __floats2half2_rn(lo, hi);  // .x = lo (low 16 bits)
  return *reinterpret_cast<std::uint32_t*>(&v);
}
template <>
__device__ __forceinline__ std::uint32_t pack2<__nv_bfloat16>(float lo, float hi) {
  __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);  // .x = lo (low 16 bits)
  return *reinterpret_cast<std::uint32_t*>(&v);
}

}  // namespace mma_detail

// Shared memory: Q tile (reused at the end to stage the output), then K and V tiles, two buffers each.
// MT: 16-row query tiles per warp.
template <typename T, int D, int WARPS, int KT, int MT = 1>
struct FlashMmaSmem {
  static constexpr int kQ = 16 * WARPS * MT;
  static constexpr int kLd = D + 8;  // elements per row (16 bytes of padding)
  static constexpr int q_elems = kQ * kLd;
  static constexpr int kv_elems = KT * kLd;
  static constexpr int q_off = 0;                                     // elements
  __host__ __device__ static constexpr int k_off(int buf) { return q_elems + buf * 2 * kv_elems; }
  __host__ __device__ static constexpr int v_off(int buf) { return q_elems + buf * 2 * kv_elems + kv_elems; }
  static constexpr int bytes = (q_elems + 4 * kv_elems) * static_cast<int>(sizeof(T));
};

// MIN_BLOCKS > 1 caps the registers so that many blocks fit on an SM (launch bounds' second argument).
// MT > 1: each warp owns MT tiles of 16 query rows, so every K / V fragment read from shared memory (and its
// address arithmetic) serves MT mma instructions instead of one.
// QMAJOR: the grid is (batch*heads, query blocks) instead of (query blocks, batch*heads). Blocks are dispatched in
// linear order (x fastest), so the heaviest query block of *every* (batch, head) is dispatched before any lighter
// one and the tail of a partial last wave holds the lightest blocks; with (query blocks, batch*heads) the last
// (batch, head) pairs bring their heaviest blocks into the tail.
template <typename T, int D, int WARPS, int KT = 64, int MIN_BLOCKS = 1, int MT = 1, bool QMAJOR = false>
__global__ void __launch_bounds__(WARPS * 32, MIN_BLOCKS)
    flash_attention_mma(const T* __restrict__ qkv, T* __restrict__ out, int seq, int heads, int row_stride,
                        int out_stride, float scale_log2) {
  static_assert(sizeof(T) == 2, "half or bfloat16 only");
  static_assert(D % 32 == 0 && D >= 32, "D must be a multiple of 32");
  static_assert(KT % 16 == 0 && KT >= 16, "KT must be a multiple of 16");
  using L = FlashMmaSmem<T, D, WARPS, KT, MT>;
  using namespace mma_detail;
  constexpr int kQ = L::kQ;
  constexpr int kLd = L::kLd;
  constexpr int kVec = 8;  // 16-bit elements per 16-byte chunk
  constexpr int kChunks = D / kVec;
  constexpr int kThreads = WARPS * 32;
  constexpr int kNT = KT / 8;  // key n-tiles of S
  constexpr int kDT = D / 8;   // d n-tiles of O

  extern __shared__ __align__(128) unsigned char smem_raw[];
  T* smem = reinterpret_cast<T*>(smem_raw);
  T* Qs = smem + L::q_off;
  // Launched as a programmatic dependent (the engine's option prefill_pdl): read qkv only after the kernel before
  // has finished and flushed. Without PDL both instructions are no-ops.
  asm volatile("griddepcontrol.wait;" ::: "memory");
  asm volatile("griddepcontrol.launch_dependents;");

  const int tid = threadIdx.x;
  const int warp = tid / 32, lane = tid % 32;
  const int g = lane >> 2, t = lane & 3;
  const int bh = QMAJOR ? blockIdx.x : blockIdx.y;
  const int b = bh / heads, h = bh % heads;
  const int C = heads * D;
  // Heavy (late) query blocks first: they have the most key tiles.
  const int qblock = QMAJOR ? gridDim.y - 1 - blockIdx.y : gridDim.x - 1 - blockIdx.x;
  const int q0 = qblock * kQ;
  const T* q_base = qkv + static_cast<std::int64_t>(b) * seq * row_stride + h * D;
  const T* k_base = q_base + C;
  const T* v_base = q_base + 2 * C;

  // ---- Q tile -> smem (zeros past the end) ----
  for (int i = tid; i < kQ * kChunks; i += kThreads) {
    const int r = i / kChunks, c = (i % kChunks) * kVec;
    uint4 v = make_uint4(0, 0, 0, 0);
    if (q0 + r < seq) v = *reinterpret_cast<const uint4*>(q_base + static_cast<std::int64_t>(q0 + r) * row_stride + c);
    *reinterpret_cast<uint4*>(Qs + r * kLd + c) = v;
  }

  const int q_end = min(seq, q0 + kQ);  // keys 0..q_end-1 are needed by this block
  const int n_tiles = (q_end + KT - 1) / KT;

  auto load_kv = [&](int tile, int buf) {
    const int k0 = tile * KT;
    T* Ks = smem + L::k_off(buf);
    T* Vs = smem + L::v_off(buf);
    for (int i = tid; i < KT * kChunks; i += kThreads) {
      const int r = i / kChunks, c = (i % kChunks) * kVec;
      if (k0 + r < seq) {
        const std::int64_t off = static_cast<std::int64_t>(k0 + r) * row_stride + c;
        cp_async_16(smem_addr(Ks + r * kLd + c), k_base + off);
        cp_async_16(smem_addr(Vs + r * kLd + c), v_base + off);
      } else {
        *reinterpret_cast<uint4*>(Ks + r * kLd + c) = make_uint4(0, 0, 0, 0);
        *reinterpret_cast<uint4*>(Vs + r * kLd + c) = make_uint4(0, 0, 0, 0);
      }
    }
  };

  load_kv(0, 0);
  cp_async_commit();
  __syncthreads();  // Q tile visible

  // ---- Q fragments (A operand), D/16 slices of 16 d, for each of the warp's MT row tiles ----
  std::uint32_t qa[MT][D / 16][4];
#pragma unroll
  for (int i = 0; i < MT; ++i) {
    const int row = (warp * MT + i) * 16 + (lane & 7) + ((lane >> 3) & 1) * 8;
    const int col = (lane >> 4) * 8;
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) ldmatrix_x4(qa[i][kk], smem_addr(Qs + row * kLd + kk * 16 + col));
  }

  float o[MT][kDT][4];
  float mrow[MT][2], lrow[MT][2];  // running max (scaled, log2 domain) and this lane's partial sums of rows g, g+8
#pragma unroll
  for (int i = 0; i < MT; ++i) {
#pragma unroll
    for (int j = 0; j < kDT; ++j) o[i][j][0] = o[i][j][1] = o[i][j][2] = o[i][j][3] = 0.f;
    mrow[i][0] = mrow[i][1] = -INFINITY;
    lrow[i][0] = lrow[i][1] = 0.f;
  }

  const int warp_q0 = q0 + warp * MT * 16;        // first query row of this warp
  const int warp_q_last = warp_q0 + MT * 16 - 1;  // last query row of this warp

  for (int tile = 0; tile < n_tiles; ++tile) {
    const int buf = tile & 1;
    if (tile + 1 < n_tiles) load_kv(tile + 1, buf ^ 1);
    cp_async_commit();  // possibly empty group: keeps the wait count uniform
    cp_async_wait<1>();  // everything but the newest group (the prefetch) has landed: tile `tile` is in smem
    __syncthreads();

    const int k0 = tile * KT;
    // Warp-uniform: skip tiles entirely in this warp's future, and warps entirely past the end.
    if (warp_q0 < seq && k0 <= warp_q_last) {
      const T* Ks = smem + L::k_off(buf);
      const T* Vs = smem + L::v_off(buf);
      const bool diag = k0 + KT - 1 > warp_q0;  // some key of the tile lies after some row: mask needed
      // Keys past kmax (relative to k0) are masked for every valid row of the warp; their n-tiles are skipped.
      const int kmax = min(warp_q_last, seq - 1) - k0;

      // ---- S = Q K^T (each K fragment serves the warp's MT row tiles) ----
      float s[MT][kNT][4];
#pragma unroll
      for (int nt = 0; nt < kNT; ++nt) {
#pragma unroll
        for (int i = 0; i < MT; ++i) s[i][nt][0] = s[i][nt][1] = s[i][nt][2] = s[i][nt][3] = 0.f;
        if (diag && nt * 8 > kmax) continue;
        const int krow = nt * 8 + (lane & 7);
#pragma unroll
        for (int p = 0; p < D / 32; ++p) {
          std::uint32_t kb[4];
          ldmatrix_x4(kb, smem_addr(Ks + krow * kLd + p * 32 + (lane >> 3) * 8));
#pragma unroll
          for (int i = 0; i < MT; ++i) {
            mma_16816<T>(s[i][nt], qa[i][2 * p], kb[0], kb[1]);
            mma_16816<T>(s[i][nt], qa[i][2 * p + 1], kb[2], kb[3]);
          }
        }
      }

#pragma unroll
      for (int i = 0; i < MT; ++i) {
        const int qi0 = warp_q0 + i * 16 + g, qi1 = qi0 + 8;  // this lane's rows of tile i
        // ---- causal mask (diagonal tiles only) ----
        if (diag) {
#pragma unroll
          for (int nt = 0; nt < kNT; ++nt) {
            const int kj = k0 + nt * 8 + 2 * t;
            if (kj > qi0) s[i][nt][0] = -INFINITY;
            if (kj + 1 > qi0) s[i][nt][1] = -INFINITY;
            if (kj > qi1) s[i][nt][2] = -INFINITY;
            if (kj + 1 > qi1) s[i][nt][3] = -INFINITY;
          }
        }

        // ---- online softmax ----
        float mt0 = -INFINITY, mt1 = -INFINITY;
#pragma unroll
        for (int nt = 0; nt < kNT; ++nt) {
          mt0 = fmaxf(mt0, fmaxf(s[i][nt][0], s[i][nt][1]));
          mt1 = fmaxf(mt1, fmaxf(s[i][nt][2], s[i][nt][3]));
        }
        mt0 = fmaxf(mt0, __shfl_xor_sync(0xffffffffu, mt0, 1));
        mt0 = fmaxf(mt0, __shfl_xor_sync(0xffffffffu, mt0, 2));
        mt1 = fmaxf(mt1, __shfl_xor_sync(0xffffffffu, mt1, 1));
        mt1 = fmaxf(mt1, __shfl_xor_sync(0xffffffffu, mt1, 2));
        const float mn0 = fmaxf(mrow[i][0], mt0 * scale_log2);  // scale_log2 > 0: max commutes with the scaling
        const float mn1 = fmaxf(mrow[i][1], mt1 * scale_log2);
        // A row with no visible key so far keeps m = -inf; use 0 as the base so that no (-inf) - (-inf) occurs.
        const float mb0 = mn0 == -INFINITY ? 0.f : mn0;
        const float mb1 = mn1 == -INFINITY ? 0.f : mn1;
        const float alpha0 = exp2f(mrow[i][0] - mb0);  // m = -inf -> 0 (O and l are 0 then anyway)
        const float alpha1 = exp2f(mrow[i][1] - mb1);
        mrow[i][0] = mn0;
        mrow[i][1] = mn1;
        lrow[i][0] *= alpha0;
        lrow[i][1] *= alpha1;
#pragma unroll
        for (int j = 0; j < kDT; ++j) {
          o[i][j][0] *= alpha0;
          o[i][j][1] *= alpha0;
          o[i][j][2] *= alpha1;
          o[i][j][3] *= alpha1;
        }
#pragma unroll
        for (int nt = 0; nt < kNT; ++nt) {  // masked scores are -inf -> p = 0
          s[i][nt][0] = exp2f(fmaf(s[i][nt][0], scale_log2, -mb0));
          s[i][nt][1] = exp2f(fmaf(s[i][nt][1], scale_log2, -mb0));
          s[i][nt][2] = exp2f(fmaf(s[i][nt][2], scale_log2, -mb1));
          s[i][nt][3] = exp2f(fmaf(s[i][nt][3], scale_log2, -mb1));
          lrow[i][0] += s[i][nt][0] + s[i][nt][1];
          lrow[i][1] += s[i][nt][2] + s[i][nt][3];
        }
      }

      // ---- O += P V (each V fragment serves the warp's MT row tiles) ----
#pragma unroll
      for (int kk = 0; kk < KT / 16; ++kk) {
        if (diag && kk * 16 > kmax) continue;  // all 16 keys masked for every row of the warp: P = 0
        std::uint32_t pa[MT][4];
#pragma unroll
        for (int i = 0; i < MT; ++i) {
          pa[i][0] = pack2<T>(s[i][2 * kk][0], s[i][2 * kk][1]);
          pa[i][1] = pack2<T>(s[i][2 * kk][2], s[i][2 * kk][3]);
          pa[i][2] = pack2<T>(s[i][2 * kk + 1][0], s[i][2 * kk + 1][1]);
          pa[i][3] = pack2<T>(s[i][2 * kk + 1][2], s[i][2 * kk + 1][3]);
        }
        const int vrow = kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8;
#pragma unroll
        for (int q = 0; q < D / 16; ++q) {
          std::uint32_t vb[4];
          ldmatrix_x4_trans(vb, smem_addr(Vs + vrow * kLd + q * 16 + (lane >> 4) * 8));
#pragma unroll
          for (int i = 0; i < MT; ++i) {
            mma_16816<T>(o[i][2 * q], pa[i], vb[0], vb[1]);
            mma_16816<T>(o[i][2 * q + 1], pa[i], vb[2], vb[3]);
          }
        }
      }
    }
    __syncthreads();  // buffer `buf` fully consumed before the next iteration's prefetch overwrites it
  }
  cp_async_wait<0>();

  // ---- epilogue: normalise, stage through this warp's Q rows (only this warp ever read them), store ----
#pragma unroll
  for (int i = 0; i < MT; ++i) {
    float l0 = lrow[i][0], l1 = lrow[i][1];
    l0 += __shfl_xor_sync(0xffffffffu, l0, 1);
    l0 += __shfl_xor_sync(0xffffffffu, l0, 2);
    l1 += __shfl_xor_sync(0xffffffffu, l1, 1);
    l1 += __shfl_xor_sync(0xffffffffu, l1, 2);
    // Every valid row sees key 0, so l > 0; padding rows are never stored.
    const float inv0 = l0 > 0.f ? 1.f / l0 : 0.f;
    const float inv1 = l1 > 0.f ? 1.f / l1 : 0.f;
    T* Ow = Qs + (warp * MT + i) * 16 * kLd;
#pragma unroll
    for (int j = 0; j < kDT; ++j) {
      const int c = j * 8 + 2 * t;
      *reinterpret_cast<std::uint32_t*>(Ow + g * kLd + c) = pack2<T>(o[i][j][0] * inv0, o[i][j][1] * inv0);
      *reinterpret_cast<std::uint32_t*>(Ow + (g + 8) * kLd + c) = pack2<T>(o[i][j][2] * inv1, o[i][j][3] * inv1);
    }
    __syncwarp();
    for (int e = lane; e < 16 * kChunks; e += 32) {
      const int r = e / kChunks, c = (e % kChunks) * kVec;
      const int qi = warp_q0 + i * 16 + r;
      if (qi < seq) {
        *reinterpret_cast<uint4*>(out + (static_cast<std::int64_t>(b) * seq + qi) * out_stride + h * D + c) =
            *reinterpret_cast<const uint4*>(Ow + r * kLd + c);
      }
    }
  }
}

// Host-side launcher. grid = (ceil(seq / (16*WARPS*MT)), batch*heads) (QMAJOR: transposed), block = WARPS*32
// threads. pdl: launched as a programmatic dependent of the kernel before (the kernel waits for it before reading
// qkv).
template <typename T, int D, int WARPS, int KT = 64, int MIN_BLOCKS = 1, int MT = 1, bool QMAJOR = false>
void launch_flash_attention_mma(const T* qkv, T* out, int batch, int seq, int heads, int row_stride, int out_stride,
                                float scale_log2, cudaStream_t stream, bool pdl = false) {
  using L = FlashMmaSmem<T, D, WARPS, KT, MT>;
  if (batch <= 0 || seq <= 0 || heads <= 0) return;
  auto kernel = flash_attention_mma<T, D, WARPS, KT, MIN_BLOCKS, MT, QMAJOR>;
  if constexpr (L::bytes > 48 * 1024) {
    static bool configured = false;  // per instantiation
    if (!configured) {
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, L::bytes);
      configured = true;
    }
  }
  const int qblocks = (seq + L::kQ - 1) / L::kQ;
  const dim3 grid = QMAJOR ? dim3(batch * heads, qblocks) : dim3(qblocks, batch * heads);
  launch_kernel(kernel, grid, dim3(WARPS * 32), L::bytes, stream, pdl, qkv, out, seq, heads, row_stride, out_stride,
                scale_log2);
}

}  // namespace gptbench::cuda_engine::kernels
