#pragma once
// Umbrella header: the whole public C++ API of quantkit.

#include "quantkit/error.hpp"
#include "quantkit/granularity.hpp"
#include "quantkit/half.hpp"
#include "quantkit/metrics.hpp"
#include "quantkit/minifloat.hpp"
#include "quantkit/ops.hpp"
#include "quantkit/packing.hpp"
#include "quantkit/qparams.hpp"
#include "quantkit/quant_dtype.hpp"
#include "quantkit/quant_spec.hpp"
#include "quantkit/quantized_tensor.hpp"
#include "quantkit/scalar_type.hpp"
#include "quantkit/stretched.hpp"
#include "quantkit/tensor.hpp"
#include "quantkit/threading.hpp"
#include "quantkit/torch_core.hpp"
