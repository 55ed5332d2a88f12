#pragma once
// quantize / dequantize / fake_quantize and its backward (torchao numerics).
//
// Input dtypes: float32, bfloat16, float16. Every formula, rounding order and
// edge case (NaN / Inf, ties, saturation, MX byte-0 blocks, the float and none
// zero-point domains, the stretched grid) is specified once, in
// docs/numerics.md, and defined by the scalar reference in src/reference/;
// the SIMD paths equal it bit for bit. The one invariant to remember here:
// fake_quantize(x) == dequantize(quantize(x), x.dtype) bit for bit, always.

#include <string_view>

#include "quantkit/qparams.hpp"
#include "quantkit/quantized_tensor.hpp"
#include "quantkit/tensor.hpp"

namespace quantkit {

QuantizedTensor quantize(TensorView x, const QParams& qparams);
/// choose_qparams(x, spec), then quantize: in one pass over the data where the
/// SIMD path covers the spec. Bit-identical to quantize(x, choose_qparams(x, spec)).
QuantizedTensor quantize(TensorView x, const QuantSpec& spec);
Tensor dequantize(const QuantizedTensor& q, ScalarType output_dtype = ScalarType::float32);
Tensor fake_quantize(TensorView x, const QParams& qparams);
/// out= variants: write into `out`, which must already have the result's shape
/// and dtype (x's for fake_quantize); no allocation on the SIMD path, so
/// repeated calls on small tensors cost only the kernel. Same bits as above.
void fake_quantize_into(TensorView x, const QParams& qparams, Tensor& out);
void dequantize_into(const QuantizedTensor& q, Tensor& out);

/// Caller-owned, row-major contiguous, writable memory for the out= variants
/// (e.g. a NumPy array or torch tensor the caller reuses between calls).
struct OutView {
  void* data;
  ScalarType dtype;
  Shape shape;
};
/// As above, into caller memory. `out` may be `x` itself (in place: each
/// element is read before it is written) but must not partly overlap it.
void fake_quantize_into(TensorView x, const QParams& qparams, const OutView& out);
/// Into caller memory of q's shape; out.dtype is the output dtype.
void dequantize_into(const QuantizedTensor& q, const OutView& out);

/// Straight-through estimator: grad where the unclamped quantized value
/// round(x * r) + zp lies in [quant_min, quant_max] (inclusive), else 0.
/// grad_output has x's shape; the result has grad_output's dtype.
/// For floating element formats the mask is |x / scale| <= max_value.
Tensor fake_quantize_backward(TensorView x, TensorView grad_output, const QParams& qparams);

/// Per-block minima and maxima of x for `granularity`, as float32 tensors of
/// the qparams grid shape. NaN or Inf in x is an Error naming the index.
struct BlockRange {
  Tensor min;
  Tensor max;
};
BlockRange block_range(TensorView x, const Granularity& granularity);

/// Which library's fake-quantize numerics a call follows.
enum class Convention : std::uint8_t {
  torchao,     // quant_primitives (this header)
  torch_core,  // torch.fake_quantize_per_tensor/per_channel_affine (torch_core.hpp)
};
std::string_view name(Convention convention);
/// "torchao" or "torch_core"; throws Error otherwise.
Convention convention_from_name(std::string_view text);

/// fake_quantize selectable by convention. torch_core needs an integer-domain
/// per-tensor or per-axis spec with float32 scale and integer zero point.
Tensor fake_quantize(TensorView x, const QParams& qparams, Convention convention);

}  // namespace quantkit
