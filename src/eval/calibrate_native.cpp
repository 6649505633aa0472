#include "eval/calibrate_native.h"

#include <memory>

#include "backends/native/native_backend.h"
#include "model/checkpoint.h"
#include "tokenizer/gpt2_tokenizer.h"

namespace gptbench {

CalibrationArtifacts calibrate_with_native_engine(const Gpt2Model& model, CalibrationRequest request, int threads,
                                                  std::ostream& log) {
  request.model_name = model.identity.name;
  request.model_sha256 = model.identity.weights_sha256();
  const Gpt2Tokenizer tokenizer(model.vocab_path, model.merges_path);
  const TokenizeText tokenize = [&](const std::string& text, const std::string& source) {
    return tokenizer.encode(text, false, source);
  };
  // The engine takes its observer at creation (only when a cache must be built); it forwards to whichever
  // collector ensure_calibration has made current.
  std::unique_ptr<Backend> backend;
  auto current = std::make_shared<ActivationObserver>();
  const ObservedForward forward = [&](const std::vector<std::int32_t>& ids, int batch, int seq,
                                      const ActivationObserver& observer) {
    *current = observer;
    if (!backend) {
      NativeCpuOptions options;
      options.threads = threads;
      options.observer = [current](const std::string& name, const float* x, std::int64_t rows, std::int64_t cols) {
        if (*current) (*current)(name, x, rows, cols);
      };
      backend = create_native_cpu_backend(model, options);
    }
    ForwardOutput out;
    backend->prefill(TokenBatch{batch, seq, ids}, OutputMode::kSummary, out);
    *current = nullptr;
  };
  return ensure_calibration(request, tokenize, forward, log);
}

}  // namespace gptbench
