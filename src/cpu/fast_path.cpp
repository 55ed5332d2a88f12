#include "cpu/fast_path.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <optional>
#include <vector>

#include "core/internal/float_io.hpp"
#include "cpu/affine_kernels.hpp"
#include "cpu/choose_kernels.hpp"
#include "cpu/dispatch_helpers.hpp"
#include "cpu/minifloat_path.hpp"
#include "cpu/range_kernels.hpp"
#include "cpu/search_kernels.hpp"
#include "quantkit/half.hpp"
#include "quantkit/packing.hpp"
#include "reference/block_chooser.hpp"
#include "reference/eager_math.hpp"
#include "reference/element_ops.hpp"
#include "reference/torch_sum.hpp"

namespace quantkit::cpu {
namespace {

// The per-call constants and per-block values of an affine kernel.
struct Prepared {
  AffineOps ops;
  BlockMap map;
  reference::ElementPlan plan;
  std::vector<float> clip;  // stretched: the per-block clip bound, in place of the reciprocal
  BlockParams params() const {
    return {ops.grid == AffineGrid::stretched ? clip.data() : plan.reciprocal.data(),
            plan.scale.data(), plan.zero_point.data()};
  }
};

std::optional<Prepared> prepare(const QParams& qparams, ScalarType input, ScalarType output,
                                const Shape& shape) {
  if (!affine_path_supports(qparams.spec, true) || !kind_of(input) || !kind_of(output)) {
    return std::nullopt;
  }
  if (!kind_of(qparams.scale.dtype())) return std::nullopt;
  const auto map = block_map(shape, qparams.spec.granularity.block_size(shape));
  if (!map) return std::nullopt;
  Prepared p{{}, *map, reference::make_plan(qparams, input, shape), {}};  // validates the grid
  const ScalarType product = reference::op_dtype(input, p.plan.scale_dtype);
  const bool stretched = p.plan.scheme == reference::Scheme::stretched;
  // The kernel rounds quotient + zp to the quotient's kind: other zero-point
  // dtypes (promoting it further) stay on the reference.
  if (stretched && reference::op_dtype(product, p.plan.zero_dtype) != product) return std::nullopt;
  p.ops = affine_ops(p.plan, input, output);
  if (stretched) {
    for (std::size_t b = 0; b < p.plan.scale.size(); ++b) {
      p.clip.push_back(reference::round_to(
          p.plan.scale_dtype, p.plan.scale[b] * static_cast<float>(p.plan.stretched_max)));
    }
  }
  // Outputs beyond the last-level cache bypass it (non-temporal stores).
  p.ops.stream = numel(shape) * 4 > (std::int64_t{16} << 20);
  return p;
}

}  // namespace

bool fake_quantize_into(TensorView x, const QParams& qparams, void* out) {
  if (qparams.spec.dtype.is_floating()) return minifloat_fake_quantize_into(x, qparams, out);
  if (!x.is_contiguous()) return false;
  const auto p = prepare(qparams, x.dtype(), x.dtype(), x.shape());
  if (!p) return false;
  map_chunks_into(x.numel(), out, [&](std::int64_t begin, std::int64_t end, void* y) {
    fake_quantize_range(p->ops, p->map, p->params(), x.data(), y, begin, end);
  });
  return true;
}

std::optional<Tensor> fake_quantize(TensorView x, const QParams& qparams) {
  Tensor y = Tensor::uninitialized(x.dtype(), x.shape());
  if (!fake_quantize_into(x, qparams, y.raw_data())) return std::nullopt;
  return y;
}

std::optional<Tensor> fake_quantize_backward(TensorView x, TensorView grad_output,
                                             const QParams& qparams) {
  if (qparams.spec.dtype.is_floating()) {
    return minifloat_fake_quantize_backward(x, grad_output, qparams);
  }
  if (!backward_applies(x, grad_output)) return std::nullopt;
  const auto p = prepare(qparams, x.dtype(), x.dtype(), x.shape());
  if (!p) return std::nullopt;
  const FloatKind grad_kind = *kind_of(grad_output.dtype());
  return map_chunks(grad_output.dtype(), x.shape(),
                    [&](std::int64_t begin, std::int64_t end, void* out) {
                      ste_backward_range(p->ops, p->map, p->params(), x.data(), grad_output.data(),
                                         grad_kind, out, begin, end);
                    });
}

std::optional<QuantizedTensor> quantize(TensorView x, const QParams& qparams) {
  if (qparams.spec.dtype.is_floating()) return minifloat_quantize(x, qparams);
  if (!x.is_contiguous()) return std::nullopt;
  const auto p = prepare(qparams, x.dtype(), x.dtype(), x.shape());
  if (!p) return std::nullopt;
  Tensor packed =
      pack_chunks(x.numel(), qparams.spec.dtype.bits(),
                  [&](std::int64_t begin, std::int64_t end, std::int8_t* codes) {
                    quantize_range(p->ops, p->map, p->params(), x.data(), codes, begin, end);
                  });
  return QuantizedTensor::from_packed(x.shape(), std::move(packed), qparams);
}

bool dequantize_into(const QuantizedTensor& q, ScalarType output_dtype, void* out) {
  const auto& qparams = q.qparams();
  if (qparams.spec.dtype.is_floating()) return minifloat_dequantize_into(q, output_dtype, out);
  if (!kind_of(output_dtype)) return false;
  const auto p = prepare(qparams, qparams.compute_dtype, output_dtype, q.shape());
  if (!p) return false;
  unpack_chunks_into(q, out, qparams.spec.dtype.is_signed(),
                     [&](std::int64_t begin, std::int64_t end, const std::int8_t* codes, void* y) {
                       dequantize_range(p->ops, p->map, p->params(), codes, y, begin, end);
                     });
  return true;
}

std::optional<Tensor> dequantize(const QuantizedTensor& q, ScalarType output_dtype) {
  Tensor y = Tensor::uninitialized(output_dtype, q.shape());
  if (!dequantize_into(q, output_dtype, y.raw_data())) return std::nullopt;
  return y;
}

WeightDecoders weight_decoders(const QParams& qparams, const Shape& shape, ScalarType output) {
  if (qparams.spec.dtype.is_floating()) return minifloat_weight_decoders(qparams, shape, output);
  auto p = prepare(qparams, qparams.compute_dtype, output, shape);
  if (!p || !rows_start_blocks(p->map, shape)) return {};
  p->ops.stream = false;  // tiles are read back at once
  // The no-zero-point kernels compute q * s: the same as (q - 0) * s.
  if (p->ops.grid == AffineGrid::no_zero_point) {
    std::fill(p->plan.zero_point.begin(), p->plan.zero_point.end(), 0.0f);
  }
  auto shared = std::make_shared<const Prepared>(std::move(*p));
  WeightDecoders out;
  out.range = [shared](const std::int8_t* codes, std::int64_t begin, std::int64_t end, void* y) {
    const std::int64_t b0 = first_block_of(shared->map, begin);
    const BlockParams all = shared->params();
    const BlockParams from{all.reciprocal + b0, all.scale + b0, all.zero_point + b0};
    dequantize_range(shared->ops, map_from(shared->map, b0), from, codes, y, 0, end - begin);
  };
  const std::int64_t k = shape[1];
  const auto arrays = [&](std::int64_t run_multiple) -> std::optional<PackedIntPlan> {
    const auto blocks = row_blocks(shared->map, k, run_multiple);
    if (!blocks) return std::nullopt;
    return PackedIntPlan{shared, shared->plan.scale.data(), shared->plan.zero_point.data(),
                         blocks->group, blocks->blocks_per_row};
  };
  const int bits = qparams.spec.dtype.bits();
  if ((bits == 4 || bits == 8) && k * bits % 8 == 0) out.packed = arrays(16);
  if (qparams.spec.mapping != Mapping::stretched) out.integer = arrays(0);  // zp -0.5 is not
  return out;
}

std::optional<internal::BlockMinMax> block_min_max(TensorView x, const Shape& block) {
  const auto input = kind_of(x.dtype());
  if (!input || !x.is_contiguous() || x.numel() == 0) return std::nullopt;
  const auto map = block_map(x.shape(), block);
  if (!map) return std::nullopt;
  const std::int64_t blocks = numel(block_grid_shape(x.shape(), block));
  internal::BlockMinMax out{std::vector<float>(blocks, HUGE_VALF),
                            std::vector<float>(blocks, -HUGE_VALF)};
  auto& mins = out.min;
  auto& maxs = out.max;
  bool finite = true;
  const std::int64_t n = x.numel();
  if (map->period == 1) {  // one block: per-chunk partial results, combined in order
    const std::int64_t chunks = (n + kChunk - 1) / kChunk;
    std::vector<float> lo(chunks, HUGE_VALF), hi(chunks, -HUGE_VALF);
    std::vector<char> ok(chunks, 1);
    const auto* base = static_cast<const unsigned char*>(x.data());
    const std::size_t element = element_size(x.dtype());
#pragma omp parallel for schedule(static) if (chunks > 4)
    for (std::int64_t c = 0; c < chunks; ++c) {  // each chunk as one block
      const std::int64_t length = std::min(n, (c + 1) * kChunk) - c * kChunk;
      ok[c] = min_max_blocks(*input, base + c * kChunk * element, 0, length, 1, &lo[c], &hi[c]);
    }
    for (std::int64_t c = 0; c < chunks; ++c) {
      mins[0] = std::min(mins[0], lo[c]);
      maxs[0] = std::max(maxs[0], hi[c]);
      finite = finite && ok[c];
    }
  } else if (map->inner * map->period == n) {
    // One run per block; work items of about a chunk of whole blocks.
    const std::int64_t per_item = std::max<std::int64_t>(1, kChunk / map->inner);
    const std::int64_t items = (blocks + per_item - 1) / per_item;
    std::vector<char> ok(items, 1);
#pragma omp parallel for schedule(static) if (x.numel() > 4 * kChunk)
    for (std::int64_t item = 0; item < items; ++item) {
      const std::int64_t b0 = item * per_item, count = std::min(blocks, b0 + per_item) - b0;
      ok[item] = min_max_blocks(*input, x.data(), b0, map->inner, count, &mins[b0], &maxs[b0]);
    }
    finite = std::all_of(ok.begin(), ok.end(), [](char v) { return v != 0; });
  } else if (map->inner == 1) {  // per-axis on the last dim: column reductions
    const std::int64_t rows = n / map->period;
    finite = column_min_max(*input, x.data(), rows, map->period, mins.data(), maxs.data());
  } else {
    return std::nullopt;
  }
  if (!finite) return std::nullopt;  // the reference reports the first bad index
  return out;
}

namespace {

// out[i] = the value of element i of `data` (stored as `kind`), for i < n.
void widen(FloatKind kind, const void* data, std::int64_t n, float* out) {
  const auto* bits = static_cast<const std::uint16_t*>(data);
  switch (kind) {
    case FloatKind::f32:
      std::memcpy(out, data, static_cast<std::size_t>(n) * sizeof(float));
      return;
    case FloatKind::bf16:
      for (std::int64_t i = 0; i < n; ++i) out[i] = float_from_bfloat16_bits(bits[i]);
      return;
    case FloatKind::f16:
      for (std::int64_t i = 0; i < n; ++i) out[i] = float_from_float16_bits(bits[i]);
      return;
  }
}

// The MSE scale search of reference::BlockChooser::search, a run of blocks at a
// time: the qparams of candidate k for every block, then every block's error
// under them in one fused SIMD pass (block_squared_errors, bit-identical to the
// reference's quantize-dequantize and ordered sum): the same choice, block by
// block.
class SimdSearch {
 public:
  SimdSearch(const QuantSpec& spec, ScalarType input, std::int64_t inner, std::int64_t blocks,
             float eps)
      : plan_(reference::single_int_block_plan(spec, input, reference::scale_storage(spec, input),
                                               reference::zero_point_storage(spec, input), blocks)),
        ops_(affine_ops(plan_, input, input)),
        lanes_(lanes_choose(spec.mapping) && kind_of(plan_.scale_dtype)),
        choose_ops_{*kind_of(input),
                    kind_or_f32(plan_.scale_dtype),
                    spec.mapping,
                    eps,
                    static_cast<float>(plan_.quant_min),
                    static_cast<float>(plan_.quant_max)},
        inner_(inner),
        errors_(static_cast<std::size_t>(blocks)),
        best_error_(static_cast<std::size_t>(blocks)),
        scale_(static_cast<std::size_t>(blocks)),
        zero_point_(static_cast<std::size_t>(blocks)),
        minval_(static_cast<std::size_t>(blocks)) {}

  /// Blocks first .. first + count (float values `values`, ranges lo / hi,
  /// importance `weights` per element or null) into chosen[0 .. count).
  void run(const reference::BlockChooser& chooser, const float* values, const float* weights,
           const float* lo, const float* hi, std::int64_t first, std::int64_t count,
           reference::BlockQParams* chosen) {
    for (int k = 0; k < reference::kClipRatioCount; ++k) {
      fill_candidates(chooser, lo, hi, k, first, count);
      const BlockParams params{plan_.reciprocal.data(), plan_.scale.data(),
                               plan_.zero_point.data()};
      block_squared_errors(ops_, values, weights, inner_, count, params, errors_.data());
      for (std::int64_t j = 0; j < count; ++j) {
        if (k == 0 || errors_[j] < best_error_[j]) {  // the first (plain rounding) on ties
          chosen[j] = reference::BlockQParams{scale_[j], zero_point_[j], minval_[j]};
          best_error_[j] = errors_[j];
        }
      }
    }
  }

 private:
  // Candidate k of every block: BlockChooser::candidate then set_int_block, on
  // SIMD lanes where the mapping has them (the chooser's formulas scaled by the
  // clip ratio), on the scalar chooser otherwise.
  void fill_candidates(const reference::BlockChooser& chooser, const float* lo, const float* hi,
                       int k, std::int64_t first, std::int64_t count) {
    if (lanes_) {
      AffineChooseOps ops = choose_ops_;
      ops.ratio = reference::clip_ratio(k);
      choose_affine_blocks(ops, lo, hi, count,
                           ChosenBlocks{scale_.data(), zero_point_.data(), minval_.data(),
                                        plan_.scale.data(), plan_.reciprocal.data()});
      const bool uses_zero_point = plan_.scheme == reference::Scheme::int_domain;
      for (std::int64_t j = 0; j < count; ++j) {
        plan_.zero_point[j] = uses_zero_point ? zero_point_[j] : 0.0f;
      }
      return;
    }
    for (std::int64_t j = 0; j < count; ++j) {
      const auto trial = chooser.candidate(lo[j], hi[j], k, first + j);
      scale_[j] = trial.scale;
      zero_point_[j] = trial.zero_point;
      minval_[j] = trial.minval;
      reference::set_int_block(plan_, j, reference::round_to(plan_.scale_dtype, trial.scale),
                               trial.zero_point);
    }
  }

  reference::ElementPlan plan_;
  AffineOps ops_;
  bool lanes_;
  AffineChooseOps choose_ops_;
  std::int64_t inner_;
  std::vector<float> errors_;
  std::vector<float> best_error_;
  std::vector<float> scale_, zero_point_, minval_;  // candidate k, as BlockQParams holds it
};

// Blocks that are runs of the flat index of a contiguous input the kernels
// read: `blocks` runs of `inner` elements each (per-tensor: one run of all).
struct BlockRuns {
  FloatKind input;
  std::int64_t blocks;
  std::int64_t inner;
  std::size_t element;  // bytes per input element
};

std::optional<BlockRuns> block_runs(TensorView x, const Shape& block) {
  const auto input = kind_of(x.dtype());
  const auto map = block_map(x.shape(), block);
  const std::int64_t n = x.numel();
  if (!input || !x.is_contiguous() || n == 0 || !map) return std::nullopt;
  const std::int64_t blocks = map->period;
  const std::int64_t inner = blocks == 1 ? n : map->inner;
  if (inner * blocks != n) return std::nullopt;
  return BlockRuns{*input, blocks, inner, element_size(x.dtype())};
}

// HQQ iterates per block on its own arithmetic: the reference routine, one
// block per thread at a time (the result is the reference's by construction).
std::optional<QParams> choose_hqq(TensorView x, const QuantSpec& spec, const Shape& block,
                                  const std::vector<float>& importance) {
  const auto runs = block_runs(x, block);
  if (!runs) return std::nullopt;
  const FloatKind input = runs->input;
  const std::int64_t blocks = runs->blocks, inner = runs->inner;
  const std::size_t element = runs->element;
  const reference::BlockChooser chooser(spec, x.dtype());
  std::vector<reference::BlockQParams> chosen(static_cast<std::size_t>(blocks));
  std::vector<char> ok(static_cast<std::size_t>(blocks), 1);
  const auto columns = static_cast<std::int64_t>(importance.size());
#pragma omp parallel for schedule(dynamic, 64) if (blocks > 1)
  for (std::int64_t b = 0; b < blocks; ++b) {
    float lo, hi;
    ok[b] = min_max_blocks(input, x.data(), b, inner, 1, &lo, &hi);
    if (!ok[b]) continue;  // NaN / Inf: the reference names the element
    const auto* start = static_cast<const unsigned char*>(x.data()) + b * inner * element;
    const std::vector<float> values = internal::load_floats(TensorView(start, x.dtype(), {inner}));
    std::vector<float> weights(importance.empty() ? 0 : static_cast<std::size_t>(inner));
    for (std::int64_t i = 0; i < static_cast<std::int64_t>(weights.size()); ++i) {
      weights[i] = importance[(b * inner + i) % columns];
    }
    try {
      chosen[b] = chooser.search(values.data(), weights.empty() ? nullptr : weights.data(), inner,
                                 lo, hi, b);
    } catch (const Error&) {  // nothing may leave an OpenMP region by exception
      ok[b] = 0;
    }
  }
  if (!std::all_of(ok.begin(), ok.end(), [](char v) { return v != 0; })) return std::nullopt;
  return reference::assemble(spec, x.dtype(), block_grid_shape(x.shape(), block), chosen);
}

// The searched qparams of blocks that are runs of the flat index, a work item
// of about a chunk of elements at a time, on threads.
std::optional<QParams> choose_searched(TensorView x, const QuantSpec& spec, const Shape& block,
                                       const std::vector<float>& importance) {
  if (spec.scale_search == ScaleSearch::hqq) return choose_hqq(x, spec, block, importance);
  const auto runs = block_runs(x, block);
  if (!runs) return std::nullopt;
  const FloatKind input = runs->input;
  const std::int64_t blocks = runs->blocks, inner = runs->inner;
  const std::size_t element = runs->element;
  const std::int64_t per_item = std::max<std::int64_t>(1, kChunk / inner);
  const std::int64_t items = (blocks + per_item - 1) / per_item;
  const reference::BlockChooser chooser(spec, x.dtype());
  std::vector<reference::BlockQParams> chosen(static_cast<std::size_t>(blocks));
  std::vector<char> ok(static_cast<std::size_t>(items), 1);
  const auto columns = static_cast<std::int64_t>(importance.size());
#pragma omp parallel if (items > 1)
  {
    SimdSearch search(spec, x.dtype(), inner, per_item, chooser.eps());
    std::vector<float> values(static_cast<std::size_t>(per_item * inner));
    std::vector<float> weights(importance.empty() ? 0 : values.size());
    std::vector<float> lo(static_cast<std::size_t>(per_item)), hi(lo.size());
#pragma omp for schedule(static)
    for (std::int64_t item = 0; item < items; ++item) {
      const std::int64_t first = item * per_item;
      const std::int64_t count = std::min(blocks, first + per_item) - first;
      const auto* start = static_cast<const unsigned char*>(x.data()) + first * inner * element;
      for (std::int64_t j = 0; j < count && ok[item]; ++j) {
        ok[item] = min_max_blocks(input, x.data(), first + j, inner, 1, &lo[j], &hi[j]);
      }
      if (!ok[item]) continue;  // NaN / Inf: the reference names the element
      widen(input, start, count * inner, values.data());
      for (std::int64_t i = 0; i < static_cast<std::int64_t>(weights.size()) && i < count * inner;
           ++i) {
        weights[i] = importance[(first * inner + i) % columns];
      }
      search.run(chooser, values.data(), weights.empty() ? nullptr : weights.data(), lo.data(),
                 hi.data(), first, count, chosen.data() + first);
    }
  }
  if (!std::all_of(ok.begin(), ok.end(), [](char v) { return v != 0; })) return std::nullopt;
  return reference::assemble(spec, x.dtype(), block_grid_shape(x.shape(), block), chosen);
}

// The stretched mapping also needs mean|x| per block, in PyTorch's summation
// order: blocks that are runs of the flat index are widened one at a time and
// summed by the same reference routine, with the min / max on SIMD.
std::optional<QParams> choose_stretched(TensorView x, const QuantSpec& spec, const Shape& block) {
  const auto runs = block_runs(x, block);
  if (!runs) return std::nullopt;
  const FloatKind input = runs->input;
  const std::int64_t blocks = runs->blocks, inner = runs->inner;
  const std::size_t element = runs->element;
  const reference::BlockChooser chooser(spec, x.dtype());
  std::vector<reference::BlockQParams> chosen(static_cast<std::size_t>(blocks));
  std::vector<char> ok(static_cast<std::size_t>(blocks), 1);
#pragma omp parallel for schedule(static) if (x.numel() > 4 * kChunk)
  for (std::int64_t b = 0; b < blocks; ++b) {
    float lo, hi;
    ok[b] = min_max_blocks(input, x.data(), b, inner, 1, &lo, &hi);
    if (!ok[b]) continue;
    const auto* start = static_cast<const unsigned char*>(x.data()) + b * inner * element;
    std::vector<float> magnitudes = internal::load_floats(TensorView(start, x.dtype(), {inner}));
    for (float& m : magnitudes) m = std::fabs(m);
    chosen[b] = chooser.choose(lo, hi, reference::torch_cpu_mean(magnitudes, x.dtype()), b);
  }
  if (!std::all_of(ok.begin(), ok.end(), [](char v) { return v != 0; })) return std::nullopt;
  return reference::assemble(spec, x.dtype(), block_grid_shape(x.shape(), block), chosen);
}

}  // namespace

std::optional<QParams> choose_qparams(TensorView x, const QuantSpec& spec,
                                      const std::vector<float>& importance) {
  spec.validate();
  return choose_searched(x, spec, spec.granularity.block_size(x.shape()), importance);
}

std::optional<QParams> choose_qparams(TensorView x, const QuantSpec& spec) {
  if (spec.scale_search != ScaleSearch::none) {
    spec.validate();
    return choose_searched(x, spec, spec.granularity.block_size(x.shape()), {});
  }
  if (spec.mapping == Mapping::stretched) {
    spec.validate();
    return choose_stretched(x, spec, spec.granularity.block_size(x.shape()));
  }
  spec.validate();
  const Shape block = spec.granularity.block_size(x.shape());
  const auto range = block_min_max(x, block);
  if (!range) return std::nullopt;
  // The reference formula block by block, on threads (MX / NVFP4 grids have a
  // block per 16 or 32 elements); minima and maxima are input values, exact in
  // the compute dtype, as the reference's choose_qparams(min, max) reads them.
  const auto blocks = static_cast<std::int64_t>(range->min.size());
  const float global_scale =
      reference::global_scale_of_ranges(spec, range->min.data(), range->max.data(), blocks);
  const reference::BlockChooser chooser(spec, x.dtype(), global_scale);
  QParams out = reference::allocate_qparams(spec, x.dtype(), block_grid_shape(x.shape(), block));
  reference::store_global_scale(out, global_scale);
  const std::int64_t per_item = kChunk;
  const std::int64_t items = (blocks + per_item - 1) / per_item;
  std::vector<char> ok(static_cast<std::size_t>(items), 1);
#pragma omp parallel for schedule(static) if (items > 1)
  for (std::int64_t item = 0; item < items; ++item) {
    const std::int64_t b0 = item * per_item, count = std::min(blocks, b0 + per_item) - b0;
    std::vector<reference::BlockQParams> chosen(static_cast<std::size_t>(count));
    // An error (an all-zero block without eps, a zero point its dtype cannot
    // hold) is reported by the reference.
    try {
      for (std::int64_t b = 0; b < count; ++b) {
        chosen[b] = chooser.choose(range->min[b0 + b], range->max[b0 + b], 0.0f, b0 + b);
        if (!std::isfinite(chosen[b].scale)) ok[item] = 0;  // overflow: reported likewise
      }
      if (ok[item]) reference::store_blocks(out, b0, chosen.data(), count);
    } catch (const Error&) {  // nothing may leave an OpenMP region by exception
      ok[item] = 0;
    }
  }
  if (!std::all_of(ok.begin(), ok.end(), [](char v) { return v != 0; })) return std::nullopt;
  return out;
}

}  // namespace quantkit::cpu
