#include "reference/element_ops.hpp"

#include <algorithm>
#include <cmath>

#include "core/internal/block_layout.hpp"
#include "core/internal/float_io.hpp"
#include "quantkit/error.hpp"
#include "reference/eager_math.hpp"

namespace quantkit::reference {
namespace {

Scheme scheme_of(const QuantSpec& spec) {
  if (spec.dtype.is_floating()) return Scheme::minifloat;
  if (spec.mapping == Mapping::stretched) return Scheme::stretched;
  switch (spec.resolved_zero_point_domain()) {
    case ZeroPointDomain::int_:
      return Scheme::int_domain;
    case ZeroPointDomain::float_:
      return Scheme::float_domain;
    case ZeroPointDomain::none:
      return Scheme::none_domain;
  }
  return Scheme::int_domain;
}

bool in_range(const ElementPlan& plan, double q) {
  return q >= plan.quant_min && q <= plan.quant_max;  // false for NaN
}

std::int32_t to_code(const ElementPlan& plan, double q) {
  return static_cast<std::int32_t>(clamp_nan_to_low(q, plan.quant_min, plan.quant_max));
}

// x * r rounded to promote(T, S), rounded half to even.
float scaled_rounded(const ElementPlan& plan, float x, std::int64_t b) {
  return round_half_even(round_to(op_dtype(plan.input, plan.scale_dtype), x * plan.reciprocal[b]));
}

float int_domain_unclamped(const ElementPlan& plan, float x, std::int64_t b) {
  const ScalarType product = op_dtype(plan.input, plan.scale_dtype);
  return round_to(op_dtype(product, plan.zero_dtype),
                  scaled_rounded(plan, x, b) + plan.zero_point[b]);
}

float float_domain_unclamped(const ElementPlan& plan, float x, std::int64_t b) {
  const ScalarType dtype = op_dtype(plan.input, op_dtype(plan.zero_dtype, plan.scale_dtype));
  const float shifted = round_to(dtype, x - plan.grid_min[b]);
  return round_half_even(round_to(dtype, shifted / plan.scale[b]));
}

float stretched_clip(const ElementPlan& plan, std::int64_t b) {
  return round_to(plan.scale_dtype, plan.scale[b] * static_cast<float>(plan.stretched_max));
}

// Value of x in units of the scale, before clamping to the format's range.
float minifloat_scaled(const ElementPlan& plan, float x, std::int64_t b) {
  switch (plan.scale_scheme->division) {
    case ScaleDivision::divide:
      return x / plan.scale[b];
    case ScaleDivision::divide_clamped:
      return x / plan.divisor[b];
    case ScaleDivision::multiply_reciprocal:
    case ScaleDivision::multiply_exponent:
      return x * plan.reciprocal[b];
  }
  return NAN;
}

// The per-block multiplier of the multiply_* divisions.
float reciprocal_of(const ElementPlan& plan, float s) {
  if (plan.scheme == Scheme::minifloat &&
      plan.scale_scheme->division == ScaleDivision::multiply_exponent) {
    const int byte = e8m0_from_power_of_two(s);
    return byte == 255 ? NAN : (byte == 0 ? 1.0f : std::ldexp(1.0f, 127 - byte));
  }
  return round_to(plan.scale_dtype, 1.0f / s);  // torch.reciprocal in the scale's dtype
}

}  // namespace

internal::BlockLayout make_layout(const QParams& qparams, const Shape& shape) {
  internal::BlockLayout layout(shape, qparams.spec.granularity.block_size(shape));
  const auto& scale = qparams.scale;
  QK_CHECK(
      scale.numel() == layout.num_blocks() && (scale.shape() == layout.grid() || scale.dim() <= 1),
      "scale of shape ", to_string(scale.shape()), " does not match the ",
      qparams.spec.granularity.describe(), " grid ", to_string(layout.grid()),
      " of an input of shape ", to_string(shape));
  if (qparams.has_zero_point()) {
    QK_CHECK(qparams.zero_point.numel() == scale.numel(), "zero_point of shape ",
             to_string(qparams.zero_point.shape()), " does not match scale of shape ",
             to_string(scale.shape()));
  }
  return layout;
}

ElementPlan make_plan(const QParams& qparams, ScalarType input, const Shape& shape) {
  internal::check_float_input(input, "x");
  const auto& spec = qparams.spec;
  const std::int64_t blocks = make_layout(qparams, shape).num_blocks();
  ElementPlan plan;
  plan.scheme = scheme_of(spec);
  plan.input = input;
  plan.scale_dtype = qparams.scale.dtype();
  plan.zero_dtype = qparams.has_zero_point() ? qparams.zero_point.dtype() : ScalarType::int32;
  plan.quant_min = spec.dtype.quant_min();
  plan.quant_max = spec.dtype.quant_max();
  plan.stretched_max = std::ldexp(1.0, spec.dtype.bits() - 1) - 0.5;
  if (spec.dtype.is_floating()) {
    plan.format = &spec.dtype.minifloat();
    plan.scale_scheme = &scale_scheme_of(spec);
  }
  const double mid = (plan.quant_max + plan.quant_min + 1) / 2;
  plan.scale = internal::load_floats(qparams.scale);

  // Arrays only the scheme reads: each is a fresh grid-sized allocation per call.
  const bool divides_clamped =
      plan.scale_scheme && plan.scale_scheme->division == ScaleDivision::divide_clamped;
  if (divides_clamped) {
    plan.divisor.resize(blocks);
  } else {
    plan.reciprocal.resize(blocks);
  }
  plan.zero_point = qparams.has_zero_point() ? internal::load_floats(qparams.zero_point)
                                             : std::vector<float>(blocks, 0.0f);
  if (plan.scheme == Scheme::float_domain) plan.grid_min.assign(blocks, 0.0f);
  if (spec.global_scale) {
    // Two-level (torchao's NVFP4 with a per-tensor scale g): x * ((1 / g) / b),
    // then element * (g * b), each a float32 op.
    QK_CHECK(qparams.global_scale.numel() == 1, "qparams of ", spec.describe(),
             " have no global_scale (two-level specs need the per-tensor scale)");
    const float g = qparams.global_scale_value();
    const float inverse = 1.0f / g;
    for (std::int64_t b = 0; b < blocks; ++b) {
      plan.reciprocal[b] = inverse / plan.scale[b];
      plan.scale[b] = g * plan.scale[b];
    }
    return plan;
  }
  for (std::int64_t b = 0; b < blocks; ++b) {
    const float s = plan.scale[b];
    if (divides_clamped) {
      // torchao to_mx (FLOOR) divides by the scale clamped to the smallest normal float.
      plan.divisor[b] = std::max(s, std::ldexp(1.0f, -126));
    } else if (plan.scheme != Scheme::float_domain) {  // the float domain divides by s
      plan.reciprocal[b] = reciprocal_of(plan, s);
    }
    if (plan.scheme == Scheme::float_domain) {
      const float step = round_to(plan.scale_dtype, s * static_cast<float>(mid));
      plan.grid_min[b] =
          round_to(op_dtype(plan.zero_dtype, plan.scale_dtype), plan.zero_point[b] - step);
    }
  }
  return plan;
}

ElementPlan single_int_block_plan(const QuantSpec& spec, ScalarType input, ScalarType scale_dtype,
                                  ScalarType zero_dtype, std::int64_t blocks) {
  ElementPlan plan;
  plan.scheme = scheme_of(spec);
  QK_CHECK(plan.scheme == Scheme::int_domain || plan.scheme == Scheme::none_domain,
           "a single-block search plan needs an int or none domain spec, not ", spec.describe());
  plan.input = input;
  plan.scale_dtype = scale_dtype;
  plan.zero_dtype = zero_dtype;
  plan.quant_min = spec.dtype.quant_min();
  plan.quant_max = spec.dtype.quant_max();
  plan.scale.assign(static_cast<std::size_t>(blocks), 1.0f);
  plan.reciprocal.assign(static_cast<std::size_t>(blocks), 1.0f);
  plan.zero_point.assign(static_cast<std::size_t>(blocks), 0.0f);
  return plan;
}

void set_int_block(ElementPlan& plan, std::int64_t b, float scale, float zero_point) {
  plan.scale[b] = scale;
  plan.zero_point[b] = plan.scheme == Scheme::none_domain ? 0.0f : zero_point;
  plan.reciprocal[b] = reciprocal_of(plan, scale);
}

std::int32_t quantize_element(const ElementPlan& plan, float x, std::int64_t b) {
  switch (plan.scheme) {
    case Scheme::int_domain:
      return to_code(plan, int_domain_unclamped(plan, x, b));
    case Scheme::none_domain:
      return to_code(plan, scaled_rounded(plan, x, b));
    case Scheme::float_domain:
      return to_code(plan, float_domain_unclamped(plan, x, b));
    case Scheme::stretched: {
      const float clip = stretched_clip(plan, b);
      const float clipped = x < -clip ? -clip : (x > clip ? clip : x);
      const ScalarType quotient_dtype = op_dtype(plan.input, plan.scale_dtype);
      const float quotient = round_to(quotient_dtype, clipped / plan.scale[b]);
      const float shifted =
          round_to(op_dtype(quotient_dtype, plan.zero_dtype), quotient + plan.zero_point[b]);
      return to_code(plan, round_half_even(shifted));
    }
    case Scheme::minifloat: {
      const float y = minifloat_scaled(plan, x, b);
      const auto max = static_cast<float>(plan.format->max_value);
      const float clamped = y < -max ? -max : (y > max ? max : y);  // NaN stays NaN
      return encode_minifloat(clamped, *plan.format, /*saturate=*/true);
    }
  }
  return 0;
}

float dequantize_element(const ElementPlan& plan, std::int32_t code, std::int64_t b,
                         ScalarType output) {
  const float s = plan.scale[b];
  switch (plan.scheme) {
    case Scheme::int_domain:
    case Scheme::stretched: {
      const float q = round_to(output, static_cast<float>(code));
      const float shifted = round_to(output, q - round_to(output, plan.zero_point[b]));
      return round_to(output, round_to(op_dtype(output, plan.scale_dtype), shifted * s));
    }
    case Scheme::none_domain: {
      const float q = round_to(output, static_cast<float>(code));
      return round_to(output, round_to(op_dtype(output, plan.scale_dtype), q * s));
    }
    case Scheme::float_domain: {
      const auto mid = static_cast<float>((plan.quant_max + plan.quant_min + 1) / 2);
      const float centered = round_to(output, static_cast<float>(code) - mid);
      const float scaled = round_to(output, centered * s);
      return round_to(output, scaled + plan.zero_point[b]);
    }
    case Scheme::minifloat: {
      const float element = decode_minifloat(static_cast<std::uint8_t>(code), *plan.format);
      if (plan.scale_scheme->dequant_order == DequantOrder::product_then_round) {
        return round_to(output, element * s);
      }
      return round_to(output, round_to(output, element) * round_to(output, s));
    }
  }
  return 0;
}

bool gradient_passes(const ElementPlan& plan, float x, std::int64_t b) {
  switch (plan.scheme) {
    case Scheme::int_domain:
      return in_range(plan, int_domain_unclamped(plan, x, b));
    case Scheme::none_domain:
      return in_range(plan, scaled_rounded(plan, x, b));
    case Scheme::float_domain:
      return in_range(plan, float_domain_unclamped(plan, x, b));
    case Scheme::stretched: {
      const float clip = stretched_clip(plan, b);
      return x >= -clip && x <= clip;
    }
    default:
      return std::fabs(minifloat_scaled(plan, x, b)) <= plan.format->max_value;
  }
}

}  // namespace quantkit::reference
