// Highway kernel of choose_kernels.hpp. std::min / std::max / std::clamp are
// written as the comparisons they are (IfThenElse), not as Min / Max lanes,
// whose choice between equal operands differs by target.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "cpu/choose_kernels.cpp"
// Before any Highway header: it decides the targets foreach_target compiles.
#include "cpu/highway_config.h"

#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <cstring>

#include "cpu/choose_kernels.hpp"
#include "cpu/lanes-inl.h"

HWY_BEFORE_NAMESPACE();
namespace quantkit::cpu::HWY_NAMESPACE {

// std::min(a, b): a unless b < a.
HWY_INLINE VF ScalarMin(VF a, VF b) {
  return hn::IfThenElse(hn::Lt(b, a), b, a);
}
// std::max(a, b): a unless a < b.
HWY_INLINE VF ScalarMax(VF a, VF b) {
  return hn::IfThenElse(hn::Lt(a, b), b, a);
}

HWY_INLINE void ChooseLanes(DF df, const AffineChooseOps& ops, VF lo, VF hi, float* scale_compute,
                            float* zero_point, float* minval, float* scale, float* reciprocal) {
  const auto r = [&](VF v) HWY_ATTR { return RoundFiniteTo(df, ops.compute, v); };
  const VF zero = hn::Zero(df);
  const VF qmin = hn::Set(df, ops.quant_min), qmax = hn::Set(df, ops.quant_max);
  const VF ratio = hn::Set(df, ops.ratio);
  const VF eps = hn::Set(df, ops.eps);
  lo = r(hn::Mul(lo, ratio));
  hi = r(hn::Mul(hi, ratio));
  const VF min_neg = hn::Add(ScalarMin(lo, zero), zero);  // -0 -> +0, as the reference
  const VF max_pos = hn::Add(ScalarMax(hi, zero), zero);
  const bool asymmetric = ops.mapping == Mapping::asymmetric;
  VF chosen, zp, low;
  if (asymmetric) {
    const VF range = r(hn::Sub(max_pos, min_neg));
    chosen = ScalarMax(r(hn::Div(range, hn::Set(df, ops.quant_max - ops.quant_min))), eps);
    low = min_neg;
  } else {
    const VF amax = ScalarMax(hn::Neg(min_neg), max_pos);
    if (ops.mapping == Mapping::symmetric_signed) {
      // The extreme on qmin (the negative one on a tie); |scale| >= eps, sign kept.
      const VF extreme = hn::IfThenElse(hn::Gt(max_pos, hn::Neg(min_neg)), max_pos, min_neg);
      const VF signed_scale = r(hn::Div(extreme, qmin));
      chosen = hn::IfThenElse(hn::Lt(signed_scale, zero), ScalarMin(signed_scale, hn::Neg(eps)),
                              ScalarMax(signed_scale, eps));
    } else {
      chosen = ScalarMax(r(hn::Div(amax, hn::Set(df, (ops.quant_max - ops.quant_min) / 2))), eps);
    }
    zp = hn::Set(df, static_cast<float>(static_cast<int>((ops.quant_max + ops.quant_min + 1) / 2)));
    low = hn::Neg(amax);
  }
  if (asymmetric) {
    const VF shift = hn::Round(r(hn::Div(min_neg, chosen)));
    const VF unclamped = r(hn::Sub(qmin, shift));
    // std::clamp(v, lo, hi): lo if v < lo, else hi if hi < v, else v.
    zp = hn::IfThenElse(hn::Lt(unclamped, qmin), qmin,
                        hn::IfThenElse(hn::Lt(qmax, unclamped), qmax, unclamped));
  }
  const VF stored = RoundFiniteTo(df, ops.scale, chosen);
  hn::StoreU(chosen, df, scale_compute);
  hn::StoreU(zp, df, zero_point);
  hn::StoreU(low, df, minval);
  hn::StoreU(stored, df, scale);
  hn::StoreU(RoundFiniteTo(df, ops.scale, hn::Div(hn::Set(df, 1.0f), stored)), df, reciprocal);
}

void ChooseAffineBlocks(const AffineChooseOps& ops, const float* min, const float* max,
                        std::int64_t count, const ChosenBlocks& out) {
  const DF df;
  const auto lanes = static_cast<std::int64_t>(hn::Lanes(df));
  std::int64_t b = 0;
  for (; b + lanes <= count; b += lanes) {
    ChooseLanes(df, ops, hn::LoadU(df, min + b), hn::LoadU(df, max + b), out.scale_compute + b,
                out.zero_point + b, out.minval + b, out.scale + b, out.reciprocal + b);
  }
  if (b == count) return;
  const std::int64_t rest = count - b;
  alignas(64) float lo[kMaxLanes] = {}, hi[kMaxLanes] = {};
  alignas(64) float staged[5][kMaxLanes];
  std::memcpy(lo, min + b, rest * sizeof(float));
  std::memcpy(hi, max + b, rest * sizeof(float));
  ChooseLanes(df, ops, hn::Load(df, lo), hn::Load(df, hi), staged[0], staged[1], staged[2],
              staged[3], staged[4]);
  float* targets[5] = {out.scale_compute, out.zero_point, out.minval, out.scale, out.reciprocal};
  for (int k = 0; k < 5; ++k) std::memcpy(targets[k] + b, staged[k], rest * sizeof(float));
}

}  // namespace quantkit::cpu::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace quantkit::cpu {

HWY_EXPORT(ChooseAffineBlocks);

void choose_affine_blocks(const AffineChooseOps& ops, const float* min, const float* max,
                          std::int64_t count, const ChosenBlocks& out) {
  HWY_DYNAMIC_DISPATCH(ChooseAffineBlocks)(ops, min, max, count, out);
}

}  // namespace quantkit::cpu
#endif  // HWY_ONCE
