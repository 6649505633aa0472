// The report of a run folder: verdict and INVALID banner for each planted fault, exit status, charts,
// and the `gptbench report` command when the program is built.
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <functional>

#include <gtest/gtest.h>

#include "checks/gates.h"
#include "common/error.h"
#include "common/paths.h"
#include "report/report.h"
#include "synthetic_run.h"

using namespace gptbench;
using gptbench::synth::SyntheticRun;
using gptbench::synth::TempDir;

namespace {

struct Written {
  int code;
  std::string report;
  nlohmann::json gates;
};

Written report_of(const SyntheticRun& synthetic, const TempDir& tmp) {
  synthetic.write(tmp.path());
  Written w;
  w.code = write_report(tmp.path());
  w.report = read_text_file(tmp.path() + "/report/Technical_Report.md");
  w.gates = nlohmann::json::parse(read_text_file(tmp.path() + "/processed/gates.json"));
  return w;
}

bool gnuplot_available() { return std::system("gnuplot --version > /dev/null 2>&1") == 0; }

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// Sets an environment variable for one scope.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    const char* old = std::getenv(name);
    had_ = old != nullptr;
    if (had_) old_ = old;
    setenv(name, value, 1);
  }
  ~ScopedEnv() {
    if (had_) setenv(name_, old_.c_str(), 1);
    else unsetenv(name_);
  }

 private:
  const char* name_;
  bool had_ = false;
  std::string old_;
};

}  // namespace

TEST(Report, GoodRunIsValidAndSaysWhatWasMeasured) {
  TempDir tmp;
  Written w = report_of(SyntheticRun::good(), tmp);
  EXPECT_EQ(w.code, 0);
  EXPECT_EQ(w.gates["verdict"], "VALID");
  // The verdict is the first line.
  EXPECT_EQ(w.report.rfind("**Verdict: VALID**", 0), 0u) << w.report.substr(0, 200);
  EXPECT_FALSE(contains(w.report, "INVALID"));
  for (const char* part : {"gpt2-tiny-wt2", "7,357,312", "AMD EPYC test", "| tool_version | 0.1.0 |",
                           "### prefill b1 s128", "### prefill b8 s128", "### decode b1 p128 n32", "581.107",
                           "+1.200 %", "| 5 | physical_plausibility | PASS |", "## 5. Conclusions",
                           "configs/smoke.yaml"})
    EXPECT_TRUE(contains(w.report, part)) << "missing: " << part;
  // Fastest backend per scenario: native int8 at 4.5 ms in prefill b1 s128.
  EXPECT_TRUE(contains(w.report, "- **prefill b1 s128**: `native/cpu/int8` at 4.500 ms")) << w.report;
  // Accuracy cost of INT8.
  EXPECT_TRUE(contains(w.report, "`native/cpu` int8: perplexity 588.08")) << w.report;
  // GitHub tables, never raw HTML.
  EXPECT_FALSE(contains(w.report, "<div")) ;
  EXPECT_FALSE(contains(w.report, "<table"));
  EXPECT_FALSE(contains(w.report, "e+0")) << "scientific notation in a table";
}

// Each fault the original study had, planted in the good run: the gate fails, the banner lists it, the exit
// status is non-zero.
struct Fault {
  const char* name;
  const char* gate;
  std::function<void(SyntheticRun&)> plant;
};

void PrintTo(const Fault& fault, std::ostream* os) { *os << fault.name; }

class PlantedFault : public ::testing::TestWithParam<Fault> {};

TEST_P(PlantedFault, FailsItsGateAndPutsTheBannerOnTheReport) {
  const Fault& fault = GetParam();
  SyntheticRun run = SyntheticRun::good();
  fault.plant(run);
  TempDir tmp;
  Written w = report_of(run, tmp);
  EXPECT_EQ(w.code, kInvalidRunExitCode);
  EXPECT_EQ(w.gates["verdict"], "INVALID");
  bool gate_failed = false;
  for (const auto& g : w.gates["gates"])
    if (g["name"] == fault.gate) gate_failed = g["status"] == "fail";
  EXPECT_TRUE(gate_failed) << fault.gate;
  EXPECT_EQ(w.report.rfind("**Verdict: INVALID**", 0), 0u) << w.report.substr(0, 300);
  EXPECT_TRUE(contains(w.report, "> **INVALID RUN")) << w.report.substr(0, 600);
  EXPECT_TRUE(contains(w.report, fmt::format("**. {}**: ", fault.gate)) || contains(w.report, fmt::format(". {}**:", fault.gate)))
      << "banner does not list " << fault.gate << "\n" << w.report.substr(0, 800);
  EXPECT_TRUE(contains(w.report, "The run is INVALID"));
}

INSTANTIATE_TEST_SUITE_P(
    Report, PlantedFault,
    ::testing::Values(
        Fault{"wrong_model_size", "model_identity",
              [](SyntheticRun& r) {
                r.manifest["provenance"]["model"]["parameters"] = 102714;
                r.manifest["provenance"]["model"]["config_parameters"] = 102714;
              }},
        Fault{"untrained_weights", "perplexity_plausibility",
              [](SyntheticRun& r) {
                r.manifest["provenance"]["model"]["untrained"] = true;
                for (auto& x : r.perplexity["results"]) x["ppl"] = 51157.0;
              }},
        Fault{"shrunken_artifact", "artifact_sizes",
              [](SyntheticRun& r) { r.artifacts["artifacts"][0]["bytes"] = 117717; }},
        Fault{"int8_identical_to_fp32", "cross_backend_agreement",
              [](SyntheticRun& r) {
                auto& x = r.ppl_result("native", "int8");
                x["ppl"] = synth::tiny_reference_ppl();
                x["identical_to_reference"] = true;
              }},
        Fault{"latency_under_floor", "physical_plausibility",
              [](SyntheticRun& r) { r.cell("native", "fp32", 8).latency_ms = 0.5; }},
        Fault{"calibration_is_test_split", "data_hygiene",
              [](SyntheticRun& r) {
                r.manifest["calibration"] = {{"dataset", r.perplexity["dataset"]}, {"dataset_sha256", r.perplexity["dataset_sha256"]}};
              }},
        Fault{"cached_input_speedup", "caching_audit",
              [](SyntheticRun& r) {
                r.cell("native", "fp32", 1).repeated_input_factor = 0.5;
                r.cell("native", "fp32", 1).timed_input_factor = 0.5;  // a cache serves the timed calls too
              }},
        Fault{"timed_outputs_differ", "timed_accuracy",
              [](SyntheticRun& r) { r.cell("native", "fp32", 1).vary_top1 = true; }}),
    [](const ::testing::TestParamInfo<Fault>& info) { return std::string(info.param.name); });

TEST(Report, SeveralFaultsAreAllListedInTheBanner) {
  SyntheticRun run = SyntheticRun::good();
  run.manifest["provenance"]["model"]["parameters"] = 102714;
  run.artifacts["artifacts"][0]["bytes"] = 117717;
  TempDir tmp;
  Written w = report_of(run, tmp);
  EXPECT_EQ(w.code, kInvalidRunExitCode);
  std::string first_line = w.report.substr(0, w.report.find('\n'));
  EXPECT_TRUE(contains(first_line, "model_identity")) << first_line;
  EXPECT_TRUE(contains(first_line, "artifact_sizes")) << first_line;
  EXPECT_TRUE(contains(first_line, "2 of 10 gates failed")) << first_line;
}

TEST(Report, ChartsAreSvgFilesLinkedRelatively) {
  if (!gnuplot_available()) GTEST_SKIP() << "gnuplot is not installed: chart drawing not tested";
  TempDir tmp;
  Written w = report_of(SyntheticRun::good(), tmp);
  for (const char* name : {"latency_by_scenario", "throughput_prefill", "perplexity_delta"}) {
    std::string svg = tmp.path() + "/report/" + name + ".svg";
    ASSERT_TRUE(file_exists(svg)) << svg;
    std::string text = read_text_file(svg);
    EXPECT_TRUE(contains(text, "<svg")) << name;
    EXPECT_TRUE(contains(text, "</svg>")) << name;
    EXPECT_GT(text.size(), 2000u) << name;
    EXPECT_TRUE(contains(w.report, fmt::format("]({}.svg)", name))) << name;
    EXPECT_TRUE(file_exists(tmp.path() + "/report/charts/" + name + ".gp")) << name;
  }
  // The series names appear in the chart legends.
  EXPECT_TRUE(contains(read_text_file(tmp.path() + "/report/latency_by_scenario.svg"), "native cpu int8"));
  EXPECT_FALSE(contains(w.report, "gnuplot"));
}

TEST(Report, MissingGnuplotIsSaidInTheReportAndTheReportIsStillWritten) {
  ScopedEnv env("GPTBENCH_GNUPLOT", "/nonexistent/gnuplot");
  TempDir tmp;
  Written w = report_of(SyntheticRun::good(), tmp);
  EXPECT_EQ(w.code, 0);
  EXPECT_TRUE(contains(w.report, "was not found")) << w.report;
  EXPECT_FALSE(file_exists(tmp.path() + "/report/latency_by_scenario.svg"));
  EXPECT_TRUE(file_exists(tmp.path() + "/report/charts/latency_by_scenario.dat"));
}

TEST(Report, FailedCellAndAgreementAreShown) {
  SyntheticRun run = SyntheticRun::good();
  run.cell("onnxruntime", "fp32", 1).failed = true;
  run.agreement = {{"schema", "gptbench.agreement/1"},
                   {"cells", {{{"cell", "native/cpu/int8"}, {"kl_mean", 0.0123}, {"top1_agreement", 0.981}}}}};
  TempDir tmp;
  Written w = report_of(run, tmp);
  EXPECT_EQ(w.code, 0);
  EXPECT_TRUE(contains(w.report, "| failed: backend unavailable |")) << w.report;
  EXPECT_TRUE(contains(w.report, "### Agreement with the FP32 reference"));
  EXPECT_TRUE(contains(w.report, "| native/cpu/int8 | 0.01230 | 0.9810 |")) << w.report;
}

// Every backend failed (e.g. a corrupt calibration cache): no gate has data to fail on, but the run is not VALID.
TEST(Report, RunWithNothingMeasuredIsInvalid) {
  SyntheticRun run = SyntheticRun::good();
  for (synth::SynthCell& c : run.cells) c.failed = true;
  run.perplexity = nullptr;
  TempDir tmp;
  Written w = report_of(run, tmp);
  EXPECT_NE(w.code, 0);
  EXPECT_TRUE(contains(w.report, "**Verdict: INVALID** — nothing was measured")) << w.report.substr(0, 400);
  EXPECT_FALSE(contains(w.report, "**Verdict: VALID**"));
  EXPECT_EQ(nlohmann::json::parse(read_text_file(tmp.path() + "/processed/gates.json"))["verdict"], "INVALID");
}

TEST(Report, NotARunFolderIsAnError) {
  TempDir tmp;
  EXPECT_THROW(write_report(tmp.path()), Error);
}

TEST(ReportCommand, ExitCodesOfTheProgram) {
  const char* bin = std::getenv("GPTBENCH_BIN");
  if (bin == nullptr || !file_exists(bin)) GTEST_SKIP() << "gptbench program not built";
  TempDir good_dir, bad_dir;
  SyntheticRun::good().write(good_dir.path());
  SyntheticRun bad = SyntheticRun::good();
  bad.manifest["provenance"]["model"]["parameters"] = 102714;
  bad.write(bad_dir.path());
  auto run = [&](const std::string& args) {
    int status = std::system((std::string(bin) + " " + args + " > /dev/null 2>&1").c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  };
  EXPECT_EQ(run("report " + good_dir.path()), 0);
  EXPECT_EQ(run("report " + bad_dir.path()), 3);
  EXPECT_EQ(run("report " + good_dir.sub("missing")), 1);
  EXPECT_EQ(run("compare " + good_dir.path() + " " + bad_dir.path()), 0);
}

TEST(Report, NullFieldsTheRunnerMayWriteAreTolerated) {
  // Without a reference evaluation the runner writes nulls for the reference, deltas and identity flags.
  SyntheticRun run = SyntheticRun::good();
  run.perplexity["reference"] = nullptr;
  for (auto& r : run.perplexity["results"]) {
    r["delta_pct"] = nullptr;
    r["identical_to_reference"] = nullptr;
    r["timed_check"] = nullptr;
  }
  run.perplexity["results"].push_back({{"backend", "onnxruntime"}, {"device", "cpu"}, {"precision", "int8"}, {"status", "missing"}});
  TempDir tmp;
  Written w = report_of(run, tmp);
  EXPECT_EQ(w.code, 0) << w.report.substr(0, 400);
  EXPECT_TRUE(contains(w.report, "| onnxruntime | cpu | int8 | missing: – |")) << w.report;
}
