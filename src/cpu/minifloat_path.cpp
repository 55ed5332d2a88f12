#include "cpu/minifloat_path.hpp"

#include <cmath>
#include <memory>

#include "cpu/dispatch_helpers.hpp"
#include "cpu/fast_path.hpp"
#include "cpu/minifloat_kernels.hpp"
#include "quantkit/packing.hpp"
#include "reference/element_ops.hpp"

namespace quantkit::cpu {
namespace {

struct Prepared {
  MinifloatOps ops;
  BlockMap map;
  reference::ElementPlan plan;
  enum class Multiplier : std::uint8_t { scale, divisor, reciprocal } multiplier;
  BlockParams params() const {
    const std::vector<float>& per_block = multiplier == Multiplier::scale     ? plan.scale
                                          : multiplier == Multiplier::divisor ? plan.divisor
                                                                              : plan.reciprocal;
    return {per_block.data(), plan.scale.data(), plan.scale.data()};
  }
};

std::optional<Prepared> prepare(const QParams& qparams, ScalarType input, ScalarType output,
                                const Shape& shape) {
  if (!qparams.spec.dtype.is_floating() || !kind_of(input) || !kind_of(output)) return std::nullopt;
  const auto map = block_map(shape, qparams.spec.granularity.block_size(shape));
  if (!map) return std::nullopt;
  Prepared p{{}, *map, reference::make_plan(qparams, input, shape), Prepared::Multiplier::scale};
  const MinifloatFormat& format = *p.plan.format;
  p.ops.input = *kind_of(input);
  p.ops.output = *kind_of(output);
  p.ops.exponent_bits = format.exponent_bits;
  p.ops.mantissa_bits = format.mantissa_bits;
  p.ops.exponent_bias = format.exponent_bias;
  p.ops.max_value = static_cast<float>(format.max_value);
  p.ops.max_code = encode_minifloat(p.ops.max_value, format);
  p.ops.has_nan = format.has_nan;
  p.ops.has_infinity = format.has_infinity;
  p.ops.encode_magic = std::ldexp(1.0f, 24 - format.exponent_bias - format.mantissa_bits);
  p.ops.smallest_normal = std::ldexp(1.0f, 1 - format.exponent_bias);
  p.ops.subnormal_step = std::ldexp(1.0f, 1 - format.exponent_bias - format.mantissa_bits);
  const ScaleSchemeTraits& scale_scheme = *p.plan.scale_scheme;
  p.ops.scale_in_output = scale_scheme.dequant_order == DequantOrder::round_then_product;
  // The per-block value the kernel divides by or multiplies with (see
  // reference::make_plan, which computes both arrays from the row).
  switch (scale_scheme.division) {
    case ScaleDivision::divide:
      p.ops.divide = true;
      p.multiplier = Prepared::Multiplier::scale;
      break;
    case ScaleDivision::divide_clamped:
      p.ops.divide = true;
      p.multiplier = Prepared::Multiplier::divisor;
      break;
    case ScaleDivision::multiply_reciprocal:
    case ScaleDivision::multiply_exponent:
      p.ops.divide = false;
      p.multiplier = Prepared::Multiplier::reciprocal;
      break;
  }
  return p;
}

}  // namespace

bool minifloat_fake_quantize_into(TensorView x, const QParams& qparams, void* out) {
  if (!x.is_contiguous()) return false;
  const auto p = prepare(qparams, x.dtype(), x.dtype(), x.shape());
  if (!p) return false;
  map_chunks_into(x.numel(), out, [&](std::int64_t begin, std::int64_t end, void* y) {
    minifloat_fake_quantize_range(p->ops, p->map, p->params(), x.data(), y, begin, end);
  });
  return true;
}

std::optional<Tensor> minifloat_fake_quantize_backward(TensorView x, TensorView grad_output,
                                                       const QParams& qparams) {
  if (!backward_applies(x, grad_output)) return std::nullopt;
  const auto p = prepare(qparams, x.dtype(), x.dtype(), x.shape());
  if (!p) return std::nullopt;
  const FloatKind grad_kind = *kind_of(grad_output.dtype());
  return map_chunks(grad_output.dtype(), x.shape(),
                    [&](std::int64_t begin, std::int64_t end, void* out) {
                      minifloat_ste_backward_range(p->ops, p->map, p->params(), x.data(),
                                                   grad_output.data(), grad_kind, out, begin, end);
                    });
}

std::optional<QuantizedTensor> minifloat_quantize(TensorView x, const QParams& qparams) {
  if (!x.is_contiguous()) return std::nullopt;
  const auto p = prepare(qparams, x.dtype(), x.dtype(), x.shape());
  if (!p) return std::nullopt;
  Tensor packed =
      pack_chunks(x.numel(), qparams.spec.dtype.bits(),
                  [&](std::int64_t begin, std::int64_t end, std::int8_t* codes) {
                    minifloat_quantize_range(p->ops, p->map, p->params(), x.data(),
                                             reinterpret_cast<std::uint8_t*>(codes), begin, end);
                  });
  return QuantizedTensor::from_packed(x.shape(), std::move(packed), qparams);
}

bool minifloat_dequantize_into(const QuantizedTensor& q, ScalarType output_dtype, void* out) {
  const auto& qparams = q.qparams();
  const auto p = prepare(qparams, qparams.compute_dtype, output_dtype, q.shape());
  if (!p) return false;
  unpack_chunks_into(
      q, out, false, [&](std::int64_t begin, std::int64_t end, const std::int8_t* codes, void* y) {
        minifloat_dequantize_range(p->ops, p->map, p->params(),
                                   reinterpret_cast<const std::uint8_t*>(codes), y, begin, end);
      });
  return true;
}

}  // namespace quantkit::cpu

namespace quantkit::cpu {

WeightDecoders minifloat_weight_decoders(const QParams& qparams, const Shape& shape,
                                         ScalarType output) {
  auto p = prepare(qparams, qparams.compute_dtype, output, shape);
  if (!p || !rows_start_blocks(p->map, shape)) return {};
  // MX rounds the scale to the output first: exact except in float16.
  const bool fp4 = qparams.spec.dtype.minifloat().kind == MinifloatKind::e2m1 &&
                   shape[1] % 2 == 0 && !(p->ops.scale_in_output && output == ScalarType::float16);
  auto shared = std::make_shared<const Prepared>(std::move(*p));
  WeightDecoders out;
  out.range = [shared](const std::int8_t* codes, std::int64_t begin, std::int64_t end, void* y) {
    const std::int64_t b0 = first_block_of(shared->map, begin);
    const BlockParams all = shared->params();
    const BlockParams from{all.reciprocal + b0, all.scale + b0, all.zero_point + b0};
    minifloat_dequantize_range(shared->ops, map_from(shared->map, b0), from,
                               reinterpret_cast<const std::uint8_t*>(codes), y, 0, end - begin);
  };
  if (const auto blocks = row_blocks(shared->map, shape[1], 16); fp4 && blocks) {
    const float* scale = shared->plan.scale.data();  // zero_point unused for FP4
    out.packed = PackedIntPlan{shared, scale, scale, blocks->group, blocks->blocks_per_row};
  }
  return out;
}

}  // namespace quantkit::cpu
