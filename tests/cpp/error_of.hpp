#pragma once
// The message of the quantkit::Error that `fn` throws, or "<no error>".
#include <string>

#include "quantkit/error.hpp"

namespace quantkit::testing {

template <typename Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "<no error>";
}

}  // namespace quantkit::testing
