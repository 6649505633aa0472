// gptbench info: what a checkpoint is — architecture, exact parameter count, sizes, storage, hashes.
#include <cstdio>
#include <memory>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/model_json.h"
#include "model/checkpoint.h"

namespace gptbench::cli {

void add_info_command(CLI::App& app) {
  struct Options {
    std::string model;
    std::string expect;
    bool json = false;
  };
  auto opts = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("info", "Describe a checkpoint: architecture, parameter count, sizes, hashes");
  cmd->add_option("--model", opts->model, "Model directory or Hugging Face hub name (default: gpt2-tiny-wt2 in ../shared)");
  cmd->add_option("--expect", opts->expect, "Fail unless the model is this known model (e.g. gpt2)");
  cmd->add_flag("--json", opts->json, "Print JSON");
  cmd->callback([opts] {
    const Gpt2Model model = load_model(opts->model.empty() ? default_model_dir_or_name() : opts->model);
    if (!opts->expect.empty()) verify_identity(model, opts->expect, 0);
    const nlohmann::json j = model_json(model);
    if (opts->json) {
      std::printf("%s\n", j.dump(2).c_str());
      return;
    }
    const auto& c = model.config;
    const auto& id = model.identity;
    std::printf("%s", fmt::format("model        {}{}\n", id.name, id.untrained ? "  (UNTRAINED: random weights)" : "").c_str());
    std::printf("%s", fmt::format("directory    {}\n", id.directory).c_str());
    std::printf("%s", fmt::format("architecture GPT-2: n_layer={} n_head={} n_embd={} n_positions={} vocab={} inner={} ({}, LM head {})\n",
                                  c.n_layer, c.n_head, c.n_embd, c.n_positions, c.vocab_size, c.inner_dim(),
                                  c.activation_function, c.tie_word_embeddings ? "tied" : "untied").c_str());
    std::printf("%s", fmt::format("parameters   {:L} (config.json implies {})\n", id.parameters, id.config_parameters).c_str());
    std::printf("%s", fmt::format("size         fp32 {:.1f} MB, fp16 {:.1f} MB, int8 {:.1f} MB\n", id.parameters * 4 / 1e6,
                                  id.parameters * 2 / 1e6, id.parameters / 1e6).c_str());
    std::printf("%s", fmt::format("storage      {}\n", id.storage_dtype).c_str());
    for (const auto& f : id.weight_files)
      std::printf("%s", fmt::format("weights      {} ({} bytes, sha256 {})\n", f.path, f.bytes, f.sha256).c_str());
  });
}

}  // namespace gptbench::cli
