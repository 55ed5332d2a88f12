// torch.ao HistogramObserver (torch 2.13), bit for bit on float32 data. Every
// step below names the PyTorch op it reproduces and the precision it runs in:
// float32 tensor ops round each op; Python scalars are doubles until they
// enter a tensor op, where they become float32; torch.linspace uses
// fma(step, i, start); torch.cumsum accumulates in double.
#include <algorithm>
#include <cmath>
#include <limits>

#include "core/internal/block_layout.hpp"
#include "core/internal/float_io.hpp"
#include "observers/histogram_ranges.hpp"
#include "observers/state_fields.hpp"
#include "quantkit/enum_names.hpp"
#include "quantkit/error.hpp"
#include "quantkit/observers.hpp"
#include "reference/element_ops.hpp"
#include "reference/torch_sum.hpp"

namespace quantkit {
namespace {

constexpr std::int64_t kUpsample = 16;  // torch.ao's upsample_rate

float f32(double value) {
  return static_cast<float>(value);
}

float torch_sum(const std::vector<float>& values) {
  return reference::torch_cpu_sum(values, ScalarType::float32);
}

// torch.linspace(start, end, steps) in float32.
std::vector<float> linspace(float start, float end, std::int64_t steps) {
  const float step = (end - start) / static_cast<float>(steps - 1);
  const std::int64_t halfway = steps / 2;
  std::vector<float> out(static_cast<std::size_t>(steps));
  for (std::int64_t i = 0; i < steps; ++i) {
    out[i] = i < halfway ? std::fma(step, static_cast<float>(i), start)
                         : std::fma(-step, static_cast<float>(steps - i - 1), end);
  }
  return out;
}

// torch.histc(x, bins, min=lo, max=hi) on float32 data: counts added to
// `hist`. Chunks are counted in integers on separate threads and added at the
// end; integer counts are exact whatever the split (torch's per-thread float
// counts are too, below 2^24 per bin).
void histc(std::span<const float> x, std::int64_t bins, float lo, float hi,
           std::vector<float>& hist) {
  double left = lo, right = hi;
  if (left == right) {  // histc widens an empty range by one on each side
    left -= 1;
    right += 1;
  }
  const float edge_lo = f32(left), edge_hi = f32(right);
  const float width = edge_hi - edge_lo;
  const auto fbins = static_cast<float>(bins);
  const float last_bin = fbins - 1.0f;
  constexpr std::int64_t kChunk = 1 << 14;
  constexpr std::int64_t kTile = 512;
  const auto n = static_cast<std::int64_t>(x.size());
  const std::int64_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<std::vector<std::uint32_t>> partial(static_cast<std::size_t>(chunks));
#pragma omp parallel for schedule(static) if (chunks > 1)
  for (std::int64_t c = 0; c < chunks; ++c) {
    auto& counts = partial[c];
    counts.assign(static_cast<std::size_t>(bins) + 1,
                  0);  // the extra bin takes what is out of range
    std::int32_t pos[kTile];
    const std::int64_t end = std::min(n, (c + 1) * kChunk);
    for (std::int64_t tile = c * kChunk; tile < end; tile += kTile) {
      const std::int64_t count = std::min(kTile, end - tile);
      const float* e = x.data() + tile;
      // Branch-free so the compiler vectorizes it: the same IEEE operations as
      // torch's loop, lane by lane.
      for (std::int64_t i = 0; i < count; ++i) {
        const float v = e[i];
        const float scaled = (v - edge_lo) * fbins / width;
        const float capped = scaled < last_bin ? scaled : last_bin;  // pos == bins -> bins - 1
        const float inside = ((v >= edge_lo) & (v <= edge_hi)) ? capped : fbins;
        pos[i] = static_cast<std::int32_t>(inside);
      }
      for (std::int64_t i = 0; i < count; ++i) ++counts[static_cast<std::size_t>(pos[i])];
    }
  }
  std::vector<std::uint64_t> total(static_cast<std::size_t>(bins), 0);
  for (const auto& counts : partial) {
    for (std::size_t b = 0; b < total.size(); ++b) total[b] += counts[b];
  }
  for (std::size_t b = 0; b < total.size(); ++b) {
    if (total[b] != 0) hist[b] += static_cast<float>(total[b]);
  }
}

// _upscale_histogram: each bin split into 16 sub-bins whose mass goes to the
// new bin holding the sub-bin's midpoint (bucketize right=True, bincount).
std::vector<float> upscale(const std::vector<float>& hist, float orig_min, float orig_max,
                           float new_min, float new_max) {
  const auto bins = static_cast<std::int64_t>(hist.size());
  const float sub_width = (orig_max - orig_min) / static_cast<float>(bins * kUpsample);
  const float half_sub = 0.5f * sub_width;
  const std::vector<float> mids = linspace(orig_min, orig_max, bins * kUpsample + 1);
  const std::vector<float> edges = linspace(new_min, new_max, bins + 1);
  std::vector<float> out(hist.size(), 0.0f);
  for (std::int64_t k = 0; k < bins * kUpsample; ++k) {
    const float mid = mids[k] + half_sub;
    auto bucket = std::upper_bound(edges.begin(), edges.end(), mid) - edges.begin() - 1;
    bucket = std::clamp<std::int64_t>(bucket, 0, bins - 1);
    out[bucket] += hist[k / kUpsample] / static_cast<float>(kUpsample);
  }
  return out;
}

// A histogram over [min, max] moved onto [new_min, new_max] the way
// _combine_histograms moves the history: unchanged when the range is, all
// mass into one bin when the history was constant, else upscaled.
std::vector<float> rebin(const std::vector<float>& hist, float min, float max, float new_min,
                         float new_max) {
  if (new_min == min && new_max == max) return hist;
  if (min == max) {
    std::vector<float> moved(hist.size(), 0.0f);
    const float single[1] = {min};
    histc(single, static_cast<std::int64_t>(hist.size()), new_min, new_max, moved);
    const float mass = torch_sum(hist);
    for (float& m : moved) m *= mass;
    return moved;
  }
  return upscale(hist, min, max, new_min, new_max);
}

// c10::div_floor_floating.
float div_floor(float a, float b) {
  if (b == 0) return a / b;
  // Away from integer quotients every floor division agrees with floor(a / b);
  // only near them (and at 0, for its sign) does c10's formula need to run.
  const float quotient = a / b;
  const float nearest = std::nearbyint(quotient);
  if (std::fabs(quotient - nearest) > 1e-3f * std::max(1.0f, std::fabs(quotient))) {
    return std::floor(quotient);
  }
  const float mod = std::fmod(a, b);
  float div = (a - mod) / b;
  if (mod != 0 && (b < 0) != (mod < 0)) div -= 1.0f;
  if (div == 0) return std::copysign(0.0f, a / b);
  float floored = std::floor(div);
  if (div - floored > 0.5f) floored += 1.0f;
  return floored;
}

// _get_norm: density * (end^3 - begin^3) / 3, one float32 rounding per op.
float norm_of(float begin, float end, float density) {
  const float cube_end = end * end * end;
  const float cube_begin = begin * begin * begin;
  return density * ((cube_end - cube_begin) / 3.0f);
}

// _compute_quantization_error(start, end): the L2 error of mapping source bins
// [start, end] onto dst_bins uniform bins.
double quantization_error(const std::vector<float>& hist, float min_val, float max_val,
                          std::int64_t start, std::int64_t end, std::int64_t dst_bins) {
  const auto bins = static_cast<std::int64_t>(hist.size());
  const double bin_width =
      (static_cast<double>(max_val) - static_cast<double>(min_val)) / static_cast<double>(bins);
  const double dst_width =
      bin_width * static_cast<double>(end - start + 1) / static_cast<double>(dst_bins);
  if (dst_width == 0.0) return 0.0;
  const float bw = f32(bin_width), dw = f32(dst_width), half_dw = f32(dst_width / 2);
  const float minus_half_dw = f32(-dst_width / 2);
  const float last_dst = static_cast<float>(dst_bins - 1);
  std::vector<float> norm(hist.size());
  for (std::int64_t i = 0; i < bins; ++i) {
    if (hist[i] == 0) {  // density 0: every term is +-0, and a signed zero cannot change the sum
      norm[i] = 0.0f;
      continue;
    }
    const float src_begin = static_cast<float>(i - start) * bw;
    const float src_end = src_begin + bw;
    const float dst_of_begin = std::clamp(div_floor(src_begin, dw), 0.0f, last_dst);
    const float dst_of_end = std::clamp(div_floor(src_end, dw), 0.0f, last_dst);
    const float density = hist[i] / bw;
    const float begin_center = (dst_of_begin + 0.5f) * dw;
    float total = 0.0f + norm_of(src_begin - begin_center, half_dw, density);
    const float inner = (dst_of_end - dst_of_begin) - 1.0f;
    total += inner * norm_of(minus_half_dw, half_dw, density);
    const float end_center = dst_of_end * dw + half_dw;
    total += norm_of(minus_half_dw, src_end - end_center, density);
    norm[i] = total;
  }
  return torch_sum(norm);
}

}  // namespace

namespace {
constexpr EnumNames<HistogramMethod, 4> kMethods{{
    {HistogramMethod::torch_l2, "torch_l2"},
    {HistogramMethod::entropy, "entropy"},
    {HistogramMethod::percentile, "percentile"},
    {HistogramMethod::mse, "mse"},
}};
}  // namespace

std::string_view name(HistogramMethod method) {
  return name_in(kMethods, method);
}

HistogramMethod histogram_method_from_name(std::string_view text) {
  return value_in(kMethods, text, "histogram method");
}

HistogramObserver::HistogramObserver(QuantSpec spec, std::int64_t bins, HistogramMethod method,
                                     double percentile)
    : Observer(std::move(spec)), bins_(bins), method_(method), percentile_(percentile) {
  QK_CHECK(percentile > 50 && percentile <= 100, "percentile ", percentile,
           " must lie in (50, 100]");
  QK_CHECK(bins >= 1 && bins <= (1 << 24), "bins ", bins, " must lie in [1, 2^24]");
  QK_CHECK(spec_.granularity.kind() == Granularity::Kind::per_tensor,
           "HistogramObserver is per-tensor (as torch.ao's); got ", spec_.granularity.describe());
  QK_CHECK(!spec_.dtype.is_floating() && spec_.mapping != Mapping::stretched,
           "HistogramObserver serves integer formats with min/max mappings; got ",
           spec_.describe());
}

void HistogramObserver::observe(TensorView x) {
  internal::check_float_input(x.dtype(), "x");
  if (x.numel() == 0) return;  // as torch.ao: an empty batch changes nothing
  // float32 contiguous data is read in place; other inputs widen exactly.
  std::vector<float> widened;
  std::span<const float> values;
  if (x.dtype() == ScalarType::float32 && x.is_contiguous()) {
    values = {static_cast<const float*>(x.data()), static_cast<std::size_t>(x.numel())};
  } else {
    widened = internal::load_floats(x);
    values = widened;
  }
  const BlockRange range = block_range(x, Granularity::per_tensor());  // Error on NaN / Inf
  const float lo = range.min.data<float>()[0], hi = range.max.data<float>()[0];
  if (batches_ == 0) {
    histogram_.assign(static_cast<std::size_t>(bins_), 0.0f);
    histc(values, bins_, lo, hi, histogram_);
    min_ = lo;
    max_ = hi;
  } else {
    const float new_min = std::min(min_, lo), new_max = std::max(max_, hi);
    std::vector<float> update(static_cast<std::size_t>(bins_), 0.0f);
    histc(values, bins_, new_min, new_max, update);
    fold(update, new_min, new_max);
  }
  ++batches_;
}

// torch.ao forward after the first batch / _combine_histograms.
void HistogramObserver::fold(const std::vector<float>& update, float new_min, float new_max) {
  if (new_min == min_ && new_max == max_) {  // the common case: no history to move
    for (std::size_t i = 0; i < histogram_.size(); ++i) histogram_[i] += update[i];
    return;
  }
  const std::vector<float> moved = rebin(histogram_, min_, max_, new_min, new_max);
  for (std::size_t i = 0; i < histogram_.size(); ++i) histogram_[i] = update[i] + moved[i];
  min_ = new_min;
  max_ = new_max;
}

std::pair<float, float> HistogramObserver::search_range() const {
  QK_CHECK(batches_ > 0, "HistogramObserver has observed no data: call observe() before qparams()");
  switch (method_) {
    case HistogramMethod::torch_l2:
      return torch_l2_range();
    case HistogramMethod::entropy:
      return histogram_ranges::entropy(histogram_, min_, max_, spec_);
    case HistogramMethod::percentile:
      return histogram_ranges::percentile(histogram_, min_, max_, percentile_);
    case HistogramMethod::mse:
      return histogram_ranges::mse(histogram_, min_, max_, spec_);
  }
  return {min_, max_};
}

std::pair<float, float> HistogramObserver::torch_l2_range() const {
  const auto dst_bins = std::int64_t{1} << spec_.dtype.bits();
  const float bin_width = (max_ - min_) / static_cast<float>(bins_);
  const double total = torch_sum(histogram_);
  std::vector<float> cumulative(histogram_.size());
  double running = 0;
  for (std::size_t i = 0; i < histogram_.size(); ++i) {
    running += histogram_[i];
    cumulative[i] = f32(running);
  }
  constexpr double kStep = 1e-5;
  double alpha = 0.0, beta = 1.0, norm_min = std::numeric_limits<double>::infinity();
  std::int64_t start = 0, end = bins_ - 1;
  while (alpha < beta) {
    const double next_alpha = alpha + kStep, next_beta = beta - kStep;
    std::int64_t l = start, r = end;
    while (l < end && cumulative[l] < f32(next_alpha * total)) ++l;
    while (r > start && cumulative[r] > f32(next_beta * total)) --r;
    std::int64_t next_start = start, next_end = end;
    if (l - start > end - r) {
      next_start = l;
      alpha = next_alpha;
    } else {
      next_end = r;
      beta = next_beta;
    }
    if (next_start == start && next_end == end) continue;
    const double norm = quantization_error(histogram_, min_, max_, next_start, next_end, dst_bins);
    if (norm > norm_min) break;
    norm_min = norm;
    start = next_start;
    end = next_end;
  }
  return {min_ + bin_width * static_cast<float>(start),
          min_ + bin_width * static_cast<float>(end + 1)};
}

QParams HistogramObserver::qparams() const {
  const auto [lo, hi] = search_range();
  return choose_qparams(Tensor::full({1}, lo), Tensor::full({1}, hi), spec_);
}

void HistogramObserver::reset() {
  histogram_.clear();
  batches_ = 0;
}

void HistogramObserver::merge(const Observer& other) {
  const auto* same = dynamic_cast<const HistogramObserver*>(&other);
  QK_CHECK(same != nullptr && same->bins_ == bins_,
           "HistogramObserver can merge only a HistogramObserver with the same bin count (", bins_,
           ")");
  observer_state::check_merge_spec("HistogramObserver", spec_, same->spec_);
  if (same->batches_ == 0) return;
  if (batches_ == 0) {
    histogram_ = same->histogram_;
    min_ = same->min_;
    max_ = same->max_;
    batches_ = same->batches_;
    return;
  }
  const float new_min = std::min(min_, same->min_), new_max = std::max(max_, same->max_);
  fold(rebin(same->histogram_, same->min_, same->max_, new_min, new_max), new_min, new_max);
  batches_ += same->batches_;
}

ObserverState HistogramObserver::state() const {
  ObserverState state{"HistogramObserver",
                      {{"spec", spec_.to_text()},
                       {"batches", std::to_string(batches_)},
                       {"bins", std::to_string(bins_)},
                       {"method", std::string(name(method_))},
                       {"percentile", detail::concat(percentile_)}},
                      {}};
  if (batches_ > 0) {
    Tensor hist = Tensor::uninitialized(ScalarType::float32, {bins_});
    std::copy(histogram_.begin(), histogram_.end(), hist.data<float>());
    state.tensors = {
        {"histogram", hist}, {"min", Tensor::full({1}, min_)}, {"max", Tensor::full({1}, max_)}};
  }
  return state;
}

void HistogramObserver::load_state(const ObserverState& state) {
  QK_CHECK(state.kind == "HistogramObserver", "cannot load a ", state.kind,
           " state into a HistogramObserver");
  observer_state::check_spec(state, spec_);
  const std::int64_t bins = observer_state::integer_field(state, "bins", 1, std::int64_t{1} << 24);
  QK_CHECK(bins == bins_, "HistogramObserver state: field 'bins' is ", bins,
           ", but this observer has ", bins_);
  const std::int64_t count = observer_state::batch_count(state);
  if (count == 0) {
    reset();
    return;
  }
  const Tensor& hist =
      observer_state::tensor_field(state, "histogram", ScalarType::float32, /*non_negative=*/true);
  QK_CHECK(hist.numel() == bins_, "HistogramObserver state: field 'histogram' has ", hist.numel(),
           " bins; this observer has ", bins_);
  const Tensor& lo = observer_state::tensor_field(state, "min", ScalarType::float32);
  const Tensor& hi = observer_state::tensor_field(state, "max", ScalarType::float32);
  QK_CHECK(lo.numel() == 1 && hi.numel() == 1,
           "HistogramObserver state: fields 'min' and 'max' must hold one element each (they "
           "hold ",
           lo.numel(), " and ", hi.numel(), ")");
  observer_state::check_range(state, lo, hi);
  histogram_.assign(hist.data<float>(), hist.data<float>() + bins_);
  min_ = static_cast<float>(lo.get(0));
  max_ = static_cast<float>(hi.get(0));
  batches_ = count;
}

std::string HistogramObserver::describe() const {
  return detail::concat(
      "HistogramObserver ", spec_.describe(), ", ", bins_, " bins, method ", name(method_),
      method_ == HistogramMethod::percentile ? detail::concat(" ", percentile_) : "", ": ",
      batches_, " batches", batches_ > 0 ? detail::concat(", range [", min_, ", ", max_, "]") : "");
}

}  // namespace quantkit
