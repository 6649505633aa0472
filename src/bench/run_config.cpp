#include "bench/run_config.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "backends/backend_options.h"
#include "bench/config_schema.h"
#include "common/error.h"
#include "common/paths.h"
#include "model/config.h"

namespace gptbench::bench {

const std::vector<std::string>& known_backend_names() {
  static const std::vector<std::string> names{"native", "onnxruntime"};
  return names;
}
const std::vector<std::string>& known_devices() {
  static const std::vector<std::string> devices{"cpu", "cuda"};
  return devices;
}
const std::vector<std::string>& known_precisions() {
  static const std::vector<std::string> precisions{"fp32", "tf32", "fp16", "bf16", "int8", "int8-weight-only"};
  return precisions;
}

namespace {

constexpr std::int64_t kMaxBatch = 4096;
constexpr std::int64_t kMaxLength = 1 << 20;  // the model's n_positions is checked once it is loaded

MeasureSettings read_measure(ConfigMap& map, const MeasureSettings& base) {
  MeasureSettings m;
  m.repetitions = static_cast<int>(map.get_int("repetitions", base.repetitions, 1, 100000));
  m.warmup_calls = static_cast<int>(map.get_int("warmup_calls", base.warmup_calls, 0, 100000));
  m.min_calls = static_cast<int>(map.get_int("min_calls", base.min_calls, 1, 10000000));
  m.min_seconds = map.get_double("min_seconds", base.min_seconds, 0.0, 86400.0);
  m.audit_calls = static_cast<int>(map.get_int("audit_calls", base.audit_calls, 0, 100000));
  return m;
}

ModelSpec read_model(ConfigValue value) {
  ModelSpec spec;
  if (value.is_scalar()) {  // `model: DIR` — allowed, but then nothing says what it must be
    value.fail("expected a mapping with source and expect (the identity the model must have)",
               "{source: DIR_OR_HUB_NAME, expect: {name: NAME, parameters: COUNT}}");
  }
  ConfigMap map(value);
  spec.source = expand_shared(map.require_string("source"));
  if (spec.source.empty()) map.fail("source", "is empty", "a directory or a hub name");
  spec.hash_weights = map.get_bool("hash_weights", true);
  ConfigMap expect(map.require("expect"));
  spec.expect_name = expect.get_string("name", "");
  spec.expect_parameters = expect.get_int("parameters", 0, 1, std::int64_t{1} << 45);
  if (spec.expect_name.empty() && spec.expect_parameters == 0)
    config_fail(expect.file(), expect.path(), "names neither a model nor a parameter count",
                "name: NAME and/or parameters: COUNT");
  expect.finish();
  map.finish();
  return spec;
}

std::vector<BackendEntry> read_backends(ConfigValue value) {
  std::vector<BackendEntry> out;
  auto elements = value.elements();
  if (elements.empty()) value.fail("the list is empty", "at least one {name, device, precisions}");
  std::set<std::string> seen;
  for (const auto& element : elements) {
    ConfigMap map(element);
    BackendEntry b;
    b.name = map.get_choice("name", "", known_backend_names());
    if (b.name.empty()) map.fail("name", "is required", join_list(known_backend_names()));
    b.device = map.get_choice("device", "cpu", known_devices());
    b.precisions = map.get_choice_list("precisions", {"fp32"}, known_precisions());
    b.threads = static_cast<int>(map.get_int("threads", 0, 0, 1024));
    b.options = map.get_string_map("options");
    if (const auto key = unknown_backend_option(b.name, b.device, b.options))
      map.fail("options." + *key, "unknown option for backend " + b.name + " on " + b.device,
               join_list(backend_option_keys(b.name, b.device)));
    map.finish();
    if (!seen.insert(b.name + "/" + b.device).second)
      element.fail("backend " + b.name + " on " + b.device + " is listed twice",
                   "one entry per backend and device (list its precisions together)");
    for (const auto& p : b.precisions)
      if (p == "tf32" && b.device != "cuda")
        map.fail("precisions", "tf32 exists only on cuda devices", "fp32, fp16, bf16, int8, int8-weight-only on cpu");
    out.push_back(std::move(b));
  }
  return out;
}

ScenarioSpec read_scenario(const ConfigValue& element, const MeasureSettings& run_measure) {
  ConfigMap map(element);
  ScenarioSpec s;
  s.key_path = element.path();
  s.kind = map.get_choice("kind", "", {"prefill", "decode"});
  if (s.kind.empty()) map.fail("kind", "is required", "prefill, decode");
  s.batch = map.get_int_values("batch", {1}, 1, kMaxBatch);
  if (s.kind == "prefill") {
    s.seq = map.get_int_values("seq", {128}, 1, kMaxLength);
  } else {
    s.prompt = map.get_int_values("prompt", {32}, 1, kMaxLength);
    s.new_tokens = map.get_int_values("new_tokens", {32}, 1, kMaxLength);
  }
  s.measure = read_measure(map, run_measure);
  map.finish();
  return s;
}

PerplexitySpec read_perplexity(std::optional<ConfigValue> value) {
  PerplexitySpec p;
  if (!value) return p;
  ConfigMap map(*value);
  p.enabled = map.get_bool("enabled", true);
  p.dataset = expand_shared(map.get_string("dataset", "${shared}/data/wikitext-2-raw/wiki.test.raw"));
  p.ctx = static_cast<int>(map.get_int("ctx", 1024, 2, kMaxLength));
  p.stride = static_cast<int>(map.get_int("stride", 512, 1, kMaxLength));
  p.max_tokens = map.get_int("max_tokens", 0, 0, std::int64_t{1} << 40);
  map.finish();
  if (p.stride > p.ctx)
    map.fail("stride",
             fmt::format("{} is larger than ctx {} (tokens between windows would never be scored)", p.stride, p.ctx),
             fmt::format("1..{}", p.ctx));
  if (p.max_tokens != 0 && p.max_tokens < 2)
    map.fail("max_tokens", fmt::format("{} leaves nothing to score", p.max_tokens), "0 (all) or >= 2");
  return p;
}

AgreementSpec read_agreement(std::optional<ConfigValue> value) {
  AgreementSpec a;
  if (!value) return a;
  ConfigMap map(*value);
  a.enabled = map.get_bool("enabled", true);
  a.reference = map.get_string("reference", "");
  a.max_tokens = map.get_int("max_tokens", 2048, 2, std::int64_t{1} << 40);
  a.ctx = static_cast<int>(map.get_int("ctx", 0, 0, kMaxLength));
  map.finish();
  if (a.ctx == 1) map.fail("ctx", "1 leaves nothing to compare", "0 (the perplexity ctx) or >= 2");
  if (!a.reference.empty() && std::count(a.reference.begin(), a.reference.end(), '/') != 2)
    map.fail("reference", "'" + a.reference + "' is not a backend label",
             "NAME/DEVICE/PRECISION, e.g. native/cpu/fp32");
  return a;
}

CalibrationSpec read_calibration(std::optional<ConfigValue> value) {
  CalibrationSpec c;
  c.dataset = expand_shared("${shared}/data/wikitext-2/wiki.valid.tokens");
  if (!value) return c;
  ConfigMap map(*value);
  c.dataset = expand_shared(map.get_string("dataset", c.dataset));
  c.samples = static_cast<int>(map.get_int("samples", c.samples, 1, 1000000));
  c.batch = static_cast<int>(map.get_int("batch", c.batch, 1, 4096));
  c.seq = static_cast<int>(map.get_int("seq", c.seq, 2, kMaxLength));
  c.method = map.get_choice("method", c.method, {"minmax", "percentile", "entropy", "mse"});
  c.percentile = map.get_double("percentile", c.percentile, 50.0, 100.0);
  c.out_dir = expand_shared(map.get_string("out_dir", c.out_dir));
  c.allow_eval_text = map.get_bool("allow_eval_text", false);
  map.finish();
  return c;
}

// A key part that indexes a list: digits only.
bool is_list_index(const std::string& part) {
  return !part.empty() && std::all_of(part.begin(), part.end(), ::isdigit);
}

// "backends[0].precisions" -> "backends.0.precisions": the configuration's own error lines name list elements with
// brackets, so a user copying such a key into --set means the element, not a mapping key "backends[0]".
std::string dotted_key(const std::string& key, const std::string& file, const std::string& assignment) {
  std::string out;
  for (std::size_t i = 0; i < key.size(); ++i) {
    if (key[i] == ']')
      config_fail(file, key, "--set " + assignment + ": ']' without '['", "key.sub=value or list[index].sub=value");
    if (key[i] != '[') {
      out += key[i];
      continue;
    }
    const std::size_t close = key.find(']', i);
    const std::string index = close == std::string::npos ? std::string() : key.substr(i + 1, close - i - 1);
    if (!is_list_index(index))
      config_fail(file, key, "--set " + assignment + ": '" + key.substr(i, close == std::string::npos ? close : close - i + 1) +
                                 "' is not a list index",
                  "list[index] with a number, e.g. backends[0].precisions=[fp16]");
    out += "." + index;
    i = close;
  }
  return out;
}

// Walks "a.b.0.c" through the tree, creating mappings on the way; numeric parts index existing lists.
YAML::Node descend(YAML::Node node, const std::vector<std::string>& parts, std::size_t count, const std::string& file,
                   const std::string& assignment) {
  std::string walked;
  for (std::size_t i = 0; i < count; ++i) {
    const std::string& part = parts[i];
    walked += (walked.empty() ? "" : ".") + part;
    if (node.IsSequence()) {
      std::size_t index = 0;
      bool numeric = is_list_index(part);
      if (numeric) index = std::stoul(part);
      if (!numeric || index >= node.size())
        config_fail(file, walked, "--set " + assignment + ": no such list element",
                    fmt::format("an index 0..{}", node.size() ? node.size() - 1 : 0));
      node.reset(node[index]);
    } else {
      if (!node.IsMap() && !node.IsNull() && node.IsDefined())
        config_fail(file, walked, "--set " + assignment + ": the parent is not a mapping");
      YAML::Node child = node[part];
      node.reset(child);
    }
  }
  return node;
}

}  // namespace

void apply_override(YAML::Node& root, const std::string& assignment, const std::string& file) {
  auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0)
    config_fail(file, "--set", "'" + assignment + "' is not key=value", "key.sub=value, e.g. repetitions=1");
  const std::string key = dotted_key(assignment.substr(0, eq), file, assignment);
  const std::string value_text = assignment.substr(eq + 1);
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (true) {
    auto dot = key.find('.', start);
    parts.push_back(key.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  for (const auto& p : parts)
    if (p.empty()) config_fail(file, key, "--set " + assignment + ": empty key part", "key.sub=value");
  YAML::Node value;
  try {
    value = YAML::Load(value_text.empty() ? std::string("''") : value_text);
  } catch (const YAML::Exception& e) {
    config_fail(file, key, "--set value '" + value_text + "' is not valid YAML: " + e.msg);
  }
  YAML::Node parent = descend(root, parts, parts.size() - 1, file, assignment);
  const std::string& last = parts.back();
  if (parent.IsSequence()) {
    if (!is_list_index(last) || std::stoul(last) >= parent.size())
      config_fail(file, key, "--set " + assignment + ": no such list element");
    parent[std::stoul(last)] = value;
  } else {
    if (parent.IsDefined() && !parent.IsNull() && !parent.IsMap())
      config_fail(file, key, "--set " + assignment + ": the parent is not a mapping");
    parent[last] = value;
  }
}

RunConfig parse_run_config(const std::string& yaml_text, const std::string& file,
                           const std::vector<std::string>& overrides) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    throw Error(fmt::format("{}: line {}: not valid YAML: {}", file, e.mark.line + 1, e.msg));
  }
  if (!root.IsDefined() || root.IsNull()) root = YAML::Node(YAML::NodeType::Map);
  for (const auto& o : overrides) apply_override(root, o, file);

  RunConfig c;
  c.file = file;
  ConfigMap top(root, file, "");
  c.name = top.get_string("name", "");
  c.model = read_model(top.require("model"));
  c.measure = read_measure(top, MeasureSettings{});
  c.cooldown_seconds = top.get_double("cooldown_seconds", 0.0, 0.0, 3600.0);
  c.threads = static_cast<int>(top.get_int("threads", 0, 0, 1024));
  c.seed = static_cast<std::uint64_t>(top.get_int("seed", 1234, 0, std::int64_t{1} << 53));
  c.gpu_sample_seconds = top.get_double("gpu_sample_seconds", 0.1, 0.01, 60.0);
  c.probe_hardware = top.get_bool("probe_hardware", true);
  c.output = top.get_string("output", "");
  c.backends = read_backends(top.require("backends"));
  {
    ConfigValue scenarios = top.require("scenarios");
    auto elements = scenarios.elements();
    if (elements.empty()) scenarios.fail("the list is empty", "at least one {kind: prefill|decode, ...}");
    for (const auto& e : elements) c.scenarios.push_back(read_scenario(e, c.measure));
  }
  c.perplexity = read_perplexity(top.get("perplexity"));
  c.agreement = read_agreement(top.get("agreement"));
  c.calibration = read_calibration(top.get("calibration"));
  top.finish();

  if (!c.agreement.reference.empty()) {
    bool found = false;
    for (const auto& b : c.backends)
      for (const auto& p : b.precisions)
        if (b.name + "/" + b.device + "/" + p == c.agreement.reference) found = true;
    if (!found)
      config_fail(file, "agreement.reference", "'" + c.agreement.reference + "' is not one of the backends",
                  "a NAME/DEVICE/PRECISION listed under backends");
  }
  // Cells must have distinct ids: the same parameters in two scenarios would be measured twice under one name.
  std::set<std::string> ids;
  for (const auto& cell : expand_cells(c))
    if (!ids.insert(cell.id()).second)
      config_fail(file, "scenarios", "cell " + cell.id() + " appears twice", "each parameter combination once");
  return c;
}

RunConfig load_run_config(const std::string& path, const std::vector<std::string>& overrides) {
  return parse_run_config(read_text_file(path), path, overrides);
}

void check_against_model(const RunConfig& config, const Gpt2Config& model_config) {
  const std::int64_t n_positions = model_config.n_positions;
  const std::string allowed = fmt::format("1..{} (the model's n_positions)", n_positions);
  for (const auto& s : config.scenarios) {
    if (s.kind == "prefill") {
      for (auto seq : s.seq)
        if (seq > n_positions)
          config_fail(config.file, s.key_path + ".seq",
                      fmt::format("{} exceeds the model's n_positions {}", seq, n_positions), allowed);
    } else {
      for (auto p : s.prompt)
        for (auto n : s.new_tokens)
          if (p + n > n_positions)
            config_fail(config.file, s.key_path + ".prompt",
                        fmt::format("prompt {} + new_tokens {} = {} exceeds the model's n_positions {}", p, n, p + n,
                                    n_positions),
                        fmt::format("prompt + new_tokens <= {}", n_positions));
    }
  }
  if (config.perplexity.enabled && config.perplexity.ctx > n_positions)
    config_fail(config.file, "perplexity.ctx",
                fmt::format("{} exceeds the model's n_positions {}", config.perplexity.ctx, n_positions), allowed);
  bool has_int8 = false;
  for (const auto& b : config.backends)
    for (const auto& p : b.precisions) has_int8 |= p == "int8" && !b.options.count("calibration_cache");
  if (has_int8 && config.calibration.seq > n_positions)
    config_fail(config.file, "calibration.seq",
                fmt::format("{} exceeds the model's n_positions {}", config.calibration.seq, n_positions), allowed);
  if (config.agreement.enabled && config.agreement.ctx > n_positions)
    config_fail(config.file, "agreement.ctx",
                fmt::format("{} exceeds the model's n_positions {}", config.agreement.ctx, n_positions), allowed);
}

std::vector<Cell> expand_cells(const RunConfig& config) {
  std::vector<Cell> cells;
  for (const auto& b : config.backends) {
    for (const auto& precision : b.precisions) {
      BackendSpec spec;
      spec.name = b.name;
      spec.device = b.device;
      spec.precision = precision;
      spec.threads = b.threads > 0 ? b.threads : config.threads;
      spec.options = b.options;
      for (const auto& s : config.scenarios) {
        for (auto batch : s.batch) {
          if (s.kind == "prefill") {
            for (auto seq : s.seq) {
              Cell c;
              c.backend = spec;
              c.kind = s.kind;
              c.batch = static_cast<int>(batch);
              c.seq = static_cast<int>(seq);
              c.measure = s.measure;
              cells.push_back(c);
            }
          } else {
            for (auto prompt : s.prompt)
              for (auto n : s.new_tokens) {
                Cell c;
                c.backend = spec;
                c.kind = s.kind;
                c.batch = static_cast<int>(batch);
                c.prompt = static_cast<int>(prompt);
                c.new_tokens = static_cast<int>(n);
                c.measure = s.measure;
                cells.push_back(c);
              }
          }
        }
      }
    }
  }
  for (std::size_t i = 0; i < cells.size(); ++i) cells[i].index = static_cast<int>(i);
  return cells;
}

std::string Cell::id() const {
  if (kind == "prefill") return fmt::format("{}/prefill/b{}_s{}", backend.label(), batch, seq);
  return fmt::format("{}/decode/b{}_p{}_n{}", backend.label(), batch, prompt, new_tokens);
}

nlohmann::json Cell::scenario_json() const {
  if (kind == "prefill") return {{"kind", kind}, {"batch", batch}, {"seq", seq}};
  return {{"kind", kind}, {"batch", batch}, {"prompt", prompt}, {"new_tokens", new_tokens}};
}

int Cell::tokens_per_call() const { return kind == "prefill" ? batch * seq : batch * new_tokens; }

namespace {
nlohmann::json measure_json(const MeasureSettings& m) {
  return {{"repetitions", m.repetitions},
          {"warmup_calls", m.warmup_calls},
          {"min_calls", m.min_calls},
          {"min_seconds", m.min_seconds},
          {"audit_calls", m.audit_calls}};
}
}  // namespace

nlohmann::json RunConfig::to_json() const {
  nlohmann::json j;
  j["name"] = name;
  j["model"] = {{"source", model.source},
                {"hash_weights", model.hash_weights},
                {"expect", {{"name", model.expect_name}, {"parameters", model.expect_parameters}}}};
  j["backends"] = nlohmann::json::array();
  for (const auto& b : backends)
    j["backends"].push_back({{"name", b.name},
                             {"device", b.device},
                             {"precisions", b.precisions},
                             {"threads", b.threads},
                             {"options", b.options}});
  j["scenarios"] = nlohmann::json::array();
  for (const auto& s : scenarios) {
    nlohmann::json sj = measure_json(s.measure);
    sj["kind"] = s.kind;
    sj["batch"] = s.batch;
    if (s.kind == "prefill") {
      sj["seq"] = s.seq;
    } else {
      sj["prompt"] = s.prompt;
      sj["new_tokens"] = s.new_tokens;
    }
    j["scenarios"].push_back(sj);
  }
  j.update(measure_json(measure));
  j["cooldown_seconds"] = cooldown_seconds;
  j["threads"] = threads;
  j["seed"] = seed;
  j["gpu_sample_seconds"] = gpu_sample_seconds;
  j["probe_hardware"] = probe_hardware;
  j["perplexity"] = {{"enabled", perplexity.enabled},
                     {"dataset", perplexity.dataset},
                     {"ctx", perplexity.ctx},
                     {"stride", perplexity.stride},
                     {"max_tokens", perplexity.max_tokens}};
  j["agreement"] = {{"enabled", agreement.enabled},
                    {"reference", agreement.reference},
                    {"max_tokens", agreement.max_tokens},
                    {"ctx", agreement.ctx}};
  j["calibration"] = {{"dataset", calibration.dataset}, {"samples", calibration.samples},
                      {"batch", calibration.batch},     {"seq", calibration.seq},
                      {"method", calibration.method},   {"percentile", calibration.percentile},
                      {"out_dir", calibration.out_dir}, {"allow_eval_text", calibration.allow_eval_text}};
  j["output"] = output;
  return j;
}

}  // namespace gptbench::bench
