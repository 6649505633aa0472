#include "eval/dataset.h"

#include "common/error.h"
#include "common/hash.h"
#include "common/mapped_file.h"
#include "tokenizer/gpt2_tokenizer.h"

namespace gptbench {

TokenizedDataset load_dataset(const std::string& path, const Gpt2Tokenizer& tokenizer) {
  MappedFile file(path);
  if (file.size() == 0) fail_file(path, "dataset is empty");
  TokenizedDataset d;
  d.path = path;
  d.bytes = file.size();
  d.text_sha256 = sha256_hex(file.data(), file.size());
  const std::string_view raw(reinterpret_cast<const char*>(file.data()), file.size());
  // Validate before converting, so an error's byte offset refers to the file as it is on disk. Line ends are read
  // as Python's text mode reads them ("\r\n" -> "\n"), which is how the reference token counts were made.
  check_utf8(raw, path);
  d.ids = tokenizer.encode(universal_newlines(raw), false, path);
  d.ids_sha256 = sha256_ids_int32le(d.ids);
  return d;
}

}  // namespace gptbench
