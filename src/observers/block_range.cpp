#include <cmath>

#include "cpu/fast_path.hpp"
#include "quantkit/error.hpp"
#include "quantkit/observers.hpp"
#include "reference/block_layout.hpp"
#include "reference/element_ops.hpp"

namespace quantkit {
namespace {

Tensor grid_tensor(const std::vector<float>& values, const Shape& grid) {
  return reference::store_floats(values, grid, ScalarType::float32);
}

}  // namespace

BlockRange block_range(TensorView x, const Granularity& granularity) {
  reference::check_float_input(x.dtype(), "x");
  QK_CHECK(x.numel() > 0, "x of shape ", to_string(x.shape()), " is empty: it has no range");
  const Shape block = granularity.block_size(x.shape());
  const Shape grid = block_grid_shape(x.shape(), block);
  if (auto fast = cpu::block_min_max(x, block)) {
    return {grid_tensor(fast->min, grid), grid_tensor(fast->max, grid)};
  }
  const reference::BlockLayout layout(x.shape(), block);
  const std::vector<float> values = reference::load_floats(x);
  std::vector<float> mins(static_cast<std::size_t>(layout.num_blocks()), HUGE_VALF);
  std::vector<float> maxs(mins.size(), -HUGE_VALF);
  for (std::size_t i = 0; i < values.size(); ++i) {
    QK_CHECK(std::isfinite(values[i]), "x holds ", values[i], " at flat index ",
             reference::describe_index(x.shape(), static_cast<std::int64_t>(i)),
             "; an observed range must be finite");
  }
  layout.for_each([&](std::int64_t i, std::int64_t b) {
    mins[b] = std::min(mins[b], values[i]);
    maxs[b] = std::max(maxs[b], values[i]);
  });
  return {grid_tensor(mins, grid), grid_tensor(maxs, grid)};
}

}  // namespace quantkit
