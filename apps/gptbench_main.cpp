// gptbench: one program, one subcommand per stage. The work lives in the libraries under src/; this file only
// parses the command line and turns failures into one error line and an exit code.
#include <cstdio>
#include <exception>

#include "cli/commands.h"
#include "common/error.h"

int main(int argc, char** argv) {
  namespace cli = gptbench::cli;
  CLI::App app{"gptbench: how fast, and how accurate, is a GPT-2-family model on each backend and precision"};
  app.set_version_flag("--version", std::string("gptbench ") + GPTBENCH_VERSION);
  app.require_subcommand(1);
  cli::add_info_command(app);
  cli::add_init_random_command(app);
  cli::add_perplexity_command(app);
  cli::add_tokenize_command(app);
  cli::add_report_command(app);
  cli::add_compare_command(app);
  cli::add_export_command(app);
  cli::add_run_command(app);
  cli::add_calibrate_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const cli::ExitCode& e) {
    return e.code;
  } catch (const gptbench::Error& e) {
    std::fprintf(stderr, "gptbench: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gptbench: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
