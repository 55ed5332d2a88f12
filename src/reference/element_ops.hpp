#pragma once
// Per-element quantize / dequantize formulas: the numerics source of truth.
// The contract of each formula is documented in include/quantkit/ops.hpp and
// docs/numerics.md; this file is its executable form.

#include <cstdint>
#include <vector>

#include "quantkit/half.hpp"
#include "quantkit/minifloat.hpp"
#include "quantkit/qparams.hpp"
#include "reference/block_layout.hpp"

namespace quantkit::reference {

enum class Scheme : std::uint8_t {
  int_domain,    // q = clamp(round(x * r) + zp)
  float_domain,  // tinygemm
  none_domain,   // q = clamp(round(x * r))
  stretched,     // PARQ
  float_format,  // FP8/FP6/FP4 codes with a float32 divisor scale
  mx,            // FP codes with an E8M0 power-of-two scale
  nvfp4,         // FP codes with an FP8-E4M3 block scale (reciprocal multiply)
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
  std::vector<float> scale;       // per block, exact value of the stored scale
  std::vector<float> reciprocal;  // multiplier applied to x (1/scale as the scheme rounds it)
  std::vector<float> divisor;     // mx floor only: x is divided by max(scale, 2^-126) instead
  std::vector<float> zero_point;  // per block (0 when absent)
  std::vector<float> grid_min;    // float domain only: zp - scale * mid, rounded as torchao
};

/// Builds the plan for quantizing a tensor of `shape` and dtype `input` with
/// `qparams`; throws Error when the qparams grid does not fit the shape.
ElementPlan make_plan(const QParams& qparams, ScalarType input, const Shape& shape);
BlockLayout make_layout(const QParams& qparams, const Shape& shape);

std::int32_t quantize_element(const ElementPlan& plan, float x, std::int64_t block);
float dequantize_element(const ElementPlan& plan, std::int32_t code, std::int64_t block,
                         ScalarType output);
/// Straight-through-estimator mask: does the gradient pass at x?
bool gradient_passes(const ElementPlan& plan, float x, std::int64_t block);

/// Checks a float input dtype (float32, bfloat16, float16) for argument `what`.
void check_float_input(ScalarType dtype, const char* what);
/// Reads a float tensor as float values (exact for the three input dtypes).
std::vector<float> load_floats(TensorView x);
/// Writes value(0) .. value(count - 1), already representable in out's dtype,
/// to out's flat elements [first, first + count).
template <typename Value>
void store_floats_at(Tensor& out, std::int64_t first, std::int64_t count, const Value& value) {
  const auto store = [&](auto* data, const auto& convert) {  // data() checks the dtype once
    for (std::int64_t i = 0; i < count; ++i) data[first + i] = convert(value(i));
  };
  switch (out.dtype()) {
    case ScalarType::float32:
      return store(out.data<float>(), [](float v) { return v; });
    case ScalarType::bfloat16:
      return store(out.data<BFloat16>(), [](float v) { return BFloat16::from_float(v); });
    case ScalarType::float16:
      return store(out.data<Float16>(), [](float v) { return Float16::from_float(v); });
    case ScalarType::int32:  // integer-valued (zero points); set() checks the others
      return store(out.data<std::int32_t>(), [](float v) { return static_cast<std::int32_t>(v); });
    default:
      for (std::int64_t i = 0; i < count; ++i) out.set(first + i, value(i));
  }
}
/// Writes values (already representable in `dtype`) into a new tensor.
Tensor store_floats(const std::vector<float>& values, const Shape& shape, ScalarType dtype);

}  // namespace quantkit::reference
