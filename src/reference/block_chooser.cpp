// Per-block qparams formulas and their assembly into QParams, shared by the
// reference choose_qparams and the fused SIMD choose-and-quantize path.
#include "reference/block_chooser.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/internal/float_io.hpp"
#include "quantkit/error.hpp"
#include "reference/eager_math.hpp"
#include "reference/element_ops.hpp"

namespace quantkit::reference {

ScalarType scale_storage(const QuantSpec& spec, ScalarType compute) {
  if (spec.dtype.is_floating()) {
    return ScalarType::float32;  // e8m0 / fp8_e4m3 values are exact in float32
  }
  if (!spec.scale_dtype) return compute;
  switch (*spec.scale_dtype) {
    case ScaleDType::bfloat16:
      return ScalarType::bfloat16;
    case ScaleDType::float16:
      return ScalarType::float16;
    default:
      return ScalarType::float32;
  }
}

ScalarType zero_point_storage(const QuantSpec& spec, ScalarType compute) {
  if (spec.zero_point_dtype) return *spec.zero_point_dtype;
  const bool float_valued = spec.mapping == Mapping::stretched ||
                            spec.resolved_zero_point_domain() == ZeroPointDomain::float_;
  return float_valued ? compute : ScalarType::int32;
}

// A range wider than the compute dtype can hold gives an infinite scale, and
// (q - zp) * inf is NaN: refuse instead of returning a poisoned grid.
void check_scales_finite(const std::vector<BlockQParams>& blocks, ScalarType compute) {
  for (std::size_t b = 0; b < blocks.size(); ++b) {
    QK_CHECK(std::isfinite(blocks[b].scale), "the scale of block ", b, " overflows ", name(compute),
             " (its range exceeds the largest ", name(compute),
             "); compute qparams from a float32 copy of the data");
  }
}

QParams allocate_qparams(const QuantSpec& spec, ScalarType compute, const Shape& grid) {
  QParams out;
  out.spec = spec;
  out.compute_dtype = compute;
  const auto domain = spec.resolved_zero_point_domain();
  const bool has_zero_point = !spec.dtype.is_floating() && (domain != ZeroPointDomain::none ||
                                                            spec.mapping == Mapping::stretched);
  const bool has_minval = !spec.dtype.is_floating() && spec.mapping != Mapping::stretched;
  out.scale = Tensor::uninitialized(scale_storage(spec, compute), grid);
  if (has_zero_point)
    out.zero_point = Tensor::uninitialized(zero_point_storage(spec, compute), grid);
  if (has_minval) out.minval = Tensor::uninitialized(ScalarType::float32, grid);
  return out;
}

// Values are already exact in the target dtypes (scale in T, integral zero points).
void store_blocks(QParams& out, std::int64_t first, const BlockQParams* blocks,
                  std::int64_t count) {
  internal::store_floats_at(out.scale, first, count,
                            [&](std::int64_t b) { return blocks[b].scale; });
  if (out.zero_point.numel() > 0) {
    internal::store_floats_at(out.zero_point, first, count,
                              [&](std::int64_t b) { return blocks[b].zero_point; });
  }
  if (out.minval.numel() > 0)
    internal::store_floats_at(out.minval, first, count,
                              [&](std::int64_t b) { return blocks[b].minval; });
}

float ordered_squared_error(const float* x, const float* y, const float* w, std::int64_t n) {
  // Element i goes into partial[i mod 16]; whole rows of 16 first (a shape the
  // compiler vectorizes without reordering any sum), then the tail.
  float partial[16] = {};
  std::int64_t i = 0;
  if (w == nullptr) {
    for (; i + 16 <= n; i += 16) {
      for (int lane = 0; lane < 16; ++lane) {
        const float d = x[i + lane] - y[i + lane];
        partial[lane] += d * d;
      }
    }
  } else {
    for (; i + 16 <= n; i += 16) {
      for (int lane = 0; lane < 16; ++lane) {
        const float d = x[i + lane] - y[i + lane];
        partial[lane] += (d * d) * w[i + lane];
      }
    }
  }
  for (; i < n; ++i) {
    const float d = x[i] - y[i];
    partial[i % 16] += w != nullptr ? (d * d) * w[i] : d * d;
  }
  for (int width = 8; width >= 1; width /= 2) {
    for (int lane = 0; lane < width; ++lane) partial[lane] += partial[lane + width];
  }
  return partial[0];
}

float block_squared_error(const ElementPlan& plan, const float* x, const float* w, std::int64_t n) {
  std::vector<float> y(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) {
    y[i] = dequantize_element(plan, quantize_element(plan, x[i], 0), 0, plan.input);
  }
  return ordered_squared_error(x, y.data(), w, n);
}

BlockQParams BlockChooser::search(const float* x, const float* w, std::int64_t n, float min_val,
                                  float max_val, std::int64_t block) const {
  return spec_.scale_search == ScaleSearch::hqq ? search_hqq(x, w, n, min_val, max_val, block)
                                                : search_mse(x, w, n, min_val, max_val, block);
}

BlockQParams BlockChooser::search_mse(const float* x, const float* w, std::int64_t n, float min_val,
                                      float max_val, std::int64_t block) const {
  ElementPlan plan =
      single_int_block_plan(spec_, t_, scale_storage(spec_, t_), zero_point_storage(spec_, t_));
  BlockQParams best;
  float best_error = std::numeric_limits<float>::infinity();
  for (int k = 0; k < kClipRatioCount; ++k) {
    const BlockQParams trial = candidate(min_val, max_val, k, block);
    set_int_block(plan, 0, round_to(plan.scale_dtype, trial.scale), trial.zero_point);
    const float error = block_squared_error(plan, x, w, n);
    if (k == 0 || error < best_error) {  // strict: the first (ratio 1, plain rounding) wins ties
      best = trial;
      best_error = error;
    }
  }
  return best;
}

float global_scale_of_ranges(const QuantSpec& spec, const float* mins, const float* maxs,
                             std::int64_t blocks) {
  if (!spec.global_scale) return 1.0f;
  float amax = 0;
  for (std::int64_t b = 0; b < blocks; ++b) amax = std::max({amax, -mins[b], maxs[b]});
  return global_scale_from_amax(amax, spec);
}

void store_global_scale(QParams& out, float global_scale) {
  if (out.spec.global_scale) out.global_scale = Tensor::full({}, global_scale);
}

QParams assemble(const QuantSpec& spec, ScalarType compute, const Shape& grid,
                 const std::vector<BlockQParams>& blocks) {
  check_scales_finite(blocks, compute);
  QParams out = allocate_qparams(spec, compute, grid);
  store_blocks(out, 0, blocks.data(), static_cast<std::int64_t>(blocks.size()));
  return out;
}

}  // namespace quantkit::reference
