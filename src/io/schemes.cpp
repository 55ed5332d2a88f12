#include "quantkit/io/schemes.hpp"

#include <deque>
#include <mutex>
#include <vector>

#include "quantkit/enum_names.hpp"
#include "quantkit/error.hpp"
#include "quantkit/scale_scheme.hpp"

namespace quantkit::io {
namespace {

Scheme integer(int bits, std::int64_t group, Mapping mapping) {
  const std::string groups = group > 0 ? "-g" + std::to_string(group) : "";
  const std::string where = group > 0 ? "per group of " + std::to_string(group) : "per channel";
  const std::string suffix = mapping == Mapping::asymmetric         ? "-asym"
                             : mapping == Mapping::symmetric_signed ? "-signed"
                                                                    : "";
  const std::string how =
      mapping == Mapping::asymmetric ? " asymmetric "
      : mapping == Mapping::symmetric_signed
          ? detail::concat(" symmetric, signed scale (the largest magnitude lands exactly on -",
                           1 << (bits - 1), ", as in llama.cpp's Q4_0 and Q5_0) ")
          : " symmetric ";
  return {"int" + std::to_string(bits) + groups + suffix,
          "int" + std::to_string(bits) + how + where,
          QuantSpec{
              .dtype = QuantDType::int_(bits),
              .mapping = mapping,
              .granularity = group > 0 ? Granularity::per_group(group) : Granularity::per_axis(0)},
          CheckpointFormat::pack_quantized};
}

Scheme stretched(int bits, std::int64_t group) {
  return {"stretched" + std::to_string(bits) + "-g" + std::to_string(group),
          "stretched (PARQ) " + std::to_string(bits) + "-bit grid (k + 0.5) * s per group of " +
              std::to_string(group),
          QuantSpec{.dtype = QuantDType::int_(bits),
                    .mapping = Mapping::stretched,
                    .granularity = Granularity::per_group(group)},
          CheckpointFormat::pack_quantized};
}

std::vector<Scheme> make_table() {
  std::vector<Scheme> table;
  table.push_back(integer(8, 0, Mapping::symmetric));
  for (int bits : {8, 6, 5, 4, 3, 2}) {
    for (std::int64_t group : {32, 64, 128}) {
      for (Mapping mapping : {Mapping::symmetric, Mapping::asymmetric, Mapping::symmetric_signed}) {
        table.push_back(integer(bits, group, mapping));
      }
    }
  }
  for (int bits : {2, 3}) {
    for (std::int64_t group : {32, 64, 128}) table.push_back(stretched(bits, group));
  }
  const QuantSpec fp8{.dtype = QuantDType::fp8_e4m3fn(), .scale_dtype = ScaleDType::float32};
  QuantSpec fp8_channel = fp8;
  fp8_channel.granularity = Granularity::per_axis(0);
  table.push_back(
      {"fp8", "FP8 e4m3fn, one float32 scale per tensor", fp8, CheckpointFormat::float_quantized});
  table.push_back({"fp8-channel", "FP8 e4m3fn, one float32 scale per output channel", fp8_channel,
                   CheckpointFormat::float_quantized});
  table.push_back({"mxfp8", "MXFP8: e4m3fn, E8M0 scale per block of 32 (floor)",
                   QuantSpec{.dtype = QuantDType::fp8_e4m3fn(),
                             .granularity = Granularity::per_group(32),
                             .scale_dtype = ScaleDType::e8m0},
                   CheckpointFormat::mxfp8_quantized});
  table.push_back({"mxfp4", "MXFP4: e2m1, E8M0 scale per block of 32 (floor)",
                   QuantSpec{.dtype = QuantDType::fp4_e2m1(),
                             .granularity = Granularity::per_group(32),
                             .scale_dtype = ScaleDType::e8m0},
                   CheckpointFormat::mxfp4_pack_quantized});
  table.push_back({"nvfp4",
                   "NVFP4: e2m1, e4m3 scale per block of 16 under a float32 per-tensor scale",
                   QuantSpec{.dtype = QuantDType::fp4_e2m1(),
                             .granularity = Granularity::per_group(16),
                             .scale_dtype = ScaleDType::fp8_e4m3fn,
                             .global_scale = true},
                   CheckpointFormat::nvfp4_pack_quantized});
  return table;
}

}  // namespace

namespace {

// Role patterns over Hugging Face (Llama, Qwen2, Mistral, GPT-2, BERT) and GGUF
// module names, full-matched as every rule is (recipe.hpp).
constexpr const char* kAttentionValue = R"(.*(v_proj|self\.value|attn_v|\.wv))";
constexpr const char* kFeedForwardDown =
    R"(.*(down_proj|mlp\.c_proj|ffn_down|\.w2|layer\.\d+\.output\.dense))";
constexpr const char* kOutput = R"((.*\.)?(lm_head|output))";

Preset mix(int bits, int more_bits) {
  const auto scheme = [](int b) { return detail::concat("int", b, "-g32-asym:search=mse"); };
  return {detail::concat("q", bits, "-mix"),
          detail::concat("int", bits,
                         " g32 asymmetric, MSE-searched; attention value, feed-forward down and "
                         "the output layer at int",
                         more_bits),
          scheme(bits),
          {{kAttentionValue, scheme(more_bits)},
           {kFeedForwardDown, scheme(more_bits)},
           {kOutput, scheme(more_bits)}}};
}

}  // namespace

std::span<const Preset> presets() {
  static const std::vector<Preset> table = {mix(3, 5), mix(4, 6), mix(5, 6)};
  return table;
}

const Preset* find_preset(std::string_view name) {
  for (const auto& preset : presets()) {
    if (preset.name == name) return &preset;
  }
  return nullptr;
}

// compressed-tensors' CompressionFormat values.
constexpr EnumNames<CheckpointFormat, 6> kFormats{{
    {CheckpointFormat::pack_quantized, "pack-quantized"},
    {CheckpointFormat::int_quantized, "int-quantized"},
    {CheckpointFormat::float_quantized, "float-quantized"},
    {CheckpointFormat::mxfp8_quantized, "mxfp8-quantized"},
    {CheckpointFormat::mxfp4_pack_quantized, "mxfp4-pack-quantized"},
    {CheckpointFormat::nvfp4_pack_quantized, "nvfp4-pack-quantized"},
}};

std::string_view name(CheckpointFormat format) {
  return name_in(kFormats, format);
}

std::span<const Scheme> schemes() {
  static const std::vector<Scheme> table = make_table();
  return table;
}

namespace {

// Schemes made on demand (spec variants, options), kept for the process: a
// deque, so references stay valid as it grows.
const Scheme& intern(Scheme scheme) {
  static std::mutex mutex;
  static std::deque<Scheme> made;
  const std::lock_guard lock(mutex);
  for (const auto& known : made) {
    if (known.name == scheme.name && known.spec == scheme.spec && known.format == scheme.format) {
      return known;
    }
  }
  return made.emplace_back(std::move(scheme));
}

// "<scheme>:search=mse": the table scheme with MSE-searched scales.
const Scheme& with_options(const Scheme& base, std::string_view full_name,
                           std::string_view options) {
  Scheme scheme = base;
  scheme.name = std::string(full_name);
  while (!options.empty()) {
    const std::size_t comma = options.find(',');
    const std::string_view option = options.substr(0, comma);
    if (option == "search=mse") {
      QK_CHECK(!base.spec.dtype.is_floating() && base.spec.mapping != Mapping::stretched,
               "scheme '", full_name, "': search=mse applies to the int schemes, not ", base.name);
      scheme.spec.scale_search = ScaleSearch::mse;
      scheme.summary += ", scales searched for the least squared error";
    } else if (option == "search=hqq") {
      QK_CHECK(!base.spec.dtype.is_floating() && base.spec.mapping == Mapping::asymmetric,
               "scheme '", full_name,
               "': search=hqq refines a zero point, so it applies to the asymmetric int "
               "schemes (-asym), not ",
               base.name);
      scheme.spec.scale_search = ScaleSearch::hqq;
      scheme.summary += ", scales refined by half-quadratic quantization (HQQ)";
    } else {
      throw Error(detail::concat("scheme '", full_name, "': option '", option,
                                 "' is unknown (the options are: search=mse, search=hqq)"));
    }
    options = comma == std::string_view::npos ? std::string_view() : options.substr(comma + 1);
  }
  scheme.spec.validate();
  return intern(std::move(scheme));
}

}  // namespace

namespace {

// Names the Python recipes and compressed-tensors' presets use for the same
// weight-only schemes: one vocabulary for the CLI, recipe files and Python.
constexpr std::pair<std::string_view, std::string_view> kAliases[] = {
    {"W4A16", "int4-g128"}, {"W4A16-asym", "int4-g128-asym"},
    {"W8A16", "int8"},      {"MXFP4", "mxfp4"},
    {"MXFP8", "mxfp8"},     {"NVFP4", "nvfp4"},
};

}  // namespace

std::span<const std::pair<std::string_view, std::string_view>> scheme_aliases() {
  return kAliases;
}

std::span<const std::string_view> activation_recipe_names() {
  static constexpr std::string_view names[] = {"W8A8",       "W8A8-dynamic", "8da4w-g32",
                                               "8da4w-g128", "FP8-dynamic",  "FP8-tensor-dynamic",
                                               "LSQ-w4a8"};
  return names;
}

const Scheme& find_scheme(std::string_view name) {
  for (const auto& [alias, canonical] : kAliases) {
    if (alias == name) return find_scheme(canonical);
  }
  for (const auto python_only : activation_recipe_names()) {
    QK_CHECK(python_only != name, "scheme '", name,
             "' quantizes input activations too, which needs the model's forward pass: "
             "it is applied from Python (quantkit.torch.load_recipe / prepare); the "
             "checkpoint tool quantizes weights");
  }
  if (const std::size_t colon = name.find(':'); colon != std::string_view::npos) {
    return with_options(find_scheme(name.substr(0, colon)), name, name.substr(colon + 1));
  }
  std::string known;
  for (const auto& scheme : schemes()) {
    if (scheme.name == name) return scheme;
    known += (known.empty() ? "" : ", ") + scheme.name;
  }
  std::string preset_names;
  for (const auto& preset : presets()) {
    preset_names += detail::concat(preset_names.empty() ? "" : ", ", preset.name);
  }
  throw Error(detail::concat(
      "scheme '", name, "' is not one of: ", known,
      " (int schemes also take ':search=mse', asymmetric ones ':search=hqq'), or a preset: ",
      preset_names));
}

namespace {

// Integer weights per tensor, per output channel or per group along the input
// dimension, in the full signed range (compressed-tensors stores code + 2^(b-1)).
std::string integer_format_problem(const QuantSpec& spec) {
  const auto& dtype = spec.dtype;
  const int bits = dtype.bits();
  if (dtype.quant_min() != -(1 << (bits - 1)) || dtype.quant_max() != (1 << (bits - 1)) - 1) {
    return detail::concat("compressed-tensors stores signed int", bits, " codes in [",
                          -(1 << (bits - 1)), ", ", (1 << (bits - 1)) - 1, "], not [",
                          dtype.quant_min(), ", ", dtype.quant_max(), "]");
  }
  if (spec.resolved_zero_point_domain() == ZeroPointDomain::float_) {
    return "compressed-tensors has no float zero point (tinygemm's domain)";
  }
  return {};
}

std::string granularity_problem(const QuantSpec& spec) {
  const auto& g = spec.granularity;
  switch (g.kind()) {
    case Granularity::Kind::per_tensor:
      return {};
    case Granularity::Kind::per_axis:
      return g.axis() == 0 || g.axis() == -2 ? "" : "per_axis scales must be per output row";
    case Granularity::Kind::per_group:
      return g.axis() == -1 || g.axis() == 1 ? "" : "groups must run along the input dimension";
    default:
      return detail::concat("compressed-tensors has no ", Granularity::kind_name(g.kind()),
                            " weight scales");
  }
}

// The format of a floating element spec, or nullopt with `problem` set.
std::optional<CheckpointFormat> floating_format(const QuantSpec& spec, std::string& problem) {
  const auto& row = scale_scheme_of(spec);
  const auto& g = spec.granularity;
  const bool fp8 = spec.dtype == QuantDType::fp8_e4m3fn();
  const bool fp4 = spec.dtype == QuantDType::fp4_e2m1();
  const auto group = g.kind() == Granularity::Kind::per_group ? g.group_size() : 0;
  if (row.scale_dtype == ScaleDType::float32 && fp8 && g.kind() != Granularity::Kind::per_group) {
    return CheckpointFormat::float_quantized;
  }
  if (row.scale_dtype == ScaleDType::e8m0 && group == 32 && (fp8 || fp4)) {
    return fp8 ? CheckpointFormat::mxfp8_quantized : CheckpointFormat::mxfp4_pack_quantized;
  }
  if (row.scale_dtype == ScaleDType::fp8_e4m3fn && group == 16 && fp4) {
    return CheckpointFormat::nvfp4_pack_quantized;
  }
  problem =
      "compressed-tensors stores FP8 with float32 scales per tensor or row, MXFP8 / MXFP4 "
      "(E8M0 scales per 32) and NVFP4 (E4M3 scales per 16) only";
  return std::nullopt;
}

}  // namespace

const Scheme& scheme_for_spec(const QuantSpec& spec, bool quantized_inputs) {
  spec.validate();
  if (spec.scale_search != ScaleSearch::none) {  // named after its plain scheme, as options are
    QuantSpec plain = spec;
    plain.scale_search = ScaleSearch::none;
    const Scheme& base = scheme_for_spec(plain, quantized_inputs);
    const std::string option = detail::concat("search=", name(spec.scale_search));
    return with_options(base, base.name + ":" + option, option);
  }
  const bool int_quantized = quantized_inputs && !spec.dtype.is_floating();
  for (const auto& scheme : schemes()) {
    if (scheme.spec == spec && !int_quantized) return scheme;
  }
  std::string problem = granularity_problem(spec);
  std::optional<CheckpointFormat> format;
  if (problem.empty()) {
    if (spec.dtype.is_floating()) {
      format = floating_format(spec, problem);
    } else {
      problem = integer_format_problem(spec);
      format = CheckpointFormat::pack_quantized;
      // Beside quantized inputs compressed-tensors stores int weights of any width
      // one code per int8 (its int-quantized format, as for W8A8 and W4A8).
      if (int_quantized) format = CheckpointFormat::int_quantized;
    }
  }
  QK_CHECK(problem.empty(), "spec ", spec.describe(),
           " cannot be written as compressed-tensors: ", problem);
  return intern(Scheme{spec.describe(), spec.describe(), spec, *format});
}

}  // namespace quantkit::io
