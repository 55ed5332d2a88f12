// Memory-mapped reading and atomic streaming writing of safetensors files.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <utility>

#include "quantkit/io/output_target.hpp"
#include "quantkit/io/safetensors.hpp"

namespace quantkit::io {
namespace {

template <typename... Parts>
[[noreturn]] void fail_io(const Parts&... parts) {
  throw IoError(detail::concat(parts..., ": ", std::strerror(errno)));
}

}  // namespace

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  SafetensorsFile file;
  file.path_ = path;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail_io("cannot open '", path, "'");
  struct stat info {};
  if (::fstat(fd, &info) != 0) {
    ::close(fd);
    fail_io("cannot stat '", path, "'");
  }
  if (!S_ISREG(info.st_mode)) {
    ::close(fd);
    throw IoError(detail::concat("'", path, "' is not a regular file"));
  }
  file.size_ = static_cast<std::uint64_t>(info.st_size);
  if (file.size_ > 0) {
    void* map = ::mmap(nullptr, file.size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) {
      ::close(fd);
      fail_io("cannot map '", path, "'");
    }
    file.map_ = static_cast<const std::uint8_t*>(map);
    ::madvise(map, file.size_, MADV_SEQUENTIAL);
  }
  ::close(fd);  // the mapping keeps the file alive
  try {
    file.header_ = parse_safetensors({file.map_, file.size_});
  } catch (const FileFormatError& error) {
    throw FileFormatError(detail::concat("'", path, "': ", error.what()));
  }
  return file;
}

SafetensorsFile SafetensorsFile::view(std::span<const std::uint8_t> bytes, std::string name) {
  SafetensorsFile file;
  file.path_ = std::move(name);
  file.map_ = bytes.data();
  file.size_ = bytes.size();
  file.owns_map_ = false;
  file.header_ = parse_safetensors(bytes);
  return file;
}

SafetensorsFile::SafetensorsFile(SafetensorsFile&& other) noexcept
    : path_(std::move(other.path_)),
      map_(std::exchange(other.map_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      owns_map_(other.owns_map_),
      header_(std::move(other.header_)) {}

SafetensorsFile& SafetensorsFile::operator=(SafetensorsFile&& other) noexcept {
  if (this != &other) {
    if (map_ != nullptr && owns_map_) ::munmap(const_cast<std::uint8_t*>(map_), size_);
    path_ = std::move(other.path_);
    map_ = std::exchange(other.map_, nullptr);
    size_ = std::exchange(other.size_, 0);
    owns_map_ = other.owns_map_;
    header_ = std::move(other.header_);
  }
  return *this;
}

SafetensorsFile::~SafetensorsFile() {
  if (map_ != nullptr && owns_map_) ::munmap(const_cast<std::uint8_t*>(map_), size_);
}

std::span<const std::uint8_t> SafetensorsFile::bytes(const TensorEntry& entry) const {
  return {map_ + header_.data_start + entry.begin, static_cast<std::size_t>(entry.nbytes())};
}

void SafetensorsFile::release(const TensorEntry& entry, std::uint64_t offset,
                              std::uint64_t length) const {
  if (!owns_map_) return;  // the caller's memory
  // Whole pages strictly inside the range only: a neighbour's page stays.
  const auto page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
  const std::uint64_t first = header_.data_start + entry.begin + offset;
  const std::uint64_t begin = (first + page - 1) / page * page;
  const std::uint64_t end = (first + length) / page * page;
  if (end > begin) {
    ::madvise(const_cast<std::uint8_t*>(map_) + begin, end - begin, MADV_DONTNEED);
  }
}

void SafetensorsFile::release_all() const {
  if (map_ != nullptr && owns_map_) {
    ::madvise(const_cast<std::uint8_t*>(map_), size_, MADV_DONTNEED);
  }
}

SafetensorsWriter::SafetensorsWriter(std::string path, std::vector<TensorDecl> tensors,
                                     std::map<std::string, std::string> metadata)
    : path_(std::move(path)) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  for (const auto& tensor : tensors) {
    QK_CHECK(tensor.name != "__metadata__" && !header.contains(tensor.name), "output tensor name '",
             tensor.name, "' is reserved or declared twice");
    const std::uint64_t size = tensor.nbytes();
    header[tensor.name] = {{"dtype", dtype_info(tensor.dtype).name},
                           {"shape", tensor.shape},
                           {"data_offsets", {total_, total_ + size}}};
    total_ += size;
  }
  std::string text = header.dump();
  text.resize((text.size() + 7) / 8 * 8, ' ');  // the data buffer starts 8-aligned
  std::filesystem::path partial;
  fd_ = create_temporary_file_beside(std::filesystem::absolute(path_), partial);
  partial_path_ = partial.string();
  std::uint8_t length[8];
  for (int i = 0; i < 8; ++i) length[i] = static_cast<std::uint8_t>(text.size() >> (8 * i));
  try {
    write_all(fd_, length, partial_path_);
    write_all(fd_, {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()},
              partial_path_);
  } catch (...) {  // no destructor runs for a constructor that throws
    ::close(fd_);
    ::unlink(partial_path_.c_str());
    throw;
  }
}

SafetensorsWriter::~SafetensorsWriter() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(partial_path_.c_str());
}

void SafetensorsWriter::write(std::span<const std::uint8_t> bytes) {
  QK_CHECK(!committed_, "write after commit to '", path_, "'");
  QK_CHECK(bytes.size() <= remaining(), "writing ", bytes.size(), " bytes to '", path_,
           "' exceeds the declared tensors by ", bytes.size() - remaining(), " bytes");
  write_all(fd_, bytes, partial_path_);
  written_ += bytes.size();
}

void SafetensorsWriter::commit() {
  QK_CHECK(!committed_, "'", path_, "' was already committed");
  QK_CHECK(remaining() == 0, "'", path_, "' is missing ", remaining(),
           " bytes of its declared tensors");
  // Flushed before the rename: a full disk or an I/O error that surfaces only
  // at fsync / close then fails the run instead of publishing a short file.
  sync_and_close(std::exchange(fd_, -1), partial_path_);
  if (std::rename(partial_path_.c_str(), path_.c_str()) != 0) {
    fail_io("cannot rename '", partial_path_, "' to '", path_, "'");
  }
  committed_ = true;
  sync_folder(std::filesystem::absolute(path_).parent_path());
}

}  // namespace quantkit::io
