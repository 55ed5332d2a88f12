// Half-quadratic quantization (HQQ; Badri & Shaji, 2023) of one block: the
// zero point (or, under an integer zero point, the scale) is refined by
// alternating a rounding step with a proximal step on the error under an
// l_p norm (p = 0.7 < 1, which lets a few large errors stay large so the
// rest fit better), as the hqq package and torchao's HQQ do. Differences
// from them, which make the result a function of the block alone: the early
// stop is decided per block (they stop the whole tensor at once), and sums
// run in double in element order.
#include <cmath>
#include <limits>
#include <vector>

#include "reference/block_chooser.hpp"
#include "reference/eager_math.hpp"
#include "reference/element_ops.hpp"

namespace quantkit::reference {
namespace {

constexpr int kIterations = 20;
constexpr float kLpNorm = 0.7f;
constexpr float kBeta = 10.0f;   // the initial weight of the quadratic term
constexpr float kKappa = 1.01f;  // its growth per iteration

// argmin_e |e|^p + beta/2 (e - v)^2, the generalized soft threshold of HQQ.
float shrink_lp(float v, float beta) {
  const float magnitude = std::fabs(v);
  if (magnitude == 0.0f) return 0.0f;
  const float shrunk = magnitude - std::pow(magnitude, kLpNorm - 1.0f) / beta;
  return shrunk > 0.0f ? std::copysign(shrunk, v) : 0.0f;
}

float clamp_code(float q, float qmin, float qmax) {
  return q < qmin ? qmin : (q > qmax ? qmax : q);
}

}  // namespace

BlockQParams BlockChooser::search_hqq(const float* x, const float* w, std::int64_t n, float min_val,
                                      float max_val, std::int64_t block) const {
  if (spec_.resolved_zero_point_domain() == ZeroPointDomain::float_) {
    // The zero point in code units, z, with x ~ (q - z) s: HQQ's own
    // parametrization (inverse scale 1 / s). The start is not rounded, as in
    // the hqq package (torchao rounds it for 4 bits: 0.2 dB worse at g32).
    const BlockQParams start = choose(min_val, max_val, 0.0f, block);
    const float range = max_val - min_val;
    if (!(range / (qmax_ - qmin_) > eps_)) return start;  // (near) constant: nothing to refine
    const float inverse = (qmax_ - qmin_) / range;        // HQQ's inverse scale
    float z = -min_val * inverse;
    float best = std::numeric_limits<float>::infinity();
    float beta = kBeta;
    for (int i = 0; i < kIterations; ++i) {
      double zero_sum = 0, error_sum = 0;
      for (std::int64_t j = 0; j < n; ++j) {
        const float q = clamp_code(round_half_even(x[j] * inverse + z), qmin_, qmax_);
        const float restored = (q - z) / inverse;
        const float e = shrink_lp(x[j] - restored, beta);
        zero_sum += q - (x[j] - e) * inverse;
        error_sum += std::fabs(x[j] - restored);
      }
      z = static_cast<float>(zero_sum / static_cast<double>(n));
      beta *= kKappa;
      const auto error = static_cast<float>(error_sum / static_cast<double>(n));
      if (!(error < best)) break;  // as HQQ: the update of this step is kept
      best = error;
    }
    // tinygemm's float zero point: x = (q - mid) s + zero_point.
    const float mid = (qmax_ + qmin_ + 1) / 2;
    BlockQParams out = start;
    out.scale = r(1.0f / inverse);
    out.zero_point = r((mid - z) * out.scale);
    return out;
  }
  // Integer zero point: start from the MSE clipping search, keep its zero
  // point and refine the scale: the quadratic step's least-squares scale for
  // the codes against x minus the shrunk error. Iterates run in plain float
  // arithmetic while the (importance-weighted) squared error falls; the last
  // improving scale is then checked against the start with the real
  // quantize-dequantize error, and kept only if strictly better, so this never
  // does worse than search=mse.
  const BlockQParams start = search_mse(x, w, n, min_val, max_val, block);
  const float zero_point = start.zero_point;
  float scale = start.scale;
  float candidate = start.scale;
  double candidate_error = std::numeric_limits<double>::infinity();
  float beta = kBeta;
  for (int i = 0; i < kIterations; ++i) {
    double error = 0, numerator = 0, denominator = 0;
    for (std::int64_t j = 0; j < n; ++j) {
      const float q = clamp_code(round_half_even(x[j] / scale + zero_point), qmin_, qmax_);
      const float restored = (q - zero_point) * scale;
      const double weight = w != nullptr ? w[j] : 1.0;
      const double d = static_cast<double>(x[j]) - restored;
      error += weight * d * d;
      const float e = shrink_lp(x[j] - restored, beta);
      const double centered = static_cast<double>(q) - zero_point;
      numerator += weight * (x[j] - e) * centered;
      denominator += weight * centered * centered;
    }
    if (!(error < candidate_error)) break;
    candidate_error = error;
    candidate = scale;
    beta *= kKappa;
    const float next = r(clamp_eps(static_cast<float>(numerator / denominator)));
    if (!(denominator > 0) || !std::isfinite(next) || next == scale) break;
    scale = next;
  }
  if (candidate == start.scale) return start;
  ElementPlan plan =
      single_int_block_plan(spec_, t_, scale_storage(spec_, t_), zero_point_storage(spec_, t_));
  set_int_block(plan, 0, round_to(plan.scale_dtype, start.scale), zero_point);
  const float start_error = block_squared_error(plan, x, w, n);
  set_int_block(plan, 0, round_to(plan.scale_dtype, candidate), zero_point);
  if (!(block_squared_error(plan, x, w, n) < start_error)) return start;
  BlockQParams out = start;
  out.scale = candidate;
  out.minval = r((qmin_ - zero_point) * candidate);  // x = (q - qmin) s + minval
  return out;
}

}  // namespace quantkit::reference
