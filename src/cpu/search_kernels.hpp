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

/// The constants of the clipped-range candidates (reference::BlockChooser::
/// candidate for the asymmetric and symmetric integer mappings, then
/// reference::set_int_block).
struct CandidateOps {
  FloatKind compute;  // T: every step of the formula is rounded to it
  FloatKind scale;    // S: the stored scale, and its reciprocal
  bool asymmetric;    // else symmetric: the zero point is the grid's midpoint
  bool zero_point;    // the codes use it (int domain); else the plan's is 0
  float quant_min;
  float quant_max;
  float eps;  // lower bound of the scale, in T
};

/// The candidates of clip ratio `ratio` for `count` blocks of ranges lo / hi:
/// scale / zero_point / minval as BlockQParams holds them, and the plan values
/// the kernels read (stored scale, its reciprocal, the zero point the codes
/// use). Bit-identical to the scalar formulas on every compiled target.
struct CandidateArrays {
  float* scale;
  float* zero_point;
  float* minval;
  float* stored_scale;
  float* reciprocal;
  float* code_zero_point;
};
void clip_candidates(const CandidateOps& ops, const float* lo, const float* hi, float ratio,
                     std::int64_t count, const CandidateArrays& out);

}  // namespace quantkit::cpu
