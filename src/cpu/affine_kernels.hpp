#pragma once
// SIMD kernels for integer-code affine quantization (Highway, dynamic dispatch).
//
// Every kernel reproduces src/reference/element_ops.cpp bit for bit on every
// compiled target: each eager op is computed in float32 and rounded to its
// dtype with a hand-written round-to-nearest-even (Highway 1.0's bf16 demotion
// truncates and its SSE4 fp16 demotion is wrong, so neither is used).

#include <cstdint>

namespace quantkit::cpu {

/// Storage / rounding kinds of float values (matches ScalarType order of use).
enum class FloatKind : std::uint8_t { f32 = 0, bf16 = 1, f16 = 2 };

/// Which integer grid the codes lie on.
enum class AffineGrid : std::uint8_t {
  no_zero_point,  // q = clamp(round(x * r))
  zero_point,     // q = clamp(round(x * r) + zp)
  /// The stretched (PARQ) grid: q = round(clamp(x, -c, c) / s + zp) with the
  /// quotient and the sum rounded to `product`; params.reciprocal holds c.
  stretched,
};

/// The per-call constants of an affine kernel; per-block values live in arrays.
/// The reference also rounds round(x * r) + zp to promote(P, Z) and (q - zp) * s
/// to promote(O, S) before O; neither can change a result of these kernels
/// (see affine_kernels.cpp), so they are not parameters.
struct AffineOps {
  FloatKind input;    // T: how x is stored
  FloatKind product;  // P = promote(T, S): x * r is rounded to it
  FloatKind output;   // O: stored output (fake quantize: T)
  AffineGrid grid;
  float quant_min;
  float quant_max;
  /// Write outputs with non-temporal stores (outputs larger than the caches:
  /// skips reading every destination line before overwriting it).
  bool stream = false;
};

/// Where the per-block parameters of element i are: block(i) = (i / inner) % period.
struct BlockMap {
  std::int64_t inner;
  std::int64_t period;
};

struct BlockParams {
  const float* reciprocal;
  const float* scale;
  const float* zero_point;
};

/// y[i] = dequantize(quantize(x[i])) for i in [begin, end).
void fake_quantize_range(const AffineOps& ops, const BlockMap& map, const BlockParams& params,
                         const void* x, void* y, std::int64_t begin, std::int64_t end);
/// codes[i - begin] = quantize(x[i]) as int8 (every code of 1..8 bits fits).
void quantize_range(const AffineOps& ops, const BlockMap& map, const BlockParams& params,
                    const void* x, std::int8_t* codes, std::int64_t begin, std::int64_t end);
/// 4-bit codes of x[begin, end) packed two per byte (element begin + 2j in the
/// low nibble of packed[j], begin + 2j + 1 in the high one). Applies where no
/// pair of elements straddles two blocks (runs of one block's elements of even
/// length, even begin and end) and the target has vectors of several lanes;
/// returns false, writing nothing, elsewhere.
bool quantize_packed4_range(const AffineOps& ops, const BlockMap& map, const BlockParams& params,
                            const void* x, std::uint8_t* packed, std::int64_t begin,
                            std::int64_t end);
/// y[i] = dequantize(codes[i - begin]).
void dequantize_range(const AffineOps& ops, const BlockMap& map, const BlockParams& params,
                      const std::int8_t* codes, void* y, std::int64_t begin, std::int64_t end);
/// out[i] = grad[i] * (straight-through mask at x[i]): the gradient where the
/// unclamped code round(x * r) + zp lies in [quant_min, quant_max], else
/// grad * 0 (so -0 for negative gradients, as PyTorch multiplies by the mask).
void ste_backward_range(const AffineOps& ops, const BlockMap& map, const BlockParams& params,
                        const void* x, const void* grad, FloatKind grad_kind, void* out,
                        std::int64_t begin, std::int64_t end);
/// Name of the Highway target the dispatcher currently picks (e.g. "AVX3").
const char* active_target_name();
/// The Highway targets the kernels were compiled for (bit set of HWY_AVX3,
/// HWY_AVX2, ...; one configuration for every kernel file, cpu/highway_config.h).
std::int64_t compiled_targets();

}  // namespace quantkit::cpu
