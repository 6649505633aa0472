#include "model/random_init.h"

#include <cmath>
#include <random>

#include "common/error.h"

namespace gptbench {

void randomize_weights(const Gpt2Config& config, Gpt2Weights& weights, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  const float residual_std = 0.02f / std::sqrt(2.0f * static_cast<float>(config.n_layer));
  for_each_tensor(weights, [&](const std::string& name, Tensor& t) {
    auto ends_with = [&](const char* s) {
      const std::string suffix(s);
      return name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
    };
    if (ends_with(".bias")) {
      std::fill(t.data.begin(), t.data.end(), 0.0f);
    } else if (name.find("ln_") != std::string::npos) {
      std::fill(t.data.begin(), t.data.end(), 1.0f);
    } else {
      const bool residual = ends_with("attn.c_proj.weight") || ends_with("mlp.c_proj.weight");
      std::normal_distribution<float> normal(0.0f, residual ? residual_std : 0.02f);
      for (auto& v : t.data) v = normal(rng);
    }
  });
}

Gpt2Model make_random_model(const std::string& shape, std::uint64_t seed) {
  Gpt2Model m;
  if (!gpt2_shape_by_name(shape, m.config)) throw Error("unknown model shape '" + shape + "'");
  m.config.untrained = true;
  m.weights = allocate_weights(m.config);
  randomize_weights(m.config, m.weights, seed);
  m.identity.name = shape + "-random";
  m.identity.source = "in-memory random " + shape + " (seed " + std::to_string(seed) + ")";
  m.identity.parameters = m.weights.parameter_count();
  m.identity.config_parameters = m.config.parameter_count();
  m.identity.storage_dtype = "F32";
  m.identity.untrained = true;
  return m;
}

}  // namespace gptbench
