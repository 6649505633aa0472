#pragma once
// ONNX export of a loaded GPT-2 checkpoint, written from C++ through Debian's libonnx (protobuf), so that
// comparing backends needs no Python.
//
// The graph is built node by node from the weights (no tracing): opset 17, input `input_ids` int64 [batch, seq]
// with dynamic axes, output `logits` [batch, seq, vocab]. The LM head reuses the embedding initializer
// (Gemm with transB), so the file holds every parameter once: ≈ 4 bytes x parameters in FP32.
//
// The decoder-with-past variant adds, per layer i, inputs `past_key_values.<i>.key|value`
// [batch, n_head, past_seq, head_dim] and outputs `present.<i>.key|value` [batch, n_head, past_seq + seq,
// head_dim]; positions start at past_seq and the causal mask covers past + current keys. A first call passes
// past tensors with past_seq = 0.
//
// Precisions:
//   fp32  weights and compute in float32.
//   fp16  weights stored in float16 and the whole graph typed float16 (embeddings, LayerNorm with a float32
//         stash, attention, GELU, logits); `input_ids` stays int64 and `logits` is float16. This is the graph a
//         GPU execution provider runs in half precision. On ONNX Runtime's CPU provider, operators without a
//         float16 kernel get float32 casts inserted around them by ONNX Runtime itself (see docs/onnx.md).
//   int8  a float32 graph whose matrix products are QuantizeLinear/DequantizeLinear groups over int8 weights,
//         written by the hooks of export/onnx_qdq.h (export_onnx_int8_qdq); an error without them.
//
// Every file is validated before it is returned: onnx::checker::check_model (full model check) followed by
// strict shape inference. Models whose weights exceed 2 GB (protobuf's limit) are written with external data
// (`<file>.data` beside the .onnx).
#include <cstdint>
#include <functional>
#include <string>
#include <variant>
#include <vector>

namespace gptbench {

struct Gpt2Model;
struct Tensor;

// A minimal, protobuf-free view of the graph being built, handed to the MatMul hook so another module (INT8
// QDQ export) can emit its own nodes without depending on libonnx.
enum class OnnxDataType { kFloat32, kFloat16, kInt8, kUInt8, kInt32, kInt64 };

struct OnnxAttribute {
  std::string name;
  std::variant<std::int64_t, float, std::string, std::vector<std::int64_t>, std::vector<float>> value;
};

class OnnxGraphWriter {
 public:
  virtual ~OnnxGraphWriter() = default;
  // Adds a node; returns its name (made unique from `name_hint`).
  virtual std::string add_node(const std::string& op_type, const std::vector<std::string>& inputs,
                               const std::vector<std::string>& outputs, const std::vector<OnnxAttribute>& attributes,
                               const std::string& name_hint) = 0;
  // Adds an initializer from raw little-endian bytes of `type` at `shape`; returns its (unique) name.
  virtual std::string add_initializer(const std::string& name_hint, OnnxDataType type,
                                      const std::vector<std::int64_t>& shape, const void* data, std::size_t bytes) = 0;
  // A fresh value name for an intermediate tensor.
  virtual std::string fresh_name(const std::string& hint) = 0;
  virtual OnnxDataType compute_type() const = 0;  // float32 or float16: the type of activations
};

// One matrix product y = x · W + b of the model (W in GPT-2's Conv1D layout [in, out]; the tied LM head has
// weight = wte [vocab, C] with transposed_weight = true).
struct OnnxMatMulSite {
  std::string linear_name;     // "h.<i>.attn.c_attn", "h.<i>.attn.c_proj", "h.<i>.mlp.c_fc", "h.<i>.mlp.c_proj", "lm_head"
  std::string input;           // activation, compute_type, [..., in]
  std::string output;          // the name the rest of the graph reads: [..., out], compute_type, bias included
  const Tensor* weight = nullptr;
  const Tensor* bias = nullptr;  // null for the LM head
  bool transposed_weight = false;
  // The tied LM head: the name of the embedding initializer already in the graph (in the compute type), which a
  // hook may read instead of storing the matrix a second time. Empty for the other sites, and when an embedding
  // hook replaced the float matrix.
  std::string existing_weight_initializer;
};

// Called for every matrix product. Returns true when it wrote nodes producing site.output itself (e.g.
// QuantizeLinear/DequantizeLinear around the weight and activation); false lets the exporter write its
// default MatMul (+ Add) with the weight as an initializer.
using OnnxMatMulHook = std::function<bool(const OnnxMatMulSite& site, OnnxGraphWriter& graph)>;

// Called once for the token embedding, before any matrix product: returns the name of the [batch, seq, C]
// tensor (compute type) it wrote from `input_ids` (int64 [batch, seq]) and `wte` [vocab, C], or "" for the
// default Gather on a float wte initializer. When both hooks take over wte (INT8 QDQ), the float matrix is not
// stored at all.
using OnnxEmbeddingHook =
    std::function<std::string(const Tensor& wte, const std::string& input_ids, OnnxGraphWriter& graph)>;

struct OnnxExportOptions {
  std::string precision = "fp32";  // fp32 | fp16 | int8 (float32 graph; needs the QDQ hooks: export/onnx_qdq.h)
  bool with_past = false;          // decoder-with-past variant
  int opset = 17;
  // "auto": external data only when the weights exceed 2 GB; "always" / "never" force it.
  std::string external_data = "auto";
  OnnxMatMulHook matmul_hook;      // empty: plain MatMul for every projection
  OnnxEmbeddingHook embedding_hook;  // empty: Gather on the float wte initializer
  std::string producer = "gptbench";
};

struct OnnxExportResult {
  std::string path;                 // the .onnx file
  std::string external_data_path;   // empty when the weights are inside the .onnx
  std::int64_t bytes = 0;           // .onnx plus external data
  std::int64_t node_count = 0;
  std::int64_t initializer_count = 0;
  bool checker_passed = false;      // check_model + strict shape inference both passed
  std::string check_message;        // "ok" or the checker's message
  double seconds = 0.0;
};

// Builds, validates and writes the graph. Throws Error when the precision is unknown, the file cannot be
// written, or the checker rejects the graph (the file is then removed, never left looking valid).
OnnxExportResult export_onnx(const Gpt2Model& model, const OnnxExportOptions& options, const std::string& out_path);

// Validates an existing .onnx file the same way (checker + strict shape inference).
// Returns false and fills `message` when it fails; never throws for a bad file.
bool check_onnx_file(const std::string& path, std::string& message);

// Node counts by op type ("MatMul" -> 12, "com.microsoft.Attention" -> 4: non-default domains prefix the op)
// of an .onnx file (e.g. ONNX Runtime's saved optimised graph). Throws Error for an unreadable file.
std::vector<std::pair<std::string, std::int64_t>> onnx_op_counts(const std::string& path);

}  // namespace gptbench
