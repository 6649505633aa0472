// gptbench_cuda_check: drives the CUDA engine through the Backend interface to check it against reference
// logits / perplexity and to time it, without the CLI or the runner. Used by scripts/gpu/check_cuda_engine.sh.
//
//   gptbench_cuda_check logits --model DIR --precision P --ids F --batch B --seq S --ref F
//   gptbench_cuda_check ppl    --model DIR --precision P --tokens F [--ctx 1024 --stride 512]
//   gptbench_cuda_check profile --model DIR --precision P [--shapes 1x128,8x512|none] [--decode-batch 1]
//   gptbench_cuda_check bench  --model DIR --precision P [--shapes 1x128,8x512] [--iters 50 --warmup 10]
//                              [--decode-prompt 128 --decode-new 128] [--peak-tflops X --peak-tbps Y]
// Each prints one JSON object per result on stdout (and appends it to --json FILE when given).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "backends/backend_options.h"
#include "backends/cuda/cuda_backend.h"
#include "eval/perplexity.h"
#include "common/error.h"
#include "model/checkpoint.h"
#include "model/config.h"
#include "model/weights.h"

using namespace gptbench;
using nlohmann::json;

namespace {

std::map<std::string, std::string> g_args;
std::string arg(const std::string& k, const std::string& fallback = "") {
  auto it = g_args.find(k);
  if (it != g_args.end()) return it->second;
  if (fallback.empty()) throw Error("missing --" + k);
  return fallback;
}

void emit(const json& j) {
  std::cout << j.dump() << std::endl;
  if (g_args.count("json")) {
    std::ofstream f(g_args["json"], std::ios::app);
    f << j.dump() << "\n";
  }
}

std::vector<char> read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  if (!f) throw Error(path + ": cannot open");
  std::vector<char> out(static_cast<std::size_t>(f.tellg()));
  f.seekg(0);
  f.read(out.data(), static_cast<std::streamsize>(out.size()));
  if (!f) throw Error(path + ": read failed");
  return out;
}

// Progress on stderr with seconds since start, so a slow or stuck phase shows in the log.
void progress(const std::string& what) {
  static const auto t0 = std::chrono::steady_clock::now();
  std::cerr << "[" << std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() << " s] " << what
            << std::endl;
}

template <typename T>
std::vector<T> read_array(const std::string& path) {
  auto bytes = read_bytes(path);
  if (bytes.size() % sizeof(T)) throw Error(path + ": size is not a multiple of the element size");
  std::vector<T> out(bytes.size() / sizeof(T));
  std::memcpy(out.data(), bytes.data(), bytes.size());
  return out;
}

// The project's loader (shapes and files checked, weights hashed: int8 needs the hash to accept a calibration).
Gpt2Model load_hf_dir(const std::string& dir) {
  LoadOptions o;
  o.require_tokenizer = false;
  Gpt2Model m = load_model(dir, o);
  progress("loaded " + dir + " (" + std::to_string(m.identity.parameters) + " parameters)");
  return m;
}

// --opt key=value,key=value -> backend options
std::map<std::string, std::string> parse_options() {
  std::map<std::string, std::string> o;
  std::stringstream ss(arg("opt", "-"));
  std::string item;
  while (std::getline(ss, item, ','))
    if (auto eq = item.find('='); eq != std::string::npos) o[item.substr(0, eq)] = item.substr(eq + 1);
  return o;
}

std::unique_ptr<Backend> make_backend(const Gpt2Model& model, const std::string& precision,
                                      std::map<std::string, std::string> options = {}) {
  BackendSpec spec;
  spec.name = "native";
  spec.device = "cuda";
  spec.precision = precision;
  spec.options = std::move(options);
  for (const auto& [k, v] : parse_options()) spec.options.emplace(k, v);
  return create_cuda_backend(spec, model);
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

struct Diff {
  double max_abs = 0, max_ref = 0, sq = 0, ref_sq = 0;
  double max_rel() const { return max_ref > 0 ? max_abs / max_ref : max_abs; }
  double rel_norm() const { return ref_sq > 0 ? std::sqrt(sq / ref_sq) : std::sqrt(sq); }
  void add(float a, float r) {
    const double d = static_cast<double>(a) - r;
    max_abs = std::max(max_abs, std::fabs(d));
    max_ref = std::max(max_ref, std::fabs(static_cast<double>(r)));
    sq += d * d;
    ref_sq += static_cast<double>(r) * r;
  }
};

int argmax(const float* row, int V) {
  int best = 0;
  for (int v = 1; v < V; ++v)
    if (row[v] > row[best]) best = v;
  return best;
}

void cmd_logits() {
  const Gpt2Model model = load_hf_dir(arg("model"));
  const std::string precision = arg("precision");
  const int B = std::stoi(arg("batch")), S = std::stoi(arg("seq"));
  const int V = model.config.vocab_size;
  auto ids = read_array<std::int32_t>(arg("ids"));
  auto ref = read_array<float>(arg("ref"));
  // The files may hold more sequences of S tokens than B: the first B are checked (e.g. B1 x S128 of a B2 x S128
  // reference, the few-row persistent path).
  const std::int64_t n = static_cast<std::int64_t>(B) * S;
  if (static_cast<std::int64_t>(ids.size()) < n || ids.size() % S != 0) throw Error("ids size mismatch");
  if (static_cast<std::int64_t>(ref.size()) != static_cast<std::int64_t>(ids.size()) * V)
    throw Error("ref size mismatch");
  ids.resize(n);
  ref.resize(n * V);
  auto backend = make_backend(model, precision);
  progress("backend created");
  TokenBatch tb{B, S, ids};
  ForwardOutput full, summary;
  backend->prefill(tb, OutputMode::kLogits, full);
  progress("prefill (logits) done");
  backend->prefill(tb, OutputMode::kSummary, summary);
  progress("prefill (summary) done");
  Diff d;
  int top1_agree = 0, summary_top1_ok = 0;
  double host_checksum = 0;
  for (std::int64_t r = 0; r < static_cast<std::int64_t>(B) * S; ++r) {
    const float* row = full.logits.data() + r * V;
    const float* rref = ref.data() + r * V;
    for (int v = 0; v < V; ++v) {
      d.add(row[v], rref[v]);
      host_checksum += row[v];
    }
    top1_agree += argmax(row, V) == argmax(rref, V);
    summary_top1_ok += summary.top1[r] == argmax(row, V);
  }
  // Graph-free run: same numbers expected (same kernels, launched one by one).
  auto eager = make_backend(model, precision, {{"graphs", "0"}});
  ForwardOutput eager_out;
  eager->prefill(tb, OutputMode::kLogits, eager_out);
  Diff graph_vs_eager;
  for (std::size_t i = 0; i < full.logits.size(); ++i) graph_vs_eager.add(eager_out.logits[i], full.logits[i]);
  progress("eager run done");
  // Decode: prefill S-8 tokens, then 8 steps with the true ids; each step's logits against the reference row.
  const int steps = std::min(8, S - 1), prompt = S - steps;
  auto session = backend->start_decode(B, S);
  TokenBatch pb{B, prompt, {}};
  for (int b = 0; b < B; ++b)
    for (int s = 0; s < prompt; ++s) pb.ids.push_back(ids[b * S + s]);
  ForwardOutput dout;
  session->prefill(pb, OutputMode::kLogits, dout);
  Diff decode;
  for (int b = 0; b < B; ++b)
    for (int v = 0; v < V; ++v) decode.add(dout.logits[b * V + v], ref[(static_cast<std::int64_t>(b) * S + prompt - 1) * V + v]);
  for (int k = 0; k < steps; ++k) {
    std::vector<std::int32_t> next(B);
    for (int b = 0; b < B; ++b) next[b] = ids[b * S + prompt + k];
    session->step(next, OutputMode::kLogits, dout);
    for (int b = 0; b < B; ++b)
      for (int v = 0; v < V; ++v)
        decode.add(dout.logits[b * V + v], ref[(static_cast<std::int64_t>(b) * S + prompt + k) * V + v]);
  }
  progress("decode done");
  // NLL on the device (score_window) against the host log-softmax over the same logits.
  std::vector<double> dev_nll, host_nll;
  std::span<const std::int32_t> row0(ids.data(), S);
  backend->score_window(row0, 0, dev_nll);
  nll_from_logits(full.logits.data(), V, row0, 0, host_nll);
  double nll_diff = 0;
  for (std::size_t i = 0; i < host_nll.size(); ++i) nll_diff = std::max(nll_diff, std::fabs(dev_nll[i] - host_nll[i]));
  const auto desc = backend->describe();
  emit({{"check", "logits"},
        {"precision", precision},
        {"model", arg("model")},
        {"gpu", desc.details.at("gpu")},
        {"batch", B},
        {"seq", S},
        {"max_abs_err", d.max_abs},
        {"max_rel_err", d.max_rel()},
        {"rel_norm_err", d.rel_norm()},
        {"top1_agreement_vs_ref", static_cast<double>(top1_agree) / (B * S)},
        {"summary_top1_matches_logits", summary_top1_ok == B * S},
        {"summary_checksum", summary.checksum},
        {"host_checksum_of_logits", host_checksum},
        {"graph_vs_eager_max_abs", graph_vs_eager.max_abs},
        {"decode_vs_ref_rel_norm", decode.rel_norm()},
        {"decode_vs_ref_max_rel", decode.max_rel()},
        {"device_nll_vs_host_max_abs", nll_diff},
        {"device_peak_bytes", backend->memory().device_peak_bytes},
        {"kernels", desc.details.at("kernels")}});
}

void cmd_ppl() {
  const Gpt2Model model = load_hf_dir(arg("model"));
  const std::string precision = arg("precision");
  auto tokens = read_array<std::int32_t>(arg("tokens"));
  PerplexitySettings s;
  s.ctx = std::stoi(arg("ctx", "1024"));
  s.stride = std::stoi(arg("stride", "512"));
  auto backend = make_backend(model, precision);
  progress("backend created");
  const auto first = evaluate_perplexity(*backend, tokens, s, model.config.n_positions);
  std::vector<double> secs;
  PerplexityResult r;
  for (int rep = 0; rep < 3; ++rep) {
    r = evaluate_perplexity(*backend, tokens, s, model.config.n_positions);
    secs.push_back(r.seconds);
  }
  // The one-window-per-call path (Backend::score_window) on the first windows must give the same NLL.
  std::vector<double> per_window;
  int checked_windows = 0;
  std::int64_t prev_end = 0;
  for (std::int64_t begin = 0; begin < static_cast<std::int64_t>(tokens.size()) && checked_windows < 3;
       begin += s.stride, ++checked_windows) {
    const std::int64_t end = std::min<std::int64_t>(begin + s.ctx, tokens.size());
    const int len = static_cast<int>(end - begin);
    const int from = begin == 0 ? 0 : len - static_cast<int>(end - prev_end) - 1;
    backend->score_window(std::span<const std::int32_t>(tokens.data() + begin, len), from, per_window);
    prev_end = end;
  }
  double window_diff = 0;
  for (std::size_t i = 0; i < per_window.size(); ++i)
    window_diff = std::max(window_diff, std::fabs(per_window[i] - r.token_nll[i]));
  json j = {{"check", "perplexity"},
            {"precision", precision},
            {"model", arg("model")},
            {"gpu", backend->describe().details.at("gpu")},
            {"ctx", s.ctx},
            {"stride", s.stride},
            {"windows_per_call", 16},
            {"ppl", r.ppl},
            {"ppl_stderr", r.ppl_stderr},
            {"scored_tokens", r.scored_tokens},
            {"windows", r.windows},
            {"seconds_first_pass", first.seconds},
            {"seconds_median_of_3", median(secs)},
            {"per_window_path_max_abs_nll_diff", window_diff},
            {"per_window_tokens_checked", per_window.size()}};
  if (g_args.count("expect")) {
    const double expect = std::stod(g_args["expect"]);
    j["expected_ppl"] = expect;
    j["rel_diff_percent"] = 100.0 * (r.ppl - expect) / expect;
  }
  emit(j);
}

// "BxS,BxS,..." -> (B, S) pairs; "none" -> no shapes.
std::vector<std::pair<int, int>> parse_shapes(const std::string& s) {
  std::vector<std::pair<int, int>> out;
  if (s == "none") return out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    const auto x = item.find('x');
    out.emplace_back(std::stoi(item.substr(0, x)), std::stoi(item.substr(x + 1)));
  }
  return out;
}

// Per-kernel times (graphs off) for each shape (--shapes none: no prefill) and for decode steps of --decode-batch
// sequences (default 1); the table comes from the engine on stderr.
void cmd_profile() {
  const Gpt2Model model = load_hf_dir(arg("model"));
  const std::string precision = arg("precision");
  auto opts = parse_options();
  opts.insert_or_assign("profile", std::string(1, '1'));  // (not opts["profile"] = "1": GCC 12 -Wrestrict false positive)
  std::mt19937 rng(99);
  std::uniform_int_distribution<int> tok(0, model.config.vocab_size - 1);
  for (auto [B, S] : parse_shapes(arg("shapes", "1x128,8x512"))) {
    std::cerr << "== profile prefill " << B << "x" << S << " (10 calls)\n";
    auto backend = make_backend(model, precision, opts);
    TokenBatch tb{B, S, {}};
    for (int i = 0; i < B * S; ++i) tb.ids.push_back(tok(rng));
    ForwardOutput out;
    for (int i = 0; i < 10; ++i) backend->prefill(tb, OutputMode::kSummary, out);
  }
  const int batch = std::stoi(arg("decode-batch", "1"));
  std::cerr << "== profile decode B" << batch << " prompt 128 + 32 steps (the prefill included)\n";
  auto backend = make_backend(model, precision, opts);
  auto session = backend->start_decode(batch, 160);
  TokenBatch pb{batch, 128, std::vector<std::int32_t>(static_cast<std::size_t>(batch) * 128, 11)};
  ForwardOutput out;
  session->prefill(pb, OutputMode::kSummary, out);
  for (int k = 0; k < 32; ++k) session->step(out.top1, OutputMode::kSummary, out);
}

void cmd_bench() {
  const Gpt2Model model = load_hf_dir(arg("model"));
  const std::string precision = arg("precision");
  const int iters = std::stoi(arg("iters", "50")), warmup = std::stoi(arg("warmup", "10"));
  const double peak_tflops = std::stod(arg("peak-tflops", "0")), peak_tbps = std::stod(arg("peak-tbps", "0"));
  const std::string variant = arg("variant", arg("opt", "default"));
  auto backend = make_backend(model, precision, parse_options());
  const auto desc = backend->describe();
  const int V = model.config.vocab_size;
  const double bytes_per_param = precision == "int8" ? 1.0 : (precision == "fp16" || precision == "bf16") ? 2.0 : 4.0;
  std::mt19937 rng(1234);
  std::uniform_int_distribution<int> tok(0, V - 1);
  for (auto [B, S] : parse_shapes(arg("shapes", "1x128,1x512,8x128,8x512,32x128,1x1024"))) {
    TokenBatch tb{B, S, {}};
    for (int i = 0; i < B * S; ++i) tb.ids.push_back(tok(rng));
    ForwardOutput out;
    for (int i = 0; i < warmup; ++i) backend->prefill(tb, OutputMode::kSummary, out);
    progress("warm " + std::to_string(B) + "x" + std::to_string(S));
    std::vector<double> gpu, wall;
    for (int i = 0; i < iters; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      backend->prefill(tb, OutputMode::kSummary, out);
      wall.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
      gpu.push_back(cuda_last_gpu_ms(*backend));
    }
    const double tokens = static_cast<double>(B) * S;
    const double flops = 2.0 * static_cast<double>(model.config.matmul_parameter_count()) * tokens +
                         2.0 * B * static_cast<double>(S) * S * model.config.n_embd * model.config.n_layer;  // causal QK+PV
    const double bytes = bytes_per_param * static_cast<double>(model.config.parameter_count());
    double floor_ms = 0;
    if (peak_tflops > 0 && peak_tbps > 0)
      floor_ms = std::max(flops / (peak_tflops * 1e12), bytes / (peak_tbps * 1e12)) * 1e3;
    emit({{"check", "prefill_speed"},
          {"variant", variant},
          {"precision", precision},
          {"gpu", desc.details.at("gpu")},
          {"batch", B},
          {"seq", S},
          {"gpu_ms_median", median(gpu)},
          {"gpu_ms_min", *std::min_element(gpu.begin(), gpu.end())},
          {"wall_ms_median", median(wall)},
          {"tokens_per_s", tokens / (median(wall) / 1e3)},
          {"tflops_achieved", flops / (median(gpu) / 1e3) / 1e12},
          {"floor_ms", floor_ms},
          {"percent_of_floor", floor_ms > 0 ? 100.0 * floor_ms / median(gpu) : 0.0},
          {"iters", iters},
          {"checksum", out.checksum}});
  }
  // Decode: batch 1, prompt, then greedy steps; new tokens per second over the steps (wall clock, blocking).
  const int prompt = std::stoi(arg("decode-prompt", "128")), new_tokens = std::stoi(arg("decode-new", "128"));
  for (int batch : {1, 8}) {
    std::vector<double> rates, step_gpu;
    for (int rep = 0; rep < 4; ++rep) {
      auto session = backend->start_decode(batch, prompt + new_tokens);
      TokenBatch pb{batch, prompt, {}};
      for (int i = 0; i < batch * prompt; ++i) pb.ids.push_back(tok(rng));
      ForwardOutput out;
      session->prefill(pb, OutputMode::kSummary, out);
      const auto t0 = std::chrono::steady_clock::now();
      for (int k = 0; k < new_tokens; ++k) {
        std::vector<std::int32_t> next = out.top1;
        session->step(next, OutputMode::kSummary, out);
        if (rep > 0) step_gpu.push_back(cuda_last_gpu_ms(*backend));
      }
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (rep > 0) rates.push_back(new_tokens / s);  // the first repetition captures the graphs
    }
    emit({{"check", "decode_speed"},
          {"variant", variant},
          {"precision", precision},
          {"gpu", desc.details.at("gpu")},
          {"batch", batch},
          {"prompt", prompt},
          {"new_tokens", new_tokens},
          {"new_tokens_per_s_per_sequence_median", median(rates)},
          {"step_gpu_ms_median", median(step_gpu)}});
  }
}

}  // namespace

int main(int argc, char** argv) {
  try {
    if (argc < 2) throw Error("usage: gptbench_cuda_check logits|ppl|bench --key value ...");
    const std::string cmd = argv[1];
    progress(std::string("start ") + cmd);
    for (int i = 2; i + 1 < argc; i += 2) {
      std::string k = argv[i];
      if (k.rfind("--", 0) != 0) throw Error("expected --key, got " + k);
      g_args[k.substr(2)] = argv[i + 1];
    }
    if (cmd == "load") {  // host only: time the loader
      load_hf_dir(g_args.at("model"));
      return 0;
    }
    // A misspelt --opt key is named before anything else, also on a machine without a GPU (the backend checks its
    // options itself, but only once it is created, after the device check below).
    BackendSpec probe;
    probe.name = "native";
    probe.device = "cuda";
    probe.options = parse_options();
    check_backend_options(probe);
    std::string why;
    if (!cuda_device_available(&why)) throw Error("no CUDA device: " + why);
    if (cmd == "logits") cmd_logits();
    else if (cmd == "ppl") cmd_ppl();
    else if (cmd == "bench") cmd_bench();
    else if (cmd == "profile") cmd_profile();
    else throw Error("unknown command " + cmd);
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
