// Output-path rules and staged publishing, case by case (the CLI suite checks
// the same rules end to end; these run under the sanitizers too).
#include <gtest/gtest.h>

#include <unistd.h>
#include "error_of.hpp"

#include <filesystem>
#include <fstream>

#include "quantkit/io/output_target.hpp"
#include "quantkit/io/safetensors.hpp"

namespace quantkit::io {
namespace {

namespace fs = std::filesystem;

using quantkit::testing::error_of;

void write(const fs::path& path, const std::string& text) {
  std::ofstream(path) << text;
}

class OutputTargetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("quantkit_out_" + std::to_string(::getpid()));
    fs::create_directories(root_ / "model");
    write(root_ / "model" / "model.safetensors", "x");
  }
  void TearDown() override { fs::remove_all(root_); }
  std::string at(const std::string& name) const { return (root_ / name).string(); }
  fs::path root_;
};

TEST_F(OutputTargetTest, RefusesTheInputItsContainersAndItsInside) {
  const std::string in = at("model");
  auto check = [&](const std::string& out) {
    return error_of([&] { check_output_path(out, OutputKind::folder, in, true); });
  };
  EXPECT_NE(check(in + "/").find("is the input"), std::string::npos);
  EXPECT_NE(check(in + "/../model/.").find("is the input"), std::string::npos);
  EXPECT_NE(check(root_.string()).find("contains the input"), std::string::npos);
  EXPECT_NE(check("/").find("contains the input"), std::string::npos);
  EXPECT_NE(check(in + "/sub").find("lies inside the input folder"), std::string::npos);
  EXPECT_NE(check(at("missing/out")).find("does not exist"), std::string::npos);
  EXPECT_EQ(check(at("out/")), "<no error>");
  EXPECT_EQ(check_output_path(at("out//"), OutputKind::folder, in, false), root_ / "out");
}

TEST_F(OutputTargetTest, ReplacesOnlyWhatQuantkitWrote) {
  const std::string in = at("model/model.safetensors");
  write(root_ / "notes.txt", "mine");
  EXPECT_NE(error_of([&] {
              check_output_path(at("notes.txt"), OutputKind::file, in, false);
            }).find("pass --force"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              check_output_path(at("notes.txt"), OutputKind::file, in, true);
            }).find("not a checkpoint quantkit wrote"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              check_output_path("/dev/null", OutputKind::file, in, true);
            }).find("a character device"),
            std::string::npos);
  fs::create_directory(root_ / "folder");
  EXPECT_NE(error_of([&] {
              check_output_path(at("folder"), OutputKind::file, in, true);
            }).find("is a folder, but the input is a file"),
            std::string::npos);
  {
    SafetensorsWriter writer(at("q.safetensors"), {},
                             {{"quantization_config", R"({"quantkit": {}})"}});
    writer.commit();
  }
  EXPECT_TRUE(is_quantkit_output(root_ / "q.safetensors"));
  EXPECT_EQ(check_output_path(at("q.safetensors"), OutputKind::file, in, true),
            root_ / "q.safetensors");
}

TEST_F(OutputTargetTest, StagingFolderPublishesOrVanishes) {
  const fs::path target = root_ / "out";
  fs::path staging_path;
  {
    StagingFolder staging(target);
    staging_path = staging.path();
    EXPECT_EQ(staging_path.parent_path(), root_);
    write(staging_path / "a", "partial");
  }  // never published
  EXPECT_FALSE(fs::exists(staging_path));
  EXPECT_FALSE(fs::exists(target));
  for (const char* content : {"first", "second"}) {
    StagingFolder staging(target);
    write(staging.path() / "a", content);
    staging.publish();
    std::ifstream in(target / "a");
    std::string text;
    in >> text;
    EXPECT_EQ(text, content);
  }
  std::size_t entries = 0;
  for ([[maybe_unused]] const auto& item : fs::directory_iterator(root_)) ++entries;
  EXPECT_EQ(entries, 2u);  // model/ and out/: the old output and the staging names are gone
}

TEST_F(OutputTargetTest, WriteFileAtomicallyLeavesNoTemporary) {
  write_file_atomically(root_ / "config.json", "{}");
  write_file_atomically(root_ / "config.json", R"({"a": 1})");
  std::ifstream in(root_ / "config.json");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, R"({"a": 1})");
  for (const auto& item : fs::directory_iterator(root_)) {
    EXPECT_EQ(item.path().filename().string().find(".partial"), std::string::npos);
  }
}

}  // namespace
}  // namespace quantkit::io
