#pragma once
// INT8 matrix products y = x · W + b for the native CPU engine.
//
// W8A8: weights symmetric per output channel (q_w = round(W / s_w[n]), s_w[n] = max_k |W[k][n]| / 127),
// activations symmetric per tensor (q_x = round(x / s_x), s_x = amax / 127, clamped to [-127, 127]),
// int32 accumulation, then y = s_x · s_w[n] · Σ_k q_x q_w + b[n] in float.
// Weight-only: the same int8 weights, float32 activations; the int8 weights are widened to float inside the
// kernel (the per-channel scale is applied once per output, after the sum).
//
// Kernels: AVX-512 VNNI (vpdpbusd: u8 × s8 → s32; activations are stored as q_x + 128 and the 128 · Σ_k q_w
// term is subtracted per column afterwards) when the CPU has it, chosen at run time, and an AVX2 fallback
// (vpsignb + vpmaddubsw + vpmaddwd, exact because |q| <= 127 keeps the int16 pair sums from saturating).
#include <cstdint>
#include <string>
#include <vector>

namespace gptbench {

enum class Int8Isa { kAuto, kAvx512Vnni, kAvx2 };

Int8Isa best_int8_isa();              // what this CPU runs (kAvx512Vnni or kAvx2)
std::string int8_isa_name(Int8Isa isa);  // "avx512-vnni", "avx2"
bool int8_isa_supported(Int8Isa isa);
// Whether this CPU has a VNNI dot-product instruction (AVX512-VNNI or AVX-VNNI), which adds u8 x s8 products into
// int32. Without it, x86 int8 kernels (ONNX Runtime's among them) use vpmaddubsw, whose pair sums saturate at int16.
bool cpu_has_vnni();

// OpenMP threads a kernel uses when asked for `requested` (<= 0: all of them).
int resolve_int8_threads(int requested);

// Output columns per packed panel: four 16-lane int32/float vectors.
inline constexpr int kInt8PanelWidth = 64;

// Weights quantized per output channel, in plain [in, out] order: the form tests and exporters read.
struct PerChannelInt8 {
  std::int64_t in = 0, out = 0;
  std::vector<std::int8_t> q;   // [in, out] row-major, values in [-127, 127]
  std::vector<float> scales;    // [out]; 1 for an all-zero column
};

// w is [in, out] row-major, or [out, in] when transposed (the tied LM head).
PerChannelInt8 quantize_per_output_channel(const float* w, std::int64_t in, std::int64_t out, bool transposed);

// W8A8 packing: panel p (columns 64p..64p+63) holds, for every group of 4 inputs k4, four 64-byte blocks (16
// columns × 4 consecutive inputs), the operand order of vpdpbusd. Columns past `out` and inputs past `in` are 0.
struct PackedW8A8 {
  std::int64_t in = 0, out = 0;
  std::int64_t in_padded = 0;  // in rounded up to 4
  std::int64_t panels = 0;     // ceil(out / 64)
  std::vector<std::int8_t> data;        // panels * in_padded * 64
  std::vector<float> scales;            // [panels * 64], 0 past out
  std::vector<std::int32_t> compensation;  // [panels * 64]: 128 · Σ_k q[k][n] (the u8 offset of activations)
};
PackedW8A8 pack_w8a8(const PerChannelInt8& weights);

// Weight-only packing: panel p holds, for every input k, the 64 int8 weights of its columns.
struct PackedWeightOnly {
  std::int64_t in = 0, out = 0;
  std::int64_t panels = 0;
  std::vector<std::int8_t> data;  // panels * in * 64
  std::vector<float> scales;      // [panels * 64], 0 past out
};
PackedWeightOnly pack_weight_only(const PerChannelInt8& weights);

// Largest |x| over n values.
float max_abs(const float* x, std::int64_t n);

// Activation quantization: out[r][k] = clamp(round(x[r][k] / scale), -127, 127) + 128 for k < in, 128 (= 0) for
// in <= k < in_padded. rows × in_padded bytes.
void quantize_activations_u8(const float* x, std::int64_t rows, std::int64_t in, std::int64_t in_padded, float scale,
                             std::uint8_t* out);

// y[rows, out] = dequant(x quantized with activation_scale) · W + bias. activation_scale <= 0: the scale is taken
// from this call's own max |x| (dynamic). bias may be null. threads <= 0: all of the pool.
void gemm_w8a8(const float* x, std::int64_t rows, const PackedW8A8& w, float activation_scale, const float* bias,
               float* y, int threads = 0, Int8Isa isa = Int8Isa::kAuto);

// The same product from already quantized activations (rows × in_padded bytes, as quantize_activations_u8).
void gemm_w8a8_u8(const std::uint8_t* xq, std::int64_t rows, const PackedW8A8& w, float activation_scale,
                  const float* bias, float* y, int threads = 0, Int8Isa isa = Int8Isa::kAuto);

// y[rows, out] = x · dequant(W) + bias, float32 activations.
void gemm_weight_only(const float* x, std::int64_t rows, const PackedWeightOnly& w, const float* bias, float* y,
                      int threads = 0, Int8Isa isa = Int8Isa::kAuto);

}  // namespace gptbench
