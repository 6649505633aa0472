#pragma once
// GPT-2 byte-level BPE, identical to Hugging Face's GPT2TokenizerFast: the pre-tokenizer regex (PCRE2 with
// Unicode classes), the byte<->unicode map, and merges applied by rank.
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace gptbench {

class Gpt2Tokenizer {
 public:
  // Loads vocab.json and merges.txt; throws Error naming the file on a missing or malformed file.
  Gpt2Tokenizer(const std::string& vocab_json_path, const std::string& merges_txt_path);
  ~Gpt2Tokenizer();
  Gpt2Tokenizer(Gpt2Tokenizer&&) noexcept;
  Gpt2Tokenizer& operator=(Gpt2Tokenizer&&) noexcept;

  // Encodes UTF-8 text. With allow_special, "<|endoftext|>" in the text becomes its single id (50256);
  // otherwise it is encoded as ordinary text (byte-level BPE of the characters "<", "|", ...).
  // Throws Error("<source>: not valid UTF-8 at byte N") for invalid UTF-8 (N counts from 0); `source` names the
  // input. Thread-safe: one tokenizer may encode from several threads (its word cache is locked).
  std::vector<std::int32_t> encode(std::string_view text, bool allow_special = false,
                                   const std::string& source = "input") const;
  // The bytes the ids stand for (byte-level, so decode(encode(text)) == text); throws Error for an id outside the
  // vocabulary.
  std::string decode(std::span<const std::int32_t> ids) const;

  int vocab_size() const;
  int eot_id() const;  // <|endoftext|>

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Throws Error("<source>: not valid UTF-8 at byte N") unless `text` is well-formed UTF-8 (N counts from 0).
// encode() does this itself; call it first where the bytes are changed before encoding (universal_newlines).
void check_utf8(std::string_view text, const std::string& source);

// Text as Python's text mode reads it (universal newlines): "\r\n" and a lone "\r" become "\n". The shared
// WikiText-2 files have CRLF line ends, and Hugging Face's reference ids (and perplexities) were computed on the
// text read this way, so a dataset must pass through this before encode() to be comparable.
std::string universal_newlines(std::string_view text);

// Convenience: the tokenizer of a model directory (vocab.json + merges.txt in it).
Gpt2Tokenizer load_tokenizer(const std::string& model_dir);

}  // namespace gptbench
