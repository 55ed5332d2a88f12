#include "core/internal/float_io.hpp"

#include <cmath>
#include <cstring>

#include "core/internal/block_layout.hpp"
#include "quantkit/error.hpp"

namespace quantkit::internal {

void check_float_input(ScalarType dtype, const char* what) {
  QK_CHECK(
      dtype == ScalarType::float32 || dtype == ScalarType::bfloat16 || dtype == ScalarType::float16,
      what, " has dtype ", name(dtype), "; expected float32, bfloat16 or float16");
}

std::vector<float> load_floats(TensorView x) {
  const Tensor contiguous = x.contiguous();
  const std::int64_t n = contiguous.numel();
  std::vector<float> out(static_cast<std::size_t>(n));
  switch (contiguous.dtype()) {
    case ScalarType::float32: {
      const float* p = contiguous.data<float>();
      out.assign(p, p + n);
      break;
    }
    case ScalarType::bfloat16: {
      const BFloat16* p = contiguous.data<BFloat16>();
      for (std::int64_t i = 0; i < n; ++i) out[i] = p[i].to_float();
      break;
    }
    case ScalarType::float16: {
      const Float16* p = contiguous.data<Float16>();
      for (std::int64_t i = 0; i < n; ++i) out[i] = p[i].to_float();
      break;
    }
    case ScalarType::int32: {
      const std::int32_t* p = contiguous.data<std::int32_t>();
      for (std::int64_t i = 0; i < n; ++i) out[i] = static_cast<float>(p[i]);
      break;
    }
    default:
      for (std::int64_t i = 0; i < n; ++i) out[i] = static_cast<float>(contiguous.get(i));
  }
  return out;
}

void store_floats_to(ScalarType dtype, const float* values, std::int64_t count, void* out) {
  switch (dtype) {
    case ScalarType::bfloat16:
      for (std::int64_t i = 0; i < count; ++i) {
        static_cast<BFloat16*>(out)[i] = BFloat16::from_float(values[i]);
      }
      return;
    case ScalarType::float16:
      for (std::int64_t i = 0; i < count; ++i) {
        static_cast<Float16*>(out)[i] = Float16::from_float(values[i]);
      }
      return;
    default:
      std::memcpy(out, values, static_cast<std::size_t>(count) * sizeof(float));
  }
}

Tensor store_floats(const std::vector<float>& values, const Shape& shape, ScalarType dtype) {
  Tensor out = Tensor::uninitialized(dtype, shape);
  store_floats_at(out, 0, static_cast<std::int64_t>(values.size()),
                  [&](std::int64_t i) { return values[i]; });
  return out;
}

void check_finite(const std::vector<float>& values, const Shape& shape, const char* what,
                  const char* why) {
  for (std::size_t i = 0; i < values.size(); ++i) {
    QK_CHECK(std::isfinite(values[i]), what, " holds ", values[i], " at flat index ",
             describe_index(shape, static_cast<std::int64_t>(i)), "; ", why);
  }
}

}  // namespace quantkit::internal
