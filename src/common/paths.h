#pragma once
// Where shared data lives. Tests, configs and the default run find ../shared through GPTBENCH_SHARED_DIR,
// which defaults to the folder beside the source tree (a compile-time default set by CMake).
#include <string>
#include <vector>

namespace gptbench {

std::string shared_dir();                               // $GPTBENCH_SHARED_DIR or the build's default
std::string shared_path(const std::string& relative);  // shared_dir() + "/" + relative
std::string default_model_dir();                        // shared/models/gpt2-tiny-wt2

// Expands a leading "${shared}" / "$shared" in config values to shared_dir().
std::string expand_shared(const std::string& value);

bool file_exists(const std::string& path);
bool dir_exists(const std::string& path);
std::string read_text_file(const std::string& path);  // throws Error naming the path

// The regular files raw/<prefix>*.jsonl of a run folder, sorted by name (none when raw/ does not exist): what the
// runner appends to and what the gates and the report read.
std::vector<std::string> raw_files(const std::string& run_dir, const std::string& prefix);

// Writes through a temporary file and rename, so a crash never leaves a truncated file that parses.
void write_file_atomic(const std::string& path, const std::string& contents);

}  // namespace gptbench
