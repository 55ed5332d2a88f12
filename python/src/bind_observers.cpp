// Bindings of the observers and their state files.
#include <nanobind/stl/map.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/unique_ptr.h>

#include "arrays.hpp"
#include "bindings.hpp"
#include "quantkit/io/observer_state.hpp"
#include "quantkit/observers.hpp"

namespace quantkit::python {

using namespace nb::literals;

namespace {

nb::dict state_to_dict(const ObserverState& state) {
  nb::dict tensors;
  for (const auto& [name, tensor] : state.tensors)
    tensors[name.c_str()] = nb::cast(to_array(Tensor(tensor)));
  nb::dict out;
  out["kind"] = state.kind;
  out["attributes"] = state.attributes;
  out["tensors"] = tensors;
  return out;
}

std::string type_name_of(nb::handle value) {
  return nb::cast<std::string>(nb::str(value.type().attr("__name__")));
}

nb::handle state_key(const nb::dict& dict, const char* key) {
  if (!dict.contains(key)) {
    throw Error(detail::concat("observer state: key '", key,
                               "' is missing (a state() dict has kind, attributes and tensors)"));
  }
  return dict[key];
}

template <typename T>
T cast_field(nb::handle value, const std::string& where, const char* expected) {
  T out;
  if (!nb::try_cast(value, out)) {
    throw Error(
        detail::concat("observer state: ", where, " is ", type_name_of(value), ", not ", expected));
  }
  return out;
}

// Every field is checked here for its Python type; the observer's load_state
// then checks the values (observers/state_fields.hpp).
ObserverState state_from_dict(const nb::dict& dict) {
  ObserverState state;
  state.kind = cast_field<std::string>(state_key(dict, "kind"), "kind", "a string");
  const auto attributes =
      cast_field<nb::dict>(state_key(dict, "attributes"), "attributes", "a dict");
  for (auto [key, value] : attributes) {
    const auto name = cast_field<std::string>(key, "an attribute name", "a string");
    state.attributes[name] = cast_field<std::string>(
        value, "attributes['" + name + "']", "a string (state() writes every attribute as text)");
  }
  const auto tensors = cast_field<nb::dict>(state_key(dict, "tensors"), "tensors", "a dict");
  for (auto [key, array] : tensors) {
    const auto name = cast_field<std::string>(key, "a tensor name", "a string");
    const auto input = cast_field<InArray>(array, "tensors['" + name + "']", "a numeric array");
    state.tensors.emplace(name, view_of(input, "state tensor").contiguous());
  }
  return state;
}

}  // namespace

void bind_observers(nb::module_& m) {
  nb::class_<Observer>(m, "Observer")
      .def(
          "observe", [](Observer& o, const InArray& x) { o.observe(view_of(x, "x")); }, "x"_a)
      .def("qparams", &Observer::qparams)
      .def("reset", &Observer::reset)
      .def("merge", &Observer::merge, "other"_a)
      .def("state", [](const Observer& o) { return state_to_dict(o.state()); })
      .def(
          "load_state",
          [](Observer& o, const nb::dict& state) { o.load_state(state_from_dict(state)); },
          "state"_a)
      .def("describe", &Observer::describe)
      .def_prop_ro("spec", [](const Observer& o) { return o.spec(); })
      .def_prop_ro("batches", &Observer::batches);

  nb::class_<MinMaxObserver, Observer>(m, "MinMaxObserver")
      .def(nb::init<QuantSpec>(), "spec"_a)
      .def_prop_ro("min",
                   [](const MinMaxObserver& o) -> nb::object {
                     if (o.batches() == 0) return nb::none();
                     return nb::cast(to_array(Tensor(o.min())));
                   })
      .def_prop_ro("max", [](const MinMaxObserver& o) -> nb::object {
        if (o.batches() == 0) return nb::none();
        return nb::cast(to_array(Tensor(o.max())));
      });

  nb::class_<MovingAverageObserver, MinMaxObserver>(m, "MovingAverageObserver")
      .def(nb::init<QuantSpec, double>(), "spec"_a, "averaging_constant"_a = 0.01)
      .def_prop_ro("averaging_constant", &MovingAverageObserver::averaging_constant);

  nb::class_<LatestMinMaxObserver, MinMaxObserver>(m, "LatestMinMaxObserver")
      .def(nb::init<QuantSpec>(), "spec"_a);

  nb::class_<MeanAbsObserver, Observer>(m, "MeanAbsObserver").def(nb::init<QuantSpec>(), "spec"_a);

  nb::class_<FixedRangeObserver, MinMaxObserver>(m, "FixedRangeObserver")
      .def(nb::init<QuantSpec, std::optional<double>, std::optional<double>>(), "spec"_a,
           "min"_a = nb::none(), "max"_a = nb::none());

  nb::class_<FixedQParamsObserver, Observer>(m, "FixedQParamsObserver")
      .def(nb::init<QParams>(), "qparams"_a);

  nb::class_<HistogramObserver, Observer>(m, "HistogramObserver")
      .def(
          "__init__",
          [](HistogramObserver* self, const QuantSpec& spec, std::int64_t bins,
             const std::string& method, double percentile) {
            new (self)
                HistogramObserver(spec, bins, histogram_method_from_name(method), percentile);
          },
          "spec"_a, "bins"_a = 2048, "method"_a = "torch_l2", "percentile"_a = 99.99)
      .def_prop_ro("method",
                   [](const HistogramObserver& o) { return std::string(name(o.method())); })
      .def_prop_ro("histogram",
                   [](const HistogramObserver& o) -> nb::object {
                     if (o.batches() == 0) return nb::none();
                     const auto& h = o.histogram();
                     Tensor out = Tensor::uninitialized(ScalarType::float32,
                                                        {static_cast<std::int64_t>(h.size())});
                     std::copy(h.begin(), h.end(), out.data<float>());
                     return nb::cast(to_array(std::move(out)));
                   })
      .def_prop_ro("min", &HistogramObserver::min)
      .def_prop_ro("max", &HistogramObserver::max)
      .def("search_range", &HistogramObserver::search_range);

  m.def(
      "save_observer_state",
      [](const std::string& path, const nb::dict& state) {
        io::save_observer_state(path, state_from_dict(state));
      },
      "path"_a, "state"_a);
  m.def(
      "load_observer_state",
      [](const std::string& path) { return state_to_dict(io::load_observer_state(path)); },
      "path"_a);
  m.def(
      "observer_from_state",
      [](const nb::dict& state, const QuantSpec& spec) {
        return observer_from_state(state_from_dict(state), spec);
      },
      "state"_a, "spec"_a);
}

}  // namespace quantkit::python
