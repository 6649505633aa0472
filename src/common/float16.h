#pragma once
// IEEE 754 binary16 and bfloat16 <-> binary32 on the host, rounding to nearest even: checkpoint storage, FP16
// ONNX initializers, and float16 outputs read back from ONNX Runtime.
#include <cstdint>

namespace gptbench {

float half_to_float(std::uint16_t h);
std::uint16_t float_to_half(float f);  // round to nearest even; past 65504 -> infinity
float bf16_to_float(std::uint16_t b);
std::uint16_t float_to_bf16(float f);  // round to nearest even

}  // namespace gptbench
