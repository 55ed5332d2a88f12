// Bindings of the PyTorch-core fake quantization variants.
#include "arrays.hpp"
#include "bindings.hpp"
#include "quantkit/torch_core.hpp"

namespace quantkit::python {

using namespace nb::literals;

void bind_torch_core(nb::module_& m) {
  using torch_core::Range;
  m.def(
      "fake_quantize_per_tensor_affine",
      [](const InArray& x, float scale, std::int64_t zp, std::int64_t qmin, std::int64_t qmax) {
        return to_array(torch_core::fake_quantize_per_tensor_affine(view_of(x, "x"), scale, zp,
                                                                    Range{qmin, qmax}));
      },
      "x"_a, "scale"_a, "zero_point"_a, "quant_min"_a, "quant_max"_a);
  m.def(
      "fake_quantize_per_tensor_mask",
      [](const InArray& x, float scale, std::int64_t zp, std::int64_t qmin, std::int64_t qmax) {
        return to_array(torch_core::fake_quantize_per_tensor_mask(view_of(x, "x"), scale, zp,
                                                                  Range{qmin, qmax}));
      },
      "x"_a, "scale"_a, "zero_point"_a, "quant_min"_a, "quant_max"_a);
  m.def(
      "fake_quantize_per_channel_affine",
      [](const InArray& x, const InArray& scale, const InArray& zp, std::int64_t axis,
         std::int64_t qmin, std::int64_t qmax) {
        return to_array(torch_core::fake_quantize_per_channel_affine(
            view_of(x, "x"), view_of(scale, "scale"), view_of(zp, "zero_point"), axis,
            Range{qmin, qmax}));
      },
      "x"_a, "scale"_a, "zero_point"_a, "axis"_a, "quant_min"_a, "quant_max"_a);
  m.def(
      "fake_quantize_per_channel_mask",
      [](const InArray& x, const InArray& scale, const InArray& zp, std::int64_t axis,
         std::int64_t qmin, std::int64_t qmax) {
        return to_array(torch_core::fake_quantize_per_channel_mask(
            view_of(x, "x"), view_of(scale, "scale"), view_of(zp, "zero_point"), axis,
            Range{qmin, qmax}));
      },
      "x"_a, "scale"_a, "zero_point"_a, "axis"_a, "quant_min"_a, "quant_max"_a);
  m.def(
      "fake_quantize_learnable_per_tensor_affine",
      [](const InArray& x, const InArray& scale, const InArray& zp, std::int64_t qmin,
         std::int64_t qmax) {
        return to_array(torch_core::fake_quantize_learnable_per_tensor_affine(
            view_of(x, "x"), view_of(scale, "scale"), view_of(zp, "zero_point"),
            Range{qmin, qmax}));
      },
      "x"_a, "scale"_a, "zero_point"_a, "quant_min"_a, "quant_max"_a);
  m.def(
      "fake_quantize_learnable_per_channel_affine",
      [](const InArray& x, const InArray& scale, const InArray& zp, std::int64_t axis,
         std::int64_t qmin, std::int64_t qmax) {
        return to_array(torch_core::fake_quantize_learnable_per_channel_affine(
            view_of(x, "x"), view_of(scale, "scale"), view_of(zp, "zero_point"), axis,
            Range{qmin, qmax}));
      },
      "x"_a, "scale"_a, "zero_point"_a, "axis"_a, "quant_min"_a, "quant_max"_a);
  m.def(
      "fake_quantize_learnable_backward",
      [](const InArray& grad, const InArray& x, const InArray& scale, const InArray& zp,
         std::int64_t axis, std::int64_t qmin, std::int64_t qmax, float grad_factor,
         bool per_channel) {
        const Range range{qmin, qmax};
        auto g = per_channel
                     ? torch_core::fake_quantize_learnable_per_channel_affine_backward(
                           view_of(grad, "grad_output"), view_of(x, "x"), view_of(scale, "scale"),
                           view_of(zp, "zero_point"), axis, range, grad_factor)
                     : torch_core::fake_quantize_learnable_per_tensor_affine_backward(
                           view_of(grad, "grad_output"), view_of(x, "x"), view_of(scale, "scale"),
                           view_of(zp, "zero_point"), range, grad_factor);
        return nb::make_tuple(to_array(std::move(g.grad_input)), to_array(std::move(g.grad_scale)),
                              to_array(std::move(g.grad_zero_point)));
      },
      "grad_output"_a, "x"_a, "scale"_a, "zero_point"_a, "axis"_a, "quant_min"_a, "quant_max"_a,
      "grad_factor"_a, "per_channel"_a);
}

}  // namespace quantkit::python
