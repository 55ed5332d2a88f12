#pragma once
// torch.sum / torch.mean over a contiguous run of values, in the exact order
// of PyTorch's CPU cascade sum (ATen SumKernel, vectorized inner reduction).
//
// The order matters bit for bit: float32 sums run in 8 float lanes; bfloat16
// and float16 sums accumulate in float32 over 16 lanes, each lane first
// adding a pair of inputs (bf16: elements i and i+16 of a 32-element load;
// fp16: elements 2i and 2i+1). Lanes accumulate four-way interleaved with a
// 4-level cascade (chunks of >= 16), then the scalar tail and the lanes are
// added left to right. torch.mean is that float32 sum divided by n, rounded
// once to the input dtype.
//
// These lane widths are those of torch 2.13's CPU kernels on x86 machines with
// AVX2 and AVX-512 (measured bit-exact); PyTorch splits very large single
// reductions (> 32768 elements) across threads, which this does not model.

#include <span>

#include "quantkit/scalar_type.hpp"

namespace quantkit::reference {

/// `values` are exact values of `dtype` (float32, bfloat16 or float16).
float torch_cpu_sum(std::span<const float> values, ScalarType dtype);
float torch_cpu_mean(std::span<const float> values, ScalarType dtype);

}  // namespace quantkit::reference
