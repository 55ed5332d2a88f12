#pragma once
// Forcing each compiled Highway target in turn, and the inputs the SIMD-path
// tests share.
#include <gtest/gtest.h>
#include <hwy/targets.h>

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <random>
#include <string>
#include <vector>

#include "cpu/affine_kernels.hpp"
#include "cpu/fast_path.hpp"
#include "quantkit/tensor.hpp"
#include "quantkit/threading.hpp"
#include "reference/reference_ops.hpp"

namespace quantkit {

struct Target {
  std::int64_t bit;
  const char* name;
};

// Every target the kernels were compiled for (cpu/highway_config.h) that this
// CPU runs, best first; nothing is listed by hand, so a new target or another
// architecture is tested as soon as it is compiled.
inline std::vector<Target> available_targets() {
  hwy::SetSupportedTargetsForTest(0);
  const std::int64_t usable = cpu::compiled_targets() & hwy::SupportedTargets();
  std::vector<Target> out;
  for (std::int64_t rest = usable; rest != 0; rest &= rest - 1) {
    const std::int64_t bit = rest & -rest;  // lower bits are the better targets
    out.push_back(Target{bit, hwy::TargetName(bit)});
  }
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

// fake_quantize, quantize and dequantize (to each of `outputs`) through the
// fast path and the reference: identical bits, or a failure naming `what`.
inline void expect_fast_path_identical(const Tensor& x, const QParams& qp, const std::string& what,
                                       std::initializer_list<ScalarType> outputs) {
  const auto fast_fq = cpu::fake_quantize(x, qp);
  ASSERT_TRUE(fast_fq.has_value()) << "fast path not taken: " << what;
  ASSERT_TRUE(bitwise_equal(*fast_fq, reference::fake_quantize(x, qp))) << "fake_quantize " << what;
  const auto fast_q = cpu::quantize(x, qp);
  ASSERT_TRUE(fast_q.has_value());
  const auto ref_q = reference::quantize(x, qp);
  ASSERT_TRUE(std::ranges::equal(fast_q->packed(), ref_q.packed())) << "quantize " << what;
  for (ScalarType out : outputs) {
    const auto fast_dq = cpu::dequantize(ref_q, out);
    ASSERT_TRUE(fast_dq.has_value());
    ASSERT_TRUE(bitwise_equal(*fast_dq, reference::dequantize(ref_q, out)))
        << "dequantize to " << name(out) << " " << what;
  }
}

}  // namespace quantkit
