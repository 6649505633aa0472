#pragma once
// The CUDA engine behind the native "cuda" device, as plain C++ (no CUDA types), so the Backend adapter
// (cuda_backend.cpp) and the tests compile with the host compiler. Everything here lives in cuda_engine.cu.
//
// Shape of the engine (after llm.c): weights resident on the device in the chosen precision; matrix products
// through cuBLASLt with bias / GELU epilogues; LayerNorm fused with the residual add; a fused causal attention
// kernel (online softmax, no S x S matrix) for prefill and a KV-cache attention kernel for decode steps; the
// whole forward pass plus its summary (arg-max, row sums) or NLL kernel captured once per shape as a CUDA graph,
// so a call is: copy ids in, launch graph, copy the small results out, synchronise.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "model/config.h"
#include "model/weights.h"

namespace gptbench::cuda_engine {

enum class Precision { kFp32, kTf32, kFp16, kBf16 };

// Parses "fp32" | "tf32" | "fp16" | "bf16"; false for anything else.
bool parse_precision(const std::string& name, Precision& out);
const char* precision_name(Precision p);

struct EngineOptions {
  Precision precision = Precision::kFp32;
  // Fuse GELU into the c_fc GEMM (cuBLASLt GELU_BIAS epilogue, tanh form). Off: bias epilogue + our own GELU
  // kernel. Only the tanh forms (gelu_new, gelu_pytorch_tanh) can use the epilogue.
  bool gelu_epilogue = true;
  bool use_graphs = true;  // off: every call launches its kernels one by one (for debugging)
  // Time the cuBLASLt heuristic's candidates once per GEMM shape and keep the fastest (off: its first pick).
  bool gemm_autotune = true;
  // Prefill attention blocks: 0 or 4: 4 warps (64 queries per block, the measured-faster default); 1: 1 warp.
  int attention_warps = 0;
  // With graphs off: time every kernel with events and print a per-kernel table to stderr at destruction.
  bool profile = false;
  // Products of <= 8 token rows (decode steps) through the split-K kernels of kernels.cuh instead of cuBLASLt.
  // Off by default: correct (tests and logits checks pass with it) but measured slower on an H200 (decode step
  // 2.09 ms vs 0.84 ms), because residual_layernorm_slabs sums up to 48 slabs with one warp per row.
  bool skinny_kernels = false;
  int device = 0;
};

// What one call produced, small enough to come back every time.
struct CallOutput {
  std::vector<std::int32_t> top1;  // [rows]
  std::vector<double> row_sums;    // [rows]: sum of each row's logits
  double gpu_ms = 0.0;             // CUDA-event time of the graph (or kernel sequence) of this call
};

class DecodeState {
 public:
  virtual ~DecodeState() = default;
  // prompt ids [batch, prompt_len]; rows of the output: the last position of each sequence.
  virtual void prefill(const std::int32_t* ids, int prompt_len, std::vector<float>* logits, CallOutput& out) = 0;
  // one id per sequence; rows: that new position.
  virtual void step(const std::int32_t* ids, std::vector<float>* logits, CallOutput& out) = 0;
  virtual int position() const = 0;
  virtual int batch() const = 0;
};

class Engine {
 public:
  virtual ~Engine() = default;
  // Forward over ids [batch, seq] (no cache). logits (optional): float [batch*seq, vocab] on the host.
  virtual void prefill(const std::int32_t* ids, int batch, int seq, std::vector<float>* logits, CallOutput& out) = 0;
  // NLL (nats) of targets[row] given the row's prefix, for ids [batch, seq]; targets[row] < 0: not scored (0).
  // nll gets batch*seq values. Everything but the copy of ids/targets in and nll out happens on the device.
  virtual void score(const std::int32_t* ids, const std::int32_t* targets, int batch, int seq, std::vector<double>& nll,
                     double* gpu_ms) = 0;
  virtual std::unique_ptr<DecodeState> start_decode(int batch, int max_tokens) = 0;

  virtual std::int64_t device_peak_bytes() const = 0;
  virtual std::string device_name() const = 0;
  virtual std::string describe_kernels() const = 0;  // one line: which kernels/epilogues this engine uses
  virtual int vocab() const = 0;
};

std::unique_ptr<Engine> make_engine(const Gpt2Config& config, const Gpt2Weights& weights, const EngineOptions& options);

// True when a CUDA device can be used; otherwise why not (no driver, no device, ...).
bool device_available(std::string* why);

// "CUDA runtime 13.0, driver 13.0, cuBLASLt 130000" style facts for the record.
struct RuntimeVersions {
  std::string runtime, driver, cublaslt;
};
RuntimeVersions runtime_versions();

// Host-side helpers that the tests can check without a GPU.
// Rounds the vocabulary up so every logits row is 16-byte aligned for cuBLASLt (50257 -> 50304).
int padded_vocab(int vocab);
// float -> IEEE half / bfloat16 bit patterns (round to nearest even), as the device conversion does.
std::uint16_t float_to_half_bits(float value);
std::uint16_t float_to_bf16_bits(float value);

}  // namespace gptbench::cuda_engine
