#pragma once
// Exact integer dot products of 16-bit operands in int32 (Highway, dynamic
// dispatch): the sums behind linear_dynamic_int. Integer addition is exact and
// associative, so every target gives the reference's sums whatever its order.
#include <cstdint>

namespace quantkit::cpu {

/// out[b] = sum of a[c] * b[c] over columns c of block b (blocks of `group`
/// columns, k / group of them) for each of `rows` rows of b (row r at
/// b + r * k, its sums at out + r * (k / group)). Every |a|, |b| <= 255 and
/// group <= 33025, so no sum overflows.
void int_dot_blocks(const std::int16_t* a, const std::int16_t* b, std::int64_t rows, std::int64_t k,
                    std::int64_t group, std::int32_t* out);

}  // namespace quantkit::cpu
