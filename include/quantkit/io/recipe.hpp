#pragma once
// Recipes: which scheme each weight of a model gets, as one JSON file that
// `quantkit quantize --recipe` and `quantkit.torch.load_recipe` both read.
//
//   {
//     "scheme": "int4-g128",            // default: a scheme or preset name
//     "embeddings": false,              // quantize embedding tables too
//     "rules": [                        // first full match wins
//       {"match": "model\\.layers\\.\\d+\\.mlp\\.down_proj", "scheme": "int8"},
//       {"match": "lm_head", "scheme": "skip"}
//     ],
//     "allow_unmatched": false          // a rule that matches nothing is an error
//   }
//
// Precedence: the rules in file order, then a preset's role rules, then the
// default. A pattern applies to a weight when it full-matches the module name
// ("model.layers.0.mlp.down_proj") or the tensor name (the same with
// ".weight"). "skip" keeps the weight in float.
#include <regex>
#include <string>
#include <vector>

namespace quantkit::io {

/// The scheme name that keeps a weight in float.
inline constexpr std::string_view kSkipScheme = "skip";

struct RecipeRule {
  std::string match;   // ECMAScript regex (the subset Python's `re` reads alike)
  std::string scheme;  // a scheme name, or "skip"
};

struct Recipe {
  std::string scheme = "int4-g128";
  bool embeddings = false;
  std::vector<RecipeRule> rules;
  bool allow_unmatched = false;
};

/// Parses a recipe; throws FileFormatError naming `source`, the key and the
/// rule (unknown keys, wrong types, invalid regexes). Scheme names are
/// checked where they are applied: Python also takes its activation recipes.
Recipe parse_recipe(const std::string& json_text, const std::string& source);

/// parse_recipe of a file's text; IoError when it cannot be read.
Recipe read_recipe(const std::string& path);

/// The recipe as JSON that parse_recipe reads back to the same recipe.
std::string recipe_json(const Recipe& recipe);

/// An ECMAScript regex compiled for rule matching; throws Error naming `what`
/// and the pattern when it is not a valid regular expression.
std::regex compile_rule(const std::string& pattern, const std::string& what);

/// True when `pattern` full-matches `tensor_name` or its module name (the
/// tensor name without a trailing ".weight").
bool rule_matches(const std::regex& pattern, const std::string& tensor_name);

}  // namespace quantkit::io
