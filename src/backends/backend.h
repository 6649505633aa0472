#pragma once
// The one interface every inference engine implements (native CPU, native CUDA, ONNX Runtime, ...).
//
// Every call is blocking: it returns only when the work is finished and its outputs are on the host.
// GPU engines synchronise (or wait on an event) before returning. Each call also returns the arg-max id
// of every position and a checksum of the logits it computed, so a timed call cannot return before its
// results exist, and the runner can check that timed calls computed the same thing as the accuracy run.
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace gptbench {

struct Gpt2Model;

// Token ids, row-major [batch, seq].
struct TokenBatch {
  int batch = 0;
  int seq = 0;
  std::vector<std::int32_t> ids;
};

enum class OutputMode {
  kSummary,  // only top1 + checksum (what timed calls ask for)
  kLogits,   // also the full logits on the host
};

struct ForwardOutput {
  // kLogits only: float32 logits, row-major [rows, vocab]. rows = batch*seq for prefill, batch for decode steps.
  std::vector<float> logits;
  std::vector<std::int32_t> top1;  // [rows]: arg-max id of each row (lowest id wins ties)
  double checksum = 0.0;           // sum of all logits of the rows, in double
};

// A decode session: the KV cache for `batch` sequences of at most `max_tokens` positions.
class DecodeSession {
 public:
  virtual ~DecodeSession() = default;
  // Runs the prompts [batch, prompt_len]; output rows are the last position of each sequence ([batch, vocab]).
  virtual void prefill(const TokenBatch& prompt, OutputMode mode, ForwardOutput& out) = 0;
  // Appends one token to each sequence; output rows are that new position ([batch, vocab]).
  virtual void step(std::span<const std::int32_t> next_ids, OutputMode mode, ForwardOutput& out) = 0;
  virtual int position() const = 0;  // tokens in the cache so far
};

// What a backend is asked to be.
struct BackendSpec {
  std::string name = "native";     // native | onnxruntime | ...
  std::string device = "cpu";      // cpu | cuda
  std::string precision = "fp32";  // fp32 | tf32 | fp16 | bf16 | int8 | int8-weight-only
  int threads = 0;                 // 0: the library's default
  std::map<std::string, std::string> options;  // backend-specific (e.g. graph_optimization, calibration_cache)

  std::string label() const { return name + "/" + device + "/" + precision; }
};

// A file a backend exported or built (ONNX graph, engine, calibration table), for the artifact-size gate.
struct Artifact {
  std::string kind;       // "onnx", "onnx-int8-qdq", "calibration-cache", ...
  std::string path;
  std::int64_t bytes = 0;
  std::string precision;  // the precision its weights are stored in
};

// What a backend says about itself for the record.
struct BackendDescription {
  std::string name, device, precision;
  std::map<std::string, std::string> versions;  // library -> version
  std::map<std::string, std::string> details;   // e.g. "blas": "OpenBLAS 0.3.21 (Haswell kernel)"
  std::vector<std::string> floating_point_ops;  // for quantized precisions: what stays in floating point
  std::vector<Artifact> artifacts;
  // What a reader of this backend's figures must know because of where it ran (e.g. a CPU feature it lacked);
  // the runner makes each a warning of the run, which the report lists under its notes.
  std::vector<std::string> caveats;
};

struct MemoryStats {
  std::int64_t device_peak_bytes = -1;  // -1: not applicable / unknown
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual BackendDescription describe() const = 0;

  // Full forward pass over [batch, seq] tokens (no cache); output rows: every position.
  virtual void prefill(const TokenBatch& tokens, OutputMode mode, ForwardOutput& out) = 0;

  virtual std::unique_ptr<DecodeSession> start_decode(int batch, int max_tokens) = 0;

  // Negative log-likelihood, in nats, of ids[t+1] given ids[0..t] for t in [score_from, seq-1) of a single
  // window (batch 1). Appends seq-1-score_from values to nll. The default goes through prefill(kLogits)
  // and a log-softmax on the host in double; engines may do it on the device.
  virtual void score_window(std::span<const std::int32_t> ids, int score_from, std::vector<double>& nll);

  // Many windows of one token stream: window i covers tokens[begin, begin+length) and is scored from score_from
  // (as in score_window). Appends the NLLs window after window. The default calls score_window for each;
  // engines that score many windows per launch override it.
  struct ScoreWindow {
    std::int64_t begin = 0;
    int length = 0;
    int score_from = 0;
  };
  virtual void score_windows(std::span<const std::int32_t> tokens, std::span<const ScoreWindow> windows,
                             std::vector<double>& nll);

  virtual MemoryStats memory() const { return {}; }

  // Seconds the backend spent being created (session creation, weight upload, graph build), for the record.
  double setup_seconds = 0.0;
};

// Fills top1 and checksum from logits [rows, vocab]. openmp_threads: spread the rows over OpenMP's threads — only
// for engines that run on OpenMP themselves (elsewhere its idle workers would spin against the engine's threads).
void summarize_logits(const float* logits, std::int64_t rows, std::int64_t vocab, ForwardOutput& out,
                      bool openmp_threads = false);

// Adds the NLL of targets ids[t+1] for t in [score_from, seq-1) from logits [seq, vocab], log-softmax in double.
void nll_from_logits(const float* logits, std::int64_t vocab, std::span<const std::int32_t> ids, int score_from,
                     std::vector<double>& nll);

// Creates a backend; throws Error for an unknown name, device or precision, or one this build left out.
std::unique_ptr<Backend> create_backend(const BackendSpec& spec, const Gpt2Model& model);

// Names of the backends compiled into this build (e.g. {"native", "onnxruntime"}), and devices.
std::vector<std::string> available_backends();

}  // namespace gptbench
