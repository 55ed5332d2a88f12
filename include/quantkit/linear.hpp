#pragma once
// y = x · wᵀ + bias with quantized weights read in place, and the same
// arithmetic for dense weights: the kernels behind converted and prepared
// Linear layers.
//
// The result is specified element by element, independent of the SIMD target
// and of the thread count. With T the dtype of x (float32, bfloat16 or
// float16), every weight value is first the value dequantize(w, T) gives;
// x and w are widened to float32 and, with products rounded to float32,
//
//   partial[j] = +0 + x[0+j]·w[0+j] + x[16+j]·w[16+j] + ...   (j = 0..15, in k order)
//   then, pairwise, partial[j] += partial[j + h] for h = 8, 4, 2, 1 (j < h)
//   y = round_T(partial[0] + bias)                            (bias widened to float32)
//
// Products of bfloat16 / float16 values are exact in float32, so only the sums
// round. A dense weight that equals dequantize(w, T) gives the same y as w:
// a prepared (fake-quantized) layer computes exactly what its converted form
// computes.

#include <cstdint>
#include <memory>
#include <optional>

#include "quantkit/qparams.hpp"
#include "quantkit/quantized_tensor.hpp"
#include "quantkit/tensor.hpp"

namespace quantkit {

namespace cpu {
class WeightRows;
}

/// A 2-D quantized weight [out_features, in_features] ready for repeated
/// linear() calls: its per-block scales and kernel constants are resolved
/// once, here. The packed codes (packing.hpp layout) are read in place and must
/// outlive this object; `dtype` is the dtype the weight dequantizes to, which
/// must be the dtype of every x it multiplies.
class LinearWeight {
 public:
  LinearWeight(TensorView packed, Shape shape, const QParams& qparams, ScalarType dtype);
  /// Reads q's packed bytes in place: q must outlive this object.
  LinearWeight(const QuantizedTensor& q, ScalarType dtype);

  const Shape& shape() const { return shape_; }
  ScalarType dtype() const { return dtype_; }
  /// Rows [first, first + count) dequantized to dtype() into `out`
  /// (count * in_features elements): what dequantize() gives for those rows.
  void decode_rows(std::int64_t first, std::int64_t count, void* out) const;
  /// The rows named by `indices` (an int32 / int64 tensor, each in
  /// [0, out_features)), as a tensor of shape indices.shape + [in_features]:
  /// an embedding lookup that dequantizes only the rows it returns.
  Tensor gather_rows(TensorView indices) const;

  const cpu::WeightRows& rows() const { return *rows_; }

 private:
  Shape shape_;
  ScalarType dtype_;
  std::shared_ptr<const cpu::WeightRows> rows_;
};

/// x [..., K] · weightᵀ [N, K] (+ bias [N]) in the order above; weight and
/// bias have x's dtype. Throws Error naming the argument for mismatched
/// shapes or dtypes.
Tensor linear(TensorView x, TensorView weight, std::optional<TensorView> bias = std::nullopt);
/// The same with a quantized weight (x must have weight.dtype()).
Tensor linear(TensorView x, const LinearWeight& weight,
              std::optional<TensorView> bias = std::nullopt);

/// The integer path of dynamically quantized inputs (W8A8 dynamic, 8da4w): each
/// row of x is quantized with `activation` (an integer spec of at most 8 bits
/// with one block per row, its qparams chosen from the row: codes qx, scale sx,
/// zero point zx), the weight's integer codes qw are read in place, and
///
///   acc_b = sum over the columns k of weight block b of (qx_k - zx) * (qw_k - zw_b)
///           (exact, in int32)
///   y     = round_T( ((+0 + float(acc_0) * float(sx * sw_0)) + float(acc_1) * ...)
///                    + bias )                      (float32 ops, blocks in order)
///
/// The weight must be an integer format with an integer or no zero point whose
/// blocks are whole rows or runs of a row (not the stretched grid, not floating
/// formats), of at most 33025 columns per block (so no int32 sum can overflow).
/// Throws Error naming the rule otherwise.
Tensor linear_int(TensorView x, const QuantSpec& activation, const LinearWeight& weight,
                  std::optional<TensorView> bias = std::nullopt);
/// The same with x quantized by given per-tensor qparams (a calibrated static
/// input quantizer, as in W8A8): sx and zx are the tensor's for every row.
Tensor linear_int(TensorView x, const QParams& activation, const LinearWeight& weight,
                  std::optional<TensorView> bias = std::nullopt);

}  // namespace quantkit
