#pragma once
// GPT-2 weights in float32 on the host, named and laid out as in the Hugging Face checkpoint.
// GPT-2 uses Conv1D, so every projection matrix is stored [in, out]: y = x · W + b.
#include <cstdint>
#include <string>
#include <vector>

#include "model/config.h"

namespace gptbench {

struct Tensor {
  std::vector<std::int64_t> shape;
  std::vector<float> data;

  std::int64_t numel() const {
    std::int64_t n = 1;
    for (auto d : shape) n *= d;
    return n;
  }
  const float* ptr() const { return data.data(); }
  float* ptr() { return data.data(); }
};

std::string shape_string(const std::vector<std::int64_t>& shape);  // "[768, 2304]"

struct LayerWeights {
  Tensor ln_1_weight, ln_1_bias;          // [C]
  Tensor c_attn_weight, c_attn_bias;      // [C, 3C], [3C]   (q, k, v side by side)
  Tensor attn_proj_weight, attn_proj_bias;  // [C, C], [C]
  Tensor ln_2_weight, ln_2_bias;          // [C]
  Tensor c_fc_weight, c_fc_bias;          // [C, I], [I]
  Tensor mlp_proj_weight, mlp_proj_bias;  // [I, C], [C]
};

struct Gpt2Weights {
  Tensor wte;  // [V, C], also the LM head when tied
  Tensor wpe;  // [P, C]
  std::vector<LayerWeights> layers;
  Tensor ln_f_weight, ln_f_bias;  // [C]
  Tensor lm_head;                 // [V, C]; empty when tied to wte

  const Tensor& lm_head_matrix() const { return lm_head.data.empty() ? wte : lm_head; }
  std::int64_t parameter_count() const;  // tied weights counted once
};

// Calls fn(hf_name, tensor) for every tensor in checkpoint order, names without the "transformer." prefix
// (e.g. "h.0.attn.c_attn.weight"); lm_head.weight only when untied.
template <typename W, typename Fn>
void for_each_tensor(W& weights, Fn&& fn) {
  fn(std::string("wte.weight"), weights.wte);
  fn(std::string("wpe.weight"), weights.wpe);
  for (std::size_t i = 0; i < weights.layers.size(); ++i) {
    auto& l = weights.layers[i];
    const std::string p = "h." + std::to_string(i) + ".";
    fn(p + "ln_1.weight", l.ln_1_weight);
    fn(p + "ln_1.bias", l.ln_1_bias);
    fn(p + "attn.c_attn.weight", l.c_attn_weight);
    fn(p + "attn.c_attn.bias", l.c_attn_bias);
    fn(p + "attn.c_proj.weight", l.attn_proj_weight);
    fn(p + "attn.c_proj.bias", l.attn_proj_bias);
    fn(p + "ln_2.weight", l.ln_2_weight);
    fn(p + "ln_2.bias", l.ln_2_bias);
    fn(p + "mlp.c_fc.weight", l.c_fc_weight);
    fn(p + "mlp.c_fc.bias", l.c_fc_bias);
    fn(p + "mlp.c_proj.weight", l.mlp_proj_weight);
    fn(p + "mlp.c_proj.bias", l.mlp_proj_bias);
  }
  fn(std::string("ln_f.weight"), weights.ln_f_weight);
  fn(std::string("ln_f.bias"), weights.ln_f_bias);
  if (!weights.lm_head.data.empty()) fn(std::string("lm_head.weight"), weights.lm_head);
}

// The shape config.json implies for a tensor name (without prefix); false for unknown names.
bool expected_shape(const Gpt2Config& config, const std::string& name, std::vector<std::int64_t>& shape);

// Allocates every tensor at its configured shape (zero-filled); lm_head left empty when tied.
Gpt2Weights allocate_weights(const Gpt2Config& config);

}  // namespace gptbench
