#pragma once
// Reading and writing the files of a run folder (docs/run-format.md): JSONL records appended one complete line at
// a time (fsync'd, so a crash loses at most the line being written, and a torn last line is skipped on reading),
// and the processed summaries rebuilt from the raw records.
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bench/run_config.h"

namespace gptbench::bench {

class JsonlAppender {
 public:
  JsonlAppender() = default;
  explicit JsonlAppender(const std::string& path);
  ~JsonlAppender();
  JsonlAppender(const JsonlAppender&) = delete;
  JsonlAppender& operator=(const JsonlAppender&) = delete;
  void open(const std::string& path);
  void append(const nlohmann::json& record);  // one line, written with one write() and fsync'd
  const std::string& path() const { return path_; }

 private:
  int fd_ = -1;
  std::string path_;
};

// Every record that parses; lines that do not (a torn last line) are counted in `skipped_lines`.
std::vector<nlohmann::json> read_jsonl(const std::string& path, int* skipped_lines = nullptr);
void write_jsonl_atomic(const std::string& path, const std::vector<nlohmann::json>& records);

// processed/latency_summary.csv text: one row per cell, in cell order, from that cell's raw records.
std::string latency_summary_csv(const std::vector<Cell>& cells, const std::vector<nlohmann::json>& records);
extern const char* const kLatencySummaryHeader;

// One CSV field: numbers with up to 9 significant digits, NaN as empty, text quoted when needed (RFC 4180).
std::string csv_number(double value);
std::string csv_text(const std::string& text);

}  // namespace gptbench::bench
