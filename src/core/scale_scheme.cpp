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
     .encode_byte = nullptr,
     .decode_byte = nullptr,
     .stored_dtype = ""},
    {.name = "mx_floor",
     .scale_dtype = ScaleDType::e8m0,
     .e8m0_rounding = E8M0Rounding::floor,
     .division = ScaleDivision::divide_clamped,
     .dequant_order = DequantOrder::round_then_product,
     .scale_from_amax =
         [](float amax, const MinifloatFormat& element) {
           return e8m0_to_float(e8m0_from_amax(amax, element, E8M0Rounding::floor));
         },
     .encode_byte = e8m0_from_power_of_two,
     .decode_byte = e8m0_to_float,
     .stored_dtype = "U8"},
    {.name = "mx_rceil",
     .scale_dtype = ScaleDType::e8m0,
     .e8m0_rounding = E8M0Rounding::rceil,
     .division = ScaleDivision::multiply_exponent,
     .dequant_order = DequantOrder::round_then_product,
     .scale_from_amax =
         [](float amax, const MinifloatFormat& element) {
           return e8m0_to_float(e8m0_from_amax(amax, element, E8M0Rounding::rceil));
         },
     .encode_byte = e8m0_from_power_of_two,
     .decode_byte = e8m0_to_float,
     .stored_dtype = "U8"},
    {.name = "nvfp4",
     .scale_dtype = ScaleDType::fp8_e4m3fn,
     .e8m0_rounding = std::nullopt,
     .division = ScaleDivision::multiply_reciprocal,
     .dequant_order = DequantOrder::product_then_round,
     // amax / max clamped to E4M3's normal range [2^-6, 448], then rounded to E4M3.
     .scale_from_amax =
         [](float amax, const MinifloatFormat& element) {
           const auto element_max = static_cast<float>(element.max_value);
           const float block_scale = std::clamp(amax / element_max, std::ldexp(1.0f, -6), 448.0f);
           return decode_minifloat(encode_minifloat(block_scale, e4m3()), e4m3());
         },
     .encode_byte = [](float scale) { return encode_minifloat(scale, e4m3()); },
     .decode_byte = [](std::uint8_t byte) { return decode_minifloat(byte, e4m3()); },
     .stored_dtype = "F8_E4M3"},
}};

}  // namespace

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
