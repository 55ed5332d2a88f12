#include "observers/state_fields.hpp"

#include <charconv>
#include <cmath>
#include <limits>

#include "quantkit/error.hpp"

namespace quantkit::observer_state {
namespace {

template <typename... Parts>
[[noreturn]] void reject(const ObserverState& state, const char* key, const Parts&... parts) {
  throw Error(detail::concat(state.kind, " state: field '", key, "' ", parts...));
}

}  // namespace

const std::string& text_field(const ObserverState& state, const char* key) {
  const auto found = state.attributes.find(key);
  if (found == state.attributes.end()) reject(state, key, "is missing");
  return found->second;
}

std::int64_t integer_field(const ObserverState& state, const char* key, std::int64_t lowest,
                           std::int64_t highest) {
  const std::string& text = text_field(state, key);
  std::int64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || value < lowest ||
      value > highest) {
    reject(state, key, "is '", text.substr(0, 40), "', not an integer in ", lowest, "..", highest);
  }
  return value;
}

double number_field(const ObserverState& state, const char* key, double lowest, double highest) {
  const std::string& text = text_field(state, key);
  double value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || !std::isfinite(value) ||
      value < lowest || value > highest) {
    reject(state, key, "is '", text.substr(0, 40), "', not a finite number in [", lowest, ", ",
           highest, "]");
  }
  return value;
}

std::int64_t batch_count(const ObserverState& state) {
  return integer_field(state, "batches", 0, std::numeric_limits<std::int64_t>::max());
}

const Tensor& tensor_field(const ObserverState& state, const char* key, ScalarType dtype,
                           bool non_negative) {
  const auto found = state.tensors.find(key);
  if (found == state.tensors.end()) reject(state, key, "is missing");
  const Tensor& tensor = found->second;
  if (tensor.dtype() != dtype) {
    reject(state, key, "has dtype ", name(tensor.dtype()), "; it must be ", name(dtype));
  }
  for (std::int64_t i = 0; i < tensor.numel(); ++i) {
    const double value = tensor.get(i);
    if (!std::isfinite(value) || (non_negative && value < 0)) {
      reject(state, key, "holds ", value, " at element ", i, "; every element must be finite",
             non_negative ? " and >= 0" : "");
    }
  }
  return tensor;
}

void check_range(const ObserverState& state, const Tensor& min, const Tensor& max) {
  if (min.shape() != max.shape()) {
    reject(state, "max", "has shape ", to_string(max.shape()), " but 'min' has ",
           to_string(min.shape()), "; they must match");
  }
  for (std::int64_t i = 0; i < min.numel(); ++i) {
    if (min.get(i) > max.get(i)) {
      reject(state, "min", "exceeds 'max' at element ", i, " (", min.get(i), " > ", max.get(i),
             ")");
    }
  }
}

void check_spec(const ObserverState& state, const QuantSpec& spec) {
  const std::string& text = text_field(state, "spec");
  if (!text.starts_with("dtype=")) {  // a state saved before specs had a lossless text
    if (text != spec.describe()) {
      reject(state, "spec", "is '", text, "', but this observer has ", spec.describe());
    }
    return;
  }
  QuantSpec stored;
  try {
    stored = QuantSpec::from_text(text);
  } catch (const Error& error) {
    reject(state, "spec", "does not parse: ", error.what());
  }
  if (!(stored == spec)) {
    reject(state, "spec", "says the state was observed with spec ", stored.describe(),
           ", but this observer has spec ", spec.describe(), "; they differ in ",
           first_difference(stored, spec), " (", text, " vs ", spec.to_text(), ")");
  }
}

void check_merge_spec(const std::string& kind, const QuantSpec& mine, const QuantSpec& theirs) {
  QK_CHECK(mine == theirs, kind, " cannot merge an observer of spec ", theirs.describe(),
           " into one of spec ", mine.describe(), ": they differ in ",
           first_difference(mine, theirs), " (", theirs.to_text(), " vs ", mine.to_text(), ")");
}

std::optional<double> float_range_end(const ObserverState& state, const char* key) {
  const auto it = state.attributes.find(key);
  if (it == state.attributes.end() || it->second == "observed") return std::nullopt;
  const double lowest = std::numeric_limits<double>::lowest();
  return number_field(state, key, lowest, std::numeric_limits<double>::max());
}

QParams fixed_qparams(const ObserverState& state, const QuantSpec& spec, ScalarType compute_dtype) {
  const auto scale = state.tensors.find("scale");
  if (scale == state.tensors.end()) reject(state, "scale", "is missing");
  const auto zero_point = state.tensors.find("zero_point");
  const auto global_scale = state.tensors.find("global_scale");
  return QParams::make(
      spec, scale->second, zero_point == state.tensors.end() ? Tensor() : zero_point->second,
      compute_dtype, global_scale == state.tensors.end() ? Tensor() : global_scale->second);
}

}  // namespace quantkit::observer_state
