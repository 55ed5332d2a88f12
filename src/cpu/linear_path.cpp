#include "cpu/linear_path.hpp"

#include <algorithm>
#include <vector>

#include "core/internal/float_io.hpp"
#include "cpu/dispatch_helpers.hpp"
#include "cpu/linear_kernels.hpp"
#include "cpu/tile_loop.hpp"
#include "reference/eager_math.hpp"

namespace quantkit::cpu {
namespace {

// Most activation rows for which codes are decoded in registers (measured:
// at 15 rows the tile buffer is 1.3-2.6x faster for 4-bit and FP4 codes).
constexpr std::int64_t kPackedRowsMax = 4;

}  // namespace

Tensor linear(TensorView x, const WeightRows& w, const TensorView* bias) {
  const std::int64_t n = w.shape()[0], k = w.shape()[1];
  std::int64_t m = 1;  // rows of x: the product of its leading dims (k may be 0)
  for (std::int64_t d = 0; d + 1 < x.dim(); ++d) m *= x.shape()[d];
  Shape shape = x.shape();
  shape.back() = n;
  Tensor y = Tensor::uninitialized(x.dtype(), shape);
  if (y.numel() == 0) return y;
  const ScalarType dtype = x.dtype();
  const FloatKind kind = *kind_of(dtype);
  const std::size_t size = element_size(dtype);
  const std::vector<float> bias_values =
      bias == nullptr ? std::vector<float>() : internal::load_floats(*bias);
  if (k == 0) {  // empty sums: y = round_T(+0 + bias), and no row pointers to read
    std::vector<float> values(static_cast<std::size_t>(n), 0.0f);
    if (!bias_values.empty()) values = bias_values;
    for (std::int64_t i = 0; i < m; ++i) {
      internal::store_floats_to(dtype, values.data(), n,
                                static_cast<unsigned char*>(y.raw_data()) + i * n * size);
    }
    return y;
  }
  const auto* xs = static_cast<const unsigned char*>(x.data());
  auto* out = static_cast<unsigned char*>(y.raw_data());
  // Codes decoded in registers where the packed kernel covers them; 4-bit codes
  // decode each chunk's even elements first, so x is reordered to match, once.
  // With many activation rows, decoding each tile once into a buffer (then the
  // dense kernel) costs less than decoding it in registers once per 4 rows.
  const PackedIntRows* packed = m <= kPackedRowsMax ? w.packed_int() : nullptr;
  std::vector<unsigned char> x_even_odd;
  if (packed != nullptr && packed->bits == 4) {
    x_even_odd.resize(static_cast<std::size_t>(m * (k / 16 * 16)) * size);
    permute_chunks(xs, m, k, size, x_even_odd.data());
  }
  const std::int64_t even_odd_stride = k / 16 * 16 * static_cast<std::int64_t>(size);
  struct Scratch {
    std::vector<unsigned char> rows;
    std::vector<float> sums, values;
  };
  const auto make_scratch = [&] {
    return Scratch{std::vector<unsigned char>(w.scratch_bytes(kTileRows)),
                   std::vector<float>(static_cast<std::size_t>(kRowBlock * kTileRows)),
                   std::vector<float>(static_cast<std::size_t>(kTileRows))};
  };
  for_each_tile(
      m, n, k, make_scratch,
      [&](Scratch& s, std::int64_t m0, std::int64_t rows_x, std::int64_t n0, std::int64_t count) {
        if (packed != nullptr) {
          const unsigned char* xeo =
              x_even_odd.empty() ? nullptr : x_even_odd.data() + m0 * even_odd_stride;
          packed_dot_tile(kind, xs + m0 * k * size, xeo, rows_x, *packed, n0, count, k,
                          s.sums.data());
        } else {
          const void* rows = w.rows(n0, count, s.rows.data());
          ordered_dot_tile(kind, xs + m0 * k * size, rows_x, rows, count, k, s.sums.data());
        }
        for (std::int64_t i = 0; i < rows_x; ++i) {
          for (std::int64_t r = 0; r < count; ++r) {
            float v = s.sums[i * count + r];
            if (!bias_values.empty()) v += bias_values[n0 + r];
            s.values[r] = reference::round_to(dtype, v);
          }
          internal::store_floats_to(dtype, s.values.data(), count,
                                    out + ((m0 + i) * n + n0) * size);
        }
      });
  return y;
}

}  // namespace quantkit::cpu
