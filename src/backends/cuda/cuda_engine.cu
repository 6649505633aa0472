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
#include <type_traits>

#include "backends/cuda/attention_mma.cuh"
#include "backends/cuda/attention_wgmma.cuh"
#include "backends/cuda/decode_persistent.cuh"
#include "backends/cuda/gemm_residual_layernorm.cuh"
#include "backends/cuda/gemm_wgmma.cuh"
#include "backends/cuda/layers_persistent.cuh"
#include "backends/cuda/lm_head_summary.cuh"
#include "backends/cuda/gemv.cuh"
#include "backends/cuda/kernels.cuh"
#include "common/error.h"
#include "quant/int8_gemm.h"

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
// [in, N] to cuBLASLt. Every weight is stored [out, in] row-major (the Conv1D weights are transposed at upload,
// like the tied LM head wte [V, C]): column-major [in, out] with op T, the "TN" form that cuBLASLt's integer
// (IMMA) kernels require and that its floating-point kernels handle best.
enum class Epilogue { kNone, kBias, kGeluBias };

class Gemm {
 public:
  // int8: ab_type CUDA_R_8I, c_type CUDA_R_32I, scale_type CUDA_R_32I (alpha = 1, beta = 0 as int32).
  // accumulate: y += x . W (+ bias) (beta = 1, y read and written in place), for products that feed the float
  // residual stream directly (c_type CUDA_R_32F; the bias is then float too, cuBLASLt's bias type is D's).
  Gemm(cublasComputeType_t compute, cudaDataType_t ab_type, cudaDataType_t c_type, cudaDataType_t scale_type,
       std::size_t workspace_bytes, DeviceAllocator& alloc, bool autotune, bool accumulate = false)
      : compute_(compute), ab_type_(ab_type), c_type_(c_type), scale_type_(scale_type),
        workspace_bytes_(workspace_bytes), alloc_(alloc), autotune_(autotune), accumulate_(accumulate) {
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

  // cold: flush L2 before each timed call of the autotune; log: every candidate's time and the pick on stderr.
  void set_tuning(bool cold, bool log) {
    tune_cold_ = cold;
    log_tuning_ = log;
  }

  void run(cudaStream_t stream, const void* W, const void* x, void* y, int out, int rows, int in,
           const void* bias, Epilogue epi) {
    bool fresh = false;
    Plan& p = plan(out, rows, in, epi, fresh);
    if (epi != Epilogue::kNone)
      LT(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)));
    if (fresh && autotune_ && p.n_candidates > 1) tune(p, stream, W, x, y, out, rows, in);
    LT(cublasLtMatmul(handle_, p.desc, alpha(), W, p.a, x, p.b, beta(), y, p.c, y, p.c, &p.algo, workspace_,
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

  // Times each candidate on the real operands (outside any graph capture: plans are made by the eager first run of
  // a shape) and keeps the fastest by the median of kTrials single calls. Cold tuning (the default) writes a buffer
  // of twice the L2 size before each timed call, so that the weights come from DRAM as they do in a forward pass
  // (each layer's weights are read once per forward; timed back to back they would sit in L2 and favour the
  // algorithms that win on hot data). Writing y repeatedly is harmless: the call that follows writes it again —
  // except when accumulating, where y is saved first and restored after.
  void tune(Plan& p, cudaStream_t stream, const void* W, const void* x, void* y, int out, int rows, int in) {
    constexpr int kTrials = 7;
    void* saved = nullptr;
    const std::size_t y_bytes = static_cast<std::size_t>(out) * rows * element_bytes(c_type_);
    if (accumulate_) {
      saved = alloc_.alloc(y_bytes);
      CU(cudaMemcpyAsync(saved, y, y_bytes, cudaMemcpyDeviceToDevice, stream));
    }
    void* flush = nullptr;
    std::size_t flush_bytes = 0;
    if (tune_cold_) {
      int device = 0, l2 = 0;
      CU(cudaGetDevice(&device));
      CU(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, device));
      flush_bytes = 2 * static_cast<std::size_t>(std::max(l2, 1 << 20));
      flush = alloc_.alloc(flush_bytes);
    }
    cudaEvent_t ev[2 * kTrials];
    for (cudaEvent_t& e : ev) CU(cudaEventCreate(&e));
    float best = 1e30f;
    int best_c = -1;
    std::vector<float> medians(p.n_candidates, -1.f);
    for (int c = 0; c < p.n_candidates; ++c) {
      const cublasLtMatmulAlgo_t algo = p.candidates[c];
      auto call = [&] {
        return cublasLtMatmul(handle_, p.desc, alpha(), W, p.a, x, p.b, beta(), y, p.c, y, p.c, &algo, workspace_,
                              workspace_bytes_, stream);
      };
      if (call() != CUBLAS_STATUS_SUCCESS) continue;
      bool ok = true;
      for (int t = 0; t < kTrials && ok; ++t) {
        if (flush) CU(cudaMemsetAsync(flush, t, flush_bytes, stream));
        CU(cudaEventRecord(ev[2 * t], stream));
        ok = call() == CUBLAS_STATUS_SUCCESS;
        CU(cudaEventRecord(ev[2 * t + 1], stream));
      }
      CU(cudaEventSynchronize(ev[2 * kTrials - 1]));
      if (!ok) continue;
      float ms[kTrials];
      for (int t = 0; t < kTrials; ++t) CU(cudaEventElapsedTime(&ms[t], ev[2 * t], ev[2 * t + 1]));
      std::nth_element(ms, ms + kTrials / 2, ms + kTrials);
      medians[c] = ms[kTrials / 2];
      if (medians[c] < best) {
        best = medians[c];
        best_c = c;
      }
    }
    if (best_c >= 0) p.algo = p.candidates[best_c];
    for (cudaEvent_t e : ev) cudaEventDestroy(e);
    if (flush) alloc_.release(flush);
    if (saved) {
      CU(cudaMemcpyAsync(y, saved, y_bytes, cudaMemcpyDeviceToDevice, stream));
      CU(cudaStreamSynchronize(stream));
      alloc_.release(saved);
    }
    if (log_tuning_) {
      std::fprintf(stderr, "gemm tune %s: rows %d x in %d -> out %d%s: ", tune_cold_ ? "(cold L2)" : "(hot L2)", rows, in,
                   out, accumulate_ ? " (accumulate)" : "");
      for (int c = 0; c < p.n_candidates; ++c) {
        std::fprintf(stderr, "%s%s %.2f", c ? ", " : "", describe(p.candidates[c]).c_str(), 1e3 * medians[c]);
      }
      std::fprintf(stderr, " us; chosen %s\n", best_c >= 0 ? describe(p.candidates[best_c]).c_str() : "none");
    }
  }
  // "algo/tile/stages/splitK" of a cuBLASLt algorithm, for the tuning log.
  static std::string describe(const cublasLtMatmulAlgo_t& a) {
    int id = 0;
    std::uint32_t tile = 0, stages = 0;
    std::int32_t split = 0;
    std::size_t n = 0;
    cublasLtMatmulAlgoConfigGetAttribute(&a, CUBLASLT_ALGO_CONFIG_ID, &id, sizeof(id), &n);
    cublasLtMatmulAlgoConfigGetAttribute(&a, CUBLASLT_ALGO_CONFIG_TILE_ID, &tile, sizeof(tile), &n);
    cublasLtMatmulAlgoConfigGetAttribute(&a, CUBLASLT_ALGO_CONFIG_STAGES_ID, &stages, sizeof(stages), &n);
    cublasLtMatmulAlgoConfigGetAttribute(&a, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, &split, sizeof(split), &n);
    return std::to_string(id) + "/" + std::to_string(tile) + "/" + std::to_string(stages) + "/" + std::to_string(split);
  }
  static std::size_t element_bytes(cudaDataType_t t) {
    switch (t) {
      case CUDA_R_32F: case CUDA_R_32I: return 4;
      case CUDA_R_16F: case CUDA_R_16BF: return 2;
      default: return 1;
    }
  }

  Plan& plan(int out, int rows, int in, Epilogue epi, bool& fresh) {
    auto key = std::make_tuple(out, rows, in, static_cast<int>(epi));
    auto it = plans_.find(key);
    fresh = it == plans_.end();
    if (!fresh) return it->second;
    Plan p;
    LT(cublasLtMatmulDescCreate(&p.desc, compute_, scale_type_));
    cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    LT(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)));
    LT(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)));
    cublasLtEpilogue_t e = epi == Epilogue::kGeluBias ? CUBLASLT_EPILOGUE_GELU_BIAS
                           : epi == Epilogue::kBias   ? CUBLASLT_EPILOGUE_BIAS
                                                      : CUBLASLT_EPILOGUE_DEFAULT;
    LT(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &e, sizeof(e)));
    LT(cublasLtMatrixLayoutCreate(&p.a, ab_type_, in, out, in));
    LT(cublasLtMatrixLayoutCreate(&p.b, ab_type_, in, rows, in));
    LT(cublasLtMatrixLayoutCreate(&p.c, c_type_, out, rows, out));
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

  const void* alpha() const { return scale_type_ == CUDA_R_32I ? static_cast<const void*>(&kOneI) : &kOneF; }
  const void* beta() const {
    if (scale_type_ == CUDA_R_32I) return &kZeroI;
    return accumulate_ ? &kOneF : &kZeroF;
  }
  static constexpr float kOneF = 1.f, kZeroF = 0.f;
  static constexpr std::int32_t kOneI = 1, kZeroI = 0;

  cublasLtHandle_t handle_ = nullptr;
  cublasComputeType_t compute_;
  cudaDataType_t ab_type_, c_type_, scale_type_;
  std::size_t workspace_bytes_;
  void* workspace_ = nullptr;
  DeviceAllocator& alloc_;
  bool autotune_;
  bool accumulate_;
  bool tune_cold_ = true;    // option gemm_tune_l2
  bool log_tuning_ = false;  // option profile
  std::map<std::tuple<int, int, int, int>, Plan> plans_;
};

// One projection on the device. Floating point: w [out][in] of T. int8 (W8A8): wq [out][in] with per-output
// scales w_scale and the calibrated activation scale act_scale; y = act_scale * w_scale[n] * acc + b.
template <typename T>
struct DeviceLinear {
  int in = 0, out = 0;  // out may be padded (the LM head: Vp rows, zeros past the vocabulary)
  T* w = nullptr;
  T* b = nullptr;  // [out] or nullptr
  float* b_f = nullptr;  // the bias in float, for products accumulated into the float residual stream
  std::int8_t* wq = nullptr;
  float* w_scale = nullptr;
  float act_scale = 0.f;
};

template <typename T>
struct DeviceLayer {
  float *ln1_w, *ln1_b, *ln2_w, *ln2_b;
  DeviceLinear<T> qkv, proj, fc, mproj;
};

enum class Mode { kPrefill, kDecodePrefill, kDecodeStep };
// What a forward ends in: the summary (top-1, row sum) of each row's logits, the same with the logits kept in
// ws.logits (a caller asked for them), or the NLL of the targets.
enum class Tail { kSummary, kSummaryLogits, kNll };

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
  std::int8_t* q = nullptr;     // int8: the quantized input of a product [rows, max(C, I)]
  std::int32_t* acc = nullptr;  // int8: the integer product [rows, max(3C, I, Vp)]
  bool int8 = false;            // allocate q / acc
  // The persistent few-row path (layers_persistent.cuh): its k-split partials [splits, min(rows, 128), C] and
  // its grid barrier's counter. Allocated with the rest when `persistent` is set.
  float* part = nullptr;
  unsigned* sync = nullptr;
  bool persistent = false;
  // Its LM head phase's per-(row, block) summary parts: room for lm_parts_capacity a row, whatever the call's rows
  // (0: the phase is off; set by the engine: kernels::persistent_lm_parts_capacity).
  kernels::SummaryPart* lm_parts = nullptr;
  int lm_parts_capacity = 0;
  // The LM head with the summary in its epilogue (lm_head_summary.cuh): its per-(row, tile) parts, summary_tiles
  // a row (0: the path is off; set by the engine).
  kernels::SummaryPart* parts = nullptr;
  int summary_tiles = 0;
  float* logits_f = nullptr;  // float copy for kLogits calls, allocated on first use
  std::int64_t logits_f_elems = 0;
  // Pinned host mirrors, so copies are asynchronous in the stream.
  int *h_ids = nullptr, *h_targets = nullptr, *h_top1 = nullptr, *h_pos = nullptr;
  double *h_row_sum = nullptr, *h_nll = nullptr;
  // top1 / row_sum are the device's view of h_top1 / h_row_sum (mapped pinned memory): the summary kernels write
  // the host's copy themselves (EngineOptions::mapped_outputs). Set before ensure().
  bool mapped_outputs = false;
  std::map<std::tuple<int, int, int, int>, cudaGraphExec_t> graphs;

  void release() {
    for (auto& [k, g] : graphs) cudaGraphExecDestroy(g);
    graphs.clear();
    for (void* p : {static_cast<void*>(x), static_cast<void*>(h), static_cast<void*>(qkv), static_cast<void*>(att),
                    static_cast<void*>(y), static_cast<void*>(fc), static_cast<void*>(h_last),
                    static_cast<void*>(logits), static_cast<void*>(ids), static_cast<void*>(targets),
                    mapped_outputs ? nullptr : static_cast<void*>(top1), static_cast<void*>(pos),
                    mapped_outputs ? nullptr : static_cast<void*>(row_sum), static_cast<void*>(nll),
                    static_cast<void*>(logits_f), static_cast<void*>(q), static_cast<void*>(acc), static_cast<void*>(part), static_cast<void*>(sync),
                    static_cast<void*>(parts), static_cast<void*>(lm_parts)})
      if (p) alloc->release(p);
    for (void* p : {static_cast<void*>(h_ids), static_cast<void*>(h_targets), static_cast<void*>(h_top1),
                    static_cast<void*>(h_pos), static_cast<void*>(h_row_sum), static_cast<void*>(h_nll)})
      if (p) cudaFreeHost(p);
    x = nullptr;
    h = qkv = att = y = fc = h_last = logits = nullptr;
    ids = targets = top1 = pos = nullptr;
    row_sum = nll = nullptr;
    logits_f = nullptr;
    q = nullptr;
    acc = nullptr;
    part = nullptr;
    sync = nullptr;
    parts = nullptr;
    lm_parts = nullptr;
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
    pos = static_cast<int*>(alloc->alloc(sizeof(int)));
    nll = static_cast<double*>(alloc->alloc(n * sizeof(double)));
    if (persistent) {
      part = static_cast<float*>(
          alloc->alloc(kernels::kPersistentMaxSplits * std::min<std::size_t>(n, 128) * C * sizeof(float)));
      sync = static_cast<unsigned*>(alloc->alloc(kernels::kPersistentSyncWords * sizeof(unsigned)));
      // zero once: the persistent kernels leave them zero (kernels::persistent_detail::leave_and_reset)
      CU(cudaMemset(sync, 0, kernels::kPersistentSyncWords * sizeof(unsigned)));
      if (lm_parts_capacity > 0)
        lm_parts = static_cast<kernels::SummaryPart*>(
            alloc->alloc(std::min<std::size_t>(n, 128) * lm_parts_capacity * sizeof(kernels::SummaryPart)));
    }
    if (summary_tiles > 0)
      parts = static_cast<kernels::SummaryPart*>(alloc->alloc(n * summary_tiles * sizeof(kernels::SummaryPart)));
    if (int8) {
      q = static_cast<std::int8_t*>(alloc->alloc(n * std::max(C, I)));
      acc = static_cast<std::int32_t*>(alloc->alloc(n * std::max({3 * C, I, Vp}) * sizeof(std::int32_t)));
    }
    CU(cudaMallocHost(&h_ids, n * sizeof(int)));
    CU(cudaMallocHost(&h_targets, n * sizeof(int)));
    CU(cudaMallocHost(&h_pos, sizeof(int)));
    if (mapped_outputs) {
      CU(cudaHostAlloc(&h_top1, n * sizeof(int), cudaHostAllocMapped));
      CU(cudaHostAlloc(&h_row_sum, n * sizeof(double), cudaHostAllocMapped));
      CU(cudaHostGetDevicePointer(&top1, h_top1, 0));
      CU(cudaHostGetDevicePointer(&row_sum, h_row_sum, 0));
    } else {
      CU(cudaMallocHost(&h_top1, n * sizeof(int)));
      CU(cudaMallocHost(&h_row_sum, n * sizeof(double)));
      top1 = static_cast<int*>(alloc->alloc(n * sizeof(int)));
      row_sum = static_cast<double*>(alloc->alloc(n * sizeof(double)));
    }
    CU(cudaMallocHost(&h_nll, n * sizeof(double)));
  }
};

template <typename T>
class EngineImpl;

// What a decode session runs on: its KV cache and two workspaces, whose CUDA graphs (captured per shape on first
// use) point at these very buffers. The engine keeps them when a session ends and hands them to the next session
// of the same batch and max_tokens, as a server keeps its cache and graphs between requests: a new session then
// starts with its graphs captured instead of spending ~2 ms on an eager pass and a capture (H200, GPT-2 124M: the
// matrix's decode TTFT was 2.16 ms for a 0.4 ms prompt).
template <typename T>
struct DecodeResources {
  int batch = 0, max_tokens = 0;
  bool in_use = false;
  std::uint64_t last_use = 0;  // for dropping the least recently used idle ones
  std::vector<T*> cache;       // per layer [batch][max_tokens][2C]
  Workspace<T> ws_prefill, ws_step;
};

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
  DecodeResources<T>* res_;  // the engine's, ours until we end
};

// The fused residual + LayerNorm product's shape in the engine (gemm_residual_layernorm.cuh, lab version v2): two
// 64 x 192 warpgroup tiles side by side, 3 ring slots, clusters of 2 blocks: n_embd 768.
constexpr int kFusedLnBN = 192, kFusedLnStages = 3, kFusedLnCluster = 2;
constexpr int kFusedLnColumns = 2 * kFusedLnBN * kFusedLnCluster;

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
    int8_ = options.precision == Precision::kInt8;
    attention_mma_ = options.attention != EngineOptions::Attention::kWmma;
    if constexpr (!std::is_same_v<T, __half>) {
      if (int8_) throw Error("cuda engine: int8 runs with fp16 activations");
    }
    if (int8_) {
      if (C_ % 8 != 0 || I_ % 8 != 0)
        throw Error("cuda engine: int8 needs n_embd and the MLP width to be multiples of 8 (cuBLASLt IMMA, vector "
                    "(de)quantization)");
      gemm_i8_ = std::make_unique<Gemm>(CUBLAS_COMPUTE_32I, CUDA_R_8I, CUDA_R_32I, CUDA_R_32I, 32u << 20, alloc_,
                                        options.gemm_autotune);
      ws_.int8 = true;
      if constexpr (std::is_same_v<T, __half>)
        with_register_row(
            [&](auto v) { int8_residual_ln_ = kernels::int8_residual_layernorm_reg<T, decltype(v)::value>; });
    } else {
      gemm_ = std::make_unique<Gemm>(compute, cuda_type<T>(), cuda_type<T>(), CUDA_R_32F, 32u << 20, alloc_,
                                     options.gemm_autotune);
      if (opt_.residual_epilogue)
        gemm_residual_ = std::make_unique<Gemm>(compute, cuda_type<T>(), CUDA_R_32F, CUDA_R_32F, 32u << 20, alloc_,
                                                options.gemm_autotune, /*accumulate=*/true);
      if (opt_.residual_epilogue && opt_.residual_16bit && !std::is_same_v<T, float>)
        gemm_residual16_ = std::make_unique<Gemm>(compute, cuda_type<T>(), cuda_type<T>(), CUDA_R_32F, 32u << 20,
                                                  alloc_, options.gemm_autotune, /*accumulate=*/true);
    }
    if (int8_) opt_.residual_epilogue = false;  // the int8 products end in their dequantize kernel
    if (opt_.profile) opt_.use_graphs = false;  // events between kernels: eager launches only
    for (Gemm* g : {gemm_.get(), gemm_residual_.get(), gemm_residual16_.get(), gemm_i8_.get()})
      if (g) g->set_tuning(opt_.gemm_tune_cold, opt_.profile);
    upload(weights);
    cudaDeviceProp prop{};
    CU(cudaGetDeviceProperties(&prop, opt_.device));
    device_name_ = prop.name;
    sm_count_ = prop.multiProcessorCount;
    ws_.alloc = &alloc_;
    setup_wgmma(prop);
    // Hopper's attention kernel: fp16 / bf16 (int8 runs fp16 activations), head size 64, compute capability 9.0
    // (its body exists only in the sm_90a build).
    attention_wgmma_ = !std::is_same_v<T, float> && options.attention == EngineOptions::Attention::kWgmma &&
                       D_ == 64 && prop.major == 9 && prop.minor == 0;
    setup_persistent();
    ws_.persistent = persistent_blocks_ > 0;
    ws_.lm_parts_capacity = persistent_lm_head_ ? kernels::persistent_lm_parts_capacity(persistent_blocks_) : 0;
    // (a device that cannot map host memory keeps the copies)
    opt_.mapped_outputs = opt_.mapped_outputs && prop.canMapHostMemory;
    ws_.mapped_outputs = opt_.mapped_outputs;
    setup_decode_persistent();
    setup_fused_layernorm(prop);
    setup_lm_head_summary(prop);
    ws_.summary_tiles = summary_tiles();
  }

  ~EngineImpl() override {
    for (auto& r : decode_pool_) free_decode(*r);
    decode_pool_.clear();
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
    gemm_residual_.reset();
    gemm_residual16_.reset();
    gemm_i8_.reset();
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
    out.gpu_ms = launch(ws_, Mode::kPrefill, logits ? Tail::kSummaryLogits : Tail::kSummary, batch, seq, nullptr, 0);
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
    const double ms = launch(ws_, Mode::kPrefill, Tail::kNll, batch, seq, nullptr, 0);
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
    std::string s;
    if (int8_) {
      if (use_int8_fused())
        s = "cuBLASLt int8 GEMMs (IMMA, compute 32I, TN); each product's input quantized by the kernel that makes it "
            "(dequantize+bias+GELU, residual+LayerNorm; a quantize kernel after attention and ln_f), the LM head's "
            "summary / NLL read from its int32 products (W8A8: weights per output channel, activations per tensor, "
            "calibrated)";
      else
        s = "cuBLASLt int8 GEMMs (IMMA, compute 32I, TN) with a quantize kernel before and a dequantize+bias(+GELU) "
            "kernel after each product (W8A8: weights per output channel, activations per tensor, calibrated)";
      if (opt_.gemv_kernels)
        s += "; decode steps of <= " + std::to_string(gemv_rows_limit()) +
             " sequences through fused LayerNorm+int8 GEMV (dp4a) kernels";
    } else {
      s = "cuBLASLt GEMMs (";
      s += opt_.precision == Precision::kTf32 ? "compute 32F_FAST_TF32" : "compute 32F";
      s += std::string(", ") + (opt_.gelu_epilogue ? "GELU_BIAS epilogue" : "BIAS epilogue + GELU kernel") + ")";
      if (opt_.gemv_kernels) {
        s += "; decode steps of <= " + std::to_string(gemv_rows_limit()) +
             " sequences through fused LayerNorm+GEMV kernels";
        if (decode_blocks_ > 0)
          s += " (a single kernel for the embedding and every block, " + std::to_string(decode_blocks_) +
               " blocks with grid barriers between phases" +
               (std::is_same_v<T, float> || opt_.decode_mma == DecodeMma::kOff ? ""
                : opt_.decode_mma == DecodeMma::kAll ? "; 5-8 sequences with mma.sync tensor-core products"
                                                     : "; 5-8 sequences with the MLP projection on mma.sync tensor cores") +
               ")";
        if (gemv_lm_head_rows_limit() < gemv_rows_limit())
          s += ", ln_f + the LM head of more than " + std::to_string(gemv_lm_head_rows_limit()) +
               " through the LayerNorm kernel + cuBLASLt";
      }
    }
    if (persistent_blocks_ > 0)
      s += "; prefill of <= 128 rows: every block in one persistent kernel (" + std::to_string(persistent_blocks_) +
           " blocks" + (persistent_pairs_ ? " in pairs" : "") + ", grid barriers between phases" +
           (opt_.persistent_head_flags ? " (QKV -> attention through per-head counters)" : "") +
           (opt_.persistent_embed ? ", the embedding inside" : "") +
           (persistent_lm_head_ ? ", the LM head and its top-1 / row-sum summary inside" : "") +
           ", TMA+wgmma products, weights streamed ahead)";
    if (wgmma_)
      s += "; prefill of <= " + std::to_string(opt_.wgmma_max_rows) +
           " rows: TMA+wgmma products (residual add, bias, GELU in the epilogue) with every kernel a programmatic "
           "dependent of the one before";
    if (lm_head_summary_)
      s += "; LM head of " + std::to_string(opt_.lm_head_summary_min_rows) + "-" +
           std::to_string(opt_.lm_head_summary_rows) +
           " rows with the top-1 / row-sum summary in its epilogue (TMA-fed tensor-core tiles, no logits written" +
           (opt_.lm_head_pingpong ? "; ping-pong warpgroups, the summary through shared memory)" : ")");
    if (gemm_residual16_) s += "; cuBLASLt prefills with the residual stream in 16 bits (fp16 / bf16, as PyTorch)";
    if (!fused_ln_w_.empty())
      s += "; prefills of >= " + std::to_string(opt_.fused_layernorm_rows) +
           " rows: each projection with the LayerNorm in its epilogue (TMA+wgmma, clusters of 2 sharing row sums)";
    s += "; fused residual+LayerNorm; causal attention: ";
    s += std::is_same_v<T, float> ? "online-softmax CUDA-core kernel"
         : attention_wgmma_ ? "warpgroup-MMA kernel (TMA-fed key / value tiles)"
         : attention_mma_ ? "FA2-style mma.sync kernel (register accumulators)"
                          : "online-softmax WMMA tensor-core kernel";
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

  // Runs the forward of `mode` on ws through its graph for this shape (capturing it on first use). The graph
  // holds the copies too: ids (targets, position) in from the pinned host mirrors, and the small results (top1
  // and row sums, or the NLL) back to them, so a call is one graph launch and one synchronisation. The caller
  // fills the host mirrors first; ws.h_top1 / h_row_sum / h_nll are valid once this returns.
  double launch(Workspace<T>& ws, Mode mode, Tail tail, int batch, int seq, std::vector<T*>* cache, int max_tokens) {
    const int rows = batch * seq;
    const int out_rows = mode == Mode::kPrefill ? rows : batch;
    auto body = [&] {
      CU(cudaMemcpyAsync(ws.ids, ws.h_ids, rows * sizeof(int), cudaMemcpyHostToDevice, stream_));
      if (tail == Tail::kNll)
        CU(cudaMemcpyAsync(ws.targets, ws.h_targets, rows * sizeof(int), cudaMemcpyHostToDevice, stream_));
      if (mode == Mode::kDecodeStep)
        CU(cudaMemcpyAsync(ws.pos, ws.h_pos, sizeof(int), cudaMemcpyHostToDevice, stream_));
      forward(ws, mode, tail, batch, seq, cache, max_tokens);
      if (tail != Tail::kNll) {
        if (!ws.mapped_outputs) {  // (mapped: the summary kernels wrote them to the host already)
          CU(cudaMemcpyAsync(ws.h_top1, ws.top1, out_rows * sizeof(int), cudaMemcpyDeviceToHost, stream_));
          CU(cudaMemcpyAsync(ws.h_row_sum, ws.row_sum, out_rows * sizeof(double), cudaMemcpyDeviceToHost, stream_));
        }
      } else {
        CU(cudaMemcpyAsync(ws.h_nll, ws.nll, out_rows * sizeof(double), cudaMemcpyDeviceToHost, stream_));
      }
    };
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
        ++graphs_captured_;
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

  // Top1 / row sums of `rows` output rows (copied back by the launch) and the logits when asked; blocking.
  void finish_summary(Workspace<T>& ws, int rows, std::vector<float>* logits, CallOutput& out) {
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

  std::int64_t graphs_captured() const override { return graphs_captured_; }

  // A session's cache and workspaces: an idle set of this shape if the engine kept one, else new ones. The cache's
  // old contents do no harm: a session reads only the positions it has written.
  DecodeResources<T>* acquire_decode(int batch, int max_tokens) {
    DecodeResources<T>* r = nullptr;
    for (auto& p : decode_pool_)
      if (!p->in_use && p->batch == batch && p->max_tokens == max_tokens) r = p.get();
    if (!r) {
      decode_pool_.push_back(std::make_unique<DecodeResources<T>>());
      r = decode_pool_.back().get();
      r->batch = batch;
      r->max_tokens = max_tokens;
      for (Workspace<T>* ws : {&r->ws_prefill, &r->ws_step}) {
        ws->alloc = &alloc_;
        ws->int8 = int8_;
        ws->summary_tiles = summary_tiles();
        ws->mapped_outputs = opt_.mapped_outputs;
      }
      r->ws_step.persistent = decode_blocks_ > 0;  // the persistent decode step's barrier counter
      const std::size_t per_layer = static_cast<std::size_t>(batch) * max_tokens * 2 * C_;
      for (int l = 0; l < L_; ++l) r->cache.push_back(static_cast<T*>(alloc_.alloc(per_layer * sizeof(T))));
      r->ws_step.ensure(batch, C_, I_, Vp_);
    }
    r->in_use = true;
    return r;
  }
  // A session ended: its resources wait for the next session of that shape; beyond kIdleDecode idle sets the least
  // recently used one is freed (a run sweeps a few decode shapes; a long-lived engine must not keep them all).
  static constexpr int kIdleDecode = 4;
  void release_decode(DecodeResources<T>* r) {
    r->in_use = false;
    r->last_use = ++decode_clock_;
    int idle = 0;
    for (auto& p : decode_pool_) idle += !p->in_use;
    if (idle <= (opt_.decode_reuse ? kIdleDecode : 0)) return;
    auto oldest = decode_pool_.end();
    for (auto it = decode_pool_.begin(); it != decode_pool_.end(); ++it)
      if (!(*it)->in_use && (oldest == decode_pool_.end() || (*it)->last_use < (*oldest)->last_use)) oldest = it;
    free_decode(**oldest);
    decode_pool_.erase(oldest);
  }
  void free_decode(DecodeResources<T>& r) {
    r.ws_prefill.release();
    r.ws_step.release();
    for (T* p : r.cache) alloc_.release(p);
    r.cache.clear();
  }
  int C() const { return C_; }
  int I() const { return I_; }
  int Vp() const { return Vp_; }
  // The LM head's summary tiles a row (0: that path is off), which sizes a workspace's parts.
  int summary_tiles() const {
    return lm_head_summary_ ? kernels::WideTileShape<kLmHeadBN, kLmHeadStages>::n_tiles(Vp_) : 0;
  }

 private:
  // Uploads n floats (zero-filled up to padded_elems) as U.
  template <typename U>
  U* upload_floats(const float* data, std::int64_t n, std::int64_t padded_elems = 0) {
    const std::int64_t total = std::max(n, padded_elems);
    U* dst = static_cast<U*>(alloc_.alloc(total * sizeof(U)));
    owned_.push_back(dst);
    if (total > n) CU(cudaMemsetAsync(dst, 0, total * sizeof(U), stream_));
    if constexpr (std::is_same_v<U, float>) {
      CU(cudaMemcpyAsync(dst, data, n * sizeof(float), cudaMemcpyHostToDevice, stream_));
    } else {
      CU(cudaMemcpyAsync(staging_, data, n * sizeof(float), cudaMemcpyHostToDevice, stream_));
      const int blocks = static_cast<int>(std::min<std::int64_t>((n + 255) / 256, 4096));
      kernels::convert_from_float<U><<<blocks, 256, 0, stream_>>>(staging_, dst, n);
      CU(cudaGetLastError());
    }
    CU(cudaStreamSynchronize(stream_));  // staging (and the caller's host buffer) are reused next
    return dst;
  }
  template <typename U>
  U* upload_tensor(const Tensor& t, std::int64_t padded_elems = 0) {
    return upload_floats<U>(t.ptr(), t.numel(), padded_elems);
  }
  template <typename U>
  U* upload_bytes(const U* data, std::int64_t n) {
    U* dst = static_cast<U*>(alloc_.alloc(n * sizeof(U)));
    owned_.push_back(dst);
    CU(cudaMemcpy(dst, data, n * sizeof(U), cudaMemcpyHostToDevice));
    return dst;
  }

  // A projection: `weight` is [in, out] (Conv1D) or [out, in] when `out_major` (the tied LM head); stored
  // [out_rows, in] with out_rows = max(out, padded_out) (zero rows past out). int8: quantized per output
  // channel exactly as the native CPU engine does (quant/int8_gemm.h), with this linear's calibrated scale.
  DeviceLinear<T> upload_linear(const std::string& name, const Tensor& weight, const Tensor* bias, bool out_major,
                                int padded_out = 0, bool residual = false) {
    DeviceLinear<T> d;
    d.in = static_cast<int>(out_major ? weight.shape[1] : weight.shape[0]);
    const int out = static_cast<int>(out_major ? weight.shape[0] : weight.shape[1]);
    d.out = std::max(out, padded_out);
    const std::int64_t in = d.in, rows = d.out;
    if (bias) d.b = upload_tensor<T>(*bias, rows);
    if (bias && residual && (gemm_residual_ || (!std::is_same_v<T, float> && !int8_))) {  // (or the wgmma path)
      if constexpr (std::is_same_v<T, float>) d.b_f = d.b;
      else d.b_f = upload_tensor<float>(*bias, rows);
    }
    if (!int8_) {
      if (out_major) {
        d.w = upload_tensor<T>(weight, rows * in);
      } else {
        std::vector<float> t(static_cast<std::size_t>(rows * in), 0.f);
        const float* w = weight.ptr();
        for (std::int64_t k = 0; k < in; ++k)
          for (std::int64_t n = 0; n < out; ++n) t[n * in + k] = w[k * out + n];
        d.w = upload_floats<T>(t.data(), rows * in);
      }
      return d;
    }
    auto it = opt_.int8_activation_scales.find(name);
    if (it == opt_.int8_activation_scales.end() || !(it->second > 0.f))
      throw Error("cuda engine int8: the calibration has no activation scale for " + name);
    d.act_scale = it->second;
    const PerChannelInt8 q = quantize_per_output_channel(weight.ptr(), in, out, out_major);  // q: [in, out]
    std::vector<std::int8_t> qt(static_cast<std::size_t>(rows * in), 0);
    for (std::int64_t k = 0; k < in; ++k)
      for (std::int64_t n = 0; n < out; ++n) qt[n * in + k] = q.q[k * out + n];
    std::vector<float> scales(static_cast<std::size_t>(rows), 0.f);
    std::copy(q.scales.begin(), q.scales.end(), scales.begin());
    d.wq = upload_bytes(qt.data(), rows * in);
    d.w_scale = upload_bytes(scales.data(), rows);
    return d;
  }

  void upload(const Gpt2Weights& w) {
    std::int64_t largest = 0;
    for_each_tensor(w, [&](const std::string&, const Tensor& t) { largest = std::max(largest, t.numel()); });
    largest = std::max(largest, static_cast<std::int64_t>(Vp_) * C_);
    staging_ = static_cast<float*>(alloc_.alloc(largest * sizeof(float)));
    // The LM head gets zero rows up to the padded vocabulary: the GEMM writes Vp columns, kernels read V.
    // Tied (GPT-2), floating point: one copy serves as both the token embedding and the LM head.
    lm_head_ = upload_linear("lm_head", w.lm_head_matrix(), nullptr, true, Vp_);
    wte_ = w.lm_head.data.empty() && lm_head_.w ? lm_head_.w : upload_tensor<T>(w.wte);
    wpe_ = upload_tensor<T>(w.wpe);
    for (std::size_t l = 0; l < w.layers.size(); ++l) {
      const LayerWeights& lw = w.layers[l];
      const std::string p = "h." + std::to_string(l) + ".";
      DeviceLayer<T> d{};
      d.ln1_w = upload_tensor<float>(lw.ln_1_weight);
      d.ln1_b = upload_tensor<float>(lw.ln_1_bias);
      d.ln2_w = upload_tensor<float>(lw.ln_2_weight);
      d.ln2_b = upload_tensor<float>(lw.ln_2_bias);
      d.qkv = upload_linear(p + "attn.c_attn", lw.c_attn_weight, &lw.c_attn_bias, false);
      d.proj = upload_linear(p + "attn.c_proj", lw.attn_proj_weight, &lw.attn_proj_bias, false, 0, true);
      d.fc = upload_linear(p + "mlp.c_fc", lw.c_fc_weight, &lw.c_fc_bias, false);
      d.mproj = upload_linear(p + "mlp.c_proj", lw.mlp_proj_weight, &lw.mlp_proj_bias, false, 0, true);
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

  // pdl: launched as a programmatic dependent of the kernel before (the kernels wait for it first).
  // The kernels that hold a row in a warp's registers are instantiated for C = 128 V with these V: f is called
  // with std::integral_constant<int, V> for this n_embd, and not at all for another.
  template <typename F>
  void with_register_row(F&& f) const {
    switch (C_ % 128 == 0 ? C_ / 128 : 0) {
      case 1: f(std::integral_constant<int, 1>{}); break;
      case 2: f(std::integral_constant<int, 2>{}); break;
      case 4: f(std::integral_constant<int, 4>{}); break;
      case 6: f(std::integral_constant<int, 6>{}); break;
      case 8: f(std::integral_constant<int, 8>{}); break;
      default: break;
    }
  }

  // kernels::embed_layernorm_reg for this n_embd and residual type R, or nullptr where the row does not fit a
  // warp's registers.
  template <typename R = float>
  using EmbedLayernorm = void (*)(const int*, const T*, const T*, R*, int, const float*, const float*, T*, int,
                                  int, float);
  template <typename R = float>
  EmbedLayernorm<R> embed_layernorm_kernel() const {
    EmbedLayernorm<R> k = nullptr;
    with_register_row([&](auto v) { k = kernels::embed_layernorm_reg<T, decltype(v)::value, R>; });
    return k;
  }

  // LayerNorm of the residual stream x (float or T) into out through layernorm_rows_reg, ROWS rows a warp (option
  // layernorm_rows); false where the row does not fit a warp's registers or the option is off.
  template <typename R>
  bool layernorm_rows(const R* x, const float* w, const float* b, T* out, int rows, bool pdl) {
    const int per_warp = opt_.layernorm_rows;
    if (per_warp <= 0) return false;
    const int warps = 4;
    const float eps = static_cast<float>(cfg_.layer_norm_epsilon);
    using Kernel = void (*)(const R*, const float*, const float*, T*, int, int, float);
    Kernel k = nullptr;
    with_register_row([&](auto v) {
      constexpr int V = decltype(v)::value;
      k = per_warp == 1   ? kernels::layernorm_rows_reg<T, V, 1, R>
          : per_warp == 2 ? kernels::layernorm_rows_reg<T, V, 2, R>
                          : kernels::layernorm_rows_reg<T, V, 4, R>;
    });
    if (!k) return false;
    const int per_block = warps * per_warp;
    CU(kernels::launch_kernel(k, dim3((rows + per_block - 1) / per_block), dim3(warps * 32), 0, stream_, pdl, x, w, b,
                              out, rows, C_, eps));
    return true;
  }

  // x += delta (when given), then out = LN(x) * w + b, over the residual stream in float or, with residual_16bit, in
  // T (then only where the row fits a warp's registers).
  template <typename R>
  void layernorm(R* x, const T* delta, const float* w, const float* b, T* out, int rows, bool pdl = false) {
    if (!delta && layernorm_rows(static_cast<const R*>(x), w, b, out, rows, pdl)) return;
    const int warps = 4;
    const float eps = static_cast<float>(cfg_.layer_norm_epsilon);
    using Kernel = void (*)(R*, const T*, const float*, const float*, T*, int, int, float);
    Kernel k = nullptr;
    if constexpr (std::is_same_v<R, float>) k = kernels::residual_layernorm<T>;
    with_register_row([&](auto v) { k = kernels::residual_layernorm_reg<T, decltype(v)::value, R>; });
    CU(kernels::launch_kernel(k, dim3((rows + warps - 1) / warps), dim3(warps * 32), 0, stream_, pdl, x, delta, w, b,
                              out, rows, C_, eps));
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

  // pdl: the mma kernel launched as a programmatic dependent of the kernel before.
  void attention_prefill(const T* qkv, T* out, int batch, int seq, float sl2, bool pdl = false) {
    if constexpr (!std::is_same_v<T, float>) {
      if (attention_wgmma_) {
        // Measured on an H200 (attention_lab v14 vs v12, the mma kernel below): B8 x S512 16.7 vs 25.5 us,
        // B1 x S1024 13.6 vs 30.2, B1 x S512 7.9 vs 15.7, B1 x S128 4.4 vs 5.8; of the lab's four variants the
        // plainest (one consumer warpgroup, two ring slots, no S / softmax overlap) was fastest everywhere.
        const int rows = batch * seq;
        if (qkv != qkv_map_base_ || rows != qkv_map_rows_) {  // boxes of 64 rows x 64 columns of [rows, 3C]
          qkv_map_ = activation_map(qkv, rows, 3 * C_, 64);
          qkv_map_base_ = qkv;
          qkv_map_rows_ = rows;
        }
        // Few blocks with long chains of key tiles: the keys split between two warpgroups of each block
        // (KSPLIT, attention_lab v19 against v14 on an H200: B1 x S512 6.98 vs 8.20 us, B1 x S1024 11.90 vs
        // 14.19; with many blocks the plain kernel stays ahead: B8 x S512 18.13 vs 17.64, B32 x S128 13.74 vs
        // 11.72, B8 x S128 5.80 vs 5.57). Option attention_ksplit: -1 (default) this rule, 0 never, 1 always.
        const int blocks = batch * H_ * ((seq + 63) / 64);
        const bool ksplit = opt_.attention_ksplit == 1 ||
                            (opt_.attention_ksplit < 0 && seq > 256 && blocks < 2 * sm_count_);
        const cudaError_t launched =
            ksplit ? kernels::launch_attention_wgmma<T, 2, 2, false, true>(qkv_map_, out, batch, seq, H_, C_, sl2,
                                                                           stream_, pdl)
                   : kernels::launch_attention_wgmma<T, 1, 2, false>(qkv_map_, out, batch, seq, H_, C_, sl2, stream_,
                                                                     pdl);
        CU(launched);
        return;
      }
      if (attention_mma_) {
        // Measured on an H100 (lab/cuda/attention_lab.cu): 4-warp blocks (64 queries) beat 1-warp blocks on every
        // shape, even B1 x S128 with 24 blocks; key tiles of 32 win once there are more 64-query tiles than SMs
        // (B8 x S512: 29.9 vs 31.5 us), tiles of 64 below that (B1 x S128: 6.0 vs 10.6 us).
        // The query-major grid (QMAJOR: every (batch, head)'s heaviest query block dispatched first) measured on an
        // H200: B8 x S512 23.6 vs 31.9 us, B32 x S128 11.6 vs 13.4 us, B1 x S128 unchanged (5.81 us); D = 32
        // (B8 x S512) 16.3 vs 22.1 us with key tiles of 64.
        const int tiles = (seq + 63) / 64 * batch * H_;
        const bool narrow = opt_.attention_warps == 1;
        const bool short_keys = tiles >= sm_count_;
        if (D_ == 64) {
          if (narrow) kernels::launch_flash_attention_mma<T, 64, 1>(qkv, out, batch, seq, H_, 3 * C_, C_, sl2, stream_, pdl);
          else if (short_keys) kernels::launch_flash_attention_mma<T, 64, 4, 32, 1, 1, true>(qkv, out, batch, seq, H_, 3 * C_, C_, sl2, stream_, pdl);
          else kernels::launch_flash_attention_mma<T, 64, 4, 64, 1, 1, true>(qkv, out, batch, seq, H_, 3 * C_, C_, sl2, stream_, pdl);
        } else {
          if (narrow) kernels::launch_flash_attention_mma<T, 32, 1>(qkv, out, batch, seq, H_, 3 * C_, C_, sl2, stream_, pdl);
          else kernels::launch_flash_attention_mma<T, 32, 4, 64, 1, 1, true>(qkv, out, batch, seq, H_, 3 * C_, C_, sl2, stream_, pdl);
        }
        return;
      }
    }
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

  // pdl: launched as a programmatic dependent of the kernel before (the fused decode step).
  void attention_decode(const T* qkv, const T* cache, T* out, int batch, int max_tokens, const int* pos, float sl2,
                        bool pdl = false) {
    const std::size_t smem = static_cast<std::size_t>(max_tokens) * sizeof(float);
    auto k = D_ == 64 ? kernels::decode_attention<T, 64> : kernels::decode_attention<T, 32>;
    if (smem > 48 * 1024) CU(cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
    CU(kernels::launch_kernel(k, dim3(H_, batch), dim3(256), smem, stream_, pdl, qkv, cache, out, C_, max_tokens, pos,
                              sl2));
  }

  // ---- the Hopper path for few-row prefills (gemm_wgmma.cuh) ----
  // On a compute capability 9.0 device, fp16 / bf16, a GELU of the tanh form and widths that are multiples of 64:
  // the weights' tensor maps are made once here (boxes of wgmma_cfg_.bn rows).
  struct WgmmaWeights {
    CUtensorMap qkv, proj, fc, mproj;
  };
  void setup_wgmma(const cudaDeviceProp& prop) {
    if constexpr (!std::is_same_v<T, float>) {
      if (int8_ || opt_.wgmma_max_rows <= 0 || prop.major != 9 || prop.minor != 0 || !gelu_tanh_ || C_ % 64 != 0 ||
          I_ % 64 != 0)
        return;
      wgmma_cfg_ = kernels::kWgmmaConfigs[opt_.wgmma_tile];
      wgmma_w_.resize(L_);
      for (int l = 0; l < L_; ++l) {
        const DeviceLayer<T>& d = layers_[l];
        WgmmaWeights& m = wgmma_w_[l];
        if (!kernels::wgmma_tensor_map(&m.qkv, d.qkv.w, d.qkv.out, d.qkv.in, wgmma_cfg_.bn) ||
            !kernels::wgmma_tensor_map(&m.proj, d.proj.w, d.proj.out, d.proj.in, wgmma_cfg_.bn) ||
            !kernels::wgmma_tensor_map(&m.fc, d.fc.w, d.fc.out, d.fc.in, wgmma_cfg_.bn) ||
            !kernels::wgmma_tensor_map(&m.mproj, d.mproj.w, d.mproj.out, d.mproj.in, wgmma_cfg_.bn)) {
          wgmma_w_.clear();  // no tensor maps from this driver: the cuBLASLt path
          return;
        }
      }
      if (!kernels::wgmma_tensor_map(&wgmma_lm_head_, lm_head_.w, lm_head_.out, lm_head_.in, wgmma_cfg_.bn)) {
        wgmma_w_.clear();
        return;
      }
      wgmma_ = true;
    }
  }
  bool use_wgmma(Mode mode, int rows) const {
    return wgmma_ && mode != Mode::kDecodeStep && rows <= opt_.wgmma_max_rows;
  }
  // Split-K for the residual products: as many splits (1, 2, 4, 8) as keep the blocks within two waves.
  int wgmma_splits(int rows, int N, int K) const {
    const int tiles = kernels::wgmma_tiles(wgmma_cfg_, rows, N);
    for (int s : {8, 4, 2})
      if ((K / 64) % s == 0 && tiles * s <= 2 * sm_count_) return s;
    return 1;
  }
  // y = a . W + b (kStore / kGeluTanh) or x += a . W + b_f (kResidual), a given by its tensor map.
  void wgmma_product(kernels::WgmmaOut out, const CUtensorMap& a, const CUtensorMap& w, const DeviceLinear<T>& W,
                     T* y, int rows, Workspace<T>& ws, bool pdl) {
    if constexpr (!std::is_same_v<T, float>) {
      kernels::WgmmaArgs<T> p;
      p.M = rows;
      p.N = W.out;
      p.K = W.in;
      p.y = y;
      p.bias = W.b;
      p.x = ws.x;
      p.bias_f = W.b_f;
      p.splits = out == kernels::WgmmaOut::kResidual ? wgmma_splits(rows, W.out, W.in) : 1;
      CU(kernels::launch_gemm_wgmma<T>(wgmma_cfg_, out, a, w, p, stream_, pdl));
    }
  }
  CUtensorMap activation_map(const T* base, int rows, int K) const {
    return activation_map(base, rows, K, 64 * wgmma_cfg_.wg);
  }
  CUtensorMap activation_map(const T* base, int rows, int K, int box_rows) const {
    CUtensorMap m{};
    if constexpr (!std::is_same_v<T, float>) {
      if (!kernels::wgmma_tensor_map(&m, base, rows, K, box_rows))
        throw Error("cuda engine: cuTensorMapEncodeTiled refused an activation map");
    }
    return m;
  }

  // ---- the residual products with their LayerNorm for many-row prefills (gemm_residual_layernorm.cuh) ----
  // Option fused_layernorm_rows, on a compute capability 9.0 card, with the 16-bit residual stream and the width the
  // kernel is built for (C = 768: clusters of 2 blocks of 64 x 384, lab version v2): the projections' weight maps
  // with boxes of 192 rows, made once here.
  struct FusedLnWeights {
    CUtensorMap proj, mproj;
  };
  void setup_fused_layernorm(const cudaDeviceProp& prop) {
    if constexpr (!std::is_same_v<T, float>) {
      if (opt_.fused_layernorm_rows <= 0 || !gemm_residual16_ || prop.major != 9 || prop.minor != 0 ||
          C_ != kFusedLnColumns || I_ % 64 != 0)
        return;
      fused_ln_w_.resize(L_);
      for (int l = 0; l < L_; ++l) {
        const DeviceLayer<T>& d = layers_[l];
        if (!kernels::wgmma_tensor_map(&fused_ln_w_[l].proj, d.proj.w, d.proj.out, d.proj.in, kFusedLnBN) ||
            !kernels::wgmma_tensor_map(&fused_ln_w_[l].mproj, d.mproj.w, d.mproj.out, d.mproj.in, kFusedLnBN)) {
          fused_ln_w_.clear();  // no tensor maps from this driver: the cuBLASLt product and the LayerNorm kernel
          return;
        }
      }
    }
  }
  bool use_fused_layernorm(int rows) const {
    return !fused_ln_w_.empty() && rows >= opt_.fused_layernorm_rows;
  }
  // x += a . W + bias, h = LN(x) * ln_w + ln_b in one kernel, a [rows, W.in] given by its pointer.
  void fused_residual_layernorm(const CUtensorMap& w_map, const DeviceLinear<T>& W, const T* a, int rows,
                                Workspace<T>& ws, const float* ln_w, const float* ln_b) {
    if constexpr (!std::is_same_v<T, float>) {
      kernels::ResidualLayerNormArgs<T> p;
      p.M = rows;
      p.N = W.out;
      p.K = W.in;
      p.x = reinterpret_cast<T*>(ws.x);
      p.bias = W.b;
      p.ln_w = ln_w;
      p.ln_b = ln_b;
      p.h = ws.h;
      p.eps = static_cast<float>(cfg_.layer_norm_epsilon);
      using Tile = kernels::ResidualLnTile<kFusedLnBN, kFusedLnStages, true>;
      CU((kernels::launch_gemm_residual_layernorm<T, kFusedLnBN, kFusedLnStages, kFusedLnCluster, true>(
          activation_map(a, rows, W.in, Tile::BM), w_map, p, stream_, false)));
    }
  }

  // ---- the persistent path for few-row prefills (layers_persistent.cuh) ----
  // Needs the Hopper path's conditions (fp16 / bf16, compute capability 9.0, GELU of the tanh form), head size 64
  // and the widths the kernel supports; the layers' weight maps and parameters go to the device once, here.
  void setup_persistent() {
    if constexpr (!std::is_same_v<T, float>) {
      if (!wgmma_ || !opt_.persistent || D_ != 64 || !kernels::persistent_supported(C_, H_, I_)) return;
      const bool pairs = opt_.persistent_pairs && kernels::persistent_supported(C_, H_, I_, 2);
      std::vector<kernels::PersistentLayer<T>> host(L_);
      for (int l = 0; l < L_; ++l) {
        const DeviceLayer<T>& d = layers_[l];
        kernels::PersistentLayer<T>& m = host[l];
        if (!d.qkv.b || !d.fc.b || !d.proj.b_f || !d.mproj.b_f) return;
        const int bn = kernels::kPersistentBN;
        if (!kernels::wgmma_tensor_map(&m.w_qkv, d.qkv.w, d.qkv.out, d.qkv.in, bn) ||
            !kernels::wgmma_tensor_map(&m.w_proj, d.proj.w, d.proj.out, d.proj.in, bn) ||
            !kernels::wgmma_tensor_map(&m.w_fc, d.fc.w, d.fc.out, d.fc.in, bn) ||
            !kernels::wgmma_tensor_map(&m.w_mproj, d.mproj.w, d.mproj.out, d.mproj.in, kernels::kPersistentMprojBN) ||
            (pairs && (!kernels::wgmma_tensor_map(&m.w_qkv64, d.qkv.w, d.qkv.out, d.qkv.in, 64) ||
                       !kernels::wgmma_tensor_map(&m.w_fc64, d.fc.w, d.fc.out, d.fc.in, 64))))
          return;
        m.b_qkv = d.qkv.b;
        m.b_fc = d.fc.b;
        m.b_proj = d.proj.b_f;
        m.b_mproj = d.mproj.b_f;
        m.ln1_g = d.ln1_w;
        m.ln1_b = d.ln1_b;
        m.ln2_g = d.ln2_w;
        m.ln2_b = d.ln2_b;
        m.scale_log2 = attn_scale_log2(l);
      }
      persistent_layers_ = upload_bytes(host.data(), L_);
      const int pair_blocks = pairs ? kernels::persistent_blocks<T, 2>(sm_count_) : 0;
      persistent_pairs_ = pair_blocks > 0;
      persistent_blocks_ = persistent_pairs_ ? pair_blocks : kernels::persistent_blocks<T, 1>(sm_count_);
      persistent_lm_head_ = persistent_blocks_ > 0 && opt_.persistent_lm_head && !int8_ &&
                            kernels::persistent_lm_head_supported(C_, Vp_) &&
                            kernels::wgmma_tensor_map(&persistent_lm_map_, lm_head_.w, Vp_, C_, kernels::kPersistentLmBN);
    }
  }
  // ---- the LM head with the summary in its epilogue (lm_head_summary.cuh) ----
  // fp16 / bf16 on a compute capability 9.0 device (not int8: its LM head is an integer product), n_embd a multiple
  // of 64: the tied embedding's tensor map, made once here.
  static constexpr int kLmHeadBN = 192, kLmHeadStages = 5;
  void setup_lm_head_summary(const cudaDeviceProp& prop) {
    if constexpr (!std::is_same_v<T, float>) {
      if (int8_ || opt_.lm_head_summary_rows <= 0 || prop.major != 9 || prop.minor != 0 || C_ % 64 != 0) return;
      lm_head_summary_ = kernels::wgmma_tensor_map(&lm_head_summary_map_, lm_head_.w, Vp_, C_, kLmHeadBN);
    }
  }
  bool use_lm_head_summary(Mode mode, int rows) const {
    return lm_head_summary_ && mode != Mode::kDecodeStep && rows <= opt_.lm_head_summary_rows &&
           rows >= opt_.lm_head_summary_min_rows;
  }
  // ws.top1 / ws.row_sum of the `rows` rows of h (and their logits in ws.logits when keep_logits): the product
  // and the fold of its parts, each a programmatic dependent of the kernel before (its weights requested early).
  void lm_head_with_summary(Workspace<T>& ws, const T* h, int rows, bool keep_logits) {
    if constexpr (!std::is_same_v<T, float>) {
      kernels::LmHeadArgs<T> p;
      p.M = rows;
      p.N = Vp_;
      p.K = C_;
      p.vocab = V_;
      p.parts = ws.parts;
      p.logits = keep_logits ? ws.logits : nullptr;
      constexpr int kLmHeadPingPongStages = 4;
      const CUtensorMap map_h = activation_map(h, rows, C_, 128);
      // (the two kernels' tiles have kLmHeadBN columns: the same parts a row)
      const cudaError_t e =
          opt_.lm_head_pingpong
              ? kernels::launch_lm_head_summary_pingpong<T, kLmHeadBN, kLmHeadPingPongStages, true, 1, 2>(
                    map_h, lm_head_summary_map_, p, ws.top1, ws.row_sum, sm_count_, stream_, !opt_.profile)
              : kernels::launch_lm_head_summary<T, kLmHeadBN, kLmHeadStages>(
                    map_h, lm_head_summary_map_, p, ws.top1, ws.row_sum, sm_count_, stream_, !opt_.profile);
      CU(e);
      mark("lm_head+summary");
    }
  }

  bool use_persistent(Mode mode, int rows) const { return persistent_blocks_ > 0 && mode == Mode::kPrefill && rows <= 128; }
  // A plain prefill's summary (and logits) from the persistent kernel's own LM head phase; a caller who asked for
  // the LM head with the summary in its epilogue at these rows (lm_head_summary_min_rows) keeps that kernel.
  bool use_persistent_lm_head(Mode mode, Tail tail, int rows) const {
    return persistent_lm_head_ && tail != Tail::kNll && use_persistent(mode, rows) && !use_lm_head_summary(mode, rows);
  }
  // Embedding, every block and ln_f of a few-row prefill: one persistent kernel (option persistent_embed=0: the
  // embedding kernel before it); with lm_tail, the LM head and the summary (and the logits for kSummaryLogits)
  // too.
  void forward_layers_persistent(Workspace<T>& ws, int batch, int seq, const Tail* lm_tail = nullptr) {
    if constexpr (!std::is_same_v<T, float>) {
      const int rows = batch * seq;
      if (!opt_.persistent_embed) {
        kernels::embed<T><<<rows, 256, 0, stream_>>>(ws.ids, wte_, wpe_, ws.x, seq, C_, nullptr);
        mark("embed");
      }
      // the kernel's activation tiles hold all (up to 128) rows
      const CUtensorMap map_h = activation_map(ws.h, rows, C_, 128), map_att = activation_map(ws.att, rows, C_, 128),
                        map_u = activation_map(ws.fc, rows, I_, 128);
      kernels::PersistentArgs<T> p;
      p.layers = persistent_layers_;
      p.n_layers = L_;
      p.batch = batch;
      p.seq = seq;
      p.M = rows;
      p.C = C_;
      p.H = H_;
      p.F = I_;
      p.x = ws.x;
      p.h = ws.h;
      p.qkv = ws.qkv;
      p.att = ws.att;
      p.u = ws.fc;
      p.part = ws.part;
      p.lnf_g = lnf_w_;
      p.lnf_b = lnf_b_;
      p.counter = ws.sync;
      p.head_flags = opt_.persistent_head_flags ? 1 : 0;
      if (opt_.persistent_embed) {
        p.ids = ws.ids;
        p.wte = wte_;
        p.wpe = wpe_;
      }
      p.eps = static_cast<float>(cfg_.layer_norm_epsilon);
      CUtensorMap map_h64{};
      if (lm_tail) {
        map_h64 = activation_map(ws.h, rows, C_, 64);
        p.lm_head = 1;
        p.vocab = V_;
        p.vocab_padded = Vp_;
        p.logits = *lm_tail == Tail::kSummaryLogits ? ws.logits : nullptr;
        p.lm_parts = ws.lm_parts;
        p.top1 = ws.top1;
        p.row_sum = ws.row_sum;
      }
      if (opt_.sync_memset) CU(cudaMemsetAsync(ws.sync, 0, kernels::kPersistentSyncWords * sizeof(unsigned), stream_));
      const cudaError_t launched =
          persistent_pairs_ ? kernels::launch_gpt2_layers_persistent<T, 2>(map_h, map_att, map_u, p, persistent_blocks_,
                                                                           stream_, true, map_h64, persistent_lm_map_)
                            : kernels::launch_gpt2_layers_persistent<T, 1>(map_h, map_att, map_u, p, persistent_blocks_,
                                                                           stream_, true, map_h64, persistent_lm_map_);
      CU(launched);
      mark(lm_tail ? "persistent_layers+lm_head+summary" : "persistent_layers");
    }
  }

  // x += x_in . W + bias, then h = LN(x): a product whose output only feeds the residual stream.
  // residual_epilogue: cuBLASLt adds the product to x itself (beta = 1, float out, in place), so the LayerNorm
  // kernel reads x once and writes h (19 MB at B8 x S512) instead of also reading y and writing x back (38 MB);
  // the sum is also formed from the float accumulator, not from a 16-bit y.
  void linear_residual_layernorm(const DeviceLinear<T>& W, const T* x_in, int rows, Workspace<T>& ws,
                                 const float* ln_w, const float* ln_b, bool residual16 = false) {
    if (residual16) {  // the residual stream in T (option residual_16bit): ws.x's memory holds T elements
      T* x16 = reinterpret_cast<T*>(ws.x);
      gemm_residual16_->run(stream_, W.w, x_in, x16, W.out, rows, W.in, W.b,
                            W.b ? Epilogue::kBias : Epilogue::kNone);
      layernorm(x16, nullptr, ln_w, ln_b, ws.h, rows, opt_.prefill_pdl);
      return;
    }
    if (gemm_residual_ && !W.wq) {
      gemm_residual_->run(stream_, W.w, x_in, ws.x, W.out, rows, W.in, W.b_f, W.b_f ? Epilogue::kBias : Epilogue::kNone);
      layernorm(ws.x, nullptr, ln_w, ln_b, ws.h, rows, opt_.prefill_pdl);
      return;
    }
    linear(W, x_in, ws.y, rows, false, ws);
    layernorm(ws.x, ws.y, ln_w, ln_b, ws.h, rows, opt_.prefill_pdl);
  }

  // y[rows, W.out] = x[rows, W.in] . W + bias (+ GELU).
  void linear(const DeviceLinear<T>& W, const T* x, T* y, int rows, bool gelu, Workspace<T>& ws) {
    if (W.wq) {
      linear_int8(W, x, y, rows, gelu, ws);
      return;
    }
    const Epilogue plain = W.b ? Epilogue::kBias : Epilogue::kNone;
    if (!gelu) {
      gemm_->run(stream_, W.w, x, y, W.out, rows, W.in, W.b, plain);
    } else if (opt_.gelu_epilogue) {
      gemm_->run(stream_, W.w, x, y, W.out, rows, W.in, W.b, Epilogue::kGeluBias);
    } else {
      gemm_->run(stream_, W.w, x, y, W.out, rows, W.in, W.b, plain);
      const std::int64_t n = static_cast<std::int64_t>(rows) * W.out;
      const int blocks = static_cast<int>(std::min<std::int64_t>((n + 255) / 256, 8192));
      if (gelu_tanh_) kernels::gelu_inplace<T, true><<<blocks, 256, 0, stream_>>>(y, n);
      else kernels::gelu_inplace<T, false><<<blocks, 256, 0, stream_>>>(y, n);
    }
  }

  // W8A8: q = clamp(round(x / s_x)) in int8, acc = q . Wq on cuBLASLt's integer kernels (int32, exact), then
  // y = s_x * s_w[n] * acc + b (+ GELU) in float, stored as T.
  void linear_int8(const DeviceLinear<T>& W, const T* x, T* y, int rows, bool gelu, Workspace<T>& ws) {
    quantize_int8(W, x, rows, ws);
    int8_product(W, rows, ws);
    dequantize_int8(W, y, rows, gelu, ws);
  }
  // ws.q = W's input x quantized with W's activation scale.
  void quantize_int8(const DeviceLinear<T>& W, const T* x, int rows, Workspace<T>& ws) {
    const std::int64_t n_in = static_cast<std::int64_t>(rows) * W.in;  // a multiple of 8 (checked at creation)
    const int qblocks = static_cast<int>(std::min<std::int64_t>((n_in / 8 + 255) / 256, 8 * sm_count_));
    kernels::quantize_int8<T><<<qblocks, 256, 0, stream_>>>(x, ws.q, n_in, 1.f / W.act_scale);
    mark("int8_quantize");
  }
  // ws.acc = ws.q . Wq (int32)
  void int8_product(const DeviceLinear<T>& W, int rows, Workspace<T>& ws) {
    gemm_i8_->run(stream_, W.wq, ws.q, ws.acc, W.out, rows, W.in, nullptr, Epilogue::kNone);
    mark("int8_imma_gemm");  // the caller's next mark then times the dequantize kernel
  }
  // y = dequantized ws.acc (+ bias, + GELU) as T; or, with next (option int8_fused), those T values quantized with
  // the product `next`'s scale into ws.q, its input.
  void dequantize_int8(const DeviceLinear<T>& W, T* y, int rows, bool gelu, Workspace<T>& ws,
                       const DeviceLinear<T>* next = nullptr) {
    const std::int64_t n_out = static_cast<std::int64_t>(rows) * W.out;
    const int dblocks = static_cast<int>(std::min<std::int64_t>((n_out / 4 + 255) / 256, 16 * sm_count_));
    const int mode = !gelu ? 0 : gelu_tanh_ ? 1 : 2;
    kernels::dequantize_int8<T><<<dblocks, 256, 0, stream_>>>(ws.acc, W.w_scale, W.act_scale, W.b, y, n_out, W.out,
                                                              mode, next ? ws.q : nullptr,
                                                              next ? 1.f / next->act_scale : 0.f);
  }
  // After the int8 residual product W (option int8_fused): x += dequantized ws.acc + bias, then LN(x) with (w, b)
  // quantized with `next`'s scale into ws.q or, without next, stored as T to ws.h (ln_f: the LM head's input).
  void int8_residual_layernorm(const DeviceLinear<T>& W, int rows, Workspace<T>& ws, const float* ln_w,
                               const float* ln_b, const DeviceLinear<T>* next) {
    const int warps = 4;
    CU(kernels::launch_kernel(int8_residual_ln_, dim3((rows + warps - 1) / warps), dim3(warps * 32), 0, stream_,
                              false, ws.x, static_cast<const std::int32_t*>(ws.acc),
                              static_cast<const float*>(W.w_scale), W.act_scale, static_cast<const T*>(W.b), ln_w,
                              ln_b, ws.h, next ? ws.q : nullptr, next ? 1.f / next->act_scale : 0.f, rows, C_,
                              static_cast<float>(cfg_.layer_norm_epsilon)));
  }
  // int8 with option int8_fused (n_embd 128 V, the row in a warp's registers): each product's input is quantized
  // by the kernel that produces it (the residual + LayerNorm kernels, FC's dequantize + GELU), and a summary or
  // NLL reads the LM head's integer products instead of stored logits.
  bool use_int8_fused() const { return int8_ && opt_.int8_fused && int8_residual_ln_ != nullptr; }

  void lm_head(const T* h, T* logits, int rows, Workspace<T>& ws) { linear(lm_head_, h, logits, rows, false, ws); }

  // Decode steps through the fused matrix-vector kernels (gemv.cuh): LayerNorm in the prologue, bias / GELU /
  // residual add / KV-cache store in the epilogue; one persistent kernel for every block where it runs
  // (decode_persistent.cuh), else 5 kernels per layer.
  // Up to gemv_max_rows sequences (gemv_rows_limit): measured on an H200, batch 1 decode 3,243 new tokens/s with
  // them against 1,939 through cuBLASLt. At batch 8 (H200, twenty-fourth session, new tokens/s per sequence):
  // fp32 / tf32 (T float): the persistent step 1,869 against 1,137 through cuBLASLt's true-FP32 products; fp16 /
  // bf16: cuBLASLt's tensor cores win, 2,334 against 2,146 for the persistent step (its CUDA-core products read
  // 8 input rows from shared memory per weight load) and 1,746 for the 5-kernel chain. The persistent step with
  // tensor-core products (decode_mma, twenty-fifth session) was slower still (1,479). The twenty-eighth session
  // made the persistent step's CUDA-core and tensor-core products two kernel instances (the one 8-row kernel had
  // carried both: 27,960 SASS instructions; lab, 8 rows: 406 -> 365 and 588 -> 374 us a step) and gave 5-8
  // sequences in fp16 / bf16 the cuBLASLt LM head (gemv_lm_head_rows_limit): batch 8 fp16 2,375 against 2,264
  // through cuBLASLt, bf16 2,307 against 2,287 (H200). So the persistent step takes up to 8 sequences wherever it
  // runs; the tensor-core products stay off (fp16 2,310, bf16 2,278).
  int gemv_rows_limit() const {
    if (opt_.gemv_max_rows > 0) return opt_.gemv_max_rows;
    if (int8_) return 8;
    return decode_blocks_ > 0 ? kernels::kDecodeMaxRows : 4;
  }
  bool use_gemv(Mode mode, int rows) const {
    if (!opt_.gemv_kernels || mode != Mode::kDecodeStep || rows > gemv_rows_limit()) return false;
    if (int8_) return kernels::gemv_int8_supported(rows, C_) && kernels::gemv_int8_supported(rows, I_);
    return kernels::gemv_supported(rows, C_) &&
           kernels::gemv_supported(rows, I_);
  }
  void gemv(const DeviceLinear<T>& W, kernels::GemvIn in, kernels::GemvOut out, const float* x, const float* ln_w,
            const float* ln_b, const T* act, T* y, int ldy, float* resid, T* cache, int max_tokens, const int* pos,
            int rows) {
    kernels::GemvArgs a{};
    a.rows = rows;
    a.K = W.in;
    a.N = W.out;
    a.W = W.w;
    a.bias = W.b;
    a.x = x;
    a.ln_w = ln_w;
    a.ln_b = ln_b;
    a.eps = static_cast<float>(cfg_.layer_norm_epsilon);
    a.act = act;
    a.y = y;
    a.ldy = ldy;
    a.resid = resid;
    a.kv_cache = cache;
    a.max_tokens = max_tokens;
    a.pos = pos;
    a.pdl = opt_.pdl;
    if (W.wq) {  // int8: W8A8 with dp4a, the input quantized in the prologue with this product's scale
      kernels::GemvInt8Args a8{};
      static_cast<kernels::GemvArgs&>(a8) = a;
      a8.W = W.wq;
      a8.w_scale = W.w_scale;
      a8.act_scale = W.act_scale;
      if constexpr (std::is_same_v<T, __half>) kernels::launch_gemv_int8(a8, in, out, stream_);
      return;
    }
    kernels::launch_gemv<T>(a, in, out, stream_);
  }
  // The persistent decode step (decode_persistent.cuh): not int8, head size 64, the widths the kernel takes; the
  // layers' parameters go to the device once, here.
  void setup_decode_persistent() {
    if (int8_ || !opt_.gemv_kernels || !opt_.decode_persistent || D_ != kernels::kDecodeHeadDim ||
        !kernels::decode_persistent_supported(C_, H_, I_, L_))
      return;
    std::vector<kernels::DecodeLayer<T>> host(L_);
    for (int l = 0; l < L_; ++l) {
      const DeviceLayer<T>& d = layers_[l];
      kernels::DecodeLayer<T>& m = host[l];
      m.w_qkv = d.qkv.w;
      m.w_proj = d.proj.w;
      m.w_fc = d.fc.w;
      m.w_mproj = d.mproj.w;
      m.b_qkv = d.qkv.b;
      m.b_proj = d.proj.b;
      m.b_fc = d.fc.b;
      m.b_mproj = d.mproj.b;
      m.ln1_g = d.ln1_w;
      m.ln1_b = d.ln1_b;
      m.ln2_g = d.ln2_w;
      m.ln2_b = d.ln2_b;
      m.scale_log2 = attn_scale_log2(l);
    }
    decode_layers_ = upload_bytes(host.data(), L_);
    decode_blocks_ = kernels::decode_persistent_blocks<T>(sm_count_, C_, I_, P_);
  }
  bool use_decode_persistent(int rows) const { return decode_blocks_ > 0 && rows <= kernels::kDecodeMaxRows; }
  void decode_layers_persistent(Workspace<T>& ws, int batch, const std::vector<T*>& cache, int max_tokens) {
    kernels::DecodeArgs<T> a;
    a.layers = decode_layers_;
    a.n_layers = L_;
    a.rows = batch;
    a.C = C_;
    a.H = H_;
    a.F = I_;
    a.max_tokens = max_tokens;
    for (int l = 0; l < L_; ++l) a.cache[l] = cache[l];
    a.ids = ws.ids;
    a.pos = ws.pos;
    a.wte = wte_;
    a.wpe = wpe_;
    a.x = ws.x;
    a.qkv = ws.qkv;
    a.att = ws.att;
    a.u = ws.fc;
    a.counter = ws.sync;
    a.eps = static_cast<float>(cfg_.layer_norm_epsilon);
    a.gelu_tanh = gelu_tanh_ ? 1 : 0;
    a.mma = opt_.decode_mma == DecodeMma::kAll     ? static_cast<int>(kernels::kDecodeMmaAll)
            : opt_.decode_mma == DecodeMma::kMproj ? static_cast<int>(kernels::kDecodeMproj)
                                                   : 0;
    if (opt_.sync_memset) CU(cudaMemsetAsync(ws.sync, 0, sizeof(unsigned), stream_));
    CU(kernels::launch_gpt2_decode_persistent<T>(a, decode_blocks_, stream_));
    mark("decode_persistent_layers");
  }
  void forward_decode_gemv(Workspace<T>& ws, int batch, std::vector<T*>& cache, int max_tokens) {
    using kernels::GemvIn;
    using kernels::GemvOut;
    const int rows = batch;
    if (use_decode_persistent(rows)) {
      decode_layers_persistent(ws, batch, cache, max_tokens);
    } else {
      decode_layers_chain(ws, batch, cache, max_tokens);
    }
    if (int8_ || rows <= gemv_lm_head_rows_limit()) {  // int8: its dp4a kernel, W8A8 as the layers
      gemv(lm_head_, GemvIn::kLayerNorm, GemvOut::kStore, ws.x, lnf_w_, lnf_b_, nullptr, ws.logits, Vp_, nullptr,
           nullptr, 0, nullptr, rows);
      mark("ln+gemv_lm_head");
      return;
    }
    layernorm(ws.x, nullptr, lnf_w_, lnf_b_, ws.h, rows);
    mark("layernorm");
    lm_head(ws.h, ws.logits, rows, ws);
    mark("gemm_lm_head");
  }
  // ln_f + the LM head of a decode step through gemv.cuh's fused kernel up to this many rows, else the LayerNorm
  // kernel + cuBLASLt. The matrix-vector kernel reads every input row per weight load: at 8 rows in fp16 it takes
  // 53 us for the LM head's 77 MB, against 4.5 + 23 us for the LayerNorm kernel and cuBLASLt; in fp32 (154 MB,
  // half the FMAs a byte) it keeps the memory's pace, 47 us against cuBLASLt's true-FP32 82 (H200, twenty-eighth
  // session; batch 8 fp32 1,931 against 1,797 new tokens/s). So 4 for fp16 / bf16, all 8 for fp32 / tf32.
  int gemv_lm_head_rows_limit() const {
    if (opt_.gemv_lm_head_max_rows > 0) return opt_.gemv_lm_head_max_rows;
    return std::is_same_v<T, float> ? kernels::kDecodeMaxRows : 4;
  }
  // The embedding and every block as 1 + 5 kernels a layer.
  void decode_layers_chain(Workspace<T>& ws, int batch, std::vector<T*>& cache, int max_tokens) {
    using kernels::GemvIn;
    using kernels::GemvOut;
    const int rows = batch;
    kernels::embed<T><<<rows, 256, 0, stream_>>>(ws.ids, wte_, wpe_, ws.x, 1, C_, ws.pos);
    mark("embed");
    for (int l = 0; l < L_; ++l) {
      const DeviceLayer<T>& d = layers_[l];
      gemv(d.qkv, GemvIn::kLayerNorm, GemvOut::kStoreKV, ws.x, d.ln1_w, d.ln1_b, nullptr, ws.qkv, 3 * C_, nullptr,
           cache[l], max_tokens, ws.pos, rows);
      mark("ln+gemv_qkv+kv");
      attention_decode(ws.qkv, cache[l], ws.att, batch, max_tokens, ws.pos, attn_scale_log2(l), opt_.pdl);
      mark("attention");
      gemv(d.proj, GemvIn::kPlain, GemvOut::kResidualAdd, nullptr, nullptr, nullptr, ws.att, nullptr, 0, ws.x,
           nullptr, 0, nullptr, rows);
      mark("gemv_proj+res");
      gemv(d.fc, GemvIn::kLayerNorm, gelu_tanh_ ? GemvOut::kGeluTanh : GemvOut::kGeluErf, ws.x, d.ln2_w, d.ln2_b,
           nullptr, ws.fc, I_, nullptr, nullptr, 0, nullptr, rows);
      mark("ln+gemv_fc+gelu");
      gemv(d.mproj, GemvIn::kPlain, GemvOut::kResidualAdd, nullptr, nullptr, nullptr, ws.fc, nullptr, 0, ws.x,
           nullptr, 0, nullptr, rows);
      mark("gemv_mproj+res");
    }
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
    if (use_gemv(mode, rows)) {
      forward_decode_gemv(ws, batch, *cache, max_tokens);
      logits_tail(ws, tail, rows);
    } else {
      forward_rows(ws, mode, tail, batch, seq, cache, max_tokens);
    }
  }

  // The blocks, the LM head and the summary / NLL of `batch` sequences of ws through the cuBLASLt products.
  void forward_rows(Workspace<T>& ws, Mode mode, Tail tail, int batch, int seq, std::vector<T*>* cache,
                    int max_tokens) {
    if (use_persistent_lm_head(mode, tail, batch * seq)) {
      forward_layers_persistent(ws, batch, seq, &tail);
      return;
    }
    forward_layers(ws, mode, batch, seq, cache, max_tokens);
    const T* head_in = ws.h;
    int head_rows = batch * seq;
    if (mode == Mode::kDecodePrefill) {  // only the last position of each sequence needs logits
      kernels::gather_last<T><<<batch, 256, 0, stream_>>>(ws.h, ws.h_last, seq, C_);
      head_in = ws.h_last;
      head_rows = batch;
    }
    if (tail != Tail::kSummaryLogits && use_int8_fused()) {
      lm_head_int8_tail(ws, head_in, head_rows, tail);
      return;
    }
    if (tail != Tail::kNll && use_lm_head_summary(mode, head_rows)) {
      lm_head_with_summary(ws, head_in, head_rows, tail == Tail::kSummaryLogits);
      return;
    }
    if (opt_.wgmma_lm_head && use_wgmma(mode, head_rows))
      wgmma_product(kernels::WgmmaOut::kStore, activation_map(head_in, head_rows, C_), wgmma_lm_head_, lm_head_,
                    ws.logits, head_rows, ws, opt_.wgmma_pdl && !opt_.profile);
    else
      lm_head(head_in, ws.logits, head_rows, ws);
    mark("gemm_lm_head");
    logits_tail(ws, tail, head_rows);
  }

  // The summary (top-1, row sum) or the NLL of the first n logits rows of ws.
  void logits_tail(Workspace<T>& ws, Tail tail, int n) {
    if (tail != Tail::kNll) {
      // Few rows (decode, small prefill): wide blocks, so the whole card reads them (up to two blocks per SM).
      if (n <= 2 * sm_count_)
        kernels::row_summary<T, 1024><<<n, 1024, 0, stream_>>>(ws.logits, V_, Vp_, ws.top1, ws.row_sum);
      else
        kernels::row_summary<T, 256><<<n, 256, 0, stream_>>>(ws.logits, V_, Vp_, ws.top1, ws.row_sum);
      mark("row_summary");
    } else {
      kernels::row_nll<T><<<n, 256, 0, stream_>>>(ws.logits, V_, Vp_, ws.targets, ws.nll);
      mark("row_nll");
    }
  }

  // Embedding and the blocks through cuBLASLt (or int8) products; leaves LN_f(x) in ws.h.
  void forward_layers(Workspace<T>& ws, Mode mode, int batch, int seq, std::vector<T*>* cache, int max_tokens) {
    const int rows = batch * seq;
    if (use_persistent(mode, rows)) {  // (plain prefills: no KV cache to fill)
      forward_layers_persistent(ws, batch, seq);
      return;
    }
    const int* pos = mode == Mode::kDecodeStep ? ws.pos : nullptr;
    // A prefill's embedding and first LayerNorm in one kernel where the row fits a warp's registers.
    const auto embed_ln = pos ? nullptr : embed_layernorm_kernel();
    // Few rows on Hopper: TMA + wgmma products, and every kernel of the chain (products, LayerNorms, attention)
    // a programmatic dependent of the one before (they all wait for it before touching its outputs). Not while
    // profiling: per-kernel events would serialise the chain anyway.
    const bool hw = use_wgmma(mode, rows);
    // The cuBLASLt prefill's residual stream in T (option residual_16bit; needs the register-row kernels).
    const bool residual16 = gemm_residual16_ && embed_ln && !hw;
    // and with option fused_layernorm_rows, each projection with the LayerNorm after it in one kernel
    const bool fused_ln = residual16 && use_fused_layernorm(rows);  // (residual16: never a decode step)
    // embed_layernorm_reg into the residual stream x (float*, or T* with residual16)
    auto embed_layernorm = [&](auto kernel, auto* x) {
      const int warps = 4;
      CU(kernels::launch_kernel(kernel, dim3((rows + warps - 1) / warps), dim3(warps * 32), 0, stream_, false, ws.ids,
                                wte_, wpe_, x, seq, layers_[0].ln1_w, layers_[0].ln1_b, ws.h, rows, C_,
                                static_cast<float>(cfg_.layer_norm_epsilon)));
      mark("embed+ln");
    };
    if (residual16) {
      embed_layernorm(embed_layernorm_kernel<T>(), reinterpret_cast<T*>(ws.x));
    } else if (embed_ln) {
      embed_layernorm(embed_ln, ws.x);
    } else {
      kernels::embed<T><<<rows, 256, 0, stream_>>>(ws.ids, wte_, wpe_, ws.x, seq, C_, pos);
      mark("embed");
    }
    const bool chain_pdl = hw && opt_.wgmma_pdl && !opt_.profile;
    CUtensorMap map_h{}, map_att{}, map_fc{};
    if (hw) {
      map_h = activation_map(ws.h, rows, C_);
      map_att = activation_map(ws.att, rows, C_);
      map_fc = activation_map(ws.fc, rows, I_);
    }
    const bool ln_pdl = chain_pdl || opt_.prefill_pdl;
    if (!embed_ln) {
      layernorm(ws.x, nullptr, layers_[0].ln1_w, layers_[0].ln1_b, ws.h, rows, chain_pdl);
      mark("layernorm");
    }
    const bool i8f = use_int8_fused();
    if (i8f) quantize_int8(layers_[0].qkv, ws.h, rows, ws);  // later layers' inputs come quantized
    for (int l = 0; l < L_; ++l) {
      const DeviceLayer<T>& d = layers_[l];
      const float sl2 = attn_scale_log2(l);
      if (i8f) {
        forward_layer_int8_fused(ws, mode, l, batch, seq, cache, max_tokens);
        continue;
      }
      if (hw) wgmma_product(kernels::WgmmaOut::kStore, map_h, wgmma_w_[l].qkv, d.qkv, ws.qkv, rows, ws, chain_pdl);
      else linear(d.qkv, ws.h, ws.qkv, rows, false, ws);
      mark("gemm_qkv");
      if (cache) {
        kernels::append_kv<T><<<rows, 256, 0, stream_>>>(ws.qkv, (*cache)[l], seq, C_, max_tokens, pos);
        mark("append_kv");
      }
      if (mode == Mode::kDecodeStep) {
        attention_decode(ws.qkv, (*cache)[l], ws.att, batch, max_tokens, ws.pos, sl2);
      } else {
        attention_prefill(ws.qkv, ws.att, batch, seq, sl2, ln_pdl);
      }
      mark("attention");
      const bool last = l + 1 == L_;
      const float* next_w = last ? lnf_w_ : layers_[l + 1].ln1_w;
      const float* next_b = last ? lnf_b_ : layers_[l + 1].ln1_b;
      if (hw) {
        wgmma_product(kernels::WgmmaOut::kResidual, map_att, wgmma_w_[l].proj, d.proj, nullptr, rows, ws, chain_pdl);
        layernorm(ws.x, nullptr, d.ln2_w, d.ln2_b, ws.h, rows, chain_pdl);
        mark("attn_proj+ln");
        wgmma_product(kernels::WgmmaOut::kGeluTanh, map_h, wgmma_w_[l].fc, d.fc, ws.fc, rows, ws, chain_pdl);
        mark("gemm_fc_gelu");
        wgmma_product(kernels::WgmmaOut::kResidual, map_fc, wgmma_w_[l].mproj, d.mproj, nullptr, rows, ws, chain_pdl);
        layernorm(ws.x, nullptr, next_w, next_b, ws.h, rows, chain_pdl);
        mark("mlp_proj+ln");
        continue;
      }
      if (fused_ln) fused_residual_layernorm(fused_ln_w_[l].proj, d.proj, ws.att, rows, ws, d.ln2_w, d.ln2_b);
      else linear_residual_layernorm(d.proj, ws.att, rows, ws, d.ln2_w, d.ln2_b, residual16);
      mark("attn_proj+ln");
      linear(d.fc, ws.h, ws.fc, rows, true, ws);
      mark("gemm_fc_gelu");
      if (fused_ln) fused_residual_layernorm(fused_ln_w_[l].mproj, d.mproj, ws.fc, rows, ws, next_w, next_b);
      else linear_residual_layernorm(d.mproj, ws.fc, rows, ws, next_w, next_b, residual16);
      mark("mlp_proj+ln");
    }
  }

  // One block of an int8 forward with option int8_fused; ws.q holds LN1(x) quantized with the QKV product's
  // scale, and holds the next block's (or ws.h ln_f's output) when it returns.
  void forward_layer_int8_fused(Workspace<T>& ws, Mode mode, int l, int batch, int seq, std::vector<T*>* cache,
                                int max_tokens) {
    const int rows = batch * seq;
    const DeviceLayer<T>& d = layers_[l];
    int8_product(d.qkv, rows, ws);
    dequantize_int8(d.qkv, ws.qkv, rows, false, ws);
    mark("gemm_qkv");
    if (cache) {
      kernels::append_kv<T><<<rows, 256, 0, stream_>>>(ws.qkv, (*cache)[l], seq, C_, max_tokens,
                                                       mode == Mode::kDecodeStep ? ws.pos : nullptr);
      mark("append_kv");
    }
    if (mode == Mode::kDecodeStep) attention_decode(ws.qkv, (*cache)[l], ws.att, batch, max_tokens, ws.pos,
                                                    attn_scale_log2(l));
    else attention_prefill(ws.qkv, ws.att, batch, seq, attn_scale_log2(l), opt_.prefill_pdl);
    mark("attention");
    quantize_int8(d.proj, ws.att, rows, ws);
    int8_product(d.proj, rows, ws);
    int8_residual_layernorm(d.proj, rows, ws, d.ln2_w, d.ln2_b, &d.fc);
    mark("attn_proj+ln");
    int8_product(d.fc, rows, ws);
    dequantize_int8(d.fc, nullptr, rows, true, ws, &d.mproj);
    mark("gemm_fc_gelu");
    int8_product(d.mproj, rows, ws);
    const bool last = l + 1 == L_;
    int8_residual_layernorm(d.mproj, rows, ws, last ? lnf_w_ : layers_[l + 1].ln1_w,
                            last ? lnf_b_ : layers_[l + 1].ln1_b, last ? nullptr : &layers_[l + 1].qkv);
    mark("mlp_proj+ln");
  }

  // The int8 LM head with option int8_fused, for a summary or the NLL: the integer products go straight to the
  // per-row kernels, which dequantize them as they read (no 16-bit logits written and read back: 412 MB each way
  // at B8 x S512).
  void lm_head_int8_tail(Workspace<T>& ws, const T* head_in, int rows, Tail tail) {
    quantize_int8(lm_head_, head_in, rows, ws);
    int8_product(lm_head_, rows, ws);
    const kernels::Int8Logits<T> src{ws.acc, lm_head_.w_scale, lm_head_.act_scale, lm_head_.out};
    if (tail == Tail::kNll) {
      kernels::row_nll_int8<T><<<rows, 256, 0, stream_>>>(src, V_, ws.targets, ws.nll);
      mark("row_nll");
    } else {
      if (rows <= 2 * sm_count_)
        kernels::row_summary_int8<T, 1024><<<rows, 1024, 0, stream_>>>(src, V_, ws.top1, ws.row_sum);
      else
        kernels::row_summary_int8<T, 256><<<rows, 256, 0, stream_>>>(src, V_, ws.top1, ws.row_sum);
      mark("row_summary");
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
  bool wgmma_ = false;                   // the Hopper few-row prefill path is available (setup_wgmma)
  kernels::WgmmaConfig wgmma_cfg_;       // its block shape (option wgmma_tile)
  std::vector<WgmmaWeights> wgmma_w_;    // its weight tensor maps, per layer
  CUtensorMap wgmma_lm_head_{};          // and the LM head's (option wgmma_lm_head)
  kernels::PersistentLayer<T>* persistent_layers_ = nullptr;  // the persistent path's per-layer parameters (device)
  int persistent_blocks_ = 0;            // its grid (0: the path is off or unavailable)
  kernels::DecodeLayer<T>* decode_layers_ = nullptr;  // the persistent decode step's per-layer parameters (device)
  int decode_blocks_ = 0;                // its grid (0: off or unavailable)
  bool persistent_pairs_ = false;        // the paired kernel (QKV / FC k halves on the two blocks of a cluster)
  bool lm_head_summary_ = false;         // the LM head with the summary in its epilogue is available
  bool persistent_lm_head_ = false;      // the persistent kernel can run the LM head and summary as its last phases
  CUtensorMap persistent_lm_map_{};      // their weight map (boxes of kPersistentLmBN rows)
  CUtensorMap lm_head_summary_map_{};    // its weight map (boxes of kLmHeadBN rows)
  std::vector<FusedLnWeights> fused_ln_w_;  // the fused residual + LayerNorm products' weight maps (or none)
  std::unique_ptr<Gemm> gemm_;     // floating point products
  std::unique_ptr<Gemm> gemm_residual_;  // x += a . W + b into the float residual stream (option residual_epilogue)
  std::unique_ptr<Gemm> gemm_residual16_;  // the same into a 16-bit residual stream (option residual_16bit)
  std::unique_ptr<Gemm> gemm_i8_;  // int8: integer products
  bool int8_ = false;
  // int8, option int8_fused: kernels::int8_residual_layernorm_reg for this n_embd (nullptr: the row does not fit
  // a warp's registers; the separate kernels run)
  void (*int8_residual_ln_)(float*, const std::int32_t*, const float*, float, const T*, const float*, const float*, T*,
                            std::int8_t*, float, int, int, float) = nullptr;
  bool attention_mma_ = true;     // prefill attention: the mma.sync kernel (else the WMMA one) ...
  bool attention_wgmma_ = false;  // ... unless Hopper's warpgroup kernel runs here (option attention=wgmma)
  // The tensor map of the qkv buffer for the warpgroup kernel, for the buffer and row count it was made for.
  CUtensorMap qkv_map_{};
  const T* qkv_map_base_ = nullptr;
  int qkv_map_rows_ = 0;
  float* staging_ = nullptr;
  T *wte_ = nullptr, *wpe_ = nullptr;
  DeviceLinear<T> lm_head_;
  float *lnf_w_ = nullptr, *lnf_b_ = nullptr;
  std::vector<DeviceLayer<T>> layers_;
  std::vector<std::string> mark_names_;
  std::vector<cudaEvent_t> mark_events_;
  std::map<std::string, double> profile_ms_;
  std::map<std::string, int> profile_calls_;
  std::set<std::int64_t> profiled_shapes_;
  Workspace<T> ws_;
  std::vector<std::unique_ptr<DecodeResources<T>>> decode_pool_;  // decode sessions' caches and workspaces
  std::uint64_t decode_clock_ = 0;
  std::int64_t graphs_captured_ = 0;
  std::string device_name_;
};

template <typename T>
DecodeStateImpl<T>::DecodeStateImpl(EngineImpl<T>& engine, int batch, int max_tokens)
    : engine_(engine), batch_(batch), max_tokens_(max_tokens), res_(engine.acquire_decode(batch, max_tokens)) {}

template <typename T>
DecodeStateImpl<T>::~DecodeStateImpl() {
  engine_.release_decode(res_);
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
  Workspace<T>& ws = res_->ws_prefill;
  ws.ensure(rows, engine_.C(), engine_.I(), engine_.Vp());
  std::memcpy(ws.h_ids, ids, rows * sizeof(int));
  out.gpu_ms = engine_.launch(ws, Mode::kDecodePrefill, logits ? Tail::kSummaryLogits : Tail::kSummary, batch_,
                              prompt_len, &res_->cache, max_tokens_);
  position_ = prompt_len;
  engine_.finish_summary(ws, batch_, logits, out);
}

template <typename T>
void DecodeStateImpl<T>::step(const std::int32_t* ids, std::vector<float>* logits, CallOutput& out) {
  if (position_ == 0) throw Error("decode: step before prefill");
  if (position_ >= max_tokens_)
    throw Error("decode: the cache is full (" + std::to_string(max_tokens_) + " tokens)");
  engine_.check_ids(ids, batch_);
  Workspace<T>& ws = res_->ws_step;
  std::memcpy(ws.h_ids, ids, batch_ * sizeof(int));
  *ws.h_pos = position_;
  out.gpu_ms = engine_.launch(ws, Mode::kDecodeStep, logits ? Tail::kSummaryLogits : Tail::kSummary, batch_, 1,
                              &res_->cache, max_tokens_);
  position_ += 1;
  engine_.finish_summary(ws, batch_, logits, out);
}

}  // namespace

std::unique_ptr<Engine> make_engine(const Gpt2Config& config, const Gpt2Weights& weights, const EngineOptions& options) {
  switch (options.precision) {
    case Precision::kFp32:
    case Precision::kTf32:
      return std::make_unique<EngineImpl<float>>(config, weights, options);
    case Precision::kFp16:
    case Precision::kInt8:  // fp16 activations around the int8 products
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

int compute_capability(int device) {
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, device) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return prop.major * 10 + prop.minor;
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
