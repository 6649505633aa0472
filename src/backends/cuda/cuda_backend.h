#pragma once
// The native engine on an NVIDIA GPU ("native/cuda/<precision>"): see cuda_engine.h for how it works and
// docs/cuda-engine.md for what was verified on which card.
//
// Precisions: fp32 (true FP32 GEMMs: CUBLAS_COMPUTE_32F, no TF32), tf32, fp16, bf16 (activations, weights and
// logits in 16 bits, every accumulation in float), int8 (W8A8 through cuBLASLt integer GEMMs for the four
// projections of every block and the LM head, fp16 everywhere else; needs option calibration_cache).
// BackendSpec::options understood:
//   "calibration_cache" int8: a .calib file from `gptbench calibrate` made for this model (the runner sets it)
//   "graphs"          "1" (default) CUDA graphs per shape; "0" launches kernel by kernel
//   "gelu_epilogue"   "1": GELU fused into the c_fc GEMM (default for fp16/bf16); "0": bias epilogue + our GELU
//                     kernel with the exact tanh formula (default for fp32/tf32)
//   "gemm_autotune"   "1" (default): time cuBLASLt's candidate algorithms once per GEMM shape and keep the fastest
//   "gemm_tune_l2"    "cold" (default): L2 flushed before each timed candidate call (weights cold, as in a forward);
//                     "hot": calls back to back. With "profile" every candidate's time is printed
//   "attention"       "wgmma" (default): on an H100 / H200 with head size 64, prefill attention on warpgroup MMA
//                     with TMA-fed key / value tiles, elsewhere as "mma"; "mma": FA2-style attention on mma.sync
//                     with register accumulators; "wmma": the older kernel with shared-memory accumulators
//                     (fp16/bf16 only; fp32/tf32 use a CUDA-core kernel)
//   "attention_ksplit" the wgmma kernel with each block's key tiles split between two warpgroups on the same 64
//                     queries, merged at the end: "auto" (default) where the plain grid has fewer blocks than two
//                     per SM and sequences are longer than 256 (B1 x S512, B1 x S1024: measured faster), "0" never,
//                     "1" always
//   "attention_warps" the mma / wmma kernels' blocks: "0" (default): chosen by shape; "1": 16-query blocks; "4":
//                     64-query blocks
//   "gemv_kernels"    "1" (default): decode steps of <= 8 sequences (gemv_max_rows) through fused LayerNorm +
//                     matrix-vector kernels (one persistent kernel, or 5 a layer); "0": cuBLASLt + separate
//                     LayerNorm kernels as in prefill
//   "gemv_max_rows"   the largest decode batch that uses those kernels (1..8; default 8 where the persistent step
//                     runs and for int8, else 4: measured)
//   "gemv_lm_head_max_rows" those decode steps of at most this many sequences (1..8; default 4 in fp16 / bf16,
//                     8 in fp32 / tf32: measured) take ln_f + the LM head as one fused LayerNorm + matrix-vector
//                     kernel; larger ones as the LayerNorm kernel + cuBLASLt's product (not int8)
//   "pdl"             "1": those kernels start early (programmatic dependent launch, Hopper) and wait for their
//                     inputs; "0" (default): plain stream order (PDL measured no faster on an H200)
//   "decode_persistent" "1" (default): those decode steps (not int8, head size 64, <= 8 sequences) run the
//                     embedding and every block in one persistent kernel (grid barriers between phases; the same
//                     bits as the 5-kernel chain); "0": the chain
//   "decode_mma"      "1": in fp16 / bf16, those persistent steps of 5-8 sequences take their products on tensor
//                     cores (mma.sync, a kernel instance of its own); "mproj": the MLP projection alone; "0"
//                     (default; the tensor-core
//                     form measured slower on an H200): CUDA-core products (the chain's bits)
//   "prefill_pdl"     "1": the prefill's LayerNorm and attention kernels as programmatic dependents of the product
//                     before them; "0" (default; measured no faster on an H200, again slower in the twenty-second
//                     session: B8 x S512 2.033 against 2.016 ms)
//   "residual_epilogue" "1" (default, not int8): the attention / MLP projections add into the float residual
//                     stream inside cuBLASLt (beta = 1); "0": a 16-bit product, added by the LayerNorm kernel
//   "residual_16bit"  "1" (default for fp16): fp16 / bf16 prefills through cuBLASLt (more rows than the few-row
//                     paths) keep the residual stream in 16 bits, as PyTorch does; "0" (default for bf16): float
//   "layernorm_rows"  1, 2 (default), 4: the LayerNorm after a residual product with that many rows a warp, w and
//                     b loaded once per warp; "0": one row a warp, w and b loaded after its reductions
//   "fused_layernorm_rows" prefills of at least this many rows (0, default: never) with the 16-bit residual stream
//                     on an H100 / H200, n_embd 768: each projection and the LayerNorm after it in one kernel
//                     (measured slower than cuBLASLt + the LayerNorm kernel on an H200)
//   "wgmma_max_rows"  prefills of at most this many rows (default 128; 0: never) on an H100 / H200 in fp16 / bf16
//                     use the TMA + wgmma products with every kernel a programmatic dependent of the one before
//   "wgmma_tile"      their block shape, rows x columns: 64x32 (default), 128x32, 64x64, 128x64
//   "wgmma_pdl"       "1" (default): the chain's kernels as programmatic dependents; "0": plain stream order
//   "wgmma_lm_head"   "1": their LM head through those kernels too; "0" (default): cuBLASLt
//   "lm_head_summary_rows" logits summaries of at most this many rows (default 1048576; 0: never) on an H100 /
//                     H200 in fp16 / bf16 through the LM head with the top-1 / row-sum summary in its epilogue
//                     instead of cuBLASLt's LM head + the row_summary kernel
//   "lm_head_summary_min_rows" ... of at least this many rows (default 256: fewer go through cuBLASLt, no slower there)
//   "lm_head_pingpong" "1" (default): that LM head as the ping-pong kernel (its summary's sum in float runs of 96
//                     logits, then double); "0": the cooperative kernel (the sum in double per logit)
//   "decode_reuse"    "1" (default): a decode session's KV cache and CUDA graphs go to the next session of the same
//                     batch and max_tokens; "0": each session allocates and captures its own
//   "mapped_outputs"  "1" (default): the top-1 and row sums written by the summary kernels into mapped pinned host
//                     memory (no device-to-host copies in a call's graph); "0": device buffers copied back
//   "int8_fused"      "1" (default): int8 products take their input quantized by the kernel that produces it
//                     (residual + LayerNorm, FC's dequantize + GELU), and the LM head's summary / NLL read its
//                     int32 products directly (no dequantized logits); the same bits as "0": a quantize kernel
//                     before and a dequantize kernel after every product
//   "persistent"      "1" (default): prefills of <= 128 rows on an H100 / H200 in fp16 / bf16 (head size 64) run the
//                     embedding, every block and ln_f in one persistent kernel (grid barriers between phases); "0":
//                     the chain of wgmma kernels
//   "persistent_pairs" "1": that kernel's QKV and FC products as 128 x 64 tiles whose k halves run on the two blocks
//                     of a cluster; "0" (default; measured slower)
//   "persistent_embed" "1" (default): the embedding inside that kernel's first row phase; "0": a kernel before it
//   "persistent_head_flags" "1" (default): that kernel's attention waits for its head's QKV tiles on per-head
//                     counters; "0": a grid barrier after QKV
//   "persistent_lm_head" "1": prefills of <= 128 rows on an H100 / H200 in fp16 / bf16 (n_embd <= 768) run the LM head
//                     and the summary as the persistent kernel's last phases; "0" (default; measured slower)
//   "sync_memset"     "1": a memset node zeroes the persistent kernels' barrier counters before each launch; "0"
//                     (default): the kernels leave them zero themselves (one graph node fewer a call)
//   "profile"         "1": graphs off, per-kernel times printed to stderr when the backend is destroyed
//   "device"          CUDA device index (default 0)
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "backends/backend.h"

namespace gptbench {

struct Gpt2Model;

// True when a CUDA device can run the engine; otherwise *why says what is missing.
bool cuda_device_available(std::string* why);

// Throws Error for an unsupported precision or model shape, or when no device is available.
// The weights are copied to the device: the model may be released afterwards.
std::unique_ptr<Backend> create_cuda_backend(const BackendSpec& spec, const Gpt2Model& model);

// True when `backend` came from create_cuda_backend.
bool is_cuda_backend(const Backend& backend);

// CUDA-event time in milliseconds of the device work of the last prefill / step / score call on this backend
// (or on its decode sessions), excluding the host copies of ids and results. -1 for a non-CUDA backend.
double cuda_last_gpu_ms(const Backend& backend);
// CUDA graphs this backend has captured so far (its prefill shapes, and per decode-session shape: a later session of
// a batch and max_tokens seen before runs on the graphs of the earlier one). -1 for a non-CUDA backend.
std::int64_t cuda_graphs_captured(const Backend& backend);
// Perplexity: evaluate_perplexity (eval/perplexity.h) hands this backend groups of windows; it scores each group's
// windows of equal length in one launch, the NLL computed on the device (CudaBackend::score_windows).

}  // namespace gptbench
