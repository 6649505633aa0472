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
#include "model/random_init.h"

namespace gptbench::test {

inline const Gpt2Model& tiny_model() {
  static const Gpt2Model model = load_model(testing::tiny_model_dir());
  return model;
}

inline Gpt2Model make_random_model(const std::string& shape_name, const std::string& name) {
  Gpt2Model m = gptbench::make_random_model(shape_name, 124);
  m.identity.name = name;
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
