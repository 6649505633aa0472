#include "model/weights.h"

#include <charconv>

namespace gptbench {

std::string shape_string(const std::vector<std::int64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

std::int64_t Gpt2Weights::parameter_count() const {
  std::int64_t n = 0;
  for_each_tensor(*this, [&](const std::string&, const Tensor& t) { n += t.numel(); });
  return n;
}

bool expected_shape(const Gpt2Config& c, const std::string& name, std::vector<std::int64_t>& shape) {
  const std::int64_t C = c.n_embd, V = c.vocab_size, P = c.n_positions, I = c.inner_dim();
  if (name == "wte.weight" || name == "lm_head.weight") { shape = {V, C}; return true; }
  if (name == "wpe.weight") { shape = {P, C}; return true; }
  if (name == "ln_f.weight" || name == "ln_f.bias") { shape = {C}; return true; }
  if (name.rfind("h.", 0) != 0) return false;
  std::size_t dot = name.find('.', 2);
  if (dot == std::string::npos) return false;
  int layer = -1;
  auto [ptr, ec] = std::from_chars(name.data() + 2, name.data() + dot, layer);
  if (ec != std::errc() || ptr != name.data() + dot || layer < 0 || layer >= c.n_layer) return false;
  const std::string rest = name.substr(dot + 1);
  if (rest == "ln_1.weight" || rest == "ln_1.bias" || rest == "ln_2.weight" || rest == "ln_2.bias") shape = {C};
  else if (rest == "attn.c_attn.weight") shape = {C, 3 * C};
  else if (rest == "attn.c_attn.bias") shape = {3 * C};
  else if (rest == "attn.c_proj.weight") shape = {C, C};
  else if (rest == "attn.c_proj.bias") shape = {C};
  else if (rest == "mlp.c_fc.weight") shape = {C, I};
  else if (rest == "mlp.c_fc.bias") shape = {I};
  else if (rest == "mlp.c_proj.weight") shape = {I, C};
  else if (rest == "mlp.c_proj.bias") shape = {C};
  else return false;
  return true;
}

Gpt2Weights allocate_weights(const Gpt2Config& config) {
  Gpt2Weights w;
  w.layers.resize(static_cast<std::size_t>(config.n_layer));
  for_each_tensor(w, [&](const std::string& name, Tensor& t) {
    expected_shape(config, name, t.shape);
    t.data.assign(static_cast<std::size_t>(t.numel()), 0.0f);
  });
  if (!config.tie_word_embeddings) {
    w.lm_head.shape = {config.vocab_size, config.n_embd};
    w.lm_head.data.assign(static_cast<std::size_t>(w.lm_head.numel()), 0.0f);
  }
  return w;
}

}  // namespace gptbench
