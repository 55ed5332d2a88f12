// A model in memory written in the compressed-tensors layout of the CLI.
#include "quantkit/io/model_io.hpp"

#include <algorithm>
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
  const Scheme& scheme = scheme_for_spec(qparams.spec);
  if (!scheme.spec.dtype.is_floating() && !ct::has_zero_point(scheme) &&
      scheme.spec.mapping != Mapping::stretched && qparams.zero_point.numel() > 0) {
    for (std::int64_t i = 0; i < qparams.zero_point.numel(); ++i) {
      QK_CHECK(qparams.zero_point.get(i) == 0, "weight '", tensor.name, "' is symmetric but its ",
               "zero point ", qparams.zero_point.get(i), " at flat index ", i,
               " is not 0; compressed-tensors stores symmetric weights without zero points");
    }
  }
  ct::check_applicable(tensor.name, scheme, q.shape(), from_scalar_type(qparams.compute_dtype));
  // Plain scales keep their own dtype; byte-coded ones follow the scheme's row.
  const StDType scale_dtype = from_scalar_type(qparams.scale.dtype());
  return {&tensor, &scheme,
          ct::declare_outputs(tensor.name, scheme, q.shape()[0], q.shape()[1], scale_dtype)};
}

std::span<const std::uint8_t> plain_bytes(const Tensor& tensor) {  // owned tensors are contiguous
  return {static_cast<const std::uint8_t*>(tensor.raw_data()), tensor.nbytes()};
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
  if (ct::has_zero_point(scheme)) {
    const Tensor zero_point = q.qparams().zero_point.to(ScalarType::int32);
    const std::vector<std::int32_t> values(zero_point.data<std::int32_t>(),
                                           zero_point.data<std::int32_t>() + zero_point.numel());
    writer.write(ct::pack_zero_points(values, rows,
                                      zero_point.numel() / std::max<std::int64_t>(rows, 1),
                                      scheme.spec.dtype.bits()));
  }
  if (scheme.format == CheckpointFormat::nvfp4_pack_quantized) {
    const float global_scale = 1.0f;  // single-level NVFP4: the E4M3 block scales carry it all
    writer.write({reinterpret_cast<const std::uint8_t*>(&global_scale), sizeof(global_scale)});
  }
  if (ct::stores_shape(scheme)) {
    const std::int64_t shape[2] = {rows, columns};
    writer.write({reinterpret_cast<const std::uint8_t*>(shape), sizeof(shape)});
  }
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
                             const std::string& base_config, bool replace) {
  auto config = parse_config(base_config);
  std::vector<PlannedTensor> planned;
  std::vector<ct::SchemeGroup> groups;
  std::vector<TensorDecl> declarations;
  std::set<std::string> names;
  for (const auto& tensor : tensors) {
    PlannedTensor plan;
    if (tensor.quantized) {
      plan = plan_quantized(tensor);
      auto group = std::find_if(groups.begin(), groups.end(),
                                [&](const ct::SchemeGroup& g) { return g.scheme == plan.scheme; });
      if (group == groups.end()) group = groups.insert(groups.end(), {plan.scheme, {}});
      group->modules.push_back(module_of(tensor.name));
    } else {
      plan = {&tensor,
              nullptr,
              {{tensor.name, from_scalar_type(tensor.plain.dtype()), tensor.plain.shape()}}};
    }
    for (const auto& output : plan.outputs) {
      QK_CHECK(names.insert(output.name).second, "tensor '", output.name,
               "' would be written twice");
      declarations.push_back(output);
    }
    planned.push_back(std::move(plan));
  }
  const std::string quantization = ct::quantization_config(groups);
  config["quantization_config"] = nlohmann::ordered_json::parse(quantization);

  const fs::path target = check_output_path(folder, OutputKind::folder, "", replace);
  StagingFolder staging(target);
  SafetensorsWriter writer((staging.path() / "model.safetensors").string(), declarations,
                           {{"format", "pt"}, {"quantization_config", quantization}});
  for (const auto& plan : planned) {
    if (plan.scheme != nullptr) {
      write_quantized(plan, writer);
    } else {
      writer.write(plain_bytes(plan.tensor->plain));
    }
  }
  writer.commit();
  write_file_atomically(staging.path() / "config.json", config.dump(2));
  staging.publish();
}

}  // namespace quantkit::io
