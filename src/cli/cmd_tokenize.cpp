// gptbench tokenize --model DIR [--json] [--allow-special] [--keep-cr]: UTF-8 text on stdin -> GPT-2 token ids.
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "common/error.h"
#include "common/paths.h"
#include "model/checkpoint.h"
#include "tokenizer/gpt2_tokenizer.h"

namespace gptbench::cli {
namespace {

struct TokenizeOptions {
  std::string model;
  bool json = false;
  bool allow_special = false;
  bool keep_cr = false;
};

std::string read_all_stdin() {
  std::string text;
  char buffer[1 << 16];
  std::size_t got;
  while ((got = std::fread(buffer, 1, sizeof buffer, stdin)) > 0) text.append(buffer, got);
  if (std::ferror(stdin)) throw Error("stdin: read error");
  return text;
}

void run_tokenize(const TokenizeOptions& options) {
  // A directory is used as it is (it only needs vocab.json and merges.txt); anything else is a hub name.
  const std::string model_dir = dir_exists(options.model) ? options.model : resolve_model_dir(options.model);
  const Gpt2Tokenizer tokenizer = load_tokenizer(model_dir);
  const std::string input = read_all_stdin();
  check_utf8(input, "stdin");  // before newline translation, so the offset it reports is the input's own
  // Like Python reading text (and like the shared reference figures): "\r\n" and a lone "\r" become "\n".
  const std::vector<std::int32_t> ids =
      tokenizer.encode(options.keep_cr ? input : universal_newlines(input), options.allow_special, "stdin");

  std::string out;
  out.reserve(ids.size() * 6 + 4);
  if (options.json) out += '[';
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (i > 0) out += options.json ? "," : " ";
    out += std::to_string(ids[i]);
  }
  if (options.json) out += ']';
  out += '\n';
  std::fwrite(out.data(), 1, out.size(), stdout);
  if (std::fflush(stdout) != 0) throw Error("stdout: write error");
}

}  // namespace

void add_tokenize_command(CLI::App& app) {
  auto options = std::make_shared<TokenizeOptions>();
  options->model = default_model_dir();
  CLI::App* cmd = app.add_subcommand("tokenize", "Encode UTF-8 text from stdin into GPT-2 token ids");
  cmd->add_option("--model", options->model, "Model directory with vocab.json and merges.txt, or a hub name")
      ->capture_default_str();
  cmd->add_flag("--json", options->json, "Print the ids as a JSON array");
  cmd->add_flag("--allow-special", options->allow_special,
                "Encode <|endoftext|> in the text as its special id (50256) instead of as plain text");
  cmd->add_flag("--keep-cr", options->keep_cr,
                "Keep carriage returns (by default CRLF and CR are read as LF, as Python reads text)");
  cmd->callback([options] { run_tokenize(*options); });
}

}  // namespace gptbench::cli
