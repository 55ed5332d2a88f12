// Highway kernel of the ordered dot products behind linear(): a tile of up to
// four weight rows against a run of activation rows, so each activation vector
// loaded serves four outputs.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "cpu/linear_kernels.cpp"
// Before any Highway header: it decides the targets foreach_target compiles.
#include "cpu/highway_config.h"

#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <cstring>

#include "cpu/lanes-inl.h"
#include "cpu/linear_kernels.hpp"

HWY_BEFORE_NAMESPACE();
namespace quantkit::cpu::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Partial j of the specification is lane j % L of vector j / L.
constexpr std::size_t kLanes = hn::MaxLanes(DF());
constexpr std::size_t kVectors = 16 / kLanes;
static_assert(kLanes <= 16 && 16 % kLanes == 0, "sixteen partials must fill whole vectors");

template <FloatKind kKind, int R>
void DotTileOf(const void* x, std::int64_t x_rows, const void* w, std::int64_t k, float* sums) {
  const DF df;
  const std::size_t size = ElementSize(kKind);
  const std::int64_t whole = k / 16 * 16;
  const auto* wrows = static_cast<const unsigned char*>(w);
  // The last k % 16 elements of each row, zero-padded to sixteen: the padding's
  // products are +0 and leave every partial as it was (a partial that starts
  // at +0 is never -0).
  alignas(64) unsigned char wtail[R][16 * sizeof(float)] = {};
  for (int r = 0; r < R && whole < k; ++r) {
    std::memcpy(wtail[r], wrows + (r * k + whole) * size, (k - whole) * size);
  }
  for (std::int64_t m = 0; m < x_rows; ++m) {
    const auto* xrow = static_cast<const unsigned char*>(x) + m * k * size;
    VF acc[R][kVectors];
    for (int r = 0; r < R; ++r) {
      for (std::size_t v = 0; v < kVectors; ++v) acc[r][v] = hn::Zero(df);
    }
    for (std::int64_t i = 0; i < whole; i += 16) {
      for (std::size_t v = 0; v < kVectors; ++v) {
        const auto at = i + static_cast<std::int64_t>(v * kLanes);
        const VF xv = Load(df, kKind, xrow, at);
        for (int r = 0; r < R; ++r) {
          const VF wv = Load(df, kKind, wrows + r * k * size, at);
          acc[r][v] = hn::Add(acc[r][v], hn::Mul(xv, wv));
        }
      }
    }
    if (whole < k) {
      alignas(64) unsigned char xtail[16 * sizeof(float)] = {};
      std::memcpy(xtail, xrow + whole * size, (k - whole) * size);
      for (std::size_t v = 0; v < kVectors; ++v) {
        const auto at = static_cast<std::int64_t>(v * kLanes);
        const VF xv = Load(df, kKind, xtail, at);
        for (int r = 0; r < R; ++r) {
          acc[r][v] = hn::Add(acc[r][v], hn::Mul(xv, Load(df, kKind, wtail[r], at)));
        }
      }
    }
    for (int r = 0; r < R; ++r) {
      // Halving across vectors (partial j += partial j + h for h >= L) ...
      for (std::size_t h = kVectors / 2; h >= 1; h /= 2) {
        for (std::size_t v = 0; v < h; ++v) acc[r][v] = hn::Add(acc[r][v], acc[r][v + h]);
      }
      // ... then within the last one.
      alignas(64) float p[kLanes];
      hn::Store(acc[r][0], df, p);
      for (std::size_t h = kLanes / 2; h >= 1; h /= 2) {
        for (std::size_t j = 0; j < h; ++j) p[j] += p[j + h];
      }
      sums[m * R + r] = p[0];
    }
  }
}

template <FloatKind kKind>
void DotTileRows(const void* x, std::int64_t x_rows, const void* w, std::int64_t rows,
                 std::int64_t k, float* sums) {
  switch (rows) {
    case 1:
      return DotTileOf<kKind, 1>(x, x_rows, w, k, sums);
    case 2:
      return DotTileOf<kKind, 2>(x, x_rows, w, k, sums);
    case 3:
      return DotTileOf<kKind, 3>(x, x_rows, w, k, sums);
    default:
      return DotTileOf<kKind, 4>(x, x_rows, w, k, sums);
  }
}

void OrderedDotTile(FloatKind kind, const void* x, std::int64_t x_rows, const void* w,
                    std::int64_t rows, std::int64_t k, float* sums) {
  switch (kind) {
    case FloatKind::f32:
      return DotTileRows<FloatKind::f32>(x, x_rows, w, rows, k, sums);
    case FloatKind::bf16:
      return DotTileRows<FloatKind::bf16>(x, x_rows, w, rows, k, sums);
    case FloatKind::f16:
      return DotTileRows<FloatKind::f16>(x, x_rows, w, rows, k, sums);
  }
}

}  // namespace quantkit::cpu::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace quantkit::cpu {

HWY_EXPORT(OrderedDotTile);

void ordered_dot_tile(FloatKind kind, const void* x, std::int64_t x_rows, const void* w,
                      std::int64_t rows, std::int64_t k, float* sums) {
  HWY_DYNAMIC_DISPATCH(OrderedDotTile)(kind, x, x_rows, w, rows, k, sums);
}

}  // namespace quantkit::cpu
#endif  // HWY_ONCE
