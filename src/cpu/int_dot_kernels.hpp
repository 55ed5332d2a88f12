#pragma once
// Exact integer dot products of 16-bit operands in int32 (Highway, dynamic
// dispatch): the sums behind linear_int. Integer addition is exact and
// associative, so every target gives the reference's sums whatever its order.
#include <cstdint>

namespace quantkit::cpu {

/// out[(i * rows + r) * blocks + j] = the sum of a[i][c] * b[r][c] over the
/// columns c of block j (blocks of `group` columns, blocks = k / group), for
/// a_rows rows of a and `rows` rows of b, each k contiguous values. Every
/// |a|, |b| <= 255 and group <= 33025, so no sum overflows.
void int_dot_tile(const std::int16_t* a, std::int64_t a_rows, const std::int16_t* b,
                  std::int64_t rows, std::int64_t k, std::int64_t group, std::int32_t* out);

}  // namespace quantkit::cpu
