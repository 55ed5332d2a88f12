#pragma once
// A model held in memory (e.g. a converted PyTorch model) saved as a
// compressed-tensors checkpoint folder and read back: the same layout,
// packing and quantization_config as `quantkit quantize`, written from the
// codes and qparams the model already holds (nothing is re-chosen) and read
// back to the same codes and qparams.
#include <optional>
#include <string>
#include <vector>

#include "quantkit/quantized_tensor.hpp"
#include "quantkit/tensor.hpp"

namespace quantkit::io {

/// How a quantized weight's layer quantizes its inputs: dynamically (qparams
/// chosen from each input), or with calibrated static qparams (one scale, and
/// a zero point for asymmetric int specs, for the whole input).
struct InputQuantization {
  QuantSpec spec;
  std::optional<QParams> static_qparams = std::nullopt;
};

/// One tensor of the model: stored as it is, or, for a quantized 2-D weight
/// named "<module>.weight", in its compressed-tensors layout.
struct ModelTensor {
  std::string name;
  /// When not quantized: the tensor, read while it is written (a view, so a
  /// model is not copied; `owned` keeps the memory of one that was read).
  std::optional<TensorView> plain;
  Tensor owned;
  std::optional<QuantizedTensor> quantized;  // [rows, columns] weight
  /// A quantized weight's layer also quantizes its inputs so; static qparams
  /// are written as `<module>.input_scale` (and `.input_zero_point`).
  std::optional<InputQuantization> input_activations = std::nullopt;
};

/// Writes `folder` holding model.safetensors (or, past `max_shard_bytes`,
/// model-0000i-of-0000n.safetensors shards and model.safetensors.index.json,
/// as transformers names them) and config.json (the JSON object `base_config`,
/// e.g. a transformers config, with "quantization_config" set), atomically:
/// built under a hidden name beside it, then swapped into place.
/// An existing folder is replaced only with `replace` and only when quantkit
/// wrote it. Throws Error naming the tensor and the rule for a spec
/// compressed-tensors cannot express, a symmetric weight with a non-zero
/// zero point, a duplicate name, or a tensor dtype safetensors lacks.
void save_compressed_tensors(const std::string& folder, const std::vector<ModelTensor>& tensors,
                             const std::string& base_config, bool replace,
                             std::uint64_t max_shard_bytes = std::uint64_t{5} << 30);

/// The tensors of a checkpoint quantkit wrote (a folder or a .safetensors
/// file, sharded or not), in file order: quantized weights as their codes and
/// qparams computing in `compute_dtype` (with their layer's input
/// quantization, static qparams included), every other tensor as stored.
/// FileFormatError for a broken file or config; Error for a tensor dtype
/// quantkit has no type for.
std::vector<ModelTensor> load_compressed_tensors(const std::string& path, ScalarType compute_dtype);

}  // namespace quantkit::io
