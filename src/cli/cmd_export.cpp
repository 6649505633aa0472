// gptbench export: writes the loaded checkpoint as an ONNX graph (export/onnx_export.h), validated by the ONNX
// checker before it is reported. Compiled into every build; says so when this build has no ONNX export.
#include <cstdio>
#include <memory>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "common/error.h"

#ifdef GPTBENCH_WITH_ONNX_EXPORT
#include "cli/model_json.h"
#include "export/onnx_export.h"
#include "model/checkpoint.h"
#endif

namespace gptbench::cli {

void add_export_command(CLI::App& app) {
  struct Options {
    std::string model, format = "onnx", precision = "fp32", out, external_data = "auto";
    bool with_past = false;
    bool json = false;
  };
  auto opts = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("export", "Export a checkpoint to ONNX (checked by the ONNX checker)");
  cmd->add_option("--model", opts->model, "Model directory or hub name (default: gpt2-tiny-wt2 in ../shared)");
  cmd->add_option("--format", opts->format, "Export format")->check(CLI::IsMember({"onnx"}))->capture_default_str();
  cmd->add_option("--precision", opts->precision, "fp32 or fp16")->check(CLI::IsMember({"fp32", "fp16"}))->capture_default_str();
  cmd->add_flag("--with-past", opts->with_past, "Decoder with past key/values (for decode on ONNX Runtime)");
  cmd->add_option("--external-data", opts->external_data, "auto (above 2 GB), always or never")
      ->check(CLI::IsMember({"auto", "always", "never"}))
      ->capture_default_str();
  cmd->add_option("--out", opts->out, "Output .onnx file")->required();
  cmd->add_flag("--json", opts->json, "Print JSON (path, bytes, nodes, checker)");
  cmd->callback([opts] {
#ifdef GPTBENCH_WITH_ONNX_EXPORT
    const Gpt2Model model = load_model(opts->model.empty() ? default_model_dir_or_name() : opts->model);
    OnnxExportOptions options;
    options.precision = opts->precision;
    options.with_past = opts->with_past;
    options.external_data = opts->external_data;
    const OnnxExportResult r = export_onnx(model, options, opts->out);
    if (opts->json) {
      const nlohmann::json j = {{"path", r.path},
                                {"external_data_path", r.external_data_path},
                                {"bytes", r.bytes},
                                {"nodes", r.node_count},
                                {"initializers", r.initializer_count},
                                {"checker", r.check_message},
                                {"checker_passed", r.checker_passed},
                                {"precision", opts->precision},
                                {"with_past", opts->with_past},
                                {"seconds", r.seconds},
                                {"model", model_json(model)}};
      std::printf("%s\n", j.dump(2).c_str());
      return;
    }
    std::printf("%s", fmt::format("exported {} ({} parameters{}) as ONNX {}{}\n", model.identity.name,
                                  model.identity.parameters, model.identity.untrained ? ", UNTRAINED" : "",
                                  opts->precision, opts->with_past ? ", decoder with past" : "").c_str());
    std::printf("%s", fmt::format("file       {}{}\n", r.path,
                                  r.external_data_path.empty() ? "" : " + " + r.external_data_path).c_str());
    std::printf("%s", fmt::format("size       {} bytes ({:.1f} MB)\n", r.bytes, r.bytes / 1e6).c_str());
    std::printf("%s", fmt::format("graph      {} nodes, {} initializers, opset 17\n", r.node_count, r.initializer_count).c_str());
    std::printf("%s", fmt::format("checker    {} (check_model + strict shape inference), {:.2f} s\n", r.check_message, r.seconds).c_str());
#else
    throw Error("export: this build has no ONNX export (libonnx + protobuf were not found at build time; "
                "apt-get install libonnx-dev libprotobuf-dev and rebuild)");
#endif
  });
}

}  // namespace gptbench::cli
