// Recipe files: parsing, full-match rules, precedence (overrides, recipe
// rules, preset roles, default), skip, unmatched rules, aliases.
#include <gtest/gtest.h>

#include <unistd.h>
#include "error_of.hpp"

#include <filesystem>
#include <fstream>
#include <map>

#include "quantkit/io/checkpoint.hpp"
#include "quantkit/io/recipe.hpp"
#include "quantkit/io/safetensors.hpp"

namespace quantkit::io {
namespace {

namespace fs = std::filesystem;

using quantkit::testing::error_of;

TEST(Recipe, ParsesEveryKeyAndRoundTrips) {
  const Recipe recipe = parse_recipe(R"({"scheme": "q4-mix", "embeddings": true,
      "rules": [{"match": "lm_head", "scheme": "skip"},
                {"match": ".*down_proj", "scheme": "int8"}],
      "allow_unmatched": true})",
                                     "r.json");
  EXPECT_EQ(recipe.scheme, "q4-mix");
  EXPECT_TRUE(recipe.embeddings);
  EXPECT_TRUE(recipe.allow_unmatched);
  ASSERT_EQ(recipe.rules.size(), 2u);
  EXPECT_EQ(recipe.rules[1].match, ".*down_proj");
  EXPECT_EQ(recipe.rules[1].scheme, "int8");
  const Recipe again = parse_recipe(recipe_json(recipe), "again");
  EXPECT_EQ(again.scheme, recipe.scheme);
  EXPECT_EQ(again.rules.size(), 2u);
  EXPECT_EQ(again.rules[0].scheme, "skip");
  EXPECT_EQ(parse_recipe("{}", "empty").scheme, "int4-g128");  // the documented default
}

TEST(Recipe, RefusesMalformedFilesByKeyAndRule) {
  const std::map<std::string, std::string> cases = {
      {"[1]", "recipe 'r' must be a JSON object"},
      {"{", "recipe 'r' is not valid JSON"},
      {R"({"schema": "int8"})", "unknown key 'schema' (the keys are: scheme, embeddings"},
      {R"({"scheme": 8})", "'scheme' must be a string, not number"},
      {R"({"embeddings": "yes"})", "'embeddings' must be true or false"},
      {R"({"rules": {}})", "'rules' must be a list"},
      {R"({"rules": ["x"]})", "rule 1 must be an object with 'match' and 'scheme'"},
      {R"({"rules": [{"match": "a"}]})", "rule 1 has no 'scheme'"},
      {R"({"rules": [{"match": "a", "scheme": "int8", "when": 1}]})", "rule 1: unknown key 'when'"},
      {R"({"rules": [{"match": "a", "scheme": "int8"}, {"match": "(", "scheme": "int8"}]})",
       "rule 2 '(' is not a valid regular expression"},
  };
  for (const auto& [text, expected] : cases) {
    const std::string message = error_of([&] { parse_recipe(text, "r"); });
    EXPECT_NE(message.find(expected), std::string::npos) << text << " -> " << message;
  }
  EXPECT_THROW(parse_recipe("{", "r"), FileFormatError);
}

TEST(Recipe, PatternsFullMatchTheModuleOrTheTensorName) {
  const auto lm_head = compile_rule("lm_head", "rule");
  EXPECT_TRUE(rule_matches(lm_head, "lm_head.weight"));
  EXPECT_TRUE(rule_matches(lm_head, "lm_head"));
  EXPECT_FALSE(rule_matches(lm_head, "model.lm_head.weight"));  // no search
  EXPECT_FALSE(rule_matches(lm_head, "lm_head.bias"));          // only .weight is stripped
  EXPECT_TRUE(rule_matches(compile_rule(R"(.*\.bias)", "rule"), "lm_head.bias"));
  EXPECT_TRUE(rule_matches(compile_rule(R"(a\.b\.weight)", "rule"), "a.b.weight"));
}

class RecipePlanTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("quantkit_recipe_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    const std::vector<std::string> names = {"model.layers.0.self_attn.q_proj.weight",
                                            "model.layers.0.self_attn.v_proj.weight",
                                            "model.layers.0.mlp.down_proj.weight",
                                            "model.layers.1.mlp.down_proj.weight",
                                            "model.embed_tokens.weight",
                                            "lm_head.weight"};
    std::vector<TensorDecl> declared;
    for (const auto& name : names) declared.push_back({name, StDType::F32, {4, 128}});
    SafetensorsWriter writer(at("in.safetensors"), declared);
    const std::vector<float> zeros(4 * 128, 0.5f);
    for (std::size_t i = 0; i < names.size(); ++i) {
      writer.write({reinterpret_cast<const std::uint8_t*>(zeros.data()), zeros.size() * 4});
    }
    writer.commit();
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string at(const std::string& name) const { return (dir_ / name).string(); }
  std::string write_recipe(const std::string& text) const {
    std::ofstream(at("recipe.json")) << text;
    return at("recipe.json");
  }
  std::map<std::string, std::string> actions(const QuantizeOptions& options) const {
    const auto input = Checkpoint::open(at("in.safetensors"));
    std::map<std::string, std::string> action;
    const QuantizationPlan plan = plan_quantization(input, options);
    for (const auto& tensor : plan.shards[0].tensors) {
      action[tensor.entry->name] = tensor.scheme ? tensor.scheme->name : "keep: " + tensor.note;
    }
    return action;
  }
  fs::path dir_;
};

TEST_F(RecipePlanTest, OverridesThenRecipeRulesThenPresetRolesThenDefault) {
  QuantizeOptions options;
  options.recipe = write_recipe(R"({"scheme": "q4-mix", "embeddings": true, "rules": [
      {"match": "model\\.layers\\.0\\.mlp\\.down_proj", "scheme": "int8"},
      {"match": "lm_head", "scheme": "skip"},
      {"match": "model\\.layers\\.\\d+\\.mlp\\..*", "scheme": "W4A16"}]})");
  options.overrides = {R"(.*q_proj=int5-g32)"};
  auto action = actions(options);
  EXPECT_EQ(action["model.layers.0.self_attn.q_proj.weight"], "int5-g32");  // --override
  EXPECT_EQ(action["model.layers.0.mlp.down_proj.weight"], "int8");         // rule 1
  EXPECT_EQ(action["lm_head.weight"],
            "keep: skipped by recipe '" + options.recipe + "' rule 2 'lm_head'");  // rule 2
  EXPECT_EQ(action["model.layers.1.mlp.down_proj.weight"], "int4-g128");           // alias
  EXPECT_EQ(action["model.layers.0.self_attn.v_proj.weight"], "int6-g32-asym:search=mse");
  EXPECT_EQ(action["model.embed_tokens.weight"], "int4-g32-asym:search=mse");  // default
}

TEST_F(RecipePlanTest, ARuleThatMatchesNothingIsNamed) {
  QuantizeOptions options;
  options.recipe = write_recipe(R"({"rules": [
      {"match": "lm_head", "scheme": "int8"},
      {"match": "model\\.layer\\.0\\..*", "scheme": "int8"}]})");
  const std::string message = error_of([&] { actions(options); });
  EXPECT_NE(message.find("rule 2 'model\\.layer\\.0\\..*' matches no tensor"), std::string::npos)
      << message;
  options.recipe = write_recipe(R"({"allow_unmatched": true, "rules": [
      {"match": "model\\.layer\\.0\\..*", "scheme": "int8"}]})");
  const auto input = Checkpoint::open(at("in.safetensors"));
  EXPECT_EQ(plan_quantization(input, options).warnings.size(), 1u);
}

TEST_F(RecipePlanTest, SchemeNamesAreCheckedWhereApplied) {
  QuantizeOptions options;
  options.recipe = write_recipe(R"({"rules": [{"match": "lm_head", "scheme": "W8A8"}]})");
  EXPECT_NE(error_of([&] { actions(options); }).find("'W8A8' quantizes input activations too"),
            std::string::npos);
  options.recipe = write_recipe(R"({"rules": [{"match": "lm_head", "scheme": "q4-mix"}]})");
  EXPECT_NE(error_of([&] { actions(options); }).find("'q4-mix' is a preset"), std::string::npos);
  options.recipe = write_recipe(R"({"scheme": "int9"})");
  EXPECT_NE(error_of([&] { actions(options); }).find("scheme 'int9' is not one of"),
            std::string::npos);
  options.recipe = at("missing.json");
  EXPECT_THROW(actions(options), IoError);
}

}  // namespace
}  // namespace quantkit::io
