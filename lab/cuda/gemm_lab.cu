// Kernel lab for the small-M tensor-core GEMM (lab/cuda/gemm_mma.cuh: LayerNorm / residual fused, split-K), after
// llm.c's dev/cuda. The engine does not use that kernel: it loses to cuBLASLt on every shape timed here (see the
// header's comment for the figures and why).
//
// Versions (timing, T = half):
//   cublasLt       cuBLASLt TN fp16 (W [N][K] row-major = column-major [K][N] with op T; activations [M][K] =
//                  column-major [K][M], op N; y column-major [N][M] = row-major [M][N]), compute / scale 32F, BIAS
//                  epilogue (GELU_BIAS for fc). Candidates: the heuristic's top 16 plus split-K 2/4/8/16 of its first
//                  pick (as the engine's Gemm autotune), each timed in the full graph below, fastest kept. LN products
//                  include the engine's LayerNorm kernel (residual_layernorm_reg, one warp per row, float -> T) before
//                  the GEMM, residual products a residual-add kernel (x += y) after it: the engine's current path.
//                  "cublasLt gemm only" is the same GEMM alone (for reference).
//   mma:BMxBN/sS   launch_gemm_mma with tile BM x BN and split-K factor S (S > 1 only for plain products; every
//                  S in {1,2,3,4,6,8,12,16} dividing K/64 with >= 2 k-tiles per split). The best 3 are printed.
//   auto           choose_gemm_mma's configuration (what the engine would run), timed on its own and ranked.
//
// Check (T = half and bfloat16; M = 1, 5, 32, 63, 100, 128, 256, 512; with and without bias): products
//   qkv    LN -> store       N 2304 K  768      proj   plain -> resid += N 768 K 768
//   fc     LN -> GELU tanh   N 3072 K  768      mproj  plain -> resid += N 768 K 3072
//   odd_st plain -> store    N  136 K  192      odd_erf LN -> GELU erf  N 200 K 128
//   odd_gelu plain -> GELU tanh N 24 K 64       odd_k1024 LN -> store   N 520 K 1024
// each with every tile (32x64, 64x64, 64x32), for plain products every split s in {1,2,3,4,6,12} dividing K/64,
// plus choose_gemm_mma's pick for this device. CPU reference in double from the same T-rounded inputs (A, W, bias);
// LayerNorm in double on the float x (rows with different means and scales), rounded to T as the kernel does
// before the product. Error = max |gpu - ref| / max |ref| over the written outputs; tolerances: T outputs half 4e-3
// (fp16 rounding is 4.9e-4 of a value), bfloat16 1.6e-2 (3.9e-3); the float residual stream: max |gpu - ref| /
// max |product + bias| <= 1e-4 (float accumulation only; a missing k-tile or a wrong index is > 1e-2).
// Sentinels: y has ldy = N + 8 and M_max + 3 rows, prefilled with 0x7B7B bits; every element not written
// (padding columns, rows >= M) must keep them; resid rows >= M (and all of resid for T outputs, all of y for
// residual products) must be bitwise unchanged. Split-K runs (partials prefilled with NaN) are run twice and must
// be bitwise identical, and leave the tile counters zero. Exit status 1 on any failure, 2 on a CUDA error.
//
// Timing (T = half, skipped with --check-only): M = 64, 128, 256, 512, 1024 and the four products of GPT-2 124M
// with bias; the weights rotate through copies totalling >= 256 MB so that every call reads them from HBM (GPT-2
// 124M's 250 MB of fp16 weights exceed L2). A CUDA graph of --iters calls is replayed 3 times after a warm-up;
// the best replay's us / call is reported with GB/s of weight bytes and TFLOP/s. Before timing, the cuBLASLt path
// and the mma auto config are compared on the same operands (disagreement > 1e-2 relative counts as a failure:
// it would mean a wrong cuBLASLt layout). Chain (M = 128 and 512): one transformer layer's four products, the
// weights rotating over >= 256 MB of layers; mma = LN-QKV, proj+residual, LN-FC-GELU, mproj+residual with auto
// configs (4 kernels) vs the engine's cuBLASLt path in steady state (GEMM qkv, GEMM proj, residual add + LN2,
// GEMM fc GELU, GEMM mproj, residual add + LN1 of the next layer: 6 kernels; the layer's leading LayerNorm is the
// previous layer's trailing one). Attention is not part of either.
// PDL chains (run_pdl_chains, after each chain): the same layer with every kernel a programmatic dependent of the
// one before — the 4-kernel fused chain, and LayerNorm kernel + plain products picked per product (also with the
// resident-weight tiles "...r") — checked bitwise against the same chain without PDL. Probe: cuBLASLt's QKV product
// as a programmatic dependent (graph_pdl.h) of a producer that writes its input after 50 us — a different result
// means cuBLASLt's kernels do not wait (measured: they do not); then the cuBLASLt chain with programmatic edges only
// into its LayerNorm kernels. Measured (fifth session, docs/cuda-engine.md): none beats the cuBLASLt chain; the
// Hopper kernel that does is in wgmma_lab.cu / gemm_wgmma.cuh.
// JSON (--json FILE, one object per line, appended): {"lab":"gemm","gpu",...,"kind":"check"|"time"|"chain",...}.
// Runtime: 16.5 s for checks + timing with --iters 100 on an H200 (measured once); expect ~25 s at the default 200.
//
// Build: nvcc -std=c++20 -O3 --use_fast_math -lineinfo -arch=sm_90 -I src lab/cuda/gemm_lab.cu -o gemm_lab
//        -lcublasLt -lcublas
// Run:   ./gemm_lab [--iters N] [--json FILE] [--check-only | --timing-only] [--no-rotate]
//        --no-rotate: one copy of the weights per product / layer (L2-resident: separates HBM from kernel time).
//        JSON rows then carry "rotate":false.
#include <cublasLt.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "gemm_mma.cuh"
#include "lab_common.cuh"
#include "graph_pdl.h"
#include "backends/cuda/kernels.cuh"

using namespace gptbench::cuda_engine::kernels;
using namespace lab;

namespace {

template <typename T>
std::uint16_t h_bits(T v) {
  static_assert(sizeof(T) == 2, "16-bit types only");
  std::uint16_t b;
  std::memcpy(&b, &v, 2);
  return b;
}

// ---- device helpers of the lab -------------------------------------------------------------------------------
// p[i] = offset + scale * u, u uniform in [-1, 1) from a hash of i.
template <typename T>
__global__ void fill_uniform(T* p, std::size_t n, std::uint32_t seed, float scale, float offset) {
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
    std::uint32_t h = static_cast<std::uint32_t>(i) * 2654435761u ^ seed ^ static_cast<std::uint32_t>(i >> 32);
    h ^= h >> 15;
    h *= 2246822519u;
    h ^= h >> 13;
    h *= 3266489917u;
    h ^= h >> 16;
    p[i] = from_f<T>(offset + scale * (static_cast<float>(h >> 8) * (2.f / 16777216.f) - 1.f));
  }
}

// The residual add of the unfused path: x[i] += y[i].
template <typename T>
__global__ void residual_add(float* x, const T* y, std::int64_t n) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x)
    x[i] += to_f(y[i]);
}

// The probe's producer: lets its dependents launch at once, waits spin_ns, then writes a[0 .. n) = v. A dependent
// that reads a without waiting for this kernel to finish reads the zeros that were there before.
__global__ void slow_fill(__half* a, int n, float v, long long spin_ns) {
  asm volatile("griddepcontrol.launch_dependents;");
  __shared__ int done;
  if (threadIdx.x == 0) {
    long long t0, t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t0));
    do {
      asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
    } while (t - t0 < spin_ns);
    done = 1;
  }
  __syncthreads();
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
    a[i] = __float2half(v * static_cast<float>(done));
}

// ---- globals ---------------------------------------------------------------------------------------------------
cudaStream_t g_stream;
cublasLtHandle_t g_lt;
void* g_lt_ws = nullptr;
constexpr std::size_t kLtWsBytes = 32u << 20;  // as the engine
std::string g_gpu;
int g_sm = 0;
FILE* g_json = nullptr;
int g_iters = 200;
bool g_check_only = false;
bool g_skip_check = false;  // --timing-only
bool g_rotate = true;       // --no-rotate: one copy of the weights (L2-resident after the first call)
int g_failures = 0;
int* g_counters = nullptr;       // split-K tile counters, zeroed once; every launch must leave them zero
constexpr int kCounters = 1 << 16;
constexpr std::size_t kRotateBytes = 256ull << 20;
constexpr unsigned char kSentinelByte = 0x7B;  // y prefill: 0x7B7B = 61280 in half, ~1.3e36 in bfloat16
constexpr std::uint16_t kSentinelBits = 0x7B7B;
constexpr double kTolResid = 1e-4;

void json_line(const std::string& body) {
  if (!g_json) return;
  std::fprintf(g_json, "{\"lab\":\"gemm\",\"gpu\":\"%s\",%s%s}\n", g_gpu.c_str(), body.c_str(),
               g_rotate ? "" : ",\"rotate\":false");
  std::fflush(g_json);
}

template <typename T>
T* dev_alloc(std::size_t n) {
  T* d = nullptr;
  CK(cudaMalloc(&d, std::max<std::size_t>(n, 1) * sizeof(T)));
  return d;
}
template <typename T>
T* dev_upload(const std::vector<T>& h) {
  T* d = dev_alloc<T>(h.size());
  if (!h.empty()) CK(cudaMemcpyAsync(d, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice, g_stream));
  CK(cudaStreamSynchronize(g_stream));
  return d;
}
template <typename T>
void dev_download(std::vector<T>& h, const T* d, std::size_t n) {
  h.resize(n);
  CK(cudaMemcpyAsync(h.data(), d, n * sizeof(T), cudaMemcpyDeviceToHost, g_stream));
  CK(cudaStreamSynchronize(g_stream));
}
template <typename T>
void dev_fill(T* p, std::size_t n, std::uint32_t seed, float scale, float offset = 0.f) {
  fill_uniform<T><<<1024, 256, 0, g_stream>>>(p, n, seed, scale, offset);
  CK(cudaGetLastError());
}

// The engine's LayerNorm kernels (cuda_engine.cu layernorm()): x += delta (when given), out = LN(x) as T.
template <typename T>
void launch_layernorm(float* x, const T* delta, const float* w, const float* b, T* out, int rows, int C) {
  const dim3 grid((rows + 3) / 4), block(128);
  switch (C % 128 == 0 ? C / 128 : 0) {
    case 6: residual_layernorm_reg<T, 6><<<grid, block, 0, g_stream>>>(x, delta, w, b, out, rows, C, 1e-5f); break;
    case 8: residual_layernorm_reg<T, 8><<<grid, block, 0, g_stream>>>(x, delta, w, b, out, rows, C, 1e-5f); break;
    default: residual_layernorm<T><<<grid, block, 0, g_stream>>>(x, delta, w, b, out, rows, C, 1e-5f);
  }
}
template <typename T>
void launch_residual_add(float* x, const T* y, std::int64_t n) {
  const int blocks = static_cast<int>(std::min<std::int64_t>((n + 255) / 256, 65535));
  residual_add<T><<<blocks, 256, 0, g_stream>>>(x, y, n);
}

// ---- products -------------------------------------------------------------------------------------------------
struct Product {
  const char* name;
  GemmIn in;
  GemmOut out;
  int N, K;
  bool timed;  // one of a GPT-2 124M layer's four products
};
const Product kProducts[] = {
    {"qkv", GemmIn::kLayerNorm, GemmOut::kStore, 2304, 768, true},
    {"proj", GemmIn::kPlain, GemmOut::kResidualAdd, 768, 768, true},
    {"fc", GemmIn::kLayerNorm, GemmOut::kGeluTanh, 3072, 768, true},
    {"mproj", GemmIn::kPlain, GemmOut::kResidualAdd, 768, 3072, true},
    {"odd_st", GemmIn::kPlain, GemmOut::kStore, 136, 192, false},
    {"odd_erf", GemmIn::kLayerNorm, GemmOut::kGeluErf, 200, 128, false},
    {"odd_gelu", GemmIn::kPlain, GemmOut::kGeluTanh, 24, 64, false},
    {"odd_k1024", GemmIn::kLayerNorm, GemmOut::kStore, 520, 1024, false},
};

const char* in_name(GemmIn in) { return in == GemmIn::kLayerNorm ? "LN" : "plain"; }
const char* out_name(GemmOut o) {
  switch (o) {
    case GemmOut::kStore: return "store";
    case GemmOut::kGeluTanh: return "gelu_tanh";
    case GemmOut::kGeluErf: return "gelu_erf";
    case GemmOut::kResidualAdd: return "resid+=";
  }
  return "?";
}
std::string cfg_name(GemmTile t, int s) { return std::string(gemm_tile_name(t)) + "/s" + std::to_string(s); }
int tiles_of(GemmTile t, int M, int N) {
  return ((M + gemm_tile_m(t) - 1) / gemm_tile_m(t)) * ((N + gemm_tile_n(t) - 1) / gemm_tile_n(t));
}

// ---- correctness -------------------------------------------------------------------------------------------------
constexpr int kCheckM[] = {1, 5, 32, 63, 100, 128, 256, 512};
constexpr int kCheckMmax = 512;
constexpr int kCheckSplits[] = {1, 2, 3, 4, 6, 12};

// One (T, product): inputs for kCheckMmax rows (an M-row case uses the first M rows), the reference product
// in double, device buffers. y and resid have kCheckMmax + 3 rows.
template <typename T>
struct CheckData {
  const Product& pr;
  int N, K, rows, ldy, max_splits;
  std::vector<float> W, bias, A, x, lnw, lnb, resid0;  // W, bias, A rounded to T
  std::vector<double> prod;                            // [kCheckMmax][N]: act . W^T (no bias)
  T *dW = nullptr, *dbias = nullptr, *dA = nullptr, *dy = nullptr;
  float *dx = nullptr, *dlnw = nullptr, *dlnb = nullptr, *dresid = nullptr, *dresid0 = nullptr, *dpartial = nullptr;
  std::size_t ysize = 0, rsize = 0, psize = 0;

  explicit CheckData(const Product& p) : pr(p), N(p.N), K(p.K) {
    const int Mx = kCheckMmax;
    rows = Mx + 3;
    ldy = N + 8;
    Rng rng(static_cast<std::uint64_t>(N) * 131 + K * 7 + (std::is_same_v<T, __half> ? 1 : 2));
    const float ws = 1.7f / std::sqrt(static_cast<float>(K));
    W.resize(static_cast<std::size_t>(N) * K);
    for (auto& v : W) v = h_round<T>(rng.uni() * ws);
    bias.resize(N);
    for (auto& v : bias) v = h_round<T>(0.2f * rng.uni());
    A.resize(static_cast<std::size_t>(Mx) * K);
    for (auto& v : A) v = h_round<T>(rng.uni());
    x.resize(static_cast<std::size_t>(Mx) * K);
    for (int r = 0; r < Mx; ++r) {
      const float off = 3.f * static_cast<float>(r % 7) - 6.f, sc = 0.5f + 0.4f * static_cast<float>(r % 5);
      for (int k = 0; k < K; ++k) x[static_cast<std::size_t>(r) * K + k] = off + sc * rng.uni();
    }
    lnw.resize(K);
    lnb.resize(K);
    for (int k = 0; k < K; ++k) {
      lnw[k] = 1.f + 0.2f * rng.uni();
      lnb[k] = 0.1f * rng.uni();
    }
    resid0.resize(static_cast<std::size_t>(rows) * N);
    for (auto& v : resid0) v = 2.f * rng.uni();

    // Reference: the product's input rows (LN in double on the float x, rounded to T like the kernel), then
    // act . W^T in double (rows spread over threads).
    std::vector<float> act(static_cast<std::size_t>(Mx) * K);
    std::vector<double> ln_row(K);
    for (int r = 0; r < Mx; ++r) {
      float* ar = &act[static_cast<std::size_t>(r) * K];
      if (pr.in == GemmIn::kLayerNorm) {
        layernorm_ref(&x[static_cast<std::size_t>(r) * K], K, lnw.data(), lnb.data(), ln_row.data());
        for (int k = 0; k < K; ++k) ar[k] = h_round<T>(static_cast<float>(ln_row[k]));
      } else {
        std::memcpy(ar, &A[static_cast<std::size_t>(r) * K], K * sizeof(float));
      }
    }
    prod.assign(static_cast<std::size_t>(Mx) * N, 0.0);
    const int nthreads = std::max(1, std::min(16, static_cast<int>(std::thread::hardware_concurrency())));
    auto work = [&](int tid) {
      for (int r = tid; r < Mx; r += nthreads) {
        const float* ar = &act[static_cast<std::size_t>(r) * K];
        for (int n = 0; n < N; ++n) {
          const float* w = &W[static_cast<std::size_t>(n) * K];
          double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
          for (int k = 0; k < K; k += 4) {
            s0 += static_cast<double>(ar[k]) * w[k];
            s1 += static_cast<double>(ar[k + 1]) * w[k + 1];
            s2 += static_cast<double>(ar[k + 2]) * w[k + 2];
            s3 += static_cast<double>(ar[k + 3]) * w[k + 3];
          }
          prod[static_cast<std::size_t>(r) * N + n] = (s0 + s1) + (s2 + s3);
        }
      }
    };
    std::vector<std::thread> pool;
    for (int t = 0; t < nthreads; ++t) pool.emplace_back(work, t);
    for (auto& t : pool) t.join();

    // Device buffers.
    auto to_t = [](const std::vector<float>& v) {
      std::vector<T> t(v.size());
      for (std::size_t i = 0; i < v.size(); ++i) t[i] = h_from<T>(v[i]);
      return t;
    };
    dW = dev_upload(to_t(W));
    dbias = dev_upload(to_t(bias));
    dA = dev_upload(to_t(A));
    dx = dev_upload(x);
    dlnw = dev_upload(lnw);
    dlnb = dev_upload(lnb);
    dresid0 = dev_upload(resid0);
    rsize = resid0.size();
    dresid = dev_alloc<float>(rsize);
    ysize = static_cast<std::size_t>(rows) * ldy;
    dy = dev_alloc<T>(ysize);
    // Split-K partials: the lab's splits (<= 12) and choose_gemm_mma's (<= K/64 / 2).
    max_splits = pr.in == GemmIn::kPlain ? std::max(12, K / 64) : 1;
    psize = static_cast<std::size_t>(max_splits) * kCheckMmax * N;
    dpartial = dev_alloc<float>(psize);
  }
  ~CheckData() {
    for (void* p : {static_cast<void*>(dW), static_cast<void*>(dbias), static_cast<void*>(dA), static_cast<void*>(dy),
                    static_cast<void*>(dx), static_cast<void*>(dlnw), static_cast<void*>(dlnb),
                    static_cast<void*>(dresid), static_cast<void*>(dresid0), static_cast<void*>(dpartial)})
      cudaFree(p);
  }
  CheckData(const CheckData&) = delete;
  CheckData& operator=(const CheckData&) = delete;

  GemmMmaArgs<T> args(int M, int splits, bool with_bias) const {
    GemmMmaArgs<T> p;
    p.M = M;
    p.N = N;
    p.K = K;
    p.A = dA;
    p.x = dx;
    p.ln_w = dlnw;
    p.ln_b = dlnb;
    p.eps = 1e-5f;
    p.W = dW;
    p.bias = with_bias ? dbias : nullptr;
    p.y = dy;
    p.ldy = ldy;
    p.resid = dresid;
    p.splits = splits;
    p.partial = splits > 1 ? dpartial : nullptr;
    p.counters = splits > 1 ? g_counters : nullptr;
    return p;
  }

  // Resets y (sentinels), resid (resid0) and the partials (NaN), runs one launch, downloads y and resid.
  void run(const GemmMmaArgs<T>& p, GemmTile tile, std::vector<T>& y, std::vector<float>& r) {
    if (static_cast<std::size_t>(p.splits) * p.M * p.N > psize || tiles_of(tile, p.M, p.N) > kCounters) {
      std::fprintf(stderr, "internal error: split-K scratch too small\n");
      std::exit(2);
    }
    CK(cudaMemsetAsync(dy, kSentinelByte, ysize * sizeof(T), g_stream));
    CK(cudaMemcpyAsync(dresid, dresid0, rsize * sizeof(float), cudaMemcpyDeviceToDevice, g_stream));
    if (p.splits > 1)
      CK(cudaMemsetAsync(dpartial, 0xFF, static_cast<std::size_t>(p.splits) * p.M * p.N * sizeof(float), g_stream));
    launch_gemm_mma<T>(p, pr.in, pr.out, tile, g_stream);
    CK(cudaGetLastError());
    CK(cudaStreamSynchronize(g_stream));
    dev_download(y, dy, ysize);
    dev_download(r, dresid, rsize);
  }

  struct Eval {
    double max_err = 0, max_ref = 0;
    long long overwritten = 0, nonfinite = 0;
    double rel() const { return max_err / std::max(max_ref, 1e-30); }
  };
  Eval evaluate(int M, bool with_bias, const std::vector<T>& y, const std::vector<float>& r) const {
    Eval e;
    auto add = [&](double got, double ref, double scale) {
      if (!std::isfinite(got)) {
        ++e.nonfinite;
        return;
      }
      e.max_err = std::max(e.max_err, std::fabs(got - ref));
      e.max_ref = std::max(e.max_ref, std::fabs(scale));
    };
    if (pr.out == GemmOut::kResidualAdd) {
      for (int row = 0; row < rows; ++row) {
        const std::size_t base = static_cast<std::size_t>(row) * N;
        if (row < M) {
          for (int n = 0; n < N; ++n) {
            const double delta = prod[base + n] + (with_bias ? bias[n] : 0.f);
            add(r[base + n], resid0[base + n] + delta, delta);
          }
        } else if (std::memcmp(&r[base], &resid0[base], N * sizeof(float)) != 0) {
          for (int n = 0; n < N; ++n)
            if (std::memcmp(&r[base + n], &resid0[base + n], sizeof(float)) != 0) ++e.overwritten;
        }
      }
      for (std::size_t i = 0; i < y.size(); ++i)
        if (h_bits(y[i]) != kSentinelBits) ++e.overwritten;
    } else {
      const bool gelu = pr.out != GemmOut::kStore;
      const bool tanh_form = pr.out == GemmOut::kGeluTanh;
      for (int row = 0; row < rows; ++row)
        for (int j = 0; j < ldy; ++j) {
          const T v = y[static_cast<std::size_t>(row) * ldy + j];
          if (row < M && j < N) {
            double ref = prod[static_cast<std::size_t>(row) * N + j] + (with_bias ? bias[j] : 0.f);
            if (gelu) ref = gelu_ref(ref, tanh_form);
            add(h_to<T>(v), ref, ref);
          } else if (h_bits(v) != kSentinelBits) {
            ++e.overwritten;
          }
        }
      if (std::memcmp(r.data(), resid0.data(), rsize * sizeof(float)) != 0)
        for (std::size_t i = 0; i < rsize; ++i)
          if (std::memcmp(&r[i], &resid0[i], sizeof(float)) != 0) ++e.overwritten;
    }
    return e;
  }
};

struct CheckSummary {
  int passed = 0, failed = 0;
  double worst = 0;
  std::string worst_at;
};
int g_fail_lines = 0;
constexpr int kMaxFailLines = 200;

// One configuration: launch, compare, sentinels; split-K also twice (bitwise identical) and counters zero.
template <typename T>
void check_config(CheckData<T>& d, int M, GemmTile tile, int splits, bool with_bias, bool is_auto, double tol,
                  CheckSummary& sum) {
  const GemmMmaArgs<T> p = d.args(M, splits, with_bias);
  std::vector<T> y1, y2;
  std::vector<float> r1, r2;
  d.run(p, tile, y1, r1);
  const auto e = d.evaluate(M, with_bias, y1, r1);
  const double rel = e.rel();
  std::string why;
  char buf[256];
  if (!(rel <= tol)) {
    std::snprintf(buf, sizeof buf, "rel err %.3e > tol %.1e; ", rel, tol);
    why += buf;
  }
  if (e.nonfinite) {
    std::snprintf(buf, sizeof buf, "%lld non-finite outputs; ", e.nonfinite);
    why += buf;
  }
  if (e.overwritten) {
    std::snprintf(buf, sizeof buf, "%lld elements that must not be written were changed; ", e.overwritten);
    why += buf;
  }
  if (splits > 1) {
    d.run(p, tile, y2, r2);
    if (std::memcmp(y1.data(), y2.data(), y1.size() * sizeof(T)) != 0 ||
        std::memcmp(r1.data(), r2.data(), r1.size() * sizeof(float)) != 0)
      why += "second run not bitwise identical; ";
    const int nt = tiles_of(tile, M, d.N);
    std::vector<int> cnt;
    dev_download(cnt, g_counters, static_cast<std::size_t>(nt));
    const auto nonzero = std::count_if(cnt.begin(), cnt.end(), [](int c) { return c != 0; });
    if (nonzero) {
      std::snprintf(buf, sizeof buf, "%lld tile counters left nonzero; ", static_cast<long long>(nonzero));
      why += buf;
      CK(cudaMemset(g_counters, 0, kCounters * sizeof(int)));
      CK(cudaDeviceSynchronize());
    }
  }
  const std::string at = "M=" + std::to_string(M) + " " + cfg_name(tile, splits) + (with_bias ? " bias" : " nobias") +
                         (is_auto ? " [auto]" : "");
  if (rel > sum.worst || !std::isfinite(rel)) {
    sum.worst = rel;
    sum.worst_at = at;
  }
  if (why.empty()) {
    ++sum.passed;
    return;
  }
  ++sum.failed;
  ++g_failures;
  if (g_fail_lines++ < kMaxFailLines)
    std::printf("  FAIL T=%s %s (%s -> %s, N=%d K=%d) %s: %s\n", tname<T>(), d.pr.name, in_name(d.pr.in),
                out_name(d.pr.out), d.N, d.K, at.c_str(), why.c_str());
  else if (g_fail_lines == kMaxFailLines + 1)
    std::printf("  (further failure lines not printed)\n");
}

template <typename T>
void run_checks(double tol_t) {
  std::printf("\n=== check, T = %s (tolerance %.1e on T outputs, %.0e on the float residual stream) ===\n", tname<T>(),
              tol_t, kTolResid);
  for (const Product& pr : kProducts) {
    const double tol = pr.out == GemmOut::kResidualAdd ? kTolResid : tol_t;
    if (!gemm_mma_supported(pr.in, pr.N, pr.K)) {
      std::printf("  FAIL %s: gemm_mma_supported(%s, N=%d, K=%d) is false\n", pr.name, in_name(pr.in), pr.N, pr.K);
      ++g_failures;
      continue;
    }
    CheckData<T> d(pr);
    CheckSummary sum;
    for (int M : kCheckM) {
      for (int with_bias = 0; with_bias < 2; ++with_bias) {
        for (GemmTile tile : kGemmTiles) {
          if (!gemm_mma_supported(pr.in, pr.N, pr.K, tile)) continue;
          const int tile_kt = pr.K / gemm_tile_stage_k(tile);
          for (int s : kCheckSplits) {
            if (!gemm_mma_supported(pr.in, pr.N, pr.K, tile, s) || (s > 1 && tile_kt % s != 0)) continue;
            check_config(d, M, tile, s, with_bias != 0, false, tol, sum);
          }
        }
        const GemmMmaConfig cfg = choose_gemm_mma(pr.in, M, pr.N, pr.K, g_sm);
        if (cfg.splits < 1 || (pr.K / gemm_tile_stage_k(cfg.tile)) % cfg.splits != 0 ||
            !gemm_mma_supported(pr.in, pr.N, pr.K, cfg.tile) || (pr.in == GemmIn::kLayerNorm && cfg.splits != 1) ||
            cfg.splits > d.max_splits) {
          std::printf("  FAIL T=%s %s M=%d: choose_gemm_mma gave an invalid config %s\n", tname<T>(), pr.name, M,
                      cfg_name(cfg.tile, cfg.splits).c_str());
          ++sum.failed;
          ++g_failures;
          continue;
        }
        check_config(d, M, cfg.tile, cfg.splits, with_bias != 0, true, tol, sum);
      }
    }
    std::printf("  %-9s %-5s -> %-9s N=%4d K=%4d: %4d passed, %3d failed; worst err %.2e (tol %.1e) at %s\n", pr.name,
                in_name(pr.in), out_name(pr.out), pr.N, pr.K, sum.passed, sum.failed, sum.worst, tol,
                sum.worst_at.c_str());
    char buf[512];
    std::snprintf(buf, sizeof buf,
                  "\"kind\":\"check\",\"T\":\"%s\",\"product\":\"%s\",\"N\":%d,\"K\":%d,\"passed\":%d,\"failed\":%d,"
                  "\"worst_rel_err\":%.3e,\"tol\":%.1e,\"ok\":%s",
                  tname<T>(), pr.name, pr.N, pr.K, sum.passed, sum.failed, sum.worst, tol,
                  sum.failed ? "false" : "true");
    json_line(buf);
  }
}

// ---- cuBLASLt (the engine's Gemm: same layouts, types and candidates) ------------------------------------------
struct LtPlan {
  int M, N, K;
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  // A fixed array (as in the engine's Gemm: nvcc 13.0's front end crashes on a std::vector of cublasLtMatmulAlgo_t).
  static constexpr int kMaxCands = 20;
  cublasLtMatmulAlgo_t cands[kMaxCands] = {};
  int n_cands = 0;

  LtPlan(int M_, int N_, int K_, bool gelu) : M(M_), N(N_), K(K_) {
    CB(cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    CB(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)));
    CB(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)));
    cublasLtEpilogue_t e = gelu ? CUBLASLT_EPILOGUE_GELU_BIAS : CUBLASLT_EPILOGUE_BIAS;
    CB(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &e, sizeof(e)));
    CB(cublasLtMatrixLayoutCreate(&a, CUDA_R_16F, K, N, K));  // W: column-major [K][N], op T -> N x K
    CB(cublasLtMatrixLayoutCreate(&b, CUDA_R_16F, K, M, K));  // activations: column-major [K][M]
    CB(cublasLtMatrixLayoutCreate(&c, CUDA_R_16F, N, M, N));  // y: column-major [N][M] = row-major [M][N]
    cublasLtMatmulPreference_t pref;
    CB(cublasLtMatmulPreferenceCreate(&pref));
    const std::size_t ws = kLtWsBytes;
    CB(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws)));
    constexpr int kReq = 16;
    cublasLtMatmulHeuristicResult_t results[kReq] = {};
    int found = 0;
    CB(cublasLtMatmulAlgoGetHeuristic(g_lt, desc, a, b, c, c, pref, kReq, results, &found));
    CB(cublasLtMatmulPreferenceDestroy(pref));
    for (int i = 0; i < found; ++i)
      if (results[i].state == CUBLAS_STATUS_SUCCESS && n_cands < kMaxCands) cands[n_cands++] = results[i].algo;
    if (found > 0) {
      for (int split : {2, 4, 8, 16}) {
        if (n_cands >= kMaxCands) break;
        cublasLtMatmulAlgo_t al = results[0].algo;
        std::int32_t sk = split;
        std::uint32_t scheme = CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE;
        if (cublasLtMatmulAlgoConfigSetAttribute(&al, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, &sk, sizeof(sk)) !=
                CUBLAS_STATUS_SUCCESS ||
            cublasLtMatmulAlgoConfigSetAttribute(&al, CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME, &scheme,
                                                 sizeof(scheme)) != CUBLAS_STATUS_SUCCESS)
          continue;
        cublasLtMatmulHeuristicResult_t chk{};
        if (cublasLtMatmulAlgoCheck(g_lt, desc, a, b, c, c, &al, &chk) == CUBLAS_STATUS_SUCCESS &&
            chk.workspaceSize <= kLtWsBytes)
          cands[n_cands++] = al;
      }
    }
  }
  ~LtPlan() {
    cublasLtMatrixLayoutDestroy(a);
    cublasLtMatrixLayoutDestroy(b);
    cublasLtMatrixLayoutDestroy(c);
    cublasLtMatmulDescDestroy(desc);
  }
  LtPlan(const LtPlan&) = delete;
  LtPlan& operator=(const LtPlan&) = delete;

  // y[M, N] = x[M, K] . W[N, K]^T + bias (-> GELU).
  cublasStatus_t run(const cublasLtMatmulAlgo_t& algo, const __half* W, const __half* x, __half* y,
                     const __half* bias) const {
    static constexpr float kOne = 1.f, kZero = 0.f;
    const void* bp = bias;
    const cublasStatus_t s = cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bp, sizeof(bp));
    if (s != CUBLAS_STATUS_SUCCESS) return s;
    return cublasLtMatmul(g_lt, desc, &kOne, W, a, x, b, &kZero, y, c, y, c, &algo, g_lt_ws, kLtWsBytes, g_stream);
  }
};

// ---- timing ------------------------------------------------------------------------------------------------------
constexpr int kTimeM[] = {64, 128, 256, 512, 1024};
constexpr int kTimeMmax = 1024;
constexpr int kTimeSplits[] = {1, 2, 3, 4, 6, 8, 12, 16};

struct TimeBufs {
  float *x = nullptr, *resid = nullptr, *resid0 = nullptr, *lnw = nullptr, *lnb = nullptr, *partial = nullptr;
  __half *A = nullptr, *a_ln = nullptr, *y = nullptr;
  std::size_t partial_floats = 0;
};
struct WeightPool {
  __half* w = nullptr;
  __half* bias = nullptr;
  int ncopy = 0;
};
struct TimeSummary {
  std::string product;
  int M;
  double lt_us, best_us, auto_us;
  std::string best_cfg, auto_cfg;
  int auto_rank, n_cfg;
};
std::vector<TimeSummary> g_time_summary;
std::map<std::pair<std::string, int>, cublasLtMatmulAlgo_t> g_lt_best;  // (product, M) -> tuned algorithm

void mma_launch_checked(const GemmMmaArgs<__half>& p, const Product& pr, GemmTile tile, const TimeBufs& b) {
  if ((p.splits > 1 && static_cast<std::size_t>(p.splits) * p.M * p.N > b.partial_floats) ||
      tiles_of(tile, p.M, p.N) > kCounters) {
    std::fprintf(stderr, "internal error: split-K scratch too small\n");
    std::exit(2);
  }
  launch_gemm_mma<__half>(p, pr.in, pr.out, tile, g_stream);
}

void time_product(const Product& pr, const WeightPool& pool, TimeBufs& b, int M) {
  using T = __half;
  const int N = pr.N, K = pr.K;
  const bool ln = pr.in == GemmIn::kLayerNorm, resid = pr.out == GemmOut::kResidualAdd;
  const double wbytes = static_cast<double>(N) * K * sizeof(T), flop = 2.0 * M * N * K;
  auto w_of = [&](int it) { return pool.w + static_cast<std::size_t>(it % pool.ncopy) * N * K; };
  std::printf("\n--- M=%d %s (%s -> %s, N=%d K=%d; %.2f MB of weights, %d copies rotating) ---\n", M, pr.name,
              in_name(pr.in), out_name(pr.out), N, K, wbytes / 1e6, pool.ncopy);

  GemmMmaArgs<T> base;
  base.M = M;
  base.N = N;
  base.K = K;
  base.A = b.A;
  base.x = b.x;
  base.ln_w = b.lnw;
  base.ln_b = b.lnb;
  base.eps = 1e-5f;
  base.bias = pool.bias;
  base.y = b.y;
  base.ldy = N;
  base.resid = b.resid;
  base.partial = b.partial;
  base.counters = g_counters;
  auto mma_args = [&](int splits, const T* W) {
    GemmMmaArgs<T> p = base;
    p.W = W;
    p.splits = splits;
    return p;
  };
  const GemmMmaConfig autocfg = choose_gemm_mma(pr.in, M, N, K, g_sm);

  // cuBLASLt path: [LN kernel] GEMM [residual add].
  LtPlan plan(M, N, K, pr.out == GemmOut::kGeluTanh);
  auto lt_body = [&](const cublasLtMatmulAlgo_t& algo, int it, bool with_kernels) {
    if (ln && with_kernels) {
      launch_layernorm<T>(b.x, nullptr, b.lnw, b.lnb, b.a_ln, M, K);
      if (cudaPeekAtLastError() != cudaSuccess) return false;
    }
    if (plan.run(algo, w_of(it), ln ? b.a_ln : b.A, b.y, pool.bias) != CUBLAS_STATUS_SUCCESS) return false;
    if (resid && with_kernels) {
      launch_residual_add<T>(b.resid, b.y, static_cast<std::int64_t>(M) * N);
      if (cudaPeekAtLastError() != cudaSuccess) return false;
    }
    return true;
  };
  double lt_us = -1;
  int lt_best = -1;
  for (int ci = 0; ci < plan.n_cands; ++ci) {
    const double us = time_graph_best(g_stream, [&](int it) { return lt_body(plan.cands[ci], it, true); }, g_iters);
    if (us > 0 && (lt_us < 0 || us < lt_us)) {
      lt_us = us;
      lt_best = ci;
    }
  }
  double lt_gemm_us = -1;
  if (lt_best >= 0) {
    g_lt_best[{pr.name, M}] = plan.cands[lt_best];
    lt_gemm_us = time_graph_best(g_stream, [&](int it) { return lt_body(plan.cands[lt_best], it, false); }, g_iters);
  } else {
    std::printf("  FAIL: no cuBLASLt candidate ran (%d candidates)\n", plan.n_cands);
    ++g_failures;
  }

  // Cross-check on identical operands (weights copy 0): cuBLASLt path vs mma auto.
  if (lt_best >= 0) {
    const std::size_t n_out = static_cast<std::size_t>(M) * N;
    std::vector<T> y_lt, y_mma;
    std::vector<float> r_lt, r_mma, r0;
    CK(cudaMemcpyAsync(b.resid, b.resid0, n_out * sizeof(float), cudaMemcpyDeviceToDevice, g_stream));
    if (!lt_body(plan.cands[lt_best], 0, true)) {
      std::printf("  FAIL: cuBLASLt path failed in the cross-check\n");
      ++g_failures;
    }
    CK(cudaGetLastError());
    CK(cudaStreamSynchronize(g_stream));
    dev_download(y_lt, b.y, n_out);
    dev_download(r_lt, b.resid, n_out);
    CK(cudaMemcpyAsync(b.resid, b.resid0, n_out * sizeof(float), cudaMemcpyDeviceToDevice, g_stream));
    mma_launch_checked(mma_args(autocfg.splits, w_of(0)), pr, autocfg.tile, b);
    CK(cudaGetLastError());
    CK(cudaStreamSynchronize(g_stream));
    dev_download(y_mma, b.y, n_out);
    dev_download(r_mma, b.resid, n_out);
    dev_download(r0, b.resid0, n_out);
    double max_diff = 0, max_ref = 0;
    long long nonfinite = 0;
    for (std::size_t i = 0; i < n_out; ++i) {
      double u, v;
      if (resid) {
        u = static_cast<double>(r_lt[i]) - r0[i];
        v = static_cast<double>(r_mma[i]) - r0[i];
      } else {
        u = h_to<T>(y_lt[i]);
        v = h_to<T>(y_mma[i]);
      }
      if (!std::isfinite(u) || !std::isfinite(v)) {
        ++nonfinite;
        continue;
      }
      max_diff = std::max(max_diff, std::fabs(u - v));
      max_ref = std::max(max_ref, std::fabs(v));
    }
    const double rel = max_diff / std::max(max_ref, 1e-30);
    const bool ok = rel <= 1e-2 && nonfinite == 0;
    std::printf("  cross-check cuBLASLt path vs mma auto: max rel diff %.2e%s\n", rel,
                ok ? "" : "  FAIL (cuBLASLt layout or mma bug)");
    if (!ok) ++g_failures;
  }

  // mma: every tile and split.
  struct Row {
    std::string name;
    GemmTile tile;
    int splits;
    double us;
  };
  std::vector<Row> rows;
  for (GemmTile tile : kGemmTiles)
    for (int s : kTimeSplits) {
      if (!gemm_mma_supported(pr.in, N, K, tile, s)) continue;
      const double us = time_graph_best(g_stream, 
          [&](int it) {
            mma_launch_checked(mma_args(s, w_of(it)), pr, tile, b);
            return cudaPeekAtLastError() == cudaSuccess;
          },
          g_iters);
      if (us < 0) {
        std::printf("  FAIL: mma:%s launch failed\n", cfg_name(tile, s).c_str());
        ++g_failures;
        continue;
      }
      rows.push_back({"mma:" + cfg_name(tile, s), tile, s, us});
    }
  const double auto_us = time_graph_best(g_stream, 
      [&](int it) {
        mma_launch_checked(mma_args(autocfg.splits, w_of(it)), pr, autocfg.tile, b);
        return cudaPeekAtLastError() == cudaSuccess;
      },
      g_iters);
  if (auto_us < 0) {
    std::printf("  FAIL: auto launch failed\n");
    ++g_failures;
  }
  std::sort(rows.begin(), rows.end(), [](const Row& x, const Row& y) { return x.us < y.us; });
  const std::string auto_name = "mma:" + cfg_name(autocfg.tile, autocfg.splits);
  int auto_rank = 0;
  for (std::size_t i = 0; i < rows.size(); ++i)
    if (rows[i].name == auto_name) auto_rank = static_cast<int>(i) + 1;

  const char* lt_label = ln ? "cublasLt+LN kernel" : resid ? "cublasLt+resid kernel" : "cublasLt";
  auto line = [&](const std::string& name, double us, const char* note) {
    if (us <= 0) return;
    std::printf("  %-24s %9.2f us %8.1f GB/s %7.2f TFLOP/s  x%5.2f vs cuBLASLt path  %s\n", name.c_str(), us,
                wbytes / us * 1e-3, flop / us * 1e-6, lt_us > 0 ? lt_us / us : 0.0, note);
  };
  auto json = [&](const std::string& name, double us, bool is_auto, bool is_best) {
    if (us <= 0) return;
    char buf[512];
    std::snprintf(buf, sizeof buf,
                  "\"kind\":\"time\",\"T\":\"half\",\"product\":\"%s\",\"M\":%d,\"N\":%d,\"K\":%d,\"version\":\"%s\","
                  "\"us\":%.3f,\"gbps\":%.1f,\"tflops\":%.3f,\"auto\":%s,\"best_mma\":%s,\"speedup_vs_cublaslt\":%.3f",
                  pr.name, M, N, K, name.c_str(), us, wbytes / us * 1e-3, flop / us * 1e-6, is_auto ? "true" : "false",
                  is_best ? "true" : "false", lt_us > 0 ? lt_us / us : 0.0);
    json_line(buf);
  };
  char note[160];
  std::snprintf(note, sizeof note, "(best of %d cuBLASLt candidates, the %s kernel included)", plan.n_cands,
                ln ? "LayerNorm" : resid ? "residual-add" : "no other");
  line(lt_label, lt_us, note);
  line("cublasLt gemm only", lt_gemm_us, "(same algorithm, without the extra kernel)");
  for (std::size_t i = 0; i < rows.size() && i < 3; ++i)
    line(rows[i].name, rows[i].us, i == 0 ? "best mma" : "");
  std::snprintf(note, sizeof note, "<- AUTO = %s: rank %d of %zu, %+.1f%% vs best mma", auto_name.c_str(), auto_rank,
                rows.size(), rows.empty() ? 0.0 : 100.0 * (auto_us / rows[0].us - 1.0));
  line("auto", auto_us, note);
  json("cublasLt", lt_us, false, false);
  json("cublasLt_gemm_only", lt_gemm_us, false, false);
  for (std::size_t i = 0; i < rows.size(); ++i) json(rows[i].name, rows[i].us, false, i == 0);
  json("auto:" + cfg_name(autocfg.tile, autocfg.splits), auto_us, true, false);
  if (!rows.empty())
    g_time_summary.push_back({pr.name, M, lt_us, rows[0].us, auto_us, rows[0].name.substr(4),
                              cfg_name(autocfg.tile, autocfg.splits), auto_rank, static_cast<int>(rows.size())});
}

// The arguments of one of a layer's products in the chains below (A or the LayerNorm of x as input, per pr.in).
GemmMmaArgs<__half> layer_args(const Product& pr, int M, const GemmMmaConfig& cfg, const __half* A, const __half* W,
                               const __half* bias, __half* out, int ldy, float* x, const TimeBufs& b, bool pdl) {
  GemmMmaArgs<__half> p;
  p.M = M;
  p.N = pr.N;
  p.K = pr.K;
  p.A = A;
  p.x = x;
  p.ln_w = b.lnw;
  p.ln_b = b.lnb;
  p.eps = 1e-5f;
  p.W = W;
  p.bias = bias;
  p.y = out;
  p.ldy = ldy;
  p.resid = x;
  p.splits = cfg.splits;
  p.partial = b.partial;
  p.counters = g_counters;
  p.pdl = pdl;
  return p;
}

// The same layer as chains of programmatic dependent launches (Hopper PDL): every kernel of the chain is launched
// as a dependent of the one before, so its blocks may become resident while that kernel finishes, and the mma
// kernels stream their first weight stages in before griddepcontrol.wait (the weights never depend on the kernel
// before). This is what cuBLASLt's kernels cannot do (they do not trigger their dependents early: prefill_pdl in
// the engine measured no gain), and what the engine's B1 x S128 prefill lacks: its products wait out a cold-HBM
// weight fetch each (cold 7.5-11 us against 3.4-6.6 hot).
//   fused       the 4-kernel mma chain above (LayerNorm in the QKV / FC prologue), auto configs, with PDL
//   lnsep       6 kernels: the engine's LayerNorm kernel + plain mma products (qkv, proj + residual, LN2,
//               fc GELU, mproj + residual, LN1 of the next layer), each product's tile / split-K picked by timing
//               it alone (PDL on, weights rotating); without and with PDL
// Check: lnsep with PDL must leave x, qkv and fc bitwise equal to lnsep without (the kernels are deterministic;
// a dependent that read or wrote before its wait would differ).
template <typename LayerFn>
void run_pdl_chains(TimeBufs& b, int M, double us_lt, const LayerFn& layer_of, float* x, __half* h, __half* qkv,
                    const __half* att, __half* fc) {
  using T = __half;
  constexpr int C = 768, I = 3072;
  const Product pq{"qkv", GemmIn::kPlain, GemmOut::kStore, 3 * C, C, true};
  const Product pp = kProducts[1];
  const Product pf{"fc", GemmIn::kPlain, GemmOut::kGeluTanh, I, C, true};
  const Product pm = kProducts[3];
  enum Slot { kQkv, kProj, kFc, kMproj };
  auto launch = [&](const Product& pr, const GemmMmaConfig& cfg, const T* A, const T* W, const T* bias, T* out,
                    int ldy, bool pdl) {
    mma_launch_checked(layer_args(pr, M, cfg, A, W, bias, out, ldy, x, b, pdl), pr, cfg.tile, b);
  };
  auto ln = [&](bool pdl) {
    return launch_kernel(residual_layernorm_reg<T, 6>, dim3((M + 3) / 4), dim3(128), 0, g_stream, pdl, x,
                                  static_cast<const T*>(nullptr), static_cast<const float*>(b.lnw),
                                  static_cast<const float*>(b.lnb), h, M, C, 1e-5f) == cudaSuccess;
  };
  struct Use {
    const Product* pr;
    const T* A;
    T* out;
    int ldy;
  };
  const Use uses[4] = {{&pq, h, qkv, 3 * C}, {&pp, att, nullptr, 0}, {&pf, h, fc, I}, {&pm, fc, nullptr, 0}};

  // Each product's configuration: every tile and split-K that fits the scratch, timed alone with PDL.
  GemmMmaConfig pick[4], pick_res[4];  // pick_res: the best with resident weights (WRES)
  for (int s = 0; s < 4; ++s) {
    const Use& u = uses[s];
    double best = -1, best_res = -1;
    for (GemmTile t : kGemmTiles) {
      if (!gemm_mma_supported(u.pr->in, u.pr->N, u.pr->K, t)) continue;
      for (int sp : kTimeSplits) {
        if (!gemm_mma_supported(u.pr->in, u.pr->N, u.pr->K, t, sp) || tiles_of(t, M, u.pr->N) > kCounters ||
            (sp > 1 && static_cast<std::size_t>(sp) * M * u.pr->N > b.partial_floats))
          continue;
        const GemmMmaConfig cfg{t, sp};
        const double us = time_graph_best(g_stream, [&](int it) {
          const auto w = layer_of(it);
          launch(*u.pr, cfg, u.A, w[s], w[4 + s], u.out, u.ldy, true);
          return cudaPeekAtLastError() == cudaSuccess;
        }, g_iters);
        if (us > 0 && (best < 0 || us < best)) {
          best = us;
          pick[s] = cfg;
        }
        if (us > 0 && gemm_tile_resident(t) && (best_res < 0 || us < best_res)) {
          best_res = us;
          pick_res[s] = cfg;
        }
      }
    }
    std::printf("    pdl pick M=%d %-5s %-12s %7.2f us alone; resident weights %-12s %7.2f us\n", M, u.pr->name,
                cfg_name(pick[s].tile, pick[s].splits).c_str(), best,
                cfg_name(pick_res[s].tile, pick_res[s].splits).c_str(), best_res);
  }

  auto lnsep_layer_cfg = [&](int it, bool pdl, const GemmMmaConfig* cfgs) {
    const auto w = layer_of(it);
    for (int s = 0; s < 4; ++s) {
      const Use& u = uses[s];
      launch(*u.pr, cfgs[s], u.A, w[s], w[4 + s], u.out, u.ldy, pdl);
      if (s == kProj || s == kMproj) {
        if (!ln(pdl)) return false;
      }
    }
    return cudaPeekAtLastError() == cudaSuccess;
  };
  auto lnsep_layer = [&](int it, bool pdl) { return lnsep_layer_cfg(it, pdl, pick_res); };

  // Bitwise check (resident-weight configs): three layers from the same x, without and with PDL.
  {
    const std::size_t nx = static_cast<std::size_t>(M) * C;
    std::vector<float> x0, x_a, x_b;
    std::vector<T> q_a, q_b, f_a, f_b;
    dev_download(x0, x, nx);
    std::vector<std::vector<float>*> xs = {&x_a, &x_b};
    std::vector<std::vector<T>*> qs = {&q_a, &q_b}, fs = {&f_a, &f_b};
    for (int v = 0; v < 2; ++v) {
      CK(cudaMemcpyAsync(x, x0.data(), nx * sizeof(float), cudaMemcpyHostToDevice, g_stream));
      bool ok = ln(false);
      for (int it = 0; it < 3 && ok; ++it) ok = lnsep_layer(it, v == 1);
      CK(cudaStreamSynchronize(g_stream));
      if (!ok) {
        std::printf("  FAIL: pdl chain M=%d: a launch failed\n", M);
        ++g_failures;
        return;
      }
      dev_download(*xs[v], x, nx);
      dev_download(*qs[v], qkv, static_cast<std::size_t>(M) * 3 * C);
      dev_download(*fs[v], fc, static_cast<std::size_t>(M) * I);
    }
    const bool same = x_a == x_b && std::memcmp(q_a.data(), q_b.data(), q_a.size() * sizeof(T)) == 0 &&
                      std::memcmp(f_a.data(), f_b.data(), f_a.size() * sizeof(T)) == 0;
    std::printf("  check pdl chain M=%d: x, qkv, fc after 3 layers %s without PDL\n", M,
                same ? "bitwise equal to" : "DIFFER from");
    if (!same) ++g_failures;
    CK(cudaMemcpyAsync(x, x0.data(), nx * sizeof(float), cudaMemcpyHostToDevice, g_stream));
    CK(cudaStreamSynchronize(g_stream));
  }

  const GemmMmaConfig cq = choose_gemm_mma(kProducts[0].in, M, 3 * C, C, g_sm),
                      cp = choose_gemm_mma(pp.in, M, C, C, g_sm), cf = choose_gemm_mma(kProducts[2].in, M, I, C, g_sm),
                      cm = choose_gemm_mma(pm.in, M, C, I, g_sm);
  const double us_fused_pdl = time_graph_best(g_stream, [&](int it) {
    const auto w = layer_of(it);
    launch(kProducts[0], cq, nullptr, w[kQkv], w[4 + kQkv], qkv, 3 * C, true);
    launch(pp, cp, att, w[kProj], w[4 + kProj], nullptr, 0, true);
    launch(kProducts[2], cf, nullptr, w[kFc], w[4 + kFc], fc, I, true);
    launch(pm, cm, fc, w[kMproj], w[4 + kMproj], nullptr, 0, true);
    return cudaPeekAtLastError() == cudaSuccess;
  }, g_iters);
  double us_lnsep[4];
  for (int v = 0; v < 4; ++v)
    us_lnsep[v] = time_graph_best(g_stream, [&](int it) { return lnsep_layer_cfg(it, v % 2 == 1, v < 2 ? pick : pick_res); },
                                  g_iters);
  const struct {
    const char* name;
    double us;
  } rows[] = {{"mma_fused_pdl", us_fused_pdl}, {"mma_lnsep", us_lnsep[0]}, {"mma_lnsep_pdl", us_lnsep[1]},
              {"mma_lnsep_res", us_lnsep[2]}, {"mma_lnsep_res_pdl", us_lnsep[3]}};
  for (const auto& r : rows) {
    if (r.us <= 0) {
      std::printf("  FAIL: chain M=%d %s: a launch failed\n", M, r.name);
      ++g_failures;
      continue;
    }
    std::printf("chain M=%4d  %-14s %8.2f us / layer  cuBLASLt %8.2f  x%.2f  (x12 layers: %.1f vs %.1f us)\n", M,
                r.name, r.us, us_lt, us_lt > 0 ? us_lt / r.us : 0.0, 12 * r.us, 12 * us_lt);
    char buf[256];
    std::snprintf(buf, sizeof buf,
                  "\"kind\":\"chain\",\"T\":\"half\",\"product\":\"layer_chain\",\"M\":%d,\"version\":\"%s\","
                  "\"us\":%.3f",
                  M, r.name, r.us);
    json_line(buf);
  }
}

// One layer's four products, mma (auto configs, 4 kernels) vs the engine's cuBLASLt path (6 kernels).
void run_chain(TimeBufs& b) {
  using T = __half;
  constexpr int C = 768, I = 3072;
  const std::size_t n_qkv = 3ull * C * C, n_proj = 1ull * C * C, n_fc = 1ull * I * C, n_mproj = 1ull * C * I;
  const std::size_t per_layer = n_qkv + n_proj + n_fc + n_mproj + 3 * C + C + I + C;  // weights + biases
  const double wbytes = static_cast<double>(n_qkv + n_proj + n_fc + n_mproj) * sizeof(T);
  const int nl = g_rotate ? static_cast<int>(std::ceil(kRotateBytes / wbytes)) : 1;
  T* pool = dev_alloc<T>(per_layer * nl);
  dev_fill<T>(pool, per_layer * nl, 99u, 0.05f);
  struct L {
    const T *qkv, *proj, *fc, *mproj, *bqkv, *bproj, *bfc, *bmproj;
  };
  auto layer = [&](int it) {
    const T* p = pool + static_cast<std::size_t>(it % nl) * per_layer;
    L l;
    l.qkv = p;
    l.proj = l.qkv + n_qkv;
    l.fc = l.proj + n_proj;
    l.mproj = l.fc + n_fc;
    l.bqkv = l.mproj + n_mproj;
    l.bproj = l.bqkv + 3 * C;
    l.bfc = l.bproj + C;
    l.bmproj = l.bfc + I;
    return l;
  };
  const int Mmax = 512;
  T* qkv = dev_alloc<T>(static_cast<std::size_t>(Mmax) * 3 * C);
  T* att = dev_alloc<T>(static_cast<std::size_t>(Mmax) * C);
  T* fc = dev_alloc<T>(static_cast<std::size_t>(Mmax) * I);
  T* h = dev_alloc<T>(static_cast<std::size_t>(Mmax) * C);
  T* y = dev_alloc<T>(static_cast<std::size_t>(Mmax) * C);
  float* x = dev_alloc<float>(static_cast<std::size_t>(Mmax) * C);
  dev_fill<T>(att, static_cast<std::size_t>(Mmax) * C, 5u, 1.f);
  std::printf("\n=== one layer's four products (attention not included), T = half, %.2f MB of weights / layer "
              "rotating over %d layers ===\n",
              wbytes / 1e6, nl);
  std::printf("    mma: LN-QKV, proj + residual, LN-FC-GELU, mproj + residual (auto configs, 4 kernels)\n"
              "    cuBLASLt: GEMM qkv, GEMM proj, residual add + LN2, GEMM fc GELU, GEMM mproj, residual add + LN1 "
              "(6 kernels, the engine's steady state)\n");
  const Product& pq = kProducts[0];
  const Product& pp = kProducts[1];
  const Product& pf = kProducts[2];
  const Product& pm = kProducts[3];
  for (int M : {128, 512}) {
    dev_fill<float>(x, static_cast<std::size_t>(M) * C, 7u + M, 1.f);
    const GemmMmaConfig cq = choose_gemm_mma(pq.in, M, pq.N, pq.K, g_sm), cp = choose_gemm_mma(pp.in, M, pp.N, pp.K, g_sm),
                        cf = choose_gemm_mma(pf.in, M, pf.N, pf.K, g_sm), cm = choose_gemm_mma(pm.in, M, pm.N, pm.K, g_sm);
    auto mma = [&](const Product& pr, const GemmMmaConfig& cfg, const T* A, const T* W, const T* bias, T* out, int ldy) {
      mma_launch_checked(layer_args(pr, M, cfg, A, W, bias, out, ldy, x, b, false), pr, cfg.tile, b);
    };
    const double us_mma = time_graph_best(g_stream, 
        [&](int it) {
          const L l = layer(it);
          mma(pq, cq, nullptr, l.qkv, l.bqkv, qkv, 3 * C);
          mma(pp, cp, att, l.proj, l.bproj, nullptr, 0);
          mma(pf, cf, nullptr, l.fc, l.bfc, fc, I);
          mma(pm, cm, fc, l.mproj, l.bmproj, nullptr, 0);
          return cudaPeekAtLastError() == cudaSuccess;
        },
        g_iters);

    LtPlan lq(M, 3 * C, C, false), lp(M, C, C, false), lf(M, I, C, true), lm(M, C, I, false);
    auto algo = [&](const Product& pr, const LtPlan& plan, bool& ok) -> cublasLtMatmulAlgo_t {
      auto it = g_lt_best.find({pr.name, M});
      if (it != g_lt_best.end()) return it->second;
      if (plan.n_cands == 0) {
        ok = false;
        return cublasLtMatmulAlgo_t{};
      }
      return plan.cands[0];
    };
    bool have = true;
    const cublasLtMatmulAlgo_t aq = algo(pq, lq, have), ap = algo(pp, lp, have), af = algo(pf, lf, have),
                               am = algo(pm, lm, have);
    double us_lt = -1;
    auto lt_layer = [&](int it) {
      const L l = layer(it);
      bool ok = lq.run(aq, l.qkv, h, qkv, l.bqkv) == CUBLAS_STATUS_SUCCESS;
      ok = ok && lp.run(ap, l.proj, att, y, l.bproj) == CUBLAS_STATUS_SUCCESS;
      if (ok) launch_layernorm<T>(x, y, b.lnw, b.lnb, h, M, C);
      ok = ok && lf.run(af, l.fc, h, fc, l.bfc) == CUBLAS_STATUS_SUCCESS;
      ok = ok && lm.run(am, l.mproj, fc, y, l.bmproj) == CUBLAS_STATUS_SUCCESS;
      if (ok) launch_layernorm<T>(x, y, b.lnw, b.lnb, h, M, C);
      return ok && cudaPeekAtLastError() == cudaSuccess;
    };
    if (have) {
      launch_layernorm<T>(x, nullptr, b.lnw, b.lnb, h, M, C);  // h = LN1(x), as left by the previous layer
      CK(cudaGetLastError());
      us_lt = time_graph_best(g_stream, lt_layer, g_iters);
    }
    if (have) {
      // The cuBLASLt chain with programmatic edges in its graph (graph_pdl.h): "own" = only the edges into the
      // LayerNorm kernels (which wait first); "all" = also the edges into cuBLASLt's kernels, used only when the
      // probe shows that they wait for the kernel before (else they would read stale activations).
      const void* ln_fn = reinterpret_cast<const void*>(&residual_layernorm_reg<T, 6>);
      auto editor = [&](bool foreign, int* count) {
        return [=](cudaGraph_t g) {
          int n = 0;
          const cudaError_t e = gptbench::cuda_engine::make_kernel_edges_programmatic(
              g, [&](cudaGraphNode_t, const void* fn) { return fn == ln_fn || (foreign && fn != ln_fn); }, &n);
          if (count) *count = n;
          return e == cudaSuccess;
        };
      };
      // Run `layers` layers from the same x0 in one graph (edited or not); x and h come back.
      auto run_layers = [&](int layers, const std::function<bool(cudaGraph_t)>& edit, std::vector<float>& xo,
                            std::vector<T>& ho, const std::vector<float>& x0) {
        CK(cudaMemcpy(x, x0.data(), x0.size() * sizeof(float), cudaMemcpyHostToDevice));
        launch_layernorm<T>(x, nullptr, b.lnw, b.lnb, h, M, C);
        CK(cudaStreamSynchronize(g_stream));
        cudaGraph_t g = nullptr;
        CK(cudaStreamBeginCapture(g_stream, cudaStreamCaptureModeThreadLocal));
        bool ok = true;
        for (int it = 0; it < layers && ok; ++it) ok = lt_layer(it);
        CK(cudaStreamEndCapture(g_stream, &g));
        if (!ok || (edit && !edit(g))) {
          cudaGraphDestroy(g);
          return false;
        }
        cudaGraphExec_t ex;
        CK(cudaGraphInstantiate(&ex, g, 0));
        CK(cudaGraphLaunch(ex, g_stream));
        CK(cudaStreamSynchronize(g_stream));
        CK(cudaGraphExecDestroy(ex));
        CK(cudaGraphDestroy(g));
        dev_download(xo, x, static_cast<std::size_t>(M) * C);
        dev_download(ho, h, static_cast<std::size_t>(M) * C);
        return true;
      };

      // Probe: slow_fill (spins 50 us, then writes the QKV product's input) -> the cuBLASLt QKV product, with the
      // edge between them programmatic. If cuBLASLt's kernel did not wait, it would multiply the zeros.
      bool cublas_waits = true;
      {
        const std::size_t na = static_cast<std::size_t>(M) * C, nq = static_cast<std::size_t>(M) * 3 * C;
        std::vector<T> ref, got;
        int edges = 0;
        for (int v = 0; v < 6 && cublas_waits; ++v) {
          const bool pdl = v % 2 == 1;
          CK(cudaMemset(h, 0, na * sizeof(T)));
          CK(cudaMemset(qkv, 0xFF, nq * sizeof(T)));
          CK(cudaDeviceSynchronize());
          cudaGraph_t g = nullptr;
          CK(cudaStreamBeginCapture(g_stream, cudaStreamCaptureModeThreadLocal));
          slow_fill<<<8, 256, 0, g_stream>>>(h, static_cast<int>(na), 1.f, 50000);
          const bool ok = lq.run(aq, layer(0).qkv, h, qkv, layer(0).bqkv) == CUBLAS_STATUS_SUCCESS;
          CK(cudaStreamEndCapture(g_stream, &g));
          int n = 0;
          if (pdl) CK(gptbench::cuda_engine::make_kernel_edges_programmatic(
                       g, [](cudaGraphNode_t, const void*) { return true; }, &n));
          cudaGraphExec_t ex;
          CK(cudaGraphInstantiate(&ex, g, 0));
          CK(cudaGraphLaunch(ex, g_stream));
          CK(cudaStreamSynchronize(g_stream));
          CK(cudaGraphExecDestroy(ex));
          CK(cudaGraphDestroy(g));
          dev_download(pdl ? got : ref, qkv, nq);
          if (pdl) {
            edges = n;
            if (!ok || n == 0 || std::memcmp(ref.data(), got.data(), nq * sizeof(T)) != 0) cublas_waits = false;
          }
        }
        double ref_abs = 0;
        for (const T& v : ref) ref_abs = std::max(ref_abs, std::fabs(static_cast<double>(h_to<T>(v))));
        std::printf("  probe M=%d: cuBLASLt QKV product as a programmatic dependent (%d edge(s)) of a 50 us producer: "
                    "%s (max |ref| %.3f)\n",
                    M, edges, cublas_waits ? "same result as with a full dependency: it waits" : "DIFFERENT result: it "
                    "does not wait; not used", ref_abs);
      }
      std::vector<float> x0(static_cast<std::size_t>(M) * C);
      dev_download(x0, x, x0.size());
      std::vector<float> xa, xb;
      std::vector<T> ha, hb;
      for (int variant = 0; variant < (cublas_waits ? 2 : 1); ++variant) {
        const bool foreign = variant == 1;
        int n = 0;
        bool same = run_layers(3, {}, xa, ha, x0) && run_layers(3, editor(foreign, &n), xb, hb, x0) && xa == xb &&
                    std::memcmp(ha.data(), hb.data(), ha.size() * sizeof(T)) == 0;
        std::printf("  check graph-pdl (%s) M=%d: %d edges programmatic; x, h after 3 layers %s\n",
                    foreign ? "all" : "own", M, n, same ? "bitwise equal to full dependencies" : "DIFFER");
        if (!same) ++g_failures;
        CK(cudaMemcpy(x, x0.data(), x0.size() * sizeof(float), cudaMemcpyHostToDevice));
        const double us = time_graph_best(g_stream, lt_layer, g_iters, editor(foreign, nullptr));
        std::printf("chain M=%4d  %-20s %8.2f us / layer  cuBLASLt %8.2f  x%.2f\n", M,
                    foreign ? "cublasLt_gpdl_all" : "cublasLt_gpdl_own", us, us_lt, us > 0 ? us_lt / us : 0.0);
        char buf[256];
        std::snprintf(buf, sizeof buf,
                      "\"kind\":\"chain\",\"T\":\"half\",\"product\":\"layer_chain\",\"M\":%d,\"version\":\"%s\","
                      "\"us\":%.3f",
                      M, foreign ? "cublasLt_gpdl_all" : "cublasLt_gpdl_own", us);
        json_line(buf);
      }
    }
    if (us_mma < 0 || us_lt < 0) {
      std::printf("  FAIL: chain M=%d: a launch failed (mma %.2f, cuBLASLt %.2f)\n", M, us_mma, us_lt);
      ++g_failures;
    }
    std::printf("chain M=%4d  mma %8.2f us / layer (%s, %s, %s, %s)  cuBLASLt %8.2f us / layer  x%.2f  "
                "(x12 layers: %.1f vs %.1f us)\n",
                M, us_mma, cfg_name(cq.tile, cq.splits).c_str(), cfg_name(cp.tile, cp.splits).c_str(),
                cfg_name(cf.tile, cf.splits).c_str(), cfg_name(cm.tile, cm.splits).c_str(), us_lt,
                us_mma > 0 ? us_lt / us_mma : 0.0, 12 * us_mma, 12 * us_lt);
    run_pdl_chains(b, M, us_lt, [&](int it) {
      const L l = layer(it);
      return std::array<const T*, 8>{l.qkv, l.proj, l.fc, l.mproj, l.bqkv, l.bproj, l.bfc, l.bmproj};
    }, x, h, qkv, att, fc);
    for (int v = 0; v < 2; ++v) {
      const double us = v ? us_lt : us_mma;
      if (us <= 0) continue;
      char buf[384];
      std::snprintf(buf, sizeof buf,
                    "\"kind\":\"chain\",\"T\":\"half\",\"product\":\"layer_chain\",\"M\":%d,\"version\":\"%s\","
                    "\"us\":%.3f,\"gbps\":%.1f,\"tflops\":%.3f",
                    M, v ? "cublasLt" : "mma_auto", us, wbytes / us * 1e-3,
                    2.0 * M * (wbytes / sizeof(T)) / us * 1e-6);
      json_line(buf);
    }
  }
  for (void* p : {static_cast<void*>(pool), static_cast<void*>(qkv), static_cast<void*>(att), static_cast<void*>(fc),
                  static_cast<void*>(h), static_cast<void*>(y), static_cast<void*>(x)})
    CK(cudaFree(p));
}

void run_timing() {
  using T = __half;
  std::printf("\n=== timing, T = half: us / call (best of 3 graph replays of %d calls), weight GB/s, TFLOP/s ===\n",
              g_iters);
  TimeBufs b;
  int maxK = 0, maxN = 0;
  std::size_t partial = 0;
  for (const Product& pr : kProducts) {
    if (!pr.timed) continue;
    maxK = std::max(maxK, pr.K);
    maxN = std::max(maxN, pr.N);
    if (pr.in == GemmIn::kPlain)
      partial = std::max(partial, static_cast<std::size_t>(std::max(16, pr.K / 64 / 2)) * kTimeMmax * pr.N);
  }
  const std::size_t mk = static_cast<std::size_t>(kTimeMmax) * maxK, mn = static_cast<std::size_t>(kTimeMmax) * maxN;
  b.x = dev_alloc<float>(mk);
  b.A = dev_alloc<T>(mk);
  b.a_ln = dev_alloc<T>(mk);
  b.y = dev_alloc<T>(mn);
  b.resid = dev_alloc<float>(mn);
  b.resid0 = dev_alloc<float>(mn);
  b.partial = dev_alloc<float>(partial);
  b.partial_floats = partial;
  dev_fill<float>(b.x, mk, 1u, 1.5f, 0.5f);
  dev_fill<T>(b.A, mk, 2u, 1.f);
  dev_fill<float>(b.resid0, mn, 3u, 1.f);
  CK(cudaMemcpyAsync(b.resid, b.resid0, mn * sizeof(float), cudaMemcpyDeviceToDevice, g_stream));
  std::vector<float> lnw(maxK), lnb(maxK);
  Rng rng(3);
  for (int k = 0; k < maxK; ++k) {
    lnw[k] = 1.f + 0.2f * rng.uni();
    lnb[k] = 0.1f * rng.uni();
  }
  b.lnw = dev_upload(lnw);
  b.lnb = dev_upload(lnb);

  std::vector<WeightPool> pools(sizeof(kProducts) / sizeof(kProducts[0]));
  for (std::size_t i = 0; i < pools.size(); ++i) {
    const Product& pr = kProducts[i];
    if (!pr.timed) continue;
    const double wbytes = static_cast<double>(pr.N) * pr.K * sizeof(T);
    pools[i].ncopy = g_rotate ? static_cast<int>(std::max<double>(2.0, std::ceil(kRotateBytes / wbytes))) : 1;
    const std::size_t n = static_cast<std::size_t>(pools[i].ncopy) * pr.N * pr.K;
    pools[i].w = dev_alloc<T>(n);
    dev_fill<T>(pools[i].w, n, 100u + static_cast<std::uint32_t>(i), 1.7f / std::sqrt(static_cast<float>(pr.K)));
    pools[i].bias = dev_alloc<T>(pr.N);
    dev_fill<T>(pools[i].bias, pr.N, 200u + static_cast<std::uint32_t>(i), 0.2f);
  }
  CK(cudaStreamSynchronize(g_stream));

  for (int M : kTimeM)
    for (std::size_t i = 0; i < pools.size(); ++i)
      if (kProducts[i].timed) time_product(kProducts[i], pools[i], b, M);

  std::printf("\n=== summary (T = half, us / call; the cuBLASLt path includes its LayerNorm / residual-add kernel) "
              "===\n");
  std::printf("  %5s %-6s %12s %22s %22s %9s %14s\n", "M", "prod", "cuBLASLt+k", "best mma", "auto", "auto/best",
              "cuBLASLt/auto");
  for (const TimeSummary& s : g_time_summary) {
    char best[64], au[64];
    std::snprintf(best, sizeof best, "%.2f %s", s.best_us, s.best_cfg.c_str());
    std::snprintf(au, sizeof au, "%.2f %s #%d", s.auto_us, s.auto_cfg.c_str(), s.auto_rank);
    std::printf("  %5d %-6s %12.2f %22s %22s %9.3f %14.2f\n", s.M, s.product.c_str(), s.lt_us, best, au,
                s.auto_us / s.best_us, s.auto_us > 0 ? s.lt_us / s.auto_us : 0.0);
  }

  for (auto& p : pools) {
    if (p.w) CK(cudaFree(p.w));
    if (p.bias) CK(cudaFree(p.bias));
  }
  run_chain(b);

  // Every split-K launch must have left its counters at zero.
  std::vector<int> cnt;
  dev_download(cnt, g_counters, kCounters);
  const auto nonzero = std::count_if(cnt.begin(), cnt.end(), [](int c) { return c != 0; });
  if (nonzero) {
    std::printf("FAIL: %lld split-K tile counters nonzero after the timing runs\n", static_cast<long long>(nonzero));
    ++g_failures;
  }
  for (void* p : {static_cast<void*>(b.x), static_cast<void*>(b.A), static_cast<void*>(b.a_ln), static_cast<void*>(b.y),
                  static_cast<void*>(b.resid), static_cast<void*>(b.resid0), static_cast<void*>(b.partial),
                  static_cast<void*>(b.lnw), static_cast<void*>(b.lnb)})
    CK(cudaFree(p));
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (const int taken = common_option(argc, argv, i, g_json, g_iters); taken != 0) {
      if (taken < 0) return 2;
    } else if (!std::strcmp(argv[i], "--check-only")) {
      g_check_only = true;
    } else if (!std::strcmp(argv[i], "--timing-only")) {
      g_skip_check = true;
    } else if (!std::strcmp(argv[i], "--no-rotate")) {
      g_rotate = false;
    } else {
      std::fprintf(stderr, "usage: %s [--iters N] [--json FILE] [--check-only | --timing-only] [--no-rotate]\n",
                   argv[0]);
      return 2;
    }
  }
  cudaDeviceProp prop{};
  CK(cudaGetDeviceProperties(&prop, 0));
  g_gpu = prop.name;
  g_sm = prop.multiProcessorCount;
  std::printf("gemm_lab on %s (%d SMs, %.0f MB L2, sm_%d%d), %d iterations per timing%s\n", prop.name, g_sm,
              prop.l2CacheSize / 1e6, prop.major, prop.minor, g_iters,
              g_rotate ? "" : ", weights NOT rotating (--no-rotate: L2-resident)");
  CK(cudaStreamCreateWithFlags(&g_stream, cudaStreamNonBlocking));
  CB(cublasLtCreate(&g_lt));
  CK(cudaMalloc(&g_lt_ws, kLtWsBytes));
  CK(cudaMalloc(&g_counters, kCounters * sizeof(int)));
  CK(cudaMemset(g_counters, 0, kCounters * sizeof(int)));
  CK(cudaDeviceSynchronize());

  if (!g_skip_check) {
    run_checks<__half>(4e-3);
    run_checks<__nv_bfloat16>(1.6e-2);
  }
  if (!g_check_only) run_timing();

  std::printf("\n%s (%d failures)\n", g_failures ? "FAILED" : "ALL CHECKS PASSED", g_failures);
  if (g_json) std::fclose(g_json);
  cudaFree(g_counters);
  cudaFree(g_lt_ws);
  cublasLtDestroy(g_lt);
  cudaStreamDestroy(g_stream);
  return g_failures ? 1 : 0;
}
