// Highway kernel of the ordered dot products behind linear(): a tile of up to
// four weight rows against a run of activation rows, so each activation vector
// loaded serves four outputs.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "cpu/linear_kernels.cpp"
// Before any Highway header: it decides the targets foreach_target compiles.
#include "cpu/highway_config.h"

#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <algorithm>
#include <cstring>

#include "cpu/lanes-inl.h"
#include "cpu/linear_kernels.hpp"
#include "quantkit/half.hpp"
#include "reference/eager_math.hpp"

HWY_BEFORE_NAMESPACE();
namespace quantkit::cpu::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Partial j of the specification is lane j % L of vector j / L.
constexpr std::size_t kLanes = hn::MaxLanes(DF());
constexpr std::size_t kVectors = 16 / kLanes;
static_assert(kLanes <= 16 && 16 % kLanes == 0, "sixteen partials must fill whole vectors");

// Activation rows per step: with one vector per sixteen partials (AVX-512), four
// rows of x against four weight rows keep sixteen accumulators in registers and
// load each weight vector once per four outputs; narrower targets take one row.
constexpr int kRowsPerStep = kVectors == 1 ? 4 : 1;

// Products of x rows [m, m + MX) with the R weight rows, into sums (row-major,
// R per x row). Each output's operations are the specification's, in its order.
template <FloatKind kKind, int R, int MX>
HWY_INLINE void DotStep(const unsigned char* x, std::int64_t m, const unsigned char* wrows,
                        const unsigned char (*wtail)[16 * sizeof(float)], std::int64_t k,
                        float* sums) {
  const DF df;
  const std::size_t size = ElementSize(kKind);
  const std::int64_t whole = k / 16 * 16;
  VF acc[MX][R][kVectors];
  for (int i = 0; i < MX; ++i) {
    for (int r = 0; r < R; ++r) {
      for (std::size_t v = 0; v < kVectors; ++v) acc[i][r][v] = hn::Zero(df);
    }
  }
  for (std::int64_t at0 = 0; at0 < whole; at0 += 16) {
    for (std::size_t v = 0; v < kVectors; ++v) {
      const auto at = at0 + static_cast<std::int64_t>(v * kLanes);
      VF xv[MX];
      for (int i = 0; i < MX; ++i) xv[i] = Load(df, kKind, x + (m + i) * k * size, at);
      for (int r = 0; r < R; ++r) {
        const VF wv = Load(df, kKind, wrows + r * k * size, at);
        for (int i = 0; i < MX; ++i) acc[i][r][v] = hn::Add(acc[i][r][v], hn::Mul(xv[i], wv));
      }
    }
  }
  if (whole < k) {
    for (int i = 0; i < MX; ++i) {
      alignas(64) unsigned char xtail[16 * sizeof(float)] = {};
      std::memcpy(xtail, x + ((m + i) * k + whole) * size, (k - whole) * size);
      for (std::size_t v = 0; v < kVectors; ++v) {
        const auto at = static_cast<std::int64_t>(v * kLanes);
        const VF xv = Load(df, kKind, xtail, at);
        for (int r = 0; r < R; ++r) {
          acc[i][r][v] = hn::Add(acc[i][r][v], hn::Mul(xv, Load(df, kKind, wtail[r], at)));
        }
      }
    }
  }
  for (int i = 0; i < MX; ++i) {
    for (int r = 0; r < R; ++r) {
      // Halving across vectors (partial j += partial j + h for h >= L) ...
      for (std::size_t h = kVectors / 2; h >= 1; h /= 2) {
        for (std::size_t v = 0; v < h; ++v) acc[i][r][v] = hn::Add(acc[i][r][v], acc[i][r][v + h]);
      }
      // ... then within the last one.
      alignas(64) float p[kLanes];
      hn::Store(acc[i][r][0], df, p);
      for (std::size_t h = kLanes / 2; h >= 1; h /= 2) {
        for (std::size_t j = 0; j < h; ++j) p[j] += p[j + h];
      }
      sums[(m + i) * R + r] = p[0];
    }
  }
}

template <FloatKind kKind, int R>
void DotTileOf(const void* x, std::int64_t x_rows, const void* w, std::int64_t k, float* sums) {
  const std::size_t size = ElementSize(kKind);
  const std::int64_t whole = k / 16 * 16;
  const auto* wrows = static_cast<const unsigned char*>(w);
  const auto* xs = static_cast<const unsigned char*>(x);
  // The last k % 16 elements of each row, zero-padded to sixteen: the padding's
  // products are +0 and leave every partial as it was (a partial that starts
  // at +0 is never -0).
  alignas(64) unsigned char wtail[R][16 * sizeof(float)] = {};
  for (int r = 0; r < R && whole < k; ++r) {
    std::memcpy(wtail[r], wrows + (r * k + whole) * size, (k - whole) * size);
  }
  std::int64_t m = 0;
  for (; m + kRowsPerStep <= x_rows; m += kRowsPerStep) {
    DotStep<kKind, R, kRowsPerStep>(xs, m, wrows, wtail, k, sums);
  }
  for (; m < x_rows; ++m) DotStep<kKind, R, 1>(xs, m, wrows, wtail, k, sums);
}

// ---- Weights decoded in registers from 4- or 8-bit codes.

HWY_INLINE float ValueOf(FloatKind kind, const unsigned char* base, std::int64_t i) {
  if (kind == FloatKind::f32) {
    float v;
    std::memcpy(&v, base + i * 4, 4);
    return v;
  }
  std::uint16_t bits;
  std::memcpy(&bits, base + i * 2, 2);
  return kind == FloatKind::bf16 ? float_from_bfloat16_bits(bits) : float_from_float16_bits(bits);
}

HWY_INLINE ScalarType TypeOf(FloatKind kind) {
  return kind == FloatKind::f32    ? ScalarType::float32
         : kind == FloatKind::bf16 ? ScalarType::bfloat16
                                   : ScalarType::float16;
}

// Code of element e of a row (sign-extended where the format is signed).
template <int Bits>
HWY_INLINE int CodeAt(const std::uint8_t* row, std::int64_t e, bool is_signed) {
  if constexpr (Bits == 8) {
    return is_signed ? static_cast<int>(static_cast<std::int8_t>(row[e])) : row[e];
  } else {
    const int nibble = (e % 2 == 0) ? (row[e / 2] & 0xF) : (row[e / 2] >> 4);
    return is_signed && nibble > 7 ? nibble - 16 : nibble;
  }
}

// Vector v of a 16-element chunk of 8-bit codes at `src`, widened to int32.
HWY_INLINE hn::Vec<DI> BytesOfChunk(const std::uint8_t* src, std::size_t v, bool is_signed) {
  const DI di;
  const std::uint8_t* at = src + v * kLanes;
  if (is_signed) {
    const hn::Rebind<std::int8_t, DF> d8;
    return hn::PromoteTo(di, hn::LoadU(d8, reinterpret_cast<const std::int8_t*>(at)));
  }
  const hn::Rebind<std::uint8_t, DF> du8;
  return hn::PromoteTo(di, hn::LoadU(du8, at));
}

// Vector v of a 16-element chunk of 4-bit codes (8 bytes at `src`) in kEvenOdd
// order: the low nibbles (even elements) fill lanes 0..7 of the chunk, the high
// nibbles lanes 8..15, straight from registers (a store of split bytes followed
// by a vector load would stall on store forwarding).
HWY_INLINE hn::Vec<DI> NibblesOfChunk(const std::uint8_t* src, std::size_t v) {
  const DI di;
#if HWY_TARGET != HWY_SCALAR      // Combine: targets of several lanes
  if constexpr (kVectors == 1) {  // sixteen lanes: both halves in one vector
    const hn::Half<DU> dh;
    const hn::Rebind<std::uint8_t, decltype(dh)> d8;
    const auto bytes = hn::PromoteTo(dh, hn::LoadU(d8, src));
    const auto low = hn::And(bytes, hn::Set(dh, 0xFu));
    return hn::BitCast(di, hn::Combine(DU(), hn::ShiftRight<4>(bytes), low));
  }
#endif
  const DU du;
  const hn::Rebind<std::uint8_t, DF> d8;
  const std::size_t half = kVectors / 2;  // vectors per half of the chunk (>= 1 here)
  const auto bytes = hn::PromoteTo(du, hn::LoadU(d8, src + (v % half) * kLanes));
  return hn::BitCast(di, v < half ? hn::And(bytes, hn::Set(du, 0xFu)) : hn::ShiftRight<4>(bytes));
}

// FP4 E2M1 codes (0..15, widened) as their float values: magnitude m = q & 7
// is m / 2 for m < 2 and 2^((m >> 1) - 1) * (1 + (m & 1) / 2) above (built as
// float32 bits), the sign is bit 3.
HWY_INLINE VF Fp4Values(hn::Vec<DI> q) {
  const DF df;
  const DI di;
  const auto magnitude = hn::And(q, hn::Set(di, 7));
  const auto normal =
      hn::Or(hn::ShiftLeft<23>(hn::Add(hn::ShiftRight<1>(magnitude), hn::Set(di, 126))),
             hn::ShiftLeft<22>(hn::And(magnitude, hn::Set(di, 1))));
  const VF half_steps =
      hn::Mul(hn::ConvertTo(df, hn::And(magnitude, hn::Set(di, 1))), hn::Set(df, 0.5f));
  const VF value = hn::IfThenElse(hn::RebindMask(df, hn::Lt(magnitude, hn::Set(di, 2))), half_steps,
                                  hn::BitCast(df, normal));
  return hn::Or(value, hn::BitCast(df, hn::ShiftLeft<28>(hn::And(q, hn::Set(di, 8)))));
}

HWY_INLINE float Fp4Value(int code) {
  constexpr float kMagnitudes[8] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f};
  return (code & 8) ? -kMagnitudes[code & 7] : kMagnitudes[code & 7];
}

template <FloatKind kKind, int R, int MX, int Bits>
HWY_INLINE void PackedStep(const unsigned char* x, const unsigned char* x_even_odd, std::int64_t m,
                           const PackedIntRows& w, std::int64_t first, std::int64_t k,
                           float* sums) {
  const DF df;
  const DI di;
  const std::size_t size = ElementSize(kKind);
  const std::int64_t whole = k / 16 * 16;
  const unsigned char* xs = Bits == 4 ? x_even_odd : x;
  const std::int64_t x_stride = Bits == 4 ? whole : k;
  VF acc[MX][R][kVectors];
  for (int i = 0; i < MX; ++i) {
    for (int r = 0; r < R; ++r) {
      for (std::size_t v = 0; v < kVectors; ++v) acc[i][r][v] = hn::Zero(df);
    }
  }
  // The block of each chunk, counted rather than divided out: a block spans
  // group / 16 whole chunks (or the whole row).
  const std::int64_t chunks_per_block = std::max<std::int64_t>(w.group / 16, 1);
  std::int64_t block = 0, chunks_left = chunks_per_block;
  for (std::int64_t at0 = 0; at0 < whole; at0 += 16) {
    VF wv[R][kVectors];
    for (int r = 0; r < R; ++r) {
      const std::int64_t row = first + r;
      const std::int64_t b = row * w.blocks_per_row + block;
      const VF scale = hn::Set(df, w.scale[b]), zero_point = hn::Set(df, w.zero_point[b]);
      const std::uint8_t* src = w.codes + row * w.row_bytes + at0 * Bits / 8;
      for (std::size_t v = 0; v < kVectors; ++v) {
        hn::Vec<DI> q = Bits == 4 ? NibblesOfChunk(src, v) : BytesOfChunk(src, v, w.is_signed);
        if (Bits == 4 && w.fp4) {
          wv[r][v] = RoundFiniteTo(df, kKind, hn::Mul(Fp4Values(q), scale));
          continue;
        }
        if (Bits == 4 && w.is_signed) {
          q = hn::Sub(hn::Xor(q, hn::Set(di, 8)), hn::Set(di, 8));  // sign-extend the nibble
        }
        // The dequantize kernels' value: (q - zp) * s, rounded to the output kind.
        wv[r][v] =
            RoundFiniteTo(df, kKind, hn::Mul(hn::Sub(hn::ConvertTo(df, q), zero_point), scale));
      }
    }
    if (--chunks_left == 0) {
      ++block;
      chunks_left = chunks_per_block;
    }
    for (std::size_t v = 0; v < kVectors; ++v) {
      const auto at = at0 + static_cast<std::int64_t>(v * kLanes);
      for (int i = 0; i < MX; ++i) {
        const VF xv = Load(df, kKind, xs + (m + i) * x_stride * size, at);
        for (int r = 0; r < R; ++r) acc[i][r][v] = hn::Add(acc[i][r][v], hn::Mul(xv, wv[r][v]));
      }
    }
  }
  const ScalarType type = TypeOf(kKind);
  for (int i = 0; i < MX; ++i) {
    const unsigned char* xrow = x + (m + i) * k * size;
    for (int r = 0; r < R; ++r) {
      alignas(64) float lanes[16];
      for (std::size_t v = 0; v < kVectors; ++v) hn::Store(acc[i][r][v], df, lanes + v * kLanes);
      float p[16];
      for (int l = 0; l < 16; ++l) p[Bits == 4 ? kEvenOdd[l] : l] = lanes[l];
      // The tail joins its partials last, as the specification adds it.
      const std::int64_t row = first + r;
      const std::uint8_t* codes = w.codes + row * w.row_bytes;
      for (std::int64_t e = whole; e < k; ++e) {
        const std::int64_t b = row * w.blocks_per_row + e / w.group;
        const int code = CodeAt<Bits>(codes, e, w.is_signed && !w.fp4);
        const float value =
            w.fp4 ? reference::round_to(type, Fp4Value(code) * w.scale[b])
                  : reference::round_to(type,
                                        (static_cast<float>(code) - w.zero_point[b]) * w.scale[b]);
        p[e - whole] += ValueOf(kKind, xrow, e) * value;
      }
      for (int h = 8; h >= 1; h /= 2) {
        for (int j = 0; j < h; ++j) p[j] += p[j + h];
      }
      sums[(m + i) * R + r] = p[0];
    }
  }
}

template <FloatKind kKind, int R, int Bits>
void PackedTileOf(const void* x, const void* x_even_odd, std::int64_t x_rows,
                  const PackedIntRows& w, std::int64_t first, std::int64_t k, float* sums) {
  const auto* xs = static_cast<const unsigned char*>(x);
  const auto* xeo = static_cast<const unsigned char*>(x_even_odd);
  std::int64_t m = 0;
  for (; m + kRowsPerStep <= x_rows; m += kRowsPerStep) {
    PackedStep<kKind, R, kRowsPerStep, Bits>(xs, xeo, m, w, first, k, sums);
  }
  for (; m < x_rows; ++m) PackedStep<kKind, R, 1, Bits>(xs, xeo, m, w, first, k, sums);
}

template <FloatKind kKind, int Bits>
void PackedTileRows(const void* x, const void* x_even_odd, std::int64_t x_rows,
                    const PackedIntRows& w, std::int64_t first, std::int64_t rows, std::int64_t k,
                    float* sums) {
  switch (rows) {
    case 1:
      return PackedTileOf<kKind, 1, Bits>(x, x_even_odd, x_rows, w, first, k, sums);
    case 2:
      return PackedTileOf<kKind, 2, Bits>(x, x_even_odd, x_rows, w, first, k, sums);
    case 3:
      return PackedTileOf<kKind, 3, Bits>(x, x_even_odd, x_rows, w, first, k, sums);
    default:
      return PackedTileOf<kKind, 4, Bits>(x, x_even_odd, x_rows, w, first, k, sums);
  }
}

template <FloatKind kKind>
void PackedTileKind(const void* x, const void* x_even_odd, std::int64_t x_rows,
                    const PackedIntRows& w, std::int64_t first, std::int64_t rows, std::int64_t k,
                    float* sums) {
  if (w.bits == 4) return PackedTileRows<kKind, 4>(x, x_even_odd, x_rows, w, first, rows, k, sums);
  return PackedTileRows<kKind, 8>(x, x_even_odd, x_rows, w, first, rows, k, sums);
}

void PackedDotTile(FloatKind kind, const void* x, const void* x_even_odd, std::int64_t x_rows,
                   const PackedIntRows& w, std::int64_t first, std::int64_t rows, std::int64_t k,
                   float* sums) {
  switch (kind) {
    case FloatKind::f32:
      return PackedTileKind<FloatKind::f32>(x, x_even_odd, x_rows, w, first, rows, k, sums);
    case FloatKind::bf16:
      return PackedTileKind<FloatKind::bf16>(x, x_even_odd, x_rows, w, first, rows, k, sums);
    case FloatKind::f16:
      return PackedTileKind<FloatKind::f16>(x, x_even_odd, x_rows, w, first, rows, k, sums);
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
HWY_EXPORT(PackedDotTile);

void packed_dot_tile(FloatKind kind, const void* x, const void* x_even_odd, std::int64_t x_rows,
                     const PackedIntRows& w, std::int64_t first, std::int64_t rows, std::int64_t k,
                     float* sums) {
  HWY_DYNAMIC_DISPATCH(PackedDotTile)(kind, x, x_even_odd, x_rows, w, first, rows, k, sums);
}

void permute_chunks(const void* x, std::int64_t rows, std::int64_t k, std::size_t size, void* out) {
  const std::int64_t whole = k / 16 * 16;
  const auto* src = static_cast<const unsigned char*>(x);
  auto* dst = static_cast<unsigned char*>(out);
  for (std::int64_t r = 0; r < rows; ++r) {
    for (std::int64_t c = 0; c < whole; c += 16) {
      for (int l = 0; l < 16; ++l) {
        std::memcpy(dst + (r * whole + c + l) * size, src + (r * k + c + kEvenOdd[l]) * size, size);
      }
    }
  }
}

void ordered_dot_tile(FloatKind kind, const void* x, std::int64_t x_rows, const void* w,
                      std::int64_t rows, std::int64_t k, float* sums) {
  HWY_DYNAMIC_DISPATCH(OrderedDotTile)(kind, x, x_rows, w, rows, k, sums);
}

}  // namespace quantkit::cpu
#endif  // HWY_ONCE
