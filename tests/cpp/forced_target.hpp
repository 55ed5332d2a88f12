#pragma once
// Forcing each compiled Highway target in turn, and the inputs the SIMD-path
// tests share.
#include <gtest/gtest.h>
#include <hwy/targets.h>

#include <cstdint>
#include <random>
#include <vector>

#include "cpu/affine_kernels.hpp"
#include "quantkit/tensor.hpp"
#include "quantkit/threading.hpp"

namespace quantkit {

struct Target {
  std::int64_t bit;
  const char* name;
};

// The targets src/cpu/affine_kernels.cpp compiles; those this CPU lacks are
// skipped. The portable fallback occupies the last dispatch slot; with GCC
// Highway 1.0.3 builds it as its SCALAR target.
inline std::vector<Target> available_targets() {
  hwy::SetSupportedTargetsForTest(0);
  const std::int64_t supported = hwy::SupportedTargets();
  std::vector<Target> out;
  for (const Target& t :
       {Target{HWY_AVX3, "AVX3"}, Target{HWY_AVX2, "AVX2"}, Target{HWY_SSE4, "SSE4"}}) {
    if (supported & t.bit) out.push_back(t);
  }
  out.push_back(Target{HWY_EMU128 | HWY_SCALAR, "SCALAR"});
  return out;
}

class ForcedTarget : public ::testing::TestWithParam<Target> {
 protected:
  void SetUp() override {
    hwy::SetSupportedTargetsForTest(GetParam().bit);
    hwy::GetChosenTarget().Update(hwy::SupportedTargets());
    ASSERT_STREQ(cpu::active_target_name(), GetParam().name) << "target forcing failed";
  }
  void TearDown() override {
    hwy::SetSupportedTargetsForTest(0);
    hwy::GetChosenTarget().Update(hwy::SupportedTargets());
    set_num_threads(0);
  }
};

// Every 16-bit pattern once, as a [256, 256] bf16 or fp16 tensor (NaN, Inf
// and subnormals included).
inline Tensor all_16bit_patterns(ScalarType dtype) {
  Tensor x(dtype, {256, 256});
  auto* bits = static_cast<std::uint16_t*>(x.raw_data());
  for (int i = 0; i < 65536; ++i) bits[i] = static_cast<std::uint16_t>(i);
  return x;
}

// Seeded normal values (mean 0.25, sd 2) rounded to `dtype`.
inline Tensor random_tensor(Shape shape, ScalarType dtype, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> normal(0.25, 2.0);
  std::vector<double> v(static_cast<std::size_t>(numel(shape)));
  for (auto& e : v) e = normal(rng);
  return Tensor::from_values(v, std::move(shape), dtype);
}

}  // namespace quantkit
