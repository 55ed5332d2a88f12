// linear() and LinearWeight: argument checks, then the threaded SIMD path
// (cpu/linear_path.cpp), whose results reference/linear.cpp defines.
#include "quantkit/linear.hpp"

#include <cstring>
#include <string>
#include <vector>

#include "core/internal/float_io.hpp"
#include "cpu/int_linear_path.hpp"
#include "cpu/linear_path.hpp"
#include "cpu/weight_rows.hpp"
#include "quantkit/error.hpp"
#include "quantkit/ops.hpp"
#include "quantkit/packing.hpp"
#include "reference/element_ops.hpp"

namespace quantkit {
namespace {

void check_weight_shape(const Shape& shape, const char* what) {
  QK_CHECK(shape.size() == 2, what, " of shape ", to_string(shape),
           " must be 2-D [out_features, in_features]");
}

// Contiguous storage of `t`: the view itself, or a copy kept in `holder`.
TensorView contiguous(TensorView t, Tensor& holder) {
  if (t.is_contiguous()) return t;
  holder = t.contiguous();
  return holder.view();
}

void check_x(TensorView x, const cpu::WeightRows& w) {
  internal::check_float_input(x.dtype(), "x");
  const Shape& shape = w.shape();
  QK_CHECK(x.dim() >= 1 && x.shape().back() == shape[1], "x of shape ", to_string(x.shape()),
           " must end in in_features = ", shape[1], " (the weight is ", to_string(shape), ")");
  QK_CHECK(x.dtype() == w.dtype(), "x is ", name(x.dtype()), " but the weight computes in ",
           name(w.dtype()), "; linear() takes both in one dtype");
}

void check_bias(const TensorView& bias, TensorView x, const Shape& shape) {
  QK_CHECK(bias.dim() == 1 && bias.shape()[0] == shape[0], "bias of shape ",
           to_string(bias.shape()), " must be [out_features] = [", shape[0], "]");
  QK_CHECK(bias.dtype() == x.dtype(), "bias is ", name(bias.dtype()), " but x is ", name(x.dtype()),
           "; linear() takes both in one dtype");
}

Tensor run(TensorView x, const cpu::WeightRows& w, const TensorView* bias) {
  check_x(x, w);
  const Shape& shape = w.shape();
  Tensor x_holder, bias_holder;
  const TensorView xc = contiguous(x, x_holder);
  if (bias == nullptr) return cpu::linear(xc, w, nullptr);
  check_bias(*bias, x, shape);
  const TensorView bc = contiguous(*bias, bias_holder);
  return cpu::linear(xc, w, &bc);
}

}  // namespace

LinearWeight::LinearWeight(TensorView packed, Shape shape, const QParams& qparams, ScalarType dtype)
    : shape_(std::move(shape)), dtype_(dtype) {
  check_weight_shape(shape_, "weight");
  internal::check_float_input(dtype, "dtype");
  QK_CHECK(packed.dtype() == ScalarType::uint8 && packed.dim() == 1 && packed.is_contiguous(),
           "packed codes must be a contiguous 1-D uint8 tensor, got ", name(packed.dtype()),
           " of shape ", to_string(packed.shape()));
  const std::int64_t expected = packed_size(numel(shape_), qparams.spec.dtype.bits());
  QK_CHECK(packed.numel() == expected, "packed codes hold ", packed.numel(), " bytes; a ",
           to_string(shape_), " weight of ", qparams.spec.dtype.bits(), "-bit codes needs ",
           expected);
  reference::make_layout(qparams, shape_);  // throws for qparams that do not fit the shape
  rows_ = cpu::quantized_rows(packed, shape_, qparams, dtype);
}

LinearWeight::LinearWeight(const QuantizedTensor& q, ScalarType dtype)
    : LinearWeight(TensorView(q.packed().data(), ScalarType::uint8,
                              {static_cast<std::int64_t>(q.packed().size())}),
                   q.shape(), q.qparams(), dtype) {}

void LinearWeight::decode_rows(std::int64_t first, std::int64_t count, void* out) const {
  QK_CHECK(first >= 0 && count >= 0 && first + count <= shape_[0], "rows [", first, ", ",
           first + count, ") are outside the weight's ", shape_[0], " rows");
  const std::size_t row_bytes = static_cast<std::size_t>(shape_[1]) * element_size(dtype_);
  std::vector<unsigned char> scratch(rows_->scratch_bytes(1));
  for (std::int64_t r = 0; r < count; ++r) {
    const void* row = rows_->rows(first + r, 1, scratch.data());
    std::memcpy(static_cast<unsigned char*>(out) + r * row_bytes, row, row_bytes);
  }
}

Tensor LinearWeight::gather_rows(TensorView indices) const {
  QK_CHECK(indices.dtype() == ScalarType::int64 || indices.dtype() == ScalarType::int32,
           "indices must be int32 or int64, got ", name(indices.dtype()));
  Shape shape = indices.shape();
  shape.push_back(shape_[1]);
  Tensor out = Tensor::uninitialized(dtype_, shape);
  const std::size_t row_bytes = static_cast<std::size_t>(shape_[1]) * element_size(dtype_);
  auto* bytes = static_cast<unsigned char*>(out.raw_data());
  const std::int64_t n = indices.numel();
  std::vector<std::int64_t> rows(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) {
    const auto row = static_cast<std::int64_t>(indices.get(i));
    QK_CHECK(row >= 0 && row < shape_[0], "index ", row, " at position ", i, " is outside [0, ",
             shape_[0], ") rows of the table");
    rows[i] = row;
  }
#pragma omp parallel if (n * shape_[1] > (std::int64_t{1} << 16))
  {
    std::vector<unsigned char> scratch(rows_->scratch_bytes(1));
#pragma omp for schedule(static)
    for (std::int64_t i = 0; i < n; ++i) {
      std::memcpy(bytes + i * row_bytes, rows_->rows(rows[i], 1, scratch.data()), row_bytes);
    }
  }
  return out;
}

Tensor linear(TensorView x, TensorView weight, std::optional<TensorView> bias) {
  check_weight_shape(weight.shape(), "weight");
  internal::check_float_input(weight.dtype(), "weight");
  Tensor holder;
  const auto rows = cpu::dense_rows(contiguous(weight, holder));
  return run(x, *rows, bias ? &*bias : nullptr);
}

Tensor linear(TensorView x, const LinearWeight& weight, std::optional<TensorView> bias) {
  return run(x, weight.rows(), bias ? &*bias : nullptr);
}

namespace {

void check_integer_activation(const QuantSpec& activation) {
  activation.validate();
  QK_CHECK(!activation.dtype.is_floating() && activation.dtype.bits() <= 8 &&
               activation.mapping != Mapping::stretched &&
               activation.resolved_zero_point_domain() != ZeroPointDomain::float_,
           "activation ", activation.describe(),
           " must be an integer format of at most 8 bits with an integer or no zero point");
}

// The integer path for x's rows [m, k] quantized with the qparams `choose`
// gives for them (one block per row, or one for the whole tensor).
template <typename Choose>
Tensor integer_product(TensorView x, const LinearWeight& weight, std::optional<TensorView> bias,
                       const Choose& choose) {
  const cpu::WeightRows& w = weight.rows();
  check_x(x, w);
  const std::int64_t n = w.shape()[0], k = w.shape()[1];
  const cpu::PackedIntRows* blocks = w.int_blocks();
  QK_CHECK(blocks != nullptr,
           "the weight has no integer path: linear_int needs integer codes with an "
           "integer or no zero point in blocks along rows (not floating or stretched formats)");
  // |(qx - zx)(qw - zw)| <= 255^2, so a block of up to 33025 columns sums within int32.
  QK_CHECK(blocks->group <= 33025, "weight blocks of ", blocks->group,
           " columns are too long for exact int32 sums (at most 33025)");
  std::int64_t m = 1;
  for (std::int64_t d = 0; d + 1 < x.dim(); ++d) m *= x.shape()[d];
  Shape shape = x.shape();
  shape.back() = n;
  std::vector<float> bias_values;
  if (bias) {
    check_bias(*bias, x, w.shape());
    bias_values = internal::load_floats(*bias);
  }
  if (m == 0 || n == 0) return Tensor::uninitialized(x.dtype(), shape);
  const Tensor rows = x.contiguous().reshape({m, k});
  const QParams qparams = choose(rows);
  const std::vector<std::int32_t> codes = quantize(rows, qparams).code_values();
  std::vector<float> row_scale = internal::load_floats(qparams.scale);
  std::vector<float> zero_point = qparams.has_zero_point()
                                      ? internal::load_floats(qparams.zero_point)
                                      : std::vector<float>(row_scale.size());
  if (row_scale.size() == 1) {  // one block: every row has the tensor's qparams
    row_scale.assign(static_cast<std::size_t>(m), row_scale[0]);
    zero_point.assign(static_cast<std::size_t>(m), zero_point[0]);
  }
  std::vector<std::int16_t> centered(codes.size());
  for (std::int64_t r = 0; r < m; ++r) {
    const auto z = static_cast<std::int32_t>(zero_point[r]);
    for (std::int64_t c = r * k; c < (r + 1) * k; ++c) {
      centered[c] = static_cast<std::int16_t>(codes[c] - z);
    }
  }
  return cpu::linear_int(centered.data(), row_scale.data(), m, w, bias_values, x.dtype(), shape);
}

}  // namespace

Tensor linear_int(TensorView x, const QuantSpec& activation, const LinearWeight& weight,
                  std::optional<TensorView> bias) {
  check_integer_activation(activation);
  return integer_product(x, weight, bias, [&](const Tensor& rows) {
    QK_CHECK(activation.granularity.block_size(rows.shape()) == (Shape{1, rows.shape()[1]}),
             "activation ", activation.describe(), " must have one block per row (per-token)");
    return choose_qparams(rows, activation);
  });
}

Tensor linear_int(TensorView x, const QParams& activation, const LinearWeight& weight,
                  std::optional<TensorView> bias) {
  check_integer_activation(activation.spec);
  QK_CHECK(activation.scale.numel() == 1 &&
               activation.spec.granularity.kind() == Granularity::Kind::per_tensor,
           "activation qparams of ", activation.spec.describe(),
           " must be per-tensor (one scale for every row of x)");
  return integer_product(x, weight, bias, [&](const Tensor&) { return activation; });
}

}  // namespace quantkit
