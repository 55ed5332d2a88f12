#include "cpu/int_linear_path.hpp"

#include <algorithm>

#include "core/internal/float_io.hpp"
#include "cpu/int_dot_kernels.hpp"
#include "cpu/linear_kernels.hpp"
#include "reference/eager_math.hpp"

namespace quantkit::cpu {
namespace {

constexpr std::int64_t kRowBlock = 64;  // activation rows per decoded weight tile

}  // namespace

Tensor linear_int(const std::int16_t* dx, const float* row_scale, std::int64_t m,
                  const WeightRows& w, const std::vector<float>& bias, ScalarType dtype,
                  const Shape& shape) {
  const PackedIntRows& blocks = *w.int_blocks();
  const std::int64_t n = w.shape()[0], k = w.shape()[1];
  const std::int64_t per_row = k / blocks.group;
  Tensor y = Tensor::uninitialized(dtype, shape);
  if (y.numel() == 0) return y;
  const std::size_t size = element_size(dtype);
  auto* out = static_cast<unsigned char*>(y.raw_data());
  const std::int64_t tiles = (n + kTileRows - 1) / kTileRows;
#pragma omp parallel if (m * n * k > (std::int64_t{1} << 16))
  {
    std::vector<unsigned char> scratch(w.scratch_bytes(kTileRows));
    std::vector<std::int16_t> dw(static_cast<std::size_t>(kTileRows * k));
    std::vector<std::int32_t> acc(static_cast<std::size_t>(kRowBlock * kTileRows * per_row));
    std::vector<float> values(static_cast<std::size_t>(kTileRows));
    for (std::int64_t m0 = 0; m0 < m; m0 += kRowBlock) {
      const std::int64_t rows_x = std::min(kRowBlock, m - m0);
#pragma omp for schedule(static) nowait
      for (std::int64_t t = 0; t < tiles; ++t) {
        const std::int64_t n0 = t * kTileRows, count = std::min(kTileRows, n - n0);
        w.centered_rows(n0, count, dw.data(), scratch.data());
        int_dot_tile(dx + m0 * k, rows_x, dw.data(), count, k, blocks.group, acc.data());
        for (std::int64_t i = m0; i < m0 + rows_x; ++i) {
          const std::int32_t* sums = acc.data() + (i - m0) * count * per_row;
          for (std::int64_t r = 0; r < count; ++r) {
            const float* scale = blocks.scale + (n0 + r) * blocks.blocks_per_row;
            float sum = 0.0f;
            for (std::int64_t b = 0; b < per_row; ++b) {
              sum += static_cast<float>(sums[r * per_row + b]) * (row_scale[i] * scale[b]);
            }
            if (!bias.empty()) sum += bias[n0 + r];
            values[r] = reference::round_to(dtype, sum);
          }
          internal::store_floats_to(dtype, values.data(), count, out + (i * n + n0) * size);
        }
      }
    }
  }
  return y;
}

}  // namespace quantkit::cpu
