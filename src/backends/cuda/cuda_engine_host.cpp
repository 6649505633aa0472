// Host-side helpers of the CUDA engine that need no device (so the tests can check them anywhere).
#include <bit>
#include <cstring>

#include "backends/cuda/cuda_engine.h"

namespace gptbench::cuda_engine {

bool parse_precision(const std::string& name, Precision& out) {
  if (name == "fp32") out = Precision::kFp32;
  else if (name == "tf32") out = Precision::kTf32;
  else if (name == "fp16") out = Precision::kFp16;
  else if (name == "bf16") out = Precision::kBf16;
  else if (name == "int8") out = Precision::kInt8;
  else return false;
  return true;
}

const char* precision_name(Precision p) {
  switch (p) {
    case Precision::kFp32: return "fp32";
    case Precision::kTf32: return "tf32";
    case Precision::kFp16: return "fp16";
    case Precision::kBf16: return "bf16";
    case Precision::kInt8: return "int8";
  }
  return "?";
}

int padded_vocab(int vocab) { return (vocab + 127) / 128 * 128; }

std::uint16_t float_to_bf16_bits(float value) {
  const std::uint32_t u = std::bit_cast<std::uint32_t>(value);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<std::uint16_t>((u >> 16) | 0x40u);  // quiet NaN
  const std::uint32_t rounding = 0x7fffu + ((u >> 16) & 1u);  // round to nearest, ties to even
  return static_cast<std::uint16_t>((u + rounding) >> 16);
}

std::uint16_t float_to_half_bits(float value) {
  const std::uint32_t u = std::bit_cast<std::uint32_t>(value);
  const std::uint32_t sign = (u >> 16) & 0x8000u;
  const std::uint32_t abs = u & 0x7fffffffu;
  if (abs > 0x7f800000u) return static_cast<std::uint16_t>(sign | 0x7e00u);  // NaN
  if (abs >= 0x477ff000u) return static_cast<std::uint16_t>(sign | 0x7c00u);  // rounds to >= 65520: infinity
  if (abs < 0x38800000u) {  // below the smallest normal half (2^-14): subnormal or zero
    if (abs < 0x33000000u) return static_cast<std::uint16_t>(sign);  // < 2^-25 rounds to zero
    const std::uint32_t mant = (abs & 0x7fffffu) | 0x800000u;
    // value = mant * 2^(exp-150); in units of the half subnormal step 2^-24 that is mant >> (126 - exp)
    const int drop = 126 - static_cast<int>(abs >> 23);
    const std::uint32_t kept = mant >> drop;
    const std::uint32_t rem = mant & ((1u << drop) - 1u);
    const std::uint32_t halfway = 1u << (drop - 1);
    std::uint32_t r = kept + ((rem > halfway || (rem == halfway && (kept & 1u))) ? 1u : 0u);
    return static_cast<std::uint16_t>(sign | r);
  }
  // normal: rebias the exponent (127 -> 15), round the mantissa from 23 to 10 bits to nearest even
  std::uint32_t h = ((abs >> 13) - (112u << 10));
  const std::uint32_t rem = abs & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) h += 1;  // may carry into the exponent: still right
  return static_cast<std::uint16_t>(sign | h);
}

}  // namespace gptbench::cuda_engine
