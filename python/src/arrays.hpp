#pragma once
// Zero-copy conversion between DLPack arrays (NumPy, PyTorch, ...) and quantkit tensors.

#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>

#include "quantkit/ops.hpp"
#include "quantkit/tensor.hpp"

namespace quantkit::python {

namespace nb = nanobind;

/// Any CPU array, read-only, any dtype, any strides.
using InArray = nb::ndarray<nb::ro, nb::device::cpu>;
/// A writable, row-major contiguous CPU array (out= arguments).
using OutParam = nb::ndarray<nb::c_contig, nb::device::cpu>;
/// Arrays handed back to Python: DLPack-capable, framework chosen by the caller.
using OutArray = nb::ndarray<>;

/// A view of the array's memory (no copy); valid while the array lives.
TensorView view_of(const InArray& array, const char* argument);
/// The destination of an out= call (no copy); valid while the array lives.
OutView out_view_of(const OutParam& array);
/// Moves the tensor into a capsule that owns the returned array's memory.
OutArray to_array(Tensor&& tensor);

}  // namespace quantkit::python
