// The safetensors reader rejects every malformed file with its own message;
// the writer publishes atomically.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "quantkit/io/safetensors.hpp"

namespace quantkit::io {
namespace {

std::vector<std::uint8_t> make_file(const std::string& header, std::size_t data_bytes,
                                    std::uint64_t declared_length = 0) {
  const std::uint64_t length = declared_length != 0 ? declared_length : header.size();
  std::vector<std::uint8_t> file(8 + header.size() + data_bytes, 0xAB);
  for (int i = 0; i < 8; ++i)
    file[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(length >> (8 * i));
  std::memcpy(file.data() + 8, header.data(), header.size());
  return file;
}

const std::string kValid =
    R"({"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]},)"
    R"("a":{"dtype":"BF16","shape":[1,2],"data_offsets":[0,4]},"__metadata__":{"format":"pt"}})";

std::string rejection(const std::vector<std::uint8_t>& file) {
  try {
    parse_safetensors(file);
  } catch (const FileFormatError& error) {
    return error.what();
  }
  return "accepted";
}

TEST(Safetensors, ParsesAValidFileInOffsetOrder) {
  const auto file = make_file(kValid + "   ", 12);  // trailing spaces pad the header
  const auto header = parse_safetensors(file);
  ASSERT_EQ(header.tensors.size(), 2u);
  EXPECT_EQ(header.tensors[0].name, "a");
  EXPECT_EQ(header.tensors[0].dtype, StDType::BF16);
  EXPECT_EQ(header.tensors[0].shape, (Shape{1, 2}));
  EXPECT_EQ(header.tensors[1].begin, 4u);
  EXPECT_EQ(header.metadata.at("format"), "pt");
  EXPECT_EQ(header.data_start, 8 + kValid.size() + 3);
}

TEST(Safetensors, AcceptsEmptyAndScalarTensors) {
  const std::string header = R"({"empty":{"dtype":"F32","shape":[0,4],"data_offsets":[0,0]},)"
                             R"("scalar":{"dtype":"I64","shape":[],"data_offsets":[0,8]}})";
  EXPECT_EQ(parse_safetensors(make_file(header, 8)).tensors.size(), 2u);
}

struct Corruption {
  const char* what;
  std::vector<std::uint8_t> file;
  const char* message;
};

TEST(Safetensors, RejectsEachCorruptionWithItsOwnMessage) {
  auto replace = [](std::string text, const std::string& from, const std::string& to) {
    return text.replace(text.find(from), from.size(), to);
  };
  std::string non_utf8 = kValid;
  non_utf8[2] = '\xff';
  const std::vector<Corruption> cases = {
      {"truncated length", {1, 0, 0}, "too short for the 8-byte header length"},
      {"length past EOF", make_file(kValid, 12, kValid.size() + 100),
       "runs past the end of the file"},
      {"huge length", make_file(kValid, 12, 200'000'000), "exceeds the limit"},
      {"not an object", make_file("[1,2]", 0), "does not start with '{'"},
      {"bad JSON", make_file("{\"a\":", 0), "not valid JSON"},
      {"non-UTF-8 name", make_file(non_utf8, 12), "not valid UTF-8"},
      {"unknown dtype", make_file(replace(kValid, "F32", "Q4"), 12), "unknown dtype 'Q4'"},
      {"bytes mismatch", make_file(replace(kValid, "[2]", "[3]"), 12),
       "needs 12 bytes but data_offsets"},
      {"overlap", make_file(replace(kValid, "[4,12]", "[2,10]"), 12), "overlap"},
      {"gap", make_file(replace(replace(kValid, "[4,12]", "[6,14]"), "[2]", "[2]"), 14),
       "belong to no tensor"},
      {"past buffer", make_file(kValid, 8), "run past the end of the data buffer"},
      {"trailing bytes", make_file(kValid, 20), "trailing bytes"},
      {"duplicate key", make_file(replace(kValid, "\"b\"", "\"a\""), 12), "names 'a' twice"},
      {"metadata value", make_file(replace(kValid, "\"pt\"", "1"), 12), "is not a string"},
      {"negative dim", make_file(replace(kValid, "[2]", "[-2]"), 12), "not a non-negative integer"},
      {"end before begin", make_file(replace(kValid, "[4,12]", "[12,4]"), 12), "end before begin"},
      {"partial byte", make_file(R"({"x":{"dtype":"F4","shape":[3],"data_offsets":[0,1]}})", 1),
       "not a whole number of bytes"},
      {"unknown field", make_file(replace(kValid, "\"shape\":[2]", "\"shape\":[2],\"x\":1"), 12),
       "unknown field 'x'"},
      {"missing offsets", make_file(R"({"x":{"dtype":"U8","shape":[1]}})", 1),
       "needs data_offsets"},
  };
  for (const auto& c : cases) {
    EXPECT_NE(rejection(c.file).find(c.message), std::string::npos)
        << c.what << ": " << rejection(c.file);
  }
}

class TempDir : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("quantkit_st_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

using SafetensorsWriterTest = TempDir;

TEST_F(SafetensorsWriterTest, RoundTripsThroughTheReader) {
  const auto path = (dir_ / "out.safetensors").string();
  {
    SafetensorsWriter writer(path, {{"w", StDType::F32, {2, 2}}, {"n", StDType::U8, {3}}},
                             {{"k", "v"}});
    const float values[4] = {1, 2, 3, 4};
    const std::uint8_t tail[3] = {7, 8, 9};
    writer.write({reinterpret_cast<const std::uint8_t*>(values), 8});  // a write may split a tensor
    writer.write({reinterpret_cast<const std::uint8_t*>(values) + 8, 8});
    writer.write(tail);
    writer.commit();
  }
  const auto file = SafetensorsFile::open(path);
  EXPECT_EQ(file.header().data_start % 8, 0u);
  const auto* w = file.header().find("w");
  ASSERT_NE(w, nullptr);
  float back[4];
  std::memcpy(back, file.bytes(*w).data(), 16);
  EXPECT_EQ(back[3], 4.0f);
  EXPECT_EQ(file.bytes(*file.header().find("n"))[2], 9);
  EXPECT_EQ(file.header().metadata.at("k"), "v");
}

TEST_F(SafetensorsWriterTest, LeavesNothingWhenNotCommitted) {
  const auto path = (dir_ / "out.safetensors").string();
  {
    SafetensorsWriter writer(path, {{"w", StDType::F32, {4}}});
    const float half[2] = {1, 2};
    writer.write({reinterpret_cast<const std::uint8_t*>(half), 8});
    EXPECT_THROW(writer.commit(), Error);                             // 8 bytes missing
    EXPECT_THROW(writer.write(std::vector<std::uint8_t>(9)), Error);  // past the declared tensors
  }
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_FALSE(std::filesystem::exists(path + ".partial"));
}

TEST_F(SafetensorsWriterTest, OpenReportsMissingAndMalformedFiles) {
  EXPECT_THROW(SafetensorsFile::open((dir_ / "missing").string()), IoError);
  std::ofstream(dir_ / "bad.safetensors") << "garbage!";
  try {
    SafetensorsFile::open((dir_ / "bad.safetensors").string());
    FAIL() << "accepted";
  } catch (const FileFormatError& error) {
    EXPECT_NE(std::string(error.what()).find("bad.safetensors"), std::string::npos) << error.what();
  }
}

}  // namespace
}  // namespace quantkit::io
