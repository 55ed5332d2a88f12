#pragma once
// Per-element quantize / dequantize formulas: the numerics source of truth.
// The contract of each formula is documented in include/quantkit/ops.hpp and
// docs/numerics.md; this file is its executable form.

#include <cstdint>
#include <vector>

#include "core/internal/block_layout.hpp"
#include "quantkit/half.hpp"
#include "quantkit/minifloat.hpp"
#include "quantkit/qparams.hpp"
#include "quantkit/scale_scheme.hpp"

namespace quantkit::reference {

enum class Scheme : std::uint8_t {
  int_domain,    // q = clamp(round(x * r) + zp)
  float_domain,  // tinygemm
  none_domain,   // q = clamp(round(x * r))
  stretched,     // PARQ
  minifloat,     // FP8/FP6/FP4 codes; the scale applies as its ScaleSchemeTraits row says
};

/// Everything a kernel needs, resolved once per call: the scheme, the dtypes
/// every op rounds to, the bounds, and per-block scale / zero point values.
struct ElementPlan {
  Scheme scheme = Scheme::int_domain;
  ScalarType input = ScalarType::float32;        // T
  ScalarType scale_dtype = ScalarType::float32;  // S (storage of the scale tensor)
  ScalarType zero_dtype = ScalarType::int32;     // Z
  double quant_min = 0;
  double quant_max = 0;
  double stretched_max = 0;  // 2^(b-1) - 0.5
  const MinifloatFormat* format = nullptr;
  const ScaleSchemeTraits* scale_scheme = nullptr;  // minifloat only
  std::vector<float> scale;       // per block, exact value of the effective scale (stored * global)
  std::vector<float> reciprocal;  // multiplier applied to x (1/scale as the scheme rounds it)
  std::vector<float> divisor;     // divide_clamped only: x / max(scale, 2^-126)
  std::vector<float> zero_point;  // per block (0 when absent)
  std::vector<float> grid_min;    // float domain only: zp - scale * mid, rounded as torchao
};

/// Builds the plan for quantizing a tensor of `shape` and dtype `input` with
/// `qparams`; throws Error when the qparams grid does not fit the shape.
ElementPlan make_plan(const QParams& qparams, ScalarType input, const Shape& shape);
internal::BlockLayout make_layout(const QParams& qparams, const Shape& shape);

/// A plan of `blocks` blocks (default one) for an integer spec in the int or
/// none domain, whose scales and zero points set_int_block fills (the search
/// of blocks' qparams).
ElementPlan single_int_block_plan(const QuantSpec& spec, ScalarType input, ScalarType scale_dtype,
                                  ScalarType zero_dtype, std::int64_t blocks = 1);
/// Block b of an int / none domain plan takes the stored `scale` (a value of
/// plan.scale_dtype) and `zero_point`, with the multiplier quantize applies.
void set_int_block(ElementPlan& plan, std::int64_t b, float scale, float zero_point);

std::int32_t quantize_element(const ElementPlan& plan, float x, std::int64_t block);
float dequantize_element(const ElementPlan& plan, std::int32_t code, std::int64_t block,
                         ScalarType output);
/// Straight-through-estimator mask: does the gradient pass at x?
bool gradient_passes(const ElementPlan& plan, float x, std::int64_t block);

}  // namespace quantkit::reference
