#pragma once
// Helpers shared by the SIMD dispatch paths (fast_path.cpp, minifloat_path.cpp):
// storage kinds, the block map of a granularity and the fixed chunking.
#include <algorithm>
#include <cstdint>
#include <functional>
#include <limits>
#include <optional>

#include "cpu/affine_kernels.hpp"
#include "quantkit/packing.hpp"
#include "quantkit/quantized_tensor.hpp"
#include "quantkit/scalar_type.hpp"
#include "quantkit/tensor.hpp"
#include "reference/eager_math.hpp"
#include "reference/element_ops.hpp"

namespace quantkit::cpu {

// Fixed work items: results never depend on how chunks are spread over
// threads, and 4096 * bits is a whole number of bytes for every width.
constexpr std::int64_t kChunk = 4096;

/// Integer formats with an int or no zero point: the affine kernels' specs.
/// The stretched mapping too where the qparams are given (choosing them needs
/// mean|x|, which the fused choose-and-quantize path does not compute).
inline bool affine_path_supports(const QuantSpec& spec, bool allow_stretched = false) {
  if (spec.dtype.is_floating()) return false;
  if (spec.mapping == Mapping::stretched) return allow_stretched;
  return spec.resolved_zero_point_domain() != ZeroPointDomain::float_;
}

inline std::optional<FloatKind> kind_of(ScalarType type) {
  switch (type) {
    case ScalarType::float32:
      return FloatKind::f32;
    case ScalarType::bfloat16:
      return FloatKind::bf16;
    case ScalarType::float16:
      return FloatKind::f16;
    default:
      return std::nullopt;
  }
}

inline FloatKind kind_or_f32(ScalarType type) {
  return kind_of(type).value_or(FloatKind::f32);
}

// The kernel constants of a plan: the kinds every op rounds to, the grid, the
// code range (non-streaming stores).
inline AffineOps affine_ops(const reference::ElementPlan& plan, ScalarType input,
                            ScalarType output) {
  AffineOps ops;
  ops.input = *kind_of(input);
  ops.product = kind_or_f32(reference::op_dtype(input, plan.scale_dtype));
  ops.output = *kind_of(output);
  ops.grid = plan.scheme == reference::Scheme::stretched    ? AffineGrid::stretched
             : plan.scheme == reference::Scheme::int_domain ? AffineGrid::zero_point
                                                            : AffineGrid::no_zero_point;
  ops.quant_min = static_cast<float>(plan.quant_min);
  ops.quant_max = static_cast<float>(plan.quant_max);
  return ops;
}

// block(i) = (i / inner) % period when the blocks are runs of the flat index:
// the last non-full block dim k, full dims after it, and before it either
// all ones (one run per block) or all full (blocks repeat with a period).
inline std::optional<BlockMap> block_map(const Shape& shape, const Shape& block) {
  const auto rank = static_cast<std::int64_t>(shape.size());
  std::int64_t k = rank - 1;
  while (k >= 0 && block[k] == shape[k]) --k;
  const std::int64_t n = numel(shape);
  if (k < 0) return BlockMap{std::numeric_limits<std::int64_t>::max(), 1};  // per-tensor
  std::int64_t inner = block[k];
  for (std::int64_t d = k + 1; d < rank; ++d) inner *= shape[d];
  bool leading_ones = true, leading_full = true;
  for (std::int64_t d = 0; d < k; ++d) {
    leading_ones = leading_ones && block[d] == 1;
    leading_full = leading_full && block[d] == shape[d];
  }
  if (inner == 0) return std::nullopt;
  if (leading_ones) return BlockMap{inner, std::max<std::int64_t>(n / inner, 1)};
  if (leading_full) return BlockMap{inner, shape[k] / block[k]};
  return std::nullopt;
}

/// Decodes elements [begin, end) of a 2-D weight from their unpacked codes
/// (codes[0, end - begin)) into out[0, end - begin), as dequantize() would;
/// `begin` is the first element of a row.
using RangeDecoder =
    std::function<void(const std::int8_t* codes, std::int64_t begin, std::int64_t end, void* out)>;

/// Where a range decoder can renumber a weight's elements from the start of
/// any row: one block, or blocks that are single runs of whole fractions of a row.
inline bool rows_start_blocks(const BlockMap& map, const Shape& shape) {
  return shape.size() == 2 &&
         (map.period == 1 || (map.inner * map.period == numel(shape) && shape[1] % map.inner == 0));
}

/// The block of element `begin` (the start of a row, see rows_start_blocks),
/// and the map of the elements from it on, renumbered from 0.
inline std::int64_t first_block_of(const BlockMap& map, std::int64_t begin) {
  return map.period == 1 ? 0 : begin / map.inner;
}
inline BlockMap map_from(const BlockMap& map, std::int64_t first_block) {
  return {map.inner, map.period - first_block};
}

/// Columns per block along a row and blocks per row of a 2-D weight whose
/// blocks start rows (rows_start_blocks): one block (blocks_per_row 0), whole
/// rows, or runs whose length is a multiple of `run_multiple` (0: any length).
struct RowBlocks {
  std::int64_t group;
  std::int64_t blocks_per_row;
};
inline std::optional<RowBlocks> row_blocks(const BlockMap& map, std::int64_t k,
                                           std::int64_t run_multiple) {
  if (map.period == 1) return RowBlocks{std::max<std::int64_t>(k, 1), 0};
  if (map.inner == k || run_multiple == 0 || map.inner % run_multiple == 0) {
    return RowBlocks{map.inner, k / map.inner};
  }
  return std::nullopt;
}

template <typename Fn>
inline void for_each_chunk(std::int64_t n, Fn&& fn) {
  const std::int64_t chunks = (n + kChunk - 1) / kChunk;
  // Below a few chunks, waking the thread team costs more than it saves.
#pragma omp parallel for schedule(static) if (chunks > 4)
  for (std::int64_t c = 0; c < chunks; ++c) fn(c * kChunk, std::min(n, (c + 1) * kChunk));
}

// The chunked drivers of the element-wise ops. Each kernel handles elements
// [begin, end) of one chunk.

/// kernel(begin, end, void* out) over every chunk of n elements.
template <typename Kernel>
void map_chunks_into(std::int64_t n, void* out, Kernel&& kernel) {
  for_each_chunk(n, [&](std::int64_t begin, std::int64_t end) { kernel(begin, end, out); });
}

/// A new `dtype` tensor of `shape`; kernel(begin, end, void* out).
template <typename Kernel>
Tensor map_chunks(ScalarType dtype, const Shape& shape, Kernel&& kernel) {
  Tensor out = Tensor::uninitialized(dtype, shape);
  map_chunks_into(numel(shape), out.raw_data(), kernel);
  return out;
}

/// Packed codes of `bits` bits; kernel(begin, end, std::int8_t* codes) fills
/// one code per element of the chunk.
template <typename Kernel>
Tensor pack_chunks(std::int64_t n, int bits, Kernel&& kernel) {
  Tensor packed = Tensor::uninitialized(ScalarType::uint8, {packed_size(n, bits)});
  auto* bytes = packed.data<std::uint8_t>();
  for_each_chunk(n, [&](std::int64_t begin, std::int64_t end) {
    std::int8_t codes[kChunk];
    kernel(begin, end, codes);
    pack_codes_into(codes, end - begin, bits, bytes + begin * bits / 8);
  });
  return packed;
}

/// The codes of q, chunk by chunk; kernel(begin, end, const std::int8_t*
/// codes, void* out) writes elements [begin, end) of `out`.
template <typename Kernel>
void unpack_chunks_into(const QuantizedTensor& q, void* out, bool is_signed, Kernel&& kernel) {
  const int bits = q.dtype().bits();
  map_chunks_into(q.numel(), out, [&](std::int64_t begin, std::int64_t end, void* y) {
    std::int8_t codes[kChunk];
    unpack_codes_into(q.packed().data(), begin, end - begin, bits, is_signed, codes);
    kernel(begin, end, codes, y);
  });
}

/// Whether the straight-through backward can take the SIMD path (the
/// reference validates and reports everything else).
inline bool backward_applies(TensorView x, TensorView grad_output) {
  return x.is_contiguous() && grad_output.is_contiguous() && kind_of(grad_output.dtype()) &&
         grad_output.shape() == x.shape();
}

}  // namespace quantkit::cpu
