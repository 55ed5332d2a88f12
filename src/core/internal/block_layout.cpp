#include "core/internal/block_layout.hpp"

#include "quantkit/error.hpp"
#include "quantkit/granularity.hpp"

namespace quantkit::internal {

BlockLayout::BlockLayout(Shape shape, Shape block)
    : shape_(std::move(shape)), block_(std::move(block)) {
  grid_ = block_grid_shape(shape_, block_);
  grid_strides_ = contiguous_strides(grid_);
  // Block sizes of 0 only occur on empty dims; make them safe divisors.
  for (auto& b : block_) b = std::max<std::int64_t>(b, 1);
}

std::string describe_index(const Shape& shape, std::int64_t flat_index) {
  Shape index(shape.size());
  std::int64_t rest = flat_index;
  for (std::size_t d = shape.size(); d-- > 0;) {
    index[d] = rest % shape[d];
    rest /= shape[d];
  }
  return detail::concat(flat_index, " (index ", to_string(index), ")");
}

}  // namespace quantkit::internal
