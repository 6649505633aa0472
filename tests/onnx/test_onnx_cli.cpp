// The gptbench program's side of ONNX: `gptbench export` writes a checked file of the right size, and bad ONNX
// input through the onnxruntime backend (corrupt file, wrong graph, missing library) is one error line and exit 1.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "../test_support.h"

namespace gptbench {
namespace {

using testing::run_gptbench;
using testing::TempDir;

std::string quoted(const std::string& s) { return "'" + s + "'"; }

TEST(OnnxCli, ExportWritesACheckedFileOfTheExpectedSize) {
  ASSERT_NE(std::getenv("GPTBENCH_BIN"), nullptr) << "run through ctest (GPTBENCH_BIN names the program)";
  TempDir dir;
  const auto r = run_gptbench("export --model " + quoted(testing::tiny_model_dir()) +
                              " --format onnx --precision fp32 --json --out " + quoted(dir / "tiny.onnx"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j.at("checker").get<std::string>(), "ok");
  EXPECT_TRUE(j.at("checker_passed").get<bool>());
  const double bytes = j.at("bytes").get<double>();
  EXPECT_NEAR(bytes, 4.0 * 7'357'312, 0.002 * 4.0 * 7'357'312);  // ≈29.4 MB
  EXPECT_EQ(static_cast<std::uintmax_t>(bytes), std::filesystem::file_size(dir / "tiny.onnx"));

  const auto past = run_gptbench("export --model " + quoted(testing::tiny_model_dir()) +
                                 " --precision fp16 --with-past --out " + quoted(dir / "past16.onnx"));
  ASSERT_EQ(past.exit_code, 0) << past.err;
  EXPECT_NE(past.out.find("checker    ok"), std::string::npos) << past.out;
}

TEST(OnnxCli, ExportOfAMissingModelFailsWithOneLine) {
  TempDir dir;
  const auto r = run_gptbench("export --model " + quoted(dir / "no-such-model") + " --out " + quoted(dir / "x.onnx"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("gptbench: error:"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(dir / "x.onnx"));
}

TEST(OnnxCli, CorruptOnnxThroughThePerplexityCommandIsAnError) {
  TempDir dir;
  testing::write_bytes(dir / "bad.onnx", "this is not a protobuf at all, just text that ends early");
  // --option takes a key and a value (CLI11 map option).
  const auto r = run_gptbench("perplexity --backend onnxruntime --max-tokens 2048 --option model_path " +
                              quoted(dir / "bad.onnx"));
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.err.find("bad.onnx"), std::string::npos) << r.err;
  EXPECT_EQ(r.out.find("ppl"), std::string::npos) << "no result may be printed: " << r.out;
}

TEST(OnnxCli, MissingOnnxRuntimeLibraryIsAnError) {
  ::setenv("GPTBENCH_ORT_LIBRARY", "/nonexistent/libonnxruntime.so.1", 1);
  const auto r = run_gptbench("perplexity --backend onnxruntime --max-tokens 2048");
  ::unsetenv("GPTBENCH_ORT_LIBRARY");
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.err.find("cannot load the ONNX Runtime library"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace gptbench
