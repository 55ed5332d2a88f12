#pragma once
// Tensor (owning, contiguous, row-major) and TensorView (non-owning, strided).
//
// Shapes and strides are in elements. A TensorView never owns memory: it is
// valid only while the buffer it points to lives. Kernels accept views and make
// a contiguous copy when a view is strided.

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "quantkit/half.hpp"
#include "quantkit/scalar_type.hpp"

namespace quantkit {

using Shape = std::vector<std::int64_t>;

/// Number of elements of a shape (1 for a 0-dim shape).
std::int64_t numel(const Shape& shape);
/// Row-major strides of a shape, in elements.
Shape contiguous_strides(const Shape& shape);
/// "[2, 3, 4]"
std::string to_string(const Shape& shape);

/// Maps a C++ element type to its ScalarType.
template <typename T>
struct ScalarTypeOf;
template <>
struct ScalarTypeOf<float> {
  static constexpr ScalarType value = ScalarType::float32;
};
template <>
struct ScalarTypeOf<double> {
  static constexpr ScalarType value = ScalarType::float64;
};
template <>
struct ScalarTypeOf<Float16> {
  static constexpr ScalarType value = ScalarType::float16;
};
template <>
struct ScalarTypeOf<BFloat16> {
  static constexpr ScalarType value = ScalarType::bfloat16;
};
template <>
struct ScalarTypeOf<std::int8_t> {
  static constexpr ScalarType value = ScalarType::int8;
};
template <>
struct ScalarTypeOf<std::uint8_t> {
  static constexpr ScalarType value = ScalarType::uint8;
};
template <>
struct ScalarTypeOf<std::int16_t> {
  static constexpr ScalarType value = ScalarType::int16;
};
template <>
struct ScalarTypeOf<std::int32_t> {
  static constexpr ScalarType value = ScalarType::int32;
};
template <>
struct ScalarTypeOf<std::int64_t> {
  static constexpr ScalarType value = ScalarType::int64;
};

class Tensor;

class TensorView {
 public:
  TensorView() = default;
  /// Strided view; `strides` empty means row-major contiguous.
  TensorView(const void* data, ScalarType dtype, Shape shape, Shape strides = {});

  ScalarType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  const Shape& strides() const { return strides_; }
  std::int64_t dim() const { return static_cast<std::int64_t>(shape_.size()); }
  std::int64_t numel() const { return quantkit::numel(shape_); }
  bool is_contiguous() const;
  const void* data() const { return data_; }

  /// Element at a flat row-major index, widened exactly to double.
  double get(std::int64_t flat_index) const;
  /// Owning row-major copy.
  Tensor contiguous() const;

 private:
  const void* data_ = nullptr;
  ScalarType dtype_ = ScalarType::float32;
  Shape shape_;
  Shape strides_;
};

class Tensor {
 public:
  Tensor() : Tensor(ScalarType::float32, Shape{0}) {}
  /// Zero-initialised tensor.
  Tensor(ScalarType dtype, Shape shape);
  /// Tensor whose contents are unspecified: for outputs that are fully overwritten.
  static Tensor uninitialized(ScalarType dtype, Shape shape);

  Tensor(const Tensor& other);
  Tensor& operator=(const Tensor& other);
  Tensor(Tensor&&) noexcept = default;
  Tensor& operator=(Tensor&&) noexcept = default;

  /// Tensor holding `values` converted (round-to-nearest-even) to `dtype`.
  static Tensor from_values(const std::vector<double>& values, Shape shape,
                            ScalarType dtype = ScalarType::float32);
  static Tensor from_values(std::initializer_list<double> values,
                            ScalarType dtype = ScalarType::float32);
  static Tensor full(Shape shape, double value, ScalarType dtype = ScalarType::float32);

  ScalarType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  std::int64_t dim() const { return static_cast<std::int64_t>(shape_.size()); }
  std::int64_t numel() const { return quantkit::numel(shape_); }
  std::size_t nbytes() const { return nbytes_; }

  TensorView view() const { return TensorView(bytes_.get(), dtype_, shape_); }
  operator TensorView() const { return view(); }  // NOLINT: a Tensor is usable wherever a view is

  /// Same data, new shape with the same number of elements.
  Tensor reshape(Shape shape) const;
  /// Element-wise conversion (floats narrow with round-to-nearest-even,
  /// float to integer truncates toward zero and requires finite in-range values).
  Tensor to(ScalarType dtype) const;

  double get(std::int64_t flat_index) const { return view().get(flat_index); }
  void set(std::int64_t flat_index, double value);
  std::vector<double> to_vector() const;

  void* raw_data() { return bytes_.get(); }
  const void* raw_data() const { return bytes_.get(); }

  template <typename T>
  T* data() {
    check_type(ScalarTypeOf<T>::value);
    return reinterpret_cast<T*>(bytes_.get());
  }
  template <typename T>
  const T* data() const {
    check_type(ScalarTypeOf<T>::value);
    return reinterpret_cast<const T*>(bytes_.get());
  }

 private:
  struct Free {
    void operator()(unsigned char* p) const noexcept;
  };
  Tensor(ScalarType dtype, Shape shape, bool zero);
  void check_type(ScalarType requested) const;

  ScalarType dtype_;
  Shape shape_;
  std::size_t nbytes_ = 0;
  // 64-byte aligned; large buffers are 2 MiB aligned and backed by
  // transparent huge pages where the OS offers them (fewer first-touch faults).
  std::unique_ptr<unsigned char[], Free> bytes_;
};

/// True when both tensors have the same dtype, shape and bytes (so NaN == NaN
/// of the same payload and +0 != -0): the bit-exactness check used in tests.
bool bitwise_equal(const Tensor& a, const Tensor& b);

}  // namespace quantkit
