// INT8 matrix products against FP32 OpenBLAS sgemm on the GPT-2 124M projection shapes.
//
//   bench_int8 [--benchmark_filter=...]
//
// Every case computes y[M, N] = x[M, K] · W + b. FP32: cblas_sgemm (OpenBLAS, its own threads). W8A8 and
// weight-only: the Linear the native engine would use, i.e. including the activation quantization. The
// "gpt2_block_x12_plus_lm_head" cases run one block's four projections 12 times plus the LM head — the matrix
// work of one GPT-2 124M prefill of M tokens. Rates: GFLOP/s (FP32) and GOP/s (INT8), 2·M·K·N per product.
#include <benchmark/benchmark.h>
#include <cblas.h>

#include <memory>
#include <random>
#include <string>
#include <vector>

#include "bench/environment.h"
#include "model/weights.h"
#include "quant/int8_gemm.h"
#include "quant/int8_linear.h"

extern "C" void openblas_set_num_threads(int);
extern "C" char* openblas_get_config(void);

namespace {

using gptbench::Int8Isa;
using gptbench::Tensor;

constexpr int kThreads = 2;

struct Shape {
  const char* name;
  std::int64_t k, n;
  bool transposed;  // the LM head: W is wte [V, C]
};
const Shape kShapes[] = {
    {"c_attn", 768, 2304, false},
    {"attn_c_proj", 768, 768, false},
    {"mlp_c_fc", 768, 3072, false},
    {"mlp_c_proj", 3072, 768, false},
    {"lm_head", 768, 50257, true},
};

Tensor random_tensor(std::vector<std::int64_t> shape, float stddev, unsigned seed) {
  Tensor t;
  t.shape = std::move(shape);
  t.data.resize(static_cast<std::size_t>(t.numel()));
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, stddev);
  for (auto& v : t.data) v = d(rng);
  return t;
}

// One projection in one precision.
struct Case {
  Shape shape;
  Tensor w, b;
  std::unique_ptr<gptbench::Linear> linear;  // null for FP32
};

enum class Mode { kFp32, kW8A8Vnni, kW8A8Avx2, kWeightOnlyAvx512, kWeightOnlyAvx2 };

Case make_case(const Shape& s, Mode mode, unsigned seed) {
  Case c{s, random_tensor(s.transposed ? std::vector<std::int64_t>{s.n, s.k} : std::vector<std::int64_t>{s.k, s.n},
                          0.02f, seed),
         random_tensor({s.n}, 0.01f, seed + 1), nullptr};
  gptbench::Int8LinearOptions o;
  o.threads = kThreads;
  switch (mode) {
    case Mode::kFp32: break;
    case Mode::kW8A8Vnni: o.isa = Int8Isa::kAvx512Vnni; break;
    case Mode::kW8A8Avx2: o.isa = Int8Isa::kAvx2; break;
    case Mode::kWeightOnlyAvx512: o.isa = Int8Isa::kAvx512Vnni; break;
    case Mode::kWeightOnlyAvx2: o.isa = Int8Isa::kAvx2; break;
  }
  if (mode == Mode::kW8A8Vnni || mode == Mode::kW8A8Avx2)
    c.linear = gptbench::make_int8_w8a8_linear(c.w, &c.b, s.transposed, 4.0f / 127.0f, o);
  else if (mode != Mode::kFp32)
    c.linear = gptbench::make_int8_weight_only_linear(c.w, &c.b, s.transposed, o);
  return c;
}

void run_case(const Case& c, const float* x, std::int64_t m, float* y) {
  if (c.linear) {
    c.linear->forward(x, m, y);
    return;
  }
  const auto& s = c.shape;
  for (std::int64_t r = 0; r < m; ++r) std::copy(c.b.data.begin(), c.b.data.end(), y + r * s.n);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, s.transposed ? CblasTrans : CblasNoTrans, static_cast<int>(m),
              static_cast<int>(s.n), static_cast<int>(s.k), 1.0f, x, static_cast<int>(s.k), c.w.ptr(),
              static_cast<int>(s.transposed ? s.k : s.n), 1.0f, y, static_cast<int>(s.n));
}

bool mode_supported(Mode mode) {
  if (mode == Mode::kW8A8Vnni || mode == Mode::kWeightOnlyAvx512)
    return gptbench::int8_isa_supported(Int8Isa::kAvx512Vnni);
  return true;
}

void set_rate(benchmark::State& state, double ops_per_iteration, Mode mode) {
  const bool int8_ops = mode == Mode::kW8A8Vnni || mode == Mode::kW8A8Avx2;
  state.counters[int8_ops ? "GOP/s" : "GFLOP/s"] = benchmark::Counter(
      ops_per_iteration * 1e-9 * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

void BM_projection(benchmark::State& state, int shape_index, Mode mode) {
  if (!mode_supported(mode)) {
    state.SkipWithError("kernel not supported by this CPU");
    return;
  }
  const std::int64_t m = state.range(0);
  const Case c = make_case(kShapes[shape_index], mode, 7 + shape_index);
  const Tensor x = random_tensor({m, c.shape.k}, 1.0f, 3);
  std::vector<float> y(static_cast<std::size_t>(m * c.shape.n));
  run_case(c, x.ptr(), m, y.data());  // warm-up (and the int8 pool's threads)
  for (auto _ : state) {
    run_case(c, x.ptr(), m, y.data());
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  set_rate(state, 2.0 * m * c.shape.k * c.shape.n, mode);
}

void BM_gpt2_model(benchmark::State& state, Mode mode) {
  if (!mode_supported(mode)) {
    state.SkipWithError("kernel not supported by this CPU");
    return;
  }
  const std::int64_t m = state.range(0);
  std::vector<Case> block;
  for (int i = 0; i < 4; ++i) block.push_back(make_case(kShapes[i], mode, 11 + i));
  const Case head = make_case(kShapes[4], mode, 21);
  const Tensor x = random_tensor({m, 3072}, 1.0f, 5);
  std::vector<float> y(static_cast<std::size_t>(m * 50257));
  double ops = 0;
  for (const auto& c : block) ops += 12.0 * 2.0 * m * c.shape.k * c.shape.n;
  ops += 2.0 * m * head.shape.k * head.shape.n;
  for (auto _ : state) {
    for (int layer = 0; layer < 12; ++layer)
      for (const auto& c : block) run_case(c, x.ptr(), m, y.data());
    run_case(head, x.ptr(), m, y.data());
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  set_rate(state, ops, mode);
}

const char* mode_name(Mode mode) {
  switch (mode) {
    case Mode::kFp32: return "fp32_openblas_sgemm";
    case Mode::kW8A8Vnni: return "w8a8_avx512vnni";
    case Mode::kW8A8Avx2: return "w8a8_avx2";
    case Mode::kWeightOnlyAvx512: return "weight_only_avx512";
    case Mode::kWeightOnlyAvx2: return "weight_only_avx2";
  }
  return "?";
}

const bool registered = [] {
  const Mode modes[] = {Mode::kFp32, Mode::kW8A8Vnni, Mode::kW8A8Avx2, Mode::kWeightOnlyAvx512,
                        Mode::kWeightOnlyAvx2};
  for (Mode mode : modes) {
    benchmark::RegisterBenchmark((std::string("gpt2_block_x12_plus_lm_head/") + mode_name(mode)).c_str(),
                                 [mode](benchmark::State& s) { BM_gpt2_model(s, mode); })
        ->Arg(1024)
        ->Arg(128)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime()
        ->MinTime(1.0);
  }
  for (int i = 0; i < 5; ++i)
    for (Mode mode : modes)
      benchmark::RegisterBenchmark((std::string(kShapes[i].name) + "/" + mode_name(mode)).c_str(),
                                   [i, mode](benchmark::State& s) { BM_projection(s, i, mode); })
          ->Arg(1024)
          ->Arg(8)
          ->Unit(benchmark::kMicrosecond)
          ->UseRealTime();
  return true;
}();

}  // namespace

int main(int argc, char** argv) {
  openblas_set_num_threads(kThreads);
  benchmark::AddCustomContext("cpu_model", gptbench::bench::cpu_model_name());
  benchmark::AddCustomContext("openblas", openblas_get_config());
  benchmark::AddCustomContext("int8_isa_auto", gptbench::int8_isa_name(gptbench::best_int8_isa()));
  benchmark::AddCustomContext("threads", std::to_string(kThreads));
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
