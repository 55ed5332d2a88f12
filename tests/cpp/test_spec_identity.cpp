// QuantSpec identity: == and to_text() see every field, so observers whose
// specs differ in any one field never merge or load each other's state.
#include <gtest/gtest.h>

#include "error_of.hpp"

#include <string>
#include <vector>

#include "quantkit/observers.hpp"
#include "quantkit/quant_spec.hpp"

namespace quantkit {
namespace {

struct Variant {
  std::string field;
  QuantSpec a;
  QuantSpec b;
};

std::vector<Variant> variants() {
  const QuantSpec int8{};
  const QuantSpec asym{.dtype = QuantDType::int_(4), .mapping = Mapping::asymmetric};
  const QuantSpec mx{.dtype = QuantDType::fp4_e2m1(),
                     .mapping = Mapping::symmetric,
                     .granularity = Granularity::per_group(32),
                     .scale_dtype = ScaleDType::e8m0};
  const QuantSpec nvfp4{.dtype = QuantDType::fp4_e2m1(),
                        .granularity = Granularity::per_group(16),
                        .scale_dtype = ScaleDType::fp8_e4m3fn};
  auto with = [](QuantSpec spec, auto change) {
    change(spec);
    return spec;
  };
  return {
      {"dtype", int8, with(int8, [](QuantSpec& s) { s.dtype = QuantDType::int_(4); })},
      {"dtype", int8, with(int8, [](QuantSpec& s) { s.dtype = s.dtype.with_range(-127, 127); })},
      {"mapping", asym, with(asym, [](QuantSpec& s) { s.mapping = Mapping::symmetric; })},
      {"granularity", int8,
       with(int8, [](QuantSpec& s) { s.granularity = Granularity::per_axis(0); })},
      {"zero_point_domain", asym,
       with(asym, [](QuantSpec& s) { s.zero_point_domain = ZeroPointDomain::float_; })},
      {"eps", int8, with(int8, [](QuantSpec& s) { s.eps = 1e-6; })},
      {"eps", with(int8, [](QuantSpec& s) { s.eps = 0.1; }),
       with(int8, [](QuantSpec& s) { s.eps = 0.1 + 1e-17 * 8; })},
      {"scale_dtype", int8, with(int8, [](QuantSpec& s) { s.scale_dtype = ScaleDType::bfloat16; })},
      {"zero_point_dtype", asym,
       with(asym, [](QuantSpec& s) { s.zero_point_dtype = ScalarType::int8; })},
      {"e8m0_rounding", mx, with(mx, [](QuantSpec& s) { s.e8m0_rounding = E8M0Rounding::rceil; })},
      {"global_scale", nvfp4, with(nvfp4, [](QuantSpec& s) { s.global_scale = true; })},
      {"scale_search", asym, with(asym, [](QuantSpec& s) { s.scale_search = ScaleSearch::mse; })},
  };
}

using quantkit::testing::error_of;

TEST(SpecIdentity, TextRoundTripsEveryField) {
  for (const auto& v : variants()) {
    for (const QuantSpec& spec : {v.a, v.b}) {
      SCOPED_TRACE(spec.to_text());
      spec.validate();
      EXPECT_EQ(QuantSpec::from_text(spec.to_text()), spec);
    }
    EXPECT_NE(v.a.to_text(), v.b.to_text()) << v.field;
  }
}

TEST(SpecIdentity, SpecsDifferingInOneFieldAreNotEqual) {
  for (const auto& v : variants()) {
    EXPECT_FALSE(v.a == v.b) << v.field;
    EXPECT_EQ(first_difference(v.a, v.b), v.field);
    EXPECT_EQ(first_difference(v.a, v.a), "");
  }
}

TEST(SpecIdentity, ObserversOfSpecsDifferingInOneFieldNeverMergeOrLoad) {
  const Tensor x = Tensor::from_values(std::vector<double>(64, 0.5), {2, 32});
  for (const auto& v : variants()) {
    SCOPED_TRACE(v.field);
    MinMaxObserver a(v.a), b(v.b);
    a.observe(x.view());
    b.observe(x.view());
    EXPECT_NE(error_of([&] { a.merge(b); }).find("they differ in " + v.field), std::string::npos);
    EXPECT_NE(error_of([&] { a.load_state(b.state()); }).find("they differ in " + v.field),
              std::string::npos);
    EXPECT_EQ(a.batches(), 1);
  }
}

TEST(SpecIdentity, MalformedTextNamesTheField) {
  EXPECT_NE(error_of([] { QuantSpec::from_text("dtype=int4"); }).find("expected the fields"),
            std::string::npos);
  EXPECT_NE(
      error_of([] {
        QuantSpec::from_text(
            "dtype=int4;mapping=asymmetric;granularity=per_group(x,-1);zero_point_domain=-;eps=-;"
            "scale_dtype=-;zero_point_dtype=-;e8m0_rounding=floor");
      }).find("'x' is not an integer"),
      std::string::npos);
  const std::string nvfp4 =
      "dtype=fp4_e2m1;mapping=symmetric;granularity=per_group(16,-1);zero_point_domain=-;eps=-;"
      "scale_dtype=fp8_e4m3fn;zero_point_dtype=-;e8m0_rounding=floor";
  EXPECT_FALSE(QuantSpec::from_text(nvfp4).global_scale);  // texts without the field still parse
  EXPECT_TRUE(QuantSpec::from_text(nvfp4 + ";global_scale=true").global_scale);
  EXPECT_NE(error_of([&] {
              QuantSpec::from_text(nvfp4 + ";global_scale=false");
            }).find("leave the field out"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              QuantSpec::from_text(nvfp4 + ";global_scale=true;x=1");
            }).find("expected the fields"),
            std::string::npos);
  EXPECT_NE(error_of([] {
              QuantSpec::from_text(
                  "dtype=int4;mapping=symmetric;granularity=per_tensor;zero_point_domain=-;eps=-;"
                  "scale_dtype=-;zero_point_dtype=-;e8m0_rounding=floor;global_scale=true");
            }).find("global_scale (two-level scaling) is only for"),
            std::string::npos);
}

}  // namespace
}  // namespace quantkit
