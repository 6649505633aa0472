#include "quant/int8_linear.h"

#include "common/error.h"

namespace gptbench {
namespace {

void check_shapes(const Tensor& weight, const Tensor* bias, bool transposed, std::int64_t& in, std::int64_t& out) {
  if (weight.shape.size() != 2) throw Error("int8 linear: weight must be 2-D, got " + shape_string(weight.shape));
  in = transposed ? weight.shape[1] : weight.shape[0];
  out = transposed ? weight.shape[0] : weight.shape[1];
  if (bias != nullptr && bias->numel() != out)
    throw Error("int8 linear: bias " + shape_string(bias->shape) + " does not match " + std::to_string(out) +
                " outputs");
}

class Int8W8A8Linear final : public Linear {
 public:
  Int8W8A8Linear(const Tensor& weight, const Tensor* bias, bool transposed, float activation_scale,
                 const Int8LinearOptions& options)
      : activation_scale_(activation_scale), options_(options) {
    std::int64_t in, out;
    check_shapes(weight, bias, transposed, in, out);
    packed_ = pack_w8a8(quantize_per_output_channel(weight.ptr(), in, out, transposed));
    if (bias != nullptr) bias_.assign(bias->data.begin(), bias->data.end());
  }
  void forward(const float* x, std::int64_t rows, float* y) const override {
    gemm_w8a8(x, rows, packed_, activation_scale_, bias_.empty() ? nullptr : bias_.data(), y, options_.threads,
              options_.isa);
  }
  std::int64_t in_features() const override { return packed_.in; }
  std::int64_t out_features() const override { return packed_.out; }
  std::string kind() const override { return "int8-w8a8"; }

 private:
  PackedW8A8 packed_;
  std::vector<float> bias_;
  float activation_scale_;
  Int8LinearOptions options_;
};

class Int8WeightOnlyLinear final : public Linear {
 public:
  Int8WeightOnlyLinear(const Tensor& weight, const Tensor* bias, bool transposed, const Int8LinearOptions& options)
      : options_(options) {
    std::int64_t in, out;
    check_shapes(weight, bias, transposed, in, out);
    packed_ = pack_weight_only(quantize_per_output_channel(weight.ptr(), in, out, transposed));
    if (bias != nullptr) bias_.assign(bias->data.begin(), bias->data.end());
  }
  void forward(const float* x, std::int64_t rows, float* y) const override {
    gemm_weight_only(x, rows, packed_, bias_.empty() ? nullptr : bias_.data(), y, options_.threads, options_.isa);
  }
  std::int64_t in_features() const override { return packed_.in; }
  std::int64_t out_features() const override { return packed_.out; }
  std::string kind() const override { return "int8-weight-only"; }

 private:
  PackedWeightOnly packed_;
  std::vector<float> bias_;
  Int8LinearOptions options_;
};

}  // namespace

std::unique_ptr<Linear> make_int8_w8a8_linear(const Tensor& weight, const Tensor* bias, bool transposed_weight,
                                              float activation_scale, const Int8LinearOptions& options) {
  return std::make_unique<Int8W8A8Linear>(weight, bias, transposed_weight, activation_scale, options);
}

std::unique_ptr<Linear> make_int8_weight_only_linear(const Tensor& weight, const Tensor* bias, bool transposed_weight,
                                                     const Int8LinearOptions& options) {
  return std::make_unique<Int8WeightOnlyLinear>(weight, bias, transposed_weight, options);
}

LinearFactory make_int8_linear_factory(const CalibrationTable& table, bool weight_only,
                                       const Int8LinearOptions& options) {
  if (weight_only) {
    return [options](const std::string&, const Tensor& weight, const Tensor* bias, bool transposed) {
      return make_int8_weight_only_linear(weight, bias, transposed, options);
    };
  }
  return [table, options](const std::string& name, const Tensor& weight, const Tensor* bias, bool transposed) {
    if (!table.contains(name))
      throw Error("calibration table: no activation range for " + name +
                  " (the cache was made for another model or engine?)");
    return make_int8_w8a8_linear(weight, bias, transposed, table.scale(name), options);
  };
}

std::vector<std::string> int8_floating_point_ops() {
  return {"token and position embeddings",
          "LayerNorm (ln_1, ln_2, ln_f)",
          "attention scores Q·K^T, causal mask and softmax",
          "attention-weighted sum of V",
          "GELU",
          "residual additions and bias additions",
          "activation quantization and int32 -> float dequantization (per-tensor x per-channel scales)"};
}

std::string int8_kernel_description(const Int8LinearOptions& options) {
  const Int8Isa isa = options.isa == Int8Isa::kAuto ? best_int8_isa() : options.isa;
  return "int8 kernels: " + int8_isa_name(isa) + ", " + std::to_string(resolve_int8_threads(options.threads)) +
         " threads";
}

}  // namespace gptbench
