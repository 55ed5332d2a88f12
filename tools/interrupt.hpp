#pragma once
// SIGINT / SIGTERM / SIGHUP during a run: the handler only records the
// signal; the run checks between blocks of work, throws Interrupted, and its
// destructors remove every temporary file and folder before the tool exits
// the way the signal would have made it exit.
#include <stdexcept>

namespace quantkit::cli {

struct Interrupted : std::runtime_error {
  explicit Interrupted(int signal_number);
  int signal_number;
};

/// Installs the handlers (a second signal of the same kind kills at once).
void catch_interrupts();
/// Throws Interrupted when a signal arrived since catch_interrupts().
void throw_if_interrupted();
/// Ends the process as the signal would have: default action, re-raised.
[[noreturn]] void die_of(const Interrupted& interrupted);

}  // namespace quantkit::cli
