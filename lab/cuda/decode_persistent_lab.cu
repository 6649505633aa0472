// Kernel lab: a decode step's blocks in one persistent kernel (src/backends/cuda/decode_persistent.cuh) against
// the engine's fused 5-kernel chain (embed, then per layer: LayerNorm + QKV + cache store, decode_attention,
// attention projection + residual, LayerNorm + FC + GELU, MLP projection + residual; gemv.cuh).
//
// Check (GPT-2 124M widths: C 768, 12 heads, F 3072; 12 layers; random weights; a cache of max_tokens 256 filled
// with random rows before pos): for T = half, bf16, float, rows 1, 3, 4, 6, 8 and pos 0, 5, 127:
//   - the persistent kernel gives the chain's bits: the final x, and every layer's new cache row (exit 1 if not);
//   - x against a CPU reference in double that rounds to T where the kernels store T (qkv and the cache, att, u):
//     ||x - ref|| / ||ref|| <= 5e-3 (half), 3e-2 (bf16), 1e-4 (float).
// For 6 and 8 rows in half / bf16 also the tensor-core products (DecodeArgs::mma: all four products, and the MLP
// projection alone): x against the double reference (same tolerance) and its distance from the chain's x (> 0:
// that path ran).
// Timing (T = half, rows 1, 4 and 8, and bf16 rows 8; pos 127): a CUDA graph of --iters steps (the persistent
// kernel: counter memset + kernel; the chain: its 61 kernels), best of 3 replays; the weights (170 MB) stream from
// HBM each step, as in a real decode step. Prints us / step for the chain and for the persistent kernel as the
// engine runs it (at 5-8 rows in half / bf16 also with the tensor-core products, the kernel's other instance),
// then one step's phases from %globaltimer stamps.
//
// Build: part of the CMake build. Run: ./decode_persistent_lab [--iters N] [--json FILE] [--timing-only]
#include <cuda_runtime.h>

#include <cmath>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "backends/cuda/decode_persistent.cuh"
#include "backends/cuda/gemv.cuh"
#include "backends/cuda/kernels.cuh"
#include "lab_common.cuh"

namespace {

using namespace lab;
namespace K = gptbench::cuda_engine::kernels;

constexpr int C = 768, H = 12, F = 3072, D = 64, L = 12, V = 1000, kMaxTokens = 256;
cudaStream_t g_stream;
std::FILE* g_json = nullptr;
int g_iters = 50, g_failures = 0, g_sms = 0;
std::string g_gpu;

template <typename T>
T* upload(const std::vector<float>& v) {
  std::vector<T> t(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) t[i] = h_from<T>(v[i]);
  T* d = nullptr;
  CK(cudaMalloc(&d, t.size() * sizeof(T)));
  CK(cudaMemcpy(d, t.data(), t.size() * sizeof(T), cudaMemcpyHostToDevice));
  return d;
}
template <typename T>
std::vector<float> download(const T* d, std::size_t n) {
  std::vector<T> t(n);
  CK(cudaMemcpy(t.data(), d, n * sizeof(T), cudaMemcpyDeviceToHost));
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = h_to<T>(t[i]);
  return v;
}
std::vector<float> random_vec(Rng& r, std::size_t n, float scale, float offset = 0.f) {
  std::vector<float> v(n);
  for (auto& e : v) e = offset + scale * r.uni();
  return v;
}
template <typename T>
void round_to(std::vector<float>& v) {
  for (auto& e : v) e = h_round<T>(e);
}

// The model on the host (values already rounded to T where the device holds T) and on the device.
struct HostModel {
  std::vector<float> wte, wpe;
  struct Layer {
    std::vector<float> w_qkv, w_proj, w_fc, w_mproj, b_qkv, b_proj, b_fc, b_mproj, ln1_g, ln1_b, ln2_g, ln2_b;
  };
  std::vector<Layer> layers;
  std::vector<std::vector<float>> cache;  // per layer [rows][kMaxTokens][2C], random before pos
};

template <typename T>
HostModel make_model(int rows) {
  Rng r(17);
  HostModel m;
  m.wte = random_vec(r, static_cast<std::size_t>(V) * C, 0.5f);
  m.wpe = random_vec(r, static_cast<std::size_t>(kMaxTokens) * C, 0.1f);
  round_to<T>(m.wte);
  round_to<T>(m.wpe);
  const float s_c = 1.f / std::sqrt(static_cast<float>(C)), s_f = 1.f / std::sqrt(static_cast<float>(F));
  for (int l = 0; l < L; ++l) {
    HostModel::Layer y;
    y.w_qkv = random_vec(r, 3ull * C * C, 1.7f * s_c);
    y.w_proj = random_vec(r, 1ull * C * C, 1.7f * s_c);
    y.w_fc = random_vec(r, 1ull * F * C, 1.7f * s_c);
    y.w_mproj = random_vec(r, 1ull * C * F, 1.7f * s_f);
    y.b_qkv = random_vec(r, 3 * C, 0.05f);
    y.b_proj = random_vec(r, C, 0.05f);
    y.b_fc = random_vec(r, F, 0.05f);
    y.b_mproj = random_vec(r, C, 0.05f);
    for (auto* v : {&y.w_qkv, &y.w_proj, &y.w_fc, &y.w_mproj, &y.b_qkv, &y.b_proj, &y.b_fc, &y.b_mproj}) round_to<T>(*v);
    y.ln1_g = random_vec(r, C, 0.2f, 1.f);
    y.ln1_b = random_vec(r, C, 0.05f);
    y.ln2_g = random_vec(r, C, 0.2f, 1.f);
    y.ln2_b = random_vec(r, C, 0.05f);
    m.layers.push_back(std::move(y));
    std::vector<float> c = random_vec(r, static_cast<std::size_t>(rows) * kMaxTokens * 2 * C, 1.f);
    round_to<T>(c);
    m.cache.push_back(std::move(c));
  }
  return m;
}

template <typename T>
struct DeviceModel {
  T *wte, *wpe;
  std::vector<K::DecodeLayer<T>> layers;  // host copy of the device table
  K::DecodeLayer<T>* table;
  std::vector<float*> ln;  // the LayerNorm parameters, to free
  std::vector<T*> cache;
};
float* upload_f(const std::vector<float>& v) {
  float* d = nullptr;
  CK(cudaMalloc(&d, v.size() * sizeof(float)));
  CK(cudaMemcpy(d, v.data(), v.size() * sizeof(float), cudaMemcpyHostToDevice));
  return d;
}
template <typename T>
DeviceModel<T> upload_model(const HostModel& m) {
  DeviceModel<T> d;
  d.wte = upload<T>(m.wte);
  d.wpe = upload<T>(m.wpe);
  const float sl2 = 1.4426950408889634f / std::sqrt(static_cast<float>(D));
  for (const auto& y : m.layers) {
    K::DecodeLayer<T> t;
    t.w_qkv = upload<T>(y.w_qkv);
    t.w_proj = upload<T>(y.w_proj);
    t.w_fc = upload<T>(y.w_fc);
    t.w_mproj = upload<T>(y.w_mproj);
    t.b_qkv = upload<T>(y.b_qkv);
    t.b_proj = upload<T>(y.b_proj);
    t.b_fc = upload<T>(y.b_fc);
    t.b_mproj = upload<T>(y.b_mproj);
    float* ln[4] = {upload_f(y.ln1_g), upload_f(y.ln1_b), upload_f(y.ln2_g), upload_f(y.ln2_b)};
    t.ln1_g = ln[0];
    t.ln1_b = ln[1];
    t.ln2_g = ln[2];
    t.ln2_b = ln[3];
    d.ln.insert(d.ln.end(), ln, ln + 4);
    t.scale_log2 = sl2;
    d.layers.push_back(t);
  }
  CK(cudaMalloc(&d.table, L * sizeof(K::DecodeLayer<T>)));
  CK(cudaMemcpy(d.table, d.layers.data(), L * sizeof(K::DecodeLayer<T>), cudaMemcpyHostToDevice));
  for (const auto& c : m.cache) d.cache.push_back(upload<T>(c));
  return d;
}
template <typename T>
void free_model(DeviceModel<T>& d) {
  for (const auto& t : d.layers)
    for (const void* p : {static_cast<const void*>(t.w_qkv), static_cast<const void*>(t.w_proj),
                          static_cast<const void*>(t.w_fc), static_cast<const void*>(t.w_mproj),
                          static_cast<const void*>(t.b_qkv), static_cast<const void*>(t.b_proj),
                          static_cast<const void*>(t.b_fc), static_cast<const void*>(t.b_mproj)})
      CK(cudaFree(const_cast<void*>(p)));
  for (float* p : d.ln) CK(cudaFree(p));
  for (T* p : d.cache) CK(cudaFree(p));
  CK(cudaFree(d.wte));
  CK(cudaFree(d.wpe));
  CK(cudaFree(d.table));
}

// One step's buffers.
template <typename T>
struct Step {
  int rows = 0;
  int *ids = nullptr, *pos = nullptr;
  float* x = nullptr;
  T *qkv = nullptr, *att = nullptr, *u = nullptr;
  unsigned* counter = nullptr;
  explicit Step(int r) : rows(r) {
    CK(cudaMalloc(&ids, rows * sizeof(int)));
    CK(cudaMalloc(&pos, sizeof(int)));
    CK(cudaMalloc(&x, rows * C * sizeof(float)));
    CK(cudaMalloc(&qkv, rows * 3 * C * sizeof(T)));
    CK(cudaMalloc(&att, rows * C * sizeof(T)));
    CK(cudaMalloc(&u, rows * F * sizeof(T)));
    CK(cudaMalloc(&counter, K::kPersistentSyncWords * sizeof(unsigned)));  // the barrier, ..., the exit count
    CK(cudaMemset(counter, 0, K::kPersistentSyncWords * sizeof(unsigned)));
  }
  ~Step() {
    for (void* p : {static_cast<void*>(ids), static_cast<void*>(pos), static_cast<void*>(x), static_cast<void*>(qkv),
                    static_cast<void*>(att), static_cast<void*>(u), static_cast<void*>(counter)})
      cudaFree(p);
  }
};

// The persistent kernel's path and stamps (DecodeArgs' mma and lab fields).
struct LabOptions {
  int mma = 0;  // DecodeArgs::mma (5-8 rows in half / bf16: which products run on tensor cores, K::kDecode* bits)
  unsigned long long *trace = nullptr, *trace_done = nullptr;
};

template <typename T>
void launch_persistent(const DeviceModel<T>& d, const Step<T>& s, int blocks, const LabOptions& lab = {}) {
  K::DecodeArgs<T> a;
  a.mma = lab.mma;
  a.trace = lab.trace;
  a.trace_done = lab.trace_done;
  a.layers = d.table;
  a.n_layers = L;
  a.rows = s.rows;
  a.C = C;
  a.H = H;
  a.F = F;
  a.max_tokens = kMaxTokens;
  for (int l = 0; l < L; ++l) a.cache[l] = d.cache[l];
  a.ids = s.ids;
  a.pos = s.pos;
  a.wte = d.wte;
  a.wpe = d.wpe;
  a.x = s.x;
  a.qkv = s.qkv;
  a.att = s.att;
  a.u = s.u;
  a.counter = s.counter;
  a.eps = 1e-5f;
  a.gelu_tanh = 1;
  CK(cudaMemsetAsync(s.counter, 0, sizeof(unsigned), g_stream));
  CK(K::launch_gpt2_decode_persistent<T>(a, blocks, g_stream));
}

// The engine's fused chain (cuda_engine.cu, forward_decode_gemv, without ln_f and the LM head).
template <typename T>
void launch_chain(const DeviceModel<T>& d, const Step<T>& s) {
  using K::GemvIn;
  using K::GemvOut;
  K::embed<T><<<s.rows, 256, 0, g_stream>>>(s.ids, d.wte, d.wpe, s.x, 1, C, s.pos);
  auto gemv = [&](const T* W, const T* b, int N, int Kd, GemvIn in, GemvOut out, const float* lw, const float* lb,
                  const T* act, T* y, int ldy, float* resid, T* cache) {
    K::GemvArgs a{};
    a.rows = s.rows;
    a.K = Kd;
    a.N = N;
    a.W = W;
    a.bias = b;
    a.x = s.x;
    a.ln_w = lw;
    a.ln_b = lb;
    a.eps = 1e-5f;
    a.act = act;
    a.y = y;
    a.ldy = ldy;
    a.resid = resid;
    a.kv_cache = cache;
    a.max_tokens = kMaxTokens;
    a.pos = s.pos;
    K::launch_gemv<T>(a, in, out, g_stream);
  };
  for (int l = 0; l < L; ++l) {
    const K::DecodeLayer<T>& y = d.layers[l];
    gemv(y.w_qkv, y.b_qkv, 3 * C, C, GemvIn::kLayerNorm, GemvOut::kStoreKV, y.ln1_g, y.ln1_b, nullptr, s.qkv, 3 * C,
         nullptr, d.cache[l]);
    CK(K::launch_kernel(K::decode_attention<T, D>, dim3(H, s.rows), dim3(256), kMaxTokens * sizeof(float), g_stream,
                        false, s.qkv, d.cache[l], s.att, C, kMaxTokens, s.pos, y.scale_log2));
    gemv(y.w_proj, y.b_proj, C, C, GemvIn::kPlain, GemvOut::kResidualAdd, nullptr, nullptr, s.att, nullptr, 0, s.x,
         nullptr);
    gemv(y.w_fc, y.b_fc, F, C, GemvIn::kLayerNorm, GemvOut::kGeluTanh, y.ln2_g, y.ln2_b, nullptr, s.u, F, nullptr,
         nullptr);
    gemv(y.w_mproj, y.b_mproj, C, F, GemvIn::kPlain, GemvOut::kResidualAdd, nullptr, nullptr, s.u, nullptr, 0, s.x,
         nullptr);
  }
}

// The step in double, rounding to T where the kernels store T. Updates the host cache's row pos; returns x.
template <typename T>
std::vector<double> reference_step(HostModel& m, const std::vector<int>& ids, int pos) {
  const int rows = static_cast<int>(ids.size());
  std::vector<double> x(static_cast<std::size_t>(rows) * C);
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < C; ++c) x[r * C + c] = static_cast<double>(m.wte[ids[r] * C + c]) + m.wpe[pos * C + c];
  std::vector<float> xf(C), hn(F), a(C);
  std::vector<double> h(C);
  auto layernorm = [&](const double* xr, const std::vector<float>& g, const std::vector<float>& b) {
    for (int c = 0; c < C; ++c) xf[c] = static_cast<float>(xr[c]);  // the kernels keep x in float
    layernorm_ref(xf.data(), C, g.data(), b.data(), h.data());
  };
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));
  for (int l = 0; l < L; ++l) {
    const auto& y = m.layers[l];
    std::vector<float>& cache = m.cache[l];
    for (int r = 0; r < rows; ++r) {
      double* xr = &x[r * C];
      layernorm(xr, y.ln1_g, y.ln1_b);
      std::vector<float> qkv(3 * C);
      for (int n = 0; n < 3 * C; ++n) {
        double s = y.b_qkv[n];
        for (int k = 0; k < C; ++k) s += static_cast<double>(y.w_qkv[n * C + k]) * h[k];
        qkv[n] = h_round<T>(static_cast<float>(s));
      }
      float* row = &cache[(static_cast<std::size_t>(r) * kMaxTokens + pos) * 2 * C];
      for (int c = 0; c < 2 * C; ++c) row[c] = qkv[C + c];
      for (int hh = 0; hh < H; ++hh) {
        std::vector<double> p(pos + 1);
        double mx = -1e300, sum = 0;
        for (int t = 0; t <= pos; ++t) {
          const float* kr = &cache[(static_cast<std::size_t>(r) * kMaxTokens + t) * 2 * C + hh * D];
          double dot = 0;
          for (int e = 0; e < D; ++e) dot += static_cast<double>(qkv[hh * D + e]) * kr[e];
          p[t] = dot * scale;
          mx = std::max(mx, p[t]);
        }
        for (int t = 0; t <= pos; ++t) sum += (p[t] = std::exp(p[t] - mx));
        for (int e = 0; e < D; ++e) {
          double o = 0;
          for (int t = 0; t <= pos; ++t) o += p[t] * cache[(static_cast<std::size_t>(r) * kMaxTokens + t) * 2 * C + C + hh * D + e];
          a[hh * D + e] = h_round<T>(static_cast<float>(o / sum));
        }
      }
      for (int n = 0; n < C; ++n) {
        double s = y.b_proj[n];
        for (int k = 0; k < C; ++k) s += static_cast<double>(y.w_proj[n * C + k]) * a[k];
        xr[n] += s;
      }
      layernorm(xr, y.ln2_g, y.ln2_b);
      for (int n = 0; n < F; ++n) {
        double s = y.b_fc[n];
        for (int k = 0; k < C; ++k) s += static_cast<double>(y.w_fc[n * C + k]) * h[k];
        hn[n] = h_round<T>(static_cast<float>(gelu_ref(s, true)));
      }
      for (int n = 0; n < C; ++n) {
        double s = y.b_mproj[n];
        for (int k = 0; k < F; ++k) s += static_cast<double>(y.w_mproj[n * F + k]) * hn[k];
        xr[n] += s;
      }
    }
  }
  return x;
}

// ||x - ref|| / ||ref|| in double (ref: the double reference, or another path's float x).
template <typename R>
double rel_norm(const std::vector<float>& x, const std::vector<R>& ref) {
  double num = 0, den = 0;
  for (std::size_t i = 0; i < ref.size(); ++i) {
    const double e = static_cast<double>(x[i]) - static_cast<double>(ref[i]);
    num += e * e;
    den += static_cast<double>(ref[i]) * static_cast<double>(ref[i]);
  }
  return std::sqrt(num / den);
}

template <typename T>
void check(int rows, int pos, int blocks) {
  HostModel m = make_model<T>(rows);
  DeviceModel<T> d = upload_model<T>(m);
  Step<T> s(rows);
  std::vector<int> ids(rows);
  for (int r = 0; r < rows; ++r) ids[r] = (37 * r + 11 * pos + 5) % V;
  CK(cudaMemcpy(s.ids, ids.data(), rows * sizeof(int), cudaMemcpyHostToDevice));
  CK(cudaMemcpy(s.pos, &pos, sizeof(int), cudaMemcpyHostToDevice));
  const std::size_t row_elems = 2 * C;
  auto new_rows = [&] {  // every layer's cache rows at pos
    std::vector<float> v;
    for (int l = 0; l < L; ++l)
      for (int r = 0; r < rows; ++r) {
        const auto part = download<T>(d.cache[l] + (static_cast<std::size_t>(r) * kMaxTokens + pos) * row_elems, row_elems);
        v.insert(v.end(), part.begin(), part.end());
      }
    return v;
  };
  launch_chain<T>(d, s);
  CK(cudaStreamSynchronize(g_stream));
  const std::vector<float> x_chain = download<float>(s.x, rows * C), kv_chain = new_rows();
  CK(cudaMemset(s.x, 0, rows * C * sizeof(float)));
  for (int l = 0; l < L; ++l)  // every sequence's row at pos: the persistent kernel must write them all again
    for (int r = 0; r < rows; ++r)
      CK(cudaMemset(d.cache[l] + (static_cast<std::size_t>(r) * kMaxTokens + pos) * row_elems, 0, row_elems * sizeof(T)));
  launch_persistent<T>(d, s, blocks);
  CK(cudaStreamSynchronize(g_stream));
  const std::vector<float> x_pers = download<float>(s.x, rows * C), kv_pers = new_rows();
  const bool same = std::memcmp(x_chain.data(), x_pers.data(), x_chain.size() * sizeof(float)) == 0 &&
                    std::memcmp(kv_chain.data(), kv_pers.data(), kv_chain.size() * sizeof(float)) == 0;
  const std::vector<double> ref = reference_step<T>(m, ids, pos);
  const double err = rel_norm(x_pers, ref);
  const double tol = std::is_same_v<T, float> ? 1e-4 : std::is_same_v<T, __half> ? 5e-3 : 3e-2;
  const bool ok = same && err <= tol;
  g_failures += !ok;
  std::printf("check %-5s rows %d pos %3d: chain's bits %s, x rel-norm err vs double %.2e (tol %.0e)  %s\n",
              tname<T>(), rows, pos, same ? "yes" : "NO", err, tol, ok ? "ok" : "FAILED");
  // 5-8 rows in half / bf16: the tensor-core products, every product's and the MLP projection's alone (not the
  // chain's bits: their inputs are rounded to T first)
  double err_mma = -1, vs_chain = -1;
  bool ok_mma = true;
  if (!std::is_same_v<T, float> && rows > 4) {
    for (const unsigned mask : {K::kDecodeMmaAll, K::kDecodeMproj}) {
      CK(cudaMemset(s.x, 0, rows * C * sizeof(float)));
      LabOptions o;
      o.mma = static_cast<int>(mask);
      launch_persistent<T>(d, s, blocks, o);
      CK(cudaStreamSynchronize(g_stream));
      const std::vector<float> x_mma = download<float>(s.x, rows * C);
      const double e = rel_norm(x_mma, ref), v = rel_norm(x_mma, x_chain);
      const bool ok_this = e <= tol && v > 0;  // > 0: the tensor-core path ran
      g_failures += !ok_this;
      ok_mma = ok_mma && ok_this;
      if (mask == K::kDecodeMmaAll) err_mma = e, vs_chain = v;
      std::printf("check %-5s rows %d pos %3d: tensor cores (%s): x rel-norm err vs double %.2e (tol %.0e), vs the "
                  "chain %.2e  %s\n",
                  tname<T>(), rows, pos, mask == K::kDecodeMmaAll ? "all products" : "MLP projection", e, tol, v,
                  ok_this ? "ok" : "FAILED");
    }
  }
  if (g_json)
    std::fprintf(g_json,
                 "{\"lab\":\"decode_persistent\",\"kind\":\"check\",\"gpu\":\"%s\",\"T\":\"%s\",\"rows\":%d,\"pos\":%d,"
                 "\"same_bits_as_chain\":%s,\"x_rel_err\":%s,\"ok\":%s,\"mma_x_rel_err\":%s,"
                 "\"mma_vs_chain\":%s,\"mma_ok\":%s}\n",
                 g_gpu.c_str(), tname<T>(), rows, pos, same ? "true" : "false", json_number(err).c_str(),
                 ok ? "true" : "false", json_number(err_mma).c_str(), json_number(vs_chain).c_str(),
                 ok_mma ? "true" : "false");
  free_model(d);
}

template <typename T>
void timing(int rows, int pos, int blocks) {
  HostModel m = make_model<T>(rows);
  DeviceModel<T> d = upload_model<T>(m);
  Step<T> s(rows);
  std::vector<int> ids(rows, 7);
  CK(cudaMemcpy(s.ids, ids.data(), rows * sizeof(int), cudaMemcpyHostToDevice));
  CK(cudaMemcpy(s.pos, &pos, sizeof(int), cudaMemcpyHostToDevice));
  const double chain = time_graph_best(g_stream, [&](int) { launch_chain<T>(d, s); return true; }, g_iters);
  // The persistent kernel as the engine runs it; at 5-8 rows in half / bf16 also the tensor-core products (the
  // engine's option decode_mma, off by default).
  struct Variant {
    const char* name;
    LabOptions o;
  };
  std::vector<Variant> variants;
  auto add = [&](const char* name, auto set) {
    Variant v{name, {}};
    set(v.o);
    variants.push_back(v);
  };
  add("persistent", [](LabOptions&) {});
  if (!std::is_same_v<T, float> && rows > 4) {
    add("tensor cores", [](LabOptions& o) { o.mma = static_cast<int>(K::kDecodeMmaAll); });
    add("tensor cores, MLP projection only", [](LabOptions& o) { o.mma = static_cast<int>(K::kDecodeMproj); });
  }
  std::printf("time  %-5s rows %d pos %3d (%d blocks): chain (61 kernels) %7.1f us / step\n", tname<T>(), rows, pos,
              blocks, chain);
  for (const Variant& v : variants) {
    const double us = time_graph_best(g_stream, [&](int) { launch_persistent<T>(d, s, blocks, v.o); return true; }, g_iters);
    std::printf("time  %-5s rows %d pos %3d: %-50s %7.1f us / step\n", tname<T>(), rows, pos, v.name, us);
    if (g_json)
      std::fprintf(g_json,
                   "{\"lab\":\"decode_persistent\",\"kind\":\"time\",\"gpu\":\"%s\",\"T\":\"%s\",\"rows\":%d,\"pos\":%d,"
                   "\"layers\":%d,\"chain_us\":%.2f,\"variant\":\"%s\",\"us\":%.2f,\"blocks\":%d}\n",
                   g_gpu.c_str(), tname<T>(), rows, pos, L, chain, v.name, us, blocks);
  }
  // One step's phases from block 0's stamps: per phase (mean over layers), the slowest block's work from the
  // releasing barrier to its arrival, and the whole phase up to the next release.
  const int barriers = 5 * L - 1;
  unsigned long long *trace = nullptr, *done = nullptr;
  CK(cudaMalloc(&trace, (barriers + 1) * sizeof(unsigned long long)));
  CK(cudaMalloc(&done, static_cast<std::size_t>(barriers) * blocks * sizeof(unsigned long long)));
  for (const Variant& tv : variants) {  // the engine's path, and at 5-8 rows in half / bf16 the tensor cores
    LabOptions lab = tv.o;
    lab.trace = trace;
    lab.trace_done = done;
    for (int rep = 0; rep < 3; ++rep) launch_persistent<T>(d, s, blocks, lab);  // the last one is read
    CK(cudaStreamSynchronize(g_stream));
    std::vector<unsigned long long> t(barriers + 1), dn(static_cast<std::size_t>(barriers) * blocks);
    CK(cudaMemcpy(t.data(), trace, t.size() * sizeof(unsigned long long), cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(dn.data(), done, dn.size() * sizeof(unsigned long long), cudaMemcpyDeviceToHost));
    double work[5] = {}, total[5] = {};
    int n[5] = {};
    for (int b = 0; b < barriers; ++b) {
      unsigned long long last = 0;
      for (int k = 0; k < blocks; ++k) last = std::max(last, dn[static_cast<std::size_t>(b) * blocks + k]);
      const int ph = b % 5;
      work[ph] += 1e-3 * static_cast<double>(last - t[b]);
      total[ph] += 1e-3 * static_cast<double>(t[b + 1] - t[b]);
      ++n[ph];
    }
    std::printf("phases %-5s rows %d pos %3d, %s (us, mean over layers; work = slowest block to its arrival):\n",
                tname<T>(), rows, pos, tv.name);
    const char* names[5] = {"A LN1+QKV", "B attention", "C proj", "D LN2+FC", "E mproj"};
    for (int ph = 0; ph < 5; ++ph)
      std::printf("  %-12s work %5.2f  phase %5.2f\n", names[ph], work[ph] / n[ph], total[ph] / n[ph]);
    std::printf("  step (first stamp to last release) %.1f us\n", 1e-3 * static_cast<double>(t[barriers] - t[0]));
  }
  CK(cudaFree(trace));
  CK(cudaFree(done));
  free_model(d);
}

template <typename T>
void run_checks() {
  const int blocks = K::decode_persistent_blocks<T>(g_sms, C, F, kMaxTokens);
  if (blocks == 0) {
    std::printf("%s: the persistent kernel does not fit an SM\n", tname<T>());
    ++g_failures;
    return;
  }
  for (int rows : {1, 3, 4, 6, 8})
    for (int pos : {0, 5, 127}) check<T>(rows, pos, blocks);
}

}  // namespace

int main(int argc, char** argv) {
  bool timing_only = false;  // --timing-only: no checks (an A/B's rounds; the full run checks)
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--timing-only")) {
      timing_only = true;
      continue;
    }
    const int c = common_option(argc, argv, i, g_json, g_iters);
    if (c < 0) return 2;
    if (c == 0) {
      std::fprintf(stderr, "usage: %s [--iters N] [--json FILE] [--timing-only]\n", argv[0]);
      return 2;
    }
  }
  cudaDeviceProp prop;
  CK(cudaGetDeviceProperties(&prop, 0));
  g_gpu = prop.name;
  g_sms = prop.multiProcessorCount;
  CK(cudaStreamCreate(&g_stream));
  std::printf("decode_persistent_lab on %s (%d SMs)\n", prop.name, g_sms);
  if (!timing_only) {
    run_checks<__half>();
    run_checks<__nv_bfloat16>();
    run_checks<float>();
  }
  const int blocks = K::decode_persistent_blocks<__half>(g_sms, C, F, kMaxTokens);
  for (int rows : {1, 4, 8}) timing<__half>(rows, 127, blocks);
  timing<__nv_bfloat16>(8, 127, K::decode_persistent_blocks<__nv_bfloat16>(g_sms, C, F, kMaxTokens));
  std::printf("%s\n", g_failures ? "SOME CHECKS FAILED" : "all checks passed");
  return g_failures ? 1 : 0;
}
