#pragma once
// The error of one scale-search candidate per block, fused on SIMD lanes
// (Highway, dynamic dispatch): quantize, dequantize and the ordered error sum
// in registers, with no intermediate buffer.
#include <cstdint>

#include "cpu/affine_kernels.hpp"

namespace quantkit::cpu {

/// errors[j] = reference::ordered_squared_error of block j: the `inner` float
/// values at values + j * inner against their fake-quantized results (codes
/// from params' entry j, the dequantized value rounded to ops.output), each
/// term times weights[j * inner + i] when weights is not null. Bit-identical
/// to the reference on every compiled target: lane l of the accumulators holds
/// partial sum l mod 16, so the sums run in the reference's order. The values
/// must be finite (the search checks them first).
void block_squared_errors(const AffineOps& ops, const float* values, const float* weights,
                          std::int64_t inner, std::int64_t count, const BlockParams& params,
                          float* errors);

}  // namespace quantkit::cpu
