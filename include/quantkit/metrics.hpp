#pragma once
// Error summary between a reference tensor and its quantized approximation.

#include <cstdint>
#include <string>

#include "quantkit/tensor.hpp"

namespace quantkit {

struct ErrorReport {
  std::int64_t count = 0;
  double mean_abs_diff = 0;  // mean |ref - test|
  double max_abs_diff = 0;   // max |ref - test|
  double sqnr_db = 0;        // 10 log10(sum ref^2 / sum (ref - test)^2); +inf when equal
  double peir = 0;           // peak error-to-interval ratio: max|diff| / (max(ref) - min(ref))
  double cosine = 0;         // cosine similarity (1 when both are zero)
};

/// Computed in double. Shapes must match; NaN in either input is an Error.
ErrorReport error_report(TensorView reference, TensorView test);
/// Box-drawn summary for terminals.
std::string format_report(const ErrorReport& report, const std::string& title);

}  // namespace quantkit
