#pragma once
// Fields of an ObserverState that both an observer's load_state and
// observer_from_state read.
#include <optional>

#include "quantkit/observers.hpp"

namespace quantkit::observer_state {

/// A float_range end: a number, or std::nullopt for "observed" (or absent).
std::optional<double> float_range_end(const ObserverState& state, const char* key);
/// The fixed scale / zero point a FixedQParamsObserver stored, validated.
QParams fixed_qparams(const ObserverState& state, const QuantSpec& spec,
                      ScalarType compute_dtype = ScalarType::float32);

}  // namespace quantkit::observer_state
