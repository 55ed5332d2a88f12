#pragma once
// SIMD kernels for the floating element formats (FP8 / FP6 / FP4 codes with
// float32, E8M0 or E4M3 block scales), bit-identical to the reference
// (src/reference/element_ops.cpp) on every compiled target:
//   quantize:  y = x / divisor (float32 and MX-floor scales) or
//              y = x * reciprocal (NVFP4, MX-rceil); clamp to +-max (NaN kept);
//              encode round-to-nearest-even (NaN -> the NaN code, or +max
//              for formats without NaN);
//   dequantize: (decode(code) * scale) -> O, or for MX
//              ((decode(code) -> O) * (scale -> O)) -> O.
#include <cstdint>

#include "cpu/affine_kernels.hpp"

namespace quantkit::cpu {

struct MinifloatOps {
  FloatKind input;
  FloatKind output;
  int exponent_bits;
  int mantissa_bits;
  int exponent_bias;
  float max_value;
  std::uint8_t max_code;  // code of +max
  bool has_nan;           // NaN code sign | 0x7F (e4m3fn, e5m2)
  bool has_infinity;      // e5m2: exponent field all ones, mantissa 0
  bool divide;            // params.reciprocal holds divisors
  bool scale_in_output;   // MX: the product is computed in the output dtype
  bool stream = false;
  // Powers of two of the format, computed once per call (not per vector):
  float encode_magic;     // 2^(24 - bias - m): adding it rounds to the subnormal quantum
  float smallest_normal;  // 2^(1 - bias)
  float subnormal_step;   // 2^(1 - bias - m)
};

/// codes[i - begin] = encode(x[i] scaled); params.reciprocal holds the
/// divisor or reciprocal, params.scale the scale.
void minifloat_quantize_range(const MinifloatOps& ops, const BlockMap& map,
                              const BlockParams& params, const void* x, std::uint8_t* codes,
                              std::int64_t begin, std::int64_t end);
void minifloat_fake_quantize_range(const MinifloatOps& ops, const BlockMap& map,
                                   const BlockParams& params, const void* x, void* y,
                                   std::int64_t begin, std::int64_t end);
void minifloat_dequantize_range(const MinifloatOps& ops, const BlockMap& map,
                                const BlockParams& params, const std::uint8_t* codes, void* y,
                                std::int64_t begin, std::int64_t end);

/// out[i] = grad[i] * (|scaled x[i]| <= max), in the gradient's kind.
void minifloat_ste_backward_range(const MinifloatOps& ops, const BlockMap& map,
                                  const BlockParams& params, const void* x, const void* grad,
                                  FloatKind grad_kind, void* out, std::int64_t begin,
                                  std::int64_t end);

}  // namespace quantkit::cpu
