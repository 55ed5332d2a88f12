#pragma once
// linear() on threads: output rows in tiles of kTileRows, each tile's weight
// rows decoded once per block of activation rows and multiplied by the
// ordered dot-product kernel. Every output is computed by one kernel call on
// one thread, so results do not depend on the thread count.
#include "cpu/weight_rows.hpp"
#include "quantkit/tensor.hpp"

namespace quantkit::cpu {

/// x [..., K] (contiguous, dtype w.dtype()) times w's rows, plus bias [N]
/// (contiguous, same dtype) where given; shapes are the caller's to check.
Tensor linear(TensorView x, const WeightRows& w, const TensorView* bias);

}  // namespace quantkit::cpu
