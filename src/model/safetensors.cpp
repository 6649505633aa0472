#include "model/safetensors.h"

#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include <nlohmann/json.hpp>

#include "common/error.h"

namespace gptbench {

const char* dtype_name(DType d) {
  switch (d) {
    case DType::F32: return "F32";
    case DType::F16: return "F16";
    case DType::BF16: return "BF16";
    case DType::F64: return "F64";
    case DType::I64: return "I64";
    case DType::I32: return "I32";
    case DType::I16: return "I16";
    case DType::I8: return "I8";
    case DType::U8: return "U8";
    case DType::BOOL: return "BOOL";
  }
  return "?";
}

std::size_t dtype_size(DType d) {
  switch (d) {
    case DType::F64: case DType::I64: return 8;
    case DType::F32: case DType::I32: return 4;
    case DType::F16: case DType::BF16: case DType::I16: return 2;
    case DType::I8: case DType::U8: case DType::BOOL: return 1;
  }
  return 0;
}

static bool parse_dtype(const std::string& s, DType& out) {
  static const std::pair<const char*, DType> table[] = {
      {"F32", DType::F32}, {"F16", DType::F16}, {"BF16", DType::BF16}, {"F64", DType::F64}, {"I64", DType::I64},
      {"I32", DType::I32}, {"I16", DType::I16}, {"I8", DType::I8},     {"U8", DType::U8},   {"BOOL", DType::BOOL}};
  for (auto& [name, d] : table) {
    if (s == name) {
      out = d;
      return true;
    }
  }
  return false;
}

std::int64_t SafetensorsEntry::numel() const {
  std::int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

SafetensorsFile::SafetensorsFile(const std::string& path) : file_(path) {
  const std::uint64_t size = file_.size();
  if (size < 8) fail_file(path, "truncated safetensors file (" + std::to_string(size) + " bytes, no header)");
  std::uint64_t header_len = 0;
  std::memcpy(&header_len, file_.data(), 8);  // little-endian host (asserted in common/hash.cpp)
  if (header_len > size - 8)
    fail_file(path, "safetensors header length " + std::to_string(header_len) + " runs past the end of the file (" +
                        std::to_string(size) + " bytes)");
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(file_.data() + 8, file_.data() + 8 + header_len);
  } catch (const nlohmann::json::parse_error& e) {
    fail_file(path, std::string("safetensors header is not valid JSON: ") + e.what());
  }
  if (!header.is_object()) fail_file(path, "safetensors header is not a JSON object");
  data_start_ = file_.data() + 8 + header_len;
  const std::uint64_t data_bytes = size - 8 - header_len;

  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") {
      if (it->is_object())
        for (auto m = it->begin(); m != it->end(); ++m)
          if (m->is_string()) metadata_[m.key()] = m->get<std::string>();
      continue;
    }
    const auto& v = it.value();
    const std::string where = "tensor '" + it.key() + "'";
    if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") || !v.contains("data_offsets"))
      fail_file(path, where + " lacks dtype, shape or data_offsets");
    SafetensorsEntry e;
    e.name = it.key();
    if (!v["dtype"].is_string() || !parse_dtype(v["dtype"].get<std::string>(), e.dtype))
      fail_file(path, where + " has unknown dtype " + v["dtype"].dump());
    if (!v["shape"].is_array()) fail_file(path, where + " has a shape that is not an array");
    for (const auto& d : v["shape"]) {
      if (!d.is_number_integer() || d.get<std::int64_t>() < 0) fail_file(path, where + " has an invalid shape");
      e.shape.push_back(d.get<std::int64_t>());
    }
    const auto& off = v["data_offsets"];
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
      fail_file(path, where + " has invalid data_offsets");
    e.begin = off[0].get<std::uint64_t>();
    e.end = off[1].get<std::uint64_t>();
    if (e.end < e.begin) fail_file(path, where + " has data_offsets that end before they begin");
    if (e.end > data_bytes)
      fail_file(path, where + " data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) +
                          ") run past the end of the data (" + std::to_string(data_bytes) +
                          " bytes): the file is truncated or corrupt");
    const std::uint64_t expected = static_cast<std::uint64_t>(e.numel()) * dtype_size(e.dtype);
    if (e.end - e.begin != expected)
      fail_file(path, where + " holds " + std::to_string(e.end - e.begin) + " bytes but its dtype and shape need " +
                          std::to_string(expected));
    entries_[e.name] = std::move(e);
  }
  // Overlapping byte ranges mean two tensors share storage: never valid in safetensors.
  std::vector<const SafetensorsEntry*> by_offset;
  for (const auto& [name, e] : entries_)
    if (e.end > e.begin) by_offset.push_back(&e);
  std::sort(by_offset.begin(), by_offset.end(), [](auto* a, auto* b) { return a->begin < b->begin; });
  for (std::size_t i = 1; i < by_offset.size(); ++i)
    if (by_offset[i]->begin < by_offset[i - 1]->end)
      fail_file(path, "tensors '" + by_offset[i - 1]->name + "' and '" + by_offset[i]->name + "' overlap");
}

const SafetensorsEntry* SafetensorsFile::find(const std::string& name) const {
  auto it = entries_.find(name);
  return it == entries_.end() ? nullptr : &it->second;
}

void SafetensorsFile::read_as_f32(const SafetensorsEntry& e, float* out) const {
  const std::uint8_t* src = data(e);
  const std::int64_t n = e.numel();
  switch (e.dtype) {
    case DType::F32:
      std::memcpy(out, src, static_cast<std::size_t>(n) * 4);
      return;
    case DType::F16:
      for (std::int64_t i = 0; i < n; ++i) {
        std::uint16_t h;
        std::memcpy(&h, src + 2 * i, 2);
        out[i] = half_to_float(h);
      }
      return;
    case DType::BF16:
      for (std::int64_t i = 0; i < n; ++i) {
        std::uint16_t b;
        std::memcpy(&b, src + 2 * i, 2);
        out[i] = bf16_to_float(b);
      }
      return;
    case DType::F64:
      for (std::int64_t i = 0; i < n; ++i) {
        double d;
        std::memcpy(&d, src + 8 * i, 8);
        out[i] = static_cast<float>(d);
      }
      return;
    default:
      fail_file(path(), "tensor '" + e.name + "' has dtype " + dtype_name(e.dtype) + ", not a floating-point type");
  }
}

void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors, DType dtype,
                       const std::map<std::string, std::string>& metadata) {
  if (dtype != DType::F32 && dtype != DType::F16 && dtype != DType::BF16)
    throw Error(path + ": can only write F32, F16 or BF16 tensors");
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::uint64_t offset = 0;
  for (const auto& t : tensors) {
    std::int64_t n = 1;
    for (auto d : t.shape) n *= d;
    const std::uint64_t bytes = static_cast<std::uint64_t>(n) * dtype_size(dtype);
    header[t.name] = {{"dtype", dtype_name(dtype)}, {"shape", t.shape}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string header_text = header.dump();
  while ((8 + header_text.size()) % 8 != 0) header_text += ' ';  // keep the data block 8-byte aligned
  const std::uint64_t header_len = header_text.size();

  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  std::filesystem::path target(path);
  if (target.has_parent_path()) std::filesystem::create_directories(target.parent_path());
  std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
  if (!out) fail_file(tmp, std::string("cannot create: ") + std::strerror(errno));
  out.write(reinterpret_cast<const char*>(&header_len), 8);
  out.write(header_text.data(), static_cast<std::streamsize>(header_text.size()));
  std::vector<std::uint8_t> buffer;
  for (const auto& t : tensors) {
    std::int64_t n = 1;
    for (auto d : t.shape) n *= d;
    if (dtype == DType::F32) {
      out.write(reinterpret_cast<const char*>(t.data), static_cast<std::streamsize>(n * 4));
      continue;
    }
    buffer.resize(static_cast<std::size_t>(n) * 2);
    for (std::int64_t i = 0; i < n; ++i) {
      const std::uint16_t v = dtype == DType::F16 ? float_to_half(t.data[i]) : float_to_bf16(t.data[i]);
      std::memcpy(buffer.data() + 2 * i, &v, 2);
    }
    out.write(reinterpret_cast<const char*>(buffer.data()), static_cast<std::streamsize>(buffer.size()));
  }
  out.flush();
  if (!out) fail_file(tmp, "write failed");
  out.close();
  if (std::rename(tmp.c_str(), path.c_str()) != 0) fail_file(path, std::string("cannot rename: ") + std::strerror(errno));
}

}  // namespace gptbench
