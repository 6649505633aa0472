#pragma once
// One error type for every failure a user can cause (bad file, bad config, wrong model).
// The message is the whole story in one line: what file or key, and what is wrong with it.
#include <stdexcept>
#include <string>

namespace gptbench {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// "<path>: <problem>" — the form every file-related error takes.
[[noreturn]] void fail_file(const std::string& path, const std::string& problem);

}  // namespace gptbench
