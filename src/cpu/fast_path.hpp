#pragma once
// SIMD + OpenMP implementations of the public ops (choose_qparams, quantize,
// dequantize, fake_quantize and its straight-through backward) for the cases
// they cover; each returns std::nullopt when it does not apply and the
// reference runs.
//
// Covered: integer formats in the int or none zero-point domain (every
// mapping but stretched), and the floating element formats (FP8 / FP6 / FP4
// with float32, MX or NVFP4 scales; minifloat_path.hpp); float32 / bfloat16 /
// float16 inputs, contiguous; any scale / zero-point dtype; granularities whose
// blocks are runs of the flat index (per-tensor, per-token, per-group along the
// last axis, per-axis) — block(i) = (i / inner) % period.

#include <memory>
#include <optional>
#include <vector>

#include "core/internal/block_layout.hpp"
#include "cpu/dispatch_helpers.hpp"
#include "quantkit/qparams.hpp"
#include "quantkit/quantized_tensor.hpp"

namespace quantkit::cpu {

std::optional<QParams> choose_qparams(TensorView x, const QuantSpec& spec);
/// A scale search weighted by column importance (reference::choose_qparams's
/// overload), on threads for blocks that are runs of the flat index.
std::optional<QParams> choose_qparams(TensorView x, const QuantSpec& spec,
                                      const std::vector<float>& importance);
/// Into preallocated storage of the result's shape and dtype; false when the
/// fast path does not apply (nothing written).
bool fake_quantize_into(TensorView x, const QParams& qparams, void* out);
bool dequantize_into(const QuantizedTensor& q, ScalarType output_dtype, void* out);
/// Per-block minima and maxima (row-major over the qparams grid), when the
/// blocks are runs of the flat index and every value is finite.
std::optional<internal::BlockMinMax> block_min_max(TensorView x, const Shape& block);
/// choose_qparams and quantize in one pass (blocks that are single runs of at
/// most one chunk: per-token, per-group, per-row), each block quantized while
/// it is still in cache. Bit-identical to quantize(x, choose_qparams(x, spec)).
std::optional<QuantizedTensor> choose_qparams_and_quantize(TensorView x, const QuantSpec& spec);
std::optional<QuantizedTensor> quantize(TensorView x, const QParams& qparams);
std::optional<Tensor> dequantize(const QuantizedTensor& q, ScalarType output_dtype);
std::optional<Tensor> fake_quantize(TensorView x, const QParams& qparams);
/// Per-block scales and zero points of a 2-D weight, as linear()'s register
/// decoders read them: block (row r, column c) is r * blocks_per_row + c / group.
struct PackedIntPlan {
  std::shared_ptr<const void> owner;  // keeps the arrays below alive
  const float* scale;
  const float* zero_point;
  std::int64_t group;
  std::int64_t blocks_per_row;
};

/// How linear() can read a 2-D weight of `shape`, all from one plan (each
/// block's scale resolved once); each part is nullopt where it does not apply.
struct WeightDecoders {
  /// Row ranges dequantized into memory by the dequantize kernels (blocks must
  /// not straddle rows).
  std::optional<RangeDecoder> range;
  /// 4- or 8-bit integer codes, or FP4 E2M1 codes, decoded in registers: blocks
  /// are the whole tensor, whole rows or runs of a row whose length is a
  /// multiple of 16, and rows start at whole bytes. FP4 needs round_T(decode(q)
  /// * s) to be what dequantize gives (not an MX scale rounded to float16 first).
  std::optional<PackedIntPlan> packed;
  /// linear_int's integer blocks: integer codes of any width with an integer or
  /// no zero point (not the stretched grid).
  std::optional<PackedIntPlan> integer;
};
WeightDecoders weight_decoders(const QParams& qparams, const Shape& shape, ScalarType output);
std::optional<Tensor> fake_quantize_backward(TensorView x, TensorView grad_output,
                                             const QParams& qparams);

}  // namespace quantkit::cpu
