#pragma once
// 16-bit floating-point storage types and their exact conversions.
//
// Narrowing from float is round-to-nearest-even, as PyTorch does on the CPU:
// - bfloat16: NaN of any sign/payload becomes the canonical quiet NaN 0x7FC0;
//   finite values round on the low 16 bits; overflow gives +-Inf.
// - float16: NaN becomes 0x7E00 with the sign kept; |x| >= 65520 gives +-Inf;
//   subnormal results are rounded, never flushed.
// Widening to float is exact.

#include <bit>
#include <cstdint>

namespace quantkit {

std::uint16_t bfloat16_bits_from_float(float value);
std::uint16_t float16_bits_from_float(float value);

inline float float_from_bfloat16_bits(std::uint16_t bits) {
  return std::bit_cast<float>(static_cast<std::uint32_t>(bits) << 16);
}
float float_from_float16_bits(std::uint16_t bits);

/// Storage type of a bfloat16 tensor element.
struct BFloat16 {
  std::uint16_t bits = 0;
  static BFloat16 from_float(float value) { return {bfloat16_bits_from_float(value)}; }
  float to_float() const { return float_from_bfloat16_bits(bits); }
};

/// Storage type of a float16 tensor element.
struct Float16 {
  std::uint16_t bits = 0;
  static Float16 from_float(float value) { return {float16_bits_from_float(value)}; }
  float to_float() const { return float_from_float16_bits(bits); }
};

}  // namespace quantkit
