#pragma once
// Each gptbench subcommand lives in its own cli/cmd_<name>.cpp and adds itself to the app here.
// A command's callback does its work and returns normally (exit 0), throws gptbench::Error for bad input
// (main prints "gptbench: error: <message>" and exits 1), or throws ExitCode for another status
// (e.g. 3 when a run or report is INVALID).
#include <CLI/CLI.hpp>

namespace gptbench::cli {

struct ExitCode {
  int code;
};

void add_info_command(CLI::App& app);
void add_init_random_command(CLI::App& app);
void add_tokenize_command(CLI::App& app);
void add_perplexity_command(CLI::App& app);
void add_run_command(CLI::App& app);        // bench/ (runner issue)
void add_report_command(CLI::App& app);     // report/ (report issue)
void add_compare_command(CLI::App& app);    // report/ (report issue)
void add_calibrate_command(CLI::App& app);  // quant/ (INT8 issue)
void add_export_command(CLI::App& app);     // export/ (ONNX issue); says so when this build has no ONNX export

}  // namespace gptbench::cli
