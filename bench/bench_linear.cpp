// linear() with quantized weights read in place (include/quantkit/linear.hpp):
// decode-shaped (1 row) and prefill-shaped (128 rows) products at K = 4096,
// N = 4096 or 11008. `vs_copy` is the time to copy the weight's bytes (memcpy
// of a preallocated buffer, warm) over the product's time: a batch-1 product
// reads every weight byte once, so it cannot be much above 1.
//   build/release/bench/quantkit_bench --benchmark_filter=Linear
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstring>
#include <random>
#include <vector>

#include "quantkit/quantkit.hpp"

namespace qk = quantkit;

namespace {

constexpr std::int64_t kInFeatures = 4096;

qk::Tensor normal(qk::Shape shape, float sd, std::uint32_t seed) {
  qk::Tensor x = qk::Tensor::uninitialized(qk::ScalarType::float32, shape);
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, sd);
  for (std::int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = dist(rng);
  return x;
}

double copy_seconds(std::size_t bytes) {
  std::vector<char> a(bytes, 1), b(bytes, 2);
  double best = 1e9;
  for (int r = 0; r < 5; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    std::memcpy(b.data(), a.data(), bytes);
    benchmark::ClobberMemory();
    best = std::min(best,
                    std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

// Formats: 0 dense fp32, 1 int4 g128, 2 int8 per channel, 3 nvfp4,
// 4 int8 per-token inputs x int4 g32 (the integer path).
qk::QuantSpec weight_spec(std::int64_t format) {
  switch (format) {
    case 1:
      return {.dtype = qk::QuantDType::int_(4), .granularity = qk::Granularity::per_group(128)};
    case 2:
      return {.dtype = qk::QuantDType::int_(8), .granularity = qk::Granularity::per_axis(0)};
    case 3:
      return {.dtype = qk::QuantDType::fp4_e2m1(),
              .granularity = qk::Granularity::per_group(16),
              .scale_dtype = qk::ScaleDType::fp8_e4m3fn,
              .global_scale = true};
    default:
      return {.dtype = qk::QuantDType::int_(4), .granularity = qk::Granularity::per_group(32)};
  }
}

// Args: rows, out_features, format.
void BM_Linear(benchmark::State& state) {
  const std::int64_t rows = state.range(0), n = state.range(1), format = state.range(2);
  const qk::Tensor w = normal({n, kInFeatures}, 0.02f, 1);
  const qk::Tensor x = normal({rows, kInFeatures}, 1.0f, 2);
  std::size_t weight_bytes = static_cast<std::size_t>(w.nbytes());
  if (format == 0) {
    for (auto _ : state) benchmark::DoNotOptimize(qk::linear(x, w));
  } else {
    const qk::QuantizedTensor q = qk::quantize(w, weight_spec(format));
    const qk::LinearWeight weight(q, qk::ScalarType::float32);
    weight_bytes = q.packed().size() + static_cast<std::size_t>(q.qparams().scale.nbytes());
    const qk::QuantSpec per_token{.dtype = qk::QuantDType::int_(8),
                                  .mapping = qk::Mapping::asymmetric,
                                  .granularity = qk::Granularity::per_token()};
    for (auto _ : state) {
      if (format == 4) {
        benchmark::DoNotOptimize(qk::linear_int(x, per_token, weight));
      } else {
        benchmark::DoNotOptimize(qk::linear(x, weight));
      }
    }
  }
  state.SetItemsProcessed(state.iterations() * 2 * rows * n * kInFeatures);  // flops
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(weight_bytes));
  state.counters["vs_copy"] =
      benchmark::Counter(static_cast<double>(state.iterations()) * copy_seconds(weight_bytes),
                         benchmark::Counter::kIsRate);
}

BENCHMARK(BM_Linear)
    ->ArgsProduct({{1, 128}, {4096, 11008}, {0, 1, 2, 3, 4}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
