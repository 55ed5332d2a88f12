#pragma once
// QParams and choose_qparams: the numerics of torchao's choose_qparams_affine.
//
// Contract of choose_qparams (input dtype T in {float32, bfloat16, float16}).
// Every arithmetic step is one IEEE float32 op rounded back to T (round to
// nearest even), as PyTorch eager does; divisions by a constant are true
// divisions (PyTorch CPU semantics; CUDA multiplies by a rounded reciprocal and
// can differ by 1 ulp, see docs/numerics.md). Per block:
//   min_neg = min(amin(x), 0), max_pos = max(amax(x), 0)
//   symmetric:    scale = max(-min_neg, max_pos) / ((qmax - qmin) / 2)
//                 zp = trunc((qmax + qmin + 1) / 2); scale = max(scale, eps)
//   symmetric_no_clipping_err: scale = max(min_neg / qmin, max_pos / qmax), then as symmetric
//   asymmetric, int domain:
//                 scale = max((max_pos - min_neg) / (qmax - qmin), eps)
//                 zp = clamp(qmin - round(min_neg / scale), qmin, qmax)
//   asymmetric, float domain (tinygemm, range not widened to include 0):
//                 scale = max((max - min) / (qmax - qmin), eps); zp = min + scale * mid,
//                 mid = (qmax + qmin + 1) / 2
//   stretched:    scale = max(min(b * mean|x|, max|x|), eps) / (2^(b-1) - 0.5), zp = -0.5
//   floating element formats: scale = max(amax|x|, eps) / max_value(format)
//   e8m0 scales:  2^(floor(log2 amax) - target_max_pow2) (floor) or rceil rounding
//   fp8_e4m3fn scales: e4m3(clamp(amax / max_value, 2^-6, 448))
// round() is half-to-even. The scale is cast to the scale dtype last (a bf16
// input with a float32 scale dtype gives a bf16-valued scale).
// NaN or Inf in the data (or in min/max) is an Error naming the first index: a
// NaN scale would silently poison a model.

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

  /// Validated user-given qparams: scale must be finite and > 0, zero points
  /// in [quant_min, quant_max] for the int domain, both grids the same size.
  static QParams make(const QuantSpec& spec, Tensor scale, Tensor zero_point = {},
                      ScalarType compute_dtype = ScalarType::float32);
  bool has_zero_point() const { return zero_point.numel() > 0; }
};

QParams choose_qparams(TensorView x, const QuantSpec& spec);
/// From observed per-block ranges (torchao choose_qparams_affine_with_min_max):
/// min_val/max_val hold one value per block, in the compute dtype.
QParams choose_qparams(TensorView min_val, TensorView max_val, const QuantSpec& spec);

}  // namespace quantkit
