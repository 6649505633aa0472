// gptbench report / compare: judge a finished run folder (gates, report, charts) and compare two runs.
// Both read only the run folders (docs/run-format.md), never a live runner.
#include <cstdio>
#include <memory>
#include <string>

#include <fmt/format.h>

#include "cli/commands.h"
#include "report/compare.h"
#include "report/report.h"

namespace gptbench::cli {

void add_report_command(CLI::App& app) {
  auto run_dir = std::make_shared<std::string>();
  auto* cmd = app.add_subcommand("report",
                                 "Evaluate the sanity gates of a run folder and write report/Technical_Report.md with "
                                 "SVG charts; exits 3 when the run is INVALID");
  cmd->add_option("RUN_DIR", *run_dir, "Run folder written by `gptbench run`")->required();
  cmd->callback([run_dir] {
    const int code = write_report(*run_dir);
    std::printf("%s", fmt::format("{}: {}/report/Technical_Report.md (gates: {}/processed/gates.json)\n",
                                  code == 0 ? "VALID" : "INVALID", *run_dir, *run_dir).c_str());
    if (code != 0) throw ExitCode{code};
  });
}

void add_compare_command(CLI::App& app) {
  struct Options {
    std::string run_a, run_b;
  };
  auto opts = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("compare",
                                 "Per-cell latency and perplexity changes between two run folders, with their "
                                 "significance (Welch's t-test, 95 % interval of the ratio)");
  cmd->add_option("RUN_A", opts->run_a, "Baseline run folder")->required();
  cmd->add_option("RUN_B", opts->run_b, "Run folder to compare with the baseline")->required();
  cmd->callback([opts] { std::printf("%s", format_comparison(compare_runs(opts->run_a, opts->run_b)).c_str()); });
}

}  // namespace gptbench::cli
