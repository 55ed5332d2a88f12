#pragma once
// QuantSpec: everything that decides how a tensor is quantized.
//
// Designated initializers keep call sites readable:
//   QuantSpec spec{.dtype = QuantDType::int_(4), .mapping = Mapping::asymmetric,
//                  .granularity = Granularity::per_group(128)};

#include <optional>
#include <string>
#include <string_view>

#include "quantkit/granularity.hpp"
#include "quantkit/minifloat.hpp"
#include "quantkit/quant_dtype.hpp"
#include "quantkit/scalar_type.hpp"

namespace quantkit {

enum class Mapping : std::uint8_t {
  symmetric,                  // range [-amax, amax], scale = amax / ((qmax - qmin) / 2)
  symmetric_no_clipping_err,  // scale = max(min_neg / qmin, max_pos / qmax): nothing clips
  asymmetric,                 // range [min, max], widened to include 0 in the int domain
  stretched,  // PARQ grid (k + 0.5) * s, s = min(b * mean|x|, max|x|) / (2^(b-1) - 0.5)
  /// scale = e / qmin, e the block's value of largest magnitude (the negative one on a
  /// tie): e lands exactly on qmin, and the scale is negative when e > 0 (llama.cpp's
  /// Q4_0 / Q8_0 rule). A step of amax / -qmin, finer than symmetric's, with no clipping
  /// at the extreme; stored like symmetric (no zero point).
  symmetric_signed,
};

enum class ZeroPointDomain : std::uint8_t {
  int_,    // q = clamp(round(x / s) + zp); zp an integer code, range includes 0
  float_,  // tinygemm: q = clamp(round((x - (zp - s * mid)) / s)); zp a float, range not widened
  none,    // q = clamp(round(x / s)); no zero point
};

/// Format the scale is stored in. fp32/bf16/fp16 are plain floats; e8m0 is the
/// OCP MX power-of-two scale; fp8_e4m3fn is the NVFP4 block scale (the
/// element format of the same name; "fp8_e4m3" still parses).
enum class ScaleDType : std::uint8_t { float32, bfloat16, float16, e8m0, fp8_e4m3fn };

/// How choose_qparams picks an integer block's scale (and zero point).
enum class ScaleSearch : std::uint8_t {
  none,  // the range formula of the mapping (torchao's choose_qparams_affine)
  mse,   // the clipping ratio, of a fixed grid, whose round-to-nearest error is least
  hqq,   // half-quadratic refinement (HQQ): of the float zero point (float domain), or of
         // the scale under the searched integer zero point (int domain); asymmetric only
};

std::string_view name(Mapping mapping);
std::string_view name(ScaleSearch search);
ScaleSearch scale_search_from_name(std::string_view text);
std::string_view name(ZeroPointDomain domain);
std::string_view name(ScaleDType scale_dtype);
Mapping mapping_from_name(std::string_view text);
ZeroPointDomain zero_point_domain_from_name(std::string_view text);
ScaleDType scale_dtype_from_name(std::string_view text);

struct QuantSpec {
  QuantDType dtype = QuantDType::int_(8);
  Mapping mapping = Mapping::symmetric;
  Granularity granularity = Granularity::per_tensor();
  /// Unset: int for integer formats, none for floating formats.
  std::optional<ZeroPointDomain> zero_point_domain = std::nullopt;
  /// Lower bound of the scale. Unset: torch.finfo(input dtype).smallest_normal
  /// (torchao >= PR #4534); the stretched mapping uses finfo(input dtype).eps as
  /// torchao's choose_qparams_stretched_affine does. For floating element
  /// formats eps is a lower bound on the block amax (torchao's hp_value_lb) and
  /// has no default.
  std::optional<double> eps = std::nullopt;
  /// Unset: the input dtype (fp32 for floating element formats).
  std::optional<ScaleDType> scale_dtype = std::nullopt;
  /// Unset: int32 for the int domain, the input dtype for the float domain.
  std::optional<ScalarType> zero_point_dtype = std::nullopt;
  /// Only used with scale_dtype e8m0.
  E8M0Rounding e8m0_rounding = E8M0Rounding::floor;
  /// Two-level scaling (NVFP4): a float32 per-tensor scale g over the byte
  /// block scales, effective scale = block scale * g. choose_qparams picks g
  /// as the power of two at or above amax / (block scale max * element max),
  /// so that g and 1/g (compressed-tensors' form) are both exact. Only for
  /// scale rows that define a block-scale maximum (fp8_e4m3fn).
  bool global_scale = false;
  /// mse: each block's range is clipped by the ratio c of {1, 0.98, ..., 0.60}
  /// whose quantize-dequantize squared error (summed in a fixed order) is
  /// least, the first on ties, so never worse than `none` by that measure;
  /// quantize stays round-to-nearest under the chosen qparams. Integer specs
  /// with the symmetric or asymmetric mapping in the int or none domain.
  ScaleSearch scale_search = ScaleSearch::none;

  /// Throws Error naming the first inconsistent field.
  void validate() const;
  ZeroPointDomain resolved_zero_point_domain() const;
  /// One line for people, e.g. "int4 asymmetric per_group(128, axis=-1)
  /// zero_point=int". Not an identity: it leaves out fields (use == or
  /// to_text()).
  std::string describe() const;
  /// Every field, losslessly (eps to 17 digits, unset fields as "-"):
  /// "dtype=int4;mapping=asymmetric;granularity=per_group(128,-1);
  /// zero_point_domain=-;eps=-;scale_dtype=-;zero_point_dtype=-;e8m0_rounding=floor",
  /// followed by ";global_scale=true" for two-level specs and
  /// ";scale_search=mse" for searched scales only (so other texts are unchanged).
  /// from_text(spec.to_text()) == spec for every valid spec.
  std::string to_text() const;
  /// Parses to_text(); throws Error naming the field that does not parse, and
  /// validates the result.
  static QuantSpec from_text(std::string_view text);
  /// Field by field: two specs are equal when they quantize alike.
  friend bool operator==(const QuantSpec&, const QuantSpec&) = default;
};

/// Name of the first field in which `a` and `b` differ ("dtype", "eps",
/// "e8m0_rounding", ...), or empty when they are equal.
std::string_view first_difference(const QuantSpec& a, const QuantSpec& b);

}  // namespace quantkit
