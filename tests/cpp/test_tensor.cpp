#include <gtest/gtest.h>

#include <cmath>

#include "quantkit/error.hpp"
#include "quantkit/tensor.hpp"

namespace quantkit {
namespace {

TEST(Tensor, FromValuesRoundsToNearestEven) {
  const auto t = Tensor::from_values({1.00390625, 1.01171875, -2.0}, ScalarType::bfloat16);
  EXPECT_EQ(t.get(0), 1.0);       // tie -> even
  EXPECT_EQ(t.get(1), 1.015625);  // tie -> even (up)
  EXPECT_EQ(t.get(2), -2.0);
  EXPECT_EQ(t.nbytes(), 6u);
}

TEST(Tensor, StridedViewAndContiguousCopy) {
  // 2x3 row-major data viewed transposed as 3x2.
  const auto t = Tensor::from_values({0, 1, 2, 3, 4, 5}, Shape{2, 3});
  const TensorView transposed(t.raw_data(), ScalarType::float32, Shape{3, 2}, Shape{1, 3});
  EXPECT_FALSE(transposed.is_contiguous());
  const Tensor c = transposed.contiguous();
  EXPECT_EQ(c.to_vector(), (std::vector<double>{0, 3, 1, 4, 2, 5}));
}

TEST(Tensor, ConversionAndErrors) {
  const auto t = Tensor::from_values({1.5, -2.5, 300});
  EXPECT_EQ(t.to(ScalarType::int16).to_vector(), (std::vector<double>{1, -2, 300}));
  EXPECT_THROW(t.to(ScalarType::int8), Error);  // 300 does not fit
  EXPECT_THROW(t.reshape(Shape{2, 2}), Error);
  EXPECT_THROW(Tensor(ScalarType::float32, Shape{-1}), Error);
  EXPECT_THROW(t.data<double>(), Error);
  EXPECT_EQ(Tensor(ScalarType::float32, Shape{0, 4}).numel(), 0);
}

TEST(Tensor, BitwiseEqualDistinguishesSignedZero) {
  EXPECT_FALSE(bitwise_equal(Tensor::from_values({0.0}), Tensor::from_values({-0.0})));
  EXPECT_TRUE(bitwise_equal(Tensor::from_values({NAN}), Tensor::from_values({NAN})));
}

}  // namespace
}  // namespace quantkit
