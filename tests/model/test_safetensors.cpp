#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "../test_support.h"
#include "common/error.h"
#include "model/safetensors.h"

namespace gptbench {
namespace {

using testing::TempDir;
using testing::write_bytes;

std::string safetensors_bytes(const std::string& header, const std::string& data, std::uint64_t header_len_override = 0) {
  std::uint64_t len = header_len_override ? header_len_override : header.size();
  std::string bytes(8, '\0');
  std::memcpy(bytes.data(), &len, 8);
  return bytes + header + data;
}

std::string error_of(const std::string& path) {
  try {
    SafetensorsFile f(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Safetensors, HalfConversionRoundTripsEveryFiniteValue) {
  for (std::uint32_t h = 0; h < 0x10000; ++h) {
    if ((h & 0x7c00) == 0x7c00) continue;  // inf / NaN
    const float f = half_to_float(static_cast<std::uint16_t>(h));
    ASSERT_EQ(float_to_half(f), h) << "half bits " << h;
  }
  EXPECT_EQ(half_to_float(0x3c00), 1.0f);
  EXPECT_EQ(half_to_float(0xc000), -2.0f);
  EXPECT_EQ(float_to_half(65520.0f), 0x7c00);  // rounds past the largest half: infinity
  EXPECT_EQ(float_to_half(1.0f + 1.0f / 2048.0f), 0x3c00);  // a tie rounds to even
}

TEST(Safetensors, Bf16RoundsToNearestEven) {
  EXPECT_EQ(float_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(bf16_to_float(0x3f80), 1.0f);
  EXPECT_EQ(float_to_bf16(1.0f + 1.0f / 256.0f), 0x3f80);  // tie -> even
  EXPECT_EQ(float_to_bf16(1.0f + 3.0f / 256.0f), 0x3f82);
}

TEST(Safetensors, WriteThenReadEveryDtype) {
  TempDir dir;
  std::vector<float> a = {1.0f, -2.5f, 0.125f, 3.0f, 1e-3f, -7.0f};
  for (DType d : {DType::F32, DType::F16, DType::BF16}) {
    const std::string path = dir / (std::string(dtype_name(d)) + ".safetensors");
    write_safetensors(path, {{"a", {2, 3}, a.data()}, {"b", {1}, a.data()}}, d, {{"format", "pt"}});
    SafetensorsFile f(path);
    ASSERT_EQ(f.entries().size(), 2u);
    const auto* e = f.find("a");
    ASSERT_NE(e, nullptr);
    EXPECT_EQ(e->dtype, d);
    EXPECT_EQ(e->shape, (std::vector<std::int64_t>{2, 3}));
    std::vector<float> back(6);
    f.read_as_f32(*e, back.data());
    for (int i = 0; i < 6; ++i) EXPECT_NEAR(back[i], a[i], std::fabs(a[i]) * (d == DType::BF16 ? 8e-3 : 1e-3)) << dtype_name(d);
    EXPECT_EQ(f.metadata().at("format"), "pt");
  }
}

TEST(Safetensors, TruncatedFileIsAnError) {
  TempDir dir;
  write_bytes(dir / "t.safetensors", "abc");
  EXPECT_NE(error_of(dir / "t.safetensors").find("truncated"), std::string::npos);
}

TEST(Safetensors, HeaderLengthPastEndIsAnError) {
  TempDir dir;
  write_bytes(dir / "h.safetensors", safetensors_bytes("{}", "", 1000));
  const std::string e = error_of(dir / "h.safetensors");
  EXPECT_NE(e.find("header length 1000 runs past the end"), std::string::npos) << e;
  EXPECT_NE(e.find(dir / "h.safetensors"), std::string::npos) << e;
}

TEST(Safetensors, OffsetsOutOfRangeAreAnError) {
  TempDir dir;
  write_bytes(dir / "o.safetensors",
              safetensors_bytes(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", std::string(8, '\0')));
  const std::string e = error_of(dir / "o.safetensors");
  EXPECT_NE(e.find("run past the end of the data"), std::string::npos) << e;
}

TEST(Safetensors, OverlappingTensorsAreAnError) {
  TempDir dir;
  write_bytes(dir / "v.safetensors",
              safetensors_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                                std::string(12, '\0')));
  EXPECT_NE(error_of(dir / "v.safetensors").find("overlap"), std::string::npos);
}

TEST(Safetensors, SizeThatContradictsDtypeAndShapeIsAnError) {
  TempDir dir;
  write_bytes(dir / "s.safetensors",
              safetensors_bytes(R"({"a":{"dtype":"F16","shape":[3],"data_offsets":[0,8]}})", std::string(8, '\0')));
  EXPECT_NE(error_of(dir / "s.safetensors").find("holds 8 bytes but its dtype and shape need 6"), std::string::npos);
}

TEST(Safetensors, HeaderThatIsNotJsonIsAnError) {
  TempDir dir;
  write_bytes(dir / "j.safetensors", safetensors_bytes("{not json", ""));
  EXPECT_NE(error_of(dir / "j.safetensors").find("not valid JSON"), std::string::npos);
}

TEST(Safetensors, MissingFileIsAnError) {
  TempDir dir;
  EXPECT_NE(error_of(dir / "absent.safetensors").find("cannot open"), std::string::npos);
}

}  // namespace
}  // namespace gptbench
