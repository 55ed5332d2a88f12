// Highway kernel for the scale search's candidate errors: each block's
// quantize -> dequantize -> squared error sum in one pass over the values.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "cpu/search_kernels.cpp"
// Before any Highway header: it decides the targets foreach_target compiles.
#include "cpu/highway_config.h"

#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <algorithm>
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

void block_squared_errors(const AffineOps& ops, const float* values, const float* weights,
                          std::int64_t inner, std::int64_t count, const BlockParams& params,
                          float* errors) {
  HWY_DYNAMIC_DISPATCH(BlockSquaredErrors)(ops, values, weights, inner, count, params, errors);
}

}  // namespace quantkit::cpu
#endif  // HWY_ONCE
