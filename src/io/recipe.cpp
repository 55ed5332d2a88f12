#include "quantkit/io/recipe.hpp"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "quantkit/error.hpp"
#include "quantkit/io/safetensors.hpp"

namespace quantkit::io {
namespace {

constexpr std::string_view kWeightSuffix = ".weight";

const nlohmann::json& field(const nlohmann::json& object, const char* key,
                            nlohmann::json::value_t type, const char* type_name,
                            const std::string& where) {
  const auto& value = object.at(key);
  if (value.type() != type) {
    throw FileFormatError(
        detail::concat(where, ": '", key, "' must be ", type_name, ", not ", value.type_name()));
  }
  return value;
}

void check_keys(const nlohmann::json& object, std::initializer_list<std::string_view> keys,
                const std::string& where) {
  for (const auto& [key, value] : object.items()) {
    bool known = false;
    std::string names;
    for (const auto name : keys) {
      known = known || key == name;
      names += detail::concat(names.empty() ? "" : ", ", name);
    }
    if (!known) {
      throw FileFormatError(
          detail::concat(where, ": unknown key '", key, "' (the keys are: ", names, ")"));
    }
  }
}

RecipeRule parse_rule(const nlohmann::json& item, const std::string& where) {
  if (!item.is_object()) {
    throw FileFormatError(detail::concat(where, " must be an object with 'match' and 'scheme'"));
  }
  check_keys(item, {"match", "scheme"}, where);
  for (const char* key : {"match", "scheme"}) {
    if (!item.contains(key)) throw FileFormatError(detail::concat(where, " has no '", key, "'"));
  }
  RecipeRule rule{
      field(item, "match", nlohmann::json::value_t::string, "a string", where).get<std::string>(),
      field(item, "scheme", nlohmann::json::value_t::string, "a string", where).get<std::string>()};
  try {
    compile_rule(rule.match, where);
  } catch (const Error& error) {
    throw FileFormatError(error.what());
  }
  return rule;
}

}  // namespace

std::regex compile_rule(const std::string& pattern, const std::string& what) {
  try {
    return std::regex(pattern, std::regex::ECMAScript);
  } catch (const std::regex_error& error) {
    throw Error(
        detail::concat(what, " '", pattern, "' is not a valid regular expression: ", error.what()));
  }
}

bool rule_matches(const std::regex& pattern, const std::string& tensor_name) {
  if (std::regex_match(tensor_name, pattern)) return true;
  const bool weight = tensor_name.size() > kWeightSuffix.size() &&
                      tensor_name.compare(tensor_name.size() - kWeightSuffix.size(),
                                          kWeightSuffix.size(), kWeightSuffix) == 0;
  return weight &&
         std::regex_match(tensor_name.begin(), tensor_name.end() - kWeightSuffix.size(), pattern);
}

Recipe parse_recipe(const std::string& json_text, const std::string& source) {
  const auto document = nlohmann::json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  const std::string where = "recipe '" + source + "'";
  if (document.is_discarded()) throw FileFormatError(where + " is not valid JSON");
  if (!document.is_object()) throw FileFormatError(where + " must be a JSON object");
  check_keys(document, {"scheme", "embeddings", "rules", "allow_unmatched"}, where);
  Recipe recipe;
  using Type = nlohmann::json::value_t;
  if (document.contains("scheme")) {
    recipe.scheme = field(document, "scheme", Type::string, "a string", where).get<std::string>();
  }
  if (document.contains("embeddings")) {
    recipe.embeddings =
        field(document, "embeddings", Type::boolean, "true or false", where).get<bool>();
  }
  if (document.contains("allow_unmatched")) {
    recipe.allow_unmatched =
        field(document, "allow_unmatched", Type::boolean, "true or false", where).get<bool>();
  }
  if (document.contains("rules")) {
    const auto& rules = field(document, "rules", Type::array, "a list", where);
    for (std::size_t i = 0; i < rules.size(); ++i) {
      recipe.rules.push_back(parse_rule(rules[i], detail::concat(where, " rule ", i + 1)));
    }
  }
  return recipe;
}

Recipe read_recipe(const std::string& path) {
  std::ifstream file(path);
  if (!file) throw IoError(detail::concat("cannot read recipe '", path, "'"));
  std::ostringstream text;
  text << file.rdbuf();
  return parse_recipe(text.str(), path);
}

std::string recipe_json(const Recipe& recipe) {
  nlohmann::json rules = nlohmann::json::array();
  for (const auto& rule : recipe.rules) {
    rules.push_back({{"match", rule.match}, {"scheme", rule.scheme}});
  }
  const nlohmann::json document = {{"scheme", recipe.scheme},
                                   {"embeddings", recipe.embeddings},
                                   {"rules", rules},
                                   {"allow_unmatched", recipe.allow_unmatched}};
  return document.dump(2) + "\n";
}

}  // namespace quantkit::io
