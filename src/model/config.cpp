#include "model/config.h"

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/paths.h"

namespace gptbench {

std::int64_t Gpt2Config::parameter_count() const {
  const std::int64_t C = n_embd, V = vocab_size, P = n_positions, I = inner_dim();
  const std::int64_t per_layer = 2 * C            // ln_1
                                 + C * 3 * C + 3 * C  // c_attn
                                 + C * C + C          // attn c_proj
                                 + 2 * C              // ln_2
                                 + C * I + I          // mlp c_fc
                                 + I * C + C;         // mlp c_proj
  std::int64_t total = V * C + P * C + n_layer * per_layer + 2 * C;
  if (!tie_word_embeddings) total += V * C;
  return total;
}

std::int64_t Gpt2Config::matmul_parameter_count() const {
  const std::int64_t C = n_embd, V = vocab_size, I = inner_dim();
  return n_layer * (C * 3 * C + C * C + C * I + I * C) + V * C;
}

namespace {

template <typename T>
void read_optional(const nlohmann::json& j, const char* key, T& field, const std::string& source) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return;
  try {
    field = it->get<T>();
  } catch (const nlohmann::json::exception&) {
    fail_file(source, std::string("key '") + key + "' has the wrong type (" + it->type_name() + ")");
  }
}

}  // namespace

Gpt2Config Gpt2Config::from_json(const nlohmann::json& j, const std::string& source) {
  if (!j.is_object()) fail_file(source, "config is not a JSON object");
  Gpt2Config c;
  read_optional(j, "model_type", c.model_type, source);
  if (c.model_type != "gpt2") fail_file(source, "model_type is '" + c.model_type + "', only 'gpt2' is supported");
  for (const char* required : {"n_layer", "n_head", "n_embd", "vocab_size"}) {
    if (!j.contains(required)) fail_file(source, std::string("missing key '") + required + "'");
  }
  read_optional(j, "n_layer", c.n_layer, source);
  read_optional(j, "n_head", c.n_head, source);
  read_optional(j, "n_embd", c.n_embd, source);
  read_optional(j, "n_positions", c.n_positions, source);
  read_optional(j, "vocab_size", c.vocab_size, source);
  read_optional(j, "n_inner", c.n_inner, source);
  read_optional(j, "layer_norm_epsilon", c.layer_norm_epsilon, source);
  read_optional(j, "activation_function", c.activation_function, source);
  read_optional(j, "scale_attn_weights", c.scale_attn_weights, source);
  read_optional(j, "scale_attn_by_inverse_layer_idx", c.scale_attn_by_inverse_layer_idx, source);
  read_optional(j, "reorder_and_upcast_attn", c.reorder_and_upcast_attn, source);
  read_optional(j, "tie_word_embeddings", c.tie_word_embeddings, source);
  read_optional(j, "gptbench_untrained", c.untrained, source);
  if (c.n_layer <= 0 || c.n_head <= 0 || c.n_embd <= 0 || c.vocab_size <= 0 || c.n_positions <= 0)
    fail_file(source, "n_layer, n_head, n_embd, n_positions and vocab_size must be positive");
  if (c.n_embd % c.n_head != 0)
    fail_file(source, "n_embd (" + std::to_string(c.n_embd) + ") is not a multiple of n_head (" +
                          std::to_string(c.n_head) + ")");
  if (c.activation_function != "gelu_new" && c.activation_function != "gelu" &&
      c.activation_function != "gelu_pytorch_tanh")
    fail_file(source, "activation_function '" + c.activation_function +
                          "' is not supported (gelu_new, gelu_pytorch_tanh, gelu)");
  return c;
}

Gpt2Config Gpt2Config::load(const std::string& path) {
  std::string text = read_text_file(path);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    fail_file(path, std::string("not valid JSON: ") + e.what());
  }
  return from_json(j, path);
}

nlohmann::json Gpt2Config::to_json() const {
  nlohmann::json j = {
      {"model_type", model_type},
      {"architectures", {"GPT2LMHeadModel"}},
      {"n_layer", n_layer},
      {"n_head", n_head},
      {"n_embd", n_embd},
      {"n_positions", n_positions},
      {"n_ctx", n_positions},
      {"vocab_size", vocab_size},
      {"n_inner", n_inner > 0 ? nlohmann::json(n_inner) : nlohmann::json(nullptr)},
      {"layer_norm_epsilon", layer_norm_epsilon},
      {"activation_function", activation_function},
      {"scale_attn_weights", scale_attn_weights},
      {"scale_attn_by_inverse_layer_idx", scale_attn_by_inverse_layer_idx},
      {"reorder_and_upcast_attn", reorder_and_upcast_attn},
      {"tie_word_embeddings", tie_word_embeddings},
      {"bos_token_id", 50256},
      {"eos_token_id", 50256},
      {"initializer_range", 0.02},
  };
  if (untrained) j["gptbench_untrained"] = true;
  return j;
}

bool gpt2_shape_by_name(const std::string& name, Gpt2Config& out) {
  Gpt2Config c;
  if (name == "gpt2") {
    c.n_layer = 12; c.n_head = 12; c.n_embd = 768;
  } else if (name == "gpt2-medium") {
    c.n_layer = 24; c.n_head = 16; c.n_embd = 1024;
  } else if (name == "gpt2-large") {
    c.n_layer = 36; c.n_head = 20; c.n_embd = 1280;
  } else if (name == "gpt2-xl") {
    c.n_layer = 48; c.n_head = 25; c.n_embd = 1600;
  } else if (name == "distilgpt2") {
    c.n_layer = 6; c.n_head = 12; c.n_embd = 768;
  } else if (name == "sshleifer/tiny-gpt2" || name == "tiny-gpt2") {
    c.n_layer = 2; c.n_head = 2; c.n_embd = 2;
  } else if (name == "gpt2-tiny-wt2") {
    c.n_layer = 4; c.n_head = 4; c.n_embd = 128;
  } else {
    return false;
  }
  out = c;
  return true;
}

}  // namespace gptbench
