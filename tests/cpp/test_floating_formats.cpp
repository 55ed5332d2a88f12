// FP8 / MX (E8M0) / NVFP4 quantization on worked examples.
#include <gtest/gtest.h>

#include <cmath>

#include "quantkit/error.hpp"
#include "quantkit/ops.hpp"

namespace quantkit {
namespace {

Tensor block_with_max(int size, float value) {
  std::vector<double> v(size, 0.0);
  v[0] = value;
  v[1] = 1.0;
  return Tensor::from_values(v, Shape{1, size});
}

TEST(Float8, ScaleIsAmaxOver448AndQuantizeDivides) {
  const QuantSpec spec{.dtype = QuantDType::fp8_e4m3fn(), .granularity = Granularity::per_token()};
  const auto x = Tensor::from_values({896.0, -1.0, 0.3, 100.0}, Shape{1, 4});
  const auto qp = choose_qparams(x, spec);
  EXPECT_EQ(qp.scale.get(0), 2.0);  // 896 / 448
  EXPECT_FALSE(qp.has_zero_point());
  // 896/2 = 448 -> 0x7E; -1/2 = -0.5 = -2^-1 -> field 6 -> 0xB0;
  // 100/2 = 50 lies halfway between 48 and 52 (step 4 at 2^5) -> even mantissa 4 -> 0x64.
  const auto codes = quantize(x, qp).code_values();
  EXPECT_EQ(codes[0], 0x7E);
  EXPECT_EQ(codes[1], 0xB0);
  EXPECT_EQ(codes[3], 0x64);
  const auto y = fake_quantize(x, qp);
  EXPECT_EQ(y.get(0), 896.0);
  EXPECT_EQ(y.get(1), -1.0);
}

TEST(Float8, AllZeroBlockNeedsEps) {
  const QuantSpec spec{.dtype = QuantDType::fp8_e4m3fn(), .granularity = Granularity::per_token()};
  const Tensor zeros(ScalarType::float32, {2, 4});
  EXPECT_THROW(choose_qparams(zeros, spec), Error);
  QuantSpec with_eps = spec;
  with_eps.eps = 1e-12;  // torchao's hp_value_lb
  const auto qp = choose_qparams(zeros, with_eps);
  EXPECT_EQ(qp.scale.get(0), static_cast<float>(1e-12f / 448.0f));
  EXPECT_EQ(fake_quantize(zeros, qp).to_vector(), std::vector<double>(8, 0.0));
}

TEST(Mx, Fp4FloorAndRceilOnAWorkedBlock) {
  // Block max 7.0: FLOOR gives scale 1 and 7 saturates to 6; RCEIL gives
  // scale 2, 7/2 = 3.5 is a tie between 3 and 4 -> 4, so 7 comes back as 8.
  const auto x = block_with_max(32, 7.0f);
  QuantSpec spec{.dtype = QuantDType::fp4_e2m1(),
                 .granularity = Granularity::per_group(32),
                 .scale_dtype = ScaleDType::e8m0};
  const auto floor_qp = choose_qparams(x, spec);
  EXPECT_EQ(floor_qp.scale.get(0), 1.0);
  EXPECT_EQ(fake_quantize(x, floor_qp).get(0), 6.0);
  spec.e8m0_rounding = E8M0Rounding::rceil;
  const auto rceil_qp = choose_qparams(x, spec);
  EXPECT_EQ(rceil_qp.scale.get(0), 2.0);
  EXPECT_EQ(quantize(x, rceil_qp).code_values()[0], 0x6);
  EXPECT_EQ(fake_quantize(x, rceil_qp).get(0), 8.0);
  // Block max 5.0 (FLOOR): scale 1, 5 is a tie between 4 and 6 -> 4.
  const auto five = block_with_max(32, 5.0f);
  spec.e8m0_rounding = E8M0Rounding::floor;
  EXPECT_EQ(fake_quantize(five, choose_qparams(five, spec)).get(0), 4.0);
}

TEST(Mx, AllZeroBlockGetsSmallestScale) {
  const QuantSpec spec{.dtype = QuantDType::fp8_e4m3fn(),
                       .granularity = Granularity::per_group(32),
                       .scale_dtype = ScaleDType::e8m0};
  const Tensor zeros(ScalarType::float32, {1, 32});
  const auto qp = choose_qparams(zeros, spec);
  EXPECT_EQ(qp.scale.get(0), std::ldexp(1.0, -127));
  EXPECT_EQ(fake_quantize(zeros, qp).to_vector(), std::vector<double>(32, 0.0));
}

TEST(Mx, SmallestScaleByteFollowsTorchao018) {
  // A block of 2^-126 (e4m3, amax / 2^8 underflows): byte 0 = 2^-127. FLOOR
  // divides by the scale clamped to 2^-126 -> 1.0 (0x38) and dequantizes with
  // 2^-127 -> 2^-127; RCEIL multiplies byte-0 blocks by 1.0 -> 2^-126 -> 0x00.
  const Tensor x = Tensor::full({1, 32}, std::ldexp(1.0, -126));
  QuantSpec spec{.dtype = QuantDType::fp8_e4m3fn(),
                 .granularity = Granularity::per_group(32),
                 .scale_dtype = ScaleDType::e8m0};
  const auto floor_qp = choose_qparams(x, spec);
  EXPECT_EQ(floor_qp.scale.get(0), std::ldexp(1.0, -127));
  EXPECT_EQ(quantize(x, floor_qp).code_values()[0], 0x38);
  EXPECT_EQ(fake_quantize(x, floor_qp).get(0), std::ldexp(1.0, -127));
  spec.e8m0_rounding = E8M0Rounding::rceil;
  const auto rceil_qp = choose_qparams(x, spec);
  EXPECT_EQ(rceil_qp.scale.get(0), std::ldexp(1.0, -127));
  EXPECT_EQ(quantize(x, rceil_qp).code_values()[0], 0x00);
}

TEST(Nvfp4, BlockScaleRoundsDownAndReducesTheMax) {
  // amax 5: 5/6 = 0.8333 -> e4m3 0.8125; 5 * (1/0.8125) = 6.15 -> saturates to
  // 6 -> 6 * 0.8125 = 4.875.
  const auto x = block_with_max(16, 5.0f);
  const QuantSpec spec{.dtype = QuantDType::fp4_e2m1(),
                       .granularity = Granularity::per_group(16),
                       .scale_dtype = ScaleDType::fp8_e4m3fn};
  const auto qp = choose_qparams(x, spec);
  EXPECT_EQ(qp.scale.get(0), 0.8125);
  EXPECT_EQ(quantize(x, qp).code_values()[0], 0x7);
  EXPECT_EQ(fake_quantize(x, qp).get(0), 4.875);
  // A zero block uses the smallest normal e4m3 scale 2^-6.
  const Tensor zeros(ScalarType::float32, {1, 16});
  EXPECT_EQ(choose_qparams(zeros, spec).scale.get(0), 0.015625);
}

}  // namespace
}  // namespace quantkit
