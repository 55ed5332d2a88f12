#pragma once
// QParams and choose_qparams: the numerics of torchao's choose_qparams_affine.
//
// choose_qparams reproduces torchao's choose_qparams_affine (and its float8,
// MX, NVFP4 and stretched variants) on the CPU: every step one IEEE float32 op
// rounded back to the input dtype, as PyTorch eager does. The per-mapping
// formulas, rounding order, defaults and edge cases are specified once, in
// docs/numerics.md ("Functions"), and defined by src/reference/ (BlockChooser,
// and the block-scale rows of quantkit/scale_scheme.hpp). NaN or Inf in the
// data (or in min/max) is an Error naming the first index: a NaN scale would
// silently poison a model.

#include "quantkit/quant_spec.hpp"
#include "quantkit/tensor.hpp"

namespace quantkit {

struct QParams {
  QuantSpec spec;
  /// Grid of block scales, in the scale dtype (float32 storage for e8m0 and
  /// fp8_e4m3fn scales, holding their exact values).
  Tensor scale;
  /// Same grid; int32 (or spec.zero_point_dtype) for the int domain, float for
  /// the float domain and the stretched mapping; empty for the none domain.
  Tensor zero_point;
  /// The minval formulation x = (q - qmin) * scale + minval (float32; empty
  /// where undefined): min(min, 0) for asymmetric, -max|x| for symmetric.
  Tensor minval;
  /// Float dtype the qparams were computed in (the input dtype).
  ScalarType compute_dtype = ScalarType::float32;
  /// Two-level specs (QuantSpec::global_scale): the float32 per-tensor scale g
  /// as a one-element tensor; empty otherwise. `scale` then holds the stored
  /// block scales b, and the effective scale of a block is b * g: quantize
  /// multiplies by (1 / g) / b and dequantize by g * b, as torchao's NVFP4.
  Tensor global_scale;

  /// Validated user-given qparams: scale must be finite and > 0, zero points
  /// in [quant_min, quant_max] for the int domain, both grids the same size;
  /// a global scale (one finite float > 0) exactly when the spec is two-level.
  static QParams make(const QuantSpec& spec, Tensor scale, Tensor zero_point = {},
                      ScalarType compute_dtype = ScalarType::float32, Tensor global_scale = {});
  bool has_zero_point() const { return zero_point.numel() > 0; }
  /// g of a two-level spec, 1 otherwise.
  float global_scale_value() const {
    return global_scale.numel() > 0 ? static_cast<float>(global_scale.get(0)) : 1.0f;
  }
};

QParams choose_qparams(TensorView x, const QuantSpec& spec);
/// From observed per-block ranges (torchao choose_qparams_affine_with_min_max):
/// min_val/max_val hold one value per block, in the compute dtype.
QParams choose_qparams(TensorView min_val, TensorView max_val, const QuantSpec& spec);
/// Two-level specs: the qparams of x under a given per-tensor scale g (the g
/// of a whole tensor that is quantized in parts, e.g. row blocks streamed from
/// a checkpoint). g must be a finite float > 0.
QParams choose_qparams(TensorView x, const QuantSpec& spec, float global_scale);
/// A scale search (QuantSpec::scale_search) that weights each element's
/// squared error by the importance of its column, x's last dimension: e.g. the
/// mean squared activation of that input channel over calibration data
/// (llama.cpp's imatrix). `importance` holds x.shape[-1] finite values >= 0.
QParams choose_qparams(TensorView x, const QuantSpec& spec, TensorView importance);

}  // namespace quantkit
