#include "quantkit/minifloat.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>

#include "quantkit/enum_names.hpp"
#include "quantkit/error.hpp"

namespace quantkit {
namespace {

// kind, name, exponent bits, mantissa bits, bias, max, inf, nan, target_max_pow2
constexpr std::array<MinifloatFormat, 5> kFormats{{
    {MinifloatKind::e4m3fn, "fp8_e4m3fn", 4, 3, 7, 448.0, false, true, 8},
    {MinifloatKind::e5m2, "fp8_e5m2", 5, 2, 15, 57344.0, true, true, 15},
    {MinifloatKind::e3m2, "fp6_e3m2", 3, 2, 3, 28.0, false, false, 4},
    {MinifloatKind::e2m3, "fp6_e2m3", 2, 3, 1, 7.5, false, false, 2},
    {MinifloatKind::e2m1, "fp4_e2m1", 2, 1, 1, 6.0, false, false, 2},
}};

constexpr std::uint8_t kNanMagnitude = 0x7F;  // S.1111.111 (e4m3fn) and S.11111.11 (e5m2)
constexpr std::uint8_t kInfMagnitude = 0x7C;  // S.11111.00 (e5m2)

// Encodes an exactly representable non-negative value.
std::uint8_t encode_representable(double magnitude, const MinifloatFormat& f) {
  const int min_exponent = 1 - f.exponent_bias;
  if (magnitude < std::ldexp(1.0, min_exponent)) {
    return static_cast<std::uint8_t>(magnitude / std::ldexp(1.0, min_exponent - f.mantissa_bits));
  }
  int e = 0;
  std::frexp(magnitude, &e);
  const int exponent = e - 1;
  const double mantissa =
      magnitude / std::ldexp(1.0, exponent - f.mantissa_bits) - std::ldexp(1.0, f.mantissa_bits);
  return static_cast<std::uint8_t>(((exponent + f.exponent_bias) << f.mantissa_bits) |
                                   static_cast<int>(mantissa));
}

}  // namespace

std::span<const MinifloatFormat> minifloat_formats() {
  return kFormats;
}

const MinifloatFormat& minifloat_format(MinifloatKind kind) {
  return kFormats[static_cast<std::size_t>(kind)];
}

std::uint8_t encode_minifloat(float value, const MinifloatFormat& f, bool saturate) {
  const std::uint8_t sign = std::signbit(value) ? f.sign_mask() : 0;
  const std::uint8_t max_code = encode_representable(f.max_value, f);
  if (std::isnan(value))
    return f.has_nan ? static_cast<std::uint8_t>(sign | kNanMagnitude) : max_code;
  const auto overflow = [&]() -> std::uint8_t {
    if (saturate || !f.has_nan) return sign | max_code;
    return sign | (f.has_infinity ? kInfMagnitude : kNanMagnitude);
  };
  if (std::isinf(value)) return overflow();
  // Round |x| to the format's grid at its exponent: the quantum is 2^(e - m)
  // with e clamped to the smallest normal exponent, so subnormals share the
  // fixed quantum. Division by a power of two is exact; nearbyint is RNE.
  const double magnitude = std::fabs(static_cast<double>(value));
  if (magnitude == 0) return sign;
  int e = 0;
  std::frexp(magnitude, &e);
  const int exponent = std::max(e - 1, 1 - f.exponent_bias);
  const double quantum = std::ldexp(1.0, exponent - f.mantissa_bits);
  const double rounded = std::nearbyint(magnitude / quantum) * quantum;
  if (rounded > f.max_value) return overflow();
  return sign | encode_representable(rounded, f);
}

float decode_minifloat(std::uint8_t code, const MinifloatFormat& f) {
  const int mantissa_mask = (1 << f.mantissa_bits) - 1;
  const int exponent_mask = (1 << f.exponent_bits) - 1;
  const bool negative = (code & f.sign_mask()) != 0;
  const int field = (code >> f.mantissa_bits) & exponent_mask;
  const int mantissa = code & mantissa_mask;
  double magnitude;
  if (f.has_infinity && field == exponent_mask) {
    magnitude = mantissa == 0 ? INFINITY : NAN;
  } else if (f.has_nan && !f.has_infinity && field == exponent_mask && mantissa == mantissa_mask) {
    magnitude = NAN;
  } else if (field == 0) {
    magnitude = std::ldexp(static_cast<double>(mantissa), 1 - f.exponent_bias - f.mantissa_bits);
  } else {
    magnitude = std::ldexp(static_cast<double>(mantissa + (1 << f.mantissa_bits)),
                           field - f.exponent_bias - f.mantissa_bits);
  }
  return static_cast<float>(negative ? -magnitude : magnitude);
}

namespace {
constexpr EnumNames<E8M0Rounding, 2> kE8M0Roundings{{
    {E8M0Rounding::floor, "floor"},
    {E8M0Rounding::rceil, "rceil"},
}};
}  // namespace

std::string_view name(E8M0Rounding rounding) {
  return name_in(kE8M0Roundings, rounding);
}
E8M0Rounding e8m0_rounding_from_name(std::string_view text) {
  return value_in(kE8M0Roundings, text, "e8m0_rounding");
}

std::uint8_t e8m0_from_amax(float amax, const MinifloatFormat& element, E8M0Rounding rounding) {
  if (std::isnan(amax)) return 255;
  if (rounding == E8M0Rounding::floor) {
    if (std::isinf(amax)) return 255;
    const int biased_exponent = static_cast<int>((std::bit_cast<std::uint32_t>(amax) >> 23) & 0xFF);
    const int unbiased = std::clamp(biased_exponent - 127 - element.target_max_pow2, -127, 128);
    return static_cast<std::uint8_t>(unbiased + 127);
  }
  const float descale = amax / static_cast<float>(element.max_value);
  if (std::isinf(descale)) return 254;
  // torch.log2 on float32, then ceil; log2(0) = -inf clamps to byte 0.
  const auto log2 = static_cast<float>(std::log2(static_cast<double>(descale)));
  const float exponent = std::clamp(std::ceil(log2), -127.0f, 127.0f);
  return static_cast<std::uint8_t>(static_cast<int>(exponent) + 127);
}

float e8m0_to_float(std::uint8_t byte) {
  if (byte == 255) return NAN;
  return std::ldexp(1.0f, static_cast<int>(byte) - 127);
}

std::uint8_t e8m0_from_power_of_two(float value) {
  if (std::isnan(value)) return 255;
  // Read from the bits (no frexp: grids hold one scale per 16-32 elements).
  // 2^-126..2^127 are the normals with an empty mantissa, whose exponent field
  // is the byte; 2^-127 is the one subnormal power of two in range.
  const auto bits = std::bit_cast<std::uint32_t>(value);
  if (bits == 0x00400000u) return 0;
  const std::uint32_t field = bits >> 23;  // a set sign bit makes it > 255
  QK_CHECK((bits & 0x7FFFFFu) == 0 && field >= 1 && field <= 254, "scale ", value,
           " is not a power of two in [2^-127, 2^127], so it has no E8M0 encoding");
  return static_cast<std::uint8_t>(field);
}

}  // namespace quantkit
