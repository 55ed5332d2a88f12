#include <algorithm>
#include <cmath>

#include "core/internal/block_layout.hpp"
#include "observers/state_fields.hpp"
#include "quantkit/error.hpp"
#include "quantkit/observers.hpp"

namespace quantkit {
namespace {

bool integer_zero_point(const QuantSpec& spec) {
  return !spec.dtype.is_floating() && spec.resolved_zero_point_domain() != ZeroPointDomain::float_;
}

std::string end_text(const std::optional<double>& end) {
  return end ? detail::concat(*end) : std::string("observed");
}

}  // namespace

FixedRangeObserver::FixedRangeObserver(QuantSpec spec, std::optional<double> min,
                                       std::optional<double> max)
    : MinMaxObserver(std::move(spec), "FixedRangeObserver"), fixed_min_(min), fixed_max_(max) {
  QK_CHECK(!min || std::isfinite(*min), "float_range min ", min.value_or(0), " must be finite");
  QK_CHECK(!max || std::isfinite(*max), "float_range max ", max.value_or(0), " must be finite");
  QK_CHECK(!min || !max || *min <= *max, "float_range [", *min, ", ", *max, "] has min above max");
  if (integer_zero_point(spec_)) {
    QK_CHECK((!min || *min <= 0) && (!max || *max >= 0), "float_range [", end_text(min), ", ",
             end_text(max), "] excludes 0, but ", spec_.describe(),
             " has an integer zero point, so the range must include 0 (else 0 is not exactly "
             "representable); for a range far from zero use zero_point_domain=float");
  }
}

QParams FixedRangeObserver::qparams() const {
  QK_CHECK(batches_ > 0, kind_,
           " has observed no data: call observe() once so the qparams grid is known");
  Tensor lo = min_, hi = max_;  // copies: the running range stays as observed
  const bool clamp_to_zero = integer_zero_point(spec_);
  for (std::int64_t i = 0; i < lo.numel(); ++i) {
    float& a = lo.data<float>()[i];
    float& b = hi.data<float>()[i];
    a = fixed_min_ ? static_cast<float>(*fixed_min_) : clamp_to_zero ? std::min(a, 0.0f) : a;
    b = fixed_max_ ? static_cast<float>(*fixed_max_) : clamp_to_zero ? std::max(b, 0.0f) : b;
    QK_CHECK(a <= b, kind_, ": the range [", a, ", ", b, "] at block ", i,
             " is empty; a fixed end lies beyond the observed other end");
  }
  return choose_qparams(lo, hi, spec_);
}

void FixedRangeObserver::merge(const Observer& other) {
  const auto* same = dynamic_cast<const FixedRangeObserver*>(&other);
  QK_CHECK(same != nullptr && same->fixed_min_ == fixed_min_ && same->fixed_max_ == fixed_max_,
           kind_, " can merge only a FixedRangeObserver with the same float_range");
  MinMaxObserver::merge(other);
}

ObserverState FixedRangeObserver::state() const {
  ObserverState state = MinMaxObserver::state();
  state.attributes["float_range_min"] = end_text(fixed_min_);
  state.attributes["float_range_max"] = end_text(fixed_max_);
  return state;
}

void FixedRangeObserver::load_state(const ObserverState& state) {
  QK_CHECK(observer_state::float_range_end(state, "float_range_min") == fixed_min_ &&
               observer_state::float_range_end(state, "float_range_max") == fixed_max_,
           kind_, ": the state has another float_range");
  MinMaxObserver::load_state(state);
}

std::string FixedRangeObserver::describe() const {
  return MinMaxObserver::describe() +
         detail::concat(", float_range [", end_text(fixed_min_), ", ", end_text(fixed_max_), "]");
}

FixedQParamsObserver::FixedQParamsObserver(QParams qparams)
    : Observer(qparams.spec), qparams_(std::move(qparams)) {
  // Validated as user-given qparams are.
  qparams_ = QParams::make(spec_, qparams_.scale, qparams_.zero_point, qparams_.compute_dtype,
                           qparams_.global_scale);
}

void FixedQParamsObserver::observe(TensorView x) {
  const Shape grid = block_grid_shape(x.shape(), spec_.granularity.block_size(x.shape()));
  QK_CHECK(numel(grid) == qparams_.scale.numel(), "FixedQParamsObserver: x of shape ",
           to_string(x.shape()), " has ", numel(grid), " blocks for ", spec_.granularity.describe(),
           ", but the fixed qparams hold ", qparams_.scale.numel());
  ++batches_;
}

void FixedQParamsObserver::merge(const Observer& other) {
  const auto* same = dynamic_cast<const FixedQParamsObserver*>(&other);
  QK_CHECK(same != nullptr, "FixedQParamsObserver can merge only a FixedQParamsObserver");
  observer_state::check_merge_spec("FixedQParamsObserver", spec_, same->spec_);
  QK_CHECK(same->qparams_.scale.to_vector() == qparams_.scale.to_vector() &&
               same->qparams_.zero_point.to_vector() == qparams_.zero_point.to_vector() &&
               same->qparams_.global_scale.to_vector() == qparams_.global_scale.to_vector(),
           "FixedQParamsObserver can merge only an observer with the same fixed qparams");
  batches_ += same->batches_;
}

ObserverState FixedQParamsObserver::state() const {
  ObserverState state{"FixedQParamsObserver",
                      {{"spec", spec_.to_text()}, {"batches", std::to_string(batches_)}},
                      {{"scale", qparams_.scale}}};
  if (qparams_.has_zero_point()) state.tensors.emplace("zero_point", qparams_.zero_point);
  if (qparams_.global_scale.numel() > 0) {
    state.tensors.emplace("global_scale", qparams_.global_scale);
  }
  return state;
}

void FixedQParamsObserver::load_state(const ObserverState& state) {
  QK_CHECK(state.kind == "FixedQParamsObserver", "cannot load a ", state.kind,
           " state into a FixedQParamsObserver");
  observer_state::check_spec(state, spec_);
  qparams_ = observer_state::fixed_qparams(state, spec_, qparams_.compute_dtype);
  batches_ = observer_state::batch_count(state);
}

std::string FixedQParamsObserver::describe() const {
  return detail::concat("FixedQParamsObserver ", spec_.describe(), ": ", qparams_.scale.numel(),
                        " fixed scales, ", batches_, " batches checked");
}

}  // namespace quantkit
