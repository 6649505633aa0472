#pragma once
// Lists as one line of text, for error messages and gate summaries.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <string>
#include <vector>

namespace gptbench {

// "a, b, c" (or with another separator).
inline std::string join_list(const std::vector<std::string>& items, const std::string& separator = ", ") {
  return fmt::format("{}", fmt::join(items, separator));
}

}  // namespace gptbench
