#pragma once
// SHA-256 through OpenSSL: weight files, datasets and token streams are identified by their hashes.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace gptbench {

std::string sha256_hex(const void* data, std::size_t size);
std::string sha256_file(const std::string& path);  // streams through a memory map
// Hash of token ids as little-endian int32, the form the shared reference figures use.
std::string sha256_ids_int32le(std::span<const std::int32_t> ids);

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(const void* data, std::size_t size);
  std::string hex_digest();

 private:
  void* ctx_;
};

}  // namespace gptbench
