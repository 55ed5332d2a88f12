// quantkit: the command-line tool. Exit codes: 0 success, 1 invalid request
// (bad scheme, tensor that cannot take it, ...), 2 usage error, 3 malformed
// input file, 4 file-system error.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>

#include "commands.hpp"
#include "interrupt.hpp"
#include "quantkit/io/schemes.hpp"
#include "quantkit/threading.hpp"

namespace {

std::string scheme_names() {
  std::string names;
  for (const auto& scheme : quantkit::io::schemes())
    names += (names.empty() ? "" : ", ") + scheme.name;
  return names;
}

int fail(const char* what, const std::exception& error, int code) {
  std::fprintf(stderr, "quantkit: %s%s\n", what, error.what());
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace quantkit;
  CLI::App app{
      "quantkit: quantize safetensors checkpoints (compressed-tensors layout), inspect and compare "
      "them"};
  app.require_subcommand(1);

  cli::QuantizeArgs quantize;
  auto* quantize_cmd =
      app.add_subcommand("quantize", "Quantize the matrix weights of a checkpoint");
  quantize_cmd
      ->add_option("input", quantize.input, "A .safetensors file or a (sharded) checkpoint folder")
      ->required();
  quantize_cmd
      ->add_option("-o,--output", quantize.output, "Output file (or folder for a folder input)")
      ->required();
  auto* scheme_option =
      quantize_cmd
          ->add_option("-s,--scheme", quantize.options.scheme,
                       "One of: " + scheme_names() + "; a preset (q4-mix, ...) or an alias")
          ->capture_default_str();
  quantize_cmd
      ->add_option("-r,--recipe", quantize.options.recipe,
                   "A recipe file (JSON: scheme, embeddings, rules; the same file "
                   "quantkit.torch.load_recipe reads)")
      ->excludes(scheme_option);
  quantize_cmd->add_option("--include", quantize.options.include,
                           "Only tensors whose module or tensor name this regex full-matches");
  quantize_cmd->add_option("--exclude", quantize.options.exclude,
                           "Skip tensors whose module or tensor name this regex full-matches");
  quantize_cmd->add_option("--override", quantize.options.overrides,
                           "REGEX=SCHEME: tensors whose module or tensor name REGEX full-matches "
                           "use SCHEME, or stay float with 'skip' (first match wins, before the "
                           "recipe's rules; repeatable)");
  quantize_cmd->add_flag("--embeddings", quantize.options.embeddings,
                         "Quantize embedding tables too");
  quantize_cmd->add_flag("--allow-unmatched-rules", quantize.options.allow_unmatched_rules,
                         "Warn instead of failing when --include, --exclude or an --override "
                         "matches no tensor");
  quantize_cmd->add_option(
      "--importance", quantize.options.importance,
      "Per-column importance weighting ':search=mse' schemes: a .safetensors file (F32 "
      "[columns] named as each weight, e.g. from quantkit.torch.collect_importance) or a "
      "llama.cpp imatrix, GGUF or legacy .dat (GGUF names mapped to Hugging Face Llama names)");
  quantize_cmd
      ->add_option("-t,--threads", quantize.threads,
                   "Worker threads, 0 to " + std::to_string(max_threads()) + " (0: all cores)")
      ->check(CLI::Range(0, max_threads()));
  quantize_cmd->add_flag("-n,--dry-run", quantize.dry_run, "Print the plan, write nothing");
  quantize_cmd->add_flag("--json", quantize.json,
                         "With --dry-run: print the plan as JSON (module, scheme, reason)");
  quantize_cmd->add_flag("-f,--force", quantize.force,
                         "Replace a previous quantkit output (never another file or folder)");
  quantize_cmd->add_flag("-q,--quiet", quantize.quiet, "No progress bar");

  std::string inspect_path;
  auto* inspect_cmd =
      app.add_subcommand("inspect", "List tensors, dtypes, shapes, sizes and quantization");
  inspect_cmd->add_option("file", inspect_path, "A .safetensors file or checkpoint folder")
      ->required();

  cli::ReportArgs report;
  auto* report_cmd = app.add_subcommand(
      "report", "Per-tensor error of a quantized checkpoint against its original");
  report_cmd->add_option("reference", report.reference, "The original checkpoint")->required();
  report_cmd
      ->add_option("quantized", report.quantized,
                   "Its quantized version (written by quantkit quantize)")
      ->required();
  report_cmd->add_option("--plot", report.plot_dir, "Write SVG charts into this folder");

  app.add_subcommand("schemes", "List the quantization schemes");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    return app.exit(error) == 0 ? 0 : 2;
  }
  try {
    if (quantize_cmd->parsed()) return cli::run_quantize(quantize);
    if (inspect_cmd->parsed()) return cli::run_inspect(inspect_path);
    if (report_cmd->parsed()) return cli::run_report(report);
    return cli::run_schemes();
  } catch (const cli::Interrupted& interrupted) {
    std::fprintf(stderr, "quantkit: %s; nothing was written\n", interrupted.what());
    cli::die_of(interrupted);
  } catch (const io::FileFormatError& error) {
    return fail("", error, 3);
  } catch (const io::IoError& error) {
    return fail("", error, 4);
  } catch (const std::filesystem::filesystem_error& error) {
    return fail("", error, 4);
  } catch (const std::exception& error) {
    return fail("error: ", error, 1);
  }
}
