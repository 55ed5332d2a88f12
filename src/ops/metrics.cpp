#include "quantkit/metrics.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include "quantkit/error.hpp"
#include "quantkit/half.hpp"

namespace quantkit {

namespace {

// Running sums in element order (the order, hence every digit, is the same on
// the typed fast path and the generic one).
struct Sums {
  double abs_sum = 0, signal = 0, noise = 0, dot = 0, test_energy = 0, max_abs_diff = 0;
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  void add(double a, double b, std::int64_t i) {
    QK_CHECK(!std::isnan(a) && !std::isnan(b), "error_report: NaN at flat index ", i);
    const double diff = a - b;
    abs_sum += std::fabs(diff);
    max_abs_diff = std::max(max_abs_diff, std::fabs(diff));
    signal += a * a;
    noise += diff * diff;
    dot += a * b;
    test_energy += b * b;
    lo = std::min(lo, a);
    hi = std::max(hi, a);
  }
};

double widen(float x) {
  return x;
}
double widen(BFloat16 x) {
  return x.to_float();
}
double widen(Float16 x) {
  return x.to_float();
}

// Calls f with a typed pointer to a contiguous float32 / bfloat16 / float16
// view; false for anything else.
template <typename F>
bool with_float_pointer(TensorView x, F&& f) {
  if (!x.is_contiguous()) return false;
  switch (x.dtype()) {
    case ScalarType::float32:
      f(static_cast<const float*>(x.data()));
      return true;
    case ScalarType::bfloat16:
      f(static_cast<const BFloat16*>(x.data()));
      return true;
    case ScalarType::float16:
      f(static_cast<const Float16*>(x.data()));
      return true;
    default:
      return false;
  }
}

}  // namespace

ErrorReport error_report(TensorView reference, TensorView test) {
  QK_CHECK(reference.shape() == test.shape(), "reference of shape ", to_string(reference.shape()),
           " and test of shape ", to_string(test.shape()), " must match");
  ErrorReport r;
  r.count = reference.numel();
  Sums sums;
  bool typed = false;
  with_float_pointer(reference, [&](const auto* a) {
    typed = with_float_pointer(test, [&](const auto* b) {
      for (std::int64_t i = 0; i < r.count; ++i) sums.add(widen(a[i]), widen(b[i]), i);
    });
  });
  if (!typed) {
    for (std::int64_t i = 0; i < r.count; ++i) sums.add(reference.get(i), test.get(i), i);
  }
  if (r.count == 0) return r;
  r.max_abs_diff = sums.max_abs_diff;
  r.mean_abs_diff = sums.abs_sum / static_cast<double>(r.count);
  r.sqnr_db = sums.noise == 0 ? std::numeric_limits<double>::infinity()
                              : 10 * std::log10(sums.signal / sums.noise);
  r.peir = sums.hi > sums.lo ? r.max_abs_diff / (sums.hi - sums.lo)
                             : (r.max_abs_diff == 0 ? 0 : std::numeric_limits<double>::infinity());
  r.cosine = (sums.signal == 0 && sums.test_energy == 0)
                 ? 1.0
                 : sums.dot / std::sqrt(sums.signal * sums.test_energy);
  return r;
}

std::string format_report(const ErrorReport& report, const std::string& title) {
  char body[512];
  std::snprintf(body, sizeof body,
                "│ Mean |diff|: %.6g\n│ Max |diff| : %.6g\n│ SQNR       : %.2f dB\n"
                "│ PEIR       : %.6f %%\n│ Cosine     : %.8f\n",
                report.mean_abs_diff, report.max_abs_diff, report.sqnr_db, report.peir * 100,
                report.cosine);
  return "┌── " + title + "\n" + body + "└──────────────────────────────\n";
}

}  // namespace quantkit
