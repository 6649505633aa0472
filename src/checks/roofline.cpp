#include "checks/roofline.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>

namespace gptbench {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
// Default last-level cache sizes when the manifest gives none: generous (large server L3 / H100-H200 L2) so
// that the memory term is only counted when the weights certainly cannot stay in cache.
constexpr double kDefaultCpuCacheBytes = 256.0 * 1024 * 1024;
constexpr double kDefaultGpuCacheBytes = 64.0 * 1024 * 1024;

bool starts_with(const std::string& s, const char* p) { return s.rfind(p, 0) == 0; }

double max_of(const nlohmann::json& table, std::initializer_list<const char*> keys) {
  double best = kNaN;
  for (const char* k : keys) {
    double v = json_number(table, k);
    if (!std::isnan(v) && (std::isnan(best) || v > best)) best = v;
  }
  return best;
}

}  // namespace

double bytes_per_parameter(const std::string& precision) {
  if (precision == "fp32" || precision == "tf32") return 4.0;
  if (precision == "fp16" || precision == "bf16") return 2.0;
  if (starts_with(precision, "int8")) return 1.0;
  return kNaN;
}

double block_matmul_parameters(const ModelInfo& m) {
  double e = m.n_embd, inner = m.n_inner > 0 ? m.n_inner : 4.0 * m.n_embd;
  return m.n_layer * (4.0 * e * e + 2.0 * e * inner);
}

double shape_implied_parameters(const ModelInfo& m) {
  if (!m.has_shape()) return 0.0;
  double e = m.n_embd, inner = m.n_inner > 0 ? m.n_inner : 4.0 * m.n_embd;
  double per_layer = 4.0 * e * e + 2.0 * e * inner + 9.0 * e + inner;  // weights + biases + two LayerNorms
  return static_cast<double>(m.vocab_size) * e + static_cast<double>(m.n_positions) * e + m.n_layer * per_layer +
         2.0 * e;
}

Ceilings ceilings_for(const nlohmann::json& manifest, const LatencyRow& cell) {
  Ceilings c;
  if (!manifest.contains("hardware") || !manifest["hardware"].is_object()) return c;
  const nlohmann::json& hw = manifest["hardware"];
  const std::string& p = cell.precision;
  if (!cell.is_gpu()) {
    if (!hw.contains("cpu")) return c;
    const nlohmann::json& cpu = hw["cpu"];
    double fp32 = json_number(cpu, "peak_gflops_fp32");
    nlohmann::json table = cpu.contains("peak_gflops") ? cpu["peak_gflops"] : nlohmann::json::object();
    // Without a per-precision table, assume the widest the CPU could do: BF16 dot products at twice and
    // VNNI INT8 at four times the FP32 rate, so the floor stays a lower bound.
    double peak = kNaN;
    if (p == "fp32" || p == "tf32") peak = max_of(table, {"fp32"});
    else if (p == "fp16" || p == "bf16") peak = max_of(table, {"fp16", "bf16"});
    else if (p == "int8") peak = max_of(table, {"int8"});
    else if (starts_with(p, "int8")) peak = max_of(table, {"fp32", "fp16", "bf16", "int8"});
    if (std::isnan(peak) && !std::isnan(fp32)) {
      double factor = (p == "fp16" || p == "bf16") ? 2.0 : starts_with(p, "int8") ? 4.0 : 1.0;
      peak = fp32 * factor;
    }
    double bw = json_number(cpu, "bandwidth_gb_s");
    double cache = json_number(cpu, "cache_bytes");
    if (std::isnan(peak) || std::isnan(bw)) return c;
    std::string peak_source = cpu.contains("peak_source") && cpu["peak_source"].is_string() ? cpu["peak_source"].get<std::string>() : "unstated";
    std::string bw_source = cpu.contains("bandwidth_source") && cpu["bandwidth_source"].is_string() ? cpu["bandwidth_source"].get<std::string>() : "unstated";
    double peak_factor = starts_with(peak_source, "measured") ? kMeasuredCpuCeilingHeadroom : 1.0;
    double bw_factor = starts_with(bw_source, "measured") ? kMeasuredCpuCeilingHeadroom : 1.0;
    c.known = true;
    c.peak_flops_per_s = peak * peak_factor * 1e9;
    c.bandwidth_bytes_per_s = bw * bw_factor * 1e9;
    c.cache_bytes = std::isnan(cache) ? kDefaultCpuCacheBytes : cache;
    c.source = fmt::format("cpu {}: {:.1f} GFLOP/s ({}{}), {:.1f} GB/s ({}{})", p, peak * peak_factor, peak_source,
                           peak_factor != 1.0 ? fmt::format(", x{} headroom", peak_factor) : "", bw * bw_factor, bw_source,
                           bw_factor != 1.0 ? fmt::format(", x{} headroom", bw_factor) : "");
    return c;
  }
  if (!hw.contains("gpu") || !hw["gpu"].is_object()) return c;
  const nlohmann::json& gpu = hw["gpu"];
  nlohmann::json table = gpu.contains("peak_tflops") ? gpu["peak_tflops"] : nlohmann::json::object();
  double peak = kNaN;
  // The highest rate the precision could be computed at (fp32 may run on TF32 tensor cores).
  if (p == "fp32" || p == "tf32") peak = max_of(table, {"fp32", "tf32"});
  else if (p == "fp16" || p == "bf16") peak = max_of(table, {"fp16", "bf16"});
  else if (p == "int8") peak = max_of(table, {"int8", "fp16", "bf16"});
  else if (starts_with(p, "int8")) peak = max_of(table, {"fp16", "bf16", "fp32", "tf32"});
  double bw = json_number(gpu, "bandwidth_gb_s");
  double cache = json_number(gpu, "cache_bytes");
  if (std::isnan(peak) || std::isnan(bw)) return c;
  c.known = true;
  c.peak_flops_per_s = peak * 1e12;
  c.bandwidth_bytes_per_s = bw * 1e9;
  c.cache_bytes = std::isnan(cache) ? kDefaultGpuCacheBytes : cache;
  c.source = fmt::format("{}: {} TFLOP/s for {}, {} GB/s ({})",
                         gpu.contains("name") && gpu["name"].is_string() ? gpu["name"].get<std::string>() : "gpu", peak, p,
                         bw, gpu.contains("source") && gpu["source"].is_string() ? gpu["source"].get<std::string>() : "unstated");
  return c;
}

CellWork estimate_work(const ModelInfo& m, const LatencyRow& cell) {
  CellWork w;
  if (!m.has_shape()) return w;
  double e = m.n_embd;
  double blocks = block_matmul_parameters(m);
  double lm_head = static_cast<double>(m.vocab_size) * e;
  double params = m.parameters > 0 ? static_cast<double>(m.parameters) : shape_implied_parameters(m);
  double bpp = bytes_per_parameter(cell.precision);
  w.weight_bytes = std::isnan(bpp) ? 0.0 : params * bpp;
  double b = std::max(cell.batch, 1);
  if (cell.scenario == "decode") {
    // One step: every block matrix and the LM head for one token per sequence, attention over at least the prompt.
    double ctx = std::max(cell.prompt, 1);
    w.flops = 2.0 * (blocks + lm_head) * b + 4.0 * m.n_layer * b * ctx * e;
  } else {
    // A prefill call: blocks for every token; the LM head counted for the last token only (an engine may skip
    // the rest); causal attention QK^T and AV over the lower triangle.
    double s = std::max(cell.seq, 1);
    w.flops = 2.0 * blocks * b * s + 2.0 * lm_head * b + 2.0 * m.n_layer * b * s * s * e;
  }
  return w;
}

std::vector<CellRoofline> roofline_cells(const RunData& run) {
  std::vector<CellRoofline> out;
  ModelInfo m = run.model();
  if (!m.has_shape()) return out;
  for (const LatencyRow& cell : run.latency) {
    if (!cell.ok() || !(cell.median_ms > 0.0)) continue;
    Ceilings c = ceilings_for(run.manifest, cell);
    if (!c.known) continue;
    CellWork w = estimate_work(m, cell);
    CellRoofline r;
    r.cell_id = cell.cell_id;
    r.latency_ms = cell.median_ms;
    r.compute_ms = w.flops / c.peak_flops_per_s * 1e3;
    r.memory_counted = w.weight_bytes > c.cache_bytes;
    r.memory_ms = r.memory_counted ? w.weight_bytes / c.bandwidth_bytes_per_s * 1e3 : 0.0;
    r.floor_ms = std::max(r.compute_ms, r.memory_ms);
    r.roofline_pct = 100.0 * r.floor_ms / r.latency_ms;
    r.ceiling_source = c.source;
    out.push_back(r);
  }
  return out;
}

}  // namespace gptbench
