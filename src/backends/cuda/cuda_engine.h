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
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "model/config.h"
#include "model/weights.h"

namespace gptbench::cuda_engine {

// kInt8: W8A8 (weights per output channel, activations per tensor with calibrated scales) for the four
// projections of every block and the LM head, through cuBLASLt integer GEMMs; everything else in fp16.
enum class Precision { kFp32, kTf32, kFp16, kBf16, kInt8 };

// Which products of a persistent decode step of 5-8 sequences in fp16 / bf16 run on tensor cores (option
// decode_mma): none, all four, or the MLP projection alone (K = 4 C, where the CUDA-core products read the most
// input per weight).
enum class DecodeMma { kOff, kAll, kMproj };

// Parses "fp32" | "tf32" | "fp16" | "bf16" | "int8"; false for anything else.
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
  // Autotune with a cold L2 (a buffer of twice the L2 size written before each timed call, as the weights are cold
  // in a forward pass) or hot (calls back to back).
  bool gemm_tune_cold = true;
  // Prefill attention (fp16/bf16). kWgmma: Hopper's warpgroup-MMA kernel with TMA-fed key / value tiles
  // (attention_wgmma.cuh) where it runs — a compute capability 9.0 card and head size 64 — and the mma.sync kernel
  // elsewhere; kMma: the FA2-style mma.sync kernel with register accumulators (attention_mma.cuh) everywhere;
  // kWmma: the older WMMA kernel that keeps scores and the output accumulator in shared memory.
  enum class Attention { kWgmma, kMma, kWmma };
  Attention attention = Attention::kWgmma;
  // Prefill attention blocks: 0: chosen by shape (mma) / 4 warps (WMMA); 1: 1 warp (16 queries); 4: 4 warps.
  int attention_warps = 0;
  // The Hopper attention kernel with each block's key tiles split between two warpgroups on the same queries,
  // merged at the end (attention_wgmma.cuh's KSPLIT): -1 where the plain grid has few blocks (< 2 per SM) and
  // sequences longer than 256 (measured faster there: B1 x S512, B1 x S1024), 0 never, 1 always.
  int attention_ksplit = -1;
  // With graphs off: time every kernel with events and print a per-kernel table to stderr at destruction.
  bool profile = false;
  // Decode steps of <= gemv_max_rows sequences through the fused matrix-vector kernels of gemv.cuh (LayerNorm in the
  // prologue, bias / GELU / residual add / KV-cache store in the epilogue: 5 kernels per layer) instead of
  // cuBLASLt + separate LayerNorm kernels. int8: the same with int8 weights and dp4a products (W8A8, the input
  // quantized in the prologue).
  bool gemv_kernels = true;
  // The largest decode batch that uses them (1..8); 0: measured on an H200 at batch 8: 8 for int8 (1,810 vs 1,538
  // new tokens/s per sequence through cuBLASLt IMMA) and wherever the persistent step runs (fp32 / tf32 1,869 vs
  // 1,137, twenty-fourth session; fp16 2,375 vs 2,264 and bf16 2,307 vs 2,287 since the twenty-eighth session's
  // kernel instances and LM head), else 4 (the 5-kernel chain: fp16 1,746 against cuBLASLt's 2,334).
  int gemv_max_rows = 0;
  // Those decode steps of at most this many sequences (1..8) take ln_f + the LM head as the fused matrix-vector
  // kernel (LayerNorm in its prologue); larger ones as the LayerNorm kernel + cuBLASLt's product. 0: 4 in fp16 /
  // bf16 (at 8 rows the CUDA-core kernel, reading 8 input rows per weight load, took 53 us against 28), all 8 in
  // fp32 / tf32 (47 us against cuBLASLt's 82). Not int8 (its own kernels).
  int gemv_lm_head_max_rows = 0;
  // Those decode kernels launched with programmatic dependent launch (Hopper): each may start, and stream its
  // first weights in, while the kernel before it finishes; it waits for that kernel before reading inputs.
  // Measured on an H200: no gain (3,262 vs 3,294 new tokens/s at batch 1), since each kernel's blocks fill the
  // SMs and the next kernel's cannot become resident early. Off by default, kept as an option.
  bool pdl = false;
  // Those decode steps (not int8; head size 64; <= 8 sequences) as ONE persistent kernel for the embedding and
  // every block (decode_persistent.cuh: grid barriers between a layer's 5 phases instead of 5 kernels, each warp's
  // next weights loaded before the barrier), then ln_f + the LM head as before. The same bits as the 5-kernel
  // chain (lab/cuda/decode_persistent_lab.cu checks it).
  bool decode_persistent = true;
  // Its steps of 5-8 sequences in fp16 / bf16 with the products on tensor cores (mma.sync, decode_persistent.cuh's
  // decode_mma: 8 rows x 8 columns from one weight load and one input load a lane) instead of CUDA-core products
  // that read 8 input rows per weight load. Not the chain's bits (the inputs are rounded to 16 bits, as in a
  // prefill). Measured slower on an H200: 506-601 against 411-429 us a step at 8 rows while both paths shared one
  // kernel (twenty-fifth session); as a kernel instance of its own 374 against 365 (lab), batch 8 fp16 2,310
  // against 2,375 new tokens/s (twenty-eighth session; docs/cuda-engine.md). Hence off. kMproj: the MLP
  // projection alone on tensor cores (its phase 5.2 against 8.5 us a layer in that session's lab).
  DecodeMma decode_mma = DecodeMma::kOff;
  // Prefill: the residual + LayerNorm and attention kernels launched as programmatic dependents of the product
  // before them (they wait for it with griddepcontrol.wait), so their launch overlaps its end.
  bool prefill_pdl = false;
  // The products whose output only feeds the residual stream (attention and MLP projections) add into the float
  // residual stream inside cuBLASLt (beta = 1, float output in place), so the LayerNorm kernel after them only
  // normalises. Not int8 (its products end in a dequantize kernel).
  bool residual_epilogue = true;
  // Prefills through cuBLASLt (more rows than the few-row paths take) in fp16 / bf16 keep the residual stream in
  // that 16-bit type, as PyTorch does, instead of float: the projections' epilogue then reads and writes 2 bytes
  // an element instead of 4, and so do the embedding and the LayerNorm kernels. Measured (H200, GPT-2 124M shape):
  // B8 x S512 2.20 against 2.33 ms, B32 x S128 2.11 against 2.20; the logits' rel-norm error against transformers
  // fp32 1.2e-3 against 7.1e-4 for fp16 (PyTorch's own fp16: 1.3e-3), 9.7e-3 against 5.8e-3 for bf16. Needs
  // residual_epilogue and n_embd a multiple of 128 (<= 1024). The Backend turns it on for fp16 unless told
  // otherwise (cuda_backend.cpp).
  bool residual_16bit = false;
  // The LayerNorm after a residual product through layernorm_rows_reg with this many rows a warp (1, 2, 4: w and
  // b loaded once per warp, all its rows' loads in flight together), or 0: residual_layernorm_reg (one row a warp,
  // w and b loaded after the row's reductions). Measured on an H200 (fp16, alternating rounds, against 0): 2 rows
  // B2 x S128 0.458 vs 0.498 ms, B8 x S128 0.727 vs 0.763, B1 x S1024 0.829 vs 0.868; B8 x S512 and B32 x S128
  // within their noise (2.05-2.19 ms either way); 1 row 0.460 / 0.734 at the first two, 4 rows 0.483 / 0.747.
  int layernorm_rows = 2;
  // Prefills of at least this many rows (batch x seq) through cuBLASLt with the 16-bit residual stream, on a
  // compute capability 9.0 card, n_embd 768: each attention / MLP projection and the LayerNorm after it in one
  // kernel (gemm_residual_layernorm.cuh: the LayerNorm in the product's epilogue, a row's statistics gathered
  // across a cluster of 2 blocks through distributed shared memory) instead of cuBLASLt's product and a
  // LayerNorm kernel that reads x back. 0 (default): off — measured slower (H200, 3 alternating rounds: B8 x S512
  // 2.29 vs 2.17 ms, B32 x S128 2.30 vs 2.15, B8 x S128 1.17 vs 0.73): its epilogue costs ~12 us a launch against
  // ~4 us for the LayerNorm kernel (gemm_residual_layernorm.cuh says why).
  int fused_layernorm_rows = 0;
  // Prefills of at most this many rows (batch x seq) on a compute capability 9.0 GPU, fp16 / bf16: the products
  // through the TMA + wgmma kernels of gemm_wgmma.cuh (bias, GELU and the residual add in their epilogue) and
  // every kernel of the chain launched as a programmatic dependent of the one before, so each starts, and
  // requests its weights, while the one before finishes. cuBLASLt's kernels can do neither (they do not wait for
  // the kernel before). Measured in lab/cuda/wgmma_lab.cu (H200, a layer's products + LayerNorms, weights cold):
  // 24.8 vs 30.0 us at 128 rows; 40.8 vs 35.0 us at 512 rows. Whole prefill (H200, 3 rounds): B1 x S128 0.449
  // vs 0.480 ms, but B2 x S128 (256 rows) 0.620 vs 0.507 ms: hence the default 128. 0: off.
  int wgmma_max_rows = 128;
  // Their block shape: an index into kernels::kWgmmaConfigs (0: 128 x 64, 1: 64 x 64, 2: 64 x 32 (default),
  // 3: 128 x 32 rows x columns), and whether the chain's kernels are programmatic dependents (PDL).
  int wgmma_tile = 2;
  bool wgmma_pdl = true;
  // The LM head of those prefills through the same kernels (instead of cuBLASLt).
  bool wgmma_lm_head = false;
  // Prefills of at most 128 rows where the Hopper path applies (and the head size is 64): the embedding,
  // every transformer block and ln_f in ONE persistent kernel (layers_persistent.cuh: grid barriers between
  // a layer's phases instead of kernel boundaries, weights streamed ahead by a producer warp), then the LM
  // head. Measured in lab/cuda/persistent_lab.cu and docs/cuda-engine.md.
  bool persistent = true;
  // Its QKV and FC tiles split in k over the two blocks of a cluster (the paired kernel, CL = 2: each block
  // streams half the activations). Correct, but measured slower (H200, B1 x S128: 0.439 against 0.431 ms): off.
  bool persistent_pairs = false;
  // Its embedding inside its first row phase instead of a kernel before it: one kernel and one graph node
  // fewer, bitwise the same x; speed within noise (H200, B1 x S128: 0.4101 vs 0.4117 ms in one call, 0.4067 vs
  // 0.4051 in another).
  bool persistent_embed = true;
  // Its QKV -> attention step through per-head ready counters instead of a grid barrier (6 barriers a layer, not
  // 7): an attention item waits only for the 6 QKV tiles of its head. H200, 5 alternating rounds: B1 x S128 0.3990
  // vs 0.4066 ms, B1 x S64 0.3695 vs 0.3748, B2 x S64 0.3881 vs 0.3959, B1 x S32 0.3614 vs 0.3659.
  bool persistent_head_flags = true;
  // Its last phases run the LM head (vocabulary tiles of 64 columns streamed past half the rows resident in each
  // block's shared memory) and the logits' top-1 / row-sum summary, instead of cuBLASLt's LM head and the
  // row_summary kernel after it (n_embd <= 768; not int8). Correct, but measured slower (H200, 3 alternating
  // rounds: B1 x S128 0.3670 against 0.3622 ms, B1 x S64 0.3333 against 0.3337; layers_persistent.cuh): off.
  bool persistent_lm_head = false;
  // A memset node before each launch of the persistent kernels (prefill, decode step) that zeroes their grid
  // barrier's counters, as before the nineteenth session; off: the kernels leave the counters zero themselves (the
  // last block to leave resets them), so a call's graph has one node fewer. H200, 5 alternating rounds (nineteenth
  // session): B1 x S128 0.3628 against 0.3645 ms, decode batch 1 3,969 against 3,917 new tokens/s (the card's
  // noise is ~1.5 %).
  bool sync_memset = false;
  // Logits summaries (top-1, row sum) of lm_head_summary_min_rows .. lm_head_summary_rows rows on a compute
  // capability 9.0 GPU, fp16 / bf16 (prefills and decode prompts; not int8): the LM head with the summary in its
  // epilogue (lm_head_summary.cuh: no logits written unless a caller wants them) instead of cuBLASLt's LM head and
  // the row_summary kernel, which writes every logit and reads it back (412 MB at B8 x S512).
  // lm_head_pingpong (default): the ping-pong kernel, its two consumer warpgroups alternating 128 x 192 tiles, the
  // summary through shared memory, each thread's run of 96 logits summed in float before double (thirteenth
  // session, lab/cuda/lm_head_lab.cu v19, H200, 4,096 rows: 438-445 us against 516-519 for cuBLASLt +
  // row_summary; engine B8 x S512 2.014 vs 2.205 ms). The minimum: at 8 rows the kernel is slower (lab: 39.1 vs
  // 36.4 us), and at 128 rows (B1 x S128, after the persistent kernel) the engine was 0.006-0.007 ms slower in two
  // A/B calls of three, though the lab's LM head alone is faster there (37.3 vs 39.4-40.1 us); from 1,024 rows it
  // wins (B8 x S128 0.688 vs 0.723 ms). false: the cooperative kernel (both warpgroups on one tile, the sum in
  // double per logit: exact).
  int lm_head_summary_rows = 1 << 20;
  int lm_head_summary_min_rows = 256;
  bool lm_head_pingpong = true;
  // A decode session's KV cache and workspaces (with their CUDA graphs) kept when it ends, for the next session
  // of the same batch and max_tokens (at most 4 idle sets): its prompt then runs on a captured graph instead of
  // an eager pass and a capture (~2 ms for GPT-2 124M). false: every session allocates and captures its own.
  bool decode_reuse = true;
  // A call's top-1 and row sums written by the summary kernels straight into mapped pinned host memory instead of
  // device buffers that two copies bring back: the graph of a prefill or decode step loses its two device-to-host
  // copy nodes. H200, fp16, 4 alternating rounds: B1 x S128 0.3599 vs 0.3667 ms (every round faster), decode
  // batch 1 3,833 vs 3,723 new tokens/s, B8 x S512 2.038 vs 2.045 (eighteenth session). false: the copies.
  bool mapped_outputs = true;
  // int8: each product's input quantized by the kernel that produces it (the residual + LayerNorm kernels, FC's
  // dequantize + GELU) instead of a quantize kernel of its own, and a prefill's summary / a perplexity pass's NLL
  // read from the LM head's int32 products instead of dequantized logits written and read back. The same bits
  // (tested). false: the separate quantize / dequantize kernels around every product.
  bool int8_fused = true;
  // int8: the calibrated activation scale (amax / 127) of each quantized product's input, by the native engine's
  // linear names ("h.<l>.attn.c_attn", "h.<l>.attn.c_proj", "h.<l>.mlp.c_fc", "h.<l>.mlp.c_proj", "lm_head").
  std::map<std::string, float> int8_activation_scales;
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
  // CUDA graphs captured so far (one per workspace and shape): decode sessions of a shape seen before reuse theirs.
  virtual std::int64_t graphs_captured() const = 0;
};

std::unique_ptr<Engine> make_engine(const Gpt2Config& config, const Gpt2Weights& weights, const EngineOptions& options);

// True when a CUDA device can be used; otherwise why not (no driver, no device, ...).
bool device_available(std::string* why);

// major * 10 + minor of a device (90 for an H100 / H200), 0 when it cannot be asked.
int compute_capability(int device);

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
