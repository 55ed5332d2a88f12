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

/// One tensor of the model: stored as it is, or, for a quantized 2-D weight
/// named "<module>.weight", in its compressed-tensors layout.
struct ModelTensor {
  std::string name;
  Tensor plain;                              // when not quantized
  std::optional<QuantizedTensor> quantized;  // [rows, columns] weight
};

/// Writes `folder` holding model.safetensors and config.json (the JSON object
/// `base_config`, e.g. a transformers config, with "quantization_config" set),
/// atomically: built under a hidden name beside it, then swapped into place.
/// An existing folder is replaced only with `replace` and only when quantkit
/// wrote it. Throws Error naming the tensor and the rule for a spec
/// compressed-tensors cannot express, a symmetric weight with a non-zero
/// zero point, a duplicate name, or a tensor dtype safetensors lacks.
void save_compressed_tensors(const std::string& folder, const std::vector<ModelTensor>& tensors,
                             const std::string& base_config, bool replace);

/// The tensors of a checkpoint quantkit wrote (a folder or a .safetensors
/// file, sharded or not), in file order: quantized weights as their codes and
/// qparams computing in `compute_dtype`, every other tensor as stored.
/// FileFormatError for a broken file or config; Error for a tensor dtype
/// quantkit has no type for.
std::vector<ModelTensor> load_compressed_tensors(const std::string& path, ScalarType compute_dtype);

}  // namespace quantkit::io
