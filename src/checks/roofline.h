#pragma once
// The physical floor under a measured latency: a forward pass cannot finish faster than its arithmetic at the
// device's peak rate, nor faster than reading its weights at the device's memory bandwidth. Every estimate here
// is a LOWER bound (work that might be skipped is not counted, peaks are the highest the precision could use),
// so a latency below the floor is impossible, not merely surprising.
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "checks/run_data.h"

namespace gptbench {

// Bytes per stored weight: fp32/tf32 4, fp16/bf16 2, int8 and int8-weight-only 1; NaN for an unknown name.
double bytes_per_parameter(const std::string& precision);

// Parameters in the transformer blocks' matrix products (attention qkv + projection, MLP up + down).
double block_matmul_parameters(const ModelInfo& m);
// Parameters implied by the shape (tied LM head counted once), as Hugging Face counts them.
double shape_implied_parameters(const ModelInfo& m);

// A CPU ceiling the runner measured (a BLAS sgemm rate, a memcpy bandwidth) is what one kernel achieved, not the
// hardware's limit: another kernel (e.g. AVX-512 where the BLAS runs its AVX2 kernel) or more threads can beat it.
// Measured CPU ceilings are therefore raised by this factor before they bound anything.
inline constexpr double kMeasuredCpuCeilingHeadroom = 2.0;

struct Ceilings {
  bool known = false;
  double peak_flops_per_s = 0.0;
  double bandwidth_bytes_per_s = 0.0;
  double cache_bytes = 0.0;  // weights smaller than this may stay in cache: no memory term then
  std::string source;
};
// From manifest.hardware for the cell's device and precision (see docs/gates.md, gate 5).
Ceilings ceilings_for(const nlohmann::json& manifest, const LatencyRow& cell);

struct CellWork {
  double flops = 0.0;         // per timed unit: one prefill call, or one decode step
  double weight_bytes = 0.0;  // weights at the cell's precision, read once per unit
};
// Lower-bound work of one call (prefill) or one step (decode); flops 0 when the shape is unknown.
CellWork estimate_work(const ModelInfo& m, const LatencyRow& cell);

struct CellRoofline {
  std::string cell_id;
  double latency_ms = 0.0;  // median (prefill call, decode step)
  double compute_ms = 0.0, memory_ms = 0.0, floor_ms = 0.0;
  bool memory_counted = false;
  double roofline_pct = 0.0;  // 100 * floor / latency: share of the physically possible speed reached
  std::string ceiling_source;
};
// One entry per ok cell for which both the shape and the ceilings are known.
std::vector<CellRoofline> roofline_cells(const RunData& run);

}  // namespace gptbench
