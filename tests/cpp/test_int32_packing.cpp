// compressed-tensors' dense int32 packing, checked against words computed by
// hand from its rule (offset code i at bits [i*b, (i+1)*b) of the row, rows
// padded to whole words), and unpacking as its exact inverse for every width.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "io/int32_packing.hpp"

namespace quantkit::io::ct {
namespace {

std::vector<std::uint32_t> words_of(const std::vector<std::int8_t>& codes, int bits) {
  std::vector<std::uint8_t> bytes(
      static_cast<std::size_t>(4 * packed_words(static_cast<std::int64_t>(codes.size()), bits)));
  pack_row(codes.data(), static_cast<std::int64_t>(codes.size()), bits, bytes.data());
  std::vector<std::uint32_t> words(bytes.size() / 4);
  std::memcpy(words.data(), bytes.data(), bytes.size());
  return words;
}

TEST(Int32Packing, DenseWordsMatchHandComputedValues) {
  // 3 bits: offsets 0..7, 0, 1, 2 (codes -4..3, -4, -3, -2); the eleventh
  // code straddles the two words: sum(o_i << 3i) = 0x0'88FAC688.
  EXPECT_EQ(words_of({-4, -3, -2, -1, 0, 1, 2, 3, -4, -3, -2}, 3),
            (std::vector<std::uint32_t>{0x88FAC688u, 0x0u}));
  // 5 bits: seven offsets of 5 (code -11) = 0x1'4A5294A5, 35 bits in 2 words.
  EXPECT_EQ(words_of(std::vector<std::int8_t>(7, -11), 5),
            (std::vector<std::uint32_t>{0x4A5294A5u, 0x1u}));
  // 1536 3-bit columns take 144 words, not 154 (ten per word).
  EXPECT_EQ(packed_words(1536, 3), 144);
  // 4 bits: eight per word, first code lowest: codes -8..7 -> offsets 0..15.
  EXPECT_EQ(words_of({-8, -7, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7}, 4),
            (std::vector<std::uint32_t>{0x76543210u, 0xFEDCBA98u}));
}

TEST(Int32Packing, UnpackInvertsPackForEveryWidthAndLength) {
  std::mt19937 rng(7);
  for (int bits = 1; bits <= 8; ++bits) {
    std::uniform_int_distribution<int> code(-(1 << (bits - 1)), (1 << (bits - 1)) - 1);
    for (std::int64_t count : {1, 5, 31, 32, 33, 100, 257}) {
      std::vector<std::int8_t> codes(static_cast<std::size_t>(count));
      for (auto& c : codes) c = static_cast<std::int8_t>(code(rng));
      std::vector<std::uint8_t> bytes(static_cast<std::size_t>(4 * packed_words(count, bits)));
      pack_row(codes.data(), count, bits, bytes.data());
      std::vector<std::int8_t> back(codes.size());
      unpack_row(bytes, count, bits, back.data());
      EXPECT_EQ(back, codes) << bits << " bits, " << count << " codes";
    }
  }
}

}  // namespace
}  // namespace quantkit::io::ct
