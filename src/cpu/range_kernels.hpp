#pragma once
// SIMD minima and maxima over blocks and columns (Highway, dynamic dispatch),
// exact on every compiled target (min and max round nothing).
#include <cstdint>

#include "cpu/affine_kernels.hpp"

namespace quantkit::cpu {

/// min[b] / max[b] of the `count` blocks of `inner` contiguous elements that
/// start at element (first + b) * inner; returns false if a NaN or Inf was seen
/// (the results are then unspecified).
bool min_max_blocks(FloatKind input, const void* x, std::int64_t first, std::int64_t inner,
                    std::int64_t count, float* min, float* max);
/// Per-column min / max over `rows` rows of `cols` columns starting at x (row-major).
bool column_min_max(FloatKind input, const void* x, std::int64_t rows, std::int64_t cols,
                    float* min, float* max);

}  // namespace quantkit::cpu
