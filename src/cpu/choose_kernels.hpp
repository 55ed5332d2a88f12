#pragma once
// SIMD form of the per-block integer qparams formulas of
// reference::BlockChooser (asymmetric, symmetric and symmetric_signed mappings,
// integer zero point), across blocks: one lane per block. Bit-identical to the
// scalar chooser on every compiled target (tests/cpp/test_fast_path.cpp,
// tests/cpp/test_scale_search.cpp).
#include <cstdint>

#include "cpu/affine_kernels.hpp"
#include "quantkit/quant_spec.hpp"

namespace quantkit::cpu {

struct AffineChooseOps {
  FloatKind compute;  // every step is rounded to the compute dtype
  FloatKind scale;    // the stored scale (and its reciprocal) are rounded to this
  Mapping mapping;    // asymmetric, symmetric or symmetric_signed
  float eps;          // lower bound of the scale, already in the compute dtype
  float quant_min;
  float quant_max;
  /// The scale search's clip ratio: each range is first scaled by it and rounded
  /// to the compute dtype (BlockChooser::candidate); 1 leaves a range of compute
  /// dtype values as it is (BlockChooser::choose).
  float ratio = 1.0f;
};

/// Whether choose_affine_blocks has the formulas of `mapping`.
inline bool lanes_choose(Mapping mapping) {
  return mapping == Mapping::asymmetric || mapping == Mapping::symmetric ||
         mapping == Mapping::symmetric_signed;
}

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
