#include "quantkit/threading.hpp"

#include <omp.h>

#include "quantkit/error.hpp"

namespace quantkit {
namespace {
const int kDefaultThreads = omp_get_max_threads();
}

void set_num_threads(int threads) {
  QK_CHECK(threads >= 0 && threads <= max_threads(), "threads ", threads, " must be in 0..",
           max_threads(), " (0 restores the default)");
  omp_set_num_threads(threads == 0 ? kDefaultThreads : threads);
}

int num_threads() {
  return omp_get_max_threads();
}

}  // namespace quantkit
