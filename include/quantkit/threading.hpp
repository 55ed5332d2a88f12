#pragma once
// Threads used by quantkit's kernels (OpenMP). Results never depend on the
// thread count: work is cut into fixed chunks and reductions are exact.

namespace quantkit {

/// Sets the number of threads for subsequent calls; 0 restores the default
/// (OMP_NUM_THREADS or the number of cores).
void set_num_threads(int threads);
int num_threads();

}  // namespace quantkit
