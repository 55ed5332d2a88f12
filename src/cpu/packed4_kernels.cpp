// Highway kernels that quantize straight to packed 4-bit codes (two per
// byte), the layout int4 / uint4 tensors are stored in; same element formulas
// as affine_kernels.cpp (cpu/affine_lanes-inl.h).
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "cpu/packed4_kernels.cpp"
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
  if constexpr (K::input_is(FloatKind::bf16)) {  // a lane's two halves are the byte's two nibbles
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

bool QuantizePacked4Range(const AffineOps& ops, const BlockMap& map, const BlockParams& params,
                          const void* x, std::uint8_t* packed, std::int64_t begin,
                          std::int64_t end) {
#if HWY_TARGET == HWY_SCALAR  // one lane: no neighbour to pair a code with
  (void)ops, (void)map, (void)params, (void)x, (void)packed, (void)begin, (void)end;
  return false;
#else
  const bool even_runs = map.period == 1 || map.inner % 2 == 0;
  if (!BroadcastRuns(map) || !even_runs || begin % 2 != 0 || end % 2 != 0) return false;
  Dispatch<false>(CombinationOf(ops.input, ops.product), ops, [&](auto k, auto m) HWY_ATTR {
    QuantizePacked4Impl<decltype(k), decltype(m)>(ops, map, params, x, packed, begin, end);
  });
  return true;
#endif
}

}  // namespace quantkit::cpu::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace quantkit::cpu {

HWY_EXPORT(QuantizePacked4Range);

bool quantize_packed4_range(const AffineOps& ops, const BlockMap& map, const BlockParams& params,
                            const void* x, std::uint8_t* packed, std::int64_t begin,
                            std::int64_t end) {
  return HWY_DYNAMIC_DISPATCH(QuantizePacked4Range)(ops, map, params, x, packed, begin, end);
}

}  // namespace quantkit::cpu
#endif  // HWY_ONCE
