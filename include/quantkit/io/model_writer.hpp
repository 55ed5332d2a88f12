#pragma once
// Saving a model held in memory (e.g. a converted PyTorch model) as a
// compressed-tensors checkpoint folder: the same layout, packing and
// quantization_config as `quantkit quantize`, written from the codes and
// qparams the model already holds (nothing is re-chosen).
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

}  // namespace quantkit::io
