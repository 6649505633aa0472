#include "bench/environment.h"

#include <cblas.h>
#include <dnnl.h>
#include <fmt/format.h>
#include <omp.h>
#include <sched.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>

#include "backends/backend.h"
#include "bench/gpu_monitor.h"
#include "bench/statistics.h"
#include "common/build_revision.h"

#ifndef GPTBENCH_VERSION
#define GPTBENCH_VERSION "unknown"
#endif
#ifndef GPTBENCH_BUILD_TYPE
#define GPTBENCH_BUILD_TYPE "unknown"
#endif

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define GPTBENCH_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || __has_feature(memory_sanitizer)
#define GPTBENCH_SANITIZED 1
#endif
#endif

namespace gptbench::bench {

namespace {

std::int64_t proc_status_kib(const char* field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  const std::size_t length = std::strlen(field);
  while (std::getline(in, line)) {
    if (line.compare(0, length, field) == 0 && line.size() > length && line[length] == ':') {
      std::istringstream ss(line.substr(length + 1));
      std::int64_t kib = -1;
      ss >> kib;
      return kib;
    }
  }
  return -1;
}

bool build_type_optimised() {
  const std::string type = GPTBENCH_BUILD_TYPE;
  return type == "Release" || type == "RelWithDebInfo" || type == "MinSizeRel";
}

}  // namespace

std::string cpu_model_name() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      auto colon = line.find(':');
      if (colon != std::string::npos) {
        std::string name = line.substr(colon + 1);
        name.erase(0, name.find_first_not_of(" \t"));
        return name;
      }
    }
  }
  return "unknown";
}

int cpu_thread_count() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return CPU_COUNT(&set);
  return static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));
}

std::vector<std::string> build_warnings() {
  std::vector<std::string> w;
  if (!build_type_optimised())
    w.push_back(fmt::format("build is not optimised (CMAKE_BUILD_TYPE={})", GPTBENCH_BUILD_TYPE));
#ifndef NDEBUG
  w.push_back("assertions are enabled (NDEBUG not defined)");
#endif
#ifdef GPTBENCH_SANITIZED
  w.push_back("built with a sanitizer: timings are not representative");
#endif
  return w;
}

nlohmann::json environment_provenance() {
  nlohmann::json p;
  p["tool_version"] = GPTBENCH_VERSION;
  // The revision and dirty state of the source this binary was built from, recorded at build time: asking the
  // source directory at run time reported whatever that tree held then (or, for a binary run on another machine,
  // whatever tree sat at the same path).
  const std::string revision = build_git_revision();
  p["git_revision"] = revision.empty() ? "unknown" : revision;
  const int dirty = build_git_dirty();
  p["git_dirty"] = dirty < 0 ? nlohmann::json(nullptr) : nlohmann::json(dirty == 1);
  p["build_type"] = GPTBENCH_BUILD_TYPE;
  p["build_optimised"] = build_warnings().empty();
  char host[256] = {0};
  gethostname(host, sizeof(host) - 1);
  p["host"] = host;
  struct utsname u {};
  p["os"] = uname(&u) == 0 ? fmt::format("{} {}", u.sysname, u.release) : std::string("unknown");
  p["cpu_model"] = cpu_model_name();
  p["cpu_threads"] = cpu_thread_count();
  p["gpu"] = nlohmann::json::array();
  for (const auto& g : gpu_inventory())
    p["gpu"].push_back({{"name", g.name}, {"driver", g.driver}, {"memory_bytes", g.memory_bytes}});
  return p;
}

bool reset_peak_rss() {
  std::ofstream out("/proc/self/clear_refs");
  if (!out) return false;
  out << "5";
  out.flush();
  return static_cast<bool>(out);
}

std::int64_t peak_rss_bytes() {
  auto kib = proc_status_kib("VmHWM");
  return kib < 0 ? -1 : kib * 1024;
}

std::int64_t current_rss_bytes() {
  auto kib = proc_status_kib("VmRSS");
  return kib < 0 ? -1 : kib * 1024;
}

nlohmann::json measure_cpu_ceilings(int threads) {
  using clock = std::chrono::steady_clock;
  nlohmann::json j;
  // The best of 3 timed calls, after one that warms up threads and pages.
  auto best_seconds = [](auto&& call) {
    double best = 1e30;
    for (int i = 0; i < 4; ++i) {
      auto t0 = clock::now();
      call();
      double s = std::chrono::duration<double>(clock::now() - t0).count();
      if (i > 0) best = std::min(best, s);
    }
    return best;
  };
  const int previous_threads = openblas_get_num_threads();
  const int used_threads = threads > 0 ? threads : previous_threads;
  openblas_set_num_threads(used_threads);
  {
    // 2048^3 sgemm: large enough to reach a BLAS's peak, small enough (17 GFLOP) to take ~0.1 s per call.
    // Through both BLAS libraries the native engine uses, and the faster one is the ceiling: OpenBLAS alone can
    // under-state it badly (on a Xeon it did not recognise it ran its SSE3 "Prescott" kernel at 314 GFLOP/s
    // while the engine's oneDNN products ran at over 1 TFLOP/s, and the roofline gate then failed every cell).
    const int n = 2048;
    std::vector<float> a(static_cast<std::size_t>(n) * n, 0.5f), b(a.size(), 0.25f), c(a.size(), 0.0f);
    const double flops = 2.0 * n * static_cast<double>(n) * n;
    const double openblas = flops / best_seconds([&] {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n);
    }) / 1e9;
    const int previous_omp = omp_get_max_threads();
    omp_set_num_threads(threads > 0 ? threads : previous_omp);
    const double onednn = flops / best_seconds([&] {
      dnnl_sgemm('N', 'N', n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n);
    }) / 1e9;
    omp_set_num_threads(previous_omp);
    const char* core = openblas_get_corename();
    j["peak_gflops_fp32"] = std::max(openblas, onednn);
    j["peak_gflops_fp32_by_library"] = {{"openblas", openblas}, {"onednn", onednn}};
    j["peak_source"] = fmt::format(
        "measured: sgemm {}^3, best of 3, the faster of OpenBLAS ({:.0f} GFLOP/s, {} threads, kernel {}) and "
        "oneDNN ({:.0f} GFLOP/s, {} OpenMP threads)",
        n, openblas, used_threads, core ? core : "unknown", onednn, threads > 0 ? threads : previous_omp);
  }
  openblas_set_num_threads(previous_threads);
  {
    // Memory bandwidth: a 256 MiB copy by one thread and by all threads (one slice each); the faster is the
    // ceiling. One thread alone reaches a fraction of a server's bandwidth (24 of the ~110 GB/s that a 16-thread
    // host's decode steps were measured to stream), so the roofline gate would fail honest cells.
    const std::size_t bytes = std::size_t{256} << 20;
    std::vector<char> src(bytes, 1), dst(bytes, 0);
    const int copy_threads = threads > 0 ? threads : omp_get_max_threads();
    int touched = 0;
    auto copy = [&](int nthreads) {
#pragma omp parallel for num_threads(nthreads) schedule(static)
      for (int t = 0; t < nthreads; ++t) {
        const std::size_t begin = bytes / nthreads * t, end = t + 1 == nthreads ? bytes : bytes / nthreads * (t + 1);
        std::memcpy(dst.data() + begin, src.data() + begin, end - begin);
      }
      src[static_cast<std::size_t>(touched++ % 4) * 4096] = dst[bytes - 1];  // keep the copies observable
    };
    const double one = 2.0 * static_cast<double>(bytes) / best_seconds([&] { copy(1); }) / 1e9;
    const double all = 2.0 * static_cast<double>(bytes) / best_seconds([&] { copy(copy_threads); }) / 1e9;
    j["bandwidth_gb_s"] = std::max(one, all);
    j["bandwidth_gb_s_by_threads"] = {{"1", one}, {std::to_string(copy_threads), all}};
    j["bandwidth_source"] = fmt::format(
        "measured: 256 MiB memcpy, bytes read + written, best of 3, the faster of 1 thread ({:.0f} GB/s) and {} "
        "threads ({:.0f} GB/s)",
        one, copy_threads, all);
  }
  return j;
}

nlohmann::json gpu_datasheet(const std::string& gpu_name) {
  // Dense (no sparsity) peak rates in TFLOP/s / TOPS and HBM bandwidth in GB/s from NVIDIA's datasheets.
  struct Entry {
    const char* match;  // substring of the NVML name
    double fp32, tf32, fp16, bf16, int8, bandwidth;
  };
  static const Entry table[] = {
      {"H200", 67, 495, 989, 989, 1979, 4800},
      {"H100 NVL", 60, 418, 835, 835, 1671, 3900},
      {"H100 PCIe", 51, 378, 756, 756, 1513, 2000},
      {"H100", 67, 495, 989, 989, 1979, 3350},  // SXM5 80GB HBM3
      {"A100-SXM4-80GB", 19.5, 156, 312, 312, 624, 2039},
      {"A100 80GB PCIe", 19.5, 156, 312, 312, 624, 1935},
      {"A100", 19.5, 156, 312, 312, 624, 1555},
      {"L40S", 91.6, 183, 362, 362, 733, 864},
      {"L4", 30.3, 60, 121, 121, 242, 300},
      {"A10", 31.2, 62.5, 125, 125, 250, 600},
      {"T4", 8.1, 0, 65, 0, 130, 320},
  };
  for (const auto& e : table) {
    if (gpu_name.find(e.match) == std::string::npos) continue;
    nlohmann::json peak = {{"fp32", e.fp32}, {"fp16", e.fp16}, {"int8", e.int8}};
    if (e.tf32 > 0) peak["tf32"] = e.tf32;
    if (e.bf16 > 0) peak["bf16"] = e.bf16;
    return {{"name", gpu_name},
            {"peak_tflops", peak},
            {"bandwidth_gb_s", e.bandwidth},
            {"source", std::string("datasheet table (dense), matched '") + e.match + "'"}};
  }
  return nullptr;
}

namespace {

// A backend that does nothing, to time the harness around a call.
class EmptyBackend final : public Backend {
 public:
  BackendDescription describe() const override { return {}; }
  void prefill(const TokenBatch&, OutputMode, ForwardOutput& out) override { out.checksum += 0.0; }
  std::unique_ptr<DecodeSession> start_decode(int, int) override { return nullptr; }
};

}  // namespace

nlohmann::json measure_harness_overhead() {
  using clock = std::chrono::steady_clock;
  constexpr int kSamples = 20000;
  std::unique_ptr<Backend> backend = std::make_unique<EmptyBackend>();
  Backend* volatile target = backend.get();  // volatile: keep the virtual call from being devirtualised away
  TokenBatch tokens;
  ForwardOutput out;
  std::vector<double> call_ms(kSamples);
  for (int i = 0; i < kSamples; ++i) {
    auto t0 = clock::now();
    target->prefill(tokens, OutputMode::kSummary, out);
    auto t1 = clock::now();
    call_ms[i] = std::chrono::duration<double, std::milli>(t1 - t0).count();
  }
  std::vector<double> read_ns(kSamples);
  double resolution_ns = 1e30;
  for (int i = 0; i < kSamples; ++i) {
    auto t0 = clock::now();
    auto t1 = clock::now();
    double d = std::chrono::duration<double, std::nano>(t1 - t0).count();
    read_ns[i] = d;
    if (d > 0) resolution_ns = std::min(resolution_ns, d);
  }
  nlohmann::json j;
  j["empty_call_ms_median"] = percentile(call_ms, 50);
  j["empty_call_ms_p99"] = percentile(call_ms, 99);
  j["clock_resolution_ns"] = resolution_ns;
  j["clock_read_ns_median"] = percentile(read_ns, 50);
  j["samples"] = kSamples;
  j["clock"] = "std::chrono::steady_clock";
  return j;
}

}  // namespace gptbench::bench
