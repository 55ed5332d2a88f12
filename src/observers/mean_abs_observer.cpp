#include <algorithm>
#include <cmath>

#include "core/internal/block_layout.hpp"
#include "core/internal/float_io.hpp"
#include "observers/state_fields.hpp"
#include "quantkit/error.hpp"
#include "quantkit/observers.hpp"
#include "reference/block_chooser.hpp"
#include "reference/element_ops.hpp"
#include "reference/torch_sum.hpp"

namespace quantkit {

LatestMinMaxObserver::LatestMinMaxObserver(QuantSpec spec)
    : MinMaxObserver(std::move(spec), "LatestMinMaxObserver") {}

void LatestMinMaxObserver::fold(const BlockRange& batch) {
  min_ = batch.min;
  max_ = batch.max;
}

void LatestMinMaxObserver::merge(const Observer&) {
  throw Error(
      "LatestMinMaxObserver cannot merge: it keeps only the latest batch, and shards have no "
      "common latest batch; use MinMaxObserver for a range over all shards");
}

MeanAbsObserver::MeanAbsObserver(QuantSpec spec) : Observer(std::move(spec)) {
  QK_CHECK(spec_.mapping == Mapping::stretched,
           "MeanAbsObserver serves the stretched mapping; got ", spec_.describe());
}

void MeanAbsObserver::observe(TensorView x) {
  internal::check_float_input(x.dtype(), "x");
  QK_CHECK(x.numel() > 0, "x of shape ", to_string(x.shape()), " is empty: it has no range");
  const internal::BlockLayout layout(x.shape(), spec_.granularity.block_size(x.shape()));
  QK_CHECK(batches_ == 0 || (layout.grid() == grid_ && x.dtype() == compute_),
           "MeanAbsObserver: x (", name(x.dtype()), " ", to_string(x.shape()), ") gives a grid ",
           to_string(layout.grid()), ", but earlier batches were ", name(compute_), " with grid ",
           to_string(grid_));
  const std::vector<float> values = internal::load_floats(x);
  for (std::size_t i = 0; i < values.size(); ++i) {
    QK_CHECK(std::isfinite(values[i]), "x holds ", values[i], " at flat index ",
             internal::describe_index(x.shape(), static_cast<std::int64_t>(i)),
             "; an observed range must be finite");
  }
  const auto blocks = static_cast<std::size_t>(layout.num_blocks());
  std::vector<std::vector<float>> magnitudes(blocks);
  layout.for_each(
      [&](std::int64_t i, std::int64_t b) { magnitudes[b].push_back(std::fabs(values[i])); });
  if (batches_ == 0) {
    grid_ = layout.grid();
    compute_ = x.dtype();
    amax_.assign(blocks, 0.0f);
    sum_abs_.assign(blocks, 0.0);
    first_mean_.assign(blocks, 0.0f);
  }
  for (std::size_t b = 0; b < blocks; ++b) {
    for (float m : magnitudes[b]) {
      amax_[b] = std::max(amax_[b], m);
      sum_abs_[b] += m;
    }
    if (batches_ == 0) first_mean_[b] = reference::torch_cpu_mean(magnitudes[b], compute_);
  }
  count_ += static_cast<double>(magnitudes[0].size());
  ++batches_;
}

QParams MeanAbsObserver::qparams() const {
  QK_CHECK(batches_ > 0, "MeanAbsObserver has observed no data: call observe() before qparams()");
  const reference::BlockChooser chooser(spec_, compute_);
  std::vector<reference::BlockQParams> blocks(amax_.size());
  for (std::size_t b = 0; b < blocks.size(); ++b) {
    const float mean =
        batches_ == 1 ? first_mean_[b]
                      : reference::round_to(compute_, static_cast<float>(sum_abs_[b] / count_));
    blocks[b] = chooser.choose(-amax_[b], amax_[b], mean, static_cast<std::int64_t>(b));
  }
  return reference::assemble(spec_, compute_, grid_, blocks);
}

void MeanAbsObserver::reset() {
  amax_.clear();
  sum_abs_.clear();
  first_mean_.clear();
  count_ = 0;
  batches_ = 0;
}

void MeanAbsObserver::merge(const Observer& other) {
  const auto* same = dynamic_cast<const MeanAbsObserver*>(&other);
  QK_CHECK(same != nullptr, "MeanAbsObserver can merge only a MeanAbsObserver");
  observer_state::check_merge_spec("MeanAbsObserver", spec_, same->spec_);
  if (same->batches_ == 0) return;
  if (batches_ == 0) {
    *this = *same;
    return;
  }
  QK_CHECK(same->grid_ == grid_ && same->compute_ == compute_, "MeanAbsObserver: cannot merge a ",
           name(same->compute_), " grid ", to_string(same->grid_), " into a ", name(compute_),
           " grid ", to_string(grid_));
  for (std::size_t b = 0; b < amax_.size(); ++b) {
    amax_[b] = std::max(amax_[b], same->amax_[b]);
    sum_abs_[b] += same->sum_abs_[b];
  }
  count_ += same->count_;
  batches_ += same->batches_;
}

ObserverState MeanAbsObserver::state() const {
  ObserverState state{"MeanAbsObserver",
                      {{"spec", spec_.to_text()},
                       {"batches", std::to_string(batches_)},
                       {"compute_dtype", std::string(name(compute_))},
                       {"count", detail::concat(static_cast<long long>(count_))}},
                      {}};
  if (batches_ > 0) {
    Tensor amax = Tensor::uninitialized(ScalarType::float32, grid_);
    Tensor first = Tensor::uninitialized(ScalarType::float32, grid_);
    Tensor sums = Tensor::uninitialized(ScalarType::float64, grid_);
    std::copy(amax_.begin(), amax_.end(), amax.data<float>());
    std::copy(first_mean_.begin(), first_mean_.end(), first.data<float>());
    std::copy(sum_abs_.begin(), sum_abs_.end(), sums.data<double>());
    state.tensors = {{"amax", amax}, {"first_mean", first}, {"sum_abs", sums}};
  }
  return state;
}

void MeanAbsObserver::load_state(const ObserverState& state) {
  QK_CHECK(state.kind == "MeanAbsObserver", "cannot load a ", state.kind,
           " state into a MeanAbsObserver");
  observer_state::check_spec(state, spec_);
  reset();
  const std::int64_t count = observer_state::batch_count(state);
  if (count == 0) return;
  const ScalarType compute =
      scalar_type_from_name(observer_state::text_field(state, "compute_dtype"));
  const double elements = observer_state::number_field(state, "count", 0, 1e300);
  const Tensor& amax =
      observer_state::tensor_field(state, "amax", ScalarType::float32, /*non_negative=*/true);
  const Tensor& first =
      observer_state::tensor_field(state, "first_mean", ScalarType::float32, true);
  const Tensor& sums = observer_state::tensor_field(state, "sum_abs", ScalarType::float64, true);
  QK_CHECK(first.numel() == amax.numel() && sums.numel() == amax.numel(),
           "MeanAbsObserver state: fields 'amax', 'first_mean' and 'sum_abs' must hold one "
           "element per block (they hold ",
           amax.numel(), ", ", first.numel(), " and ", sums.numel(), ")");
  batches_ = count;
  compute_ = compute;
  count_ = elements;
  grid_ = amax.shape();
  amax_.assign(amax.data<float>(), amax.data<float>() + amax.numel());
  first_mean_.assign(first.data<float>(), first.data<float>() + first.numel());
  sum_abs_.assign(sums.data<double>(), sums.data<double>() + sums.numel());
}

std::string MeanAbsObserver::describe() const {
  return detail::concat("MeanAbsObserver ", spec_.describe(), ": ", batches_, " batches",
                        batches_ > 0 ? detail::concat(" over grid ", to_string(grid_)) : "");
}

}  // namespace quantkit
