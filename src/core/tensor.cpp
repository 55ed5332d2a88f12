#include "quantkit/tensor.hpp"

#include <cmath>
#include <cstring>
#include <limits>
#include <sstream>

#include <sys/mman.h>

#include "quantkit/error.hpp"

namespace quantkit {
namespace {

double load(const unsigned char* p, ScalarType dtype) {
  switch (dtype) {
    case ScalarType::float32: {
      float v;
      std::memcpy(&v, p, 4);
      return v;
    }
    case ScalarType::float64: {
      double v;
      std::memcpy(&v, p, 8);
      return v;
    }
    case ScalarType::float16: {
      std::uint16_t v;
      std::memcpy(&v, p, 2);
      return float_from_float16_bits(v);
    }
    case ScalarType::bfloat16: {
      std::uint16_t v;
      std::memcpy(&v, p, 2);
      return float_from_bfloat16_bits(v);
    }
    case ScalarType::int8: {
      std::int8_t v;
      std::memcpy(&v, p, 1);
      return v;
    }
    case ScalarType::uint8:
      return *p;
    case ScalarType::int16: {
      std::int16_t v;
      std::memcpy(&v, p, 2);
      return v;
    }
    case ScalarType::int32: {
      std::int32_t v;
      std::memcpy(&v, p, 4);
      return v;
    }
    case ScalarType::int64: {
      std::int64_t v;
      std::memcpy(&v, p, 8);
      return static_cast<double>(v);
    }
  }
  return 0;
}

template <typename Int>
Int to_integer(double value, ScalarType dtype) {
  const double truncated = std::trunc(value);
  QK_CHECK(std::isfinite(value) &&
               truncated >= static_cast<double>(std::numeric_limits<Int>::min()) &&
               truncated <= static_cast<double>(std::numeric_limits<Int>::max()),
           "value ", value, " cannot be stored in ", name(dtype), ": it must be finite and in [",
           +std::numeric_limits<Int>::min(), ", ", +std::numeric_limits<Int>::max(), "]");
  return static_cast<Int>(truncated);
}

void store(unsigned char* p, ScalarType dtype, double value) {
  switch (dtype) {
    case ScalarType::float32: {
      const auto v = static_cast<float>(value);
      std::memcpy(p, &v, 4);
      return;
    }
    case ScalarType::float64:
      std::memcpy(p, &value, 8);
      return;
    case ScalarType::float16: {
      // Narrow in two steps only when the double is already a float, which is
      // how every quantkit value reaches here; direct double->half would need
      // its own rounding routine.
      const auto v = float16_bits_from_float(static_cast<float>(value));
      std::memcpy(p, &v, 2);
      return;
    }
    case ScalarType::bfloat16: {
      const auto v = bfloat16_bits_from_float(static_cast<float>(value));
      std::memcpy(p, &v, 2);
      return;
    }
    case ScalarType::int8: {
      const auto v = to_integer<std::int8_t>(value, dtype);
      std::memcpy(p, &v, 1);
      return;
    }
    case ScalarType::uint8:
      *p = to_integer<std::uint8_t>(value, dtype);
      return;
    case ScalarType::int16: {
      const auto v = to_integer<std::int16_t>(value, dtype);
      std::memcpy(p, &v, 2);
      return;
    }
    case ScalarType::int32: {
      const auto v = to_integer<std::int32_t>(value, dtype);
      std::memcpy(p, &v, 4);
      return;
    }
    case ScalarType::int64: {
      const auto v = to_integer<std::int64_t>(value, dtype);
      std::memcpy(p, &v, 8);
      return;
    }
  }
}

void check_shape(const Shape& shape) {
  for (std::size_t d = 0; d < shape.size(); ++d) {
    QK_CHECK(shape[d] >= 0, "shape ", to_string(shape), " has negative size ", shape[d], " at dim ",
             d);
  }
}

}  // namespace

std::int64_t numel(const Shape& shape) {
  std::int64_t n = 1;
  for (auto s : shape) n *= s;
  return n;
}

Shape contiguous_strides(const Shape& shape) {
  Shape strides(shape.size());
  std::int64_t stride = 1;
  for (std::size_t d = shape.size(); d-- > 0;) {
    strides[d] = stride;
    stride *= shape[d];
  }
  return strides;
}

std::string to_string(const Shape& shape) {
  std::ostringstream out;
  out << '[';
  for (std::size_t d = 0; d < shape.size(); ++d) out << (d ? ", " : "") << shape[d];
  out << ']';
  return out.str();
}

TensorView::TensorView(const void* data, ScalarType dtype, Shape shape, Shape strides)
    : data_(data), dtype_(dtype), shape_(std::move(shape)), strides_(std::move(strides)) {
  check_shape(shape_);
  if (strides_.empty()) strides_ = contiguous_strides(shape_);
  QK_CHECK(strides_.size() == shape_.size(), "strides ", to_string(strides_),
           " must have one entry per dimension of shape ", to_string(shape_));
  QK_CHECK(data_ != nullptr || numel() == 0, "a non-empty view needs a data pointer");
}

bool TensorView::is_contiguous() const {
  return strides_ == contiguous_strides(shape_);
}

double TensorView::get(std::int64_t flat_index) const {
  QK_CHECK(flat_index >= 0 && flat_index < numel(), "index ", flat_index,
           " is out of range for shape ", to_string(shape_));
  std::int64_t offset = 0;
  for (std::size_t d = shape_.size(); d-- > 0;) {
    offset += (flat_index % shape_[d]) * strides_[d];
    flat_index /= shape_[d];
  }
  return load(static_cast<const unsigned char*>(data_) + offset * element_size(dtype_), dtype_);
}

Tensor TensorView::contiguous() const {
  Tensor out = Tensor::uninitialized(dtype_, shape_);
  const auto size = element_size(dtype_);
  if (is_contiguous()) {
    if (numel() > 0) std::memcpy(out.raw_data(), data_, static_cast<std::size_t>(numel()) * size);
    return out;
  }
  auto* dst = static_cast<unsigned char*>(out.raw_data());
  const auto* src = static_cast<const unsigned char*>(data_);
  Shape index(shape_.size(), 0);
  for (std::int64_t i = 0; i < numel(); ++i) {
    std::int64_t offset = 0;
    for (std::size_t d = 0; d < shape_.size(); ++d) offset += index[d] * strides_[d];
    std::memcpy(dst + i * size, src + offset * size, size);
    for (std::size_t d = shape_.size(); d-- > 0;) {
      if (++index[d] < shape_[d]) break;
      index[d] = 0;
    }
  }
  return out;
}

namespace {

constexpr std::size_t kHugePage = std::size_t{2} << 20;

unsigned char* allocate(std::size_t bytes, bool zero) {
  // Never a null pointer, so empty tensors can be memcpy'd from and to.
  const std::size_t alignment = bytes >= kHugePage ? kHugePage : 64;
  const std::size_t rounded =
      std::max<std::size_t>((bytes + alignment - 1) / alignment * alignment, alignment);
  void* p = std::aligned_alloc(alignment, rounded);
  if (p == nullptr) throw std::bad_alloc();
  if (alignment == kHugePage) madvise(p, rounded, MADV_HUGEPAGE);  // a hint; failure is harmless
  if (zero) std::memset(p, 0, bytes);
  return static_cast<unsigned char*>(p);
}

}  // namespace

void Tensor::Free::operator()(unsigned char* p) const noexcept {
  std::free(p);
}

Tensor::Tensor(ScalarType dtype, Shape shape, bool zero) : dtype_(dtype), shape_(std::move(shape)) {
  check_shape(shape_);
  nbytes_ = static_cast<std::size_t>(numel()) * element_size(dtype_);
  bytes_.reset(allocate(nbytes_, zero));
}

Tensor::Tensor(ScalarType dtype, Shape shape) : Tensor(dtype, std::move(shape), true) {}

Tensor Tensor::uninitialized(ScalarType dtype, Shape shape) {
  return Tensor(dtype, std::move(shape), false);
}

Tensor::Tensor(const Tensor& other) : Tensor(other.dtype_, other.shape_, false) {
  std::memcpy(bytes_.get(), other.bytes_.get(), nbytes_);
}

Tensor& Tensor::operator=(const Tensor& other) {
  if (this != &other) *this = Tensor(other);
  return *this;
}

Tensor Tensor::from_values(const std::vector<double>& values, Shape shape, ScalarType dtype) {
  QK_CHECK(static_cast<std::int64_t>(values.size()) == quantkit::numel(shape),
           "from_values: ", values.size(), " values do not fill shape ", to_string(shape));
  Tensor out(dtype, std::move(shape));
  for (std::size_t i = 0; i < values.size(); ++i) out.set(static_cast<std::int64_t>(i), values[i]);
  return out;
}

Tensor Tensor::from_values(std::initializer_list<double> values, ScalarType dtype) {
  return from_values(std::vector<double>(values), Shape{static_cast<std::int64_t>(values.size())},
                     dtype);
}

Tensor Tensor::full(Shape shape, double value, ScalarType dtype) {
  Tensor out(dtype, std::move(shape));
  for (std::int64_t i = 0; i < out.numel(); ++i) out.set(i, value);
  return out;
}

Tensor Tensor::reshape(Shape shape) const {
  QK_CHECK(quantkit::numel(shape) == numel(), "cannot reshape ", to_string(shape_), " to ",
           to_string(shape), ": element counts differ");
  Tensor out = *this;
  out.shape_ = std::move(shape);
  return out;
}

Tensor Tensor::to(ScalarType dtype) const {
  if (dtype == dtype_) return *this;
  Tensor out(dtype, shape_);
  for (std::int64_t i = 0; i < numel(); ++i) out.set(i, get(i));
  return out;
}

void Tensor::set(std::int64_t flat_index, double value) {
  QK_CHECK(flat_index >= 0 && flat_index < numel(), "index ", flat_index,
           " is out of range for shape ", to_string(shape_));
  store(bytes_.get() + flat_index * element_size(dtype_), dtype_, value);
}

std::vector<double> Tensor::to_vector() const {
  std::vector<double> out(static_cast<std::size_t>(numel()));
  for (std::int64_t i = 0; i < numel(); ++i) out[static_cast<std::size_t>(i)] = get(i);
  return out;
}

void Tensor::check_type(ScalarType requested) const {
  QK_CHECK(requested == dtype_, "tensor holds ", name(dtype_), ", not ", name(requested));
}

bool bitwise_equal(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() && a.nbytes() == b.nbytes() &&
         (a.nbytes() == 0 || std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()) == 0);
}

}  // namespace quantkit
