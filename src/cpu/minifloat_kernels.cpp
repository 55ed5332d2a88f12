// Highway kernels for the floating element formats; contract in
// minifloat_kernels.hpp. Encoding rounds in the integer domain for normal
// values and with a float add for subnormal ones (the add is IEEE
// round-to-nearest-even at exactly the format's subnormal quantum).
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "cpu/minifloat_kernels.cpp"
// Before any Highway header: it decides the targets foreach_target compiles.
#include "cpu/highway_config.h"

#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <cmath>
#include <cstring>

#include "cpu/lanes-inl.h"
#include "cpu/minifloat_kernels.hpp"

HWY_BEFORE_NAMESPACE();
namespace quantkit::cpu::HWY_NAMESPACE {

// Codes (0..255) in u32 lanes for the scaled values y.
HWY_INLINE hn::Vec<DU> EncodeLanes(DF df, const MinifloatOps& ops, VF y) {
  const DU du;
  const int m = ops.mantissa_bits;
  const std::uint32_t sign_mask = 1u << (ops.exponent_bits + m);
  const auto nan = hn::IsNaN(y);
  const VF max = hn::Set(df, ops.max_value);
  const VF a = hn::Min(hn::Abs(y), max);  // NaN lanes are replaced below
  // The sign bit of y (negative zero and NaN included) becomes the code's.
  const auto sign = hn::IfThenElseZero(
      hn::Ne(hn::And(hn::BitCast(du, y), hn::Set(du, 0x80000000u)), hn::Zero(du)),
      hn::Set(du, sign_mask));
  // Normal: round the float32 mantissa to m bits (RNE) and rebias.
  const auto bits = hn::BitCast(du, a);
  const int drop = 23 - m;
  const auto lsb = hn::And(hn::ShiftRightSame(bits, drop), hn::Set(du, 1u));
  const auto half = hn::Set(du, (1u << (drop - 1)) - 1u);
  const auto rounded = hn::ShiftRightSame(hn::Add(hn::Add(bits, half), lsb), drop);
  const auto normal =
      hn::Sub(rounded, hn::Set(du, static_cast<std::uint32_t>(127 - ops.exponent_bias) << m));
  // Subnormal: adding 2^(24 - bias - m) leaves one ulp = the subnormal quantum.
  const VF magic = hn::Set(df, ops.encode_magic);
  const auto subnormal = hn::Sub(hn::BitCast(du, hn::Add(a, magic)), hn::BitCast(du, magic));
  const VF smallest_normal = hn::Set(df, ops.smallest_normal);
  const auto code =
      hn::IfThenElse(hn::RebindMask(du, hn::Lt(a, smallest_normal)), subnormal, normal);
  const auto nan_code = ops.has_nan ? hn::Or(sign, hn::Set(du, 0x7Fu)) : hn::Set(du, ops.max_code);
  return hn::IfThenElse(hn::RebindMask(du, nan), nan_code, hn::Or(code, sign));
}

// Exact values of codes in u32 lanes (NaN / Inf codes included).
HWY_INLINE VF DecodeLanes(DF df, const MinifloatOps& ops, hn::Vec<DU> code) {
  const DU du;
  const DI di;
  const int m = ops.mantissa_bits;
  const std::uint32_t sign_mask = 1u << (ops.exponent_bits + m);
  const std::uint32_t field_max = (1u << ops.exponent_bits) - 1;
  const auto magnitude = hn::And(code, hn::Set(du, sign_mask - 1));
  const auto field = hn::ShiftRightSame(magnitude, m);
  const auto mantissa = hn::And(magnitude, hn::Set(du, (1u << m) - 1));
  const auto normal_bits =
      hn::Or(hn::ShiftLeft<23>(
                 hn::Add(field, hn::Set(du, static_cast<std::uint32_t>(127 - ops.exponent_bias)))),
             hn::ShiftLeftSame(mantissa, 23 - m));
  const VF subnormal =
      hn::Mul(hn::ConvertTo(df, hn::BitCast(di, mantissa)), hn::Set(df, ops.subnormal_step));
  VF value = hn::IfThenElse(hn::RebindMask(df, hn::Eq(field, hn::Zero(du))), subnormal,
                            hn::BitCast(df, normal_bits));
  // The reference's NaN is the default quiet NaN (0x7FC00000), negated for
  // negative codes; Highway's NaN() has another payload.
  const VF quiet_nan = hn::BitCast(df, hn::Set(du, 0x7FC00000u));
  if (ops.has_infinity) {  // e5m2: field all ones is Inf (mantissa 0) or NaN
    const auto top = hn::RebindMask(df, hn::Eq(field, hn::Set(du, field_max)));
    const auto inf = hn::RebindMask(df, hn::Eq(mantissa, hn::Zero(du)));
    value = hn::IfThenElse(top, hn::IfThenElse(inf, hn::Inf(df), quiet_nan), value);
  } else if (ops.has_nan) {  // e4m3fn: S.1111.111 only
    const auto nan = hn::RebindMask(df, hn::Eq(magnitude, hn::Set(du, 0x7Fu)));
    value = hn::IfThenElse(nan, quiet_nan, value);
  }
  const auto negative =
      hn::RebindMask(df, hn::Ne(hn::And(code, hn::Set(du, sign_mask)), hn::Zero(du)));
  return hn::IfThenElse(negative, hn::Neg(value), value);
}

HWY_INLINE VF ScaleLanes(const MinifloatOps& ops, const LaneParams& p, VF x) {
  return ops.divide ? hn::Div(x, p.reciprocal) : hn::Mul(x, p.reciprocal);
}

// dequantized value, already rounded to the output kind (NaN lanes kept).
HWY_INLINE VF DequantizeLanes(DF df, const MinifloatOps& ops, const LaneParams& p,
                              hn::Vec<DU> code) {
  const VF element = DecodeLanes(df, ops, code);
  VF product;
  if (ops.scale_in_output) {
    const VF element_out =
        hn::IfThenElse(hn::IsNaN(element), element, RoundFiniteTo(df, ops.output, element));
    product = hn::Mul(element_out, RoundFiniteTo(df, ops.output, p.scale));
  } else {
    product = hn::Mul(element, p.scale);
  }
  const VF rounded = RoundFiniteTo(df, ops.output, product);
  return hn::IfThenElse(hn::IsNaN(product), product, rounded);
}

void MinifloatQuantizeRange(const MinifloatOps& ops, const BlockMap& map, const BlockParams& params,
                            const void* x, std::uint8_t* codes, std::int64_t begin,
                            std::int64_t end) {
  const DF df;
  const hn::Rebind<std::uint8_t, DF> d8;
  const auto one = [&](const void* src, std::int64_t at, std::uint8_t* dst,
                       const LaneParams& p) QK_LANE_FN {
    const auto code = EncodeLanes(df, ops, ScaleLanes(ops, p, Load(df, ops.input, src, at)));
    hn::StoreU(hn::TruncateTo(d8, code), d8, dst);  // codes are 0..255
  };
  MapToCodes(map, params, begin, end, x, ElementSize(ops.input), codes, one);
}

void MinifloatFakeQuantizeRange(const MinifloatOps& ops, const BlockMap& map,
                                const BlockParams& params, const void* x, void* y,
                                std::int64_t begin, std::int64_t end) {
  const DF df;
  const auto one = [&](const void* src, std::int64_t at, void* dst, std::int64_t to,
                       const LaneParams& p, bool /*direct*/) QK_LANE_FN {
    const auto code = EncodeLanes(df, ops, ScaleLanes(ops, p, Load(df, ops.input, src, at)));
    StoreExact(df, ops.output, DequantizeLanes(df, ops, p, code), dst, to);
  };
  MapFloats(map, params, begin, end, x, ElementSize(ops.input), y, ElementSize(ops.output), one);
}

void MinifloatDequantizeRange(const MinifloatOps& ops, const BlockMap& map,
                              const BlockParams& params, const std::uint8_t* codes, void* y,
                              std::int64_t begin, std::int64_t end) {
  const DF df;
  const DU du;
  const hn::Rebind<std::uint8_t, DF> d8;
  const auto one = [&](const std::uint8_t* src, void* dst, std::int64_t to, const LaneParams& p,
                       bool /*direct*/) QK_LANE_FN {
    const auto code = hn::PromoteTo(du, hn::LoadU(d8, src));
    StoreExact(df, ops.output, DequantizeLanes(df, ops, p, code), dst, to);
  };
  MapFromCodes(map, params, begin, end, codes, y, ElementSize(ops.output), one);
}

// Straight-through estimator: grad where |scaled x| <= max (NaN never passes).
void MinifloatSteBackwardRange(const MinifloatOps& ops, const BlockMap& map,
                               const BlockParams& params, const void* x, const void* grad,
                               FloatKind grad_kind, void* out, std::int64_t begin,
                               std::int64_t end) {
  const DF df;
  const auto one = [&](const void* xs, std::int64_t xi, const void* gs, std::int64_t gi, void* dst,
                       std::int64_t di, const LaneParams& p) QK_LANE_FN {
    const VF scaled = ScaleLanes(ops, p, Load(df, ops.input, xs, xi));
    const auto passes = hn::Le(hn::Abs(scaled), hn::Set(df, ops.max_value));
    const VF g = Load(df, grad_kind, gs, gi);
    StoreExact(df, grad_kind, hn::Mul(g, hn::IfThenElseZero(passes, hn::Set(df, 1.0f))), dst, di);
  };
  MapWithGrad(map, params, begin, end, x, ElementSize(ops.input), grad, ElementSize(grad_kind), out,
              one);
}

}  // namespace quantkit::cpu::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace quantkit::cpu {

HWY_EXPORT(MinifloatQuantizeRange);
HWY_EXPORT(MinifloatFakeQuantizeRange);
HWY_EXPORT(MinifloatDequantizeRange);
HWY_EXPORT(MinifloatSteBackwardRange);

void minifloat_ste_backward_range(const MinifloatOps& ops, const BlockMap& map,
                                  const BlockParams& params, const void* x, const void* grad,
                                  FloatKind grad_kind, void* out, std::int64_t begin,
                                  std::int64_t end) {
  HWY_DYNAMIC_DISPATCH(MinifloatSteBackwardRange)
  (ops, map, params, x, grad, grad_kind, out, begin, end);
}

void minifloat_quantize_range(const MinifloatOps& ops, const BlockMap& map,
                              const BlockParams& params, const void* x, std::uint8_t* codes,
                              std::int64_t begin, std::int64_t end) {
  HWY_DYNAMIC_DISPATCH(MinifloatQuantizeRange)(ops, map, params, x, codes, begin, end);
}
void minifloat_fake_quantize_range(const MinifloatOps& ops, const BlockMap& map,
                                   const BlockParams& params, const void* x, void* y,
                                   std::int64_t begin, std::int64_t end) {
  HWY_DYNAMIC_DISPATCH(MinifloatFakeQuantizeRange)(ops, map, params, x, y, begin, end);
}
void minifloat_dequantize_range(const MinifloatOps& ops, const BlockMap& map,
                                const BlockParams& params, const std::uint8_t* codes, void* y,
                                std::int64_t begin, std::int64_t end) {
  HWY_DYNAMIC_DISPATCH(MinifloatDequantizeRange)(ops, map, params, codes, y, begin, end);
}

}  // namespace quantkit::cpu
#endif  // HWY_ONCE
