// FP8 / FP6 / FP4 encodings against the tables of the OCP specs, and E8M0.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>

#include "quantkit/error.hpp"
#include "quantkit/minifloat.hpp"

namespace quantkit {
namespace {

const MinifloatFormat& fmt(MinifloatKind k) {
  return minifloat_format(k);
}

TEST(Minifloat, Fp4E2M1FullTable) {
  const double values[16] = {0, 0.5, 1, 1.5, 2, 3, 4, 6, -0.0, -0.5, -1, -1.5, -2, -3, -4, -6};
  for (int code = 0; code < 16; ++code) {
    const float v = decode_minifloat(static_cast<std::uint8_t>(code), fmt(MinifloatKind::e2m1));
    EXPECT_EQ(v, values[code]) << code;
    EXPECT_EQ(std::signbit(v), code >= 8) << code;
  }
}

TEST(Minifloat, Fp6E2M3FullTable) {
  // Rows of the OCP table: exponent field 0 (subnormal) .. 3, mantissa 0..7.
  const double magnitudes[32] = {0,   0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875,
                                 1.0, 1.125, 1.25, 1.375, 1.5, 1.625, 1.75, 1.875,
                                 2.0, 2.25,  2.5,  2.75,  3.0, 3.25,  3.5,  3.75,
                                 4.0, 4.5,   5.0,  5.5,   6.0, 6.5,   7.0,  7.5};
  for (int code = 0; code < 64; ++code) {
    const double expected = (code & 32) ? -magnitudes[code & 31] : magnitudes[code & 31];
    EXPECT_EQ(decode_minifloat(static_cast<std::uint8_t>(code), fmt(MinifloatKind::e2m3)),
              expected);
  }
}

TEST(Minifloat, Fp6E3M2FullTable) {
  const double magnitudes[32] = {0,   0.0625, 0.125, 0.1875, 0.25, 0.3125, 0.375, 0.4375,
                                 0.5, 0.625,  0.75,  0.875,  1.0,  1.25,   1.5,   1.75,
                                 2.0, 2.5,    3.0,   3.5,    4.0,  5.0,    6.0,   7.0,
                                 8.0, 10.0,   12.0,  14.0,   16.0, 20.0,   24.0,  28.0};
  for (int code = 0; code < 64; ++code) {
    const double expected = (code & 32) ? -magnitudes[code & 31] : magnitudes[code & 31];
    EXPECT_EQ(decode_minifloat(static_cast<std::uint8_t>(code), fmt(MinifloatKind::e3m2)),
              expected);
  }
}

// Decoding from the generic S/E/M formula (OCP), written here independently.
double formula(int code, int ebits, int mbits, int bias) {
  const int e = (code >> mbits) & ((1 << ebits) - 1), m = code & ((1 << mbits) - 1);
  const double v =
      e == 0 ? std::ldexp(m, 1 - bias - mbits) : std::ldexp(m + (1 << mbits), e - bias - mbits);
  return (code >> (ebits + mbits)) ? -v : v;
}

TEST(Minifloat, Fp8DecodeMatchesFormulaAndSpecials) {
  for (int code = 0; code < 256; ++code) {
    const auto c = static_cast<std::uint8_t>(code);
    const float e4 = decode_minifloat(c, fmt(MinifloatKind::e4m3fn));
    if ((code & 0x7F) == 0x7F) {
      EXPECT_TRUE(std::isnan(e4)) << code;
    } else {
      EXPECT_EQ(e4, formula(code, 4, 3, 7)) << code;
    }
    const float e5 = decode_minifloat(c, fmt(MinifloatKind::e5m2));
    if ((code & 0x7C) == 0x7C && (code & 3)) {
      EXPECT_TRUE(std::isnan(e5)) << code;
    } else if ((code & 0x7F) == 0x7C) {
      EXPECT_EQ(e5, (code & 0x80) ? -INFINITY : INFINITY);
    } else {
      EXPECT_EQ(e5, formula(code, 5, 2, 15)) << code;
    }
  }
  EXPECT_EQ(decode_minifloat(0x7E, fmt(MinifloatKind::e4m3fn)), 448.0f);
  EXPECT_EQ(decode_minifloat(0x7B, fmt(MinifloatKind::e5m2)), 57344.0f);
  EXPECT_EQ(decode_minifloat(0x01, fmt(MinifloatKind::e4m3fn)), std::ldexp(1.0f, -9));
}

TEST(Minifloat, EveryCodeRoundTripsInEveryFormat) {
  for (const auto& f : minifloat_formats()) {
    for (int code = 0; code < (1 << f.bits()); ++code) {
      const auto c = static_cast<std::uint8_t>(code);
      const float v = decode_minifloat(c, f);
      if (std::isnan(v)) continue;
      EXPECT_EQ(encode_minifloat(v, f, /*saturate=*/false), c) << f.name << " " << code;
    }
  }
}

TEST(Minifloat, Fp4RoundingBoundaries) {
  const auto& f = fmt(MinifloatKind::e2m1);
  // Ties go to the even code: 0.25->0, 0.75->1.0, 1.25->1.0, 1.75->2, 2.5->2, 3.5->4, 5->4.
  const std::pair<float, int> cases[] = {
      {0.25f, 0}, {0.26f, 1}, {0.75f, 2}, {1.25f, 2}, {1.26f, 3}, {1.75f, 4}, {2.5f, 4},
      {2.6f, 5},  {3.5f, 6},  {5.0f, 6},  {5.01f, 7}, {6.1f, 7},  {1e30f, 7}, {INFINITY, 7}};
  for (auto [value, code] : cases) {
    EXPECT_EQ(encode_minifloat(value, f), code) << value;
    EXPECT_EQ(encode_minifloat(-value, f), code | 8) << value;
  }
  EXPECT_EQ(encode_minifloat(-0.0f, f), 0x8);  // signed zero kept
  EXPECT_EQ(encode_minifloat(-0.1f, f), 0x8);
  EXPECT_EQ(encode_minifloat(NAN, f), 0x7);  // no NaN code: +max (ONNX rule)
}

TEST(Minifloat, Fp8OverflowAndSubnormals) {
  const auto& e4 = fmt(MinifloatKind::e4m3fn);
  EXPECT_EQ(encode_minifloat(448.0f, e4, false), 0x7E);
  EXPECT_EQ(encode_minifloat(449.0f, e4, false), 0x7E);
  EXPECT_EQ(encode_minifloat(464.0f, e4, false), 0x7E);  // exact midpoint 448/480 -> even
  EXPECT_EQ(encode_minifloat(465.0f, e4, false), 0x7F);  // rounds past max -> NaN
  EXPECT_EQ(encode_minifloat(-500.0f, e4, false), 0xFF);
  EXPECT_EQ(encode_minifloat(465.0f, e4, true), 0x7E);  // saturating
  EXPECT_EQ(encode_minifloat(-INFINITY, e4, true), 0xFE);
  EXPECT_EQ(encode_minifloat(NAN, e4, true), 0x7F);
  EXPECT_EQ(encode_minifloat(std::ldexp(1.0f, -10), e4), 0x00);  // half the smallest subnormal
  EXPECT_EQ(encode_minifloat(std::ldexp(1.5f, -10), e4), 0x01);
  EXPECT_EQ(encode_minifloat(std::ldexp(3.0f, -10), e4), 0x02);  // 1.5 subnormal ulps -> even 2
  const auto& e5 = fmt(MinifloatKind::e5m2);
  EXPECT_EQ(encode_minifloat(57344.0f, e5, false), 0x7B);
  EXPECT_EQ(encode_minifloat(61440.0f, e5, false), 0x7C);  // midpoint to 65536 -> Inf
  EXPECT_EQ(encode_minifloat(61439.0f, e5, false), 0x7B);
  EXPECT_EQ(encode_minifloat(61440.0f, e5, true), 0x7B);
  EXPECT_EQ(encode_minifloat(INFINITY, e5, false), 0x7C);
  EXPECT_EQ(encode_minifloat(NAN, e5, false), 0x7F);
}

TEST(E8M0, FloorAndRceil) {
  const auto& fp4 = fmt(MinifloatKind::e2m1);
  const auto& e4 = fmt(MinifloatKind::e4m3fn);
  // Block max 5.0 in fp4: floor(log2 5) - 2 = 0 -> byte 127 in both modes.
  EXPECT_EQ(e8m0_from_amax(5.0f, fp4, E8M0Rounding::floor), 127);
  EXPECT_EQ(e8m0_from_amax(5.0f, fp4, E8M0Rounding::rceil), 127);
  // Block max 7.0: floor keeps 127; rceil rounds 7 * fl32(1/6) = 1.1666 up to 2^1.
  EXPECT_EQ(e8m0_from_amax(7.0f, fp4, E8M0Rounding::floor), 127);
  EXPECT_EQ(e8m0_from_amax(7.0f, fp4, E8M0Rounding::rceil), 128);
  EXPECT_EQ(e8m0_from_amax(0.0f, e4, E8M0Rounding::floor), 0);  // 2^-127
  EXPECT_EQ(e8m0_from_amax(INFINITY, e4, E8M0Rounding::floor), 255);
  EXPECT_EQ(e8m0_from_amax(INFINITY, e4, E8M0Rounding::rceil), 254);
  // rceil: 3.5000002 / 448 is one ulp above 2^-7; float32 log2 rounds it to -7 exactly.
  EXPECT_EQ(e8m0_from_amax(std::bit_cast<float>(0x40600001u), e4, E8M0Rounding::rceil), 120);
  EXPECT_EQ(e8m0_from_amax(0.0f, e4, E8M0Rounding::rceil), 0);
  EXPECT_EQ(e8m0_from_amax(448.0f, e4, E8M0Rounding::floor), 127);
  EXPECT_EQ(e8m0_from_amax(480.0f, e4, E8M0Rounding::rceil), 128);
  EXPECT_EQ(e8m0_from_amax(3.4028235e38f, e4, E8M0Rounding::floor), 246);
  EXPECT_EQ(e8m0_from_amax(3.4028235e38f, e4, E8M0Rounding::rceil), 247);
  EXPECT_EQ(e8m0_to_float(0), std::bit_cast<float>(0x00400000u));
  EXPECT_EQ(e8m0_to_float(127), 1.0f);
  EXPECT_EQ(e8m0_to_float(254), std::ldexp(1.0f, 127));
  EXPECT_TRUE(std::isnan(e8m0_to_float(255)));
  for (int b = 0; b < 255; ++b) EXPECT_EQ(e8m0_from_power_of_two(e8m0_to_float(b)), b);
  EXPECT_EQ(e8m0_from_power_of_two(NAN), 255);
  for (float bad : {0.0f, -0.0f, -1.0f, 3.0f, 1.5f, HUGE_VALF, std::ldexp(1.0f, -128),
                    std::ldexp(1.0f, -149), std::nextafter(1.0f, 2.0f)}) {
    EXPECT_THROW(e8m0_from_power_of_two(bad), Error) << bad;
  }
}

}  // namespace
}  // namespace quantkit
