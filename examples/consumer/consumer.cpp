#include <cstdio>
#include <quantkit/quantkit.hpp>

int main() {
  namespace qk = quantkit;
  const auto x = qk::Tensor::from_values({-1.5, 0.25, 0.8, 3.0}, qk::Shape{2, 2});
  const qk::QuantSpec spec{.dtype = qk::QuantDType::int_(4),
                           .mapping = qk::Mapping::asymmetric,
                           .granularity = qk::Granularity::per_axis(0)};
  const qk::QParams qparams = qk::choose_qparams(x, spec);
  const qk::Tensor y =
      qk::dequantize(qk::quantize(x, qparams));  // == qk::fake_quantize(x, qparams)
  std::printf("%s\n", qk::format_report(qk::error_report(x, y), spec.describe()).c_str());
}
