// gptbench init-random: a checkpoint of an exact GPT-2-family shape with random weights, so speed can be measured
// on the real 124M shape where the trained weights cannot be downloaded. Marked untrained in config.json, so every
// report made from it says its accuracy figures mean nothing.
#include <cstdio>
#include <filesystem>
#include <memory>

#include <fmt/format.h>

#include "cli/commands.h"
#include "common/error.h"
#include "common/paths.h"
#include "model/checkpoint.h"
#include "model/random_init.h"

namespace gptbench::cli {

void add_init_random_command(CLI::App& app) {
  struct Options {
    std::string shape = "gpt2";
    std::string out;
    std::uint64_t seed = 1234;
    std::string dtype = "F32";
    std::string tokenizer_from;
  };
  auto opts = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("init-random", "Write a randomly initialised checkpoint of an exact GPT-2-family shape");
  cmd->add_option("--shape", opts->shape, "gpt2, gpt2-medium, gpt2-large, gpt2-xl, distilgpt2, sshleifer/tiny-gpt2, gpt2-tiny-wt2")
      ->capture_default_str();
  cmd->add_option("--out", opts->out, "Output directory")->required();
  cmd->add_option("--seed", opts->seed, "Random seed")->capture_default_str();
  cmd->add_option("--dtype", opts->dtype, "Storage dtype: F32, F16 or BF16")->capture_default_str();
  cmd->add_option("--tokenizer-from", opts->tokenizer_from,
                  "Directory whose vocab.json and merges.txt are copied (default: gpt2-tiny-wt2 in ../shared)");
  cmd->callback([opts] {
    Gpt2Config config;
    if (!gpt2_shape_by_name(opts->shape, config)) throw Error("--shape: unknown shape '" + opts->shape + "'");
    config.untrained = true;
    Gpt2Weights weights = allocate_weights(config);
    randomize_weights(config, weights, opts->seed);
    save_model(config, weights, opts->out, opts->dtype);
    const std::string from = opts->tokenizer_from.empty() ? default_model_dir() : opts->tokenizer_from;
    for (const char* f : {"vocab.json", "merges.txt"}) {
      const std::string src = from + "/" + f;
      if (!file_exists(src)) fail_file(src, "missing (init-random copies the GPT-2 tokenizer files from --tokenizer-from)");
      std::filesystem::copy_file(src, opts->out + "/" + f, std::filesystem::copy_options::overwrite_existing);
    }
    std::printf("%s", fmt::format("wrote {} (shape {}, {} parameters, {} storage, seed {}, marked untrained)\n",
                                  opts->out, opts->shape, config.parameter_count(), opts->dtype, opts->seed).c_str());
  });
}

}  // namespace gptbench::cli
