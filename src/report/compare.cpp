#include "report/compare.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include <fmt/format.h>

#include "checks/run_data.h"
#include "common/stats.h"

namespace gptbench {
namespace {

using nlohmann::json;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::string str(const json& j, const char* key) {
  if (!j.is_object() || !j.contains(key) || j[key].is_null()) return {};
  return j[key].is_string() ? j[key].get<std::string>() : j[key].dump();
}

// Per ok cell, the repetitions' latency_ms from the raw records; cells with no raw records fall back to the
// summary (its mean repeated n times would fake a zero variance, so only the median is kept then).
struct CellSample {
  std::vector<double> reps;
  double summary_median = kNaN;
};

std::map<std::string, CellSample> samples(const RunData& run) {
  std::map<std::string, CellSample> out;
  for (const json& r : run.bench_records) {
    if (str(r, "status") != "ok") continue;
    double v = json_number(r, "latency_ms");
    if (std::isfinite(v)) out[str(r, "cell_id")].reps.push_back(v);
  }
  for (const LatencyRow& row : run.latency)
    if (row.ok()) out[row.cell_id].summary_median = row.median_ms;
  return out;
}

std::string fixed(double v) {
  if (!std::isfinite(v)) return "–";
  if (v == 0) return "0";
  int magnitude = static_cast<int>(std::floor(std::log10(std::fabs(v))));
  return fmt::format("{:.{}f}", v, std::clamp(3 - magnitude, 0, 6));
}

std::string p_text(double p) {
  if (!std::isfinite(p)) return "–";
  return p < 1e-4 ? "<0.0001" : fmt::format("{:.4f}", p);
}

}  // namespace

RunComparison compare_runs(const std::string& dir_a, const std::string& dir_b) {
  RunData a = load_run(dir_a), b = load_run(dir_b);
  RunComparison c;
  c.run_a = a.run_id();
  c.run_b = b.run_id();
  ModelInfo ma = a.model(), mb = b.model();
  if (ma.parameters != mb.parameters || ma.name != mb.name)
    c.notes.push_back(fmt::format("different models: {} ({} parameters) vs {} ({} parameters)", ma.name, ma.parameters,
                                  mb.name, mb.parameters));
  auto prov = [](const RunData& r, const char* key) {
    return r.manifest.contains("provenance") ? str(r.manifest["provenance"], key) : std::string();
  };
  for (const char* key : {"cpu_model", "host", "git_revision", "build_type"})
    if (prov(a, key) != prov(b, key))
      c.notes.push_back(fmt::format("{} differs: '{}' vs '{}'", key, prov(a, key), prov(b, key)));

  auto sa = samples(a), sb = samples(b);
  // Run A's cell order (the runner's deterministic order), then cells only its raw records know.
  std::vector<std::string> order;
  for (const LatencyRow& row : a.latency)
    if (sa.count(row.cell_id)) order.push_back(row.cell_id);
  for (const auto& [cell, s] : sa)
    if (std::find(order.begin(), order.end(), cell) == order.end()) order.push_back(cell);
  for (const std::string& cell : order) {
    const CellSample& s1 = sa.at(cell);
    auto it = sb.find(cell);
    if (it == sb.end()) {
      c.only_in_a.push_back(cell);
      continue;
    }
    const CellSample& s2 = it->second;
    LatencyChange ch;
    ch.cell_id = cell;
    ch.n_a = static_cast<int>(s1.reps.size());
    ch.n_b = static_cast<int>(s2.reps.size());
    ch.median_a = s1.reps.empty() ? s1.summary_median : stats::median(s1.reps);
    ch.median_b = s2.reps.empty() ? s2.summary_median : stats::median(s2.reps);
    ch.change_pct = 100.0 * (ch.median_b / ch.median_a - 1.0);
    stats::WelchResult w = stats::welch_t_test(s1.reps, s2.reps);
    ch.p_value = w.p_value;
    stats::RatioInterval ri = stats::ratio_of_means_ci95(s1.reps, s2.reps);
    ch.ratio = ri.ratio;
    ch.ratio_low = ri.low;
    ch.ratio_high = ri.high;
    ch.significant = std::isfinite(ri.low) && (ri.low > 1.0 || ri.high < 1.0);
    c.latency.push_back(ch);
  }
  for (const auto& [cell, s] : sb)
    if (!sa.count(cell)) c.only_in_b.push_back(cell);

  auto key = [](const json& r) { return fmt::format("{}/{}/{}", str(r, "backend"), str(r, "device"), str(r, "precision")); };
  bool same_eval = str(a.perplexity, "dataset_sha256") == str(b.perplexity, "dataset_sha256") &&
                   str(a.perplexity, "ctx") == str(b.perplexity, "ctx") &&
                   str(a.perplexity, "stride") == str(b.perplexity, "stride") &&
                   str(a.perplexity, "max_tokens") == str(b.perplexity, "max_tokens");
  std::map<std::string, const json*> pa;
  for (const json& r : a.perplexity_results())
    if (str(r, "status") == "ok") pa[key(r)] = &r;
  for (const json& r : b.perplexity_results()) {
    if (str(r, "status") != "ok") continue;
    auto it = pa.find(key(r));
    if (it == pa.end()) continue;
    PerplexityChange pc;
    pc.cell = key(r);
    pc.ppl_a = json_number(*it->second, "ppl");
    pc.ppl_b = json_number(r, "ppl");
    pc.change_pct = 100.0 * (pc.ppl_b / pc.ppl_a - 1.0);
    double se = std::hypot(json_number(*it->second, "ppl_stderr"), json_number(r, "ppl_stderr"));
    pc.z = se > 0 ? (pc.ppl_b - pc.ppl_a) / se : (pc.ppl_b == pc.ppl_a ? 0.0 : kNaN);
    pc.comparable = same_eval;
    c.perplexity.push_back(pc);
  }
  return c;
}

std::string format_comparison(const RunComparison& c) {
  std::string out = fmt::format("# gptbench compare: A = `{}`, B = `{}`\n\n", c.run_a, c.run_b);
  for (const auto& n : c.notes) out += fmt::format("- note: {}\n", n);
  if (!c.notes.empty()) out += "\n";
  out +=
      "Latency: median of repetitions; p from Welch's t-test on the repetitions; ratio = mean B / mean A with its 95 % "
      "interval (delta method); significant when that interval excludes 1.\n\n"
      "| cell | n A | n B | median A ms | median B ms | change | p | ratio [95 % CI] | verdict |\n"
      "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |\n";
  for (const LatencyChange& ch : c.latency) {
    std::string verdict = !std::isfinite(ch.ratio_low) ? "not enough repetitions"
                          : !ch.significant           ? "no significant change"
                          : ch.ratio > 1.0            ? "**slower**"
                                                      : "**faster**";
    out += fmt::format("| {} | {} | {} | {} | {} | {:+.2f} % | {} | {} [{} – {}] | {} |\n", ch.cell_id, ch.n_a, ch.n_b,
                       fixed(ch.median_a), fixed(ch.median_b), ch.change_pct, p_text(ch.p_value), fixed(ch.ratio),
                       fixed(ch.ratio_low), fixed(ch.ratio_high), verdict);
  }
  for (const auto& cell : c.only_in_a) out += fmt::format("| {} | only in A | | | | | | | |\n", cell);
  for (const auto& cell : c.only_in_b) out += fmt::format("| {} | only in B | | | | | | | |\n", cell);
  if (!c.perplexity.empty()) {
    out +=
        "\nPerplexity: z = change / combined standard error (treats the runs as independent samples; on the same text "
        "this is conservative).\n\n| cell | ppl A | ppl B | change | z | comparable |\n| --- | ---: | ---: | ---: | ---: | --- |\n";
    for (const PerplexityChange& p : c.perplexity)
      out += fmt::format("| {} | {} | {} | {:+.4f} % | {} | {} |\n", p.cell, fixed(p.ppl_a), fixed(p.ppl_b), p.change_pct,
                         std::isfinite(p.z) ? fmt::format("{:+.2f}", p.z) : "–",
                         p.comparable ? "yes" : "no (different dataset or settings)");
  }
  return out;
}

}  // namespace gptbench
