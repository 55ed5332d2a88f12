// The affine element formulas on lanes, and the dispatch from run-time
// AffineOps to compile-time kinds and modes, shared by affine_kernels.cpp and
// packed4_kernels.cpp. Included once per target (Highway's -inl.h
// convention), after cpu/lanes-inl.h.
#if defined(QUANTKIT_CPU_AFFINE_LANES_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef QUANTKIT_CPU_AFFINE_LANES_INL_H_
#undef QUANTKIT_CPU_AFFINE_LANES_INL_H_
#else
#define QUANTKIT_CPU_AFFINE_LANES_INL_H_
#endif

#include <hwy/highway.h>

#include <cstdint>

#include "cpu/affine_kernels.hpp"
#include "cpu/lanes-inl.h"

HWY_BEFORE_NAMESPACE();
namespace quantkit::cpu::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// ---- The element formulas (src/reference/element_ops.cpp), on lanes.
//
// FixedKinds<...> fixes the rounding dtypes at compile time for the
// combinations that occur in practice (so the branches of RoundFiniteTo fold
// away); RuntimeKinds reads them from AffineOps, for everything else.
// Mode<...> fixes the grid and the store kind, so the per-vector code has no
// run-time tests.

template <FloatKind In, FloatKind Product, FloatKind Out>
struct FixedKinds {
  static constexpr bool input_is(FloatKind kind) { return In == kind; }
  static constexpr bool output_is(FloatKind kind) { return Out == kind; }
  static FloatKind in(const AffineOps&) { return In; }
  static FloatKind product(const AffineOps&) { return Product; }
  static FloatKind out(const AffineOps&) { return Out; }
};

struct RuntimeKinds {
  static constexpr bool input_is(FloatKind) { return false; }  // not known at compile time
  static constexpr bool output_is(FloatKind) { return false; }
  static FloatKind in(const AffineOps& o) { return o.input; }
  static FloatKind product(const AffineOps& o) { return o.product; }
  static FloatKind out(const AffineOps& o) { return o.output; }
};

template <AffineGrid Grid, bool Stream>
struct Mode {
  static constexpr bool stretched = Grid == AffineGrid::stretched;
  static constexpr bool zero_point = Grid != AffineGrid::no_zero_point;
  static constexpr bool stream = Stream;
};

// Roundings the reference performs that cannot change a result here are
// skipped (every skip is covered by the exhaustive forced-target tests):
// - round(x * r) + zp is rounded to promote(P, Z) before the clamp; for codes of
//   at most 8 bits the bounds lie in [-256, 256], where bf16 and fp16 hold
//   every integer, and rounding is monotonic, so the clamped code is the same;
// - codes and zero points both lie in [quant_min, quant_max] (choose_qparams
//   clamps the zero point, QParams::make checks it), so q - zp is an integer
//   of magnitude <= 255: exact in every kind;
// - dequant = promote(output, scale) is output or f32, so rounding to it and
//   then to output equals rounding once to output (done by StoreRounded).
// x * r is NaN exactly when x is (r is finite and nonzero), so NaN is tested
// once, on the input; the bf16 rounding of a NaN product is then discarded.
template <class K, class M>
HWY_INLINE VF QuantizeLanes(DF df, FloatKind product, VF low, VF high, const LaneParams& p, VF x) {
  if constexpr (M::stretched) {  // clip, divide, shift by zp (-0.5), then round: each step in P
    const VF clipped = hn::Min(hn::Max(x, hn::Neg(p.reciprocal)), p.reciprocal);
    const VF quotient = RoundFiniteTo(df, product, hn::Div(clipped, p.scale));
    const VF shifted = RoundFiniteTo(df, product, hn::Add(quotient, p.zero_point));
    const VF clamped = hn::Min(hn::Max(hn::Round(shifted), low), high);
    return hn::IfThenElse(hn::IsNaN(x), low, clamped);
  } else {
    const VF rounded = RoundFiniteTo(df, product, hn::Mul(x, p.reciprocal));
    // Codes are integers, so -0 must become +0 (adding +0.0 does that when
    // there is no zero point to add).
    const VF q = hn::Add(hn::Round(rounded), M::zero_point ? p.zero_point : hn::Zero(df));
    const VF clamped = hn::Min(hn::Max(q, low), high);
    return hn::IfThenElse(hn::IsNaN(x), low, clamped);  // NaN -> quant_min, as fmax/fmin
  }
}

// The bits of clamped codes (integers in [-128, 255]) with each code's two's
// complement in the low byte: adding 1.5 * 2^23 is exact and leaves the code
// in the low mantissa bits (for unsigned 8-bit codes, the packed layout's
// byte). One add instead of ConvertTo, whose overflow fix-up costs four more
// instructions.
HWY_INLINE hn::Vec<DU> CodeBits(DF df, VF code) {
  return hn::BitCast(DU(), hn::Add(code, hn::Set(df, 12582912.0f)));
}

// (q - zp) * s before its final rounding to the output kind.
template <class M>
HWY_INLINE VF DequantizeUnrounded(const LaneParams& p, VF code) {
  return hn::Mul(M::zero_point ? hn::Sub(code, p.zero_point) : code, p.scale);
}

// The kind combinations compiled as FixedKinds: T with P = promote(T, S) in
// {T, f32}, output T.
enum class KindCombo : std::uint8_t { f32, bf16, bf16_f32_product, f16, f16_f32_product, runtime };

HWY_INLINE KindCombo CombinationOf(FloatKind in, FloatKind product) {
  if (in == FloatKind::f32) return product == FloatKind::f32 ? KindCombo::f32 : KindCombo::runtime;
  if (product == in) return in == FloatKind::bf16 ? KindCombo::bf16 : KindCombo::f16;
  if (product == FloatKind::f32) {
    return in == FloatKind::bf16 ? KindCombo::bf16_f32_product : KindCombo::f16_f32_product;
  }
  return KindCombo::runtime;
}

// Calls run(kinds, Mode{}) with the grid of `ops`, streaming only where the
// operation writes floats (WithStream) and ops asks for it.
template <AffineGrid Grid, bool WithStream, typename Kinds, typename Run>
HWY_INLINE void RunWithStream(const AffineOps& ops, Kinds kinds, const Run& run) {
  if (WithStream && ops.stream) return run(kinds, Mode<Grid, WithStream>{});
  return run(kinds, Mode<Grid, false>{});
}

// Calls run(Kinds{}, Mode{}) with the kinds of `combo` and the mode of `ops`.
template <bool WithStream, typename Run>
HWY_INLINE void Dispatch(KindCombo combo, const AffineOps& ops, const Run& run) {
  const auto with_kinds = [&](auto kinds) HWY_ATTR {
    switch (ops.grid) {
      case AffineGrid::stretched:
        return RunWithStream<AffineGrid::stretched, WithStream>(ops, kinds, run);
      case AffineGrid::zero_point:
        return RunWithStream<AffineGrid::zero_point, WithStream>(ops, kinds, run);
      case AffineGrid::no_zero_point:
        return RunWithStream<AffineGrid::no_zero_point, WithStream>(ops, kinds, run);
    }
  };
  constexpr auto f32 = FloatKind::f32, bf16 = FloatKind::bf16, f16 = FloatKind::f16;
  switch (combo) {
    case KindCombo::f32:
      return with_kinds(FixedKinds<f32, f32, f32>{});
    case KindCombo::bf16:
      return with_kinds(FixedKinds<bf16, bf16, bf16>{});
    case KindCombo::bf16_f32_product:
      return with_kinds(FixedKinds<bf16, f32, bf16>{});
    case KindCombo::f16:
      return with_kinds(FixedKinds<f16, f16, f16>{});
    case KindCombo::f16_f32_product:
      return with_kinds(FixedKinds<f16, f32, f16>{});
    case KindCombo::runtime:
      return with_kinds(RuntimeKinds{});
  }
}

}  // namespace quantkit::cpu::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // QUANTKIT_CPU_AFFINE_LANES_INL_H_
