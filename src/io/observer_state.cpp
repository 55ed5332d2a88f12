#include "quantkit/io/observer_state.hpp"

#include <cstring>

#include "quantkit/io/safetensors.hpp"

namespace quantkit::io {
namespace {

constexpr std::string_view kPrefix = "observer.";

}  // namespace

void save_observer_state(const std::string& path, const ObserverState& state) {
  std::map<std::string, std::string> metadata{{std::string(kPrefix) + "kind", state.kind}};
  for (const auto& [key, value] : state.attributes) metadata[std::string(kPrefix) + key] = value;
  std::vector<TensorDecl> declared;
  for (const auto& [name, tensor] : state.tensors) {
    declared.push_back({name, from_scalar_type(tensor.dtype()), tensor.shape()});
  }
  SafetensorsWriter writer(path, declared, metadata);
  for (const auto& [name, tensor] : state.tensors) {
    writer.write({static_cast<const std::uint8_t*>(tensor.raw_data()), tensor.nbytes()});
  }
  writer.commit();
}

ObserverState load_observer_state(const std::string& path) {
  const auto file = SafetensorsFile::open(path);
  ObserverState state;
  for (const auto& [key, value] : file.header().metadata) {
    if (!key.starts_with(kPrefix)) continue;
    const std::string name = key.substr(kPrefix.size());
    if (name == "kind")
      state.kind = value;
    else
      state.attributes[name] = value;
  }
  if (state.kind.empty()) {
    throw FileFormatError(
        detail::concat("'", path, "' holds no observer state (no observer.kind metadata)"));
  }
  for (const auto& entry : file.header().tensors) {
    const auto dtype = to_scalar_type(entry.dtype);
    if (!dtype) {
      throw FileFormatError(detail::concat("'", path, "': observer tensor '", entry.name,
                                           "' has dtype ", dtype_info(entry.dtype).name));
    }
    Tensor tensor = Tensor::uninitialized(*dtype, entry.shape);
    std::memcpy(tensor.raw_data(), file.bytes(entry).data(), entry.nbytes());
    state.tensors.emplace(entry.name, std::move(tensor));
  }
  return state;
}

}  // namespace quantkit::io
