#pragma once
// Rows of a linear() weight as the float dtype it computes in: read in place
// (dense weights) or dequantized tile by tile from packed codes.
#include <cstdint>
#include <memory>

#include "cpu/linear_kernels.hpp"
#include "quantkit/qparams.hpp"
#include "quantkit/tensor.hpp"

namespace quantkit::cpu {

class WeightRows {
 public:
  WeightRows(Shape shape, ScalarType dtype) : shape_(std::move(shape)), dtype_(dtype) {}
  virtual ~WeightRows() = default;
  WeightRows(const WeightRows&) = delete;
  WeightRows& operator=(const WeightRows&) = delete;

  const Shape& shape() const { return shape_; }
  ScalarType dtype() const { return dtype_; }
  /// Bytes of scratch rows() may use for `count` rows.
  std::size_t scratch_bytes(std::int64_t count) const;
  /// Rows [first, first + count): a pointer to them where they are stored as
  /// dtype() already, else decoded into `scratch` (scratch_bytes(count) bytes).
  virtual const void* rows(std::int64_t first, std::int64_t count, void* scratch) const = 0;
  /// The codes and block parameters, where linear()'s packed kernel decodes
  /// them in registers instead of rows() decoding them to memory; else null.
  virtual const PackedIntRows* packed_int() const { return nullptr; }
  /// For linear_int: the weight's integer blocks (scales, integer zero
  /// points; null where the weight has no integer path), and rows [first, first +
  /// count) as centered codes q - zp (int16) in `out`, using `scratch`
  /// (scratch_bytes(count) bytes).
  virtual const PackedIntRows* int_blocks() const { return nullptr; }
  virtual void centered_rows(std::int64_t /*first*/, std::int64_t /*count*/, std::int16_t* /*out*/,
                             void* /*scratch*/) const {}

 private:
  Shape shape_;
  ScalarType dtype_;
};

/// A dense [N, K] weight, read in place (contiguous; it must outlive the result).
std::unique_ptr<WeightRows> dense_rows(TensorView weight);
/// Packed codes of a [N, K] weight, dequantized to `dtype` by the SIMD kernels
/// where they cover the qparams and by the reference formulas elsewhere.
std::unique_ptr<WeightRows> quantized_rows(TensorView packed, const Shape& shape,
                                           const QParams& qparams, ScalarType dtype);

}  // namespace quantkit::cpu
