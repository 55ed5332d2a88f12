#pragma once
// Gaussian weight rows (std 0.02) with 2 % outliers at 8x: the case clipping
// searches and HQQ are for.
#include <cstdint>
#include <random>

#include "quantkit/tensor.hpp"

namespace quantkit::testing {

inline Tensor outlier_weights(std::int64_t rows, std::int64_t columns, ScalarType dtype,
                              unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> normal(0.0, 0.02);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  Tensor x(ScalarType::float32, {rows, columns});
  for (std::int64_t i = 0; i < x.numel(); ++i) {
    x.set(i, normal(rng) * (uniform(rng) < 0.02 ? 8.0 : 1.0));
  }
  return x.to(dtype);
}

}  // namespace quantkit::testing
