// Kernel lab: the two costs that decide whether a few-row prefill built around ROW GROUPS could reach issue 7's
// B1 x S128 <= 0.25 ms. NOT USED BY THE ENGINE.
//
// The persistent prefill kernel (layers_persistent.cuh) gives every block all 128 rows and 1/132 of each product's
// weight columns: every weight byte is read once, but each LayerNorm and split-k sum needs every block's output, so
// a layer is 7 phases and 6 grid barriers (~1.05 us each) and takes 26-27 us on an H200 (docs/cuda-engine.md, "Not
// done"). The structure left to try: R row groups, each a thread-block cluster of G = 128 / R blocks that carries
// its 128 / R rows through a whole layer. Inside a group every block holds 1/G of each product's output columns for
// the group's rows, and the LayerNorm statistics and each product's input rows are exchanged through distributed
// shared memory and a cluster barrier; no k is split, so no partials; only attention waits on other groups (for
// their keys and values, by flags). The price: every group streams the whole layer's weights, R x 14.2 MB a layer
// from L2 instead of 14.2 MB, and each block takes in R times the weight bytes it does now.
//
// 1. Streaming (--stream): R groups of G blocks (one block per SM), each block its 1/G slice of every layer's
//    weights — 12 layers of GPT-2 124M's shape, 14,155,776 bytes a layer, 170 MB in all, more than L2 holds —
//    through a ring of bulk copies (cp.async.bulk) into shared memory, a producer thread keeping `stages` copies in
//    flight, a consumer warpgroup freeing each stage (with --consumers 2, two warpgroups of wgmma consumers taking
//    the stages in turn):
//    - copy: the consumers read every byte of a stage (a checksum: the uint32 sum of its words);
//    - mma:  the consumers run wgmma m64nNk16 on every 8 KB of a stage — 64 weight rows x 64 k as the A operand
//            against N activation rows of ones as B (the group's 128 / R rows rounded up to 8) — the products one
//            block of a group would run;
//    cold: the L2 flushed (256 MB written) before each launch, every layer's weights its own; hot: every layer reads
//    layer 0's weights, which stay in L2. R = 1 is what the persistent kernel streams. A group is a cluster where
//    the design needs one (distributed shared memory) and the card holds them all at once: an H200 holds 7 clusters
//    of 16 and 14 of 8 (printed), so R = 7 x 16 and 14 x 8 as clusters, R = 8 x 16 and 16 x 8 without. Reported:
//    us a layer (the slowest block's end minus the first block's start, over 12 layers; median of --reps launches)
//    and the bytes into SMs a second; the persistent kernel's layer takes 26-27 us.
// 2. The exchange (--exchange): each block of a cluster of CL sends P bytes to every block of the cluster, two ways:
//    st.shared::cluster (16 bytes a thread at a time) and then a cluster barrier (arrive.release, wait.acquire); or
//    one bulk copy a receiver from a send buffer, completing on the receiver's mbarrier (no cluster barrier). The
//    step between a group's phases (P = 1,536: 16 rows x 48 columns of fp16, one block's share of a 768-wide input;
//    6,144: its share of the 3,072-wide MLP input), against the persistent kernel's grid barrier (tma_fill_lab,
//    "barriers alone": ~0.94-1.05 us).
//
// Checks: the checksum of every block against the host's sum of its slices; the sum of a block's wgmma outputs
// against N x the host's sum of the fp16 weights it consumed (exact: weights k / 65,536 below 1/64, each stage's
// products from zero, their sums added in double); without copies, wgmma on a zeroed ring gives 0;
// every exchange's words as its writer wrote them.
// Usage: row_groups_lab [--reps N] [--stage-kb K] [--stages S] [--consumers 1|2] [--stream | --exchange]
//        [--json FILE]
// Exits non-zero if a check fails. Needs sm_90a (wgmma, clusters).
#include <cuda.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "backends/cuda/gemm_wgmma.cuh"
#include "lab_common.cuh"

namespace {

using gptbench::cuda_engine::kernels::wgmma_detail::cluster_sync;
using gptbench::cuda_engine::kernels::wgmma_detail::mbar_arrive;
using gptbench::cuda_engine::kernels::wgmma_detail::mbar_expect_tx;
using gptbench::cuda_engine::kernels::wgmma_detail::mbar_init;
using gptbench::cuda_engine::kernels::wgmma_detail::mbar_wait;
using gptbench::cuda_engine::kernels::wgmma_detail::sw128_desc;
using lab::globaltimer_ns;

constexpr int kLayers = 12;
constexpr unsigned long long kLayerBytes = 2ull * (768 * 2304 + 768 * 768 + 2 * 768 * 3072);  // GPT-2 124M, fp16
constexpr int kPieceBytes = 4096;  // the host's sums are kept per piece; every slice is whole pieces
constexpr int kTileBytes = 8192;   // one wgmma A operand: 64 rows x 64 k of fp16, 128-byte swizzle
constexpr int kMaxStages = 32;

__device__ __forceinline__ std::uint32_t smem_addr(const void* p) {
  return static_cast<std::uint32_t>(__cvta_generic_to_shared(p));
}

// wgmma m64nNk16, fp16 in, float accumulators, A and B K-major from shared memory. N = 32 and 64 are the engine's
// (gemm_wgmma.cuh); N = 8, 16 and 24 only this lab's.
template <int N>
__device__ __forceinline__ void wgmma_rows(float (&d)[N / 2], std::uint64_t a, std::uint64_t b, int accumulate) {
  if constexpr (N == 8) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %6, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n8k16.f32.f16.f16 {%0, %1, %2, %3}, %4, %5, p, 1, 1, 0, 0;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "l"(a), "l"(b), "r"(accumulate));
  } else if constexpr (N == 16) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %10, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n16k16.f32.f16.f16 "
        "{%0, %1, %2, %3, %4, %5, %6, %7}, %8, %9, p, 1, 1, 0, 0;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7])
        : "l"(a), "l"(b), "r"(accumulate));
  } else if constexpr (N == 24) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %14, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n24k16.f32.f16.f16 "
        "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11}, %12, %13, p, 1, 1, 0, 0;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
          "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11])
        : "l"(a), "l"(b), "r"(accumulate));
  } else {
    gptbench::cuda_engine::kernels::wgmma_detail::wgmma_k16<__half, N>(d, a, b, accumulate);
  }
}

struct StreamArgs {
  const unsigned char* weights;
  unsigned long long layer_stride;  // kLayerBytes: each layer its own weights; 0: every layer reads layer 0's (hot)
  int group_blocks, stage_bytes, stages;
  int copy;                         // 0: no copies, the producer only arrives (the wgmma consumers' time alone)
  unsigned* start;                  // arrivals; every block starts its clock once all have arrived
  unsigned long long* t0;           // per block: start and end (%globaltimer, ns)
  unsigned long long* t1;
  unsigned* words;                  // per block: the uint32 sum of the words it read (N = 0)
  double* sums;                     // per block x 256 consumer threads: the sum of its wgmma outputs (N > 0)
};

// Block b streams slice b % G of every layer (a group = G consecutive blocks = a cluster where launched as one).
// Warp 0's lane 0 is the producer; CONSUMERS warpgroups (threads 128 on) take the stages in turn and consume them:
// N = 0 reads every word, N > 0 runs wgmma m64nNk16 on each of the stage's TILES 8 KB tiles with N rows of ones (at
// ring + stages x stage_bytes) as B (a whole number of stages a slice: the tiles unrolled, since a wgmma in a loop of
// run-time length is serialised, C7520).
template <int N, int TILES, int CONSUMERS>
__global__ void __launch_bounds__(128 * (1 + CONSUMERS), 1) stream_slices(const StreamArgs p) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  extern __shared__ unsigned char smem_raw[];
  __shared__ alignas(8) std::uint64_t full_bar[kMaxStages], empty_bar[kMaxStages];
  __shared__ unsigned block_words;
  const std::uint32_t raw = smem_addr(smem_raw), ring = (raw + 1023u) & ~1023u;
  unsigned char* const ring_gen = smem_raw + (ring - raw);
  const std::uint32_t ones = ring + static_cast<std::uint32_t>(p.stages * p.stage_bytes);
  const int tid = threadIdx.x;
  const unsigned long long slice = kLayerBytes / p.group_blocks;
  const int slot = static_cast<int>(blockIdx.x) % p.group_blocks;
  const int chunks_per_layer = static_cast<int>((slice + p.stage_bytes - 1) / p.stage_bytes);
  const int total = kLayers * chunks_per_layer;
  auto chunk_bytes = [&](int i) {
    const unsigned long long off = static_cast<unsigned long long>(i % chunks_per_layer) * p.stage_bytes;
    const unsigned long long left = slice - off;
    return static_cast<std::uint32_t>(left < static_cast<unsigned long long>(p.stage_bytes) ? left : p.stage_bytes);
  };
  if (tid == 0) {
    for (int s = 0; s < p.stages; ++s) {
      mbar_init(smem_addr(&full_bar[s]), 1);
      mbar_init(smem_addr(&empty_bar[s]), 1);
    }
    block_words = 0;
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  if (!p.copy)  // the consumers multiply zeros: their sums must come out 0
    for (int i = tid; i < p.stages * p.stage_bytes / 16; i += blockDim.x)
      reinterpret_cast<uint4*>(ring_gen)[i] = make_uint4(0u, 0u, 0u, 0u);
  if constexpr (N > 0) {
    __half* b = reinterpret_cast<__half*>(ring_gen + p.stages * p.stage_bytes);
    for (int i = tid; i < N * 64; i += blockDim.x) b[i] = __float2half(1.f);
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");  // the wgmma reads what these stores wrote
  }
  __syncthreads();
  if (tid == 0) {  // all blocks resident (one per SM) before any clock starts
    atomicAdd(p.start, 1u);
    while (*reinterpret_cast<volatile unsigned*>(p.start) < gridDim.x) {
    }
  }
  __syncthreads();
  const unsigned long long t0 = globaltimer_ns();
  if (tid == 0) {
    const unsigned char* src0 = p.weights + static_cast<unsigned long long>(slot) * slice;
    for (int i = 0; i < total; ++i) {
      const int s = i % p.stages, use = i / p.stages;
      const unsigned char* src = src0 + static_cast<unsigned long long>(i / chunks_per_layer) * p.layer_stride +
                                 static_cast<unsigned long long>(i % chunks_per_layer) * p.stage_bytes;
      const std::uint32_t bytes = chunk_bytes(i), full = smem_addr(&full_bar[s]);
      if (use > 0) mbar_wait(smem_addr(&empty_bar[s]), (use - 1) & 1);
      if (!p.copy) {
        mbar_arrive(full);
        continue;
      }
      mbar_expect_tx(full, bytes);
      asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n" ::"r"(
                       ring + static_cast<std::uint32_t>(s * p.stage_bytes)),
                   "l"(src), "r"(bytes), "r"(full)
                   : "memory");
    }
  } else if (tid >= 128) {
    const int ct = tid % 128, cw = tid / 128 - 1;  // consumer warpgroup cw takes stages cw, cw + CONSUMERS, ...
    unsigned words = 0;
    // Each stage's products start from zero (scale-d 0 on its first wgmma) and their sum is added in double after
    // the stage: exact (weights are multiples of 2^-16 below 1/64, a stage's sums stay far inside float's 24 bits),
    // so a tile missed or read twice shows.
    float acc[N > 0 ? N / 2 : 1];
    double products = 0;
    for (int i = cw; i < total; i += CONSUMERS) {
      const int s = i % p.stages, use = i / p.stages;
      const std::uint32_t bytes = chunk_bytes(i);
      mbar_wait(smem_addr(&full_bar[s]), use & 1);
      if constexpr (N > 0) {
        const std::uint32_t stage = ring + static_cast<std::uint32_t>(s * p.stage_bytes);
        asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#pragma unroll
        for (int t = 0; t < TILES; ++t) {
#pragma unroll
          for (int k16 = 0; k16 < 4; ++k16)
            wgmma_rows<N>(acc, sw128_desc(stage + t * kTileBytes + k16 * 32), sw128_desc(ones + k16 * 32),
                          t + k16 > 0);
        }
        asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
        asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
        float stage_sum = 0.f;
#pragma unroll
        for (int j = 0; j < N / 2; ++j) stage_sum += acc[j];
        products += stage_sum;
      } else {
        const uint4* v = reinterpret_cast<const uint4*>(ring_gen + s * p.stage_bytes);
        for (std::uint32_t j = ct; j < bytes / 16; j += 128) {
          const uint4 w = v[j];
          words += w.x + w.y + w.z + w.w;
        }
      }
      asm volatile("bar.sync %0, 128;\n" ::"r"(1 + cw) : "memory");  // the warpgroup is done with the stage
      if (ct == 0) mbar_arrive(smem_addr(&empty_bar[s]));
    }
    if constexpr (N > 0) {
      p.sums[blockIdx.x * 256 + cw * 128 + ct] = products;
    } else {
      atomicAdd(&block_words, words);
    }
  }
  __syncthreads();
  if (tid == 0) {
    p.t0[blockIdx.x] = t0;
    p.t1[blockIdx.x] = globaltimer_ns();
    p.words[blockIdx.x] = block_words;
  }
#else
  __trap();
#endif
}

// Each block of a cluster of CL writes `part_bytes` (a multiple of 16) into every block's shared memory — its own
// part of a gather buffer of CL parts, two buffers used in turn — then a cluster barrier; after it every block checks
// the first and last word of every part of the buffer just filled. The two buffers let one barrier an iteration
// suffice: a writer of iteration it + 1 fills the other buffer, and it cannot reach iteration it + 2 (this buffer
// again) before every block has arrived at iteration it + 1's barrier, after its checks of this one.
__device__ __forceinline__ unsigned exchange_word(int it, int rank, std::uint32_t offset) {
  return static_cast<unsigned>(it) * 7919u + static_cast<unsigned>(rank) * 131u + offset;
}
__device__ __forceinline__ void cluster_rank_and_size(unsigned& rank, unsigned& size) {
  asm volatile("mov.u32 %0, %%cluster_ctarank;\n" : "=r"(rank));
  asm volatile("mov.u32 %0, %%cluster_nctarank;\n" : "=r"(size));
}
// The shared-memory address `local` of this block as seen in the cluster's block `rank`.
__device__ __forceinline__ std::uint32_t cluster_address(std::uint32_t local, unsigned rank) {
  std::uint32_t remote;
  asm volatile("mapa.shared::cluster.u32 %0, %1, %2;\n" : "=r"(remote) : "r"(local), "r"(rank));
  return remote;
}
// After iteration `it`: threads q < CL check the first and last word of part q of the gather buffer just filled;
// the number of wrong words.
__device__ __forceinline__ unsigned bad_exchange_words(const unsigned char* buffer, int part_bytes, unsigned cl,
                                                       int it) {
  if (part_bytes <= 0 || threadIdx.x >= cl) return 0;
  const int q = static_cast<int>(threadIdx.x);
  const unsigned* part = reinterpret_cast<const unsigned*>(buffer + q * part_bytes);
  const std::uint32_t last = static_cast<std::uint32_t>(part_bytes) - 16;
  return (part[0] != exchange_word(it, q, 0)) + (part[last / 4 + 3] != exchange_word(it, q, last) + 3);
}
__global__ void __launch_bounds__(128, 1) cluster_exchange(int part_bytes, int iters, unsigned long long* ns,
                                                           unsigned* errors) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  extern __shared__ __align__(16) unsigned char gather[];
  unsigned rank, cl;
  cluster_rank_and_size(rank, cl);
  const std::uint32_t buffer_bytes = cl * static_cast<std::uint32_t>(part_bytes);
  const std::uint32_t local = smem_addr(gather);
  unsigned bad = 0;
  cluster_sync();
  const unsigned long long t0 = globaltimer_ns();
  for (int it = 0; it < iters; ++it) {
    const std::uint32_t buf = (it & 1) * buffer_bytes + rank * part_bytes;
    for (unsigned q = 0; q < cl; ++q) {
      const std::uint32_t remote = cluster_address(local + buf, q);
      for (std::uint32_t off = threadIdx.x * 16; off < static_cast<std::uint32_t>(part_bytes); off += 128 * 16) {
        const unsigned w = exchange_word(it, static_cast<int>(rank), off);
        asm volatile("st.shared::cluster.v4.u32 [%0], {%1, %2, %3, %4};\n" ::"r"(remote + off), "r"(w), "r"(w + 1),
                     "r"(w + 2), "r"(w + 3)
                     : "memory");
      }
    }
    cluster_sync();
    bad += bad_exchange_words(gather + (it & 1) * buffer_bytes, part_bytes, cl, it);
  }
  const unsigned long long t1 = globaltimer_ns();
  if (bad) atomicAdd(errors, bad);
  if (threadIdx.x == 0) ns[blockIdx.x] = t1 - t0;
#else
  __trap();
#endif
}

// The same exchange by the copy engine: each block writes its P bytes for iteration `it` into a send buffer of its
// own and its thread 0 sends them to every block of the cluster with one bulk copy each (cp.async.bulk
// shared::cluster.shared::cta), completing on the receiver's mbarrier of that buffer; a block waits on its own
// mbarrier for the CL x P bytes (arrive.expect_tx), with no cluster barrier. Two gather buffers and two mbarriers
// used in turn: bytes for iteration it + 2 cannot arrive before the receiver's phase for it completed, since their
// sender must first have received the receiver's bytes for it + 1, sent after the receiver's wait and checks of it.
__global__ void __launch_bounds__(128, 1) cluster_exchange_bulk(int part_bytes, int iters, unsigned long long* ns,
                                                                unsigned* errors) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  extern __shared__ __align__(128) unsigned char xbuf[];  // send buffer (P), then two gather buffers (CL x P each)
  __shared__ alignas(8) std::uint64_t bars[2];
  unsigned rank, cl;
  cluster_rank_and_size(rank, cl);
  const std::uint32_t p_bytes = static_cast<std::uint32_t>(part_bytes), buffer_bytes = cl * p_bytes;
  const std::uint32_t send = smem_addr(xbuf), gather0 = send + p_bytes;
  if (threadIdx.x == 0) {
    mbar_init(smem_addr(&bars[0]), 1);
    mbar_init(smem_addr(&bars[1]), 1);
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  cluster_sync();  // every block's barriers initialised before any copy completes on them
  unsigned bad = 0;
  const unsigned long long t0 = globaltimer_ns();
  for (int it = 0; it < iters; ++it) {
    if (threadIdx.x == 0) asm volatile("cp.async.bulk.wait_group.read 0;\n" ::: "memory");  // last sends have read
    __syncthreads();
    for (std::uint32_t off = threadIdx.x * 16; off < p_bytes; off += 128 * 16) {
      const unsigned w = exchange_word(it, static_cast<int>(rank), off);
      *reinterpret_cast<uint4*>(xbuf + off) = make_uint4(w, w + 1, w + 2, w + 3);
    }
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");  // the copy engine reads what these stores wrote
    __syncthreads();
    const std::uint32_t bar = smem_addr(&bars[it & 1]), dst = gather0 + (it & 1) * buffer_bytes + rank * p_bytes;
    if (threadIdx.x == 0) {
      mbar_expect_tx(bar, buffer_bytes);
      for (unsigned q = 0; q < cl; ++q) {
        asm volatile(
            "cp.async.bulk.shared::cluster.shared::cta.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n" ::"r"(
                cluster_address(dst, q)),
            "r"(send), "r"(p_bytes), "r"(cluster_address(bar, q))
            : "memory");
      }
      asm volatile("cp.async.bulk.commit_group;\n" ::: "memory");
    }
    mbar_wait(bar, (it >> 1) & 1);
    bad += bad_exchange_words(xbuf + p_bytes + (it & 1) * buffer_bytes, part_bytes, cl, it);
  }
  const unsigned long long t1 = globaltimer_ns();
  if (threadIdx.x == 0) asm volatile("cp.async.bulk.wait_group 0;\n" ::: "memory");
  cluster_sync();  // no block leaves while a peer's copies may still write into it
  if (bad) atomicAdd(errors, bad);
  if (threadIdx.x == 0) ns[blockIdx.x] = t1 - t0;
#else
  __trap();
#endif
}

// ---- host ----

struct Options {
  // 32 KB stages: 76 against 47 GB/s into each SM at 16 KB (session 27, call 1)
  int reps = 5, stage_kb = 32, stages = 6, consumers = 1;
  bool stream = true, exchange = true;
  std::FILE* json = nullptr;
};

// The weights: fp16 values k / 65,536 with k = hash(i) mod 1,024, in [0, 1/64) and exact in fp16; the host's sums per
// 4 KB piece (uint32 sum of the words, double sum of the values).
struct Weights {
  unsigned char* device = nullptr;
  std::vector<unsigned> piece_words;
  std::vector<double> piece_values;
};
Weights make_weights() {
  Weights w;
  const std::size_t halves = kLayers * kLayerBytes / 2, pieces = kLayers * kLayerBytes / kPieceBytes;
  std::vector<std::uint16_t> h(halves);
  for (std::size_t i = 0; i < halves; ++i) {
    std::uint32_t x = static_cast<std::uint32_t>(i) * 0x9E3779B1u;
    x ^= x >> 15;
    x *= 0x85EBCA77u;
    x ^= x >> 13;
    const __half v = __float2half(static_cast<float>(x & 1023u) / 65536.f);
    std::memcpy(&h[i], &v, 2);
  }
  w.piece_words.assign(pieces, 0u);
  w.piece_values.assign(pieces, 0.0);
  const std::size_t per_piece = kPieceBytes / 2;
  for (std::size_t p = 0; p < pieces; ++p) {
    unsigned words = 0;
    double values = 0;
    for (std::size_t j = 0; j < per_piece; j += 2) {
      const std::uint16_t lo = h[p * per_piece + j], hi = h[p * per_piece + j + 1];
      words += static_cast<unsigned>(lo) | (static_cast<unsigned>(hi) << 16);
      __half a, b;
      std::memcpy(&a, &lo, 2);
      std::memcpy(&b, &hi, 2);
      values += static_cast<double>(__half2float(a)) + static_cast<double>(__half2float(b));
    }
    w.piece_words[p] = words;
    w.piece_values[p] = values;
  }
  CK(cudaMalloc(&w.device, halves * 2));
  CK(cudaMemcpy(w.device, h.data(), halves * 2, cudaMemcpyHostToDevice));
  return w;
}

struct StreamCase {
  int groups, group_blocks;  // R groups of G blocks: a grid of R x G
  bool cluster;              // each group launched as a cluster of G
  bool hot;                  // every layer reads layer 0's weights
  bool mma;                  // the consumers run wgmma m64nNk16, N = the group's rows rounded up to 8
  bool copy = true;          // false: no copies (wgmma on zeros: the products' time alone)
};

cudaLaunchConfig_t launch_config(int grid, int threads, int smem, int cluster, cudaLaunchAttribute* attr) {
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = dim3(grid);
  cfg.blockDim = dim3(threads);
  cfg.dynamicSmemBytes = smem;
  attr[0].id = cudaLaunchAttributeClusterDimension;
  attr[0].val.clusterDim.x = cluster;
  attr[0].val.clusterDim.y = 1;
  attr[0].val.clusterDim.z = 1;
  cfg.attrs = attr;
  cfg.numAttrs = 1;
  return cfg;
}

template <typename Kernel>
cudaError_t prepare(Kernel kernel, int smem, int cluster) {
  cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
  if (e == cudaSuccess && cluster > 8)
    e = cudaFuncSetAttribute(kernel, cudaFuncAttributeNonPortableClusterSizeAllowed, 1);
  return e;
}

template <int N, int TILES = 1, int CONSUMERS = 1>
cudaError_t launch_stream(const StreamArgs& a, int grid, int smem, int cluster, int* max_clusters) {
  auto kernel = stream_slices<N, TILES, CONSUMERS>;
  cudaError_t e = prepare(kernel, smem, cluster);
  if (e != cudaSuccess) return e;
  cudaLaunchAttribute attr[1];
  const cudaLaunchConfig_t cfg = launch_config(grid, 128 * (1 + CONSUMERS), smem, cluster, attr);
  // Every block must be resident at once (the start waits for all): refuse a cluster shape the card cannot hold.
  e = cudaOccupancyMaxActiveClusters(max_clusters, kernel, &cfg);
  if (e != cudaSuccess) return e;
  if (*max_clusters * cluster < grid) return cudaErrorInvalidConfiguration;
  return cudaLaunchKernelEx(&cfg, kernel, a);
}
template <int N, int CONSUMERS>
cudaError_t launch_stream_tiles(int tiles, const StreamArgs& a, int grid, int smem, int cluster, int* max_clusters) {
  return tiles == 4   ? launch_stream<N, 4, CONSUMERS>(a, grid, smem, cluster, max_clusters)
         : tiles == 2 ? launch_stream<N, 2, CONSUMERS>(a, grid, smem, cluster, max_clusters)
                      : launch_stream<N, 1, CONSUMERS>(a, grid, smem, cluster, max_clusters);
}
template <int N>
cudaError_t launch_stream_mma(int consumers, int tiles, const StreamArgs& a, int grid, int smem, int cluster,
                              int* max_clusters) {
  return consumers == 2 ? launch_stream_tiles<N, 2>(tiles, a, grid, smem, cluster, max_clusters)
                        : launch_stream_tiles<N, 1>(tiles, a, grid, smem, cluster, max_clusters);
}

// How many clusters of `cluster` blocks of the streaming kernel's size the card holds at once.
int clusters_that_fit(int cluster, int smem) {
  auto kernel = stream_slices<0, 1, 1>;
  if (prepare(kernel, smem, cluster) != cudaSuccess) return 0;
  cudaLaunchAttribute attr[1];
  const cudaLaunchConfig_t cfg = launch_config(cluster, 256, smem, cluster, attr);
  int n = 0;
  if (cudaOccupancyMaxActiveClusters(&n, kernel, &cfg) != cudaSuccess) n = 0;
  (void)cudaGetLastError();
  return n;
}

int run_stream(const Options& o, const cudaDeviceProp& prop) {
  const int stage_bytes = o.stage_kb * 1024, ring = o.stages * stage_bytes;
  std::printf("\n== 1. streaming a layer's weights: R groups of G blocks, each block its 1/G slice; stages of %d KB x "
              "%d ==\n",
              o.stage_kb, o.stages);
  std::printf("the card holds %d clusters of 16 and %d of 8 blocks of this size (one block an SM)\n",
              clusters_that_fit(16, ring + 4096 + 1024), clusters_that_fit(8, ring + 4096 + 1024));
  Weights w = make_weights();
  const std::size_t flush_bytes = 256ull << 20;
  void* flush;
  CK(cudaMalloc(&flush, flush_bytes));
  const int max_grid = prop.multiProcessorCount;
  unsigned *start, *words;
  unsigned long long *t0, *t1;
  double* sums;
  CK(cudaMalloc(&start, sizeof(unsigned)));
  CK(cudaMalloc(&words, max_grid * sizeof(unsigned)));
  CK(cudaMalloc(&t0, max_grid * sizeof(unsigned long long)));
  CK(cudaMalloc(&t1, max_grid * sizeof(unsigned long long)));
  CK(cudaMalloc(&sums, max_grid * 256 * sizeof(double)));
  // R = 1: what the persistent kernel streams (each weight byte once). R = 7 clusters of 16 and 14 of 8: the most
  // groups of those sizes an H200 holds at once.
  const std::vector<StreamCase> cases = {
      {1, 128, false, false, false}, {1, 128, false, true, false},                                  //
      {2, 64, false, false, false},  {2, 64, false, false, true},                                   //
      {4, 32, false, false, false},  {4, 32, false, true, false},  {4, 32, false, false, true},     //
      {8, 16, false, false, false},  {8, 16, false, true, false},  {8, 16, false, false, true},     //
      {7, 16, true, false, false},   {7, 16, true, true, false},   {7, 16, true, false, true},      //
      {7, 16, true, true, true},     {14, 8, true, false, false},  {14, 8, true, false, true},      //
      {16, 8, false, false, false},
      // the products alone (no copies), for the group sizes above
      {4, 32, false, false, true, false}, {8, 16, false, false, true, false}, {7, 16, true, false, true, false},
      {14, 8, true, false, true, false},
  };
  int failures = 0;
  for (const StreamCase& c : cases) {
    const int grid = c.groups * c.group_blocks;
    const int group_rows = (128 + c.groups - 1) / c.groups, n = (group_rows + 7) / 8 * 8;
    const unsigned long long slice = kLayerBytes / c.group_blocks;
    char consumer[32];
    std::snprintf(consumer, sizeof consumer, c.mma ? (c.copy ? "wgmma n%d%s" : "wgmma n%d%s, no copies") : "copy", n,
                  o.consumers == 2 ? " 2 wg" : "");
    char name[160];
    std::snprintf(name, sizeof name, "R %2d groups x G %3d blocks%s, %s, %s", c.groups, c.group_blocks,
                  c.cluster ? " (clusters)" : "           ", c.hot ? "hot " : "cold", consumer);
    if (grid > max_grid) {
      std::printf("%-62s: skipped (%d blocks, the card has %d SMs)\n", name, grid, max_grid);
      continue;
    }
    // wgmma: whole stages of 1, 2 or 4 8 KB tiles a slice (the ring the same bytes)
    int stage = stage_bytes, stages = o.stages;
    if (c.mma) {
      int tiles = std::min(stage_bytes, 4 * kTileBytes) / kTileBytes;  // 1, 2 or 4 tiles a stage
      if (tiles == 3) tiles = 2;
      while (tiles > 1 && slice % (tiles * kTileBytes)) tiles /= 2;
      stage = tiles * kTileBytes;
      stages = ring / stage;
      // (two consumers: an even number of stages, so that each slot has one consumer, which waits on its phases in
      // order — a waiter two phases ahead would find the parity it asks for already complete)
      if (slice % stage || stage % kTileBytes || stages > kMaxStages || n > 64 || stages % o.consumers) {
        std::printf("%-62s: skipped (a slice of %llu bytes is not whole stages of 8 KB tiles)\n", name, slice);
        continue;
      }
    }
    const int smem = ring + (c.mma ? n * 128 : 0) + 1024;
    StreamArgs a{w.device, c.hot ? 0ull : kLayerBytes, c.group_blocks, stage, stages, c.copy ? 1 : 0, start, t0, t1,
                 words, sums};
    std::vector<double> us;
    bool launched = true;
    int bad_blocks = 0;
    double worst_rel = 0;
    for (int rep = 0; rep < o.reps && launched; ++rep) {
      if (!c.hot || rep == 0) CK(cudaMemset(flush, rep & 0xff, flush_bytes));  // cold: L2 holds none of the weights
      CK(cudaMemset(start, 0, sizeof(unsigned)));
      int max_clusters = 0;
      const int cl = c.cluster ? c.group_blocks : 1, tiles = stage / kTileBytes;
      const int k = o.consumers;
      cudaError_t e = !c.mma    ? launch_stream<0>(a, grid, smem, cl, &max_clusters)
                      : n == 8  ? launch_stream_mma<8>(k, tiles, a, grid, smem, cl, &max_clusters)
                      : n == 16 ? launch_stream_mma<16>(k, tiles, a, grid, smem, cl, &max_clusters)
                      : n == 24 ? launch_stream_mma<24>(k, tiles, a, grid, smem, cl, &max_clusters)
                      : n == 32 ? launch_stream_mma<32>(k, tiles, a, grid, smem, cl, &max_clusters)
                                : launch_stream_mma<64>(k, tiles, a, grid, smem, cl, &max_clusters);
      if (e == cudaSuccess) e = cudaDeviceSynchronize();
      if (e != cudaSuccess) {
        std::printf("%-62s: not run: %s (the card holds %d clusters of %d)\n", name, cudaGetErrorString(e),
                    max_clusters, cl);
        (void)cudaGetLastError();
        launched = false;
        break;
      }
      std::vector<unsigned long long> h0(grid), h1(grid);
      std::vector<unsigned> hw(grid);
      std::vector<double> hs(static_cast<std::size_t>(grid) * 256);
      CK(cudaMemcpy(h0.data(), t0, grid * sizeof(unsigned long long), cudaMemcpyDeviceToHost));
      CK(cudaMemcpy(h1.data(), t1, grid * sizeof(unsigned long long), cudaMemcpyDeviceToHost));
      CK(cudaMemcpy(hw.data(), words, grid * sizeof(unsigned), cudaMemcpyDeviceToHost));
      CK(cudaMemcpy(hs.data(), sums, hs.size() * sizeof(double), cudaMemcpyDeviceToHost));
      us.push_back((*std::max_element(h1.begin(), h1.end()) - *std::min_element(h0.begin(), h0.end())) / 1000.0 /
                   kLayers);
      const std::size_t pieces_per_layer = kLayerBytes / kPieceBytes, pieces_per_slice = slice / kPieceBytes;
      for (int b = 0; b < grid; ++b) {
        unsigned expect_words = 0;
        double expect_values = 0;
        for (int l = 0; l < kLayers; ++l) {
          const std::size_t first = (c.hot ? 0 : l) * pieces_per_layer + (b % c.group_blocks) * pieces_per_slice;
          for (std::size_t q = first; q < first + pieces_per_slice; ++q) {
            expect_words += w.piece_words[q];
            expect_values += w.piece_values[q];
          }
        }
        if (c.mma) {
          double got = 0;
          for (int t = 0; t < 128 * o.consumers; ++t) got += hs[static_cast<std::size_t>(b) * 256 + t];
          const double expect = c.copy ? n * expect_values : 0.0;
          const double rel = std::fabs(got - expect) / std::max(expect, 1.0);
          worst_rel = std::max(worst_rel, rel);
          bad_blocks += !(rel <= 1e-12);  // exact but for the order of the double sums
        } else {
          bad_blocks += hw[b] != expect_words;
        }
      }
    }
    if (!launched) continue;
    failures += bad_blocks > 0;
    std::sort(us.begin(), us.end());
    const double med = us[us.size() / 2];
    const double into_sms = c.groups * static_cast<double>(kLayerBytes) / (med * 1e-6) / 1e12;  // TB/s
    std::printf("%-62s: %7.2f us a layer (reps %.2f-%.2f), %5.2f TB/s into SMs, %6.1f GB/s into each, "
                "%6.1f KB a block a layer, stages %d KB x %d%s%s\n",
                name, med, us.front(), us.back(), into_sms, into_sms * 1e3 / grid, slice / 1024.0, stage / 1024, stages,
                c.mma ? (std::string(", worst rel ") + lab::json_number(worst_rel)).c_str() : "",
                bad_blocks ? "  CHECK FAILED" : "");
    if (o.json)
      std::fprintf(o.json,
                   "{\"lab\":\"row_groups_stream\",\"gpu\":\"%s\",\"groups\":%d,\"group_blocks\":%d,\"cluster\":%s,"
                   "\"hot\":%s,\"consumer\":\"%s\",\"consumer_warpgroups\":%d,\"rows\":%d,\"stage_kb\":%d,"
                   "\"stages\":%d,\"us_layer\":%.3f,"
                   "\"us_min\":%.3f,\"us_max\":%.3f,\"tb_s_into_sms\":%.3f,\"pass\":%s}\n",
                   prop.name, c.groups, c.group_blocks, c.cluster ? "true" : "false", c.hot ? "true" : "false",
                   c.mma ? "wgmma" : "copy", c.mma ? o.consumers : 1, n, stage / 1024, stages, med, us.front(),
                   us.back(), into_sms,
                   bad_blocks ? "false" : "true");
  }
  cudaFree(w.device);
  cudaFree(flush);
  cudaFree(start);
  cudaFree(words);
  cudaFree(t0);
  cudaFree(t1);
  cudaFree(sums);
  return failures;
}

int run_exchange(const Options& o, const cudaDeviceProp& prop) {
  std::printf("\n== 2. the exchange inside a cluster: every block sends P bytes to every block ==\n");
  const int iters = 2000;
  unsigned long long* ns;
  unsigned* errors;
  CK(cudaMalloc(&ns, prop.multiProcessorCount * sizeof(unsigned long long)));
  CK(cudaMalloc(&errors, sizeof(unsigned)));
  int failures = 0;
  for (int bulk = 0; bulk < 2; ++bulk)
    for (int cl : {2, 4, 8, 16})
      for (int part : {0, 1536, 6144}) {
        if (bulk && part == 0) continue;
        const int smem = bulk ? part + 2 * cl * part : std::max(16, 2 * cl * part);
        const int grid = 128;
        auto kernel = bulk ? cluster_exchange_bulk : cluster_exchange;
        CK(prepare(kernel, smem, cl));
        cudaLaunchAttribute attr[1];
        const cudaLaunchConfig_t cfg = launch_config(grid, 128, smem, cl, attr);
        CK(cudaMemset(errors, 0, sizeof(unsigned)));
        cudaError_t e = cudaLaunchKernelEx(&cfg, kernel, part, iters, ns, errors);
        if (e == cudaSuccess) e = cudaDeviceSynchronize();
        const char* how = bulk ? "bulk copies + mbarrier" : "stores + cluster barrier";
        if (e != cudaSuccess) {
          std::printf("%-25s clusters of %2d, P %5d: not run: %s\n", how, cl, part, cudaGetErrorString(e));
          (void)cudaGetLastError();
          continue;
        }
        std::vector<unsigned long long> h(grid);
        unsigned bad = 0;
        CK(cudaMemcpy(h.data(), ns, grid * sizeof(unsigned long long), cudaMemcpyDeviceToHost));
        CK(cudaMemcpy(&bad, errors, sizeof(unsigned), cudaMemcpyDeviceToHost));
        failures += bad > 0;
        std::sort(h.begin(), h.end());
        const double med = h[grid / 2] / 1000.0 / iters, mx = h[grid - 1] / 1000.0 / iters;
        std::printf("%-25s clusters of %2d, P %5d bytes to each block: %6.3f us a step (median block), %6.3f "
                    "(slowest)%s\n",
                    how, cl, part, med, mx, bad ? "  CHECK FAILED" : "");
        if (o.json)
          std::fprintf(o.json,
                       "{\"lab\":\"row_groups_exchange\",\"gpu\":\"%s\",\"how\":\"%s\",\"cluster\":%d,"
                       "\"part_bytes\":%d,\"us_median\":%.4f,\"us_max\":%.4f,\"pass\":%s}\n",
                       prop.name, bulk ? "bulk" : "stores", cl, part, med, mx, bad ? "false" : "true");
      }
  cudaFree(ns);
  cudaFree(errors);
  return failures;
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // each line out at once, also into a file a time limit may cut short
  Options o;
  int iters_unused = 0;
  for (int i = 1; i < argc; ++i) {
    const int c = lab::common_option(argc, argv, i, o.json, iters_unused);
    if (c < 0) return 2;
    if (c) continue;
    if (!std::strcmp(argv[i], "--reps") && i + 1 < argc) {
      o.reps = std::max(1, std::atoi(argv[++i]));
    } else if (!std::strcmp(argv[i], "--stage-kb") && i + 1 < argc) {
      o.stage_kb = std::atoi(argv[++i]);
    } else if (!std::strcmp(argv[i], "--stages") && i + 1 < argc) {
      o.stages = std::atoi(argv[++i]);
    } else if (!std::strcmp(argv[i], "--consumers") && i + 1 < argc) {
      o.consumers = std::atoi(argv[++i]) == 2 ? 2 : 1;
    } else if (!std::strcmp(argv[i], "--stream")) {
      o.exchange = false;
    } else if (!std::strcmp(argv[i], "--exchange")) {
      o.stream = false;
    } else {
      std::fprintf(stderr, "usage: %s [--reps N] [--stage-kb K] [--stages S] [--consumers 1|2] [--stream | --exchange] "
                           "[--json FILE]\n",
                   argv[0]);
      return 2;
    }
  }
  if (o.stage_kb < 4 || o.stage_kb % 4 || o.stages < 2 || o.stages > kMaxStages || o.stages * o.stage_kb > 200) {
    std::fprintf(stderr, "row_groups_lab: --stage-kb must be a multiple of 4, --stages 2-%d, and the ring at most "
                         "200 KB\n",
                 kMaxStages);
    return 2;
  }
  cudaDeviceProp prop{};
  if (!lab::sm90_device("row_groups_lab", prop)) return 0;
  std::printf("row_groups_lab on %s (%d SMs, L2 %d MB)\n", prop.name, prop.multiProcessorCount, prop.l2CacheSize >> 20);
  int failures = 0;
  if (o.stream) failures += run_stream(o, prop);
  if (o.exchange) failures += run_exchange(o, prop);
  if (o.json) std::fclose(o.json);
  std::printf("%s (%d failure%s)\n", failures ? "FAILED" : "ALL PASS", failures, failures == 1 ? "" : "s");
  return failures ? 1 : 0;
}
