// The native CPU engine: GPT-2's forward pass, top to bottom.
//
//   x = wte[ids] + wpe[positions]
//   for each block:  x += attn_proj(causal_attention(c_attn(LN1(x))))
//                    x += mlp_proj(gelu_new(c_fc(LN2(x))))
//   logits = LN_f(x) · wteᵀ          (the LM head is tied to the token embedding)
//
// Matrix products go through Linear (FP32 BLAS, or INT8 from quant/); everything else here stays in FP32.
// One class serves prefill (logits for every position), decode (a KV cache, logits for the newest position)
// and perplexity scoring (logits only for the positions being scored).
#include <cblas.h>
#include <omp.h>
#include <oneapi/dnnl/dnnl.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>

#include "backends/native/native_backend.h"
#include "common/error.h"
#include "common/fast_math.h"
#include "model/checkpoint.h"

extern "C" {
// OpenBLAS extensions (declared in its cblas.h on most builds; repeated here for builds that omit them).
char* openblas_get_config(void);
char* openblas_get_corename(void);
int openblas_get_num_threads(void);
void openblas_set_num_threads(int num_threads);
}

namespace gptbench {

std::string blas_description() {
  const dnnl_version_t* v = dnnl_version();
  static const std::map<dnnl_cpu_isa_t, const char*> isa_names = {
      {dnnl_cpu_isa_sse41, "sse4.1"}, {dnnl_cpu_isa_avx, "avx"}, {dnnl_cpu_isa_avx2, "avx2"},
      {dnnl_cpu_isa_avx512_core, "avx512_core"}, {dnnl_cpu_isa_avx512_core_vnni, "avx512_core_vnni"},
      {dnnl_cpu_isa_avx512_core_bf16, "avx512_core_bf16"}, {dnnl_cpu_isa_avx512_core_amx, "avx512_core_amx"},
      {dnnl_cpu_isa_avx2_vnni, "avx2_vnni"}};
  const auto isa = isa_names.find(dnnl_get_effective_cpu_isa());
  return "weights: oneDNN " + std::to_string(v->major) + "." + std::to_string(v->minor) + "." +
         std::to_string(v->patch) + " sgemm (isa " + (isa != isa_names.end() ? isa->second : "other") + ", " +
         std::to_string(omp_get_max_threads()) + " OpenMP threads); attention: " + openblas_get_config() + " (core " +
         openblas_get_corename() + "), one (sequence, head) pair per OpenMP thread";
}

void set_blas_threads(int threads) {
  // OpenBLAS only ever runs inside the engine's OpenMP loops, one small product per thread: its own threads
  // would only spin against OpenMP's.
  openblas_set_num_threads(1);
  if (threads > 0) omp_set_num_threads(threads);  // the engine's and oneDNN's threads
}

namespace {

void layer_norm(const float* x, const Tensor& weight, const Tensor& bias, float eps, std::int64_t rows,
                std::int64_t C, float* out) {
  const float* w = weight.ptr();
  const float* b = bias.ptr();
#pragma omp parallel for schedule(static)
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * C;
    float* yr = out + r * C;
    double sum = 0.0, sum_sq = 0.0;  // double: C is small, and this keeps LN exact to float rounding
    for (std::int64_t i = 0; i < C; ++i) sum += xr[i];
    const double mean = sum / static_cast<double>(C);
    for (std::int64_t i = 0; i < C; ++i) {
      const double d = xr[i] - mean;
      sum_sq += d * d;
    }
    const float inv_std = static_cast<float>(1.0 / std::sqrt(sum_sq / static_cast<double>(C) + eps));
    const float mean_f = static_cast<float>(mean);
    for (std::int64_t i = 0; i < C; ++i) yr[i] = (xr[i] - mean_f) * inv_std * w[i] + b[i];
  }
}

// Keys and values of every layer for `batch` sequences: [layer][batch][head][max_tokens][head_dim].
struct KvCache {
  int n_layer = 0, batch = 0, n_head = 0, max_tokens = 0, head_dim = 0;
  std::vector<float> k, v;

  KvCache(int layers, int batch_size, int heads, int tokens, int dim)
      : n_layer(layers), batch(batch_size), n_head(heads), max_tokens(tokens), head_dim(dim) {
    const std::size_t n = static_cast<std::size_t>(layers) * batch_size * heads * tokens * dim;
    k.assign(n, 0.0f);
    v.assign(n, 0.0f);
  }
  std::size_t offset(int layer, int b, int h) const {
    return ((static_cast<std::size_t>(layer) * batch + b) * n_head + h) * max_tokens * head_dim;
  }
};

class Gpt2Cpu {
 public:
  Gpt2Cpu(const Gpt2Model& model, const NativeCpuOptions& options) : model_(model), config_(model.config), options_(options) {
    const Gpt2Weights& w = model.weights;
    auto make = [&](const std::string& name, const Tensor& weight, const Tensor* bias, bool transposed) {
      if (options.linear_factory) return options.linear_factory(name, weight, bias, transposed);
      return make_fp32_linear(weight, bias, transposed);
    };
    for (int l = 0; l < config_.n_layer; ++l) {
      const LayerWeights& lw = w.layers[static_cast<std::size_t>(l)];
      const std::string p = "h." + std::to_string(l) + ".";
      layers_.push_back({make(p + "attn.c_attn", lw.c_attn_weight, &lw.c_attn_bias, false),
                         make(p + "attn.c_proj", lw.attn_proj_weight, &lw.attn_proj_bias, false),
                         make(p + "mlp.c_fc", lw.c_fc_weight, &lw.c_fc_bias, false),
                         make(p + "mlp.c_proj", lw.mlp_proj_weight, &lw.mlp_proj_bias, false)});
    }
    lm_head_ = make("lm_head", w.lm_head_matrix(), nullptr, true);
  }

  const Gpt2Config& config() const { return config_; }
  std::string linear_kinds() const { return layers_.front().c_attn->kind() + " (lm_head: " + lm_head_->kind() + ")"; }

  // Runs ids [batch, seq] (positions pos0 .. pos0+seq-1) through every block and the final LayerNorm.
  // Returns the hidden states [batch*seq, C]. With a cache, this step's keys and values are appended to it and
  // attention also sees the cached positions; without one, attention sees only this call's tokens (pos0 == 0).
  const float* forward_hidden(const std::int32_t* ids, int batch, int seq, int pos0, KvCache* cache) {
    const std::int64_t C = config_.n_embd, I = config_.inner_dim(), rows = std::int64_t{batch} * seq;
    if (pos0 + seq > config_.n_positions)
      throw Error("sequence of " + std::to_string(pos0 + seq) + " tokens exceeds the model's n_positions (" +
                  std::to_string(config_.n_positions) + ")");
    x_.resize(static_cast<std::size_t>(rows * C));
    h_.resize(x_.size());
    attn_.resize(x_.size());
    proj_.resize(x_.size());
    qkv_.resize(static_cast<std::size_t>(rows * 3 * C));
    fc_.resize(static_cast<std::size_t>(rows * I));

    embed(ids, batch, seq, pos0);
    const float eps = static_cast<float>(config_.layer_norm_epsilon);
    for (int l = 0; l < config_.n_layer; ++l) {
      const LayerWeights& lw = model_.weights.layers[static_cast<std::size_t>(l)];
      const LayerLinears& lin = layers_[static_cast<std::size_t>(l)];
      const std::string p = "h." + std::to_string(l) + ".";

      layer_norm(x_.data(), lw.ln_1_weight, lw.ln_1_bias, eps, rows, C, h_.data());
      run_linear(p + "attn.c_attn", *lin.c_attn, h_.data(), rows, qkv_.data());
      causal_attention(l, batch, seq, pos0, cache);
      run_linear(p + "attn.c_proj", *lin.attn_proj, attn_.data(), rows, proj_.data());
      add_inplace(x_.data(), proj_.data(), rows * C);

      layer_norm(x_.data(), lw.ln_2_weight, lw.ln_2_bias, eps, rows, C, h_.data());
      run_linear(p + "mlp.c_fc", *lin.c_fc, h_.data(), rows, fc_.data());
#pragma omp parallel for schedule(static)
      for (std::int64_t r = 0; r < rows; ++r) gelu_new_inplace(fc_.data() + r * I, I);
      run_linear(p + "mlp.c_proj", *lin.mlp_proj, fc_.data(), rows, proj_.data());
      add_inplace(x_.data(), proj_.data(), rows * C);
    }
    layer_norm(x_.data(), model_.weights.ln_f_weight, model_.weights.ln_f_bias, eps, rows, C, h_.data());
    return h_.data();
  }

  // logits [rows, vocab] for `rows` hidden states.
  void lm_head(const float* hidden, std::int64_t rows, float* logits) { run_linear("lm_head", *lm_head_, hidden, rows, logits); }

 private:
  struct LayerLinears {
    std::unique_ptr<Linear> c_attn, attn_proj, c_fc, mlp_proj;
  };

  void run_linear(const std::string& name, const Linear& linear, const float* x, std::int64_t rows, float* y) {
    if (options_.observer) options_.observer(name, x, rows, linear.in_features());
    linear.forward(x, rows, y);
  }

  static void add_inplace(float* x, const float* y, std::int64_t n) {
#pragma omp parallel for simd schedule(static)
    for (std::int64_t i = 0; i < n; ++i) x[i] += y[i];
  }

  void embed(const std::int32_t* ids, int batch, int seq, int pos0) {
    const std::int64_t C = config_.n_embd;
    const float* wte = model_.weights.wte.ptr();
    const float* wpe = model_.weights.wpe.ptr();
    for (int b = 0; b < batch; ++b) {
      for (int t = 0; t < seq; ++t) {
        const std::int32_t id = ids[b * seq + t];
        if (id < 0 || id >= config_.vocab_size)
          throw Error("token id " + std::to_string(id) + " is outside the vocabulary (" +
                      std::to_string(config_.vocab_size) + ")");
        float* xr = x_.data() + (std::int64_t{b} * seq + t) * C;
        const float* te = wte + std::int64_t{id} * C;
        const float* pe = wpe + std::int64_t{pos0 + t} * C;
        for (std::int64_t i = 0; i < C; ++i) xr[i] = te[i] + pe[i];
      }
    }
  }

  // softmax(Q Kᵀ · scale + causal mask) V for every sequence and head, from qkv_ into attn_.
  // The (sequence, head) pairs are independent and their products small, so they are spread over OpenMP's
  // threads — the same threads oneDNN's weight products use, so the two never compete for the cores — each
  // making single-threaded OpenBLAS calls (letting a BLAS split every small product would cost a thread
  // hand-off per call: tens of thousands of calls in a GPT-2 124M prefill at batch 8).
  void causal_attention(int layer, int batch, int seq, int pos0, KvCache* cache) {
    const int H = config_.n_head;
    const int pairs = batch * H;
    if (cache != nullptr) append_to_cache(layer, batch, seq, pos0, *cache);
    worker_scores_.resize(static_cast<std::size_t>(omp_get_max_threads()));
#pragma omp parallel for schedule(dynamic, 1)
    for (int pair = 0; pair < pairs; ++pair)
      attend(layer, pair / H, pair % H, seq, pos0, cache, worker_scores_[static_cast<std::size_t>(omp_get_thread_num())]);
  }

  // Copies this call's keys and values into the cache at positions pos0 .. pos0+seq-1.
  void append_to_cache(int layer, int batch, int seq, int pos0, KvCache& cache) {
    const int C = config_.n_embd, D = config_.head_dim();
    for (int b = 0; b < batch; ++b) {
      for (int h = 0; h < config_.n_head; ++h) {
        float* ck = cache.k.data() + cache.offset(layer, b, h);
        float* cv = cache.v.data() + cache.offset(layer, b, h);
        for (int t = 0; t < seq; ++t) {
          const float* row = qkv_.data() + (std::int64_t{b} * seq + t) * 3 * C + h * D;
          std::memcpy(ck + std::int64_t{pos0 + t} * D, row + C, sizeof(float) * D);
          std::memcpy(cv + std::int64_t{pos0 + t} * D, row + 2 * C, sizeof(float) * D);
        }
      }
    }
  }

  // Attention of one sequence b and head h; `scores` is the caller's scratch buffer.
  void attend(int layer, int b, int h, int seq, int pos0, const KvCache* cache, std::vector<float>& scores) {
    const int C = config_.n_embd, D = config_.head_dim();
    float scale = config_.scale_attn_weights ? 1.0f / std::sqrt(static_cast<float>(D)) : 1.0f;
    if (config_.scale_attn_by_inverse_layer_idx) scale /= static_cast<float>(layer + 1);
    constexpr int kQueryBlock = 128;
    scores.resize(static_cast<std::size_t>(std::min(seq, kQueryBlock)) * (pos0 + seq));

    const float* q = qkv_.data() + std::int64_t{b} * seq * 3 * C + h * D;
    // Keys and values: the cache (all positions so far) or, without one, this call's own rows of qkv.
    const float* k = cache != nullptr ? cache->k.data() + cache->offset(layer, b, h) : q + C;
    const float* v = cache != nullptr ? cache->v.data() + cache->offset(layer, b, h) : q + 2 * C;
    const int ld_kv = cache != nullptr ? D : 3 * C;
    float* out = attn_.data() + std::int64_t{b} * seq * C + h * D;
    for (int r0 = 0; r0 < seq; r0 += kQueryBlock) {
      const int r1 = std::min(seq, r0 + kQueryBlock);
      const int rows = r1 - r0;
      const int keys = pos0 + r1;  // the last query of the block sees this many keys
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, keys, D, scale, q + std::int64_t{r0} * 3 * C, 3 * C,
                  k, ld_kv, 0.0f, scores.data(), keys);
      for (int i = 0; i < rows; ++i) {
        float* row = scores.data() + std::int64_t{i} * keys;
        const int visible = pos0 + r0 + i + 1;
        softmax_inplace(row, visible);
        std::fill(row + visible, row + keys, 0.0f);
      }
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, D, keys, 1.0f, scores.data(), keys, v, ld_kv, 0.0f,
                  out + std::int64_t{r0} * C, C);
    }
  }

  const Gpt2Model& model_;
  const Gpt2Config& config_;
  NativeCpuOptions options_;
  std::vector<LayerLinears> layers_;
  std::unique_ptr<Linear> lm_head_;
  // Work buffers, reused across calls (sized for the largest call so far).
  std::vector<float> x_, h_, attn_, proj_, qkv_, fc_, scores_;
  std::vector<std::vector<float>> worker_scores_;  // one scratch buffer per OpenMP thread
};

class NativeCpuDecodeSession;

class NativeCpuBackend final : public Backend {
 public:
  NativeCpuBackend(const Gpt2Model& model, const NativeCpuOptions& options) : options_(options) {
    const auto start = std::chrono::steady_clock::now();
    set_blas_threads(options.threads);
    engine_ = std::make_unique<Gpt2Cpu>(model, options);
    setup_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }

  BackendDescription describe() const override {
    BackendDescription d;
    d.name = "native";
    d.device = "cpu";
    d.precision = options_.precision;
    d.versions["openblas"] = openblas_get_config();
    const dnnl_version_t* v = dnnl_version();
    d.versions["onednn"] = std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch);
    d.details["blas"] = blas_description();
    d.details["matmul"] = engine_->linear_kinds();
    d.details["attention"] = "FP32, causal, query blocks of 128 through OpenBLAS sgemm, (sequence, head) pairs over OpenMP threads";
    if (!options_.matmul_kernels.empty()) d.details["matmul_kernels"] = options_.matmul_kernels;
    d.floating_point_ops = options_.floating_point_ops;
    return d;
  }

  void prefill(const TokenBatch& tokens, OutputMode mode, ForwardOutput& out) override {
    check_batch(tokens);
    const std::int64_t rows = std::int64_t{tokens.batch} * tokens.seq, V = engine_->config().vocab_size;
    const float* hidden = engine_->forward_hidden(tokens.ids.data(), tokens.batch, tokens.seq, 0, nullptr);
    // Summary calls write logits into a buffer the backend keeps, so repeated timed calls touch no fresh memory.
    std::vector<float>& logits = mode == OutputMode::kLogits ? out.logits : logits_;
    logits.resize(static_cast<std::size_t>(rows * V));
    engine_->lm_head(hidden, rows, logits.data());
    summarize_logits(logits.data(), rows, V, out, /*openmp_threads=*/true);
    if (mode == OutputMode::kSummary) out.logits.clear();
  }

  std::unique_ptr<DecodeSession> start_decode(int batch, int max_tokens) override;

  void score_window(std::span<const std::int32_t> ids, int score_from, std::vector<double>& nll) override {
    const int seq = static_cast<int>(ids.size());
    if (score_from < 0 || score_from >= seq) return;
    const std::int64_t C = engine_->config().n_embd, V = engine_->config().vocab_size;
    const float* hidden = engine_->forward_hidden(ids.data(), 1, seq, 0, nullptr);
    // Only the scored positions need logits: for a stride of half the window this halves the LM-head work.
    const std::int64_t scored = seq - 1 - score_from;
    if (scored <= 0) return;
    score_logits_.resize(static_cast<std::size_t>(scored * V));
    engine_->lm_head(hidden + std::int64_t{score_from} * C, scored, score_logits_.data());
    for (std::int64_t r = 0; r < scored; ++r) {
      const float* row = score_logits_.data() + r * V;
      const std::int32_t target = ids[static_cast<std::size_t>(score_from + r + 1)];
      if (target < 0 || target >= V) throw Error("token id " + std::to_string(target) + " is outside the vocabulary");
      nll.push_back(log_sum_exp(row, V) - static_cast<double>(row[target]));
    }
  }

  Gpt2Cpu& engine() { return *engine_; }

 private:
  void check_batch(const TokenBatch& t) const {
    if (t.batch <= 0 || t.seq <= 0 || t.ids.size() != static_cast<std::size_t>(t.batch) * t.seq)
      throw Error("token batch of " + std::to_string(t.ids.size()) + " ids does not match [" + std::to_string(t.batch) +
                  ", " + std::to_string(t.seq) + "]");
  }

  NativeCpuOptions options_;
  std::unique_ptr<Gpt2Cpu> engine_;
  std::vector<float> score_logits_, logits_;
};

class NativeCpuDecodeSession final : public DecodeSession {
 public:
  NativeCpuDecodeSession(Gpt2Cpu& engine, int batch, int max_tokens)
      : engine_(engine),
        cache_(engine.config().n_layer, batch, engine.config().n_head, max_tokens, engine.config().head_dim()),
        batch_(batch) {}

  void prefill(const TokenBatch& prompt, OutputMode mode, ForwardOutput& out) override {
    if (prompt.batch != batch_) throw Error("decode prompt batch " + std::to_string(prompt.batch) + " != session batch " + std::to_string(batch_));
    if (prompt.seq <= 0 || prompt.seq > cache_.max_tokens) throw Error("decode prompt of " + std::to_string(prompt.seq) + " tokens does not fit the cache of " + std::to_string(cache_.max_tokens));
    const float* hidden = engine_.forward_hidden(prompt.ids.data(), batch_, prompt.seq, 0, &cache_);
    position_ = prompt.seq;
    // Only each sequence's last position predicts the next token.
    const std::int64_t C = engine_.config().n_embd;
    last_.resize(static_cast<std::size_t>(batch_ * C));
    for (int b = 0; b < batch_; ++b)
      std::memcpy(last_.data() + b * C, hidden + (std::int64_t{b} * prompt.seq + prompt.seq - 1) * C, sizeof(float) * C);
    emit(last_.data(), mode, out);
  }

  void step(std::span<const std::int32_t> next_ids, OutputMode mode, ForwardOutput& out) override {
    if (static_cast<int>(next_ids.size()) != batch_) throw Error("decode step needs one token per sequence");
    if (position_ == 0) throw Error("decode step before prefill");
    if (position_ >= cache_.max_tokens) throw Error("decode past the cache's " + std::to_string(cache_.max_tokens) + " tokens");
    const float* hidden = engine_.forward_hidden(next_ids.data(), batch_, 1, position_, &cache_);
    ++position_;
    emit(hidden, mode, out);
  }

  int position() const override { return position_; }

 private:
  void emit(const float* hidden, OutputMode mode, ForwardOutput& out) {
    const std::int64_t V = engine_.config().vocab_size;
    std::vector<float>& logits = mode == OutputMode::kLogits ? out.logits : logits_;
    logits.resize(static_cast<std::size_t>(batch_ * V));
    engine_.lm_head(hidden, batch_, logits.data());
    summarize_logits(logits.data(), batch_, V, out, /*openmp_threads=*/true);
    if (mode == OutputMode::kSummary) out.logits.clear();
  }

  Gpt2Cpu& engine_;
  KvCache cache_;
  int batch_;
  int position_ = 0;
  std::vector<float> last_, logits_;
};

std::unique_ptr<DecodeSession> NativeCpuBackend::start_decode(int batch, int max_tokens) {
  if (batch <= 0 || max_tokens <= 0 || max_tokens > engine_->config().n_positions)
    throw Error("decode session needs batch >= 1 and 1 <= max_tokens <= n_positions (" +
                std::to_string(engine_->config().n_positions) + ")");
  return std::make_unique<NativeCpuDecodeSession>(*engine_, batch, max_tokens);
}

}  // namespace

std::unique_ptr<Backend> create_native_cpu_backend(const Gpt2Model& model, const NativeCpuOptions& options) {
  return std::make_unique<NativeCpuBackend>(model, options);
}

}  // namespace gptbench
