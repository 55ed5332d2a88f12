#pragma once
// Maps each element of a row-major tensor to the block (qparam) it belongs to.

#include <cstdint>
#include <vector>

#include "quantkit/tensor.hpp"

namespace quantkit::internal {

class BlockLayout {
 public:
  BlockLayout(Shape shape, Shape block);

  const Shape& shape() const { return shape_; }
  const Shape& block() const { return block_; }
  const Shape& grid() const { return grid_; }
  std::int64_t num_blocks() const { return quantkit::numel(grid_); }
  std::int64_t numel() const { return quantkit::numel(shape_); }

  /// Calls fn(element_index, block_index) for every element in row-major order.
  template <typename Fn>
  void for_each(Fn&& fn) const {
    const auto rank = shape_.size();
    const std::int64_t n = numel();
    Shape index(rank, 0);
    for (std::int64_t i = 0; i < n; ++i) {
      std::int64_t block_index = 0;
      for (std::size_t d = 0; d < rank; ++d)
        block_index += (index[d] / block_[d]) * grid_strides_[d];
      fn(i, block_index);
      for (std::size_t d = rank; d-- > 0;) {
        if (++index[d] < shape_[d]) break;
        index[d] = 0;
      }
    }
  }

 private:
  Shape shape_;
  Shape block_;
  Shape grid_;
  Shape grid_strides_;
};

/// Per-block minima and maxima, row-major over the block grid.
struct BlockMinMax {
  std::vector<float> min;
  std::vector<float> max;
};

/// "3 (index [0, 3])": a flat index with its multi-index, for error messages.
std::string describe_index(const Shape& shape, std::int64_t flat_index);

}  // namespace quantkit::internal
