#pragma once
// The per-block formulas of choose_qparams (qparams.hpp) and the assembly of
// per-block results into QParams. Shared by the reference choose_qparams and
// the fused SIMD choose-and-quantize path, so both compute the same bits.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "quantkit/error.hpp"
#include "quantkit/qparams.hpp"
#include "quantkit/scale_scheme.hpp"
#include "reference/eager_math.hpp"
#include "reference/element_ops.hpp"

namespace quantkit::reference {

struct BlockQParams {
  float scale = 0;  // value in the compute dtype, before the cast to the scale dtype
  float zero_point = 0;
  float minval = 0;
};

/// Storage dtype of the scale / zero point chosen for `spec` from data of dtype `compute`.
ScalarType scale_storage(const QuantSpec& spec, ScalarType compute);
ScalarType zero_point_storage(const QuantSpec& spec, ScalarType compute);

/// The clipping ratios of the MSE scale search: 1 - 0.02 k for k = 0..20.
inline constexpr int kClipRatioCount = 21;
inline float clip_ratio(int k) {
  return static_cast<float>(1.0 - 0.02 * k);
}

/// The qparams of one block from its min, max and mean |x| (the latter for
/// the stretched mapping only), every step rounded to the compute dtype.
class BlockChooser {
 public:
  /// `global_scale`: g of a two-level spec (global_scale_from_amax), 1 otherwise.
  BlockChooser(const QuantSpec& spec, ScalarType compute, float global_scale = 1.0f)
      : spec_(spec), t_(compute), global_scale_(global_scale) {
    const auto info = finfo(compute);
    const double default_eps = spec.mapping == Mapping::stretched ? info.eps : info.smallest_normal;
    eps_ = round_to(t_, static_cast<float>(spec.eps.value_or(default_eps)));
    qmin_ = static_cast<float>(spec.dtype.quant_min());
    qmax_ = static_cast<float>(spec.dtype.quant_max());
  }

  /// The lower bound of integer scales, in the compute dtype.
  float eps() const { return eps_; }

  /// QuantSpec::scale_search = mse: the qparams of `choose` for the block's
  /// range [min, max] clipped by each ratio of kClipRatios, keeping the one
  /// whose quantize-dequantize squared error over the n values `x` (block
  /// order, in the compute dtype), each times its importance `w` (null: 1),
  /// is least; the first (ratio 1) on ties.
  /// QuantSpec::scale_search = hqq: search_hqq.
  BlockQParams search(const float* x, const float* w, std::int64_t n, float min_val, float max_val,
                      std::int64_t block) const;
  BlockQParams search_mse(const float* x, const float* w, std::int64_t n, float min_val,
                          float max_val, std::int64_t block) const;
  /// Half-quadratic quantization (HQQ, Badri & Shaji 2023) of one block; see hqq.cpp.
  BlockQParams search_hqq(const float* x, const float* w, std::int64_t n, float min_val,
                          float max_val, std::int64_t block) const;
  /// Candidate k of that search: `choose` on the range clipped by clip_ratio(k).
  BlockQParams candidate(float min_val, float max_val, int k, std::int64_t block) const {
    const float ratio = clip_ratio(k);
    return choose(round_to(t_, min_val * ratio), round_to(t_, max_val * ratio), 0.0f, block);
  }

  BlockQParams choose(float min_val, float max_val, float mean_abs, std::int64_t block) const {
    if (spec_.dtype.is_floating()) return choose_floating(std::max(-min_val, max_val), block);
    if (spec_.mapping == Mapping::stretched) return choose_stretched(min_val, max_val, mean_abs);
    if (spec_.resolved_zero_point_domain() == ZeroPointDomain::float_) {
      return choose_tinygemm(min_val, max_val);
    }
    // "+ 0.0f" turns -0 into +0: the sign of a zero minimum or maximum depends
    // on the reduction order (a sequential scan vs SIMD lanes), so no result
    // carries it (minval of a block whose minimum is zero is +0).
    const float min_neg = std::min(min_val, 0.0f) + 0.0f;
    const float max_pos = std::max(max_val, 0.0f) + 0.0f;
    BlockQParams out;
    if (spec_.mapping == Mapping::asymmetric) {
      const float range = r(max_pos - min_neg);
      out.scale = clamp_eps(r(range / (qmax_ - qmin_)));
      const float shift = reference::round_half_even(r(min_neg / out.scale));
      out.zero_point = std::clamp(r(qmin_ - shift), qmin_, qmax_);
      out.minval = min_neg;
      return out;
    }
    const float amax = std::max(-min_neg, max_pos);
    if (spec_.mapping == Mapping::symmetric_signed) {
      // The extreme lands on qmin; on a tie the negative one, whose scale is positive.
      const float extreme = max_pos > -min_neg ? max_pos : min_neg;
      const float scale = r(extreme / qmin_);
      out.scale = scale < 0 ? std::min(scale, -eps_) : clamp_eps(scale);  // |scale| >= eps
    } else if (spec_.mapping == Mapping::symmetric) {
      out.scale = clamp_eps(r(amax / ((qmax_ - qmin_) / 2)));
    } else {  // symmetric_no_clipping_err
      const float smin = r(min_neg / qmin_);
      const float smax = r(max_pos / qmax_);
      out.scale = clamp_eps(smin > smax ? smin : smax);
    }
    out.zero_point = std::trunc((qmax_ + qmin_ + 1) / 2);
    out.minval = -amax;
    return out;
  }

 private:
  float r(float value) const { return round_to(t_, value); }
  float clamp_eps(float scale) const { return std::max(scale, eps_); }

  BlockQParams choose_tinygemm(float min_val, float max_val) const {
    BlockQParams out;
    out.scale = clamp_eps(r(r(max_val - min_val) / (qmax_ - qmin_)));
    const float mid = (qmax_ + qmin_ + 1) / 2;
    out.zero_point = r(min_val + r(out.scale * mid));
    out.minval = min_val + 0.0f;  // no signed zero, as above
    return out;
  }

  BlockQParams choose_stretched(float min_val, float max_val, float mean_abs) const {
    const float amax = std::max(-min_val, max_val);
    const auto bits = static_cast<float>(spec_.dtype.bits());
    const float level_max = std::ldexp(1.0f, spec_.dtype.bits() - 1) - 0.5f;
    const float bounded = std::min(r(bits * mean_abs), amax);
    BlockQParams out;
    out.scale = r(clamp_eps(bounded) / level_max);
    out.zero_point = -0.5f;
    return out;
  }

  BlockQParams choose_floating(float amax, std::int64_t block) const {
    const auto& format = spec_.dtype.minifloat();
    const auto element_max = static_cast<float>(format.max_value);
    BlockQParams out;
    if (const auto from_amax = scale_scheme_of(spec_).scale_from_amax) {
      out.scale = from_amax(amax, format, global_scale_);
    } else {
      const float bounded = spec_.eps ? std::max(amax, eps_) : amax;
      QK_CHECK(bounded > 0, "block ", block, " is all zeros, so its ", format.name,
               " scale would be 0 and every value NaN; set eps (a lower bound on the block "
               "amax, e.g. 1e-12)");
      out.scale = r(bounded / element_max);
      // amax / max in float16 / bfloat16 can round to 0 for tiny weights:
      // every code would then be NaN, so refuse (NaN inputs never get here).
      QK_CHECK(out.scale > 0, "block ", block, " has amax ", bounded, ", so its ", format.name,
               " scale ", bounded / element_max, " underflows to 0 in ", name(t_),
               "; compute qparams from a float32 copy of the data");
    }
    return out;
  }

  const QuantSpec& spec_;
  ScalarType t_;
  float global_scale_;
  float eps_;
  float qmin_;
  float qmax_;
};

/// Squared quantization error of `plan`'s block 0 over x[0..n), each term
/// (x - y)^2 times w[i] when `w` is given: 16 partial float sums (element i into
/// sum i mod 16), then halved pairwise (i + 8, i + 4, ...): a fixed order that a
/// vectorized version can reproduce bit for bit.
float block_squared_error(const ElementPlan& plan, const float* x, const float* w, std::int64_t n);
/// That sum for given quantize-dequantize results y[0..n) (the order above).
float ordered_squared_error(const float* x, const float* y, const float* w, std::int64_t n);

/// Throws Error when a scale overflowed the compute dtype.
void check_scales_finite(const std::vector<BlockQParams>& blocks, ScalarType compute);
/// QParams of shape `grid` whose scale / zero point / minval tensors (in their
/// stored dtypes; empty where the spec has none) are left for store_blocks.
QParams allocate_qparams(const QuantSpec& spec, ScalarType compute, const Shape& grid);
/// Stores the results of blocks [first, first + count) (row-major grid order).
void store_blocks(QParams& out, std::int64_t first, const BlockQParams* blocks, std::int64_t count);
/// g for `spec` from the per-block minima and maxima of the whole tensor
/// (global_scale_from_amax of their largest magnitude); 1 for single-level specs.
float global_scale_of_ranges(const QuantSpec& spec, const float* mins, const float* maxs,
                             std::int64_t blocks);
/// Sets out.global_scale to g when the spec is two-level.
void store_global_scale(QParams& out, float global_scale);
/// QParams of shape `grid` from per-block results (row-major grid order).
QParams assemble(const QuantSpec& spec, ScalarType compute, const Shape& grid,
                 const std::vector<BlockQParams>& blocks);

}  // namespace quantkit::reference
