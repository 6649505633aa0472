#include "common/error.h"

namespace gptbench {

void fail_file(const std::string& path, const std::string& problem) { throw Error(path + ": " + problem); }

}  // namespace gptbench
