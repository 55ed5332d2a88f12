#include "quantkit/quant_dtype.hpp"

#include <charconv>
#include <cmath>

#include "quantkit/error.hpp"

namespace quantkit {

QuantDType QuantDType::int_(int bits) {
  QK_CHECK(bits >= 1 && bits <= 8, "bits ", bits,
           " is out of range: integer formats have 1..8 bits");
  const double half = std::ldexp(1.0, bits - 1);
  return QuantDType(bits, true, std::nullopt, -half, half - 1);
}

QuantDType QuantDType::uint(int bits) {
  QK_CHECK(bits >= 1 && bits <= 8, "bits ", bits,
           " is out of range: integer formats have 1..8 bits");
  return QuantDType(bits, false, std::nullopt, 0, std::ldexp(1.0, bits) - 1);
}

QuantDType QuantDType::floating(MinifloatKind kind) {
  const auto& format = minifloat_format(kind);
  return QuantDType(format.bits(), true, kind, -format.max_value, format.max_value);
}

QuantDType QuantDType::from_name(std::string_view text) {
  for (const auto& format : minifloat_formats()) {
    if (format.name == text) return floating(format.kind);
  }
  const bool is_unsigned = text.starts_with("uint");
  const auto digits = text.substr(is_unsigned ? 4 : 3);
  int bits = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), bits);
  const bool integer_name = (is_unsigned || text.starts_with("int")) && !digits.empty() &&
                            ec == std::errc() && end == digits.data() + digits.size();
  QK_CHECK(integer_name && bits >= 1 && bits <= 8, "quantized dtype '", text,
           "' is unknown; expected int1..int8, uint1..uint8, fp8_e4m3fn, fp8_e5m2, fp6_e3m2, "
           "fp6_e2m3 or fp4_e2m1");
  return is_unsigned ? uint(bits) : int_(bits);
}

QuantDType QuantDType::with_range(long long quant_min, long long quant_max) const {
  QK_CHECK(!is_floating(), "with_range: ", name(),
           " is a floating format; its range is fixed by the format");
  QK_CHECK(quant_min <= quant_max, "quant_min ", quant_min, " must not exceed quant_max ",
           quant_max);
  QK_CHECK(
      static_cast<double>(quant_min) >= type_min() && static_cast<double>(quant_max) <= type_max(),
      "range [", quant_min, ", ", quant_max, "] does not fit in ", name(), " whose range is [",
      type_min(), ", ", type_max(), "]");
  QuantDType out = *this;
  out.quant_min_ = static_cast<double>(quant_min);
  out.quant_max_ = static_cast<double>(quant_max);
  return out;
}

double QuantDType::type_min() const {
  if (is_floating()) return -minifloat().max_value;
  return is_signed_ ? -std::ldexp(1.0, bits_ - 1) : 0.0;
}

double QuantDType::type_max() const {
  if (is_floating()) return minifloat().max_value;
  return is_signed_ ? std::ldexp(1.0, bits_ - 1) - 1 : std::ldexp(1.0, bits_) - 1;
}

const MinifloatFormat& QuantDType::minifloat() const {
  QK_CHECK(is_floating(), name(), " is an integer format and has no minifloat traits");
  return minifloat_format(*minifloat_);
}

std::string QuantDType::name() const {
  if (is_floating()) return std::string(minifloat().name);
  std::string out = detail::concat(is_signed_ ? "int" : "uint", bits_);
  if (quant_min_ != type_min() || quant_max_ != type_max()) {
    out += detail::concat("[", quant_min_, ",", quant_max_, "]");
  }
  return out;
}

}  // namespace quantkit
