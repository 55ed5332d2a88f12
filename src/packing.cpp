#include "quantkit/packing.hpp"

#include "quantkit/error.hpp"

namespace quantkit {

std::int64_t packed_size(std::int64_t count, int bits) {
  return (count * bits + 7) / 8;
}

std::vector<std::uint8_t> pack_codes(std::span<const std::int32_t> codes, int bits) {
  QK_CHECK(bits >= 1 && bits <= 8, "bits ", bits, " must be in 1..8");
  const auto count = static_cast<std::int64_t>(codes.size());
  std::vector<std::uint8_t> out(static_cast<std::size_t>(packed_size(count, bits)), 0);
  const std::uint32_t mask = (1u << bits) - 1;
  for (std::int64_t i = 0; i < count; ++i) {
    const std::uint32_t field = static_cast<std::uint32_t>(codes[i]) & mask;
    const std::int64_t bit = i * bits;
    // A field spans at most two bytes because bits <= 8.
    const std::uint32_t shifted = field << (bit % 8);
    out[bit / 8] |= static_cast<std::uint8_t>(shifted & 0xFF);
    if ((bit % 8) + bits > 8) out[bit / 8 + 1] |= static_cast<std::uint8_t>(shifted >> 8);
  }
  return out;
}

std::vector<std::int32_t> unpack_codes(std::span<const std::uint8_t> packed, std::int64_t count,
                                       int bits, bool is_signed) {
  QK_CHECK(bits >= 1 && bits <= 8, "bits ", bits, " must be in 1..8");
  QK_CHECK(count >= 0 && static_cast<std::int64_t>(packed.size()) == packed_size(count, bits),
           "packed buffer holds ", packed.size(), " bytes but ", count, " codes of ", bits,
           " bits need ", packed_size(count, bits));
  std::vector<std::int32_t> out(static_cast<std::size_t>(count));
  const std::uint32_t mask = (1u << bits) - 1;
  for (std::int64_t i = 0; i < count; ++i) {
    const std::int64_t bit = i * bits;
    std::uint32_t window = packed[bit / 8];
    if ((bit % 8) + bits > 8) window |= static_cast<std::uint32_t>(packed[bit / 8 + 1]) << 8;
    const std::uint32_t field = (window >> (bit % 8)) & mask;
    const bool negative = is_signed && (field >> (bits - 1)) != 0;
    out[i] = negative ? static_cast<std::int32_t>(field) - (1 << bits)
                      : static_cast<std::int32_t>(field);
  }
  return out;
}

}  // namespace quantkit
