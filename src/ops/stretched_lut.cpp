#include "quantkit/stretched.hpp"

#include <cmath>

#include "core/internal/float_io.hpp"
#include "quantkit/error.hpp"
#include "reference/eager_math.hpp"
#include "reference/element_ops.hpp"

namespace quantkit {

StretchedLut to_stretched_lut(const QuantizedTensor& q) {
  const auto& spec = q.qparams().spec;
  QK_CHECK(spec.mapping == Mapping::stretched, "to_stretched_lut needs a stretched tensor, got ",
           spec.describe());
  const auto quant_min = static_cast<std::int32_t>(spec.dtype.quant_min());
  const auto quant_max = static_cast<std::int32_t>(spec.dtype.quant_max());
  StretchedLut out;
  for (std::int32_t k = quant_min; k <= quant_max; ++k) {
    out.lut.push_back(static_cast<std::int8_t>(2 * k + 1));
  }
  const Tensor& scale = q.qparams().scale;
  out.half_scale = Tensor(scale.dtype(), scale.shape());
  for (std::int64_t i = 0; i < scale.numel(); ++i) out.half_scale.set(i, scale.get(i) * 0.5);
  for (const auto code : q.code_values())
    out.indices.push_back(static_cast<std::uint8_t>(code - quant_min));
  return out;
}

Tensor dequantize_lut(const StretchedLut& lut, const QuantizedTensor& q, ScalarType output_dtype) {
  internal::check_float_input(output_dtype, "output_dtype");
  QK_CHECK(static_cast<std::int64_t>(lut.indices.size()) == q.numel(), "LUT holds ",
           lut.indices.size(), " indices for a tensor of ", q.numel(), " elements");
  const auto layout = reference::make_layout(q.qparams(), q.shape());
  const auto scale_dtype = lut.half_scale.dtype();
  const auto product_dtype = reference::op_dtype(output_dtype, scale_dtype);
  std::vector<float> out(lut.indices.size());
  layout.for_each([&](std::int64_t i, std::int64_t b) {
    // int8 LUT value -> output dtype (exact), times the halved scale in the
    // promoted dtype, then to the output dtype: the ops of dequantize.
    const float level = reference::round_to(output_dtype, lut.lut[lut.indices[i]]);
    const auto half = static_cast<float>(lut.half_scale.get(b));
    out[i] = reference::round_to(output_dtype, reference::round_to(product_dtype, level * half));
  });
  return internal::store_floats(out, q.shape(), output_dtype);
}

}  // namespace quantkit
