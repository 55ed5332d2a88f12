// quantize / dequantize / fake_quantize: loops over elements that apply the
// per-element formulas of element_ops.cpp with each element's block.
#include "core/internal/float_io.hpp"
#include "quantkit/error.hpp"
#include "reference/element_ops.hpp"
#include "reference/reference_ops.hpp"

namespace quantkit {
namespace reference {

QuantizedTensor quantize(TensorView x, const QParams& qparams) {
  const auto plan = reference::make_plan(qparams, x.dtype(), x.shape());
  const auto layout = reference::make_layout(qparams, x.shape());
  const auto values = internal::load_floats(x);
  std::vector<std::int32_t> codes(values.size());
  layout.for_each([&](std::int64_t i, std::int64_t b) {
    codes[i] = reference::quantize_element(plan, values[i], b);
  });
  return QuantizedTensor(x.shape(), codes, qparams);
}

Tensor dequantize(const QuantizedTensor& q, ScalarType output_dtype) {
  internal::check_float_input(output_dtype, "output_dtype");
  const auto& qparams = q.qparams();
  const auto plan = reference::make_plan(qparams, qparams.compute_dtype, q.shape());
  const auto layout = reference::make_layout(qparams, q.shape());
  const auto codes = q.code_values();
  std::vector<float> out(codes.size());
  layout.for_each([&](std::int64_t i, std::int64_t b) {
    out[i] = reference::dequantize_element(plan, codes[i], b, output_dtype);
  });
  return internal::store_floats(out, q.shape(), output_dtype);
}

Tensor fake_quantize(TensorView x, const QParams& qparams) {
  const auto plan = reference::make_plan(qparams, x.dtype(), x.shape());
  const auto layout = reference::make_layout(qparams, x.shape());
  auto values = internal::load_floats(x);
  layout.for_each([&](std::int64_t i, std::int64_t b) {
    const auto code = reference::quantize_element(plan, values[i], b);
    values[i] = reference::dequantize_element(plan, code, b, x.dtype());
  });
  return internal::store_floats(values, x.shape(), x.dtype());
}

Tensor fake_quantize_backward(TensorView x, TensorView grad_output, const QParams& qparams) {
  QK_CHECK(grad_output.shape() == x.shape(), "grad_output of shape ",
           to_string(grad_output.shape()), " must match x of shape ", to_string(x.shape()));
  internal::check_float_input(grad_output.dtype(), "grad_output");
  const auto plan = reference::make_plan(qparams, x.dtype(), x.shape());
  const auto layout = reference::make_layout(qparams, x.shape());
  const auto values = internal::load_floats(x);
  auto grad = internal::load_floats(grad_output);
  layout.for_each([&](std::int64_t i, std::int64_t b) {
    // grad * mask, as PyTorch multiplies by the bool mask (so -g * 0 is -0.0).
    grad[i] = grad[i] * (reference::gradient_passes(plan, values[i], b) ? 1.0f : 0.0f);
  });
  return internal::store_floats(grad, x.shape(), grad_output.dtype());
}

}  // namespace reference
}  // namespace quantkit
