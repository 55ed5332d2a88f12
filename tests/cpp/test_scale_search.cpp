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
#include <string>
#include <vector>

#include "cpu/fast_path.hpp"
#include "forced_target.hpp"
#include "quantkit/ops.hpp"
#include "quantkit/threading.hpp"
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
  EXPECT_NE(error_of([&] { stretched.validate(); }).find("needs the symmetric or asymmetric"),
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
