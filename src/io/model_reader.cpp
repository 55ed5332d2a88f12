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

}  // namespace

std::vector<ModelTensor> load_compressed_tensors(const std::string& path,
                                                 ScalarType compute_dtype) {
  const Checkpoint checkpoint = Checkpoint::open(path);
  std::vector<ModelTensor> tensors;
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
      }
    }
  }
  return tensors;
}

}  // namespace quantkit::io
