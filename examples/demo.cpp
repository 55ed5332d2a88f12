// quantkit demo: quantizes one weight-like tensor several ways and prints the
// error of each. The tensor is generated (seeded), so no download is needed.
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "quantkit/quantkit.hpp"

namespace qk = quantkit;

namespace {

// A 256 x 512 "linear layer weight": Gaussian values with a few large
// outliers per row, the distribution that makes low-bit quantization hard.
qk::Tensor make_weight(qk::ScalarType dtype) {
  const qk::Shape shape{256, 512};
  std::mt19937 rng(2024);
  std::normal_distribution<double> normal(0.0, 0.02);
  std::vector<double> values(static_cast<std::size_t>(qk::numel(shape)));
  for (std::size_t i = 0; i < values.size(); ++i) {
    values[i] = normal(rng) * ((i % 509 == 0) ? 12.0 : 1.0);
  }
  return qk::Tensor::from_values(values, shape, dtype);
}

struct Recipe {
  std::string label;
  qk::QuantSpec spec;
};

}  // namespace

int main() {
  const std::vector<Recipe> recipes = {
      {"int8 per-tensor symmetric", {.dtype = qk::QuantDType::int_(8)}},
      {"int8 per-channel symmetric",
       {.dtype = qk::QuantDType::int_(8), .granularity = qk::Granularity::per_axis(0)}},
      {"int4 group-128 asymmetric",
       {.dtype = qk::QuantDType::int_(4),
        .mapping = qk::Mapping::asymmetric,
        .granularity = qk::Granularity::per_group(128)}},
      {"uint4 group-128 tinygemm",
       {.dtype = qk::QuantDType::uint(4),
        .mapping = qk::Mapping::asymmetric,
        .granularity = qk::Granularity::per_group(128),
        .zero_point_domain = qk::ZeroPointDomain::float_}},
      {"stretched int2 group-64",
       {.dtype = qk::QuantDType::int_(2),
        .mapping = qk::Mapping::stretched,
        .granularity = qk::Granularity::per_group(64)}},
      {"fp8 e4m3 per-row",
       {.dtype = qk::QuantDType::fp8_e4m3fn(), .granularity = qk::Granularity::per_axis(0)}},
      {"mxfp4 (e8m0, block 32)",
       {.dtype = qk::QuantDType::fp4_e2m1(),
        .granularity = qk::Granularity::per_group(32),
        .scale_dtype = qk::ScaleDType::e8m0}},
      {"nvfp4 (e4m3, block 16)",
       {.dtype = qk::QuantDType::fp4_e2m1(),
        .granularity = qk::Granularity::per_group(16),
        .scale_dtype = qk::ScaleDType::fp8_e4m3fn}},
  };

  for (const auto dtype : {qk::ScalarType::float32, qk::ScalarType::bfloat16}) {
    const qk::Tensor weight = make_weight(dtype);
    std::printf("\nquantkit demo: weight %s %s (%lld values)\n",
                qk::to_string(weight.shape()).c_str(), std::string(qk::name(dtype)).c_str(),
                static_cast<long long>(weight.numel()));
    std::printf("%-28s %9s %12s %12s %9s %9s %10s\n", "recipe", "bytes", "mean|diff|", "max|diff|",
                "SQNR dB", "PEIR %", "cosine");
    for (const auto& recipe : recipes) {
      const qk::QParams qparams = qk::choose_qparams(weight, recipe.spec);
      const qk::QuantizedTensor q = qk::quantize(weight, qparams);
      const qk::Tensor restored = qk::dequantize(q, dtype);
      // The QAT promise: fake quantization equals the quantize/dequantize round trip.
      if (!qk::bitwise_equal(restored, qk::fake_quantize(weight, qparams))) {
        std::fprintf(stderr, "%s: fake_quantize differs from dequantize(quantize)\n",
                     recipe.label.c_str());
        return 1;
      }
      const auto report = qk::error_report(weight, restored);
      const auto bytes = q.packed().size() + qparams.scale.nbytes() + qparams.zero_point.nbytes();
      std::printf("%-28s %9zu %12.3e %12.3e %9.2f %9.4f %10.6f\n", recipe.label.c_str(), bytes,
                  report.mean_abs_diff, report.max_abs_diff, report.sqnr_db, report.peir * 100,
                  report.cosine);
    }
  }
  return 0;
}
