// The CUDA engine against a double-precision host forward pass of a small random GPT-2, plus its host helpers.
// GPU tests skip (with the reason) on machines without a CUDA device, e.g. CI.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <random>
#include <regex>

#include <filesystem>

#include "backends/backend.h"
#include "backends/backend_options.h"
#include "backends/cuda/cuda_backend.h"
#include "backends/cuda/cuda_engine.h"
#include "common/error.h"
#include "eval/perplexity.h"
#include "model/checkpoint.h"
#include "quant/calibration_cache.h"

namespace gptbench {
namespace {

using cuda_engine::float_to_bf16_bits;
using cuda_engine::float_to_half_bits;

float bits_to_float(std::uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

TEST(CudaHost, PaddedVocabIsAMultipleOf128) {
  EXPECT_EQ(cuda_engine::padded_vocab(50257), 50304);
  EXPECT_EQ(cuda_engine::padded_vocab(1000), 1024);
  EXPECT_EQ(cuda_engine::padded_vocab(128), 128);
}

TEST(CudaHost, HalfConversionRoundsToNearestEven) {
  EXPECT_EQ(float_to_half_bits(1.0f), 0x3C00);
  EXPECT_EQ(float_to_half_bits(-2.0f), 0xC000);
  EXPECT_EQ(float_to_half_bits(0.1f), 0x2E66);
  EXPECT_EQ(float_to_half_bits(65504.0f), 0x7BFF);
  EXPECT_EQ(float_to_half_bits(65520.0f), 0x7C00);  // rounds up to infinity
  EXPECT_EQ(float_to_half_bits(std::ldexp(1.0f, -24)), 0x0001);  // smallest subnormal
  EXPECT_EQ(float_to_half_bits(std::ldexp(1.0f, -25)), 0x0000);  // tie to even: zero
  EXPECT_EQ(float_to_half_bits(std::ldexp(3.0f, -25)), 0x0002);  // 1.5 steps: tie to even: 2
  EXPECT_EQ(float_to_half_bits(1.0f + std::ldexp(1.0f, -11)), 0x3C00);  // halfway: to even
  EXPECT_EQ(float_to_half_bits(1.0f + std::ldexp(3.0f, -11)), 0x3C02);  // halfway: to even (up)
  EXPECT_EQ(float_to_half_bits(bits_to_float(0x7fc00000u)) & 0x7e00, 0x7e00);  // NaN stays NaN
}

TEST(CudaHost, Bf16ConversionRoundsToNearestEven) {
  EXPECT_EQ(float_to_bf16_bits(1.0f), 0x3F80);
  EXPECT_EQ(float_to_bf16_bits(0.1f), 0x3DCD);
  EXPECT_EQ(float_to_bf16_bits(bits_to_float(0x3F808000u)), 0x3F80);  // tie, even stays
  EXPECT_EQ(float_to_bf16_bits(bits_to_float(0x3F818000u)), 0x3F82);  // tie, odd rounds up
}

TEST(CudaHost, PrecisionNames) {
  cuda_engine::Precision p;
  for (const char* name : {"fp32", "tf32", "fp16", "bf16", "int8"}) {
    ASSERT_TRUE(cuda_engine::parse_precision(name, p));
    EXPECT_STREQ(cuda_engine::precision_name(p), name);
  }
  EXPECT_FALSE(cuda_engine::parse_precision("int4", p));
}

// ---- a small random model and a double-precision reference forward -----------------------------------------------
Gpt2Model small_model(int n_head, std::uint32_t seed, int n_embd = 128, int vocab = 1000, int n_positions = 128) {
  Gpt2Model m;
  m.config.n_layer = 2;
  m.config.n_head = n_head;
  m.config.n_embd = n_embd;
  m.config.n_positions = n_positions;
  m.config.vocab_size = vocab;
  m.weights = allocate_weights(m.config);
  std::mt19937 rng(seed);
  std::normal_distribution<float> n(0.f, 1.f);
  for_each_tensor(m.weights, [&](const std::string& name, Tensor& t) {
    const bool ln = name.find("ln_") != std::string::npos;
    const bool bias = name.size() > 4 && name.compare(name.size() - 4, 4, "bias") == 0;
    for (float& v : t.data) v = ln && !bias ? 1.f + 0.1f * n(rng) : (bias ? 0.02f : 0.08f) * n(rng);
  });
  return m;
}

std::vector<double> layernorm(const std::vector<double>& x, const Tensor& w, const Tensor& b) {
  const std::size_t C = x.size();
  double mean = 0, var = 0;
  for (double v : x) mean += v;
  mean /= C;
  for (double v : x) var += (v - mean) * (v - mean);
  var /= C;
  std::vector<double> out(C);
  for (std::size_t c = 0; c < C; ++c) out[c] = (x[c] - mean) / std::sqrt(var + 1e-5) * w.data[c] + b.data[c];
  return out;
}

// max |input| of each projection, by the engines' linear names (the ranges an int8 calibration would find)
using InputRanges = std::map<std::string, double>;
void observe(InputRanges* ranges, const std::string& name, const std::vector<std::vector<double>>& x) {
  if (!ranges) return;
  double& m = (*ranges)[name];
  for (const auto& row : x)
    for (double v : row) m = std::max(m, std::fabs(v));
}

// y = x W + b for every row; W [in, out].
std::vector<std::vector<double>> linear(const std::vector<std::vector<double>>& x, const Tensor& W, const Tensor& b,
                                        InputRanges* ranges = nullptr, const std::string& name = "") {
  observe(ranges, name, x);
  const std::int64_t in = W.shape[0], out = W.shape[1];
  std::vector<std::vector<double>> y(x.size(), std::vector<double>(out));
  for (std::size_t r = 0; r < x.size(); ++r)
    for (std::int64_t o = 0; o < out; ++o) {
      double s = b.data[o];
      for (std::int64_t i = 0; i < in; ++i) s += x[r][i] * W.data[i * out + o];
      y[r][o] = s;
    }
  return y;
}

// logits [seq, V] of one sequence
std::vector<double> reference_logits(const Gpt2Model& m, const std::vector<std::int32_t>& ids,
                                     InputRanges* ranges = nullptr) {
  const auto& cfg = m.config;
  const int S = static_cast<int>(ids.size()), C = cfg.n_embd, H = cfg.n_head, D = cfg.head_dim(), V = cfg.vocab_size;
  std::vector<std::vector<double>> x(S, std::vector<double>(C));
  for (int s = 0; s < S; ++s)
    for (int c = 0; c < C; ++c) x[s][c] = m.weights.wte.data[ids[s] * C + c] + m.weights.wpe.data[s * C + c];
  for (std::size_t li = 0; li < m.weights.layers.size(); ++li) {
    const auto& l = m.weights.layers[li];
    const std::string p = "h." + std::to_string(li) + ".";
    std::vector<std::vector<double>> h(S);
    for (int s = 0; s < S; ++s) h[s] = layernorm(x[s], l.ln_1_weight, l.ln_1_bias);
    auto qkv = linear(h, l.c_attn_weight, l.c_attn_bias, ranges, p + "attn.c_attn");
    std::vector<std::vector<double>> att(S, std::vector<double>(C));
    for (int hd = 0; hd < H; ++hd)
      for (int i = 0; i < S; ++i) {
        std::vector<double> p(i + 1);
        double mx = -1e300;
        for (int j = 0; j <= i; ++j) {
          double dot = 0;
          for (int d = 0; d < D; ++d) dot += qkv[i][hd * D + d] * qkv[j][C + hd * D + d];
          p[j] = dot / std::sqrt(static_cast<double>(D));
          mx = std::max(mx, p[j]);
        }
        double sum = 0;
        for (double& v : p) sum += (v = std::exp(v - mx));
        for (int d = 0; d < D; ++d) {
          double o = 0;
          for (int j = 0; j <= i; ++j) o += p[j] / sum * qkv[j][2 * C + hd * D + d];
          att[i][hd * D + d] = o;
        }
      }
    auto y = linear(att, l.attn_proj_weight, l.attn_proj_bias, ranges, p + "attn.c_proj");
    for (int s = 0; s < S; ++s)
      for (int c = 0; c < C; ++c) x[s][c] += y[s][c];
    for (int s = 0; s < S; ++s) h[s] = layernorm(x[s], l.ln_2_weight, l.ln_2_bias);
    auto f = linear(h, l.c_fc_weight, l.c_fc_bias, ranges, p + "mlp.c_fc");
    for (auto& row : f)
      for (double& v : row) v = 0.5 * v * (1 + std::tanh(0.7978845608028654 * (v + 0.044715 * v * v * v)));
    auto y2 = linear(f, l.mlp_proj_weight, l.mlp_proj_bias, ranges, p + "mlp.c_proj");
    for (int s = 0; s < S; ++s)
      for (int c = 0; c < C; ++c) x[s][c] += y2[s][c];
  }
  std::vector<double> logits(static_cast<std::size_t>(S) * V);
  for (int s = 0; s < S; ++s) {
    auto h = layernorm(x[s], m.weights.ln_f_weight, m.weights.ln_f_bias);
    observe(ranges, "lm_head", {h});
    for (int v = 0; v < V; ++v) {
      double dot = 0;
      for (int c = 0; c < C; ++c) dot += h[c] * m.weights.wte.data[v * C + c];
      logits[static_cast<std::size_t>(s) * V + v] = dot;
    }
  }
  return logits;
}

std::vector<std::int32_t> random_ids(int n, int vocab, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> d(0, vocab - 1);
  std::vector<std::int32_t> ids(n);
  for (auto& v : ids) v = d(rng);
  return ids;
}

// Decode tests: ids holds B sequences of S tokens; the first `prompt` of each as one prompt batch, and the token
// at position `pos` of each (the next step's input).
TokenBatch prompts_of(const std::vector<std::int32_t>& ids, int B, int S, int prompt) {
  TokenBatch p{B, prompt, {}};
  for (int b = 0; b < B; ++b) p.ids.insert(p.ids.end(), ids.begin() + b * S, ids.begin() + b * S + prompt);
  return p;
}
std::vector<std::int32_t> tokens_at(const std::vector<std::int32_t>& ids, int B, int S, int pos) {
  std::vector<std::int32_t> next;
  for (int b = 0; b < B; ++b) next.push_back(ids[b * S + pos]);
  return next;
}

std::unique_ptr<Backend> cuda_backend(const Gpt2Model& m, const std::string& precision,
                                      std::map<std::string, std::string> options = {}) {
  BackendSpec spec;
  spec.device = "cuda";
  spec.precision = precision;
  spec.options = std::move(options);
  return create_cuda_backend(spec, m);
}

struct Errors {
  double max_rel = 0, rel_norm = 0;
};
Errors compare(const std::vector<float>& got, const std::vector<double>& ref) {
  double max_abs = 0, max_ref = 0, sq = 0, ref_sq = 0;
  for (std::size_t i = 0; i < ref.size(); ++i) {
    const double d = got[i] - ref[i];
    max_abs = std::max(max_abs, std::fabs(d));
    max_ref = std::max(max_ref, std::fabs(ref[i]));
    sq += d * d;
    ref_sq += ref[i] * ref[i];
  }
  return {max_abs / max_ref, std::sqrt(sq / ref_sq)};
}

#define REQUIRE_DEVICE()                                                      \
  do {                                                                        \
    std::string why;                                                          \
    if (!cuda_device_available(&why)) GTEST_SKIP() << "no CUDA device: " << why; \
  } while (0)

TEST(CudaEngine, CreationWithoutDeviceIsAClearError) {
  std::string why;
  if (cuda_device_available(&why)) GTEST_SKIP() << "a device is present; this test is for machines without one";
  const Gpt2Model m = small_model(2, 1);
  try {
    cuda_backend(m, "fp32");
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("native/cuda/fp32"), std::string::npos) << e.what();
  }
}

// Options are read before the device is looked for, so this runs everywhere (CI too).
TEST(CudaEngine, BadOptionValuesAreOneClearError) {
  const Gpt2Model m = small_model(2, 1);
  for (const auto& [key, value] : std::vector<std::pair<std::string, std::string>>{
           {"attention_warps", "four"}, {"attention_warps", "2"}, {"gemv_max_rows", "9"}, {"gemv_max_rows", "4x"},
           {"gemv_lm_head_max_rows", "0"}, {"gemv_lm_head_max_rows", "9"},
           {"device", "-1"}, {"graphs", "yes please"}, {"prefill_pdl", "maybe"}, {"attention", "sdpa"}, {"attention_ksplit", "2"},
           {"residual_epilogue", "enabled"}, {"gemm_tune_l2", "warm"}, {"wgmma_max_rows", "-1"},
           {"wgmma_max_rows", "all"}, {"wgmma_tile", "32x32"}, {"wgmma_pdl", "sometimes"},
           {"lm_head_summary_rows", "-1"}, {"lm_head_summary_rows", "many"}, {"lm_head_summary_min_rows", "0"},
           {"lm_head_pingpong", "fast"}, {"decode_reuse", "maybe"}, {"decode_persistent", "yes"}, {"decode_mma", "enabled"}, {"decode_mma", "qkv"},
           {"residual_16bit", "half"}, {"layernorm_rows", "3"}, {"layernorm_rows", "8"},
           {"fused_layernorm_rows", "-1"}, {"fused_layernorm_rows", "4k"}}) {
    try {
      cuda_backend(m, "fp16", {{key, value}});
      ADD_FAILURE() << key << "=" << value << " was accepted";
    } catch (const Error& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("option " + key), std::string::npos) << what;
      EXPECT_NE(what.find(value), std::string::npos) << what;
      EXPECT_EQ(what.find('\n'), std::string::npos) << what;
    }
  }
}

// An option key the engine does not read is refused before anything else (no device needed): a misspelt key
// would otherwise leave the setting it names out of a run that looks valid.
TEST(CudaEngine, UnknownOptionIsOneClearError) {
  const Gpt2Model m = small_model(2, 1);
  try {
    cuda_backend(m, "fp16", {{"attention_ksplt", "0"}});
    ADD_FAILURE() << "attention_ksplt was accepted";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("unknown option 'attention_ksplt'"), std::string::npos) << what;
    EXPECT_NE(what.find("attention_ksplit"), std::string::npos) << what;
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
  }
}

// The keys the configuration accepts for native/cuda (backends/backend_options.cpp) are the ones cuda_backend.h
// documents: an option added to one and not the other fails here.
TEST(CudaEngine, OptionKeysMatchTheDocumentedOnes) {
  std::ifstream header(std::string(GPTBENCH_SOURCE_DIR) + "/src/backends/cuda/cuda_backend.h");
  ASSERT_TRUE(header) << "cannot read cuda_backend.h";
  std::vector<std::string> documented;
  const std::regex entry(R"re(^//   "([a-z0-9_]+)")re");
  for (std::string line; std::getline(header, line);)
    if (std::smatch m; std::regex_search(line, m, entry)) documented.push_back(m[1]);
  std::sort(documented.begin(), documented.end());
  EXPECT_EQ(documented, backend_option_keys("native", "cuda"));
}

class CudaEngineAccuracy : public ::testing::TestWithParam<int> {};  // param: number of heads (D = 128/heads)

TEST_P(CudaEngineAccuracy, LogitsMatchDoublePrecisionReference) {
  REQUIRE_DEVICE();
  const Gpt2Model m = small_model(GetParam(), 7);
  const int B = 2, S = 80;  // S not a multiple of the 64-key tile
  const auto ids = random_ids(B * S, m.config.vocab_size, 3);
  std::vector<double> ref;
  for (int b = 0; b < B; ++b) {
    auto r = reference_logits(m, std::vector<std::int32_t>(ids.begin() + b * S, ids.begin() + (b + 1) * S));
    ref.insert(ref.end(), r.begin(), r.end());
  }
  const std::map<std::string, std::pair<double, double>> limits = {
      {"fp32", {1e-4, 1e-5}}, {"tf32", {2e-2, 5e-3}}, {"fp16", {2e-2, 5e-3}}, {"bf16", {1e-1, 3e-2}}};
  struct Variant {
    std::string precision;
    std::map<std::string, std::string> options;
  };
  std::vector<Variant> variants;
  for (const auto& [precision, limit] : limits) {
    variants.push_back({precision, {}});
    // the projections' residual add in a LayerNorm kernel instead of cuBLASLt's epilogue (the default)
    variants.push_back({precision, {{"residual_epilogue", "0"}}});
  }
  // the prefill attention kernels that are not picked by default for this shape
  for (const char* precision : {"fp16", "bf16"}) {
    variants.push_back({precision, {{"attention", "mma"}, {"attention_warps", "4"}}});
    variants.push_back({precision, {{"attention", "mma"}, {"attention_warps", "1"}}});
    variants.push_back({precision, {{"attention", "wmma"}}});
    variants.push_back({precision, {{"attention", "mma"}}});  // (on an H100 / H200 the default is the wgmma one)
    variants.push_back({precision, {{"attention_ksplit", "1"}}});  // (head size 64 on an H100 / H200)
    variants.push_back({precision, {{"prefill_pdl", "1"}}});  // LayerNorm / attention as programmatic dependents
    variants.push_back({precision, {{"gemm_tune_l2", "hot"}}});  // the autotune's calls back to back
    // the residual stream in 16 bits (the fp16 default) and in float (the bf16 default)
    variants.push_back({precision, {{"residual_16bit", std::string(precision) == "fp16" ? "0" : "1"}}});
    // 160 rows: the cuBLASLt path by default; with wgmma_max_rows >= 160 (on an H100 / H200) the TMA + wgmma
    // products and the PDL chain, here with the LM head too
    variants.push_back({precision, {{"wgmma_max_rows", "160"}}});
    variants.push_back({precision, {{"wgmma_max_rows", "160"}, {"wgmma_lm_head", "1"}}});
    // the chain launched kernel by kernel (PDL outside graphs)
    variants.push_back({precision, {{"wgmma_max_rows", "160"}, {"graphs", "0"}}});
    for (const char* tile : {"128x64", "64x64", "128x32"})  // the other block shapes (default 64x32)
      variants.push_back({precision, {{"wgmma_max_rows", "160"}, {"wgmma_tile", tile}}});
  }
  for (const auto& [precision, options] : variants) {
    std::string label = precision;
    for (const auto& [key, value] : options) label += " " + key + "=" + value;
    SCOPED_TRACE(label);
    const auto limit = limits.at(precision);
    auto backend = cuda_backend(m, precision, options);
    ForwardOutput out;
    backend->prefill(TokenBatch{B, S, ids}, OutputMode::kLogits, out);
    ASSERT_EQ(out.logits.size(), ref.size());
    const Errors e = compare(out.logits, ref);
    EXPECT_LE(e.max_rel, limit.first) << precision;
    EXPECT_LE(e.rel_norm, limit.second) << precision;
    EXPECT_GT(e.rel_norm, 0.0) << precision << ": identical to double precision is not believable";
    // summary outputs agree with the logits
    ForwardOutput summary;
    backend->prefill(TokenBatch{B, S, ids}, OutputMode::kSummary, summary);
    double sum = 0;
    for (float v : out.logits) sum += v;
    EXPECT_NEAR(summary.checksum, sum, 1e-6 * std::max(1.0, std::fabs(sum)) + 1e-3) << precision;
    ForwardOutput host;
    summarize_logits(out.logits.data(), B * S, m.config.vocab_size, host);
    EXPECT_EQ(summary.top1, host.top1) << precision;
  }
}

INSTANTIATE_TEST_SUITE_P(HeadDims, CudaEngineAccuracy, ::testing::Values(2, 4));

// attention_ksplit: the Hopper attention kernel with each block's key tiles split between two warpgroups and
// merged at the end agrees with the double reference, differs in its bits from the plain kernel (so it ran), and
// the default picks it for one long sequence (few blocks, > 256 tokens) but not for short ones. Off Hopper the
// option changes nothing. (No autotune: the products must not differ between the backends compared.)
TEST(CudaEngine, AttentionKeySplitMatchesReference) {
  REQUIRE_DEVICE();
  const Gpt2Model m = small_model(2, 13, 128, 1000, 512);  // head size 64
  const bool hopper = cuda_engine::compute_capability(0) == 90;
  auto plain = cuda_backend(m, "fp16", {{"gemm_autotune", "0"}, {"attention_ksplit", "0"}});
  auto chosen = cuda_backend(m, "fp16", {{"gemm_autotune", "0"}});
  auto split = cuda_backend(m, "fp16", {{"gemm_autotune", "0"}, {"attention_ksplit", "1"}});
  for (const auto& [B, S] : std::vector<std::pair<int, int>>{{1, 320}, {2, 80}}) {
    SCOPED_TRACE("B" + std::to_string(B) + " x S" + std::to_string(S));
    const auto ids = random_ids(B * S, m.config.vocab_size, 21 + S);
    std::vector<double> ref;
    for (int b = 0; b < B; ++b) {
      auto r = reference_logits(m, std::vector<std::int32_t>(ids.begin() + b * S, ids.begin() + (b + 1) * S));
      ref.insert(ref.end(), r.begin(), r.end());
    }
    ForwardOutput a, b, c;
    plain->prefill(TokenBatch{B, S, ids}, OutputMode::kLogits, a);
    chosen->prefill(TokenBatch{B, S, ids}, OutputMode::kLogits, b);
    split->prefill(TokenBatch{B, S, ids}, OutputMode::kLogits, c);
    ASSERT_EQ(c.logits.size(), ref.size());
    for (const ForwardOutput* o : {&a, &b, &c}) {
      const Errors e = compare(o->logits, ref);
      EXPECT_LE(e.max_rel, 2e-2);
      EXPECT_LE(e.rel_norm, 5e-3);
    }
    if (hopper) {
      EXPECT_NE(a.logits, c.logits) << "the key split changed no bit: it did not run";
      EXPECT_EQ(b.logits, S > 256 ? c.logits : a.logits) << "the default picked the other kernel";
    } else {
      EXPECT_EQ(a.logits, c.logits);
      EXPECT_EQ(a.logits, b.logits);
    }
  }
}

// residual_16bit: a cuBLASLt prefill (160 rows: more than the few-row paths take) really keeps its residual stream
// in 16 bits: its logits differ from the float stream's, they stay within the precision's limit against the double
// reference and within a few times the float stream's error, and describe() says so (by default for fp16 only).
TEST(CudaEngine, Residual16BitKeepsTheStreamIn16Bits) {
  REQUIRE_DEVICE();
  const Gpt2Model m = small_model(2, 5);
  const int B = 2, S = 80;
  const auto ids = random_ids(B * S, m.config.vocab_size, 9);
  std::vector<double> ref;
  for (int b = 0; b < B; ++b) {
    auto r = reference_logits(m, std::vector<std::int32_t>(ids.begin() + b * S, ids.begin() + (b + 1) * S));
    ref.insert(ref.end(), r.begin(), r.end());
  }
  for (const char* precision : {"fp16", "bf16"}) {
    SCOPED_TRACE(precision);
    auto wide = cuda_backend(m, precision, {{"residual_16bit", "0"}});
    auto narrow = cuda_backend(m, precision, {{"residual_16bit", "1"}});
    // the defaults: 16 bits for fp16, float for bf16
    const std::string by_default = cuda_backend(m, precision)->describe().details.at("kernels");
    EXPECT_EQ(by_default.find("residual stream in 16 bits") != std::string::npos, std::string(precision) == "fp16");
    const std::string narrow_kernels = narrow->describe().details.at("kernels");
    EXPECT_EQ(wide->describe().details.at("kernels").find("residual stream in 16 bits"), std::string::npos);
    EXPECT_NE(narrow_kernels.find("residual stream in 16 bits"), std::string::npos) << narrow_kernels;
    ForwardOutput a, b;
    wide->prefill(TokenBatch{B, S, ids}, OutputMode::kLogits, a);
    narrow->prefill(TokenBatch{B, S, ids}, OutputMode::kLogits, b);
    ASSERT_EQ(a.logits.size(), b.logits.size());
    EXPECT_NE(a.logits, b.logits) << "the option changed nothing: the stream is not in 16 bits";
    const Errors e_wide = compare(a.logits, ref), e_narrow = compare(b.logits, ref);
    // 16-bit rounding of the stream adds error, but within a few times the float stream's
    EXPECT_LE(e_narrow.rel_norm, std::string(precision) == "fp16" ? 5e-3 : 3e-2);
    EXPECT_LE(e_narrow.rel_norm, 10 * e_wide.rel_norm + 1e-4);
  }
}

// The persistent few-row prefill (layers_persistent.cuh): on an H100 / H200, fp16 / bf16, head size 64 and
// n_embd a multiple of 256, prefills of <= 128 rows run every block in one kernel. It must agree with the double
// reference as the kernel chain does, at several shapes (a full 128 rows, rows not a multiple of 16, several
// sequences, one token), with and without graphs, and say in describe() when it is on.
TEST(CudaEngine, PersistentPrefillMatchesReference) {
  REQUIRE_DEVICE();
  const Gpt2Model m = small_model(4, 11, 256);  // head size 64
  const bool hopper = cuda_engine::compute_capability(0) == 90;
  const std::map<std::string, std::pair<double, double>> limits = {{"fp16", {2e-2, 5e-3}}, {"bf16", {1e-1, 3e-2}}};
  for (const auto& [precision, limit] : limits) {
    auto persistent = cuda_backend(m, precision);
    auto chain = cuda_backend(m, precision, {{"persistent", "0"}});
    auto pairs = cuda_backend(m, precision, {{"persistent_pairs", "1"}});  // the paired kernel
    // QKV -> attention through a grid barrier instead of the per-head counters: the same work, the same bits
    auto barrier = cuda_backend(m, precision, {{"gemm_autotune", "0"}, {"persistent_head_flags", "0"}});
    // (no LM head autotune in these two, so that both take the same cuBLASLt algorithm)
    auto fixed = cuda_backend(m, precision, {{"gemm_autotune", "0"}});
    auto eager = cuda_backend(m, precision, {{"graphs", "0"}, {"gemm_autotune", "0"}});
    // the embedding in its own kernel before the persistent one (option persistent_embed=0)
    auto embed_kernel = cuda_backend(m, precision, {{"gemm_autotune", "0"}, {"persistent_embed", "0"}});
    const std::string kernels = persistent->describe().details.at("kernels");
    EXPECT_EQ(kernels.find("persistent") != std::string::npos, hopper) << kernels;
    EXPECT_EQ(chain->describe().details.at("kernels").find("persistent"), std::string::npos);
    for (const auto& [B, S] : std::vector<std::pair<int, int>>{{1, 128}, {1, 100}, {2, 64}, {3, 37}, {1, 1}}) {
      SCOPED_TRACE(precision + " B" + std::to_string(B) + " x S" + std::to_string(S));
      const auto ids = random_ids(B * S, m.config.vocab_size, 5 + S);
      std::vector<double> ref;
      for (int b = 0; b < B; ++b) {
        auto r = reference_logits(m, std::vector<std::int32_t>(ids.begin() + b * S, ids.begin() + (b + 1) * S));
        ref.insert(ref.end(), r.begin(), r.end());
      }
      ForwardOutput a, b, c, d, e1, f, g;
      persistent->prefill(TokenBatch{B, S, ids}, OutputMode::kLogits, a);
      pairs->prefill(TokenBatch{B, S, ids}, OutputMode::kLogits, e1);
      chain->prefill(TokenBatch{B, S, ids}, OutputMode::kLogits, b);
      eager->prefill(TokenBatch{B, S, ids}, OutputMode::kLogits, c);
      fixed->prefill(TokenBatch{B, S, ids}, OutputMode::kLogits, d);
      embed_kernel->prefill(TokenBatch{B, S, ids}, OutputMode::kLogits, f);
      barrier->prefill(TokenBatch{B, S, ids}, OutputMode::kLogits, g);
      for (const auto* out : {&a, &b, &c, &d, &e1, &f, &g}) {
        ASSERT_EQ(out->logits.size(), ref.size());
        const Errors e = compare(out->logits, ref);
        EXPECT_LE(e.max_rel, limit.first);
        EXPECT_LE(e.rel_norm, limit.second);
        EXPECT_GT(e.rel_norm, 0.0) << "identical to double precision is not believable";
      }
      // graphs or not, the same kernels: the same bits (the split-K partials are summed in a fixed order)
      EXPECT_EQ(d.logits, c.logits);
      // the embedding inside the kernel or before it: the same additions, the same bits
      EXPECT_EQ(d.logits, f.logits);
      EXPECT_EQ(d.logits, g.logits);
      ForwardOutput summary;
      persistent->prefill(TokenBatch{B, S, ids}, OutputMode::kSummary, summary);
      ForwardOutput host;
      summarize_logits(a.logits.data(), B * S, m.config.vocab_size, host);
      EXPECT_EQ(summary.top1, host.top1);
    }
  }
}

// The persistent kernel's own LM head phase (option persistent_lm_head, off by default: H100 / H200, fp16 / bf16,
// n_embd <= 768, prefills of <= 128 rows): its logits must agree with cuBLASLt's LM head after the same layers
// (the default) to the 16-bit rounding and its top-1 with cuBLASLt's except at near ties; its top-1 and
// checksum must be those of the logits it stores (the checksum their sum in double), and a summary-only call must
// give the same top-1 and checksum bit for bit — with every block on one half of the rows (<= 64 rows) and on two
// (65-128 rows, partial halves), several sequences, one token, GPT-2's vocabulary (not a multiple of the 64-column
// tiles; several tiles a warpgroup, so each warpgroup's ring of boxes wraps), graphs and eager.
TEST(CudaEngine, PersistentLmHeadAgreesWithCublasLt) {
  REQUIRE_DEVICE();
  const Gpt2Model m = small_model(4, 23, 256, 50257);
  const int V = m.config.vocab_size;
  const bool hopper = cuda_engine::compute_capability(0) == 90;
  for (const char* precision : {"fp16", "bf16"}) {
    auto inside = cuda_backend(m, precision, {{"persistent_lm_head", "1"}});
    auto eager = cuda_backend(m, precision, {{"persistent_lm_head", "1"}, {"graphs", "0"}});
    auto cublas = cuda_backend(m, precision);
    const std::string on = inside->describe().details.at("kernels"), off = cublas->describe().details.at("kernels");
    EXPECT_EQ(on.find("the LM head and its top-1 / row-sum summary inside") != std::string::npos, hopper) << on;
    EXPECT_EQ(off.find("the LM head and its top-1 / row-sum summary inside"), std::string::npos) << off;
    const double tol = std::string(precision) == "fp16" ? 2e-3 : 1.6e-2;  // ~2 units in the last place
    for (const auto& [B, S] : std::vector<std::pair<int, int>>{{1, 128}, {1, 100}, {2, 64}, {1, 65}, {3, 37}, {1, 1}}) {
      SCOPED_TRACE(std::string(precision) + " B" + std::to_string(B) + " x S" + std::to_string(S));
      const int rows = B * S;
      const auto ids = random_ids(rows, V, 41 + S);
      ForwardOutput il, is, el, cl;
      inside->prefill(TokenBatch{B, S, ids}, OutputMode::kLogits, il);
      inside->prefill(TokenBatch{B, S, ids}, OutputMode::kSummary, is);
      eager->prefill(TokenBatch{B, S, ids}, OutputMode::kLogits, el);
      cublas->prefill(TokenBatch{B, S, ids}, OutputMode::kLogits, cl);
      ASSERT_EQ(il.logits.size(), static_cast<std::size_t>(rows) * V);
      ForwardOutput host;
      summarize_logits(il.logits.data(), rows, V, host);
      EXPECT_EQ(il.top1, host.top1);
      EXPECT_EQ(is.top1, host.top1);
      double exact = 0;
      for (float v : il.logits) exact += v;
      EXPECT_NEAR(il.checksum, exact, 1e-9 * std::max(1.0, std::fabs(exact)));
      EXPECT_EQ(is.checksum, il.checksum);
      EXPECT_EQ(el.logits, il.logits) << "graphs and eager differ";
      EXPECT_EQ(el.top1, il.top1);
      EXPECT_EQ(el.checksum, il.checksum);
      std::vector<double> ref(cl.logits.begin(), cl.logits.end());
      const Errors e = compare(il.logits, ref);
      EXPECT_LE(e.rel_norm, tol / 2);
      ASSERT_EQ(il.top1.size(), cl.top1.size());
      for (int r = 0; r < rows; ++r)
        if (il.top1[r] != cl.top1[r]) {
          const float x = cl.logits[static_cast<std::size_t>(r) * V + il.top1[r]],
                      y = cl.logits[static_cast<std::size_t>(r) * V + cl.top1[r]];
          EXPECT_LE(std::fabs(x - y), tol * std::max(std::fabs(x), std::fabs(y))) << "row " << r;
        }
    }
  }
}

// The LM head with the summary in its epilogue (lm_head_summary.cuh: H100 / H200, fp16 / bf16, prefills and decode
// prompts of lm_head_summary_min_rows .. lm_head_summary_rows rows; on by default from 256 rows), whose
// summary-only form writes no logits: its top-1 and checksum must be those of the logits its storing form writes,
// those logits must agree with cuBLASLt's LM head (option lm_head_summary_rows=0, the row_summary kernel after it)
// to the 16-bit rounding, and so must the top-1 except at near ties — for the ping-pong kernel (the default) and
// the cooperative one (lm_head_pingpong=0), both here from 1 row on, for prefills within and above the row limit
// (200 rows: the cuBLASLt path either way), a vocabulary that is not a multiple of their 192-column tiles, and a
// decode prompt. The cooperative kernel's checksum is the logits' exact sum (double per logit); the ping-pong
// kernel sums runs of 96 logits in float first, so its checksum is within 96 float units in the last place of the
// logits' absolute sum (a tile of 128 rows left out or counted twice moves it by that tile's sum: hundreds of
// times more here). describe() says when it is on.
TEST(CudaEngine, LmHeadSummaryAgreesWithTheStoredLogits) {
  REQUIRE_DEVICE();
  const Gpt2Model m = small_model(4, 17, 256);
  const int V = m.config.vocab_size;
  const bool hopper = cuda_engine::compute_capability(0) == 90;
  for (const char* precision : {"fp16", "bf16"})
  for (const bool pingpong : {true, false}) {
    SCOPED_TRACE(pingpong ? "ping-pong kernel" : "cooperative kernel");
    auto fused = cuda_backend(m, precision, {{"lm_head_summary_rows", "128"}, {"lm_head_summary_min_rows", "1"},
                                             {"lm_head_pingpong", pingpong ? "1" : "0"}});
    auto plain = cuda_backend(m, precision, {{"lm_head_summary_rows", "0"}});  // cuBLASLt's LM head, row_summary
    const std::string on = fused->describe().details.at("kernels"), off = plain->describe().details.at("kernels");
    EXPECT_EQ(on.find("summary in its epilogue") != std::string::npos, hopper) << on;
    EXPECT_EQ(on.find("ping-pong") != std::string::npos, hopper && pingpong) << on;
    EXPECT_EQ(off.find("summary in its epilogue"), std::string::npos) << off;
    const double tol = std::string(precision) == "fp16" ? 2e-3 : 1.6e-2;  // ~2 units in the last place
    auto near_tie = [&](const std::vector<float>& logits, int row, int a, int b) {
      const float x = logits[static_cast<std::size_t>(row) * V + a], y = logits[static_cast<std::size_t>(row) * V + b];
      return std::fabs(x - y) <= tol * std::max(std::fabs(x), std::fabs(y));
    };
    for (const auto& [B, S] : std::vector<std::pair<int, int>>{{1, 128}, {3, 37}, {2, 100}, {1, 1}}) {
      SCOPED_TRACE(std::string(precision) + " B" + std::to_string(B) + " x S" + std::to_string(S));
      const int rows = B * S;
      const auto ids = random_ids(rows, V, 31 + S);
      ForwardOutput fl, fs, pl, ps;
      fused->prefill(TokenBatch{B, S, ids}, OutputMode::kLogits, fl);
      fused->prefill(TokenBatch{B, S, ids}, OutputMode::kSummary, fs);
      plain->prefill(TokenBatch{B, S, ids}, OutputMode::kLogits, pl);
      plain->prefill(TokenBatch{B, S, ids}, OutputMode::kSummary, ps);
      for (const auto& [logits, summary] : {std::pair{&fl, &fs}, std::pair{&pl, &ps}}) {
        ForwardOutput host;
        summarize_logits(logits->logits.data(), rows, V, host);
        EXPECT_EQ(summary->top1, host.top1);
        // the 16-bit logits' sum in double, in order (summarize_logits adds floats first)
        double exact = 0, magnitude = 0;
        for (float v : logits->logits) exact += v, magnitude += std::fabs(v);
        const bool float_runs = hopper && pingpong && logits == &fl && rows <= 128;
        EXPECT_NEAR(summary->checksum, exact,
                    float_runs ? 96 * 0x1p-24 * magnitude : 1e-9 * std::max(1.0, std::fabs(exact)));
      }
      std::vector<double> ref(pl.logits.begin(), pl.logits.end());
      const Errors e = compare(fl.logits, ref);
      EXPECT_LE(e.rel_norm, tol / 2);
      ASSERT_EQ(fs.top1.size(), ps.top1.size());
      for (int r = 0; r < rows; ++r)
        if (fs.top1[r] != ps.top1[r]) {
          EXPECT_TRUE(near_tie(pl.logits, r, fs.top1[r], ps.top1[r])) << "row " << r;
        }
    }
    // a decode prompt: the LM head of the last position of each sequence only
    const int B = 3, S = 30;
    const auto ids = random_ids(B * S, V, 77);
    ForwardOutput full, first;
    plain->prefill(TokenBatch{B, S, ids}, OutputMode::kLogits, full);
    auto session = fused->start_decode(B, S + 4);
    session->prefill(TokenBatch{B, S, ids}, OutputMode::kSummary, first);
    ASSERT_EQ(first.top1.size(), static_cast<std::size_t>(B));
    for (int b = 0; b < B; ++b) {
      const int row = b * S + S - 1;
      ForwardOutput host;
      summarize_logits(full.logits.data() + static_cast<std::size_t>(row) * V, 1, V, host);
      if (first.top1[b] != host.top1[0]) {
        EXPECT_TRUE(near_tie(full.logits, row, first.top1[b], host.top1[0])) << "sequence " << b;
      }
    }
  }
}

// layernorm_rows: the LayerNorm after a residual product with 1, 2 or 4 rows a warp (w and b loaded once a warp)
// does each row's arithmetic in the same order as the one-row kernel: the same logits bit for bit, over a float
// stream (fp32, bf16) and a 16-bit one (fp16), for row counts that fill no whole block (150 rows: blocks of 4
// warps x 4 rows) and for the few-row chain (100 rows, persistent kernel off). The autotune is off so that every
// backend runs the same cuBLASLt algorithms.
TEST(CudaEngine, LayerNormRowsGiveTheSameBits) {
  REQUIRE_DEVICE();
  const Gpt2Model m = small_model(2, 29);
  for (const char* precision : {"fp32", "fp16", "bf16"}) {
    for (const auto& [B, S] : std::vector<std::pair<int, int>>{{3, 50}, {1, 100}}) {
      const auto ids = random_ids(B * S, m.config.vocab_size, 53 + S);
      ForwardOutput base;
      cuda_backend(m, precision, {{"gemm_autotune", "0"}, {"persistent", "0"}})
          ->prefill(TokenBatch{B, S, ids}, OutputMode::kLogits, base);
      for (const char* rows : {"1", "2", "4"}) {
        SCOPED_TRACE(std::string(precision) + " B" + std::to_string(B) + " x S" + std::to_string(S) +
                     " layernorm_rows=" + rows);
        ForwardOutput out;
        cuda_backend(m, precision, {{"gemm_autotune", "0"}, {"persistent", "0"}, {"layernorm_rows", rows}})
            ->prefill(TokenBatch{B, S, ids}, OutputMode::kLogits, out);
        ASSERT_EQ(out.logits.size(), base.logits.size());
        EXPECT_EQ(out.logits, base.logits) << "max difference " << compare(out.logits, std::vector<double>(
                                                  base.logits.begin(), base.logits.end())).max_rel;
      }
    }
  }
}

// fused_layernorm_rows: on an H100 / H200 with the 16-bit residual stream (fp16; bf16 when asked) and n_embd 768,
// prefills of at least that many rows run each projection with the LayerNorm after it in one kernel. Rows that
// fill no whole 64-row band (3 x 100) and whole bands (2 x 128) must agree with the double reference as the
// two-kernel path does, the logits must differ from that path's (the kernel ran: its sums are formed in another
// order) but only by rounding, fewer rows than the option's (1 x 128) must take the two-kernel path bit for bit,
// and describe() says when it is on.
TEST(CudaEngine, FusedLayerNormMatchesReference) {
  REQUIRE_DEVICE();
  if (cuda_engine::compute_capability(0) != 90)
    GTEST_SKIP() << "the fused residual + LayerNorm kernel needs a compute capability 9.0 GPU";
  const Gpt2Model m = small_model(12, 31, 768);
  struct Case {
    int B, S;
    std::vector<std::int32_t> ids;
    std::vector<double> ref;
  };
  std::vector<Case> cases;
  for (const auto& [B, S] : std::vector<std::pair<int, int>>{{3, 100}, {2, 128}, {1, 128}}) {
    Case c{B, S, random_ids(B * S, m.config.vocab_size, 71 + B * S), {}};
    for (int b = 0; b < B && B * S >= 200; ++b) {  // (the 128-row case is compared with the plain path only)
      auto r = reference_logits(m, std::vector<std::int32_t>(c.ids.begin() + b * S, c.ids.begin() + (b + 1) * S));
      c.ref.insert(c.ref.end(), r.begin(), r.end());
    }
    cases.push_back(std::move(c));
  }
  for (const char* precision : {"fp16", "bf16"}) {
    const std::map<std::string, std::string> narrow = {{"residual_16bit", "1"}, {"gemm_autotune", "0"}};
    auto fused_options = narrow;
    fused_options["fused_layernorm_rows"] = "200";
    auto plain = cuda_backend(m, precision, narrow);
    auto fused = cuda_backend(m, precision, fused_options);
    EXPECT_EQ(plain->describe().details.at("kernels").find("LayerNorm in its epilogue"), std::string::npos);
    EXPECT_NE(fused->describe().details.at("kernels").find("LayerNorm in its epilogue"), std::string::npos);
    for (const Case& c : cases) {
      SCOPED_TRACE(std::string(precision) + " B" + std::to_string(c.B) + " x S" + std::to_string(c.S));
      ForwardOutput a, f;
      plain->prefill(TokenBatch{c.B, c.S, c.ids}, OutputMode::kLogits, a);
      fused->prefill(TokenBatch{c.B, c.S, c.ids}, OutputMode::kLogits, f);
      ASSERT_EQ(a.logits.size(), f.logits.size());
      if (c.B * c.S >= 200) {
        const Errors e_plain = compare(a.logits, c.ref), e_fused = compare(f.logits, c.ref);
        EXPECT_NE(a.logits, f.logits) << "the fused kernel did not run";
        EXPECT_LE(e_fused.rel_norm, std::string(precision) == "fp16" ? 5e-3 : 3e-2);
        EXPECT_LE(e_fused.rel_norm, 2 * e_plain.rel_norm + 1e-4) << "two-kernel path: " << e_plain.rel_norm;
      } else {
        EXPECT_EQ(a.logits, f.logits) << "fewer rows than fused_layernorm_rows took the fused kernel";
      }
    }
  }
}

TEST(CudaEngine, DecodeStepsMatchPrefill) {
  REQUIRE_DEVICE();
  const Gpt2Model m = small_model(2, 11);
  const int S = 40, prompt = 30;
  // gemv_kernels=1 (default): decode steps through the fused LayerNorm + matrix-vector kernels — in one persistent
  // kernel (decode_persistent=1, default) or as a chain of kernels (up to 8 sequences: gemv_max_rows) with and
  // without programmatic dependent launch; 0: cuBLASLt. 3 sequences run as 4 rows with a padding row, 6 as 8.
  // ln_f + the LM head: the fused matrix-vector kernel up to gemv_lm_head_max_rows sequences (default 4), else the
  // LayerNorm kernel + cuBLASLt; "1-gemv-head" takes the fused kernel at 6 too.
  for (const int B : {3, 6})
  for (const char* gemv : {"1", "0", "1-chain", "1-chain-pdl", "1-gemv-head"})
  for (const char* precision : {"fp32", "fp16", "bf16"}) {
    SCOPED_TRACE(std::string(precision) + " gemv_kernels=" + gemv + " B" + std::to_string(B));
    const auto ids = random_ids(B * S, m.config.vocab_size, 5);
    const std::string g = gemv;
    auto backend = cuda_backend(m, precision,
                                {{"gemv_kernels", g.substr(0, 1)}, {"pdl", g == "1-chain-pdl" ? "1" : "0"},
                                 {"decode_persistent", g.find("chain") == std::string::npos ? "1" : "0"},
                                 {"gemv_max_rows", "8"}, {"gemv_lm_head_max_rows", g == "1-gemv-head" ? "8" : "4"}});
    ForwardOutput full;
    backend->prefill(TokenBatch{B, S, ids}, OutputMode::kLogits, full);
    auto session = backend->start_decode(B, S);
    const TokenBatch p = prompts_of(ids, B, S, prompt);
    ForwardOutput out;
    session->prefill(p, OutputMode::kLogits, out);
    const int V = m.config.vocab_size;
    const double tol = std::string(precision) == "fp32" ? 1e-4 : std::string(precision) == "fp16" ? 2e-2 : 6e-2;
    auto check_rows = [&](int pos) {
      double max_abs = 0, max_ref = 0;
      for (int b = 0; b < B; ++b)
        for (int v = 0; v < V; ++v) {
          const float r = full.logits[(static_cast<std::size_t>(b) * S + pos) * V + v];
          max_abs = std::max(max_abs, static_cast<double>(std::fabs(out.logits[b * V + v] - r)));
          max_ref = std::max(max_ref, static_cast<double>(std::fabs(r)));
        }
      EXPECT_LE(max_abs / max_ref, tol) << precision << " position " << pos;
    };
    check_rows(prompt - 1);
    for (int pos = prompt; pos < S; ++pos) {
      const std::vector<std::int32_t> next = tokens_at(ids, B, S, pos);
      session->step(next, OutputMode::kLogits, out);
      EXPECT_EQ(session->position(), pos + 1);
      check_rows(pos);
    }
    std::vector<std::int32_t> one_more(B, 0);
    EXPECT_THROW(session->step(one_more, OutputMode::kSummary, out), Error);  // the cache is full
  }
}

// The persistent decode step (decode_persistent.cuh) does the 5-kernel chain's arithmetic in one kernel: the same
// logits to the bit, at 1, 3 and 6 sequences (3 runs as 4 rows with a padding row, 6 as 8 with two), in every float
// precision; with graphs and without (decode_mma=0, the default, stated: the CUDA-core products). Where the path
// is available (head size 64) describe() names it; by default it takes up to 8 sequences in every float precision
// (measured faster than cuBLASLt at 8 since the twenty-eighth session), and in fp16 / bf16 the ln_f + LM head of
// more than 4 through cuBLASLt.
TEST(CudaEngine, PersistentDecodeGivesTheChainsBits) {
  REQUIRE_DEVICE();
  const Gpt2Model m = small_model(4, 23, 256);  // head size 64
  for (const char* precision : {"fp32", "fp16", "bf16"})
    for (const int B : {1, 3, 6}) {
      SCOPED_TRACE(std::string(precision) + " B" + std::to_string(B));
      const std::map<std::string, std::string> up_to_8 = {
          {"gemm_autotune", "0"}, {"gemv_max_rows", "8"}, {"decode_mma", "0"}};
      auto with = [&](const char* key, const char* value) {
        auto options = up_to_8;
        options[key] = value;
        return cuda_backend(m, precision, options);
      };
      auto persistent = cuda_backend(m, precision, up_to_8);
      auto eager = with("graphs", "0");
      auto chain = with("decode_persistent", "0");
      const std::string kernels = persistent->describe().details.at("kernels");
      const std::string named = "a single kernel for the embedding and every block";
      EXPECT_NE(kernels.find(named), std::string::npos) << kernels;
      const std::string by_default = cuda_backend(m, precision, {{"gemm_autotune", "0"}})->describe().details.at("kernels");
      EXPECT_NE(by_default.find("decode steps of <= 8 sequences"), std::string::npos) << by_default;
      const bool cublaslt_head = by_default.find("LM head of more than 4 through the LayerNorm kernel + cuBLASLt") !=
                                 std::string::npos;
      EXPECT_EQ(cublaslt_head, std::string(precision) != "fp32") << by_default;
      EXPECT_EQ(by_default.find("mma.sync"), std::string::npos) << by_default;
      EXPECT_EQ(chain->describe().details.at("kernels").find(named), std::string::npos);
      const int S = 50, prompt = 20;
      const auto ids = random_ids(B * S, m.config.vocab_size, 29 + B);
      auto run = [&](Backend& backend) {
        auto session = backend.start_decode(B, S);
        const TokenBatch p = prompts_of(ids, B, S, prompt);
        ForwardOutput out;
        session->prefill(p, OutputMode::kSummary, out);
        std::vector<float> logits;
        for (int pos = prompt; pos < S; ++pos) {
          const std::vector<std::int32_t> next = tokens_at(ids, B, S, pos);
          session->step(next, OutputMode::kLogits, out);
          logits.insert(logits.end(), out.logits.begin(), out.logits.end());
        }
        return logits;
      };
      const auto a = run(*persistent), c = run(*chain);
      ASSERT_EQ(a.size(), static_cast<std::size_t>((S - prompt) * B * m.config.vocab_size));
      EXPECT_EQ(a, c);
      EXPECT_EQ(run(*eager), c);
      EXPECT_EQ(run(*persistent), a) << "a second session (reused cache and graphs) differs";
    }
}

// The persistent step's tensor-core products (fp16 / bf16, 5-8 sequences: 8 rows on mma.sync instead of CUDA
// cores; off by default) — all four (decode_mma=1) or the MLP projection alone (decode_mma=mproj), each a kernel
// instance — against its CUDA-core products (decode_mma=0, the chain's bits): close logits at every step, not the
// same bits (the path ran); its own results reproducible to the bit (a second session, and eager against graphs).
// describe() names it. Batch 5 runs as 8 rows with three padding rows.
TEST(CudaEngine, TensorCoreDecodeStepsMatchTheCudaCoreStep) {
  REQUIRE_DEVICE();
  const Gpt2Model m = small_model(4, 31, 256);  // head size 64
  for (const char* which : {"1", "mproj"})
  for (const char* precision : {"fp16", "bf16"})
    for (const int B : {5, 8}) {
      SCOPED_TRACE(std::string(precision) + " B" + std::to_string(B) + " decode_mma=" + which);
      auto mma = cuda_backend(m, precision, {{"gemm_autotune", "0"}, {"decode_mma", which}});
      auto eager = cuda_backend(m, precision, {{"gemm_autotune", "0"}, {"decode_mma", which}, {"graphs", "0"}});
      const std::string kernels = mma->describe().details.at("kernels");
      EXPECT_NE(kernels.find("decode steps of <= 8 sequences"), std::string::npos) << kernels;
      const std::string named = std::string(which) == "1" ? "5-8 sequences with mma.sync tensor-core products"
                                                          : "5-8 sequences with the MLP projection on mma.sync";
      EXPECT_NE(kernels.find(named), std::string::npos) << kernels;
      auto cuda_cores = cuda_backend(m, precision, {{"gemm_autotune", "0"}, {"decode_mma", "0"}, {"gemv_max_rows", "8"}});
      const int S = 40, prompt = 16, V = m.config.vocab_size;
      const auto ids = random_ids(B * S, V, 41 + B);
      auto run = [&](Backend& backend) {
        auto session = backend.start_decode(B, S);
        ForwardOutput out;
        session->prefill(prompts_of(ids, B, S, prompt), OutputMode::kSummary, out);
        std::vector<float> logits;
        for (int pos = prompt; pos < S; ++pos) {
          session->step(tokens_at(ids, B, S, pos), OutputMode::kLogits, out);
          logits.insert(logits.end(), out.logits.begin(), out.logits.end());
        }
        return logits;
      };
      const auto a = run(*mma), c = run(*cuda_cores);
      ASSERT_EQ(a.size(), c.size());
      ASSERT_EQ(a.size(), static_cast<std::size_t>((S - prompt) * B * V));
      EXPECT_NE(a, c) << "the tensor-core products did not run";
      const double tol = std::string(precision) == "fp16" ? 2e-2 : 6e-2;
      for (int step = 0; step < S - prompt; ++step)
        for (int b = 0; b < B; ++b) {
          double max_abs = 0, max_ref = 0;
          for (int v = 0; v < V; ++v) {
            const std::size_t i = (static_cast<std::size_t>(step) * B + b) * V + v;
            max_abs = std::max(max_abs, static_cast<double>(std::fabs(a[i] - c[i])));
            max_ref = std::max(max_ref, static_cast<double>(std::fabs(c[i])));
          }
          EXPECT_LE(max_abs / max_ref, tol) << "step " << step << " sequence " << b;
        }
      EXPECT_EQ(run(*mma), a) << "a second session (reused cache and graphs) differs";
      EXPECT_EQ(run(*eager), a) << "eager differs from graphs";
    }
}

// Every summary a fixed script of calls gives: prefills of 128, 300 and 7 rows (each twice: the second call replays
// the captured graph), then a decode session's prompt and steps — the calls whose paths the options below change.
struct CallSummaries {
  std::vector<std::int32_t> top1;
  std::vector<double> sums;
  bool operator==(const CallSummaries&) const = default;
};
CallSummaries summaries_of(Backend& backend, const Gpt2Model& m) {
  CallSummaries out;
  ForwardOutput o;
  auto keep = [&] {
    out.top1.insert(out.top1.end(), o.top1.begin(), o.top1.end());
    out.sums.push_back(o.checksum);
  };
  for (const auto& [B, S] : std::vector<std::pair<int, int>>{{1, 128}, {3, 100}, {1, 7}}) {
    const auto ids = random_ids(B * S, m.config.vocab_size, 71 + S);
    for (int call = 0; call < 2; ++call) {
      backend.prefill(TokenBatch{B, S, ids}, OutputMode::kSummary, o);
      EXPECT_EQ(o.top1.size(), static_cast<std::size_t>(B * S));
      keep();
    }
  }
  const int B = 2, S = 30, prompt = 12;
  const auto ids = random_ids(B * S, m.config.vocab_size, 83);
  auto session = backend.start_decode(B, S);
  session->prefill(prompts_of(ids, B, S, prompt), OutputMode::kSummary, o);
  keep();
  for (int pos = prompt; pos < S; ++pos) {
    session->step(tokens_at(ids, B, S, pos), OutputMode::kSummary, o);
    keep();
  }
  return out;
}

// mapped_outputs: the summary kernels write the top-1 and row sums into mapped pinned host memory instead of
// device buffers copied back. The same summaries bit for bit as the copies: prefills through each summary path
// (row_summary after the LM head; on an H100 / H200 in fp16 / bf16 the persistent kernel at 128 rows and the LM
// head with the summary in its epilogue at 300), graphs and eager, and a decode session's prompt and steps.
TEST(CudaEngine, MappedOutputsGiveTheSameSummaries) {
  REQUIRE_DEVICE();
  const Gpt2Model m = small_model(4, 37, 256);  // head size 64: the persistent paths take it
  for (const char* precision : {"fp32", "fp16", "bf16"})
    for (const char* graphs : {"1", "0"}) {
      SCOPED_TRACE(std::string(precision) + " graphs=" + graphs);
      auto copied = cuda_backend(m, precision, {{"gemm_autotune", "0"}, {"graphs", graphs}, {"mapped_outputs", "0"}});
      auto mapped = cuda_backend(m, precision, {{"gemm_autotune", "0"}, {"graphs", graphs}, {"mapped_outputs", "1"}});
      const CallSummaries a = summaries_of(*copied, m), b = summaries_of(*mapped, m);
      ASSERT_EQ(b.top1.size(), static_cast<std::size_t>(2 * (128 + 300 + 7) + 2 * (30 - 12 + 1)));
      EXPECT_EQ(b.top1, a.top1);
      EXPECT_EQ(b.sums, a.sums);
    }
}

// The persistent kernels (prefill of <= 128 rows, with and without its LM head phase; the decode step) leave their
// grid barriers' counters zero for the next launch (the last block to leave resets them), so that no memset node
// precedes them (option sync_memset, off). Calls one after another — graphs replayed, shapes alternating, a decode
// session's steps — must give the summaries bit for bit of the same calls with a memset before each launch; a
// counter left non-zero lets the next launch's barriers through early (other results) or never (a hang).
TEST(CudaEngine, PersistentKernelsLeaveTheirCountersZero) {
  REQUIRE_DEVICE();
  const Gpt2Model m = small_model(4, 37, 256);  // head size 64: the persistent paths take it
  for (const char* precision : {"fp32", "fp16", "bf16"})
    for (const char* graphs : {"1", "0"})
      for (const char* lm_head : {"0", "1"}) {
        SCOPED_TRACE(std::string(precision) + " graphs=" + graphs + " persistent_lm_head=" + lm_head);
        const std::map<std::string, std::string> options = {
            {"gemm_autotune", "0"}, {"graphs", graphs}, {"persistent_lm_head", lm_head}};
        auto with_memset = options;
        with_memset["sync_memset"] = "1";
        auto reset = cuda_backend(m, precision, options), memset = cuda_backend(m, precision, with_memset);
        const CallSummaries a = summaries_of(*memset, m), b = summaries_of(*reset, m);
        ASSERT_EQ(b.top1.size(), a.top1.size());
        EXPECT_EQ(b.top1, a.top1);
        EXPECT_EQ(b.sums, a.sums);
      }
}

// Decode sessions share the engine's caches and graphs one after another, never at once: a session started after
// another of the same shape has ended captures no new graph and gives the same results as the first session of a
// fresh engine, whatever the earlier session left in the cache (another prompt, longer); two sessions alive at the
// same time each keep their own, interleaved step by step.
TEST(CudaEngine, DecodeSessionsReuseCachesAndGraphsSafely) {
  REQUIRE_DEVICE();
  const Gpt2Model m = small_model(2, 23);
  const int B = 2, prompt = 20, steps = 6, max_tokens = 40, V = m.config.vocab_size;
  const auto a_ids = random_ids(B * prompt, V, 41), b_ids = random_ids(B * prompt, V, 42);
  // greedy generation of `steps` tokens after the prompt; returns each call's top-1 ids and checksum
  auto generate = [&](DecodeSession& s, const std::vector<std::int32_t>& ids) {
    std::vector<std::pair<std::vector<std::int32_t>, double>> out;
    ForwardOutput o;
    s.prefill(TokenBatch{B, prompt, ids}, OutputMode::kSummary, o);
    out.emplace_back(o.top1, o.checksum);
    for (int k = 0; k < steps; ++k) {
      const std::vector<std::int32_t> next = o.top1;
      s.step(next, OutputMode::kSummary, o);
      out.emplace_back(o.top1, o.checksum);
    }
    return out;
  };
  for (const char* precision : {"fp32", "fp16"}) {
    SCOPED_TRACE(precision);
    // references: each prompt in a fresh engine (no autotune anywhere: every engine takes cuBLASLt's first
    // algorithm, so that the same inputs give the same bits)
    const std::map<std::string, std::string> fixed = {{"gemm_autotune", "0"}};
    auto fresh_a = cuda_backend(m, precision, fixed), fresh_b = cuda_backend(m, precision, fixed);
    const auto ref_a = generate(*fresh_a->start_decode(B, max_tokens), a_ids);
    const auto ref_b = generate(*fresh_b->start_decode(B, max_tokens), b_ids);
    ASSERT_NE(ref_a, ref_b);  // (else the checks below could not tell the sessions apart)

    auto backend = cuda_backend(m, precision, fixed);
    {  // a longer session on prompt a fills more of the cache than b's will
      auto s = backend->start_decode(B, max_tokens);
      ForwardOutput o;
      s->prefill(TokenBatch{B, prompt, a_ids}, OutputMode::kSummary, o);
      for (int k = 0; k < 12; ++k) {
        const std::vector<std::int32_t> next = o.top1;
        s->step(next, OutputMode::kSummary, o);
      }
    }
    {
      auto s = backend->start_decode(B, max_tokens);
      EXPECT_EQ(generate(*s, b_ids), ref_b);
    }
    const std::int64_t graphs = cuda_graphs_captured(*backend);
    EXPECT_GT(graphs, 0);
    {  // the same shape again: the graphs of the sessions before
      auto s = backend->start_decode(B, max_tokens);
      EXPECT_EQ(generate(*s, a_ids), ref_a);
    }
    EXPECT_EQ(cuda_graphs_captured(*backend), graphs);
    {  // two at once: each its own cache, steps interleaved
      auto s1 = backend->start_decode(B, max_tokens), s2 = backend->start_decode(B, max_tokens);
      ForwardOutput o1, o2;
      s1->prefill(TokenBatch{B, prompt, a_ids}, OutputMode::kSummary, o1);
      s2->prefill(TokenBatch{B, prompt, b_ids}, OutputMode::kSummary, o2);
      EXPECT_EQ(o1.top1, ref_a[0].first);
      EXPECT_EQ(o2.top1, ref_b[0].first);
      for (int k = 0; k < steps; ++k) {
        const std::vector<std::int32_t> n1 = o1.top1, n2 = o2.top1;
        s1->step(n1, OutputMode::kSummary, o1);
        s2->step(n2, OutputMode::kSummary, o2);
        EXPECT_EQ(o1.top1, ref_a[k + 1].first) << "step " << k;
        EXPECT_EQ(o2.top1, ref_b[k + 1].first) << "step " << k;
        EXPECT_EQ(o1.checksum, ref_a[k + 1].second) << "step " << k;
        EXPECT_EQ(o2.checksum, ref_b[k + 1].second) << "step " << k;
      }
    }
    // decode_reuse=0: every session captures its own graphs (and gives the same results)
    auto no_reuse = cuda_backend(m, precision, {{"gemm_autotune", "0"}, {"decode_reuse", "0"}});
    EXPECT_EQ(generate(*no_reuse->start_decode(B, max_tokens), b_ids), ref_b);
    const std::int64_t before = cuda_graphs_captured(*no_reuse);
    EXPECT_EQ(generate(*no_reuse->start_decode(B, max_tokens), a_ids), ref_a);
    EXPECT_GT(cuda_graphs_captured(*no_reuse), before);
    // a different shape gets (and captures) its own
    auto s = backend->start_decode(1, max_tokens);
    ForwardOutput o;
    s->prefill(TokenBatch{1, prompt, std::vector<std::int32_t>(a_ids.begin(), a_ids.begin() + prompt)},
               OutputMode::kSummary, o);
    EXPECT_EQ(o.top1[0], ref_a[0].first[0]);
    EXPECT_GT(cuda_graphs_captured(*backend), graphs);
  }
}

TEST(CudaEngine, BatchedPerplexityEqualsPerWindowScoring) {
  REQUIRE_DEVICE();
  const Gpt2Model m = small_model(4, 13);
  const auto ids = random_ids(700, m.config.vocab_size, 9);
  auto backend = cuda_backend(m, "fp32");
  PerplexitySettings s;
  s.ctx = 128;
  s.stride = 64;
  const auto batched = evaluate_perplexity(*backend, ids, s, m.config.n_positions);
  EXPECT_EQ(batched.scored_tokens, 699);
  // the default path: one window per call through score_window, then the host's sum
  std::vector<double> nll;
  std::int64_t prev_end = 0, windows = 0;
  for (std::int64_t begin = 0; begin < 700; begin += s.stride) {
    const std::int64_t end = std::min<std::int64_t>(begin + s.ctx, 700);
    const int len = static_cast<int>(end - begin);
    backend->score_window(std::span<const std::int32_t>(ids.data() + begin, len),
                          begin == 0 ? 0 : len - static_cast<int>(end - prev_end) - 1, nll);
    prev_end = end;
    ++windows;
    if (end == 700) break;
  }
  EXPECT_EQ(batched.windows, windows);
  ASSERT_EQ(nll.size(), batched.token_nll.size());
  for (std::size_t i = 0; i < nll.size(); ++i) ASSERT_NEAR(nll[i], batched.token_nll[i], 1e-5) << i;
  // and against the host log-softmax of the first window's logits
  ForwardOutput out;
  backend->prefill(TokenBatch{1, s.ctx, std::vector<std::int32_t>(ids.begin(), ids.begin() + s.ctx)},
                   OutputMode::kLogits, out);
  std::vector<double> host;
  nll_from_logits(out.logits.data(), m.config.vocab_size, std::span<const std::int32_t>(ids.data(), s.ctx), 0, host);
  for (std::size_t i = 0; i < host.size(); ++i) ASSERT_NEAR(host[i], batched.token_nll[i], 1e-4) << i;
  EXPECT_GT(batched.ppl, 1.0);
}

// A calibration cache for `m` whose amax are the ranges the double-precision reference sees on `ids`.
std::string write_test_calibration(const Gpt2Model& m, const std::vector<std::int32_t>& ids, int S,
                                   const std::string& name) {
  InputRanges ranges;
  for (std::size_t b = 0; b * S < ids.size(); ++b)
    reference_logits(m, std::vector<std::int32_t>(ids.begin() + b * S, ids.begin() + (b + 1) * S), &ranges);
  CalibrationCache cache;
  cache.provenance = {"small", m.identity.weights_sha256(), "random", "test", "", std::string(64, '0'), 1, 1, S,
                      "minmax", 0.0};
  cache.table.method = "minmax";
  for (const auto& [linear, amax] : ranges) cache.table.amax[linear] = amax;
  const auto dir = std::filesystem::temp_directory_path() / "gptbench_cuda_test";
  std::filesystem::create_directories(dir);
  const std::string path = (dir / name).string();
  write_calibration_cache(path, cache);
  return path;
}

Gpt2Model hashed_small_model(int n_head, std::uint32_t seed, const std::string& sha256) {
  Gpt2Model m = small_model(n_head, seed);
  m.identity.name = "small";
  m.identity.weight_files.push_back({"model.safetensors", 0, sha256});
  return m;
}

// W8A8 on the GPU against the double-precision reference and against the native CPU engine's int8, which
// quantizes the same way (per output channel / per tensor, round half to even) but keeps float32 activations
// between the products where the GPU keeps fp16.
TEST(CudaEngine, Int8AgreesWithReferenceAndTheCpuInt8Engine) {
  REQUIRE_DEVICE();
  const Gpt2Model m = hashed_small_model(2, 19, std::string(64, 'a'));
  const int B = 2, S = 48;
  const auto ids = random_ids(B * S, m.config.vocab_size, 21);
  const std::string calib = write_test_calibration(m, ids, S, "int8_small.calib");
  std::vector<double> ref;
  for (int b = 0; b < B; ++b) {
    auto r = reference_logits(m, std::vector<std::int32_t>(ids.begin() + b * S, ids.begin() + (b + 1) * S));
    ref.insert(ref.end(), r.begin(), r.end());
  }
  auto gpu = cuda_backend(m, "int8", {{"calibration_cache", calib}});
  ForwardOutput g, f16, cpu;
  gpu->prefill(TokenBatch{B, S, ids}, OutputMode::kLogits, g);
  cuda_backend(m, "fp16")->prefill(TokenBatch{B, S, ids}, OutputMode::kLogits, f16);
  const Errors vs_ref = compare(g.logits, ref);
  const Errors fp16_vs_ref = compare(f16.logits, ref);
  EXPECT_LE(vs_ref.rel_norm, 8e-2);
  EXPECT_GT(vs_ref.rel_norm, 5 * fp16_vs_ref.rel_norm) << "int8 should lose clearly more than fp16";
  BackendSpec cpu_spec;
  cpu_spec.name = "native";
  cpu_spec.device = "cpu";
  cpu_spec.precision = "int8";
  cpu_spec.options["calibration_cache"] = calib;
  create_backend(cpu_spec, m)->prefill(TokenBatch{B, S, ids}, OutputMode::kLogits, cpu);
  std::vector<double> cpu_ref(cpu.logits.begin(), cpu.logits.end());
  const Errors vs_cpu = compare(g.logits, cpu_ref);
  // Not bit-equal: the GPU's fp16 activations round a few inputs of each product to the neighbouring int8 step,
  // and those flips compound over the layers (about half of int8's own error, measured on an H200: 3.4e-2 here).
  // A different quantization rule (scales, rounding, clamping) would put it at or beyond int8's own error.
  EXPECT_LT(vs_cpu.rel_norm, vs_ref.rel_norm) << "the GPU int8 should be closer to the CPU int8 than to float; "
                                              << "vs CPU " << vs_cpu.rel_norm << ", vs float " << vs_ref.rel_norm;
  // decode steps agree with prefill in int8 too
  auto session = gpu->start_decode(B, S);
  const int prompt = S - 4;
  const TokenBatch p = prompts_of(ids, B, S, prompt);
  ForwardOutput out;
  session->prefill(p, OutputMode::kLogits, out);
  for (int pos = prompt; pos < S; ++pos) {
    const std::vector<std::int32_t> next = tokens_at(ids, B, S, pos);
    session->step(next, OutputMode::kLogits, out);
    const int V = m.config.vocab_size;
    double max_abs = 0, max_ref = 0;
    for (int b = 0; b < B; ++b)
      for (int v = 0; v < V; ++v) {
        const float r = g.logits[(static_cast<std::size_t>(b) * S + pos) * V + v];
        max_abs = std::max(max_abs, static_cast<double>(std::fabs(out.logits[b * V + v] - r)));
        max_ref = std::max(max_ref, static_cast<double>(std::fabs(r)));
      }
    EXPECT_LE(max_abs / max_ref, 6e-2) << "position " << pos;  // int8 step flips again: see above
  }
  EXPECT_EQ(gpu->describe().details.at("calibration_cache"), calib);
}

// int8_fused (default): each product's input quantized by the kernel that makes it, the LM head's summary / NLL
// read from its int32 products. The same helpers in the same order as the separate kernels, so the same bits:
// summaries of prefills through both summary kernels (128 rows: 1,024 threads a row; 300: 256) and of a decode
// session (its prompt through the fused blocks), the logits a caller asks for, and a perplexity pass's NLL. At
// GPT-2 124M's width (n_embd 768: six float4 of a row per lane), where a first version differed (the compiler had
// contracted the bias add into an FMA in one kernel only) while n_embd 128 gave the same bits.
TEST(CudaEngine, Int8FusedKernelsGiveTheSeparateKernelsBits) {
  REQUIRE_DEVICE();
  Gpt2Model m = small_model(12, 29, 768);
  m.identity.name = "small";
  m.identity.weight_files.push_back({"model.safetensors", 0, std::string(64, 'd')});
  const int S = 64;
  const std::string calib = write_test_calibration(m, random_ids(2 * S, m.config.vocab_size, 5), S, "int8_fused.calib");
  auto fused = cuda_backend(m, "int8", {{"calibration_cache", calib}, {"gemm_autotune", "0"}});
  auto separate =
      cuda_backend(m, "int8", {{"calibration_cache", calib}, {"gemm_autotune", "0"}, {"int8_fused", "0"}});
  const std::string kernels = fused->describe().details.at("kernels");
  EXPECT_NE(kernels.find("quantized by the kernel that makes it"), std::string::npos) << kernels;
  EXPECT_EQ(separate->describe().details.at("kernels").find("quantized by the kernel that makes it"),
            std::string::npos);
  const CallSummaries a = summaries_of(*separate, m), b = summaries_of(*fused, m);
  ASSERT_EQ(b.top1.size(), static_cast<std::size_t>(2 * (128 + 300 + 7) + 2 * (30 - 12 + 1)));
  EXPECT_EQ(b.top1, a.top1);
  EXPECT_EQ(b.sums, a.sums);
  const auto ids = random_ids(3 * S, m.config.vocab_size, 7);
  ForwardOutput la, lb;
  separate->prefill(TokenBatch{3, S, ids}, OutputMode::kLogits, la);
  fused->prefill(TokenBatch{3, S, ids}, OutputMode::kLogits, lb);
  ASSERT_EQ(la.logits.size(), static_cast<std::size_t>(3 * S * m.config.vocab_size));
  EXPECT_EQ(lb.logits, la.logits);
  EXPECT_EQ(lb.top1, la.top1);
  PerplexitySettings s;
  s.ctx = 128;
  s.stride = 64;
  const auto text = random_ids(600, m.config.vocab_size, 11);
  const auto pa = evaluate_perplexity(*separate, text, s, m.config.n_positions);
  const auto pb = evaluate_perplexity(*fused, text, s, m.config.n_positions);
  ASSERT_EQ(pa.token_nll.size(), 599u);
  EXPECT_EQ(pb.token_nll, pa.token_nll);
  EXPECT_GT(pb.ppl, 1.0);
}

TEST(CudaEngine, Int8NeedsACalibrationOfThisModel) {
  REQUIRE_DEVICE();
  const Gpt2Model m = hashed_small_model(2, 23, std::string(64, 'b'));
  try {
    cuda_backend(m, "int8");
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("calibration_cache"), std::string::npos) << e.what();
  }
  const Gpt2Model other = hashed_small_model(2, 23, std::string(64, 'c'));
  const std::string calib =
      write_test_calibration(other, random_ids(32, other.config.vocab_size, 1), 32, "int8_other.calib");
  try {
    cuda_backend(m, "int8", {{"calibration_cache", calib}});
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(calib), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("another model"), std::string::npos) << e.what();
  }
}

TEST(CudaEngine, BadInputsAreErrors) {
  REQUIRE_DEVICE();
  const Gpt2Model m = small_model(2, 17);
  EXPECT_THROW(cuda_backend(m, "fp64"), Error);
  EXPECT_THROW(cuda_backend(m, "fp16", {{"attention", "sdpa"}}), Error);
  EXPECT_THROW(cuda_backend(m, "fp16", {{"gemv_max_rows", "9"}}), Error);
  EXPECT_THROW(cuda_backend(m, "fp16", {{"attention_warps", "four"}}), Error);
  EXPECT_THROW(cuda_backend(m, "fp16", {{"attention_warps", "2"}}), Error);
  EXPECT_THROW(cuda_backend(m, "fp16", {{"persistent", "maybe"}}), Error);
  EXPECT_THROW(cuda_backend(m, "fp16", {{"persistent_pairs", "2"}}), Error);
  EXPECT_THROW(cuda_backend(m, "fp16", {{"persistent_embed", "yes please"}}), Error);
  EXPECT_THROW(cuda_backend(m, "fp16", {{"persistent_lm_head", "sometimes"}}), Error);
  EXPECT_THROW(cuda_backend(m, "fp16", {{"sync_memset", "-1"}}), Error);
  EXPECT_THROW(cuda_backend(m, "fp16", {{"persistent_head_flags", "3"}}), Error);
  auto backend = cuda_backend(m, "fp16");
  ForwardOutput out;
  EXPECT_THROW(backend->prefill(TokenBatch{1, 2, {5, 1000}}, OutputMode::kSummary, out), Error);  // id >= vocab
  EXPECT_THROW(backend->prefill(TokenBatch{1, 129, std::vector<std::int32_t>(129, 1)}, OutputMode::kSummary, out),
               Error);  // longer than n_positions
  EXPECT_THROW(backend->start_decode(1, 129), Error);
  const auto d = backend->describe();
  EXPECT_EQ(d.device, "cuda");
  EXPECT_FALSE(d.details.at("gpu").empty());
  // On a compute capability 9.0 card the few-row prefill path must be on (and say so); elsewhere off.
  const bool hopper = cuda_engine::compute_capability(0) == 90;
  EXPECT_EQ(d.details.at("kernels").find("wgmma") != std::string::npos, hopper) << d.details.at("kernels");
  EXPECT_EQ(cuda_backend(m, "fp16", {{"wgmma_max_rows", "0"}})->describe().details.at("kernels").find("wgmma"),
            std::string::npos);
  // head size 64: Hopper's attention kernel by default on a compute capability 9.0 card (and nowhere else), the
  // mma.sync kernel when asked for
  EXPECT_EQ(d.details.at("kernels").find("warpgroup-MMA kernel") != std::string::npos, hopper)
      << d.details.at("kernels");
  EXPECT_NE(cuda_backend(m, "fp16", {{"attention", "mma"}})->describe().details.at("kernels").find("mma.sync kernel"),
            std::string::npos);
  // this model's n_embd (128) is not one the persistent path takes: it must not claim it
  EXPECT_EQ(d.details.at("kernels").find("persistent"), std::string::npos) << d.details.at("kernels");
  EXPECT_GT(backend->memory().device_peak_bytes, 0);
}

}  // namespace
}  // namespace gptbench
