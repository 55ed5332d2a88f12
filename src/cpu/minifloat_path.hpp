#pragma once
// The SIMD paths of the floating element formats (FP8 / FP6 / FP4 with
// float32, MX or NVFP4 scales) for contiguous float32 / bf16 / fp16 data whose
// blocks are runs of the flat index. std::nullopt where they do not apply.
#include <optional>

#include "cpu/dispatch_helpers.hpp"
#include "cpu/fast_path.hpp"

#include "quantkit/qparams.hpp"
#include "quantkit/quantized_tensor.hpp"

namespace quantkit::cpu {

bool minifloat_fake_quantize_into(TensorView x, const QParams& qparams, void* out);
bool minifloat_dequantize_into(const QuantizedTensor& q, ScalarType output_dtype, void* out);
/// cpu::weight_decoders for the floating formats.
WeightDecoders minifloat_weight_decoders(const QParams& qparams, const Shape& shape,
                                         ScalarType output);
std::optional<QuantizedTensor> minifloat_quantize(TensorView x, const QParams& qparams);
std::optional<Tensor> minifloat_fake_quantize_backward(TensorView x, TensorView grad_output,
                                                       const QParams& qparams);

}  // namespace quantkit::cpu
