#pragma once
// quantkit::Error — the one exception type of the library.
//
// Every invalid argument is rejected before any work starts, with a message that
// names the argument, the offending value and the rule it breaks, e.g.
//   "group_size 100 does not divide axis 1 of length 4096".
// Python maps Error to ValueError; the CLI prints the message and exits non-zero.

#include <sstream>
#include <stdexcept>
#include <string>

namespace quantkit {

class Error : public std::invalid_argument {
 public:
  explicit Error(const std::string& message) : std::invalid_argument(message) {}
};

namespace detail {
template <typename... Parts>
std::string concat(const Parts&... parts) {
  std::ostringstream out;
  out.precision(9);  // enough digits to identify any float exactly
  (out << ... << parts);
  return out.str();
}
}  // namespace detail

}  // namespace quantkit

// Throws quantkit::Error built from the streamed parts when `condition` is false.
#define QK_CHECK(condition, ...)                                        \
  do {                                                                  \
    if (!(condition)) {                                                 \
      throw ::quantkit::Error(::quantkit::detail::concat(__VA_ARGS__)); \
    }                                                                   \
  } while (0)
