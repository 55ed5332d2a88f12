#include "observers/histogram_ranges.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "quantkit/ops.hpp"
#include "quantkit/qparams.hpp"

namespace quantkit::histogram_ranges {
namespace {

double total_mass(const std::vector<float>& hist) {
  return std::accumulate(hist.begin(), hist.end(), 0.0);
}

// The value below which `fraction` of the mass lies (mass uniform inside a bin).
float quantile(const std::vector<float>& hist, float min, float max, double fraction) {
  const double width = (static_cast<double>(max) - min) / static_cast<double>(hist.size());
  const double target = fraction * total_mass(hist);
  double below = 0;
  for (std::size_t i = 0; i < hist.size(); ++i) {
    if (below + hist[i] >= target && hist[i] > 0) {
      const double inside = (target - below) / hist[i];
      return static_cast<float>(min + width * (static_cast<double>(i) + inside));
    }
    below += hist[i];
  }
  return max;
}

// |x| histogram over [0, amax] with `bins` bins, from the signed one: each
// source bin's mass spread uniformly over its |x| interval.
std::vector<double> magnitude_histogram(const std::vector<float>& hist, float min, float max,
                                        std::size_t bins, double amax) {
  std::vector<double> out(bins, 0.0);
  const double width = (static_cast<double>(max) - min) / static_cast<double>(hist.size());
  const double out_width = amax / static_cast<double>(bins);
  for (std::size_t i = 0; i < hist.size(); ++i) {
    if (hist[i] == 0) continue;
    const double a = min + width * static_cast<double>(i), b = a + width;
    // The bin may straddle zero: split it into its negative and positive parts.
    const double pieces[2][2] = {{std::min(a, 0.0), std::min(b, 0.0)},
                                 {std::max(a, 0.0), std::max(b, 0.0)}};
    for (const auto& piece : pieces) {
      double lo = std::fabs(piece[0]), hi = std::fabs(piece[1]);
      if (lo > hi) std::swap(lo, hi);
      const double share = hist[i] * (hi - lo) / width;
      if (share <= 0) continue;
      auto first =
          static_cast<std::size_t>(std::min(lo / out_width, static_cast<double>(bins - 1)));
      auto last = static_cast<std::size_t>(std::min(hi / out_width, static_cast<double>(bins - 1)));
      for (std::size_t k = first; k <= last; ++k) {
        const double overlap = std::min(hi, (k + 1) * out_width) - std::max(lo, k * out_width);
        if (overlap > 0) out[k] += share * overlap / (hi - lo);
      }
    }
  }
  return out;
}

double kl_divergence(const std::vector<double>& p, const std::vector<double>& q) {
  double sum_p = 0, sum_q = 0;
  for (std::size_t i = 0; i < p.size(); ++i) sum_p += p[i], sum_q += q[i];
  double kl = 0;
  for (std::size_t i = 0; i < p.size(); ++i) {
    if (p[i] == 0) continue;
    if (q[i] == 0) return std::numeric_limits<double>::infinity();
    kl += (p[i] / sum_p) * std::log((p[i] / sum_p) / (q[i] / sum_q));
  }
  return kl;
}

}  // namespace

std::pair<float, float> percentile(const std::vector<float>& hist, float min, float max,
                                   double percent) {
  const double fraction = percent / 100.0;
  return {quantile(hist, min, max, 1.0 - fraction), quantile(hist, min, max, fraction)};
}

std::pair<float, float> entropy(const std::vector<float>& hist, float min, float max,
                                const QuantSpec& spec) {
  const double amax =
      std::max(std::fabs(static_cast<double>(min)), std::fabs(static_cast<double>(max)));
  const std::size_t bins = hist.size();
  const auto levels = static_cast<std::size_t>(std::int64_t{1} << (spec.dtype.bits() - 1));
  if (amax == 0 || bins <= levels) return {min, max};
  std::vector<double> magnitudes = magnitude_histogram(hist, min, max, bins, amax);
  // The bin at zero holds every exact zero (ReLU outputs, padding): a spike
  // that any threshold represents exactly, but which would dominate the
  // divergence and pull the threshold towards zero. It is left out.
  magnitudes[0] = 0;
  double best_kl = std::numeric_limits<double>::infinity();
  std::size_t best = bins;
  for (std::size_t i = levels; i <= bins; ++i) {
    // Reference: the first i bins, everything beyond folded into the last one.
    std::vector<double> p(magnitudes.begin(), magnitudes.begin() + static_cast<std::ptrdiff_t>(i));
    for (std::size_t k = i; k < bins; ++k) p[i - 1] += magnitudes[k];
    // Candidate: the first i bins merged into `levels` groups, each group's
    // mass spread back over its non-empty bins.
    std::vector<double> q(i, 0.0);
    const double per_level = static_cast<double>(i) / static_cast<double>(levels);
    for (std::size_t level = 0; level < levels; ++level) {
      const auto begin = static_cast<std::size_t>(std::floor(level * per_level));
      const auto end = std::min(i, static_cast<std::size_t>(std::floor((level + 1) * per_level)));
      double mass = 0;
      std::size_t nonzero = 0;
      for (std::size_t k = begin; k < end; ++k) {
        mass += magnitudes[k];
        nonzero += magnitudes[k] > 0 ? 1 : 0;
      }
      for (std::size_t k = begin; k < end; ++k) {
        if (magnitudes[k] > 0) q[k] = mass / static_cast<double>(nonzero);
      }
    }
    const double kl = kl_divergence(p, q);
    if (kl < best_kl) best_kl = kl, best = i;
  }
  const double threshold = amax * (static_cast<double>(best) + 0.5) / static_cast<double>(bins);
  return {std::max(min, static_cast<float>(-threshold)),
          std::min(max, static_cast<float>(threshold))};
}

std::pair<float, float> mse(const std::vector<float>& hist, float min, float max,
                            const QuantSpec& spec) {
  const std::size_t bins = hist.size();
  const double width = (static_cast<double>(max) - min) / static_cast<double>(bins);
  Tensor centers = Tensor::uninitialized(ScalarType::float32, {static_cast<std::int64_t>(bins)});
  for (std::size_t i = 0; i < bins; ++i) {
    centers.data<float>()[i] = static_cast<float>(min + width * (static_cast<double>(i) + 0.5));
  }
  constexpr int kSteps = 200;
  double best_error = std::numeric_limits<double>::infinity();
  std::pair<float, float> best{min, max};
  for (int step = kSteps; step >= 1; --step) {
    const float factor = static_cast<float>(step) / kSteps;
    const float lo = min * factor, hi = max * factor;
    if (!(lo < hi)) break;
    const QParams qp = choose_qparams(Tensor::full({1}, lo), Tensor::full({1}, hi), spec);
    const Tensor restored = fake_quantize(centers, qp);
    double error = 0;
    for (std::size_t i = 0; i < bins; ++i) {
      const double diff = static_cast<double>(centers.data<float>()[i]) - restored.data<float>()[i];
      error += hist[i] * diff * diff;
    }
    if (error < best_error) best_error = error, best = {lo, hi};
  }
  return best;
}

}  // namespace quantkit::histogram_ranges
