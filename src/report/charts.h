#pragma once
// SVG charts for the report, drawn by gnuplot (Debian's gnuplot-nox) run as a child process on a script file.
// The data and scripts stay beside the charts (report/charts/) so a reader can redraw or restyle them.
#include <string>
#include <vector>

#include "checks/run_data.h"

namespace gptbench {

struct Chart {
  std::string title;
  std::string file;  // relative to the report folder, e.g. "latency_by_scenario.svg"
};

struct ChartSet {
  std::vector<Chart> charts;  // the ones that were drawn
  std::string problem;        // why some or all charts are missing (gnuplot absent or failing); empty when none
};

// The gnuplot program to run: $GPTBENCH_GNUPLOT when set, else "gnuplot" from PATH.
std::string gnuplot_program();

// Draws every chart the run's data supports into report_dir. Never throws for a plotting failure: it is
// recorded in ChartSet::problem and the report says so.
ChartSet write_charts(const RunData& run, const std::string& report_dir, const std::string& gnuplot = gnuplot_program());

}  // namespace gptbench
