// choose_qparams: per-block statistics, then the formulas of qparams.hpp,
// each step rounded to the input dtype T as PyTorch eager does.
#include <algorithm>
#include <cmath>
#include <limits>

#include "core/internal/block_layout.hpp"
#include "core/internal/float_io.hpp"
#include "quantkit/error.hpp"
#include "quantkit/qparams.hpp"
#include "reference/block_chooser.hpp"
#include "reference/element_ops.hpp"
#include "reference/reference_ops.hpp"
#include "reference/torch_sum.hpp"

namespace quantkit {
namespace {

constexpr const char* kNeedsFinite =
    "choose_qparams needs finite data (a NaN or Inf scale would poison the model)";

struct BlockStats {
  float min = std::numeric_limits<float>::infinity();
  float max = -std::numeric_limits<float>::infinity();
  std::int64_t count = 0;
  std::vector<float> magnitudes;  // |x| in row-major order; only the stretched mapping needs them
  std::vector<float> values;      // x in row-major order; only a scale search needs them
  std::vector<float> weights;     // their columns' importance (a weighted search)
};

}  // namespace

QParams reference::choose_qparams(TensorView x, const QuantSpec& spec) {
  return choose_qparams(x, spec, std::vector<float>());
}

QParams reference::choose_qparams(TensorView x, const QuantSpec& spec,
                                  const std::vector<float>& importance) {
  spec.validate();
  internal::check_float_input(x.dtype(), "x");
  const std::int64_t columns = x.dim() == 0 ? 1 : x.shape().back();
  QK_CHECK(importance.empty() || static_cast<std::int64_t>(importance.size()) == columns,
           "importance has ", importance.size(), " values; x has ", columns, " columns");
  const internal::BlockLayout layout(x.shape(), spec.granularity.block_size(x.shape()));
  const std::vector<float> values = internal::load_floats(x);
  internal::check_finite(values, x.shape(), "x", kNeedsFinite);
  const bool needs_mean = spec.mapping == Mapping::stretched;
  const bool searches = spec.scale_search != ScaleSearch::none;
  std::vector<BlockStats> stats(static_cast<std::size_t>(layout.num_blocks()));
  layout.for_each([&](std::int64_t i, std::int64_t b) {
    auto& s = stats[b];
    s.min = std::min(s.min, values[i]);
    s.max = std::max(s.max, values[i]);
    ++s.count;
    if (needs_mean) s.magnitudes.push_back(std::fabs(values[i]));
    if (searches) s.values.push_back(values[i]);
    if (searches && !importance.empty()) s.weights.push_back(importance[i % columns]);
  });
  QK_CHECK(stats.empty() || stats[0].count > 0, "x of shape ", to_string(x.shape()),
           " is empty: there is no data to choose qparams from");
  std::vector<float> mins(stats.size()), maxs(stats.size());
  for (std::size_t b = 0; b < stats.size(); ++b) {
    mins[b] = stats[b].min;
    maxs[b] = stats[b].max;
  }
  const float global_scale = reference::global_scale_of_ranges(
      spec, mins.data(), maxs.data(), static_cast<std::int64_t>(stats.size()));
  const reference::BlockChooser chooser(spec, x.dtype(), global_scale);
  std::vector<reference::BlockQParams> blocks(stats.size());
  for (std::size_t b = 0; b < stats.size(); ++b) {
    // torch.mean(|x|): PyTorch's CPU summation order, reproduced bit for bit.
    const float mean_abs =
        needs_mean ? reference::torch_cpu_mean(stats[b].magnitudes, x.dtype()) : 0.0f;
    const auto block = static_cast<std::int64_t>(b);
    const float* weights = stats[b].weights.empty() ? nullptr : stats[b].weights.data();
    blocks[b] = searches ? chooser.search(stats[b].values.data(), weights, stats[b].count,
                                          stats[b].min, stats[b].max, block)
                         : chooser.choose(stats[b].min, stats[b].max, mean_abs, block);
  }
  QParams out = reference::assemble(spec, x.dtype(), layout.grid(), blocks);
  reference::store_global_scale(out, global_scale);
  return out;
}

QParams reference::choose_qparams(TensorView min_val, TensorView max_val, const QuantSpec& spec,
                                  std::optional<float> global_scale_override) {
  spec.validate();
  QK_CHECK(spec.scale_search == ScaleSearch::none, "scale_search ", name(spec.scale_search),
           " needs the data, which min/max do not carry; pass the tensor");
  QK_CHECK(spec.mapping != Mapping::stretched,
           "mapping stretched needs mean|x|, which min/max do not carry; pass the tensor");
  internal::check_float_input(min_val.dtype(), "min_val");
  QK_CHECK(max_val.dtype() == min_val.dtype() && max_val.shape() == min_val.shape(), "max_val (",
           name(max_val.dtype()), " ", to_string(max_val.shape()), ") must match min_val (",
           name(min_val.dtype()), " ", to_string(min_val.shape()), ")");
  const auto mins = internal::load_floats(min_val);
  const auto maxs = internal::load_floats(max_val);
  internal::check_finite(mins, min_val.shape(), "min_val", kNeedsFinite);
  internal::check_finite(maxs, max_val.shape(), "max_val", kNeedsFinite);
  for (std::size_t b = 0; b < mins.size(); ++b) {
    QK_CHECK(mins[b] <= maxs[b], "min_val ", mins[b], " exceeds max_val ", maxs[b],
             " at flat index ",
             internal::describe_index(min_val.shape(), static_cast<std::int64_t>(b)));
  }
  const float global_scale = global_scale_override.value_or(reference::global_scale_of_ranges(
      spec, mins.data(), maxs.data(), static_cast<std::int64_t>(mins.size())));
  const reference::BlockChooser chooser(spec, min_val.dtype(), global_scale);
  std::vector<reference::BlockQParams> blocks(mins.size());
  for (std::size_t b = 0; b < mins.size(); ++b) {
    blocks[b] = chooser.choose(mins[b], maxs[b], 0.0f, static_cast<std::int64_t>(b));
  }
  QParams out = reference::assemble(spec, min_val.dtype(), min_val.shape(), blocks);
  reference::store_global_scale(out, global_scale);
  return out;
}

}  // namespace quantkit
