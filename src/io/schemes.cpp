#include "quantkit/io/schemes.hpp"

#include <vector>

#include "quantkit/enum_names.hpp"
#include "quantkit/error.hpp"

namespace quantkit::io {
namespace {

Scheme integer(int bits, std::int64_t group, bool asymmetric) {
  const std::string groups = group > 0 ? "-g" + std::to_string(group) : "";
  const std::string where = group > 0 ? "per group of " + std::to_string(group) : "per channel";
  return {"int" + std::to_string(bits) + groups + (asymmetric ? "-asym" : ""),
          "int" + std::to_string(bits) + (asymmetric ? " asymmetric " : " symmetric ") + where,
          QuantSpec{
              .dtype = QuantDType::int_(bits),
              .mapping = asymmetric ? Mapping::asymmetric : Mapping::symmetric,
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
  table.push_back(integer(8, 0, false));
  for (int bits : {4, 2}) {
    for (std::int64_t group : {32, 64, 128}) {
      table.push_back(integer(bits, group, false));
      table.push_back(integer(bits, group, true));
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
  table.push_back({"nvfp4", "NVFP4: e2m1, e4m3 scale per block of 16, global scale 1",
                   QuantSpec{.dtype = QuantDType::fp4_e2m1(),
                             .granularity = Granularity::per_group(16),
                             .scale_dtype = ScaleDType::fp8_e4m3fn},
                   CheckpointFormat::nvfp4_pack_quantized});
  return table;
}

}  // namespace

// compressed-tensors' CompressionFormat values.
constexpr EnumNames<CheckpointFormat, 5> kFormats{{
    {CheckpointFormat::pack_quantized, "pack-quantized"},
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

const Scheme& find_scheme(std::string_view name) {
  std::string known;
  for (const auto& scheme : schemes()) {
    if (scheme.name == name) return scheme;
    known += (known.empty() ? "" : ", ") + scheme.name;
  }
  throw Error(detail::concat("scheme '", name, "' is not one of: ", known));
}

}  // namespace quantkit::io
