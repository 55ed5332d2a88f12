// fake_quantize(x) == dequantize(quantize(x)) bit for bit, for every mapping,
// granularity, zero-point domain, element format and input dtype; and the STE
// mask agrees with "the unclamped code lies in range".
#include <gtest/gtest.h>

#include <random>

#include "quantkit/ops.hpp"

namespace quantkit {
namespace {

Tensor random_tensor(Shape shape, ScalarType dtype, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::vector<double> v(static_cast<std::size_t>(numel(shape)));
  for (auto& e : v) e = normal(rng) * 3.0 + 0.5;
  // Exact ties and range ends are the interesting points: plant some.
  if (v.size() > 4) {
    v[0] = 0.5;
    v[1] = -2.5;
    v[2] = 0.0;
    v[3] = -0.0;
  }
  return Tensor::from_values(v, std::move(shape), dtype);
}

std::vector<QuantSpec> all_specs() {
  std::vector<QuantSpec> specs;
  const Granularity grains[] = {Granularity::per_tensor(),      Granularity::per_axis(0),
                                Granularity::per_axis(-1),      Granularity::per_group(8),
                                Granularity::per_block({2, 4}), Granularity::per_token()};
  const QuantDType ints[] = {QuantDType::int_(8),
                             QuantDType::uint(8),
                             QuantDType::int_(4),
                             QuantDType::uint(4),
                             QuantDType::int_(2),
                             QuantDType::int_(5),
                             QuantDType::int_(8).with_range(-127, 127)};
  for (const auto& g : grains) {
    for (const auto& d : ints) {
      specs.push_back({.dtype = d, .mapping = Mapping::symmetric, .granularity = g});
      specs.push_back({.dtype = d,
                       .mapping = Mapping::symmetric,
                       .granularity = g,
                       .zero_point_domain = ZeroPointDomain::none});
      specs.push_back({.dtype = d, .mapping = Mapping::asymmetric, .granularity = g});
      specs.push_back({.dtype = d,
                       .mapping = Mapping::asymmetric,
                       .granularity = g,
                       .zero_point_domain = ZeroPointDomain::float_});
      if (d.quant_min() < 0) {
        specs.push_back(
            {.dtype = d, .mapping = Mapping::symmetric_no_clipping_err, .granularity = g});
      }
      specs.push_back({.dtype = d,
                       .mapping = Mapping::asymmetric,
                       .granularity = g,
                       .scale_dtype = ScaleDType::bfloat16});
    }
    for (int bits : {2, 3, 4}) {
      specs.push_back(
          {.dtype = QuantDType::int_(bits), .mapping = Mapping::stretched, .granularity = g});
    }
    for (const auto& f : minifloat_formats()) {
      const auto d = QuantDType::floating(f.kind);
      specs.push_back({.dtype = d, .granularity = g});
      specs.push_back({.dtype = d, .granularity = g, .scale_dtype = ScaleDType::e8m0});
      specs.push_back({.dtype = d,
                       .granularity = g,
                       .scale_dtype = ScaleDType::e8m0,
                       .e8m0_rounding = E8M0Rounding::rceil});
      specs.push_back({.dtype = d, .granularity = g, .scale_dtype = ScaleDType::fp8_e4m3fn});
    }
  }
  return specs;
}

TEST(FakeQuantizeIdentity, EqualsDequantizeOfQuantizeForEverySpecAndDtype) {
  int checked = 0;
  std::uint32_t seed = 1;
  for (const auto& spec : all_specs()) {
    for (ScalarType dtype : {ScalarType::float32, ScalarType::bfloat16, ScalarType::float16}) {
      const auto x = random_tensor({4, 16}, dtype, seed++);
      const auto qp = choose_qparams(x, spec);
      const auto fq = fake_quantize(x, qp);
      const auto dq = dequantize(quantize(x, qp), dtype);
      ASSERT_TRUE(bitwise_equal(fq, dq)) << spec.describe() << " " << name(dtype);
      // In float32, fake quantization is idempotent: the grid contains its own values.
      // (bf16/fp16 outputs round the grid points themselves, and a bf16 scale has a
      // reciprocal off by up to 2^-9, which moves codes far from the zero point.)
      if (dtype == ScalarType::float32 && qp.scale.dtype() == ScalarType::float32) {
        const auto again = fake_quantize(fq, qp);
        ASSERT_TRUE(bitwise_equal(fq, again))
            << "not idempotent: " << spec.describe() << " " << name(dtype);
      }
      ++checked;
    }
  }
  EXPECT_GT(checked, 700);
}

TEST(FakeQuantizeBackward, MaskMatchesUnclampedRange) {
  const QuantSpec spec{.dtype = QuantDType::int_(4)};
  const auto qp =
      QParams::make(spec, Tensor::from_values({0.5}), Tensor::from_values({0}, ScalarType::int32));
  // x / 0.5 = {-9, -8.5 -> -8 (even), -8, 7, 7.4 -> 7, 7.5 -> 8, 100, NaN}
  const auto x = Tensor::from_values({-4.5, -4.25, -4.0, 3.5, 3.7, 3.75, 50.0, NAN});
  const auto g = Tensor::from_values({1, -2, 3, 4, 5, 6, 7, 8});
  EXPECT_EQ(fake_quantize_backward(x, g, qp).to_vector(),
            (std::vector<double>{0, -2, 3, 4, 5, 0, 0, 0}));
  // Negative gradient times a zero mask is -0.0, exactly as torch multiplies by the mask.
  const auto neg =
      fake_quantize_backward(Tensor::from_values({100.0}), Tensor::from_values({-1.0}), qp);
  EXPECT_TRUE(std::signbit(neg.get(0)));
}

}  // namespace
}  // namespace quantkit
