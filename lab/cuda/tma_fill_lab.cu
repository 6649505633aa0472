// tma_fill_lab: how fast can every SM get the same activations from L2 into its shared memory — the step that
// starts each product phase of the persistent few-row prefill (layers_persistent.cuh), where every block of a QKV or
// FC phase needs all 128 rows x 768 of the LayerNorm's output (192 KB) — by TMA loads of its own, or split over a
// cluster of CL blocks, each loading 1/CL of the chunks and multicasting them to all CL blocks.
//
// The question behind it (docs/cuda-engine.md, "Not done"): a B1 x S128 layer takes ~28.7 us, of which the products'
// phases spend microseconds before their first MMA; if one SM's intake is the limit, a cluster's multicast cuts
// that time CL-fold and a redesign around clusters pays; if the limit is L2's side, it does not.
//
// Each of the grid's blocks (one per SM) fills its shared memory `reps` times (an mbarrier with the expected bytes,
// the copies, the wait, a cluster / block barrier), timed by %globaltimer; chunks = 0 times the barriers alone.
// Checked: the filled shared memory equals the matrix (a checksum per block, every block). Needs sm_90a.
//
// Phases (no clusters): what the persistent kernel's product phases do — every block rewrites its share of the
// matrix (16-byte pieces, the same values), a grid barrier (release-add, acquire polls on one counter), every block
// loads the whole matrix by TMA, a grid barrier — against the same without the rewrite (the data read again), and
// the barriers (with and without the writes) alone: is fresh data slower to bring into every SM than data read
// again? (The fourteenth session's question: in the persistent kernel FC's phase streams 192 KB into each of 96
// SMs in ~3.5 us, this lab's repeated fill took 1.3.)
// Usage: tma_fill_lab [--json FILE]   Exits non-zero if a check fails.
#include <cuda.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "backends/cuda/gemm_wgmma.cuh"
#include "backends/cuda/layers_persistent.cuh"
#include "lab_common.cuh"

namespace k = gptbench::cuda_engine::kernels;
using namespace lab;

namespace {

// The block's time and its check: a sum of the `bytes` / 4 32-bit words it holds from `base` on (the swizzle moves
// 16-byte pieces within 128-byte rows, which a sum does not see).
__device__ __forceinline__ void report_block(const unsigned char* smem, std::uint32_t base, std::uint32_t bytes,
                                             unsigned long long elapsed, unsigned long long* ns, unsigned* checksum) {
  unsigned s = 0;
  const unsigned* w = reinterpret_cast<const unsigned*>(
      smem + (base - static_cast<std::uint32_t>(__cvta_generic_to_shared(smem))));
  for (std::uint32_t i = threadIdx.x; i < bytes / 4; i += blockDim.x) s += w[i];
  for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
  __shared__ unsigned part[4];
  if (threadIdx.x % 32 == 0) part[threadIdx.x / 32] = s;
  __syncthreads();
  if (threadIdx.x == 0) {
    ns[blockIdx.x] = elapsed;
    checksum[blockIdx.x] = part[0] + part[1] + part[2] + part[3];
  }
}

// chunks of 64 columns x `rows` rows (rows * 128 bytes each) of the [rows, 64 chunks] matrix behind `map`.
template <int CL>
__global__ void __launch_bounds__(128, 1)
    tma_fill(const __grid_constant__ CUtensorMap map, int rows, int chunks, int reps, unsigned long long* ns,
             unsigned* checksum) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  using namespace k::wgmma_detail;
  extern __shared__ __align__(1024) unsigned char fill_smem[];
  __shared__ alignas(8) std::uint64_t bar_storage;
  const std::uint32_t base = (static_cast<std::uint32_t>(__cvta_generic_to_shared(fill_smem)) + 1023u) & ~1023u;
  const std::uint32_t bar = static_cast<std::uint32_t>(__cvta_generic_to_shared(&bar_storage));
  const std::uint32_t chunk_bytes = static_cast<std::uint32_t>(rows) * 128u;
  unsigned rank = 0;
  if constexpr (CL > 1) asm volatile("mov.u32 %0, %%cluster_ctarank;\n" : "=r"(rank));
  if (threadIdx.x == 0) {
    mbar_init(bar, 1);
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  auto sync_all = [] {
    if constexpr (CL > 1) cluster_sync();
    else __syncthreads();
  };
  sync_all();
  const unsigned long long t0 = globaltimer_ns();
  for (int rep = 0; rep < reps; ++rep) {
    if (threadIdx.x == 0) {
      mbar_expect_tx(bar, chunks * chunk_bytes);
      for (int c = static_cast<int>(rank); c < chunks; c += CL) {
        if constexpr (CL > 1) {
          asm volatile(
              "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes.multicast::cluster"
              " [%0], [%1, {%2, %3}], [%4], %5;\n" ::"r"(base + c * chunk_bytes),
              "l"(reinterpret_cast<std::uint64_t>(&map)), "r"(c * 64), "r"(0), "r"(bar),
              "h"(static_cast<std::uint16_t>((1u << CL) - 1u))
              : "memory");
        } else {
          tma_load_2d(base + c * chunk_bytes, &map, c * 64, 0, bar);
        }
      }
    }
    mbar_wait(bar, rep & 1);
    sync_all();  // no peer refills this block's memory (or arrives on its barrier) before every block is done
  }
  const unsigned long long t1 = globaltimer_ns();
  report_block(fill_smem, base, chunks * chunk_bytes, t1 - t0, ns, checksum);
#else
  __trap();
#endif
}

// The persistent kernel's own grid barrier (layers_persistent.cuh): a release-add, acquire polls on one counter.
__device__ __forceinline__ void grid_barrier(unsigned* counter, unsigned index) {
  __syncthreads();
  if (threadIdx.x == 0) {
    k::persistent_detail::red_release_add(counter, 1u);
    k::persistent_detail::wait_passed(counter, index);
  }
  __syncthreads();
}

// mode: 0 barrier, load, barrier (data read again); 1 rewrite, barrier, load, barrier (fresh data); 2 rewrite and
// the barriers, no load; 3 the barriers alone; 4 as 1, but through a ring of 8 chunk slots as the persistent
// kernel's activation ring (chunk c + 8 requested once chunk c has arrived: its consumer needs no time here). `pristine`: the matrix's values, copied over it piece by piece.
__global__ void __launch_bounds__(128, 1)
    tma_fill_phases(const __grid_constant__ CUtensorMap map, uint4* matrix, const uint4* pristine, int pieces,
                    int rows, int chunks, int reps, int mode, unsigned* counter, unsigned long long* ns,
                    unsigned* checksum) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  using namespace k::wgmma_detail;
  extern __shared__ __align__(1024) unsigned char fill_smem[];
  __shared__ alignas(8) std::uint64_t bar_storage, ring_storage[8];
  const std::uint32_t base = (static_cast<std::uint32_t>(__cvta_generic_to_shared(fill_smem)) + 1023u) & ~1023u;
  const std::uint32_t bar = static_cast<std::uint32_t>(__cvta_generic_to_shared(&bar_storage));
  const std::uint32_t ring = static_cast<std::uint32_t>(__cvta_generic_to_shared(ring_storage));
  const std::uint32_t chunk_bytes = static_cast<std::uint32_t>(rows) * 128u;
  if (threadIdx.x == 0) {
    mbar_init(bar, 1);
    for (int i = 0; i < 8; ++i) mbar_init(ring + 8u * i, 1);
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  int ring_uses[8] = {0, 0, 0, 0, 0, 0, 0, 0};  // completed phases of each slot's barrier (thread 0)
  unsigned index = 0;
  grid_barrier(counter, ++index);
  const unsigned long long t0 = globaltimer_ns();
  const bool write = mode == 1 || mode == 2 || mode == 4, load = mode == 0 || mode == 1;
  int fills = 0;
  for (int rep = 0; rep < reps; ++rep) {
    if (write) {
      for (int i = blockIdx.x + gridDim.x * threadIdx.x; i < pieces; i += gridDim.x * blockDim.x) matrix[i] = pristine[i];
      asm volatile("fence.proxy.async.global;\n" ::: "memory");  // TMA reads what these stores wrote
    }
    grid_barrier(counter, ++index);
    if (load) {
      if (threadIdx.x == 0) {
        mbar_expect_tx(bar, chunks * chunk_bytes);
        for (int c = 0; c < chunks; ++c) tma_load_2d(base + c * chunk_bytes, &map, c * 64, 0, bar);
      }
      mbar_wait(bar, fills++ & 1);
    }
    if (mode == 4 && threadIdx.x == 0) {  // chunk c into slot c % 8 once chunk c - 8 has arrived
      for (int c = 0; c < chunks; ++c) {
        const int slot = c % 8;
        if (c >= 8) mbar_wait(ring + 8u * slot, ring_uses[slot]++ & 1);
        mbar_expect_tx(ring + 8u * slot, chunk_bytes);
        tma_load_2d(base + slot * chunk_bytes, &map, c * 64, 0, ring + 8u * slot);
      }
      for (int c = chunks > 8 ? chunks - 8 : 0; c < chunks; ++c) mbar_wait(ring + 8u * (c % 8), ring_uses[c % 8]++ & 1);
    }
    grid_barrier(counter, ++index);
  }
  const unsigned long long t1 = globaltimer_ns();
  report_block(fill_smem, base, load ? chunks * chunk_bytes : 0u, t1 - t0, ns, checksum);
#else
  __trap();
#endif
}

template <int CL>
cudaError_t launch_fill(const CUtensorMap& map, int rows, int chunks, int reps, int grid, unsigned long long* ns,
                        unsigned* checksum) {
  const int smem = 12 * rows * 128 + 1024;  // room for 12 chunks of `rows` rows (+ alignment slack)
  auto kernel = tma_fill<CL>;
  cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
  if (e != cudaSuccess) return e;
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = dim3(grid);
  cfg.blockDim = dim3(128);
  cfg.dynamicSmemBytes = smem;
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeClusterDimension;
  attr[0].val.clusterDim.x = CL;
  attr[0].val.clusterDim.y = 1;
  attr[0].val.clusterDim.z = 1;
  cfg.attrs = attr;
  cfg.numAttrs = 1;
  return cudaLaunchKernelEx(&cfg, kernel, map, rows, chunks, reps, ns, checksum);
}

}  // namespace

int main(int argc, char** argv) {
  FILE* json = nullptr;
  int iters = 0;
  for (int i = 1; i < argc; ++i) {
    const int c = common_option(argc, argv, i, json, iters);
    if (c < 0) return 2;
    if (c) continue;
    std::fprintf(stderr, "usage: %s [--json FILE]\n", argv[0]);
    return 2;
  }
  cudaDeviceProp prop{};
  if (!sm90_device("tma_fill_lab", prop)) return 0;
  const int sms = prop.multiProcessorCount;
  std::printf("tma_fill_lab on %s (%d SMs)\n", prop.name, sms);
  // The activations: 128 rows x 768 (12 chunks of 64 columns), fp16, random.
  const int rows = 128, cols = 768;
  std::vector<__half> h(static_cast<size_t>(rows) * cols);
  Rng rng(7);
  for (auto& v : h) v = __float2half(rng.uni());
  __half* d;
  CK(cudaMalloc(&d, h.size() * sizeof(__half)));
  CK(cudaMemcpy(d, h.data(), h.size() * sizeof(__half), cudaMemcpyHostToDevice));
  CUtensorMap map;
  if (!k::wgmma_tensor_map(&map, d, rows, cols, rows)) {
    std::printf("tensor map refused\n");
    return 2;
  }
  unsigned long long* dns;
  unsigned* dsum;
  CK(cudaMalloc(&dns, sms * sizeof(unsigned long long)));
  CK(cudaMalloc(&dsum, sms * sizeof(unsigned)));
  int failures = 0;
  const int reps = 200;
  // the expected checksum: the words of the first `chunks` chunks (each chunk = 64 columns of every row)
  auto expected_checksum = [&](int chunks) {
    unsigned expect = 0;
    for (int r = 0; r < rows; ++r)
      for (int c = 0; c < chunks * 64; c += 2) {
        unsigned lo, hi;
        std::memcpy(&lo, &h[static_cast<size_t>(r) * cols + c], 2);
        std::memcpy(&hi, &h[static_cast<size_t>(r) * cols + c + 1], 2);
        expect += (lo & 0xffffu) | (hi << 16);
      }
    return expect;
  };
  for (int chunks : {0, 3, 6, 12}) {
    const unsigned expect = expected_checksum(chunks);
    for (int cl : {1, 2, 4}) {
      const int grid = sms / cl * cl;
      cudaError_t e = cl == 1   ? launch_fill<1>(map, rows, chunks, reps, grid, dns, dsum)
                      : cl == 2 ? launch_fill<2>(map, rows, chunks, reps, grid, dns, dsum)
                                : launch_fill<4>(map, rows, chunks, reps, grid, dns, dsum);
      if (e == cudaSuccess) e = cudaDeviceSynchronize();
      if (e != cudaSuccess) {
        std::printf("chunks %2d CL %d: launch failed: %s\n", chunks, cl, cudaGetErrorString(e));
        (void)cudaGetLastError();
        ++failures;
        continue;
      }
      std::vector<unsigned long long> ns(grid);
      std::vector<unsigned> sum(grid);
      CK(cudaMemcpy(ns.data(), dns, grid * sizeof(unsigned long long), cudaMemcpyDeviceToHost));
      CK(cudaMemcpy(sum.data(), dsum, grid * sizeof(unsigned), cudaMemcpyDeviceToHost));
      int bad = 0;
      for (int b = 0; b < grid; ++b) bad += sum[b] != expect;
      failures += bad > 0;
      std::sort(ns.begin(), ns.end());
      const double med = ns[grid / 2] / 1000.0 / reps, mx = ns[grid - 1] / 1000.0 / reps;
      const double kb = chunks * rows * 128 / 1024.0;
      std::printf("%6.0f KB into each of %3d blocks, clusters of %d: %6.3f us a fill (median block), %6.3f (slowest)"
                  "%s  -> %6.1f GB/s into each SM%s\n",
                  kb, grid, cl, med, mx, chunks ? "" : " (barriers only)", chunks ? kb * 1.024 / med : 0.0,
                  bad ? "  CHECK FAILED" : "");
      if (json)
        std::fprintf(json,
                     "{\"lab\":\"tma_fill\",\"gpu\":\"%s\",\"kb\":%.0f,\"blocks\":%d,\"cluster\":%d,\"us_median\":%.4f,"
                     "\"us_max\":%.4f,\"pass\":%s}\n",
                     prop.name, kb, grid, cl, med, mx, bad ? "false" : "true");
    }
  }
  // Phases: fresh data against data read again, every block in one barrier-separated phase (one block per SM).
  {
    __half* pristine;
    unsigned* counter;
    CK(cudaMalloc(&pristine, h.size() * sizeof(__half)));
    CK(cudaMemcpy(pristine, h.data(), h.size() * sizeof(__half), cudaMemcpyHostToDevice));
    CK(cudaMalloc(&counter, sizeof(unsigned)));
    const int smem = 12 * rows * 128 + 1024, pieces = static_cast<int>(h.size() * sizeof(__half) / 16);
    CK(cudaFuncSetAttribute(tma_fill_phases, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
    static const char* kModes[] = {"read again", "fresh", "rewrite + barriers, no load", "barriers alone",
                                   "fresh, through 8 slots"};
    for (int chunks : {12, 6, 3}) {
      const unsigned expect = expected_checksum(chunks);
      double us[5] = {};
      for (int mode = 0; mode < 5; ++mode) {
        CK(cudaMemset(counter, 0, sizeof(unsigned)));
        tma_fill_phases<<<sms, 128, smem>>>(map, reinterpret_cast<uint4*>(d), reinterpret_cast<const uint4*>(pristine),
                                            pieces, rows, chunks, reps, mode, counter, dns, dsum);
        CK(cudaGetLastError());
        CK(cudaDeviceSynchronize());
        std::vector<unsigned long long> ns(sms);
        std::vector<unsigned> sum(sms);
        CK(cudaMemcpy(ns.data(), dns, sms * sizeof(unsigned long long), cudaMemcpyDeviceToHost));
        CK(cudaMemcpy(sum.data(), dsum, sms * sizeof(unsigned), cudaMemcpyDeviceToHost));
        int bad = 0;
        if (mode <= 1)
          for (int b = 0; b < sms; ++b) bad += sum[b] != expect;
        failures += bad > 0;
        std::sort(ns.begin(), ns.end());
        us[mode] = ns[sms / 2] / 1000.0 / reps;
        std::printf("phases: %4d KB into each of %3d blocks, %-28s %6.3f us a rep (median block)%s\n",
                    chunks * rows * 128 / 1024, sms, kModes[mode], us[mode], bad ? "  CHECK FAILED" : "");
        if (json)
          std::fprintf(json, "{\"lab\":\"tma_fill_phases\",\"gpu\":\"%s\",\"kb\":%d,\"blocks\":%d,\"mode\":\"%s\","
                             "\"us_median\":%.4f,\"pass\":%s}\n",
                       prop.name, chunks * rows * 128 / 1024, sms, kModes[mode], us[mode], bad ? "false" : "true");
      }
      std::printf("phases: %4d KB: the load costs %.3f us of fresh data, %.3f us of data read again, %.3f us of fresh "
                  "data through 8 slots\n",
                  chunks * rows * 128 / 1024, us[1] - us[2], us[0] - us[3], us[4] - us[2]);
    }
    cudaFree(pristine);
    cudaFree(counter);
  }
  cudaFree(d);
  cudaFree(dns);
  cudaFree(dsum);
  if (json) std::fclose(json);
  std::printf("%s (%d failure%s)\n", failures ? "FAILED" : "ALL PASS", failures, failures == 1 ? "" : "s");
  return failures ? 1 : 0;
}
