#pragma once
// What a run was measured on and with: provenance, build warnings, process memory, hardware ceilings for the
// roofline gate, and the overhead of the harness itself.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace gptbench::bench {

// tool_version, git_revision, git_dirty, build_type, build_optimised, host, os, cpu_model, cpu_threads, gpu[]
// (docs/run-format.md "provenance", without "model").
nlohmann::json environment_provenance();

// Why this build's timings should not be trusted (not a Release build, assertions on, sanitizers); empty if none.
std::vector<std::string> build_warnings();

// Peak resident memory of this process. VmHWM is process-wide and never falls, so the runner resets it before
// each repetition through /proc/self/clear_refs ("5": reset the peak RSS to the current RSS).
bool reset_peak_rss();
std::int64_t peak_rss_bytes();     // VmHWM, -1 when unreadable
std::int64_t current_rss_bytes();  // VmRSS, -1 when unreadable

// CPU roofline ceilings measured here and now: OpenBLAS sgemm GFLOP/s and memcpy bandwidth.
// {"peak_gflops_fp32", "peak_source", "bandwidth_gb_s", "bandwidth_source"}
nlohmann::json measure_cpu_ceilings(int threads);

// Dense datasheet ceilings of a GPU by its NVML name: {"name", "peak_tflops": {...}, "bandwidth_gb_s", "source"};
// null when the name is not in the table.
nlohmann::json gpu_datasheet(const std::string& gpu_name);

// The smallest latency the tool can resolve: time around an empty (virtual, no-op) backend call and the
// spacing of steady_clock readings. {"empty_call_ms_median", "empty_call_ms_p99", "clock_resolution_ns",
// "clock_read_ns_median", "samples"}
nlohmann::json measure_harness_overhead();

std::string cpu_model_name();
int cpu_thread_count();  // CPUs this process may run on

}  // namespace gptbench::bench
