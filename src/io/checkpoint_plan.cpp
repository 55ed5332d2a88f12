// Opening a checkpoint and deciding, before anything is written, what happens
// to each tensor.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <set>

#include "compressed_tensors.hpp"
#include "importance_file.hpp"
#include "quantkit/io/checkpoint.hpp"
#include "quantkit/io/recipe.hpp"

namespace quantkit::io {
namespace fs = std::filesystem;
namespace {

constexpr std::string_view kIndexSuffix = ".safetensors.index.json";

bool ends_with(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() && text.substr(text.size() - suffix.size()) == suffix;
}

// A rule of --override, of the recipe file or of a preset; scheme nullptr
// keeps the weight in float ("skip").
struct Rule {
  std::regex pattern;
  const Scheme* scheme;
  std::string origin;  // "--override 'X=int8'", "recipe 'r.json' rule 2"
};

const Scheme* rule_scheme(const std::string& name, const std::string& origin) {
  if (name == kSkipScheme) return nullptr;
  QK_CHECK(find_preset(name) == nullptr, origin, ": '", name,
           "' is a preset; a preset is a default scheme (--scheme or the recipe's \"scheme\"), "
           "rules name single schemes");
  try {
    return &find_scheme(name);
  } catch (const Error& error) {
    throw Error(detail::concat(origin, ": ", error.what()));
  }
}

// REGEX=SCHEME: regexes may hold '=' and so may scheme options
// ("int4-g32:search=mse"), so the split is the rightmost '=' after which a
// scheme name follows.
Rule parse_override(const std::string& text) {
  const std::string origin = "--override '" + text + "'";
  std::optional<Error> last;
  for (std::size_t split = text.rfind('='); split != std::string::npos && split > 0;
       split = text.rfind('=', split - 1)) {
    try {
      const Scheme* scheme = rule_scheme(text.substr(split + 1), origin);
      return {compile_rule(text.substr(0, split), "--override regex"), scheme, origin};
    } catch (const Error& error) {
      if (!last) last = error;
    }
    if (split == 0) break;
  }
  QK_CHECK(last.has_value(), origin, " must be REGEX=SCHEME");
  throw *last;
}

// --override rules first (they refine a recipe), then the recipe's rules.
std::vector<Rule> user_rules(const QuantizeOptions& options, const Recipe* recipe) {
  std::vector<Rule> rules;
  for (const auto& text : options.overrides) rules.push_back(parse_override(text));
  if (recipe != nullptr) {
    for (std::size_t i = 0; i < recipe->rules.size(); ++i) {
      const std::string origin = detail::concat("recipe '", options.recipe, "' rule ", i + 1, " '",
                                                recipe->rules[i].match, "'");
      rules.push_back({compile_rule(recipe->rules[i].match, origin),
                       rule_scheme(recipe->rules[i].scheme, origin), origin});
    }
  }
  return rules;
}

// Empty when the tensor is quantized, else why it is kept as it is.
std::string reason_to_keep(const TensorEntry& entry, bool embeddings,
                           const std::optional<std::regex>& include,
                           const std::optional<std::regex>& exclude) {
  if (include && !rule_matches(*include, entry.name)) return "not matched by --include";
  if (exclude && rule_matches(*exclude, entry.name)) return "matched by --exclude";
  if (!is_float_input(entry.dtype)) return detail::concat("dtype ", dtype_info(entry.dtype).name);
  if (entry.shape.size() != 2) return detail::concat(entry.shape.size(), "-D");
  if (entry.shape[0] == 0 || entry.shape[1] == 0) return "empty";
  if (!ends_with(entry.name, "weight")) return "not a weight";
  if (!embeddings && entry.name.find("embed") != std::string::npos) {
    return "embedding (--embeddings quantizes it)";
  }
  return {};
}

// The weight_map of a shard index, every value a file name inside the folder.
nlohmann::json read_weight_map(const fs::path& index_path) {
  nlohmann::json index;
  try {
    index = nlohmann::json::parse(std::ifstream(index_path));
  } catch (const nlohmann::json::exception& parse_error) {
    throw FileFormatError(
        detail::concat("'", index_path.string(), "' is not valid JSON: ", parse_error.what()));
  }
  const auto map = index.find("weight_map");
  if (!index.is_object() || map == index.end() || !map->is_object()) {
    throw FileFormatError(detail::concat("'", index_path.string(), "' has no weight_map object"));
  }
  for (const auto& [tensor, shard] : map->items()) {
    if (!shard.is_string()) {
      throw FileFormatError(detail::concat("'", index_path.string(), "': weight_map['", tensor,
                                           "'] is not a file name"));
    }
    const auto name = shard.get<std::string>();
    if (name.find('\0') != std::string::npos) {
      throw FileFormatError(detail::concat("'", index_path.string(), "': weight_map['", tensor,
                                           "'] names a shard with a NUL character"));
    }
    QK_CHECK(name.find('/') == std::string::npos && name != ".." && name != "." && !name.empty(),
             "index names shard '", name, "' outside its folder");
  }
  return *map;
}

std::string make_config(const QuantizationPlan& plan) {
  std::vector<ct::SchemeGroup> groups;
  for (const auto& shard : plan.shards) {
    for (const auto& tensor : shard.tensors) {
      if (tensor.scheme == nullptr) continue;
      auto it = std::find_if(groups.begin(), groups.end(),
                             [&](const ct::SchemeGroup& g) { return g.scheme == tensor.scheme; });
      if (it == groups.end()) it = groups.insert(groups.end(), {tensor.scheme, {}});
      std::string module = tensor.entry->name;
      if (ends_with(module, ".weight")) module.resize(module.size() - 7);
      it->modules.push_back(std::move(module));
    }
  }
  return ct::quantization_config(groups);
}

}  // namespace

namespace {

// config.json of a folder, when present, names an existing quantization.
bool config_has_quantization(const fs::path& config_path) {
  if (!fs::exists(config_path)) return false;
  const auto config = nlohmann::json::parse(std::ifstream(config_path), nullptr, false);
  return config.is_object() && config.contains("quantization_config");
}

void check_index_covers_folder(const fs::path& index, const nlohmann::json& weight_map,
                               const std::vector<std::string>& files_in_folder,
                               const std::vector<std::string>& shard_names) {
  if (weight_map.empty()) {
    throw FileFormatError(
        detail::concat("'", index.string(), "' names no tensor (its weight_map is empty)"));
  }
  for (const auto& file : files_in_folder) {
    if (!std::binary_search(shard_names.begin(), shard_names.end(), file)) {
      throw FileFormatError(detail::concat(
          "'", file, "' lies in the checkpoint folder but '", index.filename().string(),
          "' does not name it: its tensors would be left out (remove the file or index it)"));
    }
  }
}

}  // namespace

Checkpoint Checkpoint::open(const std::string& path) {
  Checkpoint checkpoint;
  checkpoint.path_ = path;
  std::error_code error;
  const auto status = fs::status(path, error);
  if (error || !fs::exists(status))
    throw IoError(detail::concat("cannot open '", path, "': no such file or folder"));
  if (!fs::is_directory(status)) {
    checkpoint.shard_names_.push_back(fs::path(path).filename().string());
    checkpoint.shards_.push_back(SafetensorsFile::open(path));
  } else {
    checkpoint.open_folder();
  }
  std::size_t tensors = 0;
  for (std::size_t i = 0; i < checkpoint.shards_.size(); ++i) {
    const auto& header = checkpoint.shards_[i].header();
    tensors += header.tensors.size();
    if (checkpoint.quantized_by_.empty() && header.metadata.count("quantization_config") != 0) {
      checkpoint.quantized_by_ = "the metadata of '" + checkpoint.shard_names_[i] + "'";
    }
  }
  if (tensors == 0) {
    throw FileFormatError(detail::concat("checkpoint '", path, "' holds no tensor"));
  }
  return checkpoint;
}

void Checkpoint::open_folder() {
  is_folder_ = true;
  std::vector<fs::path> indexes;
  std::vector<std::string> files;
  for (const auto& item : fs::directory_iterator(path_)) {
    const std::string file = item.path().filename().string();
    if (ends_with(file, kIndexSuffix))
      indexes.push_back(item.path());
    else if (ends_with(file, ".safetensors") && item.is_regular_file())
      files.push_back(file);
  }
  std::sort(files.begin(), files.end());
  QK_CHECK(indexes.size() <= 1, "folder '", path_, "' holds ", indexes.size(),
           " *.safetensors.index.json files; keep one");
  if (config_has_quantization(fs::path(path_) / "config.json")) quantized_by_ = "config.json";
  if (indexes.empty()) {
    if (files.empty()) {
      throw FileFormatError(detail::concat("folder '", path_, "' holds no .safetensors file"));
    }
    shard_names_ = files;
    for (const auto& name : shard_names_) {
      shards_.push_back(SafetensorsFile::open((fs::path(path_) / name).string()));
    }
    return;
  }
  has_index_ = true;
  const nlohmann::json weight_map = read_weight_map(indexes[0]);
  std::set<std::string> names;
  for (const auto& [tensor, shard] : weight_map.items()) names.insert(shard.get<std::string>());
  shard_names_.assign(names.begin(), names.end());
  check_index_covers_folder(indexes[0], weight_map, files, shard_names_);
  for (const auto& name : shard_names_) {
    shards_.push_back(SafetensorsFile::open((fs::path(path_) / name).string()));
  }
  for (const auto& [tensor, shard] : weight_map.items()) {
    const auto at =
        std::lower_bound(shard_names_.begin(), shard_names_.end(), shard.get<std::string>());
    const auto& file = shards_[static_cast<std::size_t>(at - shard_names_.begin())];
    if (file.header().find(tensor) == nullptr) {
      throw FileFormatError(detail::concat("index maps tensor '", tensor, "' to '",
                                           shard.get<std::string>(), "', which does not hold it"));
    }
  }
  for (std::size_t i = 0; i < shards_.size(); ++i) {
    for (const auto& entry : shards_[i].header().tensors) {
      const auto named = weight_map.find(entry.name);
      if (named == weight_map.end() || named->get<std::string>() != shard_names_[i]) {
        throw FileFormatError(
            detail::concat("shard '", shard_names_[i], "' holds tensor '", entry.name, "', which '",
                           indexes[0].filename().string(), "' does not map to it"));
      }
    }
  }
}

std::uint64_t Checkpoint::total_bytes() const {
  std::uint64_t total = 0;
  for (const auto& shard : shards_) {
    for (const auto& entry : shard.header().tensors) total += entry.nbytes();
  }
  return total;
}

std::uint64_t TensorPlan::output_bytes() const {
  std::uint64_t total = 0;
  for (const auto& output : outputs) total += output.nbytes();
  return total;
}

namespace {

// With tie_word_embeddings, transformers makes lm_head and the input embedding
// one tensor at load time: a quantized half is either untied silently or
// fails to load, so it is refused by name.
void check_tied_embeddings(const Checkpoint& input, const QuantizationPlan& plan) {
  const fs::path config_path = fs::path(input.path()) / "config.json";
  if (!fs::is_directory(input.path()) || !fs::exists(config_path)) return;
  const auto config = nlohmann::json::parse(std::ifstream(config_path), nullptr, false);
  if (!config.is_object()) return;  // reported when the config is copied
  const auto tie = config.find("tie_word_embeddings");
  const bool tied = tie != config.end() && tie->is_boolean() && tie->get<bool>();
  if (!tied) return;
  for (const auto& shard : plan.shards) {
    for (const auto& tensor : shard.tensors) {
      const std::string& name = tensor.entry->name;
      const bool tied_part = name.find("embed") != std::string::npos || name == "lm_head.weight";
      QK_CHECK(tensor.scheme == nullptr || !tied_part,
               "config.json sets tie_word_embeddings: "
               "true, so transformers loads lm_head and the input embedding as one tensor; "
               "quantizing '",
               name,
               "' would be untied silently or fail to load: keep it float "
               "(--exclude '",
               ct::escape_regex(name),
               "'), or set tie_word_embeddings to false in "
               "config.json if the checkpoint stores both tensors");
    }
  }
}

// --importance: every vector must belong to a weight that is quantized with a
// searched scheme and have one value per column; anything else is refused by
// name (a misspelt or stale file would otherwise do nothing, silently).
void attach_importance(const std::string& path, QuantizationPlan& plan) {
  std::map<std::string, TensorPlan*> quantized;
  for (auto& shard : plan.shards) {
    for (auto& tensor : shard.tensors) {
      if (tensor.scheme != nullptr) quantized.emplace(tensor.entry->name, &tensor);
    }
  }
  std::vector<std::string> unmatched;
  for (auto& vector : read_importance(path)) {
    const auto found = quantized.find(vector.name);
    if (found == quantized.end()) {
      unmatched.push_back(vector.file_name == vector.name
                              ? vector.name
                              : vector.file_name + " (" + vector.name + ")");
      continue;
    }
    TensorPlan& tensor = *found->second;
    QK_CHECK(tensor.scheme->spec.scale_search != ScaleSearch::none, "--importance: tensor '",
             vector.name, "' is quantized with ", tensor.scheme->name,
             ", which does not search its scales; use a ':search=mse' scheme");
    const std::int64_t columns = tensor.entry->shape[1];
    if (static_cast<std::int64_t>(vector.values.size()) != columns) {
      throw FileFormatError(detail::concat("--importance: '", vector.file_name, "' holds ",
                                           vector.values.size(), " values; tensor '", vector.name,
                                           "' has ", columns, " columns"));
    }
    for (std::size_t i = 0; i < vector.values.size(); ++i) {
      QK_CHECK(std::isfinite(vector.values[i]) && vector.values[i] >= 0, "--importance: '",
               vector.file_name, "' holds ", vector.values[i], " at index ", i,
               "; importance must be finite and >= 0");
    }
    tensor.importance = std::move(vector.values);
  }
  if (!unmatched.empty()) {
    std::string names;
    for (std::size_t i = 0; i < std::min<std::size_t>(unmatched.size(), 5); ++i) {
      names += detail::concat(i ? ", '" : "'", unmatched[i], "'");
    }
    throw Error(detail::concat("--importance: ", unmatched.size(),
                               " vectors name no quantized weight of the checkpoint (", names,
                               unmatched.size() > 5 ? ", ..." : "",
                               "); importance is keyed by the weight's name (GGUF names of "
                               "llama.cpp imatrix files are mapped to Hugging Face Llama names)"));
  }
}

// A pattern that matches nothing in full but is found inside a name was most
// likely written for searching: say where, so the fix is one edit.
std::string found_inside(const Checkpoint& input, const std::regex& pattern) {
  for (const auto& shard : input.shards()) {
    for (const auto& entry : shard.header().tensors) {
      if (std::regex_search(entry.name, pattern)) {
        return detail::concat(" (it is found inside '", entry.name,
                              "'; to match anywhere in a name, wrap it in '.*')");
      }
    }
  }
  return {};
}

}  // namespace

QuantizationPlan plan_quantization(const Checkpoint& input, const QuantizeOptions& options) {
  QK_CHECK(input.quantization_config_source().empty(), "'", input.path(),
           "' is already quantized (", input.quantization_config_source(),
           " holds a quantization_config): re-quantizing would drop its scales; quantize the "
           "original float checkpoint");
  std::optional<Recipe> recipe;
  if (!options.recipe.empty()) recipe = read_recipe(options.recipe);
  const std::string& scheme_name = recipe ? recipe->scheme : options.scheme;
  const bool embeddings = options.embeddings || (recipe && recipe->embeddings);
  const bool allow_unmatched = options.allow_unmatched_rules || (recipe && recipe->allow_unmatched);
  // A preset is a default scheme plus role rules, after the user's own rules
  // (first match wins, so --override and recipe rules refine a preset).
  const Preset* preset = find_preset(scheme_name);
  const Scheme& default_scheme = find_scheme(preset ? preset->default_scheme : scheme_name);
  std::vector<Rule> rules = user_rules(options, recipe ? &*recipe : nullptr);
  const std::size_t user_rule_count = rules.size();
  if (preset) {
    for (const auto& [pattern, scheme] : preset->rules) {
      rules.push_back(
          {compile_rule(pattern, "preset regex"), &find_scheme(scheme), "preset " + preset->name});
    }
  }
  std::optional<std::regex> include, exclude;
  if (!options.include.empty()) include = compile_rule(options.include, "--include");
  if (!options.exclude.empty()) exclude = compile_rule(options.exclude, "--exclude");

  QuantizationPlan plan;
  std::set<std::string> output_names;
  // Which user rules matched a tensor (a preset's role rules may match none).
  std::vector<char> rule_used(user_rule_count, 0);
  bool include_used = false, exclude_used = false;
  for (const auto& shard : input.shards()) {
    ShardPlan& shard_plan = plan.shards.emplace_back();
    for (const auto& entry : shard.header().tensors) {
      TensorPlan tensor;
      tensor.entry = &entry;
      tensor.note = reason_to_keep(entry, embeddings, include, exclude);
      include_used = include_used || (include && rule_matches(*include, entry.name));
      exclude_used = exclude_used || (exclude && rule_matches(*exclude, entry.name));
      if (tensor.note.empty()) {
        tensor.scheme = &default_scheme;
        for (std::size_t r = 0; r < rules.size(); ++r) {
          if (rule_matches(rules[r].pattern, entry.name)) {
            tensor.scheme = rules[r].scheme;
            if (r < user_rule_count) rule_used[r] = 1;
            if (tensor.scheme == nullptr) tensor.note = "skipped by " + rules[r].origin;
            break;
          }
        }
      }
      if (tensor.scheme != nullptr) {
        ct::check_applicable(entry.name, *tensor.scheme, entry.shape, entry.dtype);
        tensor.outputs = ct::declare_outputs(entry.name, *tensor.scheme, entry.shape[0],
                                             entry.shape[1], entry.dtype);
        ++plan.quantized_tensors;
      } else {
        tensor.outputs.push_back({entry.name, entry.dtype, entry.shape});
      }
      for (const auto& output : tensor.outputs) {
        QK_CHECK(output_names.insert(output.name).second, "output tensor '", output.name,
                 "' would be written twice (is the input already quantized?)");
      }
      plan.input_bytes += entry.nbytes();
      plan.output_bytes += tensor.output_bytes();
      shard_plan.tensors.push_back(std::move(tensor));
    }
  }
  std::vector<std::string> unmatched;
  if (include && !include_used) unmatched.push_back("--include '" + options.include + "'");
  if (exclude && !exclude_used) unmatched.push_back("--exclude '" + options.exclude + "'");
  for (std::size_t r = 0; r < user_rule_count; ++r) {
    if (!rule_used[r]) unmatched.push_back(rules[r].origin + found_inside(input, rules[r].pattern));
  }
  for (const auto& rule : unmatched) {
    const std::string message =
        rule +
        " matches no tensor it could apply to (patterns full-match the module name or the "
        "tensor name, e.g. 'model\\.layers\\.0\\..*'; --dry-run lists the names)";
    if (!allow_unmatched) {
      throw Error(message + "; --allow-unmatched-rules makes this a warning");
    }
    plan.warnings.push_back(message);
  }
  check_tied_embeddings(input, plan);
  if (!options.importance.empty()) attach_importance(options.importance, plan);
  plan.quantization_config = make_config(plan);
  return plan;
}

}  // namespace quantkit::io
