#pragma once
// The technical report of a run: reads only the run folder (docs/run-format.md), evaluates the sanity gates
// (checks/), and writes processed/gates.json, report/Technical_Report.md and the report's SVG charts.
#include <string>
#include <vector>

#include "checks/gates.h"
#include "checks/run_data.h"
#include "report/charts.h"

namespace gptbench {

// Exit status of `gptbench report` / `run` for a run whose gates failed.
inline constexpr int kInvalidRunExitCode = 3;

// Writes the report of the run in run_dir. Returns 0 when the run is VALID, kInvalidRunExitCode when a gate
// failed. Throws Error when the folder is not a readable run (missing manifest, a file that does not parse).
int write_report(const std::string& run_dir);

// The Markdown text of the report (what write_report writes), from data already loaded and evaluated.
std::string render_report(const RunData& run, const std::vector<GateResult>& gates, const ChartSet& charts);

}  // namespace gptbench
