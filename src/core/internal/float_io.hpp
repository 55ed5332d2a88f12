#pragma once
// Float tensors read as float values and written back: the conversions every
// layer shares (exact for float32 / bfloat16 / float16).

#include <cstdint>
#include <vector>

#include "quantkit/half.hpp"
#include "quantkit/tensor.hpp"

namespace quantkit::internal {

/// Checks a float input dtype (float32, bfloat16, float16) for argument `what`.
void check_float_input(ScalarType dtype, const char* what);
/// Reads a float tensor as float values (exact for the three input dtypes).
std::vector<float> load_floats(TensorView x);
/// Writes value(0) .. value(count - 1), already representable in out's dtype,
/// to out's flat elements [first, first + count).
template <typename Value>
void store_floats_at(Tensor& out, std::int64_t first, std::int64_t count, const Value& value) {
  const auto store = [&](auto* data, const auto& convert) {  // data() checks the dtype once
    for (std::int64_t i = 0; i < count; ++i) data[first + i] = convert(value(i));
  };
  switch (out.dtype()) {
    case ScalarType::float32:
      return store(out.data<float>(), [](float v) { return v; });
    case ScalarType::bfloat16:
      return store(out.data<BFloat16>(), [](float v) { return BFloat16::from_float(v); });
    case ScalarType::float16:
      return store(out.data<Float16>(), [](float v) { return Float16::from_float(v); });
    case ScalarType::int32:  // integer-valued (zero points); set() checks the others
      return store(out.data<std::int32_t>(), [](float v) { return static_cast<std::int32_t>(v); });
    default:
      for (std::int64_t i = 0; i < count; ++i) out.set(first + i, value(i));
  }
}
/// Writes values[0, count) (already representable in the float `dtype`) to raw
/// storage of that dtype.
void store_floats_to(ScalarType dtype, const float* values, std::int64_t count, void* out);
/// Writes values (already representable in `dtype`) into a new tensor.
Tensor store_floats(const std::vector<float>& values, const Shape& shape, ScalarType dtype);

/// Throws Error naming the first non-finite value of `what`, its index in
/// `shape`, and `why` finite data is needed.
void check_finite(const std::vector<float>& values, const Shape& shape, const char* what,
                  const char* why);

}  // namespace quantkit::internal
