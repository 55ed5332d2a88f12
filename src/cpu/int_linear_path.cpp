#include "cpu/int_linear_path.hpp"

#include <algorithm>

#include "core/internal/float_io.hpp"
#include "cpu/int_dot_kernels.hpp"
#include "cpu/linear_kernels.hpp"
#include "cpu/tile_loop.hpp"
#include "reference/eager_math.hpp"

namespace quantkit::cpu {

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
  struct Scratch {
    std::vector<unsigned char> codes;
    std::vector<std::int16_t> dw;
    std::vector<std::int32_t> acc;
    std::vector<float> values;
  };
  const auto make_scratch = [&] {
    return Scratch{
        std::vector<unsigned char>(w.scratch_bytes(kTileRows)),
        std::vector<std::int16_t>(static_cast<std::size_t>(kTileRows * k)),
        std::vector<std::int32_t>(static_cast<std::size_t>(kRowBlock * kTileRows * per_row)),
        std::vector<float>(static_cast<std::size_t>(kTileRows))};
  };
  for_each_tile(
      m, n, k, make_scratch,
      [&](Scratch& s, std::int64_t m0, std::int64_t rows_x, std::int64_t n0, std::int64_t count) {
        w.centered_rows(n0, count, s.dw.data(), s.codes.data());
        int_dot_tile(dx + m0 * k, rows_x, s.dw.data(), count, k, blocks.group, s.acc.data());
        for (std::int64_t i = m0; i < m0 + rows_x; ++i) {
          const std::int32_t* sums = s.acc.data() + (i - m0) * count * per_row;
          for (std::int64_t r = 0; r < count; ++r) {
            const float* scale = blocks.scale + (n0 + r) * blocks.blocks_per_row;
            float sum = 0.0f;
            for (std::int64_t b = 0; b < per_row; ++b) {
              sum += static_cast<float>(sums[r * per_row + b]) * (row_scale[i] * scale[b]);
            }
            if (!bias.empty()) sum += bias[n0 + r];
            s.values[r] = reference::round_to(dtype, sum);
          }
          internal::store_floats_to(dtype, s.values.data(), count, out + (i * n + n0) * size);
        }
      });
  return y;
}

}  // namespace quantkit::cpu
