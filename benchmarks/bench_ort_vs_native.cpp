// Native CPU engine against ONNX Runtime's CPU provider (at each graph-optimisation level), in one run on one
// machine: prefill of B1xS128 and B8xS128 tokens, on gpt2-tiny-wt2 (../shared) and on an in-memory random model
// of the exact GPT-2 124M shape. Both engines use the same number of threads (2 by default; GPTBENCH_THREADS).
//
//   bench_ort_vs_native [--benchmark_filter=gpt2-124M] [--benchmark_min_time=...]
//
// Per case: milliseconds per prefill (real time) and GFLOP/s, where one prefill of T = B·S tokens costs
// 2·T·(matrix-product parameters, LM head included) + 4·B·S²·C·n_layer for attention (QKᵀ and PV, full square
// as both engines compute it). Summary mode: both engines compute the full logits and return top-1 + checksum.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "backends/native/native_backend.h"
#include "common/paths.h"
#include "bench/environment.h"
#include "model/checkpoint.h"
#include "model/random_init.h"
#ifdef GPTBENCH_WITH_ONNXRUNTIME
#include "backends/onnxruntime/ort_backend.h"
#include "export/onnx_export.h"
#endif

namespace {

using namespace gptbench;

int threads() {
  const char* env = std::getenv("GPTBENCH_THREADS");
  return env ? std::atoi(env) : 2;
}

// GPT-2 124M shape, random weights (model/random_init.h): speed only, the outputs mean nothing.
Gpt2Model random_gpt2_124m() { return make_random_model("gpt2"); }

struct ModelCase {
  std::string label;
  Gpt2Model model;
  std::string onnx_path;  // exported once, shared by every optimisation level
};

std::vector<std::unique_ptr<ModelCase>>& models() {
  static std::vector<std::unique_ptr<ModelCase>> m;
  return m;
}

// Backends are created on first use and kept for the run (one per model x engine x level).
std::map<std::string, std::unique_ptr<Backend>>& backends() {
  static std::map<std::string, std::unique_ptr<Backend>> b;
  return b;
}

Backend& backend_for(ModelCase& mc, const std::string& engine, const std::string& level) {
  const std::string key = mc.label + "/" + engine + "/" + level;
  auto& slot = backends()[key];
  if (!slot) {
    if (engine == "native") {
      NativeCpuOptions options;
      options.threads = threads();
      slot = create_native_cpu_backend(mc.model, options);
    } else {
#ifdef GPTBENCH_WITH_ONNXRUNTIME
      BackendSpec spec;
      spec.name = "onnxruntime";
      spec.threads = threads();
      spec.options["graph_optimization"] = level;
      spec.options["model_path"] = mc.onnx_path;
      spec.options["optimized_graph_stats"] = "0";
      slot = create_onnxruntime_backend(spec, mc.model);
      std::printf("# %s: ORT session (%s) created in %.3f s\n", mc.label.c_str(), level.c_str(), slot->setup_seconds);
#endif
    }
  }
  return *slot;
}

double prefill_flops(const Gpt2Config& c, int batch, int seq) {
  const double tokens = static_cast<double>(batch) * seq;
  return 2.0 * tokens * static_cast<double>(c.matmul_parameter_count()) +
         4.0 * batch * static_cast<double>(seq) * seq * c.n_embd * c.n_layer;
}

void run_prefill(benchmark::State& state, ModelCase* mc, std::string engine, std::string level, int batch, int seq) {
  Backend* backend = nullptr;
  try {
    backend = &backend_for(*mc, engine, level);
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
    return;
  }
  TokenBatch tokens;
  tokens.batch = batch;
  tokens.seq = seq;
  for (int i = 0; i < batch * seq; ++i) tokens.ids.push_back((i * 7919 + 13) % mc->model.config.vocab_size);
  ForwardOutput out;
  backend->prefill(tokens, OutputMode::kSummary, out);  // warm-up (allocations, first-run kernels)
  for (auto _ : state) {
    backend->prefill(tokens, OutputMode::kSummary, out);
    benchmark::DoNotOptimize(out.checksum);
  }
  const double flops = prefill_flops(mc->model.config, batch, seq);
  state.counters["GFLOP/s"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["tokens/s"] = benchmark::Counter(static_cast<double>(batch) * seq, benchmark::Counter::kIsIterationInvariantRate);
}

void register_cases() {
  models().push_back(std::make_unique<ModelCase>());
  models().back()->label = "gpt2-tiny-wt2";
  models().back()->model = load_model(default_model_dir());
  models().push_back(std::make_unique<ModelCase>());
  models().back()->label = "gpt2-124M";
  models().back()->model = random_gpt2_124m();

  std::vector<std::string> engines = {"native"};
#ifdef GPTBENCH_WITH_ONNXRUNTIME
  const std::string dir = (std::filesystem::temp_directory_path() / "gptbench-bench-ort").string();
  for (auto& mc : models()) {
    const OnnxExportResult r = export_onnx(mc->model, {}, dir + "/" + mc->label + "_fp32.onnx");
    mc->onnx_path = r.path;
    std::printf("# %s: exported %.1f MB, %lld nodes in %.2f s\n", mc->label.c_str(), r.bytes / 1e6,
                static_cast<long long>(r.node_count), r.seconds);
  }
  benchmark::AddCustomContext("onnxruntime", onnxruntime_version());
  for (const char* level : {"disabled", "basic", "extended", "all"}) engines.push_back(std::string("ort-") + level);
#else
  std::printf("# this build has no ONNX Runtime backend: native only\n");
#endif
  benchmark::AddCustomContext("cpu", bench::cpu_model_name());
  benchmark::AddCustomContext("threads", std::to_string(threads()));
  benchmark::AddCustomContext("blas", blas_description());

  for (auto& mc : models()) {
    const bool big = mc->model.config.n_layer >= 12;
    for (auto [batch, seq] : {std::pair{1, 128}, std::pair{8, 128}}) {
      for (const auto& engine : engines) {
        const std::string level = engine == "native" ? "" : engine.substr(4);
        const std::string name =
            mc->label + "/prefill_B" + std::to_string(batch) + "xS" + std::to_string(seq) + "/" + engine;
        auto* b = benchmark::RegisterBenchmark(name.c_str(), run_prefill, mc.get(),
                                               engine == "native" ? "native" : "ort", level, batch, seq);
        b->Unit(benchmark::kMillisecond)->UseRealTime();
        if (big && batch > 1) b->Iterations(3);
        else if (big) b->MinTime(1.0);
      }
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  register_cases();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  backends().clear();
  std::error_code ec;  // the exported graphs (about 530 MB) are only for this run
  std::filesystem::remove_all(std::filesystem::temp_directory_path() / "gptbench-bench-ort", ec);
  return 0;
}
