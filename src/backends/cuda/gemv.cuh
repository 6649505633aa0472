#pragma once
// Fused matrix-vector kernels for decode steps of <= 8 token rows (memory bound: every weight is read once).
//
//   y[r][n] = f( sum_k W[n][k] * in[r][k] + bias[n] ),   W row-major [N][K] (K contiguous), type T.
//
// Mapping: one warp owns COLS consecutive output columns ("a group") and walks their K-contiguous weight rows
// with 16-byte loads (lane l takes chunks l, l+32, ...; U chunks per column per stage, so COLS*U loads of 16 B
// per lane in flight), register double-buffered: the loads of the next stage (or of the warp's next group) are
// issued before the FMAs of the current one, and the very first stage is issued before the prologue, so the
// weight latency overlaps the LayerNorm. No split-K: each output is finished by one warp, the epilogue is a
// transpose-reduction (COLS*ROWS sums over 32 lanes in log steps) and one lane per output writes it.
// The grid is capped at (SMs x resident blocks) and warps stride over groups, so the prologue (staging the
// input rows) runs once per resident block, not once per 8 columns (matters for the LM head, N = 50304).
//
// Prologue: the block stages its input rows as float in dynamic shared memory [ROWS][K] (ROWS = rows rounded up
// to 1, 2, 4, 8; the padding rows are zero and their outputs are not written). kLayerNorm: one warp per row,
// two-pass mean / variance in float over the row staged in shared memory, then LN(x) * w + b in place (the same
// expression as residual_layernorm; the result stays float, it is NOT rounded to T as the unfused path does).
// kPlain: the T activations converted to float. Shared memory: ROWS * K * 4 bytes (K = 768: 3..24 KB,
// K = 3072: 12..96 KB; up to the device's opt-in limit, 227 KB on H100/H200, i.e. K <= 7264 at 8 rows).
//
// Requirements: K % 8 == 0; W, act and x 16-byte aligned (cudaMalloc'd bases); 1 <= rows <= 8.
// kLayerNorm must not be combined with kResidualAdd on the same buffer (blocks would read x while others add
// into it); launch_gemv rejects that. Graph-capture safe: no allocation, no synchronisation; the first launch of
// each instantiation on a device sets its max dynamic shared memory attribute and caches the occupancy.
//
// W8A8 (launch_gemv_int8, GemvInt8Args): W is int8 [N][K] with per-output-channel scales w_scale[n]; the input
// rows (the same float LayerNorm, or the __half activations converted) are quantized in the prologue with the
// calibrated activation scale s_x exactly as the unfused quantize_int8 (q = quantize_one(v, 1.f / s_x), inverse
// computed on the host) into shared memory int8 [ROWS][K] (padding rows zero); the main loop is the same mapping
// with 16 int8 per 16-byte load and __dp4a into int32 accumulators (exact), reduced across the warp in int32, then
// v = s_x * w_scale[n] * float(acc) + bias[n] (as dequantize_int8; float(acc) is exact while |acc| < 2^24) and the
// same output modes, all __half. Shared memory: ROWS * K bytes, plus rows * K * 4 for the float LayerNorm staging
// (K = 768: 1..30 KB). Requirements: K % 16 == 0 (16-byte aligned int8 weight rows); W, act, x, ln_w, ln_b
// 16-byte aligned; act_scale > 0; w_scale non-null. Differences from the unfused int8 path: the LayerNorm is not
// rounded to __half before it is quantized (a few q_x can differ by 1 where the half rounding crossed a tie).
#include <cuda_runtime.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <tuple>

#include "backends/cuda/kernels.cuh"

namespace gptbench::cuda_engine::kernels {

enum class GemvIn { kLayerNorm, kPlain };
enum class GemvOut { kStore, kGeluTanh, kGeluErf, kResidualAdd, kStoreKV };

struct GemvArgs {  // all pointers device
  int rows, K, N;  // rows <= 8
  const void* W;     // T [N][K]
  const void* bias;  // T [N] or nullptr
  // input
  const float* x;  // kLayerNorm: float [rows][K]
  const float* ln_w;
  const float* ln_b;
  float eps;
  const void* act;  // kPlain: T [rows][K]
  // output
  void* y;  // kStore / kGelu* / kStoreKV: T y[r * ldy + n]
  int ldy;
  float* resid;  // kResidualAdd: resid[r * N + n] += value
  void* kv_cache;  // kStoreKV: T [batch][max_tokens][2C], C = N / 3; row r = batch r
  int max_tokens;
  const int* pos;
  // Programmatic dependent launch (Hopper): the kernel may start while the previous kernel in the stream is
  // finishing; it streams its first weights in, then waits (griddepcontrol.wait) before it reads any input.
  bool pdl = false;
};

// W8A8 (launch_gemv_int8): every GemvArgs field keeps its meaning, except that W points at std::int8_t [N][K]
// (q_w in [-127, 127]) and that bias, act, y and kv_cache are __half (the int8 engine runs fp16 around its int8
// products). y = act_scale * w_scale[n] * sum_k q_x[k] q_w[n][k] + bias[n], q_x = quantize_one(in, 1 / act_scale).
struct GemvInt8Args : GemvArgs {
  const float* w_scale = nullptr;  // [N] per-output-channel weight scales
  float act_scale = 0.f;           // s_x > 0: the calibrated activation scale of this product's input
};

namespace gemv_detail {

constexpr int kMaxThreads = 256;

__device__ __forceinline__ uint4 ld_weights(const void* p) {  // streamed once per step: keep it out of L1
  uint4 v;
  asm("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
      : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
      : "l"(p));
  return v;
}
// The same load issued where it stands: a plain asm may be moved down to its first use, which for weights loaded
// ahead of a barrier (decode_persistent.cuh) is after the barrier — the latency it was meant to hide.
__device__ __forceinline__ uint4 ld_weights_here(const void* p) {
  uint4 v;
  asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "l"(p));
  return v;
}

template <typename T>
__device__ __forceinline__ void unpack(const uint4& w, float* f);
template <>
__device__ __forceinline__ void unpack<__half>(const uint4& w, float* f) {
  const unsigned int u[4] = {w.x, w.y, w.z, w.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    __half2 h;
    *reinterpret_cast<unsigned int*>(&h) = u[i];
    const float2 t = __half22float2(h);
    f[2 * i] = t.x;
    f[2 * i + 1] = t.y;
  }
}
template <>
__device__ __forceinline__ void unpack<__nv_bfloat16>(const uint4& w, float* f) {
  const unsigned int u[4] = {w.x, w.y, w.z, w.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    __nv_bfloat162 h;
    *reinterpret_cast<unsigned int*>(&h) = u[i];
    const float2 t = __bfloat1622float2(h);
    f[2 * i] = t.x;
    f[2 * i + 1] = t.y;
  }
}
template <>
__device__ __forceinline__ void unpack<float>(const uint4& w, float* f) {
  f[0] = __uint_as_float(w.x);
  f[1] = __uint_as_float(w.y);
  f[2] = __uint_as_float(w.z);
  f[3] = __uint_as_float(w.w);
}

// Sums V values (V a power of two <= 32) over the warp at once. Returns, in every lane, the total of value
// index lane >> (5 - log2 V); v is clobbered. V - 1 + 5 - log2 V shuffles instead of 5 V. A is float or int
// (the int8 kernel reduces its exact int32 partial sums).
template <int V, int N, int O, typename A>
__device__ __forceinline__ void reduce_step(A (&v)[V], int lane) {
  if constexpr (O > 0) {
    if constexpr (N >= 2) {
      const bool upper = (lane & O) != 0;
#pragma unroll
      for (int i = 0; i < N / 2; ++i) {
        const A send = upper ? v[i] : v[i + N / 2];
        const A keep = upper ? v[i + N / 2] : v[i];
        v[i] = keep + __shfl_xor_sync(0xffffffffu, send, O);
      }
      reduce_step<V, N / 2, O / 2>(v, lane);
    } else {
      v[0] += __shfl_xor_sync(0xffffffffu, v[0], O);
      reduce_step<V, 1, O / 2>(v, lane);
    }
  }
}
template <int V, typename A>
__device__ __forceinline__ A warp_reduce_multi(A (&v)[V], int lane) {
  static_assert(V >= 1 && V <= 32 && (V & (V - 1)) == 0, "V must be a power of two <= 32");
  reduce_step<V, V, 16>(v, lane);
  return v[0];
}

__host__ __device__ constexpr int ilog2(int v) { return v <= 1 ? 0 : 1 + ilog2(v / 2); }

extern __shared__ __align__(16) unsigned char gemv_smem[];

// 2 resident blocks of 256 threads (<= 128 registers) unless the accumulators and buffers need more.
__host__ __device__ constexpr int min_blocks(int rows, int cols, int u) {
  return rows * cols >= 32 || cols * u >= 8 ? 1 : 2;
}

// The output modes, for output (row r, column n) of value v (bias included): residual add into the float stream,
// or GELU (tanh / erf form) or not, rounded to T and stored (kStoreKV: also the K and V thirds into the cache).
template <typename T>
__device__ __forceinline__ void write_output(const GemvArgs& a, GemvOut out, int r, int n, int pos, float v) {
  const int N = a.N;
  if (out == GemvOut::kResidualAdd) {
    a.resid[static_cast<std::int64_t>(r) * N + n] += v;
  } else {
    if (out == GemvOut::kGeluTanh) v = gelu_tanh(v);
    else if (out == GemvOut::kGeluErf) v = gelu_erf(v);
    const T t = from_f<T>(v);
    static_cast<T*>(a.y)[static_cast<std::int64_t>(r) * a.ldy + n] = t;
    if (out == GemvOut::kStoreKV) {
      const int C = N / 3;
      if (n >= C) {
        static_cast<T*>(a.kv_cache)[(static_cast<std::int64_t>(r) * a.max_tokens + pos) * 2 * C + (n - C)] = t;
      }
    }
  }
}

// LayerNorm statistics of one float row of 4 * K4 values in shared memory, by one warp: two passes in float
// (mean, then the mean squared deviation), as residual_layernorm does.
__device__ __forceinline__ void row_mean_rstd(const float4* xr, int K4, int lane, float eps, float& mean,
                                              float& rstd) {
  const int K = 4 * K4;
  float sum = 0.f;
  for (int i = lane; i < K4; i += 32) {
    const float4 v = xr[i];
    sum += (v.x + v.y) + (v.z + v.w);
  }
  mean = warp_sum(sum) / K;
  float var = 0.f;
  for (int i = lane; i < K4; i += 32) {
    const float4 v = xr[i];
    const float dx = v.x - mean, dy = v.y - mean, dz = v.z - mean, dw = v.w - mean;
    var += (dx * dx + dy * dy) + (dz * dz + dw * dw);
  }
  rstd = rsqrtf(warp_sum(var) / K + eps);
}

// The prologues, by the whole block (shared with the persistent decode step, decode_persistent.cuh). The input
// rows are read through L2 (ld.global.cg): the persistent kernel reads rows that other blocks wrote in the same
// kernel, which a stale L1 line must not answer. Padding rows (rows..ROWS-1) are zero.
// Float rows [rows][K] -> xs [ROWS][K].
template <int ROWS>
__device__ __forceinline__ void stage_float_rows(float* xs, const float* x, int rows, int K) {
  const int K4 = K / 4;
  const float4* src = reinterpret_cast<const float4*>(x);
  float4* xs4 = reinterpret_cast<float4*>(xs);
  const int valid4 = rows * K4;
#pragma unroll 4
  for (int i = threadIdx.x; i < ROWS * K4; i += blockDim.x)
    xs4[i] = i < valid4 ? __ldcg(src + i) : make_float4(0.f, 0.f, 0.f, 0.f);
}
// LayerNorm of the staged rows in place, one warp per row (after a __syncthreads that follows the staging).
__device__ __forceinline__ void layernorm_staged_rows(float* xs, int rows, int K, const float* ln_w,
                                                      const float* ln_b, float eps) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  const int K4 = K / 4;
  float4* xs4 = reinterpret_cast<float4*>(xs);
  const float4* w4 = reinterpret_cast<const float4*>(ln_w);
  const float4* b4 = reinterpret_cast<const float4*>(ln_b);
  for (int r = warp; r < rows; r += warps) {  // warp-uniform
    float4* xr = xs4 + r * K4;
    float mean, rstd;
    row_mean_rstd(xr, K4, lane, eps, mean, rstd);
#pragma unroll 4
    for (int i = lane; i < K4; i += 32) {  // each lane rewrites only what it read
      const float4 v = xr[i], w = w4[i], b = b4[i];
      xr[i] = make_float4((v.x - mean) * rstd * w.x + b.x, (v.y - mean) * rstd * w.y + b.y,
                          (v.z - mean) * rstd * w.z + b.z, (v.w - mean) * rstd * w.w + b.w);
    }
  }
}
// T activation rows [rows][K] -> xs [ROWS][K] as float.
template <typename T, int ROWS>
__device__ __forceinline__ void stage_activation_rows(float* xs, const T* act, int rows, int K) {
  constexpr int kVec = 16 / static_cast<int>(sizeof(T));
  const int nchunks = K / kVec;
  const int valid = rows * nchunks;  // chunk i of the flattened [rows][K] input = element i * kVec
#pragma unroll 4
  for (int i = threadIdx.x; i < ROWS * nchunks; i += blockDim.x) {
    float f[kVec];
    if (i < valid) {
      unpack<T>(__ldcg(reinterpret_cast<const uint4*>(act + static_cast<std::int64_t>(i) * kVec)), f);
    } else {
#pragma unroll
      for (int e = 0; e < kVec; ++e) f[e] = 0.f;
    }
    float4* dst = reinterpret_cast<float4*>(xs + i * kVec);
#pragma unroll
    for (int j = 0; j < kVec / 4; ++j) dst[j] = make_float4(f[4 * j], f[4 * j + 1], f[4 * j + 2], f[4 * j + 3]);
  }
}

// One stage of weight loads for a warp: for each of the COLS rows n = group * COLS + c of W (row_bytes apart), the
// 16-byte chunks first_chunk + u * 32 + lane, u < U; zeros past N or past the row's nchunks chunks.
// kHere: with ld_weights_here (the loads stay where they are written).
template <int COLS, int U, bool kHere = false>
__device__ __forceinline__ void load_weight_stage(uint4 (&dst)[COLS][U], const void* W, std::int64_t row_bytes,
                                                  int N, int nchunks, int group, int first_chunk, int lane) {
#pragma unroll
  for (int c = 0; c < COLS; ++c) {
    const int n = group * COLS + c;
    const unsigned char* wrow = static_cast<const unsigned char*>(W) + (n < N ? n : 0) * row_bytes;
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int chunk = first_chunk + u * 32 + lane;
      const unsigned char* at = wrow + static_cast<std::int64_t>(chunk) * 16;
      dst[c][u] = !(n < N && chunk < nchunks) ? make_uint4(0u, 0u, 0u, 0u) : kHere ? ld_weights_here(at) : ld_weights(at);
    }
  }
}

// One stage of a warp's products: acc[c * ROWS + r] += W row c's chunks k0 + u * 32 + lane (u < U; those below
// nchunks) times input row r's (xs: float [ROWS][K] in shared memory). In this order: the persistent decode step
// (decode_persistent.cuh) calls it too, and gives the same bits.
template <typename T, int ROWS, int COLS, int U>
__device__ __forceinline__ void accumulate_stage(const uint4 (&cur)[COLS][U], const float* xs, int K, int nchunks,
                                                 int k0, int lane, float (&acc)[COLS * ROWS]) {
  constexpr int kVec = 16 / static_cast<int>(sizeof(T));
#pragma unroll
  for (int u = 0; u < U; ++u) {
    const int chunk = k0 + u * 32 + lane;
    if (chunk < nchunks) {
      float wf[COLS][kVec];
#pragma unroll
      for (int c = 0; c < COLS; ++c) unpack<T>(cur[c][u], wf[c]);
#pragma unroll
      for (int r = 0; r < ROWS; ++r) {
        const float4* xp = reinterpret_cast<const float4*>(xs + r * K + chunk * kVec);
        float xv[kVec];
#pragma unroll
        for (int j = 0; j < kVec / 4; ++j) {
          const float4 t = xp[j];
          xv[4 * j] = t.x;
          xv[4 * j + 1] = t.y;
          xv[4 * j + 2] = t.z;
          xv[4 * j + 3] = t.w;
        }
#pragma unroll
        for (int c = 0; c < COLS; ++c)
#pragma unroll
          for (int e = 0; e < kVec; ++e) acc[c * ROWS + r] = fmaf(wf[c][e], xv[e], acc[c * ROWS + r]);
      }
    }
  }
}

template <typename T, int ROWS, int COLS, int U, GemvIn IN>
__global__ void __launch_bounds__(kMaxThreads, min_blocks(ROWS, COLS, U))
    gemv_kernel(const GemvArgs a, const GemvOut out) {
  constexpr int kVec = 16 / static_cast<int>(sizeof(T));  // elements per 16-byte chunk
  constexpr int kV = COLS * ROWS;
  static_assert(kV <= 32, "COLS * ROWS must be <= 32");
  float* xs = reinterpret_cast<float*>(gemv_smem);  // [ROWS][K]

  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  const int K = a.K, N = a.N, rows = a.rows;
  const int nchunks = K / kVec;
  const int ngroups = (N + COLS - 1) / COLS;
  const int total_warps = gridDim.x * warps;

  int g = blockIdx.x * warps + warp;  // warp-uniform
  int k0 = 0;                         // first chunk of the current stage
  uint4 nxt[COLS][U];
  const std::int64_t row_bytes = static_cast<std::int64_t>(K) * sizeof(T);
  auto load_stage = [&](int gg, int kk) { load_weight_stage<COLS, U>(nxt, a.W, row_bytes, N, nchunks, gg, kk, lane); };
  if (g < ngroups) load_stage(g, 0);  // in flight during the prologue
  // Everything above reads only weights. With programmatic dependent launch the kernel before may still be
  // running: wait for it (a no-op without PDL) before touching inputs, then let the next kernel launch.
  asm volatile("griddepcontrol.wait;" ::: "memory");
  asm volatile("griddepcontrol.launch_dependents;");
  const int pos = (out == GemvOut::kStoreKV) ? *a.pos : 0;

  // ---- prologue: input rows -> xs (float) ----
  if constexpr (IN == GemvIn::kLayerNorm) {
    stage_float_rows<ROWS>(xs, a.x, rows, K);
    __syncthreads();
    layernorm_staged_rows(xs, rows, K, a.ln_w, a.ln_b, a.eps);
  } else {
    stage_activation_rows<T, ROWS>(xs, static_cast<const T*>(a.act), rows, K);
  }
  __syncthreads();  // the last block-level barrier; everything below is per warp

  float acc[kV];
#pragma unroll
  for (int i = 0; i < kV; ++i) acc[i] = 0.f;

  while (g < ngroups) {  // g, k0 are warp-uniform: the shuffles below see the full warp
    uint4 cur[COLS][U];
#pragma unroll
    for (int c = 0; c < COLS; ++c)
#pragma unroll
      for (int u = 0; u < U; ++u) cur[c][u] = nxt[c][u];
    int kn = k0 + 32 * U, gn = g;
    if (kn >= nchunks) {
      kn = 0;
      gn += total_warps;
    }
    if (gn < ngroups) load_stage(gn, kn);

    accumulate_stage<T, ROWS, COLS, U>(cur, xs, K, nchunks, k0, lane, acc);

    if (kn == 0) {  // the group is complete: reduce and write
      const float s = warp_reduce_multi<kV>(acc, lane);
      constexpr int kShift = 5 - ilog2(kV);
      if ((lane & ((1 << kShift) - 1)) == 0) {
        const int idx = lane >> kShift;
        const int c = idx / ROWS, r = idx % ROWS;
        const int n = g * COLS + c;
        if (r < rows && n < N) {
          float v = s;
          if (a.bias) v += to_f(static_cast<const T*>(a.bias)[n]);
          write_output<T>(a, out, r, n, pos, v);
        }
      }
#pragma unroll
      for (int i = 0; i < kV; ++i) acc[i] = 0.f;
    }
    g = gn;
    k0 = kn;
  }
}

inline int current_device() {
  int dev = 0;
  cudaGetDevice(&dev);
  return dev;
}

// (kernel, device, threads, smem) -> resident blocks per SM; also sets the max dynamic smem attribute once.
inline int blocks_per_sm(const void* func, int threads, int smem, int* sms, int* smem_optin) {
  struct Dev {
    int sms = 0, optin = 0;
  };
  static std::mutex mu;
  static std::map<int, Dev> devs;
  static std::map<std::tuple<const void*, int, int, int>, int> occ;
  const int dev = current_device();
  std::lock_guard<std::mutex> lock(mu);
  auto d = devs.find(dev);
  if (d == devs.end()) {
    Dev v;
    cudaDeviceGetAttribute(&v.sms, cudaDevAttrMultiProcessorCount, dev);
    cudaDeviceGetAttribute(&v.optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev);
    d = devs.emplace(dev, v).first;
  }
  *sms = d->second.sms;
  *smem_optin = d->second.optin;
  if (smem > d->second.optin) return 0;
  const auto key = std::make_tuple(func, dev, threads, smem);
  auto o = occ.find(key);
  if (o != occ.end()) return o->second;
  const auto attr_key = std::make_tuple(func, dev, -1, -1);
  if (occ.find(attr_key) == occ.end()) {
    cudaFuncSetAttribute(func, cudaFuncAttributeMaxDynamicSharedMemorySize, d->second.optin);
    occ.emplace(attr_key, 0);
  }
  int b = 0;
  if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&b, func, threads, static_cast<std::size_t>(smem)) != cudaSuccess)
    b = 1;
  if (b < 1) b = 1;
  occ.emplace(key, b);
  return b;
}

template <typename T, int ROWS, int COLS, int U, GemvIn IN>
void launch_one(const GemvArgs& a, GemvOut out, int warps, cudaStream_t stream) {
  auto kernel = gemv_kernel<T, ROWS, COLS, U, IN>;
  const int threads = warps * 32;
  const int smem = ROWS * a.K * static_cast<int>(sizeof(float));
  int sms = 0, optin = 0;
  const int per_sm = blocks_per_sm(reinterpret_cast<const void*>(kernel), threads, smem, &sms, &optin);
  if (per_sm == 0)
    throw std::runtime_error("gemv: " + std::to_string(ROWS) + " x " + std::to_string(a.K) +
                             " floats of shared memory exceed the device limit of " + std::to_string(optin) + " B");
  const long long groups = (a.N + COLS - 1) / COLS;
  const long long want = (groups + warps - 1) / warps;
  const long long cap = static_cast<long long>(sms) * per_sm;
  const int grid = static_cast<int>(want < cap ? want : cap);
  launch_kernel(kernel, dim3(grid), dim3(threads), static_cast<std::size_t>(smem), stream, a.pdl, a, out);
}

// ---- W8A8: int8 weights, input rows quantized to int8 in the prologue, __dp4a main loop ----------------------

// Four floats -> four int8 (quantize_one: clamp(rint(v * inv), -127, 127)), packed little-endian.
__device__ __forceinline__ unsigned int quantize4(float a, float b, float c, float d, float inv) {
  return static_cast<unsigned int>(static_cast<unsigned char>(quantize_one(a, inv))) |
         (static_cast<unsigned int>(static_cast<unsigned char>(quantize_one(b, inv))) << 8) |
         (static_cast<unsigned int>(static_cast<unsigned char>(quantize_one(c, inv))) << 16) |
         (static_cast<unsigned int>(static_cast<unsigned char>(quantize_one(d, inv))) << 24);
}

// Dynamic shared memory of the int8 kernel: the quantized rows int8 [ROWS][K], then (kLayerNorm only) the float
// staging of the rows x [rows][K].
__host__ __device__ constexpr long long int8_smem_bytes(int ROWS, int rows, int K, bool layernorm) {
  return static_cast<long long>(ROWS) * K + (layernorm ? 4ll * rows * K : 0ll);
}

// Same mapping as gemv_kernel (one warp per COLS columns, lane l takes 16-byte chunks l, l+32, ... of each weight
// row = 16 int8 per load, U chunks per column per stage, register double-buffered, first stage issued before the
// prologue, warps striding over groups) with int32 accumulators fed by __dp4a: per chunk and row, one 16-byte
// shared load of 16 quantized inputs and 4 __dp4a per column. inv_scale = 1 / act_scale computed on the host (the
// same float as the unfused quantize_int8 launch).
template <int ROWS, int COLS, int U, GemvIn IN>
__global__ void __launch_bounds__(kMaxThreads, min_blocks(ROWS, COLS, U))
    gemv_int8_kernel(const GemvInt8Args a, const GemvOut out, const float inv_scale) {
  constexpr int kVec = 16;  // int8 per 16-byte chunk
  constexpr int kV = COLS * ROWS;
  static_assert(kV <= 32, "COLS * ROWS must be <= 32");
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  const int K = a.K, N = a.N, rows = a.rows;
  const int nchunks = K / kVec;
  const int ngroups = (N + COLS - 1) / COLS;
  const int total_warps = gridDim.x * warps;
  std::int8_t* qs = reinterpret_cast<std::int8_t*>(gemv_smem);  // [ROWS][K] quantized input rows
  float* xs = reinterpret_cast<float*>(gemv_smem + static_cast<std::size_t>(ROWS) * K);  // kLayerNorm: [rows][K]

  int g = blockIdx.x * warps + warp;  // warp-uniform
  int k0 = 0;
  uint4 nxt[COLS][U];
  const std::int64_t row_bytes = static_cast<std::int64_t>(K);
  auto load_stage = [&](int gg, int kk) { load_weight_stage<COLS, U>(nxt, a.W, row_bytes, N, nchunks, gg, kk, lane); };
  if (g < ngroups) load_stage(g, 0);  // in flight during the prologue
  asm volatile("griddepcontrol.wait;" ::: "memory");  // as gemv_kernel: inputs only after the previous kernel
  asm volatile("griddepcontrol.launch_dependents;");
  const int pos = (out == GemvOut::kStoreKV) ? *a.pos : 0;

  // ---- prologue: input rows -> qs (int8), padding rows zero ----
  uint4* qs16 = reinterpret_cast<uint4*>(qs);
  if constexpr (IN == GemvIn::kLayerNorm) {
    const int K4 = K / 4;
    const float4* src = reinterpret_cast<const float4*>(a.x);
    float4* xs4 = reinterpret_cast<float4*>(xs);
#pragma unroll 4
    for (int i = threadIdx.x; i < rows * K4; i += blockDim.x) xs4[i] = src[i];
    for (int i = rows * nchunks + threadIdx.x; i < ROWS * nchunks; i += blockDim.x)
      qs16[i] = make_uint4(0u, 0u, 0u, 0u);
    __syncthreads();
    const float4* w4 = reinterpret_cast<const float4*>(a.ln_w);
    const float4* b4 = reinterpret_cast<const float4*>(a.ln_b);
    unsigned int* qs4 = reinterpret_cast<unsigned int*>(qs);
    for (int r = warp; r < rows; r += warps) {  // warp-uniform; the same float LayerNorm as gemv_kernel
      const float4* xr = xs4 + r * K4;
      float mean, rstd;
      row_mean_rstd(xr, K4, lane, a.eps, mean, rstd);
#pragma unroll 4
      for (int i = lane; i < K4; i += 32) {
        const float4 v = xr[i], w = w4[i], b = b4[i];
        qs4[r * K4 + i] = quantize4((v.x - mean) * rstd * w.x + b.x, (v.y - mean) * rstd * w.y + b.y,
                                    (v.z - mean) * rstd * w.z + b.z, (v.w - mean) * rstd * w.w + b.w, inv_scale);
      }
    }
  } else {
    const __half* act = static_cast<const __half*>(a.act);
    const int n8 = K / 8;  // 8 halves (16 bytes) in, 8 int8 out
    const int valid = rows * n8;
    uint2* qs8 = reinterpret_cast<uint2*>(qs);
#pragma unroll 4
    for (int i = threadIdx.x; i < ROWS * n8; i += blockDim.x) {
      uint2 q = make_uint2(0u, 0u);
      if (i < valid) {
        float f[8];
        unpack<__half>(*reinterpret_cast<const uint4*>(act + static_cast<std::int64_t>(i) * 8), f);
        q.x = quantize4(f[0], f[1], f[2], f[3], inv_scale);
        q.y = quantize4(f[4], f[5], f[6], f[7], inv_scale);
      }
      qs8[i] = q;
    }
  }
  __syncthreads();  // the last block-level barrier; everything below is per warp

  int acc[kV];
#pragma unroll
  for (int i = 0; i < kV; ++i) acc[i] = 0;

  while (g < ngroups) {
    uint4 cur[COLS][U];
#pragma unroll
    for (int c = 0; c < COLS; ++c)
#pragma unroll
      for (int u = 0; u < U; ++u) cur[c][u] = nxt[c][u];
    int kn = k0 + 32 * U, gn = g;
    if (kn >= nchunks) {
      kn = 0;
      gn += total_warps;
    }
    if (gn < ngroups) load_stage(gn, kn);

#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int chunk = k0 + u * 32 + lane;
      if (chunk < nchunks) {
#pragma unroll
        for (int r = 0; r < ROWS; ++r) {
          const uint4 xq = qs16[r * nchunks + chunk];
#pragma unroll
          for (int c = 0; c < COLS; ++c) {
            int& s = acc[c * ROWS + r];
            s = __dp4a(static_cast<int>(cur[c][u].x), static_cast<int>(xq.x), s);
            s = __dp4a(static_cast<int>(cur[c][u].y), static_cast<int>(xq.y), s);
            s = __dp4a(static_cast<int>(cur[c][u].z), static_cast<int>(xq.z), s);
            s = __dp4a(static_cast<int>(cur[c][u].w), static_cast<int>(xq.w), s);
          }
        }
      }
    }

    if (kn == 0) {  // the group is complete: reduce (exact int32 adds) and write
      const int s = warp_reduce_multi<kV>(acc, lane);
      constexpr int kShift = 5 - ilog2(kV);
      if ((lane & ((1 << kShift) - 1)) == 0) {
        const int idx = lane >> kShift;
        const int c = idx / ROWS, r = idx % ROWS;
        const int n = g * COLS + c;
        if (r < rows && n < N) {
          float v = a.act_scale * __ldg(a.w_scale + n) * static_cast<float>(s);  // as dequantize_int8
          if (a.bias) v += __half2float(static_cast<const __half*>(a.bias)[n]);
          write_output<__half>(a, out, r, n, pos, v);
        }
      }
#pragma unroll
      for (int i = 0; i < kV; ++i) acc[i] = 0;
    }
    g = gn;
    k0 = kn;
  }
}

template <int ROWS, int COLS, int U, GemvIn IN>
void launch_one_int8(const GemvInt8Args& a, GemvOut out, int warps, cudaStream_t stream) {
  auto kernel = gemv_int8_kernel<ROWS, COLS, U, IN>;
  const int threads = warps * 32;
  const long long smem_ll = int8_smem_bytes(ROWS, a.rows, a.K, IN == GemvIn::kLayerNorm);
  int sms = 0, optin = 0;
  const int smem = smem_ll > (1ll << 30) ? (1 << 30) : static_cast<int>(smem_ll);
  const int per_sm = blocks_per_sm(reinterpret_cast<const void*>(kernel), threads, smem, &sms, &optin);
  if (per_sm == 0)
    throw std::runtime_error("gemv_int8: " + std::to_string(smem_ll) + " B of shared memory (K = " +
                             std::to_string(a.K) + ") exceed the device limit of " + std::to_string(optin) + " B");
  const long long groups = (a.N + COLS - 1) / COLS;
  const long long want = (groups + warps - 1) / warps;
  const long long cap = static_cast<long long>(sms) * per_sm;
  const int grid = static_cast<int>(want < cap ? want : cap);
  const float inv_scale = 1.f / a.act_scale;  // IEEE on the host, as the unfused path's quantize_int8 launch
  launch_kernel(kernel, dim3(grid), dim3(threads), static_cast<std::size_t>(smem), stream, a.pdl, a, out, inv_scale);
}

}  // namespace gemv_detail

// True when launch_gemv can run this shape (checks the shared memory need against the device limit).
inline bool gemv_supported(int rows, int K) {
  if (rows < 1 || rows > 8 || K <= 0 || K % 8 != 0) return false;
  const int R = rows <= 1 ? 1 : rows <= 2 ? 2 : rows <= 4 ? 4 : 8;
  int optin = 0;
  cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, gemv_detail::current_device());
  return static_cast<long long>(R) * K * 4 <= optin;
}

// One configuration: COLS columns per warp, U 16-byte chunks per column per lane and stage, `warps` warps per
// block (1..8). Dispatches rows (rounded up to 1, 2, 4, 8) and the input mode; the output mode is a uniform
// runtime branch in the epilogue.
template <typename T, int COLS, int U>
void launch_gemv_config(const GemvArgs& a, GemvIn in, GemvOut out, int warps, cudaStream_t stream) {
  using gemv_detail::launch_one;
  if (a.rows < 1 || a.rows > 8) throw std::runtime_error("gemv: rows must be in [1, 8]");
  if (a.K <= 0 || a.K % 8 != 0 || a.N <= 0) throw std::runtime_error("gemv: K must be a positive multiple of 8");
  if (warps < 1 || warps * 32 > gemv_detail::kMaxThreads) throw std::runtime_error("gemv: warps must be in [1, 8]");
  if (in == GemvIn::kLayerNorm && out == GemvOut::kResidualAdd && a.resid == a.x)
    throw std::runtime_error("gemv: LayerNorm input and residual output on the same buffer");
  if (out == GemvOut::kStoreKV && a.N % 3 != 0) throw std::runtime_error("gemv: kStoreKV needs N = 3C");
  const bool ln = in == GemvIn::kLayerNorm;
#define GPTBENCH_GEMV_ROWS(R)                                                                   \
  if (ln) launch_one<T, R, (R * COLS <= 32 ? COLS : 32 / R), U, GemvIn::kLayerNorm>(a, out, warps, stream); \
  else launch_one<T, R, (R * COLS <= 32 ? COLS : 32 / R), U, GemvIn::kPlain>(a, out, warps, stream);
  if (a.rows <= 1) {
    GPTBENCH_GEMV_ROWS(1)
  } else if (a.rows <= 2) {
    GPTBENCH_GEMV_ROWS(2)
  } else if (a.rows <= 4) {
    GPTBENCH_GEMV_ROWS(4)
  } else {
    GPTBENCH_GEMV_ROWS(8)
  }
#undef GPTBENCH_GEMV_ROWS
}

// The engine's entry point: picks the configuration. 2 columns per warp from 4 rows on (halves the shared-memory
// traffic per weight byte) and for wide products with a short K; 1 column per warp otherwise;
// 8 warps per block when that still gives at least one block per SM, else 4 (N = 768 -> 192 or 96 blocks).
template <typename T>
void launch_gemv(const GemvArgs& a, GemvIn in, GemvOut out, cudaStream_t stream) {
  static std::atomic<int> sms{0};
  int s = sms.load(std::memory_order_relaxed);
  if (s == 0) {
    cudaDeviceGetAttribute(&s, cudaDevAttrMultiProcessorCount, gemv_detail::current_device());
    sms.store(s, std::memory_order_relaxed);
  }
  // Measured on an H100 (lab/cuda/gemv_lab.cu, weights cold in L2), 1-2 rows: 2 columns per warp win where K is
  // short and N wide (768 -> 2304: 5.1 vs 5.6 us; 768 -> 3072: 5.6 vs 5.8 us); 1 column with 4 loads in flight
  // wins for N = 768 (2.65 vs 3.0 us) and K = 3072 (4.6 vs 5.8 us).
  const bool wide_short = a.N > 1024 && a.K < 2048;
  const int cols = a.rows >= 4 || wide_short ? 2 : 1;
  const long long groups = (static_cast<long long>(a.N) + cols - 1) / cols;
  const int warps = groups / 8 >= s ? 8 : 4;
  if (cols == 1) launch_gemv_config<T, 1, 4>(a, in, out, warps, stream);
  else launch_gemv_config<T, 2, 2>(a, in, out, warps, stream);
}

// ---- W8A8 entry points ----------------------------------------------------------------------------------------

// True when launch_gemv_int8 can run this shape in either input mode (kLayerNorm needs the larger shared memory:
// ROWS * K int8 + rows * K floats).
inline bool gemv_int8_supported(int rows, int K) {
  if (rows < 1 || rows > 8 || K <= 0 || K % 16 != 0) return false;
  const int R = rows <= 1 ? 1 : rows <= 2 ? 2 : rows <= 4 ? 4 : 8;
  int optin = 0;
  cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, gemv_detail::current_device());
  return gemv_detail::int8_smem_bytes(R, rows, K, true) <= optin;
}

// One int8 configuration (COLS columns per warp, U chunks of 16 int8 per column per lane and stage, `warps` warps).
template <int COLS, int U>
void launch_gemv_int8_config(const GemvInt8Args& a, GemvIn in, GemvOut out, int warps, cudaStream_t stream) {
  using gemv_detail::launch_one_int8;
  if (a.rows < 1 || a.rows > 8) throw std::runtime_error("gemv_int8: rows must be in [1, 8]");
  if (a.K <= 0 || a.K % 16 != 0 || a.N <= 0) throw std::runtime_error("gemv_int8: K must be a positive multiple of 16");
  if (warps < 1 || warps * 32 > gemv_detail::kMaxThreads) throw std::runtime_error("gemv_int8: warps must be in [1, 8]");
  if (!a.w_scale) throw std::runtime_error("gemv_int8: w_scale is null");
  if (!(a.act_scale > 0.f) || !std::isfinite(a.act_scale) || !std::isfinite(1.f / a.act_scale))
    throw std::runtime_error("gemv_int8: act_scale must be positive and finite");
  if (in == GemvIn::kLayerNorm && out == GemvOut::kResidualAdd && a.resid == a.x)
    throw std::runtime_error("gemv_int8: LayerNorm input and residual output on the same buffer");
  if (out == GemvOut::kStoreKV && a.N % 3 != 0) throw std::runtime_error("gemv_int8: kStoreKV needs N = 3C");
  const bool ln = in == GemvIn::kLayerNorm;
#define GPTBENCH_GEMV_INT8_ROWS(R)                                                                        \
  if (ln) launch_one_int8<R, (R * COLS <= 32 ? COLS : 32 / R), U, GemvIn::kLayerNorm>(a, out, warps, stream); \
  else launch_one_int8<R, (R * COLS <= 32 ? COLS : 32 / R), U, GemvIn::kPlain>(a, out, warps, stream);
  if (a.rows <= 1) {
    GPTBENCH_GEMV_INT8_ROWS(1)
  } else if (a.rows <= 2) {
    GPTBENCH_GEMV_INT8_ROWS(2)
  } else if (a.rows <= 4) {
    GPTBENCH_GEMV_INT8_ROWS(4)
  } else {
    GPTBENCH_GEMV_INT8_ROWS(8)
  }
#undef GPTBENCH_GEMV_INT8_ROWS
}

// The engine's int8 entry point. A 16-byte load holds 16 weights (8 for fp16), so a short row (K <= 1024: at most
// 64 chunks) is covered by U = 2 and more columns per warp keep the bytes in flight: 4 columns for wide products
// (N > 1024: qkv, fc, LM head), else 1 (2 from 4 rows on). Long rows (K = 3072): 1 column, 4 chunks in flight
// (2 columns, 2 chunks from 4 rows on), as the fp16 choice. 8 warps per block when there are at least 8 groups
// per SM, else 4. Not yet measured: lab/cuda/gemv_lab.cu --int8-only times the alternatives (i2..i8).
inline void launch_gemv_int8(const GemvInt8Args& a, GemvIn in, GemvOut out, cudaStream_t stream) {
  static std::atomic<int> sms{0};
  int s = sms.load(std::memory_order_relaxed);
  if (s == 0) {
    cudaDeviceGetAttribute(&s, cudaDevAttrMultiProcessorCount, gemv_detail::current_device());
    sms.store(s, std::memory_order_relaxed);
  }
  const bool short_k = a.K <= 1024;
  const int cols = short_k ? (a.N > 1024 ? 4 : a.rows >= 4 ? 2 : 1) : (a.rows >= 4 ? 2 : 1);
  const long long groups = (static_cast<long long>(a.N) + cols - 1) / cols;
  const int warps = groups / 8 >= s ? 8 : 4;
  if (cols == 4) launch_gemv_int8_config<4, 2>(a, in, out, warps, stream);
  else if (cols == 2) launch_gemv_int8_config<2, 2>(a, in, out, warps, stream);
  else if (short_k) launch_gemv_int8_config<1, 2>(a, in, out, warps, stream);
  else launch_gemv_int8_config<1, 4>(a, in, out, warps, stream);
}

}  // namespace gptbench::cuda_engine::kernels
