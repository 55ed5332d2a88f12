// The SIMD fast path is bit-identical to the scalar reference on every
// Highway target compiled in (forced one at a time), exhaustively over all
// 65536 bf16 and fp16 inputs, on random fp32 inputs of every tail length, and
// with 1 or 2 threads.
#include <gtest/gtest.h>
#include <hwy/targets.h>

#include <algorithm>
#include <random>
#include <string>

#include "cpu/affine_kernels.hpp"
#include "cpu/fast_path.hpp"
#include "cpu/range_kernels.hpp"
#include "forced_target.hpp"
#include "quantkit/error.hpp"
#include "quantkit/ops.hpp"
#include "quantkit/threading.hpp"
#include "reference/reference_ops.hpp"

namespace quantkit {
namespace {

// Runs every public op through the fast path and the reference and demands identical bits.
void expect_identical(const Tensor& x, const QParams& qp, const std::string& what) {
  expect_fast_path_identical(x, qp, what, {x.dtype(), ScalarType::float32});
  // STE backward, with gradients that include negatives, zeros and NaN.
  Tensor grad = Tensor::uninitialized(x.dtype(), x.shape());
  for (std::int64_t i = 0; i < x.numel(); ++i) {
    grad.set(i, i % 7 == 0 ? NAN : (i % 3 == 0 ? -0.75 : (i % 5 == 0 ? 0.0 : 1.5)));
  }
  const auto fast_grad = cpu::fake_quantize_backward(x, grad, qp);
  ASSERT_TRUE(fast_grad.has_value());
  ASSERT_TRUE(bitwise_equal(*fast_grad, reference::fake_quantize_backward(x, grad, qp)))
      << "fake_quantize_backward " << what;
}

TEST_P(ForcedTarget, Exhaustive16BitInputs) {
  for (ScalarType dtype : {ScalarType::bfloat16, ScalarType::float16}) {
    const Tensor x = all_16bit_patterns(dtype);
    for (const auto& format : {QuantDType::int_(8), QuantDType::uint(8), QuantDType::int_(4),
                               QuantDType::uint(4), QuantDType::int_(3)}) {
      for (ScalarType scale_dtype : {ScalarType::float32, dtype}) {
        for (double scale : {0.0371, 1.0 / 3.0, 250.0}) {
          const double zp = format.is_signed() ? -2 : 3;
          QuantSpec spec{.dtype = format, .mapping = Mapping::asymmetric};
          const auto qp = QParams::make(spec, Tensor::from_values({scale}, {1}, scale_dtype),
                                        Tensor::from_values({zp}, {1}, ScalarType::int32), dtype);
          expect_identical(x, qp, spec.describe() + " " + std::string(name(dtype)));
          spec.mapping = Mapping::symmetric;
          spec.zero_point_domain = ZeroPointDomain::none;
          const auto qn =
              QParams::make(spec, Tensor::from_values({scale}, {1}, scale_dtype), {}, dtype);
          expect_identical(x, qn, spec.describe() + " " + std::string(name(dtype)));
        }
      }
    }
  }
}

std::vector<QuantSpec> fast_specs() {
  std::vector<QuantSpec> specs;
  const Granularity grains[] = {Granularity::per_tensor(), Granularity::per_token(),
                                Granularity::per_axis(0), Granularity::per_axis(-1),
                                Granularity::per_group(8)};
  for (const auto& g : grains) {
    for (const auto& d :
         {QuantDType::int_(8), QuantDType::uint(8), QuantDType::int_(4), QuantDType::int_(2)}) {
      specs.push_back({.dtype = d, .mapping = Mapping::symmetric, .granularity = g});
      specs.push_back({.dtype = d, .mapping = Mapping::asymmetric, .granularity = g});
      specs.push_back({.dtype = d,
                       .mapping = Mapping::symmetric,
                       .granularity = g,
                       .zero_point_domain = ZeroPointDomain::none});
      specs.push_back({.dtype = d,
                       .mapping = Mapping::asymmetric,
                       .granularity = g,
                       .scale_dtype = ScaleDType::bfloat16});
      if (d.is_signed()) {
        specs.push_back({.dtype = d,
                         .mapping = Mapping::symmetric_signed,
                         .granularity = g,
                         .zero_point_domain = ZeroPointDomain::none,
                         .scale_dtype = ScaleDType::bfloat16});
      }
    }
  }
  return specs;
}

TEST_P(ForcedTarget, StretchedGrid) {
  // Exhaustive 16-bit inputs, then random float32 rows of every tail, for the
  // stretched (PARQ) grid with given qparams.
  for (ScalarType dtype : {ScalarType::bfloat16, ScalarType::float16}) {
    const Tensor x = all_16bit_patterns(dtype);
    for (int bits : {2, 3, 4}) {
      const QuantSpec spec{.dtype = QuantDType::int_(bits), .mapping = Mapping::stretched};
      for (ScalarType scale_dtype : {ScalarType::float32, dtype}) {
        for (double scale : {0.0371, 1.0 / 3.0, 250.0}) {
          const auto qp = QParams::make(spec, Tensor::from_values({scale}, {1}, scale_dtype),
                                        Tensor::from_values({-0.5}, {1}, scale_dtype), dtype);
          expect_identical(x, qp, spec.describe() + " " + std::string(name(dtype)));
        }
      }
    }
  }
  std::uint32_t seed = 3;
  for (ScalarType dtype : {ScalarType::float32, ScalarType::bfloat16, ScalarType::float16}) {
    for (std::int64_t length = 32; length <= 288; length += 32) {
      const Tensor x = random_tensor({3, length}, dtype, seed++);
      for (const auto& g :
           {Granularity::per_group(32), Granularity::per_token(), Granularity::per_tensor()}) {
        const QuantSpec spec{
            .dtype = QuantDType::int_(2), .mapping = Mapping::stretched, .granularity = g};
        const auto ref = reference::choose_qparams(x, spec);
        const auto fast = cpu::choose_qparams(x, spec);  // mean|x| in PyTorch's order
        ASSERT_TRUE(fast.has_value());
        ASSERT_TRUE(bitwise_equal(fast->scale, ref.scale)) << spec.describe() << " " << length;
        ASSERT_TRUE(bitwise_equal(fast->zero_point, ref.zero_point)) << spec.describe();
        expect_identical(x, ref, spec.describe() + " length " + std::to_string(length));
      }
    }
  }
}

TEST_P(ForcedTarget, EveryTailLengthAndSpec) {
  std::uint32_t seed = 7;
  for (ScalarType dtype : {ScalarType::float32, ScalarType::bfloat16, ScalarType::float16}) {
    for (std::int64_t length = 8; length <= 264; length += 8) {  // multiples of the group size
      const Tensor x = random_tensor({3, length}, dtype, seed++);
      for (const auto& spec : fast_specs()) {
        const auto fast = cpu::choose_qparams(x, spec);
        ASSERT_TRUE(fast.has_value());
        const auto ref = reference::choose_qparams(x, spec);
        ASSERT_TRUE(bitwise_equal(fast->scale, ref.scale))
            << spec.describe() << " length " << length;
        ASSERT_TRUE(bitwise_equal(fast->zero_point, ref.zero_point)) << spec.describe();
        expect_identical(x, ref, spec.describe() + " length " + std::to_string(length));
      }
    }
  }
  for (std::int64_t length = 0; length <= 257; ++length) {  // every tail, per-tensor
    const Tensor x = random_tensor({length}, ScalarType::float32, seed++);
    const QuantSpec spec{.dtype = QuantDType::int_(4), .mapping = Mapping::asymmetric};
    const auto qp = QParams::make(spec, Tensor::from_values({0.3}),
                                  Tensor::from_values({1}, {1}, ScalarType::int32));
    expect_identical(x, qp, "length " + std::to_string(length));
    if (length > 0) {
      ASSERT_TRUE(bitwise_equal(cpu::choose_qparams(x, spec)->scale,
                                reference::choose_qparams(x, spec).scale));
    }
  }
}

TEST_P(ForcedTarget, FusedChooseAndQuantizeEqualsTwoSteps) {
  std::uint32_t seed = 11;
  for (ScalarType dtype : {ScalarType::float32, ScalarType::bfloat16, ScalarType::float16}) {
    // Rows of 33: odd blocks, where 4-bit pairs straddle blocks (packed in a second pass).
    for (const Shape& shape : {Shape{3, 264}, Shape{64, 4096}, Shape{5, 8, 24}, Shape{6, 33}}) {
      const Tensor x = random_tensor(shape, dtype, seed++);
      for (const auto& spec : fast_specs()) {
        const bool groups_fit = spec.granularity.kind() != Granularity::Kind::per_group ||
                                shape.back() % spec.granularity.group_size() == 0;
        if (!groups_fit) continue;
        const auto ref_qp = reference::choose_qparams(x, spec);
        const auto ref_q = reference::quantize(x, ref_qp);
        const auto fused = cpu::choose_qparams_and_quantize(x, spec);
        const auto kind = spec.granularity.kind();
        const bool runs = kind == Granularity::Kind::per_token ||
                          kind == Granularity::Kind::per_group ||
                          (kind == Granularity::Kind::per_axis && spec.granularity.axis() == 0);
        ASSERT_EQ(fused.has_value(), runs) << spec.describe();
        const QuantizedTensor q = fused ? *fused : quantize(x, spec);  // the public op either way
        ASSERT_TRUE(std::ranges::equal(q.packed(), ref_q.packed()))
            << spec.describe() << " " << name(dtype);
        ASSERT_TRUE(bitwise_equal(q.qparams().scale, ref_qp.scale)) << spec.describe();
        ASSERT_TRUE(bitwise_equal(q.qparams().zero_point, ref_qp.zero_point)) << spec.describe();
        ASSERT_TRUE(bitwise_equal(q.qparams().minval, ref_qp.minval)) << spec.describe();
      }
    }
  }
  // Non-finite data falls back to the reference, which names the index.
  EXPECT_FALSE(cpu::choose_qparams_and_quantize(
                   Tensor::from_values({1.0, NAN}),
                   QuantSpec{.dtype = QuantDType::int_(8), .granularity = Granularity::per_token()})
                   .has_value());
}

// Blocks that stress the lane-wise chooser: signed zeros (minval keeps the
// sign, so std::min / std::max semantics matter), constant blocks, one-sided
// blocks, subnormals, and ranges at the top of each dtype.
TEST_P(ForcedTarget, FusedChooserEdgeBlocks) {
  for (ScalarType dtype : {ScalarType::float32, ScalarType::bfloat16, ScalarType::float16}) {
    const double big = dtype == ScalarType::float16 ? 30000.0 : 1e30;
    const double tiny = dtype == ScalarType::float16 ? 1e-7 : 1e-40;
    const std::vector<std::vector<double>> rows = {
        {0.0},  {-0.0},        {0.0, -0.0}, {3.0},        {-3.0},      {-0.0, 2.5},
        {tiny}, {-tiny, tiny}, {big, -big}, {-big, -1.0}, {0.5, 1.25}, {-7.0, 7.0}};
    const std::int64_t width = 40;  // 40 blocks of 8: lane tails on every target
    std::vector<double> values;
    for (std::size_t r = 0; r < 40; ++r) {
      const auto& row = rows[r % rows.size()];
      for (std::int64_t k = 0; k < 8; ++k) values.push_back(row[k % row.size()]);
    }
    const Tensor x = Tensor::from_values(values, {width, 8}, dtype);
    for (const auto& d : {QuantDType::int_(4), QuantDType::uint(8), QuantDType::int_(8)}) {
      for (Mapping mapping : {Mapping::asymmetric, Mapping::symmetric, Mapping::symmetric_signed}) {
        if (mapping == Mapping::symmetric_signed && !d.is_signed()) continue;
        for (auto scale_dtype : {std::optional<ScaleDType>{}, std::optional{ScaleDType::bfloat16},
                                 std::optional{ScaleDType::float32}}) {
          const QuantSpec spec{.dtype = d,
                               .mapping = mapping,
                               .granularity = Granularity::per_group(8),
                               .scale_dtype = scale_dtype};
          const auto fused = cpu::choose_qparams_and_quantize(x, spec);
          ASSERT_TRUE(fused.has_value()) << spec.describe() << " " << name(dtype);
          const auto ref_qp = reference::choose_qparams(x, spec);
          const std::string what = spec.describe() + " " + std::string(name(dtype));
          ASSERT_TRUE(bitwise_equal(fused->qparams().scale, ref_qp.scale)) << what;
          ASSERT_TRUE(bitwise_equal(fused->qparams().zero_point, ref_qp.zero_point)) << what;
          ASSERT_TRUE(bitwise_equal(fused->qparams().minval, ref_qp.minval)) << what;
          ASSERT_TRUE(std::ranges::equal(fused->packed(), reference::quantize(x, ref_qp).packed()))
              << what;
        }
      }
    }
  }
  // A range that overflows the compute dtype leaves the fused path; the
  // public op then reports it.
  const Tensor wide = Tensor::from_values({60000.0, -60000.0}, {1, 2}, ScalarType::float16);
  const QuantSpec asymmetric{.dtype = QuantDType::int_(8),
                             .mapping = Mapping::asymmetric,
                             .granularity = Granularity::per_token()};
  EXPECT_FALSE(cpu::choose_qparams_and_quantize(wide, asymmetric).has_value());
  EXPECT_THROW(quantize(wide, asymmetric), Error);
}

// Block min / max over every block length up to 80 (whole vector pairs, one
// vector, padded tails), and a NaN or Inf at every position is reported.
TEST_P(ForcedTarget, MinMaxBlocksFindsEveryNonFiniteValue) {
  for (ScalarType dtype : {ScalarType::float32, ScalarType::bfloat16, ScalarType::float16}) {
    const auto kind = dtype == ScalarType::float32    ? cpu::FloatKind::f32
                      : dtype == ScalarType::bfloat16 ? cpu::FloatKind::bf16
                                                      : cpu::FloatKind::f16;
    for (std::int64_t inner = 1; inner <= 80; ++inner) {
      const std::int64_t blocks = 3;
      Tensor x = random_tensor({blocks * inner}, dtype, static_cast<std::uint32_t>(inner));
      std::vector<float> lo(blocks), hi(blocks);
      ASSERT_TRUE(cpu::min_max_blocks(kind, x.raw_data(), 0, inner, blocks, lo.data(), hi.data()));
      for (std::int64_t b = 0; b < blocks; ++b) {
        double expect_lo = HUGE_VAL, expect_hi = -HUGE_VAL;
        for (std::int64_t k = 0; k < inner; ++k) {
          expect_lo = std::min(expect_lo, x.get(b * inner + k));
          expect_hi = std::max(expect_hi, x.get(b * inner + k));
        }
        ASSERT_EQ(lo[b], expect_lo) << "inner " << inner << " block " << b;
        ASSERT_EQ(hi[b], expect_hi) << "inner " << inner << " block " << b;
      }
      // From the second block on, as a caller's work item does.
      std::vector<float> lo1(1), hi1(1);
      ASSERT_TRUE(cpu::min_max_blocks(kind, x.raw_data(), 1, inner, 1, lo1.data(), hi1.data()));
      ASSERT_EQ(lo1[0], lo[1]);
      ASSERT_EQ(hi1[0], hi[1]);
      for (double bad : {static_cast<double>(NAN), HUGE_VAL, -HUGE_VAL}) {
        for (std::int64_t at = inner; at < 2 * inner; ++at) {
          Tensor y = x;  // a deep copy
          y.set(at, bad);
          ASSERT_FALSE(
              cpu::min_max_blocks(kind, y.raw_data(), 0, inner, blocks, lo.data(), hi.data()))
              << name(dtype) << " inner " << inner << " at " << at << " value " << bad;
        }
      }
    }
  }
}

// Errors raised while threads store qparams (a zero point that its dtype
// cannot hold) reach the caller as the reference's error, not a crash.
TEST(FastPath, ZeroPointOutsideItsDtypeIsReportedFromThreads) {
  Tensor x = random_tensor({64, 4096}, ScalarType::float32, 5);
  for (std::int64_t i = 0; i < x.numel(); ++i) x.set(i, std::fabs(x.get(i)) + 1.0);  // zp 0
  for (std::int64_t i = 0; i < 4096; ++i) x.set(i, -std::fabs(x.get(i)) - 1.0);  // row 0: zp 255
  const QuantSpec spec{.dtype = QuantDType::uint(8),
                       .mapping = Mapping::asymmetric,
                       .granularity = Granularity::per_token(),
                       .zero_point_dtype = ScalarType::int8};
  EXPECT_THROW(reference::choose_qparams(x, spec), Error);
  set_num_threads(2);
  EXPECT_THROW(quantize(x, spec), Error);
  EXPECT_THROW(choose_qparams(x, spec), Error);
}

TEST_P(ForcedTarget, LargeTensorsAndThreadCounts) {
  const Tensor x = random_tensor({37, 4099}, ScalarType::float32, 99);  // chunks straddle rows
  for (const auto& spec : {QuantSpec{.dtype = QuantDType::int_(8)},
                           QuantSpec{.dtype = QuantDType::uint(4),
                           .mapping = Mapping::asymmetric,
                           .granularity = Granularity::per_axis(-1)},
                           QuantSpec{.dtype = QuantDType::int_(5),
                           .mapping = Mapping::asymmetric,
                           .granularity = Granularity::per_token()}}) {
    set_num_threads(1);
    const auto one = choose_qparams(x, spec);
    const Tensor fq1 = fake_quantize(x, one);
    set_num_threads(2);
    const auto two = choose_qparams(x, spec);
    ASSERT_TRUE(bitwise_equal(one.scale, two.scale)) << spec.describe();
    ASSERT_TRUE(bitwise_equal(fq1, fake_quantize(x, two))) << spec.describe();
    expect_identical(x, two, spec.describe());
  }
}

INSTANTIATE_TEST_SUITE_P(AllCompiledTargets, ForcedTarget, ::testing::ValuesIn(available_targets()),
                         [](const auto& test_info) { return std::string(test_info.param.name); });

TEST(FastPath, FallsBackWhereItDoesNotApply) {
  const Tensor x = random_tensor({4, 8}, ScalarType::float32, 3);
  const QuantSpec tinygemm{.dtype = QuantDType::uint(4),
                           .mapping = Mapping::asymmetric,
                           .zero_point_domain = ZeroPointDomain::float_};
  EXPECT_FALSE(cpu::fake_quantize(x, reference::choose_qparams(x, tinygemm)).has_value());
  const QuantSpec block{.dtype = QuantDType::int_(8),
                        .granularity = Granularity::per_block({2, 4})};
  EXPECT_FALSE(cpu::fake_quantize(x, reference::choose_qparams(x, block)).has_value());
  const Tensor nan = Tensor::from_values({1.0, NAN});
  EXPECT_FALSE(cpu::choose_qparams(nan, QuantSpec{}).has_value());  // reference reports the index
  EXPECT_THROW(choose_qparams(nan, QuantSpec{}), Error);
}

}  // namespace
}  // namespace quantkit

namespace quantkit {
namespace {

TEST(OutVariants, EqualTheAllocatingOpsOnEveryPath) {
  const Tensor x = random_tensor({8, 96}, ScalarType::bfloat16, 17);
  for (const QuantSpec& spec :
       {QuantSpec{.dtype = QuantDType::int_(4), .granularity = Granularity::per_group(32)},
        QuantSpec{.dtype = QuantDType::fp8_e4m3fn(), .scale_dtype = ScaleDType::float32},
        QuantSpec{.dtype = QuantDType::uint(4),  // tinygemm: the reference path
                  .mapping = Mapping::asymmetric,
        .granularity = Granularity::per_group(32),
        .zero_point_domain = ZeroPointDomain::float_}}) {
    const QParams qp = choose_qparams(x, spec);
    Tensor out = Tensor::uninitialized(x.dtype(), x.shape());
    fake_quantize_into(x, qp, out);
    EXPECT_TRUE(bitwise_equal(out, fake_quantize(x, qp))) << spec.describe();
    const QuantizedTensor q = quantize(x, qp);
    Tensor restored = Tensor::uninitialized(ScalarType::float32, x.shape());
    dequantize_into(q, restored);
    EXPECT_TRUE(bitwise_equal(restored, dequantize(q, ScalarType::float32))) << spec.describe();
  }
  Tensor wrong(ScalarType::float32, {8, 96});
  EXPECT_THROW(fake_quantize_into(x, choose_qparams(x, QuantSpec{}), wrong), Error);
  Tensor wrong_shape(ScalarType::float32, {96, 8});
  EXPECT_THROW(dequantize_into(quantize(x, QuantSpec{}), wrong_shape), Error);
}

TEST(OutVariants, InPlaceEqualsOutOfPlaceAndPartialOverlapIsRefused) {
  const Tensor x = random_tensor({4, 1000}, ScalarType::float32, 23);  // vector tails included
  for (const QuantSpec& spec :
       {QuantSpec{.dtype = QuantDType::int_(8), .granularity = Granularity::per_axis(0)},
        QuantSpec{.dtype = QuantDType::fp8_e4m3fn(), .scale_dtype = ScaleDType::float32},
        QuantSpec{.dtype = QuantDType::uint(4),  // the reference path
                  .mapping = Mapping::asymmetric,
        .granularity = Granularity::per_group(100),
        .zero_point_domain = ZeroPointDomain::float_}}) {
    const QParams qp = choose_qparams(x, spec);
    Tensor data = x;  // a copy, overwritten in place
    fake_quantize_into(data, qp, OutView{data.raw_data(), data.dtype(), data.shape()});
    EXPECT_TRUE(bitwise_equal(data, fake_quantize(x, qp))) << spec.describe();
  }
  Tensor buffer(ScalarType::float32, {2, 1000});
  const TensorView first(buffer.raw_data(), ScalarType::float32, {1000});
  const OutView shifted{buffer.data<float>() + 1, ScalarType::float32, {1000}};
  EXPECT_THROW(fake_quantize_into(first, choose_qparams(first, QuantSpec{}), shifted), Error);
}

}  // namespace
}  // namespace quantkit
