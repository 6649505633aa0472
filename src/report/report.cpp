#include "report/report.h"

#include <algorithm>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <map>
#include <set>

#include <fmt/format.h>

#include "checks/roofline.h"
#include "common/paths.h"

namespace gptbench {
namespace {

using nlohmann::json;

// ---- formatting helpers ------------------------------------------------------------------------------------

// About four significant digits in fixed notation (tables must never show 1.2e+03).
std::string fixed(double v, int significant = 4) {
  if (!std::isfinite(v)) return "–";
  if (v == 0.0) return "0";
  int magnitude = static_cast<int>(std::floor(std::log10(std::fabs(v))));
  int decimals = std::clamp(significant - 1 - magnitude, 0, 6);
  return fmt::format("{:.{}f}", v, decimals);
}

std::string thousands(std::int64_t v) {
  std::string digits = std::to_string(v < 0 ? -v : v), out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return v < 0 ? "-" + out : out;
}

std::string percent(double fraction) { return std::isfinite(fraction) ? fmt::format("{:.1f} %", 100.0 * fraction) : "–"; }

// Markdown table cells: a '|' would end the cell and a newline the row.
std::string cell(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '|') out += "\\|";
    else if (c == '\n' || c == '\r') out += ' ';
    else out += c;
  }
  return out.empty() ? "–" : out;
}

std::string str(const json& j, const char* key) {
  if (!j.is_object()) return {};
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return {};
  return it->is_string() ? it->get<std::string>() : it->dump();
}

// A JSON boolean that may be absent or null (the runner writes null when it cannot tell).
bool flag(const json& j, const char* key) {
  return j.is_object() && j.contains(key) && j[key].is_boolean() && j[key].get<bool>();
}

std::string status_label(GateStatus s) {
  switch (s) {
    case GateStatus::pass: return "PASS";
    case GateStatus::fail: return "**FAIL**";
    case GateStatus::warn: return "WARN";
    case GateStatus::skip: return "skip";
  }
  return "skip";
}

std::string series(const LatencyRow& r) { return fmt::format("{}/{}/{}", r.backend, r.device, r.precision); }

std::string now_utc() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M UTC", &tm);
  return buf;
}

// ---- sections ----------------------------------------------------------------------------------------------

// "; 6 of 18 cells failed (see Notes)" when some cells produced no numbers.
std::string failed_cells_clause(const RunData& run) {
  int failed = 0, skipped = 0;
  for (const LatencyRow& r : run.latency) {
    if (r.status == "skipped") ++skipped;
    else if (!r.ok()) ++failed;
  }
  if (failed == 0 && skipped == 0) return {};
  std::string out = " Cells without numbers:";
  if (failed > 0) out += fmt::format(" {} of {} failed", failed, run.latency.size());
  if (skipped > 0) out += fmt::format("{} {} skipped (backend not in this build)", failed > 0 ? ";" : "", skipped);
  return out + " (section 7).";
}

// True when not one cell and not one perplexity evaluation produced a number: no gate has anything to fail on,
// and the run must not read as VALID.
bool nothing_measured(const RunData& run) {
  for (const LatencyRow& r : run.latency)
    if (r.ok()) return false;
  for (const json& r : run.perplexity_results())
    if (r.value("status", "") == "ok") return false;
  return true;
}

std::string verdict_section(const RunData& run, const std::vector<GateResult>& gates) {
  std::vector<const GateResult*> failed, warned;
  int passed = 0, skipped = 0;
  for (const GateResult& g : gates) {
    if (g.status == GateStatus::fail) failed.push_back(&g);
    else if (g.status == GateStatus::warn) warned.push_back(&g);
    else if (g.status == GateStatus::pass) ++passed;
    else ++skipped;
  }
  std::string out;
  if (!failed.empty()) {
    std::string reasons;
    for (const GateResult* g : failed) reasons += fmt::format("{}{} ({})", reasons.empty() ? "" : "; ", g->name, g->summary);
    out += fmt::format("**Verdict: INVALID** — {} of {} gates failed: {}.{}\n\n", failed.size(), gates.size(), reasons,
                       failed_cells_clause(run));
    out += "> **INVALID RUN — these numbers cannot be true and must not be used or quoted.**\n>\n> Failed gates:\n";
    for (const GateResult* g : failed) out += fmt::format("> - **{}. {}**: {}\n", g->id, g->name, g->summary);
    out += "\n";
  } else if (nothing_measured(run)) {
    out += fmt::format("**Verdict: INVALID** — nothing was measured: every cell and perplexity evaluation failed or "
                       "was skipped.{}\n\n",
                       failed_cells_clause(run));
    out += "> **INVALID RUN — there are no numbers to use; section 7 says why each cell has none.**\n\n";
  } else {
    std::string warn_names;
    for (const GateResult* g : warned) warn_names += fmt::format("{}{}", warn_names.empty() ? "" : ", ", g->name);
    out += fmt::format("**Verdict: VALID** — {} gates passed, {} warned{}, {} skipped (no data); none failed.{}\n\n",
                       passed, warned.size(), warned.empty() ? "" : " (" + warn_names + ")", skipped,
                       failed_cells_clause(run));
  }
  return out;
}

std::string measured_section(const RunData& run) {
  const json& m = run.manifest;
  const json prov = m.contains("provenance") ? m["provenance"] : json::object();
  ModelInfo model = run.model();
  std::string out = "## 1. What was measured, and on what\n\n### Model\n\n| property | value |\n| --- | --- |\n";
  out += fmt::format("| name | {}{} |\n", cell(model.name.empty() ? "(not recorded)" : model.name),
                     model.expected_name.empty() ? "" : fmt::format(" (config expects `{}`)", cell(model.expected_name)));
  out += fmt::format("| source | {} |\n", cell(model.source));
  out += fmt::format("| parameters (loaded) | {} |\n", model.parameters > 0 ? thousands(model.parameters) : "(not recorded)");
  if (model.config_parameters > 0) out += fmt::format("| parameters (config.json implies) | {} |\n", thousands(model.config_parameters));
  if (model.expected_parameters > 0) out += fmt::format("| parameters (expected) | {} |\n", thousands(model.expected_parameters));
  if (model.has_shape())
    out += fmt::format("| shape | {} layers, {} heads, n_embd {}, n_positions {}, vocab {} |\n", model.n_layer,
                       model.n_head, model.n_embd, model.n_positions, model.vocab_size);
  out += fmt::format("| weights | {}, sha256 `{}` |\n", cell(model.storage_dtype), cell(prov.contains("model") ? str(prov["model"], "weights_sha256") : std::string()));
  out += fmt::format("| trained | {} |\n", model.untrained ? "**NO — random weights: accuracy figures are meaningless, speed figures hold for the shape**" : "yes");

  out += "\n### Hardware\n\n| part | value |\n| --- | --- |\n";
  out += fmt::format("| host | {} |\n", cell(str(prov, "host")));
  out += fmt::format("| CPU | {} ({} threads) |\n", cell(str(prov, "cpu_model")), cell(str(prov, "cpu_threads")));
  if (prov.contains("gpu") && prov["gpu"].is_array())
    for (const json& g : prov["gpu"])
      out += fmt::format("| GPU | {} (driver {}, {} GiB) |\n", cell(str(g, "name")), cell(str(g, "driver")),
                         fixed(json_number(g, "memory_bytes") / (1024.0 * 1024 * 1024), 3));
  if (m.contains("hardware") && m["hardware"].is_object()) {
    const json& hw = m["hardware"];
    if (hw.contains("cpu"))
      out += fmt::format("| CPU ceilings | {} GFLOP/s fp32 ({}); {} GB/s ({}) |\n", fixed(json_number(hw["cpu"], "peak_gflops_fp32")),
                         cell(str(hw["cpu"], "peak_source")), fixed(json_number(hw["cpu"], "bandwidth_gb_s")),
                         cell(str(hw["cpu"], "bandwidth_source")));
    if (hw.contains("gpu") && hw["gpu"].is_object()) {
      std::string peaks;
      if (hw["gpu"].contains("peak_tflops") && hw["gpu"]["peak_tflops"].is_object())
        for (const auto& [k, v] : hw["gpu"]["peak_tflops"].items())
          peaks += fmt::format("{}{} {}", peaks.empty() ? "" : ", ", k, v.is_number() ? fixed(v.get<double>()) : v.dump());
      out += fmt::format("| GPU ceilings | {} TFLOP/s; {} GB/s ({}) |\n", cell(peaks), fixed(json_number(hw["gpu"], "bandwidth_gb_s")),
                         cell(str(hw["gpu"], "source")));
    }
  }
  if (m.contains("harness_overhead")) {
    const json& h = m["harness_overhead"];
    out += fmt::format("| harness resolution | empty backend call {} ms median, {} ms p99; clock resolution {} ns |\n",
                       fixed(json_number(h, "empty_call_ms_median")), fixed(json_number(h, "empty_call_ms_p99")),
                       fixed(json_number(h, "clock_resolution_ns")));
  }

  out += "\n### Software\n\n| item | value |\n| --- | --- |\n";
  for (const auto& [k, v] : prov.items()) {
    if (k == "model" || k == "gpu" || k == "host" || k == "cpu_model" || k == "cpu_threads") continue;
    if (v.is_object()) {
      for (const auto& [k2, v2] : v.items())
        out += fmt::format("| {}.{} | {} |\n", cell(k), cell(k2), cell(v2.is_string() ? v2.get<std::string>() : v2.dump()));
    } else {
      out += fmt::format("| {} | {} |\n", cell(k), cell(v.is_string() ? v.get<std::string>() : v.dump()));
    }
  }

  out += "\n### Run\n\n| item | value |\n| --- | --- |\n";
  out += fmt::format("| run id | `{}` |\n", cell(run.run_id()));
  out += fmt::format("| status | {} ({} cells, {} failed) |\n", cell(str(m, "status")), cell(str(m, "cells_total")),
                     cell(str(m, "cells_failed")));
  out += fmt::format("| config | `{}` (sha256 `{}`; resolved config in the appendix) |\n", cell(str(m, "config_path")),
                     cell(str(m, "config_sha256")));
  if (m.contains("stages") && m["stages"].is_array())
    for (const json& s : m["stages"])
      out += fmt::format("| stage {} | {} s |\n", cell(str(s, "name")), fixed(json_number(s, "seconds")));
  return out + "\n";
}

std::string latency_section(const RunData& run, const std::map<std::string, CellRoofline>& roofline) {
  std::string out = "## 2. Latency and throughput\n\n";
  if (run.latency.empty()) return out + "No latency figures (processed/latency_summary.csv is missing or empty).\n\n";
  out +=
      "Statistics are over repetitions (each repetition's median call); the 95 % CI is a Student-t interval of the mean; "
      "cv = stddev / mean. \"% of roofline\" is the physical floor (max of FLOPs / peak and weight bytes / bandwidth) divided "
      "by the median latency: 100 % would be perfect hardware use, above 100 % is impossible (gate 5).\n\n";
  std::vector<std::string> order;
  std::map<std::string, std::vector<const LatencyRow*>> by_scenario;
  for (const LatencyRow& r : run.latency) {
    std::string label = r.scenario_label();
    if (!by_scenario.count(label)) order.push_back(label);
    by_scenario[label].push_back(&r);
  }
  for (const std::string& label : order) {
    const auto& rows = by_scenario[label];
    bool decode = rows.front()->scenario == "decode";
    double fastest = INFINITY;
    for (const LatencyRow* r : rows)
      if (r->ok() && r->median_ms > 0) fastest = std::min(fastest, r->median_ms);
    out += fmt::format("### {}\n\n", label);
    if (decode) {
      out += "| backend | device | precision | n | TTFT ms | ms / token (median) | mean [95 % CI] ms | cv | tokens/s | % of roofline | vs fastest |\n";
      out += "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n";
    } else {
      out += "| backend | device | precision | n | median ms | mean [95 % CI] ms | p5 – p95 ms | cv | tokens/s | % of roofline | vs fastest |\n";
      out += "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n";
    }
    for (const LatencyRow* r : rows) {
      if (r->status == "skipped") continue;  // listed once in the notes
      if (!r->ok()) {
        out += fmt::format("| {} | {} | {} | – | {}: {} | | | | | | |\n", cell(r->backend), cell(r->device),
                           cell(r->precision), cell(r->status), cell(r->error));
        continue;
      }
      auto rl = roofline.find(r->cell_id);
      std::string roof = rl == roofline.end() ? "–" : fmt::format("{} %", fixed(rl->second.roofline_pct, 3));
      std::string median = fixed(r->median_ms);
      if (r->median_ms == fastest) median = "**" + median + "**";
      std::string ci = fmt::format("{} [{} – {}]", fixed(r->mean_ms), fixed(r->ci95_low_ms), fixed(r->ci95_high_ms));
      std::string rel = fmt::format("{:.2f}×", r->median_ms / fastest);
      if (decode)
        out += fmt::format("| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n", cell(r->backend), cell(r->device),
                           cell(r->precision), r->n, fixed(r->ttft_ms), median, ci, percent(r->cv), fixed(r->tokens_per_s),
                           roof, rel);
      else
        out += fmt::format("| {} | {} | {} | {} | {} | {} | {} – {} | {} | {} | {} | {} |\n", cell(r->backend),
                           cell(r->device), cell(r->precision), r->n, median, ci, fixed(r->p5_ms), fixed(r->p95_ms),
                           percent(r->cv), fixed(r->tokens_per_s), roof, rel);
    }
    out += "\n";
  }
  return out;
}

std::string accuracy_section(const RunData& run) {
  std::string out = "## 3. Accuracy\n\n";
  const json& p = run.perplexity;
  if (!p.is_object()) return out + "No perplexity was measured (processed/perplexity_results.json is missing).\n\n";
  out += fmt::format(
      "Perplexity on `{}` (sha256 `{}`, {} tokens), sliding window ctx {} / stride {}{}; reference: `{}`. "
      "± is the standard error of the perplexity (delta method over per-token NLL).\n\n",
      cell(std::filesystem::path(str(p, "dataset")).filename().string()), cell(str(p, "dataset_sha256")),
      std::isfinite(json_number(p, "dataset_tokens")) ? thousands(static_cast<std::int64_t>(json_number(p, "dataset_tokens"))) : "–",
      cell(str(p, "ctx")), cell(str(p, "stride")),
      json_number(p, "max_tokens") > 0 ? fmt::format(", first {} tokens only", str(p, "max_tokens")) : std::string(),
      cell(str(p, "reference")));
  out += "| backend | device | precision | perplexity | ± stderr | Δ vs reference | scored tokens | seconds | identical to reference |\n";
  out += "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | --- |\n";
  for (const json& r : run.perplexity_results()) {
    if (str(r, "status") == "skipped") continue;  // listed once in the notes
    if (str(r, "status") != "ok") {
      out += fmt::format("| {} | {} | {} | {}: {} | | | | | |\n", cell(str(r, "backend")), cell(str(r, "device")),
                         cell(str(r, "precision")), cell(str(r, "status")), cell(str(r, "error")));
      continue;
    }
    double delta = json_number(r, "delta_pct");
    out += fmt::format("| {} | {} | {} | {} | {} | {} | {} | {} | {} |\n", cell(str(r, "backend")), cell(str(r, "device")),
                       cell(str(r, "precision")), fixed(json_number(r, "ppl"), 6), fixed(json_number(r, "ppl_stderr"), 3),
                       std::isfinite(delta) ? fmt::format("{:+.3f} %", delta) : "–",
                       std::isfinite(json_number(r, "scored_tokens")) ? thousands(static_cast<std::int64_t>(json_number(r, "scored_tokens"))) : "–",
                       fixed(json_number(r, "seconds"), 3), !r.contains("identical_to_reference") || r["identical_to_reference"].is_null() ? "–" : flag(r, "identical_to_reference") ? "yes" : "no");
  }
  out += "\n";
  // Agreement with FP32 (written by the INT8 work); its rows are shown as they are, numbers rounded.
  const json& a = run.agreement;
  const json* rows = nullptr;
  if (a.is_object())
    for (const char* key : {"cells", "results", "agreement"})
      if (a.contains(key) && a[key].is_array()) rows = &a[key];
  if (rows != nullptr && !rows->empty()) {
    std::vector<std::string> columns;
    for (const json& r : *rows)
      for (const auto& [k, v] : r.items())
        if (!v.is_object() && !v.is_array() && std::find(columns.begin(), columns.end(), k) == columns.end())
          columns.push_back(k);
    if (columns.size() > 12) columns.resize(12);
    out += "### Agreement with the FP32 reference (next-token distributions)\n\n|";
    for (const auto& c : columns) out += fmt::format(" {} |", cell(c));
    out += "\n|";
    for (std::size_t i = 0; i < columns.size(); ++i) out += " --- |";
    out += "\n";
    for (const json& r : *rows) {
      out += "|";
      for (const auto& c : columns) {
        std::string v = !r.contains(c) ? "–" : r[c].is_number_float() ? fixed(r[c].get<double>()) : r[c].is_string() ? r[c].get<std::string>() : r[c].dump();
        out += fmt::format(" {} |", cell(v));
      }
      out += "\n";
    }
    out += "\n";
  }
  return out;
}

std::string gates_section(const std::vector<GateResult>& gates) {
  std::string out =
      "## 4. Sanity gates\n\nEach gate's rule and thresholds: docs/gates.md. The numbers behind each result are in "
      "`processed/gates.json`.\n\n| # | gate | result | summary |\n| ---: | --- | --- | --- |\n";
  for (const GateResult& g : gates) out += fmt::format("| {} | {} | {} | {} |\n", g.id, g.name, status_label(g.status), cell(g.summary));
  return out + "\n";
}

std::string conclusions_section(const RunData& run, const std::vector<GateResult>& gates) {
  std::string out = "## 5. Conclusions\n\n";
  if (any_failed(gates))
    out += "**The run is INVALID: the statements below restate the measurements and must not be taken as findings.**\n\n";
  // Fastest backend per scenario, and whether its lead is outside the confidence intervals.
  std::vector<std::string> order;
  std::map<std::string, std::vector<const LatencyRow*>> by_scenario;
  for (const LatencyRow& r : run.latency) {
    if (!r.ok() || !(r.median_ms > 0)) continue;
    if (!by_scenario.count(r.scenario_label())) order.push_back(r.scenario_label());
    by_scenario[r.scenario_label()].push_back(&r);
  }
  if (!order.empty()) out += "Fastest per scenario (median latency):\n\n";
  for (const std::string& label : order) {
    auto rows = by_scenario[label];
    std::sort(rows.begin(), rows.end(), [](auto* a, auto* b) { return a->median_ms < b->median_ms; });
    const LatencyRow* best = rows[0];
    std::string line = fmt::format("- **{}**: `{}` at {} ms", label, series(*best), fixed(best->median_ms));
    if (rows.size() > 1) {
      const LatencyRow* next = rows[1];
      bool separated = std::isfinite(best->ci95_high_ms) && std::isfinite(next->ci95_low_ms) && best->ci95_high_ms < next->ci95_low_ms;
      line += fmt::format(", {:.2f}× faster than `{}` ({} ms){}", next->median_ms / best->median_ms, series(*next),
                          fixed(next->median_ms),
                          separated ? "; the 95 % intervals do not overlap" : "; the 95 % intervals overlap: not a significant lead");
    }
    out += line + ".\n";
  }
  if (!order.empty()) out += "\n";

  // Speed of each precision against FP32 on the same backend and device, over the scenarios both ran.
  std::map<std::string, std::map<std::string, const LatencyRow*>> cells;  // backend/device -> precision+scenario
  for (const LatencyRow& r : run.latency)
    if (r.ok() && r.median_ms > 0) cells[r.backend + "/" + r.device][r.precision + "\n" + r.scenario_label()] = &r;
  std::vector<std::string> speed_lines;
  for (const auto& [engine, table] : cells) {
    std::map<std::string, std::pair<double, int>> log_ratio;  // precision -> (sum log(fp32/precision), count)
    for (const auto& [key, row] : table) {
      if (row->precision == "fp32") continue;
      auto fp32 = table.find("fp32\n" + row->scenario_label());
      if (fp32 == table.end()) continue;
      auto& acc = log_ratio[row->precision];
      acc.first += std::log(fp32->second->median_ms / row->median_ms);
      acc.second += 1;
    }
    for (const auto& [precision, acc] : log_ratio)
      speed_lines.push_back(fmt::format("- `{}` {}: {:.2f}× the speed of fp32 (geometric mean over {} scenario(s)).", engine,
                                        precision, std::exp(acc.first / acc.second), acc.second));
  }
  if (!speed_lines.empty()) {
    out += "Speed of each precision relative to FP32 on the same engine:\n\n";
    for (const auto& l : speed_lines) out += l + "\n";
    out += "\n";
  }

  // Accuracy cost of each precision.
  std::vector<std::string> cost_lines;
  for (const json& r : run.perplexity_results()) {
    if (str(r, "status") != "ok") continue;
    double delta = json_number(r, "delta_pct");
    if (!std::isfinite(delta) || (delta == 0.0 && str(r, "precision") == "fp32")) continue;
    cost_lines.push_back(fmt::format("- `{}/{}` {}: perplexity {} ({:+.3f} % vs the reference){}.", str(r, "backend"),
                                     str(r, "device"), str(r, "precision"), fixed(json_number(r, "ppl"), 6), delta,
                                     flag(r, "identical_to_reference") ? ", bit-identical to the reference" : ""));
  }
  if (!cost_lines.empty()) {
    out += "Accuracy cost of each precision (perplexity change vs the FP32 reference):\n\n";
    for (const auto& l : cost_lines) out += l + "\n";
    out += "\n";
  }
  if (order.empty() && cost_lines.empty()) out += "The run has no measurements to draw conclusions from.\n\n";
  return out;
}

std::string charts_section(const ChartSet& charts) {
  std::string out = "## 6. Charts\n\n";
  if (!charts.problem.empty()) out += fmt::format("Note: {}.\n\n", charts.problem);
  if (charts.charts.empty() && charts.problem.empty()) out += "No data to chart.\n\n";
  for (const Chart& c : charts.charts) out += fmt::format("### {}\n\n![{}]({})\n\n", c.title, c.title, c.file);
  return out;
}

std::string notes_section(const RunData& run) {
  std::vector<std::string> notes = run.notes;
  const json& m = run.manifest;
  if (m.contains("warnings") && m["warnings"].is_array())
    for (const json& w : m["warnings"])
      if (w.is_string()) notes.push_back(w.get<std::string>());
  std::string status = str(m, "status");
  if (!status.empty() && status != "complete") notes.push_back(fmt::format("the run's status is '{}': figures may be partial", status));
  // Cells without numbers, one line per engine and reason (a backend missing from the build skips all its cells).
  std::vector<std::string> order;
  std::map<std::string, std::vector<std::string>> scenarios;
  for (const LatencyRow& r : run.latency) {
    if (r.ok()) continue;
    std::string key = fmt::format("`{}` {}: {}", series(r), r.status, r.error.empty() ? "(no reason recorded)" : r.error);
    if (!scenarios.count(key)) order.push_back(key);
    scenarios[key].push_back(r.scenario_label());
  }
  for (const std::string& key : order) {
    std::string list;
    for (const std::string& sc : scenarios[key]) list += (list.empty() ? "" : ", ") + sc;
    notes.push_back(fmt::format("{} ({} cell(s): {})", key, scenarios[key].size(), list));
  }
  for (const json& r : run.perplexity_results())
    if (str(r, "status") != "ok")
      notes.push_back(fmt::format("perplexity of `{}/{}/{}` {}: {}", str(r, "backend"), str(r, "device"), str(r, "precision"),
                                  str(r, "status"), str(r, "error").empty() ? "(no reason recorded)" : str(r, "error")));
  if (notes.empty()) return {};
  std::string out = "## 7. Notes and warnings\n\n";
  for (const auto& n : notes) out += "- " + n + "\n";
  return out + "\n";
}

std::string appendix(const RunData& run) {
  if (!run.manifest.contains("config")) return {};
  return "## Appendix: resolved configuration\n\n```json\n" + run.manifest["config"].dump(2) + "\n```\n";
}

}  // namespace

std::string render_report(const RunData& run, const std::vector<GateResult>& gates, const ChartSet& charts) {
  std::map<std::string, CellRoofline> roofline;
  for (const CellRoofline& c : roofline_cells(run)) roofline[c.cell_id] = c;
  std::string out = verdict_section(run, gates);
  out += fmt::format("# gptbench technical report — run `{}`\n\n", run.run_id());
  out += fmt::format("Generated {} by `gptbench report` from the run folder alone (docs/run-format.md).\n\n", now_utc());
  out += measured_section(run);
  out += latency_section(run, roofline);
  out += accuracy_section(run);
  out += gates_section(gates);
  out += conclusions_section(run, gates);
  out += charts_section(charts);
  out += notes_section(run);
  out += appendix(run);
  return out;
}

int write_report(const std::string& run_dir) {
  RunData run = load_run(run_dir);
  std::vector<GateResult> gates = evaluate_gates(run);
  const bool invalid = any_failed(gates) || nothing_measured(run);
  json gates_json = gates_to_json(gates);
  gates_json["verdict"] = invalid ? "INVALID" : "VALID";  // also when no gate failed but nothing was measured
  write_file_atomic(run_dir + "/processed/gates.json", gates_json.dump(2) + "\n");
  std::string report_dir = run_dir + "/report";
  std::filesystem::create_directories(report_dir);
  ChartSet charts = write_charts(run, report_dir);
  write_file_atomic(report_dir + "/Technical_Report.md", render_report(run, gates, charts));
  return invalid ? kInvalidRunExitCode : 0;
}

}  // namespace gptbench
