// QuantSpec::scale_search = hqq: half-quadratic refinement per block. The
// threaded path equals the reference on every thread count and dtype; under an
// integer zero point it never does worse than the MSE clipping search it
// starts from; under tinygemm's float zero point it beats plain min-max
// rounding on weights with outliers. (Parity with torchao's HQQ, an
// independent implementation, is tested from Python.)
#include <gtest/gtest.h>

#include "error_of.hpp"
#include "outlier_weights.hpp"

#include <cmath>
#include <vector>

#include "cpu/fast_path.hpp"
#include "quantkit/ops.hpp"
#include "quantkit/threading.hpp"
#include "reference/reference_ops.hpp"

namespace quantkit {
namespace {

using quantkit::testing::error_of;
using quantkit::testing::outlier_weights;

QuantSpec hqq_int(std::int64_t group) {
  return {.dtype = QuantDType::int_(4),
          .mapping = Mapping::asymmetric,
          .granularity = Granularity::per_group(group),
          .scale_search = ScaleSearch::hqq};
}

QuantSpec hqq_float(std::int64_t group) {  // tinygemm's layout, as torchao's int4 HQQ writes it
  return {.dtype = QuantDType::uint(4),
          .mapping = Mapping::asymmetric,
          .granularity = Granularity::per_group(group),
          .zero_point_domain = ZeroPointDomain::float_,
          .scale_search = ScaleSearch::hqq};
}

QuantSpec with_search(QuantSpec spec, ScaleSearch search) {
  spec.scale_search = search;
  return spec;
}

// Squared error of each group of `group` elements.
std::vector<double> group_errors(const Tensor& x, const Tensor& y, std::int64_t group) {
  std::vector<double> errors(static_cast<std::size_t>(x.numel() / group), 0.0);
  for (std::int64_t i = 0; i < x.numel(); ++i) {
    const double d = x.get(i) - y.get(i);
    errors[i / group] += d * d;
  }
  return errors;
}

double sqnr_db(const Tensor& x, const Tensor& y) {
  double signal = 0, noise = 0;
  for (std::int64_t i = 0; i < x.numel(); ++i) {
    signal += x.get(i) * x.get(i);
    noise += (x.get(i) - y.get(i)) * (x.get(i) - y.get(i));
  }
  return 10 * std::log10(signal / noise);
}

TEST(Hqq, ThreadedPathEqualsTheReference) {
  for (ScalarType dtype : {ScalarType::float32, ScalarType::bfloat16, ScalarType::float16}) {
    const Tensor x = outlier_weights(16, 256, dtype, 3);
    for (const QuantSpec& spec : {hqq_int(32), hqq_float(64), hqq_int(256)}) {
      const QParams reference = reference::choose_qparams(x.view(), spec);
      for (int threads : {1, 2}) {
        set_num_threads(threads);
        const auto fast = cpu::choose_qparams(x.view(), spec);
        ASSERT_TRUE(fast.has_value()) << spec.describe();
        EXPECT_EQ(fast->scale.to_vector(), reference.scale.to_vector()) << spec.describe();
        EXPECT_EQ(fast->zero_point.to_vector(), reference.zero_point.to_vector());
      }
      const Tensor importance = Tensor::full({256}, 1.0);
      EXPECT_EQ(choose_qparams(x.view(), spec, importance.view()).scale.to_vector(),
                reference.scale.to_vector());  // unit importance is the unweighted search
    }
  }
}

TEST(Hqq, UnderAnIntegerZeroPointItNeverLosesToTheMseSearch) {
  const Tensor x = outlier_weights(32, 256, ScalarType::float32, 5);
  const QuantSpec spec = hqq_int(32);
  const QuantSpec mse = with_search(spec, ScaleSearch::mse);
  const QParams refined = choose_qparams(x.view(), spec);
  const QParams searched = choose_qparams(x.view(), mse);
  EXPECT_EQ(refined.zero_point.to_vector(), searched.zero_point.to_vector());  // kept
  const auto ours = group_errors(x, fake_quantize(x.view(), refined), 32);
  const auto theirs = group_errors(x, fake_quantize(x.view(), searched), 32);
  int better = 0;
  for (std::size_t g = 0; g < ours.size(); ++g) {
    EXPECT_LE(ours[g], theirs[g]) << "group " << g;
    better += ours[g] < theirs[g];
  }
  EXPECT_GT(better, 8);
}

TEST(Hqq, UnderTinygemmsFloatZeroPointItBeatsMinMaxRounding) {
  const Tensor x = outlier_weights(32, 256, ScalarType::float32, 7);
  const QuantSpec spec = hqq_float(64);
  const QuantSpec plain = with_search(spec, ScaleSearch::none);
  const double refined = sqnr_db(x, fake_quantize(x.view(), choose_qparams(x.view(), spec)));
  const double rounded = sqnr_db(x, fake_quantize(x.view(), choose_qparams(x.view(), plain)));
  EXPECT_GT(refined, rounded + 0.2) << refined << " vs " << rounded;
  // the scale is HQQ's min-max one (1 / (15 / range): within two roundings)
  const QParams qp = choose_qparams(x.view(), spec);
  const QParams base = choose_qparams(x.view(), plain);
  for (std::int64_t b = 0; b < qp.scale.numel(); ++b) {
    EXPECT_NEAR(qp.scale.get(b), base.scale.get(b), 3e-7 * std::fabs(base.scale.get(b)));
  }
  const Tensor constant = Tensor::from_values(std::vector<double>(64, 0.25), {1, 64});
  EXPECT_EQ(choose_qparams(constant.view(), spec).zero_point.to_vector(),
            choose_qparams(constant.view(), plain).zero_point.to_vector());
}

TEST(Hqq, SpecsWithoutAZeroPointToRefineAreRefusedByName) {
  QuantSpec symmetric = hqq_int(32);
  symmetric.mapping = Mapping::symmetric;
  EXPECT_NE(error_of([&] { symmetric.validate(); }).find("scale_search hqq refines a zero point"),
            std::string::npos);
  QuantSpec no_zero = hqq_int(32);
  no_zero.zero_point_domain = ZeroPointDomain::none;
  EXPECT_NE(error_of([&] { no_zero.validate(); }).find("needs the asymmetric mapping"),
            std::string::npos);
  const QuantSpec spec = hqq_float(64);
  EXPECT_EQ(QuantSpec::from_text(spec.to_text()), spec);
  EXPECT_NE(spec.to_text().find(";scale_search=hqq"), std::string::npos);
}

}  // namespace
}  // namespace quantkit
