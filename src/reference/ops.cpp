// quantize / dequantize / fake_quantize: loops over elements that apply the
// per-element formulas of element_ops.cpp with each element's block.
#include "quantkit/ops.hpp"

#include <array>
#include <utility>

#include "quantkit/error.hpp"
#include "quantkit/torch_core.hpp"
#include "reference/element_ops.hpp"
#include "reference/reference_ops.hpp"

namespace quantkit {
namespace reference {

QuantizedTensor quantize(TensorView x, const QParams& qparams) {
  const auto plan = reference::make_plan(qparams, x.dtype(), x.shape());
  const auto layout = reference::make_layout(qparams, x.shape());
  const auto values = reference::load_floats(x);
  std::vector<std::int32_t> codes(values.size());
  layout.for_each([&](std::int64_t i, std::int64_t b) {
    codes[i] = reference::quantize_element(plan, values[i], b);
  });
  return QuantizedTensor(x.shape(), codes, qparams);
}

Tensor dequantize(const QuantizedTensor& q, ScalarType output_dtype) {
  reference::check_float_input(output_dtype, "output_dtype");
  const auto& qparams = q.qparams();
  const auto plan = reference::make_plan(qparams, qparams.compute_dtype, q.shape());
  const auto layout = reference::make_layout(qparams, q.shape());
  const auto codes = q.code_values();
  std::vector<float> out(codes.size());
  layout.for_each([&](std::int64_t i, std::int64_t b) {
    out[i] = reference::dequantize_element(plan, codes[i], b, output_dtype);
  });
  return reference::store_floats(out, q.shape(), output_dtype);
}

Tensor fake_quantize(TensorView x, const QParams& qparams) {
  const auto plan = reference::make_plan(qparams, x.dtype(), x.shape());
  const auto layout = reference::make_layout(qparams, x.shape());
  auto values = reference::load_floats(x);
  layout.for_each([&](std::int64_t i, std::int64_t b) {
    const auto code = reference::quantize_element(plan, values[i], b);
    values[i] = reference::dequantize_element(plan, code, b, x.dtype());
  });
  return reference::store_floats(values, x.shape(), x.dtype());
}

Tensor fake_quantize_backward(TensorView x, TensorView grad_output, const QParams& qparams) {
  QK_CHECK(grad_output.shape() == x.shape(), "grad_output of shape ",
           to_string(grad_output.shape()), " must match x of shape ", to_string(x.shape()));
  reference::check_float_input(grad_output.dtype(), "grad_output");
  const auto plan = reference::make_plan(qparams, x.dtype(), x.shape());
  const auto layout = reference::make_layout(qparams, x.shape());
  const auto values = reference::load_floats(x);
  auto grad = reference::load_floats(grad_output);
  layout.for_each([&](std::int64_t i, std::int64_t b) {
    // grad * mask, as PyTorch multiplies by the bool mask (so -g * 0 is -0.0).
    grad[i] = grad[i] * (reference::gradient_passes(plan, values[i], b) ? 1.0f : 0.0f);
  });
  return reference::store_floats(grad, x.shape(), grad_output.dtype());
}

}  // namespace reference

namespace {
constexpr std::array<std::pair<Convention, std::string_view>, 2> kConventions{{
    {Convention::torchao, "torchao"},
    {Convention::torch_core, "torch_core"},
}};
}  // namespace

std::string_view name(Convention convention) {
  return convention == Convention::torchao ? "torchao" : "torch_core";
}

Convention convention_from_name(std::string_view text) {
  for (const auto& [value, label] : kConventions) {
    if (label == text) return value;
  }
  throw Error(detail::concat("convention '", text, "' is unknown; expected torchao or torch_core"));
}

Tensor fake_quantize(TensorView x, const QParams& qparams, Convention convention) {
  if (convention == Convention::torchao) return fake_quantize(x, qparams);
  const auto& spec = qparams.spec;
  const auto kind = spec.granularity.kind();
  QK_CHECK(!spec.dtype.is_floating() && spec.mapping != Mapping::stretched &&
               spec.resolved_zero_point_domain() == ZeroPointDomain::int_ &&
               (kind == Granularity::Kind::per_tensor || kind == Granularity::Kind::per_axis),
           "convention torch_core supports integer formats with an int zero point, per_tensor or "
           "per_axis; got ",
           spec.describe());
  QK_CHECK(qparams.scale.dtype() == ScalarType::float32,
           "convention torch_core needs a float32 "
           "scale, got ",
           name(qparams.scale.dtype()));
  const torch_core::Range range{static_cast<std::int64_t>(spec.dtype.quant_min()),
                                static_cast<std::int64_t>(spec.dtype.quant_max())};
  if (kind == Granularity::Kind::per_tensor) {
    QK_CHECK(qparams.scale.numel() == 1, "per_tensor qparams need one scale, got ",
             qparams.scale.numel());
    return torch_core::fake_quantize_per_tensor_affine(
        x, static_cast<float>(qparams.scale.get(0)),
        static_cast<std::int64_t>(qparams.zero_point.get(0)), range);
  }
  const Shape channels{qparams.scale.numel()};
  return torch_core::fake_quantize_per_channel_affine(
      x, qparams.scale.reshape(channels),
      qparams.zero_point.to(ScalarType::int32).reshape(channels), spec.granularity.axis(), range);
}

}  // namespace quantkit
