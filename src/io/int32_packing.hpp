#pragma once
// compressed-tensors' int32 packing (pack_to_int32 / unpack_from_int32 of
// compressed-tensors 0.20): each row of b-bit offset codes (code + 2^(b-1))
// is one dense little-endian bit stream, code i at bits [i*b, (i+1)*b), cut
// into int32 words; a row ends at a word boundary (zero padding), and codes
// of widths that do not divide 32 (3, 5, 6, 7) straddle words.
#include <cstdint>
#include <span>

namespace quantkit::io::ct {

/// int32 words holding `count` codes of `bits` bits: ceil(count * bits / 32).
std::int64_t packed_words(std::int64_t count, int bits);

/// Writes the words of codes[0, count) (two's-complement b-bit codes) to
/// out[0, 4 * packed_words(count, bits)), little-endian.
void pack_row(const std::int8_t* codes, std::int64_t count, int bits, std::uint8_t* out);

/// Inverse of pack_row: the two's-complement codes of `count` fields.
void unpack_row(std::span<const std::uint8_t> words, std::int64_t count, int bits,
                std::int8_t* codes);

}  // namespace quantkit::io::ct
