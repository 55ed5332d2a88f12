// Bindings of the checkpoint I/O: saving a model held in Python as a
// compressed-tensors folder through the C++ layout code the CLI uses.
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/tuple.h>
#include <nanobind/stl/vector.h>

#include "arrays.hpp"
#include "bindings.hpp"
#include "quantkit/error.hpp"
#include "quantkit/io/model_io.hpp"
#include "quantkit/io/recipe.hpp"
#include "quantkit/io/safetensors.hpp"
#include "quantkit/io/schemes.hpp"

namespace quantkit::python {

using namespace nb::literals;

namespace {

// (name, QuantizedTensor[, input QuantSpec[, static input QParams]]) are
// written in their layout, (name, array) pairs as they are (read in place, in
// the array's dtype and shape).
std::vector<io::ModelTensor> model_tensors(const nb::list& items) {
  std::vector<io::ModelTensor> tensors;
  tensors.reserve(nb::len(items));
  for (nb::handle item : items) {
    nb::tuple pair;
    QK_CHECK(nb::try_cast(item, pair) && nb::len(pair) >= 2 && nb::len(pair) <= 4,
             "each tensor must be a (name, value) pair or a (name, QuantizedTensor, input "
             "QuantSpec[, static input QParams]) tuple");
    std::string name;
    QK_CHECK(nb::try_cast(pair[0], name), "tensor names must be strings");
    io::ModelTensor tensor;
    tensor.name = name;
    QuantizedTensor* quantized = nullptr;
    InArray array;
    if (nb::try_cast(pair[1], quantized) && quantized != nullptr) {
      tensor.quantized = *quantized;
      QuantSpec* input = nullptr;
      if (nb::len(pair) >= 3 && !pair[2].is_none()) {
        QK_CHECK(nb::try_cast(pair[2], input) && input != nullptr, "the input spec of '", name,
                 "' must be a QuantSpec");
        tensor.input_activations = io::InputQuantization{*input};
        QParams* qparams = nullptr;
        if (nb::len(pair) == 4 && !pair[3].is_none()) {
          QK_CHECK(nb::try_cast(pair[3], qparams) && qparams != nullptr,
                   "the static input qparams of '", name, "' must be QParams");
          QK_CHECK(qparams->spec == *input, "the static input qparams of '", name, "' are for ",
                   qparams->spec.describe(), ", not the input spec ", input->describe());
          tensor.input_activations->static_qparams = *qparams;
        }
      }
    } else if (nb::try_cast(pair[1], array)) {
      tensor.plain = view_of(array, name.c_str());  // read in place while it is written
    } else {
      throw Error(detail::concat("tensor '", name,
                                 "' is neither a QuantizedTensor nor an array quantkit can store"));
    }
    tensors.push_back(std::move(tensor));
  }
  return tensors;
}

}  // namespace

void bind_recipes(nb::module_& m) {
  m.def(
      "parse_recipe",
      [](const std::string& text, const std::string& source) {
        const io::Recipe recipe = io::parse_recipe(text, source);
        nb::list rules;
        for (const auto& rule : recipe.rules) rules.append(nb::make_tuple(rule.match, rule.scheme));
        nb::dict out;
        out["scheme"] = recipe.scheme;
        out["embeddings"] = recipe.embeddings;
        out["rules"] = rules;
        out["allow_unmatched"] = recipe.allow_unmatched;
        return out;
      },
      "text"_a, "source"_a,
      "The recipe file's fields as the checkpoint tool reads them (recipe.hpp): scheme, "
      "embeddings, rules as (regex, scheme) pairs, allow_unmatched.");
  m.def(
      "find_scheme",
      [](const std::string& name) {
        const io::Scheme& scheme = io::find_scheme(name);
        return std::make_pair(scheme.name, scheme.spec);
      },
      "name"_a, "(canonical name, QuantSpec) of a checkpoint-tool scheme name or alias.");
  m.def(
      "scheme_name",
      [](const QuantSpec& spec, bool quantized_inputs) {
        return io::scheme_for_spec(spec, quantized_inputs).name;
      },
      "spec"_a, "quantized_inputs"_a = false,
      "The checkpoint tool's name of the scheme that stores a weight quantized with `spec`.");
  m.def(
      "find_preset",
      [](const std::string& name) -> std::optional<nb::tuple> {
        const io::Preset* preset = io::find_preset(name);
        if (preset == nullptr) return std::nullopt;
        nb::list rules;
        for (const auto& [pattern, scheme] : preset->rules)
          rules.append(nb::make_tuple(pattern, scheme));
        return nb::make_tuple(preset->default_scheme, rules);
      },
      "name"_a, "(default scheme, [(regex, scheme)]) of a preset, or None.");
  m.def("scheme_names", [] {
    std::vector<std::string> names;
    for (const auto& scheme : io::schemes()) names.push_back(scheme.name);
    for (const auto& [alias, canonical] : io::scheme_aliases()) names.emplace_back(alias);
    for (const auto& preset : io::presets()) names.push_back(preset.name);
    return names;
  });
  m.def("activation_recipe_names", [] {
    std::vector<std::string> names;
    for (const auto name : io::activation_recipe_names()) names.emplace_back(name);
    return names;
  });
}

// One safetensors file through the C++ memory map, read tensor by tensor: each read
// copies the tensor out and hands its pages of the map back, so the resident set of a
// block-by-block pass is what the caller keeps, not the file.
void bind_safetensors(nb::module_& m) {
  nb::class_<io::SafetensorsFile>(m, "SafetensorsFile")
      .def_static("open", &io::SafetensorsFile::open, "path"_a,
                  "Maps and validates a safetensors file.")
      .def(
          "tensors",
          [](const io::SafetensorsFile& file) {
            nb::list out;
            for (const auto& entry : file.header().tensors) {
              out.append(nb::make_tuple(entry.name, std::string(io::dtype_info(entry.dtype).name),
                                        entry.shape));
            }
            return out;
          },
          "(name, safetensors dtype name, shape) of every tensor, in file order.")
      .def(
          "read",
          [](const io::SafetensorsFile& file, const std::string& name) {
            const io::TensorEntry* entry = file.header().find(name);
            QK_CHECK(entry != nullptr, "'", file.path(), "' has no tensor '", name, "'");
            Tensor out = Tensor::uninitialized(ScalarType::uint8,
                                               {static_cast<std::int64_t>(entry->nbytes())});
            {
              nb::gil_scoped_release release;
              const auto bytes = file.bytes(*entry);
              std::copy(bytes.begin(), bytes.end(), static_cast<std::uint8_t*>(out.raw_data()));
              file.release(*entry, 0, entry->nbytes());
            }
            return to_array(std::move(out));
          },
          "name"_a,
          "The tensor's bytes (a uint8 array, a copy); its pages of the map are handed back.");
}

void bind_io(nb::module_& m) {
  bind_recipes(m);
  bind_safetensors(m);
  m.def(
      "save_compressed_tensors",
      [](const std::string& folder, const nb::list& items, const std::string& config, bool replace,
         std::uint64_t max_shard_bytes) {
        const auto tensors = model_tensors(items);  // views: `items` keeps the arrays alive
        nb::gil_scoped_release release;
        io::save_compressed_tensors(folder, tensors, config, replace, max_shard_bytes);
      },
      "folder"_a, "tensors"_a, "config"_a, "replace"_a = false,
      "max_shard_bytes"_a = std::uint64_t{5} << 30,
      "Writes a compressed-tensors folder (model.safetensors + config.json) from (name, "
      "QuantizedTensor or array) pairs; quantized weights keep their codes and qparams.");
  m.def(
      "load_compressed_tensors",
      [](const std::string& path, const std::string& compute_dtype) {
        std::vector<io::ModelTensor> tensors;
        {
          nb::gil_scoped_release release;
          tensors = io::load_compressed_tensors(path, scalar_type_from_name(compute_dtype));
        }
        nb::list out;
        for (auto& tensor : tensors) {
          if (tensor.quantized) {
            nb::object spec = nb::none(), qparams = nb::none();
            if (tensor.input_activations) {
              spec = nb::cast(tensor.input_activations->spec);
              if (tensor.input_activations->static_qparams) {
                qparams = nb::cast(*tensor.input_activations->static_qparams);
              }
            }
            out.append(nb::make_tuple(tensor.name, std::move(*tensor.quantized), spec, qparams));
          } else {
            out.append(nb::make_tuple(tensor.name, to_array(std::move(tensor.owned))));
          }
        }
        return out;
      },
      "path"_a, "compute_dtype"_a,
      "The tensors of a checkpoint quantkit wrote, in file order: (name, array) pairs and, "
      "for quantized weights, (name, QuantizedTensor, input QuantSpec or None, static input "
      "QParams or None).");
}

}  // namespace quantkit::python
