#pragma once
// Models the ONNX tests share: the trained tiny model from ../shared (loaded once), and an in-memory random
// model of the exact GPT-2 124M shape (for sizes and speed only: its outputs mean nothing).
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "../test_support.h"
#include "model/checkpoint.h"

namespace gptbench::test {

inline const Gpt2Model& tiny_model() {
  static const Gpt2Model model = load_model(testing::tiny_model_dir());
  return model;
}

// GPT-2-like statistics without the cost of a normal sampler: uniform with std 0.02 for matrices and
// embeddings, LayerNorm weights 1, biases 0. Deterministic (fixed seed).
inline void fill_random(Gpt2Weights& w, std::uint64_t seed) {
  std::uint64_t state = seed * 0x9E3779B97F4A7C15ull + 1;
  for_each_tensor(w, [&](const std::string& name, Tensor& t) {
    const bool bias = name.size() > 5 && name.compare(name.size() - 5, 5, ".bias") == 0;
    const bool norm = name.find("ln_") != std::string::npos;
    for (auto& v : t.data) {
      if (bias) { v = 0.0f; continue; }
      if (norm) { v = 1.0f; continue; }
      state ^= state << 13; state ^= state >> 7; state ^= state << 17;  // xorshift64
      const double u = static_cast<double>(state >> 11) / 9007199254740992.0;  // [0, 1)
      v = static_cast<float>((u - 0.5) * 0.0692820323);  // uniform, std 0.02
    }
  });
}

inline Gpt2Model make_random_model(const std::string& shape_name, const std::string& name) {
  Gpt2Model m;
  if (!gpt2_shape_by_name(shape_name, m.config)) throw std::runtime_error("unknown shape " + shape_name);
  m.config.untrained = true;
  m.weights = allocate_weights(m.config);
  fill_random(m.weights, 124);
  m.identity.name = name;
  m.identity.source = "in-memory random " + shape_name;
  m.identity.parameters = m.weights.parameter_count();
  m.identity.config_parameters = m.config.parameter_count();
  m.identity.storage_dtype = "F32";
  m.identity.untrained = true;
  return m;
}

inline const Gpt2Model& random_gpt2_124m() {
  static const Gpt2Model model = make_random_model("gpt2", "gpt2-random-124M");
  return model;
}

inline std::map<std::string, std::int64_t> as_map(const std::vector<std::pair<std::string, std::int64_t>>& v) {
  return {v.begin(), v.end()};
}

inline void truncate_copy(const std::string& from, const std::string& to, std::uintmax_t bytes) {
  std::ifstream in(from, std::ios::binary);
  std::string data(static_cast<std::size_t>(bytes), '\0');
  in.read(data.data(), static_cast<std::streamsize>(bytes));
  testing::write_bytes(to, data);
}

}  // namespace gptbench::test
