#pragma once
// An evaluation or calibration text, read and tokenized, with the hashes that identify it in reports.
#include <cstdint>
#include <string>
#include <vector>

namespace gptbench {

class Gpt2Tokenizer;

struct TokenizedDataset {
  std::string path;
  std::string text_sha256;
  std::uint64_t bytes = 0;
  std::vector<std::int32_t> ids;
  std::string ids_sha256;  // int32 little-endian, as in the shared reference figures
};

// Throws Error naming the file when it is missing, empty or not UTF-8.
TokenizedDataset load_dataset(const std::string& path, const Gpt2Tokenizer& tokenizer);

}  // namespace gptbench
