#pragma once
// Weight quantization schemes of the checkpoint tool: one table row per
// scheme. The table feeds `quantkit quantize --scheme`, `quantkit schemes` and
// `--help`, so a new scheme is one new row.
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "quantkit/quant_spec.hpp"

namespace quantkit::io {

/// compressed-tensors storage format of a quantized weight (docs/formats.md).
enum class CheckpointFormat : std::uint8_t {
  pack_quantized,        // int codes + offset, densely packed into int32 rows, LSB first
  int_quantized,         // int codes as I8, one per byte (weights beside quantized inputs)
  float_quantized,       // FP8 codes stored as F8_E4M3, one per byte, float scales
  mxfp8_quantized,       // FP8 codes as F8_E4M3 + E8M0 scale bytes
  mxfp4_pack_quantized,  // FP4 pairs per byte (low nibble first) + E8M0 bytes
  nvfp4_pack_quantized,  // FP4 pairs per byte + F8_E4M3 block scales + global scale
};

/// "pack-quantized", "float-quantized", ...
std::string_view name(CheckpointFormat format);

struct Scheme {
  std::string name;     // "int4-g128-asym"
  std::string summary;  // one line for `quantkit schemes`
  QuantSpec spec;       // applied to a [rows, columns] weight
  CheckpointFormat format;
};

/// A mix of schemes by tensor role, as llama.cpp's _M types keep the layers
/// most sensitive to error at more bits: a default scheme, and (regex, scheme)
/// rules full-matched on module or tensor names, first match first.
struct Preset {
  std::string name;     // "q4-mix"
  std::string summary;  // one line for `quantkit schemes`
  std::string default_scheme;
  std::vector<std::pair<std::string, std::string>> rules;
};

/// The presets, in the order `quantkit schemes` prints them.
std::span<const Preset> presets();
/// The preset of that name, or nullptr.
const Preset* find_preset(std::string_view name);

/// The table, in the order `quantkit schemes` prints it.
std::span<const Scheme> schemes();
/// Throws Error listing every scheme name when `name` is not one. A table
/// name may carry options after a colon: "int4-g32:search=mse" searches each
/// group's scale for the least squared error (QuantSpec::scale_search).
const Scheme& find_scheme(std::string_view name);

/// Other names of table schemes: the Python recipe and compressed-tensors
/// preset names of weight-only schemes ("W4A16" is "int4-g128").
std::span<const std::pair<std::string_view, std::string_view>> scheme_aliases();

/// Recipe names that also quantize input activations (W8A8, 8da4w, ...):
/// Python applies them; find_scheme refuses them, saying so.
std::span<const std::string_view> activation_recipe_names();

/// The scheme that writes a [rows, columns] weight quantized with `spec` in
/// the compressed-tensors layout: the table's row for that spec, or a scheme
/// named after the spec (kept for the life of the program). Throws Error
/// naming the spec and the reason when compressed-tensors has no format for
/// it (unsigned or narrowed integer ranges, float zero points, per-token or
/// per-block grids, FP6, block-scale formats other than MXFP8 / MXFP4 /
/// NVFP4).
/// With `quantized_inputs` (the layer also quantizes its input activations),
/// int weights of any width take compressed-tensors' int-quantized format, as
/// its W8A8 / W4A8 presets do.
const Scheme& scheme_for_spec(const QuantSpec& spec, bool quantized_inputs = false);

}  // namespace quantkit::io
