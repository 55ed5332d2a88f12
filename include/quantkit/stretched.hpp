#pragma once
// The stretched (PARQ) grid and its integer LUT form.
//
// A stretched b-bit tensor (Mapping::stretched) has levels (k + 0.5) * s for
// k in [-2^(b-1), 2^(b-1) - 1]: codes k, float zero point -0.5. Kernels that
// want an integer LUT use lut[k + 2^(b-1)] = 2k + 1 (odd integers) with
// scale s / 2; lut * (s / 2) dequantizes to exactly the same values as
// (k + 0.5) * s whenever s / 2 is a normal number (always true for scales from
// choose_qparams, whose eps is at least finfo.eps).

#include <cstdint>
#include <vector>

#include "quantkit/quantized_tensor.hpp"

namespace quantkit {

struct StretchedLut {
  std::vector<std::int8_t> lut;       // 2^b odd integers, indexed by code - quant_min
  Tensor half_scale;                  // scale / 2, same grid and dtype as the scale
  std::vector<std::uint8_t> indices;  // code - quant_min per element, row-major
};

/// Throws Error unless `q` was quantized with Mapping::stretched.
StretchedLut to_stretched_lut(const QuantizedTensor& q);
/// lut[index] * half_scale, computed in `output_dtype` as dequantize does.
Tensor dequantize_lut(const StretchedLut& lut, const QuantizedTensor& q,
                      ScalarType output_dtype = ScalarType::float32);

}  // namespace quantkit
