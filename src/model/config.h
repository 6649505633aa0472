#pragma once
// The GPT-2 hyper-parameters as Hugging Face's config.json states them, and what follows from them.
#include <cstdint>
#include <string>

#include <nlohmann/json_fwd.hpp>

namespace gptbench {

struct Gpt2Config {
  int n_layer = 12;
  int n_head = 12;
  int n_embd = 768;
  int n_positions = 1024;
  int vocab_size = 50257;
  int n_inner = 0;  // 0 means 4 * n_embd, as in transformers (config.json's null)
  double layer_norm_epsilon = 1e-5;
  std::string activation_function = "gelu_new";
  bool scale_attn_weights = true;
  bool scale_attn_by_inverse_layer_idx = false;
  bool reorder_and_upcast_attn = false;
  bool tie_word_embeddings = true;
  std::string model_type = "gpt2";
  // Set by `gptbench init-random`: the weights are random, so no accuracy figure of this model means anything.
  bool untrained = false;

  int inner_dim() const { return n_inner > 0 ? n_inner : 4 * n_embd; }
  int head_dim() const { return n_embd / n_head; }

  // Parameters implied by the shapes, tied weights counted once (gpt2: 124,439,808).
  std::int64_t parameter_count() const;
  // Parameters that take part in matrix products per token (everything but the embedding tables,
  // plus the LM head): used for FLOP counts.
  std::int64_t matmul_parameter_count() const;

  // Parses config.json text; `source` names the file in errors.
  static Gpt2Config from_json(const nlohmann::json& j, const std::string& source);
  static Gpt2Config load(const std::string& config_json_path);
  nlohmann::json to_json() const;
};

// Shapes of the GPT-2 family, for init-random and the identity table.
// Returns false when the name is unknown.
bool gpt2_shape_by_name(const std::string& name, Gpt2Config& out);

}  // namespace gptbench
