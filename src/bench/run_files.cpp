#include "bench/run_files.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>

#include "bench/statistics.h"
#include "common/error.h"
#include "common/paths.h"

namespace gptbench::bench {

const char* const kLatencySummaryHeader =
    "cell_id,backend,device,precision,scenario,batch,seq,prompt,new_tokens,status,n,mean_ms,median_ms,p5_ms,p95_ms,"
    "stddev_ms,cv,ci95_low_ms,ci95_high_ms,tokens_per_s,ttft_ms,error";

JsonlAppender::JsonlAppender(const std::string& path) { open(path); }

JsonlAppender::~JsonlAppender() {
  if (fd_ >= 0) ::close(fd_);
}

void JsonlAppender::open(const std::string& path) {
  if (fd_ >= 0) ::close(fd_);
  std::filesystem::path p(path);
  if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path());
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd_ < 0) fail_file(path, std::string("cannot open for appending: ") + std::strerror(errno));
  path_ = path;
}

void JsonlAppender::append(const nlohmann::json& record) {
  if (fd_ < 0) throw Error("JsonlAppender: append before open");
  // NaN/inf are not JSON: dump() writes them as null, which readers treat as "absent".
  std::string line = record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  const char* data = line.data();
  std::size_t left = line.size();
  while (left > 0) {
    ssize_t n = ::write(fd_, data, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail_file(path_, std::string("write failed: ") + std::strerror(errno));
    }
    data += n;
    left -= static_cast<std::size_t>(n);
  }
  ::fsync(fd_);
}

std::vector<nlohmann::json> read_jsonl(const std::string& path, int* skipped_lines) {
  std::vector<nlohmann::json> out;
  std::ifstream in(path);
  if (!in) fail_file(path, "cannot open");
  std::string line;
  int skipped = 0;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      ++skipped;
      continue;
    }
    out.push_back(std::move(j));
  }
  if (skipped_lines) *skipped_lines = skipped;
  return out;
}

void write_jsonl_atomic(const std::string& path, const std::vector<nlohmann::json>& records) {
  std::string text;
  for (const auto& r : records) text += r.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  write_file_atomic(path, text);
}

std::string csv_number(double value) {
  if (!std::isfinite(value)) return "";
  return fmt::format("{:.9g}", value);
}

std::string csv_text(const std::string& text) {
  if (text.find_first_of(",\"\n\r") == std::string::npos) return text;
  std::string quoted = "\"";
  for (char c : text) {
    if (c == '"')
      quoted += "\"\"";
    else if (c == '\n' || c == '\r')
      quoted += ' ';
    else
      quoted += c;
  }
  return quoted + "\"";
}

namespace {

double number_or_nan(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number()) return std::nan("");
  return it->get<double>();
}

}  // namespace

std::string latency_summary_csv(const std::vector<Cell>& cells, const std::vector<nlohmann::json>& records) {
  std::map<std::string, std::vector<const nlohmann::json*>> by_cell;
  for (const auto& r : records)
    if (r.contains("cell_id") && r["cell_id"].is_string()) by_cell[r["cell_id"].get<std::string>()].push_back(&r);

  std::string csv = std::string(kLatencySummaryHeader) + "\n";
  for (const auto& cell : cells) {
    const std::string id = cell.id();
    std::vector<double> latency, throughput, ttft;
    std::string status = "missing", error = "no record of this cell in raw/";
    std::map<int, const nlohmann::json*> ok_by_repetition;
    for (const auto* r : by_cell[id]) {
      const std::string s = r->value("status", "");
      auto rep = r->find("repetition");
      if (s == "ok" && rep != r->end() && rep->is_number_integer()) {
        ok_by_repetition[rep->get<int>()] = r;
      } else if (s == "failed" || s == "skipped") {
        status = s;
        error = r->value("error", "");
      }
    }
    if (status == "missing" && !ok_by_repetition.empty()) {
      status = "ok";
      error.clear();
      for (const auto& [rep, r] : ok_by_repetition) {
        latency.push_back(number_or_nan(*r, "latency_ms"));
        throughput.push_back(number_or_nan(*r, "tokens_per_s"));
        if (cell.kind == "decode") ttft.push_back(number_or_nan(*r, "ttft_ms"));
      }
    }
    std::vector<std::string> f;
    f.push_back(csv_text(id));
    f.push_back(cell.backend.name);
    f.push_back(cell.backend.device);
    f.push_back(cell.backend.precision);
    f.push_back(cell.kind);
    f.push_back(std::to_string(cell.batch));
    f.push_back(cell.kind == "prefill" ? std::to_string(cell.seq) : "");
    f.push_back(cell.kind == "decode" ? std::to_string(cell.prompt) : "");
    f.push_back(cell.kind == "decode" ? std::to_string(cell.new_tokens) : "");
    f.push_back(status);
    if (status == "ok") {
      SampleSummary s = summarize(latency);
      double tps = 0;
      for (double t : throughput) tps += t;
      tps /= static_cast<double>(throughput.size());
      f.push_back(std::to_string(s.n));
      for (double v : {s.mean, s.median, s.p5, s.p95, s.stddev, s.cv, s.ci95_low, s.ci95_high, tps})
        f.push_back(csv_number(v));
      f.push_back(cell.kind == "decode" ? csv_number(median(ttft)) : "");
      f.push_back("");
    } else {
      f.push_back("0");
      for (int i = 0; i < 10; ++i) f.push_back("");
      f.push_back(csv_text(error));
    }
    std::string line;
    for (std::size_t i = 0; i < f.size(); ++i) line += (i ? "," : "") + f[i];
    csv += line + "\n";
  }
  return csv;
}

}  // namespace gptbench::bench
