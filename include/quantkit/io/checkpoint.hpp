#pragma once
// Quantizing safetensors checkpoints tensor by tensor, in bounded memory.
//
// A checkpoint is one .safetensors file or a folder (sharded with
// model.safetensors.index.json, or holding .safetensors files). Planning
// decides, before any byte is written, what happens to every tensor and the
// exact layout of the output; running streams each input tensor in row blocks
// from the memory map into the output writer. The output follows the
// compressed-tensors layout (docs/formats.md): a quantized `<name>` becomes
// `<name>_packed` (or `<name>` for FP8), `<name>_scale`, `<name>_zero_point`
// (asymmetric), `<name>_global_scale` (NVFP4) and `<name>_shape`.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "quantkit/io/safetensors.hpp"
#include "quantkit/io/schemes.hpp"

namespace quantkit::io {

struct QuantizeOptions {
  /// A scheme or preset name; a recipe file's "scheme" replaces it.
  std::string scheme = "int4-g128";
  /// "REGEX=SCHEME": tensors whose module or tensor name REGEX full-matches
  /// use SCHEME ("skip": kept float); first match wins, before the recipe's
  /// rules.
  std::vector<std::string> overrides;
  /// A recipe file (recipe.hpp): default scheme, embeddings, ordered rules.
  std::string recipe;
  /// ECMAScript regexes that full-match module or tensor names (as rules do);
  /// empty include selects all.
  std::string include;
  std::string exclude;
  /// Quantize embedding tables (names containing "embed") too.
  bool embeddings = false;
  /// An --include, --exclude or --override rule that matches no tensor is an
  /// Error naming it (a typo would otherwise change nothing, silently); with
  /// this set it is a warning in QuantizationPlan::warnings instead.
  bool allow_unmatched_rules = false;
  /// A file of per-column importance, e.g. the mean squared input of each
  /// layer's input channels over calibration data: a .safetensors file (one
  /// F32 [columns] tensor per weight, named as the weight;
  /// quantkit.torch.collect_importance) or llama.cpp's legacy imatrix .dat.
  /// It weights the error of ':search=mse' schemes.
  std::string importance;
};

/// An opened input checkpoint. Opening refuses (FileFormatError, naming the
/// file) a folder whose index misses a shard present in the folder or a tensor
/// of a shard, an index with an empty weight_map, and a checkpoint with no
/// tensor at all.
class Checkpoint {
 public:
  static Checkpoint open(const std::string& path);
  bool is_folder() const { return is_folder_; }
  /// True for a folder with a *.safetensors.index.json.
  bool has_index() const { return has_index_; }
  /// Where a quantization_config was found ("config.json", a shard's
  /// metadata), or empty for a float checkpoint.
  const std::string& quantization_config_source() const { return quantized_by_; }
  const std::string& path() const { return path_; }
  /// Shard file names (relative to the folder) or the file's own name.
  const std::vector<std::string>& shard_names() const { return shard_names_; }
  const std::vector<SafetensorsFile>& shards() const { return shards_; }
  std::uint64_t total_bytes() const;

 private:
  void open_folder();
  bool is_folder_ = false;
  bool has_index_ = false;
  std::string quantized_by_;
  std::string path_;
  std::vector<std::string> shard_names_;
  std::vector<SafetensorsFile> shards_;
};

struct TensorPlan {
  const TensorEntry* entry = nullptr;
  const Scheme* scheme = nullptr;  // nullptr: copied unchanged
  std::string note;                // why it is kept, for --dry-run and inspect
  std::vector<TensorDecl> outputs;
  std::vector<float> importance;  // per column; empty: an unweighted search (or none)
  std::uint64_t output_bytes() const;
};

struct ShardPlan {
  std::vector<TensorPlan> tensors;
};

struct QuantizationPlan {
  std::vector<ShardPlan> shards;    // parallel to Checkpoint::shards()
  std::string quantization_config;  // compressed-tensors JSON
  std::uint64_t input_bytes = 0;
  std::uint64_t output_bytes = 0;
  std::int64_t quantized_tensors = 0;
  std::vector<std::string> warnings;  // e.g. rules that matched nothing (allow_unmatched_rules)
};

/// Throws Error (naming the tensor and the rule) when a selected tensor cannot
/// take its scheme, e.g. a group size that does not divide its columns, and
/// when the input is already quantized (re-quantizing would drop its scales).
QuantizationPlan plan_quantization(const Checkpoint& input, const QuantizeOptions& options);

/// Called with the input bytes processed so far and the total.
using Progress = std::function<void(std::uint64_t done, std::uint64_t total)>;

/// Writes the quantized checkpoint: a file when the input is a file, else a
/// folder (shards, index, config.json with quantization_config, and the
/// folder's other files copied, symbolic links as links). The output path
/// must pass check_output_path (output_target.hpp); nothing appears at or
/// changes at `output` unless the whole run succeeds, and an existing output
/// is replaced only with `replace` and only when quantkit wrote it. A
/// `progress` callback that throws cancels the run the same way.
void run_quantization(const Checkpoint& input, const QuantizationPlan& plan,
                      const std::string& output, bool replace = false,
                      const Progress& progress = {});

}  // namespace quantkit::io
