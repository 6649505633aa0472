#pragma once
// INT8 ONNX export in QDQ form: the GPT-2 graph of export/onnx_export.h with every weight matrix product written as
//
//   x ─QuantizeLinear(s_x, 128:u8)─DequantizeLinear(s_x, 128)─┐
//                                                             MatMul ─ Add(bias, float32) ─ y
//   W_q int8 [in, out] ─DequantizeLinear(s_w[out], 0, axis=1)─┘
//
// so that ONNX Runtime's CPU QDQ transformer replaces each group with an integer kernel (MatMulIntegerToFloat:
// uint8 activations × int8 weights, int32 accumulation, float32 output with the scales and bias applied). The
// same numbers as the native engine's W8A8 (quant/int8_linear.h):
//   - weights symmetric per output channel (quantize_per_output_channel: s_w[n] = max_k |W[k][n]| / 127, values
//     in [-127, 127]), stored as int8 initializers, zero points 0;
//   - activations per tensor with the calibration cache's scale s_x = amax / 127. They are written as uint8 with
//     zero point 128 — the operand order ONNX Runtime's x86 integer kernels (u8 × s8, as VNNI's vpdpbusd) run
//     fastest and the QDQ default of its own quantization tool — which is symmetric int8 shifted by 128: values
//     map to round(x / s_x) clamped to [-128, 127] (native clamps at -127; only x ≤ -127.5·s_x differs).
//
// The tied embedding / LM head matrix (wte [vocab, C]) is stored once, as int8 [C, vocab] with one scale per
// vocabulary row (= per LM-head output channel): the LM head reads it through DequantizeLinear(axis=1) like any
// other weight, and the token embedding gathers its columns (Gather axis=1 → Cast → Transpose → × the row's
// scale), so the embedding lookup returns the int8-rounded rows. The file therefore holds ≈ 1 byte per matrix and
// embedding parameter; what stays float32: the position embeddings (wpe), LayerNorm weights, biases, the scales.
//
// Everything else computes in float32 (see onnx_int8_floating_point_ops()).
#include <string>
#include <vector>

#include "export/onnx_export.h"

namespace gptbench {

struct CalibrationTable;

struct OnnxQdqOptions {
  // true: the tied wte is stored once, in int8, and the token embedding reads its int8 rows (≈ 1 byte per
  // parameter). false: the embedding gathers from a float32 wte and the LM head gets its own int8 copy (the same
  // embeddings as the native W8A8 engine, ≈ 4 bytes per embedding parameter + 1 for the copy).
  bool int8_embedding = true;
};

// Sets options.precision = "int8" and the hooks (matmul_hook, embedding_hook) that write the QDQ graph with the
// activation scales of `table`; the table is copied. export_onnx then throws Error naming a linear the table
// lacks ("calibration table: no entry for h.3.mlp.c_fc").
void enable_int8_qdq(OnnxExportOptions& options, const CalibrationTable& table, const OnnxQdqOptions& qdq = {});

// export_onnx with the hooks above (options.with_past etc. are kept; precision and hooks are set here).
OnnxExportResult export_onnx_int8_qdq(const Gpt2Model& model, const CalibrationTable& table,
                                      OnnxExportOptions options, const std::string& out_path,
                                      const OnnxQdqOptions& qdq = {});

// What stays floating point in the QDQ graph, as ONNX Runtime CPU runs it (for BackendDescription).
std::vector<std::string> onnx_int8_floating_point_ops();

}  // namespace gptbench
