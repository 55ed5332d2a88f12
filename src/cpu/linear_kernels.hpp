#pragma once
// SIMD dot products in the order linear() specifies (include/quantkit/linear.hpp),
// bit-identical to reference::ordered_dot on every compiled target: sixteen
// partial sums are sixteen lanes (one AVX-512 vector, two AVX2 vectors, four
// SSE4 vectors), products and sums rounded separately (no fused multiply-add),
// and the pairwise halving of the partials runs across vectors, then lanes.
#include <cstdint>

#include "cpu/affine_kernels.hpp"

namespace quantkit::cpu {

/// Most weight rows one ordered_dot_tile call takes.
constexpr std::int64_t kTileRows = 4;

/// sums[m * rows + r] = ordered_dot(x row m, w row r) for m < x_rows and
/// r < rows (1..kTileRows); rows of x and w are `k` contiguous elements of
/// `kind`, one after another.
void ordered_dot_tile(FloatKind kind, const void* x, std::int64_t x_rows, const void* w,
                      std::int64_t rows, std::int64_t k, float* sums);

}  // namespace quantkit::cpu
