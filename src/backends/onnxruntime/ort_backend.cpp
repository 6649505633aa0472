#include "backends/onnxruntime/ort_backend.h"

#include <dlfcn.h>
#include <unistd.h>

#include <onnxruntime_cxx_api.h>
#include <onnxruntime_session_options_config_keys.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fmt/format.h>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "common/error.h"
#include "common/hash.h"
#include "common/strings.h"
#include "common/float16.h"
#include "export/onnx_export.h"
#include "export/onnx_qdq.h"
#include "model/checkpoint.h"
#include "quant/calibration_cache.h"
#include "quant/int8_gemm.h"

#ifndef GPTBENCH_ORT_DEFAULT_LIBRARY
#define GPTBENCH_ORT_DEFAULT_LIBRARY "libonnxruntime.so.1"
#endif

namespace gptbench {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

// ---- the library, opened once per process ------------------------------------------------------------------

struct OrtLibrary {
  std::string path;
  std::string version;
  const OrtApiBase* base = nullptr;
};

const OrtLibrary& ort_library() {
  static OrtLibrary library;
  static std::string failure;
  static std::once_flag once;
  std::call_once(once, [] {
    std::vector<std::string> candidates;
    if (const char* env = std::getenv("GPTBENCH_ORT_LIBRARY"); env && *env) candidates.push_back(env);
    else candidates = {GPTBENCH_ORT_DEFAULT_LIBRARY, "libonnxruntime.so.1"};
    std::string errors;
    for (const auto& candidate : candidates) {
      void* handle = dlopen(candidate.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (!handle) {
        errors += std::string(errors.empty() ? "" : "; ") + dlerror();
        continue;
      }
      auto get_base = reinterpret_cast<const OrtApiBase* (*)()>(dlsym(handle, "OrtGetApiBase"));
      if (!get_base) {
        errors += "; " + candidate + ": no OrtGetApiBase symbol (not ONNX Runtime?)";
        dlclose(handle);
        continue;
      }
      const OrtApiBase* base = get_base();
      const OrtApi* api = base->GetApi(ORT_API_VERSION);
      if (!api) {
        // The C API is versioned: a library older than the headers cannot serve them.
        errors += "; " + candidate + " (ONNX Runtime " + base->GetVersionString() + ") does not provide API version " +
                  std::to_string(ORT_API_VERSION) + " that gptbench was compiled against";
        dlclose(handle);
        continue;
      }
      Ort::InitApi(api);
      // The file actually loaded (a bare soname resolves through the loader's search path).
      Dl_info info{};
      library.path = dladdr(reinterpret_cast<void*>(get_base), &info) && info.dli_fname ? info.dli_fname : candidate;
      library.version = base->GetVersionString();
      library.base = base;
      return;
    }
    failure = "onnxruntime: cannot load the ONNX Runtime library (" + errors +
              "); run scripts/setup_onnxruntime.sh or set GPTBENCH_ORT_LIBRARY";
  });
  if (!library.base) throw Error(failure);
  return library;
}

Ort::Env& ort_env() {
  ort_library();
  // One environment per process, as ONNX Runtime recommends; warnings only (the optimiser is chatty at INFO).
  static Ort::Env env(ORT_LOGGING_LEVEL_ERROR, "gptbench");
  return env;
}

// ---- options -----------------------------------------------------------------------------------------------

std::string option(const BackendSpec& spec, const std::string& key, const std::string& fallback) {
  auto it = spec.options.find(key);
  return it == spec.options.end() || it->second.empty() ? fallback : it->second;
}

GraphOptimizationLevel optimization_level(const std::string& name) {
  if (name == "disabled") return ORT_DISABLE_ALL;
  if (name == "basic") return ORT_ENABLE_BASIC;
  if (name == "extended") return ORT_ENABLE_EXTENDED;
  if (name == "all") return ORT_ENABLE_ALL;
  throw Error("onnxruntime: option graph_optimization '" + name + "' must be disabled, basic, extended or all");
}

const char* element_type_name(ONNXTensorElementDataType t) {
  switch (t) {
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT: return "float32";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16: return "float16";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64: return "int64";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32: return "int32";
    default: return "other";
  }
}

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + (shape[i] < 0 ? std::string("?") : std::to_string(shape[i]));
  return s + "]";
}

// ---- INT8: the calibration cache ---------------------------------------------------------------------------

// The activation scales an INT8 graph is exported with: option calibration_cache, made for this very model.
struct Int8Calibration {
  std::string path;
  std::string sha256;  // of the cache file: part of the exported graph's cache key
  CalibrationTable table;
};

Int8Calibration read_int8_calibration(const BackendSpec& spec, const Gpt2Model& model) {
  const std::string path = option(spec, "calibration_cache", "");
  if (path.empty())
    throw Error("backend " + spec.label() +
                ": needs option calibration_cache (a .calib file from `gptbench calibrate` for this model)");
  Int8Calibration c;
  c.path = path;
  // Error naming the file when missing, malformed or made for other weights.
  const CalibrationCache cache = read_calibration_cache_for_model(path, model.identity.weights_sha256());
  c.sha256 = sha256_file(path);
  c.table = cache.table;
  return c;
}

// ---- the exported graph cache ------------------------------------------------------------------------------

struct GraphFile {
  std::string path;
  std::int64_t bytes = 0;
  double export_seconds = 0.0;  // 0 when reused or given
  std::string origin;           // "given", "exported", "cached"
};

std::int64_t file_bytes_with_data(const std::string& path) {
  std::int64_t bytes = static_cast<std::int64_t>(fs::file_size(path));
  std::error_code ec;
  if (fs::exists(path + ".data", ec)) bytes += static_cast<std::int64_t>(fs::file_size(path + ".data"));
  return bytes;
}

// The model's graph for this precision, exported once into the cache and reused while the key matches.
// INT8 graphs (`int8` non-null) are QDQ exports keyed by the weights and the calibration cache's sha256.
GraphFile graph_for(const Gpt2Model& model, const BackendSpec& spec, bool with_past, const Int8Calibration* int8) {
  GraphFile g;
  const std::string given = option(spec, with_past ? "past_model_path" : "model_path", "");
  if (!given.empty()) {
    if (!fs::exists(given)) fail_file(given, "no such ONNX file");
    g.path = given;
    g.bytes = file_bytes_with_data(given);
    g.origin = "given";
    return g;
  }
  const std::string dir = option(spec, "cache_dir", "artifacts/onnx");
  std::string name = model.identity.name.empty() ? "model" : model.identity.name;
  std::replace(name.begin(), name.end(), '/', '_');
  // INT8: one file per calibration cache (its hash in the name), so caches of several methods coexist.
  const std::string calibration_tag = int8 ? "_" + int8->sha256.substr(0, 12) : "";
  g.path = dir + "/" + name + "_" + spec.precision + calibration_tag + (with_past ? "_with_past" : "") + ".onnx";
  const std::string sha = model.identity.weights_sha256();
  nlohmann::json key = {{"weights_sha256", sha},
                        {"parameters", model.identity.parameters},
                        {"precision", spec.precision},
                        {"with_past", with_past},
                        {"format", 1}};
  if (int8) key["calibration_sha256"] = int8->sha256;
  const std::string key_path = g.path + ".key.json";
  std::error_code ec;
  if (!sha.empty() && fs::exists(g.path, ec) && fs::exists(key_path, ec)) {
    try {
      std::ifstream in(key_path);
      nlohmann::json stored = nlohmann::json::parse(in);
      if (stored.value("key", nlohmann::json()) == key &&
          stored.value("bytes", std::int64_t{-1}) == file_bytes_with_data(g.path)) {
        g.bytes = file_bytes_with_data(g.path);
        g.origin = "cached";
        return g;
      }
    } catch (const std::exception&) {
      // an unreadable key file: export again
    }
  }
  OnnxExportOptions options;
  options.precision = spec.precision;
  options.with_past = with_past;
  const OnnxExportResult r =
      int8 ? export_onnx_int8_qdq(model, int8->table, options, g.path) : export_onnx(model, options, g.path);
  g.bytes = r.bytes;
  g.export_seconds = r.seconds;
  g.origin = "exported";
  if (!sha.empty()) {
    std::ofstream out(key_path + ".tmp." + std::to_string(::getpid()));
    out << nlohmann::json{{"key", key}, {"bytes", r.bytes}, {"nodes", r.node_count}}.dump(2) << "\n";
    out.close();
    fs::rename(key_path + ".tmp." + std::to_string(::getpid()), key_path, ec);
  }
  return g;
}

// ---- a session with its signature checked ------------------------------------------------------------------

struct ValueSpec {
  std::string name;
  ONNXTensorElementDataType type = ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED;
  std::vector<std::int64_t> shape;
};

std::vector<ValueSpec> describe_values(Ort::Session& session, bool inputs) {
  Ort::AllocatorWithDefaultOptions allocator;
  const std::size_t n = inputs ? session.GetInputCount() : session.GetOutputCount();
  std::vector<ValueSpec> out;
  for (std::size_t i = 0; i < n; ++i) {
    ValueSpec v;
    v.name = (inputs ? session.GetInputNameAllocated(i, allocator) : session.GetOutputNameAllocated(i, allocator)).get();
    Ort::TypeInfo info = inputs ? session.GetInputTypeInfo(i) : session.GetOutputTypeInfo(i);
    if (info.GetONNXType() == ONNX_TYPE_TENSOR) {
      auto tensor = info.GetTensorTypeAndShapeInfo();
      v.type = tensor.GetElementType();
      v.shape = tensor.GetShape();
    }
    out.push_back(std::move(v));
  }
  return out;
}

struct SessionBundle {
  std::unique_ptr<Ort::Session> session;
  GraphFile graph;
  double create_seconds = 0.0;
  ONNXTensorElementDataType activation_type = ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
  std::vector<std::pair<std::string, std::int64_t>> optimized_op_counts;
  std::string optimized_path;
};

// Throws Error naming the file unless the graph has GPT-2's signature for this model.
void check_signature(Ort::Session& session, const std::string& path, const Gpt2Config& c, bool with_past,
                     ONNXTensorElementDataType& activation_type) {
  const auto inputs = describe_values(session, true);
  const auto outputs = describe_values(session, false);
  auto find = [](const std::vector<ValueSpec>& values, const std::string& name) -> const ValueSpec* {
    for (const auto& v : values)
      if (v.name == name) return &v;
    return nullptr;
  };
  auto listing = [](const std::vector<ValueSpec>& values) {
    std::string s;
    for (std::size_t i = 0; i < values.size() && i < 6; ++i)
      s += (i ? ", " : "") + values[i].name + " " + element_type_name(values[i].type) + shape_text(values[i].shape);
    if (values.size() > 6) s += ", ... (" + std::to_string(values.size()) + " in all)";
    return s;
  };
  const ValueSpec* ids = find(inputs, "input_ids");
  if (!ids || ids->type != ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64 || ids->shape.size() != 2)
    fail_file(path, "graph inputs do not match: expected input_ids int64[batch, seq], found " + listing(inputs));
  const ValueSpec* logits = find(outputs, "logits");
  if (!logits || logits->shape.size() != 3 ||
      (logits->type != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT && logits->type != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16) ||
      (logits->shape[2] >= 0 && logits->shape[2] != c.vocab_size))
    fail_file(path, "graph outputs do not match: expected logits float[batch, seq, " + std::to_string(c.vocab_size) +
                        "], found " + listing(outputs));
  activation_type = logits->type;
  const std::size_t expected_inputs = 1 + (with_past ? 2 * static_cast<std::size_t>(c.n_layer) : 0);
  if (with_past) {
    for (int i = 0; i < c.n_layer; ++i) {
      for (const char* kv : {"key", "value"}) {
        const std::string past = "past_key_values." + std::to_string(i) + "." + kv;
        const ValueSpec* p = find(inputs, past);
        if (!p || p->shape.size() != 4 || (p->shape[1] >= 0 && p->shape[1] != c.n_head) ||
            (p->shape[3] >= 0 && p->shape[3] != c.head_dim()))
          fail_file(path, "graph inputs do not match: expected " + past + " [batch, " + std::to_string(c.n_head) +
                              ", past_seq, " + std::to_string(c.head_dim()) + "] for this model (" +
                              std::to_string(c.n_layer) + " layers), found " + listing(inputs));
        if (!find(outputs, "present." + std::to_string(i) + "." + kv))
          fail_file(path, "graph outputs do not match: no present." + std::to_string(i) + "." + kv);
      }
    }
  }
  if (inputs.size() != expected_inputs)
    fail_file(path, "graph inputs do not match: expected " + std::to_string(expected_inputs) + " input(s) (" +
                        (with_past ? "input_ids and past_key_values" : "input_ids only") + "), found " +
                        listing(inputs));
}

struct SessionSettings {
  GraphOptimizationLevel level = ORT_ENABLE_ALL;
  int threads = 0;
  bool cuda = false;
  bool op_stats = true;
  std::string save_optimized;  // empty: a temporary file when op_stats
  std::string allow_spinning;  // "", "0" or "1": ONNX Runtime's intra-op spin-waiting (its default: on)
};

SessionBundle open_session(const GraphFile& graph, const Gpt2Config& config, bool with_past,
                           const SessionSettings& settings) {
  SessionBundle b;
  b.graph = graph;
  Ort::SessionOptions options;
  options.SetGraphOptimizationLevel(settings.level);
  if (settings.threads > 0) options.SetIntraOpNumThreads(settings.threads);
  options.SetInterOpNumThreads(1);
  options.SetExecutionMode(ORT_SEQUENTIAL);
  if (!settings.allow_spinning.empty())
    options.AddConfigEntry(kOrtSessionOptionsConfigAllowIntraOpSpinning, settings.allow_spinning.c_str());
  if (settings.cuda) {
    OrtCUDAProviderOptions cuda_options{};
    cuda_options.device_id = 0;
    try {
      options.AppendExecutionProvider_CUDA(cuda_options);
    } catch (const Ort::Exception& e) {
      throw Error(std::string("onnxruntime: the CUDA execution provider cannot be used: ") + e.what());
    }
  }
  std::string temp_dir;
  if (settings.op_stats || !settings.save_optimized.empty()) {
    b.optimized_path = settings.save_optimized;
    if (b.optimized_path.empty()) {
      temp_dir = (fs::temp_directory_path() / ("gptbench-ort-" + std::to_string(::getpid()) + "-" +
                                               std::to_string(Clock::now().time_since_epoch().count())))
                     .string();
      fs::create_directories(temp_dir);
      b.optimized_path = temp_dir + "/optimized.onnx";
    } else if (fs::path(b.optimized_path).has_parent_path()) {
      fs::create_directories(fs::path(b.optimized_path).parent_path());
    }
    options.SetOptimizedModelFilePath(b.optimized_path.c_str());
    // Weights go to a side file so the graph itself stays small enough to read back quickly.
    const std::string data_name = fs::path(b.optimized_path).filename().string() + ".data";
    options.AddConfigEntry(kOrtSessionOptionsOptimizedModelExternalInitializersFileName, data_name.c_str());
    options.AddConfigEntry(kOrtSessionOptionsOptimizedModelExternalInitializersMinSizeInBytes, "1024");
  }
  const auto start = Clock::now();
  try {
    b.session = std::make_unique<Ort::Session>(ort_env(), graph.path.c_str(), options);
  } catch (const Ort::Exception& e) {
    std::error_code ec;
    if (!temp_dir.empty()) fs::remove_all(temp_dir, ec);
    std::string what = e.what();
    if (what.find("Protobuf parsing failed") != std::string::npos || what.find("INVALID_PROTOBUF") != std::string::npos)
      fail_file(graph.path, "not a valid ONNX model (corrupt or truncated): " + what);
    fail_file(graph.path, "ONNX Runtime cannot load it: " + what);
  }
  b.create_seconds = seconds_since(start);
  try {
    check_signature(*b.session, graph.path, config, with_past, b.activation_type);
    if (!b.optimized_path.empty() && fs::exists(b.optimized_path)) b.optimized_op_counts = onnx_op_counts(b.optimized_path);
  } catch (...) {
    std::error_code ec;
    if (!temp_dir.empty()) fs::remove_all(temp_dir, ec);
    throw;
  }
  if (!temp_dir.empty()) {
    std::error_code ec;
    fs::remove_all(temp_dir, ec);
    b.optimized_path.clear();
  }
  return b;
}

// Converts the rows of a float16 or float32 logits buffer into float32.
void logits_to_float(const void* src, ONNXTensorElementDataType type, std::size_t count, float* dst) {
  if (type == ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT) {
    std::copy_n(static_cast<const float*>(src), count, dst);
    return;
  }
  const auto* h = static_cast<const std::uint16_t*>(src);
  for (std::size_t i = 0; i < count; ++i) dst[i] = half_to_float(h[i]);
}

// ---- the backend -------------------------------------------------------------------------------------------

class OrtBackend;

class OrtDecodeSession final : public DecodeSession {
 public:
  OrtDecodeSession(OrtBackend& backend, Ort::Session& session, ONNXTensorElementDataType act, int batch, int max_tokens);
  void prefill(const TokenBatch& prompt, OutputMode mode, ForwardOutput& out) override;
  void step(std::span<const std::int32_t> next_ids, OutputMode mode, ForwardOutput& out) override;
  int position() const override { return position_; }

 private:
  void run(const std::int64_t* ids, int seq, OutputMode mode, ForwardOutput& out);

  const Gpt2Config& config_;
  Ort::Session& session_;
  ONNXTensorElementDataType act_;
  int batch_, max_tokens_;
  int position_ = 0;
  Ort::MemoryInfo cpu_ = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
  Ort::IoBinding binding_;
  std::vector<std::string> past_names_, present_names_;
  std::vector<Ort::Value> past_;  // the presents of the previous call, fed back without copying
  std::vector<std::int64_t> ids_;
  std::vector<float> last_rows_;
};

class OrtBackend final : public Backend {
 public:
  OrtBackend(const BackendSpec& spec, const Gpt2Model& model) : library_(ort_library()), spec_(spec), model_(model) {
    library_path_ = library_.path;
    library_version_ = library_.version;
    if (spec.precision != "fp32" && spec.precision != "fp16" && spec.precision != "int8")
      throw Error("onnxruntime: precision '" + spec.precision + "' is not supported (fp32 | fp16 | int8)");
    if (spec.precision == "int8") int8_ = std::make_unique<Int8Calibration>(read_int8_calibration(spec, model));
    settings_.level = optimization_level(option(spec, "graph_optimization", "all"));
    level_name_ = option(spec, "graph_optimization", "all");
    settings_.threads = spec.threads;
    settings_.op_stats = option(spec, "optimized_graph_stats", "1") != "0";
    settings_.save_optimized = option(spec, "save_optimized", "");
    settings_.allow_spinning = option(spec, "allow_spinning", "");
    if (!settings_.allow_spinning.empty() && settings_.allow_spinning != "0" && settings_.allow_spinning != "1")
      throw Error("onnxruntime: option allow_spinning '" + settings_.allow_spinning + "' must be 0 or 1");
    providers_ = Ort::GetAvailableProviders();
    // GetAvailableProviders lists what the library was built with; the CUDA provider itself is a separate
    // library that must sit beside libonnxruntime (the npm build lists CUDA but ships without it).
    const bool cuda_listed =
        std::find(providers_.begin(), providers_.end(), "CUDAExecutionProvider") != providers_.end();
    const fs::path lib_dir = fs::path(library_path_).parent_path();
    std::error_code ec;
    cuda_offered_ = cuda_listed && fs::exists(lib_dir / "libonnxruntime_providers_cuda.so", ec);
    if (!cuda_offered_)
      cuda_note_ = cuda_listed ? "CPU only: CUDAExecutionProvider is listed, but libonnxruntime_providers_cuda.so is "
                                 "not beside " + library_path_
                               : "CPU only: this ONNX Runtime build has no CUDAExecutionProvider";
    if (spec.device == "cuda") {
      if (!cuda_offered_) throw Error("onnxruntime: device cuda asked for, but ONNX Runtime " + library_version_ + " is " + cuda_note_);
      settings_.cuda = true;
    } else if (spec.device != "cpu") {
      throw Error("onnxruntime: device '" + spec.device + "' is not supported (cpu | cuda)");
    }
    prefill_ = open_session(graph_for(model, spec, false, int8_.get()), model.config, false, settings_);
    setup_seconds = prefill_.create_seconds;
  }

  BackendDescription describe() const override {
    BackendDescription d;
    d.name = "onnxruntime";
    d.device = spec_.device;
    d.precision = spec_.precision;
    d.versions["onnxruntime"] = library_version_;
    d.versions["onnxruntime_headers_api"] = std::to_string(ORT_API_VERSION);
    d.details["library"] = library_path_;
    d.details["graph_optimization"] = level_name_;
    d.details["execution_provider"] = settings_.cuda ? "CUDAExecutionProvider" : "CPUExecutionProvider";
    d.details["providers_available"] = join_list(providers_);
    if (!cuda_offered_) d.details["cuda"] = cuda_note_;
    d.details["threads"] = spec_.threads > 0 ? std::to_string(spec_.threads) : "default";
    d.details["model_path"] = prefill_.graph.path;
    d.details["model_bytes"] = std::to_string(prefill_.graph.bytes);
    d.details["model_origin"] = prefill_.graph.origin;
    d.details["export_seconds"] = fmt_double(prefill_.graph.export_seconds);
    d.details["session_create_seconds"] = fmt_double(prefill_.create_seconds);
    d.details["compute_type"] = prefill_.activation_type == ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16 ? "float16" : "float32";
    if (!prefill_.optimized_op_counts.empty()) {
      std::int64_t total = 0;
      std::string counts;
      auto sorted = prefill_.optimized_op_counts;
      std::sort(sorted.begin(), sorted.end(), [](auto& a, auto& b) { return a.second > b.second || (a.second == b.second && a.first < b.first); });
      for (const auto& [op, n] : sorted) {
        total += n;
        counts += (counts.empty() ? "" : ", ") + op + ":" + std::to_string(n);
      }
      d.details["optimized_graph_nodes"] = std::to_string(total);
      d.details["optimized_graph_ops"] = counts;
    }
    if (!settings_.save_optimized.empty()) d.details["optimized_graph_path"] = settings_.save_optimized;
    if (past_) {
      d.details["decode_model_path"] = past_->graph.path;
      d.details["decode_session_create_seconds"] = fmt_double(past_->create_seconds);
    }
    if (int8_) {
      d.details["calibration_cache"] = int8_->path;
      d.details["calibration_method"] = int8_->table.method;
      if (!settings_.cuda) {
        const bool vnni = cpu_has_vnni();
        d.details["cpu_vnni"] = vnni ? "yes" : "no";
        // Without VNNI the same calibrated graph gives other int8 sums (docs/int8.md: on an AMD EPYC without it,
        // one block's logits lie 0.82 x native W8A8's own distance from fp32 away from native W8A8's; with VNNI
        // they agree to rounding): the cell's accuracy is then this CPU's, not the method's.
        if (!vnni)
          d.caveats.push_back(
              "this CPU has no VNNI (avx512vnni / avxvnni): ONNX Runtime's u8 x s8 kernels add pairs of products in "
              "int16 with saturation, so its int8 figures carry that error on top of the quantization's "
              "(docs/int8.md)");
      }
      d.floating_point_ops = onnx_int8_floating_point_ops();
      d.artifacts.push_back(Artifact{"onnx-int8-qdq", prefill_.graph.path, prefill_.graph.bytes, "int8"});
    }
    if (spec_.precision == "fp16" && !settings_.cuda)
      d.floating_point_ops.push_back(
          "CPU provider: float16 nodes without a CPU float16 kernel run in float32 between casts ONNX Runtime inserts");
    return d;
  }

  void prefill(const TokenBatch& tokens, OutputMode mode, ForwardOutput& out) override {
    check_tokens(tokens);
    const std::int64_t rows = static_cast<std::int64_t>(tokens.batch) * tokens.seq;
    const std::int64_t V = model_.config.vocab_size;
    const std::size_t count = static_cast<std::size_t>(rows * V);
    float* logits = nullptr;
    if (mode == OutputMode::kLogits) {
      out.logits.resize(count);
      logits = out.logits.data();
    } else {
      out.logits.clear();
      if (scratch_.size() < count) scratch_.resize(count);
      logits = scratch_.data();
    }
    run_logits(tokens.ids, tokens.batch, tokens.seq, logits);
    summarize_logits(logits, rows, V, out);
  }

  // Perplexity windows: the logits go into a buffer kept across windows (a 1024-token window's logits are
  // 206 MB: allocating them per window costs page faults), and the log-softmax rows (in double, by the shared
  // nll_from_logits) are split over the backend's threads. Same numbers as the default, in less time.
  void score_window(std::span<const std::int32_t> ids, int score_from, std::vector<double>& nll) override {
    const int seq = static_cast<int>(ids.size());
    TokenBatch check;
    check.batch = 1;
    check.seq = seq;
    check.ids.assign(ids.begin(), ids.end());
    check_tokens(check);
    const std::int64_t V = model_.config.vocab_size;
    const std::size_t count = static_cast<std::size_t>(seq) * static_cast<std::size_t>(V);
    if (scratch_.size() < count) scratch_.resize(count);
    run_logits(check.ids, 1, seq, scratch_.data());
    const int first = score_from, last = seq - 1;  // rows [first, last) are scored
    if (last <= first) return;
    const int workers = std::max(1, std::min(spec_.threads > 0 ? spec_.threads : 1, (last - first) / 64));
    std::vector<std::vector<double>> parts(static_cast<std::size_t>(workers));
    std::vector<std::thread> pool;
    std::exception_ptr failure;
    std::mutex failure_mutex;
    for (int w = 0; w < workers; ++w) {
      const int b = first + (last - first) * w / workers, e = first + (last - first) * (w + 1) / workers;
      auto work = [&, w, b, e] {
        try {
          nll_from_logits(scratch_.data(), V, ids.subspan(0, static_cast<std::size_t>(e) + 1), b,
                          parts[static_cast<std::size_t>(w)]);
        } catch (...) {
          std::lock_guard<std::mutex> lock(failure_mutex);
          failure = std::current_exception();
        }
      };
      if (w + 1 == workers) work();
      else pool.emplace_back(work);
    }
    for (auto& t : pool) t.join();
    if (failure) std::rethrow_exception(failure);
    for (const auto& part : parts) nll.insert(nll.end(), part.begin(), part.end());
  }

  std::unique_ptr<DecodeSession> start_decode(int batch, int max_tokens) override {
    if (batch < 1) throw Error("onnxruntime: decode batch must be at least 1");
    if (max_tokens < 1 || max_tokens > model_.config.n_positions)
      throw Error("onnxruntime: decode max_tokens " + std::to_string(max_tokens) + " must be in [1, " +
                  std::to_string(model_.config.n_positions) + "]");
    if (!past_) {
      // Created on first use: most runs never decode, and the with-past graph is a second copy of the weights.
      past_ = std::make_unique<SessionBundle>(
          open_session(graph_for(model_, spec_, true, int8_.get()), model_.config, true, SessionSettings{settings_.level, settings_.threads, settings_.cuda, false, "", settings_.allow_spinning}));
    }
    return std::make_unique<OrtDecodeSession>(*this, *past_->session, past_->activation_type, batch, max_tokens);
  }

  const Gpt2Model& model() const { return model_; }

  void check_tokens(const TokenBatch& tokens) const {
    if (tokens.batch < 1 || tokens.seq < 1 ||
        tokens.ids.size() != static_cast<std::size_t>(tokens.batch) * static_cast<std::size_t>(tokens.seq))
      throw Error("onnxruntime: token batch shape does not match its ids");
    if (tokens.seq > model_.config.n_positions)
      throw Error("onnxruntime: sequence of " + std::to_string(tokens.seq) + " tokens exceeds n_positions " +
                  std::to_string(model_.config.n_positions));
    for (auto id : tokens.ids)
      if (id < 0 || id >= model_.config.vocab_size)
        throw Error("onnxruntime: token id " + std::to_string(id) + " is outside the vocabulary");
  }

 private:
  // Runs the prefill graph on [batch, seq] ids; float32 logits [batch·seq, vocab] land in `logits`: directly
  // (ONNX Runtime writes into the buffer bound as the output), or through one float16 -> float32 conversion.
  void run_logits(const std::vector<std::int32_t>& token_ids, int batch, int seq, float* logits) {
    const std::int64_t V = model_.config.vocab_size;
    ids_.assign(token_ids.begin(), token_ids.end());
    const std::array<std::int64_t, 2> ids_shape{batch, seq};
    const std::array<std::int64_t, 3> logits_shape{batch, seq, V};
    Ort::Value ids = Ort::Value::CreateTensor<std::int64_t>(cpu_, ids_.data(), ids_.size(), ids_shape.data(), 2);
    const std::size_t count = static_cast<std::size_t>(batch) * static_cast<std::size_t>(seq) * static_cast<std::size_t>(V);
    Ort::Value logits_value{nullptr};
    if (prefill_.activation_type == ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT) {
      logits_value = Ort::Value::CreateTensor<float>(cpu_, logits, count, logits_shape.data(), 3);
    } else {
      if (half_scratch_.size() < count) half_scratch_.resize(count);
      logits_value = Ort::Value::CreateTensor(cpu_, half_scratch_.data(), count * 2, logits_shape.data(), 3,
                                              ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16);
    }
    const char* in_names[] = {"input_ids"};
    const char* out_names[] = {"logits"};
    try {
      prefill_.session->Run(run_options_, in_names, &ids, 1, out_names, &logits_value, 1);
    } catch (const Ort::Exception& e) {
      throw Error(std::string("onnxruntime: inference failed: ") + e.what());
    }
    if (prefill_.activation_type != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT)
      logits_to_float(half_scratch_.data(), prefill_.activation_type, count, logits);
  }

  static std::string fmt_double(double x) {
    std::ostringstream o;
    o.precision(4);
    o << std::fixed << x;
    return o.str();
  }

  // First member: the library must be loaded before any Ort object below is constructed.
  const OrtLibrary& library_;
  BackendSpec spec_;
  const Gpt2Model& model_;
  std::string library_path_, library_version_, level_name_;
  std::vector<std::string> providers_;
  bool cuda_offered_ = false;
  std::string cuda_note_;
  SessionSettings settings_;
  std::unique_ptr<Int8Calibration> int8_;  // precision int8 only
  SessionBundle prefill_;
  std::unique_ptr<SessionBundle> past_;
  Ort::MemoryInfo cpu_ = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
  Ort::RunOptions run_options_;
  std::vector<std::int64_t> ids_;
  std::vector<float> scratch_;
  std::vector<std::uint16_t> half_scratch_;
};

OrtDecodeSession::OrtDecodeSession(OrtBackend& backend, Ort::Session& session, ONNXTensorElementDataType act,
                                   int batch, int max_tokens)
    : config_(backend.model().config), session_(session), act_(act), batch_(batch), max_tokens_(max_tokens),
      binding_(session) {
  for (int i = 0; i < config_.n_layer; ++i) {
    for (const char* kv : {"key", "value"}) {
      past_names_.push_back("past_key_values." + std::to_string(i) + "." + kv);
      present_names_.push_back("present." + std::to_string(i) + "." + kv);
    }
  }
  // An empty cache: [batch, heads, 0, head_dim] tensors.
  Ort::AllocatorWithDefaultOptions allocator;
  const std::array<std::int64_t, 4> shape{batch_, config_.n_head, 0, config_.head_dim()};
  for (std::size_t i = 0; i < past_names_.size(); ++i)
    past_.push_back(Ort::Value::CreateTensor(allocator, shape.data(), shape.size(), act_));
}

void OrtDecodeSession::run(const std::int64_t* ids, int seq, OutputMode mode, ForwardOutput& out) {
  if (position_ + seq > max_tokens_)
    throw Error("onnxruntime: decode session of " + std::to_string(max_tokens_) + " tokens is full (" +
                std::to_string(position_) + " + " + std::to_string(seq) + ")");
  const std::array<std::int64_t, 2> ids_shape{batch_, seq};
  Ort::Value ids_value =
      Ort::Value::CreateTensor<std::int64_t>(cpu_, const_cast<std::int64_t*>(ids), static_cast<std::size_t>(batch_) * seq,
                                             ids_shape.data(), 2);
  binding_.ClearBoundInputs();
  binding_.ClearBoundOutputs();
  binding_.BindInput("input_ids", ids_value);
  for (std::size_t i = 0; i < past_names_.size(); ++i) binding_.BindInput(past_names_[i].c_str(), past_[i]);
  // ONNX Runtime allocates the outputs; the presents become the next call's past as they are.
  binding_.BindOutput("logits", cpu_);
  for (const auto& name : present_names_) binding_.BindOutput(name.c_str(), cpu_);
  try {
    session_.Run(Ort::RunOptions{}, binding_);
  } catch (const Ort::Exception& e) {
    throw Error(std::string("onnxruntime: decode failed: ") + e.what());
  }
  std::vector<Ort::Value> outputs = binding_.GetOutputValues();
  const std::int64_t V = config_.vocab_size;
  // Rows: the last position of each sequence.
  last_rows_.resize(static_cast<std::size_t>(batch_ * V));
  const auto* base = static_cast<const std::uint8_t*>(outputs[0].GetTensorRawData());
  const std::size_t elem = act_ == ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16 ? 2 : 4;
  for (int b = 0; b < batch_; ++b) {
    const std::size_t row = static_cast<std::size_t>(b) * seq + (seq - 1);
    logits_to_float(base + row * V * elem, act_, static_cast<std::size_t>(V), last_rows_.data() + b * V);
  }
  for (std::size_t i = 0; i < past_.size(); ++i) past_[i] = std::move(outputs[i + 1]);
  position_ += seq;
  summarize_logits(last_rows_.data(), batch_, V, out);
  if (mode == OutputMode::kLogits) out.logits = last_rows_;
  else out.logits.clear();
}

void OrtDecodeSession::prefill(const TokenBatch& prompt, OutputMode mode, ForwardOutput& out) {
  if (prompt.batch != batch_)
    throw Error("onnxruntime: decode prompt batch " + std::to_string(prompt.batch) + " differs from the session's " +
                std::to_string(batch_));
  if (position_ != 0) throw Error("onnxruntime: decode prefill called twice on one session");
  if (prompt.seq < 1 || prompt.ids.size() != static_cast<std::size_t>(prompt.batch) * prompt.seq)
    throw Error("onnxruntime: token batch shape does not match its ids");
  ids_.assign(prompt.ids.begin(), prompt.ids.end());
  for (auto id : ids_)
    if (id < 0 || id >= config_.vocab_size) throw Error("onnxruntime: token id " + std::to_string(id) + " is outside the vocabulary");
  run(ids_.data(), prompt.seq, mode, out);
}

void OrtDecodeSession::step(std::span<const std::int32_t> next_ids, OutputMode mode, ForwardOutput& out) {
  if (next_ids.size() != static_cast<std::size_t>(batch_))
    throw Error("onnxruntime: decode step needs " + std::to_string(batch_) + " ids, got " + std::to_string(next_ids.size()));
  if (position_ == 0) throw Error("onnxruntime: decode step before prefill");
  ids_.assign(next_ids.begin(), next_ids.end());
  for (auto id : ids_)
    if (id < 0 || id >= config_.vocab_size) throw Error("onnxruntime: token id " + std::to_string(id) + " is outside the vocabulary");
  run(ids_.data(), 1, mode, out);
}

}  // namespace

std::string onnxruntime_version() { return ort_library().version; }

std::unique_ptr<Backend> create_onnxruntime_backend(const BackendSpec& spec, const Gpt2Model& model) {
  return std::make_unique<OrtBackend>(spec, model);
}

}  // namespace gptbench
