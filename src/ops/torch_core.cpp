// PyTorch-core fake quantization (CPU semantics of torch 2.13). The contract
// is in include/quantkit/torch_core.hpp.
#include "quantkit/torch_core.hpp"

#include <algorithm>
#include <cmath>

#include "core/internal/float_io.hpp"
#include "quantkit/error.hpp"
#include "reference/eager_math.hpp"
#include "reference/element_ops.hpp"

namespace quantkit::torch_core {
namespace {

using reference::round_to;

void check_range(Range range) {
  QK_CHECK(range.quant_min <= range.quant_max, "quant_min ", range.quant_min,
           " must not exceed quant_max ", range.quant_max);
}

// The affine parameters of one channel (or of the whole tensor).
struct Channel {
  float scale;
  float zero_point;
  bool float_zero_point;  // float_qparams: zp added before rounding
};

// PyTorch builds its CPU quantization kernels with FMA contraction, so every
// `a * b + c` in their source is one fused operation; std::fma reproduces it
// (explicit calls are not affected by -ffp-contract=off).
float rounded_with_zero_point(float x, float inverse, float zero_point) {
  return std::nearbyint(std::fma(x, inverse, zero_point));
}

// Unclamped quantized value.
float unclamped(float x, const Channel& c, float inverse) {
  if (c.float_zero_point) return rounded_with_zero_point(x, inverse, c.zero_point);
  return c.zero_point + std::nearbyint(x * inverse);
}

float forward_element(float x, const Channel& c, Range range, ScalarType dtype) {
  const float inverse = 1.0f / c.scale;
  const double q =
      reference::clamp_nan_to_low(unclamped(x, c, inverse), static_cast<double>(range.quant_min),
                                  static_cast<double>(range.quant_max));
  if (c.float_zero_point) {
    // Computed in double and narrowed once (through float, as c10 does).
    return round_to(dtype, static_cast<float>((q - c.zero_point) * static_cast<double>(c.scale)));
  }
  return round_to(dtype, static_cast<float>(q - c.zero_point) * c.scale);
}

bool mask_element(float x, const Channel& c, Range range) {
  const float q = unclamped(x, c, 1.0f / c.scale);
  return q >= static_cast<float>(range.quant_min) && q <= static_cast<float>(range.quant_max);
}

std::int64_t resolve_axis(std::int64_t axis, std::int64_t rank) {
  QK_CHECK(axis >= -rank && axis < rank, "axis ", axis, " is out of range for rank ", rank);
  return axis < 0 ? axis + rank : axis;
}

constexpr std::int64_t kWholeTensor = -1;

// Channel index of each row-major element for `axis` (all 0 for kWholeTensor).
std::vector<std::int64_t> channel_index(const Shape& shape, std::int64_t axis) {
  std::vector<std::int64_t> out(static_cast<std::size_t>(numel(shape)), 0);
  if (axis == kWholeTensor) return out;
  const auto strides = contiguous_strides(shape);
  for (std::size_t i = 0; i < out.size(); ++i) {
    out[i] = (static_cast<std::int64_t>(i) / strides[axis]) % shape[axis];
  }
  return out;
}

std::vector<Channel> read_channels(TensorView x, TensorView scale, TensorView zero_point,
                                   std::int64_t axis) {
  QK_CHECK(scale.dtype() == ScalarType::float32, "scale has dtype ", name(scale.dtype()),
           "; per-channel fake quantization needs float32");
  QK_CHECK(scale.dim() == 1 && zero_point.dim() == 1 && scale.numel() == zero_point.numel() &&
               scale.numel() == x.shape()[axis],
           "scale ", to_string(scale.shape()), " and zero_point ", to_string(zero_point.shape()),
           " must be 1-D with one entry per channel of axis ", axis, " (", x.shape()[axis], ")");
  const bool float_zp = is_floating_point(zero_point.dtype());
  QK_CHECK(float_zp || zero_point.dtype() == ScalarType::int32, "zero_point has dtype ",
           name(zero_point.dtype()), "; expected int32, float32 or float16");
  std::vector<Channel> channels(static_cast<std::size_t>(scale.numel()));
  for (std::size_t c = 0; c < channels.size(); ++c) {
    const auto i = static_cast<std::int64_t>(c);
    channels[c] = {static_cast<float>(scale.get(i)), static_cast<float>(zero_point.get(i)),
                   float_zp};
  }
  return channels;
}

template <typename Fn>
Tensor map_channels(TensorView x, const std::vector<Channel>& channels, std::int64_t axis,
                    ScalarType out_dtype, Fn&& fn) {
  auto values = internal::load_floats(x);
  const auto index = channel_index(x.shape(), axis);
  for (std::size_t i = 0; i < values.size(); ++i) values[i] = fn(values[i], channels[index[i]]);
  return internal::store_floats(values, x.shape(), out_dtype);
}

float zero_point_forward(float zp, Range range) {  // per-tensor LSQ forward
  return static_cast<float>(
      std::clamp<double>(std::nearbyint(zp), range.quant_min, range.quant_max));
}

}  // namespace

Tensor fake_quantize_per_tensor_affine(TensorView x, float scale, std::int64_t zero_point,
                                       Range range) {
  internal::check_float_input(x.dtype(), "x");
  check_range(range);
  QK_CHECK(zero_point >= range.quant_min && zero_point <= range.quant_max, "zero_point ",
           zero_point, " must be between quant_min ", range.quant_min, " and quant_max ",
           range.quant_max);
  const Channel c{scale, static_cast<float>(zero_point), false};
  return map_channels(x, {c}, kWholeTensor, x.dtype(), [&](float v, const Channel& ch) {
    return forward_element(v, ch, range, x.dtype());
  });
}

Tensor fake_quantize_per_tensor_mask(TensorView x, float scale, std::int64_t zero_point,
                                     Range range) {
  internal::check_float_input(x.dtype(), "x");
  check_range(range);
  const Channel c{scale, static_cast<float>(zero_point), false};
  return map_channels(x, {c}, kWholeTensor, ScalarType::uint8, [&](float v, const Channel& ch) {
    return mask_element(v, ch, range) ? 1.0f : 0.0f;
  });
}

Tensor fake_quantize_per_channel_affine(TensorView x, TensorView scale, TensorView zero_point,
                                        std::int64_t axis, Range range) {
  internal::check_float_input(x.dtype(), "x");
  check_range(range);
  axis = resolve_axis(axis, x.dim());
  const auto channels = read_channels(x, scale, zero_point, axis);
  for (const auto& c : channels) {
    QK_CHECK(
        c.float_zero_point || (c.zero_point >= range.quant_min && c.zero_point <= range.quant_max),
        "zero_point ", c.zero_point, " must be between quant_min ", range.quant_min,
        " and quant_max ", range.quant_max);
  }
  return map_channels(x, channels, axis, x.dtype(), [&](float v, const Channel& c) {
    return forward_element(v, c, range, x.dtype());
  });
}

Tensor fake_quantize_per_channel_mask(TensorView x, TensorView scale, TensorView zero_point,
                                      std::int64_t axis, Range range) {
  internal::check_float_input(x.dtype(), "x");
  check_range(range);
  axis = resolve_axis(axis, x.dim());
  const auto channels = read_channels(x, scale, zero_point, axis);
  return map_channels(x, channels, axis, ScalarType::uint8, [&](float v, const Channel& c) {
    return mask_element(v, c, range) ? 1.0f : 0.0f;
  });
}

Tensor apply_mask(TensorView grad_output, TensorView mask) {
  internal::check_float_input(grad_output.dtype(), "grad_output");
  QK_CHECK(mask.shape() == grad_output.shape(), "mask of shape ", to_string(mask.shape()),
           " must match grad_output of shape ", to_string(grad_output.shape()));
  auto grad = internal::load_floats(grad_output);
  for (std::size_t i = 0; i < grad.size(); ++i) {
    grad[i] = grad[i] * (mask.get(static_cast<std::int64_t>(i)) != 0 ? 1.0f : 0.0f);
  }
  return internal::store_floats(grad, grad_output.shape(), grad_output.dtype());
}

// ---- LSQ

namespace {

struct LearnableSetup {
  std::vector<Channel> channels;
  std::vector<std::int64_t> channel_of;  // per element
};

LearnableGrads learnable_backward(TensorView grad_output, TensorView x, const LearnableSetup& setup,
                                  Range range, float grad_factor) {
  QK_CHECK(grad_output.shape() == x.shape(), "grad_output of shape ",
           to_string(grad_output.shape()), " must match x of shape ", to_string(x.shape()));
  internal::check_float_input(grad_output.dtype(), "grad_output");
  const auto xs = internal::load_floats(x);
  const auto dys = internal::load_floats(grad_output);
  const auto qmin = static_cast<float>(range.quant_min);
  const auto qmax = static_cast<float>(range.quant_max);
  std::vector<float> dx(xs.size());
  std::vector<double> dscale(setup.channels.size(), 0.0);
  std::vector<double> dzero(setup.channels.size(), 0.0);
  for (std::size_t i = 0; i < xs.size(); ++i) {
    const auto ch = setup.channel_of[i];
    const Channel& c = setup.channels[ch];
    const float inverse = 1.0f / c.scale;
    const float xq =
        rounded_with_zero_point(xs[i], inverse, c.zero_point);  // zp added BEFORE rounding
    const float dy = dys[i];
    if (xq < qmin || xq > qmax) {
      dx[i] = dy * 0.0f;
      dscale[ch] += (dy * ((xq < qmin ? qmin : qmax) - c.zero_point)) * grad_factor;
      dzero[ch] += ((dy * -1.0f) * c.scale) * grad_factor;
    } else {
      // NaN x lands here: its gradient is masked and its dscale term is NaN.
      dx[i] = dy * (std::isnan(xq) ? 0.0f : 1.0f);
      const float clamped = static_cast<float>(reference::clamp_nan_to_low(xq, qmin, qmax));
      // xfq - x with xfq = (clamped - zp) * scale, fused as in PyTorch's kernel.
      const float error = std::fma(clamped - c.zero_point, c.scale, -xs[i]);
      dscale[ch] += ((dy * error) * inverse) * grad_factor;
    }
  }
  const Shape params{static_cast<std::int64_t>(setup.channels.size())};
  LearnableGrads out{internal::store_floats(dx, x.shape(), ScalarType::float32),
                     Tensor(ScalarType::float32, params), Tensor(ScalarType::float32, params)};
  for (std::size_t c = 0; c < setup.channels.size(); ++c) {
    out.grad_scale.set(static_cast<std::int64_t>(c), static_cast<float>(dscale[c]));
    out.grad_zero_point.set(static_cast<std::int64_t>(c), static_cast<float>(dzero[c]));
  }
  return out;
}

void check_learnable_params(TensorView scale, TensorView zero_point, std::int64_t channels) {
  QK_CHECK(scale.dtype() == ScalarType::float32 && zero_point.dtype() == ScalarType::float32,
           "learnable scale and zero_point must be float32 parameters, got ", name(scale.dtype()),
           " and ", name(zero_point.dtype()));
  QK_CHECK(scale.numel() == channels && zero_point.numel() == channels, "learnable scale ",
           to_string(scale.shape()), " and zero_point ", to_string(zero_point.shape()),
           " must hold ", channels, " value(s)");
  for (std::int64_t i = 0; i < channels; ++i) {
    const double s = scale.get(i);
    QK_CHECK(std::isfinite(s) && s > 0, "scale ", s, " at index ", i, " must be finite and > 0");
  }
}

void check_learnable_range(Range range) {
  check_range(range);
  QK_CHECK(range.quant_min <= 0 && range.quant_max >= 0,
           "learnable fake quantization needs "
           "quant_min <= 0 <= quant_max, got [",
           range.quant_min, ", ", range.quant_max, "]");
}

}  // namespace

Tensor fake_quantize_learnable_per_tensor_affine(TensorView x, TensorView scale,
                                                 TensorView zero_point, Range range) {
  check_learnable_range(range);
  check_learnable_params(scale, zero_point, 1);
  const auto zp = zero_point_forward(static_cast<float>(zero_point.get(0)), range);
  return fake_quantize_per_tensor_affine(x, static_cast<float>(scale.get(0)),
                                         static_cast<std::int64_t>(zp), range);
}

LearnableGrads fake_quantize_learnable_per_tensor_affine_backward(TensorView grad_output,
                                                                  TensorView x, TensorView scale,
                                                                  TensorView zero_point,
                                                                  Range range, float grad_factor) {
  check_learnable_range(range);
  check_learnable_params(scale, zero_point, 1);
  internal::check_float_input(x.dtype(), "x");
  // PyTorch's backward rounds the zero point by truncating zp + 0.5 after the
  // clamp, unlike its forward (half to even): 2.5 is 2 forward, 3 backward.
  const float shifted = static_cast<float>(zero_point.get(0)) + 0.5f;
  const auto zp = static_cast<float>(std::trunc(std::clamp<double>(
      shifted, static_cast<double>(range.quant_min), static_cast<double>(range.quant_max))));
  LearnableSetup setup{{Channel{static_cast<float>(scale.get(0)), zp, false}},
                       std::vector<std::int64_t>(static_cast<std::size_t>(x.numel()), 0)};
  return learnable_backward(grad_output, x, setup, range, grad_factor);
}

namespace {
LearnableSetup per_channel_setup(TensorView x, TensorView scale, TensorView zero_point,
                                 std::int64_t axis, Range range) {
  internal::check_float_input(x.dtype(), "x");
  check_learnable_range(range);
  check_learnable_params(scale, zero_point, x.shape()[axis]);
  LearnableSetup setup;
  for (std::int64_t c = 0; c < scale.numel(); ++c) {
    const double zp =
        std::clamp<double>(std::nearbyint(zero_point.get(c)), static_cast<double>(range.quant_min),
                           static_cast<double>(range.quant_max));
    setup.channels.push_back({static_cast<float>(scale.get(c)), static_cast<float>(zp), false});
  }
  setup.channel_of = channel_index(x.shape(), axis);
  return setup;
}
}  // namespace

Tensor fake_quantize_learnable_per_channel_affine(TensorView x, TensorView scale,
                                                  TensorView zero_point, std::int64_t axis,
                                                  Range range) {
  axis = resolve_axis(axis, x.dim());
  const auto setup = per_channel_setup(x, scale, zero_point, axis, range);
  return map_channels(x, setup.channels, axis, x.dtype(), [&](float v, const Channel& c) {
    return forward_element(v, c, range, x.dtype());
  });
}

LearnableGrads fake_quantize_learnable_per_channel_affine_backward(TensorView grad_output,
                                                                   TensorView x, TensorView scale,
                                                                   TensorView zero_point,
                                                                   std::int64_t axis, Range range,
                                                                   float grad_factor) {
  axis = resolve_axis(axis, x.dim());
  const auto setup = per_channel_setup(x, scale, zero_point, axis, range);
  return learnable_backward(grad_output, x, setup, range, grad_factor);
}

}  // namespace quantkit::torch_core
