// ds2rt inspect MODEL|PLAN
#include <iostream>

#include "common.h"
#include "ds2rt/deepspeech2.h"
#include "ds2rt/importers.h"

namespace ds2rt::tools {

namespace {

void describeModel(const std::string& path, const BuildOptions& options) {
  const DeepSpeech2Model model = loadModel(path);
  const auto& c = model.config();
  std::cout << "DeepSpeech2 model " << path << "\n  " << c.rnn_type << ", " << c.hidden_layers << " layers of "
            << c.hidden_size << ", " << (c.bidirectional ? "bidirectional" : "unidirectional");
  if (!c.bidirectional) std::cout << ", lookahead context " << c.lookahead_context;
  std::cout << ", " << c.labels.size() << " labels, " << c.spect.sample_rate << " Hz, " << c.spect.frequencyBins()
            << " frequency bins\n\nnetwork as defined:\n"
            << model.createNetwork({.log_softmax = options.log_probs}).describe() << "\nas built:\n";
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
    if (!isPlanFile(args->file)) describeModel(args->file, args->options);
    const Engine engine = openEngine(args->file, args->options);
    std::cout << engine.describe() << "\nbuild report:\n";
    for (const auto& line : engine.buildReport()) std::cout << "  " << line << "\n";
  });
}

}  // namespace ds2rt::tools
