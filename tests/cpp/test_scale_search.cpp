// QuantSpec::scale_search = mse: each block keeps the clipping ratio of
// {1, 0.98, ..., 0.60} whose round-to-nearest error is least. The check here
// is independent of the search code: every candidate's qparams come from the
// public min/max chooser on the clipped range, its error from fake_quantize,
// summed in double.
#include <gtest/gtest.h>

#include "error_of.hpp"
#include "outlier_weights.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cpu/choose_kernels.hpp"
#include "cpu/dispatch_helpers.hpp"
#include "cpu/fast_path.hpp"
#include "cpu/search_kernels.hpp"
#include "forced_target.hpp"
#include "quantkit/ops.hpp"
#include "quantkit/threading.hpp"
#include "reference/block_chooser.hpp"
#include "reference/element_ops.hpp"
#include "reference/reference_ops.hpp"

namespace quantkit {
namespace {

using quantkit::testing::error_of;
using quantkit::testing::outlier_weights;

QuantSpec searched(Mapping mapping, Granularity granularity, int bits = 4) {
  return {.dtype = QuantDType::int_(bits),
          .mapping = mapping,
          .granularity = granularity,
          .scale_search = ScaleSearch::mse};
}

double squared_error(const Tensor& x, const Tensor& y) {
  double sum = 0;
  for (std::int64_t i = 0; i < x.numel(); ++i) {
    const double d = x.get(i) - y.get(i);
    sum += d * d;
  }
  return sum;
}

Tensor row(const Tensor& x, std::int64_t r, std::int64_t begin, std::int64_t count) {
  Tensor out(x.dtype(), {1, count});
  for (std::int64_t i = 0; i < count; ++i) out.set(i, x.get(r * x.shape()[1] + begin + i));
  return out;
}

TEST(ScaleSearch, KeepsTheClipRatioOfLeastErrorAndNeverLosesToRounding) {
  for (Mapping mapping : {Mapping::symmetric, Mapping::asymmetric}) {
    const QuantSpec spec = searched(mapping, Granularity::per_group(32));
    QuantSpec plain = spec;
    plain.scale_search = ScaleSearch::none;
    const Tensor x = outlier_weights(16, 128, ScalarType::float32, 7);
    const QParams chosen = choose_qparams(x.view(), spec);
    int improved = 0;
    for (std::int64_t r = 0; r < 16; ++r) {
      for (std::int64_t g = 0; g < 4; ++g) {
        const Tensor block = row(x, r, g * 32, 32);
        const BlockRange range = block_range(block.view(), Granularity::per_tensor());
        std::vector<double> errors;
        std::vector<double> scales;
        for (int k = 0; k <= 20; ++k) {
          const auto ratio = static_cast<float>(1.0 - 0.02 * k);
          const Tensor lo = Tensor::full({1}, static_cast<float>(range.min.get(0)) * ratio);
          const Tensor hi = Tensor::full({1}, static_cast<float>(range.max.get(0)) * ratio);
          const QParams candidate = choose_qparams(lo.view(), hi.view(), plain);
          errors.push_back(squared_error(block, fake_quantize(block.view(), candidate)));
          scales.push_back(candidate.scale.get(0));
        }
        std::size_t best = 0;
        for (std::size_t k = 1; k < errors.size(); ++k) {
          if (errors[k] < errors[best]) best = k;
        }
        const std::size_t b = static_cast<std::size_t>(r * 4 + g);
        const double kept = chosen.scale.get(static_cast<std::int64_t>(b));
        // Candidates whose errors differ by float rounding only may swap.
        const bool clear = std::all_of(errors.begin(), errors.end(), [&](double e) {
          return e == errors[best] || e > errors[best] * (1 + 1e-5);
        });
        if (clear) {
          EXPECT_EQ(kept, scales[best]) << name(mapping) << " block " << b;
        }
        const Tensor searched_block = row(fake_quantize(x.view(), chosen), r, g * 32, 32);
        EXPECT_LE(squared_error(block, searched_block), errors[0] * (1 + 1e-6)) << b;
        improved += best != 0;
      }
    }
    EXPECT_GT(improved, 16) << name(mapping);  // outliers make clipping pay on many blocks
  }
}

class ScaleSearchTarget : public ForcedTarget {};

// The threaded per-block search (each candidate on the SIMD kernel) equals the
// reference's on every compiled target, per group and per channel, in every
// input dtype and thread count.
TEST_P(ScaleSearchTarget, FastPathEqualsTheReference) {
  for (ScalarType dtype : {ScalarType::float32, ScalarType::bfloat16, ScalarType::float16}) {
    const Tensor x = outlier_weights(24, 256, dtype, 11);
    for (const QuantSpec& spec : {searched(Mapping::symmetric, Granularity::per_group(32)),
                                  searched(Mapping::asymmetric, Granularity::per_group(128), 3),
                                  searched(Mapping::symmetric, Granularity::per_axis(0), 8)}) {
      const QParams reference = reference::choose_qparams(x.view(), spec);
      for (int threads : {1, 2}) {
        set_num_threads(threads);
        const auto fast = cpu::choose_qparams(x.view(), spec);
        ASSERT_TRUE(fast.has_value()) << spec.describe();
        EXPECT_EQ(fast->scale.to_vector(), reference.scale.to_vector()) << spec.describe();
        EXPECT_EQ(fast->zero_point.to_vector(), reference.zero_point.to_vector());
        EXPECT_EQ(fast->scale.dtype(), reference.scale.dtype());
      }
      const QuantizedTensor q = quantize(x.view(), spec);  // not fused: search first
      EXPECT_EQ(q.qparams().scale.to_vector(), reference.scale.to_vector());
    }
  }
}

// The fused candidate-error kernel equals the reference's quantize-dequantize
// and ordered sum (reference::block_squared_error), block by block, on every
// compiled target: every tail length around the 16 partial sums, each input
// dtype, with and without importance weights, several candidates per block.
TEST_P(ScaleSearchTarget, FusedCandidateErrorsEqualTheReference) {
  for (ScalarType dtype : {ScalarType::float32, ScalarType::bfloat16, ScalarType::float16}) {
    for (const QuantSpec& spec : {searched(Mapping::asymmetric, Granularity::per_group(32)),
                                  searched(Mapping::symmetric, Granularity::per_group(32), 3),
                                  searched(Mapping::symmetric, Granularity::per_axis(0), 8)}) {
      for (std::int64_t inner : {1, 5, 15, 16, 17, 31, 32, 33, 48, 100, 128}) {
        constexpr std::int64_t kBlocks = 3;
        const Tensor x = outlier_weights(kBlocks, inner, dtype, static_cast<unsigned>(inner));
        std::vector<float> values;
        for (double v : x.to_vector()) values.push_back(static_cast<float>(v));
        std::vector<float> weights(values.size());
        for (std::size_t i = 0; i < weights.size(); ++i) {
          weights[i] = static_cast<float>(0.25 + static_cast<double>(i % 7) * 1.5);
        }
        const auto scale_dtype = reference::scale_storage(spec, dtype);
        const auto zero_dtype = reference::zero_point_storage(spec, dtype);
        auto plan = reference::single_int_block_plan(spec, dtype, scale_dtype, zero_dtype, kBlocks);
        const reference::BlockChooser chooser(spec, dtype);
        for (int k : {0, 7, 20}) {
          std::vector<reference::ElementPlan> singles;
          for (std::int64_t b = 0; b < kBlocks; ++b) {
            const float* v = values.data() + b * inner;
            const auto [lo, hi] = std::minmax_element(v, v + inner);
            const auto trial = chooser.candidate(*lo, *hi, k, b);
            const float scale = reference::round_to(scale_dtype, trial.scale);
            reference::set_int_block(plan, b, scale, trial.zero_point);
            singles.push_back(
                reference::single_int_block_plan(spec, dtype, scale_dtype, zero_dtype));
            reference::set_int_block(singles.back(), 0, scale, trial.zero_point);
          }
          const cpu::BlockParams params{plan.reciprocal.data(), plan.scale.data(),
                                        plan.zero_point.data()};
          const auto ops = cpu::affine_ops(plan, dtype, dtype);
          for (const float* w :
               {static_cast<const float*>(nullptr), static_cast<const float*>(weights.data())}) {
            std::vector<float> errors(kBlocks, -1.0f);
            cpu::block_squared_errors(ops, values.data(), w, inner, kBlocks, params, errors.data());
            for (std::int64_t b = 0; b < kBlocks; ++b) {
              const float expected =
                  reference::block_squared_error(singles[b], values.data() + b * inner,
                                                 w == nullptr ? nullptr : w + b * inner, inner);
              ASSERT_EQ(errors[b], expected)
                  << spec.describe() << " " << name(dtype) << " inner " << inner << " block " << b
                  << " candidate " << k << (w ? " weighted" : "");
            }
          }
        }
      }
    }
  }
}

// The SIMD chooser with a clip ratio (the search's candidates) equals the scalar
// chooser's candidate plus set_int_block, bit for bit (signed zeros included),
// on every compiled target: ranges that are zero, signed zero, one-sided, tiny
// (the eps bound), huge (an infinite scale), tied in magnitude, and ordinary, in
// each compute dtype, stored scale dtype and mapping.
TEST_P(ScaleSearchTarget, SimdCandidatesEqualTheScalarFormulas) {
  const std::vector<std::pair<float, float>> ranges = {
      {0.0f, 0.0f},     {-0.0f, 0.0f},   {-0.0f, -0.0f},    {0.0f, 3.0f},      {-2.5f, 0.0f},
      {-1.0f, 1.0f},    {-0.3f, 0.7f},   {1e-30f, 2e-30f},  {-1e-40f, 1e-40f}, {-3e38f, 3e38f},
      {-7e4f, 6e4f},    {-0.11f, 0.09f}, {-5.0f, -1.0f},    {2.0f, 9.0f},      {-1e-3f, 4e-3f},
      {-60000.f, 1.0f}, {-0.02f, 0.5f},  {-2e-39f, 1e-39f}, {-0.25f, 0.25f}};
  for (ScalarType dtype : {ScalarType::float32, ScalarType::bfloat16, ScalarType::float16}) {
    for (Mapping mapping : {Mapping::asymmetric, Mapping::symmetric, Mapping::symmetric_signed}) {
      for (int bits : {2, 3, 4, 8}) {
        for (auto scale_dtype : std::vector<std::optional<ScaleDType>>{
                 std::nullopt, ScaleDType::bfloat16, ScaleDType::float16}) {
          for (auto domain :
               std::vector<std::optional<ZeroPointDomain>>{std::nullopt, ZeroPointDomain::none}) {
            if (domain && mapping == Mapping::asymmetric) continue;
            QuantSpec spec = searched(mapping, Granularity::per_group(32), bits);
            spec.scale_dtype = scale_dtype;
            spec.zero_point_domain = domain;
            const auto n = static_cast<std::int64_t>(ranges.size());
            std::vector<float> lo, hi;
            for (const auto& [l, h] : ranges) {  // the data's min / max are values of dtype
              lo.push_back(reference::round_to(dtype, l));
              hi.push_back(reference::round_to(dtype, h));
            }
            const auto sd = reference::scale_storage(spec, dtype);
            const auto zd = reference::zero_point_storage(spec, dtype);
            auto plan = reference::single_int_block_plan(spec, dtype, sd, zd, n);
            const reference::BlockChooser chooser(spec, dtype);
            for (int k : {0, 1, 10, 20}) {
              const cpu::AffineChooseOps ops{*cpu::kind_of(dtype),
                                             *cpu::kind_of(sd),
                                             mapping,
                                             chooser.eps(),
                                             static_cast<float>(plan.quant_min),
                                             static_cast<float>(plan.quant_max),
                                             reference::clip_ratio(k)};
              std::vector<float> got[5];
              for (auto& v : got) v.assign(static_cast<std::size_t>(n), -1.0f);
              cpu::choose_affine_blocks(
                  ops, lo.data(), hi.data(), n,
                  {got[0].data(), got[1].data(), got[2].data(), got[3].data(), got[4].data()});
              for (std::int64_t b = 0; b < n; ++b) {
                const auto t = chooser.candidate(lo[b], hi[b], k, b);
                reference::set_int_block(plan, b, reference::round_to(sd, t.scale), t.zero_point);
                const float want[5] = {t.scale, t.zero_point, t.minval, plan.scale[b],
                                       plan.reciprocal[b]};
                for (int a = 0; a < 5; ++a) {
                  ASSERT_EQ(std::memcmp(&got[a][b], &want[a], sizeof(float)), 0)
                      << spec.describe() << " in " << name(dtype) << " range [" << lo[b] << ", "
                      << hi[b] << "] candidate " << k << " output " << a << ": " << got[a][b]
                      << " vs " << want[a];
                }
              }
            }
          }
        }
      }
    }
  }
}

// Importance weights (one per column, as llama.cpp's imatrix): all ones is the
// unweighted search; the kept ratio has the least weighted error; the threaded
// path equals the reference.
TEST(ScaleSearch, ImportanceWeightsTheErrorOfEachColumn) {
  const Tensor x = outlier_weights(8, 64, ScalarType::float32, 5);
  const QuantSpec spec = searched(Mapping::asymmetric, Granularity::per_group(32));
  QuantSpec plain = spec;
  plain.scale_search = ScaleSearch::none;
  const Tensor ones = Tensor::full({64}, 1.0);
  EXPECT_EQ(choose_qparams(x.view(), spec, ones.view()).scale.to_vector(),
            choose_qparams(x.view(), spec).scale.to_vector());
  Tensor importance(ScalarType::float32, {64});
  std::vector<float> w(64);
  for (std::int64_t c = 0; c < 64; ++c) {
    w[c] = static_cast<float>(c % 7 == 0 ? 50.0 : 0.5 + 0.01 * static_cast<double>(c));
    importance.set(c, w[c]);
  }
  const QParams chosen = choose_qparams(x.view(), spec, importance.view());
  EXPECT_NE(chosen.scale.to_vector(), choose_qparams(x.view(), spec).scale.to_vector());
  for (std::int64_t r = 0; r < 8; ++r) {
    for (std::int64_t g = 0; g < 2; ++g) {
      const Tensor block = row(x, r, g * 32, 32);
      const BlockRange range = block_range(block.view(), Granularity::per_tensor());
      double least = 0;
      double kept_error = -1;
      for (int k = 0; k <= 20; ++k) {
        const auto ratio = static_cast<float>(1.0 - 0.02 * k);
        const Tensor lo = Tensor::full({1}, static_cast<float>(range.min.get(0)) * ratio);
        const Tensor hi = Tensor::full({1}, static_cast<float>(range.max.get(0)) * ratio);
        const QParams candidate = choose_qparams(lo.view(), hi.view(), plain);
        const Tensor y = fake_quantize(block.view(), candidate);
        double error = 0;
        for (std::int64_t i = 0; i < 32; ++i) {
          const double d = block.get(i) - y.get(i);
          error += d * d * w[g * 32 + i];
        }
        if (k == 0 || error < least) least = error;
        if (candidate.scale.get(0) == chosen.scale.get(r * 2 + g) &&
            candidate.zero_point.get(0) == chosen.zero_point.get(r * 2 + g)) {
          kept_error = error;
        }
      }
      ASSERT_GE(kept_error, 0) << "the kept qparams are one of the candidates";
      EXPECT_LE(kept_error, least * (1 + 1e-5)) << r << " " << g;
    }
  }
  const Tensor reference_qparams_input = x.to(ScalarType::bfloat16);
  std::vector<float> weights_vector(w.begin(), w.end());
  const auto fast = cpu::choose_qparams(reference_qparams_input.view(), spec, weights_vector);
  ASSERT_TRUE(fast.has_value());
  EXPECT_EQ(fast->scale.to_vector(),
            reference::choose_qparams(reference_qparams_input.view(), spec, weights_vector)
                .scale.to_vector());
  EXPECT_NE(error_of([&] {
              choose_qparams(x.view(), plain, importance.view());
            }).find("does not search its scales"),
            std::string::npos);
  const Tensor short_importance = Tensor::full({63}, 1.0);
  EXPECT_NE(error_of([&] {
              choose_qparams(x.view(), spec, short_importance.view());
            }).find("one value per column"),
            std::string::npos);
  importance.set(3, -1.0);
  EXPECT_NE(error_of([&] {
              choose_qparams(x.view(), spec, importance.view());
            }).find("must be finite and >= 0"),
            std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(AllCompiledTargets, ScaleSearchTarget,
                         ::testing::ValuesIn(available_targets()),
                         [](const auto& test_info) { return std::string(test_info.param.name); });

TEST(ScaleSearch, ConstantAndZeroBlocksKeepTheirRoundingScale) {
  const Tensor x = Tensor::from_values(std::vector<double>(64, 0.25), {2, 32});
  const QuantSpec spec = searched(Mapping::symmetric, Granularity::per_group(32));
  QuantSpec plain = spec;
  plain.scale_search = ScaleSearch::none;
  EXPECT_EQ(choose_qparams(x.view(), spec).scale.to_vector(),
            choose_qparams(x.view(), plain).scale.to_vector());
  const Tensor zeros = Tensor::from_values(std::vector<double>(32, 0.0), {1, 32});
  EXPECT_EQ(choose_qparams(zeros.view(), spec).scale.to_vector(),
            choose_qparams(zeros.view(), plain).scale.to_vector());
}

TEST(ScaleSearch, SpecsItDoesNotApplyToAreRefusedByName) {
  const QuantSpec fp8{.dtype = QuantDType::fp8_e4m3fn(), .scale_search = ScaleSearch::mse};
  EXPECT_NE(error_of([&] { fp8.validate(); }).find("is for integer formats"), std::string::npos);
  const QuantSpec stretched{.dtype = QuantDType::int_(2),
                            .mapping = Mapping::stretched,
                            .granularity = Granularity::per_group(32),
                            .scale_search = ScaleSearch::mse};
  EXPECT_NE(error_of([&] {
              stretched.validate();
            }).find("needs the symmetric, symmetric_signed or asymmetric"),
            std::string::npos);
  const QuantSpec spec = searched(Mapping::symmetric, Granularity::per_tensor());
  const Tensor range = Tensor::from_values({1.0});
  EXPECT_NE(
      error_of([&] { choose_qparams(range.view(), range.view(), spec); }).find("needs the data"),
      std::string::npos);
  EXPECT_EQ(QuantSpec::from_text(spec.to_text()), spec);
  EXPECT_NE(spec.to_text().find(";scale_search=mse"), std::string::npos);
}

}  // namespace
}  // namespace quantkit
