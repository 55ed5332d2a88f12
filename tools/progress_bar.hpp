#pragma once
// A one-line progress bar with throughput and ETA, drawn on stderr only when
// it is a terminal (pipes and CI logs stay clean).
#include <chrono>
#include <cstdint>
#include <string>

namespace quantkit::cli {

class ProgressBar {
 public:
  ProgressBar(std::string label, bool enabled);
  void update(std::uint64_t done, std::uint64_t total);
  /// Ends the line (when drawn) and returns the seconds since construction.
  double finish();

 private:
  std::string label_;
  bool enabled_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
};

}  // namespace quantkit::cli
