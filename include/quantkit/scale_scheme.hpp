#pragma once
// The block-scale schemes of the floating element formats (FP8 / FP6 / FP4),
// one traits row each: how a block's scale is chosen from its amax, how it
// divides the input, how dequantize applies it, and how a checkpoint stores
// it. The reference (src/reference/element_ops.cpp), the SIMD path, the
// validation and the checkpoint writer and reader all read these rows, so a
// new scheme is a new row plus its formula in docs/numerics.md and its tests.

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "quantkit/minifloat.hpp"
#include "quantkit/quant_spec.hpp"

namespace quantkit {

/// How the scale turns x into element units before rounding to the format.
enum class ScaleDivision : std::uint8_t {
  divide,               // x / s
  divide_clamped,       // x / max(s, 2^-126) (torchao to_mx, FLOOR)
  multiply_reciprocal,  // x * S(1 / s): torch.reciprocal in the scale's dtype S (NVFP4)
  multiply_exponent,    // x * 2^(127 - byte), 1.0 for byte 0 (torchao to_mx, RCEIL)
};

/// How dequantize multiplies an element by its scale.
enum class DequantOrder : std::uint8_t {
  product_then_round,  // T(element * s)
  round_then_product,  // T(T(element) * T(s)): MX's dequantize in the output dtype
};

struct ScaleSchemeTraits {
  std::string_view name;  // "float", "mx_floor", "mx_rceil", "nvfp4"
  ScaleDType scale_dtype;
  /// Set for the E8M0 rows: which rounding of QuantSpec::e8m0_rounding the row is.
  std::optional<E8M0Rounding> e8m0_rounding;
  ScaleDivision division;
  DequantOrder dequant_order;
  /// The exact value of the stored block scale for a block of largest
  /// magnitude `amax`, under the per-tensor scale `global_scale` (1 for
  /// single-level specs). Null for plain float scales, chosen as amax / max in
  /// the input dtype with the spec's eps (reference::BlockChooser).
  float (*scale_from_amax)(float amax, const MinifloatFormat& element, float global_scale);
  /// Largest block scale (448 for E4M3), which two-level scaling aims the
  /// tensor's amax at; 0 where the row has no two-level form.
  float block_scale_max;
  /// Byte-stored scales (E8M0, FP8): the byte of a scale and its value back.
  /// Null for float scales, stored in the scale tensor's own dtype.
  std::uint8_t (*encode_byte)(float scale);
  float (*decode_byte)(std::uint8_t byte);
  /// safetensors dtype of the stored bytes ("U8", "F8_E4M3"); empty for floats.
  std::string_view stored_dtype;
};

/// Every row, in a fixed order.
std::span<const ScaleSchemeTraits> scale_schemes();
/// The row of a floating-element spec (scale_dtype unset means float32);
/// throws Error naming the scale dtype and the supported ones otherwise.
const ScaleSchemeTraits& scale_scheme_of(const QuantSpec& spec);
/// Whether `scale_dtype` is one of the byte-coded scales (E8M0, FP8), which
/// only floating element formats use.
bool is_block_scale_dtype(ScaleDType scale_dtype);

/// The per-tensor scale of a two-level spec (QuantSpec::global_scale) for a
/// tensor of largest magnitude `amax`: the smallest power of two at or above
/// amax / (block_scale_max * element max), at least 2^-120 (so that the
/// quantize multiplier (1 / g) / block scale stays finite). A power of two
/// makes block * g and block / (1 / g) equal, so readers that multiply
/// (torchao, ModelOpt) and readers that divide (compressed-tensors) decode the
/// same values.
float global_scale_from_amax(float amax, const QuantSpec& spec);

}  // namespace quantkit
