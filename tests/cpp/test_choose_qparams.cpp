// choose_qparams against hand-computed values, the regression cases of the
// zero-in-range fix (shared/seeds/000) and torchao's documented examples.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>

#include "error_of.hpp"
#include "quantkit/ops.hpp"

namespace quantkit {
namespace {

QuantSpec asym(QuantDType d, Granularity g = Granularity::per_tensor()) {
  return {.dtype = d, .mapping = Mapping::asymmetric, .granularity = g};
}

// Seed 000: the four regression cases (ranges that exclude zero).
TEST(ChooseQParamsSeed000, PerTensorUint4PositiveRange) {
  const auto qp =
      choose_qparams(Tensor::from_values({1.0, 2.0, 3.0, 4.0}), asym(QuantDType::uint(4)));
  EXPECT_EQ(qp.scale.get(0), 4.0f / 15.0f);  // range widened to [0, 4]
  EXPECT_EQ(qp.zero_point.get(0), 0);
  EXPECT_EQ(qp.minval.get(0), 0.0);
}

TEST(ChooseQParamsSeed000, PerTensorUint4NegativeRange) {
  const auto qp =
      choose_qparams(Tensor::from_values({-4.0, -3.0, -2.0, -1.0}), asym(QuantDType::uint(4)));
  EXPECT_EQ(qp.scale.get(0), 4.0f / 15.0f);  // range widened to [-4, 0]
  EXPECT_EQ(qp.zero_point.get(0), 15);       // qmax
  EXPECT_EQ(qp.minval.get(0), -4.0);
}

TEST(ChooseQParamsSeed000, PerChannelInt5PositiveRange) {
  const auto x = Tensor::from_values({1.0, 3.0, 2.0, 4.0, 5.0, 0.5}, Shape{2, 3});
  const auto qp = choose_qparams(x, asym(QuantDType::int_(5), Granularity::per_axis(0)));
  EXPECT_EQ(qp.scale.shape(), (Shape{2, 1}));
  EXPECT_EQ(qp.scale.get(0), 3.0f / 31.0f);
  EXPECT_EQ(qp.scale.get(1), 5.0f / 31.0f);
  EXPECT_EQ(qp.zero_point.get(0), -16);  // qmin
  EXPECT_EQ(qp.zero_point.get(1), -16);
}

TEST(ChooseQParamsSeed000, PerChannelInt5NegativeRange) {
  const auto x = Tensor::from_values({-1.0, -3.0, -2.0, -4.0, -5.0, -0.5}, Shape{2, 3});
  const auto qp = choose_qparams(x, asym(QuantDType::int_(5), Granularity::per_axis(0)));
  EXPECT_EQ(qp.scale.get(0), 3.0f / 31.0f);
  EXPECT_EQ(qp.scale.get(1), 5.0f / 31.0f);
  EXPECT_EQ(qp.zero_point.get(0), 15);  // qmax
  EXPECT_EQ(qp.zero_point.get(1), 15);
  // The extreme of each channel survives the round trip.
  const auto y = fake_quantize(x, qp);
  EXPECT_EQ(y.get(1), -31.0f * (3.0f / 31.0f));
  EXPECT_EQ(y.get(4), -31.0f * (5.0f / 31.0f));
}

TEST(ChooseQParamsSeed000, WorkedExampleRoundTrips355) {
  // Range 1.0 .. 3.55 in uint8: without widening to 0 the zero point would
  // clamp to 0 and 3.55 would come back as 2.55.
  const auto x = Tensor::from_values({1.0, 3.55});
  const auto qp = choose_qparams(x, asym(QuantDType::uint(8)));
  const float scale = 3.55f / 255.0f;
  EXPECT_EQ(qp.scale.get(0), scale);
  EXPECT_EQ(qp.zero_point.get(0), 0);
  const auto q = quantize(x, qp);
  EXPECT_EQ(q.code_values()[1], 255);
  EXPECT_EQ(fake_quantize(x, qp).get(1), 255.0f * scale);
  EXPECT_NEAR(fake_quantize(x, qp).get(1), 3.55, 1e-6);
}

TEST(ChooseQParams, Int8SymmetricDividesBy127Point5) {
  // amax 0x40F29F74 (7.5819645): scale = amax / 127.5 = 0x3D739307 on the CPU
  // (a CUDA reciprocal multiply would give 0x3D739308). Exact rational
  // arithmetic gives the codes: +amax -> 127.5000076 -> 128 -> clamps to 127;
  // -amax -> -128; 3.0 -> 50.4487 -> 50; -1.0 -> -17; 0.0294 -> 0.
  const float amax = std::bit_cast<float>(0x40F29F74u);
  const auto x = Tensor::from_values({amax, -amax, 3.0, -1.0, 0.0294});
  const auto qp = choose_qparams(x, {.dtype = QuantDType::int_(8)});
  EXPECT_EQ(std::bit_cast<std::uint32_t>(static_cast<float>(qp.scale.get(0))), 0x3D739307u);
  EXPECT_EQ(qp.zero_point.get(0), 0);
  EXPECT_EQ(qp.minval.get(0), -amax);
  EXPECT_EQ(quantize(x, qp).code_values(), (std::vector<std::int32_t>{127, -128, 50, -17, 0}));
}

TEST(ChooseQParams, SymmetricZeroPointOfUnsignedIsMidpoint) {
  const auto qp = choose_qparams(Tensor::from_values({-2.0, 1.0}), {.dtype = QuantDType::uint(8)});
  EXPECT_EQ(qp.zero_point.get(0), 128);  // trunc((255 + 0 + 1) / 2)
  EXPECT_EQ(qp.scale.get(0), 2.0f / 127.5f);
  const auto qp4 = choose_qparams(Tensor::from_values({-2.0, 1.0}),
                                  {.dtype = QuantDType::int_(8).with_range(-127, 127)});
  EXPECT_EQ(qp4.zero_point.get(0), 0);  // trunc(0.5)
  EXPECT_EQ(qp4.scale.get(0), 2.0f / 127.0f);
}

TEST(ChooseQParams, SymmetricNoClippingErrTakesTheLargerSide) {
  // int4: smin = -4 / -8 = 0.5, smax = 1 / 7 -> 0.5 (negative side wins).
  const auto x = Tensor::from_values({-4.0, 1.0});
  const auto qp = choose_qparams(
      x, {.dtype = QuantDType::int_(4), .mapping = Mapping::symmetric_no_clipping_err});
  EXPECT_EQ(qp.scale.get(0), 0.5f);
  // 7 / 7 = 1 beats 1 / 8 = 0.125.
  const auto qp2 =
      choose_qparams(Tensor::from_values({-1.0, 7.0}),
                     {.dtype = QuantDType::int_(4), .mapping = Mapping::symmetric_no_clipping_err});
  EXPECT_EQ(qp2.scale.get(0), 1.0f);
  EXPECT_EQ(fake_quantize(Tensor::from_values({7.0, -1.0}), qp2).to_vector(),
            (std::vector<double>{7, -1}));
}

// symmetric_signed (llama.cpp's Q4_0 rule), by hand: the value of largest
// magnitude lands exactly on qmin = -8, so a positive extreme gives a negative
// scale; the negative extreme wins a tie; an all-zero block gets +eps.
TEST(ChooseQParams, SymmetricSignedPutsTheExtremeOnQuantMin) {
  const QuantSpec spec{.dtype = QuantDType::int_(4), .mapping = Mapping::symmetric_signed};
  const auto positive = Tensor::from_values({1.0, -0.5, 2.0, -1.0});
  const auto qp = choose_qparams(positive, spec);
  EXPECT_EQ(qp.scale.get(0), -0.25);  // 2 / -8
  EXPECT_EQ(qp.zero_point.get(0), 0);
  EXPECT_EQ(quantize(positive.view(), qp).code_values(), (std::vector<std::int32_t>{-4, 2, -8, 4}));
  EXPECT_EQ(fake_quantize(positive, qp).to_vector(), positive.to_vector());  // all on the grid
  const auto negative = Tensor::from_values({-2.0, 1.0, 0.3});
  const auto qn = choose_qparams(negative, spec);
  EXPECT_EQ(qn.scale.get(0), 0.25);  // -2 / -8
  EXPECT_EQ(fake_quantize(negative, qn).to_vector(), (std::vector<double>{-2, 1, 0.25}));
  const auto tie = choose_qparams(Tensor::from_values({2.0, -2.0}), spec);
  EXPECT_EQ(tie.scale.get(0), 0.25);  // the negative extreme: +2 then clips to 7 * 0.25
  EXPECT_EQ(fake_quantize(Tensor::from_values({2.0, -2.0}), tie).to_vector(),
            (std::vector<double>{1.75, -2}));
  const auto zeros = choose_qparams(Tensor(ScalarType::float32, {4}), spec);
  EXPECT_EQ(zeros.scale.get(0), std::ldexp(1.0, -126));
  // A tiny positive extreme keeps its sign at the eps bound.
  const auto tiny = choose_qparams(Tensor::from_values({1e-39, 0.0}), spec);
  EXPECT_EQ(tiny.scale.get(0), -std::ldexp(1.0, -126));
  // int8: step 127 / 128, finer than symmetric's 127 / 127.5, and 127 is exact.
  const auto q8 =
      choose_qparams(Tensor::from_values({127.0, -3.0}),
                     {.dtype = QuantDType::int_(8), .mapping = Mapping::symmetric_signed});
  EXPECT_EQ(q8.scale.get(0), -127.0f / 128.0f);
  EXPECT_EQ(fake_quantize(Tensor::from_values({127.0}), q8).to_vector(),
            (std::vector<double>{127}));
  EXPECT_NE(
      testing::error_of([] {
        QuantSpec{.dtype = QuantDType::uint(4), .mapping = Mapping::symmetric_signed}.validate();
      }).find("mapping symmetric_signed needs quant_min < 0 < quant_max, but uint4"),
      std::string::npos);
}

TEST(ChooseQParams, EpsClampsTinyRanges) {
  // All zeros: scale = finfo(float32).smallest_normal, zero point = qmin - 0.
  const auto qp = choose_qparams(Tensor(ScalarType::float32, {8}), asym(QuantDType::int_(8)));
  EXPECT_EQ(qp.scale.get(0), std::ldexp(1.0, -126));
  EXPECT_EQ(qp.zero_point.get(0), -128);
  // float16: 0.001 / 127.5 is below 2^-14, the float16 smallest normal.
  const auto h = Tensor::from_values({0.001, -0.0005}, ScalarType::float16);
  const auto qh = choose_qparams(h, {.dtype = QuantDType::int_(8)});
  EXPECT_EQ(qh.scale.dtype(), ScalarType::float16);
  EXPECT_EQ(qh.scale.get(0), std::ldexp(1.0, -14));
  // A user eps, as 8da4w activations pin finfo(float32).eps.
  const auto qe = choose_qparams(Tensor::from_values({1e-9, -1e-9}),
                                 {.dtype = QuantDType::int_(8), .eps = std::ldexp(1.0, -23)});
  EXPECT_EQ(qe.scale.get(0), std::ldexp(1.0, -23));
}

TEST(ChooseQParams, ConstantTensorKeepsItsValue) {
  const auto x = Tensor::full({5}, 2.0);
  const auto qp = choose_qparams(x, asym(QuantDType::uint(8)));
  EXPECT_EQ(qp.scale.get(0), 2.0f / 255.0f);
  EXPECT_EQ(qp.zero_point.get(0), 0);
  EXPECT_EQ(fake_quantize(x, qp).get(0), 255.0f * (2.0f / 255.0f));
}

TEST(ChooseQParams, Bfloat16RoundsEveryOp) {
  // bf16 x = [-1.0, 3.5], uint8 asymmetric, every op rounded to bf16:
  //   scale = bf16(4.5 / 255 = 0.0176470...) = 1.1328125 * 2^-6 = 0.0177001953125
  //   -1.0 / scale = -56.4966... -> bf16 (step 0.25) -56.5 -> round half even -56
  //   zero point = 0 - (-56) = 56.
  // In float32 the same data gives -1 / 0.017647059 = -56.67 -> zero point 57.
  const auto x = Tensor::from_values({-1.0, 3.5}, ScalarType::bfloat16);
  const auto qp = choose_qparams(x, asym(QuantDType::uint(8)));
  EXPECT_EQ(qp.scale.dtype(), ScalarType::bfloat16);
  EXPECT_EQ(qp.scale.get(0), 0.0177001953125);
  EXPECT_EQ(qp.zero_point.get(0), 56);
  const auto qp32 = choose_qparams(x.to(ScalarType::float32), asym(QuantDType::uint(8)));
  EXPECT_EQ(qp32.scale.get(0), 4.5f / 255.0f);
  EXPECT_EQ(qp32.zero_point.get(0), 57);
  // The scale is computed in bf16 and cast last: a float32 scale dtype keeps the bf16 value.
  QuantSpec spec = asym(QuantDType::uint(8));
  spec.scale_dtype = ScaleDType::float32;
  const auto qpf = choose_qparams(x, spec);
  EXPECT_EQ(qpf.scale.dtype(), ScalarType::float32);
  EXPECT_EQ(qpf.scale.get(0), 0.0177001953125);
}

TEST(ChooseQParams, TinygemmFloatZeroPoint) {
  // uint4, range [1, 4] not widened: scale = 3 / 15 = 0.2, zp = 1 + 0.2 * 8.
  QuantSpec spec = asym(QuantDType::uint(4));
  spec.zero_point_domain = ZeroPointDomain::float_;
  const auto x = Tensor::from_values({1.0, 4.0, 2.5});
  const auto qp = choose_qparams(x, spec);
  const float scale = 3.0f / 15.0f;
  EXPECT_EQ(qp.scale.get(0), scale);
  EXPECT_EQ(qp.zero_point.dtype(), ScalarType::float32);
  EXPECT_EQ(qp.zero_point.get(0), 1.0f + scale * 8.0f);
  // q = round((x - (zp - 8 s)) / s): 1 -> 0, 4 -> 15, 2.5 -> 7.5 -> 8 (half even).
  const float grid_min = (1.0f + scale * 8.0f) - scale * 8.0f;
  EXPECT_EQ(quantize(x, qp).code_values(),
            (std::vector<std::int32_t>{static_cast<int>(std::nearbyint((1.0f - grid_min) / scale)),
                                       15, 8}));
}

TEST(ChooseQParams, FromMinMaxEqualsFromTensor) {
  const auto x = Tensor::from_values({-1.5, 0.25, 3.0, 2.0, -0.5, 0.75}, Shape{2, 3});
  const QuantSpec spec = asym(QuantDType::int_(8), Granularity::per_axis(0));
  const auto qp = choose_qparams(x, spec);
  const auto qmm = choose_qparams(Tensor::from_values({-1.5, -0.5}, Shape{2, 1}),
                                  Tensor::from_values({3.0, 2.0}, Shape{2, 1}), spec);
  EXPECT_TRUE(bitwise_equal(qp.scale, qmm.scale));
  EXPECT_TRUE(bitwise_equal(qp.zero_point, qmm.zero_point));
}

TEST(ChooseQParams, PerGroupAndPerBlockGrids) {
  std::vector<double> v(32);
  for (int i = 0; i < 32; ++i) v[i] = i - 16;
  const auto x = Tensor::from_values(v, Shape{4, 8});
  const auto g =
      choose_qparams(x, {.dtype = QuantDType::int_(4), .granularity = Granularity::per_group(4)});
  EXPECT_EQ(g.scale.shape(), (Shape{4, 2}));
  EXPECT_EQ(g.scale.get(0), 16.0f / 7.5f);  // group [-16..-13]
  EXPECT_EQ(g.scale.get(3), 4.0f / 7.5f);   // row 1, second group: [-4..-1]
  const auto b = choose_qparams(
      x, {.dtype = QuantDType::int_(4), .granularity = Granularity::per_block({2, 4})});
  EXPECT_EQ(b.scale.shape(), (Shape{2, 2}));
  EXPECT_EQ(b.scale.get(3), 15.0f / 7.5f);  // rows 2-3, cols 4-7: max 15
}

}  // namespace
}  // namespace quantkit
