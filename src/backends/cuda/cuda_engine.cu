// The CUDA engine: weights on the device, cuBLASLt GEMMs, fused kernels (kernels.cuh), CUDA graphs per shape.
#include "backends/cuda/cuda_engine.h"

#include <cublasLt.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <set>
#include <tuple>

#include "backends/cuda/kernels.cuh"
#include "common/error.h"

namespace gptbench::cuda_engine {

namespace {

void check_cuda(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw Error(std::string("cuda: ") + what + ": " + cudaGetErrorString(e));
}
void check_lt(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS) throw Error(std::string("cublasLt: ") + what + ": status " + std::to_string(s));
}
#define CU(call) check_cuda((call), #call)
#define LT(call) check_lt((call), #call)

template <typename T>
constexpr cudaDataType_t cuda_type();
template <>
constexpr cudaDataType_t cuda_type<float>() { return CUDA_R_32F; }
template <>
constexpr cudaDataType_t cuda_type<__half>() { return CUDA_R_16F; }
template <>
constexpr cudaDataType_t cuda_type<__nv_bfloat16>() { return CUDA_R_16BF; }

// Device memory with a running total, so memory() can report what the engine holds at its peak.
struct DeviceAllocator {
  std::int64_t current = 0, peak = 0;
  void* alloc(std::size_t bytes) {
    void* p = nullptr;
    if (bytes == 0) return nullptr;
    CU(cudaMalloc(&p, bytes));
    current += static_cast<std::int64_t>(bytes);
    peak = std::max(peak, current);
    sizes[p] = bytes;
    return p;
  }
  void release(void* p) {
    if (!p) return;
    auto it = sizes.find(p);
    if (it != sizes.end()) {
      current -= static_cast<std::int64_t>(it->second);
      sizes.erase(it);
    }
    cudaFree(p);
  }
  std::map<void*, std::size_t> sizes;
};

// cuBLASLt: y[N, out] = x[N, in] · W (+ bias, GELU). Row-major activations are column-major [out, N] /
// [in, N] to cuBLASLt; a Conv1D weight [in, out] row-major is column-major [out, in] (op N); the tied LM
// head wte [V, C] row-major is column-major [C, V] (op T).
enum class Epilogue { kNone, kBias, kGeluBias };

class Gemm {
 public:
  Gemm(cublasComputeType_t compute, cudaDataType_t ab_type, std::size_t workspace_bytes, DeviceAllocator& alloc,
       bool autotune)
      : compute_(compute), ab_type_(ab_type), workspace_bytes_(workspace_bytes), alloc_(alloc), autotune_(autotune) {
    LT(cublasLtCreate(&handle_));
    workspace_ = alloc_.alloc(workspace_bytes_);
  }
  ~Gemm() {
    for (auto& [k, p] : plans_) {
      cublasLtMatmulDescDestroy(p.desc);
      cublasLtMatrixLayoutDestroy(p.a);
      cublasLtMatrixLayoutDestroy(p.b);
      cublasLtMatrixLayoutDestroy(p.c);
    }
    alloc_.release(workspace_);
    cublasLtDestroy(handle_);
  }

  void run(cudaStream_t stream, const void* W, bool transW, const void* x, void* y, int out, int rows, int in,
           const void* bias, Epilogue epi) {
    bool fresh = false;
    Plan& p = plan(out, rows, in, transW, epi, fresh);
    if (epi != Epilogue::kNone)
      LT(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)));
    const float alpha = 1.f, beta = 0.f;
    if (fresh && autotune_ && p.n_candidates > 1) tune(p, stream, W, x, y);
    LT(cublasLtMatmul(handle_, p.desc, &alpha, W, p.a, x, p.b, &beta, y, p.c, y, p.c, &p.algo, workspace_,
                      workspace_bytes_, stream));
  }

 private:
  struct Plan {
    cublasLtMatmulDesc_t desc = nullptr;
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
    cublasLtMatmulAlgo_t algo{};
    static constexpr int kMaxCandidates = 20;
    cublasLtMatmulAlgo_t candidates[kMaxCandidates] = {};  // (a fixed array: nvcc 13.0's front end crashed on a vector)
    int n_candidates = 0;
  };

  // Runs each candidate a few times on the real operands (outside any graph capture: plans are made by the
  // eager first run of a shape) and keeps the fastest. Writing y repeatedly is harmless: the call that
  // follows writes it again.
  void tune(Plan& p, cudaStream_t stream, const void* W, const void* x, void* y) {
    cudaEvent_t e0, e1;
    CU(cudaEventCreate(&e0));
    CU(cudaEventCreate(&e1));
    const float alpha = 1.f, beta = 0.f;
    float best = 1e30f;
    for (int c = 0; c < p.n_candidates; ++c) {
      const cublasLtMatmulAlgo_t algo = p.candidates[c];
      auto call = [&] {
        return cublasLtMatmul(handle_, p.desc, &alpha, W, p.a, x, p.b, &beta, y, p.c, y, p.c, &algo, workspace_,
                              workspace_bytes_, stream);
      };
      if (call() != CUBLAS_STATUS_SUCCESS) continue;
      CU(cudaEventRecord(e0, stream));
      bool ok = true;
      for (int i = 0; i < 5 && ok; ++i) ok = call() == CUBLAS_STATUS_SUCCESS;
      CU(cudaEventRecord(e1, stream));
      CU(cudaEventSynchronize(e1));
      float ms = 0;
      CU(cudaEventElapsedTime(&ms, e0, e1));
      if (ok && ms < best) {
        best = ms;
        p.algo = algo;
      }
    }
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
  }

  Plan& plan(int out, int rows, int in, bool transW, Epilogue epi, bool& fresh) {
    auto key = std::make_tuple(out, rows, in, transW, static_cast<int>(epi));
    auto it = plans_.find(key);
    fresh = it == plans_.end();
    if (!fresh) return it->second;
    Plan p;
    LT(cublasLtMatmulDescCreate(&p.desc, compute_, CUDA_R_32F));
    cublasOperation_t ta = transW ? CUBLAS_OP_T : CUBLAS_OP_N, tb = CUBLAS_OP_N;
    LT(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)));
    LT(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)));
    cublasLtEpilogue_t e = epi == Epilogue::kGeluBias ? CUBLASLT_EPILOGUE_GELU_BIAS
                           : epi == Epilogue::kBias   ? CUBLASLT_EPILOGUE_BIAS
                                                      : CUBLASLT_EPILOGUE_DEFAULT;
    LT(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &e, sizeof(e)));
    if (transW) {
      LT(cublasLtMatrixLayoutCreate(&p.a, ab_type_, in, out, in));
    } else {
      LT(cublasLtMatrixLayoutCreate(&p.a, ab_type_, out, in, out));
    }
    LT(cublasLtMatrixLayoutCreate(&p.b, ab_type_, in, rows, in));
    LT(cublasLtMatrixLayoutCreate(&p.c, ab_type_, out, rows, out));
    cublasLtMatmulPreference_t pref;
    LT(cublasLtMatmulPreferenceCreate(&pref));
    LT(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace_bytes_,
                                            sizeof(workspace_bytes_)));
    constexpr int kMaxCandidates = Plan::kMaxCandidates;
    cublasLtMatmulHeuristicResult_t results[kMaxCandidates] = {};
    int found = 0;
    LT(cublasLtMatmulAlgoGetHeuristic(handle_, p.desc, p.a, p.b, p.c, p.c, pref, autotune_ ? 16 : 1, results, &found));
    cublasLtMatmulPreferenceDestroy(pref);
    if (found == 0)
      throw Error("cublasLt: no algorithm for a " + std::to_string(rows) + "x" + std::to_string(in) + " by " +
                  std::to_string(in) + "x" + std::to_string(out) + " product");
    p.algo = results[0].algo;
    for (int i = 0; i < found; ++i)
      if (results[i].state == CUBLAS_STATUS_SUCCESS) p.candidates[p.n_candidates++] = results[i].algo;
    // Small products leave SMs idle; split-K variants of the first pick are tried too (where cuBLASLt accepts
    // them for this layout and epilogue).
    if (autotune_) {
      for (int split : {2, 4, 8, 16}) {
        if (p.n_candidates >= kMaxCandidates) break;
        cublasLtMatmulAlgo_t a = results[0].algo;
        std::int32_t sk = split;
        std::uint32_t scheme = CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE;
        if (cublasLtMatmulAlgoConfigSetAttribute(&a, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, &sk, sizeof(sk)) !=
                CUBLAS_STATUS_SUCCESS ||
            cublasLtMatmulAlgoConfigSetAttribute(&a, CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME, &scheme, sizeof(scheme)) !=
                CUBLAS_STATUS_SUCCESS)
          continue;
        cublasLtMatmulHeuristicResult_t check{};
        if (cublasLtMatmulAlgoCheck(handle_, p.desc, p.a, p.b, p.c, p.c, &a, &check) == CUBLAS_STATUS_SUCCESS &&
            check.workspaceSize <= workspace_bytes_)
          p.candidates[p.n_candidates++] = a;
      }
    }
    return plans_.emplace(key, p).first->second;
  }

  cublasLtHandle_t handle_ = nullptr;
  cublasComputeType_t compute_;
  cudaDataType_t ab_type_;
  std::size_t workspace_bytes_;
  void* workspace_ = nullptr;
  DeviceAllocator& alloc_;
  bool autotune_;
  std::map<std::tuple<int, int, int, bool, int>, Plan> plans_;
};

template <typename T>
struct DeviceLayer {
  float *ln1_w, *ln1_b, *ln2_w, *ln2_b;
  T *qkv_w, *qkv_b, *proj_w, *proj_b, *fc_w, *fc_b, *mproj_w, *mproj_b;
};

enum class Mode { kPrefill, kDecodePrefill, kDecodeStep };
enum class Tail { kSummary, kNll };

// Activation buffers for up to `rows` token rows. Graphs captured on a workspace point at its buffers, so
// they die with it (and when it grows).
template <typename T>
struct Workspace {
  DeviceAllocator* alloc = nullptr;
  int rows = 0;
  float* x = nullptr;  // residual stream
  T *h = nullptr, *qkv = nullptr, *att = nullptr, *y = nullptr, *fc = nullptr, *h_last = nullptr, *logits = nullptr;
  int *ids = nullptr, *targets = nullptr, *top1 = nullptr, *pos = nullptr;
  double *row_sum = nullptr, *nll = nullptr;
  float* logits_f = nullptr;  // float copy for kLogits calls, allocated on first use
  std::int64_t logits_f_elems = 0;
  // Pinned host mirrors, so copies are asynchronous in the stream.
  int *h_ids = nullptr, *h_targets = nullptr, *h_top1 = nullptr, *h_pos = nullptr;
  double *h_row_sum = nullptr, *h_nll = nullptr;
  std::map<std::tuple<int, int, int, int>, cudaGraphExec_t> graphs;

  void release() {
    for (auto& [k, g] : graphs) cudaGraphExecDestroy(g);
    graphs.clear();
    for (void* p : {static_cast<void*>(x), static_cast<void*>(h), static_cast<void*>(qkv), static_cast<void*>(att),
                    static_cast<void*>(y), static_cast<void*>(fc), static_cast<void*>(h_last),
                    static_cast<void*>(logits), static_cast<void*>(ids), static_cast<void*>(targets),
                    static_cast<void*>(top1), static_cast<void*>(pos), static_cast<void*>(row_sum),
                    static_cast<void*>(nll), static_cast<void*>(logits_f)})
      if (p) alloc->release(p);
    for (void* p : {static_cast<void*>(h_ids), static_cast<void*>(h_targets), static_cast<void*>(h_top1),
                    static_cast<void*>(h_pos), static_cast<void*>(h_row_sum), static_cast<void*>(h_nll)})
      if (p) cudaFreeHost(p);
    x = nullptr;
    h = qkv = att = y = fc = h_last = logits = nullptr;
    ids = targets = top1 = pos = nullptr;
    row_sum = nll = nullptr;
    logits_f = nullptr;
    logits_f_elems = 0;
    h_ids = h_targets = h_top1 = h_pos = nullptr;
    h_row_sum = h_nll = nullptr;
    rows = 0;
  }
  ~Workspace() { release(); }

  void ensure(int need, int C, int I, int Vp) {
    if (need <= rows) return;
    release();
    rows = need;
    auto n = static_cast<std::size_t>(need);
    x = static_cast<float*>(alloc->alloc(n * C * sizeof(float)));
    h = static_cast<T*>(alloc->alloc(n * C * sizeof(T)));
    qkv = static_cast<T*>(alloc->alloc(n * 3 * C * sizeof(T)));
    att = static_cast<T*>(alloc->alloc(n * C * sizeof(T)));
    y = static_cast<T*>(alloc->alloc(n * C * sizeof(T)));
    fc = static_cast<T*>(alloc->alloc(n * I * sizeof(T)));
    h_last = static_cast<T*>(alloc->alloc(n * C * sizeof(T)));
    logits = static_cast<T*>(alloc->alloc(n * static_cast<std::size_t>(Vp) * sizeof(T)));
    ids = static_cast<int*>(alloc->alloc(n * sizeof(int)));
    targets = static_cast<int*>(alloc->alloc(n * sizeof(int)));
    top1 = static_cast<int*>(alloc->alloc(n * sizeof(int)));
    pos = static_cast<int*>(alloc->alloc(sizeof(int)));
    row_sum = static_cast<double*>(alloc->alloc(n * sizeof(double)));
    nll = static_cast<double*>(alloc->alloc(n * sizeof(double)));
    CU(cudaMallocHost(&h_ids, n * sizeof(int)));
    CU(cudaMallocHost(&h_targets, n * sizeof(int)));
    CU(cudaMallocHost(&h_top1, n * sizeof(int)));
    CU(cudaMallocHost(&h_pos, sizeof(int)));
    CU(cudaMallocHost(&h_row_sum, n * sizeof(double)));
    CU(cudaMallocHost(&h_nll, n * sizeof(double)));
  }
};

template <typename T>
class EngineImpl;

template <typename T>
class DecodeStateImpl final : public DecodeState {
 public:
  DecodeStateImpl(EngineImpl<T>& engine, int batch, int max_tokens);
  ~DecodeStateImpl() override;
  void prefill(const std::int32_t* ids, int prompt_len, std::vector<float>* logits, CallOutput& out) override;
  void step(const std::int32_t* ids, std::vector<float>* logits, CallOutput& out) override;
  int position() const override { return position_; }
  int batch() const override { return batch_; }

 private:
  EngineImpl<T>& engine_;
  int batch_, max_tokens_, position_ = 0;
  std::vector<T*> cache_;  // per layer [batch][max_tokens][2C]
  Workspace<T> ws_prefill_, ws_step_;
};

template <typename T>
class EngineImpl final : public Engine {
 public:
  EngineImpl(const Gpt2Config& config, const Gpt2Weights& weights, const EngineOptions& options)
      : cfg_(config), opt_(options) {
    C_ = config.n_embd;
    H_ = config.n_head;
    D_ = config.head_dim();
    I_ = config.inner_dim();
    V_ = config.vocab_size;
    Vp_ = padded_vocab(V_);
    L_ = config.n_layer;
    P_ = config.n_positions;
    if (D_ != 32 && D_ != 64)
      throw Error("cuda engine: head dimension " + std::to_string(D_) + " is not supported (32 or 64)");
    if (config.activation_function == "gelu") opt_.gelu_epilogue = false;  // erf form: our own kernel
    gelu_tanh_ = config.activation_function != "gelu";
    CU(cudaSetDevice(opt_.device));
    CU(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    CU(cudaEventCreate(&ev_start_));
    CU(cudaEventCreate(&ev_stop_));
    cublasComputeType_t compute =
        options.precision == Precision::kTf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
    gemm_ = std::make_unique<Gemm>(compute, cuda_type<T>(), 32u << 20, alloc_, options.gemm_autotune);
    if (opt_.profile) opt_.use_graphs = false;  // events between kernels: eager launches only
    upload(weights);
    {
      auto slabs = [](int k) { return (k + kernels::kSkinnyChunk - 1) / kernels::kSkinnyChunk; };
      const std::int64_t most = std::max({static_cast<std::int64_t>(slabs(C_)) * 3 * C_,
                                          static_cast<std::int64_t>(slabs(C_)) * I_,
                                          static_cast<std::int64_t>(slabs(I_)) * C_});
      skinny_partial_ = static_cast<float*>(alloc_.alloc(most * kernels::kSkinnyRows * sizeof(float)));
      owned_.push_back(skinny_partial_);
    }
    cudaDeviceProp prop{};
    CU(cudaGetDeviceProperties(&prop, opt_.device));
    device_name_ = prop.name;
    sm_count_ = prop.multiProcessorCount;
    ws_.alloc = &alloc_;
  }

  ~EngineImpl() override {
    if (opt_.profile && !profile_ms_.empty()) {
      std::fprintf(stderr, "profile (%s): kernel, calls, total ms, mean us\n", precision_name(opt_.precision));
      for (auto it = profile_ms_.begin(); it != profile_ms_.end(); ++it) {
        const int calls = profile_calls_[it->first];
        std::fprintf(stderr, "  %-16s %8d %10.3f %10.2f\n", it->first.c_str(), calls, it->second,
                     1e3 * it->second / calls);
      }
    }
    for (cudaEvent_t e : mark_events_) cudaEventDestroy(e);
    ws_.release();
    for (void* p : owned_) alloc_.release(p);
    gemm_.reset();
    cudaEventDestroy(ev_start_);
    cudaEventDestroy(ev_stop_);
    cudaStreamDestroy(stream_);
  }

  void prefill(const std::int32_t* ids, int batch, int seq, std::vector<float>* logits, CallOutput& out) override {
    check_shape(batch, seq);
    const int rows = batch * seq;
    ws_.ensure(rows, C_, I_, Vp_);
    check_ids(ids, rows);
    std::memcpy(ws_.h_ids, ids, rows * sizeof(int));
    CU(cudaMemcpyAsync(ws_.ids, ws_.h_ids, rows * sizeof(int), cudaMemcpyHostToDevice, stream_));
    out.gpu_ms = launch(ws_, Mode::kPrefill, Tail::kSummary, batch, seq, nullptr, 0);
    finish_summary(ws_, rows, logits, out);
  }

  void score(const std::int32_t* ids, const std::int32_t* targets, int batch, int seq, std::vector<double>& nll,
             double* gpu_ms) override {
    check_shape(batch, seq);
    const int rows = batch * seq;
    ws_.ensure(rows, C_, I_, Vp_);
    check_ids(ids, rows);
    for (int i = 0; i < rows; ++i)
      if (targets[i] >= V_) throw Error("score: target id " + std::to_string(targets[i]) + " is outside the vocabulary");
    std::memcpy(ws_.h_ids, ids, rows * sizeof(int));
    std::memcpy(ws_.h_targets, targets, rows * sizeof(int));
    CU(cudaMemcpyAsync(ws_.ids, ws_.h_ids, rows * sizeof(int), cudaMemcpyHostToDevice, stream_));
    CU(cudaMemcpyAsync(ws_.targets, ws_.h_targets, rows * sizeof(int), cudaMemcpyHostToDevice, stream_));
    const double ms = launch(ws_, Mode::kPrefill, Tail::kNll, batch, seq, nullptr, 0);
    CU(cudaMemcpyAsync(ws_.h_nll, ws_.nll, rows * sizeof(double), cudaMemcpyDeviceToHost, stream_));
    CU(cudaStreamSynchronize(stream_));
    nll.assign(ws_.h_nll, ws_.h_nll + rows);
    if (gpu_ms) *gpu_ms = ms;
  }

  std::unique_ptr<DecodeState> start_decode(int batch, int max_tokens) override {
    if (batch < 1 || max_tokens < 1) throw Error("decode: batch and max_tokens must be positive");
    if (max_tokens > P_)
      throw Error("decode: max_tokens " + std::to_string(max_tokens) + " exceeds n_positions " + std::to_string(P_));
    return std::make_unique<DecodeStateImpl<T>>(*this, batch, max_tokens);
  }

  std::int64_t device_peak_bytes() const override { return alloc_.peak; }
  std::string device_name() const override { return device_name_; }
  int vocab() const override { return V_; }
  std::string describe_kernels() const override {
    std::string s = "cuBLASLt GEMMs (";
    s += opt_.precision == Precision::kTf32 ? "compute 32F_FAST_TF32" : "compute 32F";
    s += std::string(", ") + (opt_.gelu_epilogue ? "GELU_BIAS epilogue" : "BIAS epilogue + GELU kernel") + ")";
    if (opt_.skinny_kernels) s += "; split-K kernels for <= 8-row products (decode)";
    s += "; fused residual+LayerNorm; causal attention: ";
    s += std::is_same_v<T, float> ? "online-softmax CUDA-core kernel" : "online-softmax WMMA tensor-core kernel";
    s += "; decode attention over a KV cache; ";
    s += opt_.use_graphs ? "CUDA graphs per shape" : "no graphs";
    return s;
  }

  // ---- used by DecodeStateImpl ----
  void check_ids(const std::int32_t* ids, int n) const {
    for (int i = 0; i < n; ++i)
      if (ids[i] < 0 || ids[i] >= V_) throw Error("token id " + std::to_string(ids[i]) + " is outside the vocabulary");
  }
  void check_shape(int batch, int seq) const {
    if (batch < 1 || seq < 1) throw Error("prefill: batch and seq must be positive");
    if (seq > P_) throw Error("prefill: seq " + std::to_string(seq) + " exceeds n_positions " + std::to_string(P_));
  }

  // Runs the forward of `mode` on ws through its graph for this shape (capturing it on first use).
  double launch(Workspace<T>& ws, Mode mode, Tail tail, int batch, int seq, std::vector<T*>* cache, int max_tokens) {
    auto body = [&] { forward(ws, mode, tail, batch, seq, cache, max_tokens); };
    if (!opt_.use_graphs) {
      CU(cudaEventRecord(ev_start_, stream_));
      body();
      CU(cudaEventRecord(ev_stop_, stream_));
    } else {
      auto key = std::make_tuple(static_cast<int>(mode), static_cast<int>(tail), batch, seq);
      auto it = ws.graphs.find(key);
      if (it == ws.graphs.end()) {
        body();  // eager once: creates the cuBLASLt plans outside capture
        CU(cudaStreamSynchronize(stream_));
        cudaGraph_t graph;
        CU(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal));
        body();
        CU(cudaStreamEndCapture(stream_, &graph));
        cudaGraphExec_t exec;
        CU(cudaGraphInstantiate(&exec, graph, 0));
        cudaGraphDestroy(graph);
        it = ws.graphs.emplace(key, exec).first;
      }
      CU(cudaEventRecord(ev_start_, stream_));
      CU(cudaGraphLaunch(it->second, stream_));
      CU(cudaEventRecord(ev_stop_, stream_));
    }
    CU(cudaEventSynchronize(ev_stop_));
    CU(cudaGetLastError());
    float ms = 0.f;
    CU(cudaEventElapsedTime(&ms, ev_start_, ev_stop_));
    return ms;
  }

  // Copies top1 / row sums (and logits when asked) of `rows` output rows back; blocking.
  void finish_summary(Workspace<T>& ws, int rows, std::vector<float>* logits, CallOutput& out) {
    CU(cudaMemcpyAsync(ws.h_top1, ws.top1, rows * sizeof(int), cudaMemcpyDeviceToHost, stream_));
    CU(cudaMemcpyAsync(ws.h_row_sum, ws.row_sum, rows * sizeof(double), cudaMemcpyDeviceToHost, stream_));
    if (logits) {
      const std::int64_t n = static_cast<std::int64_t>(rows) * V_;
      if (ws.logits_f_elems < n) {
        if (ws.logits_f) alloc_.release(ws.logits_f);
        ws.logits_f = static_cast<float*>(alloc_.alloc(n * sizeof(float)));
        ws.logits_f_elems = n;
      }
      kernels::logits_to_float<T><<<rows, 256, 0, stream_>>>(ws.logits, V_, Vp_, ws.logits_f);
      CU(cudaGetLastError());
      logits->resize(static_cast<std::size_t>(n));
      CU(cudaMemcpyAsync(logits->data(), ws.logits_f, n * sizeof(float), cudaMemcpyDeviceToHost, stream_));
    }
    CU(cudaStreamSynchronize(stream_));
    out.top1.assign(ws.h_top1, ws.h_top1 + rows);
    out.row_sums.assign(ws.h_row_sum, ws.h_row_sum + rows);
  }

  cudaStream_t stream() const { return stream_; }
  DeviceAllocator& allocator() { return alloc_; }
  int C() const { return C_; }
  int I() const { return I_; }
  int Vp() const { return Vp_; }
  int L() const { return L_; }

 private:
  template <typename U>
  U* upload_tensor(const Tensor& t, std::int64_t padded_elems = 0) {
    const std::int64_t n = t.numel();
    const std::int64_t total = std::max(n, padded_elems);
    U* dst = static_cast<U*>(alloc_.alloc(total * sizeof(U)));
    owned_.push_back(dst);
    if (total > n) CU(cudaMemsetAsync(dst, 0, total * sizeof(U), stream_));
    if constexpr (std::is_same_v<U, float>) {
      CU(cudaMemcpyAsync(dst, t.ptr(), n * sizeof(float), cudaMemcpyHostToDevice, stream_));
    } else {
      CU(cudaMemcpyAsync(staging_, t.ptr(), n * sizeof(float), cudaMemcpyHostToDevice, stream_));
      const int blocks = static_cast<int>(std::min<std::int64_t>((n + 255) / 256, 4096));
      kernels::convert_from_float<U><<<blocks, 256, 0, stream_>>>(staging_, dst, n);
      CU(cudaGetLastError());
    }
    CU(cudaStreamSynchronize(stream_));  // staging is reused by the next tensor
    return dst;
  }

  void upload(const Gpt2Weights& w) {
    std::int64_t largest = 0;
    for_each_tensor(w, [&](const std::string&, const Tensor& t) { largest = std::max(largest, t.numel()); });
    staging_ = static_cast<float*>(alloc_.alloc(largest * sizeof(float)));
    // The LM head gets zero rows up to the padded vocabulary: the GEMM writes Vp columns, kernels read V.
    // Tied (GPT-2): one copy serves as both the token embedding and the LM head.
    lm_head_ = upload_tensor<T>(w.lm_head_matrix(), static_cast<std::int64_t>(Vp_) * C_);
    wte_ = w.lm_head.data.empty() ? lm_head_ : upload_tensor<T>(w.wte);
    wpe_ = upload_tensor<T>(w.wpe);
    for (const auto& l : w.layers) {
      DeviceLayer<T> d{};
      d.ln1_w = upload_tensor<float>(l.ln_1_weight);
      d.ln1_b = upload_tensor<float>(l.ln_1_bias);
      d.ln2_w = upload_tensor<float>(l.ln_2_weight);
      d.ln2_b = upload_tensor<float>(l.ln_2_bias);
      d.qkv_w = upload_tensor<T>(l.c_attn_weight);
      d.qkv_b = upload_tensor<T>(l.c_attn_bias);
      d.proj_w = upload_tensor<T>(l.attn_proj_weight);
      d.proj_b = upload_tensor<T>(l.attn_proj_bias);
      d.fc_w = upload_tensor<T>(l.c_fc_weight);
      d.fc_b = upload_tensor<T>(l.c_fc_bias);
      d.mproj_w = upload_tensor<T>(l.mlp_proj_weight);
      d.mproj_b = upload_tensor<T>(l.mlp_proj_bias);
      layers_.push_back(d);
    }
    lnf_w_ = upload_tensor<float>(w.ln_f_weight);
    lnf_b_ = upload_tensor<float>(w.ln_f_bias);
    alloc_.release(staging_);
    staging_ = nullptr;
  }

  float attn_scale_log2(int layer) const {
    float scale = cfg_.scale_attn_weights ? 1.f / std::sqrt(static_cast<float>(D_)) : 1.f;
    if (cfg_.scale_attn_by_inverse_layer_idx) scale /= static_cast<float>(layer + 1);
    return scale * 1.4426950408889634f;
  }

  void layernorm(float* x, const T* delta, const float* w, const float* b, T* out, int rows) {
    const int warps = 8;
    kernels::residual_layernorm<T><<<(rows + warps - 1) / warps, warps * 32, 0, stream_>>>(
        x, delta, w, b, out, rows, C_, static_cast<float>(cfg_.layer_norm_epsilon));
  }

  template <int D, int WARPS>
  void flash_wmma(const T* qkv, T* out, int batch, int seq, float sl2) {
    using Lay = kernels::FlashSmem<T, D, WARPS>;
    auto kernel = kernels::flash_attention_wmma<T, D, WARPS>;
    static bool configured = false;  // per instantiation
    if (!configured) {
      CU(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, Lay::bytes));
      configured = true;
    }
    dim3 grid((seq + Lay::kQ - 1) / Lay::kQ, batch * H_);
    kernel<<<grid, WARPS * 32, Lay::bytes, stream_>>>(qkv, out, seq, H_, 3 * C_, C_, sl2);
  }

  void attention_prefill(const T* qkv, T* out, int batch, int seq, float sl2) {
    if constexpr (std::is_same_v<T, float>) {
      dim3 grid((seq + 63) / 64, batch * H_);
      if (D_ == 64)
        kernels::flash_attention_simple<T, 64><<<grid, 64, 0, stream_>>>(qkv, out, seq, H_, 3 * C_, C_, sl2);
      else
        kernels::flash_attention_simple<T, 32><<<grid, 64, 0, stream_>>>(qkv, out, seq, H_, 3 * C_, C_, sl2);
    } else {
      // Few (batch, head, 64-query) tiles: 16-query blocks keep more SMs busy.
      // 4-warp blocks share each K/V tile load among 64 queries; measured on an H200 they beat 1-warp blocks
      // (16 queries) even when there are few tiles (B1 x S128: 0.81 vs 0.89 ms for the whole forward).
      const bool wide = opt_.attention_warps != 1;
      if (D_ == 64) {
        if (wide) flash_wmma<64, 4>(qkv, out, batch, seq, sl2);
        else flash_wmma<64, 1>(qkv, out, batch, seq, sl2);
      } else {
        if (wide) flash_wmma<32, 4>(qkv, out, batch, seq, sl2);
        else flash_wmma<32, 1>(qkv, out, batch, seq, sl2);
      }
    }
  }

  void attention_decode(const T* qkv, const T* cache, T* out, int batch, int max_tokens, const int* pos, float sl2) {
    dim3 grid(H_, batch);
    const std::size_t smem = static_cast<std::size_t>(max_tokens) * sizeof(float);
    if (D_ == 64) {
      auto k = kernels::decode_attention<T, 64>;
      if (smem > 48 * 1024) CU(cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
      k<<<grid, 128, smem, stream_>>>(qkv, cache, out, C_, max_tokens, pos, sl2);
    } else {
      auto k = kernels::decode_attention<T, 32>;
      if (smem > 48 * 1024) CU(cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
      k<<<grid, 128, smem, stream_>>>(qkv, cache, out, C_, max_tokens, pos, sl2);
    }
  }

  bool skinny(int rows, int out) const {
    return opt_.skinny_kernels && rows <= kernels::kSkinnyRows && out % (16 / static_cast<int>(sizeof(T))) == 0;
  }
  // The split-K slabs of x[rows, in] . W into skinny_partial_; returns the number of slabs.
  int skinny_partial(const T* W, const T* x, int out, int rows, int in) {
    constexpr int kVec = 16 / sizeof(T);
    const int slabs = (in + kernels::kSkinnyChunk - 1) / kernels::kSkinnyChunk;
    dim3 grid((out + 32 * kVec - 1) / (32 * kVec), slabs);
    kernels::skinny_gemm_partial<T><<<grid, 256, 0, stream_>>>(x, W, skinny_partial_, rows, in, out);
    return slabs;
  }
  // x += x_in . W + bias, then h = LN(x): a product whose output only feeds the residual stream.
  void linear_residual_layernorm(const T* W, const T* x_in, int rows, int in, const T* bias, Workspace<T>& ws,
                                 const float* ln_w, const float* ln_b) {
    if (skinny(rows, C_)) {
      const int slabs = skinny_partial(W, x_in, C_, rows, in);
      const int warps = 8;
      kernels::residual_layernorm_slabs<T><<<(rows + warps - 1) / warps, warps * 32, 0, stream_>>>(
          ws.x, skinny_partial_, slabs, bias, ln_w, ln_b, ws.h, rows, C_, static_cast<float>(cfg_.layer_norm_epsilon));
      return;
    }
    linear(W, x_in, ws.y, C_, rows, in, bias, false);
    layernorm(ws.x, ws.y, ln_w, ln_b, ws.h, rows);
  }

  // y[rows, out] = x[rows, in] . W + bias (+ GELU): cuBLASLt, or the split-K kernels for <= 8 rows.
  void linear(const T* W, const T* x, T* y, int out, int rows, int in, const T* bias, bool gelu) {
    if (skinny(rows, out)) {
      const int slabs = skinny_partial(W, x, out, rows, in);
      const int n = rows * out, blocks = (n + 255) / 256;
      if (!gelu) kernels::skinny_gemm_finish<T, 0><<<blocks, 256, 0, stream_>>>(skinny_partial_, slabs, bias, y, rows, out);
      else if (gelu_tanh_) kernels::skinny_gemm_finish<T, 1><<<blocks, 256, 0, stream_>>>(skinny_partial_, slabs, bias, y, rows, out);
      else kernels::skinny_gemm_finish<T, 2><<<blocks, 256, 0, stream_>>>(skinny_partial_, slabs, bias, y, rows, out);
      return;
    }
    if (!gelu) {
      gemm_->run(stream_, W, false, x, y, out, rows, in, bias, Epilogue::kBias);
    } else if (opt_.gelu_epilogue) {
      gemm_->run(stream_, W, false, x, y, out, rows, in, bias, Epilogue::kGeluBias);
    } else {
      gemm_->run(stream_, W, false, x, y, out, rows, in, bias, Epilogue::kBias);
      const std::int64_t n = static_cast<std::int64_t>(rows) * out;
      const int blocks = static_cast<int>(std::min<std::int64_t>((n + 255) / 256, 8192));
      if (gelu_tanh_) kernels::gelu_inplace<T, true><<<blocks, 256, 0, stream_>>>(y, n);
      else kernels::gelu_inplace<T, false><<<blocks, 256, 0, stream_>>>(y, n);
    }
  }

  void lm_head(const T* h, T* logits, int rows) {
    if (opt_.skinny_kernels && rows <= kernels::kSkinnyRows && C_ % (16 / sizeof(T)) == 0 &&
        static_cast<std::size_t>(rows) * C_ * sizeof(float) <= 48 * 1024) {
      kernels::skinny_lm_head<T><<<(Vp_ + 7) / 8, 256, rows * C_ * sizeof(float), stream_>>>(h, lm_head_, logits, rows,
                                                                                            C_, Vp_);
      return;
    }
    gemm_->run(stream_, lm_head_, true, h, logits, Vp_, rows, C_, nullptr, Epilogue::kNone);
  }

  // Profiling (options.profile, graphs off): an event after every kernel, summed per kernel name.
  void mark(const char* name) {
    if (!opt_.profile) return;
    cudaEvent_t e;
    CU(cudaEventCreate(&e));
    CU(cudaEventRecord(e, stream_));
    mark_names_.push_back(name);
    mark_events_.push_back(e);
  }
  void collect_marks(bool keep) {
    if (!opt_.profile || mark_events_.empty()) return;
    CU(cudaEventSynchronize(mark_events_.back()));
    for (std::size_t i = 1; keep && i < mark_events_.size(); ++i) {
      float ms = 0;
      CU(cudaEventElapsedTime(&ms, mark_events_[i - 1], mark_events_[i]));
      profile_ms_[mark_names_[i]] += ms;
      profile_calls_[mark_names_[i]] += 1;
    }
    for (cudaEvent_t e : mark_events_) cudaEventDestroy(e);
    mark_events_.clear();
    mark_names_.clear();
  }

  // The forward pass: no host synchronisation, no allocation; everything on stream_.
  void forward(Workspace<T>& ws, Mode mode, Tail tail, int batch, int seq, std::vector<T*>* cache, int max_tokens) {
    forward_kernels(ws, mode, tail, batch, seq, cache, max_tokens);
    // The first forward of a shape includes the GEMM autotuning: not part of the profile.
    const std::int64_t shape = (static_cast<std::int64_t>(mode) << 40) | (static_cast<std::int64_t>(batch) << 20) | seq;
    const bool first = profiled_shapes_.insert(shape).second;
    collect_marks(!first);
  }
  void forward_kernels(Workspace<T>& ws, Mode mode, Tail tail, int batch, int seq, std::vector<T*>* cache,
                       int max_tokens) {
    const int rows = batch * seq;
    mark("start");
    const int* pos = mode == Mode::kDecodeStep ? ws.pos : nullptr;
    kernels::embed<T><<<rows, 256, 0, stream_>>>(ws.ids, wte_, wpe_, ws.x, seq, C_, pos);
    mark("embed");
    layernorm(ws.x, nullptr, layers_[0].ln1_w, layers_[0].ln1_b, ws.h, rows);
    mark("layernorm");
    for (int l = 0; l < L_; ++l) {
      const DeviceLayer<T>& d = layers_[l];
      const float sl2 = attn_scale_log2(l);
      linear(d.qkv_w, ws.h, ws.qkv, 3 * C_, rows, C_, d.qkv_b, false);
      mark("gemm_qkv");
      if (cache) {
        kernels::append_kv<T><<<rows, 256, 0, stream_>>>(ws.qkv, (*cache)[l], seq, C_, max_tokens, pos);
        mark("append_kv");
      }
      if (mode == Mode::kDecodeStep) {
        attention_decode(ws.qkv, (*cache)[l], ws.att, batch, max_tokens, ws.pos, sl2);
      } else {
        attention_prefill(ws.qkv, ws.att, batch, seq, sl2);
      }
      mark("attention");
      linear_residual_layernorm(d.proj_w, ws.att, rows, C_, d.proj_b, ws, d.ln2_w, d.ln2_b);
      mark("attn_proj+ln");
      linear(d.fc_w, ws.h, ws.fc, I_, rows, C_, d.fc_b, true);
      mark("gemm_fc_gelu");
      const bool last = l + 1 == L_;
      linear_residual_layernorm(d.mproj_w, ws.fc, rows, I_, d.mproj_b, ws, last ? lnf_w_ : layers_[l + 1].ln1_w,
                                last ? lnf_b_ : layers_[l + 1].ln1_b);
      mark("mlp_proj+ln");
    }
    const T* head_in = ws.h;
    int head_rows = rows;
    if (mode == Mode::kDecodePrefill) {  // only the last position of each sequence needs logits
      kernels::gather_last<T><<<batch, 256, 0, stream_>>>(ws.h, ws.h_last, seq, C_);
      head_in = ws.h_last;
      head_rows = batch;
    }
    lm_head(head_in, ws.logits, head_rows);
    mark("gemm_lm_head");
    if (tail == Tail::kSummary) {
      kernels::row_summary<T><<<head_rows, 256, 0, stream_>>>(ws.logits, V_, Vp_, ws.top1, ws.row_sum);
      mark("row_summary");
    } else {
      kernels::row_nll<T><<<head_rows, 256, 0, stream_>>>(ws.logits, V_, Vp_, ws.targets, ws.nll);
      mark("row_nll");
    }
  }

  Gpt2Config cfg_;
  EngineOptions opt_;
  int C_, H_, D_, I_, V_, Vp_, L_, P_;
  bool gelu_tanh_ = true;
  int sm_count_ = 132;
  DeviceAllocator alloc_;
  std::vector<void*> owned_;
  cudaStream_t stream_ = nullptr;
  cudaEvent_t ev_start_ = nullptr, ev_stop_ = nullptr;
  std::unique_ptr<Gemm> gemm_;
  float* staging_ = nullptr;
  float* skinny_partial_ = nullptr;
  T *wte_ = nullptr, *wpe_ = nullptr, *lm_head_ = nullptr;
  float *lnf_w_ = nullptr, *lnf_b_ = nullptr;
  std::vector<DeviceLayer<T>> layers_;
  std::vector<std::string> mark_names_;
  std::vector<cudaEvent_t> mark_events_;
  std::map<std::string, double> profile_ms_;
  std::map<std::string, int> profile_calls_;
  std::set<std::int64_t> profiled_shapes_;
  Workspace<T> ws_;
  std::string device_name_;
};

template <typename T>
DecodeStateImpl<T>::DecodeStateImpl(EngineImpl<T>& engine, int batch, int max_tokens)
    : engine_(engine), batch_(batch), max_tokens_(max_tokens) {
  ws_prefill_.alloc = &engine_.allocator();
  ws_step_.alloc = &engine_.allocator();
  const std::size_t per_layer = static_cast<std::size_t>(batch) * max_tokens * 2 * engine_.C();
  for (int l = 0; l < engine_.L(); ++l)
    cache_.push_back(static_cast<T*>(engine_.allocator().alloc(per_layer * sizeof(T))));
  ws_step_.ensure(batch, engine_.C(), engine_.I(), engine_.Vp());
}

template <typename T>
DecodeStateImpl<T>::~DecodeStateImpl() {
  ws_prefill_.release();
  ws_step_.release();
  for (T* p : cache_) engine_.allocator().release(p);
}

template <typename T>
void DecodeStateImpl<T>::prefill(const std::int32_t* ids, int prompt_len, std::vector<float>* logits,
                                 CallOutput& out) {
  if (prompt_len < 1) throw Error("decode: the prompt is empty");
  if (prompt_len > max_tokens_)
    throw Error("decode: prompt of " + std::to_string(prompt_len) + " tokens exceeds max_tokens " +
                std::to_string(max_tokens_));
  const int rows = batch_ * prompt_len;
  engine_.check_ids(ids, rows);
  ws_prefill_.ensure(rows, engine_.C(), engine_.I(), engine_.Vp());
  std::memcpy(ws_prefill_.h_ids, ids, rows * sizeof(int));
  CU(cudaMemcpyAsync(ws_prefill_.ids, ws_prefill_.h_ids, rows * sizeof(int), cudaMemcpyHostToDevice,
                     engine_.stream()));
  out.gpu_ms = engine_.launch(ws_prefill_, Mode::kDecodePrefill, Tail::kSummary, batch_, prompt_len, &cache_,
                              max_tokens_);
  position_ = prompt_len;
  engine_.finish_summary(ws_prefill_, batch_, logits, out);
}

template <typename T>
void DecodeStateImpl<T>::step(const std::int32_t* ids, std::vector<float>* logits, CallOutput& out) {
  if (position_ == 0) throw Error("decode: step before prefill");
  if (position_ >= max_tokens_)
    throw Error("decode: the cache is full (" + std::to_string(max_tokens_) + " tokens)");
  engine_.check_ids(ids, batch_);
  std::memcpy(ws_step_.h_ids, ids, batch_ * sizeof(int));
  *ws_step_.h_pos = position_;
  CU(cudaMemcpyAsync(ws_step_.ids, ws_step_.h_ids, batch_ * sizeof(int), cudaMemcpyHostToDevice, engine_.stream()));
  CU(cudaMemcpyAsync(ws_step_.pos, ws_step_.h_pos, sizeof(int), cudaMemcpyHostToDevice, engine_.stream()));
  out.gpu_ms = engine_.launch(ws_step_, Mode::kDecodeStep, Tail::kSummary, batch_, 1, &cache_, max_tokens_);
  position_ += 1;
  engine_.finish_summary(ws_step_, batch_, logits, out);
}

}  // namespace

std::unique_ptr<Engine> make_engine(const Gpt2Config& config, const Gpt2Weights& weights, const EngineOptions& options) {
  switch (options.precision) {
    case Precision::kFp32:
    case Precision::kTf32:
      return std::make_unique<EngineImpl<float>>(config, weights, options);
    case Precision::kFp16:
      return std::make_unique<EngineImpl<__half>>(config, weights, options);
    case Precision::kBf16:
      return std::make_unique<EngineImpl<__nv_bfloat16>>(config, weights, options);
  }
  throw Error("cuda engine: unknown precision");
}

bool device_available(std::string* why) {
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) {
    if (why) *why = std::string("no usable CUDA driver/device: ") + cudaGetErrorString(e);
    cudaGetLastError();  // clear the sticky-free error so later calls start clean
    return false;
  }
  if (count == 0) {
    if (why) *why = "no CUDA device found";
    return false;
  }
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, 0) == cudaSuccess && prop.major < 7) {
    if (why) *why = std::string("device ") + prop.name + " is older than compute capability 7.0";
    return false;
  }
  return true;
}

RuntimeVersions runtime_versions() {
  RuntimeVersions v;
  int rt = 0, drv = 0;
  cudaRuntimeGetVersion(&rt);
  cudaDriverGetVersion(&drv);
  auto fmt = [](int x) { return std::to_string(x / 1000) + "." + std::to_string((x % 1000) / 10); };
  v.runtime = fmt(rt);
  v.driver = drv ? fmt(drv) : "none";
  v.cublaslt = std::to_string(cublasLtGetVersion());
  return v;
}

}  // namespace gptbench::cuda_engine
