#pragma once
// Where a run writes: the rules an output path must pass before any work
// starts, and durable, atomic publishing of files and folders.
//
// Rules (docs/reliability.md lists each with its message):
//   - the output is not the input, does not contain it and does not lie inside
//     it, after resolving symbolic links, "." and "..";
//   - the output is not a symbolic link, a device, a FIFO or a socket;
//   - the folder that will hold the output exists;
//   - an existing output is replaced only with `replace`, and only when it is
//     of the kind being written and was written by quantkit (a .safetensors
//     file whose metadata holds a quantkit quantization_config, or a folder
//     whose config.json does): a folder holding anything else is never deleted;
//   - nothing at the output changes until the new output is complete, flushed
//     and fsync'ed; temporary names are unique (mkstemp / mkdtemp beside the
//     target) and removed when the run fails.
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>

namespace quantkit::io {

enum class OutputKind { file, folder };

/// The absolute, normalized path `output` names once the rules above hold;
/// throws Error naming the rule otherwise. `input` must exist, or be empty when
/// the output is written from memory (no input to protect).
std::filesystem::path check_output_path(const std::string& output, OutputKind kind,
                                        const std::string& input, bool replace);

/// True when `path` is a file or folder that quantkit wrote (see the rules).
bool is_quantkit_output(const std::filesystem::path& path);

/// A new, uniquely named hidden file beside `target`, created with mode 0644;
/// returns its open descriptor and stores its path in `created`.
int create_temporary_file_beside(const std::filesystem::path& target,
                                 std::filesystem::path& created);

/// Writes all bytes to `fd`, retrying short writes and EINTR; IoError names
/// `path` on failure.
void write_all(int fd, std::span<const std::uint8_t> bytes, const std::filesystem::path& path);

/// fsync + close, each checked (a full disk can surface only here).
void sync_and_close(int fd, const std::filesystem::path& path);

/// Makes a rename inside `folder` durable.
void sync_folder(const std::filesystem::path& folder);

/// Writes `text` to `path` atomically and durably (temporary file, fsync,
/// rename, folder fsync).
void write_file_atomically(const std::filesystem::path& path, std::string_view text);

/// A folder built under a unique temporary name beside its target and moved
/// into place by publish(); destroyed unpublished, it is removed.
class StagingFolder {
 public:
  explicit StagingFolder(std::filesystem::path target);
  StagingFolder(const StagingFolder&) = delete;
  StagingFolder& operator=(const StagingFolder&) = delete;
  ~StagingFolder();

  const std::filesystem::path& path() const { return staging_; }
  /// fsyncs every file and folder inside, then swaps the folder into place
  /// (an existing target is replaced in one step where the file system allows
  /// it, and removed only after the new folder is in place).
  void publish();

 private:
  std::filesystem::path target_;
  std::filesystem::path staging_;
  bool published_ = false;
};

}  // namespace quantkit::io
