#pragma once
// Reading the fields of an ObserverState: every accessor validates what it
// returns and throws Error naming the observer kind, the field, the value
// and the rule, so a corrupted or hand-edited state never yields qparams.
#include <cstdint>
#include <optional>
#include <string>

#include "quantkit/observers.hpp"

namespace quantkit::observer_state {

/// A text attribute that must be present.
const std::string& text_field(const ObserverState& state, const char* key);
/// An integer attribute in [lowest, highest].
std::int64_t integer_field(const ObserverState& state, const char* key, std::int64_t lowest,
                           std::int64_t highest);
/// A finite number attribute in [lowest, highest].
double number_field(const ObserverState& state, const char* key, double lowest, double highest);
/// "batches": a count >= 0.
std::int64_t batch_count(const ObserverState& state);
/// A tensor of `dtype` whose elements are all finite, and >= 0 with
/// `non_negative`.
const Tensor& tensor_field(const ObserverState& state, const char* key, ScalarType dtype,
                           bool non_negative = false);
/// Tensors `min_key` / `max_key` of one shape with min <= max elementwise.
void check_range(const ObserverState& state, const Tensor& min, const Tensor& max);

/// The "spec" field (QuantSpec::to_text()) must name exactly `spec`; a state
/// saved by an older version (describe() text) must match spec.describe().
void check_spec(const ObserverState& state, const QuantSpec& spec);
/// merge(): the other observer's spec must equal this one's, field by field.
void check_merge_spec(const std::string& kind, const QuantSpec& mine, const QuantSpec& theirs);

/// A float_range end: a number, or std::nullopt for "observed" (or absent).
std::optional<double> float_range_end(const ObserverState& state, const char* key);
/// The fixed scale / zero point a FixedQParamsObserver stored, validated.
QParams fixed_qparams(const ObserverState& state, const QuantSpec& spec,
                      ScalarType compute_dtype = ScalarType::float32);

}  // namespace quantkit::observer_state
