#include "quantkit/scalar_type.hpp"

#include <array>
#include <cmath>

#include "quantkit/error.hpp"

namespace quantkit {
namespace {

struct ScalarTypeInfo {
  ScalarType type;
  std::string_view name;
  std::size_t size;
  bool floating;
};

constexpr std::array<ScalarTypeInfo, 9> kScalarTypes{{
    {ScalarType::float32, "float32", 4, true},
    {ScalarType::float16, "float16", 2, true},
    {ScalarType::bfloat16, "bfloat16", 2, true},
    {ScalarType::float64, "float64", 8, true},
    {ScalarType::int8, "int8", 1, false},
    {ScalarType::uint8, "uint8", 1, false},
    {ScalarType::int16, "int16", 2, false},
    {ScalarType::int32, "int32", 4, false},
    {ScalarType::int64, "int64", 8, false},
}};

const ScalarTypeInfo& info(ScalarType type) {
  return kScalarTypes[static_cast<std::size_t>(type)];
}

}  // namespace

std::string_view name(ScalarType type) {
  return info(type).name;
}
std::size_t element_size(ScalarType type) {
  return info(type).size;
}
bool is_floating_point(ScalarType type) {
  return info(type).floating;
}

ScalarType scalar_type_from_name(std::string_view text) {
  for (const auto& row : kScalarTypes) {
    if (row.name == text) return row.type;
  }
  if (text == "fp32" || text == "float") return ScalarType::float32;
  if (text == "fp16" || text == "half") return ScalarType::float16;
  if (text == "bf16") return ScalarType::bfloat16;
  if (text == "fp64" || text == "double") return ScalarType::float64;
  throw Error(detail::concat("dtype '", text,
                             "' is unknown; expected one of float32, float16, bfloat16, float64, "
                             "int8, uint8, int16, int32, int64"));
}

FloatInfo finfo(ScalarType type) {
  switch (type) {
    case ScalarType::float32:
      return {std::ldexp(1.0, -23), std::ldexp(1.0, -126), 3.4028234663852886e38};
    case ScalarType::bfloat16:
      return {std::ldexp(1.0, -7), std::ldexp(1.0, -126), 3.3895313892515355e38};
    case ScalarType::float16:
      return {std::ldexp(1.0, -10), std::ldexp(1.0, -14), 65504.0};
    case ScalarType::float64:
      return {std::ldexp(1.0, -52), std::ldexp(1.0, -1022), 1.7976931348623157e308};
    default:
      throw Error(detail::concat("finfo: dtype ", name(type), " is not a floating-point type"));
  }
}

ScalarType promote_types(ScalarType a, ScalarType b) {
  if (a == b) return a;
  const bool fa = is_floating_point(a);
  const bool fb = is_floating_point(b);
  if (fa && !fb) return a;
  if (fb && !fa) return b;
  if (!fa && !fb) return element_size(a) >= element_size(b) ? a : b;
  if (a == ScalarType::float64 || b == ScalarType::float64) return ScalarType::float64;
  return ScalarType::float32;  // any mix of float32 / float16 / bfloat16
}

}  // namespace quantkit
