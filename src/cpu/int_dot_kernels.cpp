// Highway kernel of linear_int's block sums: 16-bit products summed
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

#if HWY_TARGET != HWY_SCALAR
using D32 = hn::ScalableTag<std::int32_t>;
using D16 = hn::Repartition<std::int16_t, D32>;

// Block sums of MX rows of a against R rows of b: each 16-bit vector loaded
// serves R (or MX) products, the accumulators stay in registers.
template <int MX, int R>
HWY_INLINE void TileStep(const std::int16_t* a, std::int64_t i0, const std::int16_t* b,
                         std::int64_t rows, std::int64_t k, std::int64_t group, std::int32_t* out) {
  const D32 d32;
  const D16 d16;
  const auto lanes = static_cast<std::int64_t>(hn::Lanes(d16));
  const std::int64_t blocks = k / group;
  for (std::int64_t j = 0; j < blocks; ++j) {
    const std::int64_t begin = j * group, end = begin + group;
    hn::Vec<D32> acc[MX][R];
    for (int i = 0; i < MX; ++i) {
      for (int r = 0; r < R; ++r) acc[i][r] = hn::Zero(d32);
    }
    std::int64_t c = begin;
    for (; c + lanes <= end; c += lanes) {
      hn::Vec<D16> av[MX];
      for (int i = 0; i < MX; ++i) av[i] = hn::LoadU(d16, a + (i0 + i) * k + c);
      for (int r = 0; r < R; ++r) {
        const auto bv = hn::LoadU(d16, b + r * k + c);
        for (int i = 0; i < MX; ++i) {
          auto unused = hn::Zero(d32);
          acc[i][r] = hn::ReorderWidenMulAccumulate(d32, av[i], bv, acc[i][r], unused);
        }
      }
    }
    for (int i = 0; i < MX; ++i) {
      for (int r = 0; r < R; ++r) {
        std::int32_t total = hn::GetLane(hn::SumOfLanes(d32, acc[i][r]));
        for (std::int64_t t = c; t < end; ++t) {
          total += static_cast<std::int32_t>(a[(i0 + i) * k + t]) * b[r * k + t];
        }
        out[((i0 + i) * rows + r) * blocks + j] = total;
      }
    }
  }
}

template <int R>
void TileRows(const std::int16_t* a, std::int64_t a_rows, const std::int16_t* b, std::int64_t k,
              std::int64_t group, std::int32_t* out) {
  constexpr int kRowsPerStep = HWY_TARGET == HWY_AVX3 ? 4 : 2;  // accumulators in registers
  std::int64_t i = 0;
  for (; i + kRowsPerStep <= a_rows; i += kRowsPerStep) {
    TileStep<kRowsPerStep, R>(a, i, b, R, k, group, out);
  }
  for (; i < a_rows; ++i) TileStep<1, R>(a, i, b, R, k, group, out);
}
#endif

void IntDotTile(const std::int16_t* a, std::int64_t a_rows, const std::int16_t* b,
                std::int64_t rows, std::int64_t k, std::int64_t group, std::int32_t* out) {
#if HWY_TARGET != HWY_SCALAR
  switch (rows) {
    case 1:
      return TileRows<1>(a, a_rows, b, k, group, out);
    case 2:
      return TileRows<2>(a, a_rows, b, k, group, out);
    case 3:
      return TileRows<3>(a, a_rows, b, k, group, out);
    default:
      return TileRows<4>(a, a_rows, b, k, group, out);
  }
#else  // one-lane vectors cannot pair products: plain integer loops
  const std::int64_t blocks = k / group;
  for (std::int64_t i = 0; i < a_rows; ++i) {
    for (std::int64_t r = 0; r < rows; ++r) {
      for (std::int64_t j = 0; j < blocks; ++j) {
        std::int32_t total = 0;
        for (std::int64_t c = j * group; c < (j + 1) * group; ++c) {
          total += static_cast<std::int32_t>(a[i * k + c]) * b[r * k + c];
        }
        out[(i * rows + r) * blocks + j] = total;
      }
    }
  }
#endif
}

}  // namespace quantkit::cpu::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace quantkit::cpu {

HWY_EXPORT(IntDotTile);

void int_dot_tile(const std::int16_t* a, std::int64_t a_rows, const std::int16_t* b,
                  std::int64_t rows, std::int64_t k, std::int64_t group, std::int32_t* out) {
  HWY_DYNAMIC_DISPATCH(IntDotTile)(a, a_rows, b, rows, k, group, out);
}

}  // namespace quantkit::cpu
#endif  // HWY_ONCE
