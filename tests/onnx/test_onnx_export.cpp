// ONNX export: every exported graph passes the ONNX checker (full check + strict shape inference), has GPT-2's
// signature and the size its parameters imply, and bad files are recognised as bad.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>

#include "../test_support.h"
#include "common/error.h"
#include "common/float16.h"
#include "export/onnx_export.h"
#include "model/checkpoint.h"
#include "onnx_test_support.h"

namespace gptbench {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

TEST(Half, RoundTripsAndRoundsToNearestEven) {
  for (float v : {0.0f, 1.0f, -2.5f, 65504.0f, 6.103515625e-05f /* smallest normal */, 5.960464477539063e-08f /* smallest subnormal */})
    EXPECT_EQ(half_to_float(float_to_half(v)), v) << v;
  EXPECT_EQ(float_to_half(1.0f + 1.0f / 2048), float_to_half(1.0f));  // halfway: to even (1.0)
  EXPECT_EQ(half_to_float(float_to_half(1.0f + 3.0f / 2048)), 1.0f + 4.0f / 2048);  // halfway: to even (up)
  EXPECT_TRUE(std::isinf(half_to_float(float_to_half(70000.0f))));
  EXPECT_EQ(float_to_half(-0.0f), 0x8000);
  // every finite half value survives half -> float -> half
  for (std::uint32_t h = 0; h < 0x10000; ++h) {
    if ((h & 0x7c00) == 0x7c00) continue;  // inf / NaN
    ASSERT_EQ(float_to_half(half_to_float(static_cast<std::uint16_t>(h))), h) << h;
  }
}

TEST(OnnxExport, TinyFp32PassesCheckerAndHoldsEveryParameterOnce) {
  const Gpt2Model& model = test::tiny_model();
  TempDir dir;
  const OnnxExportResult r = export_onnx(model, {}, dir / "tiny.onnx");
  EXPECT_TRUE(r.checker_passed) << r.check_message;
  EXPECT_EQ(r.check_message, "ok");
  EXPECT_TRUE(r.external_data_path.empty());
  // 7,357,312 parameters x 4 bytes = 29.43 MB; the graph itself adds only a few KB.
  const double expected = 4.0 * static_cast<double>(model.identity.parameters);
  std::printf("tiny fp32 export: %lld bytes (%.2f MB), %lld nodes, %lld initializers, %.2f s\n",
              static_cast<long long>(r.bytes), r.bytes / 1e6, static_cast<long long>(r.node_count),
              static_cast<long long>(r.initializer_count), r.seconds);
  EXPECT_NEAR(static_cast<double>(r.bytes), expected, 0.002 * expected);
  EXPECT_EQ(r.bytes, static_cast<std::int64_t>(fs::file_size(r.path)));
  std::string message;
  EXPECT_TRUE(check_onnx_file(r.path, message)) << message;

  // The plain graph: per layer 4 projections (MatMul+Add), 2 attention MatMuls; plus the LM head Gemm.
  const auto counts = test::as_map(onnx_op_counts(r.path));
  EXPECT_EQ(counts.at("MatMul"), 6 * model.config.n_layer);
  EXPECT_EQ(counts.at("Gemm"), 1);
  EXPECT_EQ(counts.at("LayerNormalization"), 2 * model.config.n_layer + 1);
  EXPECT_EQ(counts.at("Softmax"), model.config.n_layer);
  EXPECT_EQ(counts.count("Concat"), 1u);  // only the logits shape; no key/value cache
}

TEST(OnnxExport, TinyFp16HalvesTheSizeAndPassesChecker) {
  const Gpt2Model& model = test::tiny_model();
  TempDir dir;
  OnnxExportOptions options;
  options.precision = "fp16";
  const OnnxExportResult r = export_onnx(model, options, dir / "tiny16.onnx");
  EXPECT_TRUE(r.checker_passed) << r.check_message;
  const double expected = 2.0 * static_cast<double>(model.identity.parameters);
  EXPECT_NEAR(static_cast<double>(r.bytes), expected, 0.003 * expected);
  std::string message;
  EXPECT_TRUE(check_onnx_file(r.path, message)) << message;
}

TEST(OnnxExport, DecoderWithPastHasCacheInputsAndOutputs) {
  const Gpt2Model& model = test::tiny_model();
  TempDir dir;
  OnnxExportOptions options;
  options.with_past = true;
  const OnnxExportResult r = export_onnx(model, options, dir / "past.onnx");
  EXPECT_TRUE(r.checker_passed) << r.check_message;
  const auto counts = test::as_map(onnx_op_counts(r.path));
  EXPECT_EQ(counts.at("Concat"), 1 + 2 * model.config.n_layer);  // past ++ current, for keys and values
  std::string message;
  EXPECT_TRUE(check_onnx_file(r.path, message)) << message;
}

TEST(OnnxExport, ExternalDataIsWrittenBesideTheGraphAndChecked) {
  const Gpt2Model& model = test::tiny_model();
  TempDir dir;
  OnnxExportOptions options;
  options.external_data = "always";
  const OnnxExportResult r = export_onnx(model, options, dir / "ext.onnx");
  ASSERT_FALSE(r.external_data_path.empty());
  EXPECT_TRUE(fs::exists(r.external_data_path));
  EXPECT_LT(fs::file_size(r.path), 200'000u);  // the graph alone
  EXPECT_GE(r.bytes, 4 * model.identity.parameters);
  std::string message;
  EXPECT_TRUE(check_onnx_file(r.path, message)) << message;
  // Without its data file the model is not valid.
  fs::remove(r.external_data_path);
  EXPECT_FALSE(check_onnx_file(r.path, message));
  EXPECT_FALSE(message.empty());
}

TEST(OnnxExport, MatMulHookSeesEveryProjectionAndCanReplaceIt) {
  const Gpt2Model& model = test::tiny_model();
  TempDir dir;
  std::vector<std::string> seen;
  OnnxExportOptions options;
  // Replaces c_fc of every layer by its own MatMul + Add written through the writer (as an INT8 QDQ hook would
  // wrap the weight), and leaves the rest to the exporter.
  options.matmul_hook = [&](const OnnxMatMulSite& site, OnnxGraphWriter& g) {
    seen.push_back(site.linear_name);
    EXPECT_NE(site.weight, nullptr);
    EXPECT_EQ(site.transposed_weight, site.linear_name == "lm_head");
    EXPECT_EQ(site.existing_weight_initializer, site.linear_name == "lm_head" ? "transformer.wte.weight" : "");
    if (site.linear_name.find("mlp.c_fc") == std::string::npos) return false;
    const Tensor& w = *site.weight;
    const std::string weight = g.add_initializer(site.linear_name + ".hooked_weight", OnnxDataType::kFloat32, w.shape,
                                                 w.data.data(), w.data.size() * 4);
    const std::string bias = g.add_initializer(site.linear_name + ".hooked_bias", OnnxDataType::kFloat32,
                                               site.bias->shape, site.bias->data.data(), site.bias->data.size() * 4);
    const std::string product = g.fresh_name(site.linear_name + ".hooked_product");
    g.add_node("MatMul", {site.input, weight}, {product}, {}, site.linear_name + ".hooked_matmul");
    g.add_node("Add", {product, bias}, {site.output}, {}, site.linear_name + ".hooked_add");
    return true;
  };
  const OnnxExportResult r = export_onnx(model, options, dir / "hooked.onnx");
  EXPECT_TRUE(r.checker_passed) << r.check_message;
  EXPECT_EQ(seen.size(), static_cast<std::size_t>(4 * model.config.n_layer + 1));
  EXPECT_EQ(seen.front(), "h.0.attn.c_attn");
  EXPECT_EQ(seen.back(), "lm_head");
  const std::set<std::string> unique(seen.begin(), seen.end());
  EXPECT_EQ(unique.size(), seen.size());
}

TEST(OnnxExport, RejectsUnknownPrecision) {
  TempDir dir;
  OnnxExportOptions options;
  options.precision = "int4";
  EXPECT_THROW(export_onnx(test::tiny_model(), options, dir / "x.onnx"), Error);
  EXPECT_FALSE(fs::exists(dir / "x.onnx"));
}

TEST(OnnxCheck, CorruptAndTruncatedFilesFail) {
  TempDir dir;
  std::string message;
  EXPECT_FALSE(check_onnx_file(dir / "missing.onnx", message));
  EXPECT_NE(message.find("cannot be opened"), std::string::npos) << message;

  testing::write_bytes(dir / "garbage.onnx", std::string(4096, '\xff'));
  EXPECT_FALSE(check_onnx_file(dir / "garbage.onnx", message));
  EXPECT_NE(message.find("corrupt or truncated"), std::string::npos) << message;
  EXPECT_THROW(onnx_op_counts(dir / "garbage.onnx"), Error);

  const OnnxExportResult r = export_onnx(test::tiny_model(), {}, dir / "good.onnx");
  test::truncate_copy(r.path, dir / "half.onnx", fs::file_size(r.path) / 2);
  EXPECT_FALSE(check_onnx_file(dir / "half.onnx", message));
  EXPECT_FALSE(message.empty());
}

// The 124M shape: ≈475 MB in FP32, as the original study's gpt2.onnx. Random weights (no accuracy meaning).
TEST(OnnxExport, Gpt2_124MShapeIs475MB) {
  const Gpt2Model& model = test::random_gpt2_124m();
  TempDir dir;
  const OnnxExportResult r = export_onnx(model, {}, dir / "gpt2.onnx");
  EXPECT_TRUE(r.checker_passed) << r.check_message;
  std::printf("gpt2-124M-shape fp32 export: %lld bytes (%.1f MB = %.1f MiB), %lld nodes, %.1f s\n",
              static_cast<long long>(r.bytes), r.bytes / 1e6, r.bytes / 1048576.0, static_cast<long long>(r.node_count),
              r.seconds);
  EXPECT_EQ(model.identity.parameters, 124'439'808);
  EXPECT_NEAR(r.bytes / 1048576.0, 474.7, 1.0);  // 124,439,808 x 4 bytes = 474.7 MiB (497.8 MB)
}

}  // namespace
}  // namespace gptbench
