#pragma once
// QuantDType: the element format codes are stored in.
//
// Integer formats: signed int_(b) with range [-2^(b-1), 2^(b-1)-1] and unsigned
// uint(b) with range [0, 2^b-1], for b in 1..8. with_range() narrows the range
// to any sub-range, e.g. int_(8).with_range(-127, 127).
// Floating formats: fp8_e4m3fn, fp8_e5m2, fp6_e3m2, fp6_e2m3, fp4_e2m1; their
// quant_min/quant_max are -max/+max of the format.

#include <optional>
#include <string>
#include <string_view>

#include "quantkit/minifloat.hpp"

namespace quantkit {

class QuantDType {
 public:
  static QuantDType int_(int bits);
  static QuantDType uint(int bits);
  static QuantDType fp8_e4m3fn() { return floating(MinifloatKind::e4m3fn); }
  static QuantDType fp8_e5m2() { return floating(MinifloatKind::e5m2); }
  static QuantDType fp6_e3m2() { return floating(MinifloatKind::e3m2); }
  static QuantDType fp6_e2m3() { return floating(MinifloatKind::e2m3); }
  static QuantDType fp4_e2m1() { return floating(MinifloatKind::e2m1); }
  static QuantDType floating(MinifloatKind kind);
  /// "int4", "uint8", "int5", "fp8_e4m3fn", "fp4_e2m1", ... Throws Error otherwise.
  static QuantDType from_name(std::string_view name);

  /// Same format, range narrowed to [quant_min, quant_max] (integer formats only).
  QuantDType with_range(long long quant_min, long long quant_max) const;

  bool is_floating() const { return minifloat_.has_value(); }
  bool is_signed() const { return is_signed_; }
  int bits() const { return bits_; }
  double quant_min() const { return quant_min_; }
  double quant_max() const { return quant_max_; }
  /// The full range of the format, ignoring with_range().
  double type_min() const;
  double type_max() const;
  /// Trait row of a floating format. Throws Error for integer formats.
  const MinifloatFormat& minifloat() const;
  /// "int4", or "int8[-127,127]" when the range was narrowed.
  std::string name() const;

  friend bool operator==(const QuantDType&, const QuantDType&) = default;

 private:
  QuantDType(int bits, bool is_signed, std::optional<MinifloatKind> minifloat, double qmin,
             double qmax)
      : bits_(bits),
        is_signed_(is_signed),
        minifloat_(minifloat),
        quant_min_(qmin),
        quant_max_(qmax) {}

  int bits_;
  bool is_signed_;
  std::optional<MinifloatKind> minifloat_;
  double quant_min_;
  double quant_max_;
};

}  // namespace quantkit
