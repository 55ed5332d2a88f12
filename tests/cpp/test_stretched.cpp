// The stretched (PARQ) grid and its integer LUT form.
#include <gtest/gtest.h>

#include "quantkit/ops.hpp"
#include "quantkit/stretched.hpp"

namespace quantkit {
namespace {

TEST(Stretched, Int2WorkedExample) {
  // b = 2: s = min(2 * mean|x|, max|x|) / 1.5 = min(6, 3) / 1.5 = 2; levels
  // (k + 0.5) * 2 = {-3, -1, 1, 3}, zero point -0.5.
  const QuantSpec spec{.dtype = QuantDType::int_(2), .mapping = Mapping::stretched};
  const auto qp = choose_qparams(Tensor::from_values({3.0, -3.0, 3.0, -3.0}), spec);
  EXPECT_EQ(qp.scale.get(0), 2.0);
  EXPECT_EQ(qp.zero_point.get(0), -0.5);
  // y/s - 0.5: 0.99 - .5 -> 0; 1.0 - .5 = 0.5 -> 0 (tie to even); 1.01 - .5 -> 1;
  // -100 clamps to -3 -> -2.
  const auto y = Tensor::from_values({1.98, 2.0, 2.02, -100.0});
  const auto q = quantize(y, qp);
  EXPECT_EQ(q.code_values(), (std::vector<std::int32_t>{0, 0, 1, -2}));
  EXPECT_EQ(dequantize(q).to_vector(), (std::vector<double>{1, 1, 3, -3}));
}

TEST(Stretched, MeanBoundsTheRange) {
  // b = 3: mean|x| = 1, max 10 -> range min(3 * 1, 10) = 3 -> s = 3 / 3.5.
  std::vector<double> v(10, 0.0);
  v[0] = 10.0;
  const QuantSpec spec{.dtype = QuantDType::int_(3), .mapping = Mapping::stretched};
  const auto qp = choose_qparams(Tensor::from_values(v, Shape{10}), spec);
  EXPECT_EQ(qp.scale.get(0), 3.0f / 3.5f);
}

TEST(Stretched, LutDequantizesToExactlyTheSameValues) {
  for (int bits : {1, 2, 3, 4}) {
    for (ScalarType dtype : {ScalarType::float32, ScalarType::bfloat16, ScalarType::float16}) {
      std::vector<double> v(64);
      for (int i = 0; i < 64; ++i) v[i] = (i * 37 % 64 - 31.5) / 9.0;
      const auto x = Tensor::from_values(v, Shape{4, 16}, dtype);
      const QuantSpec spec{.dtype = QuantDType::int_(bits),
                           .mapping = Mapping::stretched,
                           .granularity = Granularity::per_group(8)};
      const auto q = quantize(x, choose_qparams(x, spec));
      const auto lut = to_stretched_lut(q);
      ASSERT_EQ(lut.lut.size(), std::size_t{1} << bits);
      EXPECT_EQ(lut.lut.front(), -(1 << bits) + 1);  // odd integers -(2^b - 1) .. 2^b - 1
      EXPECT_EQ(lut.lut.back(), (1 << bits) - 1);
      EXPECT_TRUE(bitwise_equal(dequantize_lut(lut, q, dtype), dequantize(q, dtype)))
          << bits << " " << name(dtype);
    }
  }
}

}  // namespace
}  // namespace quantkit
