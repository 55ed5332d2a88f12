// The rows of scale_scheme.hpp. Each formula is specified in docs/numerics.md
// ("Floating element formats"); torchao's to_mx and NVFP4 code paths are the
// sources they reproduce.
#include "quantkit/scale_scheme.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <string>

#include "quantkit/error.hpp"

namespace quantkit {
namespace {

const MinifloatFormat& e4m3() {
  return minifloat_format(MinifloatKind::e4m3fn);
}

const std::array<ScaleSchemeTraits, 4> kRows{{
    {.name = "float",
     .scale_dtype = ScaleDType::float32,
     .e8m0_rounding = std::nullopt,
     .division = ScaleDivision::divide,
     .dequant_order = DequantOrder::product_then_round,
     .scale_from_amax = nullptr,
     .block_scale_max = 0,
     .encode_byte = nullptr,
     .decode_byte = nullptr,
     .stored_dtype = ""},
    {.name = "mx_floor",
     .scale_dtype = ScaleDType::e8m0,
     .e8m0_rounding = E8M0Rounding::floor,
     .division = ScaleDivision::divide_clamped,
     .dequant_order = DequantOrder::round_then_product,
     .scale_from_amax =
         [](float amax, const MinifloatFormat& element, float) {
           return e8m0_to_float(e8m0_from_amax(amax, element, E8M0Rounding::floor));
         },
     .block_scale_max = 0,
     .encode_byte = e8m0_from_power_of_two,
     .decode_byte = e8m0_to_float,
     .stored_dtype = "U8"},
    {.name = "mx_rceil",
     .scale_dtype = ScaleDType::e8m0,
     .e8m0_rounding = E8M0Rounding::rceil,
     .division = ScaleDivision::multiply_exponent,
     .dequant_order = DequantOrder::round_then_product,
     .scale_from_amax =
         [](float amax, const MinifloatFormat& element, float) {
           return e8m0_to_float(e8m0_from_amax(amax, element, E8M0Rounding::rceil));
         },
     .block_scale_max = 0,
     .encode_byte = e8m0_from_power_of_two,
     .decode_byte = e8m0_to_float,
     .stored_dtype = "U8"},
    {.name = "nvfp4",
     .scale_dtype = ScaleDType::fp8_e4m3fn,
     .e8m0_rounding = std::nullopt,
     .division = ScaleDivision::multiply_reciprocal,
     .dequant_order = DequantOrder::product_then_round,
     // (amax / max) / g clamped to E4M3's normal range [2^-6, 448], then rounded to
     // E4M3 (torchao's nvfp4_quantize; g = 1 single-level, where the division is exact).
     .scale_from_amax =
         [](float amax, const MinifloatFormat& element, float global_scale) {
           const auto element_max = static_cast<float>(element.max_value);
           const float block_scale = (amax / element_max) / global_scale;
           const float clamped = std::clamp(block_scale, std::ldexp(1.0f, -6), 448.0f);
           return decode_minifloat(encode_minifloat(clamped, e4m3()), e4m3());
         },
     .block_scale_max = 448.0f,
     .encode_byte = [](float scale) { return encode_minifloat(scale, e4m3()); },
     .decode_byte = [](std::uint8_t byte) { return decode_minifloat(byte, e4m3()); },
     .stored_dtype = "F8_E4M3"},
}};

}  // namespace

float global_scale_from_amax(float amax, const QuantSpec& spec) {
  const ScaleSchemeTraits& row = scale_scheme_of(spec);
  QK_CHECK(row.block_scale_max > 0, "scale_dtype ", name(row.scale_dtype),
           " has no two-level (global) scale");
  const auto element_max = static_cast<float>(spec.dtype.minifloat().max_value);
  const float target = amax / (row.block_scale_max * element_max);
  int exponent = 0;
  const float mantissa = std::frexp(target, &exponent);  // target = mantissa * 2^exponent
  if (mantissa == 0.5f) exponent -= 1;                   // already a power of two
  return std::ldexp(1.0f, std::max(exponent, -120));
}

std::span<const ScaleSchemeTraits> scale_schemes() {
  return kRows;
}

bool is_block_scale_dtype(ScaleDType scale_dtype) {
  return std::any_of(kRows.begin(), kRows.end(), [&](const ScaleSchemeTraits& row) {
    return row.scale_dtype == scale_dtype && row.encode_byte != nullptr;
  });
}

const ScaleSchemeTraits& scale_scheme_of(const QuantSpec& spec) {
  const ScaleDType wanted = spec.scale_dtype.value_or(ScaleDType::float32);
  for (const auto& row : kRows) {
    if (row.scale_dtype != wanted) continue;
    if (row.e8m0_rounding && *row.e8m0_rounding != spec.e8m0_rounding) continue;
    return row;
  }
  std::string supported;
  for (const auto& row : kRows) {
    const std::string_view scale_name = name(row.scale_dtype);
    if (supported.find(scale_name) != std::string::npos) continue;
    if (!supported.empty()) supported.append(", ");
    supported.append(scale_name);
  }
  throw Error(detail::concat("scale_dtype ", name(wanted), " is not supported for ",
                             spec.dtype.name(), ": use one of ", supported));
}

}  // namespace quantkit
