#include "export/onnx_export.h"

#include <unistd.h>

#include <onnx/checker.h>
#include <onnx/onnx_pb.h>
#include <onnx/shape_inference/implementation.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <numbers>
#include <unordered_map>

#include "common/error.h"
#include "common/float16.h"
#include "model/checkpoint.h"

namespace gptbench {
namespace {

namespace fs = std::filesystem;

// Protobuf cannot serialise a message above 2 GiB; keep a margin for the graph itself.
constexpr std::int64_t kExternalDataThreshold = 2'000'000'000;
// Initializers at least this large go to the external data file when external data is used.
constexpr std::size_t kExternalMinBytes = 1024;

int onnx_type(OnnxDataType t) {
  switch (t) {
    case OnnxDataType::kFloat32: return onnx::TensorProto::FLOAT;
    case OnnxDataType::kFloat16: return onnx::TensorProto::FLOAT16;
    case OnnxDataType::kInt8: return onnx::TensorProto::INT8;
    case OnnxDataType::kUInt8: return onnx::TensorProto::UINT8;
    case OnnxDataType::kInt32: return onnx::TensorProto::INT32;
    case OnnxDataType::kInt64: return onnx::TensorProto::INT64;
  }
  return onnx::TensorProto::UNDEFINED;
}

// The graph under construction: unique names, nodes, initializers, and the few helpers the GPT-2 builder uses.
class GraphBuilder final : public OnnxGraphWriter {
 public:
  GraphBuilder(onnx::GraphProto& graph, OnnxDataType compute) : graph_(graph), compute_(compute) {}

  std::string add_node(const std::string& op_type, const std::vector<std::string>& inputs,
                       const std::vector<std::string>& outputs, const std::vector<OnnxAttribute>& attributes,
                       const std::string& name_hint) override {
    onnx::NodeProto* node = graph_.add_node();
    const std::string name = unique(name_hint.empty() ? op_type : name_hint);
    node->set_name(name);
    node->set_op_type(op_type);
    for (const auto& in : inputs) node->add_input(in);
    for (const auto& out : outputs) node->add_output(out);
    for (const auto& a : attributes) set_attribute(*node->add_attribute(), a);
    return name;
  }

  std::string add_initializer(const std::string& name_hint, OnnxDataType type, const std::vector<std::int64_t>& shape,
                              const void* data, std::size_t bytes) override {
    onnx::TensorProto* t = graph_.add_initializer();
    const std::string name = unique(name_hint);
    t->set_name(name);
    t->set_data_type(onnx_type(type));
    for (auto d : shape) t->add_dims(d);
    t->set_raw_data(data, bytes);
    return name;
  }

  std::string fresh_name(const std::string& hint) override { return unique(hint); }
  OnnxDataType compute_type() const override { return compute_; }

  // One-output node; returns the output's name.
  std::string op(const std::string& op_type, const std::vector<std::string>& inputs, const std::string& hint,
                 const std::vector<OnnxAttribute>& attributes = {}) {
    const std::string out = unique(hint);
    add_node(op_type, inputs, {out}, attributes, hint);
    return out;
  }

  std::string int64s(const std::string& hint, const std::vector<std::int64_t>& values, bool scalar = false) {
    std::vector<std::int64_t> shape;
    if (!scalar) shape.push_back(static_cast<std::int64_t>(values.size()));
    return add_initializer(hint, OnnxDataType::kInt64, shape, values.data(), values.size() * sizeof(std::int64_t));
  }

  // A scalar in the compute type.
  std::string scalar(const std::string& hint, float value) {
    if (compute_ == OnnxDataType::kFloat16) {
      const std::uint16_t h = float_to_half(value);
      return add_initializer(hint, OnnxDataType::kFloat16, {}, &h, sizeof h);
    }
    return add_initializer(hint, OnnxDataType::kFloat32, {}, &value, sizeof value);
  }

  // A model tensor in the compute type (float16 weights are rounded to nearest even).
  std::string weight(const std::string& name, const Tensor& t) {
    if (compute_ == OnnxDataType::kFloat16) {
      std::vector<std::uint16_t> h(t.data.size());
      for (std::size_t i = 0; i < h.size(); ++i) h[i] = float_to_half(t.data[i]);
      return add_initializer(name, OnnxDataType::kFloat16, t.shape, h.data(), h.size() * 2);
    }
    return add_initializer(name, OnnxDataType::kFloat32, t.shape, t.data.data(), t.data.size() * sizeof(float));
  }

  void input(const std::string& name, int elem_type, const std::vector<std::variant<std::int64_t, std::string>>& dims) {
    describe(*graph_.add_input(), name, elem_type, dims);
  }
  void output(const std::string& name, int elem_type, const std::vector<std::variant<std::int64_t, std::string>>& dims) {
    describe(*graph_.add_output(), name, elem_type, dims);
  }

  // Reserves a name that graph inputs/outputs use verbatim.
  void reserve(const std::string& name) { used_[name] = 1; }

 private:
  std::string unique(const std::string& hint) {
    auto [it, inserted] = used_.try_emplace(hint, 1);
    if (inserted) return hint;
    for (;;) {
      std::string candidate = hint + "_" + std::to_string(it->second++);
      if (used_.try_emplace(candidate, 1).second) return candidate;
    }
  }

  static void describe(onnx::ValueInfoProto& v, const std::string& name, int elem_type,
                       const std::vector<std::variant<std::int64_t, std::string>>& dims) {
    v.set_name(name);
    auto* tensor = v.mutable_type()->mutable_tensor_type();
    tensor->set_elem_type(elem_type);
    auto* shape = tensor->mutable_shape();
    for (const auto& d : dims) {
      auto* dim = shape->add_dim();
      if (std::holds_alternative<std::int64_t>(d)) dim->set_dim_value(std::get<std::int64_t>(d));
      else dim->set_dim_param(std::get<std::string>(d));
    }
  }

  static void set_attribute(onnx::AttributeProto& a, const OnnxAttribute& src) {
    a.set_name(src.name);
    std::visit(
        [&](const auto& v) {
          using V = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<V, std::int64_t>) {
            a.set_type(onnx::AttributeProto::INT);
            a.set_i(v);
          } else if constexpr (std::is_same_v<V, float>) {
            a.set_type(onnx::AttributeProto::FLOAT);
            a.set_f(v);
          } else if constexpr (std::is_same_v<V, std::string>) {
            a.set_type(onnx::AttributeProto::STRING);
            a.set_s(v);
          } else if constexpr (std::is_same_v<V, std::vector<std::int64_t>>) {
            a.set_type(onnx::AttributeProto::INTS);
            for (auto x : v) a.add_ints(x);
          } else {
            a.set_type(onnx::AttributeProto::FLOATS);
            for (auto x : v) a.add_floats(x);
          }
        },
        src.value);
  }

  onnx::GraphProto& graph_;
  OnnxDataType compute_;
  std::unordered_map<std::string, int> used_;
};

// y = x · W + b for one projection, through the hook when it takes the site.
std::string matmul(GraphBuilder& g, const OnnxExportOptions& options, const std::string& linear_name,
                   const std::string& x, const Tensor& weight, const Tensor* bias, const std::string& weight_name,
                   const std::string& bias_name) {
  OnnxMatMulSite site;
  site.linear_name = linear_name;
  site.input = x;
  site.output = g.fresh_name(linear_name + ".out");
  site.weight = &weight;
  site.bias = bias;
  if (options.matmul_hook && options.matmul_hook(site, g)) return site.output;
  const std::string w = g.weight(weight_name, weight);
  if (!bias) {
    g.add_node("MatMul", {x, w}, {site.output}, {}, linear_name + ".MatMul");
    return site.output;
  }
  const std::string product = g.op("MatMul", {x, w}, linear_name + ".MatMul");
  const std::string b = g.weight(bias_name, *bias);
  g.add_node("Add", {product, b}, {site.output}, {}, linear_name + ".Add");
  return site.output;
}

std::string layer_norm(GraphBuilder& g, const std::string& x, const Tensor& w, const Tensor& b, const std::string& name,
                       double epsilon) {
  const std::string scale = g.weight(name + ".weight", w);
  const std::string bias = g.weight(name + ".bias", b);
  // stash_type 1: mean and variance in float32 even for a float16 graph.
  return g.op("LayerNormalization", {x, scale, bias}, name,
              {{"axis", std::int64_t{-1}}, {"epsilon", static_cast<float>(epsilon)}, {"stash_type", std::int64_t{1}}});
}

// GPT-2's gelu_new: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))), written as Hugging Face computes it (a pattern
// ONNX Runtime's optimiser recognises and fuses).
std::string gelu_new(GraphBuilder& g, const std::string& x, const std::string& p) {
  const std::string cube = g.op("Pow", {x, g.scalar(p + ".three", 3.0f)}, p + ".pow");
  const std::string scaled = g.op("Mul", {cube, g.scalar(p + ".c", 0.044715f)}, p + ".mul_c");
  const std::string inner = g.op("Add", {x, scaled}, p + ".add_x");
  const float sqrt_2_over_pi = static_cast<float>(std::sqrt(2.0 / std::numbers::pi));
  const std::string arg = g.op("Mul", {inner, g.scalar(p + ".sqrt_2_over_pi", sqrt_2_over_pi)}, p + ".mul_s");
  const std::string t = g.op("Tanh", {arg}, p + ".tanh");
  const std::string one_plus = g.op("Add", {t, g.scalar(p + ".one", 1.0f)}, p + ".add_1");
  const std::string half_x = g.op("Mul", {x, g.scalar(p + ".half", 0.5f)}, p + ".mul_half");
  return g.op("Mul", {half_x, one_plus}, p + ".gelu");
}

void build_gpt2_graph(const Gpt2Model& model, const OnnxExportOptions& options, GraphBuilder& g) {
  const Gpt2Config& c = model.config;
  const Gpt2Weights& w = model.weights;
  const std::int64_t C = c.n_embd, H = c.n_head, D = c.head_dim(), V = c.vocab_size;
  const int act_type = onnx_type(g.compute_type());
  const bool fp16 = g.compute_type() == OnnxDataType::kFloat16;

  g.reserve("input_ids");
  g.reserve("logits");
  g.input("input_ids", onnx::TensorProto::INT64, {std::string("batch"), std::string("sequence")});
  if (options.with_past) {
    for (int i = 0; i < c.n_layer; ++i) {
      for (const char* kv : {"key", "value"}) {
        const std::string past = "past_key_values." + std::to_string(i) + "." + kv;
        const std::string present = "present." + std::to_string(i) + "." + kv;
        g.reserve(past);
        g.reserve(present);
        g.input(past, act_type, {std::string("batch"), H, std::string("past_sequence"), D});
      }
    }
  }

  // Positions run from past_seq to past_seq + seq: the past length is the key cache's dimension 2.
  const std::string zero = g.int64s("const.zero", {0}, true);
  const std::string one = g.int64s("const.one", {1}, true);
  const std::string ids_shape = g.op("Shape", {"input_ids"}, "input_ids.shape");
  const std::string seq_len = g.op("Gather", {ids_shape, one}, "seq_len", {{"axis", std::int64_t{0}}});
  std::string past_len = zero;
  if (options.with_past) {
    const std::string past_shape = g.op("Shape", {"past_key_values.0.key"}, "past.shape");
    past_len = g.op("Gather", {past_shape, g.int64s("const.two", {2}, true)}, "past_len", {{"axis", std::int64_t{0}}});
  }
  const std::string total_len = g.op("Add", {past_len, seq_len}, "total_len");
  const std::string positions = g.op("Range", {past_len, total_len, one}, "position_ids");

  // The float wte initializer is written on first use: an embedding hook (INT8) may make it unnecessary.
  std::string wte;
  auto wte_initializer = [&] {
    if (wte.empty()) wte = g.weight("transformer.wte.weight", w.wte);
    return wte;
  };
  std::string tok = options.embedding_hook ? options.embedding_hook(w.wte, "input_ids", g) : std::string();
  if (tok.empty()) tok = g.op("Gather", {wte_initializer(), "input_ids"}, "embed.tokens", {{"axis", std::int64_t{0}}});
  const std::string wpe = g.weight("transformer.wpe.weight", w.wpe);
  const std::string pos = g.op("Gather", {wpe, positions}, "embed.positions", {{"axis", std::int64_t{0}}});
  std::string x = g.op("Add", {tok, pos}, "embed");

  // The causal mask, once for all layers: query at absolute position p may see keys 0..p.
  const std::string key_positions = g.op("Range", {zero, total_len, one}, "key_positions");
  const std::string query_column = g.op("Unsqueeze", {positions, g.int64s("const.axis1", {1})}, "query_positions");
  const std::string future = g.op("Greater", {key_positions, query_column}, "causal_future");  // [S, T] bool
  // The most negative finite value, as Hugging Face masks (softmax then gives exactly 0 to future keys).
  const std::string masked_value = g.scalar("const.mask_value", fp16 ? -65504.0f : -3.4028234663852886e38f);
  const std::string inv_scale = g.scalar("const.attn_scale", static_cast<float>(std::sqrt(static_cast<double>(D))));

  const std::string heads_shape = g.int64s("const.heads_shape", {0, 0, H, D});
  const std::string merged_shape = g.int64s("const.merged_shape", {0, 0, C});
  const std::string split_sizes = g.int64s("const.qkv_split", {C, C, C});

  for (int i = 0; i < c.n_layer; ++i) {
    const LayerWeights& l = w.layers[static_cast<std::size_t>(i)];
    const std::string p = "h." + std::to_string(i);
    const std::string tp = "transformer." + p;

    const std::string h1 = layer_norm(g, x, l.ln_1_weight, l.ln_1_bias, tp + ".ln_1", c.layer_norm_epsilon);
    const std::string qkv = matmul(g, options, p + ".attn.c_attn", h1, l.c_attn_weight, &l.c_attn_bias,
                                   tp + ".attn.c_attn.weight", tp + ".attn.c_attn.bias");
    const std::string q_flat = g.fresh_name(p + ".q"), k_flat = g.fresh_name(p + ".k"), v_flat = g.fresh_name(p + ".v");
    g.add_node("Split", {qkv, split_sizes}, {q_flat, k_flat, v_flat}, {{"axis", std::int64_t{2}}}, p + ".split_qkv");
    auto heads = [&](const std::string& t, const std::string& name) {  // [B,S,C] -> [B,H,S,D]
      const std::string r = g.op("Reshape", {t, heads_shape}, name + ".reshape");
      return g.op("Transpose", {r}, name + ".heads", {{"perm", std::vector<std::int64_t>{0, 2, 1, 3}}});
    };
    const std::string q = heads(q_flat, p + ".q");
    std::string k = heads(k_flat, p + ".k");
    std::string v = heads(v_flat, p + ".v");
    if (options.with_past) {
      const std::string idx = std::to_string(i);
      g.add_node("Concat", {"past_key_values." + idx + ".key", k}, {"present." + idx + ".key"},
                 {{"axis", std::int64_t{2}}}, p + ".concat_key");
      g.add_node("Concat", {"past_key_values." + idx + ".value", v}, {"present." + idx + ".value"},
                 {{"axis", std::int64_t{2}}}, p + ".concat_value");
      k = "present." + idx + ".key";
      v = "present." + idx + ".value";
    }
    const std::string k_t = g.op("Transpose", {k}, p + ".k_t", {{"perm", std::vector<std::int64_t>{0, 1, 3, 2}}});
    const std::string scores = g.op("MatMul", {q, k_t}, p + ".attn.scores");
    const std::string scaled = g.op("Div", {scores, inv_scale}, p + ".attn.scaled");
    const std::string masked = g.op("Where", {future, masked_value, scaled}, p + ".attn.masked");
    const std::string probs = g.op("Softmax", {masked}, p + ".attn.probs", {{"axis", std::int64_t{-1}}});
    const std::string context = g.op("MatMul", {probs, v}, p + ".attn.context");
    const std::string context_t =
        g.op("Transpose", {context}, p + ".attn.context_t", {{"perm", std::vector<std::int64_t>{0, 2, 1, 3}}});
    const std::string merged = g.op("Reshape", {context_t, merged_shape}, p + ".attn.merged");
    const std::string attn_out = matmul(g, options, p + ".attn.c_proj", merged, l.attn_proj_weight, &l.attn_proj_bias,
                                        tp + ".attn.c_proj.weight", tp + ".attn.c_proj.bias");
    x = g.op("Add", {x, attn_out}, p + ".residual_attn");

    const std::string h2 = layer_norm(g, x, l.ln_2_weight, l.ln_2_bias, tp + ".ln_2", c.layer_norm_epsilon);
    const std::string fc = matmul(g, options, p + ".mlp.c_fc", h2, l.c_fc_weight, &l.c_fc_bias,
                                  tp + ".mlp.c_fc.weight", tp + ".mlp.c_fc.bias");
    const std::string act = gelu_new(g, fc, p + ".mlp.act");
    const std::string mlp_out = matmul(g, options, p + ".mlp.c_proj", act, l.mlp_proj_weight, &l.mlp_proj_bias,
                                       tp + ".mlp.c_proj.weight", tp + ".mlp.c_proj.bias");
    x = g.op("Add", {x, mlp_out}, p + ".residual_mlp");
  }
  const std::string final_norm = layer_norm(g, x, w.ln_f_weight, w.ln_f_bias, "transformer.ln_f", c.layer_norm_epsilon);

  // LM head: logits = h · wteᵀ. Gemm with transB reads the embedding initializer in place, so the tied matrix is
  // stored once (the file then holds exactly the model's parameters).
  const Tensor& head = w.lm_head_matrix();
  OnnxMatMulSite site;
  site.linear_name = "lm_head";
  site.input = final_norm;
  site.output = "logits";
  site.weight = &head;
  site.transposed_weight = true;
  if (w.lm_head.data.empty()) site.existing_weight_initializer = wte;
  if (!(options.matmul_hook && options.matmul_hook(site, g))) {
    const std::string head_weight = w.lm_head.data.empty() ? wte_initializer() : g.weight("lm_head.weight", w.lm_head);
    const std::string rows = g.op("Reshape", {final_norm, g.int64s("const.rows_shape", {-1, C})}, "lm_head.rows");
    const std::string row_logits = g.op("Gemm", {rows, head_weight}, "lm_head.Gemm", {{"transB", std::int64_t{1}}});
    const std::string out_shape =
        g.op("Concat", {ids_shape, g.int64s("const.vocab", {V})}, "logits.shape", {{"axis", std::int64_t{0}}});
    g.add_node("Reshape", {row_logits, out_shape}, {"logits"}, {}, "lm_head.unflatten");
  }

  g.output("logits", act_type, {std::string("batch"), std::string("sequence"), V});
  if (options.with_past) {
    for (int i = 0; i < c.n_layer; ++i)
      for (const char* kv : {"key", "value"})
        g.output("present." + std::to_string(i) + "." + kv, act_type,
                 {std::string("batch"), H, std::string("total_sequence"), D});
  }
}

// check_model (the full model check) followed by shape inference in strict mode with type checks: what
// onnx.checker.check_model(model, full_check=True) does.
// With `checked_path`, check_model reads the file itself so external data resolves against its folder.
bool validate(onnx::ModelProto& model, std::string& message, const std::string& checked_path = "") {
  try {
    if (checked_path.empty()) onnx::checker::check_model(model);
    else onnx::checker::check_model(checked_path);
    onnx::ShapeInferenceOptions strict(/*check_type=*/true, /*error_mode=*/1, /*data_propagation=*/false);
    onnx::shape_inference::InferShapes(model, onnx::OpSchemaRegistry::Instance(), strict);
  } catch (const std::exception& e) {
    message = e.what();
    const auto nl = message.find('\n');
    if (nl != std::string::npos) message = message.substr(0, nl);
    return false;
  }
  message = "ok";
  return true;
}

// Moves large initializers into `data_path`, referenced by file name (relative to the .onnx's folder).
void externalize(onnx::ModelProto& model, const std::string& data_path) {
  std::ofstream data(data_path, std::ios::binary | std::ios::trunc);
  if (!data) fail_file(data_path, "cannot be written");
  const std::string location = fs::path(data_path).filename().string();
  std::int64_t offset = 0;
  for (auto& t : *model.mutable_graph()->mutable_initializer()) {
    if (t.raw_data().size() < kExternalMinBytes) continue;
    // 4 KiB alignment lets ONNX Runtime memory-map the tensors.
    const std::int64_t aligned = (offset + 4095) / 4096 * 4096;
    if (aligned > offset) {
      const std::string pad(static_cast<std::size_t>(aligned - offset), '\0');
      data.write(pad.data(), static_cast<std::streamsize>(pad.size()));
      offset = aligned;
    }
    const std::int64_t length = static_cast<std::int64_t>(t.raw_data().size());
    data.write(t.raw_data().data(), static_cast<std::streamsize>(length));
    t.clear_raw_data();
    t.set_data_location(onnx::TensorProto::EXTERNAL);
    auto add = [&](const std::string& k, const std::string& v) {
      auto* e = t.add_external_data();
      e->set_key(k);
      e->set_value(v);
    };
    add("location", location);
    add("offset", std::to_string(offset));
    add("length", std::to_string(length));
    offset += length;
  }
  data.close();
  if (!data) fail_file(data_path, "write failed (disk full?)");
}

bool read_model(const std::string& path, onnx::ModelProto& model, std::string& message) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    message = "cannot be opened";
    return false;
  }
  if (!model.ParseFromIstream(&in)) {
    message = "not a valid ONNX model (corrupt or truncated protobuf)";
    return false;
  }
  if (!model.has_graph() || model.graph().node_size() == 0) {
    message = "not a valid ONNX model (no graph; truncated or not an .onnx file)";
    return false;
  }
  return true;
}

}  // namespace

OnnxExportResult export_onnx(const Gpt2Model& model, const OnnxExportOptions& options, const std::string& out_path) {
  const auto start = std::chrono::steady_clock::now();
  OnnxDataType compute;
  if (options.precision == "fp32") compute = OnnxDataType::kFloat32;
  else if (options.precision == "fp16") compute = OnnxDataType::kFloat16;
  else if (options.precision == "int8" && options.matmul_hook) compute = OnnxDataType::kFloat32;  // QDQ around float32
  else if (options.precision == "int8")
    throw Error("export: precision 'int8' needs a calibration table (export_onnx_int8_qdq in export/onnx_qdq.h)");
  else throw Error("export: precision '" + options.precision + "' is not supported (fp32 | fp16 | int8)");
  if (options.external_data != "auto" && options.external_data != "always" && options.external_data != "never")
    throw Error("export: external_data '" + options.external_data + "' must be auto, always or never");
  if (options.opset < 17) throw Error("export: opset " + std::to_string(options.opset) + " is below 17 (LayerNormalization)");
  if (model.weights.layers.size() != static_cast<std::size_t>(model.config.n_layer) || model.weights.wte.data.empty())
    throw Error("export: the model's weights are not loaded");

  onnx::ModelProto proto;
  proto.set_ir_version(onnx::IR_VERSION);
  proto.set_producer_name(options.producer);
  proto.set_producer_version(GPTBENCH_VERSION);
  proto.set_model_version(1);
  proto.set_doc_string("GPT-2 (" + model.identity.name + ", " + std::to_string(model.identity.parameters) +
                       " parameters), " + options.precision + (options.with_past ? ", decoder with past" : ""));
  auto* opset = proto.add_opset_import();
  opset->set_domain("");
  opset->set_version(options.opset);
  auto add_meta = [&](const std::string& k, const std::string& v) {
    auto* m = proto.add_metadata_props();
    m->set_key(k);
    m->set_value(v);
  };
  add_meta("gptbench.model", model.identity.name);
  add_meta("gptbench.weights_sha256", model.identity.weights_sha256());
  add_meta("gptbench.precision", options.precision);
  add_meta("gptbench.with_past", options.with_past ? "1" : "0");
  add_meta("gptbench.n_layer", std::to_string(model.config.n_layer));

  onnx::GraphProto* graph = proto.mutable_graph();
  graph->set_name(options.with_past ? "gpt2_decoder_with_past" : "gpt2");
  GraphBuilder builder(*graph, compute);
  build_gpt2_graph(model, options, builder);

  OnnxExportResult result;
  result.path = out_path;
  result.node_count = graph->node_size();
  result.initializer_count = graph->initializer_size();
  result.checker_passed = validate(proto, result.check_message);
  if (!result.checker_passed)
    throw Error(out_path + ": the exported graph fails the ONNX checker: " + result.check_message);

  std::int64_t weight_bytes = 0;
  for (const auto& t : graph->initializer()) weight_bytes += static_cast<std::int64_t>(t.raw_data().size());
  const bool external = options.external_data == "always" ||
                        (options.external_data == "auto" && weight_bytes > kExternalDataThreshold);
  if (options.external_data == "never" && weight_bytes > kExternalDataThreshold)
    throw Error(out_path + ": weights of " + std::to_string(weight_bytes) +
                " bytes exceed protobuf's 2 GB limit; use external data");

  const fs::path out(out_path);
  if (out.has_parent_path()) fs::create_directories(out.parent_path());
  // A private temporary name: two processes exporting the same file never write into each other's.
  const std::string tmp_path = out_path + ".tmp.export." + std::to_string(::getpid());
  std::string data_path;
  try {
    if (external) {
      data_path = out_path + ".data";
      externalize(proto, data_path);
      result.external_data_path = data_path;
    }
    {
      std::ofstream file(tmp_path, std::ios::binary | std::ios::trunc);
      if (!file) fail_file(out_path, "cannot be written");
      if (!proto.SerializeToOstream(&file)) fail_file(out_path, "serialisation failed");
      file.close();
      if (!file) fail_file(out_path, "write failed (disk full?)");
    }
    fs::rename(tmp_path, out_path);
  } catch (...) {
    std::error_code ec;
    fs::remove(tmp_path, ec);
    if (!data_path.empty()) fs::remove(data_path, ec);
    throw;
  }
  result.bytes = static_cast<std::int64_t>(fs::file_size(out_path));
  if (!data_path.empty()) result.bytes += static_cast<std::int64_t>(fs::file_size(data_path));
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

bool check_onnx_file(const std::string& path, std::string& message) {
  onnx::ModelProto model;
  if (!read_model(path, model, message)) return false;
  // The path form of check_model resolves external data relative to the file's folder and checks it exists.
  return validate(model, message, path);
}

std::vector<std::pair<std::string, std::int64_t>> onnx_op_counts(const std::string& path) {
  onnx::ModelProto model;
  std::string message;
  if (!read_model(path, model, message)) fail_file(path, message);
  std::map<std::string, std::int64_t> counts;
  for (const auto& node : model.graph().node()) {
    const std::string& domain = node.domain();
    const bool standard = domain.empty() || domain == "ai.onnx";
    ++counts[standard ? node.op_type() : domain + "." + node.op_type()];
  }
  return {counts.begin(), counts.end()};
}

}  // namespace gptbench
