// gptbench perplexity: the standard sliding-window perplexity of a model on a text, on any backend.
#include <unistd.h>

#include <cstdio>
#include <memory>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "backends/backend.h"
#include "cli/commands.h"
#include "cli/model_json.h"
#include "common/error.h"
#include "common/paths.h"
#include "eval/dataset.h"
#include "eval/perplexity.h"
#include "model/checkpoint.h"
#include "tokenizer/gpt2_tokenizer.h"

namespace gptbench::cli {

void add_perplexity_command(CLI::App& app) {
  struct Options {
    std::string model, dataset, expect;
    BackendSpec spec;
    PerplexitySettings settings;
    bool json = false;
  };
  auto opts = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("perplexity", "Sliding-window perplexity of a model on a text");
  cmd->add_option("--model", opts->model, "Model directory or hub name (default: gpt2-tiny-wt2 in ../shared)");
  cmd->add_option("--dataset", opts->dataset, "UTF-8 text file (default: WikiText-2 raw test in ../shared)");
  cmd->add_option("--ctx", opts->settings.ctx, "Window length in tokens")->capture_default_str();
  cmd->add_option("--stride", opts->settings.stride, "Tokens between window starts")->capture_default_str();
  cmd->add_option("--max-tokens", opts->settings.max_tokens, "Use only the first N tokens (0: all)")->capture_default_str();
  cmd->add_option("--backend", opts->spec.name, "native, onnxruntime")->capture_default_str();
  cmd->add_option("--device", opts->spec.device, "cpu or cuda")->capture_default_str();
  cmd->add_option("--precision", opts->spec.precision, "fp32, tf32, fp16, bf16, int8, int8-weight-only")->capture_default_str();
  cmd->add_option("--threads", opts->spec.threads, "Threads (0: library default)")->capture_default_str();
  cmd->add_option("--option", opts->spec.options, "Backend option as two words, KEY VALUE (repeatable), e.g. --option calibration_cache FILE");
  cmd->add_option("--expect", opts->expect, "Fail unless the model is this known model (e.g. gpt2)");
  cmd->add_flag("--json", opts->json, "Print JSON (keys ppl, ppl_stderr, scored_tokens, nll_sum, ...)");
  cmd->callback([opts] {
    const Gpt2Model model = load_model(opts->model.empty() ? default_model_dir_or_name() : opts->model);
    if (!opts->expect.empty()) verify_identity(model, opts->expect, 0);
    if (opts->settings.ctx > model.config.n_positions)
      throw Error("--ctx " + std::to_string(opts->settings.ctx) + " exceeds the model's n_positions (" +
                  std::to_string(model.config.n_positions) + ", " + model.identity.directory + "/config.json)");
    const Gpt2Tokenizer tokenizer(model.vocab_path, model.merges_path);
    const std::string dataset_path =
        opts->dataset.empty() ? shared_path("data/wikitext-2-raw/wiki.test.raw") : opts->dataset;
    const TokenizedDataset data = load_dataset(dataset_path, tokenizer);
    auto backend = create_backend(opts->spec, model);
    const bool show_progress = !opts->json && ::isatty(STDERR_FILENO);
    const PerplexityResult r = evaluate_perplexity(
        *backend, data.ids, opts->settings, model.config.n_positions, [&](std::int64_t done, std::int64_t total) {
          if (show_progress) std::fprintf(stderr, "\rperplexity: window %lld/%lld", static_cast<long long>(done), static_cast<long long>(total));
        });
    if (show_progress) std::fprintf(stderr, "\n");
    if (opts->json) {
      nlohmann::json j = {{"ppl", r.ppl},
                          {"ppl_stderr", r.ppl_stderr},
                          {"scored_tokens", r.scored_tokens},
                          {"nll_sum", r.nll_sum},
                          {"windows", r.windows},
                          {"seconds", r.seconds},
                          {"ctx", opts->settings.ctx},
                          {"stride", opts->settings.stride},
                          {"dataset", data.path},
                          {"dataset_tokens", data.ids.size()},
                          {"dataset_ids_sha256", data.ids_sha256},
                          {"backend", opts->spec.label()},
                          {"model", model_json(model)}};
      std::printf("%s\n", j.dump(2).c_str());
      return;
    }
    std::printf("%s", fmt::format("model {} ({} parameters{}), backend {}\n", model.identity.name,
                                  model.identity.parameters, model.identity.untrained ? ", UNTRAINED" : "",
                                  opts->spec.label()).c_str());
    std::printf("%s", fmt::format("dataset {} ({} tokens), ctx {}, stride {}\n", data.path, data.ids.size(),
                                  opts->settings.ctx, opts->settings.stride).c_str());
    std::printf("%s", fmt::format("ppl {:.4f} ± {:.4f} (stderr)   scored tokens {}   NLL sum {:.4f}   {:.1f} s\n", r.ppl,
                                  r.ppl_stderr, r.scored_tokens, r.nll_sum, r.seconds).c_str());
  });
}

}  // namespace gptbench::cli
