// Bindings of QParams, QuantizedTensor and the quantize / dequantize / fake-quantize ops.
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include "arrays.hpp"
#include "bindings.hpp"
#include "quantkit/error.hpp"
#include "quantkit/metrics.hpp"
#include "quantkit/ops.hpp"
#include "quantkit/packing.hpp"
#include "quantkit/stretched.hpp"
#include "quantkit/threading.hpp"

namespace quantkit::python {

using namespace nb::literals;

namespace {

Tensor copy_of(const InArray& array, const char* argument) {
  return view_of(array, argument).contiguous();
}

QParams make_qparams(const QuantSpec& spec, const InArray& scale, std::optional<InArray> zero_point,
                     const std::string& compute_dtype, std::optional<InArray> global_scale) {
  Tensor zp = zero_point ? copy_of(*zero_point, "zero_point") : Tensor();
  Tensor g = global_scale ? copy_of(*global_scale, "global_scale") : Tensor();
  return QParams::make(spec, copy_of(scale, "scale"), std::move(zp),
                       scalar_type_from_name(compute_dtype), std::move(g));
}

}  // namespace

void bind_ops(nb::module_& m) {
  nb::class_<QParams>(m, "QParams")
      .def_static("make", &make_qparams, "spec"_a, "scale"_a, "zero_point"_a = nb::none(),
                  "compute_dtype"_a = "float32", "global_scale"_a = nb::none())
      .def_prop_ro("spec", [](const QParams& q) { return q.spec; })
      .def_prop_ro("scale", [](const QParams& q) { return nb::cast(to_array(Tensor(q.scale))); })
      .def_prop_ro("zero_point",
                   [](const QParams& q) -> nb::object {
                     if (!q.has_zero_point()) return nb::none();
                     return nb::cast(to_array(Tensor(q.zero_point)));
                   })
      .def_prop_ro("minval",
                   [](const QParams& q) -> nb::object {
                     if (q.minval.numel() == 0) return nb::none();
                     return nb::cast(to_array(Tensor(q.minval)));
                   })
      .def_prop_ro(
          "global_scale",
          [](const QParams& q) -> nb::object {
            if (q.global_scale.numel() == 0) return nb::none();
            return nb::cast(to_array(Tensor(q.global_scale)));
          },
          "Two-level specs: the float32 per-tensor scale g (0-d); None otherwise.")
      .def_prop_ro("compute_dtype",
                   [](const QParams& q) { return std::string(name(q.compute_dtype)); });

  nb::class_<QuantizedTensor>(m, "QuantizedTensor")
      .def_static(
          "from_packed",
          [](const std::vector<std::int64_t>& shape, const InArray& packed,
             const QParams& qparams) {
            const Tensor bytes = copy_of(packed, "packed");
            QK_CHECK(bytes.dtype() == ScalarType::uint8, "packed must be uint8, got ",
                     name(bytes.dtype()));
            const auto* p = bytes.data<std::uint8_t>();
            return QuantizedTensor::from_packed(
                shape, std::vector<std::uint8_t>(p, p + bytes.numel()), qparams);
          },
          "shape"_a, "packed"_a, "qparams"_a)
      .def_prop_ro("shape", [](const QuantizedTensor& q) { return q.shape(); })
      .def_prop_ro("qparams", [](const QuantizedTensor& q) { return q.qparams(); })
      .def("codes", [](const QuantizedTensor& q) { return to_array(q.codes()); })
      .def("packed", [](const QuantizedTensor& q) {
        Tensor bytes(ScalarType::uint8, {static_cast<std::int64_t>(q.packed().size())});
        std::copy(q.packed().begin(), q.packed().end(), bytes.data<std::uint8_t>());
        return to_array(std::move(bytes));
      });

  m.def(
      "choose_qparams",
      [](const InArray& x, const QuantSpec& spec) { return choose_qparams(view_of(x, "x"), spec); },
      "x"_a, "spec"_a);
  m.def(
      "choose_qparams_weighted",
      [](const InArray& x, const QuantSpec& spec, const InArray& importance) {
        return choose_qparams(view_of(x, "x"), spec, view_of(importance, "importance"));
      },
      "x"_a, "spec"_a, "importance"_a,
      "A scale search (scale_search='mse') weighting each column's error by its importance.");
  m.def(
      "choose_qparams_from_min_max",
      [](const InArray& min_val, const InArray& max_val, const QuantSpec& spec) {
        return choose_qparams(view_of(min_val, "min_val"), view_of(max_val, "max_val"), spec);
      },
      "min_val"_a, "max_val"_a, "spec"_a);
  m.def(
      "quantize", [](const InArray& x, const QParams& qp) { return quantize(view_of(x, "x"), qp); },
      "x"_a, "qparams"_a);
  m.def(
      "quantize",
      [](const InArray& x, const QuantSpec& spec) { return quantize(view_of(x, "x"), spec); },
      "x"_a, "spec"_a,
      "choose_qparams + quantize, in one pass where the SIMD path covers the spec.");
  m.def(
      "dequantize",
      [](const QuantizedTensor& q, const std::string& dtype) {
        return to_array(dequantize(q, scalar_type_from_name(dtype)));
      },
      "q"_a, "dtype"_a = "float32");
  m.def(
      "dequantize_into",
      [](const QuantizedTensor& q, const OutParam& out) { dequantize_into(q, out_view_of(out)); },
      "q"_a, "out"_a.noconvert());  // a converted copy would receive the result
  m.def(
      "fake_quantize_into",
      [](const InArray& x, const QParams& qp, const OutParam& out) {
        fake_quantize_into(view_of(x, "x"), qp, out_view_of(out));
      },
      "x"_a, "qparams"_a, "out"_a.noconvert());
  m.def(
      "fake_quantize",
      [](const InArray& x, const QParams& qp, const std::string& convention) {
        return to_array(fake_quantize(view_of(x, "x"), qp, convention_from_name(convention)));
      },
      "x"_a, "qparams"_a, "convention"_a = "torchao");
  m.def(
      "fake_quantize_backward",
      [](const InArray& x, const InArray& grad, const QParams& qp) {
        return to_array(fake_quantize_backward(view_of(x, "x"), view_of(grad, "grad_output"), qp));
      },
      "x"_a, "grad_output"_a, "qparams"_a);
  m.def(
      "stretched_lut",
      [](const QuantizedTensor& q) {
        StretchedLut lut = to_stretched_lut(q);
        Tensor table(ScalarType::int8, {static_cast<std::int64_t>(lut.lut.size())});
        std::copy(lut.lut.begin(), lut.lut.end(), table.data<std::int8_t>());
        Tensor indices(ScalarType::uint8, q.shape());
        std::copy(lut.indices.begin(), lut.indices.end(), indices.data<std::uint8_t>());
        Tensor dq = dequantize_lut(lut, q);
        return nb::make_tuple(to_array(std::move(table)), to_array(std::move(lut.half_scale)),
                              to_array(std::move(indices)), to_array(std::move(dq)));
      },
      "q"_a);
  m.def(
      "pack_codes",
      [](const std::vector<std::int32_t>& codes, int bits) {
        const auto bytes = pack_codes(codes, bits);
        Tensor out(ScalarType::uint8, {static_cast<std::int64_t>(bytes.size())});
        std::copy(bytes.begin(), bytes.end(), out.data<std::uint8_t>());
        return to_array(std::move(out));
      },
      "codes"_a, "bits"_a);
  m.def(
      "unpack_codes",
      [](const InArray& packed, std::int64_t count, int bits, bool is_signed) {
        const Tensor bytes = copy_of(packed, "packed");
        QK_CHECK(bytes.dtype() == ScalarType::uint8, "packed must be uint8, got ",
                 name(bytes.dtype()));
        const auto* p = bytes.data<std::uint8_t>();
        return unpack_codes(std::vector<std::uint8_t>(p, p + bytes.numel()), count, bits,
                            is_signed);
      },
      "packed"_a, "count"_a, "bits"_a, "is_signed"_a);
  m.def("set_num_threads", &set_num_threads, "threads"_a,
        "Threads for subsequent calls (0 restores the default); results never depend on it.");
  m.def("num_threads", &num_threads);
  m.def(
      "error_report",
      [](const InArray& reference, const InArray& test) {
        const auto r = error_report(view_of(reference, "reference"), view_of(test, "test"));
        nb::dict d;
        d["count"] = r.count;
        d["mean_abs_diff"] = r.mean_abs_diff;
        d["max_abs_diff"] = r.max_abs_diff;
        d["sqnr_db"] = r.sqnr_db;
        d["peir"] = r.peir;
        d["cosine"] = r.cosine;
        return d;
      },
      "reference"_a, "test"_a);
}

}  // namespace quantkit::python
