// choose_qparams and quantize in one pass: each work item (whole blocks,
// about one chunk long) gets its ranges, its qparams and its packed codes
// while it is still in cache. Bit-identical to quantize(x, choose_qparams(x,
// spec)); anything the reference must report (NaN / Inf, an overflowing
// scale, a zero point its dtype cannot hold) sends the call to the reference.
#include <algorithm>
#include <cmath>
#include <vector>

#include "cpu/affine_kernels.hpp"
#include "cpu/choose_kernels.hpp"
#include "cpu/dispatch_helpers.hpp"
#include "cpu/fast_path.hpp"
#include "cpu/range_kernels.hpp"
#include "quantkit/packing.hpp"
#include "reference/block_chooser.hpp"
#include "reference/eager_math.hpp"

namespace quantkit::cpu {
namespace {

// Everything fixed for one call.
struct FusedPlan {
  FusedPlan(const QuantSpec& spec_, ScalarType compute_)
      : spec(spec_), compute(compute_), chooser(spec_, compute_) {}

  const QuantSpec& spec;
  ScalarType compute;
  ScalarType scale_dtype{};
  ScalarType zero_dtype{};
  std::int64_t blocks = 0;
  std::int64_t inner = 0;  // elements per block
  int bits = 0;
  std::int64_t per_item = 0;  // blocks per work item
  std::int64_t items = 0;
  AffineOps ops{};
  reference::BlockChooser chooser;
  // Asymmetric and symmetric scales are chosen on SIMD lanes, one block per
  // lane; other mappings block by block with the reference formula.
  bool lanes_choose = false;
  AffineChooseOps choose_ops{};
};

// Per-thread scratch for one work item. The stored values (scale in its
// dtype, zero point in its dtype) drive the kernel, exactly as quantize()
// reads them back from QParams.
struct ItemScratch {
  ItemScratch(std::int64_t per_item, std::int64_t inner)
      : lo(size(per_item)),
        hi(size(per_item)),
        scale_compute(size(per_item)),
        minval(size(per_item)),
        scale(size(per_item)),
        reciprocal(size(per_item)),
        zero_point(size(per_item), 0.0f),
        chosen(size(per_item)),
        codes(size(per_item * inner)) {}
  static std::size_t size(std::int64_t n) { return static_cast<std::size_t>(n); }

  std::vector<float> lo, hi, scale_compute, minval, scale, reciprocal, zero_point;
  std::vector<reference::BlockQParams> chosen;
  std::vector<std::int8_t> codes;
};

std::optional<FusedPlan> plan_for(TensorView x, const QuantSpec& spec, const Shape& block) {
  const auto input = kind_of(x.dtype());
  const auto map = block_map(x.shape(), block);
  if (!map || map->inner > kChunk || map->inner * map->period != x.numel()) return std::nullopt;
  std::optional<FusedPlan> plan(std::in_place, spec, x.dtype());
  FusedPlan& p = *plan;
  p.scale_dtype = reference::scale_storage(spec, p.compute);
  p.zero_dtype = reference::zero_point_storage(spec, p.compute);
  const auto scale_kind = kind_of(p.scale_dtype);
  if (!scale_kind) return std::nullopt;
  p.blocks = map->period;
  p.inner = map->inner;
  p.bits = spec.dtype.bits();
  // Work items are whole blocks, about a chunk long, starting on a byte of the packed stream.
  p.per_item = std::max<std::int64_t>(1, kChunk / p.inner);
  while ((p.per_item * p.inner * p.bits) % 8 != 0) ++p.per_item;
  p.items = (p.blocks + p.per_item - 1) / p.per_item;
  p.ops.input = *input;
  p.ops.product = kind_or_f32(reference::op_dtype(p.compute, p.scale_dtype));
  p.ops.output = *input;
  p.ops.grid = spec.resolved_zero_point_domain() == ZeroPointDomain::int_
                   ? AffineGrid::zero_point
                   : AffineGrid::no_zero_point;
  p.ops.quant_min = static_cast<float>(spec.dtype.quant_min());
  p.ops.quant_max = static_cast<float>(spec.dtype.quant_max());
  p.lanes_choose = lanes_choose(spec.mapping);
  p.choose_ops = {*input,          *scale_kind,     spec.mapping,
                  p.chooser.eps(), p.ops.quant_min, p.ops.quant_max};
  return plan;
}

// The qparams of blocks [b0, b0 + count) from their ranges in s.lo / s.hi;
// false when a scale overflowed (the reference reports it).
bool choose_blocks(const FusedPlan& p, ItemScratch& s, std::int64_t b0, std::int64_t count) {
  if (p.lanes_choose) {
    choose_affine_blocks(p.choose_ops, s.lo.data(), s.hi.data(), count,
                         ChosenBlocks{s.scale_compute.data(), s.zero_point.data(), s.minval.data(),
                                      s.scale.data(), s.reciprocal.data()});
  }
  bool finite = true;
  for (std::int64_t b = 0; b < count; ++b) {
    if (p.lanes_choose) {
      s.chosen[b] = {s.scale_compute[b], s.zero_point[b], s.minval[b]};
    } else {
      s.chosen[b] = p.chooser.choose(s.lo[b], s.hi[b], 0.0f, b0 + b);
      s.scale[b] = reference::round_to(p.scale_dtype, s.chosen[b].scale);
      s.reciprocal[b] = reference::round_to(p.scale_dtype, 1.0f / s.scale[b]);
    }
    s.zero_point[b] = p.ops.grid == AffineGrid::zero_point
                          ? reference::round_to(p.zero_dtype, s.chosen[b].zero_point)
                          : 0.0f;
    finite = finite && std::isfinite(s.chosen[b].scale);
  }
  return finite;
}

// The packed codes of `count` blocks at item_x, written at item_packed.
void quantize_blocks(const FusedPlan& p, ItemScratch& s, const void* item_x,
                     std::uint8_t* item_packed, std::int64_t count) {
  const BlockParams params{s.reciprocal.data(), s.scale.data(), s.zero_point.data()};
  const BlockMap map{p.inner, count};
  const std::int64_t n = count * p.inner;
  if (p.bits == 4 && quantize_packed4_range(p.ops, map, params, item_x, item_packed, 0, n)) return;
  quantize_range(p.ops, map, params, item_x, s.codes.data(), 0, n);
  pack_codes_into(s.codes.data(), n, p.bits, item_packed);
}

// One work item end to end; false when the reference must take the call.
bool run_item(const FusedPlan& p, ItemScratch& s, std::int64_t item, TensorView x, QParams& qparams,
              Tensor& packed) {
  const std::int64_t b0 = item * p.per_item;
  const std::int64_t count = std::min(p.blocks, b0 + p.per_item) - b0;
  const auto* item_x = static_cast<const unsigned char*>(x.data()) +
                       b0 * p.inner * static_cast<std::int64_t>(element_size(p.compute));
  // A NaN or Inf: the reference reports the bad value.
  if (!min_max_blocks(p.ops.input, item_x, 0, p.inner, count, s.lo.data(), s.hi.data())) {
    return false;
  }
  if (!choose_blocks(p, s, b0, count)) return false;
  quantize_blocks(p, s, item_x, packed.data<std::uint8_t>() + b0 * p.inner * p.bits / 8, count);
  // A zero point its dtype cannot hold throws: the reference reports it
  // (nothing may leave an OpenMP region by exception).
  try {
    reference::store_blocks(qparams, b0, s.chosen.data(), count);
  } catch (const Error&) {
    return false;
  }
  return true;
}

}  // namespace

std::optional<QuantizedTensor> choose_qparams_and_quantize(TensorView x, const QuantSpec& spec) {
  if (!kind_of(x.dtype()) || !x.is_contiguous() || x.numel() == 0 || !affine_path_supports(spec) ||
      spec.scale_search != ScaleSearch::none) {
    return std::nullopt;  // a searched scale needs the whole block before any code
  }
  spec.validate();
  const Shape block = spec.granularity.block_size(x.shape());
  const auto plan = plan_for(x, spec, block);
  if (!plan) return std::nullopt;
  // Threads write their blocks' qparams straight into the result, so nothing
  // grid-sized is built first and copied serially.
  QParams qparams =
      reference::allocate_qparams(spec, plan->compute, block_grid_shape(x.shape(), block));
  Tensor packed = Tensor::uninitialized(ScalarType::uint8, {packed_size(x.numel(), plan->bits)});
  std::vector<char> item_ok(static_cast<std::size_t>(plan->items), 1);
#pragma omp parallel if (plan->items > 4)
  {
    ItemScratch scratch(plan->per_item, plan->inner);
#pragma omp for schedule(static)
    for (std::int64_t item = 0; item < plan->items; ++item) {
      if (!run_item(*plan, scratch, item, x, qparams, packed)) item_ok[item] = 0;
    }
  }
  if (!std::all_of(item_ok.begin(), item_ok.end(), [](char ok) { return ok != 0; })) {
    return std::nullopt;
  }
  return QuantizedTensor::from_packed(x.shape(), std::move(packed), std::move(qparams));
}

}  // namespace quantkit::cpu
