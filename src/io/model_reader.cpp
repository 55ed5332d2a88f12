// Reading back a compressed-tensors checkpoint quantkit wrote.
#include <cstring>
#include <map>
#include <set>

#include "compressed_tensors.hpp"
#include "quantkit/io/checkpoint.hpp"
#include "quantkit/io/model_io.hpp"
#include "quantkit/io/stored_weights.hpp"

namespace quantkit::io {
namespace {

Tensor stored_tensor(const SafetensorsFile& file, const TensorEntry& entry) {
  const auto dtype = to_scalar_type(entry.dtype);
  QK_CHECK(dtype.has_value(), "tensor '", entry.name, "' has dtype ", dtype_info(entry.dtype).name,
           ", which quantkit cannot hold");
  Tensor out = Tensor::uninitialized(*dtype, entry.shape);
  const auto bytes = file.bytes(entry);
  std::memcpy(out.raw_data(), bytes.data(), bytes.size());
  return out;
}

// A layer's static input qparams are plain tensors beside its weight (in any
// shard): they become the weight's InputQuantization and leave the list.
void attach_static_inputs(std::vector<ModelTensor>& tensors,
                          const std::vector<std::size_t>& static_layers) {
  std::map<std::string, std::size_t> plain;
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    if (!tensors[i].quantized) plain.emplace(tensors[i].name, i);
  }
  std::set<std::size_t> used;
  for (std::size_t layer : static_layers) {
    ModelTensor& weight = tensors[layer];
    const std::string module = weight.name.substr(0, weight.name.size() - 7);  // ".weight"
    const auto scale = plain.find(module + ".input_scale");
    if (scale == plain.end()) {
      throw FileFormatError(detail::concat("tensor '", module,
                                           ".input_scale' is missing: the config gives layer '",
                                           module, "' static input qparams"));
    }
    const auto zero_point = plain.find(module + ".input_zero_point");
    const Tensor* zp = zero_point == plain.end() ? nullptr : &tensors[zero_point->second].owned;
    weight.input_activations->static_qparams =
        ct::static_input_qparams(weight.input_activations->spec, tensors[scale->second].owned, zp);
    used.insert(scale->second);
    if (zp != nullptr) used.insert(zero_point->second);
  }
  std::vector<ModelTensor> kept;
  kept.reserve(tensors.size() - used.size());
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    if (!used.contains(i)) kept.push_back(std::move(tensors[i]));
  }
  tensors = std::move(kept);
}

}  // namespace

std::vector<ModelTensor> load_compressed_tensors(const std::string& path,
                                                 ScalarType compute_dtype) {
  const Checkpoint checkpoint = Checkpoint::open(path);
  std::vector<ModelTensor> tensors;
  std::vector<std::size_t> static_layers;  // quantized weights whose inputs have static qparams
  for (const auto& file : checkpoint.shards()) {
    const auto weights = stored_weights(file);
    std::set<std::string> parts;  // tensors that belong to a quantized weight
    std::map<std::string, const StoredWeight*> by_code;  // its code tensor -> the weight
    for (const auto& weight : weights) {
      for (const auto& output : ct::declare_outputs(weight.name, *weight.scheme, weight.shape[0],
                                                    weight.shape[1], StDType::F32)) {
        parts.insert(output.name);
      }
      by_code.emplace(ct::code_tensor_name(*weight.scheme, weight.name), &weight);
    }
    for (const auto& entry : file.header().tensors) {
      if (!parts.contains(entry.name)) {
        Tensor owned = stored_tensor(file, entry);
        const TensorView view = owned.view();
        tensors.push_back({entry.name, view, std::move(owned), std::nullopt});
        continue;
      }
      // Each weight appears once, where its code tensor is.
      if (const auto found = by_code.find(entry.name); found != by_code.end()) {
        const StoredWeight& weight = *found->second;
        tensors.push_back(
            {weight.name, std::nullopt, Tensor(), load_quantized(file, weight, compute_dtype)});
        if (weight.input_spec) {
          tensors.back().input_activations = InputQuantization{*weight.input_spec};
          if (weight.static_inputs) static_layers.push_back(tensors.size() - 1);
        }
      }
    }
  }
  attach_static_inputs(tensors, static_layers);
  return tensors;
}

}  // namespace quantkit::io
