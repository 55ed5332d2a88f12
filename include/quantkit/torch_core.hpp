#pragma once
// PyTorch-core fake quantization: torch.fake_quantize_per_tensor_affine,
// torch.fake_quantize_per_channel_affine and the learnable (LSQ) variants
// torch._fake_quantize_learnable_per_{tensor,channel}_affine, CPU semantics of
// torch 2.13. QAT users compare against these, so they are kept separate from
// the torchao numerics of ops.hpp.
// The per-element formulas (where PyTorch rounds, where it fuses a multiply-add,
// how NaN and the clamp behave, the float zero point of embeddings) are
// specified in docs/numerics.md ("Functions", torch_core rows). Input dtypes
// float32 / bfloat16 / float16.

#include <cstdint>

#include "quantkit/tensor.hpp"

namespace quantkit::torch_core {

struct Range {
  std::int64_t quant_min;
  std::int64_t quant_max;
};

Tensor fake_quantize_per_tensor_affine(TensorView x, float scale, std::int64_t zero_point,
                                       Range range);
/// Mask of the forward (1 where the gradient passes) as uint8.
Tensor fake_quantize_per_tensor_mask(TensorView x, float scale, std::int64_t zero_point,
                                     Range range);
/// scale: float32 [C]; zero_point: int32 (integer path) or float32 (float path) [C];
/// C == x.shape[axis]; axis may be negative.
Tensor fake_quantize_per_channel_affine(TensorView x, TensorView scale, TensorView zero_point,
                                        std::int64_t axis, Range range);
Tensor fake_quantize_per_channel_mask(TensorView x, TensorView scale, TensorView zero_point,
                                      std::int64_t axis, Range range);
/// dx = grad_output * mask, in grad_output's dtype.
Tensor apply_mask(TensorView grad_output, TensorView mask);

// ---- Learnable scale / zero point (LSQ). scale and zero_point are float32
// parameters of shape [1] (per-tensor) or [C] (per-channel).
//
// Zero point used by the forward: per-tensor (int64) clamp(nearbyint(zp), qmin, qmax);
// per-channel clamp(round_half_even(zp), qmin, qmax). The per-tensor backward
// uses trunc(clamp(zp + 0.5f, qmin, qmax)) instead: PyTorch's asymmetry, kept.
// Backward per element, with xq = nearbyint(fma(x, inv, zp)) (zp added BEFORE rounding):
//   dx      = dy * (qmin <= xq <= qmax)
//   dscale  = xq < qmin: dy * (qmin - zp) * g;  xq > qmax: dy * (qmax - zp) * g;
//             else ((dy * fma(clamp(xq) - zp, scale, -x)) * inv) * g
// (the fused multiply-adds are PyTorch's: its kernels are compiled with FMA contraction)
//   dzp     = outside: ((dy * -1) * scale) * g;   inside: 0
// summed over all elements (per-tensor) or all but `axis` (per-channel). The
// per-element terms match PyTorch exactly; the sums are accumulated in double
// and rounded once, while PyTorch uses float32 cascade sums (docs/numerics.md).

struct LearnableGrads {
  Tensor grad_input;       // x's shape, float32
  Tensor grad_scale;       // [1] or [C], float32
  Tensor grad_zero_point;  // [1] or [C], float32
};

Tensor fake_quantize_learnable_per_tensor_affine(TensorView x, TensorView scale,
                                                 TensorView zero_point, Range range);
LearnableGrads fake_quantize_learnable_per_tensor_affine_backward(TensorView grad_output,
                                                                  TensorView x, TensorView scale,
                                                                  TensorView zero_point,
                                                                  Range range,
                                                                  float grad_factor = 1.0f);
Tensor fake_quantize_learnable_per_channel_affine(TensorView x, TensorView scale,
                                                  TensorView zero_point, std::int64_t axis,
                                                  Range range);
LearnableGrads fake_quantize_learnable_per_channel_affine_backward(TensorView grad_output,
                                                                   TensorView x, TensorView scale,
                                                                   TensorView zero_point,
                                                                   std::int64_t axis, Range range,
                                                                   float grad_factor = 1.0f);

}  // namespace quantkit::torch_core
