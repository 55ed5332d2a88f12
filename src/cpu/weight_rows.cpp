#include "cpu/weight_rows.hpp"

#include <cstring>
#include <optional>
#include <vector>

#include "core/internal/float_io.hpp"
#include "cpu/fast_path.hpp"
#include "quantkit/packing.hpp"
#include "reference/element_ops.hpp"

namespace quantkit::cpu {

std::size_t WeightRows::scratch_bytes(std::int64_t count) const {
  // Decoded values, then one code byte per element and 8 codes of alignment.
  return static_cast<std::size_t>(count * shape_[1]) * (element_size(dtype_) + 1) + 8;
}

namespace {

class DenseRows final : public WeightRows {
 public:
  explicit DenseRows(TensorView weight) : WeightRows(weight.shape(), weight.dtype()), w_(weight) {}
  const void* rows(std::int64_t first, std::int64_t /*count*/, void* /*scratch*/) const override {
    return static_cast<const unsigned char*>(w_.data()) +
           static_cast<std::size_t>(first * shape()[1]) * element_size(dtype());
  }

 private:
  TensorView w_;
};

// Codes of `count` rows from `first` on, unpacked into `codes`: the stream is
// unpacked from the code before them that starts a byte (8 codes of any width
// fill whole bytes); returns where row `first` begins.
const std::int8_t* unpack_rows(const std::uint8_t* packed, const QuantDType& format,
                               std::int64_t begin, std::int64_t count, std::int8_t* codes) {
  const std::int64_t aligned = begin - begin % 8;
  unpack_codes_into(packed, aligned, begin - aligned + count, format.bits(),
                    format.is_signed() && !format.is_floating(), codes);
  return codes + (begin - aligned);
}

class QuantizedRows final : public WeightRows {
 public:
  QuantizedRows(TensorView packed, const Shape& shape, const QParams& qparams, ScalarType dtype)
      : QuantizedRows(packed, shape, qparams, dtype, weight_decoders(qparams, shape, dtype)) {}

 private:
  QuantizedRows(TensorView packed, const Shape& shape, const QParams& qparams, ScalarType dtype,
                WeightDecoders decoders)
      : WeightRows(shape, dtype),
        packed_(static_cast<const std::uint8_t*>(packed.data())),
        format_(qparams.spec.dtype),
        decode_(std::move(decoders.range)),
        packed_plan_(std::move(decoders.packed)),
        int_plan_(std::move(decoders.integer)) {
    const auto rows_of = [&](const PackedIntPlan& plan, std::int64_t row_bytes, bool fp4) {
      return PackedIntRows{packed_,    row_bytes,       format_.bits(), format_.is_signed(), fp4,
                           plan.scale, plan.zero_point, plan.group,     plan.blocks_per_row};
    };
    // centered_rows unpacks its rows (they may start mid-byte): no row length needed
    if (int_plan_) int_blocks_ = rows_of(*int_plan_, 0, false);
    if (packed_plan_) {
      packed_int_ = rows_of(*packed_plan_, shape[1] * format_.bits() / 8, format_.is_floating());
    }
    if (!decode_) {  // the reference formulas, element by element
      plan_ = reference::make_plan(qparams, qparams.compute_dtype, shape);
      layout_.emplace(reference::make_layout(qparams, shape));
    }
  }

 public:
  const void* rows(std::int64_t first, std::int64_t count, void* scratch) const override {
    const std::int64_t k = shape()[1], begin = first * k, n = count * k;
    auto* out = static_cast<unsigned char*>(scratch);
    auto* codes =
        reinterpret_cast<std::int8_t*>(out + static_cast<std::size_t>(n) * element_size(dtype()));
    const std::int8_t* row_codes = unpack_rows(packed_, format_, begin, n, codes);
    if (decode_) {
      (*decode_)(row_codes, begin, begin + n, out);
    } else {
      decode_with_reference(row_codes, first, count, out);
    }
    return out;
  }

  const PackedIntRows* packed_int() const override { return packed_plan_ ? &packed_int_ : nullptr; }

  const PackedIntRows* int_blocks() const override { return int_plan_ ? &int_blocks_ : nullptr; }

  void centered_rows(std::int64_t first, std::int64_t count, std::int16_t* out,
                     void* scratch) const override {
    const std::int64_t k = shape()[1];
    const std::int8_t* codes =
        unpack_rows(packed_, format_, first * k, count * k, static_cast<std::int8_t*>(scratch));
    const bool unsigned_codes = !format_.is_signed();
    const std::int64_t group = int_blocks_.group;
    for (std::int64_t r = 0; r < count; ++r) {
      const float* zero_point = int_blocks_.zero_point + (first + r) * int_blocks_.blocks_per_row;
      for (std::int64_t c0 = 0; c0 < k; c0 += group) {  // block by block: loops that vectorize
        const auto z = static_cast<std::int16_t>(zero_point[c0 / group]);
        const std::int8_t* in = codes + r * k + c0;
        std::int16_t* to = out + r * k + c0;
        const std::int64_t n = std::min(group, k - c0);
        if (unsigned_codes) {
          for (std::int64_t c = 0; c < n; ++c) {
            to[c] = static_cast<std::int16_t>(static_cast<std::uint8_t>(in[c]) - z);
          }
        } else {
          for (std::int64_t c = 0; c < n; ++c) to[c] = static_cast<std::int16_t>(in[c] - z);
        }
      }
    }
  }

 private:
  void decode_with_reference(const std::int8_t* codes, std::int64_t first, std::int64_t count,
                             unsigned char* out) const {
    const std::int64_t k = shape()[1];
    const Shape& block = layout_->block();
    const std::int64_t grid_columns = layout_->grid()[1];
    const bool unsigned_codes = format_.is_floating() || !format_.is_signed();
    for (std::int64_t r = 0; r < count; ++r) {
      for (std::int64_t c = 0; c < k; ++c) {
        const std::int64_t i = r * k + c;
        const std::int32_t code =
            unsigned_codes ? static_cast<std::int32_t>(static_cast<std::uint8_t>(codes[i]))
                           : codes[i];
        const std::int64_t b = ((first + r) / block[0]) * grid_columns + c / block[1];
        const float v = reference::dequantize_element(plan_, code, b, dtype());
        internal::store_floats_to(dtype(), &v, 1, out + i * element_size(dtype()));
      }
    }
  }

  const std::uint8_t* packed_;
  QuantDType format_;
  std::optional<RangeDecoder> decode_;
  std::optional<PackedIntPlan> packed_plan_;
  PackedIntRows packed_int_{};
  std::optional<PackedIntPlan> int_plan_;
  PackedIntRows int_blocks_{};
  reference::ElementPlan plan_;
  std::optional<internal::BlockLayout> layout_;
};

}  // namespace

std::unique_ptr<WeightRows> dense_rows(TensorView weight) {
  return std::make_unique<DenseRows>(weight);
}

std::unique_ptr<WeightRows> quantized_rows(TensorView packed, const Shape& shape,
                                           const QParams& qparams, ScalarType dtype) {
  return std::make_unique<QuantizedRows>(packed, shape, qparams, dtype);
}

}  // namespace quantkit::cpu
