#include "report/charts.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "checks/gates.h"
#include "common/paths.h"

namespace gptbench {
namespace {

// Light background and a fixed palette: the SVGs must read on both light and dark code-hosting themes.
const char* kPreamble =
    "set terminal svg size 960,540 dynamic noenhanced background rgb 'white' font 'Helvetica,13'\n"
    "set datafile separator '\\t'\n"
    "set datafile missing '?'\n"
    "set border lc rgb '#333333'\n"
    "set grid ytics lc rgb '#dddddd'\n"
    "set key outside right top\n";

std::string num(double v) { return std::isfinite(v) ? fmt::format("{:.6g}", v) : std::string("?"); }

// Quotes a title for a gnuplot string literal.
std::string gp_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += (c == '\'') ? std::string("''") : std::string(1, c);
  return out + "'";
}

std::string series_of(const LatencyRow& r) { return fmt::format("{} {} {}", r.backend, r.device, r.precision); }

// Runs `program script` in `dir`, gnuplot's messages into log_path. Returns the exit status (127: not found).
int run_gnuplot(const std::string& program, const std::string& dir, const std::string& script, const std::string& log_path) {
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    if (chdir(dir.c_str()) != 0) _exit(126);
    int fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, STDOUT_FILENO);
      dup2(fd, STDERR_FILENO);
      close(fd);
    }
    execlp(program.c_str(), program.c_str(), script.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  int status = 0;
  if (waitpid(pid, &status, 0) < 0) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

struct Plot {
  std::string name;   // file stem
  std::string title;
  std::string data;   // the .dat contents
  std::string script; // after the preamble and "set output"
};

// Latency per backend per scenario: clustered bars, one cluster per scenario, error bars = 95 % CI of the mean.
bool latency_plot(const RunData& run, Plot& p) {
  std::vector<std::string> scenarios, series;
  std::map<std::pair<std::string, std::string>, const LatencyRow*> cell;
  for (const LatencyRow& r : run.latency) {
    if (!r.ok() || !(r.median_ms > 0)) continue;
    std::string sc = r.scenario_label(), se = series_of(r);
    if (std::find(scenarios.begin(), scenarios.end(), sc) == scenarios.end()) scenarios.push_back(sc);
    if (std::find(series.begin(), series.end(), se) == series.end()) series.push_back(se);
    cell[{sc, se}] = &r;
  }
  if (cell.empty()) return false;
  p.name = "latency_by_scenario";
  p.title = "Median latency per backend and scenario";
  for (const std::string& sc : scenarios) {
    p.data += sc;
    for (const std::string& se : series) {
      auto it = cell.find({sc, se});
      if (it == cell.end()) {
        p.data += "\t?\t?\t?";
        continue;
      }
      const LatencyRow& r = *it->second;
      // Log axis: an interval reaching zero or below is drawn down to a tenth of the median.
      double lo = std::isfinite(r.ci95_low_ms) && r.ci95_low_ms > 0 ? r.ci95_low_ms : r.median_ms * 0.1;
      double hi = std::isfinite(r.ci95_high_ms) ? r.ci95_high_ms : r.median_ms;
      if (!std::isfinite(r.ci95_low_ms)) lo = r.median_ms;
      p.data += fmt::format("\t{}\t{}\t{}", num(r.median_ms), num(lo), num(hi));
    }
    p.data += "\n";
  }
  p.script =
      "set title 'Median latency per scenario (error bars: 95 % CI of the mean; decode: per token)'\n"
      "set style data histogram\nset style histogram errorbars gap 1 lw 1\n"
      "set style fill solid 0.85 border rgb '#333333'\nset boxwidth 0.9\n"
      "set logscale y\nset ylabel 'milliseconds (log scale)'\nset xtics rotate by -25 nomirror\n"
      "set yrange [*:*]\n";
  std::string plot = "plot ";
  for (std::size_t i = 0; i < series.size(); ++i) {
    std::size_t c = 2 + 3 * i;
    plot += fmt::format("{}'{}.dat' using {}:{}:{}{} title {}", i ? ", " : "", p.name, c, c + 1, c + 2,
                        i == 0 ? ":xtic(1)" : "", gp_quote(series[i]));
  }
  p.script += plot + "\n";
  return true;
}

// Throughput vs tokens per call for the prefill cells, one line per backend/precision.
bool throughput_plot(const RunData& run, Plot& p) {
  std::map<std::string, std::map<double, double>> series;  // series -> tokens per call -> tokens/s
  std::vector<std::string> order;
  for (const LatencyRow& r : run.latency) {
    if (!r.ok() || r.scenario != "prefill" || !(r.tokens_per_s > 0)) continue;
    std::string se = series_of(r);
    if (!series.count(se)) order.push_back(se);
    series[se][static_cast<double>(r.batch) * r.seq] = r.tokens_per_s;
  }
  if (series.empty()) return false;
  p.name = "throughput_prefill";
  p.title = "Prefill throughput vs tokens per call";
  std::string plot = "plot ";
  for (std::size_t i = 0; i < order.size(); ++i) {
    if (i) p.data += "\n\n";  // a new data block (gnuplot index)
    for (const auto& [tokens, tps] : series[order[i]]) p.data += fmt::format("{}\t{}\n", num(tokens), num(tps));
    plot += fmt::format("{}'{}.dat' index {} using 1:2 with linespoints lw 2 pt 7 title {}", i ? ", " : "", p.name, i,
                        gp_quote(order[i]));
  }
  p.script =
      "set title 'Prefill throughput vs batch x sequence length'\n"
      "set logscale x 2\nset logscale y\nset xlabel 'tokens per call (batch x sequence length)'\n"
      "set ylabel 'tokens / s (log scale)'\n" +
      plot + "\n";
  return true;
}

// Perplexity change vs the FP32 reference per backend x precision, with gate 4's tolerance drawn around zero.
bool perplexity_plot(const RunData& run, Plot& p) {
  std::string ref = run.perplexity.is_object() && run.perplexity.contains("reference") && run.perplexity["reference"].is_string()
                        ? run.perplexity["reference"].get<std::string>()
                        : std::string();
  const GateThresholds t;
  for (const auto& r : run.perplexity_results()) {
    if (!r.contains("status") || r["status"] != "ok") continue;
    std::string precision = r.value("precision", "");
    std::string key = fmt::format("{}/{}/{}", r.value("backend", ""), r.value("device", ""), precision);
    if (key == ref) continue;
    double delta = json_number(r, "delta_pct");
    if (!std::isfinite(delta)) continue;
    double tol = (precision == "fp32" || precision == "tf32") ? t.agreement_pct_fp32
                 : (precision == "fp16" || precision == "bf16") ? t.agreement_pct_half
                                                                 : t.agreement_pct_int8;
    p.data += fmt::format("{} {} {}\t{}\t{}\n", r.value("backend", ""), r.value("device", ""), precision, num(delta), num(tol));
  }
  if (p.data.empty()) return false;
  p.name = "perplexity_delta";
  p.title = "Perplexity change vs the FP32 reference";
  p.script = fmt::format(
      "set title {}\nset style fill solid 0.85 border rgb '#333333'\nset boxwidth 0.5\n"
      "set ylabel 'perplexity change vs reference (%)'\nset xtics rotate by -25 nomirror\n"
      "set xzeroaxis lt -1\nset offsets 0.5, 0.5, graph 0.15, graph 0.05\n"
      "plot '{}.dat' using 0:2:xtic(1) with boxes lc rgb '#4472c4' title 'change', "
      "'' using ($0+0.32):(0):(-$3):3 with yerrorbars lw 2 pt -1 lc rgb '#c00000' title 'allowed (gate 4)', "
      "'' using 0:2:(sprintf('%+.3f %%', $2)) with labels offset 0,1 notitle\n",
      gp_quote("Perplexity change vs the FP32 reference (" + ref + ")"), p.name);
  return true;
}

}  // namespace

std::string gnuplot_program() {
  const char* env = std::getenv("GPTBENCH_GNUPLOT");
  return (env != nullptr && *env != '\0') ? env : "gnuplot";
}

ChartSet write_charts(const RunData& run, const std::string& report_dir, const std::string& gnuplot) {
  namespace fs = std::filesystem;
  ChartSet set;
  std::vector<Plot> plots;
  for (auto make : {latency_plot, throughput_plot, perplexity_plot}) {
    Plot p;
    if (make(run, p)) plots.push_back(std::move(p));
  }
  if (plots.empty()) return set;
  std::string data_dir = report_dir + "/charts";
  fs::create_directories(data_dir);
  std::string log_path = fs::absolute(data_dir + "/gnuplot.log").string();
  std::remove(log_path.c_str());
  std::vector<std::string> failed;
  for (const Plot& p : plots) {
    write_file_atomic(data_dir + "/" + p.name + ".dat", p.data);
    // Paths in the script are relative to charts/; the SVG goes one level up, beside the report.
    std::string script = std::string(kPreamble) + fmt::format("set output '../{}.svg'\n", p.name) + p.script;
    write_file_atomic(data_dir + "/" + p.name + ".gp", script);
    std::string svg = report_dir + "/" + p.name + ".svg";
    std::remove(svg.c_str());
    int rc = run_gnuplot(gnuplot, data_dir, p.name + ".gp", log_path);
    if (rc == 127) {
      set.problem = fmt::format("gnuplot ('{}') was not found, so the charts were not drawn; their data and scripts are in charts/", gnuplot);
      return set;
    }
    if (rc != 0 || !file_exists(svg) || fs::file_size(svg) == 0) {
      failed.push_back(fmt::format("{} (gnuplot exit {})", p.name, rc));
      continue;
    }
    set.charts.push_back({p.title, p.name + ".svg"});
  }
  if (!failed.empty())
    set.problem = fmt::format("gnuplot failed for: {}; see charts/gnuplot.log", fmt::join(failed, ", "));
  return set;
}

}  // namespace gptbench
