#include "quantkit/quant_spec.hpp"

#include <cmath>

#include "quantkit/enum_names.hpp"
#include "quantkit/error.hpp"
#include "quantkit/scale_scheme.hpp"

namespace quantkit {
namespace {

constexpr EnumNames<Mapping, 5> kMappings{{
    {Mapping::symmetric, "symmetric"},
    {Mapping::symmetric_no_clipping_err, "symmetric_no_clipping_err"},
    {Mapping::asymmetric, "asymmetric"},
    {Mapping::stretched, "stretched"},
    {Mapping::symmetric_signed, "symmetric_signed"},
}};
constexpr EnumNames<ZeroPointDomain, 3> kDomains{{
    {ZeroPointDomain::int_, "int"},
    {ZeroPointDomain::float_, "float"},
    {ZeroPointDomain::none, "none"},
}};
// fp8_e4m3fn as the element format of the same encoding; fp8_e4m3 is the
// older spelling, still read.
constexpr EnumNames<ScaleDType, 6> kScaleDTypes{{
    {ScaleDType::float32, "float32"},
    {ScaleDType::bfloat16, "bfloat16"},
    {ScaleDType::float16, "float16"},
    {ScaleDType::e8m0, "e8m0"},
    {ScaleDType::fp8_e4m3fn, "fp8_e4m3fn"},
    {ScaleDType::fp8_e4m3fn, "fp8_e4m3"},
}};

constexpr EnumNames<ScaleSearch, 3> kScaleSearches{{
    {ScaleSearch::none, "none"},
    {ScaleSearch::mse, "mse"},
    {ScaleSearch::hqq, "hqq"},
}};

}  // namespace

std::string_view name(ScaleSearch search) {
  return name_in(kScaleSearches, search);
}
ScaleSearch scale_search_from_name(std::string_view text) {
  return value_in(kScaleSearches, text, "scale_search");
}
std::string_view name(Mapping mapping) {
  return name_in(kMappings, mapping);
}
std::string_view name(ZeroPointDomain domain) {
  return name_in(kDomains, domain);
}
std::string_view name(ScaleDType scale_dtype) {
  return name_in(kScaleDTypes, scale_dtype);
}
Mapping mapping_from_name(std::string_view text) {
  return value_in(kMappings, text, "mapping");
}
ZeroPointDomain zero_point_domain_from_name(std::string_view text) {
  return value_in(kDomains, text, "zero_point_domain");
}
ScaleDType scale_dtype_from_name(std::string_view text) {
  return value_in(kScaleDTypes, text, "scale_dtype");
}

ZeroPointDomain QuantSpec::resolved_zero_point_domain() const {
  if (zero_point_domain) return *zero_point_domain;
  return dtype.is_floating() ? ZeroPointDomain::none : ZeroPointDomain::int_;
}

void QuantSpec::validate() const {
  const auto domain = resolved_zero_point_domain();
  if (eps) {
    QK_CHECK(std::isfinite(*eps) && *eps > 0, "eps ", *eps, " must be finite and > 0");
  }
  if (dtype.is_floating()) {
    QK_CHECK(mapping == Mapping::symmetric, "mapping ", name(mapping), " is not supported for ",
             dtype.name(), ": floating element formats are symmetric");
    QK_CHECK(domain == ZeroPointDomain::none, "zero_point_domain ", name(domain),
             " is not supported for ", dtype.name(),
             ": floating element formats have no zero point (use none)");
    QK_CHECK(!zero_point_dtype, "zero_point_dtype is set but ", dtype.name(), " has no zero point");
    QK_CHECK(scale_search == ScaleSearch::none, "scale_search ", name(scale_search),
             " is for integer formats, not ", dtype.name());
    const ScaleSchemeTraits& row = scale_scheme_of(*this);  // throws for unsupported scales
    QK_CHECK(!global_scale || row.block_scale_max > 0,
             "global_scale needs byte block scales "
             "with a largest value (scale_dtype fp8_e4m3fn, as NVFP4), not scale_dtype ",
             name(scale_dtype.value_or(ScaleDType::float32)));
    return;
  }
  QK_CHECK(!global_scale,
           "global_scale (two-level scaling) is only for floating element "
           "formats with fp8_e4m3fn block scales, not ",
           dtype.name());
  QK_CHECK(!scale_dtype || !is_block_scale_dtype(*scale_dtype), "scale_dtype ", name(*scale_dtype),
           " is only supported for floating element formats, not ", dtype.name());
  if (zero_point_dtype) {
    QK_CHECK(*zero_point_dtype != ScalarType::float64, "zero_point_dtype float64 is not supported");
  }
  if (scale_search == ScaleSearch::hqq) {
    QK_CHECK(mapping == Mapping::asymmetric && domain != ZeroPointDomain::none,
             "scale_search hqq refines a zero point: it needs the asymmetric mapping with an int "
             "or float zero point, not ",
             name(mapping), " with zero_point_domain ", name(domain));
  } else if (scale_search != ScaleSearch::none) {
    QK_CHECK((mapping == Mapping::symmetric || mapping == Mapping::asymmetric ||
              mapping == Mapping::symmetric_signed) &&
                 domain != ZeroPointDomain::float_,
             "scale_search ", name(scale_search),
             " needs the symmetric, symmetric_signed or asymmetric mapping in "
             "the int or none zero-point domain, not ",
             name(mapping), " with zero_point_domain ", name(domain));
  }
  switch (mapping) {
    case Mapping::symmetric:
      QK_CHECK(domain != ZeroPointDomain::float_,
               "mapping symmetric does not support "
               "zero_point_domain float (the float domain is the asymmetric tinygemm scheme)");
      break;
    case Mapping::symmetric_no_clipping_err:
    case Mapping::symmetric_signed:
      QK_CHECK(domain != ZeroPointDomain::float_, "mapping ", name(mapping),
               " does not support zero_point_domain float");
      QK_CHECK(dtype.quant_min() < 0 && dtype.quant_max() > 0, "mapping ", name(mapping),
               " needs quant_min < 0 < quant_max, but ", dtype.name(), " has [", dtype.quant_min(),
               ", ", dtype.quant_max(), "]");
      break;
    case Mapping::asymmetric:
      QK_CHECK(domain != ZeroPointDomain::none,
               "mapping asymmetric needs a zero point: use "
               "zero_point_domain int or float, not none");
      break;
    case Mapping::stretched:
      QK_CHECK(dtype.is_signed() && dtype.quant_min() == dtype.type_min() &&
                   dtype.quant_max() == dtype.type_max(),
               "mapping stretched needs a full-range signed integer format (int1..int8), not ",
               dtype.name());
      QK_CHECK(domain == ZeroPointDomain::int_,
               "mapping stretched uses its fixed zero point -0.5;"
               " leave zero_point_domain unset or int");
      QK_CHECK(!zero_point_dtype || is_floating_point(*zero_point_dtype),
               "mapping stretched needs a floating zero_point_dtype for its -0.5 zero point");
      break;
  }
}

std::string QuantSpec::describe() const {
  std::string out = detail::concat(dtype.name(), " ", name(mapping), " ", granularity.describe(),
                                   " zero_point=", name(resolved_zero_point_domain()));
  if (scale_dtype) out += detail::concat(" scale=", name(*scale_dtype));
  if (global_scale) out += " global_scale";
  if (scale_search != ScaleSearch::none) out += detail::concat(" search=", name(scale_search));
  if (eps) out += detail::concat(" eps=", *eps);
  return out;
}

}  // namespace quantkit
