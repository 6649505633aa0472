#include "cli/model_json.h"

#include "common/paths.h"

namespace gptbench::cli {

nlohmann::json model_json(const Gpt2Model& model) {
  const auto& c = model.config;
  const auto& id = model.identity;
  nlohmann::json files = nlohmann::json::array();
  for (const auto& f : id.weight_files) files.push_back({{"path", f.path}, {"bytes", f.bytes}, {"sha256", f.sha256}});
  return {
      {"name", id.name},
      {"source", id.source},
      {"directory", id.directory},
      {"architecture", "GPT2LMHeadModel"},
      {"n_layer", c.n_layer},
      {"n_head", c.n_head},
      {"n_embd", c.n_embd},
      {"n_positions", c.n_positions},
      {"vocab_size", c.vocab_size},
      {"n_inner", c.inner_dim()},
      {"activation_function", c.activation_function},
      {"tie_word_embeddings", c.tie_word_embeddings},
      {"parameters", id.parameters},
      {"config_parameters", id.config_parameters},
      {"bytes_fp32", id.parameters * 4},
      {"bytes_fp16", id.parameters * 2},
      {"bytes_int8", id.parameters},
      {"storage_dtype", id.storage_dtype},
      {"weights_sha256", id.weights_sha256()},
      {"weight_files", files},
      {"untrained", id.untrained},
  };
}

std::string default_model_dir_or_name() { return default_model_dir(); }

}  // namespace gptbench::cli
