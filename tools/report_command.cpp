#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "commands.hpp"
#include "quantkit/io/stored_weights.hpp"
#include "quantkit/metrics.hpp"
#include "quantkit/ops.hpp"

namespace quantkit::cli {
namespace {

struct Row {
  std::string name;
  std::string scheme;
  ErrorReport report;
};

// The reference weight as an aligned tensor (a mapped tensor may sit at any offset).
Tensor load_reference(const io::Checkpoint& reference, const io::StoredWeight& weight) {
  for (const auto& shard : reference.shards()) {
    const io::TensorEntry* entry = shard.header().find(weight.name);
    if (entry == nullptr) continue;
    QK_CHECK(entry->shape == weight.shape, "reference tensor '", weight.name, "' has shape ",
             to_string(entry->shape), " but the quantized one ", to_string(weight.shape));
    QK_CHECK(io::is_float_input(entry->dtype), "reference tensor '", weight.name,
             "' is not F32/BF16/F16");
    Tensor out = Tensor::uninitialized(*io::to_scalar_type(entry->dtype), entry->shape);
    std::memcpy(out.raw_data(), shard.bytes(*entry).data(), entry->nbytes());
    shard.release(*entry, 0, entry->nbytes());
    return out;
  }
  throw Error(detail::concat("the reference checkpoint has no tensor '", weight.name, "'"));
}

std::string svg_escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '<')
      out += "&lt;";
    else if (c == '>')
      out += "&gt;";
    else if (c == '&')
      out += "&amp;";
    else
      out += c;
  }
  return out;
}

// Horizontal bars, one per tensor, worst first.
void write_svg(const std::filesystem::path& path, const std::vector<Row>& rows, const char* title,
               double (*value)(const ErrorReport&), const char* unit) {
  double top = 1e-12;
  for (const auto& row : rows)
    top = std::max(top, std::isfinite(value(row.report)) ? value(row.report) : 0.0);
  const int bar_height = 16, left = 380, width = 360;
  const int height = 40 + bar_height * static_cast<int>(rows.size());
  std::ofstream out(path);
  out << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << left + width + 90 << "\" height=\""
      << height
      << "\" font-family=\"monospace\" font-size=\"11\">\n<text x=\"8\" y=\"18\" font-size=\"14\">"
      << title << "</text>\n";
  int y = 30;
  for (const auto& row : rows) {
    const double v = value(row.report);
    const double length = std::isfinite(v) ? std::max(0.0, v) / top * width : width;
    out << "<text x=\"" << left - 6 << "\" y=\"" << y + 12 << "\" text-anchor=\"end\">"
        << svg_escape(row.name) << "</text><rect x=\"" << left << "\" y=\"" << y + 2
        << "\" width=\"" << length << "\" height=\"" << bar_height - 4
        << "\" fill=\"#4878a8\"/><text x=\"" << left + length + 4 << "\" y=\"" << y + 12 << "\">"
        << v << unit << "</text>\n";
    y += bar_height;
  }
  out << "</svg>\n";
  if (!out)
    throw std::filesystem::filesystem_error("cannot write chart", path,
                                            std::make_error_code(std::errc::io_error));
}

}  // namespace

int run_report(const ReportArgs& args) {
  const io::Checkpoint reference = io::Checkpoint::open(args.reference);
  const io::Checkpoint quantized = io::Checkpoint::open(args.quantized);
  std::vector<Row> rows;
  for (const auto& shard : quantized.shards()) {
    for (const auto& weight : io::stored_weights(shard)) {
      const Tensor original = load_reference(reference, weight);
      const Tensor restored =
          dequantize(io::load_quantized(shard, weight, original.dtype()), original.dtype());
      rows.push_back({weight.name, weight.scheme->name, error_report(original, restored)});
      shard.release_all();  // memory stays bounded by one weight, not the checkpoint
    }
  }
  QK_CHECK(!rows.empty(), "'", args.quantized, "' holds no weight quantized by quantkit");
  std::sort(rows.begin(), rows.end(),
            [](const Row& a, const Row& b) { return a.report.sqnr_db < b.report.sqnr_db; });
  std::printf("%-50s %-14s %11s %11s %9s %8s %9s\n", "tensor (worst first)", "scheme", "mean|diff|",
              "max|diff|", "SQNR dB", "PEIR %", "cosine");
  for (const auto& row : rows) {
    const auto& r = row.report;
    std::printf("%-50s %-14s %11.4g %11.4g %9.2f %8.3f %9.6f\n", row.name.c_str(),
                row.scheme.c_str(), r.mean_abs_diff, r.max_abs_diff, r.sqnr_db, 100.0 * r.peir,
                r.cosine);
  }
  if (!args.plot_dir.empty()) {
    std::filesystem::create_directories(args.plot_dir);
    const std::filesystem::path dir(args.plot_dir);
    write_svg(
        dir / "sqnr.svg", rows, "SQNR per tensor (dB, higher is better)",
        [](const ErrorReport& r) { return r.sqnr_db; }, " dB");
    write_svg(
        dir / "peir.svg", rows, "PEIR per tensor (%, lower is better)",
        [](const ErrorReport& r) { return 100.0 * r.peir; }, " %");
    std::printf("charts: %s, %s\n", (dir / "sqnr.svg").c_str(), (dir / "peir.svg").c_str());
  }
  return 0;
}

}  // namespace quantkit::cli
