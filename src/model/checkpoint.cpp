#include "model/checkpoint.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <set>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/hash.h"
#include "common/paths.h"
#include "model/safetensors.h"

namespace fs = std::filesystem;

namespace gptbench {

const std::vector<KnownModel>& known_models() {
  static const std::vector<KnownModel> table = {
      {"gpt2", 124439808},          {"gpt2-medium", 354823168}, {"gpt2-large", 774030080},
      {"gpt2-xl", 1557611200},      {"distilgpt2", 81912576},   {"sshleifer/tiny-gpt2", 102714},
      {"gpt2-tiny-wt2", 7357312},
  };
  return table;
}

static std::string canonical_model_name(const std::string& name) {
  // Hub aliases: "openai-community/gpt2" and "distilbert/distilgpt2" are the same checkpoints as "gpt2", "distilgpt2".
  for (const char* org : {"openai-community/", "distilbert/"})
    if (name.rfind(org, 0) == 0) return name.substr(std::string(org).size());
  return name;
}

std::optional<std::int64_t> known_parameter_count(const std::string& name) {
  const std::string canonical = canonical_model_name(name);
  for (const auto& m : known_models())
    if (canonical == m.name) return m.parameters;
  return std::nullopt;
}

std::string known_name_for_count(std::int64_t parameters) {
  for (const auto& m : known_models())
    if (m.parameters == parameters) return m.name;
  return "";
}

std::string ModelIdentity::weights_sha256() const {
  if (weight_files.size() == 1) return weight_files[0].sha256;
  Sha256 h;
  for (const auto& f : weight_files) h.update(f.sha256.data(), f.sha256.size());
  return h.hex_digest();
}

namespace {

std::string hub_cache_dir() {
  if (const char* v = std::getenv("HF_HUB_CACHE"); v && *v) return v;
  if (const char* v = std::getenv("HUGGINGFACE_HUB_CACHE"); v && *v) return v;
  if (const char* v = std::getenv("HF_HOME"); v && *v) return std::string(v) + "/hub";
  if (const char* v = std::getenv("XDG_CACHE_HOME"); v && *v) return std::string(v) + "/huggingface/hub";
  if (const char* v = std::getenv("HOME"); v && *v) return std::string(v) + "/.cache/huggingface/hub";
  return "";
}

// models--<org>--<name>/snapshots/<revision>: the revision refs/main points at, else the newest snapshot.
std::string resolve_from_hub_cache(const std::string& name, std::string& tried) {
  const std::string cache = hub_cache_dir();
  if (cache.empty()) return "";
  std::vector<std::string> repo_ids = {name};
  if (name.find('/') == std::string::npos) repo_ids.push_back("openai-community/" + name);
  for (const auto& repo_id : repo_ids) {
    std::string folder = "models--" + repo_id;
    for (std::size_t p = folder.find('/'); p != std::string::npos; p = folder.find('/')) folder.replace(p, 1, "--");
    const fs::path repo = fs::path(cache) / folder;
    tried += (tried.empty() ? "" : ", ") + repo.string();
    if (!fs::is_directory(repo / "snapshots")) continue;
    const fs::path ref = repo / "refs" / "main";
    if (fs::is_regular_file(ref)) {
      std::string rev = read_text_file(ref.string());
      while (!rev.empty() && (rev.back() == '\n' || rev.back() == ' ')) rev.pop_back();
      if (fs::is_directory(repo / "snapshots" / rev)) return (repo / "snapshots" / rev).string();
    }
    fs::path newest;
    fs::file_time_type newest_time{};
    for (const auto& entry : fs::directory_iterator(repo / "snapshots")) {
      if (!entry.is_directory()) continue;
      auto t = entry.last_write_time();
      if (newest.empty() || t > newest_time) {
        newest = entry.path();
        newest_time = t;
      }
    }
    if (!newest.empty()) return newest.string();
  }
  return "";
}

std::string strip_prefix(const std::string& name) {
  static const std::string prefix = "transformer.";
  return name.rfind(prefix, 0) == 0 ? name.substr(prefix.size()) : name;
}

// Buffers that transformers saves with some checkpoints: not parameters.
bool is_ignored_buffer(const std::string& name) {
  auto ends_with = [&](const std::string& suffix) {
    return name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  return ends_with(".attn.bias") || ends_with(".attn.masked_bias");
}

}  // namespace

std::string resolve_model_dir(const std::string& dir_or_name) {
  if (dir_or_name.empty()) throw Error("no model given");
  const std::string expanded = expand_shared(dir_or_name);
  if (fs::is_directory(expanded)) return expanded;
  if (dir_or_name == "gpt2-tiny-wt2" && fs::is_directory(default_model_dir())) return default_model_dir();
  const bool looks_like_path =
      dir_or_name.find("./") != std::string::npos || dir_or_name.rfind('/', 0) == 0 || dir_or_name.rfind("~", 0) == 0;
  if (looks_like_path || fs::exists(expanded)) fail_file(dir_or_name, "not a model directory");
  std::string tried;
  std::string snapshot = resolve_from_hub_cache(dir_or_name, tried);
  if (snapshot.empty())
    throw Error(dir_or_name + ": no such directory, and not in the Hugging Face cache (looked in " +
                (tried.empty() ? std::string("no cache: HOME unset") : tried) + ")");
  return snapshot;
}

Gpt2Model load_model(const std::string& dir_or_name, const LoadOptions& options) {
  Gpt2Model model;
  const std::string dir = resolve_model_dir(dir_or_name);
  const std::string config_path = dir + "/config.json";
  if (!file_exists(config_path)) fail_file(config_path, "missing (a Hugging Face model directory needs config.json)");
  model.config = Gpt2Config::load(config_path);
  const Gpt2Config& config = model.config;

  // Weight files: one model.safetensors, or shards listed by model.safetensors.index.json.
  std::vector<std::string> weight_paths;
  const std::string single = dir + "/model.safetensors";
  const std::string index = dir + "/model.safetensors.index.json";
  if (file_exists(single)) {
    weight_paths.push_back(single);
  } else if (file_exists(index)) {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(read_text_file(index));
    } catch (const nlohmann::json::parse_error& e) {
      fail_file(index, std::string("not valid JSON: ") + e.what());
    }
    if (!j.contains("weight_map") || !j["weight_map"].is_object()) fail_file(index, "has no weight_map object");
    std::set<std::string> shards;
    for (const auto& [tensor, file] : j["weight_map"].items()) {
      if (!file.is_string()) fail_file(index, "weight_map entry '" + tensor + "' is not a file name");
      shards.insert(file.get<std::string>());
    }
    for (const auto& s : shards) {
      if (s.find('/') != std::string::npos || s == "..") fail_file(index, "shard name '" + s + "' leaves the directory");
      const std::string p = dir + "/" + s;
      if (!file_exists(p)) fail_file(p, "missing (listed in model.safetensors.index.json)");
      weight_paths.push_back(p);
    }
  } else {
    if (file_exists(dir + "/pytorch_model.bin"))
      fail_file(dir, "has only pytorch_model.bin; gptbench reads safetensors (convert with transformers' save_pretrained)");
    fail_file(dir, "has neither model.safetensors nor model.safetensors.index.json");
  }

  model.weights = allocate_weights(config);
  // A tied checkpoint has no lm_head; an untied one must have it. Track which tensors were found.
  std::map<std::string, Tensor*> slots;
  for_each_tensor(model.weights, [&](const std::string& name, Tensor& t) { slots[name] = &t; });
  std::set<std::string> loaded;
  std::set<std::string> dtypes;
  bool lm_head_in_file = false;

  for (const auto& path : weight_paths) {
    SafetensorsFile file(path);
    WeightFile wf{path, file.file_bytes(), ""};
    if (options.hash_weights) wf.sha256 = sha256_file(path);
    model.identity.weight_files.push_back(wf);
    for (const auto& [raw_name, entry] : file.entries()) {
      const std::string name = strip_prefix(raw_name);
      if (is_ignored_buffer(name)) continue;
      if (name == "lm_head.weight") lm_head_in_file = true;
      if (name == "lm_head.weight" && config.tie_word_embeddings) {
        // Tied: the stored copy must equal wte's shape; it is not a parameter of its own.
        std::vector<std::int64_t> shape;
        expected_shape(config, name, shape);
        if (entry.shape != shape)
          fail_file(path, "tensor '" + raw_name + "' has shape " + shape_string(entry.shape) + ", config.json implies " +
                              shape_string(shape));
        continue;
      }
      auto slot = slots.find(name);
      if (slot == slots.end())
        fail_file(path, "unexpected tensor '" + raw_name + "' (not part of a GPT-2 model with n_layer=" +
                            std::to_string(config.n_layer) + ")");
      if (loaded.count(name)) fail_file(path, "tensor '" + raw_name + "' appears twice");
      Tensor& t = *slot->second;
      if (entry.shape != t.shape)
        fail_file(path, "tensor '" + raw_name + "' has shape " + shape_string(entry.shape) + ", config.json implies " +
                            shape_string(t.shape));
      if (entry.dtype != DType::F32 && entry.dtype != DType::F16 && entry.dtype != DType::BF16)
        fail_file(path, "tensor '" + raw_name + "' has dtype " + dtype_name(entry.dtype) + " (F32, F16 or BF16 expected)");
      file.read_as_f32(entry, t.ptr());
      dtypes.insert(dtype_name(entry.dtype));
      loaded.insert(name);
    }
  }
  for (const auto& [name, tensor] : slots) {
    if (!loaded.count(name))
      fail_file(weight_paths.front(), "tensor '" + name + "' is missing (config.json: n_layer=" +
                                          std::to_string(config.n_layer) + ", n_embd=" + std::to_string(config.n_embd) + ")");
  }
  if (!config.tie_word_embeddings && !lm_head_in_file)
    fail_file(weight_paths.front(), "config.json says the LM head is not tied, but lm_head.weight is missing");

  const std::string vocab = dir + "/vocab.json";
  const std::string merges = dir + "/merges.txt";
  if (options.require_tokenizer) {
    if (!file_exists(vocab)) fail_file(vocab, "missing (the GPT-2 tokenizer needs vocab.json)");
    if (!file_exists(merges)) fail_file(merges, "missing (the GPT-2 tokenizer needs merges.txt)");
  }
  model.vocab_path = vocab;
  model.merges_path = merges;

  ModelIdentity& id = model.identity;
  id.source = dir_or_name;
  id.directory = dir;
  id.parameters = model.weights.parameter_count();
  id.config_parameters = config.parameter_count();
  id.storage_dtype = dtypes.size() == 1 ? *dtypes.begin() : "mixed";
  id.untrained = config.untrained;
  id.name = known_name_for_count(id.parameters);
  if (id.name.empty()) id.name = fs::path(dir).filename().string();
  return model;
}

void save_model(const Gpt2Config& config, const Gpt2Weights& weights, const std::string& dir, const std::string& dtype) {
  fs::create_directories(dir);
  DType d = DType::F32;
  if (dtype == "F16" || dtype == "fp16") d = DType::F16;
  else if (dtype == "BF16" || dtype == "bf16") d = DType::BF16;
  else if (dtype != "F32" && dtype != "fp32") throw Error("unknown storage dtype '" + dtype + "' (F32, F16, BF16)");
  std::vector<TensorToWrite> tensors;
  for_each_tensor(weights, [&](const std::string& name, const Tensor& t) {
    tensors.push_back({"transformer." + name, t.shape, t.ptr()});
  });
  if (!tensors.empty() && tensors.back().name == "transformer.lm_head.weight") tensors.back().name = "lm_head.weight";
  write_safetensors(dir + "/model.safetensors", tensors, d, {{"format", "pt"}});
  nlohmann::json j = config.to_json();
  j["dtype"] = d == DType::F32 ? "float32" : (d == DType::F16 ? "float16" : "bfloat16");
  write_file_atomic(dir + "/config.json", j.dump(2) + "\n");
}

void verify_identity(const Gpt2Model& model, const std::string& expected_name, std::int64_t expected_parameters) {
  const ModelIdentity& id = model.identity;
  std::int64_t expected = expected_parameters;
  if (!expected_name.empty()) {
    auto known = known_parameter_count(expected_name);
    if (!known && expected == 0)
      throw Error("expected model '" + expected_name + "' is not a known model; give its parameter count too (known: " +
                  [] {
                    std::string s;
                    for (const auto& m : known_models()) s += (s.empty() ? "" : ", ") + std::string(m.name);
                    return s;
                  }() + ")");
    if (known && expected != 0 && *known != expected)
      throw Error("expected model '" + expected_name + "' has " + std::to_string(*known) + " parameters, but the " +
                  "expected parameter count is given as " + std::to_string(expected));
    if (known) expected = *known;
  }
  if (id.parameters != id.config_parameters)
    throw Error(id.directory + ": the weights hold " + std::to_string(id.parameters) +
                " parameters but config.json implies " + std::to_string(id.config_parameters));
  if (expected != 0 && id.parameters != expected)
    throw Error(id.directory + ": model identity mismatch: expected " +
                (expected_name.empty() ? std::string("a model") : "'" + expected_name + "'") + " with " +
                std::to_string(expected) + " parameters, but the loaded model has " + std::to_string(id.parameters) +
                " parameters" + (known_name_for_count(id.parameters).empty()
                                     ? std::string("")
                                     : " (that is " + known_name_for_count(id.parameters) + ")") +
                "; refusing to measure the wrong model");
}

}  // namespace gptbench
