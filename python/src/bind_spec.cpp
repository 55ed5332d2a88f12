// Bindings of the spec types: Granularity and QuantSpec.
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include "bindings.hpp"
#include "quantkit/error.hpp"
#include "quantkit/quant_spec.hpp"

namespace quantkit::python {

using namespace nb::literals;

namespace {

QuantSpec make_spec(const std::string& dtype, const std::string& mapping,
                    const Granularity& granularity,
                    const std::optional<std::string>& zero_point_domain, std::optional<double> eps,
                    const std::optional<std::string>& scale_dtype,
                    const std::optional<std::string>& zero_point_dtype,
                    std::optional<long long> quant_min, std::optional<long long> quant_max,
                    const std::string& e8m0_rounding, bool global_scale,
                    const std::string& scale_search) {
  QuantDType format = QuantDType::from_name(dtype);
  if (quant_min || quant_max) {
    format = format.with_range(quant_min.value_or(static_cast<long long>(format.type_min())),
                               quant_max.value_or(static_cast<long long>(format.type_max())));
  }
  QuantSpec spec{
      .dtype = format, .mapping = mapping_from_name(mapping), .granularity = granularity};
  if (zero_point_domain) spec.zero_point_domain = zero_point_domain_from_name(*zero_point_domain);
  spec.eps = eps;
  if (scale_dtype) spec.scale_dtype = scale_dtype_from_name(*scale_dtype);
  if (zero_point_dtype) spec.zero_point_dtype = scalar_type_from_name(*zero_point_dtype);
  spec.e8m0_rounding = e8m0_rounding_from_name(e8m0_rounding);
  spec.global_scale = global_scale;
  spec.scale_search = scale_search_from_name(scale_search);
  spec.validate();
  return spec;
}

template <typename T>
std::optional<std::string> optional_name(const std::optional<T>& value) {
  if (!value) return std::nullopt;
  return std::string(name(*value));
}

}  // namespace

void bind_spec(nb::module_& m) {
  nb::class_<Granularity>(m, "Granularity", "Which elements share one (scale, zero point).")
      .def_static("per_tensor", &Granularity::per_tensor)
      .def_static("per_axis", &Granularity::per_axis, "axis"_a)
      .def_static("per_group", &Granularity::per_group, "group_size"_a, "axis"_a = -1)
      .def_static("per_block", &Granularity::per_block, "block_shape"_a)
      .def_static("per_token", &Granularity::per_token)
      .def("block_size", &Granularity::block_size, "input_shape"_a,
           "Block size (torchao block_size) for an input of this shape.")
      .def_prop_ro(
          "kind",
          [](const Granularity& g) { return std::string(Granularity::kind_name(g.kind())); })
      .def(nb::self == nb::self)
      .def("__repr__", &Granularity::describe);

  nb::class_<QuantSpec>(m, "QuantSpec", "Everything that decides how a tensor is quantized.")
      .def(
          "__init__",
          [](QuantSpec* self, const std::string& dtype, const std::string& mapping,
             const Granularity& granularity, const std::optional<std::string>& zero_point_domain,
             std::optional<double> eps, const std::optional<std::string>& scale_dtype,
             const std::optional<std::string>& zero_point_dtype, std::optional<long long> quant_min,
             std::optional<long long> quant_max, const std::string& e8m0_rounding,
             bool global_scale, const std::string& scale_search) {
            new (self) QuantSpec(make_spec(dtype, mapping, granularity, zero_point_domain, eps,
                                           scale_dtype, zero_point_dtype, quant_min, quant_max,
                                           e8m0_rounding, global_scale, scale_search));
          },
          "dtype"_a = "int8", "mapping"_a = "symmetric",
          "granularity"_a = Granularity::per_tensor(), "zero_point_domain"_a = nb::none(),
          "eps"_a = nb::none(), "scale_dtype"_a = nb::none(), "zero_point_dtype"_a = nb::none(),
          "quant_min"_a = nb::none(), "quant_max"_a = nb::none(), "e8m0_rounding"_a = "floor",
          "global_scale"_a = false, "scale_search"_a = "none")
      .def_prop_ro("dtype", [](const QuantSpec& s) { return s.dtype.name(); })
      .def_prop_ro("bits", [](const QuantSpec& s) { return s.dtype.bits(); })
      .def_prop_ro("quant_min", [](const QuantSpec& s) { return s.dtype.quant_min(); })
      .def_prop_ro("quant_max", [](const QuantSpec& s) { return s.dtype.quant_max(); })
      .def_prop_ro("is_floating", [](const QuantSpec& s) { return s.dtype.is_floating(); })
      .def_prop_ro("mapping", [](const QuantSpec& s) { return std::string(name(s.mapping)); })
      .def_prop_ro("granularity", [](const QuantSpec& s) { return s.granularity; })
      .def_prop_ro(
          "zero_point_domain",
          [](const QuantSpec& s) { return std::string(name(s.resolved_zero_point_domain())); })
      .def_prop_ro("eps", [](const QuantSpec& s) { return s.eps; })
      .def_prop_ro("scale_dtype", [](const QuantSpec& s) { return optional_name(s.scale_dtype); })
      .def_prop_ro("zero_point_dtype",
                   [](const QuantSpec& s) { return optional_name(s.zero_point_dtype); })
      .def_prop_ro("e8m0_rounding",
                   [](const QuantSpec& s) { return std::string(name(s.e8m0_rounding)); })
      .def_prop_ro(
          "global_scale", [](const QuantSpec& s) { return s.global_scale; },
          "Two-level scaling (NVFP4): a float32 per-tensor scale over the block scales.")
      .def_prop_ro(
          "scale_search", [](const QuantSpec& s) { return std::string(name(s.scale_search)); },
          "'mse': each block's clipping ratio searched for the least squared error.")
      .def("to_text", &QuantSpec::to_text,
           "Every field, losslessly; QuantSpec.from_text(s.to_text()) == s.")
      .def_static(
          "from_text", [](const std::string& text) { return QuantSpec::from_text(text); }, "text"_a,
          "The spec of a to_text() string; ValueError naming the field that does not parse.")
      .def(nb::self == nb::self)
      .def("__hash__", [](const QuantSpec& s) { return std::hash<std::string>()(s.to_text()); })
      .def("__repr__", [](const QuantSpec& s) { return "QuantSpec(" + s.describe() + ")"; });
}

}  // namespace quantkit::python
