#pragma once
// Storage element types of quantkit tensors and their floating-point constants.

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace quantkit {

enum class ScalarType : std::uint8_t {
  float32,
  float16,
  bfloat16,
  float64,
  int8,
  uint8,
  int16,
  int32,
  int64,
};

/// Canonical lower-case name ("float32", "bfloat16", "int8", ...).
std::string_view name(ScalarType type);
/// Parses a canonical name or a common alias ("fp32", "bf16", "fp16", "half").
/// Throws Error for an unknown name.
ScalarType scalar_type_from_name(std::string_view text);
std::size_t element_size(ScalarType type);
bool is_floating_point(ScalarType type);

/// The subset of `torch.finfo` the numerics depend on, as exact doubles.
struct FloatInfo {
  double eps;              // distance from 1.0 to the next value
  double smallest_normal;  // torch.finfo(...).smallest_normal / tiny
  double max;              // largest finite value
};
/// Throws Error for non-floating types.
FloatInfo finfo(ScalarType type);

/// PyTorch type promotion for binary ops between two tensors that both have at
/// least one dimension: float beats int; equal floats stay; bfloat16 with
/// float16 gives float32; otherwise the wider float wins.
ScalarType promote_types(ScalarType a, ScalarType b);

}  // namespace quantkit
