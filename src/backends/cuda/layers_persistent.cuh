#pragma once
// Every transformer block of a few-row prefill (batch * seq <= 128) in ONE persistent kernel on Hopper: one block
// per SM, the phases of a layer separated by grid-wide barriers instead of kernel boundaries, and a producer warp
// that streams the weights of the next product into shared memory while the phases before it run.
// (Developed in lab/cuda/persistent_lab.cu: CPU reference check, timing, per-phase breakdown.)
//
// Why: at B1 x S128 the forward is ~90 latency-bound kernels (0.45 ms on an H200 with PDL between them, against a
// 0.06 ms roofline floor); each kernel boundary costs a drain, a launch and a fill. Here a layer is 7 phases and 6
// grid barriers (~1.05 us each on an H200; 7 without head_flags), and the weights of a product are requested
// before the barrier that releases its activations.
//
// Phases of layer l (G blocks, 8 consumer warps each; a phase's items go to blocks blockIdx.x, + G, ...):
//   P0  rows:  x += b_mproj[l-1] + sum_s part[s] (l > 0; l = 0: x = wte[id] + wpe[pos] when ids are given),
//              h = LN1(x)                                                (after the last layer: h = ln_f(x))
//   P1  QKV:   qkv = h . Wqkv^T + b                     tiles of 128 rows x 32 columns, k whole (72 items)
//   P2  attention: att = causal softmax(q k^T) v        a block per (sequence, head, 16 queries), 16 keys a warp
//   P3  proj:  part[s] = att . Wproj^T                  128 x 32 tiles, 3 k splits (72 items at n_embd 768)
//   P4  rows:  x += b_proj + sum_s part[s], h = LN2(x)  a block per row
//   P5  FC:    u = GELU_tanh(h . Wfc^T + b)             128 x 32 tiles, k whole (96 items)
//   P6  mproj: part[s] = u . Wmproj^T                   128 x 64 tiles, 8 k splits (96 items)
// After ln_f, with PersistentArgs::lm_head (off in the engine: measured slower, below): the LM head (half the rows
// resident in each block, 64-column vocabulary tiles streamed past them) with each row's top-1 and sum as
// per-block parts, one more grid barrier, and a fold of the parts. The last block to leave zeroes the counters.
// head_flags (the engine's default): no grid barrier between P1 and P2 — each QKV block counts its tiles done on
// their heads' counters (release), and an attention item waits (acquire) only for the 6 tiles of its head; the
// attention items go to the blocks in reverse, so the blocks without a QKV tile take them first. (Measured: the
// pair of phases 9.28 against 5.35 + 4.21 us a layer: the counter's round trip costs about what the barrier did.)
// The split-K partials are summed in split order by the row phase that follows (P4 / the next P0): deterministic,
// and the residual add, the bias and the LayerNorm share one pass over the row. CL = 2 (the "paired" kernel,
// engine option persistent_pairs): QKV and FC in 128 x 64 tiles whose two k halves are the two blocks of a
// cluster, added through distributed shared memory — correct, measured slower, off by default.
//
// Memory ordering: activations written with ordinary stores and read back by TMA (async proxy) in a later phase:
// the writers issue fence.proxy.async before the barrier; the barrier is a release-add / acquire-poll on one
// global counter. Co-residency: one block per SM, and the launch is cooperative (it fails rather than deadlocks).
//
// Layout: as gemm_wgmma.cuh (128-byte swizzled [rows x 64] stage tiles, m64nNk16 wgmma accumulators).
// Needs sm_90a; head size 64; C a multiple of 256 (every k split whole ring stages of 128 k: 256, 512, 768) with
// C / 64 <= 12 k tiles per item (persistent_supported).
#include <cuda.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "backends/cuda/attention_mma.cuh"
#include "backends/cuda/gemm_wgmma.cuh"
#include "backends/cuda/kernels.cuh"
#include "backends/cuda/lm_head_summary.cuh"

namespace gptbench::cuda_engine::kernels {

// One transformer block's weights. The maps describe W [N, K] (row-major, K contiguous) with boxes of BN x 64:
// 32 rows (w_qkv, w_proj, w_fc), 64 rows (w_mproj; w_qkv64 and w_fc64 for the paired kernel, CL = 2).
template <typename T>
struct PersistentLayer {  // 64-byte aligned: CUtensorMap is
  CUtensorMap w_qkv, w_proj, w_fc, w_mproj, w_qkv64, w_fc64;
  const T* b_qkv = nullptr;
  const T* b_fc = nullptr;
  const float* b_proj = nullptr;   // float: added in the row phase
  const float* b_mproj = nullptr;
  const float *ln1_g = nullptr, *ln1_b = nullptr, *ln2_g = nullptr, *ln2_b = nullptr;
  float scale_log2 = 0.f;  // attention: softmax scale * log2(e)
};

template <typename T>
struct PersistentArgs {
  const PersistentLayer<T>* layers = nullptr;  // device array [n_layers]
  int n_layers = 0;
  int batch = 0, seq = 0, M = 0;               // M = batch * seq <= 128
  int C = 768, H = 12, F = 3072;               // head size C / H = 64
  float* x = nullptr;                          // [M, C] residual stream: embeddings in, last block's output out
  T *h = nullptr, *qkv = nullptr, *att = nullptr, *u = nullptr;
  float* part = nullptr;                       // [kPersistentMaxSplits, M, C]
  const float *lnf_g = nullptr, *lnf_b = nullptr;  // the final LayerNorm: h = ln_f(x) at the end
  unsigned* counter = nullptr;                 // kPersistentSyncWords words, zero at launch (and at exit)
  // QKV -> attention through per-head ready counters instead of a grid barrier (6 barriers a layer, not 7): an
  // attention item starts as soon as the 6 QKV tiles of its head are stored.
  int head_flags = 0;
  // Optional: the embedding inside the first row phase (x = wte[id] + wpe[position]) instead of x given.
  const int* ids = nullptr;
  const T *wte = nullptr, *wpe = nullptr;
  float eps = 1e-5f;
  // Optional: the LM head and its summary as the kernel's last phases (persistent_lm_head_supported; the engine's
  // option persistent_lm_head): logits of h = ln_f(x) against the tied embedding W [vocab_padded, C] (its tensor
  // map a kernel parameter), each row's top-1 (lowest id on ties) and sum of its first `vocab` logits, rounded to T,
  // in double — per-(row, block) parts in lm_parts [M][lm_parts_per_row(M)], then folded into top1 / row_sum after
  // one more grid barrier. logits (optional): the rounded logits [M, vocab_padded] too.
  int lm_head = 0;
  int vocab = 0, vocab_padded = 0;
  T* logits = nullptr;
  SummaryPart* lm_parts = nullptr;
  int* top1 = nullptr;
  double* row_sum = nullptr;
  int barriers_only = 0;                       // lab: the barrier skeleton alone (no work)
  int lab_no_mma = 0;                          // lab: products stream their tiles but skip the MMAs (timing only)
  unsigned long long* trace = nullptr;         // lab: block 0's %globaltimer at the start and after each barrier
  unsigned long long* trace_done = nullptr;    // lab: [barrier - 1][block]: when the block's work before it was done
  // lab: inside a product phase, [releasing barrier][block][3]: when the producer saw the barrier, when the
  // consumers had the first activation stage, when they had consumed the last (the block's first item)
  unsigned long long* trace_product = nullptr;
  // lab: the producer's earlier order — the next item's weights requested after this item's first 8 activation
  // stages instead of after all of them (for the A/B in persistent_lab --weights-order).
  int lab_weights_after_first_stages = 0;
};

// Product tiles: all 128 rows x BN columns; the residual products split k (their partials are summed by the row
// phase after them). The attention projection: 32 columns, k splits of 256; the MLP projection: 64 columns, 8 splits, so
// that each block streams 384 k of the 3072 (measured: 32 columns / 4 splits, 768 k a block, 5.2 us of work a
// phase on an H200).
constexpr int kPersistentBN = 32;       // QKV, attention projection, FC
constexpr int kPersistentMprojBN = 64;  // MLP projection
constexpr int kPersistentMprojSplits = 8;
// The attention projection's k splits: 256 k each (3 at n_embd 768; it was 4 splits of 192 before the ring's
// stages became 128 k: a split must be whole stages).
__host__ __device__ constexpr int persistent_proj_splits(int C) { return C >= 256 ? C / 256 : 1; }
constexpr int kPersistentMaxSplits = 8;
// Activation ring boxes (16 KB: 128 rows x 64 k): 8, or 7 for the paired kernel (CL = 2), which needs 16 KB for its
// exchange buffer.
__host__ __device__ constexpr int persistent_stages(int cl) { return cl == 2 ? 7 : 8; }
// A ring stage is two boxes (128 k, 32 KB) under one request and one barrier: 4 stages (3 paired). With one box a
// stage each of an item's 12 stages cost ~520 SM cycles with its MMAs (~280 without) — the request, the hand-over and
// the MMAs of a 16 KB stage do not overlap; 32 KB stages take 12 boxes and their MMAs in ~3,050 cycles against
// ~4,430 (lab/cuda/wgmma_chain_lab.cu --contention, the kernel's loop in miniature, H200, seventeenth session).
constexpr int kPersistentBoxesPerStage = 2;
__host__ __device__ constexpr int persistent_ring_stages(int cl) { return persistent_stages(cl) / kPersistentBoxesPerStage; }
constexpr int kPersistentExchangeBytes = 16 * 256 * 4;  // 16 floats per consumer thread
constexpr int kPersistentWBytes = 12 * 32 * 128;  // one item's weight tiles: (K / 64 / splits) * BN * 128 bytes
constexpr int kPersistentThreads = 256 + 32;  // two consumer warpgroups + the producer warp
constexpr int kPersistentCombineLd = 72;  // floats per row of a warp's attention O in shared memory (2-way conflicts)
constexpr int kPersistentCombineBytes = 8 * 16 * kPersistentCombineLd * 4 + 8 * 16 * 2 * 4;
// The attention phase's merge buffer aliases the activation ring: no product is in flight during attention (the
// producer requests the next activations only after the barrier that ends it).
static_assert(kPersistentCombineBytes <= 7 * 128 * 128);
__host__ __device__ constexpr int persistent_smem(int cl) {
  return persistent_stages(cl) * 128 * 128 + 2 * kPersistentWBytes + (cl == 2 ? kPersistentExchangeBytes : 0) + 1024;
}
constexpr int kPersistentPhases = 7;  // barriers per layer (6 with head_flags)
__host__ __device__ constexpr int persistent_phases(bool head_flags) { return head_flags ? 6 : 7; }
// The synchronisation words, each counter on its own 128-byte line: the grid barrier's arrivals at [0], then a
// QKV-done counter per head (head_flags; at most kPersistentMaxHeads heads: C <= 1024, head size 64).
constexpr int kPersistentMaxHeads = 16;
// Then the count of blocks that have left: the last one zeroes every counter for the next launch, so that a graph
// needs no memset node before the kernel (the words are zeroed once when allocated).
constexpr int kPersistentExitWord = 32 * (1 + kPersistentMaxHeads);
constexpr int kPersistentSyncWords = kPersistentExitWord + 32;
// The LM head phase: each block keeps one half of the rows (64 rows x C, C / 64 boxes of 8 KB: 96 KB at C 768)
// resident in shared memory and streams vocabulary tiles of 64 columns (8 KB a 64-k box) through a ring of
// kPersistentLmSlots boxes per consumer warpgroup; the two warpgroups take alternate tiles (m64n64 MMAs).
// Why halves: all 128 rows (192 KB) leave 32 KB for the weights in flight; with halves each tile is read twice,
// the second time from L2 (the two blocks of a tile are neighbours and walk the tiles in step).
// Measured (H200, persistent_lab --lm-head, 12 layers; session 19): the 77 MB of weights in 19.4 us with 64 rows
// (every block on the one half: each tile read once, ~4 TB/s), 31.6-34.3 us with 128 (each tile read twice: the
// traffic from L2 to the SMs is the limit); all 128 rows resident with a ring of 4 boxes took 33.4-34.8 us at
// either row count (too few bytes in flight). In the engine (H200, alternating rounds), B1 x S128 0.3670 against
// 0.3622 ms and B1 x S64 0.3333 against 0.3337 for cuBLASLt's LM head and the row_summary kernel after the kernel:
// slower where it matters, so off by default (option persistent_lm_head).
constexpr int kPersistentLmBN = 64;
constexpr int kPersistentLmRings = 2;  // one a consumer warpgroup
constexpr int kPersistentLmSlots = 8;  // boxes a ring
constexpr int kPersistentLmMaxC = 768;
constexpr int kPersistentLmBoxBytes = 64 * 128;     // a weight box: 64 vocabulary columns x 64 k
constexpr int kPersistentLmRowBoxBytes = 64 * 128;  // a resident box: 64 rows x 64 k
static_assert(kPersistentLmMaxC / 64 * kPersistentLmRowBoxBytes +
                  kPersistentLmRings * kPersistentLmSlots * kPersistentLmBoxBytes <=
              8 * 128 * 128 + 2 * kPersistentWBytes);
// The parts a row has: two (one per warpgroup) for each block of its half.
__host__ __device__ constexpr int persistent_lm_parts_per_row(int M, int blocks) {
  return 2 * (blocks / (M > 64 ? 2 : 1));
}
// What a row's parts need at any row count (the lm_parts buffer: rows x this).
__host__ __device__ constexpr int persistent_lm_parts_capacity(int blocks) { return 2 * blocks; }

namespace persistent_detail {

using namespace wgmma_detail;

__device__ __forceinline__ unsigned ld_acquire(const unsigned* p) {
  unsigned v;
  asm volatile("ld.acquire.gpu.global.u32 %0, [%1];\n" : "=r"(v) : "l"(p) : "memory");
  return v;
}
__device__ __forceinline__ void red_release_add(unsigned* p, unsigned v) {
  asm volatile("red.release.gpu.global.add.u32 [%0], %1;\n" ::"l"(p), "r"(v) : "memory");
}
// Spin until every block has arrived at barrier `index` (arrival count index * G; acquire polls). (A last-arriver
// flag on its own line measured slower: 1.55 against 1.15 us a barrier, H200.)
__device__ __forceinline__ void wait_passed(const unsigned* counter, unsigned index) {
  const unsigned target = index * gridDim.x;
  while (ld_acquire(counter) < target) {
  }
}
// One thread of each block, once the whole block is done with the synchronisation words (its last poll behind it):
// counts the block out (acquire-release, so the last block's stores come after every block's polls) and, in the
// last block, zeroes the first `lines` counters (one a 128-byte line) and the exit count for the next launch,
// which stream order makes see them.
__device__ __forceinline__ void leave_and_reset(unsigned* words, int lines) {
  unsigned old;
  asm volatile("atom.acq_rel.gpu.global.add.u32 %0, [%1], 1;\n" : "=r"(old) : "l"(words + kPersistentExitWord) : "memory");
  if (old == gridDim.x - 1) {
    for (int i = 0; i < lines; ++i) words[32 * i] = 0u;
    words[kPersistentExitWord] = 0u;
  }
}
__device__ __forceinline__ unsigned long long globaltimer() {
  unsigned long long t;
  asm volatile("mov.u64 %0, %%globaltimer;\n" : "=l"(t));
  return t;
}
// Ordinary stores (global: activations; shared: the attention merge buffer, which aliases the activation ring)
// before the barrier, TMA (the async proxy) reading or overwriting them after it.
__device__ __forceinline__ void fence_proxy_async() {
  asm volatile("fence.proxy.async.global;\nfence.proxy.async.shared::cta;\n" ::: "memory");
}
__device__ __forceinline__ void prefetch_l2(const void* p) {
  asm volatile("prefetch.global.L2 [%0];\n" ::"l"(p));
}
__device__ __forceinline__ void consumers_sync() { asm volatile("bar.sync 1, 256;\n" ::: "memory"); }
__device__ __forceinline__ std::uint32_t ld_u32(const void* p) { return *reinterpret_cast<const std::uint32_t*>(p); }
__device__ __forceinline__ std::uint32_t movmatrix_trans(std::uint32_t a) {
  std::uint32_t d;
  asm volatile("movmatrix.sync.aligned.m8n8.trans.b16 %0, %1;\n" : "=r"(d) : "r"(a));
  return d;
}
constexpr std::uint32_t kABytes = 128 * 128;

// The four products of a layer, in phase order.
enum Product { kQkv = 0, kProj = 1, kFc = 2, kMproj = 3 };

// barrier: the index (1-based, within the kernel) that releases its activations. pair: the item's two k halves
// are the two blocks of a cluster (items numbered tile-major: item = 2 tile + half), which add their partial tiles
// through distributed shared memory; otherwise items are numbered split-major (item = split * tiles + tile) and
// the k splits of a residual product are summed by the row phase after it.
struct ProductShape {
  int N, K, splits, bn, barrier;
  bool pair;
  __device__ int tiles() const { return N / bn; }
  __device__ int items() const { return tiles() * splits; }
  __device__ int tile_of(int item) const { return pair ? item / 2 : item % tiles(); }
  __device__ int split_of(int item) const { return pair ? item % 2 : item / tiles(); }
};
// A layer's barriers end LN1, QKV (not with head_flags: QKV -> attention goes through the head counters),
// attention, proj, LN2, FC and the MLP projection.
__device__ __forceinline__ ProductShape product_shape(int which, int layer, int C, int F, int cl, bool head_flags) {
  const int b0 = layer * persistent_phases(head_flags), gap = head_flags ? 0 : 1;  // gap: QKV's own barrier
  const bool pair = cl == 2;
  switch (which) {
    case kQkv: return pair ? ProductShape{3 * C, C, 2, 64, b0 + 1, true} : ProductShape{3 * C, C, 1, kPersistentBN, b0 + 1, false};
    case kProj: return {C, C, persistent_proj_splits(C), kPersistentBN, b0 + 2 + gap, false};
    case kFc: return pair ? ProductShape{F, C, 2, 64, b0 + 4 + gap, true} : ProductShape{F, C, 1, kPersistentBN, b0 + 4 + gap, false};
    default: return {C, F, kPersistentMprojSplits, kPersistentMprojBN, b0 + 5 + gap, false};
  }
}
// (lab) This block's three in-phase times of product `ps` in PersistentArgs::trace_product (nullptr: not traced).
__device__ __forceinline__ unsigned long long* product_stamps(unsigned long long* trace_product, const ProductShape& ps) {
  return trace_product ? trace_product + (static_cast<std::size_t>(ps.barrier) * gridDim.x + blockIdx.x) * 3 : nullptr;
}
// The QKV-done counter of head hh (head_flags): 6 arrivals a layer (its q, k and v columns in 32-column tiles).
__device__ __forceinline__ unsigned* head_counter(unsigned* counter, int hh) { return counter + 32 * (1 + hh); }

// Arrive on the mbarrier at `local_addr` in the shared memory of the cluster's block `rank` (possibly this one).
__device__ __forceinline__ void mbar_arrive_cluster(std::uint32_t local_addr, int rank) {
  std::uint32_t remote;
  asm volatile("mapa.shared::cluster.u32 %0, %1, %2;\n" : "=r"(remote) : "r"(local_addr), "r"(rank));
  asm volatile("mbarrier.arrive.release.cluster.shared::cluster.b64 _, [%0];\n" ::"r"(remote) : "memory");
}
__device__ __forceinline__ void st_cluster_f32x4(std::uint32_t local_addr, int rank, float4 v) {
  std::uint32_t remote;
  asm volatile("mapa.shared::cluster.u32 %0, %1, %2;\n" : "=r"(remote) : "r"(local_addr), "r"(rank));
  asm volatile("st.shared::cluster.v4.f32 [%0], {%1, %2, %3, %4};\n" ::"r"(remote), "f"(v.x), "f"(v.y), "f"(v.z),
               "f"(v.w)
               : "memory");
}
__device__ __forceinline__ int cluster_rank() {
  unsigned r;
  asm volatile("mov.u32 %0, %%cluster_ctarank;\n" : "=r"(r));
  return static_cast<int>(r);
}

// Shared memory: an activation ring (persistent_stages(CL) boxes of 128 rows x 64 k, taken two at a time as the
// ring's stages: a_full / a_empty are per stage, a_slot per box) and two weight buffers, each
// holding a whole item's weight tiles (BN x 64 each, kPersistentWBytes in all). Weights and activations have their own
// buffers because the weights do not depend on the phase before: the producer requests item i+1's weights as soon
// as item i's activations are on their way, so they arrive during the phases in between and the product after the
// barrier waits only for its activations from L2. (v1 of the lab shared one ring between both: the weight tiles
// past the ring's depth came from HBM after the barrier; QKV / FC / MLP projection ~4.9 us a phase on an H200.)
// The paired kernel adds an exchange buffer (the peer block's partial tile) and two barriers: exchange_full (the
// peer's 8 warps have written it) and may_send (the peer's 8 warps have read what this block sent last).
struct Smem {
  std::uint32_t base, bar0;
  int stages;
  __device__ std::uint32_t a_slot(int s) const { return base + s * kABytes; }
  __device__ std::uint32_t w_tile(int buf, int k, int bn) const {
    return base + stages * kABytes + buf * kPersistentWBytes + k * bn * 128;
  }
  __device__ std::uint32_t exchange() const { return base + stages * kABytes + 2 * kPersistentWBytes; }
  __device__ std::uint32_t a_full(int s) const { return bar0 + 8u * s; }
  __device__ std::uint32_t a_empty(int s) const { return bar0 + 8u * (8 + s); }
  __device__ std::uint32_t w_full(int b) const { return bar0 + 8u * (16 + b); }
  __device__ std::uint32_t w_empty(int b) const { return bar0 + 8u * (18 + b); }
  __device__ std::uint32_t exchange_full() const { return bar0 + 8u * 20; }
  __device__ std::uint32_t may_send() const { return bar0 + 8u * 21; }
  // The LM head phase (after every product: it reuses the whole buffer): the resident rows' box k, the weight
  // ring's slot s of warpgroup g, and their barriers.
  __device__ std::uint32_t lm_a(int k) const { return base + k * kPersistentLmRowBoxBytes; }
  __device__ std::uint32_t lm_w(int g, int s) const {
    return base + kPersistentLmMaxC / 64 * kPersistentLmRowBoxBytes + (g * kPersistentLmSlots + s) * kPersistentLmBoxBytes;
  }
  __device__ std::uint32_t lm_a_full() const { return bar0 + 8u * 22; }
  __device__ std::uint32_t lm_w_full(int g, int s) const { return bar0 + 8u * (23 + g * kPersistentLmSlots + s); }
  __device__ std::uint32_t lm_w_empty(int g, int s) const {
    return bar0 + 8u * (23 + (kPersistentLmRings + g) * kPersistentLmSlots + s);
  }
};
constexpr int kPersistentBarriers = 23 + 2 * kPersistentLmRings * kPersistentLmSlots;

// This block's product items in the order both sides walk them: (layer, product, item), items blockIdx.x + k G.
struct ItemWalk {
  int layer = 0, which = 0, item = 0, n_layers = 0, C = 0, F = 0, cl = 1;
  bool head_flags = false, done = false;
  __device__ ProductShape shape() const { return product_shape(which, layer, C, F, cl, head_flags); }
  __device__ int items() const { return shape().items(); }
  __device__ void settle() {  // move past products with no item for this block
    while (!done && item >= items()) {
      item = blockIdx.x;
      if (++which == 4) {
        which = 0;
        if (++layer == n_layers) done = true;
      }
    }
  }
  __device__ void start(int layers, int c, int f, int cluster, bool flags) {
    cl = cluster;
    head_flags = flags;
    n_layers = layers;
    C = c;
    F = f;
    item = blockIdx.x;
    done = layers == 0;
    settle();
  }
  __device__ void next() {
    item += gridDim.x;
    settle();
  }
};

// Producer (one thread, the whole kernel): for item i, wait for the barrier that releases its activations,
// request its activation stages (the first 8 at once, the rest as the ring frees up), then item i+1's weights (its
// buffer was freed by item i-1, which finished before that barrier).
template <typename T, int CL>
__device__ __forceinline__ void produce_all(const Smem& sm, const PersistentArgs<T>& p, const CUtensorMap* map_h,
                                           const CUtensorMap* map_att, const CUtensorMap* map_u) {
  auto maps = [&](const ItemWalk& w, const CUtensorMap*& mw, const CUtensorMap*& ma) {
    const PersistentLayer<T>& L = p.layers[w.layer];
    switch (w.which) {
      case kQkv: mw = CL == 2 ? &L.w_qkv64 : &L.w_qkv; ma = map_h; break;
      case kProj: mw = &L.w_proj; ma = map_att; break;
      case kFc: mw = CL == 2 ? &L.w_fc64 : &L.w_fc; ma = map_h; break;
      default: mw = &L.w_mproj; ma = map_u; break;
    }
  };
  auto request_weights = [&](const ItemWalk& w, int n) {  // n: the item's index in the walk
    const ProductShape ps = w.shape();
    const int ks = ps.K / 64 / ps.splits;
    const int n0 = ps.tile_of(w.item) * ps.bn, k0 = ps.split_of(w.item) * ks;
    const CUtensorMap *mw, *ma;
    maps(w, mw, ma);
    const int b = n % 2;
    if (n >= 2) mbar_wait(sm.w_empty(b), ((n / 2) - 1) & 1);
    mbar_expect_tx(sm.w_full(b), ks * ps.bn * 128);
    for (int k = 0; k < ks; ++k) tma_load_2d(sm.w_tile(b, k, ps.bn), mw, (k0 + k) * 64, n0, sm.w_full(b));
  };
  ItemWalk cur;
  cur.start(p.n_layers, p.C, p.F, CL, p.head_flags != 0);
  if (cur.done) return;
  request_weights(cur, 0);
  int kt = 0;
  for (int n = 0; !cur.done; ++n) {
    const ProductShape ps = cur.shape();
    const int ks = ps.K / 64 / ps.splits, k0 = ps.split_of(cur.item) * ks;
    const CUtensorMap *mw, *ma;
    maps(cur, mw, ma);
    ItemWalk nxt = cur;
    nxt.next();
    wait_passed(p.counter, ps.barrier);
    if (unsigned long long* stamp = product_stamps(p.trace_product, ps); stamp && cur.item == static_cast<int>(blockIdx.x))
      stamp[0] = globaltimer();
    fence_proxy_async();  // the activations were written by ordinary stores before the barrier
    constexpr int S = persistent_ring_stages(CL), B = kPersistentBoxesPerStage;
    const int stages = ks / B;  // ks is a multiple of B (persistent_supported)
    const int early = stages < S ? stages : S;
    const bool weights_early = p.lab_weights_after_first_stages != 0;
    for (int s = 0; s < stages; ++s, ++kt) {
      const int slot = kt % S;
      if (kt >= S) mbar_wait(sm.a_empty(slot), ((kt / S) - 1) & 1);
      mbar_expect_tx(sm.a_full(slot), B * kABytes);
      for (int bx = 0; bx < B; ++bx)
        tma_load_2d(sm.a_slot(B * slot + bx), ma, (k0 + B * s + bx) * 64, 0, sm.a_full(slot));
      if (weights_early && s == early - 1 && !nxt.done) request_weights(nxt, n + 1);
    }
    // The next item's weights after all of this item's activation stages: not before the barrier (requested there,
    // they held the TMA unit while this item's stages waited: H200, fifteenth session, 12 layers 360 vs 337 us),
    // and not after the first 8 of QKV's and FC's 12 stages, where stages 9-12 queued behind their 48 KB (H200,
    // sixteenth session: 336.2-336.7 vs 339.9-340.7 us; FC's k loop 3.1 vs 4.0 us). At GPT-2 124M's widths no block
    // has two items in a phase (at most 96 items on 132 blocks), so the next item is the next phase's and has time.
    if (!weights_early && !nxt.done) request_weights(nxt, n + 1);
    cur = nxt;
  }
}

// Consumers (256 threads): this block's items of one product (the walk's items n, n+1, ...); `emit(n0, split, j,
// v)` stores column block j of the tile. `bias` (or nullptr): the tile's bias pairs are loaded before the k loop,
// so their latency hides behind it. Paired products (ps.pair): the two blocks of the cluster hold the two k halves
// of one 128 x 64 tile; each sends the column blocks the other finishes (rank 0: 0-3, rank 1: 4-7) into the
// other's exchange buffer and finishes its own with the sum (a0 + a1 in both: the same bits every run).
template <typename T, int CL, int BN, typename Emit>
__device__ __forceinline__ void consume(const Smem& sm, int& kt, int& n, int& pair_uses, const ProductShape& ps,
                                        const T* bias, int tid, bool no_mma, unsigned long long* trace_product,
                                        Emit&& emit) {
  // (lab) this block's first item's in-phase times, by thread 0
  unsigned long long* stamp = tid == 0 ? product_stamps(trace_product, ps) : nullptr;
  constexpr int S = persistent_ring_stages(CL), B = kPersistentBoxesPerStage;
  const int items = ps.items(), ks = ps.K / 64 / ps.splits, stages = ks / B;
  const int wg = tid / 128;
  for (int item = blockIdx.x; item < items; item += gridDim.x, ++n) {
    const int n0 = ps.tile_of(item) * BN, split = ps.split_of(item);
    float2 bv[BN / 8];
#pragma unroll
    for (int j = 0; j < BN / 8; ++j) {
      const int c = n0 + 8 * j + 2 * (tid % 4);
      bv[j] = bias ? make_float2(to_f(bias[c]), to_f(bias[c + 1])) : make_float2(0.f, 0.f);
    }
    float acc[BN / 2];
#pragma unroll
    for (int i = 0; i < BN / 2; ++i) acc[i] = 0.f;
    const int b = n % 2;
    mbar_wait(sm.w_full(b), (n / 2) & 1);
    // Stage s's MMAs are issued before stage s-1's are waited for (one group stays in flight), so the tensor
    // cores are not idle while a slot goes back to the producer.
    for (int s = 0; s < stages; ++s, ++kt) {
      const int slot = kt % S;
      mbar_wait(sm.a_full(slot), (kt / S) & 1);
      if (stamp && s == 0 && item == static_cast<int>(blockIdx.x)) stamp[1] = globaltimer();
      if (!no_mma) {
        asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
        // every stage holds B boxes (persistent_supported): no branch between the MMAs, which ptxas would
        // serialise (C7520)
#pragma unroll
        for (int bx = 0; bx < B; ++bx) {
          const std::uint32_t a = sm.a_slot(B * slot + bx) + wg * (64 * 128), w = sm.w_tile(b, B * s + bx, BN);
#pragma unroll
          for (int k16 = 0; k16 < 4; ++k16)
            wgmma_k16<T, BN>(acc, sw128_desc(a + k16 * 32), sw128_desc(w + k16 * 32));
        }
        asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
        asm volatile("wgmma.wait_group.sync.aligned 1;\n" ::: "memory");
      }
      if (s > 0) mbar_arrive(sm.a_empty((kt - 1) % S));
    }
    asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
    if (stamp && item == static_cast<int>(blockIdx.x)) stamp[2] = globaltimer();
    if (stages > 0) mbar_arrive(sm.a_empty((kt - 1) % S));
    mbar_arrive(sm.w_empty(b));
    if constexpr (CL == 2 && BN == 64) {
      if (ps.pair) {
        const int rank = cluster_rank(), peer = rank ^ 1;
        if (pair_uses > 0) mbar_wait(sm.may_send(), (pair_uses - 1) & 1);  // the peer has read the last one
        // (compile-time register indices in both branches: a runtime index would put acc in local memory)
        auto exchange = [&](auto keep_c) {
          constexpr int keep = decltype(keep_c)::value, send = 4 - keep;
#pragma unroll
          for (int q = 0; q < 4; ++q) {
            const int j = send + q;
            st_cluster_f32x4(sm.exchange() + 16u * (q * 256 + tid), peer,
                             make_float4(acc[4 * j], acc[4 * j + 1], acc[4 * j + 2], acc[4 * j + 3]));
          }
          __syncwarp();
          if (tid % 32 == 0) mbar_arrive_cluster(sm.exchange_full(), peer);
          mbar_wait(sm.exchange_full(), pair_uses & 1);
#pragma unroll
          for (int q = 0; q < 4; ++q) {
            const int j = keep + q;
            float4 o;
            asm volatile("ld.shared.v4.f32 {%0, %1, %2, %3}, [%4];\n"
                         : "=f"(o.x), "=f"(o.y), "=f"(o.z), "=f"(o.w)
                         : "r"(sm.exchange() + 16u * (q * 256 + tid))
                         : "memory");
            // a0 + a1 in both blocks (rank 0, keep 0, holds a0)
            const float v[4] = {(keep == 0 ? acc[4 * j] + o.x : o.x + acc[4 * j]) + bv[j].x,
                                (keep == 0 ? acc[4 * j + 1] + o.y : o.y + acc[4 * j + 1]) + bv[j].y,
                                (keep == 0 ? acc[4 * j + 2] + o.z : o.z + acc[4 * j + 2]) + bv[j].x,
                                (keep == 0 ? acc[4 * j + 3] + o.w : o.w + acc[4 * j + 3]) + bv[j].y};
            emit(n0, 0, j, v);
          }
        };
        if (rank == 0)
          exchange(std::integral_constant<int, 0>{});
        else
          exchange(std::integral_constant<int, 4>{});
        __syncwarp();
        if (tid % 32 == 0) mbar_arrive_cluster(sm.may_send(), peer);  // read: the peer may send again
        ++pair_uses;
        continue;
      }
    }
#pragma unroll
    for (int j = 0; j < BN / 8; ++j) {
      const float v[4] = {acc[4 * j] + bv[j].x, acc[4 * j + 1] + bv[j].y, acc[4 * j + 2] + bv[j].x,
                          acc[4 * j + 3] + bv[j].y};
      emit(n0, split, j, v);
    }
  }
}

// Row phase: x[r] (+= bias + sum of the k-split partials, when given; = the embedding when `embed`), h[r] =
// LN(x[r]) (T). One block a row, a float4 of it per thread: every load of the row is in flight at once (one warp
// a row measured 2.8-3.8 us for this phase, H200: a warp's 48 outstanding 16-byte loads a lane queue up). `red`:
// 16 floats of shared memory.
template <typename T>
__device__ __forceinline__ void rows_phase(const PersistentArgs<T>& p, const float* bias, int splits, const float* g,
                                           const float* b, float* red, int tid, bool embed = false) {
  const int warp = tid / 32, lane = tid % 32, c = 4 * tid;
  const bool active = c < p.C;  // C <= 1024
  for (int r = blockIdx.x; r < p.M; r += gridDim.x) {
    float* xr = p.x + static_cast<std::int64_t>(r) * p.C;
    float4 v = make_float4(0.f, 0.f, 0.f, 0.f), ww = v, bv = v;
    if (active) {
      ww = *reinterpret_cast<const float4*>(g + c);
      bv = *reinterpret_cast<const float4*>(b + c);
      if (embed) {
        v = embedding4(p.wte + static_cast<std::int64_t>(p.ids[r]) * p.C + c,
                       p.wpe + static_cast<std::int64_t>(r % p.seq) * p.C + c);
        *reinterpret_cast<float4*>(xr + c) = v;
      } else {
        v = *reinterpret_cast<const float4*>(xr + c);
      }
      if (bias) {
        float4 acc = *reinterpret_cast<const float4*>(bias + c);
        for (int s = 0; s < splits; ++s) {  // split order: the same sum every run
          const float4 q = *reinterpret_cast<const float4*>(p.part + (static_cast<std::int64_t>(s) * p.M + r) * p.C + c);
          acc.x += q.x;
          acc.y += q.y;
          acc.z += q.z;
          acc.w += q.w;
        }
        v.x += acc.x;
        v.y += acc.y;
        v.z += acc.z;
        v.w += acc.w;
        *reinterpret_cast<float4*>(xr + c) = v;
      }
    }
    // Block sums in warp order (the same result every run); red[0..7] and red[8..15] for the two passes.
    auto block_sum = [&](float x, float* slots) {
      x = warp_sum(x);
      if (lane == 0) slots[warp] = x;
      consumers_sync();
      float t = 0.f;
      for (int w = 0; w < 8; ++w) t += slots[w];
      return t;
    };
    const float mean = block_sum(active ? (v.x + v.y) + (v.z + v.w) : 0.f, red) / p.C;
    const float a0 = v.x - mean, a1 = v.y - mean, a2 = v.z - mean, a3 = v.w - mean;
    const float var = block_sum(active ? (a0 * a0 + a1 * a1) + (a2 * a2 + a3 * a3) : 0.f, red + 8) / p.C;
    const float rstd = rsqrtf(var + p.eps);
    if (active) {
      Vec4<T> o;
      o.v[0] = from_f<T>(a0 * rstd * ww.x + bv.x);
      o.v[1] = from_f<T>(a1 * rstd * ww.y + bv.y);
      o.v[2] = from_f<T>(a2 * rstd * ww.z + bv.z);
      o.v[3] = from_f<T>(a3 * rstd * ww.w + bv.w);
      *reinterpret_cast<Vec4<T>*>(p.h + static_cast<std::int64_t>(r) * p.C + c) = o;
    }
    consumers_sync();  // red is reused by the next row
  }
}

// Attention phase: one block per (sequence, head, 16 queries); its 8 consumer warps take 16 keys each (seq <= 128)
// and load their Q, K and V fragments at once, straight from qkv (L2) — one memory round trip per warp instead of
// a chain of them (a warp per item over all its keys measured 16.5 us per layer at B1 x S128 on an H200, this
// 2-3 us). V reaches the B layout of P V through movmatrix (an 8 x 8 transpose in registers). Each warp leaves its
// unnormalised O (16 x 64), row max and row sum in shared memory; the block then merges the 8 partial softmaxes.
// Fragment layouts: see attention_mma.cuh.
constexpr int kCombineLd = kPersistentCombineLd;

// The attention phase's items, one per (sequence, head, 16 queries); this block takes items first, first + G, ...
// With head_flags the items go to the blocks in reverse, so the last blocks, which have no QKV tile, take the
// first ones. (A block whose first item is >= the count has none.)
template <typename T>
__device__ __forceinline__ int attention_items(const PersistentArgs<T>& p) {
  return p.batch * p.H * ((p.seq + 15) / 16);
}
template <typename T>
__device__ __forceinline__ int attention_first_item(const PersistentArgs<T>& p) {
  return p.head_flags ? static_cast<int>(gridDim.x - 1 - blockIdx.x) : static_cast<int>(blockIdx.x);
}

// head_ready (head_flags): the QKV-done count each head's counter must reach first (0: a grid barrier came before).
template <typename T>
__device__ __forceinline__ void attention_phase(const PersistentArgs<T>& p, float scale_log2, float* comb, int warp,
                                                int lane, int tid, unsigned head_ready) {
  constexpr int D = 64;
  const int q_tiles = (p.seq + 15) / 16, items = attention_items(p);
  const int g = lane / 4, t = lane % 4;
  const std::int64_t ld = 3 * p.C;
  float* comb_m = comb + 8 * 16 * kCombineLd;  // [8 warps][16 rows]
  float* comb_l = comb_m + 8 * 16;
  for (int item = attention_first_item(p); item < items; item += gridDim.x) {
    const int qt = item % q_tiles, hh = (item / q_tiles) % p.H, b = item / (q_tiles * p.H);
    if (head_ready) {  // acquire by one thread, then the block: its q, k, v loads come after the tiles' stores
      if (tid == 0)
        while (ld_acquire(head_counter(p.counter, hh)) < head_ready) {
        }
      consumers_sync();
    }
    const int q0 = qt * 16, n_keys = min(q0 + 16, p.seq), k0 = 16 * warp;
    const T* base = p.qkv + static_cast<std::int64_t>(b) * p.seq * ld + hh * D;
    auto qrow = [&](int i) { return base + i * ld; };
    auto krow = [&](int i) { return base + i * ld + p.C; };
    auto vrow = [&](int i) { return base + i * ld + 2 * p.C; };
    float o[8][4];
#pragma unroll
    for (int jd = 0; jd < 8; ++jd) o[jd][0] = o[jd][1] = o[jd][2] = o[jd][3] = 0.f;
    float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.f, l1 = 0.f;
    if (k0 < n_keys) {
      const bool r0ok = q0 + g < p.seq, r1ok = q0 + g + 8 < p.seq;
      const bool klo = k0 + g < p.seq, khi = k0 + 8 + g < p.seq;
      std::uint32_t qa[4][4], kb[2][4][2], va[8][2];
#pragma unroll
      for (int d16 = 0; d16 < 4; ++d16) {
        const int c = 16 * d16 + 2 * t;
        qa[d16][0] = r0ok ? ld_u32(qrow(q0 + g) + c) : 0u;
        qa[d16][1] = r1ok ? ld_u32(qrow(q0 + g + 8) + c) : 0u;
        qa[d16][2] = r0ok ? ld_u32(qrow(q0 + g) + c + 8) : 0u;
        qa[d16][3] = r1ok ? ld_u32(qrow(q0 + g + 8) + c + 8) : 0u;
        kb[0][d16][0] = klo ? ld_u32(krow(k0 + g) + c) : 0u;
        kb[0][d16][1] = klo ? ld_u32(krow(k0 + g) + c + 8) : 0u;
        kb[1][d16][0] = khi ? ld_u32(krow(k0 + 8 + g) + c) : 0u;
        kb[1][d16][1] = khi ? ld_u32(krow(k0 + 8 + g) + c + 8) : 0u;
      }
#pragma unroll
      for (int jd = 0; jd < 8; ++jd) {
        const int c = 8 * jd + 2 * t;
        va[jd][0] = klo ? ld_u32(vrow(k0 + g) + c) : 0u;
        va[jd][1] = khi ? ld_u32(vrow(k0 + 8 + g) + c) : 0u;
      }
      float s[2][4];
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.f;
#pragma unroll
        for (int d16 = 0; d16 < 4; ++d16) mma_detail::mma_16816<T>(s[j], qa[d16], kb[j][d16][0], kb[j][d16][1]);
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int qi = q0 + g + (e >= 2 ? 8 : 0), ki = k0 + 8 * j + 2 * t + (e & 1);
          s[j][e] = (ki <= qi && ki < p.seq) ? s[j][e] * scale_log2 : -INFINITY;
        }
        m0 = fmaxf(m0, fmaxf(s[j][0], s[j][1]));
        m1 = fmaxf(m1, fmaxf(s[j][2], s[j][3]));
      }
      m0 = fmaxf(m0, __shfl_xor_sync(0xffffffffu, m0, 1));
      m0 = fmaxf(m0, __shfl_xor_sync(0xffffffffu, m0, 2));
      m1 = fmaxf(m1, __shfl_xor_sync(0xffffffffu, m1, 1));
      m1 = fmaxf(m1, __shfl_xor_sync(0xffffffffu, m1, 2));
      // A row may see none of this warp's keys (all later than it): its max stays -inf and its p must be 0.
      const float b0 = m0 == -INFINITY ? 0.f : m0, b1 = m1 == -INFINITY ? 0.f : m1;
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        s[j][0] = exp2f(s[j][0] - b0);
        s[j][1] = exp2f(s[j][1] - b0);
        s[j][2] = exp2f(s[j][2] - b1);
        s[j][3] = exp2f(s[j][3] - b1);
        l0 += s[j][0] + s[j][1];
        l1 += s[j][2] + s[j][3];
      }
      const std::uint32_t pa[4] = {pack_pair<T>(s[0][0], s[0][1]), pack_pair<T>(s[0][2], s[0][3]),
                                   pack_pair<T>(s[1][0], s[1][1]), pack_pair<T>(s[1][2], s[1][3])};
#pragma unroll
      for (int jd = 0; jd < 8; ++jd) mma_detail::mma_16816<T>(o[jd], pa, movmatrix_trans(va[jd][0]), movmatrix_trans(va[jd][1]));
      l0 += __shfl_xor_sync(0xffffffffu, l0, 1);
      l0 += __shfl_xor_sync(0xffffffffu, l0, 2);
      l1 += __shfl_xor_sync(0xffffffffu, l1, 1);
      l1 += __shfl_xor_sync(0xffffffffu, l1, 2);
    }
    float* ow = comb + warp * 16 * kCombineLd;
#pragma unroll
    for (int jd = 0; jd < 8; ++jd) {
      const int c = 8 * jd + 2 * t;
      *reinterpret_cast<float2*>(ow + g * kCombineLd + c) = make_float2(o[jd][0], o[jd][1]);
      *reinterpret_cast<float2*>(ow + (g + 8) * kCombineLd + c) = make_float2(o[jd][2], o[jd][3]);
    }
    if (t == 0) {
      comb_m[warp * 16 + g] = m0;
      comb_m[warp * 16 + g + 8] = m1;
      comb_l[warp * 16 + g] = l0;
      comb_l[warp * 16 + g + 8] = l1;
    }
    consumers_sync();
    {  // merge: thread -> (row, 4 columns); warps in order 0..7 (the same sum every run)
      const int row = tid / 16, c = (tid % 16) * 4;
      float m = -INFINITY;
      for (int w = 0; w < 8; ++w) m = fmaxf(m, comb_m[w * 16 + row]);
      float4 acc = make_float4(0.f, 0.f, 0.f, 0.f);
      float l = 0.f;
      for (int w = 0; w < 8; ++w) {
        const float mw = comb_m[w * 16 + row];
        const float f = mw == -INFINITY ? 0.f : exp2f(mw - m);
        const float4 v = *reinterpret_cast<const float4*>(comb + (w * 16 + row) * kCombineLd + c);
        acc.x += f * v.x;
        acc.y += f * v.y;
        acc.z += f * v.z;
        acc.w += f * v.w;
        l += f * comb_l[w * 16 + row];
      }
      if (q0 + row < p.seq) {
        const float inv = 1.f / l;
        Vec4<T> out;
        out.v[0] = from_f<T>(acc.x * inv);
        out.v[1] = from_f<T>(acc.y * inv);
        out.v[2] = from_f<T>(acc.z * inv);
        out.v[3] = from_f<T>(acc.w * inv);
        *reinterpret_cast<Vec4<T>*>(p.att + (static_cast<std::int64_t>(b) * p.seq + q0 + row) * p.C + hh * D + c) = out;
      }
    }
    consumers_sync();  // the next item reuses the shared memory
  }
}

// Requests layer l's small parameters (LayerNorm weights, biases: ~30 KB, read first by a phase that waits on
// them) into L2, one 128-byte line per thread of `blocks` blocks (this one is number `block` of them), ahead of
// their layer; l == n_layers: ln_f.
template <typename T>
__device__ __forceinline__ void prefetch_small_params(const PersistentArgs<T>& p, int l, int tid, int block,
                                                      int blocks) {
  const void* ptr[8];
  int bytes[8], n = 0;
  auto add = [&](const void* q, int b) {
    ptr[n] = q;
    bytes[n++] = b;
  };
  if (l < p.n_layers) {
    const PersistentLayer<T>& L = p.layers[l];
    add(L.ln1_g, p.C * 4);
    add(L.ln1_b, p.C * 4);
    add(L.ln2_g, p.C * 4);
    add(L.ln2_b, p.C * 4);
    add(L.b_proj, p.C * 4);
    add(L.b_mproj, p.C * 4);
    add(L.b_qkv, 3 * p.C * static_cast<int>(sizeof(T)));
    add(L.b_fc, p.F * static_cast<int>(sizeof(T)));
  } else {
    add(p.lnf_g, p.C * 4);
    add(p.lnf_b, p.C * 4);
  }
  int line = block + blocks * tid;
  for (int i = 0; i < n; ++i) {
    const int lines = (bytes[i] + 127) / 128;
    if (line < lines) {
      prefetch_l2(static_cast<const char*>(ptr[i]) + 128 * line);
      return;
    }
    line -= lines;
  }
}

// ---- the LM head phase (PersistentArgs::lm_head) ----
// This block's vocabulary tiles: with more than 64 rows the blocks alternate between the two row halves (so the
// two blocks of a tile are neighbours), and the blocks of a half take its tiles first, first + stride, ...; a
// block's local item i goes to warpgroup i % 2. (An odd grid over two halves leaves one block without items.)
struct LmHeadWalk {
  int half, first, stride, tiles;
  __device__ LmHeadWalk(int M, int vocab_padded) {
    const int halves = M > 64 ? 2 : 1;
    half = static_cast<int>(blockIdx.x) % halves;
    first = static_cast<int>(blockIdx.x) / halves;
    stride = static_cast<int>(gridDim.x) / halves;
    tiles = vocab_padded / kPersistentLmBN;
  }
  __device__ bool has_parts() const { return first < stride; }
  __device__ int items() const { return has_parts() && first < tiles ? (tiles - first + stride - 1) / stride : 0; }
  __device__ int tile(int i) const { return first + i * stride; }
};

// Producer: every weight box of this block's LM head items, item pairs box by box (the warpgroups' rings
// alternating), and the resident rows (h = ln_f(x), ordinary stores) after the barrier that ends ln_f's phase.
// With one row half (<= 64 rows) the first boxes of both rings are requested as soon as the barrier after the last
// MLP projection has passed (every product of this block is done, so the whole buffer is free), during ln_f's row
// phase: H200, 19.4 against 23.0 us for the phase (ln_f's phase 5.7-6.5 against 2.2-2.6). With two halves they
// wait for ln_f's barrier: 31.6-32.0 against 34.1-34.3 us (L2 to SM traffic is that phase's limit).
template <typename T>
__device__ __forceinline__ void produce_lm_head(const Smem& sm, const PersistentArgs<T>& p, const CUtensorMap* map_h64,
                                                const CUtensorMap* map_w) {
  const LmHeadWalk w(p.M, p.vocab_padded);
  const int ks = p.C / 64, n = w.items();
  if (n == 0) return;
  const unsigned after_products = static_cast<unsigned>(p.n_layers * persistent_phases(p.head_flags != 0));
  wait_passed(p.counter, after_products);
  bool rows_requested = false;

  auto request_rows = [&] {
    wait_passed(p.counter, after_products + 1);
    fence_proxy_async();
    mbar_expect_tx(sm.lm_a_full(), ks * kPersistentLmRowBoxBytes);
    for (int k = 0; k < ks; ++k) tma_load_2d(sm.lm_a(k), map_h64, k * 64, w.half * 64, sm.lm_a_full());
    rows_requested = true;
  };
  if (p.M > 64) request_rows();  // two halves: no weights before ln_f's barrier
  int kb0 = 0, kb1 = 0;  // boxes requested into each warpgroup's ring (scalars: an indexed pair went to the stack)
  for (int i0 = 0; i0 < n; i0 += 2)
    for (int k = 0; k < ks; ++k)
      for (int i = i0; i < i0 + 2 && i < n; ++i) {
        const int g = i % 2, kb = g ? kb1 : kb0, s = kb % kPersistentLmSlots;
        if (kb >= kPersistentLmSlots) {
          if (!rows_requested) request_rows();
          mbar_wait(sm.lm_w_empty(g, s), ((kb / kPersistentLmSlots) - 1) & 1);
        }
        mbar_expect_tx(sm.lm_w_full(g, s), kPersistentLmBoxBytes);
        tma_load_2d(sm.lm_w(g, s), map_w, k * 64, w.tile(i) * kPersistentLmBN, sm.lm_w_full(g, s));
        (g ? kb1 : kb0) += 1;
      }
  if (!rows_requested) request_rows();
}

// Consumers: warpgroup g takes the block's items g, g + 2, ... (m64n64 tiles of its half's 64 rows), rounds each
// logit to T (the value a stored logit holds), keeps its two rows' running top-1 and double sum over its columns
// in ascending order (strict '>' keeps the lowest id), and writes one part per row: lm_parts[r][2 first + g].
// Rows >= M (zeros from the tensor map) and columns >= vocab are left out.
template <typename T>
__device__ __forceinline__ void lm_head_phase(const Smem& sm, const PersistentArgs<T>& p, int tid) {
  const LmHeadWalk w(p.M, p.vocab_padded);
  const int ks = p.C / 64, n = w.items(), g = tid / 128, lane = tid % 32;
  const int r0 = w.half * 64 + (tid / 32) % 4 * 16 + lane / 4;  // accumulator rows r0, r0 + 8
  float best[2] = {-INFINITY, -INFINITY};
  int index[2] = {0x7fffffff, 0x7fffffff};
  double sum[2] = {0.0, 0.0};
  if (g < n) mbar_wait(sm.lm_a_full(), 0);
  int kb = 0;
  for (int i = g; i < n; i += 2) {
    const int n0 = w.tile(i) * kPersistentLmBN;
    float acc[kPersistentLmBN / 2];
#pragma unroll
    for (int e = 0; e < kPersistentLmBN / 2; ++e) acc[e] = 0.f;
    for (int k = 0; k < ks; ++k, ++kb) {
      const int s = kb % kPersistentLmSlots;
      mbar_wait(sm.lm_w_full(g, s), (kb / kPersistentLmSlots) & 1);
      asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#pragma unroll
      for (int k16 = 0; k16 < 4; ++k16)
        wgmma_k16<T, kPersistentLmBN>(acc, sw128_desc(sm.lm_a(k) + k16 * 32), sw128_desc(sm.lm_w(g, s) + k16 * 32));
      asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
      asm volatile("wgmma.wait_group.sync.aligned 1;\n" ::: "memory");
      if (k > 0) mbar_arrive(sm.lm_w_empty(g, (kb - 1) % kPersistentLmSlots));
    }
    asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
    mbar_arrive(sm.lm_w_empty(g, (kb - 1) % kPersistentLmSlots));
#pragma unroll
    for (int j = 0; j < kPersistentLmBN / 8; ++j) {
      const int c = n0 + 8 * j + 2 * (lane % 4);
#pragma unroll
      for (int hr = 0; hr < 2; ++hr) {
        const std::uint32_t pair = pack_pair<T>(acc[4 * j + 2 * hr], acc[4 * j + 2 * hr + 1]);
        const int r = r0 + 8 * hr;
        if (p.logits && r < p.M)
          *reinterpret_cast<std::uint32_t*>(p.logits + static_cast<std::int64_t>(r) * p.vocab_padded + c) = pair;
        const float2 f2 = unpack_pair<T>(pair);
        const float f[2] = {f2.x, f2.y};
#pragma unroll
        for (int e = 0; e < 2; ++e)
          if (c + e < p.vocab) {
            sum[hr] += f[e];
            if (f[e] > best[hr]) {
              best[hr] = f[e];
              index[hr] = c + e;
            }
          }
      }
    }
  }
  // the quad of a row (lanes 4q .. 4q + 3), in a fixed order
#pragma unroll
  for (int hr = 0; hr < 2; ++hr)
    for (int o = 1; o < 4; o <<= 1) {
      sum[hr] += __shfl_xor_sync(0xffffffffu, sum[hr], o);
      const float ob = __shfl_xor_sync(0xffffffffu, best[hr], o);
      const int oi = __shfl_xor_sync(0xffffffffu, index[hr], o);
      better(best[hr], index[hr], ob, oi);
    }
  if (lane % 4 == 0 && w.has_parts()) {
    const int per_row = persistent_lm_parts_per_row(p.M, gridDim.x);
    for (int hr = 0; hr < 2; ++hr) {
      const int r = r0 + 8 * hr;
      if (r < p.M) p.lm_parts[static_cast<std::int64_t>(r) * per_row + 2 * w.first + g] = {best[hr], index[hr], sum[hr]};
    }
  }
}

// After the grid barrier: a warp folds each row's parts in a fixed order (fold_summary_parts, as lm_head_combine)
// into top1 / row_sum.
template <typename T>
__device__ __forceinline__ void lm_head_fold(const PersistentArgs<T>& p, int tid) {
  const int per_row = persistent_lm_parts_per_row(p.M, gridDim.x);
  for (int r = static_cast<int>(blockIdx.x) * 8 + tid / 32; r < p.M; r += static_cast<int>(gridDim.x) * 8)
    fold_summary_parts(p.lm_parts + static_cast<std::int64_t>(r) * per_row, per_row, tid % 32, p.top1 + r,
                       p.row_sum + r);
}

}  // namespace persistent_detail

template <typename T, int CL>
__global__ void __launch_bounds__(kPersistentThreads, 1)
    gpt2_layers_persistent(const __grid_constant__ CUtensorMap map_h, const __grid_constant__ CUtensorMap map_att,
                           const __grid_constant__ CUtensorMap map_u, const __grid_constant__ CUtensorMap map_h64,
                           const __grid_constant__ CUtensorMap map_lm, const PersistentArgs<T> p) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  using namespace persistent_detail;
  extern __shared__ __align__(1024) unsigned char dyn_smem[];
  __shared__ alignas(8) std::uint64_t bars[kPersistentBarriers];
  __shared__ float red[16];  // the row phases' block sums
  Smem sm;
  const std::uint32_t smem0 = static_cast<std::uint32_t>(__cvta_generic_to_shared(dyn_smem));
  sm.base = (smem0 + 1023u) & ~1023u;
  sm.bar0 = static_cast<std::uint32_t>(__cvta_generic_to_shared(bars));
  sm.stages = persistent_stages(CL);
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  if (tid == 0) {
    for (int s = 0; s < persistent_stages(CL); ++s) {
      mbar_init(sm.a_full(s), 1);
      mbar_init(sm.a_empty(s), 256);
    }
    for (int b = 0; b < 2; ++b) {
      mbar_init(sm.w_full(b), 1);
      mbar_init(sm.w_empty(b), 256);
    }
    mbar_init(sm.exchange_full(), 8);  // the peer's 8 consumer warps
    mbar_init(sm.may_send(), 8);
    mbar_init(sm.lm_a_full(), 1);
    for (int g = 0; g < kPersistentLmRings; ++g)
      for (int s = 0; s < kPersistentLmSlots; ++s) {
        mbar_init(sm.lm_w_full(g, s), 1);
        mbar_init(sm.lm_w_empty(g, s), 128);  // a warpgroup's threads
      }
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  __syncthreads();
  if constexpr (CL == 2) cluster_sync();  // the pair's barriers exist before either arrives on the other's

  // The end of the block's use of the synchronisation words: all 288 threads (the producer's last poll is behind
  // it too), then the count out (leave_and_reset).
  auto leave = [&] {
    asm volatile("bar.sync 2, 288;\n" ::: "memory");
    if (tid == 0) leave_and_reset(p.counter, 1 + kPersistentMaxHeads);
  };
  if (warp == 8) {  // the producer warp: lane 0 issues every copy, for the whole kernel
    if (lane == 0 && !p.barriers_only) {
      produce_all<T, CL>(sm, p, &map_h, &map_att, &map_u);
      if (p.lm_head) produce_lm_head<T>(sm, p, &map_h64, &map_lm);
    }
    __syncwarp();
    leave();
    return;
  }

  // Consumers: 256 threads, 8 warps.
  int kt = 0, n_item = 0, pair_uses = 0;
  constexpr int kPairBN = CL == 2 ? 64 : kPersistentBN;  // QKV and FC tiles
  unsigned barrier_index = 0;
  // proxy: this phase's stores are read by TMA after the barrier (h, att, u; and the attention phase's shared
  // memory is overwritten by TMA), so every thread orders them for the async proxy first.
  auto grid_barrier = [&](bool proxy) {
    ++barrier_index;
    if (proxy) fence_proxy_async();
    consumers_sync();
    if (p.trace_done && tid == 0) p.trace_done[(barrier_index - 1) * gridDim.x + blockIdx.x] = globaltimer();
    if (tid == 0) {
      red_release_add(p.counter, 1u);
      wait_passed(p.counter, barrier_index);
    }
    consumers_sync();
    if (p.trace && blockIdx.x == 0 && tid == 0) p.trace[barrier_index] = globaltimer();
  };
  if (p.trace && blockIdx.x == 0 && tid == 0) p.trace[0] = globaltimer();
  const int wg = tid / 128, wwarp = warp % 4;
  const int r_base = wg * 64 + wwarp * 16 + lane / 4;  // accumulator rows r_base, r_base + 8
  if (!p.barriers_only) prefetch_small_params(p, 0, tid, blockIdx.x, gridDim.x);
  // The next layer's small parameters are requested by the blocks that have no attention item, during the
  // attention phase: a prefetch waits for its address, a pointer loaded from the layer table, and in the LN1 phase
  // (where it was requested before) that load stalled the row work behind one more memory round trip (LN1 2.3 us
  // of work against LN2's 1.2). When every block has an attention item, LN1 requests them as before.
  // idle_index: this block's number among the idle_blocks that have no attention item (negative: it has one).
  const int idle_blocks = max(0, static_cast<int>(gridDim.x) - attention_items(p));
  const int idle_index = attention_first_item(p) - attention_items(p);
  for (int l = 0;; ++l) {
    if (!p.barriers_only) {
      if (l < p.n_layers && idle_blocks == 0) prefetch_small_params(p, l + 1, tid, blockIdx.x, gridDim.x);
      const bool last = l == p.n_layers;
      rows_phase(p, l > 0 ? p.layers[l - 1].b_mproj : nullptr, kPersistentMprojSplits, last ? p.lnf_g : p.layers[l].ln1_g,
                 last ? p.lnf_b : p.layers[l].ln1_b, red, tid, l == 0 && p.ids != nullptr);
    }
    if (l == p.n_layers) {
      if (p.lm_head && !p.barriers_only) {  // the LM head and its summary
        grid_barrier(true);  // h is read by TMA
        lm_head_phase(sm, p, tid);
        grid_barrier(false);
        lm_head_fold(p, tid);
      }
      break;
    }
    const PersistentLayer<T>& L = p.layers[l];
    grid_barrier(true);
    if (!p.barriers_only) {  // P1: qkv = h . Wqkv^T + b
      const ProductShape ps = product_shape(kQkv, l, p.C, p.F, CL, p.head_flags != 0);
      consume<T, CL, kPairBN>(sm, kt, n_item, pair_uses, ps, L.b_qkv, tid, p.lab_no_mma, p.trace_product, [&](int n0, int, int j, const float (&v)[4]) {
        const int c = n0 + 8 * j + 2 * (lane % 4);
        for (int hr = 0; hr < 2; ++hr) {
          const int r = r_base + 8 * hr;
          if (r < p.M)
            *reinterpret_cast<std::uint32_t*>(p.qkv + static_cast<std::int64_t>(r) * ps.N + c) =
                pack_pair<T>(v[2 * hr], v[2 * hr + 1]);
        }
      });
      if (p.head_flags) {  // every tile of this block stored: count them done on their heads' counters
        consumers_sync();
        if (tid == 0)
          for (int item = blockIdx.x; item < ps.items(); item += gridDim.x)
            red_release_add(head_counter(p.counter, ps.tile_of(item) * ps.bn % p.C / 64), 1u);
      }
    }
    if (!p.head_flags) grid_barrier(false);
    if (!p.barriers_only && idle_index >= 0 && idle_index < idle_blocks)
      prefetch_small_params(p, l + 1, tid, idle_index, idle_blocks);
    if (!p.barriers_only)  // P2
      attention_phase(p, L.scale_log2, reinterpret_cast<float*>(dyn_smem + (sm.base - smem0)), warp, lane, tid,
                      p.head_flags ? 6u * (l + 1) : 0u);
    grid_barrier(true);
    auto partial = [&](int n0, int split, int j, const float (&v)[4]) {  // P3 / P6: part[split] = product
      const int c = n0 + 8 * j + 2 * (lane % 4);
      for (int hr = 0; hr < 2; ++hr) {
        const int r = r_base + 8 * hr;
        if (r < p.M)
          *reinterpret_cast<float2*>(p.part + (static_cast<std::int64_t>(split) * p.M + r) * p.C + c) =
              make_float2(v[2 * hr], v[2 * hr + 1]);
      }
    };
    if (!p.barriers_only) consume<T, CL, kPersistentBN>(sm, kt, n_item, pair_uses, product_shape(kProj, l, p.C, p.F, CL, p.head_flags != 0), nullptr, tid, p.lab_no_mma, p.trace_product, partial);
    grid_barrier(false);
    if (!p.barriers_only) rows_phase(p, L.b_proj, persistent_proj_splits(p.C), L.ln2_g, L.ln2_b, red, tid);  // P4
    grid_barrier(true);
    if (!p.barriers_only) {  // P5: u = GELU(h . Wfc^T + b)
      const ProductShape ps = product_shape(kFc, l, p.C, p.F, CL, p.head_flags != 0);
      consume<T, CL, kPairBN>(sm, kt, n_item, pair_uses, ps, L.b_fc, tid, p.lab_no_mma, p.trace_product, [&](int n0, int, int j, const float (&v)[4]) {
        const int c = n0 + 8 * j + 2 * (lane % 4);
        for (int hr = 0; hr < 2; ++hr) {
          const int r = r_base + 8 * hr;
          if (r < p.M)
            *reinterpret_cast<std::uint32_t*>(p.u + static_cast<std::int64_t>(r) * ps.N + c) =
                pack_pair<T>(gelu_tanh(v[2 * hr]), gelu_tanh(v[2 * hr + 1]));
        }
      });
    }
    grid_barrier(true);
    if (!p.barriers_only) consume<T, CL, kPersistentMprojBN>(sm, kt, n_item, pair_uses, product_shape(kMproj, l, p.C, p.F, CL, p.head_flags != 0), nullptr, tid, p.lab_no_mma, p.trace_product, partial);  // P6
    grid_barrier(false);
  }
  // No block leaves while its pair may still read what it sent (and then arrive on its barrier).
  if (CL == 2 && pair_uses > 0) mbar_wait(sm.may_send(), (pair_uses - 1) & 1);
  leave();
#else
  __trap();  // built without sm_90a: the host never launches this
#endif
}

// ---- host side ---------------------------------------------------------------------------------------------------

// Whether a model of these widths can take the persistent path (cluster 2: the paired kernel). The caller checks
// the device (compute capability 9.0: sm_90a) and the rows of each call (<= 128).
inline bool persistent_supported(int C, int H, int F, int cluster = 1) {
  auto fits = [&](int N, int K, int splits, int bn) {  // tiles, k splits, one item's weights
    return N % bn == 0 && K % (64 * kPersistentBoxesPerStage * splits) == 0 &&
           (K / 64 / splits) * bn * 128 <= kPersistentWBytes;
  };
  const bool pair = cluster == 2;
  return H > 0 && C == 64 * H && C % 128 == 0 && C <= 1024 && (cluster == 1 || cluster == 2) &&
         fits(3 * C, C, pair ? 2 : 1, pair ? 64 : kPersistentBN) && fits(C, C, persistent_proj_splits(C), kPersistentBN) &&
         fits(F, C, pair ? 2 : 1, pair ? 64 : kPersistentBN) && fits(C, F, kPersistentMprojSplits, kPersistentMprojBN);
}

// Whether the LM head can be the kernel's last phases: the resident half of the rows fits (C <= 768) and the
// padded vocabulary is whole tiles.
inline bool persistent_lm_head_supported(int C, int vocab_padded) {
  return C % 64 == 0 && C <= kPersistentLmMaxC && vocab_padded > 0 && vocab_padded % kPersistentLmBN == 0;
}

template <typename T, int CL>
LaunchConfig persistent_config(int blocks, cudaStream_t stream, bool cooperative) {
  return LaunchConfig(dim3(blocks), dim3(kPersistentThreads), persistent_smem(CL), stream, false, dim3(CL, 1, 1),
                      cooperative);
}

// How many blocks the kernel runs with on this device: one per SM, a multiple of the cluster size (pairs: 2), no
// more than can be resident at once (clusters must fit in a GPC). 0: cannot run.
template <typename T, int CL>
int persistent_blocks(int sms) {
  auto kernel = gpt2_layers_persistent<T, CL>;
  if (cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, persistent_smem(CL)) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  int blocks = sms / CL * CL;
  if (CL > 1) {
    const LaunchConfig launch = persistent_config<T, CL>(blocks, nullptr, false);
    int clusters = 0;
    if (cudaOccupancyMaxActiveClusters(&clusters, kernel, &launch.cfg) != cudaSuccess) {
      (void)cudaGetLastError();
      return 0;
    }
    blocks = std::min(blocks, clusters * CL);
  }
  return blocks;
}

// Launches the kernel on `blocks` blocks (persistent_blocks). The synchronisation words must be zero: zeroed once
// when allocated, the kernel leaves them zero (leave_and_reset). Cooperative where the driver allows it with clusters, so that a grid that cannot be co-resident
// fails instead of hanging; otherwise co-residency rests on persistent_blocks' occupancy query.
// With p.lm_head: map_h64 is h's map with boxes of 64 rows, map_lm the tied embedding's [vocab_padded, C] with
// boxes of 64 rows (unused otherwise).
template <typename T, int CL>
cudaError_t launch_gpt2_layers_persistent(const CUtensorMap& map_h, const CUtensorMap& map_att,
                                          const CUtensorMap& map_u, const PersistentArgs<T>& p, int blocks,
                                          cudaStream_t stream, bool cooperative = true,
                                          const CUtensorMap& map_h64 = CUtensorMap{},
                                          const CUtensorMap& map_lm = CUtensorMap{}) {
  const LaunchConfig launch = persistent_config<T, CL>(blocks, stream, cooperative);
  return cudaLaunchKernelEx(&launch.cfg, gpt2_layers_persistent<T, CL>, map_h, map_att, map_u, map_h64, map_lm, p);
}

}  // namespace gptbench::cuda_engine::kernels
