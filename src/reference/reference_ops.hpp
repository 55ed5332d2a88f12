#pragma once
// The scalar reference implementations behind the public ops. The public
// functions (src/ops/dispatch.cpp) use the SIMD fast path where it applies and these
// otherwise; tests compare the two bit for bit.

#include <optional>
#include <vector>

#include "core/internal/block_layout.hpp"
#include "quantkit/qparams.hpp"
#include "quantkit/quantized_tensor.hpp"

namespace quantkit::reference {

QParams choose_qparams(TensorView x, const QuantSpec& spec);
/// A scale search whose errors are weighted by the importance of each column
/// (x's last dimension; one value per column).
QParams choose_qparams(TensorView x, const QuantSpec& spec, const std::vector<float>& importance);
/// From observed per-block ranges (no mean|x|, so not the stretched mapping).
/// `global_scale`: for two-level specs, g to use instead of the one the
/// ranges give (a tensor quantized in parts shares the whole tensor's g).
QParams choose_qparams(TensorView min_val, TensorView max_val, const QuantSpec& spec,
                       std::optional<float> global_scale = std::nullopt);
QuantizedTensor quantize(TensorView x, const QParams& qparams);
Tensor dequantize(const QuantizedTensor& q, ScalarType output_dtype);
Tensor fake_quantize(TensorView x, const QParams& qparams);
Tensor fake_quantize_backward(TensorView x, TensorView grad_output, const QParams& qparams);
/// Per-block min and max over blocks of shape `block`; every value must be finite.
internal::BlockMinMax block_min_max(TensorView x, const Shape& block);

}  // namespace quantkit::reference
