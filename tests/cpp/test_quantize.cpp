// quantize / dequantize on hand-computed values and the documented edge cases.
#include <gtest/gtest.h>

#include <cmath>

#include "quantkit/error.hpp"
#include "quantkit/ops.hpp"

namespace quantkit {
namespace {

QParams per_tensor(QuantDType dtype, double scale, double zero_point) {
  const QuantSpec spec{.dtype = dtype};
  return QParams::make(spec, Tensor::from_values({scale}),
                       Tensor::from_values({zero_point}, ScalarType::int32));
}

TEST(Quantize, TiesRoundHalfToEvenInBothDirections) {
  const auto qp = per_tensor(QuantDType::int_(8), 1.0, 0);
  const auto x = Tensor::from_values({0.5, 1.5, 2.5, 3.5, -0.5, -1.5, -2.5, -3.5});
  EXPECT_EQ(quantize(x, qp).code_values(), (std::vector<std::int32_t>{0, 2, 2, 4, 0, -2, -2, -4}));
}

TEST(Quantize, ZeroPointIsAddedAfterRounding) {
  // zp 3, scale 0.5: 1.25 -> 2.5 -> round 2 -> +3 = 5 (adding first would give round(5.5) = 6).
  QuantSpec spec{.dtype = QuantDType::uint(8)};
  spec.mapping = Mapping::asymmetric;
  const auto qp =
      QParams::make(spec, Tensor::from_values({0.5}), Tensor::from_values({3}, ScalarType::int32));
  EXPECT_EQ(quantize(Tensor::from_values({1.25}), qp).code_values()[0], 5);
  EXPECT_EQ(fake_quantize(Tensor::from_values({1.25}), qp).get(0), 1.0);
}

TEST(Quantize, SaturatesOutOfRange) {
  const auto qp = per_tensor(QuantDType::int_(4), 0.5, 0);
  const auto x = Tensor::from_values({100.0, -100.0, 3.5, 3.75, -4.0, -4.25});
  EXPECT_EQ(quantize(x, qp).code_values(), (std::vector<std::int32_t>{7, -8, 7, 7, -8, -8}));
  EXPECT_EQ(fake_quantize(x, qp).to_vector(), (std::vector<double>{3.5, -4, 3.5, 3.5, -4, -4}));
}

TEST(Quantize, NanAndInfinityFollowTheDocumentedPolicy) {
  const auto qp = per_tensor(QuantDType::uint(8), 0.25, 10);
  const auto x = Tensor::from_values({NAN, INFINITY, -INFINITY});
  EXPECT_EQ(quantize(x, qp).code_values(), (std::vector<std::int32_t>{0, 255, 0}));
  EXPECT_EQ(fake_quantize(x, qp).to_vector(), (std::vector<double>{-2.5, 61.25, -2.5}));
}

TEST(Quantize, NegativeZeroBecomesPositiveZero) {
  const auto qp = per_tensor(QuantDType::int_(8), 0.1, 0);
  const auto y = fake_quantize(Tensor::from_values({-0.0, -0.01}), qp);
  EXPECT_EQ(y.get(0), 0.0);
  EXPECT_FALSE(std::signbit(y.get(0)));  // round(-0) + 0 = +0, as in torch
  EXPECT_FALSE(std::signbit(y.get(1)));
}

TEST(Quantize, EmptyTensors) {
  const auto qp = per_tensor(QuantDType::int_(4), 1.0, 0);
  const Tensor empty(ScalarType::float32, Shape{0, 3});
  const auto q = quantize(empty, qp);
  EXPECT_EQ(q.numel(), 0);
  EXPECT_TRUE(q.packed().empty());
  EXPECT_EQ(dequantize(q).shape(), (Shape{0, 3}));
  EXPECT_EQ(fake_quantize(empty, qp).numel(), 0);
  EXPECT_THROW(choose_qparams(empty, {.dtype = QuantDType::int_(4)}), Error);
  // Per-axis over an empty axis: no blocks, nothing to choose, nothing to do.
  const auto none =
      choose_qparams(Tensor(ScalarType::float32, {0, 3}),
                     {.dtype = QuantDType::int_(4), .granularity = Granularity::per_axis(0)});
  EXPECT_EQ(none.scale.numel(), 0);
}

TEST(Dequantize, SubtractsZeroPointInTheOutputDtype) {
  // uint8 code 200, zp 3, scale 0.1 (float32): float32 (197 * 0.1f); bfloat16
  // output rounds the float32 product once to bf16.
  QuantSpec spec{.dtype = QuantDType::uint(8), .mapping = Mapping::asymmetric};
  const auto qp =
      QParams::make(spec, Tensor::from_values({0.1}), Tensor::from_values({3}, ScalarType::int32));
  const QuantizedTensor q(Shape{1}, {200}, qp);
  EXPECT_EQ(dequantize(q).get(0), 197.0f * 0.1f);
  const double bf = Tensor::from_values({197.0f * 0.1f}, ScalarType::bfloat16).get(0);
  EXPECT_EQ(dequantize(q, ScalarType::bfloat16).get(0), bf);
}

TEST(Quantize, Bfloat16ScaleUsesBfloat16Reciprocal) {
  // bf16 x and bf16 scale 3: r = bf16(1/3) = 0.333984375; 7.53125 * r =
  // 2.5152893 -> bf16 2.515625 -> 3. With a float32 scale it is 2.5104 -> 3 too,
  // but 7.5 * r = 2.5048828 -> bf16 2.5 -> 2 (tie to even).
  QuantSpec spec{.dtype = QuantDType::int_(8), .mapping = Mapping::symmetric};
  const auto qp = QParams::make(spec, Tensor::from_values({3.0}, ScalarType::bfloat16),
                                Tensor::from_values({0}, ScalarType::int32), ScalarType::bfloat16);
  const auto x = Tensor::from_values({7.53125, 7.5}, ScalarType::bfloat16);
  EXPECT_EQ(quantize(x, qp).code_values(), (std::vector<std::int32_t>{3, 2}));
  // fake quant output: 3 * 3 = 9 and 2 * 3 = 6, computed in bf16.
  EXPECT_EQ(fake_quantize(x, qp).to_vector(), (std::vector<double>{9, 6}));
}

TEST(Quantize, PerAxisUsesEachChannelsScale) {
  QuantSpec spec{.dtype = QuantDType::int_(8), .granularity = Granularity::per_axis(1)};
  const auto qp = QParams::make(spec, Tensor::from_values({1.0, 0.5}, Shape{1, 2}),
                                Tensor::from_values({0, 0}, ScalarType::int32));
  const auto x = Tensor::from_values({1.0, 1.0, 3.0, 3.0}, Shape{2, 2});
  EXPECT_EQ(quantize(x, qp).code_values(), (std::vector<std::int32_t>{1, 2, 3, 6}));
  spec.granularity = Granularity::per_axis(-1);  // same grid via a negative axis
  const auto qn = QParams::make(spec, Tensor::from_values({1.0, 0.5}, Shape{1, 2}),
                                Tensor::from_values({0, 0}, ScalarType::int32));
  EXPECT_EQ(quantize(x, qn).code_values(), (std::vector<std::int32_t>{1, 2, 3, 6}));
}

TEST(Quantize, StridedInputEqualsContiguousCopy) {
  const auto base = Tensor::from_values({0.1, 0.2, 0.3, 0.4, 0.5, 0.6}, Shape{2, 3});
  const TensorView transposed(base.raw_data(), ScalarType::float32, Shape{3, 2}, Shape{1, 3});
  const auto qp = choose_qparams(transposed, {.dtype = QuantDType::int_(8)});
  EXPECT_TRUE(
      bitwise_equal(fake_quantize(transposed, qp), fake_quantize(transposed.contiguous(), qp)));
}

TEST(Quantize, MinvalFormulationIsCarried) {
  // Asymmetric: minval = min(min, 0); symmetric: -max|x|.
  const auto x = Tensor::from_values({-0.5, 3.0});
  const auto a = choose_qparams(x, {.dtype = QuantDType::uint(8), .mapping = Mapping::asymmetric});
  EXPECT_EQ(a.minval.get(0), -0.5);
  const auto s = choose_qparams(x, {.dtype = QuantDType::int_(8)});
  EXPECT_EQ(s.minval.get(0), -3.0);
  // (q - qmin) * scale + minval reproduces the range ends of the symmetric grid.
  EXPECT_EQ(0 * s.scale.get(0) + s.minval.get(0), -3.0);
  EXPECT_FLOAT_EQ(static_cast<float>(255 * s.scale.get(0) + s.minval.get(0)), 3.0f);
}

}  // namespace
}  // namespace quantkit
