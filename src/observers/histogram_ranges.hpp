#pragma once
// Range choices from a histogram other than torch.ao's L2 search. Each takes
// the histogram over [min, max] (equal-width bins) and returns the [lo, hi]
// to quantize with.
#include <cstdint>
#include <utility>
#include <vector>

#include "quantkit/quant_spec.hpp"

namespace quantkit::histogram_ranges {

/// lo / hi at cumulative fractions (1 - p/100) and p/100 of the mass, linear
/// inside a bin.
std::pair<float, float> percentile(const std::vector<float>& hist, float min, float max,
                                   double percent);

/// TensorRT-style entropy calibration: the |x| threshold t whose clipped
/// distribution, quantized to 2^(bits-1) levels, has the least KL divergence
/// from the observed one; the range is [-t, t] cut to [min, max].
std::pair<float, float> entropy(const std::vector<float>& hist, float min, float max,
                                const QuantSpec& spec);

/// The range [min, max] * a, a in (0, 1], whose quantization of the histogram
/// (each bin's mass at its centre, choose_qparams of the spec) has the least
/// mean squared error, clipping error included.
std::pair<float, float> mse(const std::vector<float>& hist, float min, float max,
                            const QuantSpec& spec);

}  // namespace quantkit::histogram_ranges
