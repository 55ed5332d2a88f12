// fake_quantize by convention: torchao numerics (the dispatcher) or
// PyTorch core's (torch_core.cpp).
#include "quantkit/enum_names.hpp"
#include "quantkit/error.hpp"
#include "quantkit/ops.hpp"
#include "quantkit/torch_core.hpp"

namespace quantkit {

namespace {
constexpr EnumNames<Convention, 2> kConventions{{
    {Convention::torchao, "torchao"},
    {Convention::torch_core, "torch_core"},
}};
}  // namespace

std::string_view name(Convention convention) {
  return name_in(kConventions, convention);
}

Convention convention_from_name(std::string_view text) {
  return value_in(kConventions, text, "convention");
}

Tensor fake_quantize(TensorView x, const QParams& qparams, Convention convention) {
  if (convention == Convention::torchao) return fake_quantize(x, qparams);
  const auto& spec = qparams.spec;
  const auto kind = spec.granularity.kind();
  QK_CHECK(!spec.dtype.is_floating() && spec.mapping != Mapping::stretched &&
               spec.resolved_zero_point_domain() == ZeroPointDomain::int_ &&
               (kind == Granularity::Kind::per_tensor || kind == Granularity::Kind::per_axis),
           "convention torch_core supports integer formats with an int zero point, per_tensor or "
           "per_axis; got ",
           spec.describe());
  QK_CHECK(qparams.scale.dtype() == ScalarType::float32,
           "convention torch_core needs a float32 "
           "scale, got ",
           name(qparams.scale.dtype()));
  const torch_core::Range range{static_cast<std::int64_t>(spec.dtype.quant_min()),
                                static_cast<std::int64_t>(spec.dtype.quant_max())};
  if (kind == Granularity::Kind::per_tensor) {
    QK_CHECK(qparams.scale.numel() == 1, "per_tensor qparams need one scale, got ",
             qparams.scale.numel());
    return torch_core::fake_quantize_per_tensor_affine(
        x, static_cast<float>(qparams.scale.get(0)),
        static_cast<std::int64_t>(qparams.zero_point.get(0)), range);
  }
  const Shape channels{qparams.scale.numel()};
  return torch_core::fake_quantize_per_channel_affine(
      x, qparams.scale.reshape(channels),
      qparams.zero_point.to(ScalarType::int32).reshape(channels), spec.granularity.axis(), range);
}

}  // namespace quantkit
