#pragma once
// Sub-byte packing of quantized codes.
//
// Codes of b bits (b in 1..8) form one little-endian bit stream: code i
// occupies bits [i*b, (i+1)*b) of the stream, low bits first. For b = 4 this
// is two codes per byte with the first code in the low nibble (the OCP MX /
// PyTorch float4_e2m1fn_x2 order); b = 2 packs four per byte, b = 1 eight.
// Widths that do not divide 8 (3, 5, 6, 7) straddle byte boundaries. Signed
// codes are stored as b-bit two's complement and sign-extended on unpack.
// Unused high bits of the last byte are zero.

#include <cstdint>
#include <span>
#include <vector>

namespace quantkit {

/// Bytes needed for `count` codes of `bits` bits.
std::int64_t packed_size(std::int64_t count, int bits);

/// Packs codes[0, count) into out[0, packed_size(count, bits)), every byte of
/// which it writes; `out` starts at a byte boundary of the stream.
void pack_codes_into(const std::int8_t* codes, std::int64_t count, int bits, std::uint8_t* out);
/// Unpacks codes [first, first + count) of a packed stream; first * bits must be
/// a multiple of 8. Unsigned 8-bit codes above 127 come back as their byte
/// reinterpreted as int8 (the two's-complement bit pattern).
void unpack_codes_into(const std::uint8_t* packed, std::int64_t first, std::int64_t count, int bits,
                       bool is_signed, std::int8_t* out);

/// Packs the low `bits` bits of each code. Throws Error for a code outside
/// -2^(bits-1) .. 2^bits - 1 (neither a signed nor an unsigned `bits`-bit
/// code), which would otherwise wrap.
std::vector<std::uint8_t> pack_codes(std::span<const std::int32_t> codes, int bits);
/// Inverse of pack_codes; `is_signed` sign-extends each field.
std::vector<std::int32_t> unpack_codes(std::span<const std::uint8_t> packed, std::int64_t count,
                                       int bits, bool is_signed);

}  // namespace quantkit
