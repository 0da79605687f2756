// ds2rt inspect MODEL|PLAN
#include <iostream>

#include "common.h"
#include "ds2rt/importers.h"

namespace ds2rt::tools {

namespace {

// Prints what the file holds and returns the engine built from it (the file is read once).
Engine describeAndBuild(const std::string& path, const BuildOptions& options) {
  const ImportedNetwork imported = importNetwork(path, {}, {.log_softmax = options.log_probs});
  std::cout << path << ": " << imported.format << "\n";
  if (!imported.architecture.empty()) std::cout << "  " << imported.architecture << "\n";
  if (!imported.labels.empty()) std::cout << "  " << imported.labels.size() << " labels\n";
  if (imported.spect_known)
    std::cout << "  features: " << imported.spect.sample_rate << " Hz, " << imported.spect.frequencyBins()
              << " frequency bins, " << imported.spect.window << " window\n";
  for (const std::string& note : imported.notes) std::cout << "  note: " << note << "\n";
  std::cout << "\nnetwork as defined:\n" << imported.network.describe() << "\nas built:\n";
  return Builder(options.config()).build(imported.network);
}

}  // namespace

void addInspectCommand(CLI::App& app) {
  struct Args {
    std::string file;
    BuildOptions options;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("inspect", "Show a model's or plan's layers, shapes, parameters and fusions");
  cmd->add_option("file", args->file, "model or plan file")->required()->check(CLI::ExistingFile);
  addBuildOptions(*cmd, args->options);
  cmd->callback([args] {
    const Engine engine =
        isPlanFile(args->file) ? Engine::load(args->file) : describeAndBuild(args->file, args->options);
    std::cout << engine.describe() << "\nbuild report:\n";
    for (const auto& line : engine.buildReport()) std::cout << "  " << line << "\n";
  });
}

}  // namespace ds2rt::tools
