#include "compressed_tensors.hpp"

#include "int32_packing.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>

#include "quantkit/packing.hpp"
#include "quantkit/scale_scheme.hpp"

namespace quantkit::io::ct {
namespace {

std::int64_t columns_per_scale(const Scheme& scheme, std::int64_t columns) {
  const auto& granularity = scheme.spec.granularity;
  return granularity.kind() == Granularity::Kind::per_group ? granularity.group_size() : columns;
}

// Flipping the top bit of each b-bit field turns two's-complement codes into
// the offset (code + 2^(b-1)) codes compressed-tensors stores.
std::uint8_t offset_mask(int bits) {
  std::uint8_t mask = 0;
  for (int field = 0; field < 8; field += bits)
    mask |= static_cast<std::uint8_t>(1u << (field + bits - 1));
  return mask;
}

void append_pack_quantized(const QuantizedTensor& block, std::int64_t columns, int bits,
                           std::vector<std::uint8_t>& out) {
  const std::int64_t rows = columns == 0 ? 0 : block.numel() / columns;
  const std::uint8_t mask = offset_mask(bits);
  const auto packed = block.packed();
  const std::size_t start = out.size();
  if (8 % bits == 0 && (columns * bits) % 32 == 0) {  // rows fill whole words: the streams agree
    out.resize(start + packed.size());
    for (std::size_t i = 0; i < packed.size(); ++i) out[start + i] = packed[i] ^ mask;
    return;
  }
  // Fields that straddle bytes (3, 5, 6, 7 bits) or rows that end inside a
  // word: each row is packed on its own.
  const std::int64_t row_bytes = 4 * packed_words(columns, bits);
  out.resize(start + static_cast<std::size_t>(rows * row_bytes));
  std::vector<std::int8_t> row(static_cast<std::size_t>(columns));
  for (std::int64_t r = 0; r < rows; ++r) {
    unpack_codes_into(packed.data(), r * columns, columns, bits, true, row.data());
    pack_row(row.data(), columns, bits, out.data() + start + r * row_bytes);
  }
}

// torch's name of a byte-stored scale's safetensors dtype, as compressed-tensors
// writes scale_dtype.
std::string torch_dtype_name(std::string_view safetensors_dtype) {
  if (safetensors_dtype == "U8") return "torch.uint8";
  if (safetensors_dtype == "F8_E4M3") return "torch.float8_e4m3fn";
  throw Error(detail::concat("no torch dtype for scale storage ", safetensors_dtype));
}

// safetensors dtype of the block scales of a floating element format: the
// row's byte storage, or float32.
StDType block_scale_storage(const QuantSpec& spec) {
  const std::string_view stored = scale_scheme_of(spec).stored_dtype;
  return stored.empty() ? StDType::F32 : *safetensors_dtype_from_name(stored);
}

}  // namespace

bool stores_shape(const Scheme& scheme) {
  return scheme.format == CheckpointFormat::pack_quantized;
}

std::string code_tensor_name(const Scheme& scheme, const std::string& weight_name) {
  const bool whole_bytes = scheme.format == CheckpointFormat::int_quantized ||
                           scheme.format == CheckpointFormat::float_quantized ||
                           scheme.format == CheckpointFormat::mxfp8_quantized;
  return whole_bytes ? weight_name : weight_name + "_packed";
}

bool has_zero_point(const Scheme& scheme) {
  return scheme.spec.mapping == Mapping::asymmetric;
}

void check_applicable(const std::string& name, const Scheme& scheme, const Shape& shape,
                      StDType dtype) {
  QK_CHECK(shape.size() == 2, "tensor '", name, "' has shape ", to_string(shape), ": scheme ",
           scheme.name, " quantizes 2-D weights only");
  QK_CHECK(is_float_input(dtype), "tensor '", name, "' has dtype ", dtype_info(dtype).name,
           ": scheme ", scheme.name, " needs F32, BF16 or F16");
  const auto& granularity = scheme.spec.granularity;
  if (granularity.kind() == Granularity::Kind::per_group) {
    QK_CHECK(shape[1] % granularity.group_size() == 0, "tensor '", name, "' has ", shape[1],
             " columns, not a multiple of the group size ", granularity.group_size(), " of scheme ",
             scheme.name, ": exclude it (--exclude) or give it another scheme (--override)");
  }
}

std::vector<TensorDecl> declare_outputs(const std::string& name, const Scheme& scheme,
                                        std::int64_t rows, std::int64_t columns, StDType dtype) {
  const std::int64_t groups = columns == 0 ? 0 : columns / columns_per_scale(scheme, columns);
  const bool per_tensor = scheme.spec.granularity.kind() == Granularity::Kind::per_tensor;
  const Shape scale_shape = per_tensor ? Shape{1} : Shape{rows, groups};
  std::vector<TensorDecl> outputs;
  switch (scheme.format) {
    case CheckpointFormat::pack_quantized: {
      const int bits = scheme.spec.dtype.bits();
      outputs.push_back({name + "_packed", StDType::I32, {rows, packed_words(columns, bits)}});
      outputs.push_back({name + "_scale", dtype, scale_shape});
      if (has_zero_point(scheme)) {
        outputs.push_back({name + "_zero_point", StDType::I32, {packed_words(rows, bits), groups}});
      }
      break;
    }
    case CheckpointFormat::int_quantized:  // one int8 per code, any width up to 8 bits
      outputs.push_back({name, StDType::I8, {rows, columns}});
      outputs.push_back({name + "_scale", dtype, scale_shape});
      if (has_zero_point(scheme))
        outputs.push_back({name + "_zero_point", StDType::I8, scale_shape});
      break;
    case CheckpointFormat::float_quantized:
    case CheckpointFormat::mxfp8_quantized:
      outputs.push_back({name, StDType::F8_E4M3, {rows, columns}});
      outputs.push_back({name + "_scale", block_scale_storage(scheme.spec), scale_shape});
      break;
    case CheckpointFormat::mxfp4_pack_quantized:
      outputs.push_back({name + "_packed", StDType::U8, {rows, columns / 2}});
      outputs.push_back({name + "_scale", block_scale_storage(scheme.spec), scale_shape});
      break;
    case CheckpointFormat::nvfp4_pack_quantized:
      outputs.push_back({name + "_packed", StDType::U8, {rows, columns / 2}});
      outputs.push_back({name + "_scale", block_scale_storage(scheme.spec), scale_shape});
      outputs.push_back({name + "_global_scale", StDType::F32, {1}});
      break;
  }
  // Only pack-quantized stores the original shape (its packed rows hide the
  // column count); compressed-tensors' other formats have no shape tensor.
  if (stores_shape(scheme)) outputs.push_back({name + "_shape", StDType::I64, {2}});
  return outputs;
}

void append_codes(const Scheme& scheme, const QuantizedTensor& block, std::int64_t columns,
                  std::vector<std::uint8_t>& out) {
  if (scheme.format == CheckpointFormat::pack_quantized) {
    append_pack_quantized(block, columns, scheme.spec.dtype.bits(), out);
    return;
  }
  if (scheme.format == CheckpointFormat::int_quantized && scheme.spec.dtype.bits() < 8) {
    const Tensor codes = block.codes();  // int8, one per code
    const auto* bytes = static_cast<const std::uint8_t*>(codes.raw_data());
    out.insert(out.end(), bytes, bytes + codes.nbytes());
    return;
  }
  // int8 and FP8 one byte per code; FP4 two per byte, low nibble first: the packed stream as is.
  const auto packed = block.packed();
  out.insert(out.end(), packed.begin(), packed.end());
}

void append_scales(const Scheme& scheme, const QParams& qparams, std::vector<std::uint8_t>& out) {
  const Tensor& scale = qparams.scale;
  const auto count = static_cast<std::size_t>(scale.numel());
  const auto encode_byte =
      scheme.spec.dtype.is_floating() ? scale_scheme_of(scheme.spec).encode_byte : nullptr;
  if (encode_byte) {
    for (std::size_t i = 0; i < count; ++i) out.push_back(encode_byte(scale.data<float>()[i]));
    return;
  }
  // Plain floats, already in the output dtype.
  const auto* bytes = static_cast<const std::uint8_t*>(scale.raw_data());
  out.insert(out.end(), bytes, bytes + scale.nbytes());
}

std::vector<std::uint8_t> pack_zero_points(const std::vector<std::int32_t>& zero_points,
                                           std::int64_t rows, std::int64_t groups, int bits) {
  // Packed along dim 0: each column of the [rows, groups] grid is one packed
  // row of the transposed grid, stored back transposed as [words, groups].
  const std::int64_t words = packed_words(rows, bits);
  std::vector<std::uint8_t> bytes(static_cast<std::size_t>(words * groups * 4));
  std::vector<std::int8_t> column(static_cast<std::size_t>(rows));
  std::vector<std::uint8_t> packed(static_cast<std::size_t>(words * 4));
  for (std::int64_t g = 0; g < groups; ++g) {
    for (std::int64_t r = 0; r < rows; ++r) {
      column[r] = static_cast<std::int8_t>(zero_points[r * groups + g]);
    }
    pack_row(column.data(), rows, bits, packed.data());
    for (std::int64_t w = 0; w < words; ++w) {
      std::memcpy(bytes.data() + (w * groups + g) * 4, packed.data() + w * 4, 4);
    }
  }
  return bytes;
}

std::string quantization_args(const Scheme& scheme) {
  // The keys and value spellings of compressed-tensors' QuantizationArgs as
  // it serializes them (null and default fields left out), so a stock reader
  // and llm-compressor's output agree on every scheme both express.
  const auto& spec = scheme.spec;
  const auto kind = spec.granularity.kind();
  nlohmann::ordered_json args;
  args["num_bits"] = spec.dtype.bits();
  args["type"] = spec.dtype.is_floating() ? "float" : "int";
  args["symmetric"] = spec.mapping != Mapping::asymmetric;
  args["group_size"] = kind == Granularity::Kind::per_group
                           ? nlohmann::ordered_json(spec.granularity.group_size())
                           : nlohmann::ordered_json(nullptr);
  args["strategy"] = scheme.format == CheckpointFormat::nvfp4_pack_quantized ? "tensor_group"
                     : kind == Granularity::Kind::per_group                  ? "group"
                     : kind == Granularity::Kind::per_axis                   ? "channel"
                                                                             : "tensor";
  args["dynamic"] = false;
  args["observer"] = spec.mapping == Mapping::stretched ? "mean_abs" : "minmax";
  if (spec.dtype.is_floating()) {
    const std::string_view stored = scale_scheme_of(spec).stored_dtype;
    if (!stored.empty()) args["scale_dtype"] = torch_dtype_name(stored);
  }
  if (spec.mapping == Mapping::stretched) {
    // No compressed-tensors type expresses the (q + 0.5) * s grid. QuantizationArgs
    // forbids unknown keys, so stock readers refuse this group loudly instead of
    // decoding it as a plain symmetric int (quantkit reads its own "quantkit" block).
    args["grid"] = "stretched";
  }
  return args.dump();
}

bool has_exact_reciprocal(float g) {
  int exponent = 0;
  return std::isnormal(g) && std::frexp(g, &exponent) == 0.5f && std::isnormal(1.0f / g);
}

float stored_global_scale(const QParams& qparams) {
  const float g = qparams.global_scale_value();
  QK_CHECK(has_exact_reciprocal(g), "global_scale ", g,
           " is not a power of two, so compressed-tensors' divisor 1 / g is not exact and its "
           "readers would decode other values; choose qparams with quantkit (its global scales "
           "are powers of two)");
  return 1.0f / g;
}

void append_trailing_parts(const Scheme& scheme, const std::vector<std::int32_t>& zero_points,
                           float global_scale, std::int64_t rows, std::int64_t columns,
                           std::vector<std::uint8_t>& out) {
  const auto append = [&](const void* data, std::size_t size) {
    const auto* bytes = static_cast<const std::uint8_t*>(data);
    out.insert(out.end(), bytes, bytes + size);
  };
  if (has_zero_point(scheme) && scheme.format == CheckpointFormat::int_quantized) {
    for (std::int32_t zero_point : zero_points)
      out.push_back(static_cast<std::uint8_t>(zero_point));
  } else if (has_zero_point(scheme)) {
    const auto groups =
        static_cast<std::int64_t>(zero_points.size()) / std::max<std::int64_t>(rows, 1);
    const auto packed = pack_zero_points(zero_points, rows, groups, scheme.spec.dtype.bits());
    append(packed.data(), packed.size());
  }
  if (scheme.format == CheckpointFormat::nvfp4_pack_quantized) {
    append(&global_scale, sizeof(global_scale));
  }
  if (stores_shape(scheme)) {
    const std::int64_t shape[2] = {rows, columns};
    append(shape, sizeof(shape));
  }
}

namespace {

bool is_uint8_asymmetric(const QuantSpec& spec) {
  return spec.dtype == QuantDType::uint(8) && spec.mapping == Mapping::asymmetric;
}

}  // namespace

std::string input_activation_args(const QuantSpec& spec, bool dynamic) {
  spec.validate();
  const auto kind = spec.granularity.kind();
  const bool int8 = spec.dtype == QuantDType::int_(8) || (!dynamic && is_uint8_asymmetric(spec));
  const bool fp8 = spec.dtype == QuantDType::fp8_e4m3fn() &&
                   spec.scale_dtype.value_or(ScaleDType::float32) == ScaleDType::float32;
  const bool granularity_ok =
      kind == Granularity::Kind::per_tensor || (dynamic && kind == Granularity::Kind::per_token);
  QK_CHECK((int8 || fp8) && granularity_ok &&
               spec.resolved_zero_point_domain() != ZeroPointDomain::float_ &&
               spec.mapping != Mapping::stretched,
           "input quantization ", spec.describe(), " (", dynamic ? "dynamic" : "static",
           ") cannot be written as compressed-tensors: it stores dynamic int8 or FP8 e4m3fn inputs "
           "per token or per tensor, and static int8, uint8 (asymmetric) or FP8 e4m3fn inputs per "
           "tensor");
  nlohmann::ordered_json args;
  args["num_bits"] = 8;
  args["type"] = fp8 ? "float" : "int";
  args["symmetric"] = spec.mapping != Mapping::asymmetric;
  args["group_size"] = nullptr;
  args["strategy"] = kind == Granularity::Kind::per_token ? "token" : "tensor";
  args["dynamic"] = dynamic;
  return args.dump();
}

std::vector<std::pair<std::string, Tensor>> static_input_tensors(const std::string& module,
                                                                 const QParams& qparams,
                                                                 ScalarType weight_dtype) {
  const QuantSpec& spec = qparams.spec;
  input_activation_args(spec, false);  // checks the spec
  QK_CHECK(qparams.scale.numel() == 1, "static input qparams of '", module, "' hold ",
           qparams.scale.numel(), " scales; compressed-tensors stores one per tensor");
  const double scale = qparams.scale.get(0);
  Tensor stored = Tensor::full({1}, scale, weight_dtype);
  QK_CHECK(stored.get(0) == scale, "the input scale ", scale, " of '", module, "' is not a ",
           name(weight_dtype),
           " value, and compressed-tensors holds input scales in the weight's "
           "dtype; calibrate with scale_dtype='",
           name(weight_dtype), "' in the activation spec (e.g. recipes.W8A8(scale_dtype=...))");
  std::vector<std::pair<std::string, Tensor>> out;
  out.emplace_back(module + ".input_scale", std::move(stored));
  if (spec.mapping == Mapping::asymmetric) {
    const double shift = is_uint8_asymmetric(spec) ? -128 : 0;
    out.emplace_back(module + ".input_zero_point",
                     Tensor::full({1}, qparams.zero_point.get(0) + shift, ScalarType::int8));
  } else if (qparams.zero_point.numel() > 0) {
    QK_CHECK(qparams.zero_point.get(0) == 0, "symmetric input qparams of '", module,
             "' have zero point ", qparams.zero_point.get(0), "; compressed-tensors stores none");
  }
  return out;
}

QParams static_input_qparams(const QuantSpec& spec, const Tensor& scale, const Tensor* zero_point) {
  input_activation_args(spec, false);
  QK_CHECK(scale.numel() == 1, "a static input scale has ", scale.numel(), " values, not 1");
  ScalarType scale_dtype = ScalarType::float32;
  if (spec.scale_dtype == ScaleDType::bfloat16) scale_dtype = ScalarType::bfloat16;
  if (spec.scale_dtype == ScaleDType::float16) scale_dtype = ScalarType::float16;
  Tensor zp;
  if (!spec.dtype.is_floating()) {
    double value = 0;
    if (spec.mapping == Mapping::asymmetric) {
      QK_CHECK(zero_point != nullptr && zero_point->numel() == 1,
               "the asymmetric input of this layer has no input_zero_point of one value");
      value = zero_point->get(0) + (is_uint8_asymmetric(spec) ? 128 : 0);
    }
    zp = Tensor::full({1}, value, ScalarType::int32);
  }
  const Tensor stored = scale.reshape({1}).to(scale_dtype);
  QK_CHECK(stored.get(0) == scale.get(0), "the input scale ", scale.get(0), " is not a ",
           name(scale_dtype), " value as its spec ", spec.describe(), " stores scales");
  return QParams::make(spec, stored, std::move(zp), ScalarType::float32);
}

std::string escape_regex(const std::string& text) {
  static const std::string special = R"(\^$.|?*+()[]{})";
  std::string out;
  for (char c : text) {
    if (special.find(c) != std::string::npos) out += '\\';
    out += c;
  }
  return out;
}

std::string quantization_config(const std::vector<SchemeGroup>& groups) {
  nlohmann::ordered_json config_groups = nlohmann::ordered_json::object();
  nlohmann::ordered_json extension = nlohmann::ordered_json::object();
  std::set<std::string> formats;
  for (std::size_t i = 0; i < groups.size(); ++i) {
    const Scheme& scheme = *groups[i].scheme;
    const std::string group = "group_" + std::to_string(i);
    const std::string format(name(scheme.format));
    formats.insert(format);
    nlohmann::ordered_json targets = nlohmann::ordered_json::array();
    for (const auto& module : groups[i].modules)
      targets.push_back("re:^" + escape_regex(module) + "$");
    config_groups[group] = {
        {"targets", targets},
        {"weights", nlohmann::ordered_json::parse(quantization_args(scheme))},
        {"input_activations", groups[i].input_activations
                                  ? nlohmann::ordered_json::parse(input_activation_args(
                                        *groups[i].input_activations, !groups[i].static_inputs))
                                  : nlohmann::ordered_json(nullptr)},
        {"output_activations", nullptr},
        {"format", format}};
    extension[group] = {{"scheme", scheme.name},
                        {"spec", scheme.spec.describe()},
                        {"spec_text", scheme.spec.to_text()}};
    if (groups[i].input_activations) {
      extension[group]["input_spec_text"] = groups[i].input_activations->to_text();
    }
    if (scheme.spec.mapping == Mapping::stretched) {
      extension[group]["dequantize"] = "(q + 0.5) * scale";
    }
  }
  nlohmann::ordered_json config;
  config["quant_method"] = "compressed-tensors";
  config["format"] = formats.size() == 1 ? *formats.begin() : "mixed-precision";
  config["quantization_status"] = "compressed";
  config["config_groups"] = config_groups;
  config["ignore"] = nlohmann::ordered_json::array();
  config["kv_cache_scheme"] = nullptr;
  config["quantkit"] = extension;
  return config.dump();
}

}  // namespace quantkit::io::ct
