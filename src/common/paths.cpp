#include "common/paths.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/error.h"

#ifndef GPTBENCH_DEFAULT_SHARED_DIR
#define GPTBENCH_DEFAULT_SHARED_DIR "../shared"
#endif

namespace gptbench {

std::string shared_dir() {
  const char* env = std::getenv("GPTBENCH_SHARED_DIR");
  if (env != nullptr && *env != '\0') return env;
  return GPTBENCH_DEFAULT_SHARED_DIR;
}

std::string shared_path(const std::string& relative) { return shared_dir() + "/" + relative; }

std::string default_model_dir() { return shared_path("models/gpt2-tiny-wt2"); }

std::string expand_shared(const std::string& value) {
  for (const char* token : {"${shared}", "$shared"}) {
    std::string t(token);
    if (value.rfind(t, 0) == 0) return shared_dir() + value.substr(t.size());
  }
  return value;
}

bool file_exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

bool dir_exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail_file(path, std::string("cannot open: ") + std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) fail_file(path, "read error");
  return ss.str();
}

void write_file_atomic(const std::string& path, const std::string& contents) {
  namespace fs = std::filesystem;
  fs::path target(path);
  if (target.has_parent_path()) fs::create_directories(target.parent_path());
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) fail_file(tmp, std::string("cannot create: ") + std::strerror(errno));
    out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
    out.flush();
    if (!out) fail_file(tmp, "write failed");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    std::remove(tmp.c_str());
    fail_file(path, std::string("cannot rename into place: ") + std::strerror(err));
  }
}

std::vector<std::string> raw_files(const std::string& run_dir, const std::string& prefix) {
  std::vector<std::string> out;
  const std::filesystem::path raw = std::filesystem::path(run_dir) / "raw";
  if (!std::filesystem::is_directory(raw)) return out;
  for (const auto& entry : std::filesystem::directory_iterator(raw)) {
    const std::string name = entry.path().filename().string();
    if (entry.is_regular_file() && name.rfind(prefix, 0) == 0 && name.size() > 6 &&
        name.compare(name.size() - 6, 6, ".jsonl") == 0)
      out.push_back(entry.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace gptbench
