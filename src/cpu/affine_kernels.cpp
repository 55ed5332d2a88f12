// Highway single-source kernels for affine quantization; compiled for the
// targets of cpu/highway_config.h, chosen at run time. The contract
// (bit-identical to the reference) is in affine_kernels.hpp.
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
#include "cpu/lanes-inl.h"

HWY_BEFORE_NAMESPACE();
namespace quantkit::cpu::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// ---- The element formulas (src/reference/element_ops.cpp), on lanes.
//
// Kinds<...> fixes the rounding dtypes at compile time for the combinations
// that occur in practice (so the branches of RoundFiniteTo fold away); -1 reads the
// dtype from AffineOps at run time, for everything else. Mode<...> fixes the
// mapping and the store kind, so the per-vector code has no run-time tests.

// Compile-time kinds for the combinations that occur: T with P = promote(T, S)
// in {T, f32}, output T.
constexpr int F32 = 0, BF16 = 1, F16 = 2;

template <int In, int Product, int Out>
struct Kinds {
  static constexpr int in_fixed = In, out_fixed = Out;
  static FloatKind pick(int fixed, FloatKind runtime) {
    return fixed < 0 ? runtime : static_cast<FloatKind>(fixed);
  }
  static FloatKind in(const AffineOps& o) { return pick(In, o.input); }
  static FloatKind product(const AffineOps& o) { return pick(Product, o.product); }
  static FloatKind out(const AffineOps& o) { return pick(Out, o.output); }
};
using RuntimeKinds = Kinds<-1, -1, -1>;

template <bool Stretched, bool ZeroPoint, bool Stream>
struct Mode {
  static constexpr bool stretched = Stretched;
  static constexpr bool zero_point = ZeroPoint || Stretched;
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
  if constexpr (K::in_fixed == BF16 && K::out_fixed == BF16) {
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
  if constexpr (K::in_fixed == BF16) {
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

// 4-bit codes packed two per byte as they are made (the low nibble is the
// even element), instead of byte codes packed in a second pass. Pairs of
// elements must not straddle a block: see quantize_packed4_range.
template <class K, class M>
void QuantizePacked4Impl(const AffineOps& ops, const BlockMap& map, const BlockParams& params,
                         const void* x, std::uint8_t* packed, std::int64_t begin,
                         std::int64_t end) {
  const DF df;
  const DU du;
  const hn::Rebind<std::uint8_t, DF> d8;
  const FloatKind in_kind = K::in(ops), product = K::product(ops);
  const VF low = hn::Set(df, ops.quant_min), high = hn::Set(df, ops.quant_max);
  const auto code_bits = [&](const LaneParams& p, VF v) QK_LANE_FN {
    return CodeBits(df, QuantizeLanes<K, M>(df, product, low, high, p, v));
  };
  const auto lanes = static_cast<std::int64_t>(hn::Lanes(df));
#if QK_HAVE_BF16_PAIRS
  if constexpr (K::in_fixed == BF16) {  // a lane's two halves are the byte's two nibbles
    const auto pair = [&](const void* src, std::int64_t at, std::uint8_t* dst,
                          const LaneParams& p) QK_LANE_FN {
      VF even, odd;
      LoadBF16Pairs(df, src, at, &even, &odd);
      const auto byte = hn::Or(hn::And(code_bits(p, even), hn::Set(du, 0xFu)),
                               hn::And(hn::ShiftLeft<4>(code_bits(p, odd)), hn::Set(du, 0xF0u)));
      hn::StoreU(hn::TruncateTo(d8, byte), d8, dst);
    };
    ForEachRun(
        map, params, begin, end, 2 * lanes,
        [&](std::int64_t i, const LaneParams& p)
            QK_LANE_FN { pair(x, i, packed + (i - begin) / 2, p); },
        [&](std::int64_t i, std::int64_t count, const LaneParams& p) HWY_ATTR {
          alignas(64) std::uint16_t in[2 * kMaxLanes] = {};
          alignas(64) std::uint8_t out[kMaxLanes];
          std::memcpy(in, static_cast<const std::uint16_t*>(x) + i, count * 2);
          pair(in, 0, out, p);
          std::memcpy(packed + (i - begin) / 2, out, count / 2);
        });
    return;
  }
#endif
  // Adjacent lanes pair up inside each 64-bit lane.
  const hn::Repartition<std::uint64_t, DF> d64;
  const hn::Rebind<std::uint8_t, decltype(d64)> d8_64;
  const auto one = [&](const void* src, std::int64_t at, std::uint8_t* dst,
                       const LaneParams& p) QK_LANE_FN {
    const auto wide = hn::BitCast(d64, code_bits(p, Load(df, in_kind, src, at)));
    const auto byte = hn::Or(hn::And(wide, hn::Set(d64, 0xFull)),
                             hn::And(hn::ShiftRight<28>(wide), hn::Set(d64, 0xF0ull)));
    hn::StoreU(hn::TruncateTo(d8_64, byte), d8_64, dst);
  };
  const std::size_t in_size = ElementSize(in_kind);
  ForEachRun(
      map, params, begin, end, lanes,
      [&](std::int64_t i, const LaneParams& p)
          QK_LANE_FN { one(x, i, packed + (i - begin) / 2, p); },
      [&](std::int64_t i, std::int64_t count, const LaneParams& p) HWY_ATTR {
        alignas(64) unsigned char in[HWY_MAX_BYTES] = {};
        alignas(64) std::uint8_t out[kMaxLanes];
        std::memcpy(in, static_cast<const unsigned char*>(x) + i * in_size, count * in_size);
        one(in, 0, out, p);
        std::memcpy(packed + (i - begin) / 2, out, count / 2);
      });
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

// Which fixed combination (0..4) has these input / product kinds, or -1.
int FixedCombination(FloatKind in, FloatKind product) {
  if (in == FloatKind::f32) return product == FloatKind::f32 ? 0 : -1;
  if (product == in) return in == FloatKind::bf16 ? 1 : 3;
  if (product == FloatKind::f32) return in == FloatKind::bf16 ? 2 : 4;
  return -1;
}

// Calls run(Kinds{}, Mode{}) with the kinds of `combo` and the mode of `ops`
// (streaming only where the operation writes floats: WithStream).
template <bool WithStream, typename Run>
HWY_INLINE void Dispatch(int combo, const AffineOps& ops, const Run& run) {
  const auto with_kinds = [&](auto kinds) HWY_ATTR {
    const bool stream = WithStream && ops.stream;
    if (ops.stretched) {
      if (stream) return run(kinds, Mode<true, true, WithStream>{});
      return run(kinds, Mode<true, true, false>{});
    }
    if (ops.has_zero_point) {
      if (stream) return run(kinds, Mode<false, true, WithStream>{});
      return run(kinds, Mode<false, true, false>{});
    }
    if (stream) return run(kinds, Mode<false, false, WithStream>{});
    return run(kinds, Mode<false, false, false>{});
  };
  switch (combo) {
    case 0:
      return with_kinds(Kinds<F32, F32, F32>{});
    case 1:
      return with_kinds(Kinds<BF16, BF16, BF16>{});
    case 2:
      return with_kinds(Kinds<BF16, F32, BF16>{});
    case 3:
      return with_kinds(Kinds<F16, F16, F16>{});
    case 4:
      return with_kinds(Kinds<F16, F32, F16>{});
    default:
      return with_kinds(RuntimeKinds{});
  }
}

void FakeQuantizeRange(const AffineOps& ops, const BlockMap& map, const BlockParams& params,
                       const void* x, void* y, std::int64_t begin, std::int64_t end) {
  const int combo = ops.output == ops.input ? FixedCombination(ops.input, ops.product) : -1;
  Dispatch<true>(combo, ops, [&](auto k, auto m) HWY_ATTR {
    FakeQuantizeImpl<decltype(k), decltype(m)>(ops, map, params, x, y, begin, end);
  });
}

void QuantizeRange(const AffineOps& ops, const BlockMap& map, const BlockParams& params,
                   const void* x, std::int8_t* codes, std::int64_t begin, std::int64_t end) {
  // The output kind does not matter for codes.
  Dispatch<false>(FixedCombination(ops.input, ops.product), ops, [&](auto k, auto m) HWY_ATTR {
    QuantizeImpl<decltype(k), decltype(m)>(ops, map, params, x, codes, begin, end);
  });
}

bool QuantizePacked4Range(const AffineOps& ops, const BlockMap& map, const BlockParams& params,
                          const void* x, std::uint8_t* packed, std::int64_t begin,
                          std::int64_t end) {
#if HWY_TARGET == HWY_SCALAR  // one lane: no neighbour to pair a code with
  (void)ops, (void)map, (void)params, (void)x, (void)packed, (void)begin, (void)end;
  return false;
#else
  const bool even_runs = map.period == 1 || map.inner % 2 == 0;
  if (!BroadcastRuns(map) || !even_runs || begin % 2 != 0 || end % 2 != 0) return false;
  Dispatch<false>(FixedCombination(ops.input, ops.product), ops, [&](auto k, auto m) HWY_ATTR {
    QuantizePacked4Impl<decltype(k), decltype(m)>(ops, map, params, x, packed, begin, end);
  });
  return true;
#endif
}

void DequantizeRange(const AffineOps& ops, const BlockMap& map, const BlockParams& params,
                     const std::int8_t* codes, void* y, std::int64_t begin, std::int64_t end) {
  // Only the output kind and the zero point matter: stretched dequantizes as
  // (q - zp) * s too.
  AffineOps affine = ops;
  affine.stretched = false;
  Dispatch<true>(FixedCombination(ops.output, ops.output), affine, [&](auto k, auto m) HWY_ATTR {
    DequantizeImpl<decltype(k), decltype(m)>(affine, map, params, codes, y, begin, end);
  });
}

void SteBackwardRange(const AffineOps& ops, const BlockMap& map, const BlockParams& params,
                      const void* x, const void* grad, FloatKind grad_kind, void* out,
                      std::int64_t begin, std::int64_t end) {
  Dispatch<false>(FixedCombination(ops.input, ops.product), ops, [&](auto k, auto m) HWY_ATTR {
    SteBackwardImpl<decltype(k), decltype(m)>(ops, map, params, x, grad, grad_kind, out, begin,
                                              end);
  });
}

// Two accumulator pairs halve the dependency chains; NaN is tracked in a mask
// (Min / Max treat NaN differently by target) and Inf shows up in the result.
template <int Kind>
bool MinMaxBlocksOf(const void* x, std::int64_t first, std::int64_t inner, std::int64_t count,
                    float* min, float* max) {
  constexpr auto kind = static_cast<FloatKind>(Kind);
  const DF df;
  const auto lanes = static_cast<std::int64_t>(hn::Lanes(df));
  auto nan = hn::FirstN(df, 0);
  bool finite = true;
  for (std::int64_t b = 0; b < count; ++b) {
    const std::int64_t begin = (first + b) * inner, end = begin + inner;
    VF lo0 = hn::Set(df, HUGE_VALF), hi0 = hn::Set(df, -HUGE_VALF), lo1 = lo0, hi1 = hi0;
    std::int64_t i = begin;
    for (; i + 2 * lanes <= end; i += 2 * lanes) {
      VF v0, v1;
#if QK_HAVE_BF16_PAIRS
      if constexpr (kind == FloatKind::bf16) {
        LoadBF16Pairs(df, x, i, &v0, &v1);  // lane order does not matter here
      } else                                // NOLINT(readability/braces)
#endif
      {
        v0 = Load(df, kind, x, i);
        v1 = Load(df, kind, x, i + lanes);
      }
      lo0 = hn::Min(lo0, v0);
      hi0 = hn::Max(hi0, v0);
      lo1 = hn::Min(lo1, v1);
      hi1 = hn::Max(hi1, v1);
      nan = hn::Or(nan, hn::Or(hn::IsNaN(v0), hn::IsNaN(v1)));
    }
    for (; i < end; i += lanes) {  // a last whole vector, then a tail padded with its first element
      VF v;
      if (i + lanes <= end) {
        v = Load(df, kind, x, i);
      } else {
        const std::size_t size = ElementSize(kind);
        alignas(64) unsigned char in[HWY_MAX_BYTES];
        const auto* src = static_cast<const unsigned char*>(x) + i * size;
        for (std::int64_t k = 0; k < lanes; ++k)
          std::memcpy(in + k * size, src + (k < end - i ? k : 0) * size, size);
        v = Load(df, kind, in, 0);
      }
      lo0 = hn::Min(lo0, v);
      hi0 = hn::Max(hi0, v);
      nan = hn::Or(nan, hn::IsNaN(v));
    }
    min[b] = hn::GetLane(hn::MinOfLanes(df, hn::Min(lo0, lo1)));
    max[b] = hn::GetLane(hn::MaxOfLanes(df, hn::Max(hi0, hi1)));
    finite = finite && min[b] != -HUGE_VALF && max[b] != HUGE_VALF;
  }
  return finite && hn::AllFalse(df, nan);
}

bool MinMaxBlocks(FloatKind input, const void* x, std::int64_t first, std::int64_t inner,
                  std::int64_t count, float* min, float* max) {
  switch (input) {
    case FloatKind::bf16:
      return MinMaxBlocksOf<BF16>(x, first, inner, count, min, max);
    case FloatKind::f16:
      return MinMaxBlocksOf<F16>(x, first, inner, count, min, max);
    default:
      return MinMaxBlocksOf<F32>(x, first, inner, count, min, max);
  }
}

bool ColumnMinMax(FloatKind input, const void* x, std::int64_t rows, std::int64_t cols, float* min,
                  float* max) {
  const DF df;
  const auto lanes = static_cast<std::int64_t>(hn::Lanes(df));
  const std::size_t size = ElementSize(input);
  auto finite = hn::Eq(hn::Zero(df), hn::Zero(df));
  bool tail_finite = true;
  for (std::int64_t r = 0; r < rows; ++r) {
    const auto* row = static_cast<const unsigned char*>(x) + r * cols * size;
    std::int64_t c = 0;
    for (; c + lanes <= cols; c += lanes) {
      const VF v = Load(df, input, row, c);
      hn::StoreU(hn::Min(hn::LoadU(df, min + c), v), df, min + c);
      hn::StoreU(hn::Max(hn::LoadU(df, max + c), v), df, max + c);
      finite = hn::And(finite, hn::Lt(hn::Abs(v), hn::Set(df, HUGE_VALF)));
    }
    for (; c < cols; ++c) {
      alignas(64) unsigned char one[HWY_MAX_BYTES] = {};
      std::memcpy(one, row + c * size, size);
      const float v = hn::GetLane(Load(df, input, one, 0));
      min[c] = v < min[c] ? v : min[c];
      max[c] = v > max[c] ? v : max[c];
      tail_finite = tail_finite && (v == v) && v != HUGE_VALF && v != -HUGE_VALF;
    }
  }
  return hn::AllTrue(df, finite) && tail_finite;
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
HWY_EXPORT(QuantizePacked4Range);
HWY_EXPORT(DequantizeRange);
HWY_EXPORT(SteBackwardRange);
HWY_EXPORT(MinMaxBlocks);
HWY_EXPORT(ColumnMinMax);
HWY_EXPORT(TargetName);

void fake_quantize_range(const AffineOps& ops, const BlockMap& map, const BlockParams& params,
                         const void* x, void* y, std::int64_t begin, std::int64_t end) {
  HWY_DYNAMIC_DISPATCH(FakeQuantizeRange)(ops, map, params, x, y, begin, end);
}
void quantize_range(const AffineOps& ops, const BlockMap& map, const BlockParams& params,
                    const void* x, std::int8_t* codes, std::int64_t begin, std::int64_t end) {
  HWY_DYNAMIC_DISPATCH(QuantizeRange)(ops, map, params, x, codes, begin, end);
}
bool quantize_packed4_range(const AffineOps& ops, const BlockMap& map, const BlockParams& params,
                            const void* x, std::uint8_t* packed, std::int64_t begin,
                            std::int64_t end) {
  return HWY_DYNAMIC_DISPATCH(QuantizePacked4Range)(ops, map, params, x, packed, begin, end);
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
bool min_max_blocks(FloatKind input, const void* x, std::int64_t first, std::int64_t inner,
                    std::int64_t count, float* min, float* max) {
  return HWY_DYNAMIC_DISPATCH(MinMaxBlocks)(input, x, first, inner, count, min, max);
}
bool column_min_max(FloatKind input, const void* x, std::int64_t rows, std::int64_t cols,
                    float* min, float* max) {
  return HWY_DYNAMIC_DISPATCH(ColumnMinMax)(input, x, rows, cols, min, max);
}
const char* active_target_name() {
  return HWY_DYNAMIC_DISPATCH(TargetName)();
}
std::int64_t compiled_targets() {
  return HWY_TARGETS;
}

}  // namespace quantkit::cpu
#endif  // HWY_ONCE
