// Every public enum is spelled by one table: each value's name parses back to
// it, aliases parse but are never produced, and an unknown spelling is an
// Error naming the argument, the text and every choice.
#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "quantkit/error.hpp"
#include "quantkit/observers.hpp"
#include "quantkit/ops.hpp"
#include "quantkit/quant_spec.hpp"

namespace quantkit {
namespace {

template <typename Enum, typename Parse>
void expect_round_trip(std::initializer_list<Enum> values, Parse parse) {
  for (Enum value : values) {
    const std::string text(name(value));
    EXPECT_NE(text, "?");
    EXPECT_EQ(parse(text), value) << text;
  }
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(EnumNames, EveryValueRoundTrips) {
  expect_round_trip({Mapping::symmetric, Mapping::symmetric_no_clipping_err, Mapping::asymmetric,
                     Mapping::stretched},
                    mapping_from_name);
  expect_round_trip({ZeroPointDomain::int_, ZeroPointDomain::float_, ZeroPointDomain::none},
                    zero_point_domain_from_name);
  expect_round_trip({ScaleDType::float32, ScaleDType::bfloat16, ScaleDType::float16,
                     ScaleDType::e8m0, ScaleDType::fp8_e4m3fn},
                    scale_dtype_from_name);
  expect_round_trip({E8M0Rounding::floor, E8M0Rounding::rceil}, e8m0_rounding_from_name);
  expect_round_trip({Convention::torchao, Convention::torch_core}, convention_from_name);
  expect_round_trip({HistogramMethod::torch_l2, HistogramMethod::entropy,
                     HistogramMethod::percentile, HistogramMethod::mse},
                    histogram_method_from_name);
}

// The NVFP4 block scale and the FP8 element format are one encoding, so one
// name; the older scale spelling still parses (saved observer states hold it).
TEST(EnumNames, OneEncodingOneNameAndTheOldSpellingStillParses) {
  EXPECT_EQ(name(ScaleDType::fp8_e4m3fn), QuantDType::fp8_e4m3fn().name());
  EXPECT_EQ(scale_dtype_from_name("fp8_e4m3"), ScaleDType::fp8_e4m3fn);
  const QuantSpec spec{.dtype = QuantDType::fp4_e2m1(),
                       .granularity = Granularity::per_group(16),
                       .scale_dtype = ScaleDType::fp8_e4m3fn};
  std::string old_text = spec.to_text();
  old_text.replace(old_text.find("fp8_e4m3fn"), 10, "fp8_e4m3");
  EXPECT_EQ(QuantSpec::from_text(old_text), spec);
}

TEST(EnumNames, UnknownSpellingsNameTheArgumentAndTheChoices) {
  EXPECT_EQ(error_of([] { scale_dtype_from_name("fp8"); }),
            "scale_dtype 'fp8' is unknown; expected one of float32, bfloat16, float16, e8m0, "
            "fp8_e4m3fn");
  EXPECT_EQ(error_of([] { e8m0_rounding_from_name("ceil"); }),
            "e8m0_rounding 'ceil' is unknown; expected one of floor, rceil");
  EXPECT_EQ(error_of([] { histogram_method_from_name("l2"); }),
            "histogram method 'l2' is unknown; expected one of torch_l2, entropy, percentile, mse");
}

TEST(EnumNames, GranularityKindsAreTheFactoryNames) {
  EXPECT_EQ(Granularity::kind_name(Granularity::per_tensor().kind()), "per_tensor");
  EXPECT_EQ(Granularity::kind_name(Granularity::per_axis(0).kind()), "per_axis");
  EXPECT_EQ(Granularity::kind_name(Granularity::per_group(8).kind()), "per_group");
  EXPECT_EQ(Granularity::kind_name(Granularity::per_block({2, 2}).kind()), "per_block");
  EXPECT_EQ(Granularity::kind_name(Granularity::per_token().kind()), "per_token");
}

}  // namespace
}  // namespace quantkit
