// Every invalid input is rejected with a message naming argument, value and rule.
#include <gtest/gtest.h>

#include "error_of.hpp"

#include <cmath>
#include <string>

#include "quantkit/error.hpp"
#include "quantkit/ops.hpp"

namespace quantkit {
namespace {

using quantkit::testing::error_of;

TEST(Errors, FormatsAndRanges) {
  EXPECT_EQ(error_of([] { QuantDType::int_(9); }),
            "bits 9 is out of range: integer formats have 1..8 bits");
  EXPECT_EQ(error_of([] { QuantDType::uint(0); }),
            "bits 0 is out of range: integer formats have 1..8 bits");
  EXPECT_EQ(error_of([] { QuantDType::int_(8).with_range(5, 3); }),
            "quant_min 5 must not exceed quant_max 3");
  EXPECT_EQ(error_of([] { QuantDType::int_(4).with_range(-9, 7); }),
            "range [-9, 7] does not fit in int4 whose range is [-8, 7]");
}

TEST(Errors, NanInDataNamesTheFirstIndex) {
  const auto x = Tensor::from_values({1.0, 2.0, 3.0, NAN, INFINITY, 6.0}, Shape{2, 3});
  EXPECT_EQ(error_of([&] { choose_qparams(x, {.dtype = QuantDType::int_(8)}); }),
            "x holds nan at flat index 3 (index [1, 0]); choose_qparams needs finite data (a NaN "
            "or Inf scale would poison the model)");
  const auto inf = Tensor::from_values({1.0, -INFINITY});
  EXPECT_NE(error_of([&] {
              choose_qparams(inf, {.dtype = QuantDType::int_(8)});
            }).find("-inf at flat index 1"),
            std::string::npos);
  EXPECT_NE(error_of([] {
              choose_qparams(Tensor::from_values({NAN}), Tensor::from_values({1.0}),
                             {.dtype = QuantDType::int_(8)});
            }).find("min_val holds nan"),
            std::string::npos);
  EXPECT_NE(error_of([] {
              choose_qparams(Tensor::from_values({2.0}), Tensor::from_values({1.0}),
                             {.dtype = QuantDType::int_(8)});
            }).find("min_val 2 exceeds max_val 1"),
            std::string::npos);
}

TEST(Errors, UserGivenQParams) {
  const QuantSpec spec{.dtype = QuantDType::uint(8), .mapping = Mapping::asymmetric};
  const auto zp = Tensor::from_values({0}, ScalarType::int32);
  EXPECT_EQ(error_of([&] { QParams::make(spec, Tensor::from_values({0.0}), zp); }),
            "scale 0 at flat index 0 (index [0]) must be finite and > 0");
  EXPECT_EQ(error_of([&] { QParams::make(spec, Tensor::from_values({-1.0}), zp); }),
            "scale -1 at flat index 0 (index [0]) must be finite and > 0");
  EXPECT_EQ(error_of([&] { QParams::make(spec, Tensor::from_values({NAN}), zp); }),
            "scale nan at flat index 0 (index [0]) must be finite and > 0");
  // Symmetric integer scales may be negative (llama.cpp's Q4_0 rule), never zero.
  const QuantSpec symmetric{.dtype = QuantDType::int_(4), .mapping = Mapping::symmetric_signed};
  const auto zero = Tensor::from_values({0}, ScalarType::int32);
  EXPECT_EQ(QParams::make(symmetric, Tensor::from_values({-0.5}), zero).scale.get(0), -0.5);
  EXPECT_EQ(error_of([&] { QParams::make(symmetric, Tensor::from_values({0.0}), zero); }),
            "scale 0 at flat index 0 (index [0]) must be finite and nonzero");
  EXPECT_EQ(error_of([&] {
              QParams::make(spec, Tensor::from_values({1.0}),
                            Tensor::from_values({256}, ScalarType::int32));
            }),
            "zero_point 256 at flat index 0 (index [0]) must be an integer in [quant_min, "
            "quant_max] = [0, 255]");
  EXPECT_NE(error_of([&] {
              QParams::make(spec, Tensor::from_values({1.0}));
            }).find("zero_point is missing: uint8 asymmetric"),
            std::string::npos);
}

TEST(Errors, ShapesAndDtypes) {
  const QuantSpec spec{.dtype = QuantDType::int_(8), .granularity = Granularity::per_axis(0)};
  const auto qp = choose_qparams(Tensor::from_values({1, 2, 3, 4}, Shape{2, 2}), spec);
  EXPECT_EQ(error_of([&] {
              quantize(Tensor::from_values({1, 2, 3}, Shape{3, 1}), qp);
            }),
            "scale of shape [2, 1] does not match the per_axis(0) grid [3, 1] of an input of shape "
            "[3, 1]");
  EXPECT_EQ(error_of([&] {
              quantize(Tensor::from_values({1.0, 2.0}, Shape{2}, ScalarType::float64), qp);
            }),
            "x has dtype float64; expected float32, bfloat16 or float16");
  EXPECT_EQ(error_of([&] {
              fake_quantize_backward(Tensor::from_values({1, 2, 3, 4}, Shape{2, 2}),
                                     Tensor::from_values({1.0}), qp);
            }),
            "grad_output of shape [1] must match x of shape [2, 2]");
  EXPECT_EQ(
      error_of([&] {
        dequantize(quantize(Tensor::from_values({1, 2, 3, 4}, Shape{2, 2}), qp), ScalarType::int8);
      }),
      "output_dtype has dtype int8; expected float32, bfloat16 or float16");
  EXPECT_EQ(error_of([] {
              choose_qparams(
                  Tensor::from_values({1, 2, 3}, Shape{3}),
                  {.dtype = QuantDType::int_(4), .granularity = Granularity::per_group(2)});
            }),
            "group_size 2 does not divide axis 0 of length 3 (shape [3])");
}

TEST(Errors, SpecCombinationsNameTheRule) {
  EXPECT_EQ(error_of([] {
              QuantSpec{.dtype = QuantDType::int_(8),
                        .mapping = Mapping::asymmetric,
                        .zero_point_domain = ZeroPointDomain::none}
                  .validate();
            }),
            "mapping asymmetric needs a zero point: use zero_point_domain int or float, not none");
  EXPECT_EQ(error_of([] { QuantSpec{.dtype = QuantDType::int_(8), .eps = -1.0}.validate(); }),
            "eps -1 must be finite and > 0");
}

TEST(Errors, ScaleOverflowInHalfPrecisionIsRefused) {
  // float16: 60000 - (-60000) = 120000 overflows to Inf, so the scale would be Inf.
  const auto x = Tensor::from_values({-60000.0, 60000.0}, ScalarType::float16);
  EXPECT_EQ(
      error_of([&] {
        choose_qparams(x, {.dtype = QuantDType::uint(8), .mapping = Mapping::asymmetric});
      }),
      "the scale of block 0 overflows float16 (its range exceeds the largest float16); compute "
      "qparams from a float32 copy of the data");
  EXPECT_NO_THROW(choose_qparams(x.to(ScalarType::float32),
                                 {.dtype = QuantDType::uint(8), .mapping = Mapping::asymmetric}));
}

}  // namespace
}  // namespace quantkit
