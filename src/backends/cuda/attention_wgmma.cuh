#pragma once
// Causal prefill attention on Hopper's warpgroup MMA (the FlashAttention-3 design, reduced to what GPT-2 needs:
// head size 64, fp16 / bf16). Developed in lab/cuda/attention_lab.cu (versions 14-18) against the CPU reference
// and the mma.sync kernel of attention_mma.cuh, which it replaces where it is faster.
//
// Same contract as flash_attention_mma: qkv is [batch*seq, 3C] (q at column h*64, k at C + h*64, v at 2C + h*64),
// read through a 2-D tensor map with boxes of 64 rows x 64 columns and the 128-byte swizzle (wgmma_tensor_map of
// gemm_wgmma.cuh); out is [batch*seq, out_stride], column h*64. Query i attends keys 0..i.
//
// Why: the mma.sync kernel runs at ~140 TFLOP/s on B8 x S512 (23 us a layer on an H200): each warp issues its own
// 16-row products, reads every K / V fragment through ldmatrix and spends its issue slots on addresses. Here a
// warpgroup (4 warps, 64 queries) issues 64 x 64 x 16 products that read K and V straight from shared memory,
// and the tiles arrive by TMA (one instruction a tile, no address arithmetic), so the issue slots are left to
// the softmax.
//
// A block = one producer warp + WG consumer warpgroups, 64 * WG queries of one (batch, head). The producer's lane
// 0 loads the Q tiles once and then the key tiles 0 .. n-1 (K and V, 8 KB each) into a ring of STAGES slots
// (mbarrier full / empty handshakes). Consumer warpgroup w, for each key tile it needs:
//   S = Q K^T   4 wgmma m64n64k16 (gemm_wgmma.cuh's wgmma_k16), A = Q and B = K both from shared memory,
//               K-major (K rows are [key][d]).
//   softmax     online, in registers: row max over the quad of lanes sharing a row, rescale O and l.
//   O += P V    4 wgmma m64n64k16, A = P from registers (the S accumulator layout of key columns 16kk .. 16kk+15
//               IS the A fragment of k-step kk, as with mma.sync), B = V from shared memory: V rows are [key][d],
//               i.e. N (= d) contiguous, so the descriptor is MN-major ("transposed" B, imm-trans-b = 1).
// Shared-memory layouts (both written by the copy engine with the 128-byte swizzle, rows of 128 bytes):
//   K-major (Q, K): SBO = 1024 bytes (8 rows), a k16 step = +32 bytes of start address (as gemm_wgmma.cuh).
//   MN-major (V):   the swizzle atom is 64 d x 8 keys; the next 8 keys are 1024 bytes further (SBO); N = 64 is
//                   one atom, so the MN-atom stride (LBO) is unused; a k16 step (16 keys) = +2048 bytes.
// Keys past the sequence (a tile reaching into the next sequence, or past the buffer: zero-filled by the copy)
// are masked by causality: key > every valid query. Query rows past the sequence are computed and not stored.
//
// Needs sm_90a; elsewhere the body traps and the engine does not take this path.
#include <cuda.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

#include "backends/cuda/attention_mma.cuh"
#include "backends/cuda/gemm_wgmma.cuh"

namespace gptbench::cuda_engine::kernels {

namespace attn_wgmma_detail {

// Shared-memory matrix descriptor of an MN-major tile written with the 128-byte swizzle: 8-row (k) groups 1024
// bytes apart. The MN-atom stride is set to the same 1024 bytes; with N = 64 (one atom) it is never used.
__device__ __forceinline__ std::uint64_t sw128_mn_desc(std::uint32_t addr) {
  return static_cast<std::uint64_t>((addr & 0x3FFFF) >> 4) | (64ull << 16) | (64ull << 32) | (1ull << 62);
}

// O (64 x 64 float) += A (64 x 16, registers) . B (16 x 64, smem, MN-major).
template <typename T>
__device__ __forceinline__ void wgmma_rs_tb(float (&d)[32], const std::uint32_t (&a)[4], std::uint64_t b);

#define GPTBENCH_WGMMA_D32                                                                                   \
  "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, " \
  "%23, %24, %25, %26, %27, %28, %29, %30, %31}"
#define GPTBENCH_WGMMA_D32_OUT                                                                                   \
  "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]),     \
      "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]),      \
      "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]),     \
      "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])

template <>
__device__ __forceinline__ void wgmma_rs_tb<__half>(float (&d)[32], const std::uint32_t (&a)[4], std::uint64_t b) {
  asm volatile("wgmma.mma_async.sync.aligned.m64n64k16.f32.f16.f16 " GPTBENCH_WGMMA_D32
               ", {%32, %33, %34, %35}, %36, 1, 1, 1, 1;\n"
               : GPTBENCH_WGMMA_D32_OUT
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b));
}
template <>
__device__ __forceinline__ void wgmma_rs_tb<__nv_bfloat16>(float (&d)[32], const std::uint32_t (&a)[4],
                                                           std::uint64_t b) {
  asm volatile("wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 " GPTBENCH_WGMMA_D32
               ", {%32, %33, %34, %35}, %36, 1, 1, 1, 1;\n"
               : GPTBENCH_WGMMA_D32_OUT
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b));
}
#undef GPTBENCH_WGMMA_D32
#undef GPTBENCH_WGMMA_D32_OUT

// Keeps the compiler from moving an accumulator across the asynchronous MMA that owns it (CUTLASS's
// warpgroup_fence_operand): each register is "read and written" here, in program order.
__device__ __forceinline__ void fence_operand(float (&d)[32]) {
#pragma unroll
  for (int i = 0; i < 32; ++i) asm volatile("" : "+f"(d[i])::"memory");
}

}  // namespace attn_wgmma_detail

// KSPLIT: the two warpgroups share one 64-query tile and each has a ring of its own (ring r = warpgroup r's key
// tiles); otherwise one ring serves all warpgroups, each with its own query tile.
template <int WG, int STAGES, bool KSPLIT = false>
struct AttentionWgmmaSmem {
  static constexpr std::uint32_t kTile = 64 * 128;  // 64 rows of 64 16-bit elements
  static constexpr int kQTiles = KSPLIT ? 1 : WG;
  static constexpr int kRings = KSPLIT ? WG : 1;
  static constexpr int kQueries = 64 * kQTiles;  // a block's queries: the grid's y extent is ceil(seq / kQueries)
  static constexpr std::uint32_t q_off = 0;
  __host__ __device__ static constexpr std::uint32_t k_off(int s, int ring = 0) {
    return kQTiles * kTile + 2 * kTile * (ring * STAGES + s);
  }
  __host__ __device__ static constexpr std::uint32_t v_off(int s, int ring = 0) { return k_off(s, ring) + kTile; }
  static constexpr int bytes = static_cast<int>((kQTiles + 2 * STAGES * kRings) * kTile) + 1024;  // + alignment slack
};

// PIPE: the S product of key tile t+1 is issued before the softmax of tile t, so the tensor cores work while the
// warpgroup does its exponentials (FlashAttention-3's intra-warpgroup overlap); otherwise each product is waited
// for at once.
// Launch bounds' second argument: with the explicit 1, ptxas gives the plain kernel 96 registers (4 blocks per SM);
// without it, 104 (3 blocks; B8 x S512 18.8 vs 17.6 us on an H200). Larger values, to cap the registers for 5
// (plain) or 4 (PIPE) blocks per SM, spilled 600+ bytes each: not kept.
//
// KSPLIT (WG = 2, not PIPE): split keys inside the block. Causal blocks differ 8x in work at S = 512 (the last
// query tile needs 8 key tiles, the first 1), and a warpgroup walks its tiles one after another, so the heavy
// blocks' chain of dependent steps (wait for the tile, S product, softmax, PV product) sets the kernel's length
// while the light ones leave their SMs idle at the end. Here a block's two warpgroups share its 64 queries: the
// first takes key tiles [0, h), the second [h, n) (h = ceil(n / 2)), each from a ring of its own that the producer
// fills alternately, and at the end the second hands its running max, partial row sums and unnormalised output
// to the first through shared memory (its own ring's space, idle by then), which merges them
//   m = max(m1, m2),  o = o1 2^(m1 - m) + o2 2^(m2 - m),  l = l1 2^(m1 - m) + l2 2^(m2 - m)
// and stores. The chain is half as long; the work and the tiles read are the same.
template <typename T, int WG, int STAGES, bool PIPE, bool KSPLIT = false>
__global__ void __launch_bounds__(128 * WG + 32, 1)
    attention_wgmma(const __grid_constant__ CUtensorMap map_qkv, T* __restrict__ out, int seq, int heads,
                    int out_stride, float scale_log2) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  static_assert(!KSPLIT || (WG == 2 && !PIPE), "the key split is written for two warpgroups without PIPE");
  using namespace wgmma_detail;
  using namespace attn_wgmma_detail;
  using L = AttentionWgmmaSmem<WG, STAGES, KSPLIT>;
  constexpr int BQ = L::kQueries;
  constexpr int RINGS = L::kRings;
  extern __shared__ __align__(1024) unsigned char attn_smem[];
  __shared__ alignas(8) std::uint64_t bars[1 + 2 * STAGES * RINGS];  // q_full, full[r][s], empty[r][s]
  const std::uint32_t base = (static_cast<std::uint32_t>(__cvta_generic_to_shared(attn_smem)) + 1023u) & ~1023u;
  const std::uint32_t bar0 = static_cast<std::uint32_t>(__cvta_generic_to_shared(bars));
  const std::uint32_t q_full = bar0;
  auto full = [&](int s, int ring = 0) { return bar0 + 8u * (1 + ring * STAGES + s); };
  auto empty = [&](int s, int ring = 0) { return bar0 + 8u * (1 + RINGS * STAGES + ring * STAGES + s); };

  asm volatile("griddepcontrol.wait;" ::: "memory");  // a programmatic dependent reads qkv only after its writer
  asm volatile("griddepcontrol.launch_dependents;");
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int b = blockIdx.x / heads, h = blockIdx.x % heads;
  const int C = heads * 64;
  const int q0 = (gridDim.y - 1 - blockIdx.y) * BQ;  // heavy (late) query blocks first
  const int row0 = b * seq;
  const int n_tiles = (min(seq, q0 + BQ) + 63) / 64;  // keys 0 .. min(seq, q0 + BQ) - 1
  const int split = (n_tiles + 1) / 2;                // KSPLIT: warpgroup 0 takes tiles [0, split), 1 the rest

  if (tid == 0) {
    mbar_init(q_full, 1);
    for (int r = 0; r < RINGS; ++r)
      for (int s = 0; s < STAGES; ++s) {
        mbar_init(full(s, r), 1);
        mbar_init(empty(s, r), KSPLIT ? 128 : 128 * WG);
      }
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  __syncthreads();

  if (warp == 4 * WG) {  // producer warp
    if (lane == 0) {
      asm volatile("prefetch.tensormap [%0];\n" ::"l"(reinterpret_cast<std::uint64_t>(&map_qkv)) : "memory");
      mbar_expect_tx(q_full, L::kQTiles * L::kTile);
      for (int w = 0; w < L::kQTiles; ++w)
        tma_load_2d(base + L::q_off + w * L::kTile, &map_qkv, h * 64, row0 + q0 + 64 * w, q_full);
      // the i-th tile of ring r (KSPLIT: ring r's tiles start at 0 / split; otherwise one ring of all tiles)
      auto load = [&](int r, int i, int t) {
        const int s = i % STAGES;
        if (i >= STAGES) mbar_wait(empty(s, r), ((i / STAGES) - 1) & 1);
        mbar_expect_tx(full(s, r), 2 * L::kTile);
        tma_load_2d(base + L::k_off(s, r), &map_qkv, C + h * 64, row0 + 64 * t, full(s, r));
        tma_load_2d(base + L::v_off(s, r), &map_qkv, 2 * C + h * 64, row0 + 64 * t, full(s, r));
      };
      if constexpr (KSPLIT) {
        for (int i = 0; i < split; ++i) {  // alternately, so that both warpgroups start at once
          load(0, i, i);
          if (split + i < n_tiles) load(1, i, split + i);
        }
      } else {
        for (int t = 0; t < n_tiles; ++t) load(0, t, t);
      }
    }
    return;
  }

  // The consumer warpgroup, through a shuffle so that the compiler sees a warp-uniform value: the loop bounds
  // derived from it must be provably uniform, or ptxas serialises the wgmma left in flight across them.
  const int w = __shfl_sync(0xffffffffu, warp / 4, 0);
  const int wq0 = KSPLIT ? q0 : q0 + 64 * w;  // its first query
  const int g = lane / 4, t4 = lane % 4;
  const int qi0 = wq0 + 16 * (warp % 4) + g, qi1 = qi0 + 8;  // this thread's two query rows
  // Key tiles this warpgroup needs: those starting at or before its first query (tiles and warpgroups are both
  // 64 wide, so every such tile shows key k0 to every row: no row is fully masked in a tile it computes).
  // KSPLIT: tiles [t_lo, my_tiles) of those, from ring w, whose i-th slot use holds tile t_lo + i.
  const int all_tiles = wq0 < seq ? min(n_tiles, wq0 / 64 + 1) : 0;
  const int t_lo = KSPLIT && w == 1 ? min(split, all_tiles) : 0;
  const int my_tiles = KSPLIT && w == 0 ? min(split, all_tiles) : all_tiles;
  const int ring = KSPLIT ? w : 0;
  const std::uint32_t qa = base + L::q_off + (KSPLIT ? 0 : w) * L::kTile;

  float o[32];
#pragma unroll
  for (int i = 0; i < 32; ++i) o[i] = 0.f;
  float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.f, l1 = 0.f;
  mbar_wait(q_full, 0);

  auto issue_s = [&](float (&sacc)[32], int t) {
    const int i = t - t_lo;  // this ring's use number
    const std::uint32_t kb = base + L::k_off(i % STAGES, ring);
    mbar_wait(full(i % STAGES, ring), (i / STAGES) & 1);
    asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#pragma unroll
    for (int k16 = 0; k16 < 4; ++k16) wgmma_k16<T, 64>(sacc, sw128_desc(qa + 32 * k16), sw128_desc(kb + 32 * k16), k16);
    asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
  };

  // One key tile t of this warpgroup. NEXT (PIPE only): the S product of tile t+1 is issued first and left
  // running through this tile's softmax. A compile-time flag, not a branch: ptxas serialises wgmma issued on
  // paths it cannot prove uniform.
  auto step = [&](int t, float (&s_cur)[32], float (&s_next)[32], auto next_c) {
    constexpr bool NEXT = decltype(next_c)::value;
    const int s = (t - t_lo) % STAGES;
    if constexpr (NEXT) {
      issue_s(s_next, t + 1);  // (no operand fence here: any instruction on its registers now would serialise)
      asm volatile("wgmma.wait_group.sync.aligned 1;\n" ::: "memory");  // S of tile t is done
    } else if constexpr (PIPE) {
      asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
    } else {
      issue_s(s_cur, t);
      asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
    }
    fence_operand(s_cur);
    // PIPE: the scores are copied out (masked on the diagonal tile) rather than changed in place: an instruction
    // that writes an accumulator register of a wgmma makes ptxas serialise the wgmma (the S product of the next
    // tile reuses these registers while this tile's softmax runs). Without PIPE in place (the copy measured 2-5 %
    // slower: B8 x S512 17.6 vs 16.7 us, H200).
    // The causal mask only on the diagonal tile, behind a warp-uniform branch (not PIPE): its compare-and-selects
    // were ~60 of a tile's ~350 instructions (B8 x S512 16.5 against 17.7 us with the selects on every tile, H200,
    // session 22's lab v23).
    const int k0 = 64 * t;
    const bool diag = k0 + 63 > wq0;  // some key of the tile lies after some row's query
    float s_copy[32];
    float(&sv)[32] = PIPE ? s_copy : s_cur;
    auto mask = [&](bool on) {
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        const int kj = k0 + 8 * j + 2 * t4;
        sv[4 * j] = on && kj > qi0 ? -INFINITY : s_cur[4 * j];
        sv[4 * j + 1] = on && kj + 1 > qi0 ? -INFINITY : s_cur[4 * j + 1];
        sv[4 * j + 2] = on && kj > qi1 ? -INFINITY : s_cur[4 * j + 2];
        sv[4 * j + 3] = on && kj + 1 > qi1 ? -INFINITY : s_cur[4 * j + 3];
      }
    };
    if constexpr (PIPE) {
      mask(diag);  // (a branch here, with the next S product in flight, makes ptxas serialise the products)
    } else if (diag) {
      mask(true);
    }
    float mt0 = -INFINITY, mt1 = -INFINITY;
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      mt0 = fmaxf(mt0, fmaxf(sv[4 * j], sv[4 * j + 1]));
      mt1 = fmaxf(mt1, fmaxf(sv[4 * j + 2], sv[4 * j + 3]));
    }
    mt0 = fmaxf(mt0, __shfl_xor_sync(0xffffffffu, mt0, 1));
    mt0 = fmaxf(mt0, __shfl_xor_sync(0xffffffffu, mt0, 2));
    mt1 = fmaxf(mt1, __shfl_xor_sync(0xffffffffu, mt1, 1));
    mt1 = fmaxf(mt1, __shfl_xor_sync(0xffffffffu, mt1, 2));
    mt0 *= scale_log2;
    mt1 *= scale_log2;
    const float mn0 = fmaxf(m0, mt0), mn1 = fmaxf(m1, mt1);          // finite: key k0 is seen
    const float alpha0 = exp2f(m0 - mn0), alpha1 = exp2f(m1 - mn1);  // m = -inf -> 0
    m0 = mn0;
    m1 = mn1;
    l0 *= alpha0;
    l1 *= alpha1;
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      o[4 * j] *= alpha0;
      o[4 * j + 1] *= alpha0;
      o[4 * j + 2] *= alpha1;
      o[4 * j + 3] *= alpha1;
    }
    std::uint32_t pa[4][4];
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      const float p0 = exp2f(fmaf(sv[4 * j], scale_log2, -m0));
      const float p1 = exp2f(fmaf(sv[4 * j + 1], scale_log2, -m0));
      const float p2 = exp2f(fmaf(sv[4 * j + 2], scale_log2, -m1));
      const float p3 = exp2f(fmaf(sv[4 * j + 3], scale_log2, -m1));
      l0 += p0 + p1;
      l1 += p2 + p3;
      // key columns 8j .. 8j+7 are half (j % 2) of k-step j / 2: registers {0, 1} or {2, 3} of its fragment
      pa[j / 2][2 * (j % 2)] = mma_detail::pack2<T>(p0, p1);
      pa[j / 2][2 * (j % 2) + 1] = mma_detail::pack2<T>(p2, p3);
    }
    const std::uint32_t vb = base + L::v_off(s, ring);
    fence_operand(o);
    asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#pragma unroll
    for (int kk = 0; kk < 4; ++kk) wgmma_rs_tb<T>(o, pa[kk], sw128_mn_desc(vb + 2048 * kk));
    asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
    asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");  // (NEXT: also the S of tile t+1)
    fence_operand(o);
    if constexpr (NEXT) fence_operand(s_next);
    mbar_arrive(empty(s, ring));
  };

  // PIPE: two S accumulators used in turn (the loop unrolled by two), so that no register copy has to wait for
  // a product still in flight.
  float s_a[32], s_b[32];
  if constexpr (PIPE) {
    if (my_tiles > 0) issue_s(s_a, 0);
    int t = 0;
    for (; t + 2 < my_tiles; t += 2) {
      step(t, s_a, s_b, std::true_type{});
      step(t + 1, s_b, s_a, std::true_type{});
    }
    if (t + 1 < my_tiles) {
      step(t, s_a, s_b, std::true_type{});
      step(t + 1, s_b, s_a, std::false_type{});
    } else if (t < my_tiles) {
      step(t, s_a, s_b, std::false_type{});
    }
  } else {
    for (int t = t_lo; t < my_tiles; ++t) step(t, s_a, s_b, std::false_type{});
  }
  if constexpr (!KSPLIT) {
    // Tiles only the other warpgroup needs: wait until each has landed before releasing it, so that the arrival
    // counts for this tile's use of the slot and not for the one before (which may still be being read).
    for (int t = my_tiles; t < n_tiles; ++t) {
      mbar_wait(full(t % STAGES), (t / STAGES) & 1);
      mbar_arrive(empty(t % STAGES));
    }
  } else {
    // Warpgroup 1 hands (m, l, o) over in its own ring's space (every tile it was sent has landed and been read);
    // warpgroup 0 merges. Thread j of both warpgroups holds the same rows and columns. Layout [value][thread]:
    // consecutive threads, consecutive words.
    float* xfer = reinterpret_cast<float*>(attn_smem + (base - static_cast<std::uint32_t>(__cvta_generic_to_shared(
                                                                   attn_smem))) + L::k_off(0, 1));
    const int j = tid % 128;
    if (w == 1) {
      xfer[0 * 128 + j] = m0;
      xfer[1 * 128 + j] = m1;
      xfer[2 * 128 + j] = l0;
      xfer[3 * 128 + j] = l1;
#pragma unroll
      for (int i = 0; i < 32; ++i) xfer[(4 + i) * 128 + j] = o[i];
      asm volatile("bar.arrive 1, 256;\n" ::: "memory");
      return;
    }
    asm volatile("bar.sync 1, 256;\n" ::: "memory");
    const float mb0 = xfer[0 * 128 + j], mb1 = xfer[1 * 128 + j];
    const float mx0 = fmaxf(m0, mb0), mx1 = fmaxf(m1, mb1);
    // -inf on both sides only for rows past the sequence (never stored): keep them finite
    const float a0 = mx0 == -INFINITY ? 0.f : exp2f(m0 - mx0), b0 = mx0 == -INFINITY ? 0.f : exp2f(mb0 - mx0);
    const float a1 = mx1 == -INFINITY ? 0.f : exp2f(m1 - mx1), b1 = mx1 == -INFINITY ? 0.f : exp2f(mb1 - mx1);
    l0 = l0 * a0 + xfer[2 * 128 + j] * b0;
    l1 = l1 * a1 + xfer[3 * 128 + j] * b1;
#pragma unroll
    for (int i = 0; i < 32; ++i) {
      const bool row1 = (i % 4) >= 2;  // accumulator layout: {0, 1} row qi0, {2, 3} row qi1
      o[i] = o[i] * (row1 ? a1 : a0) + xfer[(4 + i) * 128 + j] * (row1 ? b1 : b0);
    }
  }
  // ---- epilogue: normalise and store this thread's two rows ----
  l0 += __shfl_xor_sync(0xffffffffu, l0, 1);
  l0 += __shfl_xor_sync(0xffffffffu, l0, 2);
  l1 += __shfl_xor_sync(0xffffffffu, l1, 1);
  l1 += __shfl_xor_sync(0xffffffffu, l1, 2);
  const float inv0 = l0 > 0.f ? 1.f / l0 : 0.f, inv1 = l1 > 0.f ? 1.f / l1 : 0.f;
#pragma unroll
  for (int j = 0; j < 8; ++j) {
    const int c = h * 64 + 8 * j + 2 * t4;
    if (qi0 < seq)
      *reinterpret_cast<std::uint32_t*>(out + static_cast<std::int64_t>(row0 + qi0) * out_stride + c) =
          mma_detail::pack2<T>(o[4 * j] * inv0, o[4 * j + 1] * inv0);
    if (qi1 < seq)
      *reinterpret_cast<std::uint32_t*>(out + static_cast<std::int64_t>(row0 + qi1) * out_stride + c) =
          mma_detail::pack2<T>(o[4 * j + 2] * inv1, o[4 * j + 3] * inv1);
  }
#else
  __trap();  // built without sm_90a: the host never launches this
#endif
}

// grid = (batch * heads, ceil(seq / BQ)) with BQ = 64 WG (KSPLIT: 64), block = 128 WG + 32 threads. map_qkv:
// wgmma_tensor_map(qkv, rows >= batch * seq, 3C, 64). pdl: launched as a programmatic dependent of the kernel before.
template <typename T, int WG, int STAGES, bool PIPE, bool KSPLIT = false>
cudaError_t launch_attention_wgmma(const CUtensorMap& map_qkv, T* out, int batch, int seq, int heads, int out_stride,
                                   float scale_log2, cudaStream_t stream, bool pdl = false) {
  if (batch <= 0 || seq <= 0 || heads <= 0) return cudaSuccess;
  using L = AttentionWgmmaSmem<WG, STAGES, KSPLIT>;
  constexpr int BQ = L::kQueries;
  auto kernel = attention_wgmma<T, WG, STAGES, PIPE, KSPLIT>;
  static const cudaError_t configured =
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, L::bytes);
  if (configured != cudaSuccess) return configured;
  return launch_kernel(kernel, dim3(batch * heads, (seq + BQ - 1) / BQ), dim3(128 * WG + 32), L::bytes, stream, pdl,
                       map_qkv, out, seq, heads, out_stride, scale_log2);
}

}  // namespace gptbench::cuda_engine::kernels
