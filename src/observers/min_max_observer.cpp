#include <algorithm>

#include "observers/state_fields.hpp"
#include "quantkit/error.hpp"
#include "quantkit/observers.hpp"

namespace quantkit {
namespace {

std::string range_text(const Tensor& min, const Tensor& max) {
  if (min.numel() == 0) return "no data";
  float lo = min.data<float>()[0], hi = max.data<float>()[0];
  for (std::int64_t i = 0; i < min.numel(); ++i) {
    lo = std::min(lo, min.data<float>()[i]);
    hi = std::max(hi, max.data<float>()[i]);
  }
  return detail::concat("range [", lo, ", ", hi, "] over grid ", to_string(min.shape()));
}

}  // namespace

Observer::Observer(QuantSpec spec) : spec_(std::move(spec)) {
  spec_.validate();
}

MinMaxObserver::MinMaxObserver(QuantSpec spec)
    : MinMaxObserver(std::move(spec), "MinMaxObserver") {}

MinMaxObserver::MinMaxObserver(QuantSpec spec, std::string kind)
    : Observer(std::move(spec)), kind_(std::move(kind)) {
  QK_CHECK(spec_.mapping != Mapping::stretched, kind_,
           " cannot serve the stretched mapping, which needs mean|x|; use a MeanAbs observer");
}

void MinMaxObserver::observe(TensorView x) {
  BlockRange batch = block_range(x, spec_.granularity);
  if (batches_ == 0) {
    min_ = std::move(batch.min);
    max_ = std::move(batch.max);
  } else {
    QK_CHECK(batch.min.shape() == min_.shape(), kind_, ": x of shape ", to_string(x.shape()),
             " gives a qparams grid ", to_string(batch.min.shape()), " for ",
             spec_.granularity.describe(), ", but earlier batches gave ", to_string(min_.shape()));
    fold(batch);
  }
  ++batches_;
}

void MinMaxObserver::fold(const BlockRange& batch) {
  float* lo = min_.data<float>();
  float* hi = max_.data<float>();
  for (std::int64_t i = 0; i < min_.numel(); ++i) {
    lo[i] = std::min(lo[i], batch.min.data<float>()[i]);
    hi[i] = std::max(hi[i], batch.max.data<float>()[i]);
  }
}

QParams MinMaxObserver::qparams() const {
  QK_CHECK(batches_ > 0, kind_, " has observed no data: call observe() before qparams()");
  return choose_qparams(min_, max_, spec_);
}

void MinMaxObserver::reset() {
  min_ = Tensor();
  max_ = Tensor();
  batches_ = 0;
}

void MinMaxObserver::merge(const Observer& other) {
  const auto* same = dynamic_cast<const MinMaxObserver*>(&other);
  QK_CHECK(same != nullptr && same->kind_ == kind_, kind_,
           " cannot merge a different observer kind");
  observer_state::check_merge_spec(kind_, spec_, same->spec_);
  if (same->batches_ == 0) return;
  if (batches_ == 0) {
    min_ = same->min_;
    max_ = same->max_;
  } else {
    QK_CHECK(same->min_.shape() == min_.shape(), kind_, ": cannot merge a qparams grid ",
             to_string(same->min_.shape()), " into ", to_string(min_.shape()));
    MinMaxObserver::fold({same->min_, same->max_});
  }
  batches_ += same->batches_;
}

ObserverState MinMaxObserver::state() const {
  ObserverState state{
      kind_, {{"spec", spec_.to_text()}, {"batches", std::to_string(batches_)}}, {}};
  if (batches_ > 0) state.tensors = {{"min", min_}, {"max", max_}};
  return state;
}

void MinMaxObserver::load_state(const ObserverState& state) {
  QK_CHECK(state.kind == kind_, "cannot load a ", state.kind, " state into a ", kind_);
  observer_state::check_spec(state, spec_);
  const std::int64_t count = observer_state::batch_count(state);
  if (count == 0) {
    reset();
    return;
  }
  const Tensor& lo = observer_state::tensor_field(state, "min", ScalarType::float32);
  const Tensor& hi = observer_state::tensor_field(state, "max", ScalarType::float32);
  observer_state::check_range(state, lo, hi);
  min_ = lo;
  max_ = hi;
  batches_ = count;
}

std::string MinMaxObserver::describe() const {
  return detail::concat(kind_, " ", spec_.describe(), ": ", batches_, " batches, ",
                        range_text(min_, max_));
}

MovingAverageObserver::MovingAverageObserver(QuantSpec spec, double averaging_constant)
    : MinMaxObserver(std::move(spec), "MovingAverageObserver"),
      averaging_constant_(averaging_constant) {
  QK_CHECK(averaging_constant > 0 && averaging_constant <= 1, "averaging_constant ",
           averaging_constant, " must lie in (0, 1]");
}

void MovingAverageObserver::fold(const BlockRange& batch) {
  // torch.ao: m + c * (x - m), one float32 rounding per op.
  const auto c = static_cast<float>(averaging_constant_);
  float* lo = min_.data<float>();
  float* hi = max_.data<float>();
  for (std::int64_t i = 0; i < min_.numel(); ++i) {
    const float dlo = batch.min.data<float>()[i] - lo[i];
    const float dhi = batch.max.data<float>()[i] - hi[i];
    const float slo = c * dlo;
    const float shi = c * dhi;
    lo[i] = lo[i] + slo;
    hi[i] = hi[i] + shi;
  }
}

void MovingAverageObserver::merge(const Observer&) {
  throw Error(
      "MovingAverageObserver cannot merge: an exponential moving average depends on the order of "
      "the batches; calibrate shards with MinMaxObserver (or a histogram observer) to merge them");
}

ObserverState MovingAverageObserver::state() const {
  ObserverState state = MinMaxObserver::state();
  state.attributes["averaging_constant"] = detail::concat(averaging_constant_);
  return state;
}

void MovingAverageObserver::load_state(const ObserverState& state) {
  const auto c = state.attributes.find("averaging_constant");
  QK_CHECK(c != state.attributes.end() && c->second == detail::concat(averaging_constant_),
           "MovingAverageObserver: the state was observed with averaging_constant ",
           c == state.attributes.end() ? "?" : c->second, ", this observer has ",
           averaging_constant_);
  MinMaxObserver::load_state(state);
}

std::string MovingAverageObserver::describe() const {
  return MinMaxObserver::describe() + detail::concat(", averaging_constant ", averaging_constant_);
}

}  // namespace quantkit
