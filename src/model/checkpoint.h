#pragma once
// Loading a Hugging Face GPT-2 checkpoint (directory or hub cache) and proving which model it is.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "model/config.h"
#include "model/weights.h"

namespace gptbench {

struct WeightFile {
  std::string path;
  std::uint64_t bytes = 0;
  std::string sha256;  // empty when hashing was skipped
};

// Who the loaded model is: everything a report needs to say what was measured.
struct ModelIdentity {
  std::string name;              // known-model name when the counts match one, else the directory's name
  std::string source;            // what the user asked for (path or hub name)
  std::string directory;         // resolved directory
  std::int64_t parameters = 0;   // counted from the tensors actually loaded, tied weights once
  std::int64_t config_parameters = 0;  // implied by config.json
  std::string storage_dtype;     // F32, F16, BF16 (or "mixed")
  std::vector<WeightFile> weight_files;
  bool untrained = false;        // config.json carries gptbench_untrained
  std::string weights_sha256() const;  // the single file's hash, or a hash over the files' hashes
};

struct Gpt2Model {
  Gpt2Config config;
  Gpt2Weights weights;
  ModelIdentity identity;
  std::string vocab_path;
  std::string merges_path;
};

struct LoadOptions {
  bool hash_weights = true;     // sha256 of weight files (about 1 s per 500 MB)
  bool require_tokenizer = true;
};

// Resolves a directory path or a hub name ("gpt2", "openai-community/gpt2") through the Hugging Face cache
// ($HF_HUB_CACHE, $HF_HOME/hub, ~/.cache/huggingface/hub). Throws Error when nothing is found.
std::string resolve_model_dir(const std::string& dir_or_name);

Gpt2Model load_model(const std::string& dir_or_name, const LoadOptions& options = {});

// Writes config.json + model.safetensors (dtype "F32", "F16" or "BF16") into dir.
void save_model(const Gpt2Config& config, const Gpt2Weights& weights, const std::string& dir,
                const std::string& dtype = "F32");

// The table of known models and their exact parameter counts.
struct KnownModel {
  const char* name;
  std::int64_t parameters;
};
const std::vector<KnownModel>& known_models();
std::optional<std::int64_t> known_parameter_count(const std::string& name);  // accepts "openai-community/gpt2" too
std::string known_name_for_count(std::int64_t parameters);                   // "" when none

// The identity check that the original study lacked: throws Error stating both counts when the loaded
// model is not the expected one. expected_name may be empty (then only expected_parameters is checked);
// expected_parameters may be 0 (then the name's known count is used).
void verify_identity(const Gpt2Model& model, const std::string& expected_name, std::int64_t expected_parameters);

}  // namespace gptbench
