// Per-block ranges, element by element: what observers fold.
#include <cmath>

#include "core/internal/block_layout.hpp"
#include "core/internal/float_io.hpp"
#include "reference/reference_ops.hpp"

namespace quantkit::reference {

internal::BlockMinMax block_min_max(TensorView x, const Shape& block) {
  const internal::BlockLayout layout(x.shape(), block);
  const std::vector<float> values = internal::load_floats(x);
  internal::check_finite(values, x.shape(), "x", "an observed range must be finite");
  internal::BlockMinMax out{
      std::vector<float>(static_cast<std::size_t>(layout.num_blocks()), HUGE_VALF),
      std::vector<float>(static_cast<std::size_t>(layout.num_blocks()), -HUGE_VALF)};
  layout.for_each([&](std::int64_t i, std::int64_t b) {
    out.min[b] = std::min(out.min[b], values[i]);
    out.max[b] = std::max(out.max[b], values[i]);
  });
  return out;
}

}  // namespace quantkit::reference
