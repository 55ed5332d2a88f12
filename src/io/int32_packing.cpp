#include "int32_packing.hpp"

#include <cstring>

namespace quantkit::io::ct {

std::int64_t packed_words(std::int64_t count, int bits) {
  return (count * bits + 31) / 32;
}

void pack_row(const std::int8_t* codes, std::int64_t count, int bits, std::uint8_t* out) {
  const std::int64_t bytes = 4 * packed_words(count, bits);
  std::memset(out, 0, static_cast<std::size_t>(bytes));
  const std::uint32_t offset = 1u << (bits - 1);
  for (std::int64_t i = 0; i < count; ++i) {
    // A field spans at most two bytes (bits <= 8): write it as a 16-bit window.
    const std::uint32_t field =
        (static_cast<std::uint32_t>(codes[i] + offset)) & ((1u << bits) - 1);
    const std::int64_t bit = i * bits;
    const std::uint32_t window = field << (bit % 8);
    out[bit / 8] |= static_cast<std::uint8_t>(window);
    if ((bit % 8) + bits > 8) out[bit / 8 + 1] |= static_cast<std::uint8_t>(window >> 8);
  }
}

void unpack_row(std::span<const std::uint8_t> words, std::int64_t count, int bits,
                std::int8_t* codes) {
  const std::int32_t offset = 1 << (bits - 1);
  const std::uint32_t mask = (1u << bits) - 1;
  for (std::int64_t i = 0; i < count; ++i) {
    const std::int64_t bit = i * bits;
    std::uint32_t window = words[static_cast<std::size_t>(bit / 8)];
    if ((bit % 8) + bits > 8)
      window |= std::uint32_t{words[static_cast<std::size_t>(bit / 8 + 1)]} << 8;
    const auto field = static_cast<std::int32_t>((window >> (bit % 8)) & mask);
    codes[i] = static_cast<std::int8_t>(field - offset);
  }
}

}  // namespace quantkit::io::ct
