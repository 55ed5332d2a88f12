// Highway kernels for per-block and per-column minima and maxima, the
// statistics choose_qparams and the observers start from.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "cpu/range_kernels.cpp"
// Before any Highway header: it decides the targets foreach_target compiles.
#include "cpu/highway_config.h"

#include <hwy/cache_control.h>
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "cpu/lanes-inl.h"
#include "cpu/range_kernels.hpp"

HWY_BEFORE_NAMESPACE();
namespace quantkit::cpu::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Two accumulator pairs halve the dependency chains; NaN is tracked in a mask
// (Min / Max treat NaN differently by target) and Inf shows up in the result.
template <FloatKind kind>
bool MinMaxBlocksOf(const void* x, std::int64_t first, std::int64_t inner, std::int64_t count,
                    float* min, float* max) {
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
      return MinMaxBlocksOf<FloatKind::bf16>(x, first, inner, count, min, max);
    case FloatKind::f16:
      return MinMaxBlocksOf<FloatKind::f16>(x, first, inner, count, min, max);
    default:
      return MinMaxBlocksOf<FloatKind::f32>(x, first, inner, count, min, max);
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

}  // namespace quantkit::cpu::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace quantkit::cpu {

HWY_EXPORT(MinMaxBlocks);
HWY_EXPORT(ColumnMinMax);

bool min_max_blocks(FloatKind input, const void* x, std::int64_t first, std::int64_t inner,
                    std::int64_t count, float* min, float* max) {
  return HWY_DYNAMIC_DISPATCH(MinMaxBlocks)(input, x, first, inner, count, min, max);
}
bool column_min_max(FloatKind input, const void* x, std::int64_t rows, std::int64_t cols,
                    float* min, float* max) {
  return HWY_DYNAMIC_DISPATCH(ColumnMinMax)(input, x, rows, cols, min, max);
}

}  // namespace quantkit::cpu
#endif  // HWY_ONCE
