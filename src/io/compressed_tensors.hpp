#pragma once
// The compressed-tensors layout of one quantized weight (docs/formats.md):
// which output tensors it has and how codes, scales and zero points become
// their bytes.
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "quantkit/io/safetensors.hpp"
#include "quantkit/io/schemes.hpp"
#include "quantkit/quantized_tensor.hpp"

namespace quantkit::io::ct {

/// Throws Error naming the tensor and the rule when `scheme` cannot apply to
/// a weight of this shape and dtype.
void check_applicable(const std::string& name, const Scheme& scheme, const Shape& shape,
                      StDType dtype);

/// Output tensors, in the order their bytes are written: codes, scale, zero
/// point (asymmetric), global scale (NVFP4), shape (pack-quantized).
std::vector<TensorDecl> declare_outputs(const std::string& name, const Scheme& scheme,
                                        std::int64_t rows, std::int64_t columns, StDType dtype);

/// Bytes of the code tensor for a block of whole rows, appended to `out`.
void append_codes(const Scheme& scheme, const QuantizedTensor& block, std::int64_t columns,
                  std::vector<std::uint8_t>& out);
/// Bytes of the scale tensor for a block of whole rows, appended to `out`.
void append_scales(const Scheme& scheme, const QParams& qparams, std::vector<std::uint8_t>& out);
/// The int32 words of the zero-point tensor [ceil(rows / (32 / b)), groups]:
/// offset codes packed along dim 0, LSB first.
std::vector<std::uint8_t> pack_zero_points(const std::vector<std::int32_t>& zero_points,
                                           std::int64_t rows, std::int64_t groups, int bits);
/// The modules (weight names without ".weight") quantized with one scheme.
struct SchemeGroup {
  const Scheme* scheme;
  std::vector<std::string> modules;
  /// The quantization of the modules' inputs, if any, and whether its qparams
  /// are static (calibrated, stored per module) or chosen per input.
  std::optional<QuantSpec> input_activations = std::nullopt;
  bool static_inputs = false;
};
/// The whole quantization_config (JSON text): one config group per scheme,
/// targeting its modules by exact name, plus the "quantkit" block naming each
/// group's scheme and lossless spec (which is how quantkit reads it back).
std::string quantization_config(const std::vector<SchemeGroup>& groups);
/// `text` with every regex metacharacter escaped.
std::string escape_regex(const std::string& text);

/// The `input_activations` QuantizationArgs of an input spec, as a JSON text;
/// throws Error naming the spec when compressed-tensors cannot express it:
/// int8 or FP8 e4m3fn per token or per tensor when dynamic; int8, uint8
/// (asymmetric) or FP8 e4m3fn per tensor when static.
std::string input_activation_args(const QuantSpec& spec, bool dynamic);

/// The tensors compressed-tensors keeps for a layer's static input
/// quantization: `<module>.input_scale` [1] in the weight's dtype and, for
/// asymmetric int inputs, `<module>.input_zero_point` [1] int8 (a uint8 zero
/// point shifted by -128: the same grid, as int8 codes). Throws Error when the
/// scale is not a value of `weight_dtype`, in which compressed-tensors holds it.
std::vector<std::pair<std::string, Tensor>> static_input_tensors(const std::string& module,
                                                                 const QParams& qparams,
                                                                 ScalarType weight_dtype);
/// The static input qparams of `spec` back from those tensors (`zero_point`
/// null when the spec has none stored); scales in float32 unless the spec
/// stores bfloat16 / float16 scales, computed in float32 as calibration does.
QParams static_input_qparams(const QuantSpec& spec, const Tensor& scale, const Tensor* zero_point);

/// Whether g and 1 / g are both normal floats with 1 / g exact, i.e. g is a
/// power of two: only then do g * b and b / (1 / g) agree for every block scale b.
bool has_exact_reciprocal(float g);

/// compressed-tensors' NVFP4 global scale for qparams of per-tensor scale g:
/// the divisor 1 / g (1 for single-level qparams). Throws Error when 1 / g is
/// not exact (g not a power of two), since readers that divide by it would
/// decode other values than the ones quantkit computes with.
float stored_global_scale(const QParams& qparams);

/// Bytes of the tensors after the scale, appended to `out`: the packed zero
/// points (asymmetric; `zero_points` row-major over [rows, groups]), the
/// global scale (NVFP4; stored_global_scale's value) and the shape (pack-quantized).
void append_trailing_parts(const Scheme& scheme, const std::vector<std::int32_t>& zero_points,
                           float global_scale, std::int64_t rows, std::int64_t columns,
                           std::vector<std::uint8_t>& out);

/// The `weights` QuantizationArgs of a scheme, as a JSON text.
std::string quantization_args(const Scheme& scheme);
bool has_zero_point(const Scheme& scheme);
/// Whether the layout has a `<weight>_shape` tensor (pack-quantized only).
bool stores_shape(const Scheme& scheme);
/// The tensor holding the codes: the weight's own name for one-byte FP8
/// codes, `<weight>_packed` otherwise.
std::string code_tensor_name(const Scheme& scheme, const std::string& weight_name);

}  // namespace quantkit::io::ct
