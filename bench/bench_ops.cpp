// Throughput of quantkit's ops (elements/s, bytes/s) and their fraction of the
// copy roofline measured in the same process: `vs_copy` = time of a copy of
// the same tensor into a preallocated, already-touched output / time of the op
// (ops also allocate their output; BM_Clone shows what allocating costs).
//   build/release/bench/quantkit_bench --benchmark_filter=FakeQuantize
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <map>
#include <random>

#include "quantkit/quantkit.hpp"

namespace qk = quantkit;

namespace {

qk::Tensor make_input(std::int64_t n, qk::ScalarType dtype) {
  qk::Tensor x = qk::Tensor::uninitialized(qk::ScalarType::float32, {n / 4096, 4096});
  std::mt19937 rng(1);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (std::int64_t i = 0; i < n; ++i) x.data<float>()[i] = normal(rng);
  return x.to(dtype);
}

void copy_into(const qk::Tensor& x, qk::Tensor& y) {
  const std::size_t chunk = 1 << 20;
#pragma omp parallel for schedule(static)
  for (std::int64_t c = 0; c < static_cast<std::int64_t>((x.nbytes() + chunk - 1) / chunk); ++c) {
    const std::size_t begin = c * chunk, count = std::min(chunk, x.nbytes() - begin);
    std::memcpy(static_cast<char*>(y.raw_data()) + begin,
                static_cast<const char*>(x.raw_data()) + begin, count);
  }
}

qk::Tensor clone(const qk::Tensor& x) {
  qk::Tensor y = qk::Tensor::uninitialized(x.dtype(), x.shape());
  copy_into(x, y);
  return y;
}

// Seconds per clone of x (best of a few), cached per size and dtype.
double copy_seconds(const qk::Tensor& x) {
  static std::map<std::pair<std::int64_t, int>, double> cache;
  const auto key = std::make_pair(x.numel(), static_cast<int>(x.dtype()));
  if (auto it = cache.find(key); it != cache.end()) return it->second;
  qk::Tensor y = clone(x);  // touched once, then reused: the pure-bandwidth copy
  double best = 1e9;
  for (int r = 0; r < 5; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    copy_into(x, y);
    benchmark::ClobberMemory();
    best = std::min(best,
                    std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return cache[key] = best;
}

qk::Granularity granularity(int index) {
  switch (index) {
    case 0:
      return qk::Granularity::per_tensor();
    case 1:
      return qk::Granularity::per_axis(0);
    default:
      return qk::Granularity::per_group(128);
  }
}

void report(benchmark::State& state, const qk::Tensor& x, std::size_t bytes_per_call) {
  state.SetItemsProcessed(state.iterations() * x.numel());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(bytes_per_call));
  state.counters["vs_copy"] = benchmark::Counter(
      static_cast<double>(state.iterations()) * copy_seconds(x), benchmark::Counter::kIsRate);
}

// Args: log2(elements), dtype (0 f32, 1 bf16), granularity (0 tensor, 1 channel, 2 group-128).
qk::ScalarType dtype_of(std::int64_t i) {
  return i == 0 ? qk::ScalarType::float32 : qk::ScalarType::bfloat16;
}

void BM_Clone(benchmark::State& state) {
  const auto x = make_input(std::int64_t{1} << state.range(0), dtype_of(state.range(1)));
  for (auto _ : state) benchmark::DoNotOptimize(clone(x));
  report(state, x, 2 * x.nbytes());
}

void BM_FakeQuantize(benchmark::State& state) {
  const auto x = make_input(std::int64_t{1} << state.range(0), dtype_of(state.range(1)));
  const auto qp = qk::choose_qparams(
      x, {.dtype = qk::QuantDType::int_(8), .granularity = granularity(state.range(2))});
  for (auto _ : state) benchmark::DoNotOptimize(qk::fake_quantize(x, qp));
  report(state, x, 2 * x.nbytes());
}

// The out= variant: no allocation, so small tensors show the call overhead.
void BM_FakeQuantizeInto(benchmark::State& state) {
  const auto x = make_input(std::int64_t{1} << state.range(0), dtype_of(state.range(1)));
  const auto qp = qk::choose_qparams(
      x, {.dtype = qk::QuantDType::int_(8), .granularity = granularity(state.range(2))});
  qk::Tensor out = qk::Tensor::uninitialized(x.dtype(), x.shape());
  for (auto _ : state) {
    qk::fake_quantize_into(x, qp, out);
    benchmark::DoNotOptimize(out.raw_data());
  }
  report(state, x, 2 * x.nbytes());
}

void BM_Quantize(benchmark::State& state) {
  const auto x = make_input(std::int64_t{1} << state.range(0), dtype_of(state.range(1)));
  const auto qp = qk::choose_qparams(
      x, {.dtype = qk::QuantDType::int_(8), .granularity = granularity(state.range(2))});
  for (auto _ : state) benchmark::DoNotOptimize(qk::quantize(x, qp));
  report(state, x, x.nbytes() + x.numel());
}

void BM_Dequantize(benchmark::State& state) {
  const auto x = make_input(std::int64_t{1} << state.range(0), dtype_of(state.range(1)));
  const auto q = qk::quantize(
      x, qk::choose_qparams(
             x, {.dtype = qk::QuantDType::int_(8), .granularity = granularity(state.range(2))}));
  for (auto _ : state) benchmark::DoNotOptimize(qk::dequantize(q, x.dtype()));
  report(state, x, x.nbytes() + x.numel());
}

void BM_ChooseAndQuantizeInt4G128(benchmark::State& state) {
  const auto x = make_input(std::int64_t{1} << state.range(0), dtype_of(state.range(1)));
  const qk::QuantSpec spec{.dtype = qk::QuantDType::int_(4),
                           .mapping = qk::Mapping::asymmetric,
                           .granularity = qk::Granularity::per_group(128)};
  for (auto _ : state) benchmark::DoNotOptimize(qk::quantize(x, spec));  // fused choose + quantize
  report(state, x, x.nbytes() + x.numel() / 2);
}

void sizes(benchmark::internal::Benchmark* b, bool with_granularity) {
  for (int log2 : {12, 20, 26}) {
    for (int dtype : {0, 1}) {
      if (!with_granularity) {
        b->Args({log2, dtype, 0});
        continue;
      }
      for (int g : {0, 1, 2}) b->Args({log2, dtype, g});
    }
  }
  b->ArgNames({"log2n", "bf16", "granularity"})->UseRealTime()->Unit(benchmark::kMillisecond);
}

BENCHMARK(BM_Clone)->Apply([](auto* b) { sizes(b, false); });
BENCHMARK(BM_FakeQuantize)->Apply([](auto* b) { sizes(b, true); });
BENCHMARK(BM_FakeQuantizeInto)->Apply([](auto* b) { sizes(b, true); });
BENCHMARK(BM_Quantize)->Apply([](auto* b) { sizes(b, true); });
BENCHMARK(BM_Dequantize)->Apply([](auto* b) { sizes(b, true); });
BENCHMARK(BM_ChooseAndQuantizeInt4G128)->Apply([](auto* b) { sizes(b, false); });

}  // namespace

BENCHMARK_MAIN();
