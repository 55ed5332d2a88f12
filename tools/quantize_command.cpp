#include <cstdio>
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "interrupt.hpp"
#include "progress_bar.hpp"
#include "quantkit/error.hpp"
#include "quantkit/threading.hpp"

namespace quantkit::cli {
namespace {

void print_plan(const io::QuantizationPlan& plan) {
  std::printf("%-48s %-8s %-16s %-16s %s\n", "tensor", "dtype", "shape", "action",
              "bytes in -> out");
  for (const auto& shard : plan.shards) {
    for (const auto& tensor : shard.tensors) {
      const std::string action = !tensor.scheme              ? "keep (" + tensor.note + ")"
                                 : tensor.importance.empty() ? tensor.scheme->name
                                                             : tensor.scheme->name + " +importance";
      std::printf("%-48s %-8s %-16s %-16s %s -> %s\n", tensor.entry->name.c_str(),
                  std::string(io::dtype_info(tensor.entry->dtype).name).c_str(),
                  to_string(tensor.entry->shape).c_str(), action.c_str(),
                  format_bytes(static_cast<double>(tensor.entry->nbytes())).c_str(),
                  format_bytes(static_cast<double>(tensor.output_bytes())).c_str());
    }
  }
}

// The applied table as data, one row per tensor: what quantkit.torch's
// coverage report gives for a model's modules.
void print_plan_json(const io::QuantizationPlan& plan) {
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& shard : plan.shards) {
    for (const auto& tensor : shard.tensors) {
      const std::string& name = tensor.entry->name;
      const bool weight = name.size() > 7 && name.compare(name.size() - 7, 7, ".weight") == 0;
      rows.push_back({{"tensor", name},
                      {"module", weight ? name.substr(0, name.size() - 7) : name},
                      {"dtype", std::string(io::dtype_info(tensor.entry->dtype).name)},
                      {"shape", tensor.entry->shape},
                      {"scheme", tensor.scheme ? nlohmann::json(tensor.scheme->name) : nullptr},
                      {"reason", tensor.note},
                      {"importance", !tensor.importance.empty()},
                      {"bytes_in", tensor.entry->nbytes()},
                      {"bytes_out", tensor.output_bytes()}});
    }
  }
  std::printf("%s\n", nlohmann::json{{"tensors", rows},
                                     {"input_bytes", plan.input_bytes},
                                     {"output_bytes", plan.output_bytes},
                                     {"quantized_tensors", plan.quantized_tensors}}
                          .dump(1)
                          .c_str());
}

}  // namespace

int run_quantize(const QuantizeArgs& args) {
  if (args.threads > 0) set_num_threads(args.threads);
  const io::Checkpoint input = io::Checkpoint::open(args.input);
  const io::QuantizationPlan plan = io::plan_quantization(input, args.options);
  for (const auto& warning : plan.warnings)
    std::fprintf(stderr, "quantkit: warning: %s\n", warning.c_str());
  const std::string in_bytes = format_bytes(static_cast<double>(plan.input_bytes));
  const std::string out_bytes = format_bytes(static_cast<double>(plan.output_bytes));
  const auto quantized = static_cast<long long>(plan.quantized_tensors);
  if (args.json) {
    QK_CHECK(args.dry_run, "--json prints the plan of a --dry-run; add --dry-run");
    print_plan_json(plan);
    return 0;
  }
  if (args.dry_run) {
    print_plan(plan);
    std::printf("plan: %lld tensors quantized, %s -> %s (dry run: nothing written)\n", quantized,
                in_bytes.c_str(), out_bytes.c_str());
    return 0;
  }
  ProgressBar bar("quantizing", !args.quiet);
  catch_interrupts();
  io::run_quantization(input, plan, args.output, args.force,
                       [&](std::uint64_t done, std::uint64_t total) {
                         throw_if_interrupted();
                         bar.update(done, total);
                       });
  const double seconds = bar.finish();
  std::size_t tensors = 0;
  for (const auto& shard : plan.shards) tensors += shard.tensors.size();
  const double rate = seconds > 0 ? static_cast<double>(plan.input_bytes) / seconds : 0;
  std::printf("wrote %s: %lld of %zu tensors quantized, %s -> %s in %.2f s (%s/s)\n",
              args.output.c_str(), quantized, tensors, in_bytes.c_str(), out_bytes.c_str(), seconds,
              format_bytes(rate).c_str());
  return 0;
}

}  // namespace quantkit::cli
