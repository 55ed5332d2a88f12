#pragma once
// The scalar definition of linear() (include/quantkit/linear.hpp).

#include <cstdint>
#include <vector>

#include "quantkit/tensor.hpp"

namespace quantkit::reference {

/// The specified sum of x[k] * w[k], k < count: sixteen partial sums in k
/// order, then halved pairwise.
float ordered_dot(const float* x, const float* w, std::int64_t count);

/// x [..., K] · weightᵀ [N, K] + bias [N], every output by ordered_dot; x,
/// weight and bias share one float dtype (validated by the caller).
Tensor linear(TensorView x, TensorView weight, const TensorView* bias);

/// An operand of linear_int: centered codes q - z, row-major
/// [rows, k], and the scale of each block of `group` columns of a row
/// ([rows, k / group], row-major).
struct CenteredCodes {
  std::vector<std::int32_t> values;
  std::vector<float> scale;
  std::int64_t rows = 0;
  std::int64_t group = 0;
};

/// linear_int's formula (include/quantkit/linear.hpp) for x with one
/// block per row: y[m, n] in x's rows-by-w's-rows order, written as `dtype`
/// in `shape`; `bias` empty for none.
Tensor int_linear(const CenteredCodes& x, const CenteredCodes& w, std::int64_t k,
                  const std::vector<float>& bias, ScalarType dtype, const Shape& shape);

}  // namespace quantkit::reference
