// Checkpoint quantization over the whole scheme table: what the file holds,
// read back, dequantizes to exactly fake_quantize of the original weight.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>

#include "quantkit/io/checkpoint.hpp"
#include "quantkit/io/stored_weights.hpp"
#include "quantkit/ops.hpp"

namespace quantkit::io {
namespace {

namespace fs = std::filesystem;

Tensor random_weight(Shape shape, ScalarType dtype, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> normal(0.0, 0.05);
  std::vector<double> values(static_cast<std::size_t>(numel(shape)));
  for (auto& v : values) v = normal(rng);
  values[3] = 1.5;  // an outlier
  return Tensor::from_values(values, shape, dtype);
}

void write_checkpoint(const std::string& path,
                      const std::vector<std::pair<std::string, Tensor>>& tensors) {
  std::vector<TensorDecl> declared;
  for (const auto& [name, tensor] : tensors)
    declared.push_back({name, from_scalar_type(tensor.dtype()), tensor.shape()});
  SafetensorsWriter writer(path, declared);
  for (const auto& [name, tensor] : tensors) {
    writer.write({static_cast<const std::uint8_t*>(tensor.raw_data()), tensor.nbytes()});
  }
  writer.commit();
}

QuantizeOptions with_scheme(const std::string& scheme) {
  QuantizeOptions options;
  options.scheme = scheme;
  return options;
}

QuantizeOptions with_override(const std::string& rule) {
  QuantizeOptions options;
  options.overrides = {rule};
  return options;
}

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() &&
         std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()) == 0;
}

class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("quantkit_ckpt_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string at(const std::string& name) const { return (dir_ / name).string(); }
  fs::path dir_;
};

TEST_F(CheckpointTest, EverySchemeRoundTripsBitExactlyInEveryDtype) {
  for (ScalarType dtype : {ScalarType::float32, ScalarType::bfloat16, ScalarType::float16}) {
    const Tensor w = random_weight({24, 128}, dtype, 1);
    const Tensor bias = random_weight({24}, dtype, 2);
    write_checkpoint(at("in.safetensors"), {{"layer.weight", w}, {"layer.bias", bias}});
    for (const auto& scheme : schemes()) {
      SCOPED_TRACE(scheme.name + " " + std::string(name(dtype)));
      const auto input = Checkpoint::open(at("in.safetensors"));
      const auto plan = plan_quantization(input, with_scheme(scheme.name));
      ASSERT_EQ(plan.quantized_tensors, 1);
      run_quantization(input, plan, at("out.safetensors"), /*replace=*/true);
      const auto output = SafetensorsFile::open(at("out.safetensors"));
      const auto weights = stored_weights(output);
      ASSERT_EQ(weights.size(), 1u);
      EXPECT_EQ(weights[0].scheme, &scheme);
      const Tensor restored = dequantize(load_quantized(output, weights[0], dtype), dtype);
      EXPECT_TRUE(same_bits(restored, fake_quantize(w, choose_qparams(w, scheme.spec))));
      const auto* kept = output.header().find("layer.bias");
      ASSERT_NE(kept, nullptr);
      EXPECT_EQ(std::memcmp(output.bytes(*kept).data(), bias.raw_data(), bias.nbytes()), 0);
    }
  }
}

TEST_F(CheckpointTest, RowBlocksDoNotChangeTheResult) {
  // 16 MiB blocks: a 4100 x 1024 fp32 weight spans two blocks, the second partial.
  const Tensor w = random_weight({4100, 1024}, ScalarType::float32, 3);
  write_checkpoint(at("big.safetensors"), {{"big.weight", w}});
  for (const char* scheme : {"int4-g128-asym", "fp8"}) {
    const auto input = Checkpoint::open(at("big.safetensors"));
    run_quantization(input, plan_quantization(input, with_scheme(scheme)), at("big_q.safetensors"),
                     /*replace=*/true);
    const auto output = SafetensorsFile::open(at("big_q.safetensors"));
    const auto weight = stored_weights(output).at(0);
    EXPECT_TRUE(same_bits(dequantize(load_quantized(output, weight, ScalarType::float32)),
                          fake_quantize(w, choose_qparams(w, weight.scheme->spec))))
        << scheme;
  }
}

TEST_F(CheckpointTest, SelectionRulesAndOverrides) {
  const Tensor w = random_weight({8, 64}, ScalarType::float32, 4);
  write_checkpoint(at("in.safetensors"), {{"a.q_proj.weight", w},
                                          {"a.k_proj.weight", w},
                                          {"a.v_proj.weight", w},
                                          {"embed_tokens.weight", w},
                                          {"a.norm", random_weight({8}, ScalarType::float32, 5)}});
  const auto input = Checkpoint::open(at("in.safetensors"));
  QuantizeOptions options = with_scheme("int8");
  options.overrides = {R"(.*k_proj=int4-g32)"};
  options.exclude = R"(a\.v_proj)";
  const auto plan = plan_quantization(input, options);
  std::map<std::string, std::string> action;
  for (const auto& tensor : plan.shards[0].tensors) {
    action[tensor.entry->name] = tensor.scheme ? tensor.scheme->name : tensor.note;
  }
  EXPECT_EQ(action["a.q_proj.weight"], "int8");
  EXPECT_EQ(action["a.k_proj.weight"], "int4-g32");
  EXPECT_EQ(action["a.v_proj.weight"], "matched by --exclude");
  EXPECT_EQ(action["embed_tokens.weight"], "embedding (--embeddings quantizes it)");
  EXPECT_EQ(action["a.norm"], "1-D");
  options.embeddings = true;
  EXPECT_EQ(plan_quantization(input, options).quantized_tensors, 3);
}

TEST_F(CheckpointTest, RefusesWhatCannotApplyBeforeWriting) {
  write_checkpoint(at("in.safetensors"),
                   {{"odd.weight", random_weight({4, 96}, ScalarType::float32, 6)}});
  const auto input = Checkpoint::open(at("in.safetensors"));
  try {
    plan_quantization(input, with_scheme("int4-g64"));
    FAIL() << "accepted";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what())
                  .find("tensor 'odd.weight' has 96 columns, not a multiple of the group size 64"),
              std::string::npos)
        << error.what();
  }
  EXPECT_THROW(plan_quantization(input, with_scheme("int5")), Error);
  EXPECT_THROW(plan_quantization(input, with_override("(=int8")), Error);
  EXPECT_THROW(plan_quantization(input, with_override("no-equals-sign")), Error);
}

TEST_F(CheckpointTest, AFailedRunLeavesNoOutput) {
  Tensor w = random_weight({4, 64}, ScalarType::float32, 7);
  w.set(5, std::nan(""));
  write_checkpoint(
      at("in.safetensors"),
      {{"first.weight", random_weight({4, 64}, ScalarType::float32, 8)}, {"nan.weight", w}});
  const auto input = Checkpoint::open(at("in.safetensors"));
  const auto plan = plan_quantization(input, with_scheme("int8"));
  try {
    run_quantization(input, plan, at("out.safetensors"));
    FAIL() << "accepted NaN";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("tensor 'nan.weight'"), std::string::npos)
        << error.what();
  }
  EXPECT_FALSE(fs::exists(at("out.safetensors")));
  EXPECT_FALSE(fs::exists(at("out.safetensors.partial")));
}

TEST_F(CheckpointTest, ShardedFolderKeepsShardsIndexAndOtherFiles) {
  fs::create_directories(dir_ / "model");
  const Tensor w = random_weight({8, 64}, ScalarType::bfloat16, 9);
  write_checkpoint(at("model/part-1.safetensors"), {{"x.weight", w}});
  write_checkpoint(at("model/part-2.safetensors"),
                   {{"y.weight", w}, {"y.bias", random_weight({8}, ScalarType::bfloat16, 1)}});
  std::ofstream(dir_ / "model/model.safetensors.index.json")
      << R"({"metadata":{},"weight_map":{"x.weight":"part-1.safetensors","y.weight":"part-2.safetensors","y.bias":"part-2.safetensors"}})";
  std::ofstream(dir_ / "model/config.json") << R"({"hidden_size": 64})";
  std::ofstream(dir_ / "model/tokenizer.json") << "{}";
  const auto input = Checkpoint::open(at("model"));
  ASSERT_EQ(input.shards().size(), 2u);
  run_quantization(input, plan_quantization(input, with_scheme("int4-g32")), at("out"));
  EXPECT_TRUE(fs::exists(dir_ / "out/tokenizer.json"));
  EXPECT_FALSE(fs::exists(dir_ / "out.partial"));
  const auto output = Checkpoint::open(at("out"));  // the new index must agree with the shards
  EXPECT_EQ(stored_weights(output.shards()[1]).at(0).name, "y.weight");
  std::ifstream config(dir_ / "out/config.json");
  const std::string text((std::istreambuf_iterator<char>(config)), {});
  EXPECT_NE(text.find("\"hidden_size\": 64"), std::string::npos);
  EXPECT_NE(text.find("compressed-tensors"), std::string::npos);
  EXPECT_THROW(run_quantization(input, plan_quantization(input, {}), at("out")),
               Error);  // exists, no replace
}

}  // namespace
}  // namespace quantkit::io
