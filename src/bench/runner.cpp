#include "bench/runner.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <map>
#include <new>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "backends/native/native_backend.h"
#include "bench/cell_measurement.h"
#include "bench/environment.h"
#include "bench/gpu_monitor.h"
#include "bench/run_files.h"
#include "bench/statistics.h"
#include "common/error.h"
#include "common/hash.h"
#include "common/paths.h"
#include "eval/dataset.h"
#include "eval/perplexity.h"
#include "eval/calibrate_native.h"
#include "quant/agreement.h"
#include "quant/calibration_driver.h"
#include "tokenizer/gpt2_tokenizer.h"

namespace gptbench::bench {

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

std::string utc_timestamp(const char* format) {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buffer[64];
  std::strftime(buffer, sizeof(buffer), format, &tm);
  return buffer;
}

// One line for a failure, whatever threw it.
std::string one_line(std::string message) {
  for (char& c : message)
    if (c == '\n' || c == '\r') c = ' ';
  return message.empty() ? std::string("unknown error") : message;
}

// Cells that share a backend and precision are measured with one backend instance (creating an ORT session or
// a CUDA context per cell would dominate the run).
struct CellGroup {
  BackendSpec spec;
  std::vector<Cell> cells;
};

std::vector<CellGroup> group_cells(const std::vector<Cell>& cells) {
  std::vector<CellGroup> groups;
  for (const auto& c : cells) {
    if (groups.empty() || groups.back().spec.label() != c.backend.label()) groups.push_back({c.backend, {}});
    groups.back().cells.push_back(c);
  }
  return groups;
}

class Progress {
 public:
  Progress(bool enabled, int total) : enabled_(enabled), total_(total), start_(Clock::now()) {}
  void cell(int done_before, int measured_before, const std::string& what) {
    if (!enabled_) return;
    const double elapsed = seconds_since(start_);
    std::string eta = "?";
    if (measured_before > 0) {
      const double per_cell = elapsed / measured_before;
      eta = fmt::format("{:.0f}s", per_cell * (total_ - done_before));
    }
    std::cerr << fmt::format("\r\033[K[{}/{}] {}  elapsed {:.0f}s  eta {}", done_before + 1, total_, what, elapsed, eta)
              << std::flush;
  }
  void note(const std::string& what) {
    if (!enabled_) return;
    std::cerr << fmt::format("\r\033[K{}  elapsed {:.0f}s", what, seconds_since(start_)) << std::flush;
  }
  void finish() {
    if (enabled_) std::cerr << "\r\033[K" << std::flush;
  }

 private:
  bool enabled_;
  int total_;
  Clock::time_point start_;
};

nlohmann::json backend_info_json(const BackendDescription& d, double setup_seconds) {
  nlohmann::json artifacts = nlohmann::json::array();
  for (const auto& a : d.artifacts)
    artifacts.push_back({{"kind", a.kind}, {"path", a.path}, {"bytes", a.bytes}, {"precision", a.precision}});
  return {{"name", d.name},           {"device", d.device},
          {"precision", d.precision}, {"versions", d.versions},
          {"details", d.details},     {"floating_point_ops", d.floating_point_ops},
          {"artifacts", artifacts},   {"caveats", d.caveats},
          {"setup_seconds", setup_seconds}};
}

// The run's warnings for a backend's caveats (the "caveats" of its backend_info_json), one "`label`: caveat" each:
// for a backend created in this invocation, and on --resume for one whose kept cells come from an earlier one.
std::vector<std::string> caveat_warnings(const std::string& label, const nlohmann::json& backend_info) {
  std::vector<std::string> out;
  if (backend_info.is_object())
    for (const auto& caveat : backend_info.value("caveats", nlohmann::json::array()))
      if (caveat.is_string()) out.push_back(fmt::format("`{}`: {}", label, caveat.get<std::string>()));
  return out;
}

nlohmann::json cell_base_record(const std::string& run_id, const Cell& cell) {
  return {{"schema", "gptbench.bench/1"},
          {"run_id", run_id},
          {"cell_id", cell.id()},
          {"cell_index", cell.index},
          {"backend", cell.backend.name},
          {"device", cell.backend.device},
          {"precision", cell.backend.precision},
          {"threads", cell.backend.threads},
          {"scenario", cell.scenario_json()}};
}

// Which configs agree for --resume: everything but where the output goes.
nlohmann::json comparable_config(nlohmann::json config) {
  config.erase("output");
  return config;
}

}  // namespace

nlohmann::json RunOutcome::to_json() const {
  return {{"run_dir", run_dir},
          {"run_id", run_id},
          {"cells_total", cells_total},
          {"cells_ok", cells_ok},
          {"cells_failed", cells_failed},
          {"cells_skipped", cells_skipped},
          {"cells_resumed", cells_resumed},
          {"perplexity_failed", perplexity_failed},
          {"seconds", seconds},
          {"exit_code", exit_code()}};
}

std::string make_run_id() {
  std::random_device rd;
  return utc_timestamp("%Y%m%dT%H%M%SZ") + fmt::format("-{:04x}", rd() & 0xffff);
}

std::string default_not_built_reason(const BackendSpec& spec) {
  const auto names = available_backends();
  if (std::find(names.begin(), names.end(), spec.name) == names.end())
    return "not built: this build has no " + spec.name + " backend";
  if (spec.name == "native" && spec.device == "cuda") {
#ifndef GPTBENCH_WITH_CUDA
    return "not built: this build has no CUDA engine";
#endif
  }
  return "";
}

DatasetTokens default_dataset_loader(const Gpt2Model& model, const std::string& path) {
  Gpt2Tokenizer tokenizer(model.vocab_path, model.merges_path);
  TokenizedDataset d = load_dataset(path, tokenizer);
  return {d.path, d.text_sha256, std::move(d.ids)};
}

CalibrationOutcome default_calibrator(const Gpt2Model& model, const CalibrationSpec& spec, int threads,
                                      const std::function<void(const std::string&)>& log) {
  CalibrationRequest request;
  request.dataset_path = spec.dataset;
  request.samples = spec.samples;
  request.batch = spec.batch;
  request.seq = spec.seq;
  request.method = spec.method;
  request.percentile = spec.percentile;
  request.out_dir = spec.out_dir;
  request.allow_eval_text = spec.allow_eval_text;
  std::ostringstream messages;
  const CalibrationArtifacts a = calibrate_with_native_engine(model, request, threads, messages);
  std::istringstream lines(messages.str());
  for (std::string line; std::getline(lines, line);)
    if (!line.empty()) log("calibration: " + line);
  const CalibrationProvenance& p = a.cache.provenance;
  CalibrationOutcome outcome;
  outcome.cache_path = a.cache_path;
  outcome.record = {{"dataset", p.dataset_path.empty() ? spec.dataset : p.dataset_path},
                    {"dataset_sha256", p.dataset_sha256},
                    {"dataset_name", p.dataset},
                    {"split", p.split},
                    {"method", p.method},
                    {"percentile", p.percentile},
                    {"samples", p.samples},
                    {"batch", p.batch},
                    {"seq", p.seq},
                    {"cache", a.cache_path},
                    {"tensorrt_table", a.tensorrt_table_path},
                    {"reused", a.reused},
                    {"evaluation_text", a.evaluation_text}};
  return outcome;
}

nlohmann::json model_provenance(const Gpt2Model& model, const ModelSpec& expected) {
  const auto& id = model.identity;
  const auto& c = model.config;
  return {{"name", id.name},
          {"source", id.source},
          {"directory", id.directory},
          {"parameters", id.parameters},
          {"config_parameters", id.config_parameters},
          {"storage_dtype", id.storage_dtype},
          {"weights_sha256", id.weights_sha256()},
          {"untrained", id.untrained || c.untrained},
          {"expected_name", expected.expect_name},
          {"expected_parameters", expected.expect_parameters},
          {"n_layer", c.n_layer},
          {"n_head", c.n_head},
          {"n_embd", c.n_embd},
          {"n_inner", c.inner_dim()},
          {"n_positions", c.n_positions},
          {"vocab_size", c.vocab_size}};
}

RunOutcome run_experiment(const RunConfig& config, const RunOptions& options) {
  const auto run_start = Clock::now();
  // On a terminal a note first clears the progress line it interrupts.
  const bool tty = options.progress;
  std::function<void(const std::string&)> log = options.log;
  if (!log)
    log = [tty](const std::string& line) { std::cerr << (tty ? "\r\033[K" : "") << "gptbench run: " << line << "\n"; };
  nlohmann::json stages = nlohmann::json::array();
  auto stage = [&stages](const std::string& name, Clock::time_point t0) {
    stages.push_back({{"name", name}, {"seconds", seconds_since(t0)}});
  };

  // --- The model, and proof that it is the configured one, before anything is measured.
  auto t0 = Clock::now();
  ModelLoader load = options.load_model ? options.load_model : [](const ModelSpec& spec, bool need_tokenizer) {
    LoadOptions lo;
    lo.hash_weights = spec.hash_weights;
    lo.require_tokenizer = need_tokenizer;
    return load_model(spec.source, lo);
  };
  // Files the run will need are checked first: a typo must not cost a whole benchmark before it shows.
  if (config.perplexity.enabled && !file_exists(config.perplexity.dataset))
    throw Error(config.file + ": perplexity.dataset: " + config.perplexity.dataset + ": no such file");
  for (const auto& b : config.backends)
    for (const auto& p : b.precisions)
      if (p == "int8" && !b.options.count("calibration_cache") && !options.calibrate &&
          !file_exists(config.calibration.dataset))
        throw Error(config.file + ": calibration.dataset: " + config.calibration.dataset + ": no such file");
  Gpt2Model loaded;
  try {
    loaded = load(config.model, config.perplexity.enabled);
  } catch (const Error& e) {
    throw Error(config.file + ": model.source: " + e.what());
  }
  const Gpt2Model model = std::move(loaded);
  stage("load_model", t0);
  t0 = Clock::now();
  try {
    verify_identity(model, config.model.expect_name, config.model.expect_parameters);
  } catch (const Error& e) {
    throw Error(config.file + ": model.expect: " + e.what());
  }
  check_against_model(config, model.config);
  stage("verify_identity", t0);

  const std::vector<Cell> cells = expand_cells(config);
  const nlohmann::json resolved = config.to_json();

  // --- The run folder: new, or the one being resumed.
  std::string run_id = make_run_id();
  std::string run_dir = options.out_dir;
  if (run_dir.empty()) {
    run_dir = config.output.empty() ? "runs/${run_id}" : config.output;
  }
  if (auto pos = run_dir.find("${run_id}"); pos != std::string::npos) {
    if (options.resume)
      throw Error(config.file + ": output: --resume needs the folder of the run to resume (--out DIR)");
    run_dir.replace(pos, 9, run_id);
  }
  run_dir = expand_shared(run_dir);
  const std::string manifest_path = run_dir + "/manifest.json";
  nlohmann::json previous_manifest;
  if (options.resume && file_exists(manifest_path)) {
    previous_manifest = nlohmann::json::parse(read_text_file(manifest_path), nullptr, false);
    if (previous_manifest.is_discarded() || !previous_manifest.is_object())
      fail_file(manifest_path, "--resume: not valid JSON");
    if (comparable_config(previous_manifest.value("config", nlohmann::json::object())) != comparable_config(resolved))
      fail_file(manifest_path, "--resume: this run was made with a different config; start a new run folder");
    run_id = previous_manifest.value("run_id", run_id);
  } else if (!options.resume && file_exists(manifest_path)) {
    fail_file(run_dir, "already holds a run (manifest.json); use --resume to continue it or choose another --out");
  } else if (!options.resume &&
             !(raw_files(run_dir, "bench_").empty() && raw_files(run_dir, "perplexity_").empty())) {
    fail_file(run_dir + "/raw", "already holds measurements of another run (bench_ / perplexity_ files, no "
                                "manifest.json); choose another --out");
  }
  fs::create_directories(run_dir + "/raw");
  fs::create_directories(run_dir + "/processed");

  RunOutcome outcome;
  outcome.run_dir = run_dir;
  outcome.run_id = run_id;
  outcome.cells_total = static_cast<int>(cells.size());

  nlohmann::json provenance = environment_provenance();
  provenance["model"] = model_provenance(model, config.model);
  std::vector<std::string> warnings = build_warnings();
  for (const auto& w : warnings) log("warning: " + w);
  if (model.identity.untrained || model.config.untrained)
    warnings.push_back("the model is untrained (random weights): its accuracy figures mean nothing");

  std::string config_file_sha256;
  if (file_exists(config.file)) config_file_sha256 = sha256_file(config.file);
  const std::string started_at = utc_timestamp("%Y-%m-%dT%H:%M:%SZ");

  nlohmann::json manifest;
  auto write_manifest = [&](const std::string& status) {
    manifest["schema"] = "gptbench.manifest/1";
    manifest["run_id"] = run_id;
    manifest["status"] = status;
    manifest["cells_total"] = outcome.cells_total;
    manifest["cells_ok"] = outcome.cells_ok;
    manifest["cells_failed"] = outcome.cells_failed;
    manifest["cells_skipped"] = outcome.cells_skipped;
    manifest["cells_resumed"] = outcome.cells_resumed;
    manifest["perplexity_failed"] = outcome.perplexity_failed;
    manifest["config_path"] = config.file;
    manifest["config_sha256"] = sha256_hex(resolved.dump().data(), resolved.dump().size());
    manifest["config_file_sha256"] = config_file_sha256;
    manifest["config"] = resolved;
    manifest["provenance"] = provenance;
    manifest["stages"] = stages;
    manifest["warnings"] = warnings;
    manifest["started_at"] = started_at;
    manifest["updated_at"] = utc_timestamp("%Y-%m-%dT%H:%M:%SZ");
    manifest["wall_seconds"] = seconds_since(run_start);
    write_file_atomic(manifest_path, manifest.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
  };
  write_manifest("running");
  try {
    // --- What the tool itself can resolve, and the ceilings of this hardware (for the roofline gate).
    t0 = Clock::now();
    manifest["harness_overhead"] = measure_harness_overhead();
    stage("harness_overhead", t0);
    nlohmann::json hardware = nlohmann::json::object();
    if (config.probe_hardware) {
      t0 = Clock::now();
      hardware["cpu"] = measure_cpu_ceilings(config.threads > 0 ? config.threads : cpu_thread_count());
      stage("hardware_probe", t0);
    }
    for (const auto& g : gpu_inventory()) {
      nlohmann::json sheet = gpu_datasheet(g.name);
      if (!sheet.is_null()) {
        hardware["gpu"] = sheet;
        break;
      }
      log("note: no datasheet ceilings for GPU '" + g.name + "'");
    }
    manifest["hardware"] = hardware;
    write_manifest("running");  // so a run cut short still tells the report its ceilings

    // --- Resume: keep the records of complete cells (and finished perplexity evaluations), drop the rest.
    std::set<std::string> complete_cells;
    std::set<std::string> complete_perplexity;
    std::string bench_path = run_dir + "/raw/bench_" + utc_timestamp("%Y%m%dT%H%M%SZ") + ".jsonl";
    std::string perplexity_path = run_dir + "/raw/perplexity_" + utc_timestamp("%Y%m%dT%H%M%SZ") + ".jsonl";
    if (options.resume) {
      std::map<std::string, int> repetitions_of;
      for (const auto& c : cells) repetitions_of[c.id()] = c.measure.repetitions;
      std::vector<nlohmann::json> kept;
      std::map<std::string, std::set<int>> ok_repetitions;
      std::vector<nlohmann::json> all;
      const auto bench_files = raw_files(run_dir, "bench_");
      for (const auto& f : bench_files)
        for (auto& r : read_jsonl(f)) all.push_back(std::move(r));
      for (const auto& r : all)
        if (auto rep = r.find("repetition"); r.value("status", "") == "ok" && r.value("run_id", "") == run_id &&
                                             rep != r.end() && rep->is_number_integer())
          ok_repetitions[r.value("cell_id", "")].insert(rep->get<int>());
      for (const auto& [id, reps] : ok_repetitions) {
        auto it = repetitions_of.find(id);
        if (it == repetitions_of.end()) continue;
        bool whole =
            static_cast<int>(reps.size()) == it->second && *reps.begin() == 0 && *reps.rbegin() == it->second - 1;
        if (whole) complete_cells.insert(id);
      }
      for (auto& r : all)
        if (r.value("status", "") == "ok" && complete_cells.count(r.value("cell_id", ""))) kept.push_back(std::move(r));
      if (!bench_files.empty()) {
        bench_path = bench_files.front();
        write_jsonl_atomic(bench_path, kept);
        for (std::size_t i = 1; i < bench_files.size(); ++i) fs::remove(bench_files[i]);
      }
      std::vector<nlohmann::json> kept_ppl;
      const auto ppl_files = raw_files(run_dir, "perplexity_");
      for (const auto& f : ppl_files)
        for (auto& r : read_jsonl(f))
          if (r.value("status", "") == "ok" && r.value("run_id", "") == run_id) {
            complete_perplexity.insert(r.value("label", ""));
            kept_ppl.push_back(std::move(r));
          }
      if (!ppl_files.empty()) {
        perplexity_path = ppl_files.front();
        write_jsonl_atomic(perplexity_path, kept_ppl);
        for (std::size_t i = 1; i < ppl_files.size(); ++i) fs::remove(ppl_files[i]);
      }
      outcome.cells_resumed = static_cast<int>(complete_cells.size());
      if (!complete_cells.empty())
        log(fmt::format("resume: {} of {} cells already complete in {}", complete_cells.size(), cells.size(), run_dir));
    }
    JsonlAppender bench_out(bench_path);
    JsonlAppender perplexity_out;
    if (config.perplexity.enabled) perplexity_out.open(perplexity_path);

    BackendFactory factory = options.create_backend ? options.create_backend : BackendFactory(create_backend);
    AvailabilityCheck not_built = options.not_built_reason ? options.not_built_reason : default_not_built_reason;
    DatasetLoader dataset_loader = options.load_dataset ? options.load_dataset : default_dataset_loader;

    // The dataset is tokenized once, when the first perplexity evaluation needs it.
    std::optional<DatasetTokens> dataset;
    double perplexity_seconds = 0, setup_seconds = 0;
    auto perplexity_base = [&](const BackendSpec& spec) {
      nlohmann::json r = {{"schema", "gptbench.perplexity_eval/1"},
                          {"run_id", run_id},
                          {"label", spec.label()},
                          {"backend", spec.name},
                          {"device", spec.device},
                          {"precision", spec.precision},
                          {"dataset", config.perplexity.dataset},
                          {"ctx", config.perplexity.ctx},
                          {"stride", config.perplexity.stride},
                          {"max_tokens", config.perplexity.max_tokens}};
      return r;
    };

    Progress progress(options.progress, outcome.cells_total);
    Calibrator calibrator = options.calibrate ? options.calibrate : default_calibrator;
    std::optional<CalibrationOutcome> calibration;
    std::string calibration_error;
    std::vector<std::string> calibrated_labels;
    // The spec a backend is created with: W8A8 needs activation scales, so unless the config names a cache for it,
    // calibrate once per run (ensure_calibration reuses a matching cache) and pass the cache as an option.
    auto prepare_spec = [&](const BackendSpec& configured) {
      BackendSpec spec = configured;
      if (spec.precision != "int8" || spec.options.count("calibration_cache")) return spec;
      if (!calibration && calibration_error.empty()) {
        auto tc = Clock::now();
        progress.note("calibrating INT8 on " + config.calibration.dataset);
        try {
          calibration = calibrator(model, config.calibration, config.threads, log);
        } catch (const std::exception& e) {
          calibration_error = std::string("calibration: ") + e.what();
        }
        stage("calibration", tc);
      }
      if (!calibration_error.empty()) throw Error(calibration_error);
      spec.options["calibration_cache"] = calibration->cache_path;
      if (std::find(calibrated_labels.begin(), calibrated_labels.end(), spec.label()) == calibrated_labels.end())
        calibrated_labels.push_back(spec.label());
      return spec;
    };
    nlohmann::json backends_info = nlohmann::json::array();
    nlohmann::json artifacts = nlohmann::json::array();
    int done = outcome.cells_resumed, measured = 0;
    bool measured_any = false;
    const auto bench_start = Clock::now();

    for (const CellGroup& group : group_cells(cells)) {
      const std::string label = group.spec.label();
      std::vector<Cell> todo;
      for (const auto& c : group.cells)
        if (!complete_cells.count(c.id())) todo.push_back(c);
      outcome.cells_ok += static_cast<int>(group.cells.size() - todo.size());
      const bool want_perplexity = config.perplexity.enabled && !complete_perplexity.count(label);
      if (todo.empty() && !want_perplexity) continue;

      auto record_group_problem = [&](const std::string& status, const std::string& reason) {
        for (const auto& c : todo) {
          nlohmann::json r = cell_base_record(run_id, c);
          r["repetition"] = nullptr;
          r["status"] = status;
          r["error"] = one_line(reason);
          r["provenance"] = provenance;
          bench_out.append(r);
          (status == "skipped" ? outcome.cells_skipped : outcome.cells_failed) += 1;
          ++done;
        }
        if (want_perplexity) {
          nlohmann::json r = perplexity_base(group.spec);
          r["status"] = status;
          r["error"] = one_line(reason);
          perplexity_out.append(r);
          if (status == "failed") ++outcome.perplexity_failed;
        }
        backends_info.push_back({{"label", label}, {"status", status}, {"error", one_line(reason)}});
      };

      if (std::string reason = not_built(group.spec); !reason.empty()) {
        log("skipping " + label + ": " + reason);
        record_group_problem("skipped", reason);
        continue;
      }

      std::unique_ptr<Backend> backend;
      nlohmann::json backend_info;
      progress.note("creating " + label);
      try {
        const BackendSpec spec = prepare_spec(group.spec);
        auto ts = Clock::now();
        backend = factory(spec, model);
        if (!backend) throw Error("the backend factory returned nothing");
        const double created = seconds_since(ts);
        setup_seconds += created;
        backend_info =
            backend_info_json(backend->describe(), backend->setup_seconds > 0 ? backend->setup_seconds : created);
      } catch (const std::bad_alloc&) {
        record_group_problem("failed", "creating the backend: out of memory");
        continue;
      } catch (const std::exception& e) {
        log("backend " + label + " failed: " + one_line(e.what()));
        record_group_problem("failed", std::string("creating the backend: ") + e.what());
        continue;
      }
      backends_info.push_back({{"label", label}, {"status", "ok"}, {"description", backend_info}});
      for (const auto& w : caveat_warnings(label, backend_info)) {
        warnings.push_back(w);
        log("warning: " + w);
      }
      for (const auto& a : backend_info["artifacts"]) {
        nlohmann::json entry = a;
        entry["backend"] = group.spec.name;
        entry["device"] = group.spec.device;
        entry["label"] = label;
        entry["parameters"] = model.identity.parameters;
        if (entry.value("precision", "").empty()) entry["precision"] = group.spec.precision;
        artifacts.push_back(entry);
      }

      for (const auto& cell : todo) {
        if (measured_any && config.cooldown_seconds > 0) {
          progress.note(fmt::format("cooling down {:.1f}s", config.cooldown_seconds));
          std::this_thread::sleep_for(std::chrono::duration<double>(config.cooldown_seconds));
        }
        measured_any = true;
        progress.cell(done, measured, cell.id());
        const nlohmann::json base = cell_base_record(run_id, cell);
        std::vector<nlohmann::json> records;
        try {
          CellMeasurement measurement(*backend, cell, model.config.vocab_size, config.seed);
          const nlohmann::json fixed = measurement.prepare();
          const bool gpu_cell = cell.backend.device == "cuda";
          for (int rep = 0; rep < cell.measure.repetitions; ++rep) {
            const bool rss_reset = reset_peak_rss();
            const std::int64_t rss_before = current_rss_bytes();
            GpuSampler sampler;
            int gpu_index = 0;  // the CUDA engine's "device" option picks the GPU
            if (auto it = cell.backend.options.find("device"); it != cell.backend.options.end())
              gpu_index = std::atoi(it->second.c_str());
            const bool sampling = gpu_cell && sampler.start(gpu_index, config.gpu_sample_seconds);
            nlohmann::json r = base;
            r["repetition"] = rep;
            r["status"] = "ok";
            r.update(measurement.run_repetition(rep));
            r.update(fixed);
            if (sampling) r["gpu_samples"] = sampler.stop();
            // With the reset, VmHWM is this repetition's own peak; without it (no permission), the process-wide
            // peak so far, which says so.
            r["host_peak_rss_bytes"] = peak_rss_bytes();
            r["host_rss_before_bytes"] = rss_before;
            r["host_peak_rss_scope"] = rss_reset ? "repetition" : "process";
            r["device_peak_bytes"] = backend->memory().device_peak_bytes;
            r["backend_info"] = backend_info;
            r["provenance"] = provenance;
            records.push_back(std::move(r));
          }
        } catch (const std::bad_alloc&) {
          records.clear();
          nlohmann::json r = base;
          r["repetition"] = nullptr;
          r["status"] = "failed";
          r["error"] = "out of memory (std::bad_alloc)";
          records.push_back(r);
        } catch (const std::exception& e) {
          records.clear();
          nlohmann::json r = base;
          r["repetition"] = nullptr;
          r["status"] = "failed";
          r["error"] = one_line(e.what());
          records.push_back(r);
        }
        // The cell's records are written together: a crash mid-cell leaves no partial cell behind.
        const bool ok = records.front()["status"] == "ok";
        if (!ok) {
          records.front()["provenance"] = provenance;
          log("cell " + cell.id() + " failed: " + records.front()["error"].get<std::string>());
        }
        for (const auto& r : records) bench_out.append(r);
        // Keep the summary current, so a run that is cut short still has one for the cells it finished.
        write_file_atomic(run_dir + "/processed/latency_summary.csv", latency_summary_csv(cells, read_jsonl(bench_path)));
        (ok ? outcome.cells_ok : outcome.cells_failed) += 1;
        ++done;
        ++measured;
      }

      if (want_perplexity) {
        nlohmann::json r = perplexity_base(group.spec);
        try {
          if (!dataset) {
            auto td = Clock::now();
            progress.note("tokenizing " + config.perplexity.dataset);
            dataset = dataset_loader(model, config.perplexity.dataset);
            stage("tokenize_dataset", td);
          }
          progress.note("perplexity " + label);
          PerplexitySettings settings;
          settings.ctx = config.perplexity.ctx;
          settings.stride = config.perplexity.stride;
          settings.max_tokens = config.perplexity.max_tokens;
          auto tp = Clock::now();
          PerplexityResult result = evaluate_perplexity(
              *backend, dataset->ids, settings, model.config.n_positions,
              [&](std::int64_t windows_done, std::int64_t windows_total) {
                progress.note(fmt::format("perplexity {} window {}/{}", label, windows_done, windows_total));
              });
          perplexity_seconds += seconds_since(tp);
          r["status"] = "ok";
          r["ppl"] = result.ppl;
          r["ppl_stderr"] = result.ppl_stderr;
          r["scored_tokens"] = result.scored_tokens;
          r["nll_sum"] = result.nll_sum;
          r["nll_mean"] = result.nll_mean;
          r["seconds"] = result.seconds;
          r["windows"] = result.windows;
          // Bit-exact equality of per-token NLLs across backends is decided from this hash (an INT8 cell equal to
          // FP32 did not quantize).
          r["token_nll_sha256"] = sha256_hex(result.token_nll.data(), result.token_nll.size() * sizeof(double));
          r["dataset_sha256"] = dataset->sha256;
          r["dataset_tokens"] = dataset->ids.size();
        } catch (const std::exception& e) {
          r["status"] = "failed";
          r["error"] = one_line(e.what());
          ++outcome.perplexity_failed;
          log("perplexity " + label + " failed: " + one_line(e.what()));
        }
        r["backend_info"] = backend_info;
        perplexity_out.append(r);
      }
      backend.reset();
    }
    progress.finish();
    stage("bench_and_perplexity", bench_start);
    stages.push_back({{"name", "backend_setup"}, {"seconds", setup_seconds}});
    if (config.perplexity.enabled) stages.push_back({{"name", "perplexity"}, {"seconds", perplexity_seconds}});

    // --- Processed files, rebuilt from the raw records (so a resumed run's summary covers every cell).
    t0 = Clock::now();
    std::vector<nlohmann::json> bench_records = read_jsonl(bench_path);
    write_file_atomic(run_dir + "/processed/latency_summary.csv", latency_summary_csv(cells, bench_records));

    std::string reference_label;
    std::vector<std::string> evaluated_labels;  // perplexity ok, in run order
    if (config.perplexity.enabled) {
      std::vector<nlohmann::json> evaluations = read_jsonl(perplexity_path);
      // Gate 9 input: did the timed calls of each backend/precision compute what its accuracy call computed?
      std::map<std::string, nlohmann::json> timed_check;
      for (const auto& r : bench_records) {
        if (r.value("status", "") != "ok") continue;
        const std::string label = r.value("backend", "") + "/" + r.value("device", "") + "/" + r.value("precision", "");
        auto& t = timed_check[label];
        if (t.is_null()) t = {{"top1_match", true}, {"outputs_consistent", true}, {"records", 0}};
        bool match = r.contains("accuracy_top1_hash")
                         ? r.value("top1_hash", "") == r.value("accuracy_top1_hash", "")
                         : r.value("generated_hash", "") == r.value("accuracy_generated_hash", "");
        if (!match) t["top1_match"] = false;
        if (!r.value("outputs_consistent", true)) t["outputs_consistent"] = false;
        t["records"] = t["records"].get<int>() + 1;
      }
      // The reference: the configured one, else native/cpu/fp32, else the first fp32 evaluation that succeeded.
      const nlohmann::json* reference = nullptr;
      auto find_ok = [&](const std::string& label) -> const nlohmann::json* {
        for (const auto& e : evaluations)
          if (e.value("label", "") == label && e.value("status", "") == "ok") return &e;
        return nullptr;
      };
      if (!config.agreement.reference.empty())
        reference = find_ok(config.agreement.reference);
      else
        reference = find_ok("native/cpu/fp32");
      if (!reference && config.agreement.reference.empty())
        for (const auto& e : evaluations)
          if (e.value("precision", "") == "fp32" && e.value("status", "") == "ok") {
            reference = &e;
            break;
          }
      if (reference) reference_label = reference->value("label", "");
      nlohmann::json results = nlohmann::json::array();
      // In run order, one entry per backend × precision.
      for (const CellGroup& group : group_cells(cells)) {
        const std::string label = group.spec.label();
        const nlohmann::json* e = nullptr;
        for (const auto& candidate : evaluations)
          if (candidate.value("label", "") == label) e = &candidate;  // the latest
        nlohmann::json out = {
            {"backend", group.spec.name}, {"device", group.spec.device}, {"precision", group.spec.precision}};
        if (!e) {
          out["status"] = "missing";
          results.push_back(out);
          continue;
        }
        out["status"] = e->value("status", "failed");
        if (out["status"] == "ok") evaluated_labels.push_back(label);
        if (out["status"] != "ok") {
          out["error"] = e->value("error", "");
        } else {
          for (const char* key : {"ppl", "ppl_stderr", "scored_tokens", "nll_sum", "nll_mean", "seconds", "windows"})
            out[key] = (*e)[key];
          if (reference) {
            const double ppl = (*e)["ppl"].get<double>();
            const double ref = (*reference)["ppl"].get<double>();
            out["delta_pct"] = 100.0 * (ppl - ref) / ref;
            out["identical_to_reference"] =
                e->value("token_nll_sha256", "a") == reference->value("token_nll_sha256", "b") &&
                (*e)["scored_tokens"] == (*reference)["scored_tokens"];
          } else {
            out["delta_pct"] = nullptr;
            out["identical_to_reference"] = nullptr;
          }
        }
        auto tc = timed_check.find(label);
        out["timed_check"] = tc == timed_check.end() ? nlohmann::json(nullptr) : tc->second;
        results.push_back(out);
      }
      nlohmann::json ppl_json = {
          {"schema", "gptbench.perplexity/1"},
          {"dataset", config.perplexity.dataset},
          {"dataset_sha256", dataset ? dataset->sha256 : std::string()},
          {"dataset_tokens", dataset ? static_cast<std::int64_t>(dataset->ids.size()) : 0},
          {"ctx", config.perplexity.ctx},
          {"stride", config.perplexity.stride},
          {"max_tokens", config.perplexity.max_tokens},
          {"reference", reference ? nlohmann::json(reference->value("label", "")) : nlohmann::json(nullptr)},
          {"results", results}};
      if (!dataset && reference) {  // a fully resumed run: the dataset facts come from the raw records
        ppl_json["dataset_sha256"] = reference->value("dataset_sha256", "");
        ppl_json["dataset_tokens"] = reference->value("dataset_tokens", 0);
      }
      write_file_atomic(run_dir + "/processed/perplexity_results.json",
                        ppl_json.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
    }
    stage("summarize", t0);

    // --- Agreement of every other backend × precision with the reference, position by position (KL divergence,
    // top-1 agreement, Δp; quant/agreement.h). Both backends run the same windows; logits never go to disk.
    if (config.perplexity.enabled && config.agreement.enabled) {
      t0 = Clock::now();
      const int ctx = config.agreement.ctx > 0 ? config.agreement.ctx : config.perplexity.ctx;
      nlohmann::json rows = nlohmann::json::array();
      std::map<std::string, BackendSpec> spec_of;
      for (const CellGroup& group : group_cells(cells)) spec_of[group.spec.label()] = group.spec;
      std::unique_ptr<Backend> reference_backend;
      std::int64_t compared_tokens = 0;
      for (const std::string& label : evaluated_labels) {
        if (label == reference_label || reference_label.empty()) continue;
        const BackendSpec& spec = spec_of[label];
        nlohmann::json row = {{"backend", spec.name},
                              {"device", spec.device},
                              {"precision", spec.precision},
                              {"label", label},
                              {"reference", reference_label}};
        try {
          if (!dataset) dataset = dataset_loader(model, config.perplexity.dataset);
          const auto& ids = dataset->ids;
          // The compared tokens are a prefix of the ones perplexity evaluated.
          std::int64_t n = std::min<std::int64_t>(config.agreement.max_tokens, static_cast<std::int64_t>(ids.size()));
          if (config.perplexity.max_tokens > 0) n = std::min(n, config.perplexity.max_tokens);
          if (!reference_backend) reference_backend = factory(prepare_spec(spec_of[reference_label]), model);
          std::unique_ptr<Backend> candidate = factory(prepare_spec(spec), model);
          AgreementAccumulator accumulator;
          const int window = static_cast<int>(std::min<std::int64_t>(ctx, n));
          const auto windows = sliding_windows(n, window, window);
          std::size_t w_index = 0;
          for (const Window& w : windows) {
            progress.note(fmt::format("agreement {} window {}/{}", label, ++w_index, windows.size()));
            TokenBatch t;
            t.batch = 1;
            t.seq = w.length;
            t.ids.assign(ids.begin() + w.begin, ids.begin() + w.begin + w.length);
            ForwardOutput ref_out, cand_out;
            reference_backend->prefill(t, OutputMode::kLogits, ref_out);
            candidate->prefill(t, OutputMode::kLogits, cand_out);
            if (ref_out.logits.empty() || ref_out.logits.size() != cand_out.logits.size())
              throw Error(fmt::format("logits of {} ({} values) and {} ({} values) cannot be compared", reference_label,
                                      ref_out.logits.size(), label, cand_out.logits.size()));
            const std::int64_t vocab = static_cast<std::int64_t>(ref_out.logits.size()) / w.length;
            std::vector<std::int32_t> targets(static_cast<std::size_t>(w.length));
            for (int i = 0; i < w.length; ++i) {
              const std::int64_t next = w.begin + i + 1;
              targets[static_cast<std::size_t>(i)] = next < n ? ids[static_cast<std::size_t>(next)] : -1;
            }
            accumulator.add_rows(ref_out.logits.data(), cand_out.logits.data(), w.length, vocab, targets);
          }
          const AgreementStats stats = accumulator.finish();
          compared_tokens = stats.tokens;
          row["status"] = "ok";
          row["tokens"] = stats.tokens;
          row["kl_mean"] = stats.kl_mean;
          row["kl_p99"] = stats.kl.p99;
          row["top1_agreement"] = stats.top1_agreement;
          row["delta_p_rms"] = stats.delta_p_rms;
          row["ppl_ratio"] = stats.ppl_ratio;
          row["ppl_ratio_stderr"] = stats.ppl_ratio_stderr;
          row["agreement"] = agreement_to_json(stats);
        } catch (const std::exception& e) {
          row["status"] = "failed";
          row["error"] = one_line(e.what());
          log("agreement " + label + " failed: " + one_line(e.what()));
        }
        rows.push_back(row);
      }
      progress.finish();
      nlohmann::json agreement = {
          {"schema", "gptbench.agreement/1"},
          {"reference", reference_label.empty() ? nlohmann::json(nullptr) : nlohmann::json(reference_label)},
          {"dataset", config.perplexity.dataset},
          {"ctx", ctx},
          {"max_tokens", config.agreement.max_tokens},
          {"tokens", compared_tokens},
          {"results", rows}};
      write_file_atomic(run_dir + "/processed/agreement.json",
                        agreement.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
      stage("agreement", t0);
    }
    // A resumed run keeps what the earlier invocation learnt about backends it did not create again.
    if (options.resume && previous_manifest.is_object()) {
      std::set<std::string> created_now;
      for (const auto& b : backends_info) created_now.insert(b.value("label", ""));
      for (const auto& b : previous_manifest.value("backends", nlohmann::json::array())) {
        const std::string label = b.value("label", "");
        if (created_now.count(label)) continue;
        backends_info.push_back(b);
        // its caveats still qualify the figures it left (kept cells), so they stay warnings of the run
        for (auto& w : caveat_warnings(label, b.value("description", nlohmann::json::object())))
          warnings.push_back(std::move(w));
      }
      const std::string previous_artifacts = run_dir + "/processed/artifacts.json";
      if (file_exists(previous_artifacts)) {
        auto old = nlohmann::json::parse(read_text_file(previous_artifacts), nullptr, false);
        if (old.is_object() && old.contains("artifacts") && old["artifacts"].is_array())
          for (const auto& a : old["artifacts"])
            if (!created_now.count(a.value("label", ""))) artifacts.push_back(a);
      }
    }
    t0 = Clock::now();
    write_file_atomic(run_dir + "/processed/artifacts.json",
                      nlohmann::json({{"schema", "gptbench.artifacts/1"}, {"artifacts", artifacts}}).dump(2) + "\n");
    stage("write_artifacts", t0);

    manifest["backends"] = backends_info;
    // What calibrated the INT8 backends (gate 7, data hygiene), from their describe().details:
    // calibration_dataset, calibration_dataset_sha256, calibration_split, calibration_method, calibration_cache.
    nlohmann::json calibrations = nlohmann::json::array();
    if (calibration) {
      nlohmann::json c = calibration->record;
      c["labels"] = calibrated_labels;
      c["source"] = "gptbench run (ensure_calibration)";
      calibrations.push_back(c);
    }
    for (const auto& b : backends_info) {
      if (!b.contains("description")) continue;
      const auto& details = b["description"]["details"];
      if (!details.is_object() || !details.contains("calibration_dataset")) continue;
      nlohmann::json c = {{"label", b["label"]}};
      for (const auto& [key, value] : details.items())
        if (key.rfind("calibration_", 0) == 0) c[key.substr(12)] = value;
      calibrations.push_back(c);
    }
    if (!calibrations.empty())
      manifest["calibration"] = calibrations;
    else if (options.resume && previous_manifest.is_object() && previous_manifest.contains("calibration"))
      manifest["calibration"] = previous_manifest["calibration"];  // the INT8 cells kept from the earlier run
    // The CPU ceilings again at the end: a probe that ran while the machine was busy would understate the peak
    // and make the roofline floor too high; the higher of the two is kept.
    if (config.probe_hardware && manifest["hardware"].contains("cpu")) {
      auto tp = Clock::now();
      nlohmann::json again = measure_cpu_ceilings(config.threads > 0 ? config.threads : cpu_thread_count());
      nlohmann::json& cpu = manifest["hardware"]["cpu"];
      for (const char* key : {"peak_gflops_fp32", "bandwidth_gb_s"}) {
        const double first = cpu[key].get<double>(), second = again[key].get<double>();
        cpu[std::string(key) + "_probes"] = {first, second};
        cpu[key] = std::max(first, second);
      }
      stage("hardware_probe_end", tp);
    }
    manifest["raw_files"] = {
        {"bench", fs::path(bench_path).filename().string()},
        {"perplexity", config.perplexity.enabled ? fs::path(perplexity_path).filename().string() : ""}};
    outcome.seconds = seconds_since(run_start);
    write_manifest("complete");
    return outcome;
  } catch (const std::exception& e) {
    // The folder says the run stopped early, and why; the error goes on to the caller.
    manifest["error"] = one_line(e.what());
    try {
      write_manifest("failed");
    } catch (...) {
    }
    throw;
  }
}

}  // namespace gptbench::bench
