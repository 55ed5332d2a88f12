// Output-path rules and durable, atomic publishing (see output_target.hpp).
#include "quantkit/io/output_target.hpp"

#include <fcntl.h>
#include <stdio.h>  // renameat2 (glibc >= 2.28)
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <vector>

#include "quantkit/io/safetensors.hpp"

namespace quantkit::io {
namespace fs = std::filesystem;
namespace {

template <typename... Parts>
[[noreturn]] void fail_io(const Parts&... parts) {
  throw IoError(detail::concat(parts..., ": ", std::strerror(errno)));
}

// "out/", "out//" and "out" name the same thing.
fs::path without_trailing_separators(fs::path path) {
  while (!path.has_filename() && path.has_relative_path()) path = path.parent_path();
  return path;
}

// True when `inner` is `outer` or lies below it (both absolute and normalized).
bool is_within(const fs::path& inner, const fs::path& outer) {
  auto in = inner.begin();
  for (auto out = outer.begin(); out != outer.end(); ++out, ++in) {
    if (out->empty()) continue;  // a trailing separator
    if (in == inner.end() || *in != *out) return false;
  }
  return true;
}

std::string describe_type(fs::file_type type) {
  switch (type) {
    case fs::file_type::character:
      return "a character device";
    case fs::file_type::block:
      return "a block device";
    case fs::file_type::fifo:
      return "a FIFO";
    case fs::file_type::socket:
      return "a socket";
    default:
      return "not a regular file or folder";
  }
}

// A config.json whose quantization_config carries quantkit's own block.
bool config_names_quantkit(const std::string& text) {
  const auto config = nlohmann::json::parse(text, nullptr, false);
  if (!config.is_object()) return false;
  const auto found = config.find("quantization_config");
  return found != config.end() && found->is_object() && found->contains("quantkit");
}

bool file_is_quantkit_output(const fs::path& path) {
  try {
    const auto file = SafetensorsFile::open(path.string());
    const auto found = file.header().metadata.find("quantization_config");
    if (found == file.header().metadata.end()) return false;
    const auto config = nlohmann::json::parse(found->second, nullptr, false);
    return config.is_object() && config.contains("quantkit");
  } catch (const Error&) {
    return false;
  }
}

bool folder_is_quantkit_output(const fs::path& path) {
  const fs::path config = path / "config.json";
  std::error_code error;
  if (!fs::is_regular_file(fs::symlink_status(config, error))) return false;
  std::ifstream in(config, std::ios::binary);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return config_names_quantkit(text);
}

// "<folder>/.<name>.partial-XXXXXX" as a writable, NUL-terminated template
// for mkostemp / mkdtemp: hidden, unique, and on the target's file system so
// the final rename is atomic.
std::vector<char> temporary_pattern(const fs::path& target) {
  std::string name(".");
  name.append(target.filename().string()).append(".partial-XXXXXX");
  const std::string pattern = (target.parent_path() / name).string();
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  return buffer;
}

void sync_path(const fs::path& path, int flags) {
  const int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) fail_io("cannot open '", path.string(), "' to flush it");
  if (::fsync(fd) != 0) {
    const int saved = errno;
    ::close(fd);
    errno = saved;
    fail_io("cannot flush '", path.string(), "'");
  }
  ::close(fd);
}

void sync_tree(const fs::path& folder) {
  for (const auto& item : fs::recursive_directory_iterator(folder)) {
    if (item.is_symlink()) continue;
    if (item.is_regular_file()) sync_path(item.path(), O_RDONLY);
    if (item.is_directory()) sync_path(item.path(), O_RDONLY | O_DIRECTORY);
  }
  sync_path(folder, O_RDONLY | O_DIRECTORY);
}

}  // namespace

bool is_quantkit_output(const fs::path& path) {
  std::error_code error;
  const auto status = fs::symlink_status(path, error);
  if (fs::is_regular_file(status)) return file_is_quantkit_output(path);
  if (fs::is_directory(status)) return folder_is_quantkit_output(path);
  return false;
}

fs::path check_output_path(const std::string& output, OutputKind kind, const std::string& input,
                           bool replace) {
  QK_CHECK(!output.empty(), "the output path is empty");
  const fs::path named = without_trailing_separators(fs::absolute(output));
  const auto link_status = fs::symlink_status(named);
  QK_CHECK(!fs::is_symlink(link_status), "output '", output,
           "' is a symbolic link; name the path it points to");
  const fs::path target = fs::weakly_canonical(named);
  if (!input.empty()) {
    const fs::path source = fs::canonical(input);
    const bool input_is_folder = fs::is_directory(source);
    QK_CHECK(target != source, "output '", output, "' is the input '", input,
             "': write the result to another path");
    QK_CHECK(!is_within(source, target), "output '", output, "' contains the input '", input,
             "': replacing it would delete the input");
    QK_CHECK(!(input_is_folder && is_within(target, source)), "output '", output,
             "' lies inside the input folder '", input, "': write it beside the input");
  }

  const fs::path parent = target.parent_path();
  QK_CHECK(fs::is_directory(parent), "the folder '", parent.string(), "' that would hold output '",
           output, "' does not exist");
  const auto status = fs::symlink_status(target);
  if (!fs::exists(status)) return target;
  const bool is_file = fs::is_regular_file(status);
  const bool is_folder = fs::is_directory(status);
  QK_CHECK(is_file || is_folder, "output '", output, "' is ", describe_type(status.type()),
           ": quantkit writes only regular files and folders");
  if (kind == OutputKind::file) {
    QK_CHECK(is_file, "output '", output, "' is a folder, but ",
             input.empty() ? "a file is written" : "the input is a file",
             ": name a .safetensors file");
  } else {
    QK_CHECK(is_folder, "output '", output, "' is a file, but ",
             input.empty() ? "a folder is written" : "the input is a folder", ": name a folder");
  }
  const char* what = is_file ? "file" : "folder";
  QK_CHECK(replace, "output ", what, " '", output,
           "' exists; pass --force (Python: replace=True) to replace it");
  QK_CHECK(is_quantkit_output(target), "output ", what, " '", output,
           "' exists and is not a checkpoint quantkit wrote (",
           is_file ? "no quantkit quantization_config in its metadata"
                   : "no config.json with a quantkit quantization_config",
           "); --force replaces only a previous quantkit output: remove it yourself or choose "
           "another path");
  return target;
}

int create_temporary_file_beside(const fs::path& target, fs::path& created) {
  std::vector<char> buffer = temporary_pattern(target);
  const int fd = ::mkostemp(buffer.data(), O_CLOEXEC);
  if (fd < 0) fail_io("cannot create a temporary file beside '", target.string(), "'");
  ::fchmod(fd, 0644);
  created = fs::path(buffer.data());
  return fd;
}

void write_all(int fd, std::span<const std::uint8_t> bytes, const fs::path& path) {
  const std::uint8_t* data = bytes.data();
  std::size_t size = bytes.size();
  while (size > 0) {
    const ssize_t done = ::write(fd, data, size);
    if (done < 0) {
      if (errno == EINTR) continue;
      fail_io("cannot write '", path.string(), "'");
    }
    data += done;
    size -= static_cast<std::size_t>(done);
  }
}

void sync_and_close(int fd, const fs::path& path) {
  if (::fsync(fd) != 0) {
    const int saved = errno;
    ::close(fd);
    errno = saved;
    fail_io("cannot flush '", path.string(), "'");
  }
  if (::close(fd) != 0) fail_io("cannot close '", path.string(), "'");
}

void sync_folder(const fs::path& folder) {
  sync_path(folder.empty() ? fs::path(".") : folder, O_RDONLY | O_DIRECTORY);
}

void write_file_atomically(const fs::path& path, std::string_view text) {
  fs::path temporary;
  const int fd = create_temporary_file_beside(path, temporary);
  try {
    write_all(fd, {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()}, temporary);
    sync_and_close(fd, temporary);
  } catch (...) {
    ::unlink(temporary.c_str());
    throw;
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    const int saved = errno;
    ::unlink(temporary.c_str());
    errno = saved;
    fail_io("cannot rename '", temporary.string(), "' to '", path.string(), "'");
  }
  sync_folder(path.parent_path());
}

StagingFolder::StagingFolder(fs::path target) : target_(std::move(target)) {
  std::vector<char> buffer = temporary_pattern(target_);
  if (::mkdtemp(buffer.data()) == nullptr) {
    fail_io("cannot create a temporary folder beside '", target_.string(), "'");
  }
  ::chmod(buffer.data(), 0755);
  staging_ = fs::path(buffer.data());
}

StagingFolder::~StagingFolder() {
  if (published_) return;
  std::error_code ignored;
  fs::remove_all(staging_, ignored);
}

void StagingFolder::publish() {
  QK_CHECK(!published_, "'", target_.string(), "' was already published");
  sync_tree(staging_);
  const bool replacing = fs::exists(fs::symlink_status(target_));
  if (!replacing) {
    if (std::rename(staging_.c_str(), target_.c_str()) != 0) {
      fail_io("cannot rename '", staging_.string(), "' to '", target_.string(), "'");
    }
    published_ = true;
    sync_folder(target_.parent_path());
    return;
  }
  // One atomic swap: the old folder moves to the staging name, then goes.
  if (::renameat2(AT_FDCWD, staging_.c_str(), AT_FDCWD, target_.c_str(), RENAME_EXCHANGE) == 0) {
    sync_folder(target_.parent_path());
    std::error_code ignored;
    fs::remove_all(staging_, ignored);
    published_ = true;
    return;
  }
  if (errno != EINVAL && errno != ENOSYS) {
    fail_io("cannot move '", staging_.string(), "' to '", target_.string(), "'");
  }
  // File systems without RENAME_EXCHANGE: move the old folder aside first.
  StagingFolder aside(target_);
  fs::remove(aside.staging_);
  if (std::rename(target_.c_str(), aside.staging_.c_str()) != 0) {
    fail_io("cannot move the old '", target_.string(), "' aside");
  }
  if (std::rename(staging_.c_str(), target_.c_str()) != 0) {
    const int saved = errno;
    std::rename(aside.staging_.c_str(), target_.c_str());  // put the old output back
    aside.published_ = true;
    errno = saved;
    fail_io("cannot rename '", staging_.string(), "' to '", target_.string(), "'");
  }
  published_ = true;
  sync_folder(target_.parent_path());
}

}  // namespace quantkit::io
