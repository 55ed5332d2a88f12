#pragma once
// One binding function per concept; module.cpp calls them all.

#include <nanobind/nanobind.h>
#include <nanobind/operators.h>

namespace quantkit::python {

namespace nb = nanobind;

void bind_spec(nb::module_& m);
void bind_ops(nb::module_& m);
void bind_torch_core(nb::module_& m);
void bind_observers(nb::module_& m);
void bind_io(nb::module_& m);
void bind_linear(nb::module_& m);

}  // namespace quantkit::python
