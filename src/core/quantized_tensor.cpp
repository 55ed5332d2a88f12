#include "quantkit/quantized_tensor.hpp"

#include <algorithm>

#include "quantkit/error.hpp"
#include "quantkit/packing.hpp"

namespace quantkit {
namespace {

// Integer codes are checked against the full format range (user-built
// tensors may use it); floating codes are bit patterns of `bits` bits.
void check_codes(const std::vector<std::int32_t>& codes, const QuantDType& dtype) {
  const double low = dtype.is_floating() ? 0 : dtype.type_min();
  const double high = dtype.is_floating() ? (1 << dtype.bits()) - 1 : dtype.type_max();
  for (std::size_t i = 0; i < codes.size(); ++i) {
    QK_CHECK(codes[i] >= low && codes[i] <= high, "code ", codes[i], " at flat index ", i,
             " is outside the ", dtype.name(), " code range [", low, ", ", high, "]");
  }
}

}  // namespace

namespace {
Tensor byte_tensor(const std::vector<std::uint8_t>& bytes) {
  Tensor out = Tensor::uninitialized(ScalarType::uint8, {static_cast<std::int64_t>(bytes.size())});
  std::copy(bytes.begin(), bytes.end(), out.data<std::uint8_t>());
  return out;
}
}  // namespace

QuantizedTensor::QuantizedTensor(PackedTag, Shape shape, Tensor packed, QParams qparams)
    : shape_(std::move(shape)), packed_(std::move(packed)), qparams_(std::move(qparams)) {}

QuantizedTensor::QuantizedTensor(Shape shape, const std::vector<std::int32_t>& codes,
                                 QParams qparams)
    : shape_(std::move(shape)), qparams_(std::move(qparams)) {
  QK_CHECK(static_cast<std::int64_t>(codes.size()) == numel(), codes.size(),
           " codes do not fill shape ", to_string(shape_));
  check_codes(codes, dtype());
  packed_ = byte_tensor(pack_codes(codes, dtype().bits()));
}

QuantizedTensor QuantizedTensor::from_packed(Shape shape, std::vector<std::uint8_t> packed,
                                             QParams qparams) {
  return from_packed(std::move(shape), byte_tensor(packed), std::move(qparams));
}

QuantizedTensor QuantizedTensor::from_packed(Shape shape, Tensor packed, QParams qparams) {
  const int bits = qparams.spec.dtype.bits();
  const std::int64_t n = quantkit::numel(shape);
  QK_CHECK(packed.dtype() == ScalarType::uint8 && packed.dim() == 1,
           "packed bytes must be a 1-D "
           "uint8 tensor, got ",
           name(packed.dtype()), " ", to_string(packed.shape()));
  QK_CHECK(packed.numel() == packed_size(n, bits), "packed buffer holds ", packed.numel(),
           " bytes but shape ", to_string(shape), " of ", bits, "-bit codes needs ",
           packed_size(n, bits));
  return QuantizedTensor(PackedTag{}, std::move(shape), std::move(packed), std::move(qparams));
}

std::vector<std::int32_t> QuantizedTensor::code_values() const {
  const auto& d = dtype();
  return unpack_codes(packed(), numel(), d.bits(), d.is_signed() && !d.is_floating());
}

Tensor QuantizedTensor::codes() const {
  const bool signed_codes = dtype().is_signed() && !dtype().is_floating();
  // Straight from the packed stream into the result: one byte per code.
  Tensor out = Tensor::uninitialized(signed_codes ? ScalarType::int8 : ScalarType::uint8, shape_);
  unpack_codes_into(packed().data(), 0, numel(), dtype().bits(), signed_codes,
                    static_cast<std::int8_t*>(out.raw_data()));
  return out;
}

}  // namespace quantkit
