// Lane helpers shared by the Highway kernels (affine_kernels.cpp,
// minifloat_kernels.cpp): bf16 / fp16 rounding, loads and stores of the three
// float storage kinds, and the per-block iteration. Included once per target
// (Highway's -inl.h convention), after hwy/highway.h.
#if defined(QUANTKIT_CPU_LANES_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef QUANTKIT_CPU_LANES_INL_H_
#undef QUANTKIT_CPU_LANES_INL_H_
#else
#define QUANTKIT_CPU_LANES_INL_H_
#endif

#include <hwy/cache_control.h>
#include <hwy/highway.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "cpu/affine_kernels.hpp"

// Per-vector lambdas must inline into the loops that call them: out of line,
// each vector pays a call and its LaneParams pass through memory (measured:
// fp32 fake_quantize 1.5x slower at 1M elements).
#ifndef QK_LANE_FN
#define QK_LANE_FN HWY_ATTR __attribute__((always_inline))
#endif

HWY_BEFORE_NAMESPACE();
namespace quantkit::cpu::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
using DI = hn::RebindToSigned<DF>;
using DU = hn::RebindToUnsigned<DF>;
using VF = hn::Vec<DF>;
constexpr std::size_t kMaxLanes = HWY_MAX_BYTES / sizeof(float);

// ---- Rounding float32 lanes to bf16 / fp16 precision (round to nearest even).

// Round-to-nearest-even of finite lanes to bf16, as the 16-bit pattern in
// the low half of each 32-bit lane.
HWY_INLINE hn::Vec<DU> BF16BitsOfFinite(DF /*df*/, VF v) {
  const DU du;
  const auto bits = hn::BitCast(du, v);
  const auto lsb = hn::And(hn::ShiftRight<16>(bits), hn::Set(du, 1u));
  return hn::ShiftRight<16>(hn::Add(hn::Add(bits, hn::Set(du, 0x7FFFu)), lsb));
}

// The same rounding, kept in place: the bf16 value as a float32 (its low 16
// bits zero). One instruction fewer than shifting the pattern down and back.
HWY_INLINE hn::Vec<DU> BF16HighBitsOfFinite(DF /*df*/, VF v) {
  const DU du;
  const auto bits = hn::BitCast(du, v);
  const auto lsb = hn::And(hn::ShiftRight<16>(bits), hn::Set(du, 1u));
  return hn::And(hn::Add(hn::Add(bits, hn::Set(du, 0x7FFFu)), lsb), hn::Set(du, 0xFFFF0000u));
}

HWY_INLINE VF RoundToF16(DF df, VF v) {
  const DU du;
  // Normal range: round the mantissa to 10 bits in the integer domain; a carry
  // bumps the exponent, and anything above 65504 becomes Inf.
  const auto bits = hn::BitCast(du, v);
  const auto lsb = hn::And(hn::ShiftRight<13>(bits), hn::Set(du, 1u));
  const VF normal = hn::BitCast(
      df, hn::And(hn::Add(hn::Add(bits, hn::Set(du, 0xFFFu)), lsb), hn::Set(du, 0xFFFFE000u)));
  const VF infinity = hn::CopySign(hn::BitCast(df, hn::Set(du, 0x7F800000u)), v);
  const VF big = hn::IfThenElse(hn::Gt(hn::Abs(normal), hn::Set(df, 65504.0f)), infinity, normal);
  // Subnormal range: values in [0.5, 1) have ulp 2^-24, the fp16 subnormal
  // step, so adding and removing 0.75 rounds to it (hardware RNE).
  const VF magic = hn::Set(df, 0.75f);
  const VF small = hn::CopySign(hn::Sub(hn::Add(v, magic), magic), v);
  const VF rounded = hn::IfThenElse(hn::Lt(hn::Abs(v), hn::Set(df, 6.103515625e-05f)), small, big);
  return hn::IfThenElse(hn::IsNaN(v), v, rounded);
}

// Rounds finite lanes to `kind` (NaN lanes come out unspecified: callers test
// the input for NaN instead).
HWY_INLINE VF RoundFiniteTo(DF df, FloatKind kind, VF v) {
  if (kind == FloatKind::bf16) return hn::BitCast(df, BF16HighBitsOfFinite(df, v));
  if (kind == FloatKind::f16) return RoundToF16(df, v);
  return v;
}

// ---- Loads and stores of float / bf16 / fp16 storage.

HWY_INLINE VF Load(DF df, FloatKind kind, const void* base, std::int64_t i) {
  if (kind == FloatKind::f32) return hn::LoadU(df, static_cast<const float*>(base) + i);
  const hn::Rebind<std::uint16_t, DF> d16;
  const auto* p = static_cast<const std::uint16_t*>(base) + i;
  if (kind == FloatKind::bf16) {
    const DU du;
    return hn::BitCast(df, hn::ShiftLeft<16>(hn::PromoteTo(du, hn::LoadU(d16, p))));
  }
  // fp16 -> fp32 by hand: Highway 1.0.3's SSE4 PromoteTo maps NaN to non-NaN.
  const DU du;
  const DI di;
  const auto h = hn::PromoteTo(du, hn::LoadU(d16, p));
  const auto sign = hn::ShiftLeft<16>(hn::And(h, hn::Set(du, 0x8000u)));
  const auto magnitude = hn::And(h, hn::Set(du, 0x7FFFu));
  const auto normal = hn::Add(hn::ShiftLeft<13>(magnitude), hn::Set(du, 112u << 23));
  const auto special = hn::Or(hn::ShiftLeft<13>(magnitude), hn::Set(du, 0x7F800000u));  // Inf / NaN
  const VF subnormal =
      hn::Mul(hn::ConvertTo(df, hn::BitCast(di, magnitude)), hn::Set(df, 5.9604644775390625e-08f));
  auto bits = hn::IfThenElse(hn::Gt(magnitude, hn::Set(du, 0x7BFFu)), special, normal);
  bits = hn::IfThenElse(hn::Lt(magnitude, hn::Set(du, 0x400u)), hn::BitCast(du, subnormal), bits);
  return hn::BitCast(df, hn::Or(bits, sign));
}

// `v` is already rounded to `kind`, so the conversion below is exact. Values
// stored are dequantized results, never NaN.
HWY_INLINE void Store(DF df, FloatKind kind, VF v, void* base, std::int64_t i) {
  if (kind == FloatKind::f32) {
    hn::StoreU(v, df, static_cast<float*>(base) + i);
    return;
  }
  const DI di;
  const DU du;
  const hn::Rebind<std::uint16_t, DF> d16;
  auto* p = static_cast<std::uint16_t*>(base) + i;
  const auto bits = hn::BitCast(du, v);
  hn::Vec<DI> half;
  if (kind == FloatKind::bf16) {
    half = hn::BitCast(di, hn::ShiftRight<16>(bits));
  } else {
    const auto magnitude = hn::And(bits, hn::Set(du, 0x7FFFFFFFu));
    const auto sign = hn::BitCast(di, hn::And(hn::ShiftRight<16>(bits), hn::Set(du, 0x8000u)));
    const auto normal =
        hn::Sub(hn::BitCast(di, hn::ShiftRight<13>(magnitude)), hn::Set(di, 0x1C000));
    const auto subnormal = hn::ConvertTo(di, hn::Mul(hn::Abs(v), hn::Set(df, 16777216.0f)));
    const auto is_small = hn::RebindMask(di, hn::Lt(magnitude, hn::Set(du, 0x38800000u)));
    half = hn::IfThenElse(is_small, subnormal, normal);
    const auto is_inf = hn::RebindMask(di, hn::Eq(magnitude, hn::Set(du, 0x7F800000u)));
    half = hn::IfThenElse(is_inf, hn::Set(di, 0x7C00), half);
    half = hn::Or(half, sign);
    half =
        hn::IfThenElse(hn::RebindMask(di, hn::IsNaN(v)), hn::Or(sign, hn::Set(di, 0x7E00)), half);
  }
  hn::StoreU(hn::DemoteTo(d16, half), d16, p);
}

template <class D, class V, typename T>
HWY_INLINE void StoreMaybeStream(D d, V v, T* p, bool stream) {
  if (stream && (reinterpret_cast<std::uintptr_t>(p) % (hn::Lanes(d) * sizeof(T))) == 0) {
    hn::Stream(v, d, p);
  } else {
    hn::StoreU(v, d, p);
  }
}

// Rounds finite lanes to `kind` and stores them (the dequantized results: never
// NaN, because scales are finite and codes in range). bf16 rounding is fused
// with the narrowing to 16 bits.
HWY_INLINE void StoreRounded(DF df, FloatKind kind, VF v, void* base, std::int64_t i, bool stream) {
  if (kind == FloatKind::f32) {
    StoreMaybeStream(df, v, static_cast<float*>(base) + i, stream);
    return;
  }
  const hn::Rebind<std::uint16_t, DF> d16;
  auto* p = static_cast<std::uint16_t*>(base) + i;
  if (kind == FloatKind::bf16) {
    const DI di;
    StoreMaybeStream(d16, hn::DemoteTo(d16, hn::BitCast(di, BF16BitsOfFinite(df, v))), p, stream);
    return;
  }
  Store(df, kind, RoundToF16(df, v), base, i);
}

// Stores lanes that are exact in `kind` and may be NaN; NaN becomes the
// pattern the scalar conversions produce (bf16 0x7FC0, fp16 sign | 0x7E00).
HWY_INLINE void StoreExact(DF df, FloatKind kind, VF v, void* base, std::int64_t i) {
  if (kind == FloatKind::f32) {
    hn::StoreU(v, df, static_cast<float*>(base) + i);
    return;
  }
  const auto nan = hn::IsNaN(v);
  Store(df, kind, hn::IfThenElse(nan, hn::Zero(df), v), base, i);
  if (hn::AllFalse(df, nan)) return;
  alignas(64) float values[kMaxLanes];
  hn::Store(v, df, values);
  auto* out = static_cast<std::uint16_t*>(base) + i;
  for (std::size_t k = 0; k < hn::Lanes(df); ++k) {
    if (values[k] == values[k]) continue;
    std::uint32_t bits;
    std::memcpy(&bits, &values[k], sizeof bits);
    out[k] = kind == FloatKind::bf16
                 ? std::uint16_t{0x7FC0}
                 : static_cast<std::uint16_t>(((bits >> 16) & 0x8000u) | 0x7E00u);
  }
}

// ---- bf16 pairs. One 32-bit lane holds two adjacent bf16 elements, the even
// one in its low half and the odd one in its high half. Each half widens to
// float32 with one instruction, and two rounded halves merge back with one
// more: no PromoteTo / DemoteTo and their cross-lane permutes. Lanes of one
// vector are then elements 0, 2, 4, ... (or 1, 3, 5, ...), so this serves runs
// whose parameters are broadcast. The scalar target has no two-lane vectors.
#define QK_HAVE_BF16_PAIRS (HWY_TARGET != HWY_SCALAR)
#if QK_HAVE_BF16_PAIRS
using D16 = hn::Repartition<std::uint16_t, DF>;

HWY_INLINE void LoadBF16Pairs(DF df, const void* base, std::int64_t i, VF* even, VF* odd) {
  const DU du;
  const D16 d16;
  const auto bits = hn::BitCast(du, hn::LoadU(d16, static_cast<const std::uint16_t*>(base) + i));
  *even = hn::BitCast(df, hn::ShiftLeft<16>(bits));
  *odd = hn::BitCast(df, hn::And(bits, hn::Set(du, 0xFFFF0000u)));
}

// Rounds finite lanes to bf16 and stores them as adjacent pairs.
HWY_INLINE void StoreRoundedBF16Pairs(DF df, VF even, VF odd, void* base, std::int64_t i,
                                      bool stream) {
  const D16 d16;
  const auto merged = hn::Or(BF16HighBitsOfFinite(df, odd), BF16BitsOfFinite(df, even));
  StoreMaybeStream(d16, hn::BitCast(d16, merged), static_cast<std::uint16_t*>(base) + i, stream);
}
#endif

HWY_INLINE std::size_t ElementSize(FloatKind kind) {
  return kind == FloatKind::f32 ? 4 : 2;
}

struct LaneParams {
  VF reciprocal, scale, zero_point;
};

// ---- Iteration. In a run of elements that share one block the params are
// broadcast once; with per-lane blocks (block = i % period) they are loaded
// per vector. `vec(i, params)` handles lanes [i, i + lanes); `tail(i, count,
// params)` handles a shorter remainder through the same code on a padded copy.

// Runs of elements sharing one block (map.inner > 1 or one block), `step`
// elements per call of vec.
template <typename Vector, typename Tail>
HWY_INLINE void ForEachRun(const BlockMap& map, const BlockParams& params, std::int64_t begin,
                           std::int64_t end, std::int64_t step, Vector&& vec, Tail&& tail) {
  const DF df;
  std::int64_t i = begin;
  // One division for the first run; later runs step the block index (a
  // 64-bit division per 128-element group cost about 10 % of per-group ops).
  std::int64_t run = i / map.inner;
  std::int64_t b = run % map.period;
  while (i < end) {
    const LaneParams lp{hn::Set(df, params.reciprocal[b]), hn::Set(df, params.scale[b]),
                        hn::Set(df, params.zero_point[b])};
    const std::int64_t run_end = map.inner > end ? end : std::min(end, (run + 1) * map.inner);
    for (; i + step <= run_end; i += step) vec(i, lp);
    if (i < run_end) tail(i, run_end - i, lp);
    i = run_end;
    ++run;
    if (++b == map.period) b = 0;
  }
}

HWY_INLINE bool BroadcastRuns(const BlockMap& map) {
  return map.inner > 1 || map.period == 1;
}

template <typename Vector, typename Tail>
HWY_INLINE void ForEachVector(const BlockMap& map, const BlockParams& params, std::int64_t begin,
                              std::int64_t end, Vector&& vec, Tail&& tail) {
  const DF df;
  const auto lanes = static_cast<std::int64_t>(hn::Lanes(df));
  if (BroadcastRuns(map)) return ForEachRun(map, params, begin, end, lanes, vec, tail);
  std::int64_t i = begin;
  while (i < end) {  // inner == 1: block = i % period, one row at a time
    std::int64_t c = i % map.period;
    const std::int64_t row_end = std::min(end, i - c + map.period);
    for (; i + lanes <= row_end; i += lanes, c += lanes) {
      vec(i, LaneParams{hn::LoadU(df, params.reciprocal + c), hn::LoadU(df, params.scale + c),
                        hn::LoadU(df, params.zero_point + c)});
    }
    if (i < row_end) {
      const std::int64_t count = row_end - i;
      alignas(64) float r[kMaxLanes], s[kMaxLanes], z[kMaxLanes];
      for (std::int64_t k = 0; k < lanes; ++k) {
        r[k] = k < count ? params.reciprocal[c + k] : 1.0f;
        s[k] = k < count ? params.scale[c + k] : 1.0f;
        z[k] = k < count ? params.zero_point[c + k] : 0.0f;
      }
      tail(i, count, LaneParams{hn::Load(df, r), hn::Load(df, s), hn::Load(df, z)});
      i = row_end;
    }
  }
}

// ---- Elementwise drivers over ForEachVector. Whole vectors are read and
// written in place; the tail goes through zero-padded stack buffers, so `one`
// always handles a full vector. `direct` tells `one` whether it writes the
// caller's memory (streaming stores are allowed only then).

// one(src, at, dst, to, params, direct): float elements to float elements.
template <typename One>
HWY_INLINE void MapFloats(const BlockMap& map, const BlockParams& params, std::int64_t begin,
                          std::int64_t end, const void* x, std::size_t in_size, void* y,
                          std::size_t out_size, const One& one) {
  ForEachVector(
      map, params, begin, end,
      [&](std::int64_t i, const LaneParams& p) QK_LANE_FN { one(x, i, y, i, p, true); },
      [&](std::int64_t i, std::int64_t count, const LaneParams& p) HWY_ATTR {
        alignas(64) unsigned char in[HWY_MAX_BYTES] = {}, out[HWY_MAX_BYTES];
        std::memcpy(in, static_cast<const unsigned char*>(x) + i * in_size, count * in_size);
        one(in, 0, out, 0, p, false);
        std::memcpy(static_cast<unsigned char*>(y) + i * out_size, out, count * out_size);
      });
}

#if QK_HAVE_BF16_PAIRS
// one(src, at, dst, to, params, direct) on bf16 pairs: 2 * lanes elements per
// call. Only for BroadcastRuns(map).
template <typename One>
HWY_INLINE void MapBF16Pairs(const BlockMap& map, const BlockParams& params, std::int64_t begin,
                             std::int64_t end, const void* x, void* y, const One& one) {
  const DF df;
  const auto step = static_cast<std::int64_t>(2 * hn::Lanes(df));
  ForEachRun(
      map, params, begin, end, step,
      [&](std::int64_t i, const LaneParams& p) QK_LANE_FN { one(x, i, y, i, p, true); },
      [&](std::int64_t i, std::int64_t count, const LaneParams& p) HWY_ATTR {
        alignas(64) std::uint16_t in[2 * kMaxLanes] = {}, out[2 * kMaxLanes];
        std::memcpy(in, static_cast<const std::uint16_t*>(x) + i, count * 2);
        one(in, 0, out, 0, p, false);
        std::memcpy(static_cast<std::uint16_t*>(y) + i, out, count * 2);
      });
}

// one(src, at, codes_dst, params) on bf16 pairs: 2 * lanes elements to as many
// byte codes per call (codes[0] is element `begin`). Only for BroadcastRuns(map).
template <typename Code, typename One>
HWY_INLINE void MapBF16PairsToCodes(const BlockMap& map, const BlockParams& params,
                                    std::int64_t begin, std::int64_t end, const void* x,
                                    Code* codes, const One& one) {
  const DF df;
  const auto step = static_cast<std::int64_t>(2 * hn::Lanes(df));
  ForEachRun(
      map, params, begin, end, step,
      [&](std::int64_t i, const LaneParams& p) QK_LANE_FN { one(x, i, codes + (i - begin), p); },
      [&](std::int64_t i, std::int64_t count, const LaneParams& p) HWY_ATTR {
        alignas(64) std::uint16_t in[2 * kMaxLanes] = {};
        alignas(64) Code out[2 * kMaxLanes];
        std::memcpy(in, static_cast<const std::uint16_t*>(x) + i, count * 2);
        one(in, 0, out, p);
        std::memcpy(codes + (i - begin), out, count);
      });
}
#endif

// one(src, at, codes_dst, params): float elements to one byte-code each;
// codes[0] belongs to element `begin`.
template <typename Code, typename One>
HWY_INLINE void MapToCodes(const BlockMap& map, const BlockParams& params, std::int64_t begin,
                           std::int64_t end, const void* x, std::size_t in_size, Code* codes,
                           const One& one) {
  ForEachVector(
      map, params, begin, end,
      [&](std::int64_t i, const LaneParams& p) QK_LANE_FN { one(x, i, codes + (i - begin), p); },
      [&](std::int64_t i, std::int64_t count, const LaneParams& p) HWY_ATTR {
        alignas(64) unsigned char in[HWY_MAX_BYTES] = {};
        alignas(64) Code out[kMaxLanes];
        std::memcpy(in, static_cast<const unsigned char*>(x) + i * in_size, count * in_size);
        one(in, 0, out, p);
        std::memcpy(codes + (i - begin), out, count);
      });
}

// one(codes_src, dst, to, params, direct): byte-codes (codes[0] is element
// `begin`) to float elements.
template <typename Code, typename One>
HWY_INLINE void MapFromCodes(const BlockMap& map, const BlockParams& params, std::int64_t begin,
                             std::int64_t end, const Code* codes, void* y, std::size_t out_size,
                             const One& one) {
  ForEachVector(
      map, params, begin, end,
      [&](std::int64_t i, const LaneParams& p)
          QK_LANE_FN { one(codes + (i - begin), y, i, p, true); },
      [&](std::int64_t i, std::int64_t count, const LaneParams& p) HWY_ATTR {
        alignas(64) Code in[kMaxLanes] = {};
        alignas(64) unsigned char out[HWY_MAX_BYTES];
        std::memcpy(in, codes + (i - begin), count);
        one(in, out, 0, p, false);
        std::memcpy(static_cast<unsigned char*>(y) + i * out_size, out, count * out_size);
      });
}

// one(x_src, xi, grad_src, gi, dst, di, params): an input and a gradient of the
// same length to an output of the gradient's kind.
template <typename One>
HWY_INLINE void MapWithGrad(const BlockMap& map, const BlockParams& params, std::int64_t begin,
                            std::int64_t end, const void* x, std::size_t in_size, const void* grad,
                            std::size_t grad_size, void* out, const One& one) {
  ForEachVector(
      map, params, begin, end,
      [&](std::int64_t i, const LaneParams& p) QK_LANE_FN { one(x, i, grad, i, out, i, p); },
      [&](std::int64_t i, std::int64_t count, const LaneParams& p) HWY_ATTR {
        alignas(64) unsigned char xb[HWY_MAX_BYTES] = {}, gb[HWY_MAX_BYTES] = {}, ob[HWY_MAX_BYTES];
        std::memcpy(xb, static_cast<const unsigned char*>(x) + i * in_size, count * in_size);
        std::memcpy(gb, static_cast<const unsigned char*>(grad) + i * grad_size, count * grad_size);
        one(xb, 0, gb, 0, ob, 0, p);
        std::memcpy(static_cast<unsigned char*>(out) + i * grad_size, ob, count * grad_size);
      });
}

}  // namespace quantkit::cpu::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // QUANTKIT_CPU_LANES_INL_H_
