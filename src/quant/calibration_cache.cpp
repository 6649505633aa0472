#include "quant/calibration_cache.h"

#include <bit>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/paths.h"

namespace gptbench {
namespace {

std::string sanitize(const std::string& s) {
  std::string out = s;
  for (char& c : out)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-')) c = '-';
  return out.empty() ? "unknown" : out;
}

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  const auto e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

int parse_int(const std::string& v, const std::string& source, const std::string& key) {
  try {
    std::size_t used = 0;
    const int r = std::stoi(v, &used);
    if (used == v.size()) return r;
  } catch (const std::exception&) {
  }
  throw Error(source + ": " + key + " is not an integer: '" + v + "'");
}

double parse_double(const std::string& v, const std::string& source, const std::string& key) {
  try {
    std::size_t used = 0;
    const double r = std::stod(v, &used);
    if (used == v.size()) return r;
  } catch (const std::exception&) {
  }
  throw Error(source + ": " + key + " is not a number: '" + v + "'");
}

std::string short_hash(const std::string& h) { return h.size() > 12 ? h.substr(0, 12) + "…" : h; }

}  // namespace

std::string calibration_cache_filename(const CalibrationProvenance& p) {
  return fmt::format("{}_{}_{}_{}x{}x{}.calib", sanitize(p.model), sanitize(p.dataset), sanitize(p.split), p.samples,
                     p.batch, p.seq);
}

void dataset_names_from_path(const std::string& path, std::string& dataset, std::string& split) {
  namespace fs = std::filesystem;
  const fs::path p(path);
  dataset = p.parent_path().filename().string();
  if (dataset.empty()) dataset = "text";
  const std::string name = p.filename().string();
  split = p.stem().string();
  std::stringstream ss(name);
  std::string part;
  while (std::getline(ss, part, '.')) {
    if (part == "train" || part == "valid" || part == "validation" || part == "test") {
      split = part;
      return;
    }
  }
}

std::string format_calibration_cache(const CalibrationCache& c) {
  const auto& p = c.provenance;
  std::string s = "gptbench-calibration 1\n";
  s += "# Activation ranges for INT8 (W8A8) inference; see docs/int8.md. Reused only when every field below\n";
  s += "# except dataset_path matches the run that wants it.\n";
  s += fmt::format("model: {}\nmodel_sha256: {}\ndataset: {}\nsplit: {}\ndataset_path: {}\ndataset_sha256: {}\n",
                   p.model, p.model_sha256, p.dataset, p.split, p.dataset_path, p.dataset_sha256);
  s += fmt::format("samples: {}\nbatch: {}\nseq: {}\nmethod: {}\npercentile: {}\n", p.samples, p.batch, p.seq,
                   p.method, p.percentile);
  s += "quantization: int8 symmetric per-tensor activations, scale = amax / 127\n";
  s += fmt::format("tensors: {}\n", c.table.amax.size());
  for (const auto& [name, amax] : c.table.amax)
    s += fmt::format("tensor {} amax={:.9g} scale={:.9g}\n", name, amax, amax / 127.0);
  return s;
}

CalibrationCache parse_calibration_cache(const std::string& text, const std::string& source) {
  CalibrationCache c;
  auto& p = c.provenance;
  std::istringstream in(text);
  std::string line;
  int line_no = 0;
  bool header = false;
  long declared = -1;
  auto where = [&] { return source + ":" + std::to_string(line_no); };
  while (std::getline(in, line)) {
    ++line_no;
    line = trim(line);
    if (line.empty() || line[0] == '#') continue;
    if (!header) {
      if (line != "gptbench-calibration 1")
        throw Error(where() + ": not a gptbench calibration cache (expected 'gptbench-calibration 1')");
      header = true;
      continue;
    }
    if (line.rfind("tensor ", 0) == 0) {
      std::istringstream ls(line.substr(7));
      std::string name, amax_field;
      ls >> name >> amax_field;
      if (name.empty() || amax_field.rfind("amax=", 0) != 0) throw Error(where() + ": malformed tensor line");
      const double amax = parse_double(amax_field.substr(5), where(), "amax");
      if (!(amax > 0.0) || !std::isfinite(amax)) throw Error(where() + ": amax of " + name + " must be > 0");
      c.table.amax[name] = amax;
      continue;
    }
    const auto colon = line.find(':');
    if (colon == std::string::npos) throw Error(where() + ": expected 'key: value'");
    const std::string key = trim(line.substr(0, colon)), value = trim(line.substr(colon + 1));
    if (key == "model") p.model = value;
    else if (key == "model_sha256") p.model_sha256 = value;
    else if (key == "dataset") p.dataset = value;
    else if (key == "split") p.split = value;
    else if (key == "dataset_path") p.dataset_path = value;
    else if (key == "dataset_sha256") p.dataset_sha256 = value;
    else if (key == "samples") p.samples = parse_int(value, where(), key);
    else if (key == "batch") p.batch = parse_int(value, where(), key);
    else if (key == "seq") p.seq = parse_int(value, where(), key);
    else if (key == "method") p.method = value;
    else if (key == "percentile") p.percentile = parse_double(value, where(), key);
    else if (key == "tensors") declared = parse_int(value, where(), key);
    else if (key == "quantization") continue;
    else throw Error(where() + ": unknown key '" + key + "'");
  }
  if (!header) throw Error(source + ": empty calibration cache");
  if (p.method.empty()) throw Error(source + ": no method");
  parse_calibration_method(p.method);
  if (p.model_sha256.empty() || p.dataset_sha256.empty()) throw Error(source + ": missing model or dataset hash");
  if (declared < 0 || static_cast<std::size_t>(declared) != c.table.amax.size())
    throw Error(source + ": 'tensors: " + std::to_string(declared) + "' but " +
                std::to_string(c.table.amax.size()) + " tensor lines (truncated file?)");
  c.table.method = p.method;
  c.table.percentile = p.percentile;
  return c;
}

void write_calibration_cache(const std::string& path, const CalibrationCache& cache) {
  write_file_atomic(path, format_calibration_cache(cache));
}

CalibrationCache read_calibration_cache(const std::string& path) {
  return parse_calibration_cache(read_text_file(path), path);
}

CalibrationCache read_calibration_cache_for_model(const std::string& path, const std::string& model_weights_sha256) {
  CalibrationCache cache = read_calibration_cache(path);
  if (cache.provenance.model_sha256 != model_weights_sha256)
    fail_file(path, "calibrated for another model (" + cache.provenance.model + ", weights sha256 " +
                        short_hash(cache.provenance.model_sha256) + "; this model's " +
                        short_hash(model_weights_sha256) + ")");
  return cache;
}

std::string calibration_mismatch(const CalibrationProvenance& cached, const CalibrationProvenance& wanted) {
  auto differ = [](const std::string& what, const std::string& a, const std::string& b) {
    return what + " differs (cache " + a + ", now " + b + ")";
  };
  if (cached.model_sha256 != wanted.model_sha256)
    return differ("model_sha256", short_hash(cached.model_sha256), short_hash(wanted.model_sha256));
  if (cached.dataset_sha256 != wanted.dataset_sha256)
    return differ("dataset_sha256", short_hash(cached.dataset_sha256), short_hash(wanted.dataset_sha256));
  if (cached.method != wanted.method) return differ("method", cached.method, wanted.method);
  if (cached.method == "percentile" && cached.percentile != wanted.percentile)
    return differ("percentile", fmt::format("{}", cached.percentile), fmt::format("{}", wanted.percentile));
  if (cached.samples != wanted.samples || cached.batch != wanted.batch || cached.seq != wanted.seq)
    return differ("shape", fmt::format("{}x{}x{}", cached.samples, cached.batch, cached.seq),
                  fmt::format("{}x{}x{}", wanted.samples, wanted.batch, wanted.seq));
  return "";
}

std::string tensorrt_scale_hex(float scale) {
  return fmt::format("{:08x}", std::bit_cast<std::uint32_t>(scale));
}

float tensorrt_scale_from_hex(const std::string& hex, const std::string& source) {
  if (hex.size() != 8 || hex.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos)
    throw Error(source + ": scale '" + hex + "' is not 8 hex digits");
  return std::bit_cast<float>(static_cast<std::uint32_t>(std::stoul(hex, nullptr, 16)));
}

std::string tensorrt_header_for_method(const std::string& method) {
  // TensorRT 8.6.1's names: the entropy method is its EntropyCalibration2; the range-based methods (minmax,
  // percentile, mse) have no TensorRT calibrator of their own and are closest to MinMaxCalibration.
  return method == "entropy" ? "TRT-8601-EntropyCalibration2" : "TRT-8601-MinMaxCalibration";
}

std::string format_tensorrt_calibration_table(const CalibrationTable& table, const std::string& header) {
  std::string s = header + "\n";
  for (const auto& [name, amax] : table.amax)
    s += name + ": " + tensorrt_scale_hex(static_cast<float>(amax / 127.0)) + "\n";
  return s;
}

std::map<std::string, float> parse_tensorrt_calibration_table(const std::string& text, const std::string& source,
                                                              std::string* header) {
  std::map<std::string, float> scales;
  std::istringstream in(text);
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    line = trim(line);
    if (line.empty()) continue;
    const std::string where = source + ":" + std::to_string(line_no);
    if (line_no == 1) {
      if (line.rfind("TRT-", 0) != 0) throw Error(where + ": expected a 'TRT-<version>-<calibrator>' header");
      if (header) *header = line;
      continue;
    }
    const auto colon = line.rfind(':');
    if (colon == std::string::npos) throw Error(where + ": expected '<tensor>: <hex>'");
    scales[trim(line.substr(0, colon))] = tensorrt_scale_from_hex(trim(line.substr(colon + 1)), where);
  }
  if (line_no == 0) throw Error(source + ": empty calibration table");
  return scales;
}

std::string calibration_metadata_json(const CalibrationCache& c, const std::string& tensorrt_header) {
  const auto& p = c.provenance;
  nlohmann::json j;
  j["format"] = tensorrt_header;
  j["model"] = p.model;
  j["model_sha256"] = p.model_sha256;
  j["dataset"] = p.dataset;
  j["split"] = p.split;
  j["dataset_path"] = p.dataset_path;
  j["dataset_sha256"] = p.dataset_sha256;
  j["samples"] = p.samples;
  j["batch"] = p.batch;
  j["seq"] = p.seq;
  j["method"] = p.method;
  j["percentile"] = p.percentile;
  j["quantization"] = "int8 symmetric per-tensor activations, scale = amax / 127";
  nlohmann::json t = nlohmann::json::object();
  for (const auto& [name, amax] : c.table.amax) t[name] = {{"amax", amax}, {"scale", amax / 127.0}};
  j["tensors"] = t;
  return j.dump(2) + "\n";
}

}  // namespace gptbench
