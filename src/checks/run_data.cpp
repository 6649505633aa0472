#include "checks/run_data.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <map>
#include <sstream>

#include <fmt/format.h>

#include "common/error.h"
#include "common/paths.h"

namespace gptbench {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

nlohmann::json parse_json_file(const std::string& path) {
  std::string text = read_text_file(path);
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    fail_file(path, fmt::format("not valid JSON ({})", e.what()));
  }
}

nlohmann::json parse_optional_json(const std::string& path) {
  if (!file_exists(path)) return nullptr;
  return parse_json_file(path);
}

double parse_double_field(const std::string& s, const std::string& path, int line, const std::string& column) {
  if (s.empty()) return kNaN;
  try {
    std::size_t used = 0;
    double v = std::stod(s, &used);
    if (used != s.size()) throw std::invalid_argument(s);
    return v;
  } catch (const std::exception&) {
    fail_file(path, fmt::format("line {}: column {}: '{}' is not a number", line, column, s));
  }
}

int parse_int_field(const std::string& s, const std::string& path, int line, const std::string& column) {
  double v = parse_double_field(s, path, line, column);
  return std::isnan(v) ? 0 : static_cast<int>(v);
}

std::vector<LatencyRow> read_latency_csv(const std::string& path) {
  std::vector<LatencyRow> rows;
  if (!file_exists(path)) return rows;
  std::istringstream in(read_text_file(path));
  std::string line;
  if (!std::getline(in, line)) return rows;
  std::vector<std::string> header = split_csv_line(line);
  std::map<std::string, std::size_t> col;
  for (std::size_t i = 0; i < header.size(); ++i) col[header[i]] = i;
  for (const char* required : {"cell_id", "backend", "device", "precision", "scenario", "status", "median_ms"}) {
    if (!col.count(required)) fail_file(path, fmt::format("header lacks column '{}'", required));
  }
  int line_no = 1;
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    std::vector<std::string> f = split_csv_line(line);
    auto get = [&](const char* name) -> std::string {
      auto it = col.find(name);
      return (it == col.end() || it->second >= f.size()) ? std::string() : f[it->second];
    };
    auto num = [&](const char* name) { return parse_double_field(get(name), path, line_no, name); };
    auto integer = [&](const char* name) { return parse_int_field(get(name), path, line_no, name); };
    LatencyRow r;
    r.cell_id = get("cell_id");
    r.backend = get("backend");
    r.device = get("device");
    r.precision = get("precision");
    r.scenario = get("scenario");
    r.batch = integer("batch");
    r.seq = integer("seq");
    r.prompt = integer("prompt");
    r.new_tokens = integer("new_tokens");
    r.status = get("status");
    r.n = integer("n");
    r.mean_ms = num("mean_ms");
    r.median_ms = num("median_ms");
    r.p5_ms = num("p5_ms");
    r.p95_ms = num("p95_ms");
    r.stddev_ms = num("stddev_ms");
    r.cv = num("cv");
    r.ci95_low_ms = num("ci95_low_ms");
    r.ci95_high_ms = num("ci95_high_ms");
    r.tokens_per_s = num("tokens_per_s");
    r.ttft_ms = num("ttft_ms");
    r.error = get("error");
    rows.push_back(std::move(r));
  }
  return rows;
}

}  // namespace

std::string LatencyRow::scenario_label() const {
  if (scenario == "decode") return fmt::format("decode b{} p{} n{}", batch, prompt, new_tokens);
  if (scenario == "prefill") return fmt::format("prefill b{} s{}", batch, seq);
  return scenario;
}

std::string RunData::run_id() const {
  if (manifest.contains("run_id") && manifest["run_id"].is_string()) return manifest["run_id"].get<std::string>();
  return std::filesystem::path(dir).filename().string();
}

ModelInfo RunData::model() const {
  ModelInfo m;
  const nlohmann::json* prov = nullptr;
  if (manifest.contains("provenance") && manifest["provenance"].is_object()) prov = &manifest["provenance"];
  if (prov == nullptr || !prov->contains("model") || !(*prov)["model"].is_object()) return m;
  const nlohmann::json& j = (*prov)["model"];
  auto str = [&](const char* k) { return j.contains(k) && j[k].is_string() ? j[k].get<std::string>() : std::string(); };
  auto i64 = [&](const char* k) -> std::int64_t { return j.contains(k) && j[k].is_number() ? j[k].get<std::int64_t>() : 0; };
  m.name = str("name");
  m.expected_name = str("expected_name");
  m.storage_dtype = str("storage_dtype");
  m.source = str("source");
  m.parameters = i64("parameters");
  m.config_parameters = i64("config_parameters");
  m.expected_parameters = i64("expected_parameters");
  m.untrained = j.contains("untrained") && j["untrained"].is_boolean() && j["untrained"].get<bool>();
  m.n_layer = static_cast<int>(i64("n_layer"));
  m.n_head = static_cast<int>(i64("n_head"));
  m.n_embd = static_cast<int>(i64("n_embd"));
  m.n_inner = static_cast<int>(i64("n_inner"));
  m.n_positions = static_cast<int>(i64("n_positions"));
  m.vocab_size = static_cast<int>(i64("vocab_size"));
  return m;
}

const nlohmann::json& RunData::perplexity_results() const {
  static const nlohmann::json empty = nlohmann::json::array();
  if (perplexity.is_object() && perplexity.contains("results") && perplexity["results"].is_array())
    return perplexity["results"];
  return empty;
}

std::vector<std::string> split_csv_line(const std::string& line) {
  std::vector<std::string> out;
  std::string cur;
  bool quoted = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        cur += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        cur += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      out.push_back(std::move(cur));
      cur.clear();
    } else {
      cur += c;
    }
  }
  out.push_back(std::move(cur));
  return out;
}

double json_number(const nlohmann::json& j, const char* key) {
  if (!j.is_object()) return kNaN;
  auto it = j.find(key);
  if (it == j.end() || !it->is_number()) return kNaN;
  return it->get<double>();
}

RunData load_run(const std::string& dir) {
  if (!dir_exists(dir)) fail_file(dir, "run folder not found");
  RunData run;
  run.dir = dir;
  std::string manifest_path = dir + "/manifest.json";
  if (!file_exists(manifest_path)) fail_file(manifest_path, "missing: not a gptbench run folder");
  run.manifest = parse_json_file(manifest_path);
  if (!run.manifest.is_object()) fail_file(manifest_path, "expected a JSON object");

  const std::vector<std::string> bench_files = raw_files(dir, "bench_");
  // Only this run's records count: a raw/ folder can also hold another run's file (copied in, or left by a run
  // that never wrote its manifest), and its records must not reach this run's gates.
  const std::string this_run = run.run_id();
  for (const std::string& path : bench_files) {
    std::istringstream in(read_text_file(path));
    std::string line;
    int line_no = 0, foreign = 0;
    std::string foreign_id;
    while (std::getline(in, line)) {
      ++line_no;
      if (line.empty()) continue;
      try {
        nlohmann::json record = nlohmann::json::parse(line);
        if (auto id = record.find("run_id"); !this_run.empty() && record.is_object() && id != record.end() &&
                                              id->is_string() && id->get<std::string>() != this_run) {
          ++foreign;
          foreign_id = id->get<std::string>();
          continue;
        }
        run.bench_records.push_back(std::move(record));
      } catch (const nlohmann::json::parse_error&) {
        // Only a torn last line can come from a crash; anything else is a corrupt file.
        if (in.peek() == EOF) {
          run.notes.push_back(fmt::format("{}: line {} is incomplete and was ignored", path, line_no));
          continue;
        }
        fail_file(path, fmt::format("line {}: not valid JSON", line_no));
      }
    }
    if (foreign > 0)
      run.notes.push_back(fmt::format("{}: {} records of another run ({}) were ignored", path, foreign, foreign_id));
  }
  run.latency = read_latency_csv(dir + "/processed/latency_summary.csv");
  run.perplexity = parse_optional_json(dir + "/processed/perplexity_results.json");
  run.agreement = parse_optional_json(dir + "/processed/agreement.json");
  run.artifacts = parse_optional_json(dir + "/processed/artifacts.json");
  if (run.latency.empty() && !file_exists(dir + "/processed/latency_summary.csv"))
    run.notes.push_back("processed/latency_summary.csv is missing: no latency figures");
  if (run.perplexity.is_null()) run.notes.push_back("processed/perplexity_results.json is missing: no accuracy figures");
  return run;
}

}  // namespace gptbench
