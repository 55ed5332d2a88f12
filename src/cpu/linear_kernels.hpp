#pragma once
// SIMD dot products in the order linear() specifies (include/quantkit/linear.hpp),
// bit-identical to reference::ordered_dot on every compiled target: sixteen
// partial sums are sixteen lanes (one AVX-512 vector, two AVX2 vectors, four
// SSE4 vectors), products and sums rounded separately (no fused multiply-add),
// and the pairwise halving of the partials runs across vectors, then lanes.
#include <cstddef>
#include <cstdint>

#include "cpu/affine_kernels.hpp"

namespace quantkit::cpu {

/// Most weight rows one ordered_dot_tile call takes.
constexpr std::int64_t kTileRows = 4;

/// sums[m * rows + r] = ordered_dot(x row m, w row r) for m < x_rows and
/// r < rows (1..kTileRows); rows of x and w are `k` contiguous elements of
/// `kind`, one after another.
void ordered_dot_tile(FloatKind kind, const void* x, std::int64_t x_rows, const void* w,
                      std::int64_t rows, std::int64_t k, float* sums);

/// Rows of 4- or 8-bit integer codes (or FP4 E2M1 codes) read in place, with per-block scales and
/// zero points as the affine dequantize kernels take them: the weight value of
/// code q in block b is round_T((q - zero_point[b]) * scale[b]), which is what
/// dequantize() gives (zero_point[b] = 0 where the spec has none).
struct PackedIntRows {
  const std::uint8_t* codes;  // row r starts at codes + r * row_bytes (a whole byte)
  std::int64_t row_bytes;
  int bits;  // 4 (two per byte, the even element in the low nibble) or 8
  bool is_signed;
  /// FP4 E2M1 codes (4 bits): the element is decode(q) and the value
  /// round_T(decode(q) * scale); zero_point is unused.
  bool fp4 = false;
  const float* scale;  // block of (row r, column c): r * blocks_per_row + c / group
  const float* zero_point;
  std::int64_t group;  // a multiple of 16, or >= k: no run of 16 columns spans two blocks
  std::int64_t blocks_per_row;
};

/// ordered_dot_tile with weight rows [first, first + rows) of `w` decoded in
/// registers. For 4-bit codes, `x_even_odd` holds x's rows with each whole
/// 16-element chunk reordered to its even elements then its odd ones (the
/// order the nibbles decode in; see permute_chunks); `x` is read for the tail.
void packed_dot_tile(FloatKind kind, const void* x, const void* x_even_odd, std::int64_t x_rows,
                     const PackedIntRows& w, std::int64_t first, std::int64_t rows, std::int64_t k,
                     float* sums);

/// Lane l of a decoded 4-bit chunk holds element kEvenOdd[l] of the chunk: the
/// low nibbles of its 8 bytes (the even elements), then the high ones.
inline constexpr int kEvenOdd[16] = {0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15};

/// out = x's `rows` rows of k elements (of `size` bytes each) with every whole
/// chunk of 16 reordered to elements 0, 2, ..., 14, 1, 3, ..., 15 (the tail
/// is left out: rows of out are k / 16 * 16 elements).
void permute_chunks(const void* x, std::int64_t rows, std::int64_t k, std::size_t size, void* out);

}  // namespace quantkit::cpu
