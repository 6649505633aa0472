// gptbench run: the benchmark study of a config (docs/configs.md) into a run folder (docs/run-format.md), then
// the report of that folder. With no --config it runs configs/smoke.yaml on the bundled gpt2-tiny-wt2.
#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>

#include "bench/run_config.h"
#include "bench/runner.h"
#include "cli/commands.h"
#include "common/error.h"
#include "common/paths.h"

// GPTBENCH_RUN_WITHOUT_REPORT: build `run` alone (e.g. while the report module does not build).
#if __has_include("report/report.h") && !defined(GPTBENCH_RUN_WITHOUT_REPORT)
#include "report/report.h"
#define GPTBENCH_HAVE_REPORT 1
#endif

#ifndef GPTBENCH_SOURCE_DIR
#define GPTBENCH_SOURCE_DIR "."
#endif

namespace gptbench::cli {

namespace {

// The smoke config of this source tree, else of the current directory.
std::string default_config_path() {
  const std::string candidates[] = {std::string(GPTBENCH_SOURCE_DIR) + "/configs/smoke.yaml", "configs/smoke.yaml"};
  for (const auto& c : candidates)
    if (file_exists(c)) return c;
  throw Error(std::string("configs/smoke.yaml: not found (looked in ") + GPTBENCH_SOURCE_DIR +
              "/configs and ./configs); pass --config FILE");
}

}  // namespace

void add_run_command(CLI::App& app) {
  struct Options {
    std::string config;
    std::string out;
    std::vector<std::string> sets;
    bool resume = false;
    bool json = false;
    bool no_report = false;
  };
  auto opts = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("run", "Run a benchmark study (default: configs/smoke.yaml) and write its report");
  cmd->add_option("--config,-c", opts->config, "Study config (YAML, see docs/configs.md)");
  cmd->add_option("--out,-o", opts->out, "Run folder (default: the config's output, else runs/<run_id>)");
  cmd->add_option("--set", opts->sets, "Override a config key: key.sub=value (value parsed as YAML; repeatable)");
  cmd->add_flag("--resume", opts->resume, "Continue the run in --out, skipping cells already complete there");
  cmd->add_flag("--json", opts->json, "Print a machine-readable summary on stdout");
  cmd->add_flag("--no-report", opts->no_report, "Do not write the report at the end");
  cmd->callback([opts] {
    const std::string config_path = opts->config.empty() ? default_config_path() : opts->config;
    const bench::RunConfig config = bench::load_run_config(config_path, opts->sets);
    bench::RunOptions options;
    options.out_dir = opts->out;
    options.resume = opts->resume;
    options.progress = !opts->json && ::isatty(STDERR_FILENO);
    const bench::RunOutcome outcome = bench::run_experiment(config, options);

    int report_code = -1;  // -1: no report written
#ifdef GPTBENCH_HAVE_REPORT
    if (!opts->no_report) report_code = write_report(outcome.run_dir);
#endif
    if (opts->json) {
      nlohmann::json j = outcome.to_json();
      j["config"] = config_path;
      j["report_exit_code"] = report_code < 0 ? nlohmann::json(nullptr) : nlohmann::json(report_code);
      j["report"] =
          report_code < 0 ? nlohmann::json(nullptr) : nlohmann::json(outcome.run_dir + "/report/Technical_Report.md");
      std::printf("%s\n", j.dump(2).c_str());
    } else {
      std::printf("%s", fmt::format("run {}: {} cells: {} ok, {} failed, {} skipped{} in {:.1f} s\n", outcome.run_id,
                                    outcome.cells_total, outcome.cells_ok, outcome.cells_failed, outcome.cells_skipped,
                                    outcome.cells_resumed ? fmt::format(" ({} resumed)", outcome.cells_resumed) : "",
                                    outcome.seconds)
                            .c_str());
      if (outcome.perplexity_failed)
        std::printf("%s", fmt::format("{} perplexity evaluation(s) failed\n", outcome.perplexity_failed).c_str());
      std::printf("run folder: %s\n", outcome.run_dir.c_str());
      if (report_code >= 0)
        std::printf("report: %s/report/Technical_Report.md (%s)\n", outcome.run_dir.c_str(),
                    report_code == 0 ? "VALID" : "INVALID");
    }
    // The report's verdict comes first (3: INVALID); then failed cells (2).
    if (report_code > 0) throw ExitCode{report_code};
    if (outcome.exit_code() != 0) throw ExitCode{outcome.exit_code()};
  });
}

}  // namespace gptbench::cli
