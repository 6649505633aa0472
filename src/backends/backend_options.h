#pragma once
// The option keys each backend understands (BackendSpec::options). Backends read the options they know and would
// silently ignore any other, so a misspelt key (attention_ksplt: 0) would give a run that looks valid without the
// setting it names; the configuration and create_backend() reject such keys with one clear line instead.
// The lists live here, in the core, so that a configuration is checked the same way in a build without the
// optional engine it names.
#include <optional>
#include <string>
#include <vector>

#include "backends/backend.h"

namespace gptbench {

// The keys backend `name` on `device` understands, sorted (empty for a backend this file does not know).
const std::vector<std::string>& backend_option_keys(const std::string& name, const std::string& device);

// The first key of `options` that backend name/device does not understand, if any.
std::optional<std::string> unknown_backend_option(const std::string& name, const std::string& device,
                                                  const std::map<std::string, std::string>& options);

// Throws Error("backend <label>: unknown option '<key>' (known: ...)") for a key the backend does not understand.
void check_backend_options(const BackendSpec& spec);

}  // namespace gptbench
