#pragma once
// Reading back the quantized weights of a checkpoint written by
// `quantkit quantize` (compressed-tensors layout plus the "quantkit" block of
// its quantization_config, which names each group's scheme).
#include <optional>
#include <string>
#include <vector>

#include "quantkit/io/safetensors.hpp"
#include "quantkit/io/schemes.hpp"
#include "quantkit/quantized_tensor.hpp"

namespace quantkit::io {

struct StoredWeight {
  std::string name;  // the original tensor name, e.g. "layer.0.weight"
  const Scheme* scheme = nullptr;
  Shape shape;  // the original [rows, columns]
  /// The layer's input quantization, where the config gives one, and whether
  /// its qparams are static (stored as `<module>.input_scale` / `_zero_point`).
  std::optional<QuantSpec> input_spec = std::nullopt;
  bool static_inputs = false;
};

/// The quantized weights of `file`, in file order. Empty for a file without a
/// quantkit quantization_config; FileFormatError when that config is broken
/// or a weight misses one of its tensors.
std::vector<StoredWeight> stored_weights(const SafetensorsFile& file);

/// The weight as a QuantizedTensor whose qparams compute in `compute_dtype`
/// (the dtype of the original weight); dequantize() then reproduces
/// fake_quantize of the original bit for bit.
QuantizedTensor load_quantized(const SafetensorsFile& file, const StoredWeight& weight,
                               ScalarType compute_dtype);

}  // namespace quantkit::io
