// Native CPU engine: prefill latency on gpt2-tiny-wt2 and on the GPT-2 124M shape (random weights), against the
// GEMM libraries' own single-precision rates on the same machine. Run: build/benchmarks/bench_native
// (OPENBLAS_CORETYPE, when set in the environment, pins OpenBLAS's kernel; the context names the kernels in use).
#include <benchmark/benchmark.h>
#include <cblas.h>
#include <oneapi/dnnl/dnnl.h>

#include <random>
#include <thread>

#include "backends/native/native_backend.h"
#include "bench/environment.h"
#include "common/paths.h"
#include "model/checkpoint.h"
#include "model/random_init.h"

namespace gptbench {
namespace {

const Gpt2Model& tiny_model() {
  static const Gpt2Model m = load_model(default_model_dir(), {.hash_weights = false});
  return m;
}

// GPT-2 124M shape with GPT-2's random initialisation, built in memory (no 500 MB file needed).
const Gpt2Model& gpt2_random() {
  static const Gpt2Model m = make_random_model("gpt2");
  return m;
}

// FLOPs of one prefill: 2 per matrix-product parameter per token, plus causal attention (Q·Kᵀ and P·V).
double prefill_flops(const Gpt2Config& c, int batch, int seq) {
  const double tokens = static_cast<double>(batch) * seq;
  const double attention = 2.0 * 2.0 * c.n_layer * batch * (static_cast<double>(seq) * (seq + 1) / 2.0) * c.n_embd;
  return 2.0 * static_cast<double>(c.matmul_parameter_count()) * tokens + attention;
}

void prefill(benchmark::State& state, const Gpt2Model& model) {
  const int batch = static_cast<int>(state.range(0)), seq = static_cast<int>(state.range(1));
  auto backend = create_native_cpu_backend(model, {});
  std::mt19937 rng(1);
  std::uniform_int_distribution<int> dist(0, model.config.vocab_size - 1);
  TokenBatch tokens{batch, seq, std::vector<std::int32_t>(static_cast<std::size_t>(batch) * seq)};
  for (auto& id : tokens.ids) id = dist(rng);
  ForwardOutput out;
  backend->prefill(tokens, OutputMode::kSummary, out);  // warm-up: buffers sized, pages touched
  for (auto _ : state) {
    backend->prefill(tokens, OutputMode::kSummary, out);
    benchmark::DoNotOptimize(out.checksum);
  }
  state.counters["GFLOP/s"] = benchmark::Counter(prefill_flops(model.config, batch, seq) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["tokens/s"] = benchmark::Counter(static_cast<double>(batch) * seq, benchmark::Counter::kIsIterationInvariantRate);
}

void BM_PrefillTiny(benchmark::State& state) { prefill(state, tiny_model()); }
void BM_PrefillGpt2_124M(benchmark::State& state) { prefill(state, gpt2_random()); }

// The libraries' own rates on the matrix products that dominate a GPT-2 124M prefill at 1024 tokens: oneDNN
// (the engine's weight products) and OpenBLAS (its attention products).
template <bool kOneDnn>
void BM_Sgemm(benchmark::State& state) {
  const int M = static_cast<int>(state.range(0)), N = static_cast<int>(state.range(1)), K = static_cast<int>(state.range(2));
  std::vector<float> a(static_cast<std::size_t>(M) * K, 0.5f), b(static_cast<std::size_t>(K) * N, 0.25f), c(static_cast<std::size_t>(M) * N);
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(-1, 1);
  for (auto& x : a) x = u(rng);
  for (auto& x : b) x = u(rng);
  for (auto _ : state) {
    if constexpr (kOneDnn)
      dnnl_sgemm('N', 'N', M, N, K, 1.0f, a.data(), K, b.data(), N, 0.0f, c.data(), N);
    else
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1.0f, a.data(), K, b.data(), N, 0.0f, c.data(), N);
    benchmark::DoNotOptimize(c.data());
  }
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * M * N * K * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

// One perplexity window of gpt2-tiny-wt2 (1024 tokens, 512 scored), the unit of a WikiText-2 pass.
void BM_PerplexityWindowTiny(benchmark::State& state) {
  auto backend = create_native_cpu_backend(tiny_model(), {});
  std::vector<std::int32_t> ids(1024);
  std::mt19937 rng(2);
  for (auto& id : ids) id = static_cast<std::int32_t>(rng() % 50257);
  std::vector<double> nll;
  for (auto _ : state) {
    nll.clear();
    backend->score_window(ids, 511, nll);
    benchmark::DoNotOptimize(nll.data());
  }
}

BENCHMARK(BM_Sgemm<true>)->Name("BM_OneDnnSgemm")->Args({1024, 768, 768})->Args({1024, 2304, 768})->Args({1024, 3072, 768})->Args({1024, 768, 3072})->Args({1024, 50257, 768})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Sgemm<false>)->Name("BM_OpenBlasSgemm")->Args({1024, 768, 768})->Args({1024, 2304, 768})->Args({1024, 3072, 768})->Args({1024, 768, 3072})->Args({1024, 50257, 768})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_PrefillTiny)->Args({1, 128})->Args({8, 128})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_PrefillGpt2_124M)->Args({1, 128})->Args({8, 128})->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);
BENCHMARK(BM_PerplexityWindowTiny)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace gptbench

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  benchmark::AddCustomContext("blas", gptbench::blas_description());
  benchmark::AddCustomContext("cpu_model", gptbench::bench::cpu_model_name());
  benchmark::AddCustomContext("hardware_threads", std::to_string(std::thread::hardware_concurrency()));
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
}
