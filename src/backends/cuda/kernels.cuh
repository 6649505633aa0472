#pragma once
// Device kernels of the CUDA engine. Activations are of type T (float, half or bfloat16); the residual stream is
// float, except in fp16 / bf16 prefills through cuBLASLt with option residual_16bit (on for fp16), where it is T as
// in PyTorch: there its float traffic cost 2.5-6 % of a B8 x S512 prefill (H200). Logits are of
// type T too (as in PyTorch), read back through float. All reductions accumulate in float (double for sums
// that become checksums).
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <mma.h>

#include <cfloat>
#include <cstdint>
#include <type_traits>
#include <utility>

namespace gptbench::cuda_engine::kernels {

template <typename T>
__device__ __forceinline__ float to_f(T v);
template <>
__device__ __forceinline__ float to_f<float>(float v) { return v; }
template <>
__device__ __forceinline__ float to_f<__half>(__half v) { return __half2float(v); }
template <>
__device__ __forceinline__ float to_f<__nv_bfloat16>(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T>
__device__ __forceinline__ T from_f(float v);
template <>
__device__ __forceinline__ float from_f<float>(float v) { return v; }
template <>
__device__ __forceinline__ __half from_f<__half>(float v) { return __float2half_rn(v); }
template <>
__device__ __forceinline__ __nv_bfloat16 from_f<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// ---- weight conversion ---------------------------------------------------------------------------------------
template <typename T>
__global__ void convert_from_float(const float* in, T* out, std::int64_t n) {
  std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  for (; i < n; i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) out[i] = from_f<T>(in[i]);
}

// The configuration of one launch through cudaLaunchKernelEx (or an occupancy query) with the attributes the engine
// uses: programmatic dependent launch (`pdl`: Hopper PDL — the kernel may start while the one before it in the
// stream finishes, so it must run griddepcontrol.wait before it reads anything that kernel wrote), a cluster shape
// (attribute set only for clusters of more than one block) and cooperative launch. cfg.attrs points into the object
// itself, so it is neither copied nor moved (returned only as a prvalue).
struct LaunchConfig {
  cudaLaunchConfig_t cfg = {};
  cudaLaunchAttribute attr[3];
  LaunchConfig(dim3 grid, dim3 block, std::size_t smem, cudaStream_t stream, bool pdl = false,
               dim3 cluster = dim3(1, 1, 1), bool cooperative = false) {
    cfg.gridDim = grid;
    cfg.blockDim = block;
    cfg.dynamicSmemBytes = smem;
    cfg.stream = stream;
    int n = 0;
    if (pdl) {
      attr[n].id = cudaLaunchAttributeProgrammaticStreamSerialization;
      attr[n++].val.programmaticStreamSerializationAllowed = 1;
    }
    if (cluster.x * cluster.y * cluster.z > 1) {
      attr[n].id = cudaLaunchAttributeClusterDimension;
      attr[n].val.clusterDim.x = cluster.x;
      attr[n].val.clusterDim.y = cluster.y;
      attr[n++].val.clusterDim.z = cluster.z;
    }
    if (cooperative) {
      attr[n].id = cudaLaunchAttributeCooperative;
      attr[n++].val.cooperative = 1;
    }
    cfg.attrs = attr;
    cfg.numAttrs = n;
  }
  LaunchConfig(const LaunchConfig&) = delete;
  LaunchConfig& operator=(const LaunchConfig&) = delete;
};

// kernel<<<grid, block, smem, stream>>>(args...), as a programmatic dependent of the kernel before it in the stream
// when `pdl` (LaunchConfig).
template <typename... Params, typename... Args>
cudaError_t launch_kernel(void (*kernel)(Params...), dim3 grid, dim3 block, std::size_t smem, cudaStream_t stream,
                          bool pdl, Args&&... args) {
  const LaunchConfig launch(grid, block, smem, stream, pdl);
  return cudaLaunchKernelEx(&launch.cfg, kernel, std::forward<Args>(args)...);
}

// Four consecutive values, loaded or stored with one vector access.
template <typename T>
struct alignas(4 * sizeof(T)) Vec4 {
  T v[4];
};

// ---- embedding: x[row] = wte[id] + wpe[pos0 + s], in float -----------------------------------------------------
// Four elements of it from the token's and the position's embedding rows (4-aligned): every embedding path
// (embed, embed_layernorm_reg, the persistent kernel's first row phase) adds them here, so all give the same x.
template <typename T>
__device__ __forceinline__ float4 embedding4(const T* token, const T* position) {
  const Vec4<T> a = *reinterpret_cast<const Vec4<T>*>(token);
  const Vec4<T> b = *reinterpret_cast<const Vec4<T>*>(position);
  return make_float4(to_f(a.v[0]) + to_f(b.v[0]), to_f(a.v[1]) + to_f(b.v[1]), to_f(a.v[2]) + to_f(b.v[2]),
                     to_f(a.v[3]) + to_f(b.v[3]));
}

// Vector accesses when C % 4 == 0 (every row then starts 4-aligned): scalar 16-bit loads made B8 x S512's
// embedding (25 MB moved) take 14-21 us on an H200.
template <typename T>
__global__ void embed(const int* ids, const T* wte, const T* wpe, float* x, int seq, int C, const int* pos0) {
  const int row = blockIdx.x;
  const int s = row % seq;
  const int p = (pos0 ? *pos0 : 0) + s;
  const T* e = wte + static_cast<std::int64_t>(ids[row]) * C;
  const T* q = wpe + static_cast<std::int64_t>(p) * C;
  float* out = x + static_cast<std::int64_t>(row) * C;
  if (C % 4 == 0) {
    for (int c = threadIdx.x * 4; c < C; c += blockDim.x * 4)
      *reinterpret_cast<float4*>(out + c) = embedding4(e + c, q + c);
    return;
  }
  for (int c = threadIdx.x; c < C; c += blockDim.x) out[c] = to_f(e[c]) + to_f(q[c]);
}

// ---- residual add + LayerNorm: x += delta (when given); out = LN(x) * w + b. One warp per row. ---------------
template <typename T>
__global__ void residual_layernorm(float* x, const T* delta, const float* w, const float* b, T* out, int rows, int C,
                                   float eps) {
  // Launched as a programmatic dependent (option prefill_pdl): read x / delta only after the kernel before has
  // finished and flushed. Without PDL both instructions are no-ops.
  asm volatile("griddepcontrol.wait;" ::: "memory");
  asm volatile("griddepcontrol.launch_dependents;");
  const int warps = blockDim.x / 32;
  const int row = blockIdx.x * warps + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (row >= rows) return;
  float* xr = x + static_cast<std::int64_t>(row) * C;
  float sum = 0.f;
  if (delta) {
    const T* dr = delta + static_cast<std::int64_t>(row) * C;
    for (int c = lane; c < C; c += 32) {
      const float v = xr[c] + to_f(dr[c]);
      xr[c] = v;
      sum += v;
    }
  } else {
    for (int c = lane; c < C; c += 32) sum += xr[c];
  }
  const float mean = warp_sum(sum) / C;
  float var = 0.f;
  for (int c = lane; c < C; c += 32) {
    const float d = xr[c] - mean;
    var += d * d;
  }
  const float rstd = rsqrtf(warp_sum(var) / C + eps);
  T* orow = out + static_cast<std::int64_t>(row) * C;
  for (int c = lane; c < C; c += 32) orow[c] = from_f<T>((xr[c] - mean) * rstd * w[c] + b[c]);
}

// The mean and 1 / std of one row held in registers (V float4 per lane of the row's warp), in a fixed order: every
// register-row LayerNorm computes them here, so all give the same bits.
template <int V>
__device__ __forceinline__ void row_mean_rstd(const float4 (&v)[V], int C, float eps, float& mean, float& rstd) {
  float sum = 0.f;
#pragma unroll
  for (int i = 0; i < V; ++i) sum += (v[i].x + v[i].y) + (v[i].z + v[i].w);
  mean = warp_sum(sum) / C;
  float var = 0.f;
#pragma unroll
  for (int i = 0; i < V; ++i) {
    const float a = v[i].x - mean, bb = v[i].y - mean, cc = v[i].z - mean, dd = v[i].w - mean;
    var += (a * a + bb * bb) + (cc * cc + dd * dd);
  }
  rstd = rsqrtf(warp_sum(var) / C + eps);
}

// Four elements of a normalised row: (v - mean) * rstd * w + b, rounded to T (and stored at p).
template <typename T>
__device__ __forceinline__ Vec4<T> normalised4(float4 v, float mean, float rstd, float4 w, float4 b) {
  Vec4<T> o;
  o.v[0] = from_f<T>((v.x - mean) * rstd * w.x + b.x);
  o.v[1] = from_f<T>((v.y - mean) * rstd * w.y + b.y);
  o.v[2] = from_f<T>((v.z - mean) * rstd * w.z + b.z);
  o.v[3] = from_f<T>((v.w - mean) * rstd * w.w + b.w);
  return o;
}
template <typename T>
__device__ __forceinline__ void store_normalised4(T* p, float4 v, float mean, float rstd, float4 w, float4 b) {
  *reinterpret_cast<Vec4<T>*>(p) = normalised4<T>(v, mean, rstd, w, b);
}

// LayerNorm of one row held in registers (V float4 per lane of the row's warp, element c = (i * 32 + lane) * 4):
// out = LN(v) * w + b.
template <typename T, int V>
__device__ __forceinline__ void layernorm_row_reg(const float4 (&v)[V], int lane, const float* w, const float* b,
                                                  T* orow, int C, float eps) {
  float mean, rstd;
  row_mean_rstd<V>(v, C, eps, mean, rstd);
#pragma unroll
  for (int i = 0; i < V; ++i) {
    const int c = (i * 32 + lane) * 4;
    store_normalised4(orow + c, v[i], mean, rstd, *reinterpret_cast<const float4*>(w + c),
                      *reinterpret_cast<const float4*>(b + c));
  }
}

// The residual stream's four elements at p: float, or (option residual_16bit) the precision's 16-bit type. A
// 16-bit store returns the rounded values, so a LayerNorm of the stored row sees what the next reader will.
template <typename R>
__device__ __forceinline__ float4 load_residual4(const R* p) {
  if constexpr (std::is_same_v<R, float>) {
    return *reinterpret_cast<const float4*>(p);
  } else {
    const Vec4<R> a = *reinterpret_cast<const Vec4<R>*>(p);
    return make_float4(to_f(a.v[0]), to_f(a.v[1]), to_f(a.v[2]), to_f(a.v[3]));
  }
}
template <typename R>
__device__ __forceinline__ float4 store_residual4(R* p, float4 v) {
  if constexpr (std::is_same_v<R, float>) {
    *reinterpret_cast<float4*>(p) = v;
    return v;
  } else {
    Vec4<R> a;
    a.v[0] = from_f<R>(v.x);
    a.v[1] = from_f<R>(v.y);
    a.v[2] = from_f<R>(v.z);
    a.v[3] = from_f<R>(v.w);
    *reinterpret_cast<Vec4<R>*>(p) = a;
    return make_float4(to_f(a.v[0]), to_f(a.v[1]), to_f(a.v[2]), to_f(a.v[3]));
  }
}

// The same with the row in registers (V float4 per lane, C = 128 * V): x and delta are read once and x and
// out written once with vector accesses, instead of three scalar passes over x. Used when C % 128 == 0 and
// C <= 1024 (GPT-2 124M: V = 6). R: the residual stream's element type (float, or T with residual_16bit).
template <typename T, int V, typename R = float>
__global__ void residual_layernorm_reg(R* x, const T* delta, const float* w, const float* b, T* out, int rows,
                                       int C, float eps) {
  asm volatile("griddepcontrol.wait;" ::: "memory");  // as residual_layernorm
  asm volatile("griddepcontrol.launch_dependents;");
  const int warps = blockDim.x / 32;
  const int row = blockIdx.x * warps + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (row >= rows) return;
  R* xr = x + static_cast<std::int64_t>(row) * C;
  float4 v[V];
#pragma unroll
  for (int i = 0; i < V; ++i) {
    const int c = (i * 32 + lane) * 4;
    v[i] = load_residual4(xr + c);
    if (delta) {
      const Vec4<T> d = *reinterpret_cast<const Vec4<T>*>(delta + static_cast<std::int64_t>(row) * C + c);
      v[i].x += to_f(d.v[0]);
      v[i].y += to_f(d.v[1]);
      v[i].z += to_f(d.v[2]);
      v[i].w += to_f(d.v[3]);
      v[i] = store_residual4(xr + c, v[i]);
    }
  }
  layernorm_row_reg<T, V>(v, lane, w, b, out + static_cast<std::int64_t>(row) * C, C, eps);
}

// LayerNorm of ROWS rows per warp (option layernorm_rows, default 2; x already holds the residual sum): the warp
// loads w and b once, before its rows, and has all its rows' loads in flight together, where residual_layernorm_reg
// loads one row and then w and b after the row's two reductions — one more memory round trip in a chain that is
// most of a short kernel's time (H200, 2 rows: B8 x S128 0.727 vs 0.763 ms a prefill; no change measurable at
// 4,096 rows). The same row_mean_rstd and store_normalised4 per row: the same bits.
template <typename T, int V, int ROWS, typename R>
__global__ void layernorm_rows_reg(const R* x, const float* w, const float* b, T* out, int rows, int C, float eps) {
  asm volatile("griddepcontrol.wait;" ::: "memory");  // as residual_layernorm
  asm volatile("griddepcontrol.launch_dependents;");
  const int warps = blockDim.x / 32;
  const int row0 = (blockIdx.x * warps + threadIdx.x / 32) * ROWS;
  const int lane = threadIdx.x % 32;
  if (row0 >= rows) return;
  float4 v[ROWS][V], w4[V], b4[V];
#pragma unroll
  for (int i = 0; i < V; ++i) {
    const int c = (i * 32 + lane) * 4;
    w4[i] = *reinterpret_cast<const float4*>(w + c);
    b4[i] = *reinterpret_cast<const float4*>(b + c);
  }
#pragma unroll
  for (int r = 0; r < ROWS; ++r)
#pragma unroll
    for (int i = 0; i < V; ++i)
      if (row0 + r < rows) v[r][i] = load_residual4(x + static_cast<std::int64_t>(row0 + r) * C + (i * 32 + lane) * 4);
#pragma unroll
  for (int r = 0; r < ROWS; ++r) {
    if (row0 + r >= rows) break;
    float mean, rstd;
    row_mean_rstd<V>(v[r], C, eps, mean, rstd);
    T* orow = out + static_cast<std::int64_t>(row0 + r) * C;
#pragma unroll
    for (int i = 0; i < V; ++i) store_normalised4(orow + (i * 32 + lane) * 4, v[r][i], mean, rstd, w4[i], b4[i]);
  }
}

// The embedding and the first LayerNorm in one pass (C = 128 * V, one warp per row): x[row] = wte[id] + wpe[pos]
// (in R: float, or T with residual_16bit), out = LN(x) * w + b — the separate kernels wrote x and read it back
// (B8 x S512, H200 profile: embed 16.3 us + LayerNorm 7.8 us).
template <typename T, int V, typename R = float>
__global__ void embed_layernorm_reg(const int* ids, const T* wte, const T* wpe, R* x, int seq, const float* w,
                                    const float* b, T* out, int rows, int C, float eps) {
  // The kernel after it may be a programmatic dependent (the few-row chain's first product): let it start.
  asm volatile("griddepcontrol.launch_dependents;");
  const int warps = blockDim.x / 32;
  const int row = blockIdx.x * warps + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (row >= rows) return;
  const T* e = wte + static_cast<std::int64_t>(ids[row]) * C;
  const T* q = wpe + static_cast<std::int64_t>(row % seq) * C;
  R* xr = x + static_cast<std::int64_t>(row) * C;
  float4 v[V];
#pragma unroll
  for (int i = 0; i < V; ++i) {
    const int c = (i * 32 + lane) * 4;
    v[i] = store_residual4(xr + c, embedding4(e + c, q + c));
  }
  layernorm_row_reg<T, V>(v, lane, w, b, out + static_cast<std::int64_t>(row) * C, C, eps);
}

// ---- GELU: the tanh form (gelu_new, gelu_pytorch_tanh) and the erf form (gelu), in float --------------------------
__device__ __forceinline__ float gelu_tanh(float v) {
  return 0.5f * v * (1.f + tanhf(0.7978845608028654f * (v + 0.044715f * v * v * v)));
}
__device__ __forceinline__ float gelu_erf(float v) { return 0.5f * v * (1.f + erff(v * 0.7071067811865476f)); }

// (when not fused into the GEMM epilogue)
template <typename T, bool kTanh>
__global__ void gelu_inplace(T* x, std::int64_t n) {
  std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  for (; i < n; i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const float v = to_f(x[i]);
    x[i] = from_f<T>(kTanh ? gelu_tanh(v) : gelu_erf(v));
  }
}

// ---- causal attention, tensor cores (half / bfloat16) ---------------------------------------------------------
// Flash-attention style: a block holds 16*WARPS queries of one (batch, head); it walks key tiles of 64,
// S = Q K^T on tensor cores (WMMA), online softmax in float per query row, O += P V on tensor cores.
// Each warp owns 16 query rows and their running max / sum / output in shared memory; only the K/V tile
// loads are shared by the block. q/k/v point at the first element of head 0 of row 0 for this batch's
// first token; rows are `row_stride` elements apart (3C inside the fused qkv buffer).
constexpr int kKeyTile = 64;

template <typename T, int D, int WARPS>
struct FlashSmem {
  static constexpr int kQ = 16 * WARPS;
  static constexpr int kLdT = D + 8;      // T rows (16 bytes of padding against bank conflicts)
  static constexpr int kLdS = kKeyTile + 4;  // float score rows
  static constexpr int kLdP = kKeyTile + 8;  // T probability rows
  static constexpr int kLdO = D + 4;      // float output rows
  static constexpr int round(int bytes) { return (bytes + 127) / 128 * 128; }
  static constexpr int q_off = 0;
  static constexpr int k_off = q_off + round(kQ * kLdT * static_cast<int>(sizeof(T)));
  static constexpr int v_off = k_off + round(kKeyTile * kLdT * static_cast<int>(sizeof(T)));
  static constexpr int s_off = v_off + round(kKeyTile * kLdT * static_cast<int>(sizeof(T)));
  static constexpr int p_off = s_off + round(WARPS * 16 * kLdS * 4);
  static constexpr int o_off = p_off + round(WARPS * 16 * kLdP * static_cast<int>(sizeof(T)));
  static constexpr int bytes = o_off + round(WARPS * 16 * kLdO * 4);
};

template <typename T, int D, int WARPS>
__global__ void __launch_bounds__(WARPS * 32) flash_attention_wmma(const T* __restrict__ qkv, T* __restrict__ out,
                                                                    int seq, int heads, int row_stride, int out_stride,
                                                                    float scale_log2) {
  using namespace nvcuda;
  using L = FlashSmem<T, D, WARPS>;
  extern __shared__ __align__(128) unsigned char smem[];
  T* Qs = reinterpret_cast<T*>(smem + L::q_off);
  T* Ks = reinterpret_cast<T*>(smem + L::k_off);
  T* Vs = reinterpret_cast<T*>(smem + L::v_off);
  float* Ss = reinterpret_cast<float*>(smem + L::s_off);
  T* Ps = reinterpret_cast<T*>(smem + L::p_off);
  float* Os = reinterpret_cast<float*>(smem + L::o_off);

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int bh = blockIdx.y;
  const int b = bh / heads, h = bh % heads;
  const int C = heads * D;
  const T* q_base = qkv + static_cast<std::int64_t>(b) * seq * row_stride + h * D;
  const T* k_base = q_base + C;
  const T* v_base = q_base + 2 * C;
  const int q0 = blockIdx.x * L::kQ;
  constexpr int kVec = 16 / sizeof(T);  // elements per 16-byte load
  constexpr int kChunks = D / kVec;

  // Q tile (zeros past the end of the sequence).
  for (int i = threadIdx.x; i < L::kQ * kChunks; i += WARPS * 32) {
    const int r = i / kChunks, c = (i % kChunks) * kVec;
    uint4 v = make_uint4(0, 0, 0, 0);
    if (q0 + r < seq) v = *reinterpret_cast<const uint4*>(q_base + static_cast<std::int64_t>(q0 + r) * row_stride + c);
    *reinterpret_cast<uint4*>(Qs + r * L::kLdT + c) = v;
  }
  float* Ow = Os + warp * 16 * L::kLdO;
  float* Sw = Ss + warp * 16 * L::kLdS;
  T* Pw = Ps + warp * 16 * L::kLdP;
  for (int i = lane; i < 16 * L::kLdO; i += 32) Ow[i] = 0.f;
  __syncthreads();

  wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> qf[D / 16];
  for (int kk = 0; kk < D / 16; ++kk) wmma::load_matrix_sync(qf[kk], Qs + warp * 16 * L::kLdT + kk * 16, L::kLdT);

  // Softmax bookkeeping: lane pairs share a row (row = lane/2, half = lane%2 takes 32 of the 64 key columns).
  const int r = lane >> 1, half = lane & 1;
  const int qi = q0 + warp * 16 + r;
  float m_run = -INFINITY, l_run = 0.f;
  const int warp_last_q = q0 + warp * 16 + 15;

  const int q_end = min(seq, q0 + L::kQ);
  for (int k0 = 0; k0 < q_end; k0 += kKeyTile) {
    __syncthreads();  // previous tile fully consumed
    for (int i = threadIdx.x; i < kKeyTile * kChunks; i += WARPS * 32) {
      const int rr = i / kChunks, c = (i % kChunks) * kVec;
      uint4 kv = make_uint4(0, 0, 0, 0), vv = make_uint4(0, 0, 0, 0);
      if (k0 + rr < seq) {
        const std::int64_t off = static_cast<std::int64_t>(k0 + rr) * row_stride + c;
        kv = *reinterpret_cast<const uint4*>(k_base + off);
        vv = *reinterpret_cast<const uint4*>(v_base + off);
      }
      *reinterpret_cast<uint4*>(Ks + rr * L::kLdT + c) = kv;
      *reinterpret_cast<uint4*>(Vs + rr * L::kLdT + c) = vv;
    }
    __syncthreads();
    if (warp_last_q < k0) continue;  // every key of this tile is in this warp's future

    // S = Q K^T for this warp's 16 rows x 64 keys.
    for (int ni = 0; ni < kKeyTile / 16; ++ni) {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> sf;
      wmma::fill_fragment(sf, 0.f);
      for (int kk = 0; kk < D / 16; ++kk) {
        wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::col_major> kf;
        wmma::load_matrix_sync(kf, Ks + ni * 16 * L::kLdT + kk * 16, L::kLdT);
        wmma::mma_sync(sf, qf[kk], kf, sf);
      }
      wmma::store_matrix_sync(Sw + ni * 16, sf, L::kLdS, wmma::mem_row_major);
    }
    __syncwarp();

    // Online softmax over this tile (base-2 exponent; scale_log2 = softmax scale * log2(e)).
    float s[32];
    float m_tile = -INFINITY;
#pragma unroll
    for (int j = 0; j < 32; ++j) {
      const int col = half * 32 + j;
      const int kj = k0 + col;
      s[j] = (kj <= qi && kj < seq) ? Sw[r * L::kLdS + col] * scale_log2 : -INFINITY;
      m_tile = fmaxf(m_tile, s[j]);
    }
    m_tile = fmaxf(m_tile, __shfl_xor_sync(0xffffffffu, m_tile, 1));
    const float m_new = fmaxf(m_run, m_tile);
    const bool empty = (m_new == -INFINITY);
    const float alpha = empty ? 1.f : exp2f(m_run - m_new);
    float sum = 0.f;
#pragma unroll
    for (int j = 0; j < 32; ++j) {
      const float p = empty ? 0.f : exp2f(s[j] - m_new);
      sum += p;
      Pw[r * L::kLdP + half * 32 + j] = from_f<T>(p);
    }
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    l_run = l_run * alpha + sum;
    m_run = m_new;
    for (int d = half * (D / 2); d < (half + 1) * (D / 2); ++d) Ow[r * L::kLdO + d] *= alpha;
    __syncwarp();

    // O += P V.
    for (int ni = 0; ni < D / 16; ++ni) {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> of;
      wmma::load_matrix_sync(of, Ow + ni * 16, L::kLdO, wmma::mem_row_major);
      for (int kk = 0; kk < kKeyTile / 16; ++kk) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> pf;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::row_major> vf;
        wmma::load_matrix_sync(pf, Pw + kk * 16, L::kLdP);
        wmma::load_matrix_sync(vf, Vs + kk * 16 * L::kLdT + ni * 16, L::kLdT);
        wmma::mma_sync(of, pf, vf, of);
      }
      wmma::store_matrix_sync(Ow + ni * 16, of, L::kLdO, wmma::mem_row_major);
    }
    __syncwarp();
  }
  __syncwarp();
  if (qi < seq) {
    const float inv = 1.f / l_run;
    T* o = out + (static_cast<std::int64_t>(b) * seq + qi) * out_stride + h * D;
    for (int d = half * (D / 2); d < (half + 1) * (D / 2); ++d) o[d] = from_f<T>(Ow[r * L::kLdO + d] * inv);
  }
}

// ---- causal attention on CUDA cores (float; any T) --------------------------------------------------------------
// One thread per query, K/V tiles of 32 keys in shared memory, online softmax per tile of keys.
template <typename T, int D>
__global__ void __launch_bounds__(64) flash_attention_simple(const T* __restrict__ qkv, T* __restrict__ out, int seq,
                                                              int heads, int row_stride, int out_stride,
                                                              float scale_log2) {
  constexpr int kQ = 64, kK = 32;
  __shared__ float Ks[kK][D];
  __shared__ float Vs[kK][D];
  const int bh = blockIdx.y;
  const int b = bh / heads, h = bh % heads;
  const int C = heads * D;
  const T* q_base = qkv + static_cast<std::int64_t>(b) * seq * row_stride + h * D;
  const T* k_base = q_base + C;
  const T* v_base = q_base + 2 * C;
  const int qi = blockIdx.x * kQ + threadIdx.x;
  float q[D], acc[D];
#pragma unroll
  for (int d = 0; d < D; ++d) {
    q[d] = qi < seq ? to_f(q_base[static_cast<std::int64_t>(qi) * row_stride + d]) * scale_log2 : 0.f;
    acc[d] = 0.f;
  }
  float m_run = -INFINITY, l_run = 0.f;
  const int k_end = min(seq, (blockIdx.x + 1) * kQ);
  for (int k0 = 0; k0 < k_end; k0 += kK) {
    __syncthreads();
    for (int i = threadIdx.x; i < kK * D; i += kQ) {
      const int rr = i / D, d = i % D;
      const bool ok = k0 + rr < seq;
      const std::int64_t off = static_cast<std::int64_t>(k0 + rr) * row_stride + d;
      Ks[rr][d] = ok ? to_f(k_base[off]) : 0.f;
      Vs[rr][d] = ok ? to_f(v_base[off]) : 0.f;
    }
    __syncthreads();
    float s[kK];
    float m_tile = -INFINITY;
#pragma unroll
    for (int j = 0; j < kK; ++j) {
      float dot = 0.f;
#pragma unroll
      for (int d = 0; d < D; ++d) dot += q[d] * Ks[j][d];
      s[j] = (k0 + j <= qi && k0 + j < seq) ? dot : -INFINITY;
      m_tile = fmaxf(m_tile, s[j]);
    }
    const float m_new = fmaxf(m_run, m_tile);
    if (m_new == -INFINITY) continue;
    const float alpha = exp2f(m_run - m_new);
    l_run *= alpha;
#pragma unroll
    for (int d = 0; d < D; ++d) acc[d] *= alpha;
#pragma unroll
    for (int j = 0; j < kK; ++j) {
      const float p = exp2f(s[j] - m_new);
      l_run += p;
#pragma unroll
      for (int d = 0; d < D; ++d) acc[d] += p * Vs[j][d];
    }
    m_run = m_new;
  }
  if (qi < seq) {
    const float inv = 1.f / l_run;
    T* o = out + (static_cast<std::int64_t>(b) * seq + qi) * out_stride + h * D;
#pragma unroll
    for (int d = 0; d < D; ++d) o[d] = from_f<T>(acc[d] * inv);
  }
}

// ---- KV cache ---------------------------------------------------------------------------------------------------
// Cache layout per layer: [batch][max_tokens][2C] (the K row, then the V row). Copies the k and v parts of
// qkv rows [batch*seq, 3C] to positions pos0 + s.
template <typename T>
__global__ void append_kv(const T* qkv, T* cache, int seq, int C, int max_tokens, const int* pos0) {
  const int row = blockIdx.x;
  const int b = row / seq, s = row % seq;
  const int t = (pos0 ? *pos0 : 0) + s;
  const T* src = qkv + static_cast<std::int64_t>(row) * 3 * C + C;
  T* dst = cache + (static_cast<std::int64_t>(b) * max_tokens + t) * 2 * C;
  for (int c = threadIdx.x; c < 2 * C; c += blockDim.x) dst[c] = src[c];
}

// The keys a block of decode_attention_item takes per pass (threads of one key: D / 16-byte vector).
template <typename T, int D>
__host__ __device__ constexpr int decode_attention_keys() { return 256 / (D / (16 / static_cast<int>(sizeof(T)))); }

// One (sequence b, head h) item of decode attention (below) by a block of 256 threads, over cache positions [0, n):
// scores [>= n] floats, partial [decode_attention_keys] [D] and red [8] floats in shared memory. Used by the
// decode_attention kernel and by the persistent decode step (decode_persistent.cuh), which reads a cache row
// written earlier in the same kernel: hence plain (coherent) loads, no __restrict__ here.
template <typename T, int D>
__device__ __forceinline__ void decode_attention_item(const T* qkv, const T* cache, T* out, int C, int max_tokens,
                                                      int n, float scale_log2, int b, int h, float* scores,
                                                      float (*partial)[D], float* red) {
  constexpr int kThreads = 256, kWarps = kThreads / 32, kUnroll = 4;
  constexpr int kVec = 16 / sizeof(T);
  constexpr int kTpk = D / kVec;           // threads per key
  constexpr int kKeys = kThreads / kTpk;   // keys per pass
  static_assert(kKeys == decode_attention_keys<T, D>());
  const int g = threadIdx.x / kTpk, part = threadIdx.x % kTpk;
  const T* q = qkv + static_cast<std::int64_t>(b) * 3 * C + h * D + part * kVec;
  float qv[kVec];
  {
    uint4 raw = *reinterpret_cast<const uint4*>(q);
    const T* e = reinterpret_cast<const T*>(&raw);
#pragma unroll
    for (int i = 0; i < kVec; ++i) qv[i] = to_f(e[i]) * scale_log2;
  }
  const std::int64_t row = 2 * static_cast<std::int64_t>(C);
  const T* kb = cache + static_cast<std::int64_t>(b) * max_tokens * row + h * D + part * kVec;
  float m_local = -INFINITY;
  // The trip count is the same for every lane (t0 steps), so the full-mask shuffles never miss a lane.
  for (int t0 = 0; t0 < n; t0 += kKeys * kUnroll) {
    uint4 raw[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int t = t0 + u * kKeys + g;
      raw[u] = t < n ? *reinterpret_cast<const uint4*>(kb + t * row) : make_uint4(0, 0, 0, 0);
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int t = t0 + u * kKeys + g;
      const T* e = reinterpret_cast<const T*>(&raw[u]);
      float dot = 0.f;
#pragma unroll
      for (int i = 0; i < kVec; ++i) dot += qv[i] * to_f(e[i]);
#pragma unroll
      for (int o = kTpk / 2; o > 0; o >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, o);
      if (t < n) {
        if (part == 0) scores[t] = dot;
        m_local = fmaxf(m_local, dot);
      }
    }
  }
  // block max
  m_local = warp_max(m_local);
  if (threadIdx.x % 32 == 0) red[threadIdx.x / 32] = m_local;
  __syncthreads();
  float m = red[0];
#pragma unroll
  for (int w = 1; w < kWarps; ++w) m = fmaxf(m, red[w]);
  __syncthreads();
  float l_local = 0.f;
  for (int t = threadIdx.x; t < n; t += kThreads) {
    const float p = exp2f(scores[t] - m);
    scores[t] = p;
    l_local += p;
  }
  l_local = warp_sum(l_local);
  if (threadIdx.x % 32 == 0) red[threadIdx.x / 32] = l_local;
  __syncthreads();
  float l = 0.f;
#pragma unroll
  for (int w = 0; w < kWarps; ++w) l += red[w];
  float acc[kVec];
#pragma unroll
  for (int i = 0; i < kVec; ++i) acc[i] = 0.f;
  const T* vb = kb + C;
  for (int t0 = g; t0 < n; t0 += kKeys * kUnroll) {
    uint4 raw[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int t = t0 + u * kKeys;
      raw[u] = t < n ? *reinterpret_cast<const uint4*>(vb + t * row) : make_uint4(0, 0, 0, 0);
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int t = t0 + u * kKeys;
      const T* e = reinterpret_cast<const T*>(&raw[u]);
      const float p = t < n ? scores[t] : 0.f;
#pragma unroll
      for (int i = 0; i < kVec; ++i) acc[i] += p * to_f(e[i]);
    }
  }
#pragma unroll
  for (int i = 0; i < kVec; ++i) partial[g][part * kVec + i] = acc[i];
  __syncthreads();
  for (int d = threadIdx.x; d < D; d += kThreads) {
    float total = 0.f;
    for (int k = 0; k < kKeys; ++k) total += partial[k][d];
    out[static_cast<std::int64_t>(b) * C + h * D + d] = from_f<T>(total / l);
  }
}

// Attention of one new query per sequence over the cache positions [0, *pos]. Grid (heads, batch), kThreads
// threads. Groups of D/VEC threads share a key (16-byte loads); scores live in shared memory (max_tokens floats).
// A decode step runs this on few blocks (heads x batch), so it is latency-bound: each thread issues the loads of
// kUnroll keys before using any of them, so several cache rows are in flight per thread.
template <typename T, int D>
__global__ void __launch_bounds__(256) decode_attention(const T* __restrict__ qkv, const T* __restrict__ cache,
                                                         T* __restrict__ out, int C, int max_tokens, const int* pos,
                                                         float scale_log2) {
  extern __shared__ float scores[];  // [max_tokens]
  __shared__ float partial[decode_attention_keys<T, D>()][D];
  __shared__ float red[8];
  // Launched with programmatic dependent launch in the fused decode step: wait for the kernel that wrote q and
  // the new cache row (a no-op otherwise), then let the next kernel start streaming its weights.
  asm volatile("griddepcontrol.wait;" ::: "memory");
  asm volatile("griddepcontrol.launch_dependents;");
  decode_attention_item<T, D>(qkv, cache, out, C, max_tokens, *pos + 1, scale_log2, blockIdx.y, blockIdx.x, scores,
                              partial, red);
}

// h_last[b] = h[b*seq + seq-1]
template <typename T>
__global__ void gather_last(const T* h, T* h_last, int seq, int C) {
  const int b = blockIdx.x;
  const T* src = h + (static_cast<std::int64_t>(b) * seq + seq - 1) * C;
  for (int c = threadIdx.x; c < C; c += blockDim.x) h_last[static_cast<std::int64_t>(b) * C + c] = src[c];
}

// ---- per-row results over logits [rows, ld] (first `vocab` columns) ----------------------------------------------
__device__ __forceinline__ void better(float& v, int& i, float v2, int i2) {
  if (v2 > v || (v2 == v && i2 < i)) {
    v = v2;
    i = i2;
  }
}

// Where the per-row results read a row's logits from. StoredLogits: logits [rows, ld] of LT. Int8Logits (below,
// with the int8 kernels): an int8 LM head's integer products, dequantized and rounded to T as a stored logit would
// be. load() brings kVec consecutive logits (v a multiple of kVec) into registers; value() gives the i-th of them;
// at() one logit. Both sources take 8 logits a load for T = fp16 / bf16, so a thread sums the same values in the
// same order whichever it reads: the same bits.
template <typename LT>
struct StoredLogits {
  static constexpr int kVec = 16 / sizeof(LT);
  struct Raw {
    uint4 v;
  };
  const LT* logits;
  int ld;
  __device__ __forceinline__ Raw load(int row, int v) const {
    return {*reinterpret_cast<const uint4*>(logits + static_cast<std::int64_t>(row) * ld + v)};
  }
  __device__ __forceinline__ float value(const Raw& r, int i) const {
    return to_f(reinterpret_cast<const LT*>(&r.v)[i]);
  }
  __device__ __forceinline__ float at(int row, int v) const {
    return to_f(logits[static_cast<std::int64_t>(row) * ld + v]);
  }
};

// top1 (lowest id wins ties) and the row's sum in double; one block of THREADS per row, 16-byte loads (ld is a
// multiple of 8 elements, so every row start is aligned; columns >= vocab are skipped). Each thread has 4 loads in
// flight before it uses them: with one, a block of few rows per SM waited out the memory latency ~25 times per row
// (128 rows of GPT-2's vocabulary took ~16 us for 13 MB).
template <typename Src, int THREADS>
__device__ __forceinline__ void row_summary_of(const Src& src, int row, int vocab, int* top1, double* row_sum) {
  constexpr int kVec = Src::kVec, kWarps = THREADS / 32, kUnroll = 4;
  float best = -INFINITY;
  int best_i = 0x7fffffff;
  double sum = 0.0;
  for (int v0 = threadIdx.x * kVec; v0 < vocab; v0 += kUnroll * THREADS * kVec) {
    typename Src::Raw raw[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int v = v0 + u * THREADS * kVec;
      raw[u] = v < vocab ? src.load(row, v) : typename Src::Raw{};
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int v = v0 + u * THREADS * kVec;
#pragma unroll
      for (int i = 0; i < kVec; ++i) {
        if (v + i >= vocab) break;
        const float f = src.value(raw[u], i);
        sum += f;
        if (f > best) {  // within a thread ids rise, so strict '>' keeps the lowest
          best = f;
          best_i = v + i;
        }
      }
    }
  }
  for (int o = 16; o > 0; o >>= 1) {
    sum += __shfl_xor_sync(0xffffffffu, sum, o);
    const float ob = __shfl_xor_sync(0xffffffffu, best, o);
    const int oi = __shfl_xor_sync(0xffffffffu, best_i, o);
    better(best, best_i, ob, oi);
  }
  __shared__ double s_sum[kWarps];
  __shared__ float s_best[kWarps];
  __shared__ int s_idx[kWarps];
  const int w = threadIdx.x / 32;
  if (threadIdx.x % 32 == 0) {
    s_sum[w] = sum;
    s_best[w] = best;
    s_idx[w] = best_i;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    double total = 0.0;
    float bv = -INFINITY;
    int bi = 0x7fffffff;
    for (int i = 0; i < kWarps; ++i) {
      total += s_sum[i];
      better(bv, bi, s_best[i], s_idx[i]);
    }
    row_sum[row] = total;
    top1[row] = bi == 0x7fffffff ? 0 : bi;  // all-NaN rows report id 0, like the host's scan
  }
}
template <typename LT, int THREADS>
__global__ void __launch_bounds__(THREADS) row_summary(const LT* logits, int vocab, int ld, int* top1,
                                                       double* row_sum) {
  row_summary_of<StoredLogits<LT>, THREADS>(StoredLogits<LT>{logits, ld}, blockIdx.x, vocab, top1, row_sum);
}

// NLL of targets[row] (skipped: < 0 → 0): log-sum-exp in float with an online max, then minus the target's logit.
template <typename Src>
__device__ __forceinline__ void row_nll_of(const Src& src, int row, int vocab, const int* targets, double* nll) {
  const int target = targets[row];
  if (target < 0) {
    if (threadIdx.x == 0) nll[row] = 0.0;
    return;
  }
  float m = -INFINITY, s = 0.f;
  for (int v = threadIdx.x; v < vocab; v += 256) {
    const float f = src.at(row, v);
    if (f > m) {
      s = s * __expf(m - f) + 1.f;
      m = f;
    } else {
      s += __expf(f - m);
    }
  }
  for (int o = 16; o > 0; o >>= 1) {
    const float om = __shfl_xor_sync(0xffffffffu, m, o);
    const float os = __shfl_xor_sync(0xffffffffu, s, o);
    const float nm = fmaxf(m, om);
    s = (m == -INFINITY ? 0.f : s * __expf(m - nm)) + (om == -INFINITY ? 0.f : os * __expf(om - nm));
    m = nm;
  }
  __shared__ float sm[8], ss[8];
  const int w = threadIdx.x / 32;
  if (threadIdx.x % 32 == 0) {
    sm[w] = m;
    ss[w] = s;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    float M = -INFINITY;
    for (int i = 0; i < 8; ++i) M = fmaxf(M, sm[i]);
    double S = 0.0;
    for (int i = 0; i < 8; ++i)
      if (sm[i] != -INFINITY) S += static_cast<double>(ss[i]) * exp(static_cast<double>(sm[i] - M));
    nll[row] = log(S) + M - static_cast<double>(src.at(row, target));
  }
}
template <typename LT>
__global__ void __launch_bounds__(256) row_nll(const LT* logits, int vocab, int ld, const int* targets, double* nll) {
  row_nll_of(StoredLogits<LT>{logits, ld}, blockIdx.x, vocab, targets, nll);
}

// logits [rows, ld] of LT -> float [rows, vocab]
template <typename LT>
__global__ void logits_to_float(const LT* logits, int vocab, int ld, float* out) {
  const int row = blockIdx.x;
  const LT* x = logits + static_cast<std::int64_t>(row) * ld;
  float* o = out + static_cast<std::int64_t>(row) * vocab;
  for (int v = threadIdx.x; v < vocab; v += blockDim.x) o[v] = to_f(x[v]);
}

// ---- int8 (W8A8) ---------------------------------------------------------------------------------------------------
// q = clamp(round_half_even(x * inv_scale), -127, 127), as the native CPU engine quantizes (quant/int8_gemm.cpp).
__device__ __forceinline__ std::int8_t quantize_one(float v, float inv_scale) {
  return static_cast<std::int8_t>(fminf(fmaxf(rintf(v * inv_scale), -127.f), 127.f));
}
// Four T values quantized, packed as they lie in memory (4 consecutive int8).
template <typename T>
__device__ __forceinline__ char4 quantize4(const Vec4<T>& x, float inv_scale) {
  return make_char4(quantize_one(to_f(x.v[0]), inv_scale), quantize_one(to_f(x.v[1]), inv_scale),
                    quantize_one(to_f(x.v[2]), inv_scale), quantize_one(to_f(x.v[3]), inv_scale));
}

// 8 elements per thread and step (n % 8 == 0: rows of C or I elements, both multiples of 8 in the int8 engine).
template <typename T>
__global__ void quantize_int8(const T* __restrict__ x, std::int8_t* __restrict__ q, std::int64_t n, float inv_scale) {
  struct alignas(8 * sizeof(T)) In8 {
    T v[8];
  };
  struct alignas(8) Out8 {
    std::int8_t v[8];
  };
  const std::int64_t n8 = n / 8, stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n8; i += stride) {
    const In8 in = reinterpret_cast<const In8*>(x)[i];
    Out8 o;
#pragma unroll
    for (int e = 0; e < 8; ++e) o.v[e] = quantize_one(to_f(in.v[e]), inv_scale);
    reinterpret_cast<Out8*>(q)[i] = o;
  }
}

// One output of an int8 product before its activation, in float: act_scale * w_scale[n] * acc (+ bias[n]). Every
// kernel that dequantizes calls this one function, so the fused kernels below give the separate kernels' bits. The
// roundings are spelt out (__fmul_rn / __fadd_rn are never contracted): with plain operators the compiler fused the
// bias add into an FMA in one kernel and not in the other (PTX of the two, twenty-third session), and 1-ulp
// differences flipped a few int8 steps downstream.
template <typename T>
__device__ __forceinline__ float dequantize_one(std::int32_t acc, float w_scale, float act_scale, const T* bias_n) {
  const float v = __fmul_rn(__fmul_rn(act_scale, w_scale), static_cast<float>(acc));
  return bias_n ? __fadd_rn(v, to_f(*bias_n)) : v;
}
// Four consecutive outputs a of one row, at column c (a multiple of 4), through dequantize_one.
template <typename T>
__device__ __forceinline__ float4 dequantize4(int4 a, const float* w_scale, float act_scale, const T* bias, int c) {
  const float4 ws = *reinterpret_cast<const float4*>(w_scale + c);
  return make_float4(dequantize_one(a.x, ws.x, act_scale, bias ? bias + c : nullptr),
                     dequantize_one(a.y, ws.y, act_scale, bias ? bias + c + 1 : nullptr),
                     dequantize_one(a.z, ws.z, act_scale, bias ? bias + c + 2 : nullptr),
                     dequantize_one(a.w, ws.w, act_scale, bias ? bias + c + 3 : nullptr));
}

// y[r][n] = act_scale * w_scale[n] * acc[r][n] + bias[n], then GELU (mode 1: tanh form, 2: erf form) or not (0),
// rounded to T; 4 consecutive outputs of one row per thread and step (cols % 4 == 0). With q (option int8_fused:
// the product's output feeds only the next int8 product, as FC + GELU feeds the MLP projection) the T values are
// quantized with that product's scale into q instead of stored to y: the separate quantize kernel's bits, without
// its pass over y.
template <typename T>
__global__ void dequantize_int8(const std::int32_t* __restrict__ acc, const float* __restrict__ w_scale,
                                float act_scale, const T* __restrict__ bias, T* __restrict__ y, std::int64_t n,
                                int cols, int mode, std::int8_t* __restrict__ q = nullptr, float q_inv_scale = 0.f) {
  const std::int64_t n4 = n / 4, stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  const int cols4 = cols / 4;
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n4; i += stride) {
    const int c = static_cast<int>(i % cols4) * 4;
    const float4 d = dequantize4(reinterpret_cast<const int4*>(acc)[i], w_scale, act_scale, bias, c);
    float v[4] = {d.x, d.y, d.z, d.w};
    Vec4<T> o;
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      if (mode == 1) v[e] = gelu_tanh(v[e]);
      else if (mode == 2) v[e] = gelu_erf(v[e]);
      o.v[e] = from_f<T>(v[e]);
    }
    if (q) reinterpret_cast<char4*>(q)[i] = quantize4(o, q_inv_scale);
    else reinterpret_cast<Vec4<T>*>(y)[i] = o;
  }
}

// After an int8 residual product (option int8_fused), in one pass with the row in a warp's registers (C = 128 V):
// the product dequantized and rounded to T as dequantize_int8 would store it, added to the float residual stream x
// (stored back), then LayerNorm, rounded to T, and either quantized with the next product's scale into q (the
// next product's input) or stored to out (ln_f, the LM head's input). The same helpers in the same order as
// dequantize_int8 + residual_layernorm_reg + quantize_int8: the same bits, with two kernels and the passes over
// the 16-bit product and the 16-bit LayerNorm output fewer.
template <typename T, int V>
__global__ void int8_residual_layernorm_reg(float* x, const std::int32_t* __restrict__ acc,
                                            const float* __restrict__ w_scale, float act_scale,
                                            const T* __restrict__ bias, const float* w, const float* b, T* out,
                                            std::int8_t* q, float q_inv_scale, int rows, int C, float eps) {
  const int warps = blockDim.x / 32;
  const int row = blockIdx.x * warps + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (row >= rows) return;
  const std::int64_t r0 = static_cast<std::int64_t>(row) * C;
  float4 v[V];
#pragma unroll
  for (int i = 0; i < V; ++i) {
    const int c = (i * 32 + lane) * 4;
    // the product as dequantize_int8 would store it in T
    const float4 d = dequantize4(*reinterpret_cast<const int4*>(acc + r0 + c), w_scale, act_scale, bias, c);
    v[i] = *reinterpret_cast<const float4*>(x + r0 + c);
    v[i].x += to_f(from_f<T>(d.x));
    v[i].y += to_f(from_f<T>(d.y));
    v[i].z += to_f(from_f<T>(d.z));
    v[i].w += to_f(from_f<T>(d.w));
    *reinterpret_cast<float4*>(x + r0 + c) = v[i];
  }
  float mean, rstd;
  row_mean_rstd<V>(v, C, eps, mean, rstd);
#pragma unroll
  for (int i = 0; i < V; ++i) {
    const int c = (i * 32 + lane) * 4;
    const Vec4<T> o = normalised4<T>(v[i], mean, rstd, *reinterpret_cast<const float4*>(w + c),
                                     *reinterpret_cast<const float4*>(b + c));
    if (q) *reinterpret_cast<char4*>(q + r0 + c) = quantize4(o, q_inv_scale);
    else *reinterpret_cast<Vec4<T>*>(out + r0 + c) = o;
  }
}

// An int8 LM head's integer products as the per-row results' logits (option int8_fused: no logits are stored when
// the caller wants only the summary or the NLL): act_scale * w_scale[v] * acc, rounded to T. 8 logits a load, as
// StoredLogits<T> takes (two int4 of products and two float4 of scales).
template <typename T>
struct Int8Logits {
  static constexpr int kVec = 8;
  struct Raw {
    int4 a[2];
    float4 s[2];
  };
  const std::int32_t* acc;
  const float* w_scale;
  float act_scale;
  int ld;
  __device__ __forceinline__ Raw load(int row, int v) const {
    const int4* a = reinterpret_cast<const int4*>(acc + static_cast<std::int64_t>(row) * ld + v);
    const float4* s = reinterpret_cast<const float4*>(w_scale + v);
    return {{a[0], a[1]}, {s[0], s[1]}};
  }
  __device__ __forceinline__ float value(const Raw& r, int i) const {
    const int a = reinterpret_cast<const int*>(r.a)[i];
    const float s = reinterpret_cast<const float*>(r.s)[i];
    return to_f(from_f<T>(dequantize_one<T>(a, s, act_scale, nullptr)));
  }
  __device__ __forceinline__ float at(int row, int v) const {
    return to_f(from_f<T>(dequantize_one<T>(acc[static_cast<std::int64_t>(row) * ld + v], w_scale[v], act_scale,
                                            nullptr)));
  }
};
template <typename T, int THREADS>
__global__ void __launch_bounds__(THREADS) row_summary_int8(Int8Logits<T> src, int vocab, int* top1,
                                                            double* row_sum) {
  row_summary_of<Int8Logits<T>, THREADS>(src, blockIdx.x, vocab, top1, row_sum);
}
template <typename T>
__global__ void __launch_bounds__(256) row_nll_int8(Int8Logits<T> src, int vocab, const int* targets, double* nll) {
  row_nll_of(src, blockIdx.x, vocab, targets, nll);
}

}  // namespace gptbench::cuda_engine::kernels
