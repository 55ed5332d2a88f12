#pragma once
// Threads used by quantkit's kernels (OpenMP). Results never depend on the
// thread count: work is cut into fixed chunks and reductions are exact.

namespace quantkit {

/// The most threads set_num_threads accepts: beyond it OpenMP runs out of
/// stacks long before any speed-up (1024 covers the largest two-socket hosts).
constexpr int max_threads() {
  return 1024;
}

/// Sets the number of threads for subsequent calls; 0 restores the default
/// (OMP_NUM_THREADS or the number of cores). Throws Error outside
/// 0..max_threads().
void set_num_threads(int threads);
int num_threads();

}  // namespace quantkit
