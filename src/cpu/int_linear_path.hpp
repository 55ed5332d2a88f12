#pragma once
// linear_int on threads: tiles of output rows, each tile's centered
// weight codes decoded once per block of activation rows, exact int32 block
// sums, then the float32 epilogue in block order (include/quantkit/linear.hpp).
#include <cstdint>
#include <vector>

#include "cpu/weight_rows.hpp"

namespace quantkit::cpu {

/// x's centered codes dx [m, k] (int16) with one scale per row, against w
/// (w.int_blocks() non-null); `bias` empty for none; the result has `shape`.
Tensor linear_int(const std::int16_t* dx, const float* row_scale, std::int64_t m,
                  const WeightRows& w, const std::vector<float>& bias, ScalarType dtype,
                  const Shape& shape);

}  // namespace quantkit::cpu
