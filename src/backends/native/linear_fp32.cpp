#include <oneapi/dnnl/dnnl.h>

#include <cstring>

#include "backends/native/linear.h"
#include "common/error.h"

namespace gptbench {

namespace {

class Fp32BlasLinear final : public Linear {
 public:
  Fp32BlasLinear(const Tensor& weight, const Tensor* bias, bool transposed)
      : weight_(weight), bias_(bias), transposed_(transposed) {
    if (weight.shape.size() != 2) throw Error("linear weight must be 2-D, got " + shape_string(weight.shape));
    in_ = transposed ? weight.shape[1] : weight.shape[0];
    out_ = transposed ? weight.shape[0] : weight.shape[1];
    if (bias != nullptr && bias->numel() != out_) throw Error("linear bias has " + std::to_string(bias->numel()) +
                                                              " values for " + std::to_string(out_) + " outputs");
  }

  void forward(const float* x, std::int64_t rows, float* y) const override {
    float beta = 0.0f;
    if (bias_ != nullptr) {  // start from the bias in every row, then accumulate x·W on top (beta = 1)
      for (std::int64_t r = 0; r < rows; ++r) std::memcpy(y + r * out_, bias_->ptr(), sizeof(float) * out_);
      beta = 1.0f;
    }
    // oneDNN's sgemm (row-major): y = x · W (+ y), W read as stored, transposed for the tied LM head.
    const dnnl_status_t status = dnnl_sgemm('N', transposed_ ? 'T' : 'N', rows, out_, in_, 1.0f, x, in_, weight_.ptr(),
                                            transposed_ ? in_ : out_, beta, y, out_);
    if (status != dnnl_success) throw Error("oneDNN sgemm failed with status " + std::to_string(status));
  }
  std::int64_t in_features() const override { return in_; }
  std::int64_t out_features() const override { return out_; }
  std::string kind() const override { return "fp32-onednn-sgemm"; }

 private:
  const Tensor& weight_;
  const Tensor* bias_;
  bool transposed_;
  std::int64_t in_ = 0, out_ = 0;
};

}  // namespace

std::unique_ptr<Linear> make_fp32_linear(const Tensor& weight, const Tensor* bias, bool transposed_weight) {
  return std::make_unique<Fp32BlasLinear>(weight, bias, transposed_weight);
}

}  // namespace gptbench
