#pragma once
// The scalar definition of linear() (include/quantkit/linear.hpp).

#include <cstdint>

#include "quantkit/tensor.hpp"

namespace quantkit::reference {

/// The specified sum of x[k] * w[k], k < count: sixteen partial sums in k
/// order, then halved pairwise.
float ordered_dot(const float* x, const float* w, std::int64_t count);

/// x [..., K] · weightᵀ [N, K] + bias [N], every output by ordered_dot; x,
/// weight and bias share one float dtype (validated by the caller).
Tensor linear(TensorView x, TensorView weight, const TensorView* bias);

}  // namespace quantkit::reference
