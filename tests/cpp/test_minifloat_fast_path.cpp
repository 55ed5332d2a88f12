// The SIMD paths of the floating element formats are bit-identical to the
// scalar reference on every compiled Highway target: all 65536 bf16 and fp16
// inputs (NaN, Inf, subnormals included) for every element format of the
// trait table with every scale scheme of scale_schemes() (float, MX floor and
// rceil, NVFP4: a new row is covered here without a new test), random float32
// inputs of every tail length, and 1 or 2 threads.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>

#include "cpu/fast_path.hpp"
#include "forced_target.hpp"
#include "quantkit/error.hpp"
#include "quantkit/ops.hpp"
#include "quantkit/scale_scheme.hpp"
#include "reference/reference_ops.hpp"

namespace quantkit {
namespace {

class MinifloatTarget : public ForcedTarget {};

void expect_identical(const Tensor& x, const QParams& qp, const std::string& what) {
  expect_fast_path_identical(
      x, qp, what, {x.dtype(), ScalarType::float32, ScalarType::bfloat16, ScalarType::float16});
}

QuantSpec spec_of(const ScaleSchemeTraits& row, QuantDType element, Granularity granularity) {
  return {.dtype = element,
          .granularity = granularity,
          .scale_dtype = row.scale_dtype,
          .e8m0_rounding = row.e8m0_rounding.value_or(E8M0Rounding::floor)};
}

// One scale per block of 32 over [256, 256], sweeping every positive finite
// value the row's byte storage holds (for E8M0: 2^-127..2^127, so tiny, huge
// and fp16-unrepresentable scales all occur).
Tensor byte_scales(const ScaleSchemeTraits& row, int offset) {
  std::vector<float> values;
  for (int byte = 0; byte < 256; ++byte) {
    const float v = row.decode_byte(static_cast<std::uint8_t>(byte));
    if (std::isfinite(v) && v > 0) values.push_back(v);
  }
  Tensor s(ScalarType::float32, {256, 8});
  for (std::int64_t i = 0; i < s.numel(); ++i) {
    s.set(i, values[static_cast<std::size_t>(i * 37 + offset) % values.size()]);
  }
  return s;
}

TEST_P(MinifloatTarget, Exhaustive16BitInputs) {
  for (ScalarType dtype : {ScalarType::bfloat16, ScalarType::float16}) {
    const Tensor x = all_16bit_patterns(dtype);
    std::string in(" ");
    in += name(dtype);
    for (const auto& format : minifloat_formats()) {
      const QuantDType element = QuantDType::floating(format.kind);
      for (const auto& row : scale_schemes()) {
        if (!row.decode_byte) {
          const QuantSpec spec = spec_of(row, element, Granularity::per_tensor());
          for (double scale : {0.0371, 1.0 / 3.0, 250.0, 1e-30}) {
            const auto qp = QParams::make(spec, Tensor::from_values({scale}), {}, dtype);
            expect_identical(x, qp, spec.describe() + in);
          }
          continue;
        }
        const QuantSpec spec = spec_of(row, element, Granularity::per_group(32));
        for (int offset : {0, 100}) {
          const auto qp = QParams::make(spec, byte_scales(row, offset), {}, dtype);
          expect_identical(x, qp, std::string(row.name) + " " + spec.describe() + in);
        }
        if (row.block_scale_max == 0) continue;
        // Two-level: powers of two (what choose_qparams picks) and torchao's
        // amax / 2688, which is not one; the extremes of the allowed range.
        QuantSpec two_level = spec;
        two_level.global_scale = true;
        for (float g : {std::ldexp(1.0f, -11), 1.0f / 2688.0f, std::ldexp(1.0f, -120),
                        std::ldexp(1.0f, 20), 3.0f}) {
          const auto qp =
              QParams::make(two_level, byte_scales(row, 7), {}, dtype, Tensor::full({}, g));
          expect_identical(x, qp, two_level.describe() + " g " + std::to_string(g) + in);
        }
      }
    }
  }
}

std::vector<QuantSpec> minifloat_specs() {
  std::vector<QuantSpec> specs;
  for (const auto& format : minifloat_formats()) {
    const QuantDType element = QuantDType::floating(format.kind);
    for (const auto& g : {Granularity::per_tensor(), Granularity::per_token(),
                          Granularity::per_axis(-1), Granularity::per_group(32)}) {
      specs.push_back({.dtype = element, .granularity = g, .scale_dtype = ScaleDType::float32});
    }
    for (const auto& row : scale_schemes()) {
      if (!row.scale_from_amax) continue;
      specs.push_back(spec_of(row, element, Granularity::per_group(16)));
      if (row.block_scale_max > 0) {
        specs.push_back(specs.back());
        specs.back().global_scale = true;
      }
    }
  }
  return specs;
}

TEST_P(MinifloatTarget, EveryTailLengthAndSpec) {
  std::uint32_t seed = 5;
  for (ScalarType dtype : {ScalarType::float32, ScalarType::bfloat16, ScalarType::float16}) {
    for (std::int64_t length = 32; length <= 288; length += 32) {
      const Tensor x = random_tensor({3, length}, dtype, seed++);
      for (const auto& spec : minifloat_specs()) {
        expect_identical(x, reference::choose_qparams(x, spec),
                         spec.describe() + " length " + std::to_string(length));
      }
    }
  }
  const QuantSpec fp8{.dtype = QuantDType::fp8_e4m3fn(), .scale_dtype = ScaleDType::float32};
  for (std::int64_t length = 1; length <= 257; ++length) {  // every tail, per-tensor
    const Tensor x = random_tensor({length}, ScalarType::float32, seed++);
    expect_identical(x, reference::choose_qparams(x, fp8), "length " + std::to_string(length));
  }
}

// The threaded per-block chooser equals the reference's, over more blocks
// than one work item holds, with zero, tiny and format-edge blocks; an
// all-zero block that the reference refuses leaves the fast path.
TEST_P(MinifloatTarget, ThreadedChooserEqualsReference) {
  Tensor x = random_tensor({40, 4096}, ScalarType::float32, 21);
  for (std::int64_t i = 0; i < 64; ++i) x.set(i, 0.0);  // all-zero blocks
  for (std::int64_t i = 64; i < 96; ++i) x.set(i, 448.0 * (i % 2 ? -1 : 1));
  for (std::int64_t i = 96; i < 128; ++i) x.set(i, std::ldexp(1.0, -130 + static_cast<int>(i % 5)));
  for (ScalarType dtype : {ScalarType::float32, ScalarType::bfloat16}) {
    const Tensor input = x.to(dtype);
    for (const auto& spec : minifloat_specs()) {
      const bool zero_blocks_refused = spec.scale_dtype == ScaleDType::float32 &&
                                       spec.granularity.kind() == Granularity::Kind::per_group;
      if (zero_blocks_refused) continue;  // tested below
      const auto fast = cpu::choose_qparams(input, spec);
      ASSERT_TRUE(fast.has_value()) << spec.describe();
      const auto ref = reference::choose_qparams(input, spec);
      ASSERT_TRUE(bitwise_equal(fast->scale, ref.scale)) << spec.describe() << " " << name(dtype);
      ASSERT_TRUE(bitwise_equal(fast->zero_point, ref.zero_point)) << spec.describe();
      ASSERT_TRUE(bitwise_equal(fast->minval, ref.minval)) << spec.describe();
      ASSERT_TRUE(bitwise_equal(fast->global_scale, ref.global_scale)) << spec.describe();
      ASSERT_EQ(ref.global_scale.numel(), spec.global_scale ? 1 : 0) << spec.describe();
    }
  }
  const QuantSpec fp8_rows{.dtype = QuantDType::fp8_e4m3fn(),
                           .granularity = Granularity::per_token(),
                           .scale_dtype = ScaleDType::float32};
  Tensor rows = random_tensor({8, 64}, ScalarType::float32, 3);
  for (std::int64_t i = 64; i < 128; ++i) rows.set(i, 0.0);  // row 1 is all zeros
  EXPECT_FALSE(cpu::choose_qparams(rows, fp8_rows).has_value());
  EXPECT_THROW(choose_qparams(rows, fp8_rows), Error);
}

TEST_P(MinifloatTarget, ThreadCountsDoNotMatter) {
  const Tensor x = random_tensor({37, 4128}, ScalarType::float32, 99);  // chunks straddle rows
  for (const auto& spec : minifloat_specs()) {
    set_num_threads(1);
    const auto qp = choose_qparams(x, spec);
    const Tensor one = fake_quantize(x, qp);
    set_num_threads(2);
    ASSERT_TRUE(bitwise_equal(one, fake_quantize(x, qp))) << spec.describe();
    expect_identical(x, qp, spec.describe());
  }
}

INSTANTIATE_TEST_SUITE_P(AllCompiledTargets, MinifloatTarget,
                         ::testing::ValuesIn(available_targets()),
                         [](const auto& test_info) { return std::string(test_info.param.name); });

}  // namespace
}  // namespace quantkit
