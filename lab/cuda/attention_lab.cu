// attention_lab: causal prefill attention kernels side by side (after llm.c's dev/cuda).
//
//   v1  flash_attention_wmma<T, D, 4>        the older kernel (option attention=wmma): O and scores in shared memory
//   v2  flash_attention_mma<T, D, 4>         mma.sync m16n8k16, FA2 register-resident (64 queries / block)
//   v3  flash_attention_mma<T, D, 1>         same, 16 queries / block (more blocks for small shapes)
//   v4  flash_attention_mma<T, D, 4, 32>     same as v2 with key tiles of 32
//   v5  flash_attention_mma<T, D, 8, 32>     128 queries / block, key tiles of 32 (each K/V tile serves more queries)
//   v6  flash_attention_mma<T, D, 8, 64>     128 queries / block, key tiles of 64
//   v7  flash_attention_mma<T, D, 4, 32, 6>  v4 with __launch_bounds__(128, 6): registers capped for 6 blocks / SM
//   v8  flash_attention_mma<T, D, 4, 64, 6>  v2 likewise. Measured (H200): slower on every shape (B8 x S512 35.4 vs
//                                            32.3 us): the cap (80 registers) spills, which costs more than the
//                                            partial wave it removes.
//   v9  flash_attention_mma<T, D, 4, 32, 1, 2>  two 16-row query tiles per warp (128 queries / block): each K / V
//                                            fragment read from shared memory feeds two mma instructions
//   v10 flash_attention_mma<T, D, 4, 64, 1, 2>  likewise with key tiles of 64. Measured (H200): both slower on every
//                                            shape (B8 x S512 41.0 / 35.9 vs 32.0 us for v4): 189 / 223 registers
//                                            leave 2 blocks per SM, and half as many blocks.
//   v11 flash_attention_mma<T, D, 4, 32, 1, 1, true>  v4 with the query-major grid (QMAJOR): the heaviest query
//                                            block of every (batch, head) is dispatched first, the tail of the
//                                            partial last wave holds the lightest ones
//   v12 flash_attention_mma<T, D, 4, 64, 1, 1, true>  v2 likewise
//   v13 flash_attention_mma<T, D, 1, 64, 1, 1, true>  v3 likewise (16-query blocks: finer load balancing)
//   v14 attention_wgmma<T, 1, 2, false>      Hopper warpgroup MMA (attention_wgmma.cuh, head size 64 only): TMA-fed
//                                            K / V ring of 2 slots, one consumer warpgroup (64 queries) a block
//   v15 attention_wgmma<T, 1, 3, true>       + the next tile's S product issued before this tile's softmax
//   v16 attention_wgmma<T, 2, 2, false>      two consumer warpgroups (128 queries) share each K / V tile
//   v17 attention_wgmma<T, 2, 3, true>       both
//   v18 attention_wgmma<T, 1, 2, true>       v15 with 2 slots
//   v19 attention_wgmma<T, 2, 2, false, true>  keys split inside the block (KSPLIT): two warpgroups on the same
//                                            64 queries, the first on key tiles [0, h), the second on [h, n), each
//                                            with a ring of 2 slots; merged through shared memory at the end (the
//                                            heavy blocks' chain of steps halved)
//   v20 attention_wgmma<T, 2, 3, false, true>  v19 with rings of 3 slots
//   Session 22: every version from v14 on except the PIPE ones masks only on the diagonal tile, behind a
//   warp-uniform branch (B8 x S512 16.4-16.6 against 17.6-17.9 us in one call, H200). Measured then and not kept
//   (docs/results/2026-11-29-session22/, calls 2-4): a persistent form (blocks walking (sequence, head, query
//   tile) items from a counter, the next Q tile loaded during the current item: 20.0-22.9 us), FlashAttention-3's
//   PV overlap (tile t's S product before tile t-1's PV product: 106 registers, 3 blocks an SM, 16.6-16.8 us), and
//   FlashAttention-4's conditional rescaling (the max moved only past 2^8: 16.36 against 16.83-16.91 us, with the
//   largest error against the reference 1.5e-3 against 1.2e-3 in fp16).
//
// Each version is checked against a CPU reference (double precision, from the same T-rounded inputs) and timed
// with cudaEvents. Usage:
//   attention_lab [--quick] [--json FILE] [--version N] [--min-ms 50] [--shape BxS]
//     --quick      skip the big shapes (B8xS512, B32xS128, B1xS1024)
//     --json FILE  append one JSON line per (version, shape) to FILE
//     --version N  run only version N (1..20)
//     --min-ms X   time each (version, shape) for at least X ms (default 50)
//     --shape BxS  run only the shapes of that batch and length (e.g. to profile one with Nsight Compute)
// Exits non-zero if any check fails.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "backends/cuda/attention_mma.cuh"
#include "backends/cuda/attention_wgmma.cuh"
#include "backends/cuda/kernels.cuh"
#include "lab_common.cuh"

namespace k = gptbench::cuda_engine::kernels;
using namespace lab;

namespace {

constexpr int kHeads = 12;

// ---- launchers of the versions ----------------------------------------------------------------------------
template <typename T, int D, int WARPS>
void launch_wmma(const T* qkv, T* out, int batch, int seq, int heads, float sl2, cudaStream_t stream) {
  using Lay = k::FlashSmem<T, D, WARPS>;
  auto kernel = k::flash_attention_wmma<T, D, WARPS>;
  static bool configured = false;  // per instantiation
  if (!configured) {
    CK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, Lay::bytes));
    configured = true;
  }
  const int C = heads * D;
  dim3 grid((seq + Lay::kQ - 1) / Lay::kQ, batch * heads);
  kernel<<<grid, WARPS * 32, Lay::bytes, stream>>>(qkv, out, seq, heads, 3 * C, C, sl2);
}

template <typename T, int D>
void run_version(int v, const T* qkv, T* out, int batch, int seq, int heads, float sl2, cudaStream_t stream,
                 const CUtensorMap* map) {
  const int C = heads * D;
  if (v >= 14) {  // wgmma versions (head size 64; the caller skips the others)
    cudaError_t e = cudaErrorInvalidValue;
    if constexpr (D == 64) {
      switch (v) {
        case 14: e = k::launch_attention_wgmma<T, 1, 2, false>(*map, out, batch, seq, heads, C, sl2, stream); break;
        case 15: e = k::launch_attention_wgmma<T, 1, 3, true>(*map, out, batch, seq, heads, C, sl2, stream); break;
        case 16: e = k::launch_attention_wgmma<T, 2, 2, false>(*map, out, batch, seq, heads, C, sl2, stream); break;
        case 17: e = k::launch_attention_wgmma<T, 2, 3, true>(*map, out, batch, seq, heads, C, sl2, stream); break;
        case 18: e = k::launch_attention_wgmma<T, 1, 2, true>(*map, out, batch, seq, heads, C, sl2, stream); break;
        case 19: e = k::launch_attention_wgmma<T, 2, 2, false, true>(*map, out, batch, seq, heads, C, sl2, stream); break;
        case 20: e = k::launch_attention_wgmma<T, 2, 3, false, true>(*map, out, batch, seq, heads, C, sl2, stream); break;
        default: break;
      }
    }
    CK(e);
    return;
  }
  switch (v) {
    case 1: launch_wmma<T, D, 4>(qkv, out, batch, seq, heads, sl2, stream); break;
    case 2: k::launch_flash_attention_mma<T, D, 4>(qkv, out, batch, seq, heads, 3 * C, C, sl2, stream); break;
    case 3: k::launch_flash_attention_mma<T, D, 1>(qkv, out, batch, seq, heads, 3 * C, C, sl2, stream); break;
    case 4: k::launch_flash_attention_mma<T, D, 4, 32>(qkv, out, batch, seq, heads, 3 * C, C, sl2, stream); break;
    case 5: k::launch_flash_attention_mma<T, D, 8, 32>(qkv, out, batch, seq, heads, 3 * C, C, sl2, stream); break;
    case 6: k::launch_flash_attention_mma<T, D, 8, 64>(qkv, out, batch, seq, heads, 3 * C, C, sl2, stream); break;
    // v4 / v2 with registers capped so that 6 blocks share an SM (95 registers allow 5: B8 x S512's 768 blocks
    // then run in 1.16 waves, Nsight Compute on an H200)
    case 7: k::launch_flash_attention_mma<T, D, 4, 32, 6>(qkv, out, batch, seq, heads, 3 * C, C, sl2, stream); break;
    case 8: k::launch_flash_attention_mma<T, D, 4, 64, 6>(qkv, out, batch, seq, heads, 3 * C, C, sl2, stream); break;
    // two 16-row query tiles per warp (128 queries per block): each K / V fragment feeds two mma
    case 9: k::launch_flash_attention_mma<T, D, 4, 32, 1, 2>(qkv, out, batch, seq, heads, 3 * C, C, sl2, stream); break;
    case 10: k::launch_flash_attention_mma<T, D, 4, 64, 1, 2>(qkv, out, batch, seq, heads, 3 * C, C, sl2, stream); break;
    // query-major grids: heavy blocks of every (batch, head) first
    case 11: k::launch_flash_attention_mma<T, D, 4, 32, 1, 1, true>(qkv, out, batch, seq, heads, 3 * C, C, sl2, stream); break;
    case 12: k::launch_flash_attention_mma<T, D, 4, 64, 1, 1, true>(qkv, out, batch, seq, heads, 3 * C, C, sl2, stream); break;
    case 13: k::launch_flash_attention_mma<T, D, 1, 64, 1, 1, true>(qkv, out, batch, seq, heads, 3 * C, C, sl2, stream); break;
    default: std::fprintf(stderr, "bad version %d\n", v); std::exit(2);
  }
}
constexpr int kVersions = 20;
const char* version_name(int v) {
  switch (v) {
    case 1: return "wmma_w4";
    case 2: return "mma_w4_kt64";
    case 3: return "mma_w1_kt64";
    case 4: return "mma_w4_kt32";
    case 5: return "mma_w8_kt32";
    case 6: return "mma_w8_kt64";
    case 7: return "mma_w4_kt32_mb6";
    case 8: return "mma_w4_kt64_mb6";
    case 9: return "mma_w4_kt32_mt2";
    case 10: return "mma_w4_kt64_mt2";
    case 11: return "mma_w4_kt32_qmajor";
    case 12: return "mma_w4_kt64_qmajor";
    case 13: return "mma_w1_kt64_qmajor";
    case 14: return "wgmma_wg1_s2";
    case 15: return "wgmma_wg1_s3_pipe";
    case 16: return "wgmma_wg2_s2";
    case 17: return "wgmma_wg2_s3_pipe";
    case 18: return "wgmma_wg1_s2_pipe";
    case 19: return "wgmma_ksplit2_s2";
    case 20: return "wgmma_ksplit2_s3";
    default: return "?";
  }
}

// ---- CPU reference --------------------------------------------------------------------------------------------
// qkv: float copies of the T-rounded inputs. out[b*seq + i][h*D + d].
void reference(const std::vector<float>& qkv, std::vector<double>& out, int batch, int seq, int heads, int D,
               double scale) {
  const int C = heads * D, rs = 3 * C;
  out.assign(static_cast<size_t>(batch) * seq * C, 0.0);
  const int jobs = batch * heads;
  const int nthreads = std::max(1, std::min<int>(jobs, static_cast<int>(std::thread::hardware_concurrency())));
  auto work = [&](int tid) {
    std::vector<double> p(seq), acc(D);
    for (int job = tid; job < jobs; job += nthreads) {
      const int b = job / heads, h = job % heads;
      const float* base = qkv.data() + static_cast<size_t>(b) * seq * rs;
      for (int i = 0; i < seq; ++i) {
        const float* q = base + static_cast<size_t>(i) * rs + h * D;
        double m = -INFINITY;
        for (int j = 0; j <= i; ++j) {
          const float* kr = base + static_cast<size_t>(j) * rs + C + h * D;
          double s = 0;
          for (int d = 0; d < D; ++d) s += static_cast<double>(q[d]) * kr[d];
          p[j] = s * scale;
          m = std::max(m, p[j]);
        }
        double l = 0;
        std::fill(acc.begin(), acc.end(), 0.0);
        for (int j = 0; j <= i; ++j) {
          const double e = std::exp(p[j] - m);
          l += e;
          const float* vr = base + static_cast<size_t>(j) * rs + 2 * C + h * D;
          for (int d = 0; d < D; ++d) acc[d] += e * vr[d];
        }
        double* o = out.data() + (static_cast<size_t>(b) * seq + i) * C + h * D;
        for (int d = 0; d < D; ++d) o[d] = acc[d] / l;
      }
    }
  };
  std::vector<std::thread> pool;
  for (int t = 0; t < nthreads; ++t) pool.emplace_back(work, t);
  for (auto& th : pool) th.join();
}

struct Options {
  bool quick = false;
  int only_version = 0;
  int only_batch = 0, only_seq = 0;  // --shape BxS: run only that (batch, seq) (for a profiler)
  double min_ms = 50.0;
  std::string json;
};

struct Shape {
  int B, S, D;
  bool bf16;
  bool big;
};

FILE* g_json = nullptr;
std::string g_gpu;
bool g_sm90 = false;
int g_failures = 0;

template <typename T, int D>
void run_shape(const Shape& sh, const Options& opt) {
  const int B = sh.B, S = sh.S, H = kHeads, C = H * D, rs = 3 * C;
  const size_t n_in = static_cast<size_t>(B) * S * rs, n_out = static_cast<size_t>(B) * S * C;
  const bool have_wgmma = D == 64 && g_sm90;
  // Random inputs: q, k ~ N(0, 1.3^2) so that scores (q.k / sqrt(D)) have std ~1.7; v ~ N(0, 1).
  std::mt19937 rng(1234u + 7u * B + 131u * S + D);
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<T> h_in(n_in);
  std::vector<float> h_in_f(n_in);
  for (size_t r = 0; r < static_cast<size_t>(B) * S; ++r)
    for (int c = 0; c < rs; ++c) {
      const float x = nd(rng) * (c < 2 * C ? 1.3f : 1.f);
      const T tv = h_from<T>(x);
      h_in[r * rs + c] = tv;
      h_in_f[r * rs + c] = h_to<T>(tv);
    }
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));
  const float sl2 = static_cast<float>(scale * 1.4426950408889634);
  std::vector<double> ref;
  reference(h_in_f, ref, B, S, H, D, scale);

  T *d_in = nullptr, *d_out = nullptr;
  CK(cudaMalloc(&d_in, n_in * sizeof(T)));
  CK(cudaMalloc(&d_out, n_out * sizeof(T)));
  CK(cudaMemcpy(d_in, h_in.data(), n_in * sizeof(T), cudaMemcpyHostToDevice));
  CUtensorMap map{};
  if (have_wgmma && !k::wgmma_tensor_map(&map, d_in, B * S, rs, 64)) {
    std::fprintf(stderr, "cuTensorMapEncodeTiled refused the qkv map\n");
    std::exit(1);
  }
  cudaStream_t stream;
  CK(cudaStreamCreate(&stream));
  cudaEvent_t e0, e1;
  CK(cudaEventCreate(&e0));
  CK(cudaEventCreate(&e1));

  constexpr bool is_bf16 = std::is_same_v<T, __nv_bfloat16>;
  const double tol = is_bf16 ? 2e-2 : 2e-3;  // abs, for |ref| <= 1; relative beyond
  const double flops = 4.0 * B * H * D * static_cast<double>(S) * (S + 1) / 2.0;
  std::vector<T> h_out(n_out);

  for (int v = 1; v <= kVersions; ++v) {
    if (opt.only_version && v != opt.only_version) continue;
    if (v >= 14 && !have_wgmma) continue;  // head size 64 on a compute capability 9.0 card only
    // Correctness: fill the output with NaN bytes so unwritten rows show up.
    CK(cudaMemsetAsync(d_out, 0xff, n_out * sizeof(T), stream));
    run_version<T, D>(v, d_in, d_out, B, S, H, sl2, stream, &map);
    CK(cudaGetLastError());
    CK(cudaStreamSynchronize(stream));
    CK(cudaMemcpy(h_out.data(), d_out, n_out * sizeof(T), cudaMemcpyDeviceToHost));
    double max_abs = 0.0, max_scaled = 0.0;
    size_t bad_at = n_out;
    for (size_t i = 0; i < n_out; ++i) {
      const double got = h_to<T>(h_out[i]);
      double err = std::fabs(got - ref[i]);
      if (std::isnan(err)) err = INFINITY;  // unwritten (NaN-filled) or NaN output
      const double scaled = err / std::max(1.0, std::fabs(ref[i]));
      max_abs = std::max(max_abs, err);
      max_scaled = std::max(max_scaled, scaled);
      if (scaled > tol && bad_at == n_out) bad_at = i;
    }
    const bool pass = max_scaled <= tol;
    if (!pass) {
      ++g_failures;
      const size_t row = bad_at / C, col = bad_at % C;
      std::printf("  FAIL detail: first bad element b=%zu s=%zu h=%zu d=%zu got=%g ref=%g\n", row / S, row % S,
                  col / D, col % D, static_cast<double>(h_to<T>(h_out[bad_at])), ref[bad_at]);
    }

    // Timing: warm-up, then at least min_ms of back-to-back launches.
    for (int i = 0; i < 5; ++i) run_version<T, D>(v, d_in, d_out, B, S, H, sl2, stream, &map);
    CK(cudaEventRecord(e0, stream));
    for (int i = 0; i < 10; ++i) run_version<T, D>(v, d_in, d_out, B, S, H, sl2, stream, &map);
    CK(cudaEventRecord(e1, stream));
    CK(cudaEventSynchronize(e1));
    float ms = 0.f;
    CK(cudaEventElapsedTime(&ms, e0, e1));
    const int iters = std::clamp(static_cast<int>(opt.min_ms / std::max(1e-3, ms / 10.0)), 20, 20000);
    CK(cudaEventRecord(e0, stream));
    for (int i = 0; i < iters; ++i) run_version<T, D>(v, d_in, d_out, B, S, H, sl2, stream, &map);
    CK(cudaEventRecord(e1, stream));
    CK(cudaEventSynchronize(e1));
    CK(cudaGetLastError());
    CK(cudaEventElapsedTime(&ms, e0, e1));
    const double us = 1000.0 * ms / iters;
    const double tflops = flops / (us * 1e-6) / 1e12;

    std::printf("%-5s B%-3d S%-5d D%-3d | v%d %-12s | %10.2f us %8.2f TFLOP/s | max_abs %.3e  %s\n",
                tname<T>(), B, S, D, v, version_name(v), us, tflops, max_abs, pass ? "PASS" : "FAIL");
    std::fflush(stdout);
    if (g_json) {
      std::fprintf(g_json,
                   "{\"lab\":\"attention\",\"gpu\":\"%s\",\"version\":%d,\"name\":\"%s\",\"dtype\":\"%s\","
                   "\"B\":%d,\"S\":%d,\"H\":%d,\"D\":%d,\"us\":%.3f,\"tflops\":%.3f,\"iters\":%d,"
                   "\"max_abs_err\":%.6e,\"tol\":%.1e,\"pass\":%s}\n",
                   g_gpu.c_str(), v, version_name(v), tname<T>(), B, S, H, D, us, tflops, iters,
                   max_abs, tol, pass ? "true" : "false");
      std::fflush(g_json);
    }
  }

  CK(cudaEventDestroy(e0));
  CK(cudaEventDestroy(e1));
  CK(cudaStreamDestroy(stream));
  CK(cudaFree(d_in));
  CK(cudaFree(d_out));
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--quick") opt.quick = true;
    else if (a == "--json" && i + 1 < argc) opt.json = argv[++i];
    else if (a == "--version" && i + 1 < argc) opt.only_version = std::atoi(argv[++i]);
    else if (a == "--min-ms" && i + 1 < argc) opt.min_ms = std::atof(argv[++i]);
    else if (a == "--shape" && i + 1 < argc && std::sscanf(argv[++i], "%dx%d", &opt.only_batch, &opt.only_seq) == 2) {
    }
    else {
      std::fprintf(stderr, "usage: %s [--quick] [--json FILE] [--version N] [--min-ms X] [--shape BxS]\n", argv[0]);
      return 2;
    }
  }
  cudaDeviceProp prop{};
  CK(cudaGetDeviceProperties(&prop, 0));
  g_gpu = prop.name;
  g_sm90 = prop.major == 9 && prop.minor == 0;
  std::printf("attention_lab on %s (%d SMs), heads %d, causal; tolerance: half 2e-3, bf16 2e-2 (abs, x|ref| "
              "when |ref| > 1)\n",
              prop.name, prop.multiProcessorCount, kHeads);
  if (!opt.json.empty()) {
    g_json = std::fopen(opt.json.c_str(), "a");
    if (!g_json) {
      std::fprintf(stderr, "cannot open %s\n", opt.json.c_str());
      return 2;
    }
  }

  const std::vector<Shape> shapes = {
      // half, D 64
      {1, 128, 64, false, false}, {1, 512, 64, false, false}, {8, 128, 64, false, false},
      {8, 512, 64, false, true}, {32, 128, 64, false, true}, {1, 1024, 64, false, true},
      {2, 77, 64, false, false}, {1, 1, 64, false, false}, {3, 37, 64, false, false}, {3, 200, 64, false, false},
      // half, D 32
      {8, 512, 32, false, true}, {2, 77, 32, false, false},
      // bf16
      {1, 128, 64, true, false}, {8, 512, 64, true, true}, {2, 77, 64, true, false}, {3, 200, 64, true, false}, {2, 77, 32, true, false},
  };
  for (const Shape& sh : shapes) {
    if (opt.quick && sh.big) continue;
    if (opt.only_batch && (sh.B != opt.only_batch || sh.S != opt.only_seq)) continue;
    if (sh.bf16) {
      if (sh.D == 64) run_shape<__nv_bfloat16, 64>(sh, opt);
      else run_shape<__nv_bfloat16, 32>(sh, opt);
    } else {
      if (sh.D == 64) run_shape<__half, 64>(sh, opt);
      else run_shape<__half, 32>(sh, opt);
    }
  }
  if (g_json) std::fclose(g_json);
  std::printf("%s (%d failure%s)\n", g_failures ? "FAILED" : "ALL PASS", g_failures, g_failures == 1 ? "" : "s");
  return g_failures ? 1 : 0;
}
