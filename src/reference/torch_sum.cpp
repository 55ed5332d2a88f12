#include "reference/torch_sum.hpp"

#include <algorithm>
#include <array>
#include <vector>

#include "reference/eager_math.hpp"

namespace quantkit::reference {
namespace {

constexpr int kMaxLanes = 16;
using Lanes = std::array<float, kMaxLanes>;

struct Layout {
  int lanes;       // float accumulator lanes
  int load_width;  // input elements consumed per vector load
};

Layout layout_for(ScalarType dtype) {
  if (dtype == ScalarType::float32) return {8, 8};
  return {16, 32};  // bf16 / fp16 loads of 32 elements reduced to 16 float lanes
}

// One vector load: the input elements folded into `lanes` float lanes.
Lanes load(std::span<const float> v, ScalarType dtype, const Layout& layout) {
  Lanes out{};
  for (int i = 0; i < layout.lanes; ++i) {
    if (dtype == ScalarType::float32) {
      out[i] = v[i];
    } else if (dtype == ScalarType::bfloat16) {
      out[i] = v[i] + v[i + 16];
    } else {
      out[i] = (0.0f + v[2 * i]) + v[2 * i + 1];
    }
  }
  return out;
}

void add(Lanes& acc, const Lanes& x, int lanes) {
  for (int i = 0; i < lanes; ++i) acc[i] += x[i];
}

int ceil_log2(std::int64_t n) {
  int bits = 0;
  while ((std::int64_t{1} << bits) < n) ++bits;
  return bits;
}

// ATen multi_row_sum: `rows` items of `nrows` lane-vectors each, summed over
// the items with a 4-level cascade. item(i, k) yields row k of item i.
template <typename Item>
std::array<Lanes, 4> multi_row_sum(std::int64_t rows, int lanes, Item&& item) {
  constexpr int kLevels = 4;
  const int level_power = std::max(4, ceil_log2(rows) / kLevels);
  const std::int64_t level_step = std::int64_t{1} << level_power;
  const std::int64_t level_mask = level_step - 1;
  std::array<std::array<Lanes, 4>, kLevels> acc{};
  std::int64_t i = 0;
  for (; i + level_step <= rows;) {
    for (std::int64_t j = 0; j < level_step; ++j, ++i) {
      for (int k = 0; k < 4; ++k) add(acc[0][k], item(i, k), lanes);
    }
    for (int j = 1; j < kLevels; ++j) {
      for (int k = 0; k < 4; ++k) {
        add(acc[j][k], acc[j - 1][k], lanes);
        acc[j - 1][k] = Lanes{};
      }
      if ((i & (level_mask << (j * level_power))) != 0) break;
    }
  }
  for (; i < rows; ++i) {
    for (int k = 0; k < 4; ++k) add(acc[0][k], item(i, k), lanes);
  }
  for (int j = 1; j < kLevels; ++j) {
    for (int k = 0; k < 4; ++k) add(acc[0][k], acc[j][k], lanes);
  }
  return acc[0];
}

// ATen row_sum: a run of `count` items read four-way interleaved.
template <typename Item>
Lanes row_sum(std::int64_t count, int lanes, Item&& item) {
  const std::int64_t rows = count / 4;
  auto partial = multi_row_sum(rows, lanes, [&](std::int64_t i, int k) { return item(i * 4 + k); });
  for (std::int64_t i = rows * 4; i < count; ++i) add(partial[0], item(i), lanes);
  for (int k = 1; k < 4; ++k) add(partial[0], partial[k], lanes);
  return partial[0];
}

}  // namespace

float torch_cpu_sum(std::span<const float> values, ScalarType dtype) {
  const Layout layout = layout_for(dtype);
  const auto n = static_cast<std::int64_t>(values.size());
  if (n < layout.load_width) {  // too short to vectorize: scalar cascade
    const Lanes sum = row_sum(n, 1, [&](std::int64_t i) { return Lanes{values[i]}; });
    return sum[0];
  }
  const std::int64_t loads = n / layout.load_width;
  const Lanes lanes = row_sum(loads, layout.lanes, [&](std::int64_t i) {
    return load(values.subspan(i * layout.load_width, layout.load_width), dtype, layout);
  });
  float total = 0.0f;
  for (std::int64_t k = loads * layout.load_width; k < n; ++k) total += values[k];
  for (int k = 0; k < layout.lanes; ++k) total += lanes[k];
  return total;
}

float torch_cpu_mean(std::span<const float> values, ScalarType dtype) {
  const float sum = torch_cpu_sum(values, dtype);
  return round_to(dtype, sum / static_cast<float>(values.size()));
}

}  // namespace quantkit::reference
