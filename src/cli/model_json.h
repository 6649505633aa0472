#pragma once
// The model identity as JSON: what `info --json` prints and what every run records as provenance.
#include <string>

#include <nlohmann/json.hpp>

#include "model/checkpoint.h"

namespace gptbench::cli {

nlohmann::json model_json(const Gpt2Model& model);

// The default model of every command: gpt2-tiny-wt2 in ../shared.
std::string default_model_dir_or_name();

}  // namespace gptbench::cli
