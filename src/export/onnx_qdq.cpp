#include "export/onnx_qdq.h"

#include <cstdint>
#include <map>
#include <memory>

#include "common/error.h"
#include "model/weights.h"
#include "quant/calibration.h"
#include "quant/int8_gemm.h"

namespace gptbench {
namespace {

// The activation zero point: uint8 128 makes the uint8 code symmetric int8 shifted by 128 (see the header).
constexpr std::uint8_t kActivationZeroPoint = 128;

// One int8 weight matrix in the graph: [in, out] int8, [out] float32 scales, [out] int8 zero points (all 0).
struct Int8Initializers {
  std::string q, scales, zero_points;
};

// State shared by the hooks of one export: the table, and the int8 matrices already written (the tied wte is
// quantized once, for the embedding, and read again by the LM head).
struct QdqState {
  CalibrationTable table;
  std::map<const Tensor*, Int8Initializers> written;
};

Int8Initializers write_int8_weight(QdqState& state, const Tensor& weight, bool transposed, const std::string& hint,
                                   OnnxGraphWriter& graph) {
  if (auto it = state.written.find(&weight); it != state.written.end()) return it->second;
  if (weight.shape.size() != 2) throw Error("export int8: weight " + hint + " is not a matrix");
  // [in, out] as MatMul reads it; the tied wte [vocab, C] becomes [C, vocab] (one scale per vocabulary row).
  const std::int64_t in = transposed ? weight.shape[1] : weight.shape[0];
  const std::int64_t out = transposed ? weight.shape[0] : weight.shape[1];
  const PerChannelInt8 q = quantize_per_output_channel(weight.ptr(), in, out, transposed);
  const std::vector<std::int8_t> zeros(static_cast<std::size_t>(out), 0);
  Int8Initializers names;
  names.q = graph.add_initializer(hint + ".int8", OnnxDataType::kInt8, {in, out}, q.q.data(), q.q.size());
  names.scales = graph.add_initializer(hint + ".scale", OnnxDataType::kFloat32, {out}, q.scales.data(),
                                       q.scales.size() * sizeof(float));
  names.zero_points = graph.add_initializer(hint + ".zero_point", OnnxDataType::kInt8, {out}, zeros.data(), zeros.size());
  state.written.emplace(&weight, names);
  return names;
}

std::string float_scalar(OnnxGraphWriter& graph, const std::string& hint, float value) {
  return graph.add_initializer(hint, OnnxDataType::kFloat32, {}, &value, sizeof(value));
}

// x → Q → DQ, W_q → DQ, MatMul, + bias: the group ONNX Runtime's QDQ transformer turns into MatMulIntegerToFloat.
bool write_qdq_matmul(QdqState& state, const OnnxMatMulSite& site, OnnxGraphWriter& graph) {
  const std::string& n = site.linear_name;
  float scale = state.table.scale(n);  // Error naming the linear when the table lacks it
  // An input that was all zeros during calibration: any positive scale represents it; 0 would divide by zero.
  if (!(scale > 0.0f)) scale = 1.0f;
  const std::string s_x = float_scalar(graph, n + ".input.scale", scale);
  const std::uint8_t zp = kActivationZeroPoint;
  const std::string z_x = graph.add_initializer(n + ".input.zero_point", OnnxDataType::kUInt8, {}, &zp, 1);
  const std::string x_q = graph.fresh_name(n + ".input.quantized");
  graph.add_node("QuantizeLinear", {site.input, s_x, z_x}, {x_q}, {}, n + ".input.QuantizeLinear");
  const std::string x_dq = graph.fresh_name(n + ".input.dequantized");
  graph.add_node("DequantizeLinear", {x_q, s_x, z_x}, {x_dq}, {}, n + ".input.DequantizeLinear");

  // The tied LM head finds wte already written by the embedding hook.
  const Int8Initializers w = write_int8_weight(state, *site.weight, site.transposed_weight,
                                               n == "lm_head" ? "lm_head.weight" : "transformer." + n + ".weight", graph);
  const std::string w_dq = graph.fresh_name(n + ".weight.dequantized");
  graph.add_node("DequantizeLinear", {w.q, w.scales, w.zero_points}, {w_dq}, {{"axis", std::int64_t{1}}},
                 n + ".weight.DequantizeLinear");
  if (!site.bias) {
    graph.add_node("MatMul", {x_dq, w_dq}, {site.output}, {}, n + ".MatMul");
    return true;
  }
  const std::string product = graph.fresh_name(n + ".MatMul.out");
  graph.add_node("MatMul", {x_dq, w_dq}, {product}, {}, n + ".MatMul");
  const std::string b = graph.add_initializer("transformer." + n + ".bias", OnnxDataType::kFloat32, site.bias->shape,
                                              site.bias->ptr(), site.bias->data.size() * sizeof(float));
  graph.add_node("Add", {product, b}, {site.output}, {}, n + ".Add");
  return true;
}

// The token embedding from the int8 [C, vocab] matrix: columns gathered by id, widened, put back to [B, S, C] and
// multiplied by their row's scale — exactly the dequantized rows of wte.
std::string write_int8_embedding(QdqState& state, const Tensor& wte, const std::string& ids, OnnxGraphWriter& graph) {
  const Int8Initializers w = write_int8_weight(state, wte, /*transposed=*/true, "transformer.wte.weight", graph);
  auto node = [&](const std::string& op, const std::vector<std::string>& inputs, const std::string& hint,
                  const std::vector<OnnxAttribute>& attributes = {}) {
    const std::string out = graph.fresh_name(hint);
    graph.add_node(op, inputs, {out}, attributes, hint);
    return out;
  };
  const std::string columns = node("Gather", {w.q, ids}, "embed.tokens.int8", {{"axis", std::int64_t{1}}});  // [C,B,S]
  const std::string widened = node("Cast", {columns}, "embed.tokens.cast", {{"to", std::int64_t{1}}});  // FLOAT
  const std::string rows = node("Transpose", {widened}, "embed.tokens.rows",
                                {{"perm", std::vector<std::int64_t>{1, 2, 0}}});  // [B,S,C]
  const std::string scales = node("Gather", {w.scales, ids}, "embed.tokens.scale", {{"axis", std::int64_t{0}}});
  const std::int64_t last_axis = -1;
  const std::string axes = graph.add_initializer("const.embed_scale_axes", OnnxDataType::kInt64, {1}, &last_axis,
                                                 sizeof(last_axis));
  const std::string column = node("Unsqueeze", {scales, axes}, "embed.tokens.scale_column");  // [B,S,1]
  return node("Mul", {rows, column}, "embed.tokens");
}

}  // namespace

void enable_int8_qdq(OnnxExportOptions& options, const CalibrationTable& table, const OnnxQdqOptions& qdq) {
  auto state = std::make_shared<QdqState>();
  state->table = table;
  options.precision = "int8";
  options.matmul_hook = [state](const OnnxMatMulSite& site, OnnxGraphWriter& graph) {
    if (graph.compute_type() != OnnxDataType::kFloat32) throw Error("export int8: the QDQ graph computes in float32");
    return write_qdq_matmul(*state, site, graph);
  };
  options.embedding_hook = nullptr;
  if (qdq.int8_embedding)
    options.embedding_hook = [state](const Tensor& wte, const std::string& ids, OnnxGraphWriter& graph) {
      return write_int8_embedding(*state, wte, ids, graph);
    };
}

OnnxExportResult export_onnx_int8_qdq(const Gpt2Model& model, const CalibrationTable& table,
                                      OnnxExportOptions options, const std::string& out_path,
                                      const OnnxQdqOptions& qdq) {
  enable_int8_qdq(options, table, qdq);
  return export_onnx(model, options, out_path);
}

std::vector<std::string> onnx_int8_floating_point_ops() {
  return {"token embedding: int8 rows of the tied wte, dequantized (× per-row scale) to float32",
          "position embeddings (wpe, float32)",
          "LayerNorm (ln_1, ln_2, ln_f)",
          "attention: Q·Kᵀ, scaling, causal mask, softmax, weighted sum of V",
          "GELU, residual additions, bias additions",
          "QuantizeLinear of each projection input (float32 → uint8) and the float32 output scaling of "
          "MatMulIntegerToFloat",
          "log-softmax of perplexity (on the host, double)"};
}

}  // namespace gptbench
