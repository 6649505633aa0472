// Kernel lab: every transformer block of a few-row prefill in one persistent kernel
// (src/backends/cuda/layers_persistent.cuh) — the step docs/cuda-engine.md names after the per-kernel PDL chain for
// the B1 x S128 goal: 7 grid barriers per layer instead of 7 kernel boundaries, weights streamed by a producer warp
// across the phases.
//
// Check: random GPT-2-shaped blocks (C 768, 12 heads, F 3072), L = 2, against a CPU reference that rounds to the
// 16-bit type where the kernel stores (h, qkv, att, u) and keeps x in float; shapes B1xS128, B2xS64, B3xS37,
// B1xS20, B1xS1; error = ||gpu - ref|| / ||ref|| of the final x and of h = ln_f(x); tolerance 5e-3 (fp16) /
// 2e-2 (bf16). A second run must give the same bits (the split-K partials are summed in a fixed order).
// Timing: L = 12 at B1 x S128 (and S64), a CUDA graph of --iters forwards (each: x restored, counter zeroed,
// the kernel), best of 3 replays; the same with the barrier skeleton alone (no work) and the restore alone; and one
// forward's phase times from block 0's %globaltimer.
//
// Kernels: "cluster 1" (every product tile on one block) and "cluster 2" (the paired kernel: QKV and FC tiles of
// 64 columns whose two k halves are the two blocks of a cluster, added through distributed shared memory), each
// with "head flags" 0 (a grid barrier between QKV and attention) or 1 (per-head ready counters instead: the
// engine's default; the phase report then shows QKV+attention as one phase).
//
// Inside the product phases (--trace-only: that alone, default kernel and products without MMAs, B1 x S128; first
// each phase's slowest-block work and whole time, as the timing runs print them): per
// block, when its producer saw the releasing barrier, when its consumers had the first activation stage, when they
// had consumed the last, when the block's work was done — where a product phase's time goes.
//
// --trace-shape BxS (repeatable, at most 128 rows) traces other row counts instead of B1 x S128.
//
// --lm-head: the LM head and its summary as the kernel's last phases (PersistentArgs::lm_head; the engine's option
// persistent_lm_head), with a random tied embedding of GPT-2's vocabulary (50257, padded to 50304). Check (fp16,
// bf16; L = 2; B1xS128, B1xS100, B2xS64, B1xS65, B3xS37, B1xS1): each row's top-1 and sum against the logits the
// kernel stores (the same top-1, the sum within 1e-9 of their sum in double), the logits of 8 rows against a
// double-precision product of the kernel's own h = ln_f(x) and W (rel-norm <= 2e-3 / 1e-2), and a summary-only
// forward the same top-1 and sums bit for bit. Timing (fp16, L = 12, B1xS128 and B1xS64): the forward with the LM
// head (summary only) and without it, best of 3 graph replays, and one traced forward's ln_f phase, LM head phase
// (block 0's barrier exits; the slowest block's work) and fold (the rest of the forward). --lm-head-timing: the
// timing alone.
// Build: part of the CMake build (sm_90a). Run: ./persistent_lab [--iters N] [--json FILE] [--trace-only]
//   [--trace-shape BxS]... [--lm-head]
#include <cuda.h>

#include <array>
#include <cmath>
#include <string>
#include <vector>

#include "backends/cuda/layers_persistent.cuh"
#include "lab_common.cuh"

namespace {

using namespace lab;
using gptbench::cuda_engine::kernels::PersistentArgs;
using gptbench::cuda_engine::kernels::PersistentLayer;
namespace K = gptbench::cuda_engine::kernels;

constexpr int C = 768, H = 12, F = 3072, D = 64;
constexpr int kVocab = 50257, kVocabPadded = 50304;  // GPT-2's, padded to a multiple of 128 as the engine does
cudaStream_t g_stream;
std::FILE* g_json = nullptr;
int g_iters = 50;
int g_failures = 0;
int g_sms = 0;
bool g_cooperative = true;
// Checked kernels: the cluster size (2: the paired kernel) and QKV -> attention through head counters (flags).
struct KernelVariant {
  int cl;
  bool flags;
};
constexpr KernelVariant kCheckVariants[] = {{1, false}, {2, false}, {1, true}, {2, true}};
std::string g_gpu;

template <typename T>
T* dev_upload(const std::vector<float>& v) {
  std::vector<T> t(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) t[i] = h_from<T>(v[i]);
  T* d = nullptr;
  CK(cudaMalloc(&d, std::max<std::size_t>(t.size(), 1) * sizeof(T)));
  CK(cudaMemcpy(d, t.data(), t.size() * sizeof(T), cudaMemcpyHostToDevice));
  return d;
}

// One block's weights on the host (already rounded to T where the device holds T) and on the device.
struct HostLayer {
  std::vector<float> w_qkv, w_proj, w_fc, w_mproj, b_qkv, b_fc, b_proj, b_mproj, ln1_g, ln1_b, ln2_g, ln2_b;
};

template <typename T>
std::vector<float> rand_vec(Rng& r, std::size_t n, float scale, float offset = 0.f, bool round = true) {
  std::vector<float> v(n);
  for (auto& e : v) e = offset + scale * r.uni();
  if (round)
    for (auto& e : v) e = h_round<T>(e);
  return v;
}

template <typename T>
HostLayer make_layer(Rng& r) {
  HostLayer L;
  L.w_qkv = rand_vec<T>(r, 3ull * C * C, 0.06f);
  L.w_proj = rand_vec<T>(r, 1ull * C * C, 0.04f);
  L.w_fc = rand_vec<T>(r, 1ull * F * C, 0.06f);
  L.w_mproj = rand_vec<T>(r, 1ull * C * F, 0.02f);
  L.b_qkv = rand_vec<T>(r, 3 * C, 0.1f);
  L.b_fc = rand_vec<T>(r, F, 0.1f);
  L.b_proj = rand_vec<T>(r, C, 0.1f, 0.f, false);
  L.b_mproj = rand_vec<T>(r, C, 0.1f, 0.f, false);
  L.ln1_g = rand_vec<T>(r, C, 0.2f, 1.f, false);
  L.ln1_b = rand_vec<T>(r, C, 0.1f, 0.f, false);
  L.ln2_g = rand_vec<T>(r, C, 0.2f, 1.f, false);
  L.ln2_b = rand_vec<T>(r, C, 0.1f, 0.f, false);
  return L;
}

CUtensorMap map_of(const void* base, int rows, int K, int box_rows, bool bf16) {
  CUtensorMap m;
  const bool ok = bf16 ? K::wgmma_tensor_map(&m, static_cast<const __nv_bfloat16*>(base), rows, K, box_rows)
                       : K::wgmma_tensor_map(&m, static_cast<const __half*>(base), rows, K, box_rows);
  if (!ok) {
    std::fprintf(stderr, "cuTensorMapEncodeTiled failed: rows %d K %d box %d\n", rows, K, box_rows);
    std::exit(2);
  }
  return m;
}

// The device side of a model of n layers and the buffers of one shape.
template <typename T>
struct Model {
  std::vector<HostLayer> host;
  std::vector<float> lnf_g, lnf_b;
  std::vector<void*> allocs;
  PersistentLayer<T>* d_layers = nullptr;
  float *lnf_g_d = nullptr, *lnf_b_d = nullptr;

  template <typename U>
  U* keep(U* p) {
    allocs.push_back(p);
    return p;
  }
  Model(int n, std::uint64_t seed) {
    Rng r(seed);
    std::vector<PersistentLayer<T>> dl(n);
    constexpr bool bf = std::is_same_v<T, __nv_bfloat16>;
    for (int l = 0; l < n; ++l) {
      host.push_back(make_layer<T>(r));
      const HostLayer& L = host.back();
      const T* wq = keep(dev_upload<T>(L.w_qkv));
      const T* wp = keep(dev_upload<T>(L.w_proj));
      const T* wf = keep(dev_upload<T>(L.w_fc));
      const T* wm = keep(dev_upload<T>(L.w_mproj));
      dl[l].w_qkv = map_of(wq, 3 * C, C, K::kPersistentBN, bf);
      dl[l].w_proj = map_of(wp, C, C, K::kPersistentBN, bf);
      dl[l].w_fc = map_of(wf, F, C, K::kPersistentBN, bf);
      dl[l].w_mproj = map_of(wm, C, F, K::kPersistentMprojBN, bf);
      dl[l].w_qkv64 = map_of(wq, 3 * C, C, 64, bf);
      dl[l].w_fc64 = map_of(wf, F, C, 64, bf);
      dl[l].b_qkv = keep(dev_upload<T>(L.b_qkv));
      dl[l].b_fc = keep(dev_upload<T>(L.b_fc));
      dl[l].b_proj = keep(dev_upload<float>(L.b_proj));
      dl[l].b_mproj = keep(dev_upload<float>(L.b_mproj));
      dl[l].ln1_g = keep(dev_upload<float>(L.ln1_g));
      dl[l].ln1_b = keep(dev_upload<float>(L.ln1_b));
      dl[l].ln2_g = keep(dev_upload<float>(L.ln2_g));
      dl[l].ln2_b = keep(dev_upload<float>(L.ln2_b));
      dl[l].scale_log2 = static_cast<float>(1.0 / std::sqrt(double(D)) * 1.4426950408889634);
    }
    lnf_g = rand_vec<T>(r, C, 0.2f, 1.f, false);
    lnf_b = rand_vec<T>(r, C, 0.1f, 0.f, false);
    lnf_g_d = keep(dev_upload<float>(lnf_g));
    lnf_b_d = keep(dev_upload<float>(lnf_b));
    CK(cudaMalloc(&d_layers, n * sizeof(PersistentLayer<T>)));
    allocs.push_back(d_layers);
    CK(cudaMemcpy(d_layers, dl.data(), n * sizeof(PersistentLayer<T>), cudaMemcpyHostToDevice));
  }
  ~Model() {
    for (void* p : allocs) cudaFree(p);
  }
};

template <typename T>
struct Buffers {
  int batch, seq, M;
  float *x = nullptr, *x0 = nullptr, *part = nullptr;
  T *h = nullptr, *qkv = nullptr, *att = nullptr, *u = nullptr;
  unsigned* counter = nullptr;
  unsigned long long* trace = nullptr;
  unsigned long long* trace_done = nullptr;
  unsigned long long* trace_product = nullptr;
  CUtensorMap map_h, map_att, map_u;  // activation boxes of 128 rows
  // The LM head phase (--lm-head): h's map with boxes of 64 rows, the tied embedding's map (set by the caller),
  // the stored logits [M, kVocabPadded], the per-(row, block) parts, each row's top-1 and sum.
  CUtensorMap map_h64{}, map_lm{};
  T* logits = nullptr;
  gptbench::cuda_engine::kernels::SummaryPart* parts = nullptr;
  int* top1 = nullptr;
  double* row_sum = nullptr;
  static constexpr std::size_t kTraceProductBytes = 8 * 1024 * 256 * 3;  // [barrier][block][3] stamps
  Buffers(int b, int s) : batch(b), seq(s), M(b * s) {
    CK(cudaMalloc(&x, M * C * 4));
    CK(cudaMalloc(&x0, M * C * 4));
    CK(cudaMalloc(&part, K::kPersistentMaxSplits * M * C * 4));
    CK(cudaMalloc(&h, M * C * sizeof(T)));
    CK(cudaMalloc(&qkv, M * 3 * C * sizeof(T)));
    CK(cudaMalloc(&att, M * C * sizeof(T)));
    CK(cudaMalloc(&u, static_cast<std::size_t>(M) * F * sizeof(T)));
    CK(cudaMalloc(&counter, K::kPersistentSyncWords * 4));
    CK(cudaMalloc(&trace, 8 * 1024));
    CK(cudaMalloc(&trace_done, 8 * 1024 * 256));
    CK(cudaMalloc(&trace_product, kTraceProductBytes));
    constexpr bool bf = std::is_same_v<T, __nv_bfloat16>;
    map_h = map_of(h, M, C, 128, bf);
    map_att = map_of(att, M, C, 128, bf);
    map_u = map_of(u, M, F, 128, bf);
    map_h64 = map_of(h, M, C, 64, bf);
    CK(cudaMalloc(&logits, static_cast<std::size_t>(M) * kVocabPadded * sizeof(T)));
    CK(cudaMalloc(&parts, static_cast<std::size_t>(M) * 2 * 256 * sizeof(*parts)));
    CK(cudaMalloc(&top1, M * sizeof(int)));
    CK(cudaMalloc(&row_sum, M * sizeof(double)));
  }
  ~Buffers() {
    for (void* p : {static_cast<void*>(x), static_cast<void*>(x0), static_cast<void*>(part), static_cast<void*>(h),
                    static_cast<void*>(qkv), static_cast<void*>(att), static_cast<void*>(u),
                    static_cast<void*>(counter), static_cast<void*>(trace),
                    static_cast<void*>(trace_done), static_cast<void*>(trace_product), static_cast<void*>(logits),
                    static_cast<void*>(parts), static_cast<void*>(top1), static_cast<void*>(row_sum)})
      cudaFree(p);
  }
  PersistentArgs<T> args(const Model<T>& m, int n_layers) const {
    PersistentArgs<T> a;
    a.layers = m.d_layers;
    a.n_layers = n_layers;
    a.batch = batch;
    a.seq = seq;
    a.M = M;
    a.C = C;
    a.H = H;
    a.F = F;
    a.x = x;
    a.h = h;
    a.qkv = qkv;
    a.att = att;
    a.u = u;
    a.part = part;
    a.lnf_g = m.lnf_g_d;
    a.lnf_b = m.lnf_b_d;
    a.counter = counter;
    return a;
  }
  // The forward's input: x0 uniform random from `seed` (returned for the CPU reference).
  std::vector<float> random_input(std::uint64_t seed) {
    Rng r(seed);
    std::vector<float> v(static_cast<std::size_t>(M) * C);
    for (auto& e : v) e = r.uni();
    CK(cudaMemcpy(x0, v.data(), v.size() * 4, cudaMemcpyHostToDevice));
    return v;
  }
  // One forward: x = x0, counter = 0, the kernel (cl 2: the paired kernel).
  bool forward(const PersistentArgs<T>& a, int cl) {
    if (cudaMemcpyAsync(x, x0, M * C * 4, cudaMemcpyDeviceToDevice, g_stream) != cudaSuccess) return false;
    if (cudaMemsetAsync(counter, 0, K::kPersistentSyncWords * 4, g_stream) != cudaSuccess) return false;
    auto go = [&](auto launch, int blocks) {
      if (blocks <= 0) return false;
      cudaError_t e = launch(map_h, map_att, map_u, a, blocks, g_stream, g_cooperative, map_h64, map_lm);
      if (e != cudaSuccess && g_cooperative) {  // the driver may refuse cooperative launches of clusters
        (void)cudaGetLastError();
        g_cooperative = false;
        std::printf("(cooperative launch refused with clusters of %d: %s; launching without)\n", cl,
                    cudaGetErrorString(e));
        e = launch(map_h, map_att, map_u, a, blocks, g_stream, false, map_h64, map_lm);
      }
      return e == cudaSuccess;
    };
    if (cl == 2) return go(K::launch_gpt2_layers_persistent<T, 2>, K::persistent_blocks<T, 2>(g_sms));
    return go(K::launch_gpt2_layers_persistent<T, 1>, K::persistent_blocks<T, 1>(g_sms));
  }
};

// ---- CPU reference ----
void layernorm_rows(const std::vector<float>& x, int M, const std::vector<float>& g, const std::vector<float>& b,
                    std::vector<float>& out, bool round_half, bool round_bf) {
  std::vector<double> row(C);
  for (int r = 0; r < M; ++r) {
    layernorm_ref(&x[static_cast<std::size_t>(r) * C], C, g.data(), b.data(), row.data());
    for (int c = 0; c < C; ++c) {
      const float v = static_cast<float>(row[c]);
      out[static_cast<std::size_t>(r) * C + c] = round_half ? h_round<__half>(v) : round_bf ? h_round<__nv_bfloat16>(v) : v;
    }
  }
}
// y[M, N] = a[M, K] . w[N, K]^T (float accumulation over contiguous k).
void matmul(const std::vector<float>& a, int M, int Kd, const std::vector<float>& w, int N, std::vector<float>& y) {
  y.assign(static_cast<std::size_t>(M) * N, 0.f);
  for (int r = 0; r < M; ++r) {
    const float* ar = &a[static_cast<std::size_t>(r) * Kd];
    for (int n = 0; n < N; ++n) {
      const float* wr = &w[static_cast<std::size_t>(n) * Kd];
      float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      for (int k = 0; k < Kd; k += 4) {
        s0 += ar[k] * wr[k];
        s1 += ar[k + 1] * wr[k + 1];
        s2 += ar[k + 2] * wr[k + 2];
        s3 += ar[k + 3] * wr[k + 3];
      }
      y[static_cast<std::size_t>(r) * N + n] = (s0 + s1) + (s2 + s3);
    }
  }
}

template <typename T>
void reference(const Model<T>& m, int n_layers, int batch, int seq, std::vector<float>& x, std::vector<float>& h_out) {
  const int M = batch * seq;
  constexpr bool rh = std::is_same_v<T, __half>, rb = std::is_same_v<T, __nv_bfloat16>;
  auto rnd = [&](float v) { return rh ? h_round<__half>(v) : rb ? h_round<__nv_bfloat16>(v) : v; };
  std::vector<float> h(static_cast<std::size_t>(M) * C), qkv, att(static_cast<std::size_t>(M) * C), y, u;
  const double scale = 1.0 / std::sqrt(double(D));
  for (int l = 0; l < n_layers; ++l) {
    const HostLayer& L = m.host[l];
    layernorm_rows(x, M, L.ln1_g, L.ln1_b, h, rh, rb);
    matmul(h, M, C, L.w_qkv, 3 * C, qkv);
    for (std::size_t i = 0; i < qkv.size(); ++i) qkv[i] = rnd(qkv[i] + L.b_qkv[i % (3 * C)]);
    std::vector<double> p(seq);
    for (int b = 0; b < batch; ++b)
      for (int hh = 0; hh < H; ++hh)
        for (int i = 0; i < seq; ++i) {
          const float* q = &qkv[(static_cast<std::size_t>(b) * seq + i) * 3 * C + hh * D];
          double mx = -1e300, sum = 0;
          for (int j = 0; j <= i; ++j) {
            const float* k = &qkv[(static_cast<std::size_t>(b) * seq + j) * 3 * C + C + hh * D];
            double s = 0;
            for (int d = 0; d < D; ++d) s += double(q[d]) * k[d];
            p[j] = s * scale;
            mx = std::max(mx, p[j]);
          }
          for (int j = 0; j <= i; ++j) sum += (p[j] = std::exp(p[j] - mx));
          for (int d = 0; d < D; ++d) {
            double o = 0;
            for (int j = 0; j <= i; ++j) o += p[j] * qkv[(static_cast<std::size_t>(b) * seq + j) * 3 * C + 2 * C + hh * D + d];
            att[(static_cast<std::size_t>(b) * seq + i) * C + hh * D + d] = rnd(static_cast<float>(o / sum));
          }
        }
    matmul(att, M, C, L.w_proj, C, y);
    for (std::size_t i = 0; i < y.size(); ++i) x[i] += y[i] + L.b_proj[i % C];
    layernorm_rows(x, M, L.ln2_g, L.ln2_b, h, rh, rb);
    matmul(h, M, C, L.w_fc, F, u);
    for (std::size_t i = 0; i < u.size(); ++i) u[i] = rnd(static_cast<float>(gelu_ref(u[i] + L.b_fc[i % F], true)));
    matmul(u, M, F, L.w_mproj, C, y);
    for (std::size_t i = 0; i < y.size(); ++i) x[i] += y[i] + L.b_mproj[i % C];
  }
  h_out.resize(static_cast<std::size_t>(M) * C);
  layernorm_rows(x, M, m.lnf_g, m.lnf_b, h_out, rh, rb);
}

double rel_norm(const std::vector<float>& a, const std::vector<float>& ref) {
  double num = 0, den = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double d = double(a[i]) - ref[i];
    num += d * d;
    den += double(ref[i]) * ref[i];
  }
  return std::sqrt(num / std::max(den, 1e-300));
}

template <typename T>
void run_checks() {
  const int n_layers = 2;
  Model<T> m(n_layers, 7);
  const double tol = std::is_same_v<T, __half> ? 5e-3 : 2e-2;
  const int shapes[][2] = {{1, 128}, {2, 64}, {3, 37}, {1, 20}, {1, 1}};
  std::printf("\n=== check (%s, %d layers, tolerance %.0e) ===\n", tname<T>(), n_layers, tol);
  for (const KernelVariant& kv : kCheckVariants)
  for (const auto& s : shapes) {
    const int cl = kv.cl;
    Buffers<T> buf(s[0], s[1]);
    const int M = buf.M;
    const std::vector<float> x0 = buf.random_input(100 + M);
    PersistentArgs<T> a = buf.args(m, n_layers);
    a.head_flags = kv.flags ? 1 : 0;
    std::vector<float> xg[2] = {std::vector<float>(x0.size()), std::vector<float>(x0.size())}, hg(x0.size());
    std::vector<T> ht(x0.size());
    for (int run = 0; run < 2; ++run) {
      if (!buf.forward(a, cl)) {
        std::printf("B%d x S%d: launch failed: %s\n", s[0], s[1], cudaGetErrorString(cudaGetLastError()));
        ++g_failures;
        break;
      }
      CK(cudaStreamSynchronize(g_stream));
      CK(cudaMemcpy(xg[run].data(), buf.x, x0.size() * 4, cudaMemcpyDeviceToHost));
    }
    CK(cudaMemcpy(ht.data(), buf.h, ht.size() * sizeof(T), cudaMemcpyDeviceToHost));
    for (std::size_t i = 0; i < ht.size(); ++i) hg[i] = h_to<T>(ht[i]);
    std::vector<float> xr = x0, hr;
    reference(m, n_layers, s[0], s[1], xr, hr);
    const double ex = rel_norm(xg[0], xr), eh = rel_norm(hg, hr);
    const bool same = std::memcmp(xg[0].data(), xg[1].data(), x0.size() * 4) == 0;
    bool finite = true;
    for (float v : xg[0]) finite = finite && std::isfinite(v);
    const bool ok = finite && ex <= tol && eh <= tol && same;
    if (!ok) ++g_failures;
    std::printf("cluster %d head flags %d  B%d x S%-4d M %3d  x rel-norm %.2e  h rel-norm %.2e  reproducible %s  %s\n",
                cl, kv.flags ? 1 : 0, s[0], s[1], M, ex, eh, same ? "yes" : "NO", ok ? "ok" : "FAILED");
    if (g_json)
      std::fprintf(g_json,
                   "{\"lab\":\"persistent\",\"gpu\":\"%s\",\"kind\":\"check\",\"type\":\"%s\",\"cluster\":%d,\"head_flags\":%s,"
                   "\"batch\":%d,\"seq\":%d,\"x_rel_norm\":%.3e,\"h_rel_norm\":%.3e,\"reproducible\":%s,\"ok\":%s}\n",
                   g_gpu.c_str(), tname<T>(), cl, kv.flags ? "true" : "false", s[0], s[1], ex, eh, same ? "true" : "false", ok ? "true" : "false");
  }
}

// A traced forward's time by phase, summed over its layers (µs): whole — block 0's exit of the barrier before the
// phase to its exit of the one after (t: block 0's stamps); work — from that first exit to the slowest block's
// work done (done: [barrier - 1][block]; the exits differ by a fraction of a microsecond). The rest of a phase is
// its barrier.
struct PhaseTimes {
  double whole[K::kPersistentPhases] = {}, work[K::kPersistentPhases] = {};
};
PhaseTimes phase_times(const std::vector<unsigned long long>& t, const std::vector<unsigned long long>& done,
                       int n_layers, int phases, int blocks) {
  PhaseTimes pt;
  for (int l = 0; l < n_layers; ++l)
    for (int ph = 0; ph < phases; ++ph) {
      const int b = l * phases + ph;  // barrier b + 1 ends this phase
      pt.whole[ph] += (t[b + 1] - t[b]) / 1000.0;
      unsigned long long last = 0;
      for (int k = 0; k < blocks; ++k) last = std::max(last, done[static_cast<std::size_t>(b) * blocks + k]);
      pt.work[ph] += (static_cast<double>(last) - static_cast<double>(t[b])) / 1000.0;
    }
  return pt;
}

// The phases' names: 6 with the head counters (QKV and attention one phase), 7 without.
const char* const* phase_names(bool head_flags) {
  static const char* kNames7[] = {"LN1", "QKV", "attention", "proj", "LN2", "FC", "mproj"};
  static const char* kNames6[] = {"LN1", "QKV+attention", "proj", "LN2", "FC", "mproj"};
  return head_flags ? kNames6 : kNames7;
}

void run_timing() {
  using T = __half;
  const int n_layers = 12;
  Model<T> m(n_layers, 11);
  std::printf("\n=== timing: %d layers (%.0f MB of weights), fp16, %d SMs, %d forwards per graph ===\n", n_layers,
              n_layers * (4.0 * C * C + 2.0 * C * F) * 2 / 1e6, g_sms, g_iters);
  const int shapes[][2] = {{1, 128}, {1, 64}, {2, 64}};
  struct Variant {
    int cl;
    bool no_mma, flags;
  };
  const Variant variants[] = {{1, false, false}, {1, false, true}, {2, false, false}, {1, true, false}};
  for (const Variant& v : variants)
  for (const auto& s : shapes) {
    const int cl = v.cl;
    Buffers<T> buf(s[0], s[1]);
    buf.random_input(5);
    PersistentArgs<T> a = buf.args(m, n_layers);
    a.lab_no_mma = v.no_mma ? 1 : 0;
    a.head_flags = v.flags ? 1 : 0;
    const int phases = K::persistent_phases(v.flags);
    const double full = time_graph_best(g_stream, [&](int) { return buf.forward(a, cl); }, g_iters);
    PersistentArgs<T> skel = a;
    skel.barriers_only = 1;
    const double bar = time_graph_best(g_stream, [&](int) { return buf.forward(skel, cl); }, g_iters);
    const double restore = time_graph_best(g_stream, [&](int) {
      return cudaMemcpyAsync(buf.x, buf.x0, buf.M * C * 4, cudaMemcpyDeviceToDevice, g_stream) == cudaSuccess &&
             cudaMemsetAsync(buf.counter, 0, K::kPersistentSyncWords * 4, g_stream) == cudaSuccess;
    }, g_iters);
    // One traced forward: block 0's clock after each barrier.
    PersistentArgs<T> tr = a;
    tr.trace = buf.trace;
    tr.trace_done = buf.trace_done;
    CK(buf.forward(tr, cl) ? cudaSuccess : cudaErrorLaunchFailure);
    CK(cudaStreamSynchronize(g_stream));
    const int nb = n_layers * phases + 1;
    const int blocks = cl == 2 ? K::persistent_blocks<T, 2>(g_sms) : K::persistent_blocks<T, 1>(g_sms);
    std::vector<unsigned long long> t(nb), done(static_cast<std::size_t>(nb) * blocks);
    CK(cudaMemcpy(t.data(), buf.trace, nb * 8, cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(done.data(), buf.trace_done, done.size() * 8, cudaMemcpyDeviceToHost));
    const PhaseTimes pt = phase_times(t, done, n_layers, phases, blocks);
    const double* phase = pt.whole;
    const double* work = pt.work;
    const char* const* names = phase_names(v.flags);
    if (v.no_mma) std::printf("[products without their MMAs: timing only]\n");
    std::printf("cluster %d (%d blocks) head flags %d  B%d x S%-4d  forward (12 blocks + ln_f) %8.2f us = %6.2f us / layer;  "
                "barrier skeleton %7.2f us (%.2f us / barrier);  x restore + counter memset %5.2f us\n",
                cl, blocks, v.flags ? 1 : 0, s[0], s[1], full, full / n_layers, bar, bar / (n_layers * phases), restore);
    std::string by_phase, by_work, json_phase;
    for (int ph = 0; ph < phases; ++ph) {
      char buf_[96];
      std::snprintf(buf_, sizeof buf_, "%s %.2f  ", names[ph], phase[ph] / n_layers);
      by_phase += buf_;
      std::snprintf(buf_, sizeof buf_, "%s %.2f  ", names[ph], work[ph] / n_layers);
      by_work += buf_;
      std::snprintf(buf_, sizeof buf_, "%s%.3f", ph ? "," : "", phase[ph] / n_layers);
      json_phase += buf_;
    }
    std::printf("            traced forward, us per layer by phase (block 0, ends at its barrier exits): %s\n", by_phase.c_str());
    std::printf("            of which the slowest block's work (the rest: the barrier):                     %s\n", by_work.c_str());
    if (g_json)
      std::fprintf(g_json,
                   "{\"lab\":\"persistent\",\"gpu\":\"%s\",\"kind\":\"timing\",\"no_mma\":%s,\"cluster\":%d,\"head_flags\":%s,"
                   "\"blocks\":%d,\"batch\":%d,\"seq\":%d,\"layers\":%d,\"forward_us\":%.3f,\"barrier_skeleton_us\":%.3f,"
                   "\"restore_us\":%.3f,\"phase_us_per_layer\":[%s]}\n",
                   g_gpu.c_str(), v.no_mma ? "true" : "false", cl, v.flags ? "true" : "false", blocks, s[0], s[1],
                   n_layers, full, bar, restore, json_phase.c_str());
  }
}

// ---- the LM head phase (--lm-head) ----
// A random tied embedding [kVocabPadded, C] (rows >= kVocab zero, as the engine pads it), on the host (rounded to T)
// and the device, with its map (boxes of kPersistentLmBN rows).
template <typename T>
struct LmHead {
  std::vector<float> w;
  T* d = nullptr;
  CUtensorMap map{};
  explicit LmHead(std::uint64_t seed) {
    Rng r(seed);
    w = rand_vec<T>(r, static_cast<std::size_t>(kVocabPadded) * C, 0.06f);
    std::fill(w.begin() + static_cast<std::size_t>(kVocab) * C, w.end(), 0.f);
    d = dev_upload<T>(w);
    map = map_of(d, kVocabPadded, C, K::kPersistentLmBN, std::is_same_v<T, __nv_bfloat16>);
  }
  ~LmHead() { cudaFree(d); }
};

template <typename T>
void lm_args(PersistentArgs<T>& a, Buffers<T>& buf, const LmHead<T>& lm, bool logits) {
  buf.map_lm = lm.map;
  a.lm_head = 1;
  a.vocab = kVocab;
  a.vocab_padded = kVocabPadded;
  a.logits = logits ? buf.logits : nullptr;
  a.lm_parts = buf.parts;
  a.top1 = buf.top1;
  a.row_sum = buf.row_sum;
}

template <typename T>
void run_lm_head_checks() {
  const int n_layers = 2;
  Model<T> m(n_layers, 7);
  LmHead<T> lm(21);
  const double tol = std::is_same_v<T, __half> ? 2e-3 : 1e-2;
  const int shapes[][2] = {{1, 128}, {1, 100}, {2, 64}, {1, 65}, {3, 37}, {1, 1}};
  std::printf("\n=== LM head phase: check (%s, %d layers, logits tolerance %.0e) ===\n", tname<T>(), n_layers, tol);
  for (const auto& s : shapes) {
    Buffers<T> buf(s[0], s[1]);
    const int M = buf.M;
    buf.random_input(300 + M);
    PersistentArgs<T> a = buf.args(m, n_layers);
    a.head_flags = 1;
    std::vector<int> top1[2] = {std::vector<int>(M), std::vector<int>(M)};
    std::vector<double> sums[2] = {std::vector<double>(M), std::vector<double>(M)};
    std::vector<T> lt(static_cast<std::size_t>(M) * kVocabPadded), ht(static_cast<std::size_t>(M) * C);
    bool launched = true;
    for (int run = 0; run < 2 && launched; ++run) {  // 0: with the logits stored, 1: summary only
      lm_args(a, buf, lm, run == 0);
      launched = buf.forward(a, 1);
      if (!launched) break;
      CK(cudaStreamSynchronize(g_stream));
      CK(cudaMemcpy(top1[run].data(), buf.top1, M * sizeof(int), cudaMemcpyDeviceToHost));
      CK(cudaMemcpy(sums[run].data(), buf.row_sum, M * sizeof(double), cudaMemcpyDeviceToHost));
      if (run == 0) CK(cudaMemcpy(lt.data(), buf.logits, lt.size() * sizeof(T), cudaMemcpyDeviceToHost));
    }
    if (!launched) {
      std::printf("B%d x S%d: launch failed: %s\n", s[0], s[1], cudaGetErrorString(cudaGetLastError()));
      ++g_failures;
      continue;
    }
    CK(cudaMemcpy(ht.data(), buf.h, ht.size() * sizeof(T), cudaMemcpyDeviceToHost));
    // the summary of the stored logits (first kVocab columns; the lowest id on ties), sums in double in order
    int summary_bad = 0;
    double worst_sum = 0;
    for (int r = 0; r < M; ++r) {
      float best = -INFINITY;
      int bi = 0x7fffffff;
      double sum = 0;
      for (int c = 0; c < kVocab; ++c) {
        const float v = h_to<T>(lt[static_cast<std::size_t>(r) * kVocabPadded + c]);
        sum += v;
        if (v > best) best = v, bi = c;
      }
      const double dev = std::fabs(sums[0][r] - sum) / std::max(1.0, std::fabs(sum));
      worst_sum = std::max(worst_sum, dev);
      if (top1[0][r] != bi || dev > 1e-9) ++summary_bad;
    }
    const bool same = top1[0] == top1[1] && std::memcmp(sums[0].data(), sums[1].data(), M * sizeof(double)) == 0;
    // 8 rows' logits against h . W^T in double (the kernel's own h: only the LM head's error)
    std::vector<float> got, ref;
    for (int i = 0; i < 8; ++i) {
      const int r = (i * 37) % M;
      for (int c = 0; c < kVocab; ++c) {
        double acc = 0;
        for (int k = 0; k < C; ++k)
          acc += double(h_to<T>(ht[static_cast<std::size_t>(r) * C + k])) * lm.w[static_cast<std::size_t>(c) * C + k];
        ref.push_back(static_cast<float>(acc));
        got.push_back(h_to<T>(lt[static_cast<std::size_t>(r) * kVocabPadded + c]));
      }
    }
    const double e = rel_norm(got, ref);
    const bool ok = summary_bad == 0 && same && e <= tol;
    if (!ok) ++g_failures;
    std::printf("B%d x S%-4d M %3d  summary vs stored logits: %d rows off (worst sum rel %.1e)  summary-only the same: %s  "
                "logits rel-norm %.2e  %s\n",
                s[0], s[1], M, summary_bad, worst_sum, same ? "yes" : "NO", e, ok ? "ok" : "FAILED");
    if (g_json)
      std::fprintf(g_json,
                   "{\"lab\":\"persistent\",\"gpu\":\"%s\",\"kind\":\"lm_head_check\",\"type\":\"%s\",\"batch\":%d,"
                   "\"seq\":%d,\"summary_rows_off\":%d,\"summary_only_same\":%s,\"logits_rel_norm\":%.3e,\"ok\":%s}\n",
                   g_gpu.c_str(), tname<T>(), s[0], s[1], summary_bad, same ? "true" : "false", e, ok ? "true" : "false");
  }
}

void run_lm_head_timing() {
  using T = __half;
  const int n_layers = 12;
  Model<T> m(n_layers, 11);
  LmHead<T> lm(21);
  const int phases = K::persistent_phases(true), blocks = K::persistent_blocks<T, 1>(g_sms);
  std::printf("\n=== LM head phase: timing (fp16, %d layers, %d blocks, %d forwards per graph) ===\n", n_layers, blocks,
              g_iters);
  for (const auto& s : {std::array<int, 2>{1, 128}, std::array<int, 2>{1, 64}}) {
    Buffers<T> buf(s[0], s[1]);
    buf.random_input(5);
    PersistentArgs<T> base = buf.args(m, n_layers), with = base;
    base.head_flags = with.head_flags = 1;
    lm_args(with, buf, lm, false);
    double t_base[3], t_with[3];
    for (int round = 0; round < 3; ++round) {  // alternating
      t_base[round] = time_graph_best(g_stream, [&](int) { return buf.forward(base, 1); }, g_iters);
      t_with[round] = time_graph_best(g_stream, [&](int) { return buf.forward(with, 1); }, g_iters);
    }
    // one traced forward: block 0's exits of the barriers after the last MLP projection, ln_f and the LM head
    PersistentArgs<T> tr = with;
    tr.trace = buf.trace;
    tr.trace_done = buf.trace_done;
    CK(buf.forward(tr, 1) ? cudaSuccess : cudaErrorLaunchFailure);
    CK(cudaStreamSynchronize(g_stream));
    const int b0 = n_layers * phases, nb = b0 + 3;
    std::vector<unsigned long long> t(nb), done(static_cast<std::size_t>(nb) * blocks);
    CK(cudaMemcpy(t.data(), buf.trace, nb * 8, cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(done.data(), buf.trace_done, done.size() * 8, cudaMemcpyDeviceToHost));
    unsigned long long last = 0, first = ~0ull;  // the LM head phase's work: barrier b0 + 2's arrivals
    for (int k = 0; k < blocks; ++k) {
      last = std::max(last, done[static_cast<std::size_t>(b0 + 1) * blocks + k]);
      first = std::min(first, done[static_cast<std::size_t>(b0 + 1) * blocks + k]);
    }
    const double lnf = (t[b0 + 1] - t[b0]) / 1e3, lm_whole = (t[b0 + 2] - t[b0 + 1]) / 1e3,
                 lm_slowest = (static_cast<double>(last) - t[b0 + 1]) / 1e3, lm_fastest = (static_cast<double>(first) - t[b0 + 1]) / 1e3;
    std::printf("B%d x S%-4d forward without the LM head %7.2f %7.2f %7.2f us; with it (summary only) %7.2f %7.2f %7.2f us "
                "(+%.2f);  traced: ln_f phase %.2f us, LM head phase %.2f us (blocks' work done %.2f .. %.2f us after "
                "its start)\n",
                s[0], s[1], t_base[0], t_base[1], t_base[2], t_with[0], t_with[1], t_with[2],
                std::min({t_with[0], t_with[1], t_with[2]}) - std::min({t_base[0], t_base[1], t_base[2]}), lnf, lm_whole,
                lm_fastest, lm_slowest);
    if (g_json)
      std::fprintf(g_json,
                   "{\"lab\":\"persistent\",\"gpu\":\"%s\",\"kind\":\"lm_head_timing\",\"batch\":%d,\"seq\":%d,"
                   "\"forward_us\":[%.3f,%.3f,%.3f],\"forward_lm_head_us\":[%.3f,%.3f,%.3f],\"lnf_phase_us\":%.3f,"
                   "\"lm_head_phase_us\":%.3f,\"lm_head_work_fastest_us\":%.3f,\"lm_head_work_slowest_us\":%.3f}\n",
                   g_gpu.c_str(), s[0], s[1], t_base[0], t_base[1], t_base[2], t_with[0], t_with[1], t_with[2], lnf,
                   lm_whole, lm_fastest, lm_slowest);
  }
}

}  // namespace

// One traced forward of 12 layers at B1 x S128 (head counters on, as the engine) with the in-phase times of the
// four products: per product, averaged over the layers, the median block's and the slowest block's (the one whose
// work ends last) wake-up (its producer seeing the releasing barrier, from block 0's exit of it), wait for the
// first activation stage, k loop (the stages streamed and multiplied), and the rest up to its arrival at the next
// barrier (epilogue stores; for QKV the attention phase too, which the head counters join to it).
// The producer's next-item weights after all of an item's stages (the engine's order since the sixteenth session)
// against after its first 8 (lab_weights_after_first_stages), B1 x S128, 12 layers, head counters on: 3 alternating
// rounds of the forward's time.
void run_weights_order_ab() {
  using T = __half;
  const int n_layers = 12;
  Model<T> m(n_layers, 11);
  Buffers<T> buf(1, 128);
  buf.random_input(5);
  for (int round = 1; round <= 3; ++round)
    for (const int after : {0, 1}) {
      PersistentArgs<T> a = buf.args(m, n_layers);
      a.head_flags = 1;
      a.lab_weights_after_first_stages = after ? 0 : 1;
      const double us = time_graph_best(g_stream, [&](int) { return buf.forward(a, 1); }, g_iters);
      std::printf("round %d: next weights %s: forward (12 blocks + ln_f) %8.2f us\n", round,
                  after ? "after all stages " : "after 8 stages   ", us);
      if (g_json)
        std::fprintf(g_json, "{\"lab\":\"persistent\",\"gpu\":\"%s\",\"kind\":\"weights_order\",\"round\":%d,"
                             "\"weights_after_all_stages\":%d,\"forward_us\":%.3f}\n",
                     g_gpu.c_str(), round, after, us);
    }
}

void run_product_trace(int batch = 1, int seq = 128, int weights_after_first_stages = 0) {
  using T = __half;
  const int n_layers = 12;
  Model<T> m(n_layers, 11);
  Buffers<T> buf(batch, seq);
  buf.random_input(5);
  // the in-phase breakdown: the engine's kernel with and without MMAs
  for (const bool no_mma : {false, true}) {
    PersistentArgs<T> a = buf.args(m, n_layers);
    a.head_flags = 1;
    a.lab_no_mma = no_mma ? 1 : 0;
    a.lab_weights_after_first_stages = weights_after_first_stages;
    for (int warm = 0; warm < 3; ++warm) CK(buf.forward(a, 1) ? cudaSuccess : cudaErrorLaunchFailure);
    a.trace = buf.trace;
    a.trace_done = buf.trace_done;
    a.trace_product = buf.trace_product;
    CK(cudaMemset(buf.trace_product, 0, Buffers<T>::kTraceProductBytes));
    CK(buf.forward(a, 1) ? cudaSuccess : cudaErrorLaunchFailure);
    CK(cudaStreamSynchronize(g_stream));
    const int phases = K::persistent_phases(true), nb = n_layers * phases + 1, blocks = K::persistent_blocks<T, 1>(g_sms);
    std::vector<unsigned long long> t(nb), done(static_cast<std::size_t>(nb) * blocks), tp(done.size() * 3);
    CK(cudaMemcpy(t.data(), buf.trace, nb * 8, cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(done.data(), buf.trace_done, done.size() * 8, cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(tp.data(), buf.trace_product, tp.size() * 8, cudaMemcpyDeviceToHost));
    std::printf("\n=== inside the product phases: 12 layers, B%d x S%d, head flags 1%s%s (%s, %d blocks; us, mean over layers) ===\n",
                batch, seq, no_mma ? ", products WITHOUT their MMAs (timing only)" : "",
                weights_after_first_stages ? ", next weights after the first 8 stages (the earlier order)" : "", g_gpu.c_str(), blocks);
    {  // per phase, as the timing runs print it: block 0's exit to exit, and the slowest block's work
      const PhaseTimes pt = phase_times(t, done, n_layers, phases, blocks);
      std::string line;
      for (int ph = 0; ph < phases; ++ph) {
        char b_[96];
        std::snprintf(b_, sizeof b_, "%s %.2f / %.2f  ", phase_names(true)[ph], pt.work[ph] / n_layers,
                      pt.whole[ph] / n_layers);
        line += b_;
      }
      std::printf("phases, us a layer (slowest block's work / whole phase): %s\n", line.c_str());
    }
    std::printf("%-6s %-8s %8s %8s %8s %8s %8s\n", "product", "block", "wake", "1st stage", "k loop", "rest", "total");
    static const char* kNames[] = {"QKV", "proj", "FC", "mproj"};
    const int offsets[] = {1, 2, 4, 5};  // releasing barrier within the layer (product_shape, head flags on)
    for (int pr = 0; pr < 4; ++pr) {
      double med[4] = {}, slow[4] = {};
      for (int l = 0; l < n_layers; ++l) {
        const int rb = l * phases + offsets[pr];
        std::vector<std::array<double, 4>> parts;
        double worst_end = -1;
        std::array<double, 4> worst{};
        for (int k = 0; k < blocks; ++k) {
          const unsigned long long* s = &tp[(static_cast<std::size_t>(rb) * blocks + k) * 3];
          if (!s[0] || !s[1] || !s[2]) continue;  // no item of this product on this block
          const double t0 = static_cast<double>(t[rb]), end = static_cast<double>(done[static_cast<std::size_t>(rb) * blocks + k]);
          const std::array<double, 4> q = {(s[0] - t0) / 1e3, (static_cast<double>(s[1]) - s[0]) / 1e3,
                                           (static_cast<double>(s[2]) - s[1]) / 1e3, (end - s[2]) / 1e3};
          parts.push_back(q);
          if (end > worst_end) {
            worst_end = end;
            worst = q;
          }
        }
        if (parts.empty()) continue;
        for (int c = 0; c < 4; ++c) {
          std::vector<double> v;
          for (const auto& q : parts) v.push_back(q[c]);
          std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
          med[c] += v[v.size() / 2] / n_layers;
          slow[c] += worst[c] / n_layers;
        }
      }
      for (const bool slowest : {false, true}) {
        const double* q = slowest ? slow : med;
        std::printf("%-6s %-8s %8.2f %8.2f %8.2f %8.2f %8.2f\n", kNames[pr], slowest ? "slowest" : "median", q[0], q[1],
                    q[2], q[3], q[0] + q[1] + q[2] + q[3]);
        if (g_json)
          std::fprintf(g_json,
                       "{\"lab\":\"persistent\",\"gpu\":\"%s\",\"kind\":\"product_trace\",\"batch\":%d,\"seq\":%d,"
                       "\"no_mma\":%s,\"product\":\"%s\",\"block\":\"%s\",\"wake_us\":%.3f,"
                       "\"first_stage_us\":%.3f,\"k_loop_us\":%.3f,\"rest_us\":%.3f}\n",
                       g_gpu.c_str(), batch, seq, no_mma ? "true" : "false", kNames[pr], slowest ? "slowest" : "median", q[0], q[1],
                       q[2], q[3]);
      }
    }
  }
}

int main(int argc, char** argv) {
  bool trace_only = false, weights_order = false, lm_head = false, lm_head_timing_only = false;
  std::vector<std::array<int, 2>> trace_shapes;  // --trace-shape BxS (repeatable): the trace at other row counts
  for (int i = 1; i < argc; ++i) {
    int b = 0, sq = 0;
    if (const int taken = common_option(argc, argv, i, g_json, g_iters); taken != 0) {
      if (taken < 0) return 2;
    } else if (!std::strcmp(argv[i], "--trace-only")) {
      trace_only = true;
    } else if (!std::strcmp(argv[i], "--weights-order")) {
      weights_order = true;
    } else if (!std::strcmp(argv[i], "--lm-head")) {
      lm_head = true;
    } else if (!std::strcmp(argv[i], "--lm-head-timing")) {
      lm_head = lm_head_timing_only = true;
    } else if (!std::strcmp(argv[i], "--trace-shape") && i + 1 < argc && std::sscanf(argv[i + 1], "%dx%d", &b, &sq) == 2 &&
               b >= 1 && sq >= 1 && b * sq <= 128) {
      trace_shapes.push_back({b, sq});
      ++i;
    } else {
      std::fprintf(stderr, "usage: %s [--iters N] [--json FILE] [--trace-only] [--trace-shape BxS (rows <= 128)]... "
                           "[--weights-order] [--lm-head | --lm-head-timing]\n",
                   argv[0]);
      return 2;
    }
  }
  if (trace_shapes.empty()) trace_shapes.push_back({1, 128});
  cudaDeviceProp prop{};
  CK(cudaGetDeviceProperties(&prop, 0));
  g_gpu = prop.name;
  g_sms = prop.multiProcessorCount;
  std::printf("persistent_lab on %s (%d SMs, sm_%d%d)\n", prop.name, prop.multiProcessorCount, prop.major, prop.minor);
  if (prop.major != 9) {
    std::printf("the persistent kernel needs an sm_90 GPU: skipped\n");
    return 0;
  }
  CK(cudaStreamCreateWithFlags(&g_stream, cudaStreamNonBlocking));
  if (weights_order) {  // the A/B, then both variants' traces
    run_weights_order_ab();
    run_product_trace(1, 128, 0);
    run_product_trace(1, 128, 1);
    if (g_json) std::fclose(g_json);
    return 0;
  }
  if (lm_head) {
    if (!lm_head_timing_only) {
      run_lm_head_checks<__half>();
      run_lm_head_checks<__nv_bfloat16>();
    }
    run_lm_head_timing();
    std::printf("\n%s (%d failures)\n", g_failures ? "FAILED" : "ALL CHECKS PASSED", g_failures);
    if (g_json) std::fclose(g_json);
    return g_failures ? 1 : 0;
  }
  if (trace_only) {
    for (const auto& [b, sq] : trace_shapes) run_product_trace(b, sq);
    if (g_json) std::fclose(g_json);
    return 0;
  }
  run_checks<__half>();
  run_checks<__nv_bfloat16>();
  run_timing();
  run_product_trace();
  std::printf("\n%s (%d failures)\n", g_failures ? "FAILED" : "ALL CHECKS PASSED", g_failures);
  if (g_json) std::fclose(g_json);
  return g_failures ? 1 : 0;
}
