#pragma once
// safetensors checkpoints: a validating reader over a memory-mapped file and a
// streaming writer that publishes its output atomically.
//
// Layout: an 8-byte little-endian header length N, N bytes of UTF-8 JSON
//   {"<name>": {"dtype": "BF16", "shape": [..], "data_offsets": [begin, end]},
//    "__metadata__": {"key": "value"}}
// (right-padded with spaces), then the data buffer; offsets are relative to
// the buffer and `end` is exclusive.
//
// The reader accepts a file only when all of these hold, and otherwise throws
// FileFormatError naming the rule and the offending tensor:
//   - the file holds the 8-byte length; N <= 100,000,000 and 8 + N <= file size;
//   - the header is valid UTF-8 and a JSON object whose first byte is '{';
//   - tensor names are 1..4096 bytes without NUL characters;
//   - every entry has exactly dtype (a known name), shape (non-negative
//     integers) and data_offsets ([begin, end], begin <= end), no key twice;
//   - __metadata__, when present, maps strings to strings;
//   - end - begin == numel * bits / 8 (and numel * bits is whole bytes);
//   - sorted by offset, the tensors tile the buffer: no overlap, no gap, none
//     past the end of the file, and no trailing bytes after the last one.
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "quantkit/error.hpp"
#include "quantkit/scalar_type.hpp"
#include "quantkit/tensor.hpp"

namespace quantkit::io {

/// A checkpoint file breaks the format (the message names the rule).
class FileFormatError : public Error {
 public:
  using Error::Error;
};

/// The operating system refused a read, write or rename.
class IoError : public Error {
 public:
  using Error::Error;
};

/// The safetensors dtype enum, in the format's own order.
enum class StDType : std::uint8_t {
  BOOL,
  F4,
  F6_E2M3,
  F6_E3M2,
  U8,
  I8,
  F8_E5M2,
  F8_E4M3,
  F8_E8M0,
  F8_E4M3FNUZ,
  F8_E5M2FNUZ,
  I16,
  U16,
  F16,
  BF16,
  I32,
  U32,
  F32,
  C64,
  F64,
  I64,
  U64,
};

struct StDTypeInfo {
  StDType dtype;
  std::string_view name;  // as written in the header, e.g. "BF16"
  int bits;               // per element
};

/// One row per dtype.
std::span<const StDTypeInfo> safetensors_dtypes();
const StDTypeInfo& dtype_info(StDType dtype);
std::optional<StDType> safetensors_dtype_from_name(std::string_view name);
/// The matching ScalarType (F32/F64/F16/BF16/I8/U8/I16/I32/I64), if any.
std::optional<ScalarType> to_scalar_type(StDType dtype);
StDType from_scalar_type(ScalarType dtype);
/// F32, BF16 or F16: the dtypes quantkit quantizes.
bool is_float_input(StDType dtype);

struct TensorEntry {
  std::string name;
  StDType dtype = StDType::F32;
  Shape shape;
  std::uint64_t begin = 0;  // relative to the data buffer
  std::uint64_t end = 0;    // exclusive
  std::uint64_t nbytes() const { return end - begin; }
};

struct SafetensorsHeader {
  std::vector<TensorEntry> tensors;  // sorted by offset (file order)
  std::map<std::string, std::string> metadata;
  std::uint64_t data_start = 0;  // 8 + N: where the data buffer begins in the file
  /// Position in `tensors` by name (so lookups stay constant-time in headers
  /// of tens of thousands of tensors).
  std::unordered_map<std::string, std::size_t> index;
  /// nullptr when absent.
  const TensorEntry* find(std::string_view name) const;
};

/// Validates a whole file held in memory (see the rules above).
SafetensorsHeader parse_safetensors(std::span<const std::uint8_t> file);

/// A read-only memory map of a validated safetensors file.
class SafetensorsFile {
 public:
  /// Throws IoError when the file cannot be opened or mapped, FileFormatError
  /// when it is not a valid safetensors file.
  static SafetensorsFile open(const std::string& path);
  /// A validated view over bytes the caller keeps alive and unchanged (tests,
  /// fuzzing); FileFormatError as open().
  static SafetensorsFile view(std::span<const std::uint8_t> bytes, std::string name = "<memory>");
  SafetensorsFile(SafetensorsFile&& other) noexcept;
  SafetensorsFile& operator=(SafetensorsFile&& other) noexcept;
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;
  ~SafetensorsFile();

  const std::string& path() const { return path_; }
  const SafetensorsHeader& header() const { return header_; }
  std::uint64_t file_size() const { return size_; }
  /// The bytes of one tensor.
  std::span<const std::uint8_t> bytes(const TensorEntry& entry) const;
  /// Gives the pages of [offset, offset + length) of `entry` back to the page
  /// cache, so a streaming pass keeps its resident set bounded.
  void release(const TensorEntry& entry, std::uint64_t offset, std::uint64_t length) const;
  /// Gives every page of the file back (a reader done with one tensor's parts).
  void release_all() const;

 private:
  SafetensorsFile() = default;
  std::string path_;
  const std::uint8_t* map_ = nullptr;
  std::uint64_t size_ = 0;
  bool owns_map_ = true;
  SafetensorsHeader header_;
};

/// Declared output tensor: the header is written first, so every tensor is
/// known before its data streams in.
struct TensorDecl {
  std::string name;
  StDType dtype = StDType::F32;
  Shape shape;
  std::uint64_t nbytes() const;
};

/// Writes a uniquely named hidden temporary file beside `path`
/// (".<name>.partial-XXXXXX"), fsyncs it and renames it over `path` on
/// commit(); a writer destroyed before commit() removes the temporary file, so
/// a failed run never leaves a half-written output. Output-path rules are the
/// caller's (output_target.hpp).
class SafetensorsWriter {
 public:
  SafetensorsWriter(std::string path, std::vector<TensorDecl> tensors,
                    std::map<std::string, std::string> metadata = {});
  SafetensorsWriter(const SafetensorsWriter&) = delete;
  SafetensorsWriter& operator=(const SafetensorsWriter&) = delete;
  ~SafetensorsWriter();

  /// Appends bytes to the tensors in declaration order (a call may span tensors).
  void write(std::span<const std::uint8_t> bytes);
  /// Bytes still owed to the current tensor and the rest.
  std::uint64_t remaining() const { return total_ - written_; }
  /// Checks that every declared byte arrived, flushes and renames.
  void commit();

 private:
  std::string path_;
  std::string partial_path_;
  int fd_ = -1;
  std::uint64_t total_ = 0;
  std::uint64_t written_ = 0;
  bool committed_ = false;
};

}  // namespace quantkit::io
