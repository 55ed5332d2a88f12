#include "quantkit/io/stored_weights.hpp"

#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <unordered_map>
#include <unordered_set>

#include "compressed_tensors.hpp"
#include "int32_packing.hpp"
#include "quantkit/packing.hpp"
#include "quantkit/scale_scheme.hpp"

namespace quantkit::io {
namespace {

// The largest dimension a stored `_shape` may name: far beyond any weight,
// small enough that no layout arithmetic on it can overflow.
constexpr std::int64_t kMaxDimension = std::int64_t{1} << 40;

// Every tensor the writer declares for this weight must be in the file with
// the declared dtype and shape; only then are its bytes read (the safetensors
// reader already proved that each tensor's bytes match its dtype and shape).
// Float scales are stored in the original weight's dtype, which the file
// itself names.
std::map<std::string, const TensorEntry*> checked_parts(const SafetensorsFile& file,
                                                        const StoredWeight& weight) {
  const TensorEntry* scale = file.header().find(weight.name + "_scale");
  const StDType weight_dtype =
      scale != nullptr && is_float_input(scale->dtype) ? scale->dtype : StDType::F32;
  std::map<std::string, const TensorEntry*> parts;
  for (const auto& declared : ct::declare_outputs(weight.name, *weight.scheme, weight.shape[0],
                                                  weight.shape[1], weight_dtype)) {
    const TensorEntry* entry = file.header().find(declared.name);
    if (entry == nullptr) {
      throw FileFormatError(detail::concat("quantized weight tensor '", declared.name,
                                           "' is missing (scheme ", weight.scheme->name, ")"));
    }
    if (entry->dtype != declared.dtype || entry->shape != declared.shape) {
      throw FileFormatError(detail::concat(
          "tensor '", declared.name, "' has dtype ", dtype_info(entry->dtype).name, " and shape ",
          to_string(entry->shape), "; scheme ", weight.scheme->name, " stores it as ",
          dtype_info(declared.dtype).name, " ", to_string(declared.shape)));
    }
    parts[declared.name] = entry;
  }
  return parts;
}

// Target strings of a config group: quantkit writes "re:^<escaped name>$",
// matched here as the literal name (no regex engine runs on file contents);
// anything else is not a target quantkit wrote.
std::string literal_target(const std::string& target) {
  if (!target.starts_with("re:^") || !target.ends_with("$") || target.size() < 5) {
    throw FileFormatError(detail::concat("config group target '", target.substr(0, 200),
                                         "' is not one quantkit writes (re:^<name>$)"));
  }
  static const std::string special = R"(\^$.|?*+()[]{})";
  std::string literal;
  for (std::size_t i = 4; i + 1 < target.size(); ++i) {
    char c = target[i];
    if (c == '\\' && i + 2 < target.size()) {
      c = target[++i];
    } else if (special.find(c) != std::string::npos) {
      throw FileFormatError(detail::concat("config group target '", target.substr(0, 200),
                                           "' is a pattern, not a name quantkit writes"));
    }
    literal += c;
  }
  return literal;
}

// Offset codes of a pack-quantized weight back to our two's-complement stream.
Tensor unpack_words(std::span<const std::uint8_t> words, std::int64_t rows, std::int64_t columns,
                    int bits) {
  const std::int64_t row_bytes = 4 * ct::packed_words(columns, bits);
  QK_CHECK(static_cast<std::int64_t>(words.size()) == rows * row_bytes, "packed weight holds ",
           words.size(), " bytes, expected ", rows * row_bytes);
  std::vector<std::int8_t> codes(static_cast<std::size_t>(rows * columns));
  for (std::int64_t r = 0; r < rows; ++r) {
    ct::unpack_row(
        words.subspan(static_cast<std::size_t>(r * row_bytes), static_cast<std::size_t>(row_bytes)),
        columns, bits, codes.data() + r * columns);
  }
  Tensor packed = Tensor::uninitialized(ScalarType::uint8, {packed_size(rows * columns, bits)});
  pack_codes_into(codes.data(), rows * columns, bits, packed.data<std::uint8_t>());
  return packed;
}

// int-quantized codes narrower than 8 bits, one per int8, into quantkit's
// packed stream; a code outside the spec's range is a broken file.
Tensor pack_int8_codes(std::span<const std::uint8_t> bytes, std::int64_t count, int bits,
                       const std::string& name, const QuantSpec& spec) {
  QK_CHECK(static_cast<std::int64_t>(bytes.size()) == count, "tensor '", name, "' holds ",
           bytes.size(), " bytes, expected ", count);
  std::vector<std::int8_t> codes(static_cast<std::size_t>(count));
  for (std::int64_t i = 0; i < count; ++i) {
    codes[i] = static_cast<std::int8_t>(bytes[i]);
    if (codes[i] < spec.dtype.quant_min() || codes[i] > spec.dtype.quant_max()) {
      throw FileFormatError(detail::concat("tensor '", name, "' holds code ", int{codes[i]},
                                           " at flat index ", i, ", outside the int", bits,
                                           " range"));
    }
  }
  Tensor packed = Tensor::uninitialized(ScalarType::uint8, {packed_size(count, bits)});
  pack_codes_into(codes.data(), count, bits, packed.data<std::uint8_t>());
  return packed;
}

Tensor float_tensor(const std::vector<float>& values, const Shape& shape) {
  Tensor out = Tensor::uninitialized(ScalarType::float32, shape);
  std::memcpy(out.raw_data(), values.data(), values.size() * sizeof(float));
  return out;
}

Tensor load_scale(const SafetensorsFile& file, const TensorEntry& entry, const Scheme& scheme,
                  const Shape& grid) {
  const auto bytes = file.bytes(entry);
  const std::int64_t count = numel(grid);
  QK_CHECK(numel(entry.shape) == count, "tensor '", entry.name, "' has shape ",
           to_string(entry.shape), ", expected ", count, " scales");
  std::vector<float> values(static_cast<std::size_t>(count));
  const auto decode_byte =
      scheme.spec.dtype.is_floating() ? scale_scheme_of(scheme.spec).decode_byte : nullptr;
  if (decode_byte) {
    for (std::int64_t i = 0; i < count; ++i) values[i] = decode_byte(bytes[i]);
    return float_tensor(values, grid);
  }
  const ScalarType dtype = *to_scalar_type(entry.dtype);
  Tensor out = Tensor::uninitialized(dtype, grid);
  std::memcpy(out.raw_data(), bytes.data(), bytes.size());
  return out;
}

Tensor unpack_zero_points(std::span<const std::uint8_t> words, std::int64_t rows,
                          std::int64_t groups, int bits) {
  const std::int64_t word_rows = ct::packed_words(rows, bits);
  QK_CHECK(static_cast<std::int64_t>(words.size()) == word_rows * groups * 4,
           "zero-point tensor holds ", words.size(), " bytes, expected ", word_rows * groups * 4);
  Tensor out = Tensor::uninitialized(ScalarType::int32, {rows, groups});
  std::vector<std::uint8_t> column(static_cast<std::size_t>(word_rows * 4));
  std::vector<std::int8_t> codes(static_cast<std::size_t>(rows));
  for (std::int64_t g = 0; g < groups; ++g) {
    for (std::int64_t w = 0; w < word_rows; ++w) {
      std::memcpy(column.data() + w * 4, words.data() + (w * groups + g) * 4, 4);
    }
    ct::unpack_row(column, rows, bits, codes.data());
    for (std::int64_t r = 0; r < rows; ++r) out.data<std::int32_t>()[r * groups + g] = codes[r];
  }
  return out;
}

// compressed-tensors stores the divisor 1 / g. quantkit multiplies by g, the
// same values only when 1 / g is a power of two (as quantkit writes it).
Tensor global_scale_of_divisor(const std::string& name, float divisor, const QuantSpec& spec) {
  if (!spec.global_scale) {
    if (divisor != 1.0f) {
      throw FileFormatError(detail::concat("tensor '", name, "' holds global scale ", divisor,
                                           " but the spec is single-level (global scale 1)"));
    }
    return {};
  }
  if (!ct::has_exact_reciprocal(divisor)) {
    throw FileFormatError(detail::concat(
        "tensor '", name, "' holds global scale ", divisor,
        ", not a power of two: quantkit decodes two-level NVFP4 with the multiplier 1 / ", divisor,
        ", which is exact only for powers of two"));
  }
  return Tensor::full({}, 1.0f / divisor);
}

}  // namespace

// The weight a stored tensor belongs to: its name without the layout's part
// suffix ("_packed", "_scale", "_zero_point", "_global_scale", "_shape").
std::string weight_of_part(const std::string& name) {
  for (std::string_view suffix : {"_packed", "_scale", "_zero_point", "_global_scale", "_shape"}) {
    if (name.ends_with(suffix)) return name.substr(0, name.size() - suffix.size());
  }
  return name;
}

// The original [rows, columns] of a weight: its `_shape` tensor where the
// layout has one, else the code tensor's shape (FP4 holds two codes a byte).
Shape stored_shape(const SafetensorsFile& file, const Scheme& scheme,
                   const std::string& weight_name, const TensorEntry& codes) {
  if (!ct::stores_shape(scheme)) {
    if (codes.shape.size() != 2) {
      throw FileFormatError(detail::concat("tensor '", codes.name, "' has shape ",
                                           to_string(codes.shape), "; scheme ", scheme.name,
                                           " stores 2-D weights"));
    }
    const std::int64_t per_byte =
        scheme.format == CheckpointFormat::int_quantized ? 1 : 8 / scheme.spec.dtype.bits();
    return {codes.shape[0], codes.shape[1] * per_byte};
  }
  const TensorEntry* entry = file.header().find(weight_name + "_shape");
  if (entry == nullptr) {
    throw FileFormatError(detail::concat("quantized weight tensor '", weight_name,
                                         "_shape' is missing (scheme ", scheme.name, ")"));
  }
  if (entry->dtype != StDType::I64 || entry->shape != Shape{2}) {
    throw FileFormatError(detail::concat("tensor '", entry->name, "' has dtype ",
                                         dtype_info(entry->dtype).name, " and shape ",
                                         to_string(entry->shape), "; it must be I64 [2]"));
  }
  std::int64_t shape[2];
  std::memcpy(shape, file.bytes(*entry).data(), sizeof(shape));
  for (std::int64_t dim : shape) {
    if (dim < 0 || dim > kMaxDimension) {
      throw FileFormatError(
          detail::concat("tensor '", entry->name, "' holds dimension ", dim, ", outside 0..2^40"));
    }
  }
  return {shape[0], shape[1]};
}

std::vector<StoredWeight> stored_weights(const SafetensorsFile& file) {
  const auto found = file.header().metadata.find("quantization_config");
  if (found == file.header().metadata.end()) return {};
  nlohmann::json config;
  try {
    config = nlohmann::json::parse(found->second);
  } catch (const nlohmann::json::exception& error) {
    throw FileFormatError(detail::concat("quantization_config is not valid JSON: ", error.what()));
  }
  if (!config.is_object() || !config.contains("quantkit")) return {};
  struct ModuleQuantization {
    const Scheme* scheme;
    std::optional<QuantSpec> input_spec;
    bool static_inputs;
  };
  std::unordered_map<std::string, ModuleQuantization> scheme_of_module;
  try {
    for (const auto& [group, extension] : config.at("quantkit").items()) {
      const auto& group_config = config.at("config_groups").at(group);
      std::optional<QuantSpec> input_spec;
      bool static_inputs = false;
      if (extension.contains("input_spec_text")) {
        input_spec = QuantSpec::from_text(extension.at("input_spec_text").get<std::string>());
        static_inputs = !group_config.at("input_activations").at("dynamic").get<bool>();
      }
      // The lossless spec where written (every scheme, Python's included);
      // files from before it name a table scheme.
      const bool int_quantized =
          config.at("config_groups").at(group).value("format", "") == "int-quantized";
      const Scheme* scheme =
          extension.contains("spec_text")
              ? &scheme_for_spec(QuantSpec::from_text(extension.at("spec_text").get<std::string>()),
                                 int_quantized)
              : &find_scheme(extension.at("scheme").get<std::string>());
      for (const auto& target : group_config.at("targets")) {
        scheme_of_module.emplace(literal_target(target.get<std::string>()),
                                 ModuleQuantization{scheme, input_spec, static_inputs});
      }
    }
  } catch (const FileFormatError&) {
    throw;
  } catch (const std::exception& error) {
    throw FileFormatError(
        detail::concat("quantization_config is not one quantkit wrote: ", error.what()));
  }
  // A weight is in this file when any of its parts is (a sharded checkpoint's
  // config targets the weights of every shard); then all of them must be.
  std::vector<std::pair<std::string, const ModuleQuantization*>> present;
  std::unordered_set<std::string> seen;
  for (const auto& entry : file.header().tensors) {
    const std::string weight_name = weight_of_part(entry.name);
    const std::string module = weight_name.ends_with(".weight")
                                   ? weight_name.substr(0, weight_name.size() - 7)
                                   : weight_name;
    const auto targeted = scheme_of_module.find(module);
    if (targeted == scheme_of_module.end() || !seen.insert(weight_name).second) continue;
    present.emplace_back(weight_name, &targeted->second);
  }
  std::vector<StoredWeight> weights;
  for (const auto& [weight_name, module] : present) {
    const Scheme* scheme = module->scheme;
    const std::string code_name = ct::code_tensor_name(*scheme, weight_name);
    const TensorEntry* codes = file.header().find(code_name);
    if (codes == nullptr) {
      throw FileFormatError(detail::concat("quantized weight tensor '", code_name,
                                           "' is missing (scheme ", scheme->name, ")"));
    }
    StoredWeight weight;
    weight.name = weight_name;
    weight.scheme = scheme;
    weight.shape = stored_shape(file, *scheme, weight_name, *codes);
    weight.input_spec = module->input_spec;
    weight.static_inputs = module->static_inputs;
    checked_parts(file, weight);  // every part present, with the layout's dtype and shape
    weights.push_back(std::move(weight));
  }
  return weights;
}

QuantizedTensor load_quantized(const SafetensorsFile& file, const StoredWeight& weight,
                               ScalarType compute_dtype) {
  const Scheme& scheme = *weight.scheme;
  const std::int64_t rows = weight.shape[0];
  const std::int64_t columns = weight.shape[1];
  const Shape grid =
      block_grid_shape(weight.shape, scheme.spec.granularity.block_size(weight.shape));
  const int bits = scheme.spec.dtype.bits();
  const bool packed_ints = scheme.format == CheckpointFormat::pack_quantized;
  const auto parts = checked_parts(file, weight);
  const std::string code_name = ct::code_tensor_name(scheme, weight.name);
  const TensorEntry& codes = *parts.at(code_name);
  Tensor packed;
  const bool int8_storage = scheme.format == CheckpointFormat::int_quantized && bits < 8;
  if (packed_ints) {
    packed = unpack_words(file.bytes(codes), rows, columns, bits);
  } else if (int8_storage) {
    packed = pack_int8_codes(file.bytes(codes), rows * columns, bits, code_name, scheme.spec);
  } else {
    const auto bytes = file.bytes(codes);
    QK_CHECK(static_cast<std::int64_t>(bytes.size()) == packed_size(rows * columns, bits),
             "tensor '", code_name, "' holds ", bytes.size(), " bytes, expected ",
             packed_size(rows * columns, bits));
    packed = Tensor::uninitialized(ScalarType::uint8, {static_cast<std::int64_t>(bytes.size())});
    std::memcpy(packed.raw_data(), bytes.data(), bytes.size());
  }
  const TensorEntry* scale_entry = parts.at(weight.name + "_scale");
  Tensor scale = load_scale(file, *scale_entry, scheme, grid);
  Tensor zero_point;
  if (scheme.spec.mapping == Mapping::asymmetric &&
      scheme.format == CheckpointFormat::int_quantized) {
    const auto bytes = file.bytes(*parts.at(weight.name + "_zero_point"));
    zero_point = Tensor::uninitialized(ScalarType::int32, grid);
    for (std::int64_t i = 0; i < zero_point.numel(); ++i) {
      zero_point.data<std::int32_t>()[i] = static_cast<std::int8_t>(bytes[i]);
    }
  } else if (scheme.spec.mapping == Mapping::asymmetric) {
    const TensorEntry& zp = *parts.at(weight.name + "_zero_point");
    zero_point = unpack_zero_points(file.bytes(zp), rows,
                                    numel(grid) / std::max<std::int64_t>(rows, 1), bits)
                     .reshape(grid);
  } else if (scheme.spec.mapping == Mapping::stretched) {
    zero_point = Tensor::full(grid, -0.5, scale.dtype());
  } else if (!scheme.spec.dtype.is_floating()) {
    zero_point = Tensor(ScalarType::int32, grid);  // symmetric: zero point 0
  }
  Tensor global_scale;
  if (scheme.format == CheckpointFormat::nvfp4_pack_quantized) {
    const TensorEntry& entry = *parts.at(weight.name + "_global_scale");
    float divisor = 0;
    std::memcpy(&divisor, file.bytes(entry).data(), sizeof(divisor));
    global_scale = global_scale_of_divisor(entry.name, divisor, scheme.spec);
  }
  return QuantizedTensor::from_packed(
      weight.shape, std::move(packed),
      QParams::make(scheme.spec, std::move(scale), std::move(zero_point), compute_dtype,
                    std::move(global_scale)));
}

}  // namespace quantkit::io
