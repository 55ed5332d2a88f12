#pragma once
// The threading of linear()'s drivers (linear_path.cpp, int_linear_path.cpp):
// output rows in tiles of kTileRows against blocks of kRowBlock activation
// rows, tiles spread over threads. Every output is computed by one call on one
// thread, so results do not depend on the thread count.
#include <algorithm>
#include <cstdint>

#include "cpu/linear_kernels.hpp"

namespace quantkit::cpu {

/// Activation rows per pass over the weight tiles: enough to amortize decoding
/// a tile, few enough that their rows stay in the core's caches.
constexpr std::int64_t kRowBlock = 64;

/// body(state, m0, rows_x, n0, count) for every block [m0, m0 + rows_x) of the
/// m activation rows and every tile [n0, n0 + count) of the n output rows; each
/// thread makes its own scratch state once with make_state().
template <typename MakeState, typename Body>
void for_each_tile(std::int64_t m, std::int64_t n, std::int64_t k, const MakeState& make_state,
                   const Body& body) {
  const std::int64_t tiles = (n + kTileRows - 1) / kTileRows;
#pragma omp parallel if (m * n * k > (std::int64_t{1} << 16))
  {
    auto state = make_state();
    for (std::int64_t m0 = 0; m0 < m; m0 += kRowBlock) {
      const std::int64_t rows_x = std::min(kRowBlock, m - m0);
#pragma omp for schedule(static) nowait
      for (std::int64_t t = 0; t < tiles; ++t) {
        const std::int64_t n0 = t * kTileRows;
        body(state, m0, rows_x, n0, std::min(kTileRows, n - n0));
      }
    }
  }
}

}  // namespace quantkit::cpu
