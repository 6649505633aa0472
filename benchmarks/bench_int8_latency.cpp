// FP32 against INT8 (W8A8) prefill latency, native CPU engine and ONNX Runtime's CPU provider, in one run on one
// machine: B1×S128 and B8×S128 on an in-memory random model of the exact GPT-2 124M shape. Both engines use the
// same number of threads (2 by default; GPTBENCH_THREADS).
//
//   bench_int8_latency [--benchmark_filter=B8] [--benchmark_min_time=...]
//
// INT8 goes through create_backend with precision "int8" and option calibration_cache, as a run config would:
// native → quant/'s W8A8 kernels; onnxruntime → the QDQ export (export/onnx_qdq.h) run by ONNX Runtime's integer
// kernels (MatMulIntegerToFloat). The calibration cache comes from a quick minmax calibration over a few batches
// of random tokens through the native FP32 engine's observer: random weights mean nothing, so only speed is
// measured here (accuracy: tests/onnx/test_onnx_int8.cpp and tests/quant/ on the trained tiny model).
// After the cases, a table of milliseconds and INT8 speed-ups is printed with the CPU's name.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "backends/backend.h"
#include "backends/native/native_backend.h"
#include "bench/environment.h"
#include "model/checkpoint.h"
#include "model/random_init.h"
#include "quant/calibration.h"
#include "quant/calibration_cache.h"
#ifdef GPTBENCH_WITH_ONNXRUNTIME
#include "backends/onnxruntime/ort_backend.h"
#endif

namespace {

using namespace gptbench;
namespace fs = std::filesystem;

int threads() {
  const char* env = std::getenv("GPTBENCH_THREADS");
  return env ? std::atoi(env) : 2;
}

std::string load_average() {
  std::ifstream in("/proc/loadavg");
  std::string one, five, fifteen;
  in >> one >> five >> fifteen;
  return one + " " + five + " " + fifteen;
}

const fs::path& work_dir() {
  static const fs::path dir = fs::temp_directory_path() / ("gptbench-bench-int8-" + std::to_string(::getpid()));
  return dir;
}

// GPT-2 124M shape, random weights (model/random_init.h): speed only, the outputs mean nothing.
Gpt2Model random_gpt2_124m() { return make_random_model("gpt2"); }

const Gpt2Model& model() {
  static const Gpt2Model m = random_gpt2_124m();
  return m;
}

std::vector<std::int32_t> random_tokens(int n, std::uint32_t seed) {
  std::vector<std::int32_t> ids(static_cast<std::size_t>(n));
  std::uint32_t s = seed;
  for (auto& id : ids) {
    s = s * 1664525u + 1013904223u;
    id = static_cast<std::int32_t>((s >> 8) % static_cast<std::uint32_t>(model().config.vocab_size));
  }
  return ids;
}

// Minmax over 4 batches of 4 × 128 random tokens through the FP32 engine's observer, written as a cache file for
// this model (its weights' sha256, so create_backend accepts it).
const std::string& calibration_cache_path() {
  static const std::string path = [] {
    constexpr int kBatches = 4, kBatch = 4, kSeq = 128;
    ActivationCalibrator calibrator(CalibrationMethod::kMinMax);
    NativeCpuOptions options;
    options.threads = threads();
    options.observer = calibrator.observer();
    auto fp32 = create_native_cpu_backend(model(), options);
    ForwardOutput out;
    for (int b = 0; b < kBatches; ++b)
      fp32->prefill(TokenBatch{kBatch, kSeq, random_tokens(kBatch * kSeq, 17u + static_cast<std::uint32_t>(b))},
                    OutputMode::kSummary, out);
    CalibrationCache cache;
    cache.table = calibrator.table();
    CalibrationProvenance& p = cache.provenance;
    p.model = model().identity.name;
    p.model_sha256 = model().identity.weights_sha256();
    p.dataset = "random-tokens";
    p.split = "none";
    p.dataset_path = "(in memory)";
    p.dataset_sha256 = std::string(64, '0');
    p.samples = kBatches * kBatch;
    p.batch = kBatch;
    p.seq = kSeq;
    p.method = "minmax";
    fs::create_directories(work_dir());
    const std::string file = (work_dir() / calibration_cache_filename(p)).string();
    write_calibration_cache(file, cache);
    return file;
  }();
  return path;
}

struct Result {
  double ms = 0.0;
};
std::map<std::string, Result>& results() {
  static std::map<std::string, Result> r;
  return r;
}

std::map<std::string, std::unique_ptr<Backend>>& backends() {
  static std::map<std::string, std::unique_ptr<Backend>> b;
  return b;
}

Backend& backend_for(const std::string& engine, const std::string& precision) {
  auto& slot = backends()[engine + "/" + precision];
  if (!slot) {
    BackendSpec spec;
    spec.name = engine;
    spec.precision = precision;
    spec.threads = threads();
    if (precision == "int8") spec.options["calibration_cache"] = calibration_cache_path();
    if (engine == "onnxruntime") {
      spec.options["cache_dir"] = (work_dir() / "onnx").string();
      spec.options["graph_optimization"] = "all";
    }
    slot = create_backend(spec, model());
    const BackendDescription d = slot->describe();
    std::printf("# %s/%s ready in %.2f s", engine.c_str(), precision.c_str(), slot->setup_seconds);
    if (auto it = d.details.find("model_bytes"); it != d.details.end())
      std::printf(", graph %.1f MB", std::stod(it->second) / 1e6);
    if (auto it = d.details.find("optimized_graph_ops"); it != d.details.end() && precision == "int8")
      std::printf(", optimised graph: %s", it->second.c_str());
    if (auto it = d.details.find("matmul_kernels"); it != d.details.end()) std::printf(", kernels: %s", it->second.c_str());
    std::printf("\n");
  }
  return *slot;
}

void run_prefill(benchmark::State& state, std::string engine, std::string precision, int batch, int seq) {
  Backend* backend = nullptr;
  try {
    backend = &backend_for(engine, precision);
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
    return;
  }
  const TokenBatch tokens{batch, seq, random_tokens(batch * seq, 99u)};
  ForwardOutput out;
  backend->prefill(tokens, OutputMode::kSummary, out);  // warm-up (allocations, first-run kernels)
  double seconds = 0.0;
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    backend->prefill(tokens, OutputMode::kSummary, out);
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    benchmark::DoNotOptimize(out.checksum);
  }
  const std::string key = engine + "/" + precision + "/B" + std::to_string(batch) + "xS" + std::to_string(seq);
  results()[key].ms = 1e3 * seconds / static_cast<double>(state.iterations());
  state.counters["tokens/s"] =
      benchmark::Counter(static_cast<double>(batch) * seq, benchmark::Counter::kIsIterationInvariantRate);
}

std::vector<std::string> engines() {
  std::vector<std::string> e = {"native"};
#ifdef GPTBENCH_WITH_ONNXRUNTIME
  e.push_back("onnxruntime");
#endif
  return e;
}

void register_cases() {
  benchmark::AddCustomContext("cpu", bench::cpu_model_name());
  benchmark::AddCustomContext("hardware_threads", std::to_string(std::thread::hardware_concurrency()));
  benchmark::AddCustomContext("threads", std::to_string(threads()));
  benchmark::AddCustomContext("model", "random GPT-2 124M shape (in memory)");
#ifdef GPTBENCH_WITH_ONNXRUNTIME
  benchmark::AddCustomContext("onnxruntime", onnxruntime_version());
#else
  std::printf("# this build has no ONNX Runtime backend: native only\n");
#endif
  for (auto [batch, seq] : {std::pair{1, 128}, std::pair{8, 128}}) {
    for (const auto& engine : engines()) {
      for (const char* precision : {"fp32", "int8"}) {
        const std::string name = "prefill_B" + std::to_string(batch) + "xS" + std::to_string(seq) + "/" + engine +
                                 "/" + precision;
        auto* b = benchmark::RegisterBenchmark(name.c_str(), run_prefill, engine, std::string(precision), batch, seq);
        b->Unit(benchmark::kMillisecond)->UseRealTime();
        // B8×S128 in FP32 takes seconds per call: a few calls are enough.
        if (batch > 1) b->Iterations(std::string(precision) == "fp32" ? 3 : 5);
        else b->MinTime(2.0);
      }
    }
  }
}

void print_summary(const std::string& load_at_start) {
  std::printf("\nINT8 vs FP32 prefill latency, random GPT-2 124M shape, %d threads, on %s (load average at start: "
              "%s; at end: %s)\n",
              threads(), bench::cpu_model_name().c_str(), load_at_start.c_str(), load_average().c_str());
  std::printf("%-12s %-10s %12s %12s %9s\n", "engine", "shape", "fp32 ms", "int8 ms", "speed-up");
  for (const char* shape : {"B1xS128", "B8xS128"}) {
    for (const auto& engine : engines()) {
      auto f = results().find(engine + "/fp32/" + shape), q = results().find(engine + "/int8/" + shape);
      if (f == results().end() || q == results().end()) continue;
      std::printf("%-12s %-10s %12.1f %12.1f %8.2fx\n", engine.c_str(), shape, f->second.ms, q->second.ms,
                  f->second.ms / q->second.ms);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  const std::string load_at_start = load_average();
  std::printf("# cpu: %s, load average at start: %s\n", bench::cpu_model_name().c_str(), load_at_start.c_str());
  register_cases();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  print_summary(load_at_start);
  backends().clear();
  std::error_code ec;  // the exported graphs and the cache are only for this run
  fs::remove_all(work_dir(), ec);
  return 0;
}
