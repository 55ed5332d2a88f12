#include "quantkit/qparams.hpp"

#include <cmath>

#include "core/internal/block_layout.hpp"
#include "quantkit/error.hpp"
#include "quantkit/scale_scheme.hpp"

namespace quantkit {

QParams QParams::make(const QuantSpec& spec, Tensor scale, Tensor zero_point,
                      ScalarType compute_dtype, Tensor global_scale) {
  spec.validate();
  if (spec.global_scale) {
    QK_CHECK(global_scale.numel() == 1, "global_scale is ",
             global_scale.numel() == 0
                 ? std::string("missing")
                 : detail::concat("of shape ", to_string(global_scale.shape())),
             ": ", spec.describe(), " needs one float32 per-tensor scale");
    const double g = global_scale.get(0);
    QK_CHECK(std::isfinite(g) && g > 0 && static_cast<double>(static_cast<float>(g)) == g,
             "global_scale ", g, " must be a finite float32 > 0");
    global_scale = global_scale.to(ScalarType::float32).reshape({});
  } else {
    QK_CHECK(global_scale.numel() == 0, "global_scale was given but ", spec.describe(),
             " is single-level (set global_scale in the spec for two-level scaling)");
  }
  QK_CHECK(is_floating_point(scale.dtype()) && scale.dtype() != ScalarType::float64,
           "scale has dtype ", name(scale.dtype()), "; expected float32, bfloat16 or float16");
  const ScaleSchemeTraits* scale_scheme =
      spec.dtype.is_floating() ? &scale_scheme_of(spec) : nullptr;
  // Symmetric integer scales may be negative (symmetric_signed, llama.cpp's Q4_0
  // rule, and checkpoints written with it, which read back as symmetric): q * s is
  // defined for any nonzero s. Elsewhere a negative scale is a mistake.
  const bool signed_scales =
      !spec.dtype.is_floating() &&
      (spec.mapping == Mapping::symmetric || spec.mapping == Mapping::symmetric_signed);
  for (std::int64_t i = 0; i < scale.numel(); ++i) {
    const double s = scale.get(i);
    QK_CHECK(std::isfinite(s) && (signed_scales ? s != 0 : s > 0), "scale ", s, " at flat index ",
             internal::describe_index(scale.shape(), i),
             signed_scales ? " must be finite and nonzero" : " must be finite and > 0");
    if (scale_scheme && scale_scheme->encode_byte) {
      // A byte-stored scale must survive storage: the stored byte decodes to it.
      const auto value = static_cast<float>(s);
      QK_CHECK(scale_scheme->decode_byte(scale_scheme->encode_byte(value)) == value, "scale ", s,
               " at flat index ", internal::describe_index(scale.shape(), i), " is not a ",
               name(*spec.scale_dtype), " value, so it cannot be stored as one");
    }
  }
  const auto domain = spec.resolved_zero_point_domain();
  const bool needs_zero_point = !spec.dtype.is_floating() && (domain != ZeroPointDomain::none ||
                                                              spec.mapping == Mapping::stretched);
  if (!needs_zero_point) {
    QK_CHECK(zero_point.numel() == 0, "zero_point was given but ", spec.describe(),
             " has no zero point");
  } else {
    QK_CHECK(zero_point.numel() > 0, "zero_point is missing: ", spec.describe(),
             " stores one zero point per scale (", scale.numel(),
             " here), symmetric integer specs included (their zero point is the grid's middle, "
             "0 for signed dtypes)");
    QK_CHECK(zero_point.numel() == scale.numel(), "zero_point has ", zero_point.numel(),
             " elements but scale has ", scale.numel(), "; they must match");
  }
  for (std::int64_t i = 0; i < zero_point.numel(); ++i) {
    const double z = zero_point.get(i);
    QK_CHECK(std::isfinite(z), "zero_point ", z, " at flat index ",
             internal::describe_index(zero_point.shape(), i), " must be finite");
    if (spec.mapping == Mapping::stretched) {
      QK_CHECK(z == -0.5, "zero_point ", z, " at flat index ", i,
               " must be -0.5 for the stretched mapping");
    } else if (domain == ZeroPointDomain::int_) {
      QK_CHECK(z >= spec.dtype.quant_min() && z <= spec.dtype.quant_max() && z == std::trunc(z),
               "zero_point ", z, " at flat index ", internal::describe_index(zero_point.shape(), i),
               " must be an integer in [quant_min, quant_max] = [", spec.dtype.quant_min(), ", ",
               spec.dtype.quant_max(), "]");
    }
  }
  QParams out;
  out.spec = spec;
  out.scale = std::move(scale);
  out.zero_point = std::move(zero_point);
  out.compute_dtype = compute_dtype;
  out.global_scale = std::move(global_scale);
  return out;
}

}  // namespace quantkit
