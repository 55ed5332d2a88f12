// PyTorch-core fake quantization (torch.fake_quantize_per_*_affine and LSQ).
#include <gtest/gtest.h>

#include <cmath>

#include "quantkit/error.hpp"
#include "quantkit/ops.hpp"
#include "quantkit/torch_core.hpp"

namespace quantkit {
namespace {

using torch_core::Range;

TEST(TorchCore, PerTensorForwardAndMask) {
  const auto x = Tensor::from_values({-1.0, 0.0, 0.5, 1.5, 2.5, 200.0, NAN, INFINITY, -INFINITY});
  const Range int8{-128, 127};
  const auto y = torch_core::fake_quantize_per_tensor_affine(x, 1.0f, 0, int8);
  EXPECT_EQ(y.to_vector(), (std::vector<double>{-1, 0, 0, 2, 2, 127, -128, 127, -128}));
  const auto mask = torch_core::fake_quantize_per_tensor_mask(x, 1.0f, 0, int8);
  EXPECT_EQ(mask.to_vector(), (std::vector<double>{1, 1, 1, 1, 1, 0, 0, 0, 0}));
  const auto g = torch_core::apply_mask(Tensor::full({9}, 2.0), mask);
  EXPECT_EQ(g.to_vector(), (std::vector<double>{2, 2, 2, 2, 2, 0, 0, 0, 0}));
}

TEST(TorchCore, MultipliesByFloatReciprocal) {
  // scale 0.1f: inv = 1.0f / 0.1f = 10.0f (rounded); 0.25 * 10 = 2.5 -> 2 (even),
  // zp 3 added after rounding: (2 + 3 - 3) * 0.1f.
  const auto y =
      torch_core::fake_quantize_per_tensor_affine(Tensor::from_values({0.25}), 0.1f, 3, {0, 255});
  EXPECT_EQ(y.get(0), 2.0f * 0.1f);
}

TEST(TorchCore, PerChannelIntegerAndFloatZeroPoints) {
  const auto x = Tensor::from_values({1.25, 1.25, 1.25, 1.25}, Shape{2, 2});
  const auto scale = Tensor::from_values({0.5, 1.0});
  // Integer zp: round(1.25 / 0.5 = 2.5) = 2 (+1) -> (3 - 1) * 0.5 = 1; round(1.25) = 1 -> 1.
  const auto yi = torch_core::fake_quantize_per_channel_affine(
      x, scale, Tensor::from_values({1, 0}, ScalarType::int32), 1, {0, 255});
  EXPECT_EQ(yi.to_vector(), (std::vector<double>{1, 1, 1, 1}));
  // Float zp 0.5 added BEFORE rounding: round(0.5 + 2.5) = 3 -> (3 - 0.5) * 0.5 = 1.25;
  // channel 1: round(0.25 + 1.25 = 1.5) = 2 -> (2 - 0.25) * 1 = 1.75.
  const auto yf = torch_core::fake_quantize_per_channel_affine(
      x, scale, Tensor::from_values({0.5, 0.25}), -1, {0, 255});
  EXPECT_EQ(yf.to_vector(), (std::vector<double>{1.25, 1.75, 1.25, 1.75}));
}

TEST(TorchCore, ConventionSelectsTheFormula) {
  // torchao and torch core agree on integer per-tensor qparams for finite inputs.
  const QuantSpec spec{.dtype = QuantDType::int_(8)};
  const auto x = Tensor::from_values({0.3, -1.7, 2.25, 9.0});
  const auto qp = choose_qparams(x, spec);
  EXPECT_TRUE(bitwise_equal(fake_quantize(x, qp, convention_from_name("torch_core")),
                            fake_quantize(x, qp, convention_from_name("torchao"))));
  EXPECT_THROW(convention_from_name("pytorch"), Error);
  const QuantSpec group{.dtype = QuantDType::int_(4), .granularity = Granularity::per_group(2)};
  EXPECT_THROW(fake_quantize(x, choose_qparams(x, group), Convention::torch_core), Error);
}

TEST(TorchCore, LearnableZeroPointDiffersBetweenForwardAndBackward) {
  // zp 2.5: the forward rounds half to even (2), the backward truncates 2.5 + 0.5 (3).
  const Range range{0, 10};
  const auto scale = Tensor::from_values({1.0});
  const auto zp = Tensor::from_values({2.5});
  const auto x = Tensor::from_values({8.6, 1.3});
  // Forward with zp 2: round(8.6) + 2 = 11 -> clamps to 10 -> (10 - 2) * 1 = 8.
  EXPECT_EQ(torch_core::fake_quantize_learnable_per_tensor_affine(x, scale, zp, range).get(0), 8.0);
  const auto grads = torch_core::fake_quantize_learnable_per_tensor_affine_backward(
      Tensor::from_values({1.0, 1.0}), x, scale, zp, range);
  // 8.6: xq = round(3 + 8.6) = 12 > 10 -> dx 0, dscale (10 - 3) = 7, dzp -1.
  // 1.3: xq = round(4.3) = 4 inside -> dx 1, dscale (4 - 3) * 1 - 1.3, dzp 0.
  EXPECT_EQ(grads.grad_input.to_vector(), (std::vector<double>{0, 1}));
  EXPECT_EQ(grads.grad_scale.get(0), static_cast<float>(7.0 + static_cast<double>(1.0f - 1.3f)));
  EXPECT_EQ(grads.grad_zero_point.get(0), -1.0);
}

TEST(TorchCore, LearnablePerChannelGradients) {
  const auto x = Tensor::from_values({-3.0, 0.26, 5.0, 0.74}, Shape{2, 2});
  const auto scale = Tensor::from_values({1.0, 0.5});
  const auto zp = Tensor::from_values({0.0, 1.0});
  const Range range{-2, 2};
  const auto g = torch_core::fake_quantize_learnable_per_channel_affine_backward(
      Tensor::full({2, 2}, 1.0), x, scale, zp, 1, range, 0.5f);
  // channel 0 (scale 1, zp 0): -3 -> below (-2): dscale (-2 - 0) * .5 = -1, dzp -1 * 1 * .5;
  //   5 -> above: dscale (2 - 0) * .5 = 1, dzp -.5.   sum: dscale 0, dzp -1.
  // channel 1 (scale .5, zp 1): 0.26 -> round(1 + .52) = 2 inside: xfq = (2 - 1) * .5 = .5,
  //   dscale ((.5 - .26) * 2) * .5; 0.74 -> round(2.48) = 2: ((.5 - .74) * 2) * .5.
  EXPECT_EQ(g.grad_input.to_vector(), (std::vector<double>{0, 1, 0, 1}));
  EXPECT_EQ(g.grad_scale.get(0), 0.0);
  EXPECT_EQ(g.grad_zero_point.get(0), -1.0);
  const double c1 = static_cast<double>(((0.5f - 0.26f) * 2.0f) * 0.5f) +
                    static_cast<double>(((0.5f - 0.74f) * 2.0f) * 0.5f);
  EXPECT_EQ(g.grad_scale.get(1), static_cast<float>(c1));
  EXPECT_EQ(g.grad_zero_point.get(1), 0.0);
}

TEST(TorchCore, RejectsBadArguments) {
  const auto x = Tensor::from_values({1.0});
  EXPECT_THROW(torch_core::fake_quantize_per_tensor_affine(x, 1.0f, 300, {0, 255}), Error);
  EXPECT_THROW(torch_core::fake_quantize_per_tensor_affine(x, 1.0f, 0, {5, 3}), Error);
  EXPECT_THROW(torch_core::fake_quantize_per_channel_affine(
                   x, Tensor::from_values({1.0, 1.0}),
                   Tensor::from_values({0, 0}, ScalarType::int32), 0, {0, 255}),
               Error);
  EXPECT_THROW(torch_core::fake_quantize_learnable_per_tensor_affine(
                   x, Tensor::from_values({0.0}), Tensor::from_values({0.0}), {0, 255}),
               Error);
}

}  // namespace
}  // namespace quantkit
