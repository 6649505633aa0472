#pragma once
// INT8 calibration of a model through the native CPU engine in FP32: the engine's activation observer feeds the
// collectors of quant/ (ensure_calibration), reusing a matching cache file. `gptbench calibrate` and the runner
// both calibrate through this.
#include <ostream>

#include "quant/calibration_driver.h"

namespace gptbench {

struct Gpt2Model;

// Fills request.model_name / model_sha256 from the model, tokenizes the calibration text with the model's own
// tokenizer, and runs the FP32 engine (`threads`, 0: library default) over it. Messages go to `log`.
CalibrationArtifacts calibrate_with_native_engine(const Gpt2Model& model, CalibrationRequest request, int threads,
                                                  std::ostream& log);

}  // namespace gptbench
