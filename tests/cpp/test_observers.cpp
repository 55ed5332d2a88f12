// Observers: hand-derived ranges and qparams, exact merge, exact state files,
// and the errors of every misuse.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>

#include "quantkit/io/observer_state.hpp"
#include "quantkit/observers.hpp"

namespace quantkit {
namespace {

QuantSpec uint8_affine(Granularity granularity = Granularity::per_tensor()) {
  return QuantSpec{.dtype = QuantDType::uint(8),
                   .mapping = Mapping::asymmetric,
                   .granularity = granularity,
                   .eps = std::ldexp(1.0, -23)};
}

TEST(Observers, MinMaxAccumulatesAcrossBatches) {
  // torch.ao's worked check: x = [1..6] then [4..8] -> min 1, max 8;
  // affine quint8: scale 8 / 255, zero point 0.
  MinMaxObserver observer(uint8_affine());
  observer.observe(Tensor::from_values({1, 2, 3, 4, 5, 6}, {6}));
  observer.observe(Tensor::from_values({4, 5, 6, 7, 8}, {5}));
  EXPECT_EQ(observer.min().get(0), 1.0);
  EXPECT_EQ(observer.max().get(0), 8.0);
  const QParams qp = observer.qparams();
  EXPECT_EQ(qp.scale.get(0), static_cast<double>(8.0f / 255.0f));
  EXPECT_EQ(qp.zero_point.get(0), 0.0);
  EXPECT_NE(observer.describe().find("2 batches, range [1, 8]"), std::string::npos)
      << observer.describe();
}

TEST(Observers, MovingAverageStartsAtTheFirstBatch) {
  MovingAverageObserver observer(uint8_affine(), 0.5);
  observer.observe(Tensor::from_values({0, 2}, {2}));
  observer.observe(Tensor::from_values({-2, 4}, {2}));  // m + 0.5 * (x - m)
  EXPECT_EQ(observer.min().get(0), -1.0);
  EXPECT_EQ(observer.max().get(0), 3.0);
  EXPECT_THROW(observer.merge(MovingAverageObserver(uint8_affine(), 0.5)), Error);
}

TEST(Observers, MergeOfShardsEqualsOneObserver) {
  const QuantSpec spec = uint8_affine(Granularity::per_group(4));
  MinMaxObserver whole(spec), a(spec), b(spec);
  for (int batch = 0; batch < 5; ++batch) {
    std::vector<double> values(16);
    for (int i = 0; i < 16; ++i) values[i] = std::sin(batch * 16 + i) * (batch + 1);
    const Tensor x = Tensor::from_values(values, {2, 8});
    whole.observe(x);
    (batch < 2 ? a : b).observe(x);
  }
  a.merge(b);
  EXPECT_EQ(a.batches(), 5);
  EXPECT_EQ(a.min().to_vector(), whole.min().to_vector());
  EXPECT_EQ(a.max().to_vector(), whole.max().to_vector());
  EXPECT_EQ(a.qparams().zero_point.to_vector(), whole.qparams().zero_point.to_vector());
}

TEST(Observers, StateFilesRoundTripExactly) {
  const auto path =
      std::filesystem::temp_directory_path() / ("quantkit_obs_" + std::to_string(::getpid()));
  MovingAverageObserver observer(uint8_affine(Granularity::per_axis(0)), 0.125);
  observer.observe(Tensor::from_values({0.1, -0.7, 3.3, 2.0}, {2, 2}));
  observer.observe(Tensor::from_values({1e-3, 5.5, -4.25, 0.3}, {2, 2}));
  io::save_observer_state(path.string(), observer.state());
  const auto back = observer_from_state(io::load_observer_state(path.string()), observer.spec());
  std::filesystem::remove(path);
  EXPECT_EQ(back->describe(), observer.describe());
  EXPECT_EQ(back->qparams().scale.to_vector(), observer.qparams().scale.to_vector());
  EXPECT_THROW(observer_from_state(observer.state(), uint8_affine()), Error);  // another spec
}

TEST(Observers, HistogramWorkedExample) {
  // torch.ao's unit test, derived by hand: bins = 3, x = [2, 3, 4, 5] then
  // [5, 6, 7, 8] -> histogram [2, 3, 3] over [2, 8]; the L2 search keeps
  // [2, 6], so symmetric int8 gets scale 6 / 127.5.
  HistogramObserver observer(QuantSpec{.dtype = QuantDType::int_(8), .eps = std::ldexp(1.0, -23)},
                             3);
  observer.observe(Tensor::from_values({2, 3, 4, 5}, {4}));
  observer.observe(Tensor::from_values({5, 6, 7, 8}, {4}));
  EXPECT_EQ(observer.histogram(), (std::vector<float>{2, 3, 3}));
  EXPECT_EQ(observer.search_range(), (std::pair<float, float>{2, 6}));
  EXPECT_EQ(observer.qparams().scale.get(0), static_cast<double>(6.0f / 127.5f));
  HistogramObserver percentile(QuantSpec{}, 4, HistogramMethod::percentile, 75);
  percentile.observe(Tensor::from_values({0, 1, 2, 3}, {4}));  // one value per bin of width 0.75
  const auto [lo, hi] = percentile.search_range();
  EXPECT_FLOAT_EQ(lo, 0.75f);  // 25 % of the mass lies below the end of the first bin
  EXPECT_FLOAT_EQ(hi, 2.25f);
}

TEST(Observers, MisuseGivesClearErrors) {
  MinMaxObserver observer(uint8_affine(Granularity::per_axis(1)));
  EXPECT_THROW(observer.qparams(), Error);
  observer.observe(Tensor::from_values({1, 2, 3, 4, 5, 6}, {2, 3}));
  try {
    observer.observe(Tensor::from_values({1, 2, 3, 4}, {2, 2}));
    FAIL() << "accepted another grid";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("gives a qparams grid [1, 2]"), std::string::npos)
        << error.what();
  }
  EXPECT_THROW(observer.observe(Tensor::from_values({1, NAN, 3, 4, 5, 6}, {2, 3})), Error);
  EXPECT_THROW(MovingAverageObserver(uint8_affine(), 0.0), Error);
  QuantSpec stretched{.dtype = QuantDType::int_(2), .mapping = Mapping::stretched};
  EXPECT_THROW(MinMaxObserver{stretched}, Error);
  EXPECT_EQ(observer.batches(), 1);  // a rejected batch changes nothing
}

}  // namespace
}  // namespace quantkit
