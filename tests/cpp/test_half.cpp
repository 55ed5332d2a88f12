// Exhaustive checks of the fp32 <-> bfloat16 / float16 conversions.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>

#include "quantkit/half.hpp"

namespace quantkit {
namespace {

// float16 value from its fields, written independently of the library.
double f16_value(std::uint32_t h) {
  const int e = (h >> 10) & 0x1F, m = h & 0x3FF;
  const double v = e == 0 ? std::ldexp(m, -24) : std::ldexp(m + 1024, e - 25);
  return (h & 0x8000) ? -v : v;
}

TEST(BFloat16, AllPatternsRoundTrip) {
  for (std::uint32_t b = 0; b < 65536; ++b) {
    const auto bits = static_cast<std::uint16_t>(b);
    const float f = float_from_bfloat16_bits(bits);
    EXPECT_EQ(std::bit_cast<std::uint32_t>(f), b << 16);  // widening is a shift
    if (std::isnan(f)) {
      EXPECT_EQ(bfloat16_bits_from_float(f), 0x7FC0) << b;  // canonical quiet NaN
    } else {
      EXPECT_EQ(bfloat16_bits_from_float(f), bits) << b;
    }
  }
}

TEST(BFloat16, EveryMidpointRoundsToEven) {
  // For each positive finite bf16 b below the largest, the fp32 value halfway
  // to its successor rounds to whichever of the two is even; one fp32 ulp
  // either side rounds to the nearer one.
  for (std::uint32_t b = 0; b < 0x7F7F; ++b) {
    const std::uint32_t mid = (b << 16) | 0x8000;
    const std::uint32_t even = (b & 1) ? b + 1 : b;
    for (std::uint32_t sign : {0u, 0x80000000u}) {
      const auto s16 = static_cast<std::uint16_t>(sign >> 16);
      EXPECT_EQ(bfloat16_bits_from_float(std::bit_cast<float>(mid | sign)), even | s16);
      EXPECT_EQ(bfloat16_bits_from_float(std::bit_cast<float>((mid - 1) | sign)), b | s16);
      EXPECT_EQ(bfloat16_bits_from_float(std::bit_cast<float>((mid + 1) | sign)), (b + 1) | s16);
    }
  }
}

TEST(BFloat16, Specials) {
  EXPECT_EQ(bfloat16_bits_from_float(1.00390625f), 0x3F80);  // tie, stays even
  EXPECT_EQ(bfloat16_bits_from_float(std::bit_cast<float>(0x3F818000u)), 0x3F82);
  EXPECT_EQ(bfloat16_bits_from_float(3.4028235e38f), 0x7F80);  // FLT_MAX overflows to Inf
  EXPECT_EQ(bfloat16_bits_from_float(-NAN), 0x7FC0);
  EXPECT_EQ(bfloat16_bits_from_float(-0.0f), 0x8000);
  EXPECT_EQ(bfloat16_bits_from_float(std::bit_cast<float>(1u)), 0x0000);  // smallest subnormal
}

TEST(Float16, AllPatternsDecodeAndRoundTrip) {
  for (std::uint32_t h = 0; h < 65536; ++h) {
    const auto bits = static_cast<std::uint16_t>(h);
    const float f = float_from_float16_bits(bits);
    const int e = (h >> 10) & 0x1F;
    if (e == 0x1F && (h & 0x3FF) != 0) {
      EXPECT_TRUE(std::isnan(f));
      EXPECT_EQ(float16_bits_from_float(f), (h & 0x8000) | 0x7E00) << h;
      continue;
    }
    if (e == 0x1F) {
      EXPECT_TRUE(std::isinf(f));
    } else {
      EXPECT_EQ(static_cast<double>(f), f16_value(h)) << h;
    }
    EXPECT_EQ(float16_bits_from_float(f), bits) << h;
  }
}

TEST(Float16, EveryMidpointRoundsToEven) {
  for (std::uint32_t h = 0; h < 0x7BFF; ++h) {  // up to the largest finite value
    const double lo = f16_value(h), hi = f16_value(h + 1);
    const float mid = static_cast<float>((lo + hi) / 2);  // exact: 12 significant bits
    ASSERT_EQ(static_cast<double>(mid), (lo + hi) / 2);
    const std::uint32_t even = (h & 1) ? h + 1 : h;
    EXPECT_EQ(float16_bits_from_float(mid), even) << h;
    EXPECT_EQ(float16_bits_from_float(-mid), even | 0x8000) << h;
    EXPECT_EQ(float16_bits_from_float(std::nextafter(mid, 0.0f)), h) << h;
    EXPECT_EQ(float16_bits_from_float(std::nextafter(mid, 1e9f)), h + 1) << h;
  }
}

TEST(Float16, Overflow) {
  EXPECT_EQ(float16_bits_from_float(65504.0f), 0x7BFF);
  EXPECT_EQ(float16_bits_from_float(65519.996f), 0x7BFF);
  EXPECT_EQ(float16_bits_from_float(65520.0f), 0x7C00);  // tie goes to even = Inf
  EXPECT_EQ(float16_bits_from_float(-1e10f), 0xFC00);
  EXPECT_EQ(float16_bits_from_float(INFINITY), 0x7C00);
  EXPECT_EQ(float16_bits_from_float(std::ldexp(1.0f, -25)), 0x0000);  // tie to even zero
  EXPECT_EQ(float16_bits_from_float(std::ldexp(1.5f, -25)), 0x0001);
}

}  // namespace
}  // namespace quantkit
