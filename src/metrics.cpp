#include "quantkit/metrics.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include "quantkit/error.hpp"

namespace quantkit {

ErrorReport error_report(TensorView reference, TensorView test) {
  QK_CHECK(reference.shape() == test.shape(), "reference of shape ", to_string(reference.shape()),
           " and test of shape ", to_string(test.shape()), " must match");
  ErrorReport r;
  r.count = reference.numel();
  double abs_sum = 0, signal = 0, noise = 0, dot = 0, test_energy = 0;
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (std::int64_t i = 0; i < r.count; ++i) {
    const double a = reference.get(i);
    const double b = test.get(i);
    QK_CHECK(!std::isnan(a) && !std::isnan(b), "error_report: NaN at flat index ", i);
    const double diff = a - b;
    abs_sum += std::fabs(diff);
    r.max_abs_diff = std::max(r.max_abs_diff, std::fabs(diff));
    signal += a * a;
    noise += diff * diff;
    dot += a * b;
    test_energy += b * b;
    lo = std::min(lo, a);
    hi = std::max(hi, a);
  }
  if (r.count == 0) return r;
  r.mean_abs_diff = abs_sum / static_cast<double>(r.count);
  r.sqnr_db =
      noise == 0 ? std::numeric_limits<double>::infinity() : 10 * std::log10(signal / noise);
  r.peir = hi > lo ? r.max_abs_diff / (hi - lo)
                   : (r.max_abs_diff == 0 ? 0 : std::numeric_limits<double>::infinity());
  r.cosine = (signal == 0 && test_energy == 0) ? 1.0 : dot / std::sqrt(signal * test_energy);
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
