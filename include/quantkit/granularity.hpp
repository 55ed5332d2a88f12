#pragma once
// Granularity: which elements share one (scale, zero point).
//
// Every granularity resolves, for a given input shape, to a block size of the
// same rank (torchao's `block_size` semantics). Elements whose indices agree
// on index / block per dimension share qparams; qparams are laid out as the
// row-major grid of blocks with shape [size[d] / block[d]].
//   per_tensor()          block = input shape
//   per_axis(a)           block = input shape with dim a set to 1 (one qparam per index of a)
//   per_group(g, a = -1)  block = 1 everywhere except g along axis a
//   per_block(shape)      block = shape, left-padded with 1s to the input rank
//   per_token()           block = (1, ..., 1, K): one qparam per row of the last dim
// Negative axes count from the end. A block must divide its dimension.

#include <cstdint>
#include <string>
#include <string_view>

#include "quantkit/tensor.hpp"

namespace quantkit {

class Granularity {
 public:
  enum class Kind : std::uint8_t { per_tensor, per_axis, per_group, per_block, per_token };
  /// "per_tensor", "per_axis", ...: the names of the factory functions.
  static std::string_view kind_name(Kind kind);

  static Granularity per_tensor() { return Granularity(Kind::per_tensor); }
  static Granularity per_axis(std::int64_t axis);
  static Granularity per_group(std::int64_t group_size, std::int64_t axis = -1);
  static Granularity per_block(Shape block_shape);
  static Granularity per_token() { return Granularity(Kind::per_token); }

  Kind kind() const { return kind_; }
  std::int64_t axis() const { return axis_; }
  std::int64_t group_size() const { return group_size_; }
  const Shape& block_shape() const { return block_shape_; }

  /// Block size for an input of `input_shape`; throws Error when the
  /// granularity does not fit the shape (axis out of range, group or block
  /// size that does not divide its dimension, block rank above input rank).
  Shape block_size(const Shape& input_shape) const;
  /// "per_group(128, axis=-1)"
  std::string describe() const;

  friend bool operator==(const Granularity&, const Granularity&) = default;

 private:
  explicit Granularity(Kind kind) : kind_(kind) {}
  Kind kind_;
  std::int64_t axis_ = 0;
  std::int64_t group_size_ = 0;
  Shape block_shape_;
};

/// Shape of the qparams grid for `input_shape` cut into blocks of `block_size`.
Shape block_grid_shape(const Shape& input_shape, const Shape& block_size);

}  // namespace quantkit
