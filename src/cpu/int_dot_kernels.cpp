// Highway kernel of linear_dynamic_int's block sums: 16-bit products summed
// pairwise into 32-bit lanes (madd), one block at a time.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "cpu/int_dot_kernels.cpp"
// Before any Highway header: it decides the targets foreach_target compiles.
#include "cpu/highway_config.h"

#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include "cpu/int_dot_kernels.hpp"

HWY_BEFORE_NAMESPACE();
namespace quantkit::cpu::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

void IntDotBlocks(const std::int16_t* a, const std::int16_t* b, std::int64_t rows,
                  std::int64_t k, std::int64_t group, std::int32_t* out) {
  const std::int64_t blocks = k / group;
#if HWY_TARGET != HWY_SCALAR
  const hn::ScalableTag<std::int32_t> d32;
  const hn::Repartition<std::int16_t, decltype(d32)> d16;
  const auto lanes = static_cast<std::int64_t>(hn::Lanes(d16));
#else
  const std::int64_t lanes = 0;  // one-lane vectors cannot pair products: all scalar
#endif
  for (std::int64_t r = 0; r < rows; ++r) {
    const std::int16_t* brow = b + r * k;
    for (std::int64_t blk = 0; blk < blocks; ++blk) {
      const std::int64_t begin = blk * group, end = begin + group;
      std::int32_t total = 0;
      std::int64_t c = begin;
#if HWY_TARGET != HWY_SCALAR
      auto sum0 = hn::Zero(d32), sum1 = hn::Zero(d32);
      for (; c + lanes <= end; c += lanes) {
        sum0 = hn::ReorderWidenMulAccumulate(d32, hn::LoadU(d16, a + c), hn::LoadU(d16, brow + c),
                                             sum0, sum1);
      }
      total = hn::GetLane(hn::SumOfLanes(d32, hn::Add(sum0, sum1)));
#endif
      (void)lanes;
      for (; c < end; ++c) total += static_cast<std::int32_t>(a[c]) * brow[c];
      out[r * blocks + blk] = total;
    }
  }
}

}  // namespace quantkit::cpu::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace quantkit::cpu {

HWY_EXPORT(IntDotBlocks);

void int_dot_blocks(const std::int16_t* a, const std::int16_t* b, std::int64_t rows, std::int64_t k,
                    std::int64_t group, std::int32_t* out) {
  HWY_DYNAMIC_DISPATCH(IntDotBlocks)(a, b, rows, k, group, out);
}

}  // namespace quantkit::cpu
#endif  // HWY_ONCE
