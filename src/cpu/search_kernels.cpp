// Highway kernel for the scale search's candidate errors: each block's
// quantize -> dequantize -> squared error sum in one pass over the values.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "cpu/search_kernels.cpp"
// Before any Highway header: it decides the targets foreach_target compiles.
#include "cpu/highway_config.h"

#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "cpu/affine_kernels.hpp"
#include "cpu/affine_lanes-inl.h"
#include "cpu/lanes-inl.h"
#include "cpu/search_kernels.hpp"

HWY_BEFORE_NAMESPACE();
namespace quantkit::cpu::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// The reference keeps 16 partial sums, element i in sum i mod 16. With N lanes
// (N divides 16 on every target compiled here) that is 16 / N accumulators,
// accumulator v holding sums v * N .. v * N + N - 1.
constexpr std::size_t kPartials = 16;

// Lane 0 of v after lane l += lane l + N/2, then + N/4, ... down to one lane.
template <class D>
HWY_INLINE float HalvingSum(D /*d*/, hn::Vec<D> v) {
#if HWY_TARGET == HWY_SCALAR  // one lane: nothing left to halve
  return hn::GetLane(v);
#else
  if constexpr (hn::MaxLanes(D()) == 1) {
    return hn::GetLane(v);
  } else {
    const hn::Half<D> dh;
    return HalvingSum(dh, hn::Add(hn::LowerHalf(dh, v), hn::UpperHalf(dh, v)));
  }
#endif
}

template <class K, class M>
void BlockSquaredErrorsImpl(const AffineOps& ops, const float* values, const float* weights,
                            std::int64_t inner, std::int64_t count, const BlockParams& params,
                            float* errors) {
  const DF df;
  constexpr std::size_t kLanes = HWY_LANES(float);
  constexpr std::size_t kVectors = kPartials / kLanes;
  static_assert(kLanes <= kPartials && kLanes * kVectors == kPartials,
                "lanes must divide the 16 partial sums");
  HWY_DASSERT(hn::Lanes(df) == kLanes);
  const FloatKind product = K::product(ops), out_kind = K::out(ops);
  const VF low = hn::Set(df, ops.quant_min), high = hn::Set(df, ops.quant_max);
  const auto term = [&](const LaneParams& p, VF x, const float* w) QK_LANE_FN {
    const VF code = QuantizeLanes<K, M>(df, product, low, high, p, x);
    const VF y = RoundFiniteTo(df, out_kind, DequantizeUnrounded<M>(p, code));
    const VF d = hn::Sub(x, y);
    const VF squared = hn::Mul(d, d);
    return w == nullptr ? squared : hn::Mul(squared, hn::LoadU(df, w));
  };
  const std::int64_t whole = inner / static_cast<std::int64_t>(kPartials) * kPartials;
  const std::int64_t tail = inner - whole;
  for (std::int64_t j = 0; j < count; ++j) {
    const LaneParams p{hn::Set(df, params.reciprocal[j]), hn::Set(df, params.scale[j]),
                       hn::Set(df, params.zero_point[j])};
    const float* x = values + j * inner;
    const float* w = weights == nullptr ? nullptr : weights + j * inner;
    VF acc[kVectors];
    for (std::size_t v = 0; v < kVectors; ++v) acc[v] = hn::Zero(df);
    for (std::int64_t i = 0; i < whole; i += kPartials) {
      for (std::size_t v = 0; v < kVectors; ++v) {
        const std::int64_t at = i + static_cast<std::int64_t>(v * kLanes);
        acc[v] = hn::Add(acc[v], term(p, hn::LoadU(df, x + at), w == nullptr ? nullptr : w + at));
      }
    }
    if (tail > 0) {  // the last elements into sums 0 .. tail - 1; the others add +0
      alignas(64) float xs[kPartials] = {}, ws[kPartials] = {};
      std::memcpy(xs, x + whole, static_cast<std::size_t>(tail) * sizeof(float));
      if (w != nullptr) std::memcpy(ws, w + whole, static_cast<std::size_t>(tail) * sizeof(float));
      for (std::size_t v = 0; v < kVectors; ++v) {
        const auto first = static_cast<std::int64_t>(v * kLanes);
        if (first >= tail) break;
        const auto live = hn::FirstN(df, static_cast<std::size_t>(tail - first));
        const VF t = term(p, hn::Load(df, xs + first), w == nullptr ? nullptr : ws + first);
        acc[v] = hn::Add(acc[v], hn::IfThenElseZero(live, t));
      }
    }
    // The halving (sum l += sum l + width, width 8, 4, 2, 1): first across
    // accumulators, then across the halves of the one left, in registers.
    for (std::size_t width = kVectors / 2; width >= 1; width /= 2) {
      for (std::size_t v = 0; v < width; ++v) acc[v] = hn::Add(acc[v], acc[v + width]);
    }
    errors[j] = HalvingSum(df, acc[0]);
  }
}

// std::min / std::max / std::clamp exactly, signed zeros included (they keep
// the first argument on ties; Highway's Min / Max leave -0 versus +0 open).
HWY_INLINE VF StdMin(VF a, VF b) {
  return hn::IfThenElse(hn::Lt(b, a), b, a);
}
HWY_INLINE VF StdMax(VF a, VF b) {
  return hn::IfThenElse(hn::Lt(a, b), b, a);
}
HWY_INLINE VF StdClamp(VF v, VF lo, VF hi) {
  return hn::IfThenElse(hn::Lt(v, lo), lo, hn::IfThenElse(hn::Lt(hi, v), hi, v));
}

void ClipCandidates(const CandidateOps& ops, const float* lo, const float* hi, float ratio,
                    std::int64_t count, const CandidateArrays& out) {
  const DF df;
  const auto lanes = static_cast<std::int64_t>(hn::Lanes(df));
  const VF zero = hn::Zero(df), one = hn::Set(df, 1.0f), factor = hn::Set(df, ratio);
  const VF qmin = hn::Set(df, ops.quant_min), qmax = hn::Set(df, ops.quant_max);
  const VF levels = hn::Set(df, ops.quant_max - ops.quant_min);
  const VF half_levels = hn::Set(df, (ops.quant_max - ops.quant_min) / 2);
  const VF midpoint = hn::Set(df, std::trunc((ops.quant_max + ops.quant_min + 1) / 2));
  const VF eps = hn::Set(df, ops.eps);
  const auto t = [&](VF v) QK_LANE_FN { return RoundFiniteTo(df, ops.compute, v); };
  const auto one_vector = [&](const float* l, const float* h, float* dst[6]) QK_LANE_FN {
    const VF min_val = t(hn::Mul(hn::LoadU(df, l), factor));
    const VF max_val = t(hn::Mul(hn::LoadU(df, h), factor));
    const VF min_neg = hn::Add(StdMin(min_val, zero), zero);
    const VF max_pos = hn::Add(StdMax(max_val, zero), zero);
    VF scale, zero_point, minval;
    if (ops.asymmetric) {
      scale = StdMax(t(hn::Div(t(hn::Sub(max_pos, min_neg)), levels)), eps);
      const VF shift = hn::Round(t(hn::Div(min_neg, scale)));
      zero_point = StdClamp(t(hn::Sub(qmin, shift)), qmin, qmax);
      minval = min_neg;
    } else {
      const VF amax = StdMax(hn::Neg(min_neg), max_pos);
      scale = StdMax(t(hn::Div(amax, half_levels)), eps);
      zero_point = midpoint;
      minval = hn::Neg(amax);
    }
    const VF stored = RoundFiniteTo(df, ops.scale, scale);
    hn::StoreU(scale, df, dst[0]);
    hn::StoreU(zero_point, df, dst[1]);
    hn::StoreU(minval, df, dst[2]);
    hn::StoreU(stored, df, dst[3]);
    hn::StoreU(RoundFiniteTo(df, ops.scale, hn::Div(one, stored)), df, dst[4]);
    hn::StoreU(ops.zero_point ? zero_point : zero, df, dst[5]);
  };
  std::int64_t j = 0;
  for (; j + lanes <= count; j += lanes) {
    float* dst[6] = {out.scale + j,        out.zero_point + j, out.minval + j,
                     out.stored_scale + j, out.reciprocal + j, out.code_zero_point + j};
    one_vector(lo + j, hi + j, dst);
  }
  if (j < count) {  // the last blocks through a padded copy
    alignas(64) float l[kMaxLanes] = {}, h[kMaxLanes] = {}, results[6][kMaxLanes];
    const auto rest = static_cast<std::size_t>(count - j);
    std::memcpy(l, lo + j, rest * sizeof(float));
    std::memcpy(h, hi + j, rest * sizeof(float));
    float* dst[6] = {results[0], results[1], results[2], results[3], results[4], results[5]};
    one_vector(l, h, dst);
    float* targets[6] = {out.scale,        out.zero_point, out.minval,
                         out.stored_scale, out.reciprocal, out.code_zero_point};
    for (int a = 0; a < 6; ++a) std::memcpy(targets[a] + j, results[a], rest * sizeof(float));
  }
}

void BlockSquaredErrors(const AffineOps& ops, const float* values, const float* weights,
                        std::int64_t inner, std::int64_t count, const BlockParams& params,
                        float* errors) {
  const KindCombo combo =
      ops.output == ops.input ? CombinationOf(ops.input, ops.product) : KindCombo::runtime;
  Dispatch<false>(combo, ops, [&](auto k, auto m) HWY_ATTR {
    BlockSquaredErrorsImpl<decltype(k), decltype(m)>(ops, values, weights, inner, count, params,
                                                     errors);
  });
}

}  // namespace quantkit::cpu::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace quantkit::cpu {

HWY_EXPORT(BlockSquaredErrors);
HWY_EXPORT(ClipCandidates);

void block_squared_errors(const AffineOps& ops, const float* values, const float* weights,
                          std::int64_t inner, std::int64_t count, const BlockParams& params,
                          float* errors) {
  HWY_DYNAMIC_DISPATCH(BlockSquaredErrors)(ops, values, weights, inner, count, params, errors);
}

void clip_candidates(const CandidateOps& ops, const float* lo, const float* hi, float ratio,
                     std::int64_t count, const CandidateArrays& out) {
  HWY_DYNAMIC_DISPATCH(ClipCandidates)(ops, lo, hi, ratio, count, out);
}

}  // namespace quantkit::cpu
#endif  // HWY_ONCE
