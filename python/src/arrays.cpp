#include "arrays.hpp"

#include "quantkit/error.hpp"

namespace quantkit::python {
namespace {

ScalarType scalar_type_of(nb::dlpack::dtype dtype, const char* argument) {
  using Code = nb::dlpack::dtype_code;
  const auto code = static_cast<Code>(dtype.code);
  QK_CHECK(dtype.lanes == 1, argument, " has a vector dtype (lanes ", dtype.lanes,
           "), which is not supported");
  if (code == Code::Float && dtype.bits == 32) return ScalarType::float32;
  if (code == Code::Float && dtype.bits == 16) return ScalarType::float16;
  if (code == Code::Float && dtype.bits == 64) return ScalarType::float64;
  if (code == Code::Bfloat && dtype.bits == 16) return ScalarType::bfloat16;
  if (code == Code::Int && dtype.bits == 8) return ScalarType::int8;
  if (code == Code::Int && dtype.bits == 16) return ScalarType::int16;
  if (code == Code::Int && dtype.bits == 32) return ScalarType::int32;
  if (code == Code::Int && dtype.bits == 64) return ScalarType::int64;
  if (code == Code::UInt && dtype.bits == 8) return ScalarType::uint8;
  throw Error(detail::concat(argument, " has an unsupported dtype (DLPack code ", int(dtype.code),
                             ", ", int(dtype.bits), " bits)"));
}

nb::dlpack::dtype dlpack_dtype(ScalarType type) {
  using Code = nb::dlpack::dtype_code;
  const auto bits = static_cast<std::uint8_t>(element_size(type) * 8);
  switch (type) {
    case ScalarType::float32:
    case ScalarType::float16:
    case ScalarType::float64:
      return {static_cast<std::uint8_t>(Code::Float), bits, 1};
    case ScalarType::bfloat16:
      return {static_cast<std::uint8_t>(Code::Bfloat), bits, 1};
    case ScalarType::uint8:
      return {static_cast<std::uint8_t>(Code::UInt), bits, 1};
    default:
      return {static_cast<std::uint8_t>(Code::Int), bits, 1};
  }
}

template <typename Array>
Shape shape_of(const Array& array) {
  Shape shape(array.ndim());
  for (std::size_t d = 0; d < array.ndim(); ++d)
    shape[d] = static_cast<std::int64_t>(array.shape(d));
  return shape;
}

}  // namespace

TensorView view_of(const InArray& array, const char* argument) {
  const ScalarType dtype = scalar_type_of(array.dtype(), argument);
  Shape strides(array.ndim());
  for (std::size_t d = 0; d < array.ndim(); ++d) strides[d] = array.stride(d);
  return TensorView(array.data(), dtype, shape_of(array), std::move(strides));
}

OutView out_view_of(const OutParam& array) {
  return OutView{array.data(), scalar_type_of(array.dtype(), "out"), shape_of(array)};
}

OutArray to_array(Tensor&& tensor) {
  auto* owned = new Tensor(std::move(tensor));
  nb::capsule owner(owned, [](void* p) noexcept { delete static_cast<Tensor*>(p); });
  std::vector<std::size_t> shape(owned->shape().begin(), owned->shape().end());
  return OutArray(owned->raw_data(), shape.size(), shape.data(), owner, nullptr,
                  dlpack_dtype(owned->dtype()), nb::device::cpu::value);
}

}  // namespace quantkit::python
