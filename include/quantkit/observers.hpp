#pragma once
// Observers: collect value ranges over calibration batches and turn them into
// qparams with choose_qparams(min, max, spec).
//
// Every observer works at any granularity of its spec (per-tensor, per-axis,
// per-group, per-block, per-token): the first batch fixes the qparams grid and
// every later batch must give the same grid. Ranges are kept in float32 (bf16
// and fp16 inputs widen exactly), as torch.ao's observer buffers are.
//
//   MinMaxObserver obs(spec);
//   for (const auto& batch : batches) obs.observe(batch);
//   QParams qp = obs.qparams();
//
// Errors (quantkit::Error): NaN or Inf in a batch (named by index), a batch
// whose qparams grid differs from the first one, qparams() before any data,
// merging observers of different kinds, specs or grids.
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "quantkit/error.hpp"
#include "quantkit/ops.hpp"
#include "quantkit/qparams.hpp"

namespace quantkit {

/// Everything an observer needs to continue where it stopped: its kind, its
/// settings as text and its buffers as float32 tensors. save/load_state in
/// quantkit/io/observer_state.hpp store it as a safetensors file.
struct ObserverState {
  std::string kind;
  std::map<std::string, std::string> attributes;
  std::map<std::string, Tensor> tensors;
};

class Observer {
 public:
  virtual ~Observer() = default;
  /// Folds one batch in.
  virtual void observe(TensorView x) = 0;
  /// The qparams of what was observed so far; Error before the first batch.
  virtual QParams qparams() const = 0;
  /// Forgets every batch (the spec stays).
  virtual void reset() = 0;
  /// Folds in what `other` observed, as if this observer had seen its
  /// batches too. Error when the kinds, specs or grids differ, or the kind
  /// has no order-free merge.
  virtual void merge(const Observer& other) = 0;
  virtual ObserverState state() const = 0;
  /// Restores a state() of the same kind and spec; Error otherwise.
  virtual void load_state(const ObserverState& state) = 0;
  /// One line, e.g. "MinMaxObserver int8 symmetric per_tensor: 3 batches, range [-1.5, 2]".
  virtual std::string describe() const = 0;

  const QuantSpec& spec() const { return spec_; }
  std::int64_t batches() const { return batches_; }

 protected:
  explicit Observer(QuantSpec spec);
  QuantSpec spec_;
  std::int64_t batches_ = 0;
};

/// Running per-block min / max over all batches (torch.ao MinMaxObserver and
/// PerChannelMinMaxObserver). merge is exact: elementwise min / max.
class MinMaxObserver : public Observer {
 public:
  explicit MinMaxObserver(QuantSpec spec);
  void observe(TensorView x) override;
  QParams qparams() const override;
  void reset() override;
  void merge(const Observer& other) override;
  ObserverState state() const override;
  void load_state(const ObserverState& state) override;
  std::string describe() const override;
  /// The running range (empty before the first batch).
  const Tensor& min() const { return min_; }
  const Tensor& max() const { return max_; }

 protected:
  MinMaxObserver(QuantSpec spec, std::string kind);
  /// Folds a batch's block range into the running one (elementwise min / max).
  virtual void fold(const BlockRange& batch);
  std::string kind_;
  Tensor min_;
  Tensor max_;
};

/// The range of the latest batch only (coreai-opt's static calculator): the
/// weight observer of QAT, where each step's weights replace the last. merge
/// is an Error (there is no "latest" across shards).
class LatestMinMaxObserver : public MinMaxObserver {
 public:
  explicit LatestMinMaxObserver(QuantSpec spec);
  void merge(const Observer& other) override;

 private:
  void fold(const BlockRange& batch) override;
};

/// The stretched (PARQ) initialisation: per block, max|x| and mean|x| over
/// all observed elements, and scale = min(b * mean|x|, max|x|) / (2^(b-1) - 0.5)
/// (Mapping::stretched). After one batch the qparams equal
/// choose_qparams(batch, spec) bit for bit (PyTorch's summation order); over
/// several batches mean|x| is the double-precision sum over the count, rounded
/// once, so merge equals one observer up to that rounding.
class MeanAbsObserver : public Observer {
 public:
  explicit MeanAbsObserver(QuantSpec spec);
  void observe(TensorView x) override;
  QParams qparams() const override;
  void reset() override;
  void merge(const Observer& other) override;
  ObserverState state() const override;
  void load_state(const ObserverState& state) override;
  std::string describe() const override;

 private:
  ScalarType compute_ = ScalarType::float32;
  Shape grid_;
  std::vector<float> amax_;
  std::vector<double> sum_abs_;
  std::vector<float> first_mean_;  // PyTorch-exact mean of the first batch
  double count_ = 0;               // elements per block, over all batches
};

/// Exponential moving average of the per-block min / max (torch.ao
/// MovingAverageMinMaxObserver / MovingAveragePerChannelMinMaxObserver): the
/// first batch sets the range; later ones update m = m + c * (batch - m), each
/// step rounded to float32. The average depends on the batch order, so merge
/// is an Error.
class MovingAverageObserver : public MinMaxObserver {
 public:
  explicit MovingAverageObserver(QuantSpec spec, double averaging_constant = 0.01);
  void merge(const Observer& other) override;
  ObserverState state() const override;
  void load_state(const ObserverState& state) override;
  std::string describe() const override;
  double averaging_constant() const { return averaging_constant_; }

 private:
  void fold(const BlockRange& batch) override;
  double averaging_constant_;
};

/// A user-given float range with either end optional (coreai-opt's
/// `float_range`): a given end is used as is; a missing one comes from the
/// running min / max of the observed data. With an integer zero point the
/// range must include zero (a given min <= 0 <= a given max; observed ends
/// are clamped toward zero), the rule that keeps 0 exactly representable; a
/// range far from zero needs the float zero-point domain, which represents it
/// without widening. The first batch fixes the qparams grid, so qparams()
/// needs one observe() even when both ends are given.
class FixedRangeObserver : public MinMaxObserver {
 public:
  FixedRangeObserver(QuantSpec spec, std::optional<double> min, std::optional<double> max);
  QParams qparams() const override;
  void merge(const Observer& other) override;
  ObserverState state() const override;
  void load_state(const ObserverState& state) override;
  std::string describe() const override;

 private:
  std::optional<double> fixed_min_;
  std::optional<double> fixed_max_;
};

/// Fixed scale / zero point (torch.ao FixedQParamsObserver, coreai-opt
/// `fixed_calibration`): observe() only checks that the batch fits the grid.
class FixedQParamsObserver : public Observer {
 public:
  explicit FixedQParamsObserver(QParams qparams);
  void observe(TensorView x) override;
  QParams qparams() const override { return qparams_; }
  void reset() override { batches_ = 0; }
  void merge(const Observer& other) override;
  ObserverState state() const override;
  void load_state(const ObserverState& state) override;
  std::string describe() const override;

 private:
  QParams qparams_;
};

/// torch.ao HistogramObserver, re-implemented bit for bit (torch 2.13, float32
/// data): a `bins`-bin histogram over the running range, combined across
/// batches by upsampling the old histogram 16x into the new range, and qparams
/// from the non-linear L2 search that trims the range to minimise the
/// quantization error of 2^bits destination bins. Per-tensor only. bf16 / fp16
/// batches are widened to float32 first (torch.ao histograms them in their own
/// dtype, whose counts saturate). NaN and Inf are Errors (torch.ao drops Inf
/// with a warning). merge combines histograms exactly as a later batch would.
/// How a HistogramObserver turns its histogram into a range.
enum class HistogramMethod : std::uint8_t {
  torch_l2,    // torch.ao's non-linear L2 search (bit-identical)
  entropy,     // TensorRT-style KL-divergence threshold on |x|
  percentile,  // the (100 - p) % and p % quantiles of the mass
  mse,         // the shrink of [min, max] with the least quantization MSE
};
std::string_view name(HistogramMethod method);
/// "torch_l2", "entropy", "percentile" or "mse"; Error otherwise.
HistogramMethod histogram_method_from_name(std::string_view text);

class HistogramObserver : public Observer {
 public:
  /// `percentile` is used by HistogramMethod::percentile only (in (50, 100]).
  explicit HistogramObserver(QuantSpec spec, std::int64_t bins = 2048,
                             HistogramMethod method = HistogramMethod::torch_l2,
                             double percentile = 99.99);
  void observe(TensorView x) override;
  QParams qparams() const override;
  void reset() override;
  void merge(const Observer& other) override;
  ObserverState state() const override;
  void load_state(const ObserverState& state) override;
  std::string describe() const override;
  /// The range the method keeps, [min, max]; Error before any data.
  std::pair<float, float> search_range() const;
  HistogramMethod method() const { return method_; }
  const std::vector<float>& histogram() const { return histogram_; }
  float min() const { return min_; }
  float max() const { return max_; }

 private:
  void fold(const std::vector<float>& update, float update_min, float update_max);
  std::pair<float, float> torch_l2_range() const;
  std::int64_t bins_;
  HistogramMethod method_;
  double percentile_;
  std::vector<float> histogram_;
  float min_ = 0;
  float max_ = 0;
};

/// The observer a state() came from, restored.
std::unique_ptr<Observer> observer_from_state(const ObserverState& state, const QuantSpec& spec);

}  // namespace quantkit
