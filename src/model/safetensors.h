#pragma once
// The safetensors format: an 8-byte little-endian header length N, N bytes of JSON naming every tensor's dtype,
// shape and [begin, end) byte range in the data block that follows. Parsed strictly: every inconsistency is an
// Error naming the file, because a silently mis-read checkpoint is how the original study went wrong.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/float16.h"
#include "common/mapped_file.h"

namespace gptbench {

enum class DType { F32, F16, BF16, F64, I64, I32, I16, I8, U8, BOOL };

const char* dtype_name(DType dtype);
std::size_t dtype_size(DType dtype);

struct SafetensorsEntry {
  std::string name;
  DType dtype = DType::F32;
  std::vector<std::int64_t> shape;
  std::uint64_t begin = 0, end = 0;  // byte range within the data block
  std::int64_t numel() const;
};

class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path);  // maps and validates the whole file

  const std::string& path() const { return file_.path(); }
  std::uint64_t file_bytes() const { return file_.size(); }
  const std::map<std::string, SafetensorsEntry>& entries() const { return entries_; }
  const SafetensorsEntry* find(const std::string& name) const;
  const std::uint8_t* data(const SafetensorsEntry& entry) const { return data_start_ + entry.begin; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

  // Converts a floating-point tensor (F32, F16, BF16, F64) to float32.
  void read_as_f32(const SafetensorsEntry& entry, float* out) const;

 private:
  MappedFile file_;
  const std::uint8_t* data_start_ = nullptr;
  std::map<std::string, SafetensorsEntry> entries_;
  std::map<std::string, std::string> metadata_;
};

struct TensorToWrite {
  std::string name;
  std::vector<std::int64_t> shape;
  const float* data = nullptr;  // float32 values, converted to `dtype` on write
};

// Writes a safetensors file (dtype F32, F16 or BF16 for every tensor), atomically.
void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors, DType dtype,
                       const std::map<std::string, std::string>& metadata = {});


}  // namespace gptbench
