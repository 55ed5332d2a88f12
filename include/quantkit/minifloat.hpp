#pragma once
// Narrow floating-point element formats (FP8 / FP6 / FP4) and the E8M0 scale.
//
// One trait row per format (MinifloatFormat); every generic test iterates the
// table, so a new format is covered as soon as it has a row.
//
// Encoding from float is round-to-nearest-even on the exact value:
// - |x| that rounds above the largest finite value saturates to +-max when
//   `saturate` is true; otherwise it becomes NaN (e4m3fn) or Inf (e5m2).
//   FP6/FP4 have no Inf/NaN and always saturate.
// - +-Inf saturates to +-max (saturate) or stays Inf / becomes NaN (not saturating).
// - NaN encodes to the format's NaN code; FP6/FP4, which have none, encode NaN
//   as +max (the rule of the ONNX FLOAT4E2M1 spec).
// - The sign is kept for zero: -0.0 encodes to the sign bit alone.

#include <cstdint>
#include <span>
#include <string_view>

namespace quantkit {

enum class MinifloatKind : std::uint8_t { e4m3fn, e5m2, e3m2, e2m3, e2m1 };

struct MinifloatFormat {
  MinifloatKind kind;
  std::string_view name;  // "fp8_e4m3fn", ...
  int exponent_bits;
  int mantissa_bits;
  int exponent_bias;
  double max_value;     // largest finite magnitude
  bool has_infinity;    // e5m2 only
  bool has_nan;         // e4m3fn (S.1111.111) and e5m2 (S.11111.xx, xx != 0)
  int target_max_pow2;  // floor(log2(max_value)); used by E8M0 (MX) scales
  int bits() const { return 1 + exponent_bits + mantissa_bits; }
  std::uint8_t sign_mask() const { return static_cast<std::uint8_t>(1u << (bits() - 1)); }
};

/// The trait table, one row per MinifloatKind.
std::span<const MinifloatFormat> minifloat_formats();
const MinifloatFormat& minifloat_format(MinifloatKind kind);

std::uint8_t encode_minifloat(float value, const MinifloatFormat& format, bool saturate = true);
float decode_minifloat(std::uint8_t code, const MinifloatFormat& format);

// ---- E8M0: the OCP MX power-of-two scale (bias 127, byte 255 is NaN, no zero;
// byte 0 is 2^-127, an fp32 subnormal).

enum class E8M0Rounding : std::uint8_t {
  floor,  // OCP MX spec: 2^(floor(log2 amax) - target_max_pow2)
  rceil,  // cuBLAS rule as torchao 0.18 computes it on the CPU:
          // 2^ceil(log2f(amax / max)), log2f correctly rounded to float32
          // (so amax one ulp above a power of two rounds down), clamped to
          // [2^-127, 2^127]
};

/// "floor" / "rceil"; the parser throws Error listing both otherwise.
std::string_view name(E8M0Rounding rounding);
E8M0Rounding e8m0_rounding_from_name(std::string_view text);

/// E8M0 byte for a block whose largest magnitude is `amax` (NaN gives 255;
/// Inf gives 255 with floor and 254 with rceil, as torchao).
std::uint8_t e8m0_from_amax(float amax, const MinifloatFormat& element, E8M0Rounding rounding);
/// 2^(byte - 127) as float (exact, 2^-127 is subnormal); 255 gives NaN.
float e8m0_to_float(std::uint8_t byte);
/// Byte of an exact power of two 2^-127..2^127 (NaN gives 255). Throws Error otherwise.
std::uint8_t e8m0_from_power_of_two(float value);

}  // namespace quantkit
