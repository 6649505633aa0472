#pragma once
// Helpers shared by the test programs: temporary folders, the shared data, running the gptbench program.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include "common/paths.h"

namespace gptbench::testing {

// A fresh directory under the system temp folder, removed when the object goes away.
class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() / ("gptbench-test-" + std::to_string(::getpid()) + "-" + std::to_string(rd()));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string str() const { return path_.string(); }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

inline void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

inline std::string tiny_model_dir() { return shared_path("models/gpt2-tiny-wt2"); }
inline std::string wikitext_test_path() { return shared_path("data/wikitext-2-raw/wiki.test.raw"); }

struct CommandResult {
  int exit_code = -1;
  std::string out, err;
};

// Runs the gptbench program (path from GPTBENCH_BIN, set by CTest) with arguments (already shell-quoted).
inline CommandResult run_gptbench(const std::string& args, const std::string& stdin_text = "") {
  const char* bin = std::getenv("GPTBENCH_BIN");
  CommandResult r;
  if (bin == nullptr) return r;
  TempDir tmp;
  const std::string in = tmp / "stdin", out = tmp / "stdout", err = tmp / "stderr";
  write_bytes(in, stdin_text);
  const std::string cmd = std::string("'") + bin + "' " + args + " <'" + in + "' >'" + out + "' 2>'" + err + "'";
  const int status = std::system(cmd.c_str());
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = read_text_file(out);
  r.err = read_text_file(err);
  return r;
}

}  // namespace gptbench::testing
