// The quantkit._core extension: the C++ library, one binding file per concept.
#include "bindings.hpp"

NB_MODULE(_core, m) {
  m.doc() = "quantkit C++ core (use the quantkit package, which wraps it).";
  quantkit::python::bind_spec(m);
  quantkit::python::bind_ops(m);
  quantkit::python::bind_torch_core(m);
  quantkit::python::bind_observers(m);
  quantkit::python::bind_io(m);
  quantkit::python::bind_linear(m);
}
