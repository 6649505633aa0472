// The GPT-2 tokenizer must give exactly Hugging Face's ids: parity on the whole WikiText-2 test file against the
// shared reference, Hugging Face's own ids for hard strings (data/hf_cases.json, made by
// scripts/reference/tokenizer_cases.py), the BPE merge order on a hand-made vocabulary, and every bad input.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "common/error.h"
#include "common/hash.h"
#include "common/paths.h"
#include "tokenizer/gpt2_tokenizer.h"

namespace gptbench {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Ids = std::vector<std::int32_t>;

const Gpt2Tokenizer& gpt2() {
  static const Gpt2Tokenizer tokenizer = load_tokenizer(default_model_dir());
  return tokenizer;
}

std::string error_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no gptbench::Error thrown)";
}

// A fresh empty folder under the system temp dir, removed with the object.
struct TempDir {
  fs::path path;
  TempDir() {
    static int counter = 0;
    path = fs::temp_directory_path() /
           ("gptbench_tok_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  std::string file(const std::string& name) const { return (path / name).string(); }
  void write(const std::string& name, const std::string& contents) const {
    std::ofstream(path / name, std::ios::binary) << contents;
  }
};

// ---------------------------------------------------------------------------------------------------------------
// Parity with the shared reference on the whole WikiText-2 test file.

TEST(Gpt2Tokenizer, WikiText2TestFileMatchesSharedReference) {
  const auto reference = nlohmann::json::parse(read_text_file(shared_path("reference/gpt2-tiny-wt2.json")));
  const std::string dataset_path = shared_path(reference.at("dataset").get<std::string>());
  // The file has CRLF line ends; the reference read it as Python's text mode does (universal newlines).
  const std::string raw = read_text_file(dataset_path);
  const std::string text = universal_newlines(raw);
  EXPECT_LT(text.size(), raw.size());

  const Ids ids = gpt2().encode(text, false, dataset_path);

  EXPECT_EQ(ids.size(), reference.at("dataset_gpt2_tokens").get<std::size_t>());
  EXPECT_EQ(sha256_ids_int32le(ids), reference.at("dataset_ids_sha256_int32le").get<std::string>());
  const auto first = reference.at("dataset_first_512_ids").get<Ids>();
  ASSERT_EQ(first.size(), 512u);
  ASSERT_GE(ids.size(), first.size());
  EXPECT_EQ(Ids(ids.begin(), ids.begin() + 512), first);
  // Byte-level BPE loses nothing.
  EXPECT_TRUE(gpt2().decode(ids) == text) << "decode(encode(wiki.test.raw)) differs from the file";
}

// ---------------------------------------------------------------------------------------------------------------
// Hugging Face's ids for hard strings.

TEST(Gpt2Tokenizer, MatchesHuggingFaceOnHardCases) {
  const fs::path cases_path = fs::path(GPTBENCH_TOKENIZER_TEST_DATA) / "hf_cases.json";
  if (!fs::exists(cases_path))
    GTEST_SKIP() << cases_path.string()
                 << " is absent: run scripts/reference/tokenizer_cases.py ../shared/models/gpt2-tiny-wt2 where "
                    "transformers is installed to create it";
  const auto cases = nlohmann::json::parse(read_text_file(cases_path.string())).at("cases");
  ASSERT_GT(cases.size(), 50u);
  int checked_special = 0;
  for (const auto& c : cases) {
    const auto text = c.at("text").get<std::string>();
    EXPECT_EQ(gpt2().encode(text), c.at("ids").get<Ids>()) << "text: " << nlohmann::json(text).dump();
    if (c.contains("ids_allow_special")) {
      EXPECT_EQ(gpt2().encode(text, true), c.at("ids_allow_special").get<Ids>())
          << "allow_special, text: " << nlohmann::json(text).dump();
      ++checked_special;
    }
    EXPECT_TRUE(gpt2().decode(c.at("ids").get<Ids>()) == text) << "text: " << nlohmann::json(text).dump();
  }
  EXPECT_GT(checked_special, 0);
}

// ---------------------------------------------------------------------------------------------------------------
// Known GPT-2 ids.

TEST(Gpt2Tokenizer, KnownIds) {
  EXPECT_THAT(gpt2().encode("Hello world"), ElementsAre(15496, 995));
  EXPECT_THAT(gpt2().encode(" Hello"), ElementsAre(18435));
  EXPECT_THAT(gpt2().encode("\n\n"), ElementsAre(628));
  EXPECT_THAT(gpt2().encode(" ="), ElementsAre(796));
  EXPECT_TRUE(gpt2().encode("").empty());
  EXPECT_EQ(gpt2().vocab_size(), 50257);
  EXPECT_EQ(gpt2().eot_id(), 50256);
}

TEST(Gpt2Tokenizer, PreTokenizerSplitsLikeGpt2) {
  // Words carry their leading space; the last of a run of spaces joins the next word; contractions split off.
  // (GPT-2's vocabulary has no token for two spaces, so a run of spaces comes out one token per space.)
  const auto pieces = [](const std::string& text) {
    std::vector<std::string> out;
    for (std::int32_t id : gpt2().encode(text)) out.push_back(gpt2().decode(Ids{id}));
    return out;
  };
  EXPECT_THAT(pieces("Hello   world"), ElementsAre("Hello", " ", " ", " world"));
  EXPECT_THAT(pieces("I'm here"), ElementsAre("I", "'m", " here"));
  // Contractions are case-sensitive in GPT-2's pattern: "'M" is punctuation followed by a letter.
  EXPECT_THAT(pieces("I'M"), ElementsAre("I", "'", "M"));
  EXPECT_THAT(pieces("Hello  "), ElementsAre("Hello", " ", " "));
  EXPECT_THAT(pieces("Hello\n\n world"), ElementsAre("Hello", "\n\n", " world"));
}

// ---------------------------------------------------------------------------------------------------------------
// Round trips.

TEST(Gpt2Tokenizer, RoundTripsTrickyStrings) {
  const std::vector<std::string> texts = {
      "",
      " ",
      "     ",
      "\n\n \n",
      "\t\ttabs\tand  spaces \t",
      "trailing spaces   ",
      "I'm, you're, he's, we've, they'll, I'd, can't; I'M YOU'RE",
      "it\u2019s John\u2019s",
      "na\u00efve caf\u00e9, e\u0301 combining",
      "\u4f60\u597d\uff0c\u4e16\u754c\u3002 \u3053\u3093\u306b\u3061\u306f \uc548\ub155\ud558\uc138\uc694",
      "\u041f\u0440\u0438\u0432\u0435\u0442 \u0645\u0631\u062d\u0628\u0627 \u05e9\u05dc\u05d5\u05dd",
      "\U0001F600 \U0001F468\u200d\U0001F469\u200d\U0001F467 \U0001F44D\U0001F3FD \U0001F1FA\U0001F1F8",
      "12345678901234567890 3.14159",
      "a\u00a0b\u3000c\u2028d\u0085e\u180ef",
      std::string("nul\0byte", 8),
      "\x01\x02\x7f",
      "<|endoftext|> in the middle <|endoftext|>",
  };
  for (const auto& text : texts) {
    EXPECT_TRUE(gpt2().decode(gpt2().encode(text)) == text) << nlohmann::json(text).dump();
    EXPECT_TRUE(gpt2().decode(gpt2().encode(text, true)) == text) << nlohmann::json(text).dump();
  }
}

TEST(Gpt2Tokenizer, LongRunsEncodeAndRoundTrip) {
  // A long run of spaces exercises the regex's backtracking in \s+(?!\S); long words the BPE's merge queue.
  for (const std::string& text : {std::string(100000, ' ') + "x", std::string(20000, '\n'),
                                  std::string(5000, 'a'), std::string(3000, '7'), std::string(2000, '!')}) {
    const Ids ids = gpt2().encode(text);
    EXPECT_FALSE(ids.empty());
    EXPECT_LT(ids.size(), text.size());
    EXPECT_TRUE(gpt2().decode(ids) == text) << "length " << text.size();
  }
}

TEST(Gpt2Tokenizer, SameIdsFromSeveralThreads) {
  // The word cache is shared: concurrent encodes must not disturb each other.
  const std::string text = read_text_file(shared_path("data/wikitext-2-raw/wiki.test.raw")).substr(0, 200000);
  const Gpt2Tokenizer fresh = load_tokenizer(default_model_dir());  // cold cache, so the threads fill it together
  std::vector<Ids> results(4);
  std::vector<std::thread> threads;
  for (auto& result : results) threads.emplace_back([&] { result = fresh.encode(text); });
  for (auto& t : threads) t.join();
  const Ids expected = gpt2().encode(text);
  for (const auto& result : results) EXPECT_TRUE(result == expected);
}

// ---------------------------------------------------------------------------------------------------------------
// <|endoftext|>

TEST(Gpt2Tokenizer, EndOfTextIsPlainTextUnlessAllowed) {
  const std::string text = "Hello<|endoftext|>world";
  const Ids plain = gpt2().encode(text);
  EXPECT_THAT(plain, ::testing::Not(::testing::Contains(50256)));
  EXPECT_EQ(gpt2().decode(plain), text);

  const Ids special = gpt2().encode(text, true);
  Ids expected = gpt2().encode("Hello");
  expected.push_back(50256);
  const Ids world = gpt2().encode("world");
  expected.insert(expected.end(), world.begin(), world.end());
  EXPECT_EQ(special, expected);
  EXPECT_EQ(gpt2().decode(special), text);

  EXPECT_THAT(gpt2().encode("<|endoftext|>", true), ElementsAre(50256));
  EXPECT_THAT(gpt2().encode("<|endoftext|><|endoftext|>", true), ElementsAre(50256, 50256));
  EXPECT_GT(gpt2().encode("<|endoftext|>").size(), 1u);
  // Text around a special token is pre-tokenized on its own: " b" keeps its space, "a " its trailing space.
  Ids around = gpt2().encode("a ");
  around.push_back(50256);
  const Ids b = gpt2().encode(" b");
  around.insert(around.end(), b.begin(), b.end());
  EXPECT_EQ(gpt2().encode("a <|endoftext|> b", true), around);
  // Almost-special strings stay text.
  EXPECT_THAT(gpt2().encode("<|endoftext|", true), ::testing::Not(::testing::Contains(50256)));
}

// ---------------------------------------------------------------------------------------------------------------
// Bad input.

TEST(Gpt2Tokenizer, RejectsInvalidUtf8WithItsOffset) {
  EXPECT_EQ(error_of([] { gpt2().encode("abc\xff" "def"); }), "input: not valid UTF-8 at byte 3");
  EXPECT_EQ(error_of([] { gpt2().encode("ok \xc3", false, "data.txt"); }), "data.txt: not valid UTF-8 at byte 3");
  EXPECT_EQ(error_of([] { gpt2().encode("\xc0\xaf"); }), "input: not valid UTF-8 at byte 0");          // overlong
  EXPECT_EQ(error_of([] { gpt2().encode("x\xed\xa0\x80"); }), "input: not valid UTF-8 at byte 1");     // surrogate
  EXPECT_EQ(error_of([] { gpt2().encode("\xf4\x90\x80\x80"); }), "input: not valid UTF-8 at byte 0");  // > U+10FFFF
  EXPECT_EQ(error_of([] { gpt2().encode("\xe2\x82" "x"); }), "input: not valid UTF-8 at byte 0");      // cut short
  EXPECT_EQ(error_of([] { gpt2().encode("caf\xc3\xa9 \x80", true); }), "input: not valid UTF-8 at byte 6");
}

TEST(Gpt2Tokenizer, UniversalNewlinesReadsTextAsPythonDoes) {
  EXPECT_EQ(universal_newlines("a\r\nb\rc\nd\r\r\n"), "a\nb\nc\nd\n\n");
  EXPECT_EQ(universal_newlines(""), "");
  EXPECT_EQ(universal_newlines("\r"), "\n");
  EXPECT_EQ(error_of([] { check_utf8("ok\r\n\xfe", "f.txt"); }), "f.txt: not valid UTF-8 at byte 4");
  EXPECT_NO_THROW(check_utf8("caf\xc3\xa9 \xf0\x9f\x98\x80", "f.txt"));
}

TEST(Gpt2Tokenizer, DecodeRejectsIdsOutsideTheVocabulary) {
  EXPECT_THAT(error_of([] { gpt2().decode(Ids{15496, 50257}); }), HasSubstr("token id 50257"));
  EXPECT_THAT(error_of([] { gpt2().decode(Ids{-1}); }), HasSubstr("token id -1"));
  EXPECT_EQ(gpt2().decode(Ids{50256}), "<|endoftext|>");
}

TEST(Gpt2Tokenizer, MissingFilesNameTheFile) {
  TempDir dir;
  EXPECT_THAT(error_of([&] { load_tokenizer(dir.path.string()); }), HasSubstr(dir.file("vocab.json")));
  fs::copy_file(default_model_dir() + "/vocab.json", dir.file("vocab.json"));
  EXPECT_THAT(error_of([&] { load_tokenizer(dir.path.string()); }), HasSubstr(dir.file("merges.txt")));
  EXPECT_THAT(error_of([&] { Gpt2Tokenizer(dir.file("vocab.json"), dir.file("nope.txt")); }),
              HasSubstr(dir.file("nope.txt")));
  fs::copy_file(default_model_dir() + "/merges.txt", dir.file("merges.txt"));
  EXPECT_THAT(load_tokenizer(dir.path.string()).encode("Hello world"), ElementsAre(15496, 995));
}

TEST(Gpt2Tokenizer, MalformedFilesNameTheFileAndProblem) {
  TempDir dir;
  const std::string merges = default_model_dir() + "/merges.txt";
  const std::string vocab = default_model_dir() + "/vocab.json";
  const auto load_error = [&](const std::string& vocab_path, const std::string& merges_path) {
    return error_of([&] { Gpt2Tokenizer(vocab_path, merges_path); });
  };

  dir.write("truncated.json", read_text_file(vocab).substr(0, 5000));
  EXPECT_THAT(load_error(dir.file("truncated.json"), merges),
              ::testing::AllOf(HasSubstr(dir.file("truncated.json")), HasSubstr("not valid JSON")));
  dir.write("array.json", "[1, 2, 3]");
  EXPECT_THAT(load_error(dir.file("array.json"), merges), HasSubstr(dir.file("array.json")));
  dir.write("string_id.json", R"({"a": "zero"})");
  EXPECT_THAT(load_error(dir.file("string_id.json"), merges), HasSubstr(dir.file("string_id.json")));
  dir.write("few_bytes.json", R"({"a": 0, "b": 1})");  // a byte-level vocabulary needs all 256 bytes
  EXPECT_THAT(load_error(dir.file("few_bytes.json"), merges),
              ::testing::AllOf(HasSubstr(dir.file("few_bytes.json")), HasSubstr("byte")));

  dir.write("one_token.txt", "#version: 0.2\n\u0120 t\nbroken\n");
  EXPECT_THAT(load_error(vocab, dir.file("one_token.txt")),
              ::testing::AllOf(HasSubstr(dir.file("one_token.txt")), HasSubstr("line 3")));
  dir.write("unknown_token.txt", "#version: 0.2\nzzzzqqq xxyyzz\n");
  EXPECT_THAT(load_error(vocab, dir.file("unknown_token.txt")),
              ::testing::AllOf(HasSubstr(dir.file("unknown_token.txt")), HasSubstr("line 2")));
}

// ---------------------------------------------------------------------------------------------------------------
// The merge order on a hand-made vocabulary, where the expected split follows from the rules alone.

// GPT-2's stand-in character for each byte, as UTF-8.
std::string byte_char(int b) {
  const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
  int cp = b;
  if (!printable) {
    cp = 256;
    for (int k = 0; k < b; ++k)
      if (!((k >= '!' && k <= '~') || (k >= 0xA1 && k <= 0xAC) || (k >= 0xAE))) ++cp;
  }
  std::string out;
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return out;
}

// Writes a vocabulary of the 256 bytes, <|endoftext|>, and the given merges' results; returns its tokenizer.
Gpt2Tokenizer tiny_tokenizer(const TempDir& dir, const std::vector<std::pair<std::string, std::string>>& merges) {
  nlohmann::json vocab = nlohmann::json::object();
  int next_id = 0;
  for (int b = 0; b < 256; ++b) vocab[byte_char(b)] = next_id++;
  std::string merges_text = "#version: 0.2\n";
  for (const auto& [left, right] : merges) {
    if (!vocab.contains(left + right)) vocab[left + right] = next_id++;
    merges_text += left + " " + right + "\n";
  }
  vocab["<|endoftext|>"] = next_id++;
  dir.write("vocab.json", vocab.dump());
  dir.write("merges.txt", merges_text);
  return Gpt2Tokenizer(dir.file("vocab.json"), dir.file("merges.txt"));
}

std::vector<std::string> split(const Gpt2Tokenizer& tokenizer, const std::string& text) {
  std::vector<std::string> out;
  for (std::int32_t id : tokenizer.encode(text)) out.push_back(tokenizer.decode(Ids{id}));
  return out;
}

TEST(Gpt2TokenizerBpe, LowestRankMergesFirst) {
  {
    TempDir dir;
    const auto tokenizer = tiny_tokenizer(dir, {{"b", "c"}, {"a", "b"}});
    EXPECT_THAT(split(tokenizer, "abc"), ElementsAre("a", "bc"));
  }
  {
    TempDir dir;
    const auto tokenizer = tiny_tokenizer(dir, {{"a", "b"}, {"b", "c"}});
    EXPECT_THAT(split(tokenizer, "abc"), ElementsAre("ab", "c"));
  }
}

TEST(Gpt2TokenizerBpe, LeftmostPairWinsATie) {
  TempDir dir;
  const auto tokenizer = tiny_tokenizer(dir, {{"a", "a"}});
  EXPECT_THAT(split(tokenizer, "aaa"), ElementsAre("aa", "a"));
  EXPECT_THAT(split(tokenizer, "aaaaa"), ElementsAre("aa", "aa", "a"));
}

TEST(Gpt2TokenizerBpe, MergedTokensMergeFurtherAndSpaceIsAByte) {
  TempDir dir;
  const std::string space = byte_char(' ');  // "Ġ"
  const auto tokenizer = tiny_tokenizer(dir, {{"a", "a"}, {"aa", "aa"}, {space, "aaaa"}, {"b", "b"}});
  EXPECT_THAT(split(tokenizer, " aaaaa"), ElementsAre(" aaaa", "a"));
  EXPECT_THAT(split(tokenizer, "aaaa bb"), ElementsAre("aaaa", " ", "bb"));
  // Bytes outside ASCII use their stand-in characters: é is two bytes with no merge, so two tokens.
  EXPECT_EQ(tokenizer.encode("\u00e9").size(), 2u);
}

// ---------------------------------------------------------------------------------------------------------------
// The command line, once the gptbench program is built (GPTBENCH_BIN is set by CTest).

struct CliResult {
  int exit_code;
  std::string output;  // stdout
  std::string errors;  // stderr
};

CliResult run_tokenize_cli(const std::string& args, const std::string& input) {
  TempDir dir;
  dir.write("in.txt", input);
  const std::string command = std::string("\"") + std::getenv("GPTBENCH_BIN") + "\" tokenize " + args + " < \"" +
                              dir.file("in.txt") + "\" > \"" + dir.file("out.txt") + "\" 2> \"" +
                              dir.file("err.txt") + "\"";
  const int status = std::system(command.c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, read_text_file(dir.file("out.txt")),
          read_text_file(dir.file("err.txt"))};
}

TEST(TokenizeCommand, PrintsIdsAsTextOrJson) {
  const char* bin = std::getenv("GPTBENCH_BIN");
  if (bin == nullptr || !fs::exists(bin)) GTEST_SKIP() << "the gptbench program is not built (GPTBENCH_BIN)";
  const std::string model = "--model \"" + default_model_dir() + "\"";

  auto r = run_tokenize_cli(model, "Hello world");
  EXPECT_EQ(r.exit_code, 0) << r.errors;
  EXPECT_EQ(r.output, "15496 995\n");

  r = run_tokenize_cli(model + " --json", "Hello world");
  EXPECT_EQ(r.exit_code, 0) << r.errors;
  EXPECT_EQ(nlohmann::json::parse(r.output).get<Ids>(), Ids({15496, 995}));

  r = run_tokenize_cli(model + " --json --allow-special", "a<|endoftext|>");
  EXPECT_EQ(r.exit_code, 0) << r.errors;
  EXPECT_EQ(nlohmann::json::parse(r.output).get<Ids>(), Ids({64, 50256}));

  r = run_tokenize_cli(model, "bad \xff byte");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.errors, HasSubstr("stdin: not valid UTF-8 at byte 4"));
  EXPECT_EQ(r.output, "");

  // Text is read as Python reads it: CRLF and CR become LF, unless --keep-cr.
  r = run_tokenize_cli(model + " --json", "a\r\nb\rc");
  EXPECT_EQ(r.exit_code, 0) << r.errors;
  EXPECT_EQ(nlohmann::json::parse(r.output).get<Ids>(), gpt2().encode("a\nb\nc"));
  r = run_tokenize_cli(model + " --json --keep-cr", "a\r\nb");
  EXPECT_EQ(r.exit_code, 0) << r.errors;
  EXPECT_EQ(nlohmann::json::parse(r.output).get<Ids>(), gpt2().encode("a\r\nb"));
  r = run_tokenize_cli(model, "\r\n\r\n\xff");
  EXPECT_THAT(r.errors, HasSubstr("stdin: not valid UTF-8 at byte 4"));

  r = run_tokenize_cli("--model /nonexistent/model/dir", "x");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.errors, HasSubstr("/nonexistent/model/dir"));
}

}  // namespace
}  // namespace gptbench
