#pragma once
// SIMD form of the per-block integer qparams formulas of
// reference::BlockChooser (asymmetric and symmetric mappings, integer zero
// point), across blocks: one lane per block. Bit-identical to the scalar
// chooser on every compiled target (tests/cpp/test_fast_path.cpp).
#include <cstdint>

#include "cpu/affine_kernels.hpp"

namespace quantkit::cpu {

struct AffineChooseOps {
  FloatKind compute;  // every step is rounded to the compute dtype
  FloatKind scale;    // the stored scale (and its reciprocal) are rounded to this
  bool symmetric;     // else asymmetric
  float eps;          // lower bound of the scale, already in the compute dtype
  float quant_min;
  float quant_max;
};

/// Per block: the scale in the compute dtype (before the cast), the zero
/// point, minval, the stored scale and round(1 / stored scale).
struct ChosenBlocks {
  float* scale_compute;
  float* zero_point;
  float* minval;
  float* scale;
  float* reciprocal;
};

/// Blocks [0, count) from their finite minima and maxima.
void choose_affine_blocks(const AffineChooseOps& ops, const float* min, const float* max,
                          std::int64_t count, const ChosenBlocks& out);

}  // namespace quantkit::cpu
