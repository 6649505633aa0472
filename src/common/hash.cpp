#include "common/hash.h"

#include <openssl/evp.h>

#include <bit>
#include <cstdio>

#include "common/error.h"
#include "common/mapped_file.h"

namespace gptbench {

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  if (ctx_ == nullptr || EVP_DigestInit_ex(static_cast<EVP_MD_CTX*>(ctx_), EVP_sha256(), nullptr) != 1)
    throw Error("OpenSSL: cannot initialise SHA-256");
}

Sha256::~Sha256() { EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_)); }

void Sha256::update(const void* data, std::size_t size) {
  EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(ctx_), data, size);
}

std::string Sha256::hex_digest() {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(static_cast<EVP_MD_CTX*>(ctx_), digest, &len);
  std::string out;
  out.reserve(len * 2);
  char buf[3];
  for (unsigned int i = 0; i < len; ++i) {
    std::snprintf(buf, sizeof buf, "%02x", digest[i]);
    out += buf;
  }
  return out;
}

std::string sha256_hex(const void* data, std::size_t size) {
  Sha256 h;
  h.update(data, size);
  return h.hex_digest();
}

std::string sha256_file(const std::string& path) {
  MappedFile file(path);
  return sha256_hex(file.data(), file.size());
}

std::string sha256_ids_int32le(std::span<const std::int32_t> ids) {
  static_assert(std::endian::native == std::endian::little, "gptbench assumes a little-endian host");
  return sha256_hex(ids.data(), ids.size_bytes());
}

}  // namespace gptbench
