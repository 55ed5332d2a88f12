// linear(): the specified summation order checked by hand, and the threaded
// SIMD path bit-identical to the scalar reference on every compiled target,
// for dense weights and for every weight format read in place.
#include "quantkit/linear.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "core/internal/float_io.hpp"
#include "cpu/weight_rows.hpp"
#include "error_of.hpp"
#include "forced_target.hpp"
#include "quantkit/ops.hpp"
#include "quantkit/threading.hpp"
#include "reference/linear.hpp"
#include "reference/reference_ops.hpp"

namespace quantkit {
namespace {

using quantkit::testing::error_of;

class LinearTarget : public ForcedTarget {};

// 2^24 then fifteen ones: added left to right every 1 ties back to 2^24. In the
// specified order the ones sit in partials 1..15; halving adds 1 (ties away),
// then 2, 4 and 8 to partial 0: 2^24 + 14 (the exact sum is 2^24 + 15).
TEST(OrderedDot, SumsSixteenPartialsThenHalvesThem) {
  std::vector<float> x(16, 1.0f), w(16, 1.0f);
  x[0] = 16777216.0f;
  EXPECT_EQ(reference::ordered_dot(x.data(), w.data(), 16), 16777230.0f);
  float sequential = 0;
  for (float v : x) sequential += v;
  EXPECT_EQ(sequential, 16777216.0f);
  // Element 16 joins partial 0 before any halving: 2^24 + 1 ties to 2^24.
  x.push_back(1.0f);
  w.push_back(1.0f);
  EXPECT_EQ(reference::ordered_dot(x.data(), w.data(), 17), 16777230.0f);
  EXPECT_EQ(reference::ordered_dot(x.data(), w.data(), 0), 0.0f);
  EXPECT_FALSE(std::signbit(reference::ordered_dot(x.data(), w.data(), 0)));
}

// y = round_T(sum + bias): by hand for a 2x3 bf16 product.
TEST(Linear, SmallProductByHand) {
  const Tensor x = Tensor::from_values({1, 2, 3, -1, 0.5, 4}, {2, 3}, ScalarType::bfloat16);
  const Tensor w = Tensor::from_values({1, 1, 1, 0.25, -2, 8}, {2, 3}, ScalarType::bfloat16);
  const Tensor b = Tensor::from_values({0.5, -1}, {2}, ScalarType::bfloat16);
  const Tensor y = linear(x, w, b.view());
  EXPECT_EQ(y.shape(), (Shape{2, 2}));
  EXPECT_EQ(y.dtype(), ScalarType::bfloat16);
  EXPECT_EQ(y.to_vector(), (std::vector<double>{6.5, 19.25, 4, 29.75}));
}

void expect_dense_identical(const Tensor& x, const Tensor& w, const Tensor* bias,
                            const std::string& what) {
  const TensorView bias_view = bias == nullptr ? TensorView() : bias->view();
  const TensorView* b = bias == nullptr ? nullptr : &bias_view;
  const Tensor fast = linear(x, w, bias == nullptr ? std::nullopt : std::optional(bias->view()));
  ASSERT_TRUE(bitwise_equal(fast, reference::linear(x, w, b))) << what;
}

TEST_P(LinearTarget, DenseEveryTailOfKAndN) {
  for (ScalarType dtype : {ScalarType::float32, ScalarType::bfloat16, ScalarType::float16}) {
    for (std::int64_t k : {0, 1, 5, 15, 16, 17, 31, 33, 47, 64, 100, 257}) {
      for (std::int64_t n : {1, 2, 3, 4, 5, 7, 9}) {
        for (std::int64_t m : {1, 3, 70}) {
          const Tensor x = random_tensor({m, k}, dtype, static_cast<std::uint32_t>(k + 7 * n));
          const Tensor w = random_tensor({n, k}, dtype, static_cast<std::uint32_t>(k * 3 + n));
          const Tensor b = random_tensor({n}, dtype, 5);
          const std::string what = std::string(name(dtype)) + " m=" + std::to_string(m) +
                                   " k=" + std::to_string(k) + " n=" + std::to_string(n);
          expect_dense_identical(x, w, nullptr, what);
          expect_dense_identical(x, w, &b, what + " with bias");
        }
      }
    }
  }
}

TEST_P(LinearTarget, DenseSpecialValuesAndThreads) {
  Tensor x = random_tensor({5, 3, 40}, ScalarType::float32, 11);
  x.set(3, INFINITY);
  x.set(50, NAN);
  x.set(90, -INFINITY);
  const Tensor w = random_tensor({9, 40}, ScalarType::float32, 12);
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    expect_dense_identical(x, w, nullptr, "Inf / NaN inputs, threads " + std::to_string(threads));
  }
  const Tensor large = random_tensor({130, 300}, ScalarType::bfloat16, 13);
  const Tensor lw = random_tensor({37, 300}, ScalarType::bfloat16, 14);
  set_num_threads(1);
  const Tensor one = linear(large, lw);
  set_num_threads(2);
  EXPECT_TRUE(bitwise_equal(one, linear(large, lw))) << "thread count changed a result";
  expect_dense_identical(large, lw, nullptr, "130 x 300 x 37 bf16");
}

// Every weight format read in place equals the reference product with the
// reference's dequantized weight: the SIMD decoders and the fallback to the
// reference formulas alike.
std::vector<QuantSpec> weight_specs() {
  const auto nvfp4 = QuantSpec{.dtype = QuantDType::fp4_e2m1(),
                               .granularity = Granularity::per_group(16),
                               .scale_dtype = ScaleDType::fp8_e4m3fn,
                               .global_scale = true};
  return {
      QuantSpec{.dtype = QuantDType::int_(8), .granularity = Granularity::per_axis(0)},
      QuantSpec{.dtype = QuantDType::uint(8), .mapping = Mapping::asymmetric},
      QuantSpec{.dtype = QuantDType::int_(4), .granularity = Granularity::per_group(16)},
      QuantSpec{.dtype = QuantDType::uint(4),
                .mapping = Mapping::asymmetric,
                .granularity = Granularity::per_group(8)},
      QuantSpec{.dtype = QuantDType::int_(3), .granularity = Granularity::per_axis(0)},
      QuantSpec{.dtype = QuantDType::int_(4), .granularity = Granularity::per_axis(0)},
      QuantSpec{.dtype = QuantDType::uint(4),
                .mapping = Mapping::asymmetric,
                .granularity = Granularity::per_group(32)},
      QuantSpec{.dtype = QuantDType::int_(4),
                .mapping = Mapping::stretched,
                .granularity = Granularity::per_group(16)},
      QuantSpec{.dtype = QuantDType::int_(2),
                .mapping = Mapping::asymmetric,
                .granularity = Granularity::per_group(3)},  // an odd group size
      QuantSpec{.dtype = QuantDType::int_(5), .granularity = Granularity::per_group(6)},
      QuantSpec{.dtype = QuantDType::fp8_e4m3fn(), .granularity = Granularity::per_axis(0)},
      QuantSpec{.dtype = QuantDType::fp4_e2m1(),
                .granularity = Granularity::per_group(32),
                .scale_dtype = ScaleDType::e8m0},
      nvfp4,
      QuantSpec{.dtype = QuantDType::int_(4), .mapping = Mapping::stretched},  // reference rows
      QuantSpec{.dtype = QuantDType::uint(4),  // tinygemm's float zero point: reference rows
                .mapping = Mapping::asymmetric,
                .granularity = Granularity::per_group(16),
                .zero_point_domain = ZeroPointDomain::float_},
      QuantSpec{.dtype = QuantDType::int_(8), .granularity = Granularity::per_block({2, 16})},
  };
}

TEST_P(LinearTarget, QuantizedWeightsEqualTheReferenceProduct) {
  for (ScalarType dtype : {ScalarType::float32, ScalarType::bfloat16, ScalarType::float16}) {
    for (const QuantSpec& spec : weight_specs()) {
      // k = 96 fits every group above; per-row scales also take k = 37, where
      // rows of sub-byte codes start mid-byte
      std::vector<Shape> shapes{{6, 96}, {2, 96}};
      if (spec.granularity.kind() != Granularity::Kind::per_group &&
          spec.granularity.kind() != Granularity::Kind::per_block) {
        shapes.push_back({7, 37});
        shapes.push_back({5, 38});  // 4-bit rows at whole bytes with a tail of 6
      }
      for (const Shape& shape : shapes) {
        const Tensor w = random_tensor(shape, dtype, 21);
        const QuantizedTensor q = quantize(w, choose_qparams(w, spec));
        const LinearWeight weight(q, dtype);
        const Tensor b = random_tensor({shape[0]}, dtype, 23);
        const TensorView bv = b.view();
        // 1 and 4 rows: codes decoded in registers where they can be; 6: the tile buffer
        for (const Shape& x_shape :
             {Shape{1, shape[1]}, Shape{4, shape[1]}, Shape{3, 2, shape[1]}}) {
          const Tensor x = random_tensor(x_shape, dtype, 22);
          const Tensor expected = reference::linear(x, reference::dequantize(q, dtype), &bv);
          ASSERT_TRUE(bitwise_equal(linear(x, weight, bv), expected))
              << spec.describe() << " " << name(dtype) << " " << to_string(shape) << " x "
              << to_string(x_shape);
        }
        // Rows decoded on their own are the dequantized rows.
        std::vector<unsigned char> decoded(static_cast<std::size_t>(2 * shape[1]) *
                                           element_size(dtype));
        weight.decode_rows(shape[0] - 2, 2, decoded.data());
        const Tensor dequantized = reference::dequantize(q, dtype);
        EXPECT_EQ(std::memcmp(decoded.data(),
                              static_cast<const unsigned char*>(dequantized.raw_data()) +
                                  decoded.size() / 2 * (shape[0] - 2),
                              decoded.size()),
                  0)
            << "decode_rows " << spec.describe();
        const Tensor rows = weight.gather_rows(Tensor::from_values(
            {static_cast<double>(shape[0] - 1), 0, static_cast<double>(shape[0] - 1)}, {3},
            ScalarType::int64));
        const Tensor all = reference::dequantize(q, dtype);
        const std::size_t row_bytes = static_cast<std::size_t>(shape[1]) * element_size(dtype);
        const auto* a = static_cast<const unsigned char*>(all.raw_data());
        const auto* g = static_cast<const unsigned char*>(rows.raw_data());
        EXPECT_EQ(std::memcmp(g, a + (shape[0] - 1) * row_bytes, row_bytes), 0) << spec.describe();
        EXPECT_EQ(std::memcmp(g + row_bytes, a, row_bytes), 0) << spec.describe();
      }
    }
  }
}

// linear_int: operands built from the reference's own quantize, then
// the scalar formula; the threaded SIMD path must give the same bits.
reference::CenteredCodes centered(const QuantizedTensor& q, std::int64_t group) {
  const QParams& qp = q.qparams();
  const Shape& shape = q.shape();
  const std::int64_t rows = shape[0], k = shape[1], per_row = k / group;
  const std::vector<float> scale = internal::load_floats(qp.scale);
  const std::vector<float> zero_point =
      qp.has_zero_point() && qp.spec.resolved_zero_point_domain() == ZeroPointDomain::int_
          ? internal::load_floats(qp.zero_point)
          : std::vector<float>(scale.size(), 0.0f);
  const auto block = [&](std::int64_t r, std::int64_t b) {  // per-tensor qparams: one block
    return scale.size() == 1 ? 0 : r * per_row + b;
  };
  reference::CenteredCodes out{{}, {}, rows, group};
  const std::vector<std::int32_t> codes = q.code_values();
  for (std::int64_t r = 0; r < rows; ++r) {
    for (std::int64_t c = 0; c < k; ++c) {
      out.values.push_back(codes[r * k + c] -
                           static_cast<std::int32_t>(zero_point[block(r, c / group)]));
    }
    for (std::int64_t b = 0; b < per_row; ++b) out.scale.push_back(scale[block(r, b)]);
  }
  return out;
}

TEST_P(LinearTarget, DynamicIntEqualsTheReferenceFormula) {
  const QuantSpec per_token_asym{.dtype = QuantDType::int_(8),
                                 .mapping = Mapping::asymmetric,
                                 .granularity = Granularity::per_token()};
  const QuantSpec per_token_sym{.dtype = QuantDType::int_(8),
                                .granularity = Granularity::per_token()};
  const QuantSpec per_tensor_uint8{.dtype = QuantDType::uint(8), .mapping = Mapping::asymmetric};
  struct WeightCase {
    QuantSpec spec;
    std::int64_t group;  // 0: whole rows
  };
  const std::vector<WeightCase> weights{
      {{.dtype = QuantDType::int_(4), .granularity = Granularity::per_group(32)}, 32},
      {{.dtype = QuantDType::uint(4),
        .mapping = Mapping::asymmetric,
        .granularity = Granularity::per_group(16)},
       16},
      {{.dtype = QuantDType::int_(8), .granularity = Granularity::per_axis(0)}, 0},
      {{.dtype = QuantDType::int_(3), .granularity = Granularity::per_axis(0)}, 0},
      {{.dtype = QuantDType::int_(2),
        .mapping = Mapping::asymmetric,
        .granularity = Granularity::per_group(6)},
       6},
      {{.dtype = QuantDType::uint(8), .mapping = Mapping::asymmetric}, 0},
  };
  for (ScalarType dtype : {ScalarType::float32, ScalarType::bfloat16, ScalarType::float16}) {
    for (const QuantSpec& activation : {per_token_asym, per_token_sym}) {
      for (const WeightCase& wc : weights) {
        for (const Shape& shape : {Shape{6, 96}, Shape{3, 192}}) {
          const Tensor w = random_tensor(shape, dtype, 31);
          const QuantizedTensor q = quantize(w, choose_qparams(w, wc.spec));
          const LinearWeight weight(q, dtype);
          for (std::int64_t m : {1, 70}) {
            const Tensor x = random_tensor({m, shape[1]}, dtype, 32);
            const Tensor b = random_tensor({shape[0]}, dtype, 33);
            const QuantizedTensor qx =
                reference::quantize(x, reference::choose_qparams(x, activation));
            const Tensor expected = reference::int_linear(
                centered(qx, shape[1]), centered(q, wc.group == 0 ? shape[1] : wc.group), shape[1],
                internal::load_floats(b), dtype, {m, shape[0]});
            ASSERT_TRUE(bitwise_equal(linear_int(x, activation, weight, b.view()), expected))
                << wc.spec.describe() << " x " << activation.describe() << " " << name(dtype)
                << " m=" << m << " " << to_string(shape);
            // Calibrated per-tensor inputs (W8A8 static): the tensor's qparams on every row.
            const QParams calibrated = choose_qparams(x, per_tensor_uint8);
            const QuantizedTensor qs = reference::quantize(x, calibrated);
            const Tensor expected_static = reference::int_linear(
                centered(qs, shape[1]), centered(q, wc.group == 0 ? shape[1] : wc.group), shape[1],
                internal::load_floats(b), dtype, {m, shape[0]});
            ASSERT_TRUE(bitwise_equal(linear_int(x, calibrated, weight, b.view()), expected_static))
                << "static " << wc.spec.describe() << " " << name(dtype);
          }
        }
      }
    }
  }
}

TEST(Linear, DynamicIntRefusesWhatHasNoIntegerPath) {
  const Tensor w = random_tensor({4, 32}, ScalarType::float32, 1);
  const Tensor x = random_tensor({2, 32}, ScalarType::float32, 2);
  const QuantSpec act{.dtype = QuantDType::int_(8), .granularity = Granularity::per_token()};
  const QuantizedTensor fp8 =
      quantize(w, QuantSpec{.dtype = QuantDType::fp8_e4m3fn(), .scale_dtype = ScaleDType::float32});
  EXPECT_NE(error_of([&] {
              linear_int(x, act, LinearWeight(fp8, ScalarType::float32));
            }).find("the weight has no integer path"),
            std::string::npos);
  const QuantizedTensor int4 = quantize(w, QuantSpec{.dtype = QuantDType::int_(4)});
  const LinearWeight weight(int4, ScalarType::float32);
  EXPECT_NE(error_of([&] {
              linear_int(x, QuantSpec{.dtype = QuantDType::int_(8)}, weight);
            }).find("must have one block per row"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              linear_int(x,
                         QuantSpec{.dtype = QuantDType::fp8_e4m3fn(),
                                   .granularity = Granularity::per_token()},
                         weight);
            }).find("must be an integer format"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              linear_int(x,
                         choose_qparams(x, QuantSpec{.dtype = QuantDType::int_(8),
                                                     .granularity = Granularity::per_token()}),
                         weight);
            }).find("must be per-tensor"),
            std::string::npos);
  Tensor bad = x;
  bad.set(3, NAN);
  EXPECT_THROW(linear_int(bad, act, weight), Error);
}

// 4- and 8-bit integer codes in blocks of whole 16-element runs are decoded in
// registers (the test above then covers that kernel); other layouts in memory.
TEST(Linear, TakesThePackedKernelWhereItApplies) {
  const auto packed_kernel = [](const QuantSpec& spec, const Shape& shape) {
    const Tensor w = random_tensor(shape, ScalarType::float32, 3);
    const QuantizedTensor q = quantize(w, choose_qparams(w, spec));
    return LinearWeight(q, ScalarType::float32).rows().packed_int() != nullptr;
  };
  const QuantSpec int4_g32{.dtype = QuantDType::int_(4), .granularity = Granularity::per_group(32)};
  EXPECT_TRUE(packed_kernel(int4_g32, {4, 64}));
  EXPECT_TRUE(packed_kernel(
      QuantSpec{.dtype = QuantDType::int_(8), .granularity = Granularity::per_axis(0)}, {4, 37}));
  EXPECT_TRUE(packed_kernel(QuantSpec{.dtype = QuantDType::int_(4)}, {4, 38}));
  EXPECT_FALSE(packed_kernel(
      QuantSpec{.dtype = QuantDType::int_(4), .granularity = Granularity::per_group(8)},
      {4, 64}));  // a block ends inside a 16-element run
  EXPECT_FALSE(packed_kernel(QuantSpec{.dtype = QuantDType::int_(4)}, {4, 37}));  // mid-byte rows
  EXPECT_FALSE(packed_kernel(QuantSpec{.dtype = QuantDType::int_(3)}, {4, 64}));
  const QuantSpec nvfp4{.dtype = QuantDType::fp4_e2m1(),
                        .granularity = Granularity::per_group(16),
                        .scale_dtype = ScaleDType::fp8_e4m3fn,
                        .global_scale = true};
  EXPECT_TRUE(packed_kernel(nvfp4, {4, 64}));
  const QuantSpec mxfp4{.dtype = QuantDType::fp4_e2m1(),
                        .granularity = Granularity::per_group(32),
                        .scale_dtype = ScaleDType::e8m0};
  EXPECT_TRUE(packed_kernel(mxfp4, {4, 64}));
  const Tensor w16 = random_tensor({4, 64}, ScalarType::float16, 3);
  const QuantizedTensor mx16 = quantize(w16, choose_qparams(w16, mxfp4));
  // MX rounds its scale to the output dtype first, which float16 cannot always hold
  EXPECT_EQ(LinearWeight(mx16, ScalarType::float16).rows().packed_int(), nullptr);
}

INSTANTIATE_TEST_SUITE_P(AllCompiledTargets, LinearTarget, ::testing::ValuesIn(available_targets()),
                         [](const auto& test_info) { return std::string(test_info.param.name); });

TEST(Linear, RejectsMismatchedArgumentsByName) {
  const Tensor x = random_tensor({2, 8}, ScalarType::float32, 1);
  const Tensor w = random_tensor({3, 8}, ScalarType::float32, 2);
  EXPECT_NE(error_of([&] {
              linear(random_tensor({2, 7}, ScalarType::float32, 1), w);
            }).find("must end in in_features = 8"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              linear(x, random_tensor({3, 8}, ScalarType::bfloat16, 1));
            }).find("x is float32 but the weight computes in bfloat16"),
            std::string::npos);
  const Tensor bad_bias = random_tensor({4}, ScalarType::float32, 3);
  const TensorView bb = bad_bias.view();
  EXPECT_NE(error_of([&] { linear(x, w, bb); }).find("bias of shape [4]"), std::string::npos);
  EXPECT_NE(
      error_of([&] { linear(x, random_tensor({8}, ScalarType::float32, 1)); }).find("must be 2-D"),
      std::string::npos);
  const QuantizedTensor q = quantize(w, QuantSpec{.dtype = QuantDType::int_(4)});
  const LinearWeight weight(q, ScalarType::float32);
  EXPECT_NE(error_of([&] {
              weight.gather_rows(Tensor::from_values({3}, {1}, ScalarType::int64));
            }).find("index 3 at position 0 is outside [0, 3)"),
            std::string::npos);
  std::vector<float> out(16);
  EXPECT_NE(error_of([&] {
              weight.decode_rows(2, 2, out.data());
            }).find("rows [2, 4) are outside the weight's 3 rows"),
            std::string::npos);
  const Tensor short_bytes(ScalarType::uint8, {5});
  EXPECT_NE(error_of([&] {
              LinearWeight(short_bytes, {3, 8}, q.qparams(), ScalarType::float32);
            }).find("packed codes hold 5 bytes"),
            std::string::npos);
}

TEST(Linear, EmptyShapes) {
  const Tensor x = random_tensor({0, 8}, ScalarType::float32, 1);
  EXPECT_EQ(linear(x, random_tensor({3, 8}, ScalarType::float32, 2)).shape(), (Shape{0, 3}));
  const Tensor y = linear(random_tensor({2, 0}, ScalarType::float32, 1),
                          random_tensor({3, 0}, ScalarType::float32, 2));
  EXPECT_EQ(y.to_vector(), std::vector<double>(6, 0.0));
}

}  // namespace
}  // namespace quantkit
