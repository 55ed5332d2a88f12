// The one dispatcher of the public ops: the SIMD fast path (cpu/) where it
// applies, the scalar reference (reference/) otherwise. Both give bit-identical
// results (tests/cpp/test_fast_path.cpp). Nothing above this layer calls cpu/
// or picks a path itself.
#include "quantkit/ops.hpp"

#include <cmath>
#include <cstring>

#include "core/internal/float_io.hpp"
#include "cpu/fast_path.hpp"
#include "quantkit/error.hpp"
#include "reference/reference_ops.hpp"

namespace quantkit {

QParams choose_qparams(TensorView x, const QuantSpec& spec) {
  if (auto fast = cpu::choose_qparams(x, spec)) return std::move(*fast);
  return reference::choose_qparams(x, spec);
}

QParams choose_qparams(TensorView min_val, TensorView max_val, const QuantSpec& spec) {
  return reference::choose_qparams(min_val, max_val, spec);
}

QParams choose_qparams(TensorView x, const QuantSpec& spec, float global_scale) {
  spec.validate();
  QK_CHECK(spec.global_scale, "a global_scale was given but ", spec.describe(), " is single-level");
  QK_CHECK(std::isfinite(global_scale) && global_scale > 0, "global_scale ", global_scale,
           " must be finite and > 0");
  // Floating element formats choose from each block's amax alone, so the
  // block ranges give exactly what the whole data would.
  const BlockRange range = block_range(x, spec.granularity);
  QParams out = reference::choose_qparams(range.min, range.max, spec, global_scale);
  out.compute_dtype = x.dtype();
  return out;
}

QParams choose_qparams(TensorView x, const QuantSpec& spec, TensorView importance) {
  spec.validate();
  QK_CHECK(spec.scale_search != ScaleSearch::none, "importance weights were given but ",
           spec.describe(), " does not search its scales (set scale_search)");
  internal::check_float_input(importance.dtype(), "importance");
  const std::int64_t columns = x.dim() == 0 ? 1 : x.shape().back();
  QK_CHECK(importance.dim() == 1 && importance.numel() == columns, "importance of shape ",
           to_string(importance.shape()), " must hold one value per column of x (", columns, ")");
  const std::vector<float> weights = internal::load_floats(importance);
  for (std::size_t i = 0; i < weights.size(); ++i) {
    QK_CHECK(std::isfinite(weights[i]) && weights[i] >= 0, "importance ", weights[i], " at index ",
             i, " must be finite and >= 0");
  }
  if (auto fast = cpu::choose_qparams(x, spec, weights)) return std::move(*fast);
  return reference::choose_qparams(x, spec, weights);
}

BlockRange block_range(TensorView x, const Granularity& granularity) {
  internal::check_float_input(x.dtype(), "x");
  QK_CHECK(x.numel() > 0, "x of shape ", to_string(x.shape()), " is empty: it has no range");
  const Shape block = granularity.block_size(x.shape());
  const Shape grid = block_grid_shape(x.shape(), block);
  auto range = cpu::block_min_max(x, block);
  if (!range) range = reference::block_min_max(x, block);
  return {internal::store_floats(range->min, grid, ScalarType::float32),
          internal::store_floats(range->max, grid, ScalarType::float32)};
}

QuantizedTensor quantize(TensorView x, const QParams& qparams) {
  if (auto fast = cpu::quantize(x, qparams)) return std::move(*fast);
  return reference::quantize(x, qparams);
}

QuantizedTensor quantize(TensorView x, const QuantSpec& spec) {
  if (auto fast = cpu::choose_qparams_and_quantize(x, spec)) return std::move(*fast);
  return quantize(x, choose_qparams(x, spec));
}

Tensor dequantize(const QuantizedTensor& q, ScalarType output_dtype) {
  if (auto fast = cpu::dequantize(q, output_dtype)) return std::move(*fast);
  return reference::dequantize(q, output_dtype);
}

Tensor fake_quantize(TensorView x, const QParams& qparams) {
  if (auto fast = cpu::fake_quantize(x, qparams)) return std::move(*fast);
  return reference::fake_quantize(x, qparams);
}

namespace {

// Same memory (in place) is fine for element-wise kernels; a partial overlap
// would read elements already overwritten.
void check_no_partial_overlap(TensorView x, const OutView& out) {
  const auto* in_begin = static_cast<const unsigned char*>(x.data());
  const auto* out_begin = static_cast<const unsigned char*>(out.data);
  const auto in_end = in_begin + x.numel() * static_cast<std::int64_t>(element_size(x.dtype()));
  const auto out_end =
      out_begin + numel(out.shape) * static_cast<std::int64_t>(element_size(out.dtype));
  const bool disjoint = out_end <= in_begin || in_end <= out_begin;
  QK_CHECK(disjoint || (in_begin == out_begin && x.is_contiguous()),
           "out overlaps x without being x itself; pass a separate array or x (in place)");
}

}  // namespace

void fake_quantize_into(TensorView x, const QParams& qparams, const OutView& out) {
  QK_CHECK(out.dtype == x.dtype() && out.shape == x.shape(), "out (", name(out.dtype), " ",
           to_string(out.shape), ") must have x's dtype and shape (", name(x.dtype()), " ",
           to_string(x.shape()), ")");
  check_no_partial_overlap(x, out);
  if (cpu::fake_quantize_into(x, qparams, out.data)) return;
  const Tensor y = reference::fake_quantize(x, qparams);
  std::memcpy(out.data, y.raw_data(), y.nbytes());
}

void fake_quantize_into(TensorView x, const QParams& qparams, Tensor& out) {
  fake_quantize_into(x, qparams, OutView{out.raw_data(), out.dtype(), out.shape()});
}

void dequantize_into(const QuantizedTensor& q, const OutView& out) {
  QK_CHECK(out.shape == q.shape(), "out of shape ", to_string(out.shape),
           " must have the quantized tensor's shape ", to_string(q.shape()));
  if (cpu::dequantize_into(q, out.dtype, out.data)) return;
  const Tensor y = reference::dequantize(q, out.dtype);
  std::memcpy(out.data, y.raw_data(), y.nbytes());
}

void dequantize_into(const QuantizedTensor& q, Tensor& out) {
  dequantize_into(q, OutView{out.raw_data(), out.dtype(), out.shape()});
}

Tensor fake_quantize_backward(TensorView x, TensorView grad_output, const QParams& qparams) {
  if (auto fast = cpu::fake_quantize_backward(x, grad_output, qparams)) return std::move(*fast);
  return reference::fake_quantize_backward(x, grad_output, qparams);
}

}  // namespace quantkit
