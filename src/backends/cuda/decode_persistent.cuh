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

#include "backends/cuda/gemv.cuh"
#include "backends/cuda/kernels.cuh"
#include "backends/cuda/layers_persistent.cuh"

namespace gptbench::cuda_engine::kernels {

constexpr int kDecodeMaxLayers = 64;  // the cache pointers travel in the kernel's arguments
constexpr int kDecodeMaxRows = 8;
constexpr int kDecodeThreads = 256;
constexpr int kDecodeHeadDim = 64;

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
  // lab (decode_persistent_lab; the engine sets none): block 0's %globaltimer at the start and after each barrier
  // [5 L], each block's when its work before barrier i was done [5 L - 1][blocks]; and where the products' first
  // weights are loaded: 0 between the barrier's arrival and its wait (the engine's), 1 before the arrival, 2 after
  // the barrier (in the product).
  unsigned long long* trace = nullptr;
  unsigned long long* trace_done = nullptr;
  int lab_preload_order = 0;
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

// This warp's groups of y = W . xs (the input rows staged as float). With `preloaded`, the first stage of its
// first group and that group's bias are already in pl (preload); every later stage is loaded when it is needed.
// Each valid output v (bias added) is added to resid[r * N + n] (resid: the residual stream, whose old values are
// requested before the products) or else passed to write(r, n, v).
template <typename T, int ROWS, typename M, typename Write>
__device__ __forceinline__ void product(Preloaded& pl, const T* W, const T* bias, int N, int K, const float* xs,
                                        int rows, int gwarp, int nwarps, int lane, bool preloaded, float* resid,
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
      if (!(first && preloaded && k0 == 0)) gemv_detail::load_weight_stage<COLS, U>(cur, W, row_bytes, N, nchunks, g, k0, lane);
      gemv_detail::accumulate_stage<T, ROWS, COLS, U>(cur, xs, K, nchunks, k0, lane, acc);
    }
    const float s = gemv_detail::warp_reduce_multi<kV>(acc, lane);
    const int n = g * COLS + lc;
    if (writer && lr < rows && n < N) {
      const float v = !bias ? s : s + (first && preloaded ? pl.bias : to_f(bias[n]));
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

}  // namespace decode_detail

// Dynamic shared memory: the staged input rows [ROWS][max(C, F)] floats, the attention's scores [max_tokens,
// rounded up to 4: the float4 accesses after them stay 16-byte aligned] and a LayerNorm's weight and bias [2][C].
__host__ __device__ constexpr int decode_scores_floats(int max_tokens) { return (max_tokens + 3) / 4 * 4; }
__host__ __device__ constexpr int decode_persistent_smem(int rows_padded, int C, int F, int max_tokens) {
  return rows_padded * (C > F ? C : F) * 4 + decode_scores_floats(max_tokens) * 4 + 2 * C * 4;
}

template <typename T, int ROWS>
__global__ void __launch_bounds__(kDecodeThreads, 1) gpt2_decode_persistent(const DecodeArgs<T> p) {
  using namespace decode_detail;
  constexpr int D = kDecodeHeadDim;
  float* xs = reinterpret_cast<float*>(gemv_detail::gemv_smem);  // [ROWS][max(C, F)]
  float* scores = xs + ROWS * max(p.C, p.F);                      // [max_tokens]
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
  // lab_preload_order: 0 (the engine's) between arrival and wait, 1 before the arrival, 2 none (after the barrier)
  const int order = p.lab_preload_order;
  const bool pre = order != 2;
  // ends a phase: the barrier, with `load` (the next product's first weights) where `order` puts it
  auto barrier = [&](auto load) {
    if (order == 1) load();
    arrive();
    if (order == 0) load();
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
  if (pre) preload<T, ROWS, QkvMap>(pl, layer_table[0].w_qkv, layer_table[0].b_qkv, 3 * C, C, gwarp, lane);
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
      gemv_detail::stage_float_rows<ROWS>(xs, p.x, rows, C);
    }
    __syncthreads();
    gemv_detail::layernorm_staged_rows(xs, rows, C, ln_ws, ln_ws + C, p.eps);
    __syncthreads();
    product<T, ROWS, QkvMap>(pl, L.w_qkv, L.b_qkv, 3 * C, C, xs, rows, gwarp, nwarps, lane, pre, nullptr, [&](int r, int n, float v) {
      const T t = from_f<T>(v);
      p.qkv[static_cast<std::int64_t>(r) * 3 * C + n] = t;
      if (n >= C) cache[(static_cast<std::int64_t>(r) * p.max_tokens + pos) * 2 * C + (n - C)] = t;
    });
    barrier([&] { preload<T, ROWS, ProjMap>(pl, L.w_proj, L.b_proj, C, C, gwarp, lane); });
    // B: attention, a block per (sequence, head).
    for (int item = blockIdx.x; item < items; item += gridDim.x) {
      decode_attention_item<T, D>(p.qkv, cache, p.att, C, p.max_tokens, pos + 1, L.scale_log2, item / p.H,
                                  item % p.H, scores, partial, red);
      __syncthreads();  // the next item reuses scores and partial
    }
    prefetch_params(L.b_proj, C * sizeof(T), L.ln2_g, 4 * C, L.ln2_b, 4 * C);
    barrier([] {});
    // C: x += att . Wproj^T + b
    gemv_detail::stage_activation_rows<T, ROWS>(xs, p.att, rows, C);
    __syncthreads();
    product<T, ROWS, ProjMap>(pl, L.w_proj, L.b_proj, C, C, xs, rows, gwarp, nwarps, lane, pre, p.x, no_write);
    prefetch_params(L.b_fc, F * sizeof(T), L.b_mproj, C * sizeof(T), nullptr, 0);
    barrier([&] { preload<T, ROWS, FcMap>(pl, L.w_fc, L.b_fc, F, C, gwarp, lane); });
    // D: u = GELU(LN2(x) . Wfc^T + b)
    stage_layernorm_params(L.ln2_g, L.ln2_b);
    gemv_detail::stage_float_rows<ROWS>(xs, p.x, rows, C);
    __syncthreads();
    gemv_detail::layernorm_staged_rows(xs, rows, C, ln_ws, ln_ws + C, p.eps);
    __syncthreads();
    product<T, ROWS, FcMap>(pl, L.w_fc, L.b_fc, F, C, xs, rows, gwarp, nwarps, lane, pre, nullptr, [&](int r, int n, float v) {
      p.u[static_cast<std::int64_t>(r) * F + n] = from_f<T>(p.gelu_tanh ? gelu_tanh(v) : gelu_erf(v));
    });
    barrier([&] { preload<T, ROWS, MprojMap>(pl, L.w_mproj, L.b_mproj, C, F, gwarp, lane); });
    // E: x += u . Wmproj^T + b
    gemv_detail::stage_activation_rows<T, ROWS>(xs, p.u, rows, F);
    __syncthreads();
    product<T, ROWS, MprojMap>(pl, L.w_mproj, L.b_mproj, C, F, xs, rows, gwarp, nwarps, lane, pre, p.x, no_write);
    if (l + 1 < p.n_layers) {
      const DecodeLayer<T>& N = layer_table[l + 1];
      prefetch_params(N.ln1_g, 4 * C, N.ln1_b, 4 * C, N.b_qkv, 3 * C * sizeof(T));
      barrier([&] { preload<T, ROWS, QkvMap>(pl, N.w_qkv, N.b_qkv, 3 * C, C, gwarp, lane); });
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
  const int smem = decode_persistent_smem(kDecodeMaxRows, C, F, max_positions);
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
  probe(gpt2_decode_persistent<T, 1>);
  probe(gpt2_decode_persistent<T, 2>);
  probe(gpt2_decode_persistent<T, 4>);
  probe(gpt2_decode_persistent<T, 8>);
  return fit;
}

// Launches the step on `blocks` blocks (decode_persistent_blocks). The counter must be zero: zeroed once when
// allocated, the kernel leaves it zero (persistent_detail::leave_and_reset).
template <typename T>
cudaError_t launch_gpt2_decode_persistent(const DecodeArgs<T>& p, int blocks, cudaStream_t stream) {
  if (p.rows < 1 || p.rows > kDecodeMaxRows || p.n_layers > kDecodeMaxLayers) return cudaErrorInvalidValue;
  const int R = decode_rows_padded(p.rows);
  const LaunchConfig launch(dim3(blocks), dim3(kDecodeThreads), decode_persistent_smem(R, p.C, p.F, p.max_tokens),
                            stream, false, dim3(1, 1, 1), true);
  switch (R) {
    case 1: return cudaLaunchKernelEx(&launch.cfg, gpt2_decode_persistent<T, 1>, p);
    case 2: return cudaLaunchKernelEx(&launch.cfg, gpt2_decode_persistent<T, 2>, p);
    case 4: return cudaLaunchKernelEx(&launch.cfg, gpt2_decode_persistent<T, 4>, p);
    default: return cudaLaunchKernelEx(&launch.cfg, gpt2_decode_persistent<T, 8>, p);
  }
}

}  // namespace gptbench::cuda_engine::kernels
