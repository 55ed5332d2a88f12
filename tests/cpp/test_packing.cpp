#include <gtest/gtest.h>

#include <algorithm>

#include "quantkit/error.hpp"
#include "quantkit/ops.hpp"
#include "quantkit/packing.hpp"

namespace quantkit {
namespace {

TEST(Packing, LowBitsFirstLayouts) {
  EXPECT_EQ(pack_codes(std::vector<std::int32_t>{1, 2, 3}, 4),
            (std::vector<std::uint8_t>{0x21, 0x03}));
  EXPECT_EQ(pack_codes(std::vector<std::int32_t>{-1, -8}, 4), (std::vector<std::uint8_t>{0x8F}));
  EXPECT_EQ(pack_codes(std::vector<std::int32_t>{1, 2, 3, 0, 1}, 2),
            (std::vector<std::uint8_t>{0x39, 0x01}));
  EXPECT_EQ(pack_codes(std::vector<std::int32_t>{7, 1, 2}, 3),
            (std::vector<std::uint8_t>{0x8F, 0x00}));
  EXPECT_EQ(pack_codes(std::vector<std::int32_t>{1, 0, 1, 1, 0, 0, 0, 1, 1}, 1),
            (std::vector<std::uint8_t>{0x8D, 0x01}));
}

TEST(Packing, RoundTripsEveryWidthSignAndOddLength) {
  for (int bits = 1; bits <= 8; ++bits) {
    for (bool is_signed : {false, true}) {
      const int lo = is_signed ? -(1 << (bits - 1)) : 0;
      const int hi = is_signed ? (1 << (bits - 1)) - 1 : (1 << bits) - 1;
      for (int count = 0; count <= 19; ++count) {
        std::vector<std::int32_t> codes(count);
        for (int i = 0; i < count; ++i) codes[i] = lo + (i * 7 + 3) % (hi - lo + 1);
        const auto packed = pack_codes(codes, bits);
        ASSERT_EQ(static_cast<std::int64_t>(packed.size()), (count * bits + 7) / 8);
        ASSERT_EQ(unpack_codes(packed, count, bits, is_signed), codes) << bits << " " << count;
      }
    }
  }
  EXPECT_THROW(unpack_codes(std::vector<std::uint8_t>{0}, 3, 4, false), Error);
}

TEST(Packing, Fp4PairsMatchTheMxOrder) {
  // [0.0, 0.5, 4.0, -0.0] -> codes [0x0, 0x1, 0x6, 0x8] -> bytes 0x10, 0x86.
  QuantSpec spec{.dtype = QuantDType::fp4_e2m1()};
  const auto qp = QParams::make(spec, Tensor::from_values({1.0}));
  const auto q = quantize(Tensor::from_values({0.0, 0.5, 4.0, -0.0}), qp);
  EXPECT_TRUE(std::ranges::equal(q.packed(), std::vector<std::uint8_t>{0x10, 0x86}));
}

TEST(Packing, QuantizedTensorStoresNarrowestForm) {
  const QuantSpec spec{.dtype = QuantDType::int_(4)};
  const auto qp =
      QParams::make(spec, Tensor::from_values({1.0}), Tensor::from_values({0}, ScalarType::int32));
  const auto q = quantize(Tensor::from_values({1, -2, 3, -8, 7}), qp);  // odd count
  EXPECT_EQ(q.packed().size(), 3u);
  EXPECT_EQ(q.codes().dtype(), ScalarType::int8);
  EXPECT_EQ(q.codes().to_vector(), (std::vector<double>{1, -2, 3, -8, 7}));
  const auto again = QuantizedTensor::from_packed(
      q.shape(), std::vector<std::uint8_t>(q.packed().begin(), q.packed().end()), qp);
  EXPECT_EQ(again.code_values(), q.code_values());
  EXPECT_THROW(QuantizedTensor::from_packed({5}, {0, 0}, qp), Error);
  EXPECT_THROW(QuantizedTensor({1}, {8}, qp), Error);  // 8 is outside int4
}

}  // namespace
}  // namespace quantkit
