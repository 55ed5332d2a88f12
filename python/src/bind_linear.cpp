// Bindings of linear() and LinearWeight: the kernels behind converted and
// prepared Linear layers.
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include "arrays.hpp"
#include "bindings.hpp"
#include "quantkit/linear.hpp"

namespace quantkit::python {

using namespace nb::literals;

namespace {

std::optional<TensorView> optional_view(const std::optional<InArray>& array, const char* what) {
  if (!array) return std::nullopt;
  return view_of(*array, what);
}

// product(x, bias) with the GIL released while it runs, as an array.
template <typename Product>
OutArray without_gil(const InArray& x, const std::optional<InArray>& bias, const Product& product) {
  const TensorView xv = view_of(x, "x");
  const auto bv = optional_view(bias, "bias");
  Tensor y;
  {
    nb::gil_scoped_release release;
    y = product(xv, bv);
  }
  return to_array(std::move(y));
}

}  // namespace

void bind_linear(nb::module_& m) {
  nb::class_<LinearWeight>(m, "LinearWeight",
                           "A 2-D quantized weight resolved once for repeated linear() calls. It "
                           "reads `packed` in place and does not hold it: the caller keeps the "
                           "array alive and unchanged while the weight is used.")
      .def(
          "__init__",
          [](LinearWeight* self, const InArray& packed, const std::vector<std::int64_t>& shape,
             const QParams& qparams, const std::string& dtype) {
            new (self) LinearWeight(view_of(packed, "packed"), shape, qparams,
                                    scalar_type_from_name(dtype));
          },
          "packed"_a, "shape"_a, "qparams"_a, "dtype"_a)
      .def_prop_ro("shape", [](const LinearWeight& w) { return w.shape(); })
      .def(
          "gather_rows",
          [](const LinearWeight& w, const InArray& indices) {
            return to_array(w.gather_rows(view_of(indices, "indices")));
          },
          "indices"_a, "The rows named by `indices`, dequantized (an embedding lookup).");
  m.def(
      "linear",
      [](const InArray& x, const InArray& weight, const std::optional<InArray>& bias) {
        const TensorView wv = view_of(weight, "weight");
        return without_gil(x, bias, [&](TensorView xv, auto bv) { return linear(xv, wv, bv); });
      },
      "x"_a, "weight"_a, "bias"_a = nb::none(),
      "x · weightᵀ + bias in quantkit's specified summation order.");
  m.def(
      "linear",
      [](const InArray& x, const LinearWeight& weight, const std::optional<InArray>& bias) {
        return without_gil(x, bias, [&](TensorView xv, auto bv) { return linear(xv, weight, bv); });
      },
      "x"_a, "weight"_a, "bias"_a = nb::none(),
      "x · weightᵀ + bias with a quantized weight, dequantized a tile at a time.");
  m.def(
      "linear_int",
      [](const InArray& x, const QuantSpec& activation, const LinearWeight& weight,
         const std::optional<InArray>& bias) {
        return without_gil(x, bias, [&](TensorView xv, auto bv) {
          return linear_int(xv, activation, weight, bv);
        });
      },
      "x"_a, "activation"_a, "weight"_a, "bias"_a = nb::none(),
      "x quantized per row with `activation`, exact int32 sums against the weight's integer "
      "codes, then a float32 epilogue.");
  m.def(
      "linear_int",
      [](const InArray& x, const QParams& activation, const LinearWeight& weight,
         const std::optional<InArray>& bias) {
        return without_gil(x, bias, [&](TensorView xv, auto bv) {
          return linear_int(xv, activation, weight, bv);
        });
      },
      "x"_a, "activation"_a, "weight"_a, "bias"_a = nb::none(),
      "The integer path with given per-tensor input qparams (a calibrated input).");
}

}  // namespace quantkit::python
