#pragma once
// The SIMD paths of the floating element formats (FP8 / FP6 / FP4 with
// float32, MX or NVFP4 scales) for contiguous float32 / bf16 / fp16 data whose
// blocks are runs of the flat index. std::nullopt where they do not apply.
#include <optional>

#include "quantkit/qparams.hpp"
#include "quantkit/quantized_tensor.hpp"

namespace quantkit::cpu {

std::optional<Tensor> minifloat_fake_quantize(TensorView x, const QParams& qparams);
std::optional<QuantizedTensor> minifloat_quantize(TensorView x, const QParams& qparams);
std::optional<Tensor> minifloat_fake_quantize_backward(TensorView x, TensorView grad_output,
                                                       const QParams& qparams);
std::optional<Tensor> minifloat_dequantize(const QuantizedTensor& q, ScalarType output_dtype);

}  // namespace quantkit::cpu
