#include "tokenizer/gpt2_tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <array>
#include <functional>
#include <mutex>
#include <new>
#include <nlohmann/json.hpp>
#include <queue>
#include <string>
#include <unordered_map>
#include <utility>

#include "common/error.h"
#include "common/paths.h"

namespace gptbench {
namespace {

constexpr std::string_view kEndOfText = "<|endoftext|>";

// The GPT-2 pre-tokenizer, as in Hugging Face tokenizers' ByteLevel pre-tokenizer:
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// with \s spelled out as the Unicode White_Space property. That is what \s means to the Oniguruma engine behind
// Hugging Face tokenizers; PCRE2's own \s (with UCP) adds U+180E, which Unicode stopped calling white space in
// 6.3, so spelling the class out keeps the two engines in agreement.
#define GPTBENCH_WS R"(\t\n\x{0B}\f\r \x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000})"
constexpr const char* kPreTokenizerPattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^)" GPTBENCH_WS R"(\p{L}\p{N}]+|[)" GPTBENCH_WS
    R"(]+(?![^)" GPTBENCH_WS R"(])|[)" GPTBENCH_WS R"(]+)";
#undef GPTBENCH_WS

// GPT-2's byte <-> unicode map: bytes that are printable characters stand for themselves; the other 68 bytes are
// given the code points 256, 257, ... in byte order, so every token of vocab.json is a string of printable
// characters. The tables here go straight between a byte and the UTF-8 bytes of its stand-in character.
struct ByteAlphabet {
  std::array<char32_t, 256> codepoint_of_byte{};
  std::array<int, 324> byte_of_codepoint{};  // -1: not a stand-in character (the map's range ends at U+0143)

  ByteAlphabet() {
    byte_of_codepoint.fill(-1);
    auto printable = [](int b) { return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE); };
    int next_extra = 256;
    for (int b = 0; b < 256; ++b) {
      const int cp = printable(b) ? b : next_extra++;
      codepoint_of_byte[b] = static_cast<char32_t>(cp);
      byte_of_codepoint[cp] = b;
    }
  }
};

const ByteAlphabet& byte_alphabet() {
  static const ByteAlphabet alphabet;
  return alphabet;
}

// Returns the offset of the first byte that does not start a well-formed UTF-8 sequence (overlong forms,
// surrogates and code points past U+10FFFF are ill-formed), or npos when the whole text is valid.
std::size_t find_invalid_utf8(std::string_view text) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t n = text.size();
  std::size_t i = 0;
  while (i < n) {
    const unsigned char c = s[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t length;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (c >= 0xC2 && c <= 0xDF) {
      length = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      length = 3;
      if (c == 0xE0) lo = 0xA0;  // overlong
      if (c == 0xED) hi = 0x9F;  // surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
      length = 4;
      if (c == 0xF0) lo = 0x90;  // overlong
      if (c == 0xF4) hi = 0x8F;  // past U+10FFFF
    } else {
      return i;
    }
    if (i + length > n) return i;
    if (s[i + 1] < lo || s[i + 1] > hi) return i;
    for (std::size_t k = 2; k < length; ++k)
      if (s[i + k] < 0x80 || s[i + k] > 0xBF) return i;
    i += length;
  }
  return std::string_view::npos;
}

// Decodes one code point of valid UTF-8 at text[i], advancing i; returns -1 on malformed input.
long next_codepoint(std::string_view text, std::size_t& i) {
  const auto c = static_cast<unsigned char>(text[i]);
  int length = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
  if (length == 0 || i + length > text.size()) return -1;
  long cp = length == 1 ? c : length == 2 ? (c & 0x1F) : length == 3 ? (c & 0x0F) : (c & 0x07);
  for (int k = 1; k < length; ++k) {
    const auto cc = static_cast<unsigned char>(text[i + k]);
    if ((cc & 0xC0) != 0x80) return -1;
    cp = (cp << 6) | (cc & 0x3F);
  }
  i += length;
  return cp;
}

// A vocab.json / merges.txt token (a string of stand-in characters) turned back into the raw bytes it stands
// for; false when it holds a character outside the byte alphabet.
bool token_to_bytes(std::string_view token, std::string& bytes) {
  const auto& alphabet = byte_alphabet();
  bytes.clear();
  std::size_t i = 0;
  while (i < token.size()) {
    const long cp = next_codepoint(token, i);
    if (cp < 0 || cp >= static_cast<long>(alphabet.byte_of_codepoint.size())) return false;
    const int b = alphabet.byte_of_codepoint[static_cast<std::size_t>(cp)];
    if (b < 0) return false;
    bytes.push_back(static_cast<char>(b));
  }
  return true;
}

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

std::uint64_t pair_key(std::int32_t left, std::int32_t right) {
  return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(left)) << 32) | static_cast<std::uint32_t>(right);
}

struct Merge {
  std::int32_t rank;
  std::int32_t merged_id;
};

// Words this long or longer are not cached: they are rare, and caching them would let one odd input fill memory.
constexpr std::size_t kMaxCachedWordBytes = 128;
constexpr std::size_t kMaxCacheEntries = 1 << 18;

}  // namespace

struct Gpt2Tokenizer::Impl {
  std::vector<std::string> token_bytes;                                    // id -> the raw bytes it stands for
  std::unordered_map<std::string, std::int32_t, StringHash, std::equal_to<>> id_of_bytes;
  std::array<std::int32_t, 256> id_of_byte{};                              // the 256 one-byte tokens
  std::unordered_map<std::uint64_t, Merge> merges;                         // (left id, right id) -> rank, result
  std::int32_t eot_id = -1;
  pcre2_code* pre_tokenizer = nullptr;

  // word (raw bytes of one pre-token) -> its ids. Running text repeats a small set of words, so most words are
  // looked up rather than merged. Guarded by a mutex so that one tokenizer can serve several threads.
  mutable std::mutex cache_mutex;
  mutable std::unordered_map<std::string, std::vector<std::int32_t>, StringHash, std::equal_to<>> cache;

  ~Impl() {
    if (pre_tokenizer) pcre2_code_free(pre_tokenizer);
  }

  void load_vocab(const std::string& path);
  void load_merges(const std::string& path);
  void compile_pre_tokenizer();

  void bpe(std::string_view word, std::vector<std::int32_t>& out) const;
  void encode_word(std::string_view word, std::vector<std::int32_t>& out) const;
  void encode_ordinary(std::string_view text, std::vector<std::int32_t>& out) const;
};

void Gpt2Tokenizer::Impl::load_vocab(const std::string& path) {
  if (!file_exists(path)) fail_file(path, "missing (the tokenizer's vocabulary, vocab.json)");
  nlohmann::json vocab;
  try {
    vocab = nlohmann::json::parse(read_text_file(path));
  } catch (const nlohmann::json::parse_error& e) {
    fail_file(path, std::string("not valid JSON (") + e.what() + ")");
  }
  if (!vocab.is_object() || vocab.empty()) fail_file(path, "expected a JSON object mapping tokens to ids");

  const std::size_t size = vocab.size();
  token_bytes.assign(size, std::string());
  std::vector<bool> seen(size, false);
  std::string bytes;
  for (const auto& [token, id_value] : vocab.items()) {
    if (!id_value.is_number_integer())
      fail_file(path, "the id of token \"" + token + "\" is not an integer");
    const auto id = id_value.get<std::int64_t>();
    if (id < 0 || id >= static_cast<std::int64_t>(size))
      fail_file(path, "token \"" + token + "\" has id " + std::to_string(id) + ", outside 0.." +
                          std::to_string(size - 1) + " (ids must be dense)");
    if (seen[static_cast<std::size_t>(id)]) fail_file(path, "id " + std::to_string(id) + " is used twice");
    if (!token_to_bytes(token, bytes))
      fail_file(path, "token \"" + token + "\" (id " + std::to_string(id) +
                          ") has characters outside GPT-2's byte-level alphabet");
    seen[static_cast<std::size_t>(id)] = true;
    token_bytes[static_cast<std::size_t>(id)] = bytes;
    id_of_bytes.emplace(bytes, static_cast<std::int32_t>(id));
  }
  for (int b = 0; b < 256; ++b) {
    const auto it = id_of_bytes.find(std::string(1, static_cast<char>(b)));
    if (it == id_of_bytes.end())
      fail_file(path, "no token for byte " + std::to_string(b) + " (a byte-level vocabulary has all 256)");
    id_of_byte[static_cast<std::size_t>(b)] = it->second;
  }
  const auto eot = id_of_bytes.find(kEndOfText);
  if (eot == id_of_bytes.end()) fail_file(path, "no <|endoftext|> token");
  eot_id = eot->second;
}

void Gpt2Tokenizer::Impl::load_merges(const std::string& path) {
  if (!file_exists(path)) fail_file(path, "missing (the tokenizer's BPE merges, merges.txt)");
  const std::string text = read_text_file(path);
  std::size_t line_start = 0;
  std::size_t line_number = 0;
  std::int32_t rank = 0;
  std::string left_bytes, right_bytes;
  while (line_start < text.size()) {
    std::size_t line_end = text.find('\n', line_start);
    if (line_end == std::string::npos) line_end = text.size();
    std::string_view line(text.data() + line_start, line_end - line_start);
    line_start = line_end + 1;
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    // Like Hugging Face: a "#version" header line is skipped; blank lines carry nothing.
    if (line.empty() || line.starts_with("#version")) continue;

    const auto where = [&] { return "line " + std::to_string(line_number) + ": "; };
    const std::size_t space = line.find(' ');
    if (space == std::string_view::npos || space == 0 || space + 1 == line.size() ||
        line.find(' ', space + 1) != std::string_view::npos)
      fail_file(path, where() + "expected two tokens separated by one space, got \"" + std::string(line) + "\"");
    const std::string_view left = line.substr(0, space), right = line.substr(space + 1);
    if (!token_to_bytes(left, left_bytes) || !token_to_bytes(right, right_bytes))
      fail_file(path, where() + "characters outside GPT-2's byte-level alphabet");
    const auto left_id = id_of_bytes.find(left_bytes);
    const auto right_id = id_of_bytes.find(right_bytes);
    const auto merged_id = id_of_bytes.find(left_bytes + right_bytes);
    if (left_id == id_of_bytes.end() || right_id == id_of_bytes.end() || merged_id == id_of_bytes.end())
      fail_file(path, where() + "merge \"" + std::string(line) + "\" uses or makes a token not in vocab.json");
    // A repeated pair keeps its last rank, as in both Hugging Face implementations.
    merges[pair_key(left_id->second, right_id->second)] = Merge{rank, merged_id->second};
    ++rank;
  }
}

void Gpt2Tokenizer::Impl::compile_pre_tokenizer() {
  int error_code = 0;
  PCRE2_SIZE error_offset = 0;
  pre_tokenizer = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(kPreTokenizerPattern), PCRE2_ZERO_TERMINATED,
                                PCRE2_UTF | PCRE2_UCP, &error_code, &error_offset, nullptr);
  if (!pre_tokenizer) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error_code, message, sizeof message);
    throw Error("tokenizer: cannot compile the GPT-2 pre-tokenizer regex: " +
                std::string(reinterpret_cast<const char*>(message)));
  }
  // JIT makes the split several times faster; without it (an unusual PCRE2 build) pcre2_match interprets.
  pcre2_jit_compile(pre_tokenizer, PCRE2_JIT_COMPLETE);
}

// Byte-pair merging of one pre-token, exactly as Hugging Face's BPE model does it: start from one token per byte;
// repeatedly apply the pair with the lowest merge rank, the leftmost such pair on ties, until no pair merges.
void Gpt2Tokenizer::Impl::bpe(std::string_view word, std::vector<std::int32_t>& out) const {
  struct Symbol {
    std::int32_t id;
    int prev;
    int next;
  };
  struct Candidate {
    std::int32_t rank;
    int pos;  // index of the left symbol
    std::int32_t merged_id;
    bool operator>(const Candidate& other) const {
      return rank != other.rank ? rank > other.rank : pos > other.pos;
    }
  };
  const int n = static_cast<int>(word.size());
  std::vector<Symbol> symbols(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i)
    symbols[i] = Symbol{id_of_byte[static_cast<unsigned char>(word[i])], i - 1, i + 1 < n ? i + 1 : -1};

  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> queue;
  auto push_pair = [&](int pos) {
    const int next = symbols[pos].next;
    if (next < 0) return;
    const auto it = merges.find(pair_key(symbols[pos].id, symbols[next].id));
    if (it != merges.end()) queue.push(Candidate{it->second.rank, pos, it->second.merged_id});
  };
  for (int i = 0; i + 1 < n; ++i) push_pair(i);

  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    Symbol& left = symbols[top.pos];
    if (left.id < 0 || left.next < 0) continue;  // merged away, or no longer has a right neighbour
    // Skip a stale candidate: the pair at this position changed since it was queued. Symbols only grow, so the
    // same merged token means the same pair.
    const auto it = merges.find(pair_key(left.id, symbols[left.next].id));
    if (it == merges.end() || it->second.merged_id != top.merged_id) continue;

    Symbol& right = symbols[left.next];
    left.id = top.merged_id;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = top.pos;
    right.id = -1;
    if (left.prev >= 0) push_pair(left.prev);
    push_pair(top.pos);
  }
  for (const Symbol& s : symbols)
    if (s.id >= 0) out.push_back(s.id);
}

void Gpt2Tokenizer::Impl::encode_word(std::string_view word, std::vector<std::int32_t>& out) const {
  if (word.size() == 1) {
    out.push_back(id_of_byte[static_cast<unsigned char>(word[0])]);
    return;
  }
  const bool cacheable = word.size() < kMaxCachedWordBytes;
  if (cacheable) {
    std::lock_guard lock(cache_mutex);
    const auto it = cache.find(word);
    if (it != cache.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  const std::size_t first = out.size();
  bpe(word, out);
  if (cacheable) {
    std::lock_guard lock(cache_mutex);
    if (cache.size() >= kMaxCacheEntries) cache.clear();
    cache.emplace(std::string(word), std::vector<std::int32_t>(out.begin() + first, out.end()));
  }
}

// Pre-tokenizes with the regex and merges each piece. `text` is valid UTF-8 (checked by the caller).
void Gpt2Tokenizer::Impl::encode_ordinary(std::string_view text, std::vector<std::int32_t>& out) const {
  if (text.empty()) return;
  pcre2_match_data* match = pcre2_match_data_create_from_pattern(pre_tokenizer, nullptr);
  // A private JIT stack per call keeps encode() safe to call from several threads, and large enough for long
  // runs of white space (the default 32 KiB machine stack is not guaranteed to be).
  pcre2_match_context* context = pcre2_match_context_create(nullptr);
  pcre2_jit_stack* jit_stack = pcre2_jit_stack_create(32 * 1024, 16 * 1024 * 1024, nullptr);
  if (!match || !context || !jit_stack) {
    pcre2_jit_stack_free(jit_stack);
    pcre2_match_context_free(context);
    pcre2_match_data_free(match);
    throw std::bad_alloc();
  }
  pcre2_jit_stack_assign(context, nullptr, jit_stack);

  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  std::size_t offset = 0;
  int status = 0;
  while (offset < text.size()) {
    status = pcre2_match(pre_tokenizer, subject, text.size(), offset, PCRE2_NO_UTF_CHECK, match, context);
    if (status == PCRE2_ERROR_NOMATCH) {
      // Cannot happen (every character is a letter, number, space or other), but Hugging Face would keep an
      // unmatched tail as a piece of its own, so do the same rather than drop text.
      encode_word(text.substr(offset), out);
      break;
    }
    if (status < 0) break;
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(match);
    const std::size_t start = ovector[0], end = ovector[1];
    if (start > offset) encode_word(text.substr(offset, start - offset), out);  // unmatched gap: its own piece
    if (end == start) {  // an empty match would loop forever; the pattern cannot produce one
      status = -1;
      break;
    }
    encode_word(text.substr(start, end - start), out);
    offset = end;
  }
  pcre2_jit_stack_free(jit_stack);
  pcre2_match_context_free(context);
  pcre2_match_data_free(match);
  if (status < 0 && status != PCRE2_ERROR_NOMATCH) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(status, message, sizeof message);
    throw Error("tokenizer: pre-tokenizer regex failed at byte " + std::to_string(offset) + ": " +
                std::string(reinterpret_cast<const char*>(message)));
  }
}

Gpt2Tokenizer::Gpt2Tokenizer(const std::string& vocab_json_path, const std::string& merges_txt_path)
    : impl_(std::make_unique<Impl>()) {
  impl_->load_vocab(vocab_json_path);
  impl_->load_merges(merges_txt_path);
  impl_->compile_pre_tokenizer();
}

Gpt2Tokenizer::~Gpt2Tokenizer() = default;
Gpt2Tokenizer::Gpt2Tokenizer(Gpt2Tokenizer&&) noexcept = default;
Gpt2Tokenizer& Gpt2Tokenizer::operator=(Gpt2Tokenizer&&) noexcept = default;

std::vector<std::int32_t> Gpt2Tokenizer::encode(std::string_view text, bool allow_special,
                                                const std::string& source) const {
  check_utf8(text, source);

  std::vector<std::int32_t> ids;
  ids.reserve(text.size() / 4 + 16);
  if (!allow_special) {
    impl_->encode_ordinary(text, ids);
    return ids;
  }
  // Hugging Face splits the text at each special token first and pre-tokenizes the pieces between them on their
  // own, so a word never spans a special token.
  std::size_t start = 0;
  while (true) {
    const std::size_t found = text.find(kEndOfText, start);
    if (found == std::string_view::npos) break;
    impl_->encode_ordinary(text.substr(start, found - start), ids);
    ids.push_back(impl_->eot_id);
    start = found + kEndOfText.size();
  }
  impl_->encode_ordinary(text.substr(start), ids);
  return ids;
}

std::string Gpt2Tokenizer::decode(std::span<const std::int32_t> ids) const {
  std::string text;
  text.reserve(ids.size() * 4);
  const auto vocab_size = static_cast<std::int64_t>(impl_->token_bytes.size());
  for (std::size_t i = 0; i < ids.size(); ++i) {
    const std::int32_t id = ids[i];
    if (id < 0 || id >= vocab_size)
      throw Error("decode: token id " + std::to_string(id) + " at position " + std::to_string(i) +
                  " is outside the vocabulary (0.." + std::to_string(vocab_size - 1) + ")");
    text += impl_->token_bytes[static_cast<std::size_t>(id)];
  }
  return text;
}

int Gpt2Tokenizer::vocab_size() const { return static_cast<int>(impl_->token_bytes.size()); }
int Gpt2Tokenizer::eot_id() const { return impl_->eot_id; }

void check_utf8(std::string_view text, const std::string& source) {
  const std::size_t bad = find_invalid_utf8(text);
  if (bad != std::string_view::npos) fail_file(source, "not valid UTF-8 at byte " + std::to_string(bad));
}

std::string universal_newlines(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\r') {
      out += text[i];
    } else {
      out += '\n';
      if (i + 1 < text.size() && text[i + 1] == '\n') ++i;
    }
  }
  return out;
}

Gpt2Tokenizer load_tokenizer(const std::string& model_dir) {
  const std::string vocab = model_dir + "/vocab.json";
  const std::string merges = model_dir + "/merges.txt";
  if (!file_exists(vocab)) fail_file(vocab, "missing (a GPT-2 model directory needs vocab.json and merges.txt)");
  if (!file_exists(merges)) fail_file(merges, "missing (a GPT-2 model directory needs vocab.json and merges.txt)");
  return Gpt2Tokenizer(vocab, merges);
}

}  // namespace gptbench
