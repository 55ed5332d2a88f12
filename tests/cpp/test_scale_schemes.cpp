// The scale-scheme table: every row is reachable from a spec, its byte
// storage round-trips, the scales it chooses survive storage, and specs the
// table does not cover are refused by name. The SIMD-vs-reference identity of
// every row is in test_minifloat_fast_path.cpp.
#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include <string>
#include <utility>

#include "quantkit/error.hpp"
#include "quantkit/ops.hpp"
#include "quantkit/scale_scheme.hpp"

namespace quantkit {
namespace {

QuantSpec spec_of(const ScaleSchemeTraits& row) {
  return {.dtype = QuantDType::fp4_e2m1(),
          .granularity = Granularity::per_group(16),
          .scale_dtype = row.scale_dtype,
          .e8m0_rounding = row.e8m0_rounding.value_or(E8M0Rounding::floor)};
}

TEST(ScaleSchemes, EveryRowIsTheRowOfItsSpec) {
  std::set<std::string_view> names;
  for (const auto& row : scale_schemes()) {
    EXPECT_TRUE(names.insert(row.name).second) << "duplicate row " << row.name;
    EXPECT_EQ(&scale_scheme_of(spec_of(row)), &row) << row.name;
    EXPECT_EQ(row.encode_byte != nullptr, row.decode_byte != nullptr) << row.name;
    EXPECT_EQ(row.encode_byte != nullptr, !row.stored_dtype.empty()) << row.name;
    EXPECT_EQ(is_block_scale_dtype(row.scale_dtype), row.encode_byte != nullptr) << row.name;
  }
}

TEST(ScaleSchemes, ByteStorageRoundTrips) {
  for (const auto& row : scale_schemes()) {
    if (!row.encode_byte) continue;
    int storable = 0;
    for (int byte = 0; byte < 256; ++byte) {
      const float value = row.decode_byte(static_cast<std::uint8_t>(byte));
      if (!std::isfinite(value) || value <= 0) continue;
      ++storable;
      EXPECT_EQ(row.encode_byte(value), byte) << row.name << " byte " << byte;
    }
    EXPECT_GT(storable, 100) << row.name;
  }
}

// Hand-checked values: MX floor of amax 6 for FP4 (max 6, target 2^2) is
// 2^(2 - 2) = 1; rceil of 6.5 is 2^ceil(log2(6.5 / 6)) = 2; NVFP4 of 6 is
// 6 / 6 = 1, and of 1e-9 clamps to E4M3's smallest normal 2^-6.
TEST(ScaleSchemes, ChosenScalesMatchHandValuesAndSurviveStorage) {
  const auto& fp4 = minifloat_format(MinifloatKind::e2m1);
  const std::pair<std::string_view, std::pair<float, float>> expected[] = {
      {"mx_floor", {6.0f, 1.0f}},
      {"mx_rceil", {6.5f, 2.0f}},
      {"nvfp4", {6.0f, 1.0f}},
      {"nvfp4", {1e-9f, 0.015625f}},
  };
  for (const auto& [name_, pair] : expected) {
    for (const auto& row : scale_schemes()) {
      if (row.name == name_) {
        EXPECT_EQ(row.scale_from_amax(pair.first, fp4, 1.0f), pair.second) << name_;
      }
    }
  }
  for (const auto& row : scale_schemes()) {
    if (!row.scale_from_amax) continue;
    for (float amax = 1e-30f; amax < 1e30f; amax *= 3.7f) {
      const float scale = row.scale_from_amax(amax, fp4, 1.0f);
      EXPECT_EQ(row.decode_byte(row.encode_byte(scale)), scale) << row.name << " amax " << amax;
    }
  }
}

TEST(ScaleSchemes, UncoveredSpecsAreRefusedByName) {
  const QuantSpec bf16_scale{.dtype = QuantDType::fp8_e4m3fn(),
                             .scale_dtype = ScaleDType::bfloat16};
  try {
    bf16_scale.validate();
    FAIL() << "bfloat16 scales for fp8 elements were accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("scale_dtype bfloat16"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("float32, e8m0, fp8_e4m3fn"), std::string::npos)
        << e.what();
  }
  const QuantSpec int_mx{.dtype = QuantDType::int_(4), .scale_dtype = ScaleDType::e8m0};
  EXPECT_THROW(int_mx.validate(), Error);
}

// A byte-stored scale that its byte cannot hold would be stored as another
// value; QParams refuse it instead of quantizing with a scale no file keeps.
TEST(ScaleSchemes, QParamsRefuseScalesTheirStorageCannotHold) {
  const QuantSpec nvfp4{.dtype = QuantDType::fp4_e2m1(),
                        .granularity = Granularity::per_group(16),
                        .scale_dtype = ScaleDType::fp8_e4m3fn};
  EXPECT_NO_THROW(QParams::make(nvfp4, Tensor::from_values({0.5}), {}));
  EXPECT_THROW(QParams::make(nvfp4, Tensor::from_values({0.3}), {}), Error);
  const QuantSpec mx{.dtype = QuantDType::fp4_e2m1(),
                     .granularity = Granularity::per_group(32),
                     .scale_dtype = ScaleDType::e8m0};
  EXPECT_THROW(QParams::make(mx, Tensor::from_values({3.0}), {}), Error);
}

}  // namespace
}  // namespace quantkit
