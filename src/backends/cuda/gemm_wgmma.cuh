#pragma once
// Products of few rows on Hopper's own machinery: TMA bulk tensor copies into a multi-stage shared-memory ring
// (mbarrier handshakes), warpgroup MMA (wgmma) reading both operands from shared memory, a producer warp and
// consumer warpgroups — and programmatic dependent launch: the weight tiles of the first stages are requested
// BEFORE griddepcontrol.wait, so their HBM latency overlaps the kernel before. (Developed in
// lab/cuda/wgmma_lab.cu, v4; measured there and in docs/cuda-engine.md.)
//
//   kStore     y[M, N] = A[M, K] . W[N, K]^T + bias            (T out)
//   kGeluTanh  y = GELU_tanh(A . W^T + bias)                   (T out)
//   kResidual  x[M, N] += A . W^T + bias_f                     (float residual stream, in place)
//
// Why: the B1 x S128 prefill is a chain of short, latency-bound products. cuBLASLt's kernels cannot be
// programmatic dependents (lab probe: they do not wait for the kernel before) and do not let theirs start early;
// these kernels do both, so a chain LayerNorm -> product -> ... runs with the next kernel's blocks already
// resident and their weights in flight. Lab, H200, one layer's 4 products + 2 LayerNorms at 128 rows, weights
// cold: 24.1 us with PDL against 29.8-30.1 us through cuBLASLt; at 512 rows cuBLASLt wins (35.2 vs 40.0 us).
//
// Layout and descriptors: a stage holds A [BM x 64] and W [BN x 64] (64 k = 128 bytes a row), written by the copy
// engine with the 128-byte swizzle; the wgmma descriptor then has SBO = 1024 (8 rows), layout type 1 (128B
// swizzle), and a k16 step advances the start address by 32 bytes. Rows past M or N are zero-filled by the copy.
// Accumulators (m64nN, f32): warp w of a warpgroup holds rows 16w + lane/4 (+8); n8 block j, registers 4j .. 4j+3:
// columns 8j + 2 (lane % 4) + {0, 1} of row lane/4 (4j, 4j+1) and of row lane/4 + 8 (4j+2, 4j+3).
//
// Split-K: the splits of a tile are one thread-block cluster (grid z = cluster z = splits); each
// leaves its accumulators in its shared memory, and block z of the cluster then reduces the n8 column blocks
// j = z, z + splits, ... of the tile: it reads them from every block through distributed shared memory, adds
// them in block order 0, 1, ... (the same sum every run), and runs the epilogue on the sum — no global round
// trip (a partial-tile + tile-counter version measured 2x slower for the projections).
//
// Needs sm_90a (wgmma): the kernel body exists only in the sm_90a compilation; elsewhere it traps, and the
// engine only takes this path on a compute capability 9.0 device.
#include <cuda.h>
#include <cudaTypedefs.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "backends/cuda/kernels.cuh"

namespace gptbench::cuda_engine::kernels {

enum class WgmmaOut { kStore, kGeluTanh, kResidual };

template <typename T>
struct WgmmaArgs {
  int M = 0, N = 0, K = 0;  // K a multiple of 64; N even
  int splits = 1;           // divides K / 64; at most 8 (the splits of a tile are one cluster)
  T* y = nullptr;           // kStore / kGeluTanh: [M, N]
  const T* bias = nullptr;  // kStore / kGeluTanh: [N] or nullptr
  float* x = nullptr;       // kResidual: [M, N] += product + bias_f
  const float* bias_f = nullptr;
};

// The block shapes that are compiled: BM = 64 WG rows (WG consumer warpgroups), BN columns, STAGES ring slots.
struct WgmmaConfig {
  int bn = 32, wg = 1, stages = 8;
};
constexpr WgmmaConfig kWgmmaConfigs[] = {{64, 2, 4}, {64, 1, 6}, {32, 1, 8}, {32, 2, 6}};

namespace wgmma_detail {

__device__ __forceinline__ void mbar_init(std::uint32_t bar, int count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
}
__device__ __forceinline__ void mbar_expect_tx(std::uint32_t bar, std::uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
}
__device__ __forceinline__ void mbar_arrive(std::uint32_t bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
}
__device__ __forceinline__ void mbar_wait(std::uint32_t bar, int parity) {
  std::uint32_t done = 0;
  do {
    asm volatile(
        "{\n.reg .pred p;\nmbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\nselp.u32 %0, 1, 0, p;\n}\n"
        : "=r"(done)
        : "r"(bar), "r"(parity)
        : "memory");
  } while (!done);
}
__device__ __forceinline__ void tma_load_2d(std::uint32_t dst, const CUtensorMap* map, int k, int row,
                                            std::uint32_t bar) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], [%4];\n" ::
          "r"(dst),
      "l"(reinterpret_cast<std::uint64_t>(map)), "r"(k), "r"(row), "r"(bar)
      : "memory");
}
// How a block of one producer warpgroup and CONSUMERS consumer warpgroups moves registers with setmaxnreg: the
// producer's threads go down to PRODUCER registers (producer()), the consumers' up to CONSUMER (consumer()).
// setmaxnreg.inc waits until the block's pool can serve it, so a split the pool cannot serve hangs the kernel; it
// does not fail. The pool is what the block was launched with: its threads x the registers ptxas gives a thread of
// a one-block-per-SM kernel that uses setmaxnreg — the whole bound, 65,536 / threads in multiples of 8 (cuobjdump:
// REG:168 at 384 threads). Checked here at compile time. (Twenty-sixth session: an edit that raised the LM head's
// consumers from 232 to 240 next to a producer at 40 hung it: 128 x 40 + 256 x 240 = 66,560 > 64,512.)
template <int PRODUCER, int CONSUMER, int CONSUMERS = 2>
struct RegisterSplit {
  static constexpr int kThreads = 128 * (1 + CONSUMERS);
  static constexpr int kLaunch = 65536 / kThreads / 8 * 8;  // registers a thread at launch
  static_assert(PRODUCER % 8 == 0 && CONSUMER % 8 == 0 && PRODUCER >= 24 && CONSUMER <= 256,
                "setmaxnreg takes a multiple of 8 in [24, 256]");
  static_assert(PRODUCER <= kLaunch && CONSUMER >= kLaunch, "the producer gives registers, the consumers take them");
  static_assert(128 * PRODUCER + 128 * CONSUMERS * CONSUMER <= kThreads * kLaunch,
                "more registers than the block has: the consumers' setmaxnreg.inc would wait forever");
  __device__ static void producer() { asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(PRODUCER)); }
  __device__ static void consumer() { asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(CONSUMER)); }
};

// Shared-memory matrix descriptor of a K-major tile written with the 128-byte swizzle (rows of 128 bytes).
__device__ __forceinline__ std::uint64_t sw128_desc(std::uint32_t addr) {
  return static_cast<std::uint64_t>((addr & 0x3FFFF) >> 4) | (1ull << 16) | (64ull << 32) | (1ull << 62);
}
__device__ __forceinline__ void cluster_sync() {
  asm volatile("barrier.cluster.arrive.release.aligned;\nbarrier.cluster.wait.acquire.aligned;\n" ::: "memory");
}
// The float4 at `local_addr` in the shared memory of the cluster's block `rank`.
__device__ __forceinline__ float4 ld_cluster_f32x4(std::uint32_t local_addr, int rank) {
  std::uint32_t remote;
  float4 v;
  asm volatile("mapa.shared::cluster.u32 %0, %1, %2;\n" : "=r"(remote) : "r"(local_addr), "r"(rank));
  asm volatile("ld.shared::cluster.v4.f32 {%0, %1, %2, %3}, [%4];\n"
               : "=f"(v.x), "=f"(v.y), "=f"(v.z), "=f"(v.w)
               : "r"(remote)
               : "memory");
  return v;
}
template <typename T>
__device__ __forceinline__ std::uint32_t pack_pair(float lo, float hi) {
  std::uint32_t r;
  if constexpr (std::is_same_v<T, __half>) {
    const __half2 h = __floats2half2_rn(lo, hi);
    std::memcpy(&r, &h, 4);
  } else {
    const __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
    std::memcpy(&r, &h, 4);
  }
  return r;
}

// The two 16-bit values of a packed pair (pack_pair's inverse), as floats.
template <typename T>
__device__ __forceinline__ float2 unpack_pair(std::uint32_t r) {
  if constexpr (std::is_same_v<T, __half>) {
    __half2 h;
    std::memcpy(&h, &r, 4);
    return __half22float2(h);
  } else {
    __nv_bfloat162 h;
    std::memcpy(&h, &r, 4);
    return __bfloat1622float2(h);
  }
}

// D (64 x N float, this warpgroup's registers) = (accumulate ? D : 0) + A (64 x 16) . B (16 x N), both from shared
// memory, K-major.
template <typename T, int N>
__device__ __forceinline__ void wgmma_k16(float (&d)[N / 2], std::uint64_t a, std::uint64_t b, int accumulate = 1);
template <>
__device__ __forceinline__ void wgmma_k16<__half, 32>(float (&d)[16], std::uint64_t a, std::uint64_t b, int accumulate) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %18, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n32k16.f32.f16.f16 "
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15}, %16, %17, p, 1, 1, 0, 0;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15])
      : "l"(a), "l"(b), "r"(accumulate));
}
template <>
__device__ __forceinline__ void wgmma_k16<__half, 64>(float (&d)[32], std::uint64_t a, std::uint64_t b, int accumulate) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.f16.f16 "
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, %32, %33, p, 1, 1, 0, 0;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
      : "l"(a), "l"(b), "r"(accumulate));
}
template <>
__device__ __forceinline__ void wgmma_k16<__nv_bfloat16, 32>(float (&d)[16], std::uint64_t a, std::uint64_t b, int accumulate) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %18, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n32k16.f32.bf16.bf16 "
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15}, %16, %17, p, 1, 1, 0, 0;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15])
      : "l"(a), "l"(b), "r"(accumulate));
}
template <>
__device__ __forceinline__ void wgmma_k16<__nv_bfloat16, 64>(float (&d)[32], std::uint64_t a, std::uint64_t b, int accumulate) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 "
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, %32, %33, p, 1, 1, 0, 0;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
      : "l"(a), "l"(b), "r"(accumulate));
}

}  // namespace wgmma_detail

template <typename T, int BN, int WG, int STAGES, WgmmaOut OUT>
__global__ void __launch_bounds__(128 * WG + 32)
    gemm_wgmma(const __grid_constant__ CUtensorMap map_a, const __grid_constant__ CUtensorMap map_w, WgmmaArgs<T> p) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  using namespace wgmma_detail;
  constexpr int BM = 64 * WG, kConsumers = 128 * WG;
  constexpr std::uint32_t kABytes = BM * 128, kWBytes = BN * 128, kStage = kABytes + kWBytes;
  extern __shared__ __align__(1024) unsigned char wgmma_smem[];
  __shared__ alignas(8) std::uint64_t bars[2 * STAGES];  // full[s], empty[s]
  const std::uint32_t base = (static_cast<std::uint32_t>(__cvta_generic_to_shared(wgmma_smem)) + 1023u) & ~1023u;
  const std::uint32_t bar0 = static_cast<std::uint32_t>(__cvta_generic_to_shared(bars));
  auto full = [&](int s) { return bar0 + 8u * s; };
  auto empty = [&](int s) { return bar0 + 8u * (STAGES + s); };
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;
  const int kt_n = p.K / 64 / p.splits, kt0 = blockIdx.z * kt_n;

  asm volatile("griddepcontrol.launch_dependents;");
  if (tid == 0) {
    for (int s = 0; s < STAGES; ++s) {
      mbar_init(full(s), 1);
      mbar_init(empty(s), kConsumers);
    }
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  __syncthreads();

  const bool producer = warp == 4 * WG;
  float acc[BN / 2];
#pragma unroll
  for (int i = 0; i < BN / 2; ++i) acc[i] = 0.f;
  if (producer && lane == 0) {  // the producer warp: lane 0 issues every copy
    asm volatile("prefetch.tensormap [%0];\n" ::"l"(reinterpret_cast<std::uint64_t>(&map_w)) : "memory");
    asm volatile("prefetch.tensormap [%0];\n" ::"l"(reinterpret_cast<std::uint64_t>(&map_a)) : "memory");
    const int first = kt_n < STAGES ? kt_n : STAGES;
    for (int s = 0; s < first; ++s) {  // weights: independent of the kernel before
      mbar_expect_tx(full(s), kStage);
      tma_load_2d(base + s * kStage + kABytes, &map_w, (kt0 + s) * 64, n0, full(s));
    }
    asm volatile("griddepcontrol.wait;" ::: "memory");  // the activations are the kernel before's output
    for (int s = 0; s < first; ++s) tma_load_2d(base + s * kStage, &map_a, (kt0 + s) * 64, m0, full(s));
    for (int kt = STAGES; kt < kt_n; ++kt) {
      const int s = kt % STAGES;
      mbar_wait(empty(s), ((kt / STAGES) - 1) & 1);
      mbar_expect_tx(full(s), kStage);
      tma_load_2d(base + s * kStage + kABytes, &map_w, (kt0 + kt) * 64, n0, full(s));
      tma_load_2d(base + s * kStage, &map_a, (kt0 + kt) * 64, m0, full(s));
    }
  }
  const int wg = warp / 4, wwarp = warp % 4;
  // Each stage's wgmma group is waited for before its slot goes back to the producer. (Keeping one group in
  // flight — wait_group 1, the slot of stage kt-1 released after stage kt's products are issued — measured no
  // faster in wgmma_lab: one layer's chain 26.9 vs 24.8 us at 128 rows, H200, two calls.)
  for (int kt = 0; kt < kt_n && !producer; ++kt) {
    const int s = kt % STAGES;
    mbar_wait(full(s), (kt / STAGES) & 1);
    const std::uint32_t a = base + s * kStage + wg * (64 * 128), w = base + s * kStage + kABytes;
    asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#pragma unroll
    for (int k16 = 0; k16 < 4; ++k16) wgmma_k16<T, BN>(acc, sw128_desc(a + k16 * 32), sw128_desc(w + k16 * 32));
    asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
    asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
    mbar_arrive(empty(s));
  }

  // The epilogue of n8 column block j: v = rows r0 (v[0], v[1]) and r0 + 8 (v[2], v[3]) at columns c, c + 1.
  const int r0 = m0 + wg * 64 + wwarp * 16 + lane / 4;
  auto emit = [&](int j, const float (&v)[4]) {
    const int c = n0 + j * 8 + 2 * (lane % 4);
    if (c >= p.N) return;
    float b0 = 0.f, b1 = 0.f;
    if constexpr (OUT == WgmmaOut::kResidual) {
      if (p.bias_f) {
        b0 = p.bias_f[c];
        b1 = p.bias_f[c + 1];
      }
    } else if (p.bias) {
      b0 = to_f(p.bias[c]);
      b1 = to_f(p.bias[c + 1]);
    }
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int r = r0 + 8 * h;
      if (r >= p.M) continue;
      float v0 = v[2 * h] + b0, v1 = v[2 * h + 1] + b1;
      const std::int64_t i = static_cast<std::int64_t>(r) * p.N + c;
      if constexpr (OUT == WgmmaOut::kResidual) {
        const float2 o = *reinterpret_cast<const float2*>(p.x + i);
        *reinterpret_cast<float2*>(p.x + i) = make_float2(o.x + v0, o.y + v1);
      } else {
        if constexpr (OUT == WgmmaOut::kGeluTanh) {
          v0 = gelu_tanh(v0);
          v1 = gelu_tanh(v1);
        }
        *reinterpret_cast<std::uint32_t*>(p.y + i) = pack_pair<T>(v0, v1);
      }
    }
  };

  if (p.splits > 1) {  // every thread of the cluster takes part in its barriers (the producer warp too)
    // The ring is free: every stage's copies have landed and been consumed. Group j (acc[4j .. 4j+3], the n8
    // column block j) of consumer thread t sits at float4 index j * kConsumers + t.
    float4* red = reinterpret_cast<float4*>(
        wgmma_smem + (base - static_cast<std::uint32_t>(__cvta_generic_to_shared(wgmma_smem))));
    if (!producer)
#pragma unroll
      for (int j = 0; j < BN / 8; ++j)
        red[j * kConsumers + tid] = make_float4(acc[4 * j], acc[4 * j + 1], acc[4 * j + 2], acc[4 * j + 3]);
    cluster_sync();
    if (!producer) {
      // Before any store: the kernel before has finished (the producer's wait covers the reads; this one the
      // writes, which may overwrite what that kernel read).
      asm volatile("griddepcontrol.wait;" ::: "memory");
      for (int j = blockIdx.z; j < BN / 8; j += p.splits) {
        const std::uint32_t at = base + 16u * (j * kConsumers + tid);
        float4 sum = ld_cluster_f32x4(at, 0);
        for (int z = 1; z < p.splits; ++z) {  // block order: the same sum every run
          const float4 q = ld_cluster_f32x4(at, z);
          sum.x += q.x;
          sum.y += q.y;
          sum.z += q.z;
          sum.w += q.w;
        }
        const float v[4] = {sum.x, sum.y, sum.z, sum.w};
        emit(j, v);
      }
    }
    cluster_sync();  // every block keeps its shared memory until the others have read it
    return;
  }
  if (producer) return;
  asm volatile("griddepcontrol.wait;" ::: "memory");  // as above
#pragma unroll
  for (int j = 0; j < BN / 8; ++j) {
    const float v[4] = {acc[4 * j], acc[4 * j + 1], acc[4 * j + 2], acc[4 * j + 3]};
    emit(j, v);
  }
#else
  __trap();  // built without sm_90a: the host never launches this
#endif
}

// ---- host side ---------------------------------------------------------------------------------------------------

// A 2-D tensor map of the row-major [rows, K] matrix at base (16-bit elements), boxes of box_rows x 64 with the
// 128-byte swizzle, rows past `rows` zero-filled. cuTensorMapEncodeTiled comes from the driver through the
// runtime (no link against libcuda). false when unavailable or refused.
template <typename T>
bool wgmma_tensor_map(CUtensorMap* map, const T* base, int rows, int K, int box_rows) {
  static PFN_cuTensorMapEncodeTiled_v12000 encode = [] {
    void* fn = nullptr;
    cudaDriverEntryPointQueryResult q{};
    if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &fn, 12000, cudaEnableDefault, &q) != cudaSuccess ||
        q != cudaDriverEntryPointSuccess)
      fn = nullptr;
    (void)cudaGetLastError();
    return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(fn);
  }();
  if (!encode) return false;
  const cuuint64_t dims[2] = {static_cast<cuuint64_t>(K), static_cast<cuuint64_t>(rows)};
  const cuuint64_t strides[1] = {static_cast<cuuint64_t>(K) * sizeof(T)};
  const cuuint32_t box[2] = {64, static_cast<cuuint32_t>(box_rows)};
  const cuuint32_t elem_strides[2] = {1, 1};
  const CUtensorMapDataType type = sizeof(T) == 2 && std::is_same_v<T, __half> ? CU_TENSOR_MAP_DATA_TYPE_FLOAT16
                                                                             : CU_TENSOR_MAP_DATA_TYPE_BFLOAT16;
  return encode(map, type, 2, const_cast<T*>(base), dims, strides, box, elem_strides, CU_TENSOR_MAP_INTERLEAVE_NONE,
                CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}

inline int wgmma_smem_bytes(const WgmmaConfig& c) { return c.stages * (64 * c.wg + c.bn) * 128 + 1024; }
inline int wgmma_tiles(const WgmmaConfig& c, int M, int N) {
  return ((N + c.bn - 1) / c.bn) * ((M + 64 * c.wg - 1) / (64 * c.wg));
}

template <typename T, int BN, int WG, int STAGES, WgmmaOut OUT>
cudaError_t launch_gemm_wgmma_t(const CUtensorMap& a, const CUtensorMap& w, const WgmmaArgs<T>& p,
                                cudaStream_t stream, bool pdl) {
  auto kernel = gemm_wgmma<T, BN, WG, STAGES, OUT>;
  constexpr int smem = STAGES * (64 * WG + BN) * 128 + 1024;
  static const cudaError_t configured = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
  if (configured != cudaSuccess) return configured;
  // the splits of a tile form one cluster
  const LaunchConfig launch(dim3((p.N + BN - 1) / BN, (p.M + 64 * WG - 1) / (64 * WG), p.splits),
                            dim3(128 * WG + 32), smem, stream, pdl, dim3(1, 1, p.splits));
  return cudaLaunchKernelEx(&launch.cfg, kernel, a, w, p);
}
template <typename T, WgmmaOut OUT>
cudaError_t launch_gemm_wgmma_out(const WgmmaConfig& c, const CUtensorMap& a, const CUtensorMap& w,
                                  const WgmmaArgs<T>& p, cudaStream_t stream, bool pdl) {
  if (c.bn == 64 && c.wg == 2 && c.stages == 4) return launch_gemm_wgmma_t<T, 64, 2, 4, OUT>(a, w, p, stream, pdl);
  if (c.bn == 64 && c.wg == 1 && c.stages == 6) return launch_gemm_wgmma_t<T, 64, 1, 6, OUT>(a, w, p, stream, pdl);
  if (c.bn == 32 && c.wg == 1 && c.stages == 8) return launch_gemm_wgmma_t<T, 32, 1, 8, OUT>(a, w, p, stream, pdl);
  if (c.bn == 32 && c.wg == 2 && c.stages == 6) return launch_gemm_wgmma_t<T, 32, 2, 6, OUT>(a, w, p, stream, pdl);
  return cudaErrorInvalidValue;
}

// One product. `a` maps A [M, K] with box rows 64 c.wg, `w` maps W [N, K] with box rows c.bn (wgmma_tensor_map).
// Split-K: at most 8 (a portable cluster). pdl: launched as a programmatic dependent.
template <typename T>
cudaError_t launch_gemm_wgmma(const WgmmaConfig& c, WgmmaOut out, const CUtensorMap& a, const CUtensorMap& w,
                              const WgmmaArgs<T>& p, cudaStream_t stream, bool pdl) {
  if (p.K % 64 != 0 || p.N % 2 != 0 || p.splits < 1 || p.splits > 8 || (p.K / 64) % p.splits != 0)
    return cudaErrorInvalidValue;
  switch (out) {
    case WgmmaOut::kStore: return launch_gemm_wgmma_out<T, WgmmaOut::kStore>(c, a, w, p, stream, pdl);
    case WgmmaOut::kGeluTanh: return launch_gemm_wgmma_out<T, WgmmaOut::kGeluTanh>(c, a, w, p, stream, pdl);
    case WgmmaOut::kResidual: return launch_gemm_wgmma_out<T, WgmmaOut::kResidual>(c, a, w, p, stream, pdl);
  }
  return cudaErrorInvalidValue;
}

}  // namespace gptbench::cuda_engine::kernels
