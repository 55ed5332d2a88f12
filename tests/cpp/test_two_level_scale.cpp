// Two-level (NVFP4) scaling: a float32 per-tensor scale g over E4M3 block
// scales. Hand-worked values, the power-of-two rule that makes multiplying
// readers (g * b) and dividing readers (b / (1 / g)) agree, tensors chosen in
// parts, and validation. The SIMD paths are compared with the reference in
// test_minifloat_fast_path.cpp, which enumerates two-level specs too.
#include <gtest/gtest.h>

#include "error_of.hpp"

#include <cmath>
#include <string>
#include <vector>

#include "quantkit/observers.hpp"
#include "quantkit/ops.hpp"
#include "quantkit/scale_scheme.hpp"

namespace quantkit {
namespace {

using quantkit::testing::error_of;

QuantSpec nvfp4(bool global_scale) {
  return {.dtype = QuantDType::fp4_e2m1(),
          .granularity = Granularity::per_group(16),
          .scale_dtype = ScaleDType::fp8_e4m3fn,
          .global_scale = global_scale};
}

// 2688 = 448 (largest E4M3) * 6 (largest E2M1); g is the power of two at or
// above amax / 2688, never below 2^-120.
TEST(TwoLevelScale, GlobalScaleIsThePowerOfTwoAtOrAboveAmaxOver2688) {
  const QuantSpec spec = nvfp4(true);
  EXPECT_EQ(global_scale_from_amax(2688.0f, spec), 1.0f);
  EXPECT_EQ(global_scale_from_amax(2689.0f, spec), 2.0f);
  EXPECT_EQ(global_scale_from_amax(1.0f, spec), std::ldexp(1.0f, -11));  // 1/2688 in (2^-12, 2^-11]
  EXPECT_EQ(global_scale_from_amax(2688.0f * std::ldexp(1.0f, -20), spec), std::ldexp(1.0f, -20));
  EXPECT_EQ(global_scale_from_amax(3.4e38f, spec), std::ldexp(1.0f, 117));
  EXPECT_EQ(global_scale_from_amax(1e-38f, spec), std::ldexp(1.0f, -120));
  EXPECT_EQ(global_scale_from_amax(0.0f, spec), 1.0f);
  EXPECT_NE(error_of([] {
              global_scale_from_amax(1.0f, QuantSpec{.dtype = QuantDType::fp4_e2m1(),
                                                     .granularity = Granularity::per_group(32),
                                                     .scale_dtype = ScaleDType::e8m0});
            }).find("no two-level"),
            std::string::npos);
}

// Worked by hand. amax 1 gives g = 2^-11.
// Block 0 (amax 1): (1 / 6) / 2^-11 = 341.33 -> E4M3 352 (neighbours 320, 352);
//   effective scale 352 * 2^-11 = 0.171875, multiplier 2048 / 352 = 5.818:
//   1 -> 5.818 -> 6 -> 1.03125; -0.5 -> -2.909 -> -3 -> -0.515625;
//   0.25 -> 1.4545 -> 1.5 -> 0.2578125; 0.1 -> 0.5818 -> 0.5 -> 0.0859375.
// Block 1 (all 0.01): (0.01 / 6) / 2^-11 = 3.4133 -> E4M3 3.5 (neighbours 3.25, 3.5);
//   0.01 * 2048 / 3.5 = 5.851 -> 6 -> 6 * 3.5 * 2^-11 = 0.01025390625.
// Single-level, block 1's scale 0.01 / 6 clamps to 2^-6: 0.64 -> 0.5 -> 0.0078125.
TEST(TwoLevelScale, HandWorkedBlocks) {
  std::vector<double> values(32, 0.0);
  values[0] = 1.0;
  values[1] = -0.5;
  values[2] = 0.25;
  values[15] = 0.1;
  for (int i = 16; i < 32; ++i) values[i] = 0.01;
  const Tensor x = Tensor::from_values(values, {1, 32});

  const QParams qp = choose_qparams(x.view(), nvfp4(true));
  ASSERT_EQ(qp.global_scale.numel(), 1);
  EXPECT_EQ(qp.global_scale_value(), std::ldexp(1.0f, -11));
  EXPECT_EQ(qp.scale.get(0), 352.0);
  EXPECT_EQ(qp.scale.get(1), 3.5);
  const Tensor y = fake_quantize(x.view(), qp);
  EXPECT_EQ(y.get(0), 1.03125);
  EXPECT_EQ(y.get(1), -0.515625);
  EXPECT_EQ(y.get(2), 0.2578125);
  EXPECT_EQ(y.get(3), 0.0);
  EXPECT_EQ(y.get(15), 0.0859375);
  EXPECT_EQ(y.get(16), 0.01025390625);
  EXPECT_EQ(dequantize(quantize(x.view(), qp), ScalarType::float32).get(16), 0.01025390625);

  const QParams single = choose_qparams(x.view(), nvfp4(false));
  EXPECT_EQ(single.global_scale.numel(), 0);
  EXPECT_EQ(single.scale.get(1), 0.015625);
  EXPECT_EQ(fake_quantize(x.view(), single).get(16), 0.0078125);
}

// compressed-tensors stores 1 / g and decodes element * (b / (1 / g)); torchao
// and quantkit decode element * (g * b). With g a power of two the two agree
// for every E4M3 block scale; with the exact ratios (torchao's g = amax / 2688,
// compressed-tensors' 2688 / amax) they disagree, e.g. for amax 0.7 on every
// one of the 126 positive E4M3 values.
TEST(TwoLevelScale, PowerOfTwoScalesDecodeAlikeByProductAndByQuotient) {
  const auto& e4m3 = minifloat_format(MinifloatKind::e4m3fn);
  auto differing_bytes = [&](float g, float divisor) {
    int differing = 0;
    for (int byte = 1; byte < 127; ++byte) {  // every positive finite E4M3 value
      const float b = decode_minifloat(static_cast<std::uint8_t>(byte), e4m3);
      if (g * b != b / divisor) ++differing;
    }
    return differing;
  };
  for (int exponent : {-120, -40, -11, 0, 30, 117}) {
    const float g = std::ldexp(1.0f, exponent);
    EXPECT_EQ(differing_bytes(g, 1.0f / g), 0) << exponent;
  }
  EXPECT_EQ(differing_bytes(0.7f / 2688.0f, 2688.0f / 0.7f), 126);
}

// The checkpoint tool quantizes row blocks of a tensor one at a time: with the
// whole tensor's g, every part gets exactly the whole tensor's block scales.
TEST(TwoLevelScale, PartsChosenUnderTheWholeScaleMatchTheWhole) {
  Tensor x(ScalarType::float32, {64, 64});
  for (std::int64_t i = 0; i < x.numel(); ++i) {
    x.set(i, std::sin(0.37 * static_cast<double>(i)) * std::ldexp(1.0, static_cast<int>(i / 512)));
  }
  const QuantSpec spec = nvfp4(true);
  const QParams whole = choose_qparams(x.view(), spec);
  Tensor part(ScalarType::float32, {16, 64});  // rows 16..31
  for (std::int64_t i = 0; i < part.numel(); ++i) part.set(i, x.get(16 * 64 + i));
  const QParams from_part = choose_qparams(part.view(), spec);
  EXPECT_NE(from_part.global_scale_value(), whole.global_scale_value());  // the part's amax is less
  const QParams shared = choose_qparams(part.view(), spec, whole.global_scale_value());
  EXPECT_EQ(shared.global_scale_value(), whole.global_scale_value());
  for (std::int64_t i = 0; i < shared.scale.numel(); ++i) {
    ASSERT_EQ(shared.scale.get(i), whole.scale.get(16 * 4 + i)) << i;
  }
  EXPECT_NE(error_of([&] { choose_qparams(part.view(), nvfp4(false), 1.0f); }).find("single-level"),
            std::string::npos);
  EXPECT_NE(error_of([&] { choose_qparams(part.view(), spec, NAN); }).find("finite"),
            std::string::npos);
}

TEST(TwoLevelScale, ObserversChooseTheSameScalesAsTheData) {
  Tensor x(ScalarType::float32, {8, 48});
  for (std::int64_t i = 0; i < x.numel(); ++i) x.set(i, std::cos(1.3 * static_cast<double>(i)));
  MinMaxObserver observer(nvfp4(true));
  observer.observe(x.view());
  const QParams observed = observer.qparams();
  const QParams direct = choose_qparams(x.view(), nvfp4(true));
  EXPECT_EQ(observed.global_scale_value(), direct.global_scale_value());
  EXPECT_EQ(observed.scale.to_vector(), direct.scale.to_vector());
}

TEST(TwoLevelScale, QParamsNeedTheGlobalScaleExactlyWhenTheSpecIsTwoLevel) {
  const Tensor scales = Tensor::from_values({0.5, 448.0});
  EXPECT_NE(error_of([&] { QParams::make(nvfp4(true), scales); }).find("global_scale is missing"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              QParams::make(nvfp4(false), scales, {}, ScalarType::float32, Tensor::full({}, 0.5));
            }).find("single-level"),
            std::string::npos);
  for (double bad : {0.0, -1.0, static_cast<double>(NAN), 1e300}) {
    EXPECT_NE(error_of([&] {
                QParams::make(nvfp4(true), scales, {}, ScalarType::float32, Tensor::full({}, bad));
              }).find("must be a finite float32 > 0"),
              std::string::npos)
        << bad;
  }
  const QParams ok =
      QParams::make(nvfp4(true), scales, {}, ScalarType::float32, Tensor::full({1}, 0.25));
  EXPECT_EQ(ok.global_scale.dim(), 0);
  EXPECT_EQ(ok.global_scale_value(), 0.25f);
  EXPECT_NE(error_of([] {
              QuantSpec{.dtype = QuantDType::fp4_e2m1(),
                        .granularity = Granularity::per_group(32),
                        .scale_dtype = ScaleDType::e8m0,
                        .global_scale = true}
                  .validate();
            }).find("global_scale needs byte block scales"),
            std::string::npos);
}

}  // namespace
}  // namespace quantkit
