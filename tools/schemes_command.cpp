#include <cstdio>

#include "commands.hpp"
#include "quantkit/io/schemes.hpp"

namespace quantkit::cli {

int run_schemes() {
  std::printf("%-18s %-22s %s\n", "scheme", "format", "what it stores");
  for (const auto& scheme : io::schemes()) {
    std::printf("%-18s %-22s %s\n", scheme.name.c_str(), std::string(name(scheme.format)).c_str(),
                scheme.summary.c_str());
  }
  std::printf("\n%-18s %s\n", "preset", "what it mixes (--scheme PRESET; --override refines it)");
  for (const auto& preset : io::presets()) {
    std::printf("%-18s %s\n", preset.name.c_str(), preset.summary.c_str());
  }
  std::printf("\n%-18s %s\n", "alias", "scheme (the Python recipe and compressed-tensors names)");
  for (const auto& [alias, canonical] : io::scheme_aliases()) {
    std::printf("%-18s %s\n", std::string(alias).c_str(), std::string(canonical).c_str());
  }
  std::string python_only;
  for (const auto name : io::activation_recipe_names()) {
    python_only += (python_only.empty() ? "" : ", ") + std::string(name);
  }
  std::printf(
      "\nRecipes that quantize activations too (%s) run from Python: quantkit.torch.load_recipe "
      "reads the same recipe files (--recipe) with them.\n",
      python_only.c_str());
  return 0;
}

std::string format_bytes(double bytes) {
  static const char* units[] = {"B", "kB", "MB", "GB", "TB"};
  int unit = 0;
  while (bytes >= 1000.0 && unit < 4) bytes /= 1000.0, ++unit;
  char text[32];
  std::snprintf(text, sizeof(text), unit == 0 ? "%.0f %s" : "%.2f %s", bytes, units[unit]);
  return text;
}

}  // namespace quantkit::cli
