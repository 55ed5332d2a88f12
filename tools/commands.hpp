#pragma once
// The subcommands of the `quantkit` tool: thin shells over quantkit::io.
#include <string>
#include <vector>

#include "quantkit/io/checkpoint.hpp"

namespace quantkit::cli {

struct QuantizeArgs {
  std::string input;
  std::string output;
  io::QuantizeOptions options;
  int threads = 0;
  bool dry_run = false;
  bool json = false;  // the --dry-run plan as JSON
  bool force = false;
  bool quiet = false;
};

struct ReportArgs {
  std::string reference;
  std::string quantized;
  std::string plot_dir;  // empty: no charts
};

int run_quantize(const QuantizeArgs& args);
int run_inspect(const std::string& path);
int run_report(const ReportArgs& args);
int run_schemes();

/// "1.5 GB", "384 B": decimal units, as disk tools print them.
std::string format_bytes(double bytes);

}  // namespace quantkit::cli
