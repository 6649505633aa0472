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
// Build: part of the CMake build (sm_90a). Run: ./wgmma_chain_lab [--reps N] [--json FILE]
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

using gptbench::cuda_engine::kernels::wgmma_detail::sw128_desc;
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

// out[block][wg] = {cycles, ns}; sums[block * threads + tid] = the sum of the thread's outputs (the check).
template <int N, int CHAINS, bool STAGE_WAITS>
__global__ void __launch_bounds__(256) chain_kernel(long long* timing, float* sums) {
  extern __shared__ unsigned char smem_raw[];
  const std::uint32_t raw = static_cast<std::uint32_t>(__cvta_generic_to_shared(smem_raw));
  const std::uint32_t base = (raw + 1023u) & ~1023u;
  unsigned char* gen = smem_raw + (base - raw);
  const int tid = threadIdx.x, wg = tid / 128;
  // All ones: the swizzle permutes equal values, so the result does not depend on it.
  for (int i = tid; i < (2 * kABytes + kBBytes) / 2; i += blockDim.x) reinterpret_cast<__half*>(gen)[i] = __float2half(1.f);
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
  __syncthreads();
  const std::uint32_t a = base + wg * kABytes, b = base + 2 * kABytes;
  float acc[CHAINS][N / 2];
#pragma unroll
  for (int c = 0; c < CHAINS; ++c)
#pragma unroll
    for (int i = 0; i < N / 2; ++i) {
      acc[c][i] = 0.f;
      // Pinned here, before the chain: left to itself the compiler sinks each accumulator's zeros to just before
      // its first MMA, between asynchronous MMAs, and ptxas then injects a wait for those in flight (C7517).
      asm volatile("" : "+f"(acc[c][i]));
    }
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
  float s = 0.f;
#pragma unroll
  for (int i = 0; i < N / 2; ++i) {
    float v = 0.f;
#pragma unroll
    for (int c = 0; c < CHAINS; ++c) v += acc[c][i];
    s += v;
  }
  sums[blockIdx.x * blockDim.x + tid] = s;
  if (tid % 128 == 0) {
    timing[(blockIdx.x * 2 + wg) * 2] = c1 - c0;
    timing[(blockIdx.x * 2 + wg) * 2 + 1] = static_cast<long long>(t1 - t0);
  }
}

int g_failures = 0;
FILE* g_json = nullptr;
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
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--reps") && i + 1 < argc) {
      reps = std::atoi(argv[++i]);
    } else if (!std::strcmp(argv[i], "--json") && i + 1 < argc) {
      g_json = std::fopen(argv[++i], "w");
      if (!g_json) {
        std::fprintf(stderr, "wgmma_chain_lab: cannot write %s\n", argv[i]);
        return 2;
      }
    } else {
      std::fprintf(stderr, "usage: %s [--reps N] [--json FILE]\n", argv[0]);
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
