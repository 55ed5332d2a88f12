#include "quantkit/packing.hpp"

#include <cstring>

#include "quantkit/error.hpp"

namespace quantkit {

std::int64_t packed_size(std::int64_t count, int bits) {
  return (count * bits + 7) / 8;
}

void pack_codes_into(const std::int8_t* codes, std::int64_t count, int bits, std::uint8_t* out) {
  if (count == 0) return;  // buffers of empty tensors may be null
  const std::uint32_t mask = (1u << bits) - 1;
  if (bits == 8) {
    std::memcpy(out, codes, static_cast<std::size_t>(count));
    return;
  }
  if (bits == 4) {  // the common case, written so the compiler vectorizes it
    for (std::int64_t j = 0; j < count / 2; ++j) {
      out[j] = static_cast<std::uint8_t>((codes[2 * j] & 0xF) | ((codes[2 * j + 1] & 0xF) << 4));
    }
    if (count % 2) out[count / 2] = static_cast<std::uint8_t>(codes[count - 1] & 0xF);
    return;
  }
  std::memset(out, 0, static_cast<std::size_t>(packed_size(count, bits)));
  for (std::int64_t i = 0; i < count; ++i) {
    const std::uint32_t field = static_cast<std::uint32_t>(codes[i]) & mask;
    const std::int64_t bit = i * bits;
    // A field spans at most two bytes because bits <= 8.
    const std::uint32_t shifted = field << (bit % 8);
    out[bit / 8] |= static_cast<std::uint8_t>(shifted & 0xFF);
    if ((bit % 8) + bits > 8) out[bit / 8 + 1] |= static_cast<std::uint8_t>(shifted >> 8);
  }
}

void unpack_codes_into(const std::uint8_t* packed, std::int64_t first, std::int64_t count, int bits,
                       bool is_signed, std::int8_t* out) {
  if (count == 0) return;  // buffers of empty tensors may be null
  if (bits == 8) {
    std::memcpy(out, packed + first, static_cast<std::size_t>(count));
    return;
  }
  if (bits == 4 && first % 2 == 0) {  // the common case, written so the compiler vectorizes it
    const std::uint8_t* p = packed + first / 2;
    const std::int64_t pairs = count / 2;
    if (is_signed) {  // arithmetic shifts sign-extend each nibble
      for (std::int64_t j = 0; j < pairs; ++j) {
        out[2 * j] = static_cast<std::int8_t>(static_cast<std::int8_t>(p[j] << 4) >> 4);
        out[2 * j + 1] = static_cast<std::int8_t>(static_cast<std::int8_t>(p[j]) >> 4);
      }
    } else {
      for (std::int64_t j = 0; j < pairs; ++j) {
        out[2 * j] = static_cast<std::int8_t>(p[j] & 0xF);
        out[2 * j + 1] = static_cast<std::int8_t>(p[j] >> 4);
      }
    }
    if (count % 2) {
      const int field = p[pairs] & 0xF;
      out[count - 1] = static_cast<std::int8_t>(is_signed && field > 7 ? field - 16 : field);
    }
    return;
  }
  const std::uint32_t mask = (1u << bits) - 1;
  for (std::int64_t i = first; i < first + count; ++i) {
    const std::int64_t bit = i * bits;
    std::uint32_t window = packed[bit / 8];
    if ((bit % 8) + bits > 8) window |= static_cast<std::uint32_t>(packed[bit / 8 + 1]) << 8;
    const std::uint32_t field = (window >> (bit % 8)) & mask;
    const bool negative = is_signed && (field >> (bits - 1)) != 0;
    const int value = negative ? static_cast<int>(field) - (1 << bits) : static_cast<int>(field);
    out[i - first] = static_cast<std::int8_t>(static_cast<std::uint8_t>(value & 0xFF));
  }
}

std::vector<std::uint8_t> pack_codes(std::span<const std::int32_t> codes, int bits) {
  QK_CHECK(bits >= 1 && bits <= 8, "bits ", bits, " must be in 1..8");
  const auto count = static_cast<std::int64_t>(codes.size());
  // Signed or unsigned codes of `bits` bits: anything else would wrap.
  const std::int32_t lowest = -(1 << (bits - 1));
  const std::int32_t highest = (1 << bits) - 1;
  for (std::size_t i = 0; i < codes.size(); ++i) {
    QK_CHECK(codes[i] >= lowest && codes[i] <= highest, "code ", codes[i], " at index ", i,
             " does not fit in ", bits, " bits (", lowest, "..", highest, ")");
  }
  std::vector<std::int8_t> low_bytes(codes.size());
  for (std::size_t i = 0; i < codes.size(); ++i) {
    low_bytes[i] = static_cast<std::int8_t>(static_cast<std::uint8_t>(codes[i] & 0xFF));
  }
  std::vector<std::uint8_t> out(static_cast<std::size_t>(packed_size(count, bits)));
  pack_codes_into(low_bytes.data(), count, bits, out.data());
  return out;
}

std::vector<std::int32_t> unpack_codes(std::span<const std::uint8_t> packed, std::int64_t count,
                                       int bits, bool is_signed) {
  QK_CHECK(bits >= 1 && bits <= 8, "bits ", bits, " must be in 1..8");
  QK_CHECK(count >= 0 && static_cast<std::int64_t>(packed.size()) == packed_size(count, bits),
           "packed buffer holds ", packed.size(), " bytes but ", count, " codes of ", bits,
           " bits need ", packed_size(count, bits));
  std::vector<std::int8_t> bytes(static_cast<std::size_t>(count));
  unpack_codes_into(packed.data(), 0, count, bits, is_signed, bytes.data());
  std::vector<std::int32_t> out(bytes.size());
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    out[i] = is_signed ? bytes[i] : static_cast<std::uint8_t>(bytes[i]);
  }
  return out;
}

}  // namespace quantkit
