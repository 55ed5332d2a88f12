// Restoring an observer of any kind from its state.
#include "observers/state_fields.hpp"
#include "quantkit/error.hpp"
#include "quantkit/observers.hpp"

namespace quantkit {

std::unique_ptr<Observer> observer_from_state(const ObserverState& state, const QuantSpec& spec) {
  std::unique_ptr<Observer> observer;
  if (state.kind == "MinMaxObserver") {
    observer = std::make_unique<MinMaxObserver>(spec);
  } else if (state.kind == "MovingAverageObserver") {
    const auto c = state.attributes.find("averaging_constant");
    QK_CHECK(c != state.attributes.end(), "MovingAverageObserver state has no averaging_constant");
    observer = std::make_unique<MovingAverageObserver>(spec, std::stod(c->second));
  } else if (state.kind == "LatestMinMaxObserver") {
    observer = std::make_unique<LatestMinMaxObserver>(spec);
  } else if (state.kind == "MeanAbsObserver") {
    observer = std::make_unique<MeanAbsObserver>(spec);
  } else if (state.kind == "HistogramObserver") {
    const auto bins = state.attributes.find("bins");
    QK_CHECK(bins != state.attributes.end(), "HistogramObserver state has no bin count");
    const auto method = state.attributes.find("method");
    const auto percentile = state.attributes.find("percentile");
    observer = std::make_unique<HistogramObserver>(
        spec, std::stoll(bins->second),
        method == state.attributes.end() ? HistogramMethod::torch_l2
                                         : histogram_method_from_name(method->second),
        percentile == state.attributes.end() ? 99.99 : std::stod(percentile->second));
  } else if (state.kind == "FixedRangeObserver") {
    observer = std::make_unique<FixedRangeObserver>(
        spec, observer_state::float_range_end(state, "float_range_min"),
        observer_state::float_range_end(state, "float_range_max"));
  } else if (state.kind == "FixedQParamsObserver") {
    observer = std::make_unique<FixedQParamsObserver>(observer_state::fixed_qparams(state, spec));
  } else {
    throw Error(detail::concat("unknown observer kind '", state.kind, "'"));
  }
  observer->load_state(state);
  return observer;
}

}  // namespace quantkit
