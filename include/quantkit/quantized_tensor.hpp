#pragma once
// QuantizedTensor: codes in their narrowest storage plus qparams and shape.
//
// Codes are kept packed (packing.hpp): b-bit integer codes and FP8/FP6/FP4
// bit patterns, so an int4 tensor of n elements holds ceil(n / 2) bytes.

#include <cstdint>
#include <span>
#include <vector>

#include "quantkit/qparams.hpp"
#include "quantkit/tensor.hpp"

namespace quantkit {

class QuantizedTensor {
 public:
  /// Packs `codes` (one per element, row-major) for `qparams.spec.dtype`.
  /// Throws Error when a code lies outside the format's range.
  QuantizedTensor(Shape shape, const std::vector<std::int32_t>& codes, QParams qparams);
  /// Adopts already-packed bytes (validated for size).
  static QuantizedTensor from_packed(Shape shape, std::vector<std::uint8_t> packed,
                                     QParams qparams);
  /// Adopts a 1-D uint8 tensor of packed bytes (validated for size), without a copy.
  static QuantizedTensor from_packed(Shape shape, Tensor packed, QParams qparams);

  const Shape& shape() const { return shape_; }
  std::int64_t numel() const { return quantkit::numel(shape_); }
  const QParams& qparams() const { return qparams_; }
  const QuantDType& dtype() const { return qparams_.spec.dtype; }

  /// Unpacked codes: int8 for signed integer formats, uint8 for unsigned and
  /// floating formats (bit patterns), in the logical shape.
  Tensor codes() const;
  std::vector<std::int32_t> code_values() const;
  /// The packed bytes (see packing.hpp for the layout).
  std::span<const std::uint8_t> packed() const {
    return {packed_.data<std::uint8_t>(), static_cast<std::size_t>(packed_.numel())};
  }

 private:
  struct PackedTag {};
  QuantizedTensor(PackedTag, Shape shape, Tensor packed, QParams qparams);
  Shape shape_;
  Tensor packed_;  // 1-D uint8
  QParams qparams_;
};

}  // namespace quantkit
