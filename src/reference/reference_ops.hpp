#pragma once
// The scalar reference implementations behind the public ops. The public
// functions (src/ops.cpp) use the SIMD fast path where it applies and these
// otherwise; tests compare the two bit for bit.

#include "quantkit/qparams.hpp"
#include "quantkit/quantized_tensor.hpp"

namespace quantkit::reference {

QParams choose_qparams(TensorView x, const QuantSpec& spec);
QuantizedTensor quantize(TensorView x, const QParams& qparams);
Tensor dequantize(const QuantizedTensor& q, ScalarType output_dtype);
Tensor fake_quantize(TensorView x, const QParams& qparams);
Tensor fake_quantize_backward(TensorView x, TensorView grad_output, const QParams& qparams);

}  // namespace quantkit::reference
