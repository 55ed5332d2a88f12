// Golden vectors computed by torch / torchao (tests/golden/make_golden.py):
// parity is checked by the C++ suite even where Python is absent.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "quantkit/ops.hpp"
#include "quantkit/torch_core.hpp"

namespace quantkit {
namespace {

using nlohmann::json;

json load_golden() {
  std::ifstream in(QUANTKIT_GOLDEN_FILE);
  EXPECT_TRUE(in.good()) << "cannot open " << QUANTKIT_GOLDEN_FILE;
  return json::parse(in);
}

Tensor tensor_from(const json& j) {
  const ScalarType dtype = scalar_type_from_name(j.at("dtype").get<std::string>());
  Tensor out(dtype, j.at("shape").get<Shape>());
  const auto bits = j.at("bits").get<std::vector<std::uint32_t>>();
  auto* bytes = static_cast<unsigned char*>(out.raw_data());
  for (std::size_t i = 0; i < bits.size(); ++i) {
    if (element_size(dtype) == 4) {
      std::memcpy(bytes + 4 * i, &bits[i], 4);
    } else {
      const auto half = static_cast<std::uint16_t>(bits[i]);
      std::memcpy(bytes + 2 * i, &half, 2);
    }
  }
  return out;
}

Granularity granularity_from(const json& j) {
  const auto kind = j.at(0).get<std::string>();
  if (kind == "per_axis") return Granularity::per_axis(j.at(1).get<std::int64_t>());
  if (kind == "per_group") return Granularity::per_group(j.at(1).get<std::int64_t>());
  if (kind == "per_token") return Granularity::per_token();
  return Granularity::per_tensor();
}

QuantSpec spec_from(const json& j) {
  QuantSpec spec{.dtype = QuantDType::from_name(j.at("dtype").get<std::string>()),
                 .mapping = mapping_from_name(j.at("mapping").get<std::string>()),
                 .granularity = granularity_from(j.at("granularity"))};
  if (j.contains("zero_point_domain")) {
    spec.zero_point_domain = zero_point_domain_from_name(j["zero_point_domain"].get<std::string>());
  }
  if (j.contains("scale_dtype"))
    spec.scale_dtype = scale_dtype_from_name(j["scale_dtype"].get<std::string>());
  if (j.value("e8m0_rounding", "floor") == "rceil") spec.e8m0_rounding = E8M0Rounding::rceil;
  return spec;
}

TEST(Golden, RecordsItsProvenance) {
  const json golden = load_golden();
  EXPECT_EQ(golden.at("torch").get<std::string>().rfind("2.13.0", 0), 0u);
  EXPECT_GE(golden.at("cases").size(), 30u);
}

TEST(Golden, QuantizationMatchesTorchao) {
  int checked = 0;
  const json golden = load_golden();
  for (const auto& c : golden.at("cases")) {
    if (c.contains("op")) continue;
    const QuantSpec spec = spec_from(c.at("spec"));
    SCOPED_TRACE(spec.describe() + " " + c.at("input").at("dtype").get<std::string>());
    const Tensor x = tensor_from(c.at("input"));
    const QParams qp = choose_qparams(x, spec);
    const Tensor expected_scale = tensor_from(c.at("scale"));
    EXPECT_TRUE(bitwise_equal(qp.scale.reshape({qp.scale.numel()}), expected_scale));
    if (!c.at("zero_point").is_null()) {
      const auto zp = c.at("zero_point").get<std::vector<double>>();
      EXPECT_EQ(qp.zero_point.to_vector(), zp);
    }
    const auto codes = quantize(x, qp).code_values();
    EXPECT_EQ(codes, c.at("codes").get<std::vector<std::int32_t>>());
    if (!c.at("fake_quantized").is_null()) {
      EXPECT_TRUE(bitwise_equal(fake_quantize(x, qp), tensor_from(c.at("fake_quantized"))));
    }
    ++checked;
  }
  EXPECT_GE(checked, 30);
}

TEST(Golden, TorchCoreFakeQuantize) {
  int checked = 0;
  const json golden = load_golden();
  for (const auto& c : golden.at("cases")) {
    if (c.value("op", "") != "torch_core_per_tensor") continue;
    const Tensor x = tensor_from(c.at("input"));
    const Tensor y = torch_core::fake_quantize_per_tensor_affine(
        x, c.at("scale").get<float>(), c.at("zero_point").get<std::int64_t>(),
        {c.at("quant_min").get<std::int64_t>(), c.at("quant_max").get<std::int64_t>()});
    EXPECT_TRUE(bitwise_equal(y, tensor_from(c.at("output")))) << c.at("input").at("dtype");
    ++checked;
  }
  EXPECT_EQ(checked, 3);
}

}  // namespace
}  // namespace quantkit
