// Highway single-source kernels for affine quantization, element by element:
// fake quantize, quantize to byte codes, dequantize, and the straight-through
// backward. Compiled for the targets of cpu/highway_config.h, chosen at run
// time; the contract (bit-identical to the reference) is in affine_kernels.hpp.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "cpu/affine_kernels.cpp"
// Before any Highway header: it decides the targets foreach_target compiles.
#include "cpu/highway_config.h"

#include <hwy/cache_control.h>
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "cpu/affine_kernels.hpp"
#include "cpu/affine_lanes-inl.h"
#include "cpu/lanes-inl.h"

HWY_BEFORE_NAMESPACE();
namespace quantkit::cpu::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

template <class K, class M>
void FakeQuantizeImpl(const AffineOps& ops, const BlockMap& map, const BlockParams& params,
                      const void* x, void* y, std::int64_t begin, std::int64_t end) {
  const DF df;
  const FloatKind in_kind = K::in(ops), product = K::product(ops), out_kind = K::out(ops);
  const VF low = hn::Set(df, ops.quant_min), high = hn::Set(df, ops.quant_max);
  const auto one = [&](const void* src, std::int64_t at, void* dst, std::int64_t to,
                       const LaneParams& p, bool direct) QK_LANE_FN {
    const VF code = QuantizeLanes<K, M>(df, product, low, high, p, Load(df, in_kind, src, at));
    StoreRounded(df, out_kind, DequantizeUnrounded<M>(p, code), dst, to, M::stream && direct);
  };
#if QK_HAVE_BF16_PAIRS
  if constexpr (K::input_is(FloatKind::bf16) && K::output_is(FloatKind::bf16)) {
    if (BroadcastRuns(map)) {
      const auto pair = [&](const void* src, std::int64_t at, void* dst, std::int64_t to,
                            const LaneParams& p, bool direct) QK_LANE_FN {
        VF even, odd;
        LoadBF16Pairs(df, src, at, &even, &odd);
        const VF de =
            DequantizeUnrounded<M>(p, QuantizeLanes<K, M>(df, product, low, high, p, even));
        const VF dodd =
            DequantizeUnrounded<M>(p, QuantizeLanes<K, M>(df, product, low, high, p, odd));
        StoreRoundedBF16Pairs(df, de, dodd, dst, to, M::stream && direct);
      };
      MapBF16Pairs(map, params, begin, end, x, y, pair);
      if (M::stream) hwy::FlushStream();
      return;
    }
  }
#endif
  MapFloats(map, params, begin, end, x, ElementSize(in_kind), y, ElementSize(out_kind), one);
  if (M::stream) hwy::FlushStream();
}

template <class K, class M>
void QuantizeImpl(const AffineOps& ops, const BlockMap& map, const BlockParams& params,
                  const void* x, std::int8_t* codes, std::int64_t begin, std::int64_t end) {
  const DF df;
  const hn::Rebind<std::uint8_t, DF> d8;
  const FloatKind in_kind = K::in(ops), product = K::product(ops);
  const VF low = hn::Set(df, ops.quant_min), high = hn::Set(df, ops.quant_max);
  const auto one = [&](const void* src, std::int64_t at, std::int8_t* dst,
                       const LaneParams& p) QK_LANE_FN {
    const VF code = QuantizeLanes<K, M>(df, product, low, high, p, Load(df, in_kind, src, at));
    const auto byte = hn::TruncateTo(d8, CodeBits(df, code));
    hn::StoreU(byte, d8, reinterpret_cast<std::uint8_t*>(dst));
  };
#if QK_HAVE_BF16_PAIRS
  if constexpr (K::input_is(FloatKind::bf16)) {
    if (BroadcastRuns(map)) {
      const DU du;
      const hn::Rebind<std::uint16_t, DF> d16;
      const hn::Repartition<std::uint8_t, decltype(d16)> d8x2;
      const auto pair = [&](const void* src, std::int64_t at, std::int8_t* dst,
                            const LaneParams& p) QK_LANE_FN {
        VF even, odd;
        LoadBF16Pairs(df, src, at, &even, &odd);
        const auto e = CodeBits(df, QuantizeLanes<K, M>(df, product, low, high, p, even));
        const auto o = CodeBits(df, QuantizeLanes<K, M>(df, product, low, high, p, odd));
        // Byte 0 of each 32-bit lane is the even element's code, byte 1 the odd one's.
        const auto merged = hn::Or(hn::And(e, hn::Set(du, 0xFFu)),
                                   hn::And(hn::ShiftLeft<8>(o), hn::Set(du, 0xFF00u)));
        hn::StoreU(hn::BitCast(d8x2, hn::TruncateTo(d16, merged)), d8x2,
                   reinterpret_cast<std::uint8_t*>(dst));
      };
      MapBF16PairsToCodes(map, params, begin, end, x, codes, pair);
      return;
    }
  }
#endif
  MapToCodes(map, params, begin, end, x, ElementSize(in_kind), codes, one);
}

template <class K, class M>
void DequantizeImpl(const AffineOps& ops, const BlockMap& map, const BlockParams& params,
                    const std::int8_t* codes, void* y, std::int64_t begin, std::int64_t end) {
  const DF df;
  const DI di;
  const hn::Rebind<std::int8_t, DF> d8;
  const hn::Rebind<std::uint8_t, DF> du8;
  const FloatKind out_kind = K::out(ops);
  const bool unsigned_codes = ops.quant_max > 127;
  const auto one = [&](const std::int8_t* src, void* dst, std::int64_t to, const LaneParams& p,
                       bool direct) QK_LANE_FN {
    const auto q =
        unsigned_codes
            ? hn::PromoteTo(di, hn::LoadU(du8, reinterpret_cast<const std::uint8_t*>(src)))
            : hn::PromoteTo(di, hn::LoadU(d8, src));
    StoreRounded(df, out_kind, DequantizeUnrounded<M>(p, hn::ConvertTo(df, q)), dst, to,
                 M::stream && direct);
  };
  MapFromCodes(map, params, begin, end, codes, y, ElementSize(out_kind), one);
  if (M::stream) hwy::FlushStream();
}

// The mask tests the unclamped code. Skipping its rounding to promote(P, Z) is
// exact here too: for codes of at most 8 bits, quant_min - 1 and quant_max + 1
// are representable in every kind, so rounding cannot carry a code across a
// bound. NaN inputs never pass (their bf16-rounded product is meaningless).
template <class K, class M>
void SteBackwardImpl(const AffineOps& ops, const BlockMap& map, const BlockParams& params,
                     const void* x, const void* grad, FloatKind grad_kind, void* out,
                     std::int64_t begin, std::int64_t end) {
  const DF df;
  const FloatKind in_kind = K::in(ops), product = K::product(ops);
  const VF low = hn::Set(df, ops.quant_min), high = hn::Set(df, ops.quant_max);
  const auto one = [&](const void* xs, std::int64_t xi, const void* gs, std::int64_t gi, void* dst,
                       std::int64_t di, const LaneParams& p) QK_LANE_FN {
    const VF xv = Load(df, in_kind, xs, xi);
    hn::Mask<DF> outside;
    if constexpr (M::stretched) {  // passes inside [-clip, clip]
      outside = hn::Or(hn::Lt(xv, hn::Neg(p.reciprocal)), hn::Gt(xv, p.reciprocal));
    } else {
      const VF rounded = RoundFiniteTo(df, product, hn::Mul(xv, p.reciprocal));
      const VF q = hn::Add(hn::Round(rounded), M::zero_point ? p.zero_point : hn::Zero(df));
      outside = hn::Or(hn::Lt(q, low), hn::Gt(q, high));
    }
    const auto passes = hn::Not(hn::Or(outside, hn::IsNaN(xv)));
    const VF g = Load(df, grad_kind, gs, gi);
    StoreExact(df, grad_kind, hn::Mul(g, hn::IfThenElseZero(passes, hn::Set(df, 1.0f))), dst, di);
  };
  MapWithGrad(map, params, begin, end, x, ElementSize(in_kind), grad, ElementSize(grad_kind), out,
              one);
}

void FakeQuantizeRange(const AffineOps& ops, const BlockMap& map, const BlockParams& params,
                       const void* x, void* y, std::int64_t begin, std::int64_t end) {
  const KindCombo combo =
      ops.output == ops.input ? CombinationOf(ops.input, ops.product) : KindCombo::runtime;
  Dispatch<true>(combo, ops, [&](auto k, auto m) HWY_ATTR {
    FakeQuantizeImpl<decltype(k), decltype(m)>(ops, map, params, x, y, begin, end);
  });
}

void QuantizeRange(const AffineOps& ops, const BlockMap& map, const BlockParams& params,
                   const void* x, std::int8_t* codes, std::int64_t begin, std::int64_t end) {
  // The output kind does not matter for codes.
  Dispatch<false>(CombinationOf(ops.input, ops.product), ops, [&](auto k, auto m) HWY_ATTR {
    QuantizeImpl<decltype(k), decltype(m)>(ops, map, params, x, codes, begin, end);
  });
}

void DequantizeRange(const AffineOps& ops, const BlockMap& map, const BlockParams& params,
                     const std::int8_t* codes, void* y, std::int64_t begin, std::int64_t end) {
  // Only the output kind and the zero point matter: stretched dequantizes as
  // (q - zp) * s too.
  AffineOps affine = ops;
  if (affine.grid == AffineGrid::stretched) affine.grid = AffineGrid::zero_point;
  Dispatch<true>(CombinationOf(ops.output, ops.output), affine, [&](auto k, auto m) HWY_ATTR {
    DequantizeImpl<decltype(k), decltype(m)>(affine, map, params, codes, y, begin, end);
  });
}

void SteBackwardRange(const AffineOps& ops, const BlockMap& map, const BlockParams& params,
                      const void* x, const void* grad, FloatKind grad_kind, void* out,
                      std::int64_t begin, std::int64_t end) {
  Dispatch<false>(CombinationOf(ops.input, ops.product), ops, [&](auto k, auto m) HWY_ATTR {
    SteBackwardImpl<decltype(k), decltype(m)>(ops, map, params, x, grad, grad_kind, out, begin,
                                              end);
  });
}

const char* TargetName() {
  return hwy::TargetName(HWY_TARGET);
}

}  // namespace quantkit::cpu::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace quantkit::cpu {

HWY_EXPORT(FakeQuantizeRange);
HWY_EXPORT(QuantizeRange);
HWY_EXPORT(DequantizeRange);
HWY_EXPORT(SteBackwardRange);
HWY_EXPORT(TargetName);

void fake_quantize_range(const AffineOps& ops, const BlockMap& map, const BlockParams& params,
                         const void* x, void* y, std::int64_t begin, std::int64_t end) {
  HWY_DYNAMIC_DISPATCH(FakeQuantizeRange)(ops, map, params, x, y, begin, end);
}
void quantize_range(const AffineOps& ops, const BlockMap& map, const BlockParams& params,
                    const void* x, std::int8_t* codes, std::int64_t begin, std::int64_t end) {
  HWY_DYNAMIC_DISPATCH(QuantizeRange)(ops, map, params, x, codes, begin, end);
}
void dequantize_range(const AffineOps& ops, const BlockMap& map, const BlockParams& params,
                      const std::int8_t* codes, void* y, std::int64_t begin, std::int64_t end) {
  HWY_DYNAMIC_DISPATCH(DequantizeRange)(ops, map, params, codes, y, begin, end);
}
void ste_backward_range(const AffineOps& ops, const BlockMap& map, const BlockParams& params,
                        const void* x, const void* grad, FloatKind grad_kind, void* out,
                        std::int64_t begin, std::int64_t end) {
  HWY_DYNAMIC_DISPATCH(SteBackwardRange)(ops, map, params, x, grad, grad_kind, out, begin, end);
}
const char* active_target_name() {
  return HWY_DYNAMIC_DISPATCH(TargetName)();
}
std::int64_t compiled_targets() {
  return HWY_TARGETS;
}

}  // namespace quantkit::cpu
#endif  // HWY_ONCE
