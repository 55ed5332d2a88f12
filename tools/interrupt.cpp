#include "interrupt.hpp"

#include <csignal>
#include <cstdlib>
#include <string>

namespace quantkit::cli {
namespace {

volatile std::sig_atomic_t pending_signal = 0;

void record(int signal_number) {
  pending_signal = signal_number;
}

}  // namespace

Interrupted::Interrupted(int number)
    : std::runtime_error("interrupted by signal " + std::to_string(number)),
      signal_number(number) {}

void catch_interrupts() {
  struct sigaction action {};
  action.sa_handler = record;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESETHAND;  // the second signal takes the default action
  for (int number : {SIGINT, SIGTERM, SIGHUP}) sigaction(number, &action, nullptr);
}

void throw_if_interrupted() {
  if (pending_signal != 0) throw Interrupted(pending_signal);
}

void die_of(const Interrupted& interrupted) {
  std::signal(interrupted.signal_number, SIG_DFL);
  std::raise(interrupted.signal_number);
  std::_Exit(128 + interrupted.signal_number);
}

}  // namespace quantkit::cli
