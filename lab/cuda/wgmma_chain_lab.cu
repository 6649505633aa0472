// Kernel lab: what a chain of warpgroup MMAs costs when nothing else happens — the question the seventeenth
// session's persistent_lab calls left open. NOT USED BY THE ENGINE.
//
// In the persistent prefill kernel a QKV / FC item is 12 stages of 64 k, each 4 wgmma m64n32k16 per consumer
// warpgroup on one accumulator: 48 MMAs in a row. Its k loop takes ~3.1 us with the MMAs and ~1.3 without
// (persistent_lab traces, NVIDIA H200); halving the MMAs (one warpgroup only) saved 0.3 us, m64n64 on one
// warpgroup cost more, 2 / 3 groups in flight changed nothing. 3.1 us / 48 = 64 ns ~ 128 cycles a MMA: the latency
// of one wgmma, if each waits for the one before on the same accumulator. This lab times such chains from shared
// memory alone (no TMA, no barriers, no other block): 48 wgmmas per warpgroup on 1, 2 or 4 independent accumulators
// (the k16 steps round-robin, the accumulators added at the end), N = 32 and 64, one or two warpgroups, with a
// commit + wait_group 1 after every 4 MMAs (the kernel's order) or one commit at the end.
//
// Check: A and B all ones, so every output is 16 x 48 = 768 whatever the chains; any other value fails.
// Timing: clock64 / globaltimer around the chain in each warpgroup, best of --reps launches of 1 block and of 132
// blocks (one per SM, as the kernel runs); cycles and ns per MMA.
//
// Contention (--contention): in the persistent kernel a stage's TMA intake and its MMAs seemed not to overlap
// (persistent_lab's stage trace, seventeenth session: ~280 cycles a 16 KB stage without MMAs, ~520 with). Here a
// producer thread streams 16 KB copies through the TMA unit from a 192 KB L2-resident buffer — bulk copies
// (cp.async.bulk, contiguous) or tensor copies as the kernel's (boxes of 128 rows x 64 k of a [128, 768] matrix,
// 128-byte swizzle) — into a 4-slot ring of the block's shared memory while the two warpgroups run MMA chains from shared memory (m64n32k16
// or m64n64k16, or none): each side's cycles alone and together. Together ~ the larger: they overlap; ~ the sum:
// they take turns (the MMAs' shared-memory reads against the copies' writes).
//
// Build: part of the CMake build (sm_90a). Run: ./wgmma_chain_lab [--reps N] [--json FILE] [--contention]
#include <cuda.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "backends/cuda/gemm_wgmma.cuh"

namespace {

using gptbench::cuda_engine::kernels::wgmma_detail::mbar_arrive;
using gptbench::cuda_engine::kernels::wgmma_detail::mbar_expect_tx;
using gptbench::cuda_engine::kernels::wgmma_detail::mbar_init;
using gptbench::cuda_engine::kernels::wgmma_detail::mbar_wait;
using gptbench::cuda_engine::kernels::wgmma_detail::sw128_desc;
using gptbench::cuda_engine::kernels::wgmma_detail::tma_load_2d;
using gptbench::cuda_engine::kernels::wgmma_detail::wgmma_k16;

#define CK(x)                                                                                   \
  do {                                                                                          \
    cudaError_t e_ = (x);                                                                       \
    if (e_ != cudaSuccess) {                                                                    \
      std::fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e_)); \
      std::exit(1);                                                                             \
    }                                                                                           \
  } while (0)

constexpr int kMmas = 48;              // per warpgroup: 12 stages x 4 k16 steps, as a QKV / FC item
constexpr int kABytes = 64 * 64 * 2;   // one warpgroup's A tile: 64 rows x 64 k, half
constexpr int kBBytes = 64 * 64 * 2;   // B tile: up to 64 columns x 64 k
constexpr int kSmem = 2 * kABytes + kBBytes + 1024;

__device__ __forceinline__ unsigned long long globaltimer() {
  unsigned long long t;
  asm volatile("mov.u64 %0, %globaltimer;" : "=l"(t));
  return t;
}

// The dynamic shared memory from its first 1024-byte boundary (the 128-byte swizzle's tiles need it): its shared
// address and a generic pointer to it.
struct AlignedSmem {
  std::uint32_t base;
  unsigned char* gen;
};
__device__ __forceinline__ AlignedSmem aligned_smem(unsigned char* raw_ptr) {
  const std::uint32_t raw = static_cast<std::uint32_t>(__cvta_generic_to_shared(raw_ptr));
  const std::uint32_t base = (raw + 1023u) & ~1023u;
  return {base, raw_ptr + (base - raw)};
}
// Accumulators zeroed and pinned here, before the MMAs: left to itself the compiler sinks each accumulator's zeros to
// just before its first MMA, between asynchronous MMAs, and ptxas then injects a wait for those in flight (C7517).
template <int K>
__device__ __forceinline__ void zero_pinned(float (&acc)[K]) {
#pragma unroll
  for (int i = 0; i < K; ++i) {
    acc[i] = 0.f;
    asm volatile("" : "+f"(acc[i]));
  }
}
template <int K>
__device__ __forceinline__ float sum_of(const float (&acc)[K]) {
  float s = 0.f;
#pragma unroll
  for (int i = 0; i < K; ++i) s += acc[i];
  return s;
}

// out[block][wg] = {cycles, ns}; sums[block * threads + tid] = the sum of the thread's outputs (the check).
template <int N, int CHAINS, bool STAGE_WAITS>
__global__ void __launch_bounds__(256) chain_kernel(long long* timing, float* sums) {
  extern __shared__ unsigned char smem_raw[];
  const auto [base, gen] = aligned_smem(smem_raw);
  const int tid = threadIdx.x, wg = tid / 128;
  // All ones: the swizzle permutes equal values, so the result does not depend on it.
  for (int i = tid; i < (2 * kABytes + kBBytes) / 2; i += blockDim.x) reinterpret_cast<__half*>(gen)[i] = __float2half(1.f);
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
  __syncthreads();
  const std::uint32_t a = base + wg * kABytes, b = base + 2 * kABytes;
  float acc[CHAINS][N / 2];
#pragma unroll
  for (int c = 0; c < CHAINS; ++c) zero_pinned(acc[c]);
  asm volatile("bar.sync %0, 128;\n" ::"r"(1 + wg));
  const long long c0 = clock64();
  const unsigned long long t0 = globaltimer();
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#pragma unroll
  for (int m = 0; m < kMmas; ++m) {
    const int k16 = m % 4;
    wgmma_k16<__half, N>(acc[m % CHAINS], sw128_desc(a + k16 * 32), sw128_desc(b + k16 * 32));
    if constexpr (STAGE_WAITS) {
      if (m % 4 == 3) {
        asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
        asm volatile("wgmma.wait_group.sync.aligned 1;\n" ::: "memory");
      }
    }
  }
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
  asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
  const long long c1 = clock64();
  const unsigned long long t1 = globaltimer();
  float s = 0.f;  // (whole numbers: exact in any order)
#pragma unroll
  for (int c = 0; c < CHAINS; ++c) s += sum_of(acc[c]);
  sums[blockIdx.x * blockDim.x + tid] = s;
  if (tid % 128 == 0) {
    timing[(blockIdx.x * 2 + wg) * 2] = c1 - c0;
    timing[(blockIdx.x * 2 + wg) * 2 + 1] = static_cast<long long>(t1 - t0);
  }
}

// Contention: warps 0-7 (two warpgroups) run `mma_chains` chains of 48 MMAs unless n_mma_chains == 0; warp 8's
// lane 0 streams `copies` bulk copies of 16 KB (src: 12 chunks, 192 KB, cycled) into a 4-slot ring unless copies == 0.
// timing[block * 3 + 0]: the copies' cycles (first issue to last completion); + 1: warpgroup 0's MMA cycles;
// + 2: warpgroup 1's.
constexpr int kCopyBytes = 16 * 1024, kCopySlots = 4, kCopyChunks = 12;
constexpr int kContentionSmem = 2 * kABytes + kBBytes + kCopySlots * kCopyBytes + 1024 + 64;
// One 16 KB copy through the TMA unit into `dst`, completing on `bar`: chunk `chunk` of the source as a tensor box of
// 128 rows x 64 k of the [128, 768] matrix with the 128-byte swizzle (as the persistent kernel's), or as a
// contiguous bulk copy.
__device__ __forceinline__ void copy_chunk(bool tensor, const CUtensorMap* map, const unsigned char* src, std::uint32_t dst,
                                           int chunk, std::uint32_t bar) {
  if (tensor)
    tma_load_2d(dst, map, chunk * 64, 0, bar);
  else
    asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n" ::"r"(dst),
                 "l"(src + static_cast<std::size_t>(chunk) * kCopyBytes), "r"(kCopyBytes), "r"(bar)
                 : "memory");
}
template <int N>
__global__ void __launch_bounds__(288) contention_kernel(const __grid_constant__ CUtensorMap map, int tensor,
                                                         const unsigned char* src, int copies, int mma_chains,
                                                         long long* timing, float* sums) {
  extern __shared__ unsigned char smem_raw[];
  const auto [base, gen] = aligned_smem(smem_raw);
  const std::uint32_t ring = base + 2 * kABytes + kBBytes, bars = ring + kCopySlots * kCopyBytes;
  const int tid = threadIdx.x, wg = tid / 128;
  for (int i = tid; i < (2 * kABytes + kBBytes) / 2; i += blockDim.x) reinterpret_cast<__half*>(gen)[i] = __float2half(1.f);
  if (tid == 0) {
    for (int sl = 0; sl < kCopySlots; ++sl) mbar_init(bars + 8 * sl, 1);
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
  __syncthreads();
  if (wg == 2) {  // the copy thread
    if (tid != 256 || copies == 0) return;
    const long long c0 = clock64();
    for (int i = 0; i < copies; ++i) {
      const int sl = i % kCopySlots;
      const std::uint32_t bar = bars + 8 * sl;
      if (i >= kCopySlots) mbar_wait(bar, ((i / kCopySlots) - 1) & 1);
      mbar_expect_tx(bar, kCopyBytes);
      copy_chunk(tensor, &map, src, ring + sl * kCopyBytes, i % kCopyChunks, bar);
    }
    for (int i = copies - kCopySlots < 0 ? 0 : copies - kCopySlots; i < copies; ++i)  // the last ones in flight
      mbar_wait(bars + 8 * (i % kCopySlots), (i / kCopySlots) & 1);
    timing[blockIdx.x * 3] = clock64() - c0;
    return;
  }
  if (mma_chains == 0) return;
  const std::uint32_t a = base + wg * kABytes, b = base + 2 * kABytes;
  float acc[N / 2];
  zero_pinned(acc);
  const long long c0 = clock64();
  for (int c = 0; c < mma_chains; ++c) {
    asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#pragma unroll
    for (int m = 0; m < kMmas; ++m) {
      wgmma_k16<__half, N>(acc, sw128_desc(a + (m % 4) * 32), sw128_desc(b + (m % 4) * 32));
      if (m % 4 == 3) {
        asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
        asm volatile("wgmma.wait_group.sync.aligned 1;\n" ::: "memory");
      }
    }
  }
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
  asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
  const long long c1 = clock64();
  sums[blockIdx.x * 256 + tid] = sum_of(acc);
  if (tid % 128 == 0) timing[blockIdx.x * 3 + 1 + wg] = c1 - c0;
}

// Pipeline: the persistent kernel's product loop in miniature — the copy thread fills an 8-slot ring with 16 KB
// stages (tensor or bulk copies, as above), each waiting for its slot to be freed; the two warpgroups wait for each
// stage, run 4 MMAs on it (A: their 64 rows of the slot; B: a fixed tile), commit, wait for the stage before
// (wait_group 1) and free that one's slot. timing[block * 2]: the consumers' cycles from their first wait to the
// last slot freed; + 1: the copy thread's cycles from its first request to its last.
// SLOTS: the ring's slots; BOXES: 16 KB boxes a stage (one request of BOXES x 16 KB, 4 x BOXES MMAs a warpgroup).
template <int SLOTS, int BOXES>
constexpr int pipeline_smem() { return SLOTS * BOXES * kCopyBytes + kBBytes + 1024 + 256; }
template <int N, int SLOTS, int BOXES>
__global__ void __launch_bounds__(288) pipeline_kernel(const __grid_constant__ CUtensorMap map, int tensor,
                                                       const unsigned char* src, int stages, int no_mma,
                                                       long long* timing, float* sums) {
  extern __shared__ unsigned char smem_raw[];
  const auto [base, gen] = aligned_smem(smem_raw);
  constexpr int kPipeSlots = SLOTS, kSlotBytes = BOXES * kCopyBytes;
  const std::uint32_t ring = base, b = base + kPipeSlots * kSlotBytes, bars = b + kBBytes;
  auto full = [&](int sl) { return bars + 8u * sl; };
  auto empty = [&](int sl) { return bars + 8u * (kPipeSlots + sl); };
  const int tid = threadIdx.x, wg = tid / 128;
  for (int i = tid; i < kBBytes / 2; i += blockDim.x)
    reinterpret_cast<__half*>(gen + kPipeSlots * kSlotBytes)[i] = __float2half(1.f);
  if (tid == 0) {
    for (int sl = 0; sl < kPipeSlots; ++sl) {
      mbar_init(full(sl), 1);
      mbar_init(empty(sl), 2);  // one arrival per warpgroup
    }
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
  __syncthreads();
  if (wg == 2) {
    if (tid != 256) return;
    const long long c0 = clock64();
    for (int i = 0; i < stages; ++i) {
      const int sl = i % kPipeSlots;
      if (i >= kPipeSlots) mbar_wait(empty(sl), ((i / kPipeSlots) - 1) & 1);
      mbar_expect_tx(full(sl), kSlotBytes);
      for (int bx = 0; bx < BOXES; ++bx)
        copy_chunk(tensor, &map, src, ring + sl * kSlotBytes + bx * kCopyBytes, (i * BOXES + bx) % kCopyChunks, full(sl));
    }
    timing[blockIdx.x * 2 + 1] = clock64() - c0;
    return;
  }
  float acc[N / 2];
  zero_pinned(acc);
  long long c0 = 0;
  for (int i = 0; i < stages; ++i) {
    const int sl = i % kPipeSlots;
    mbar_wait(full(sl), (i / kPipeSlots) & 1);
    if (i == 0) c0 = clock64();
    if (!no_mma) {
      const std::uint32_t a = ring + sl * kSlotBytes + wg * (64 * 128);
      asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#pragma unroll
      for (int bx = 0; bx < BOXES; ++bx)
#pragma unroll
        for (int k16 = 0; k16 < 4; ++k16)
          wgmma_k16<__half, N>(acc, sw128_desc(a + bx * kCopyBytes + k16 * 32), sw128_desc(b + k16 * 32));
      asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
      asm volatile("wgmma.wait_group.sync.aligned 1;\n" ::: "memory");
    }
    if (i > 0 && tid % 128 == 0) mbar_arrive(empty((i - 1) % kPipeSlots));
  }
  asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
  if (tid % 128 == 0) mbar_arrive(empty((stages - 1) % kPipeSlots));
  const long long c1 = clock64();
  sums[blockIdx.x * 256 + tid] = sum_of(acc);  // (keeps the accumulators live; the host does not check them here)
  if (tid == 0) timing[blockIdx.x * 2] = c1 - c0;
}

int g_failures = 0;
FILE* g_json = nullptr;
// The median over the blocks (the upper one for an even count).
double median_of(std::vector<double> v) {
  std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
  return v[v.size() / 2];
}
std::string g_gpu;

template <int N, int CHAINS, bool STAGE_WAITS>
void run(int warpgroups, int blocks, int reps) {
  auto kern = chain_kernel<N, CHAINS, STAGE_WAITS>;
  CK(cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmem));
  const int threads = 128 * warpgroups;
  long long* timing;
  float* sums;
  CK(cudaMalloc(&timing, blocks * 2 * 2 * sizeof(long long)));
  CK(cudaMalloc(&sums, blocks * threads * sizeof(float)));
  double best_cycles = 1e30, best_ns = 1e30;
  bool ok = true;
  for (int r = 0; r < reps; ++r) {
    kern<<<blocks, threads, kSmem>>>(timing, sums);
    CK(cudaGetLastError());
    CK(cudaDeviceSynchronize());
    std::vector<long long> t(blocks * 4);
    std::vector<float> s(blocks * threads);
    CK(cudaMemcpy(t.data(), timing, t.size() * sizeof(long long), cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(s.data(), sums, s.size() * sizeof(float), cudaMemcpyDeviceToHost));
    // the slowest warpgroup of the launch, as a phase waits for its slowest block
    long long worst_c = 0, worst_ns = 0;
    for (int bl = 0; bl < blocks; ++bl)
      for (int w = 0; w < warpgroups; ++w) {
        worst_c = std::max(worst_c, t[(bl * 2 + w) * 2]);
        worst_ns = std::max(worst_ns, t[(bl * 2 + w) * 2 + 1]);
      }
    best_cycles = std::min(best_cycles, static_cast<double>(worst_c));
    best_ns = std::min(best_ns, static_cast<double>(worst_ns));
    const float expect = 16.f * kMmas * (N / 2);  // each of the thread's N/2 outputs is 16 x 48
    for (float v : s) ok = ok && v == expect;
  }
  if (!ok) ++g_failures;
  std::printf("m64n%-2dk16  %d chain%s  %-22s  %d warpgroup%s  %3d block%s: %6.0f cycles %7.1f ns for %d MMAs = %5.1f "
              "cycles %5.1f ns a MMA  %s\n",
              N, CHAINS, CHAINS > 1 ? "s" : " ", STAGE_WAITS ? "wait_group 1 every 4" : "one wait at the end",
              warpgroups, warpgroups > 1 ? "s" : " ", blocks, blocks > 1 ? "s" : " ", best_cycles, best_ns, kMmas,
              best_cycles / kMmas, best_ns / kMmas, ok ? "check ok" : "CHECK FAILED");
  if (g_json)
    std::fprintf(g_json,
                 "{\"lab\":\"wgmma_chain\",\"gpu\":\"%s\",\"n\":%d,\"chains\":%d,\"stage_waits\":%s,\"warpgroups\":%d,"
                 "\"blocks\":%d,\"mmas\":%d,\"cycles\":%.0f,\"ns\":%.1f,\"ok\":%s}\n",
                 g_gpu.c_str(), N, CHAINS, STAGE_WAITS ? "true" : "false", warpgroups, blocks, kMmas, best_cycles,
                 best_ns, ok ? "true" : "false");
  CK(cudaFree(timing));
  CK(cudaFree(sums));
}

// One contention case: the median over the blocks of (copy cycles, the slower warpgroup's MMA cycles), best launch
// by the sum of both.
template <int N>
void run_contention_case(const CUtensorMap& map, int tensor, const unsigned char* src, int blocks, int copies, int chains,
                         int reps) {
  auto kern = contention_kernel<N>;
  CK(cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, kContentionSmem));
  long long* timing;
  float* sums;
  CK(cudaMalloc(&timing, blocks * 3 * sizeof(long long)));
  CK(cudaMalloc(&sums, blocks * 256 * sizeof(float)));
  double best_copy = 0, best_mma = 0, best_sum = 1e30;
  bool ok = true;
  for (int r = 0; r < reps; ++r) {
    CK(cudaMemset(timing, 0, blocks * 3 * sizeof(long long)));
    kern<<<blocks, 288, kContentionSmem>>>(map, tensor, src, copies, chains, timing, sums);
    CK(cudaGetLastError());
    CK(cudaDeviceSynchronize());
    std::vector<long long> t(blocks * 3);
    CK(cudaMemcpy(t.data(), timing, t.size() * sizeof(long long), cudaMemcpyDeviceToHost));
    std::vector<double> cp, mm;
    for (int bl = 0; bl < blocks; ++bl) {
      cp.push_back(static_cast<double>(t[bl * 3]));
      mm.push_back(static_cast<double>(std::max(t[bl * 3 + 1], t[bl * 3 + 2])));
    }
    const double copy = median_of(cp), mma = median_of(mm);
    if (copy + mma < best_sum) {
      best_sum = copy + mma;
      best_copy = copy;
      best_mma = mma;
    }
    if (chains > 0) {
      std::vector<float> s(blocks * 256);
      CK(cudaMemcpy(s.data(), sums, s.size() * sizeof(float), cudaMemcpyDeviceToHost));
      const float expect = 16.f * kMmas * chains * (N / 2);
      for (float v : s) ok = ok && v == expect;
    }
  }
  if (!ok) ++g_failures;
  const double kb = copies * (kCopyBytes / 1024.0);
  std::printf("%3d block%s  %s %4.0f KB %-9s MMAs %s  : copies %7.0f cycles (%5.1f B/cycle)   MMAs %7.0f cycles (%5.1f "
              "cycles a MMA a warpgroup)  %s\n",
              blocks, blocks > 1 ? "s" : " ", tensor ? "tensor copies" : "bulk copies  ", kb, copies ? "" : "(none)",
              chains ? (N == 32 ? "2 x m64n32k16" : "2 x m64n64k16") : "none         ", best_copy,
              best_copy > 0 ? copies * static_cast<double>(kCopyBytes) / best_copy : 0.0, best_mma,
              chains ? best_mma / (chains * kMmas) : 0.0, ok ? "check ok" : "CHECK FAILED");
  if (g_json)
    std::fprintf(g_json,
                 "{\"lab\":\"wgmma_chain\",\"kind\":\"contention\",\"gpu\":\"%s\",\"tensor\":%s,\"n\":%d,\"blocks\":%d,"
                 "\"copy_bytes\":%d,\"mmas_per_warpgroup\":%d,\"copy_cycles\":%.0f,\"mma_cycles\":%.0f,\"ok\":%s}\n",
                 g_gpu.c_str(), tensor ? "true" : "false", N, blocks, copies * kCopyBytes, chains * kMmas, best_copy, best_mma, ok ? "true" : "false");
  CK(cudaFree(timing));
  CK(cudaFree(sums));
}

template <int N, int SLOTS = 8, int BOXES = 1>
void run_pipeline_case(const CUtensorMap& map, int tensor, const unsigned char* src, int blocks, int stages, int no_mma,
                       int reps) {
  auto kern = pipeline_kernel<N, SLOTS, BOXES>;
  constexpr int kPipelineSmem = pipeline_smem<SLOTS, BOXES>();
  CK(cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, kPipelineSmem));
  long long* timing;
  float* sums;
  CK(cudaMalloc(&timing, blocks * 2 * sizeof(long long)));
  CK(cudaMalloc(&sums, blocks * 256 * sizeof(float)));
  double best = 1e30, best_copy = 0;
  for (int r = 0; r < reps; ++r) {
    kern<<<blocks, 288, kPipelineSmem>>>(map, tensor, src, stages, no_mma, timing, sums);
    CK(cudaGetLastError());
    CK(cudaDeviceSynchronize());
    std::vector<long long> t(blocks * 2);
    CK(cudaMemcpy(t.data(), timing, t.size() * sizeof(long long), cudaMemcpyDeviceToHost));
    std::vector<double> c, p;
    for (int bl = 0; bl < blocks; ++bl) {
      c.push_back(static_cast<double>(t[bl * 2]));
      p.push_back(static_cast<double>(t[bl * 2 + 1]));
    }
    if (const double consumers = median_of(c); consumers < best) {
      best = consumers;
      best_copy = median_of(p);
    }
  }
  // (the sums are not checked: the ring's contents are the source's zeros, so any MMA gives 0)
  std::printf("%3d block%s  pipeline, %s, %2d slots, %2d stages of %2d KB, %-15s: consumers %7.0f cycles = %5.0f a stage; "
              "copy thread's requests %7.0f cycles\n",
              blocks, blocks > 1 ? "s" : " ", tensor ? "tensor copies" : "bulk copies  ", SLOTS, stages, BOXES * 16,
              no_mma ? "no MMAs" : (N == 32 ? "2 x 4 m64n32k16" : "2 x 4 m64n64k16"), best, best / stages, best_copy);
  if (g_json)
    std::fprintf(g_json,
                 "{\"lab\":\"wgmma_chain\",\"kind\":\"pipeline\",\"gpu\":\"%s\",\"tensor\":%s,\"slots\":%d,\"stage_kb\":%d,\"n\":%d,"
                 "\"no_mma\":%s,\"blocks\":%d,\"stages\":%d,\"consumer_cycles\":%.0f,\"request_cycles\":%.0f}\n",
                 g_gpu.c_str(), tensor ? "true" : "false", SLOTS, BOXES * 16, N, no_mma ? "true" : "false", blocks, stages, best,
                 best_copy);
  CK(cudaFree(timing));
  CK(cudaFree(sums));
}

void run_contention(int sms, int reps) {
  unsigned char* src;
  CK(cudaMalloc(&src, kCopyChunks * kCopyBytes));
  CK(cudaMemset(src, 0, kCopyChunks * kCopyBytes));
  CUtensorMap map;  // the same 192 KB as a [128, 768] half matrix
  if (!gptbench::cuda_engine::kernels::wgmma_tensor_map(&map, reinterpret_cast<const __half*>(src), 128, 768, 128)) {
    std::fprintf(stderr, "wgmma_chain_lab: cuTensorMapEncodeTiled failed\n");
    std::exit(2);
  }
  // 48 copies (768 KB, ~13.8K cycles at the kernel's ~57 B a cycle) against 8 chains of 48 MMAs a warpgroup
  // (~19.7K cycles for m64n32k16 on both warpgroups, ~26K for m64n64k16)
  const int copies = 48, chains = 8;
  for (const int blocks : {1, sms}) {
    std::printf("\n--- contention, %d block%s ---\n", blocks, blocks > 1 ? "s (one per SM)" : "");
    run_contention_case<32>(map, 0, src, blocks, 0, chains, reps);
    run_contention_case<64>(map, 0, src, blocks, 0, chains, reps);
    for (const int tensor : {0, 1}) {
      run_contention_case<32>(map, tensor, src, blocks, copies, 0, reps);
      run_contention_case<32>(map, tensor, src, blocks, copies, chains, reps);
      run_contention_case<64>(map, tensor, src, blocks, copies, chains, reps);
    }
  }
  for (const int blocks : {1, sms}) {
    std::printf("\n--- pipeline (the kernel's product loop in miniature), %d block%s ---\n", blocks,
                blocks > 1 ? "s (one per SM)" : "");
    for (const int tensor : {1, 0}) {
      run_pipeline_case<32>(map, tensor, src, blocks, 48, 1, reps);
      run_pipeline_case<32>(map, tensor, src, blocks, 48, 0, reps);
      run_pipeline_case<64>(map, tensor, src, blocks, 48, 0, reps);
      run_pipeline_case<32>(map, tensor, src, blocks, 12, 1, reps);
      run_pipeline_case<32>(map, tensor, src, blocks, 12, 0, reps);
    }
    // an item's 12 stages with a slot each (no request waits for a freed slot), and as 6 stages of 32 KB (one
    // request for two boxes: half the requests) in 4 and 6 slots
    run_pipeline_case<32, 12, 1>(map, 1, src, blocks, 12, 1, reps);
    run_pipeline_case<32, 12, 1>(map, 1, src, blocks, 12, 0, reps);
    run_pipeline_case<32, 4, 2>(map, 1, src, blocks, 6, 1, reps);
    run_pipeline_case<32, 4, 2>(map, 1, src, blocks, 6, 0, reps);
    run_pipeline_case<32, 6, 2>(map, 1, src, blocks, 6, 1, reps);
    run_pipeline_case<32, 6, 2>(map, 1, src, blocks, 6, 0, reps);
    run_pipeline_case<32, 4, 2>(map, 1, src, blocks, 24, 0, reps);
    // larger stages still: 4 of 48 KB (three boxes) and 3 of 64 KB (four boxes) in 2 slots
    run_pipeline_case<32, 2, 3>(map, 1, src, blocks, 4, 1, reps);
    run_pipeline_case<32, 2, 3>(map, 1, src, blocks, 4, 0, reps);
    run_pipeline_case<32, 2, 4>(map, 1, src, blocks, 3, 1, reps);
    run_pipeline_case<32, 2, 4>(map, 1, src, blocks, 3, 0, reps);
    run_pipeline_case<32, 3, 4>(map, 1, src, blocks, 3, 0, reps);
  }
  CK(cudaFree(src));
}

template <int N, int CHAINS>
void run_both_orders(int blocks, int reps) {
  for (int wgs = 1; wgs <= 2; ++wgs) {
    run<N, CHAINS, true>(wgs, blocks, reps);
    run<N, CHAINS, false>(wgs, blocks, reps);
  }
}

}  // namespace

int main(int argc, char** argv) {
  int reps = 20;
  bool contention = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--contention")) {
      contention = true;
      continue;
    }
    if (!std::strcmp(argv[i], "--reps") && i + 1 < argc) {
      reps = std::atoi(argv[++i]);
    } else if (!std::strcmp(argv[i], "--json") && i + 1 < argc) {
      g_json = std::fopen(argv[++i], "w");
      if (!g_json) {
        std::fprintf(stderr, "wgmma_chain_lab: cannot write %s\n", argv[i]);
        return 2;
      }
    } else {
      std::fprintf(stderr, "usage: %s [--reps N] [--json FILE] [--contention]\n", argv[0]);
      return 2;
    }
  }
  cudaDeviceProp prop{};
  CK(cudaGetDeviceProperties(&prop, 0));
  g_gpu = prop.name;
  int clock_khz = 0;
  CK(cudaDeviceGetAttribute(&clock_khz, cudaDevAttrClockRate, 0));
  std::printf("%s, %d SMs, max SM clock %d MHz; %d wgmma per warpgroup from shared memory, best of %d launches\n",
              prop.name, prop.multiProcessorCount, clock_khz / 1000, kMmas, reps);
  if (contention) {
    run_contention(prop.multiProcessorCount, reps);
    std::printf("\n%s (%d failures)\n", g_failures ? "FAILED" : "ALL CHECKS PASSED", g_failures);
    if (g_json) std::fclose(g_json);
    return g_failures ? 1 : 0;
  }
  for (const int blocks : {1, prop.multiProcessorCount}) {
    run_both_orders<32, 1>(blocks, reps);
    run_both_orders<32, 2>(blocks, reps);
    run_both_orders<32, 4>(blocks, reps);
    run_both_orders<64, 1>(blocks, reps);
    run_both_orders<64, 2>(blocks, reps);
  }
  std::printf("\n%s (%d failures)\n", g_failures ? "FAILED" : "ALL CHECKS PASSED", g_failures);
  if (g_json) std::fclose(g_json);
  return g_failures ? 1 : 0;
}
