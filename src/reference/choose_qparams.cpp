// choose_qparams: per-block statistics, then the formulas of qparams.hpp,
// each step rounded to the input dtype T as PyTorch eager does.
#include <algorithm>
#include <cmath>
#include <limits>

#include "quantkit/error.hpp"
#include "quantkit/qparams.hpp"
#include "reference/block_layout.hpp"
#include "reference/eager_math.hpp"
#include "reference/element_ops.hpp"
#include "reference/reference_ops.hpp"
#include "reference/torch_sum.hpp"

namespace quantkit {
namespace {

using reference::round_to;

struct BlockStats {
  float min = std::numeric_limits<float>::infinity();
  float max = -std::numeric_limits<float>::infinity();
  std::int64_t count = 0;
  std::vector<float> magnitudes;  // |x| in row-major order; only the stretched mapping needs them
};

struct BlockQParams {
  float scale = 0;  // value in the compute dtype, before the cast to the scale dtype
  float zero_point = 0;
  float minval = 0;
};

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

class BlockChooser {
 public:
  BlockChooser(const QuantSpec& spec, ScalarType compute) : spec_(spec), t_(compute) {
    const auto info = finfo(compute);
    const double default_eps = spec.mapping == Mapping::stretched ? info.eps : info.smallest_normal;
    eps_ = round_to(t_, static_cast<float>(spec.eps.value_or(default_eps)));
    qmin_ = static_cast<float>(spec.dtype.quant_min());
    qmax_ = static_cast<float>(spec.dtype.quant_max());
  }

  BlockQParams choose(float min_val, float max_val, float mean_abs, std::int64_t block) const {
    if (spec_.dtype.is_floating()) return choose_floating(std::max(-min_val, max_val), block);
    if (spec_.mapping == Mapping::stretched) return choose_stretched(min_val, max_val, mean_abs);
    if (spec_.resolved_zero_point_domain() == ZeroPointDomain::float_) {
      return choose_tinygemm(min_val, max_val);
    }
    const float min_neg = std::min(min_val, 0.0f);
    const float max_pos = std::max(max_val, 0.0f);
    BlockQParams out;
    if (spec_.mapping == Mapping::asymmetric) {
      const float range = r(max_pos - min_neg);
      out.scale = clamp_eps(r(range / (qmax_ - qmin_)));
      const float shift = reference::round_half_even(r(min_neg / out.scale));
      out.zero_point = std::clamp(r(qmin_ - shift), qmin_, qmax_);
      out.minval = min_neg;
      return out;
    }
    const float amax = std::max(-min_neg, max_pos);
    if (spec_.mapping == Mapping::symmetric) {
      out.scale = r(amax / ((qmax_ - qmin_) / 2));
    } else {  // symmetric_no_clipping_err
      const float smin = r(min_neg / qmin_);
      const float smax = r(max_pos / qmax_);
      out.scale = smin > smax ? smin : smax;
    }
    out.scale = clamp_eps(out.scale);
    out.zero_point = std::trunc((qmax_ + qmin_ + 1) / 2);
    out.minval = -amax;
    return out;
  }

 private:
  float r(float value) const { return round_to(t_, value); }
  float clamp_eps(float scale) const { return std::max(scale, eps_); }

  BlockQParams choose_tinygemm(float min_val, float max_val) const {
    BlockQParams out;
    out.scale = clamp_eps(r(r(max_val - min_val) / (qmax_ - qmin_)));
    const float mid = (qmax_ + qmin_ + 1) / 2;
    out.zero_point = r(min_val + r(out.scale * mid));
    out.minval = min_val;
    return out;
  }

  BlockQParams choose_stretched(float min_val, float max_val, float mean_abs) const {
    const float amax = std::max(-min_val, max_val);
    const auto bits = static_cast<float>(spec_.dtype.bits());
    const float level_max = std::ldexp(1.0f, spec_.dtype.bits() - 1) - 0.5f;
    const float bounded = std::min(r(bits * mean_abs), amax);
    BlockQParams out;
    out.scale = r(clamp_eps(bounded) / level_max);
    out.zero_point = -0.5f;
    return out;
  }

  BlockQParams choose_floating(float amax, std::int64_t block) const {
    const auto& format = spec_.dtype.minifloat();
    const auto element_max = static_cast<float>(format.max_value);
    BlockQParams out;
    if (spec_.scale_dtype == ScaleDType::e8m0) {
      out.scale = e8m0_to_float(e8m0_from_amax(amax, format, spec_.e8m0_rounding));
    } else if (spec_.scale_dtype == ScaleDType::fp8_e4m3) {
      const auto& e4m3 = minifloat_format(MinifloatKind::e4m3fn);
      const float block_scale = std::clamp(amax / element_max, std::ldexp(1.0f, -6), 448.0f);
      out.scale = decode_minifloat(encode_minifloat(block_scale, e4m3), e4m3);
    } else {
      const float bounded = spec_.eps ? std::max(amax, eps_) : amax;
      QK_CHECK(bounded > 0, "block ", block, " is all zeros, so its ", format.name,
               " scale would be 0 and every value NaN; set eps (a lower bound on the block "
               "amax, e.g. 1e-12)");
      out.scale = r(bounded / element_max);
    }
    return out;
  }

  const QuantSpec& spec_;
  ScalarType t_;
  float eps_;
  float qmin_;
  float qmax_;
};

void check_finite(const std::vector<float>& values, const Shape& shape, const char* what) {
  for (std::size_t i = 0; i < values.size(); ++i) {
    QK_CHECK(std::isfinite(values[i]), what, " holds ", values[i], " at flat index ",
             reference::describe_index(shape, static_cast<std::int64_t>(i)),
             "; choose_qparams needs finite data (a NaN or Inf scale would poison the model)");
  }
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

QParams assemble(const QuantSpec& spec, ScalarType compute, const Shape& grid,
                 const std::vector<BlockQParams>& blocks) {
  check_scales_finite(blocks, compute);
  QParams out;
  out.spec = spec;
  out.compute_dtype = compute;
  const auto domain = spec.resolved_zero_point_domain();
  const bool has_zero_point = !spec.dtype.is_floating() && (domain != ZeroPointDomain::none ||
                                                            spec.mapping == Mapping::stretched);
  const bool has_minval = !spec.dtype.is_floating() && spec.mapping != Mapping::stretched;
  const auto column = [&](float BlockQParams::*field) {
    std::vector<float> values(blocks.size());
    for (std::size_t b = 0; b < blocks.size(); ++b) values[b] = blocks[b].*field;
    return values;
  };
  // Values are already exact in the target dtypes (scale in T, integral zero points).
  out.scale =
      reference::store_floats(column(&BlockQParams::scale), grid, scale_storage(spec, compute));
  if (has_zero_point) {
    out.zero_point = reference::store_floats(column(&BlockQParams::zero_point), grid,
                                             zero_point_storage(spec, compute));
  }
  if (has_minval)
    out.minval = reference::store_floats(column(&BlockQParams::minval), grid, ScalarType::float32);
  return out;
}

}  // namespace

QParams reference::choose_qparams(TensorView x, const QuantSpec& spec) {
  spec.validate();
  reference::check_float_input(x.dtype(), "x");
  const reference::BlockLayout layout(x.shape(), spec.granularity.block_size(x.shape()));
  const std::vector<float> values = reference::load_floats(x);
  check_finite(values, x.shape(), "x");
  const bool needs_mean = spec.mapping == Mapping::stretched;
  std::vector<BlockStats> stats(static_cast<std::size_t>(layout.num_blocks()));
  layout.for_each([&](std::int64_t i, std::int64_t b) {
    auto& s = stats[b];
    s.min = std::min(s.min, values[i]);
    s.max = std::max(s.max, values[i]);
    ++s.count;
    if (needs_mean) s.magnitudes.push_back(std::fabs(values[i]));
  });
  const BlockChooser chooser(spec, x.dtype());
  std::vector<BlockQParams> blocks(stats.size());
  for (std::size_t b = 0; b < stats.size(); ++b) {
    QK_CHECK(stats[b].count > 0, "x of shape ", to_string(x.shape()),
             " is empty: there is no data to choose qparams from");
    // torch.mean(|x|): PyTorch's CPU summation order, reproduced bit for bit.
    const float mean_abs =
        needs_mean ? reference::torch_cpu_mean(stats[b].magnitudes, x.dtype()) : 0.0f;
    blocks[b] = chooser.choose(stats[b].min, stats[b].max, mean_abs, static_cast<std::int64_t>(b));
  }
  return assemble(spec, x.dtype(), layout.grid(), blocks);
}

QParams choose_qparams(TensorView min_val, TensorView max_val, const QuantSpec& spec) {
  spec.validate();
  QK_CHECK(spec.mapping != Mapping::stretched,
           "mapping stretched needs mean|x|, which min/max do not carry; pass the tensor");
  reference::check_float_input(min_val.dtype(), "min_val");
  QK_CHECK(max_val.dtype() == min_val.dtype() && max_val.shape() == min_val.shape(), "max_val (",
           name(max_val.dtype()), " ", to_string(max_val.shape()), ") must match min_val (",
           name(min_val.dtype()), " ", to_string(min_val.shape()), ")");
  const auto mins = reference::load_floats(min_val);
  const auto maxs = reference::load_floats(max_val);
  check_finite(mins, min_val.shape(), "min_val");
  check_finite(maxs, max_val.shape(), "max_val");
  const BlockChooser chooser(spec, min_val.dtype());
  std::vector<BlockQParams> blocks(mins.size());
  for (std::size_t b = 0; b < mins.size(); ++b) {
    QK_CHECK(mins[b] <= maxs[b], "min_val ", mins[b], " exceeds max_val ", maxs[b],
             " at flat index ",
             reference::describe_index(min_val.shape(), static_cast<std::int64_t>(b)));
    blocks[b] = chooser.choose(mins[b], maxs[b], 0.0f, static_cast<std::int64_t>(b));
  }
  return assemble(spec, min_val.dtype(), min_val.shape(), blocks);
}

}  // namespace quantkit
