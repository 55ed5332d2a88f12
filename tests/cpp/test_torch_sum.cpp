// The PyTorch CPU summation order used for torch.mean (stretched mapping).
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "reference/torch_sum.hpp"

namespace quantkit::reference {
namespace {

TEST(TorchSum, ShortRowsUseTheFourWayInterleavedOrder) {
  // Five float32 values: ATen adds ((((v0 + v4) + v1) + v2) + v3).
  // v0 + v4 = 2^24 + 1 rounds to 2^24 (tie to even), + v1 = 0, then + 1 + 1 = 2,
  // whereas a left-to-right sum gives 3 and the exact sum is 3.
  const float big = std::ldexp(1.0f, 24);
  const std::vector<float> v{big, -big, 1.0f, 1.0f, 1.0f};
  EXPECT_EQ(torch_cpu_sum(v, ScalarType::float32), 2.0f);
  EXPECT_EQ(torch_cpu_mean(v, ScalarType::float32), 2.0f / 5.0f);
}

TEST(TorchSum, LongRowsSumLanesThenTail) {
  // 8 lanes of float32: 17 ones -> two loads (16) fold into lanes of 2, the tail 1 comes first.
  const std::vector<float> ones(17, 1.0f);
  EXPECT_EQ(torch_cpu_sum(ones, ScalarType::float32), 17.0f);
  // bf16 mean rounds the float32 quotient once: 3 * 1.0078125 / 3.
  const std::vector<float> b(3, 1.0078125f);
  EXPECT_EQ(torch_cpu_mean(b, ScalarType::bfloat16), 1.0078125f);
}

}  // namespace
}  // namespace quantkit::reference
