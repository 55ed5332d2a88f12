#pragma once
// PyTorch eager arithmetic on float32 / bfloat16 / float16 values.
//
// Every eager op upcasts its operands to float32, performs one IEEE float32
// operation and rounds the result back to the op's result dtype. Values are
// carried as floats that are exactly representable in their dtype, so
// `round_to(dtype, a op b)` reproduces one eager op bit for bit (the build uses
// -ffp-contract=off, so no FMA merges two of them).

#include <cmath>

#include "quantkit/half.hpp"
#include "quantkit/scalar_type.hpp"

namespace quantkit::reference {

inline float round_to(ScalarType dtype, float value) {
  switch (dtype) {
    case ScalarType::bfloat16:
      return float_from_bfloat16_bits(bfloat16_bits_from_float(value));
    case ScalarType::float16:
      return float_from_float16_bits(float16_bits_from_float(value));
    default:
      return value;
  }
}

/// torch.round: half to even (the default floating-point environment).
inline float round_half_even(float value) {
  return std::nearbyint(value);
}

/// torch.clamp with NaN-safe bounds: fmax/fmin map NaN to the lower bound,
/// which keeps the later float-to-int conversion defined.
inline double clamp_nan_to_low(double value, double low, double high) {
  return std::fmin(std::fmax(value, low), high);
}

/// Result dtype of an op between a tensor and a (>= 1-dim) tensor; integer
/// zero points never widen a float operand.
inline ScalarType op_dtype(ScalarType a, ScalarType b) {
  return promote_types(a, b);
}

}  // namespace quantkit::reference
