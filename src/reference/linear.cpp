#include "reference/linear.hpp"

#include <vector>

#include "core/internal/float_io.hpp"
#include "reference/eager_math.hpp"

namespace quantkit::reference {

float ordered_dot(const float* x, const float* w, std::int64_t count) {
  float partial[16] = {};
  for (std::int64_t k = 0; k < count; ++k) partial[k % 16] += x[k] * w[k];
  for (int half = 8; half >= 1; half /= 2) {
    for (int j = 0; j < half; ++j) partial[j] += partial[j + half];
  }
  return partial[0];
}

Tensor linear(TensorView x, TensorView weight, const TensorView* bias) {
  const std::int64_t n = weight.shape()[0], k = weight.shape()[1];
  std::int64_t rows = 1;
  for (std::int64_t d = 0; d + 1 < x.dim(); ++d) rows *= x.shape()[d];
  const std::vector<float> xs = internal::load_floats(x), ws = internal::load_floats(weight);
  const std::vector<float> bs = bias == nullptr ? std::vector<float>(static_cast<std::size_t>(n))
                                                : internal::load_floats(*bias);
  std::vector<float> y(static_cast<std::size_t>(rows * n));
  for (std::int64_t r = 0; r < rows; ++r) {
    for (std::int64_t j = 0; j < n; ++j) {
      const float sum = ordered_dot(xs.data() + r * k, ws.data() + j * k, k);
      y[r * n + j] = round_to(x.dtype(), sum + bs[j]);
    }
  }
  Shape shape = x.shape();
  shape.back() = n;
  return internal::store_floats(y, shape, x.dtype());
}

Tensor int_linear(const CenteredCodes& x, const CenteredCodes& w, std::int64_t k,
                  const std::vector<float>& bias, ScalarType dtype, const Shape& shape) {
  const std::int64_t blocks = k / w.group;
  std::vector<float> y(static_cast<std::size_t>(x.rows * w.rows));
  for (std::int64_t m = 0; m < x.rows; ++m) {
    for (std::int64_t n = 0; n < w.rows; ++n) {
      float sum = 0.0f;
      for (std::int64_t b = 0; b < blocks; ++b) {
        std::int32_t acc = 0;
        for (std::int64_t c = b * w.group; c < (b + 1) * w.group; ++c) {
          acc += x.values[m * k + c] * w.values[n * k + c];
        }
        const float both = x.scale[m] * w.scale[n * blocks + b];
        sum += static_cast<float>(acc) * both;
      }
      if (!bias.empty()) sum += bias[n];
      y[m * w.rows + n] = round_to(dtype, sum);
    }
  }
  return internal::store_floats(y, shape, dtype);
}

}  // namespace quantkit::reference
