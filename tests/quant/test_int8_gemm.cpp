// The INT8 kernels against plain reference arithmetic: exact integer sums, float error bounds, per-channel scales.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "common/error.h"
#include "quant/int8_gemm.h"
#include "quant/int8_linear.h"

namespace gptbench {
namespace {

std::vector<Int8Isa> supported_isas() {
  std::vector<Int8Isa> isas;
  for (Int8Isa isa : {Int8Isa::kAvx512Vnni, Int8Isa::kAvx2})
    if (int8_isa_supported(isa)) isas.push_back(isa);
  return isas;
}

std::vector<float> random_vector(std::size_t n, float stddev, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, stddev);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

Tensor make_tensor(std::vector<std::int64_t> shape, std::vector<float> data) {
  Tensor t;
  t.shape = std::move(shape);
  t.data = std::move(data);
  return t;
}

// y = x · W + b in double.
std::vector<double> float_reference(const std::vector<float>& x, std::int64_t rows, const std::vector<float>& w,
                                    std::int64_t in, std::int64_t out, const std::vector<float>& bias) {
  std::vector<double> y(rows * out, 0.0);
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t n = 0; n < out; ++n) {
      double s = bias.empty() ? 0.0 : bias[n];
      for (std::int64_t k = 0; k < in; ++k) s += static_cast<double>(x[r * in + k]) * w[k * out + n];
      y[r * out + n] = s;
    }
  return y;
}

// Shapes with every tail: inputs not a multiple of 4, outputs not a multiple of 64 or 16, rows not of 6.
constexpr std::int64_t kRows = 13, kIn = 203, kOut = 150;

TEST(Int8Gemm, W8A8MatchesExactIntegerArithmeticOnEveryIsa) {
  const auto x = random_vector(kRows * kIn, 1.0f, 1);
  const auto w = random_vector(kIn * kOut, 0.05f, 2);
  const auto bias = random_vector(kOut, 0.1f, 3);
  const PerChannelInt8 q = quantize_per_output_channel(w.data(), kIn, kOut, false);
  const PackedW8A8 packed = pack_w8a8(q);
  const float sx = max_abs(x.data(), kRows * kIn) / 127.0f;
  // The reference: the same quantized integers, summed exactly, scaled in double.
  std::vector<double> expect(kRows * kOut);
  for (std::int64_t r = 0; r < kRows; ++r)
    for (std::int64_t n = 0; n < kOut; ++n) {
      long long acc = 0;
      for (std::int64_t k = 0; k < kIn; ++k) {
        const long long qx = std::lround(std::clamp(std::nearbyint(x[r * kIn + k] / sx), -127.0f, 127.0f));
        acc += qx * q.q[k * kOut + n];
      }
      expect[r * kOut + n] = static_cast<double>(acc) * sx * q.scales[n] + bias[n];
    }
  for (Int8Isa isa : supported_isas()) {
    std::vector<float> y(kRows * kOut, -1.0f);
    gemm_w8a8(x.data(), kRows, packed, sx, bias.data(), y.data(), 2, isa);
    for (std::size_t i = 0; i < y.size(); ++i)
      ASSERT_NEAR(y[i], expect[i], 1e-5 * (1.0 + std::fabs(expect[i]))) << int8_isa_name(isa) << " at " << i;
  }
}

TEST(Int8Gemm, W8A8IsWithinTheQuantizationErrorBoundOfFloat) {
  const auto x = random_vector(kRows * kIn, 1.0f, 4);
  const auto w = random_vector(kIn * kOut, 0.05f, 5);
  const std::vector<float> bias;
  const PerChannelInt8 q = quantize_per_output_channel(w.data(), kIn, kOut, false);
  const PackedW8A8 packed = pack_w8a8(q);
  const float sx = max_abs(x.data(), kRows * kIn) / 127.0f;
  const auto ref = float_reference(x, kRows, w, kIn, kOut, bias);
  std::vector<float> y(kRows * kOut);
  gemm_w8a8(x.data(), kRows, packed, sx, nullptr, y.data());
  double err2 = 0, ref2 = 0;
  for (std::int64_t r = 0; r < kRows; ++r)
    for (std::int64_t n = 0; n < kOut; ++n) {
      // |x·w − x̂·ŵ| <= Σ_k |x_k| Δw + |w_k| Δx + Δx Δw, Δ = half a quantization step.
      const double dw = q.scales[n] / 2.0, dx = sx / 2.0;
      double bound = 0;
      for (std::int64_t k = 0; k < kIn; ++k)
        bound += std::fabs(x[r * kIn + k]) * dw + std::fabs(w[k * kOut + n]) * dx + dx * dw;
      const double e = y[r * kOut + n] - ref[r * kOut + n];
      ASSERT_LE(std::fabs(e), bound + 1e-5) << "row " << r << " col " << n;
      err2 += e * e;
      ref2 += ref[r * kOut + n] * ref[r * kOut + n];
    }
  // Random errors add in quadrature, far below the worst case: about 1 % of the signal for int8.
  EXPECT_LT(std::sqrt(err2 / ref2), 0.03);
  EXPECT_GT(std::sqrt(err2 / ref2), 1e-4);  // and it really was quantized
}

TEST(Int8Gemm, WeightOnlyMatchesDequantizedWeightsOnEveryIsa) {
  const auto x = random_vector(kRows * kIn, 1.0f, 6);
  const auto w = random_vector(kIn * kOut, 0.05f, 7);
  const auto bias = random_vector(kOut, 0.1f, 8);
  const PerChannelInt8 q = quantize_per_output_channel(w.data(), kIn, kOut, false);
  std::vector<float> wd(kIn * kOut);
  for (std::int64_t k = 0; k < kIn; ++k)
    for (std::int64_t n = 0; n < kOut; ++n) wd[k * kOut + n] = q.q[k * kOut + n] * q.scales[n];
  const auto expect = float_reference(x, kRows, wd, kIn, kOut, bias);
  const auto exact = float_reference(x, kRows, w, kIn, kOut, bias);
  const PackedWeightOnly packed = pack_weight_only(q);
  for (Int8Isa isa : supported_isas()) {
    std::vector<float> y(kRows * kOut);
    gemm_weight_only(x.data(), kRows, packed, bias.data(), y.data(), 2, isa);
    double err2 = 0, ref2 = 0;
    for (std::size_t i = 0; i < y.size(); ++i) {
      ASSERT_NEAR(y[i], expect[i], 1e-4 * (1.0 + std::fabs(expect[i]))) << int8_isa_name(isa) << " at " << i;
      err2 += (y[i] - exact[i]) * (y[i] - exact[i]);
      ref2 += exact[i] * exact[i];
    }
    EXPECT_LT(std::sqrt(err2 / ref2), 0.02);
    EXPECT_GT(std::sqrt(err2 / ref2), 1e-5);
  }
}

TEST(Int8Gemm, TransposedWeightGivesTheSameProduct) {
  const auto x = random_vector(kRows * kIn, 1.0f, 9);
  const auto w = random_vector(kIn * kOut, 0.05f, 10);
  std::vector<float> wt(kOut * kIn);  // [out, in], the LM head's layout
  for (std::int64_t k = 0; k < kIn; ++k)
    for (std::int64_t n = 0; n < kOut; ++n) wt[n * kIn + k] = w[k * kOut + n];
  const Tensor plain = make_tensor({kIn, kOut}, w), transposed = make_tensor({kOut, kIn}, wt);
  for (bool weight_only : {false, true}) {
    auto a = weight_only ? make_int8_weight_only_linear(plain, nullptr, false)
                         : make_int8_w8a8_linear(plain, nullptr, false, 0.03f);
    auto b = weight_only ? make_int8_weight_only_linear(transposed, nullptr, true)
                         : make_int8_w8a8_linear(transposed, nullptr, true, 0.03f);
    EXPECT_EQ(b->in_features(), kIn);
    EXPECT_EQ(b->out_features(), kOut);
    std::vector<float> ya(kRows * kOut), yb(kRows * kOut);
    a->forward(x.data(), kRows, ya.data());
    b->forward(x.data(), kRows, yb.data());
    EXPECT_EQ(ya, yb);
  }
}

TEST(Int8Gemm, PerChannelScalesIsolateAPlantedOutlierChannel) {
  const std::int64_t in = 64, out = 32, planted = 7;
  auto w = random_vector(in * out, 0.02f, 11);
  w[5 * out + planted] = 50.0f;  // one huge weight in output channel 7
  const PerChannelInt8 q = quantize_per_output_channel(w.data(), in, out, false);
  for (std::int64_t n = 0; n < out; ++n) {
    float amax = 0;
    for (std::int64_t k = 0; k < in; ++k) amax = std::max(amax, std::fabs(w[k * out + n]));
    EXPECT_FLOAT_EQ(q.scales[n], amax / 127.0f) << "channel " << n;
  }
  EXPECT_FLOAT_EQ(q.scales[planted], 50.0f / 127.0f);
  EXPECT_EQ(q.q[5 * out + planted], 127);
  // Every other channel keeps its resolution: dequantized weights within half a step of its own scale,
  // which is ~600x finer than the outlier channel's.
  for (std::int64_t n = 0; n < out; ++n) {
    if (n == planted) continue;
    EXPECT_LT(q.scales[n] * 100, q.scales[planted]);
    for (std::int64_t k = 0; k < in; ++k)
      ASSERT_LE(std::fabs(q.q[k * out + n] * q.scales[n] - w[k * out + n]), q.scales[n] * 0.5001f);
  }
}

TEST(Int8Gemm, ThreadCountDoesNotChangeResults) {
  const std::int64_t rows = 50, in = 96, out = 1000;
  const auto x = random_vector(rows * in, 1.0f, 12);
  const auto w = random_vector(in * out, 0.05f, 13);
  const PackedW8A8 packed = pack_w8a8(quantize_per_output_channel(w.data(), in, out, false));
  std::vector<float> y1(rows * out), y2(rows * out);
  gemm_w8a8(x.data(), rows, packed, 0.0f, nullptr, y1.data(), 1);
  gemm_w8a8(x.data(), rows, packed, 0.0f, nullptr, y2.data(), 2);
  EXPECT_EQ(y1, y2);
}

TEST(Int8Gemm, ActivationsBeyondTheCalibratedRangeSaturate) {
  // x = [10, 0, ...] with a calibrated amax of 1: the 10 clamps to 127 steps, i.e. to 1.0.
  const std::int64_t in = 8, out = 16;
  std::vector<float> w(in * out, 0.0f);
  for (std::int64_t n = 0; n < out; ++n) w[0 * out + n] = 1.0f;
  const PackedW8A8 packed = pack_w8a8(quantize_per_output_channel(w.data(), in, out, false));
  std::vector<float> x(in, 0.0f);
  x[0] = 10.0f;
  for (Int8Isa isa : supported_isas()) {
    std::vector<float> y(out);
    gemm_w8a8(x.data(), 1, packed, 1.0f / 127.0f, nullptr, y.data(), 1, isa);
    for (float v : y) EXPECT_NEAR(v, 1.0f, 1e-6) << int8_isa_name(isa);
  }
}

TEST(Int8Linear, FactoryUsesTheTableAndRejectsMissingNames) {
  CalibrationTable table;
  table.method = "minmax";
  table.amax["h.0.mlp.c_fc"] = 2.0;
  const Tensor w = make_tensor({16, 8}, random_vector(16 * 8, 0.1f, 14));
  const LinearFactory w8a8 = make_int8_linear_factory(table, false);
  auto linear = w8a8("h.0.mlp.c_fc", w, nullptr, false);
  EXPECT_EQ(linear->kind(), "int8-w8a8");
  EXPECT_THROW(w8a8("h.1.mlp.c_fc", w, nullptr, false), Error);
  const LinearFactory weight_only = make_int8_linear_factory(table, true);
  EXPECT_EQ(weight_only("anything", w, nullptr, false)->kind(), "int8-weight-only");
  // A bias of the wrong length is a clear error, not a read past the end.
  const Tensor bad_bias = make_tensor({5}, std::vector<float>(5, 0.0f));
  EXPECT_THROW(make_int8_w8a8_linear(w, &bad_bias, false, 0.1f), Error);
}

}  // namespace
}  // namespace gptbench
