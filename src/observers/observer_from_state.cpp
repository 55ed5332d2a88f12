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
    observer = std::make_unique<MovingAverageObserver>(
        spec, observer_state::number_field(state, "averaging_constant", 0, 1));
  } else if (state.kind == "LatestMinMaxObserver") {
    observer = std::make_unique<LatestMinMaxObserver>(spec);
  } else if (state.kind == "MeanAbsObserver") {
    observer = std::make_unique<MeanAbsObserver>(spec);
  } else if (state.kind == "HistogramObserver") {
    const auto method = state.attributes.find("method");
    observer = std::make_unique<HistogramObserver>(
        spec, observer_state::integer_field(state, "bins", 1, std::int64_t{1} << 24),
        method == state.attributes.end() ? HistogramMethod::torch_l2
                                         : histogram_method_from_name(method->second),
        state.attributes.count("percentile") == 0
            ? 99.99
            : observer_state::number_field(state, "percentile", 0, 100));
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
