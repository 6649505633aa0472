// The ONNX Runtime backend on gpt2-tiny-wt2: FP32 logits match the native engine, perplexity matches the PyTorch
// reference, FP16 stays close, decode with past key/values gives the tokens prefill gives, and bad input (corrupt
// or truncated .onnx, a graph with other inputs, a missing library) is a clear error.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "../test_support.h"
#include "backends/backend.h"
#include "backends/native/native_backend.h"
#include "backends/onnxruntime/ort_backend.h"
#include "common/error.h"
#include "eval/dataset.h"
#include "eval/perplexity.h"
#include "export/onnx_export.h"
#include "onnx_test_support.h"
#include "tokenizer/gpt2_tokenizer.h"

namespace gptbench {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

// One cache folder for the whole program, so each graph is exported once.
const std::string& cache_dir() {
  static TempDir dir;
  static const std::string path = dir.str();
  return path;
}

BackendSpec ort_spec(const std::string& precision = "fp32", const std::string& level = "all") {
  BackendSpec spec;
  spec.name = "onnxruntime";
  spec.precision = precision;
  spec.threads = 2;
  spec.options["graph_optimization"] = level;
  spec.options["cache_dir"] = cache_dir();
  return spec;
}

const std::vector<std::int32_t>& wikitext_ids() {
  static const std::vector<std::int32_t> ids = [] {
    const Gpt2Tokenizer tokenizer = load_tokenizer(testing::tiny_model_dir());
    return load_dataset(testing::wikitext_test_path(), tokenizer).ids;
  }();
  return ids;
}

// The PyTorch figure from ../shared/reference/gpt2-tiny-wt2.json (581.107 for fp32 at ctx 1024 / stride 512).
double reference_ppl(const std::string& key) {
  std::ifstream in(shared_path("reference/gpt2-tiny-wt2.json"));
  const nlohmann::json j = nlohmann::json::parse(in);
  return j.at("perplexity").at(key).at("ppl").get<double>();
}

TokenBatch batch_from_text(int batch, int seq, std::size_t offset) {
  TokenBatch t;
  t.batch = batch;
  t.seq = seq;
  const auto& ids = wikitext_ids();
  t.ids.assign(ids.begin() + static_cast<std::ptrdiff_t>(offset), ids.begin() + static_cast<std::ptrdiff_t>(offset + batch * seq));
  return t;
}

struct Agreement {
  double max_abs = 0, max_rel = 0, max_logit = 0;
  std::int64_t top1_mismatch = 0;
};

Agreement compare(const ForwardOutput& a, const ForwardOutput& b) {
  Agreement g;
  EXPECT_EQ(a.logits.size(), b.logits.size());
  for (std::size_t i = 0; i < a.logits.size() && i < b.logits.size(); ++i) {
    const double d = std::abs(static_cast<double>(a.logits[i]) - b.logits[i]);
    g.max_abs = std::max(g.max_abs, d);
    g.max_logit = std::max(g.max_logit, std::abs(static_cast<double>(b.logits[i])));
    g.max_rel = std::max(g.max_rel, d / std::max(1.0, std::abs(static_cast<double>(b.logits[i]))));
  }
  for (std::size_t r = 0; r < a.top1.size() && r < b.top1.size(); ++r) g.top1_mismatch += a.top1[r] != b.top1[r];
  return g;
}

TEST(OrtBackend, Fp32LogitsMatchTheNativeEngine) {
  const Gpt2Model& model = test::tiny_model();
  auto ort = create_onnxruntime_backend(ort_spec(), model);
  NativeCpuOptions native_options;
  native_options.threads = 2;
  auto native = create_native_cpu_backend(model, native_options);
  for (auto [b, s] : {std::pair{1, 128}, std::pair{4, 64}}) {
    const TokenBatch tokens = batch_from_text(b, s, 1000);
    ForwardOutput o, n;
    ort->prefill(tokens, OutputMode::kLogits, o);
    native->prefill(tokens, OutputMode::kLogits, n);
    ASSERT_EQ(o.logits.size(), static_cast<std::size_t>(b * s * model.config.vocab_size));
    const Agreement g = compare(o, n);
    std::printf("ORT fp32 vs native B%dxS%d: max |diff| %.3g, max rel %.3g (max |logit| %.1f), top1 mismatches %lld/%d\n",
                b, s, g.max_abs, g.max_rel, g.max_logit, static_cast<long long>(g.top1_mismatch), b * s);
    EXPECT_LT(g.max_abs, 2e-3);
    EXPECT_LT(g.max_rel, 1e-4);
    EXPECT_LE(g.top1_mismatch, 1);  // only an exact near-tie could differ
    EXPECT_NEAR(o.checksum, n.checksum, 1e-5 * std::abs(n.checksum) + 1.0);
    // kSummary gives the same top1 and checksum as kLogits.
    ForwardOutput summary;
    ort->prefill(tokens, OutputMode::kSummary, summary);
    EXPECT_TRUE(summary.logits.empty());
    EXPECT_EQ(summary.top1, o.top1);
    EXPECT_DOUBLE_EQ(summary.checksum, o.checksum);
  }
}

TEST(OrtBackend, EveryOptimisationLevelComputesTheSameAndReportsItsGraph) {
  const Gpt2Model& model = test::tiny_model();
  const TokenBatch tokens = batch_from_text(2, 32, 5000);
  ForwardOutput reference;
  std::int64_t disabled_nodes = 0, all_nodes = 0;
  for (const char* level : {"disabled", "basic", "extended", "all"}) {
    auto ort = create_onnxruntime_backend(ort_spec("fp32", level), model);
    const BackendDescription d = ort->describe();
    EXPECT_EQ(d.name, "onnxruntime");
    EXPECT_EQ(d.details.at("graph_optimization"), level);
    EXPECT_GT(ort->setup_seconds, 0.0);
    ASSERT_TRUE(d.details.count("optimized_graph_nodes")) << level;
    const std::int64_t nodes = std::stoll(d.details.at("optimized_graph_nodes"));
    std::printf("level %-8s: session %.3f s, %lld nodes: %s\n", level, ort->setup_seconds, static_cast<long long>(nodes),
                d.details.at("optimized_graph_ops").c_str());
    if (std::string(level) == "disabled") disabled_nodes = nodes;
    if (std::string(level) == "all") all_nodes = nodes;
    ForwardOutput out;
    ort->prefill(tokens, OutputMode::kLogits, out);
    if (reference.logits.empty()) {
      reference = out;
    } else {
      EXPECT_LT(compare(out, reference).max_abs, 2e-3) << level;
      EXPECT_EQ(out.top1, reference.top1) << level;
    }
  }
  EXPECT_LT(all_nodes, disabled_nodes);  // the optimiser fused something (LayerNorm, GELU, MatMul+Add, ...)
}

TEST(OrtBackend, DescribesLibraryAndProviders) {
  auto ort = create_onnxruntime_backend(ort_spec(), test::tiny_model());
  const BackendDescription d = ort->describe();
  EXPECT_FALSE(d.versions.at("onnxruntime").empty());
  EXPECT_EQ(d.versions.at("onnxruntime"), onnxruntime_version());
  EXPECT_NE(d.details.at("providers_available").find("CPUExecutionProvider"), std::string::npos);
  EXPECT_EQ(d.details.at("execution_provider"), "CPUExecutionProvider");
  std::printf("ONNX Runtime %s from %s; providers: %s\n", d.versions.at("onnxruntime").c_str(),
              d.details.at("library").c_str(), d.details.at("providers_available").c_str());
  // The npm library lists CUDA but ships without its provider library: CPU only, said so, and device cuda refused.
  const fs::path lib_dir = fs::path(d.details.at("library")).parent_path();
  if (!fs::exists(lib_dir / "libonnxruntime_providers_cuda.so")) {
    EXPECT_NE(d.details.at("cuda").find("CPU only"), std::string::npos);
    BackendSpec cuda = ort_spec();
    cuda.device = "cuda";
    EXPECT_THROW(create_onnxruntime_backend(cuda, test::tiny_model()), Error);
  }
  // The exported graph is reused from the cache by a second backend (same weights hash).
  auto again = create_onnxruntime_backend(ort_spec(), test::tiny_model());
  EXPECT_EQ(again->describe().details.at("model_origin"), "cached");
}

TEST(OrtBackend, SavesTheOptimisedGraphWhenAsked) {
  TempDir dir;
  BackendSpec spec = ort_spec();
  spec.options["save_optimized"] = dir / "opt.onnx";
  auto ort = create_onnxruntime_backend(spec, test::tiny_model());
  ASSERT_TRUE(fs::exists(dir / "opt.onnx"));
  const auto counts = test::as_map(onnx_op_counts(dir / "opt.onnx"));
  std::int64_t total = 0;
  for (const auto& [op, n] : counts) total += n;
  EXPECT_EQ(std::to_string(total), ort->describe().details.at("optimized_graph_nodes"));
}

TEST(OrtBackend, DecodeWithPastGivesTheTokensOfPrefill) {
  const Gpt2Model& model = test::tiny_model();
  for (const char* precision : {"fp32", "fp16"}) {
    auto ort = create_onnxruntime_backend(ort_spec(precision), model);
    const int batch = 2, prompt_len = 24, new_tokens = 16;
    TokenBatch prompt = batch_from_text(batch, prompt_len, 20000);
    auto session = ort->start_decode(batch, prompt_len + new_tokens);
    ForwardOutput out;
    session->prefill(prompt, OutputMode::kLogits, out);
    std::vector<std::vector<std::int32_t>> sequences(batch);
    for (int b = 0; b < batch; ++b)
      sequences[b].assign(prompt.ids.begin() + b * prompt_len, prompt.ids.begin() + (b + 1) * prompt_len);
    double max_diff = 0.0;
    for (int step = 0; step < new_tokens; ++step) {
      // What prefill over the whole sequence says about the last position.
      TokenBatch full;
      full.batch = batch;
      full.seq = static_cast<int>(sequences[0].size());
      for (const auto& s : sequences) full.ids.insert(full.ids.end(), s.begin(), s.end());
      ForwardOutput whole;
      ort->prefill(full, OutputMode::kLogits, whole);
      const std::int64_t V = model.config.vocab_size;
      for (int b = 0; b < batch; ++b) {
        const std::int32_t expected = whole.top1[static_cast<std::size_t>(b * full.seq + full.seq - 1)];
        ASSERT_EQ(out.top1[static_cast<std::size_t>(b)], expected) << precision << " step " << step << " row " << b;
        for (std::int64_t v = 0; v < V; ++v)
          max_diff = std::max(max_diff, std::abs(static_cast<double>(out.logits[b * V + v]) -
                                                  whole.logits[(b * full.seq + full.seq - 1) * V + v]));
      }
      std::vector<std::int32_t> next(out.top1.begin(), out.top1.end());
      for (int b = 0; b < batch; ++b) sequences[b].push_back(next[b]);
      session->step(next, OutputMode::kLogits, out);
    }
    EXPECT_EQ(session->position(), prompt_len + new_tokens);
    std::printf("decode with past (%s): %d steps x B%d, same greedy tokens as prefill, max |logit diff| %.3g\n",
                precision, new_tokens, batch, max_diff);
    EXPECT_LT(max_diff, std::string(precision) == "fp32" ? 1e-3 : 0.1);
    // The cache is full now.
    EXPECT_THROW(session->step(std::vector<std::int32_t>(batch, 1), OutputMode::kSummary, out), Error);
  }
}

// Perplexity on the first 16,384 tokens (31 windows of ctx 1024 / stride 512): ORT FP32 agrees with the native
// engine to 0.01 %, FP16 to 0.5 %. The full-file comparison with the PyTorch reference is the test below.
TEST(OrtBackend, PerplexityPrefixMatchesNativeFp32AndFp16IsClose) {
  const Gpt2Model& model = test::tiny_model();
  PerplexitySettings settings;
  settings.max_tokens = 16384;
  NativeCpuOptions native_options;
  native_options.threads = 2;
  auto native = create_native_cpu_backend(model, native_options);
  const PerplexityResult n = evaluate_perplexity(*native, wikitext_ids(), settings, model.config.n_positions);
  auto ort32 = create_onnxruntime_backend(ort_spec("fp32"), model);
  const PerplexityResult o32 = evaluate_perplexity(*ort32, wikitext_ids(), settings, model.config.n_positions);
  auto ort16 = create_onnxruntime_backend(ort_spec("fp16"), model);
  EXPECT_EQ(ort16->describe().details.at("compute_type"), "float16");
  std::printf("fp16 graph after optimisation on the CPU provider: %s\n",
              ort16->describe().details.at("optimized_graph_ops").c_str());
  const PerplexityResult o16 = evaluate_perplexity(*ort16, wikitext_ids(), settings, model.config.n_positions);
  const double rel32 = std::abs(o32.ppl - n.ppl) / n.ppl, rel16 = std::abs(o16.ppl - n.ppl) / n.ppl;
  std::printf("perplexity, first %lld tokens (%lld scored): native %.4f (%.1f s), ORT fp32 %.4f (%.1f s, %.5f %%), "
              "ORT fp16 %.4f (%.1f s, %.4f %%)\n",
              static_cast<long long>(settings.max_tokens), static_cast<long long>(n.scored_tokens), n.ppl, n.seconds,
              o32.ppl, o32.seconds, 100 * rel32, o16.ppl, o16.seconds, 100 * rel16);
  EXPECT_EQ(o32.scored_tokens, n.scored_tokens);
  EXPECT_LT(rel32, 1e-4);
  EXPECT_LT(rel16, 5e-3);
  EXPECT_GT(rel16, 0.0);  // FP16 really computed in half precision somewhere
}

// The whole WikiText-2 test file (287,644 tokens, 561 windows): ORT FP32 within 0.01 % of the PyTorch reference
// 581.107. The slowest test of this area (about a minute on 2 cores).
TEST(OrtBackend, FullWikiText2PerplexityMatchesPyTorchReference) {
  const Gpt2Model& model = test::tiny_model();
  const double reference = reference_ppl("ctx1024_stride512_fp32");
  ASSERT_NEAR(reference, 581.107, 0.001);
  // The figure is only comparable on the reference's token stream (287,644 tokens).
  ASSERT_EQ(wikitext_ids().size(), 287644u) << "the tokenized test set differs from the reference's";
  auto ort = create_onnxruntime_backend(ort_spec("fp32"), model);
  const PerplexityResult r = evaluate_perplexity(*ort, wikitext_ids(), {}, model.config.n_positions);
  const double rel = std::abs(r.ppl - reference) / reference;
  std::printf("perplexity, full wiki.test.raw (%lld tokens scored, %lld windows): ORT fp32 %.4f vs PyTorch %.3f "
              "(%.5f %%), %.1f s\n",
              static_cast<long long>(r.scored_tokens), static_cast<long long>(r.windows), r.ppl, reference, 100 * rel,
              r.seconds);
  EXPECT_LT(rel, 1e-4);
}

// ---- bad input ---------------------------------------------------------------------------------------------

std::string error_of(const BackendSpec& spec) {
  try {
    create_onnxruntime_backend(spec, test::tiny_model());
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(OrtBackendErrors, CorruptOnnxFileIsAnErrorNamingTheFile) {
  TempDir dir;
  testing::write_bytes(dir / "corrupt.onnx", std::string(10000, '\x07'));
  BackendSpec spec = ort_spec();
  spec.options["model_path"] = dir / "corrupt.onnx";
  const std::string message = error_of(spec);
  EXPECT_NE(message.find(dir / "corrupt.onnx"), std::string::npos) << message;
  EXPECT_NE(message.find("corrupt or truncated"), std::string::npos) << message;
}

TEST(OrtBackendErrors, TruncatedOnnxFileIsAnError) {
  TempDir dir;
  const OnnxExportResult r = export_onnx(test::tiny_model(), {}, dir / "full.onnx");
  test::truncate_copy(r.path, dir / "truncated.onnx", fs::file_size(r.path) - 1000);
  BackendSpec spec = ort_spec();
  spec.options["model_path"] = dir / "truncated.onnx";
  const std::string message = error_of(spec);
  EXPECT_NE(message.find(dir / "truncated.onnx"), std::string::npos) << message;
  EXPECT_FALSE(message.empty());
}

TEST(OrtBackendErrors, GraphWithOtherInputsIsRejected) {
  TempDir dir;
  OnnxExportOptions with_past;
  with_past.with_past = true;
  const OnnxExportResult r = export_onnx(test::tiny_model(), with_past, dir / "past.onnx");
  BackendSpec spec = ort_spec();
  spec.options["model_path"] = r.path;  // a decoder-with-past graph where the prefill graph is expected
  std::string message = error_of(spec);
  EXPECT_NE(message.find("graph inputs do not match"), std::string::npos) << message;

  // A graph of another model (the 124M shape's vocabulary matches, its cache shape does not) for decode.
  spec = ort_spec();
  spec.options["past_model_path"] = dir / "missing.onnx";
  auto ort = create_onnxruntime_backend(spec, test::tiny_model());
  try {
    ort->start_decode(1, 8);
    ADD_FAILURE() << "a missing past model was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing.onnx"), std::string::npos) << e.what();
  }
}

TEST(OrtBackendErrors, UnknownOptionsAreErrors) {
  BackendSpec spec = ort_spec();
  spec.options["graph_optimization"] = "maximum";
  EXPECT_NE(error_of(spec).find("graph_optimization"), std::string::npos);
  spec = ort_spec("int4");
  EXPECT_NE(error_of(spec).find("precision"), std::string::npos);
  spec = ort_spec();
  spec.options["allow_spinning"] = "maybe";
  EXPECT_NE(error_of(spec).find("allow_spinning"), std::string::npos);
  spec = ort_spec();
  spec.device = "tpu";
  EXPECT_NE(error_of(spec).find("device"), std::string::npos);
}

TEST(OrtBackendErrorsDeathTest, MissingLibraryIsAClearError) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");  // a fresh process: the library is opened once per process
  EXPECT_EXIT(
      {
        setenv("GPTBENCH_ORT_LIBRARY", "/nonexistent/libonnxruntime.so.1", 1);
        try {
          create_onnxruntime_backend(ort_spec(), test::tiny_model());
        } catch (const Error& e) {
          std::fprintf(stderr, "%s\n", e.what());
          std::exit(3);
        }
        std::exit(0);
      },
      ::testing::ExitedWithCode(3), "cannot load the ONNX Runtime library");
}

}  // namespace
}  // namespace gptbench
