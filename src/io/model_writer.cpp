// A model in memory written in the compressed-tensors layout of the CLI.
#include "quantkit/io/model_io.hpp"

#include <algorithm>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "compressed_tensors.hpp"
#include "quantkit/io/output_target.hpp"
#include "quantkit/io/schemes.hpp"

namespace quantkit::io {
namespace fs = std::filesystem;
namespace {

struct PlannedTensor {
  const ModelTensor* tensor;
  const Scheme* scheme = nullptr;  // quantized weights only
  std::vector<TensorDecl> outputs;
};

std::string module_of(const std::string& weight_name) {
  return weight_name.substr(0, weight_name.size() - std::string(".weight").size());
}

PlannedTensor plan_quantized(const ModelTensor& tensor) {
  const QuantizedTensor& q = *tensor.quantized;
  QK_CHECK(tensor.name.ends_with(".weight"), "quantized tensor '", tensor.name,
           "' must be a module's weight (a name ending in .weight)");
  QK_CHECK(q.shape().size() == 2, "quantized weight '", tensor.name, "' has shape ",
           to_string(q.shape()), "; compressed-tensors stores 2-D weights");
  const QParams& qparams = q.qparams();
  const Scheme& scheme = scheme_for_spec(qparams.spec, tensor.input_activations.has_value());
  if (tensor.input_activations) {
    ct::input_activation_args(tensor.input_activations->spec,
                              !tensor.input_activations->static_qparams);  // checks
  }
  if (!scheme.spec.dtype.is_floating() && !ct::has_zero_point(scheme) &&
      scheme.spec.mapping != Mapping::stretched && qparams.zero_point.numel() > 0) {
    for (std::int64_t i = 0; i < qparams.zero_point.numel(); ++i) {
      QK_CHECK(qparams.zero_point.get(i) == 0, "weight '", tensor.name, "' is symmetric but its ",
               "zero point ", qparams.zero_point.get(i), " at flat index ", i,
               " is not 0; compressed-tensors stores symmetric weights without zero points");
    }
  }
  ct::check_applicable(tensor.name, scheme, q.shape(), from_scalar_type(qparams.compute_dtype));
  try {
    ct::stored_global_scale(qparams);  // a divisor the readers decode exactly
  } catch (const Error& error) {
    throw Error(detail::concat("weight '", tensor.name, "': ", error.what()));
  }
  // Plain scales keep their own dtype; byte-coded ones follow the scheme's row.
  const StDType scale_dtype = from_scalar_type(qparams.scale.dtype());
  return {&tensor, &scheme,
          ct::declare_outputs(tensor.name, scheme, q.shape()[0], q.shape()[1], scale_dtype)};
}

void write_plain(const TensorView& tensor, SafetensorsWriter& writer) {
  const auto bytes = static_cast<std::uint64_t>(tensor.numel()) * element_size(tensor.dtype());
  if (tensor.is_contiguous()) {
    writer.write({static_cast<const std::uint8_t*>(tensor.data()), bytes});
    return;
  }
  const Tensor contiguous = tensor.contiguous();  // one tensor at a time, never the model
  writer.write({static_cast<const std::uint8_t*>(contiguous.raw_data()), bytes});
}

void write_quantized(const PlannedTensor& planned, SafetensorsWriter& writer) {
  const Scheme& scheme = *planned.scheme;
  const QuantizedTensor& q = *planned.tensor->quantized;
  const std::int64_t rows = q.shape()[0];
  const std::int64_t columns = q.shape()[1];
  std::vector<std::uint8_t> bytes;
  ct::append_codes(scheme, q, columns, bytes);
  writer.write(bytes);
  bytes.clear();
  ct::append_scales(scheme, q.qparams(), bytes);
  writer.write(bytes);
  std::vector<std::int32_t> zero_points;
  if (ct::has_zero_point(scheme)) {
    const Tensor zero_point = q.qparams().zero_point.to(ScalarType::int32);
    zero_points.assign(zero_point.data<std::int32_t>(),
                       zero_point.data<std::int32_t>() + zero_point.numel());
  }
  bytes.clear();
  ct::append_trailing_parts(scheme, zero_points, ct::stored_global_scale(q.qparams()), rows,
                            columns, bytes);
  writer.write(bytes);
}

std::uint64_t output_bytes(const std::vector<TensorDecl>& outputs) {
  std::uint64_t total = 0;
  for (const auto& output : outputs) total += output.nbytes();
  return total;
}

// Tensors in order, cut into shards of at most `max_bytes` (a tensor larger
// than that gets a shard of its own).
std::vector<std::vector<const PlannedTensor*>> cut_into_shards(
    const std::vector<PlannedTensor>& planned, std::uint64_t max_bytes) {
  std::vector<std::vector<const PlannedTensor*>> shards(1);
  std::uint64_t size = 0;
  for (const auto& plan : planned) {
    const std::uint64_t bytes = output_bytes(plan.outputs);
    if (!shards.back().empty() && size + bytes > max_bytes) {
      shards.emplace_back();
      size = 0;
    }
    shards.back().push_back(&plan);
    size += bytes;
  }
  return shards;
}

std::string shard_name(std::size_t index, std::size_t count) {
  if (count == 1) return "model.safetensors";
  char name[64];
  std::snprintf(name, sizeof(name), "model-%05zu-of-%05zu.safetensors", index + 1, count);
  return name;
}

void write_shard(const fs::path& path, const std::vector<const PlannedTensor*>& shard,
                 const std::string& quantization) {
  std::vector<TensorDecl> declarations;
  for (const auto* plan : shard) {
    declarations.insert(declarations.end(), plan->outputs.begin(), plan->outputs.end());
  }
  SafetensorsWriter writer(path.string(), declarations,
                           {{"format", "pt"}, {"quantization_config", quantization}});
  for (const auto* plan : shard) {
    if (plan->scheme != nullptr) {
      write_quantized(*plan, writer);
    } else {
      write_plain(*plan->tensor->plain, writer);
    }
  }
  writer.commit();
}

nlohmann::ordered_json parse_config(const std::string& base_config) {
  if (base_config.empty()) return nlohmann::ordered_json::object();
  nlohmann::ordered_json config;
  try {
    config = nlohmann::ordered_json::parse(base_config);
  } catch (const nlohmann::json::exception& error) {
    throw Error(detail::concat("config is not valid JSON: ", error.what()));
  }
  QK_CHECK(config.is_object(), "config must be a JSON object (a model's config.json)");
  QK_CHECK(!config.contains("quantization_config"), "config already holds a quantization_config; ",
           "pass the float model's config");
  return config;
}

}  // namespace

void save_compressed_tensors(const std::string& folder, const std::vector<ModelTensor>& tensors,
                             const std::string& base_config, bool replace,
                             std::uint64_t max_shard_bytes) {
  QK_CHECK(max_shard_bytes > 0, "max_shard_bytes must be > 0");
  auto config = parse_config(base_config);
  std::vector<PlannedTensor> planned;
  std::vector<ct::SchemeGroup> groups;
  std::set<std::string> names;
  std::deque<ModelTensor> input_qparams;  // static input scales / zero points (stable addresses)
  auto plan_plain = [&](const ModelTensor& tensor) {
    return PlannedTensor{
        &tensor,
        nullptr,
        {{tensor.name, from_scalar_type(tensor.plain->dtype()), tensor.plain->shape()}}};
  };
  auto add = [&](PlannedTensor plan) {
    for (const auto& output : plan.outputs) {
      QK_CHECK(names.insert(output.name).second, "tensor '", output.name,
               "' would be written twice");
    }
    planned.push_back(std::move(plan));
  };
  for (const auto& tensor : tensors) {
    QK_CHECK(tensor.quantized.has_value() != tensor.plain.has_value(), "tensor '", tensor.name,
             "' must be either quantized or plain");
    if (!tensor.quantized) {
      add(plan_plain(tensor));
      continue;
    }
    PlannedTensor plan = plan_quantized(tensor);
    const auto& inputs = tensor.input_activations;
    const std::optional<QuantSpec> input_spec =
        inputs ? std::optional<QuantSpec>(inputs->spec) : std::nullopt;
    const bool static_inputs = inputs && inputs->static_qparams;
    auto group = std::find_if(groups.begin(), groups.end(), [&](const ct::SchemeGroup& g) {
      return g.scheme == plan.scheme && g.input_activations == input_spec &&
             g.static_inputs == static_inputs;
    });
    if (group == groups.end()) {
      group = groups.insert(groups.end(), {plan.scheme, {}, input_spec, static_inputs});
    }
    const std::string module = module_of(tensor.name);
    group->modules.push_back(module);
    add(std::move(plan));
    if (!static_inputs) continue;
    for (auto& [name, value] : ct::static_input_tensors(
             module, *inputs->static_qparams, tensor.quantized->qparams().compute_dtype)) {
      ModelTensor& extra = input_qparams.emplace_back();
      extra.name = name;
      extra.owned = std::move(value);
      extra.plain = extra.owned.view();
      add(plan_plain(extra));
    }
  }
  const std::string quantization = ct::quantization_config(groups);
  config["quantization_config"] = nlohmann::ordered_json::parse(quantization);

  const fs::path target = check_output_path(folder, OutputKind::folder, "", replace);
  StagingFolder staging(target);
  const auto shards = cut_into_shards(planned, max_shard_bytes);
  nlohmann::ordered_json weight_map = nlohmann::ordered_json::object();
  std::uint64_t total = 0;
  for (std::size_t i = 0; i < shards.size(); ++i) {
    const std::string name = shard_name(i, shards.size());
    write_shard(staging.path() / name, shards[i], quantization);
    for (const auto* plan : shards[i]) {
      for (const auto& output : plan->outputs) weight_map[output.name] = name;
      total += output_bytes(plan->outputs);
    }
  }
  if (shards.size() > 1) {
    nlohmann::ordered_json index;
    index["metadata"] = {{"total_size", total}};
    index["weight_map"] = weight_map;
    write_file_atomically(staging.path() / "model.safetensors.index.json", index.dump(2));
  }
  write_file_atomically(staging.path() / "config.json", config.dump(2));
  staging.publish();
}

}  // namespace quantkit::io
