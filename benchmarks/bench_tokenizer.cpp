// Tokenizer speed on the WikiText-2 test file (the issue asks for "well under a second"): encode with a cold word
// cache (a fresh tokenizer each iteration, as a one-shot `gptbench perplexity` sees it) and with a warm one.
#include <benchmark/benchmark.h>

#include <string>

#include "common/paths.h"
#include "tokenizer/gpt2_tokenizer.h"

namespace {

const std::string& wikitext_test() {
  static const std::string text =
      gptbench::universal_newlines(gptbench::read_text_file(gptbench::shared_path("data/wikitext-2-raw/wiki.test.raw")));
  return text;
}

void BM_LoadTokenizer(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(gptbench::load_tokenizer(gptbench::default_model_dir()));
}
BENCHMARK(BM_LoadTokenizer)->Unit(benchmark::kMillisecond);

void BM_EncodeWikiText2Test_ColdCache(benchmark::State& state) {
  const std::string& text = wikitext_test();
  std::size_t ids = 0;
  for (auto _ : state) {
    state.PauseTiming();
    const gptbench::Gpt2Tokenizer tokenizer = gptbench::load_tokenizer(gptbench::default_model_dir());
    state.ResumeTiming();
    ids = tokenizer.encode(text).size();
  }
  state.counters["ids"] = static_cast<double>(ids);
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * text.size()));
}
BENCHMARK(BM_EncodeWikiText2Test_ColdCache)->Unit(benchmark::kMillisecond);

void BM_EncodeWikiText2Test_WarmCache(benchmark::State& state) {
  const std::string& text = wikitext_test();
  const gptbench::Gpt2Tokenizer tokenizer = gptbench::load_tokenizer(gptbench::default_model_dir());
  std::size_t ids = tokenizer.encode(text).size();
  for (auto _ : state) ids = tokenizer.encode(text).size();
  state.counters["ids"] = static_cast<double>(ids);
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * text.size()));
}
BENCHMARK(BM_EncodeWikiText2Test_WarmCache)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
