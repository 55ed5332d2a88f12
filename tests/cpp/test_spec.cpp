#include <gtest/gtest.h>

#include "quantkit/error.hpp"
#include "quantkit/granularity.hpp"
#include "quantkit/quant_spec.hpp"

namespace quantkit {
namespace {

TEST(QuantDType, IntegerRangesAndNames) {
  EXPECT_EQ(QuantDType::int_(4).quant_min(), -8);
  EXPECT_EQ(QuantDType::int_(4).quant_max(), 7);
  EXPECT_EQ(QuantDType::uint(4).quant_max(), 15);
  EXPECT_EQ(QuantDType::int_(1).quant_min(), -1);
  EXPECT_EQ(QuantDType::int_(1).quant_max(), 0);
  EXPECT_EQ(QuantDType::int_(5).name(), "int5");
  EXPECT_EQ(QuantDType::int_(8).with_range(-127, 127).name(), "int8[-127,127]");
  EXPECT_EQ(QuantDType::from_name("uint3"), QuantDType::uint(3));
  EXPECT_EQ(QuantDType::from_name("fp4_e2m1"), QuantDType::fp4_e2m1());
  EXPECT_EQ(QuantDType::fp8_e4m3fn().quant_max(), 448);
  EXPECT_EQ(QuantDType::fp6_e3m2().bits(), 6);
  for (const char* bad : {"int0", "int9", "uint", "int4x", "fp8", "float"}) {
    EXPECT_THROW(QuantDType::from_name(bad), Error) << bad;
  }
}

TEST(Granularity, BlockSizesFollowTorchao) {
  const Shape x{4, 6, 8};
  EXPECT_EQ(Granularity::per_tensor().block_size(x), x);
  EXPECT_EQ(Granularity::per_axis(1).block_size(x), (Shape{4, 1, 8}));
  EXPECT_EQ(Granularity::per_axis(-1).block_size(x), (Shape{4, 6, 1}));
  EXPECT_EQ(Granularity::per_group(4).block_size(x), (Shape{1, 1, 4}));
  EXPECT_EQ(Granularity::per_group(3, 1).block_size(x), (Shape{1, 3, 1}));
  EXPECT_EQ(Granularity::per_token().block_size(x), (Shape{1, 1, 8}));
  EXPECT_EQ(Granularity::per_block({2, 4}).block_size(x), (Shape{1, 2, 4}));
  // torchao's docstring example: block (3,3,2,10) on (3,3,10,10) -> grid (1,1,5,1).
  const Shape y{3, 3, 10, 10};
  const Shape block = Granularity::per_block({3, 3, 2, 10}).block_size(y);
  EXPECT_EQ(block_grid_shape(y, block), (Shape{1, 1, 5, 1}));
}

TEST(Granularity, RejectsShapesItDoesNotFit) {
  try {
    Granularity::per_group(100).block_size({8, 4096});
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(),
                 "group_size 100 does not divide axis 1 of length 4096 (shape [8, 4096])");
  }
  EXPECT_THROW(Granularity::per_axis(3).block_size({2, 2}), Error);
  EXPECT_THROW(Granularity::per_axis(-3).block_size({2, 2}), Error);
  EXPECT_THROW(Granularity::per_block({2, 2, 2}).block_size({4, 4}), Error);  // rank mismatch
  EXPECT_THROW(Granularity::per_block({3}).block_size({4, 4}), Error);
  EXPECT_THROW(Granularity::per_group(0), Error);
}

TEST(QuantSpec, ValidatesCombinations) {
  QuantSpec ok{.dtype = QuantDType::int_(4), .mapping = Mapping::asymmetric};
  EXPECT_NO_THROW(ok.validate());
  EXPECT_EQ(ok.resolved_zero_point_domain(), ZeroPointDomain::int_);
  const QuantSpec fp8{.dtype = QuantDType::fp8_e4m3fn()};
  EXPECT_EQ(fp8.resolved_zero_point_domain(), ZeroPointDomain::none);
  EXPECT_NO_THROW(fp8.validate());

  const QuantSpec bad[] = {
      {.dtype = QuantDType::int_(8),
       .mapping = Mapping::asymmetric,
       .zero_point_domain = ZeroPointDomain::none},
      {.dtype = QuantDType::uint(8), .mapping = Mapping::symmetric_no_clipping_err},
      {.dtype = QuantDType::fp4_e2m1(), .mapping = Mapping::asymmetric},
      {.dtype = QuantDType::uint(2), .mapping = Mapping::stretched},
      {.dtype = QuantDType::int_(8), .scale_dtype = ScaleDType::e8m0},
      {.dtype = QuantDType::int_(8), .eps = 0.0},
      {.dtype = QuantDType::int_(8),
       .mapping = Mapping::symmetric,
       .zero_point_domain = ZeroPointDomain::float_},
  };
  for (const auto& spec : bad) EXPECT_THROW(spec.validate(), Error) << spec.describe();
}

TEST(QuantSpec, NamesParse) {
  EXPECT_EQ(mapping_from_name("symmetric_no_clipping_err"), Mapping::symmetric_no_clipping_err);
  EXPECT_EQ(zero_point_domain_from_name("float"), ZeroPointDomain::float_);
  EXPECT_EQ(scale_dtype_from_name("e8m0"), ScaleDType::e8m0);
  EXPECT_THROW(mapping_from_name("sym"), Error);
  const QuantSpec spec{.dtype = QuantDType::int_(4),
                       .mapping = Mapping::asymmetric,
                       .granularity = Granularity::per_group(128)};
  EXPECT_EQ(spec.describe(), "int4 asymmetric per_group(128, axis=-1) zero_point=int");
}

}  // namespace
}  // namespace quantkit
